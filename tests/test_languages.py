"""The language registry the app hands to the core: the forkserver's preloads and the frame
of a search a restart interrupted come from it, so the core names no language."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from service.app import LANGUAGES
from service.core import runner
from service.core.languages import Language, Languages
from service.query import sml
from service.query.eql import EqlJob, interrupted_frame
from service.query.esql import EsqlJob

CORE = Path(runner.__file__).parent


def test_the_app_registers_its_languages_with_their_modules_and_interrupted_frames() -> None:
    assert LANGUAGES.modules == ["service.query.esql", "service.query.eql", "service.query.sml"]
    assert LANGUAGES.interrupted_frame(EsqlJob.kind) == {"columns": []}
    assert LANGUAGES.interrupted_frame(EqlJob.kind) == interrupted_frame()
    assert LANGUAGES.interrupted_frame(sml.SmlJob.kind) == sml.interrupted_frame()


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
