"""Document APIs through the official client: _bulk, helpers.bulk, index, get, delete, update."""

from __future__ import annotations

import sqlite3

import orjson
import pytest
from elasticsearch import AsyncElasticsearch, BadRequestError, ConflictError, NotFoundError
from elasticsearch.helpers import async_bulk

from service.settings import Settings

NDJSON = {"Content-Type": "application/x-ndjson"}


async def test_index_get_delete(es: AsyncElasticsearch) -> None:
    resp = await es.index(index="docs", id="1", document={"msg": "hello", "n": 1})
    assert resp.meta.status == 201
    assert resp.body == {"_index": "docs", "_id": "1", "_version": 1, "result": "created",
                         "_shards": {"total": 2, "successful": 1, "failed": 0}, "_seq_no": 0, "_primary_term": 1}
    resp = await es.index(index="docs", id="1", document={"msg": "again", "n": 2})
    assert resp.meta.status == 200 and resp["result"] == "updated" and resp["_version"] == 2
    doc = await es.get(index="docs", id="1")
    assert doc["_source"] == {"msg": "again", "n": 2} and doc["found"] is True and doc["_version"] == 2
    assert (await es.delete(index="docs", id="1"))["result"] == "deleted"
    with pytest.raises(NotFoundError) as info:
        await es.get(index="docs", id="1")
    assert info.value.body == {"_index": "docs", "_id": "1", "found": False}
    with pytest.raises(NotFoundError) as info:
        await es.delete(index="docs", id="1")
    assert info.value.body["result"] == "not_found"


async def test_auto_id_and_create(es: AsyncElasticsearch) -> None:
    resp = await es.index(index="auto", document={"a": 1})
    assert len(resp["_id"]) == 20 and resp["result"] == "created"
    await es.create(index="auto", id="x", document={"a": 2})
    with pytest.raises(ConflictError) as info:
        await es.create(index="auto", id="x", document={"a": 3})
    assert info.value.body["error"]["reason"] == "[x]: version conflict, document already exists (current version [1])"
    assert (await es.get(index="auto", id="x"))["_source"] == {"a": 2}


async def test_get_from_missing_index(es: AsyncElasticsearch) -> None:
    with pytest.raises(NotFoundError) as info:
        await es.get(index="none", id="1")
    assert info.value.error == "index_not_found_exception"


async def test_bulk_items_and_errors_flag(es: AsyncElasticsearch) -> None:
    resp = await es.bulk(operations=[
        {"index": {"_index": "b", "_id": "1"}}, {"f": 1},
        {"create": {"_index": "b", "_id": "1"}}, {"f": 2},
        {"update": {"_index": "b", "_id": "5"}}, {"doc": {"f": 3}},
        {"delete": {"_index": "b", "_id": "2"}},
        {"update": {"_index": "b", "_id": "1"}}, {"doc": {"g": "x"}},
        {"update": {"_index": "b", "_id": "1"}}, {"doc": {"g": "x"}},
        {"update": {"_index": "b", "_id": "6"}}, {"doc": {"f": 6}, "doc_as_upsert": True},
        {"delete": {"_index": "b", "_id": "1"}},
    ])
    assert resp["errors"] is True
    items = [(next(iter(i)), next(iter(i.values()))) for i in resp["items"]]
    assert [(a, i["status"]) for a, i in items] == [
        ("index", 201), ("create", 409), ("update", 404), ("delete", 404), ("update", 200), ("update", 200),
        ("update", 201), ("delete", 200)]
    assert items[1][1]["error"]["type"] == "version_conflict_engine_exception"
    assert items[2][1]["error"] == {"type": "document_missing_exception", "reason": "[5]: document missing",
                                    "index_uuid": items[2][1]["error"]["index_uuid"], "shard": "0", "index": "b"}
    assert items[3][1]["result"] == "not_found" and "error" not in items[3][1]
    assert items[4][1]["result"] == "updated" and items[4][1]["_version"] == 2
    assert items[5][1]["result"] == "noop" and items[5][1]["_version"] == 2
    assert items[6][1]["result"] == "created"
    assert items[7][1]["result"] == "deleted" and items[7][1]["_version"] == 3
    assert (await es.get(index="b", id="6"))["_source"] == {"f": 6}


