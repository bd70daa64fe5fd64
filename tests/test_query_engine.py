"""The shared engine below the languages: pipelines, multi-input plans, the dialect seam,
run directly on the real SQLite file a real server wrote."""

from __future__ import annotations

import sqlite3
from typing import Any

from elasticsearch import AsyncElasticsearch

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
