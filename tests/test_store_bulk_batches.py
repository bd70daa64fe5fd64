"""``_bulk`` writes many rows to an INSERT statement: the result must be the one separate
statements give, row by row, across statement boundaries and schema changes."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch


async def test_rows_batched_into_statements_apply_in_order(es: AsyncElasticsearch) -> None:
    ops: list[dict] = []
    for i in range(1000):  # ids repeat across statements; a new field appears part-way
        ops += [{"index": {"_id": str(i % 7)}}, {"n": i, **({"late": f"v{i}"} if i > 500 else {})}]
    ops += [{"delete": {"_id": "3"}}, {"index": {"_id": "3"}}, {"n": -1}]
    resp = await es.bulk(index="t", operations=ops, refresh=True)
    assert not resp["errors"]
    assert [item["index"]["_version"] for item in resp["items"][:14]] == [1] * 7 + [2] * 7
    assert (await es.count(index="t"))["count"] == 7
    for doc_id in map(str, range(7)):
        last = max(i for i in range(1000) if i % 7 == int(doc_id))
        got = await es.get(index="t", id=doc_id)
        expected = {"n": -1} if doc_id == "3" else {"n": last, "late": f"v{last}"}
        assert got["_source"] == expected
    result = await es.esql.query(query="FROM t | STATS s = SUM(n), l = COUNT(late) | LIMIT 1")
    assert result["values"] == [[sum(max(i for i in range(1000) if i % 7 == k) for k in range(7) if k != 3) - 1, 6]]
