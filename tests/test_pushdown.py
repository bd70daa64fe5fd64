"""The SQL pushdown: each construct runs as SQL (the profile says so) and answers exactly
what the Python pipeline answers; where SQL would differ it falls back; stop and cancel
keep working on the pushed path."""

from __future__ import annotations

import sqlite3
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestServer
from elasticsearch import AsyncElasticsearch

from conftest import EsTestServer, StopAfter, create_and_load
from service import keys
from service.app import create_app
from service.query.control import Cancelled, Control
from service.query.esql import with_default_limit
from service.query.esql.dialect import ESQL
from service.query.esql.parser import parse
from service.query.execute import run_plan
from service.query.options import QueryOptions
from service.settings import Settings
from service.store.db import query_connection

N = 3000
MAPPINGS = {"properties": {"@timestamp": {"type": "date"}, "message": {"type": "text"}, "ok": {"type": "boolean"},
                           "ratio": {"type": "double"}, "tags": {"type": "keyword"}, "big": {"type": "long"}}}


def _doc(i: int) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "@timestamp": (i - N // 2) * 997_331,  # negative epochs too
        "host": {"name": f"h{i % 7}" if i % 11 else None}, "status": [200, 404, 500, 503][i % 4],
        "message": ["access denied", "ok", "Denied [x]", "what? *"][i % 4] if i % 13 else None,
        "bytes": (i * 7919) % 100_000 - 20_000 if i % 5 else None, "ok": i % 3 == 0,
        "ratio": (i % 17) / 8 - 1.0, "user": {"name": f"u{i % 23}"}, "event": {"code": [4625, 4624, 1][i % 3]},
        "big": 2**62 + i if i % 2 else -(2**62) - i, "zero": i % 9,
    }
    doc["tags"] = ["a", "b"] if i % 10 == 0 else "c"
    return doc


@pytest.fixture
async def store(server: TestServer, es: AsyncElasticsearch, settings: Settings) -> AsyncIterator[Any]:
    await create_and_load(es, "logs", MAPPINGS, [_doc(i) for i in range(N)])
    await create_and_load(es, "logs2", MAPPINGS, [{"host": {"name": "h1"}, "bytes": 5, "status": 500}])
    await create_and_load(es, "wide", MAPPINGS, [{"big": b} for b in (2**62, 2**62, -(2**62), -(2**62))])
    await es.indices.create(index="other", mappings={"properties": {"host": {"properties": {"name": {"type": "long"}}}}})
    await es.index(index="other", document={"host": {"name": 7}, "bytes": 12}, refresh=True)
    conn = query_connection(settings.db_path)
    yield server.app[keys.CATALOG], conn
    conn.close()


def run_esql(store: Any, query: str, pushdown: bool, control: Control | None = None,
             source_filter: Any = None) -> tuple[Any, ...]:
    """``query`` run over ``store`` (a catalog and a connection) on one path: what it
    answered (columns, rows, warnings, counters) and the first operator of its profile."""
    catalog, conn = store
    control = control or Control()
    result = run_plan(with_default_limit(parse(query, None)), catalog, conn, control, ESQL, source_filter,
                      QueryOptions(pushdown=pushdown))
    rows = list(result.rows)
    first = result.profile["drivers"][0]["operators"][0]["operator"]
    return (result.names, result.types, rows, result.warnings.messages, result.documents_found,
            result.is_partial), first