async def test_bulk_without_errors(es: AsyncElasticsearch) -> None:
    resp = await es.bulk(operations=[{"index": {"_index": "ok"}}, {"a": 1}, {"index": {}}, {"a": 2}], index="ok")
    assert resp["errors"] is False and len(resp["items"]) == 2


async def test_helpers_bulk(es: AsyncElasticsearch) -> None:
    actions = ({"_index": "helped", "_id": str(i), "_source": {"n": i, "msg": f"line {i}"}} for i in range(1200))
    ok, errors = await async_bulk(es, actions, chunk_size=500)
    assert (ok, errors) == (1200, [])
    assert (await es.count(index="helped"))["count"] == 1200
    assert (await es.get(index="helped", id="1199"))["_source"]["n"] == 1199


async def test_a_bad_document_fails_only_its_item_and_changes_nothing(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="typed", mappings={"properties": {"n": {"type": "integer"}}})
    resp = await es.bulk(operations=[
        {"index": {"_index": "typed", "_id": "good"}}, {"n": 5},
        {"index": {"_index": "typed", "_id": "bad"}}, {"n": "abc", "extra": "field"},
    ])
    bad = resp["items"][1]["index"]
    assert bad["status"] == 400
    assert bad["error"]["type"] == "document_parsing_exception"
    assert bad["error"]["reason"] == ("failed to parse field [n] of type [integer] in document with id 'bad'. "
                                      "Preview of field's value: 'abc'")
    props = (await es.indices.get_mapping(index="typed"))["typed"]["mappings"]["properties"]
    assert props == {"n": {"type": "integer"}}, "a rejected document must not add mappings"
    with pytest.raises(NotFoundError):
        await es.get(index="typed", id="bad")


async def test_out_of_range_and_coercion(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="ranges", mappings={"properties": {"i": {"type": "integer"}, "b": {"type": "byte"}}})
    resp = await es.bulk(operations=[
        {"index": {"_index": "ranges", "_id": "1"}}, {"i": "42", "b": 1.9},
        {"index": {"_index": "ranges", "_id": "2"}}, {"b": 300},
    ])
    assert resp["items"][0]["index"]["status"] == 201
    assert "out of range" in resp["items"][1]["index"]["error"]["caused_by"]["reason"]


async def test_dynamic_mapping_inference(es: AsyncElasticsearch) -> None:
    await es.index(index="dyn", id="1", document={
        "@timestamp": "2024-05-01T12:00:00Z", "count": 3, "ratio": 0.5, "ok": True, "msg": "hi",
        "host": {"name": "web-1", "ip": "10.0.0.1"}, "tags": ["a", "b"], "nothing": None, "empty": [],
        "slashed": "2024/05/01 12:00:00",
    })
    props = (await es.indices.get_mapping(index="dyn"))["dyn"]["mappings"]["properties"]
    text = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert props == {
        "@timestamp": {"type": "date"}, "count": {"type": "long"}, "ratio": {"type": "float"},
        "ok": {"type": "boolean"}, "msg": text, "tags": text,
        "slashed": {"type": "date", "format": "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis"},
        "host": {"properties": {"ip": text, "name": text}},
    }


async def test_mapping_conflict_from_dynamic_field(es: AsyncElasticsearch) -> None:
    await es.index(index="conf", id="1", document={"count": 1})
    with pytest.raises(BadRequestError) as info:
        await es.index(index="conf", id="2", document={"count": "many"})
    assert info.value.error == "document_parsing_exception"
    with pytest.raises(BadRequestError) as info:
        await es.index(index="conf", id="3", document={"count": {"inner": 1}})
    with pytest.raises(BadRequestError) as info:
        await es.index(index="conf", id="4", document={"_id": "x"})
    assert "metadata field" in info.value.body["error"]["reason"]


async def test_strict_dynamic_mapping(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="strict", mappings={"dynamic": "strict", "properties": {"a": {"type": "keyword"}}})
    with pytest.raises(BadRequestError) as info:
        await es.index(index="strict", id="1", document={"a": "x", "b": 1})
    assert info.value.error == "strict_dynamic_mapping_exception"
    assert info.value.body["error"]["reason"] == (
        "[_doc] mapping set to strict, dynamic introduction of [b] within [_doc] is not allowed")


