"""POST /_query through the official client: results, formats, params and errors."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError


@pytest.fixture
async def logs(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await es.indices.create(index="logs", mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"properties": {"name": {"type": "keyword"}}},
        "bytes": {"type": "long"}, "tags": {"type": "keyword"}}})
    await es.bulk(index="logs", operations=[
        {"index": {}}, {"@timestamp": "2024-05-01T12:00:00Z", "host": {"name": "a"}, "bytes": 10, "tags": ["x", "y"]},
        {"index": {}}, {"@timestamp": "2024-05-01T12:01:00Z", "host": {"name": "b"}, "bytes": 20},
        {"index": {}}, {"@timestamp": "2024-05-01T12:02:00Z", "host": {"name": "a"}, "bytes": 30},
    ])
    return es


async def test_row(es: AsyncElasticsearch) -> None:
    with pytest.warns(Warning, match=r"No limit defined, adding default limit of \[1000\]"):
        resp = await es.esql.query(query='ROW a = 1, b = "two", c = null | EVAL d = a + 1')
    assert resp["columns"] == [{"name": "a", "type": "integer"}, {"name": "b", "type": "keyword"},
                               {"name": "c", "type": "null"}, {"name": "d", "type": "integer"}]
    assert resp["values"] == [[1, "two", None, 2]]
    assert resp["is_partial"] is False and "took" in resp.body
    assert "x-elasticsearch-async-id" not in resp.meta.headers


async def test_stats_by_sorted(logs: AsyncElasticsearch) -> None:
    resp = await logs.esql.query(query="FROM logs | STATS n = COUNT(*), total = SUM(bytes) BY host.name | SORT n DESC | LIMIT 5")
    assert resp["columns"] == [{"name": "n", "type": "long"}, {"name": "total", "type": "long"},
                               {"name": "host.name", "type": "keyword"}]
    assert resp["values"] == [[2, 40, "a"], [1, 20, "b"]]
    assert resp["documents_found"] == 3


async def test_stats_sees_every_column_its_steps_name(logs: AsyncElasticsearch) -> None:
    """Only the columns a plan names before its STATS or KEEP are read: renamed, expanded,
    evaluated, kept."""
    resp = await logs.esql.query(query="FROM logs | RENAME bytes AS b | MV_EXPAND tags | WHERE b > 5 "
                                       "| EVAL h = host.name | STATS s = SUM(b), t = COUNT(tags) BY h | SORT h | LIMIT 5")
    assert resp["values"] == [[50, 2, "a"], [20, 0, "b"]]
    kept = await logs.esql.query(query="FROM logs | RENAME bytes AS b | WHERE b > 15 "
                                       "| KEEP b, host* | SORT b DESC | LIMIT 5")
    assert [c["name"] for c in kept["columns"]] == ["b", "host.name"]
    assert kept["values"] == [[30, "a"], [20, "b"]]


async def test_stats_by_a_multi_value_counts_a_row_once_per_distinct_value(es: AsyncElasticsearch) -> None:
    """As Elasticsearch's block hash dedupes each multi-valued position before grouping."""
    await es.bulk(index="dups", refresh=True, operations=[
        {"index": {}}, {"tag": ["a", "b", "a"], "n": [1, 1, 2]}, {"index": {}}, {"tag": "b", "n": 2}])
    resp = await es.esql.query(query="FROM dups | STATS c = COUNT(*) BY tag, n | SORT tag, n | LIMIT 10")
    assert resp["values"] == [[1, "a", 1], [1, "a", 2], [1, "b", 1], [2, "b", 2]]


async def test_from_returns_sorted_columns_and_dates(logs: AsyncElasticsearch) -> None:
    resp = await logs.esql.query(query="FROM logs | SORT @timestamp | LIMIT 1")
    assert [c["name"] for c in resp["columns"]] == ["@timestamp", "bytes", "host.name", "tags"]
    assert resp["values"] == [["2024-05-01T12:00:00.000Z", 10, "a", ["x", "y"]]]


async def test_multi_value_warning(logs: AsyncElasticsearch, http) -> None:
    query = "FROM logs | SORT bytes | EVAL n = LENGTH(tags) | KEEP n | LIMIT 1"
    with pytest.warns(Warning, match="evaluation of \\[LENGTH\\(tags\\)\\] failed"):
        resp = await logs.esql.query(query=query)
    assert resp["values"] == [[None]]
    raw = await http.post("/_query", json={"query": query})
    assert raw.headers.getall("Warning") == [
        '299 Elasticsearch-9.2.0-esquire "Line 1:35: evaluation of [LENGTH(tags)] failed, treating result as '
        'null. Only first 20 failures recorded."',
        '299 Elasticsearch-9.2.0-esquire "Line 1:35: java.lang.IllegalArgumentException: single-value function '
        'encountered multi-value"']


async def test_columnar_and_params(logs: AsyncElasticsearch) -> None:
    resp = await logs.esql.query(query="FROM logs | WHERE bytes > ? | KEEP bytes | SORT bytes | LIMIT 5", params=[15],
                                 columnar=True)
    assert resp["values"] == [[20, 30]]
    resp = await logs.esql.query(query="FROM logs | WHERE bytes > ?min | STATS c = COUNT(*) | LIMIT 1",
                                 params=[{"min": 15}])
    assert resp["values"] == [[2]]


async def test_csv_and_txt(logs: AsyncElasticsearch) -> None:
    resp = await logs.esql.query(query="FROM logs | KEEP host.name, bytes | SORT bytes | LIMIT 2", format="csv")
    assert resp.body == "host.name,bytes\r\na,10\r\nb,20\r\n"
    resp = await logs.esql.query(query="FROM logs | KEEP bytes | SORT bytes | LIMIT 1", format="txt")
    assert resp.body.splitlines()[2].strip() == "10"


async def test_parsing_exception(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.esql.query(query="FORM logs")
    assert info.value.error == "parsing_exception"
    assert info.value.body["error"]["reason"].startswith("line 1:1: mismatched input 'FORM'")


async def test_verification_errors(logs: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await logs.esql.query(query="FROM logs | EVAL x = nope + 1")
    assert info.value.body["error"]["reason"] == "Found 1 problem\nline 1:22: Unknown column [nope]"
    with pytest.raises(BadRequestError) as info:
        await logs.esql.query(query="FROM missing")
    assert info.value.body["error"]["reason"] == "Found 1 problem\nline 1:6: Unknown index [missing]"
    with pytest.raises(NotFoundError) as info:
        await logs.esql.query(query="FROM logs, missing")
    assert info.value.error == "index_not_found_exception"


async def test_bad_requests(http) -> None:
    resp = await http.post("/_query", json={"query": "ROW a = 1", "keep_alive": "1m"})
    assert resp.status == 400
    assert (await resp.json())["error"]["reason"] == "[1:2] [esql/query] unknown field [keep_alive]"
    resp = await http.post("/_query", json={"query": " "})
    assert (await resp.json())["error"]["reason"] == "Validation Failed: 1: [query] is required;"
    resp = await http.post("/_query", params={"format": "txt"}, json={"query": "ROW a = 1", "columnar": True})
    assert resp.status == 400
    resp = await http.post("/_query", params={"format": "json", "delimiter": ";"}, json={"query": "ROW a = 1"})
    assert resp.status == 400
