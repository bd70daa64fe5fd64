"""The language registry the app hands to the core: the forkserver's preloads and the frame
of a search a restart interrupted come from it, so the core names no language."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import AsyncIterator

import pytest

from service.app import LANGUAGES
from service.core import runner
from service.core.languages import Language, Languages
from service.query.esql import EsqlJob
from service.store.db import Database
from service.store.searches import RESTART_FAILURE, SearchStore

NOW = 1_000_000
CORE = Path(runner.__file__).parent


def test_the_app_registers_esql_with_its_module_and_interrupted_frame() -> None:
    assert LANGUAGES.modules == ["service.query.esql"]
    assert LANGUAGES.interrupted_frame(EsqlJob.kind) == {"columns": []}


def test_an_unknown_kind_has_an_empty_interrupted_frame() -> None:
    languages = Languages.of([Language("eql", "service.query.eql", lambda: {"hits": []})])
    assert languages.interrupted_frame("eql") == {"hits": []}
    assert languages.interrupted_frame("sml") == {}
    assert Languages().modules == []


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_no_language(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if "esql" in m]
    assert "service.query.esql" not in path.read_text()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SearchStore]:
    db = Database(tmp_path / "esquire.db")
    await db.open()
    yield SearchStore(db)
    await db.close()


async def test_an_interrupted_search_without_a_frame_gets_its_languages(store: SearchStore) -> None:
    languages = Languages.of([Language("esql", "m", lambda: {"columns": []}), Language("eql", "m", lambda: {"x": 1})])
    await store.create("a", "esql", True, NOW, NOW + 60_000, {})
    await store.create("b", "eql", True, NOW, NOW + 60_000, {})
    await store.create("c", "sml", True, NOW, NOW + 60_000, {})
    await store.create("d", "eql", True, NOW, NOW + 60_000, {})
    await store.set_frame("d", {"y": 2})
    assert await store.finish_interrupted(languages.interrupted_frame) == 4
    partial = {"is_partial": True, "failures": [RESTART_FAILURE]}
    responses = {i: (await store.get(i, NOW)).response for i in "abcd"}  # type: ignore[union-attr]
    assert responses == {"a": {"columns": [], **partial}, "b": {"x": 1, **partial}, "c": partial,
                         "d": {"y": 2, **partial}}
