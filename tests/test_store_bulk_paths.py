"""The shortcuts of ``_bulk`` ingest must give exactly what the general path gives: an action
line read once for all the actions that repeat it, rows mapped ahead of the transaction,
dates in the shape ES prints parsed directly, ids generated a block at a time."""

from __future__ import annotations

import base64
import re
import time

import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch

from service import keys
from service.store.documents import BulkOp, map_ahead

NDJSON = {"Content-Type": "application/x-ndjson"}


async def post_bulk(http: TestClient, lines: list[bytes], **params: str) -> tuple[int, dict]:
    resp = await http.post("/_bulk", data=b"\n".join(lines) + b"\n", headers=NDJSON, params=params)
    return resp.status, await resp.json()


async def test_a_repeated_action_line_reads_every_document(http: TestClient, es: AsyncElasticsearch) -> None:
    action = b'{"index":{"_index":"r"}}'
    documents = [b'{"n":1}', b'{not json', b"", b"[1]", b'{"n":"x"}', b'{"n":2,"new":"f"}', b'{"n":[3,4]}']
    status, body = await post_bulk(http, [line for doc in documents for line in (action, doc)])
    assert status == 200 and body["errors"] is True
    results = [item["index"] for item in body["items"]]
    assert [r["status"] for r in results] == [201, 400, 400, 400, 400, 201, 201]
    assert [r["error"]["type"] for r in results if "error" in r] == ["document_parsing_exception"] * 4
    assert results[2]["error"]["reason"] == "[0:0] failed to parse, document is empty"
    assert [r["_seq_no"] for r in results if "error" not in r] == [0, 1, 2]
    await es.indices.refresh(index="r")
    got = await es.esql.query(query="FROM r | STATS c = COUNT(*), s = SUM(n), f = COUNT(new) | LIMIT 1")
    assert got["values"] == [[3, 10, 1]]


async def test_a_repeated_action_line_is_checked_for_every_action(http: TestClient) -> None:
    """Problems found in an action line are listed for each action that repeats it, as before."""
    status, body = await post_bulk(http, [b'{"index":{}}', b'{"a":1}'] * 2)
    assert status == 400
    assert body["error"]["reason"] == "Validation Failed: 1: index is missing;2: index is missing;"
    status, body = await post_bulk(http, [b'{"index":{"version_type":"external"}}', b"{}"] * 2)
    assert status == 400
    assert body["error"]["reason"] == (
        "Validation Failed: 1: index is missing;2: an id must be provided if version type or value are set;"
        "3: illegal version value [-3] for version type [EXTERNAL];4: index is missing;")
    status, body = await post_bulk(http, [b'{"index":{"_index":"e","_id":""}}', b'{"a":1}'] * 2)
    assert status == 200
    assert [item["index"]["error"]["reason"] for item in body["items"]] == [
        "if _id is specified it must not be empty"] * 2
    status, body = await post_bulk(http, [b'{"index":{"_index":"e"}}', b'{"a":1}'] * 2, require_alias="true")
    assert [item["index"]["error"]["type"] for item in body["items"]] == ["index_not_found_exception"] * 2
    assert (await http.head("/e")).status == 404


async def test_rows_mapped_ahead_of_a_mapping_change_are_mapped_again(es: AsyncElasticsearch,
                                                                      server: TestServer) -> None:
    """A row mapped ahead against an index's old tree is never stored: not after a column is
    added, nor once the index was deleted and created again with other columns."""
    await es.indices.create(index="m", mappings={"properties": {"a": {"type": "long"}}})
    store, catalog = server.app[keys.DOCUMENTS], server.app[keys.CATALOG]

    def mapped_now(ops: list[BulkOp]) -> list[BulkOp]:
        index = catalog.get("m")
        map_ahead(ops, {"m": (index.tree, 4 + len(index.columns))})
        assert all(op.row is not None for op in ops)
        return ops

    ops = mapped_now([BulkOp("index", "m", None, source={"a": i}, raw=b'{"a":%d}' % i) for i in range(3)])
    await es.indices.put_mapping(index="m", properties={"b": {"type": "keyword"}})
    assert [next(iter(item.values()))["status"] for item in (await store.bulk(ops)).items] == [201] * 3
    ops = mapped_now([BulkOp("index", "m", str(i), source={"a": i}, raw=b'{"a":%d}' % i) for i in range(3)])
    await es.indices.delete(index="m")
    await es.indices.create(index="m", mappings={"properties": {"z": {"type": "keyword"}, "a": {"type": "long"}}})
    assert [next(iter(item.values()))["status"] for item in (await store.bulk(ops)).items] == [201] * 3
    got = await es.esql.query(query="FROM m | SORT a | KEEP a, z | LIMIT 10")
    assert got["values"] == [[0, None], [1, None], [2, None]]


