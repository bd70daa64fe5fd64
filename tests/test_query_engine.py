"""The shared engine below the languages: pipelines, multi-input plans, the dialect seam,
run directly on the real SQLite file a real server wrote."""

from __future__ import annotations

import sqlite3
import warnings
from typing import Any

import orjson

from elasticsearch import AsyncElasticsearch, ElasticsearchWarning

from service import keys
from service.query import plan as p
from service.query.control import Control
from service.query.esql.dialect import ESQL
from service.query.execute import append, run_plan
from service.query.expr import Binary, Call, Column, Literal, Star


async def _load(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="web", mappings={"properties": {"host": {"type": "keyword"},
                                                                   "bytes": {"type": "long"}}})
    await es.indices.create(index="auth", mappings={"properties": {"host": {"type": "keyword"},
                                                                    "user": {"type": "keyword"}}})
    ops: list[dict[str, Any]] = []
    for i, (host, size) in enumerate([("a", 10), ("b", 300), ("c", 20)]):
        ops += [{"index": {"_index": "web", "_id": f"w{i}"}}, {"host": host, "bytes": size}]
    for i, (host, user) in enumerate([("a", "ann"), ("d", "bob")]):
        ops += [{"index": {"_index": "auth", "_id": f"a{i}"}}, {"host": host, "user": user}]
    await es.bulk(operations=ops, refresh=True)


def _run(server: Any, steps: tuple[p.Step, ...]) -> tuple[list[str], list[str], list[list[Any]]]:
    settings = server.app[keys.SETTINGS]
    with sqlite3.connect(settings.db_path) as conn:
        result = run_plan(p.Plan(steps), server.app[keys.CATALOG], conn, Control(), ESQL)
        return result.names, result.types, list(result.rows)


async def test_combine_appends_pipelines_with_the_union_of_their_columns(es, server) -> None:
    await _load(es)
    big_web = (p.Source(("web",)), p.Filter(Binary(">=", Column("bytes"), Literal(20, "integer"))))
    auth = (p.Source(("auth",)),)
    steps = (p.Combine((big_web, auth), append), p.Sort((p.Order(Column("host")),)), p.Limit(10))
    names, types, rows = _run(server, steps)
    assert (names, types) == (["bytes", "host", "user"], ["long", "keyword", "keyword"])
    assert rows == [[None, "a", "ann"], [300, "b", None], [20, "c", None], [None, "d", "bob"]]


async def test_a_pipeline_inside_a_combine_keeps_its_own_steps(es, server) -> None:
    await _load(es)
    counted = (p.Source(("web",)), p.Aggregate((("n", Call("COUNT", (Star(),)), None),), ()))
    names, _, rows = _run(server, (p.Combine((counted, counted), append),))
    assert names == ["n"] and rows == [[3], [3]]



async def test_append_marks_a_column_of_two_types_unsupported(es, server) -> None:
    await _load(es)
    as_text = (p.Source(("auth",)), p.Eval((("bytes", Literal("big", "keyword")),)))
    names, types, rows = _run(server, (p.Combine(((p.Source(("web",)),), as_text), append), p.Limit(1)))
    assert types[names.index("bytes")] == "unsupported" and rows[0][names.index("bytes")] is None


async def _load_events(es: AsyncElasticsearch) -> None:
    mappings = {"properties": {"@timestamp": {"type": "date"}, "seq": {"type": "long"}, "kind": {"type": "keyword"}}}
    for index in ("ev1", "ev2"):
        await es.indices.create(index=index, mappings=mappings)
    # (index, time, tiebreaker, kind): written out of time order, ties on time across indices
    events = [("ev1", 30, 1, "x"), ("ev1", 10, 2, "y"), ("ev2", 20, 1, "x"), ("ev2", 10, 1, "x"),
              ("ev1", 20, None, "y"), ("ev2", 40, 5, "y"), ("ev1", 10, 2, "x")]
    ops: list[dict[str, Any]] = []
    for i, (index, ts, seq, kind) in enumerate(events):
        doc = {"@timestamp": ts, "kind": kind, **({"seq": seq} if seq is not None else {})}
        ops += [{"index": {"_index": index, "_id": f"e{i}"}}, doc]
    ops += [{"index": {"_index": "ev1", "_id": "no-time"}}, {"kind": "x"}]
    await es.bulk(operations=ops, refresh=True)