PUSHED = [
    "FROM logs | STATS n = COUNT(*) BY host.name | SORT n DESC | LIMIT 10",
    'FROM logs | WHERE status >= 500 AND message LIKE "*denied*" | STATS SUM(bytes), MAX(bytes) BY user.name',
    "FROM logs | STATS COUNT(*) BY hour = DATE_TRUNC(1 hour, @timestamp)",
    "FROM logs | STATS c = COUNT(bytes), lo = MIN(@timestamp) BY b = BUCKET(@timestamp, 1 day)",
    "FROM logs | EVAL kb = bytes / 1024.0 | STATS AVG(kb), COUNT_DISTINCT(user.name) BY event.code",
    "FROM logs | WHERE event.code == 4625 | SORT bytes DESC | KEEP @timestamp, host.name, bytes | LIMIT 20",
    "FROM logs | SORT host.name ASC NULLS FIRST, bytes | LIMIT 30",
    "FROM logs | SORT message DESC NULLS LAST, @timestamp DESC | KEEP message, @timestamp | LIMIT 7",
    'FROM logs | WHERE message LIKE "Denied [x]" OR message LIKE "what\\\\? \\\\*" | STATS COUNT(*) BY message',
    'FROM logs | WHERE message RLIKE "acc.ss d[e]nied" | STATS COUNT(*)',
    'FROM logs | WHERE host.name IN ("h1", "h2", null) AND NOT ok | LIMIT 50',
    "FROM logs | WHERE host.name IS NULL OR bytes IS NULL | KEEP host.name, bytes | LIMIT 100",
    'FROM logs | WHERE @timestamp >= "1970-01-01T00:00:00Z" AND @timestamp < "1970-01-01T06:00:00.000Z" | LIMIT 5',
    'FROM logs | WHERE @timestamp > "1970-01-01T01:00:00Z" AND @timestamp <= "1970-01-01T09:00:00Z" AND bytes > 0'
    ' | STATS COUNT(*), SUM(bytes)',
    'FROM logs | WHERE "2000-01-01" <= @timestamp | STATS COUNT(*)',  # no row in range: every slice skipped
    "FROM logs | WHERE ok == true | STATS MIN(ratio), MAX(ratio), MIN(ok), MAX(host.name)",
    "FROM logs | EVAL x = bytes * 3 - status, y = bytes % 7 | STATS SUM(x), SUM(y), COUNT(x) BY ok",
    "FROM logs | WHERE tags IS NOT NULL | KEEP tags, bytes | LIMIT 15",
    "FROM logs | STATS s = SUM(bytes), a = AVG(bytes), n = COUNT(*)",
    "FROM logs | STATS COUNT_DISTINCT(ratio), COUNT_DISTINCT(ok), COUNT_DISTINCT(host.name) BY status",
    "FROM logs | STATS COUNT_DISTINCT(bytes), COUNT_DISTINCT(@timestamp), COUNT_DISTINCT(message)",
    "FROM logs* | STATS COUNT(*), SUM(bytes) BY host.name",
    "FROM logs,other | WHERE bytes > 10 | STATS COUNT(*), MAX(bytes)",  # host.name: conflicting types
    "FROM logs,other | WHERE bytes < 20 | SORT bytes DESC | LIMIT 3",
    "FROM logs | WHERE bytes > 1000000 | STATS COUNT(*), SUM(bytes), AVG(bytes)",
    "FROM logs | EVAL half = ratio * 0.5 | WHERE half > 0 | LIMIT 0",
    "FROM logs METADATA _id | WHERE bytes < 0 | SORT bytes | KEEP _id, bytes | LIMIT 5",
]


@pytest.mark.parametrize("query", PUSHED)
async def test_a_pushed_construct_answers_as_the_python_path(store: Any, query: str) -> None:
    pushed, first = run_esql(store, query, True)
    python, scan = run_esql(store, query, False)
    assert first.startswith("SqliteQueryOperator[sql=SELECT"), first
    assert scan.startswith("ScanOperator")
    assert pushed == python


FALLBACKS = [
    "FROM logs | WHERE tags == \"a\" | STATS COUNT(*)",  # a multi-valued column: warnings, null
    "FROM logs | STATS COUNT(*) BY tags",  # a multi-value splits groups
    "FROM logs | SORT tags | LIMIT 5",  # a multi-value sorts by its smallest value
    "FROM logs | EVAL x = big * 4 | STATS SUM(x)",  # long overflow: null and a warning
    "FROM logs | EVAL d = bytes / zero | STATS SUM(d)",  # division by zero: null and a warning
    "FROM logs | EVAL d = bytes % zero | STATS MAX(d) BY ok",
    "FROM logs | EVAL d = bytes / (status - 200) | STATS SUM(d) BY status",
    "FROM logs,other | STATS COUNT(*) BY host.name",  # an unsupported (conflicting) field stays in Python
    "FROM wide | STATS SUM(big)",  # SQLite's sum() overflows on the way; ES|QL's final sum fits
    "FROM logs | WHERE big > 0 | STATS SUM(big)",  # the final sum overflows: null and a warning
    "FROM logs | STATS SUM(ratio)",  # doubles: compensated summation in Python
    "FROM logs | EVAL h = big / 2.0 | STATS AVG(h)",  # past 2**53: the exact range of doubles
]


@pytest.mark.parametrize("query", FALLBACKS)
async def test_what_sql_would_answer_differently_runs_in_python(store: Any, query: str) -> None:
    pushed, first = run_esql(store, query, True)
    python, _ = run_esql(store, query, False)
    assert first.startswith("ScanOperator"), first
    assert pushed == python


async def test_an_overflow_guard_reruns_the_query_in_python_with_the_counters_reset(store: Any) -> None:
    (names, types, rows, warnings, found, partial), first = run_esql(store, "FROM logs | EVAL x = big * 4 | STATS SUM(x)",
                                                                 True)
    assert first.startswith("ScanOperator")
    assert rows == [[None]] and found == N and not partial
    assert any("long overflow" in w for w in warnings)


async def test_a_stop_gives_exact_partial_stats_over_the_slices_read(store: Any) -> None:
    query = "FROM logs | STATS n = COUNT(*), s = SUM(bytes), d = COUNT_DISTINCT(user.name) BY ok"
    (names, _, rows, _, found, partial), first = run_esql(store, query, True, StopAfter(2))
    assert first.startswith("SqliteQueryOperator") and partial and found == 1000
    docs = [_doc(i) for i in range(found)]  # rowids follow the bulk's order
    by = {r[names.index("ok")]: r for r in rows}
    for ok in (True, False):
        part = [d for d in docs if d["ok"] == ok]
        assert by[ok][names.index("n")] == len(part)
        assert by[ok][names.index("s")] == sum(d["bytes"] for d in part if d["bytes"] is not None)
        assert by[ok][names.index("d")] == len({d["user"]["name"] for d in part})
    assert sum(r[names.index("n")] for r in rows) == found