async def test_dynamic_false_keeps_source_only(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="loose", mappings={"dynamic": False, "properties": {"a": {"type": "keyword"}}})
    await es.index(index="loose", id="1", document={"a": "x", "b": 1})
    assert (await es.get(index="loose", id="1"))["_source"] == {"a": "x", "b": 1}
    props = (await es.indices.get_mapping(index="loose"))["loose"]["mappings"]["properties"]
    assert props == {"a": {"type": "keyword"}}


async def test_update_api(es: AsyncElasticsearch) -> None:
    await es.index(index="up", id="1", document={"a": 1, "o": {"x": 1}})
    resp = await es.update(index="up", id="1", doc={"o": {"y": 2}})
    assert resp["result"] == "updated"
    assert (await es.get(index="up", id="1"))["_source"] == {"a": 1, "o": {"x": 1, "y": 2}}
    with pytest.raises(NotFoundError) as info:
        await es.update(index="up", id="missing", doc={"a": 1})
    assert info.value.error == "document_missing_exception"


@pytest.mark.parametrize("body,status,reason", [
    (b'{"index":{"_index":"m"}}\n{"a":1}', 400, "The bulk request must be terminated by a newline [\\n]"),
    (b"", 400, "Validation Failed: 1: no requests added;"),
    (b'["index"]\n', 400, "Malformed action/metadata line [1], expected START_OBJECT but found [START_ARRAY]"),
    (b'{"upsert":{"_index":"m"}}\n{}\n', 400,
     "Malformed action/metadata line [1], expected field [create], [delete], [index] or [update] but found [upsert]"),
    (b'{"index":{"_index":"m","bogus":1}}\n{}\n', 400, "Action/metadata line [1] contains an unknown parameter [bogus]"),
    (b'{"index":{}}\n{"a":1}\n', 400, "Validation Failed: 1: index is missing;"),
])
async def test_malformed_bulk_requests_fail_whole_and_change_nothing(http, body, status, reason) -> None:
    resp = await http.post("/_bulk", data=body, headers=NDJSON)
    assert resp.status == status
    assert (await resp.json())["error"]["reason"] == reason
    assert (await http.head("/m")).status == 404


async def test_bad_document_line_fails_its_item(http) -> None:
    body = b'{"index":{"_index":"m2"}}\n{not json}\n{"index":{"_index":"m2"}}\n{"a":1}\n'
    resp = await http.post("/_bulk", data=body, headers=NDJSON)
    data = await resp.json()
    assert resp.status == 200 and data["errors"] is True
    assert [i["index"]["status"] for i in data["items"]] == [400, 201]


async def test_bad_refresh_value(http) -> None:
    resp = await http.post("/_bulk", params={"refresh": "sometimes"}, data=b'{"index":{"_index":"x"}}\n{}\n',
                           headers=NDJSON)
    assert resp.status == 400


def _stored(settings: Settings, index: str, column_of: str) -> list[object]:
    """Read a field's stored column straight from the SQLite file."""
    conn = sqlite3.connect(settings.db_path)
    try:
        table, columns = conn.execute("SELECT table_name, columns FROM indices WHERE name = ?", (index,)).fetchone()
        column = orjson.loads(columns)[column_of]
        return [row[0] for row in conn.execute(f'SELECT "{column}" FROM "{table}" ORDER BY _id')]
    finally:
        conn.close()


async def test_storage_follows_doc_values(es: AsyncElasticsearch, settings: Settings) -> None:
    await es.indices.create(index="st", mappings={"properties": {
        "k": {"type": "keyword"}, "n": {"type": "long"}, "d": {"type": "date"},
        "h": {"type": "double", "fields": {"f": {"type": "float"}, "s": {"type": "scaled_float", "scaling_factor": 100}}},
    }})
    await es.bulk(operations=[
        {"index": {"_index": "st", "_id": "1"}}, {"k": ["b", "a", "b"], "n": [3, 1, 3], "d": "1953-09-02T00:00:00Z",
                                                   "h": 2.03},
        {"index": {"_index": "st", "_id": "2"}}, {"k": "z", "n": 7, "d": 1000, "h": [1.5, 1.25]},
    ])
    assert _stored(settings, "st", "k") == [b'["a","b"]', "z"]
    assert _stored(settings, "st", "n") == [b"[1,3,3]", 7]
    assert _stored(settings, "st", "d") == [-515376000000, 1000]
    assert _stored(settings, "st", "h.f") == [2.0299999713897705, b"[1.25,1.5]"]
    assert _stored(settings, "st", "h.s") == [2.03, b"[1.25,1.5]"]
