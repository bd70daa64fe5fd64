"""The core's query API for every language's handlers, driven by a language that is not
ES|QL (``count_language``): the synchronous path (tasks, headers, streamed rows, errors,
cancel when the client leaves) and the async options, with Elasticsearch's wording."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path
from typing import Any, AsyncIterator

import pytest

from count_language import CountJob
from service.app import LANGUAGES
from service.core.languages import Language, Languages
from service.core.queries import (
    DEFAULT_KEEP_ALIVE_MS, FOREVER_S, MAX_KEEP_ALIVE_MS, GetOptions, Queries, SubmitOptions, replayable,
    time_value_text,
)
from service.core.runner import Runner
from service.core.tasks import TaskManager
from service.errors import BadRequest, ParseError, ServiceError, ValidationError
from service.query.control import Cancelled

HEADERS = {"X-Opaque-Id": "trace-7"}


@pytest.fixture
async def queries(tmp_path: Path) -> AsyncIterator[Queries]:
    db = tmp_path / "events.db"
    sqlite3.connect(db).close()
    # The app's languages too: the workers' forkserver is one per process and keeps the
    # preloads of whoever starts it, and later tests time queries on workers with ES|QL loaded.
    languages = Languages.of([*LANGUAGES.entries, Language("count", "count_language")])
    runner = Runner(db, max_running=1, languages=languages)
    yield Queries(TaskManager("n1"), runner)
    await runner.close()


def listed(queries: Queries) -> list[tuple[str, str | None, dict[str, str]]]:
    return [(t.action, t.parent.task_id if t.parent else None, t.headers) for t in queries.tasks]


async def batches(rows: Any, most: int | None = None) -> list[list[list[Any]]]:
    out = []
    async for batch in rows():
        out.append(batch)
        if most is not None and len(out) == most:
            break
    return out


async def test_rows_stream_in_batches_and_the_frame_completes_after_them(queries: Queries) -> None:
    async with queries.run(CountJob(2500), HEADERS) as answer:
        assert answer.frame == {"names": ["i", "square"], "counted": 0, "took": 0}  # sent before any row
        (parent, _, _), (child, parent_id, headers) = listed(queries)
        assert (parent, child) == ("indices:data/read/count", "indices:data/read/count/compute")
        assert parent_id == next(iter(queries.tasks)).task_id and headers == HEADERS
        got = await batches(answer.rows)
        assert [len(b) for b in got] == [1000, 1000, 500]
        assert [r for b in got for r in b] == [[i, i * i] for i in range(2500)]
        assert answer.frame["counted"] == 2500 and answer.frame["took"] >= 0
        assert listed(queries) == []  # the query's tasks end with it


async def test_a_result_without_end_streams_and_the_query_ends_when_the_caller_leaves(queries: Queries) -> None:
    """Held as one list, this result would never reach the caller."""
    async with queries.run(CountJob(), HEADERS) as answer:
        got = await batches(answer.rows, most=3)
        task = next(iter(queries.tasks))
    assert sum(map(len, got)) == 3000
    assert task.control.cancelled and listed(queries) == []
    async with queries.run(CountJob(10), {}) as answer:  # the worker is free again
        assert sum(map(len, await batches(answer.rows))) == 10


async def test_an_error_before_the_frame_is_raised_on_entry(queries: Queries) -> None:
    with pytest.raises(ServiceError, match="no such thing") as info:  # as it crossed from the worker
        async with queries.run(CountJob(5, fail="no such thing"), HEADERS):
            pytest.fail("no answer for a failed query")
    assert (info.value.status, info.value.type) == (BadRequest.status, BadRequest.type)
    assert listed(queries) == []


async def test_an_error_after_some_rows_is_raised_at_their_end(queries: Queries) -> None:
    async with queries.run(CountJob(5000, fail_after=2500), HEADERS) as answer:
        with pytest.raises(ServiceError, match="failed after 2500 rows"):
            await batches(answer.rows)
    assert listed(queries) == []


async def test_a_client_that_is_gone_cancels_the_query(queries: Queries) -> None:
    with pytest.raises(Cancelled) as info:
        async with queries.run(CountJob(), HEADERS, gone=lambda: True) as answer:
            await batches(answer.rows)
    assert info.value.reason == "task cancelled [http channel closed]"
    assert listed(queries) == []


async def test_streamed_rows_are_read_once_or_replayed_from_a_spool(queries: Queries) -> None:
    async with queries.run(CountJob(2500), {}) as answer:
        rows = replayable(answer.rows)
        first, second = await batches(rows), await batches(rows)
        assert first == second and sum(map(len, first)) == 2500
        with pytest.raises(RuntimeError, match="read once"):
            await batches(answer.rows)
        spool = answer.rows.spool
    assert spool is not None and spool.closed


# --- options --------------------------------------------------------------------------------

def test_submit_options_defaults() -> None:
    assert SubmitOptions.parse({}) == SubmitOptions(wait_s=1.0, keep_alive_ms=DEFAULT_KEEP_ALIVE_MS,
                                                    keep_on_completion=False)
    assert SubmitOptions.parse({}, default_wait_ms=None).wait_s is None  # not given: the caller runs it sync


def test_submit_options_first_source_wins_and_null_is_not_given() -> None:
    body, query = {"keep_alive": "2m", "wait_for_completion_timeout": None}, {"keep_alive": "3m",
                                                                               "wait_for_completion_timeout": "5s"}
    assert SubmitOptions.parse(body, query) == SubmitOptions(wait_s=1.0, keep_alive_ms=120_000)
    assert SubmitOptions.parse(query, body) == SubmitOptions(wait_s=5.0, keep_alive_ms=180_000)


@pytest.mark.parametrize("given, expected", [
    ({"wait_for_completion_timeout": "-1"}, SubmitOptions(wait_s=FOREVER_S)),
    ({"wait_for_completion_timeout": 0}, SubmitOptions(wait_s=0.0)),
    ({"keep_alive": "0"}, SubmitOptions(wait_s=1.0)),
    ({"keep_alive": -1}, SubmitOptions(wait_s=1.0)),
    ({"keep_alive": "9999999999999999d"}, SubmitOptions(wait_s=1.0, keep_alive_ms=MAX_KEEP_ALIVE_MS)),
    ({"keep_on_completion": True}, SubmitOptions(wait_s=1.0, keep_on_completion=True)),
    ({"keep_on_completion": "true"}, SubmitOptions(wait_s=1.0, keep_on_completion=True)),
])
def test_submit_options_values(given: dict[str, Any], expected: SubmitOptions) -> None:
    assert SubmitOptions.parse(given) == expected


@pytest.mark.parametrize("given, error, reason", [
    ({"keep_alive": "30s"}, ValidationError, "Validation Failed: 1: [keep_alive] must be greater than 1 minute, "
                                             "got:30s;"),
    ({"keep_alive": "-1"}, ValidationError, "Validation Failed: 1: [keep_alive] must be greater than 1 minute, "
                                            "got:-1;"),
    ({"keep_alive": "1.5m"}, ParseError, "failed to parse [1.5m], fractional time values are not supported"),
    ({"wait_for_completion_timeout": "5"}, ParseError, "failed to parse setting [wait_for_completion_timeout] "
                                                       "with value [5] as a time value: unit is missing or unrecognized"),
    ({"keep_on_completion": "yes"}, BadRequest, "Failed to parse value [yes] as only [true] or [false] are allowed."),
])
def test_submit_options_errors(given: dict[str, Any], error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as info:
        SubmitOptions.parse(given, min_keep_alive=True)
    assert info.value.reason == reason  # type: ignore[attr-defined]


def test_a_minimum_keep_alive_only_where_asked() -> None:
    assert SubmitOptions.parse({"keep_alive": "30s"}).keep_alive_ms == 30_000
    assert SubmitOptions.parse({"keep_alive": "1m"}, min_keep_alive=True).keep_alive_ms == 60_000


@pytest.mark.parametrize("given, expected", [
    ({}, GetOptions(0.0, 0)),
    ({"wait_for_completion_timeout": "-1", "keep_alive": "-1"}, GetOptions(0.0, -1)),
    ({"wait_for_completion_timeout": "250ms", "keep_alive": "2m"}, GetOptions(0.25, 120_000)),
    ({"keep_alive": "9999999999999999d"}, GetOptions(0.0, MAX_KEEP_ALIVE_MS)),
])
def test_get_options(given: dict[str, str], expected: GetOptions) -> None:
    assert GetOptions.parse(given) == expected


@pytest.mark.parametrize("ms, text", [(-1, "-1"), (0, "0s"), (500, "500ms"), (30_000, "30s"), (90_000, "1.5m"),
                                      (3_600_000, "1h"), (5 * 86_400_000, "5d")])
def test_time_values_print_as_elasticsearch_prints_them(ms: int, text: str) -> None:
    assert time_value_text(ms) == text


def test_the_second_language_imports_nothing_of_esql() -> None:
    tree = ast.parse((Path(__file__).parent / "count_language.py").read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert imported and not [m for m in imported if "esql" in m]
