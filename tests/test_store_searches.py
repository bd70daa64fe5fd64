"""Stored async results read from disk: pages of rows (``SearchStore.rows``), streaming in
batches (``iter_rows``), the async GET that renders from the stream, and the frame each
language gives a search a restart interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch

from service import keys
from service.core.languages import Language, Languages
from service.core.searches import SearchNotFound
from service.store.db import Database
from service.store.searches import RESTART_FAILURE, SearchStore

NOW = 1_000_000


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SearchStore]:
    db = Database(tmp_path / "esquire.db")
    await db.open()
    yield SearchStore(db)
    await db.close()


async def _stored(store: SearchStore, search_id: str, count: int, *, finish: bool = True) -> list[list[Any]]:
    rows = [[i, f"r{i}", None if i % 2 else [i, i]] for i in range(count)]
    await store.create(search_id, "esql", True, NOW, NOW + 60_000, {})
    for first in range(0, count, 7):  # appended in batches, as a running search stores them
        await store.append_rows(search_id, first, rows[first:first + 7], NOW)
    if finish:
        await store.finish(search_id, {"names": ["n", "s", "m"]}, None, count)
    return rows


async def _streamed(store: SearchStore, search_id: str, batch: int) -> list[list[list[Any]]]:
    return [b async for b in store.iter_rows(search_id, batch)]


async def test_a_page_is_the_rows_from_start_up_to_stop(store: SearchStore) -> None:
    rows = await _stored(store, "a", 50)
    assert await store.rows("a", 0, 50) == rows
    assert await store.rows("a", 10, 20) == rows[10:20]
    assert await store.rows("a", 49, 50) == [rows[49]]


async def test_a_page_is_clamped_to_the_rows_stored(store: SearchStore) -> None:
    rows = await _stored(store, "a", 30)
    assert await store.rows("a", -5, 3) == rows[:3]
    assert await store.rows("a", 25, 10**12) == rows[25:]
    assert await store.rows("a", -10**12, 10**12) == rows


async def test_empty_ranges_give_no_rows(store: SearchStore) -> None:
    await _stored(store, "a", 30)
    assert await store.rows("a", 5, 5) == []
    assert await store.rows("a", 20, 10) == []
    assert await store.rows("a", 30, 40) == []
    assert await store.rows("a", -3, 0) == []
    await _stored(store, "empty", 0)
    assert await store.rows("empty", 0, 10) == []
    assert await _streamed(store, "empty", 10) == []


async def test_a_running_search_gives_the_rows_stored_so_far(store: SearchStore) -> None:
    rows = await _stored(store, "a", 10, finish=False)
    assert (await store.get("a", NOW)).state == "running"
    assert await store.rows("a", 0, 100) == rows
    await store.append_rows("a", 10, [[10, "r10", None]], NOW)
    assert await store.rows("a", 8, 100) == [*rows[8:], [10, "r10", None]]


async def test_a_deleted_or_unknown_search_has_no_rows(store: SearchStore) -> None:
    await _stored(store, "a", 20)
    rows_b = await _stored(store, "b", 5)
    assert await store.delete("a")
    assert await store.rows("a", 0, 20) == []
    assert await _streamed(store, "a", 7) == []
    assert await store.rows("never", 0, 20) == []
    assert await store.rows("b", 0, 20) == rows_b  # another search's rows stay


@pytest.mark.parametrize("count, batch", [(50, 7), (49, 7), (3, 1000), (1, 1)])
async def test_streaming_gives_every_row_in_order_in_bounded_batches(store: SearchStore, count: int,
                                                                     batch: int) -> None:
    rows = await _stored(store, "a", count)
    await _stored(store, "b", 9)  # rows of another search are never mixed in
    batches = await _streamed(store, "a", batch)
    assert [r for b in batches for r in b] == rows
    assert all(1 <= len(b) <= batch for b in batches)
    assert len(batches) == -(-count // batch)


async def test_a_stored_result_of_many_batches_answers_as_the_unstored_one(logs: AsyncElasticsearch) -> None:
    """The rows of a stored search are rendered from the stream, batch by batch (more rows
    than one batch here): every format and option answers as the in-memory result does."""
    query = "FROM logs | EVAL none = null, odd = CASE(bytes % 2 == 1, bytes) | SORT bytes | LIMIT 2500"
    for fmt in ("json", "csv", "tsv", "txt"):
        for columnar in ((False, True) if fmt == "json" else (False,)):
            for drop in ("false", "true"):
                params = {"format": fmt, "drop_null_columns": drop}
                direct = await logs.perform_request(
                    "POST", "/_query/async", params=params, headers={"content-type": "application/json"},
                    body={"query": query, "columnar": columnar, "wait_for_completion_timeout": "30s"})
                kept = await logs.perform_request(
                    "POST", "/_query/async", params=params, headers={"content-type": "application/json"},
                    body={"query": query, "columnar": columnar, "wait_for_completion_timeout": "30s",
                          "keep_on_completion": True})
                if fmt == "json":
                    a, b = dict(direct.body), dict(kept.body)
                    for body in (a, b):
                        body.pop("took")
                        body.pop("id", None)
                    assert len(b["values"]) == (2500 if not columnar else len(b["columns"]))
                    assert a == b and len(b["columns"]) == (4 if drop == "true" else 5)
                else:
                    assert direct.body == kept.body and len(kept.body.splitlines()) > 2500


async def test_a_search_deleted_while_its_rows_are_read_is_not_found(logs: AsyncElasticsearch, http) -> None:
    resp = await logs.esql.async_query(query="FROM logs | LIMIT 3000", wait_for_completion_timeout="30s",
                                       keep_on_completion=True)
    searches = http.app[keys.SEARCHES]
    answer = await searches.get(resp["id"], wait_s=0, keep_alive_ms=0)
    await searches.delete(resp["id"])
    with pytest.raises(SearchNotFound):
        [b async for b in answer.rows()]


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