def _ids(server: Any, source: p.Source, slice_rows: int = 2) -> list[str]:
    settings = server.app[keys.SETTINGS]
    with sqlite3.connect(settings.db_path) as conn:
        control = Control(slice_rows=slice_rows, adaptive=False)
        result = run_plan(p.Plan((source,)), server.app[keys.CATALOG], conn, control, ESQL)
        names = result.names
        return [row[names.index("_id")] for row in result.rows]


async def test_time_ordered_scan_merges_indices_by_time_tiebreaker_then_insertion(es, server) -> None:
    await _load_events(es)
    order = p.ScanOrder("@timestamp", tiebreaker="seq")
    source = p.Source(("ev*",), ("_id",), order=order)
    # t=10: e3 (seq 1), then seq 2: e1 before e6 (same index, insertion order); t=20: seq 1, then null
    assert _ids(server, source) == ["e3", "e1", "e6", "e2", "e4", "e0", "e5"]
    descending = p.Source(("ev*",), ("_id",), order=p.ScanOrder("@timestamp", descending=True, tiebreaker="seq"))
    assert _ids(server, descending) == ["e5", "e0", "e2", "e4", "e6", "e1", "e3"]


async def test_source_time_range_predicate_and_whole_documents(es, server) -> None:
    await _load_events(es)
    source = p.Source(("ev*",), ("_id",), with_source=True, order=p.ScanOrder("@timestamp"),
                      predicate=Binary("==", Column("kind"), Literal("x", "keyword")),
                      time_range=p.TimeRange("@timestamp", gte=10, lt=30))
    settings = server.app[keys.SETTINGS]
    with sqlite3.connect(settings.db_path) as conn:
        result = run_plan(p.Plan((source,)), server.app[keys.CATALOG], conn, Control(), ESQL)
        rows = list(result.rows)
    assert result.names[-2:] == ["_id", "_source"] and result.types[-1] == "_source"
    # no tiebreaker: equal times go by index (ev1 before ev2)
    assert [(r[-2], orjson.loads(r[-1])) for r in rows] == [("e6", {"@timestamp": 10, "kind": "x", "seq": 2}),
                                              ("e3", {"@timestamp": 10, "kind": "x", "seq": 1}),
                                              ("e2", {"@timestamp": 20, "kind": "x", "seq": 1})]


async def _warnings(es: AsyncElasticsearch, query: str) -> tuple[list[list[Any]], str]:
    """The values of ``query`` and the warnings the client saw (it raises them as Python warnings)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", ElasticsearchWarning)
        resp = await es.esql.query(query=query + " | LIMIT 10")
    return resp["values"], " ".join(str(w.message) for w in seen)


async def test_unused_eval_columns_are_not_computed_nor_warn(es, server) -> None:
    await es.index(index="big", document={"n": 2**63 - 1, "k": "a"}, refresh=True)
    values, warning = await _warnings(es, "FROM big | EVAL x = n + 1, y = 2 | STATS c = COUNT(*)")
    assert values == [[1]] and "n + 1" not in warning
    # a kept column is computed, with the columns it reads from the same EVAL
    values, warning = await _warnings(es, "FROM big | EVAL x = n + 1, y = 2, z = y | KEEP z, x")
    assert values == [[2, None]] and "evaluation of [n + 1] failed" in warning


async def test_a_where_runs_before_an_eval_it_does_not_read(es, server) -> None:
    await es.index(index="big", document={"n": 2**63 - 1, "k": "a"}, refresh=True)
    await es.index(index="big", document={"n": 1, "k": "b"}, refresh=True)
    values, warning = await _warnings(es, 'FROM big | EVAL x = n + 1 | WHERE k == "b" | KEEP x')
    assert values == [[2]] and "n + 1" not in warning
    values, warning = await _warnings(es, "FROM big | EVAL x = n + 1 | WHERE x > 0 | KEEP x")
    assert values == [[2]] and "evaluation of [n + 1] failed" in warning