async def test_a_cancel_interrupts_the_running_statement(store: Any) -> None:
    catalog, conn = store
    control = Control(slice_rows=N, adaptive=False)
    calls = []

    def handler() -> int:
        calls.append(1)
        if len(calls) == 3:
            control.cancel("by user")
        return control.interrupted()

    conn.set_progress_handler(handler, 100)
    try:
        with pytest.raises(sqlite3.OperationalError, match="interrupted"):
            result = run_plan(parse('FROM logs | WHERE message RLIKE ".*den.*" | STATS COUNT(*)', None), catalog,
                              conn, control, ESQL)
            list(result.rows)
        assert control.cancelled and control.rows_scanned == 0
        with pytest.raises(Cancelled):
            control.proceed()
    finally:
        conn.set_progress_handler(None, 0)


DSL_PUSHED = [
    {"term": {"host.name": "h3"}},
    {"terms": {"status": [500, "503"]}},
    {"range": {"bytes": {"gte": 0, "lt": 5000}}},
    {"range": {"@timestamp": {"gte": "1970-01-01||+1h", "lte": "1970-01-01T05:00:00Z"}}},
    {"range": {"host.name": {"gt": "h2"}}},
    {"exists": {"field": "host"}},
    {"exists": {"field": "tags"}},
    {"bool": {"must": [{"term": {"ok": True}}], "must_not": [{"terms": {"host.name": ["h1", "h2"]}}],
              "should": [{"term": {"status": 500}}, {"range": {"bytes": {"lt": 0}}}], "minimum_should_match": 1}},
    {"bool": {"must_not": [{"term": {"message": "ok"}}]}},
    {"match_none": {}},
]


@pytest.mark.parametrize("dsl", DSL_PUSHED)
async def test_a_query_dsl_filter_is_pushed_exactly(store: Any, dsl: Any) -> None:
    query = "FROM logs | STATS n = COUNT(*), s = SUM(bytes) BY host.name"
    pushed, first = run_esql(store, query, True, source_filter=dsl)
    python, _ = run_esql(store, query, False, source_filter=dsl)
    assert first.startswith("SqliteQueryOperator") and pushed == python


async def test_a_query_dsl_filter_on_a_multi_valued_field_runs_in_python(store: Any) -> None:
    dsl = {"term": {"tags": "a"}}
    pushed, first = run_esql(store, "FROM logs | STATS COUNT(*)", True, source_filter=dsl)
    assert first.startswith("ScanOperator")
    assert pushed == run_esql(store, "FROM logs | STATS COUNT(*)", False, source_filter=dsl)[0]
    assert pushed[2] == [[N // 10]]


# --- through the HTTP API, with the official client --------------------------------------

@pytest.fixture
async def python_es(settings: Settings) -> AsyncIterator[AsyncElasticsearch]:
    """A second server, with the pushdown off, over the same documents."""
    from dataclasses import replace
    off = EsTestServer(create_app(replace(settings, data_dir=settings.data_dir.parent / "off", query_pushdown=False)))
    await off.start_server()
    client = AsyncElasticsearch(str(off.make_url("/")), request_timeout=30)
    await create_and_load(client, "logs", MAPPINGS, [_doc(i) for i in range(N)])
    yield client
    await client.close()
    await off.close()


async def test_the_profile_names_the_pushed_sql_and_the_python_operators_after_it(
        store: Any, es: AsyncElasticsearch, python_es: AsyncElasticsearch) -> None:
    query = "FROM logs | STATS n = COUNT(*) BY host.name | SORT n DESC, host.name | LIMIT 3"
    pushed = (await es.esql.query(query=query, profile=True)).body
    operators = [o["operator"] for o in pushed["profile"]["drivers"][0]["operators"]]
    assert operators[0].startswith("SqliteQueryOperator[sql=SELECT") and "GROUP BY" in operators[0]
    assert operators[1:] == ["SortOperator", "LimitOperator"]
    python = (await python_es.esql.query(query=query, profile=True)).body
    assert python["profile"]["drivers"][0]["operators"][0]["operator"].startswith("ScanOperator")
    assert "profile" not in (await es.esql.query(query=query)).body
    for key in ("columns", "values", "documents_found", "is_partial"):
        assert pushed[key] == python[key]
    row = (await es.esql.query(query="ROW a = 1 | EVAL b = a + 1 | LIMIT 1", profile=True)).body
    assert [o["operator"] for o in row["profile"]["drivers"][0]["operators"]] == \
        ["RowOperator", "EvalOperator", "LimitOperator"]