DATE_FIELDS = {
    "plain": {"type": "date"},
    "iso": {"type": "date", "format": "strict_date_optional_time"},
    "millis_first": {"type": "date", "format": "epoch_millis||strict_date_optional_time"},
    "pattern": {"type": "date", "format": "yyyy-MM-dd'T'HH:mm:ss.SSSX"},
    "nanos": {"type": "date_nanos"},
}


@pytest.mark.parametrize("text,ms", [
    ("2024-05-01T12:34:56.789Z", 1_714_566_896_789),
    ("1969-12-31T23:59:59.999Z", -1),
    ("0001-01-01T00:00:00.000Z", -62_135_596_800_000),
    ("0000-01-01T00:00:00.000Z", -62_167_219_200_000),  # beyond datetime's years: the full parser's
    ("2024-02-29T23:59:59.000Z", 1_709_251_199_000),
])
async def test_dates_in_the_shape_es_prints(es: AsyncElasticsearch, text: str, ms: int) -> None:
    fields = {name: spec for name, spec in DATE_FIELDS.items() if ms >= 0 or name != "nanos"}  # nanos: from 1970
    await es.indices.create(index="dates", mappings={"properties": fields})
    await es.index(index="dates", id="1", document={name: text for name in fields}, refresh=True)
    got = await es.esql.query(query="FROM dates | EVAL " + ", ".join(
        f"{name}_ms = TO_LONG({name})" for name in fields) + " | KEEP *_ms | LIMIT 1")
    expected = {f"{name}_ms": ms * 1_000_000 if name == "nanos" else ms for name in fields}
    assert dict(zip((c["name"] for c in got["columns"]), got["values"][0])) == expected


@pytest.mark.parametrize("text", ["2024-02-30T00:00:00.000Z", "2024-05-01T24:00:00.000Z", "2024-13-01T00:00:00.000Z",
                                  "2024-05-01T00:00:60.000Z", "2024-00-10T00:00:00.000Z"])
async def test_impossible_dates_in_that_shape_are_refused_as_before(es: AsyncElasticsearch, text: str) -> None:
    await es.indices.create(index="dates", mappings={"properties": {"d": {"type": "date"}}})
    resp = await es.bulk(index="dates", operations=[{"index": {"_id": "1"}}, {"d": text}])
    error = resp["items"][0]["index"]["error"]
    assert error["reason"] == (f"failed to parse field [d] of type [date] in document with id '1'. "
                               f"Preview of field's value: '{text}'")
    assert error["caused_by"] == {"type": "illegal_argument_exception", "reason": (
        f"failed to parse date field [{text}] with format [strict_date_optional_time||epoch_millis]")}


async def test_generated_ids_are_unique_and_start_with_the_time(es: AsyncElasticsearch) -> None:
    before = time.time_ns() // 1_000_000
    resp = await es.bulk(index="ids", operations=[line for i in range(600) for line in ({"index": {}}, {"n": i})])
    after = time.time_ns() // 1_000_000
    ids = [item["index"]["_id"] for item in resp["items"]]
    assert len(set(ids)) == 600 and all(re.fullmatch(r"[A-Za-z0-9_-]{20}", i) for i in ids)
    stamps = [int.from_bytes(base64.urlsafe_b64decode(i)[:6], "big") for i in ids]
    assert all(before <= stamp <= after for stamp in stamps)
    await es.indices.refresh(index="ids")
    got = await es.get(index="ids", id=ids[437])
    assert orjson.loads(orjson.dumps(got["_source"])) == {"n": 437}
