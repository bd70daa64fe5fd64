"""Issue 10, documents and indices: nothing is half-applied, malformed requests get ES's 4xx.

Every rejection is checked three ways: Elasticsearch's status and error type (and reason),
the index's mapping and document count unchanged (``index_state``), and, where columns are
at stake, the table's columns unchanged in the real SQLite file, opened read-only. Restarts
go through a real ``python -m service serve`` process over the same data directory.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError

from conftest import ServerProcess, assert_live, assert_live_during, index_state
from service.settings import Settings

NDJSON = {"Content-Type": "application/x-ndjson"}
JSON = {"Content-Type": "application/json"}
UNKNOWN_SETTING = ("please check that any required plugins are installed, or check the breaking changes "
                   "documentation for removed settings")
NESTING = ("Document nesting depth (1001) exceeds the maximum allowed (1000, from "
           "`StreamReadConstraints.getMaxNestingDepth()`)")


def columns(settings: Settings, index: str) -> list[str]:
    """The index table's columns, read from the real SQLite file without writing to it."""
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
    try:
        (table,) = conn.execute("SELECT table_name FROM indices WHERE name = ?", (index,)).fetchone()
        return [row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')]
    finally:
        conn.close()


def indices_in_file(settings: Settings) -> list[str]:
    conn = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True)
    try:
        return [name for (name,) in conn.execute("SELECT name FROM indices ORDER BY name")]
    finally:
        conn.close()


def nested_objects(levels: int) -> str:
    """``{"a":{"a":...1}}``, ``levels`` objects deep counting the root, as text (json.dumps
    cannot write it)."""
    return '{"a":' * levels + "1" + "}" * levels


def nested_arrays(levels: int) -> str:
    return '{"a":' + "[" * levels + "1" + "]" * levels + "}"


def ndjson(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, str) else json.dumps(line)).encode() + b"\n" for line in lines)


async def error_of(resp: Any) -> dict[str, Any]:
    body = await resp.json()
    return body["error"]


@pytest.fixture
async def keep(es: AsyncElasticsearch) -> AsyncElasticsearch:
    """An index with a mapping and one document, which every rejected request must leave alone."""
    await es.indices.create(index="keep", mappings={"properties": {"n": {"type": "long"}}})
    await es.index(index="keep", id="1", document={"n": 1, "msg": "hello"}, refresh=True)
    return es


# --- 1. the total field limit: a rejected document changes nothing ---------------------------


async def test_document_over_the_field_limit_changes_nothing(keep: AsyncElasticsearch, http: TestClient,
                                                             settings: Settings) -> None:
    before, cols = await index_state(keep, "keep"), columns(settings, "keep")
    wide = {f"f{i}": i for i in range(5000)}
    with pytest.raises(BadRequestError) as info:
        await assert_live_during(http, keep.index(index="keep", id="wide", document=wide))
    assert info.value.meta.status == 400
    error = info.value.body["error"]
    assert error["type"] == "document_parsing_exception"
    # "keep" holds n, msg and msg.keyword: 997 more fit, the 998th new field is one too many
    assert error["reason"] == ("failed to parse: Limit of total fields [1000] has been exceeded while adding new "
                               "fields [998]")
    assert error["caused_by"]["type"] == "illegal_argument_exception"
    assert await index_state(keep, "keep") == before
    assert columns(settings, "keep") == cols
    # and nothing is left behind to refuse the next new field
    assert (await keep.index(index="keep", id="2", document={"fresh": 1}))["result"] == "created"


async def test_a_text_field_that_does_not_fit_keeps_neither_column(es: AsyncElasticsearch,
                                                                   settings: Settings) -> None:
    await es.index(index="tight", id="base", document={f"f{i}": i for i in range(999)})
    before, cols = await index_state(es, "tight"), columns(settings, "tight")
    with pytest.raises(BadRequestError) as info:  # t is text plus t.keyword: two fields, one left
        await es.index(index="tight", id="t", document={"t": "hello"})
    assert info.value.body["error"]["reason"] == (
        "failed to parse: Limit of total fields [1000] has been exceeded while adding new fields [2]")
    assert await index_state(es, "tight") == before
    assert columns(settings, "tight") == cols
    assert (await es.index(index="tight", id="n", document={"n": 1}))["result"] == "created"
    with pytest.raises(BadRequestError):
        await es.index(index="tight", id="t2", document={"t": "again"})


async def test_bulk_keeps_the_good_items_and_nothing_of_the_rejected_one(es: AsyncElasticsearch,
                                                                         settings: Settings) -> None:
    resp = await es.bulk(operations=[
        {"index": {"_index": "mixed", "_id": "a"}}, {"a": 1},
        {"index": {"_index": "mixed", "_id": "wide"}}, {f"w{i}": i for i in range(1500)},
        {"index": {"_index": "mixed", "_id": "b"}}, {"b": "x"},
    ], refresh=True)
    assert [item["index"]["status"] for item in resp["items"]] == [201, 400, 201]
    assert resp["items"][1]["index"]["error"]["type"] == "document_parsing_exception"
    props = (await es.indices.get_mapping(index="mixed"))["mixed"]["mappings"]["properties"]
    assert set(props) == {"a", "b"}
    assert columns(settings, "mixed") == ["_id", "_version", "_seq_no", "_source", "c1", "c2", "c3"]
    assert (await es.count(index="mixed"))["count"] == 2


async def test_the_field_limit_is_the_index_setting(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="small", settings={"index.mapping.total_fields.limit": 3})
    await es.index(index="small", id="1", document={"a": "x", "b": 1})  # a, a.keyword, b
    before = await index_state(es, "small")
    with pytest.raises(BadRequestError) as info:
        await es.index(index="small", id="2", document={"c": 1})
    assert "Limit of total fields [3] has been exceeded while adding new fields [1]" in (
        info.value.body["error"]["reason"])
    assert await index_state(es, "small") == before


async def test_fields_beyond_the_limit_can_be_ignored(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="lenient", settings={"index.mapping.total_fields.limit": 2,
                                                       "index.mapping.total_fields.ignore_dynamic_beyond_limit": True})
    await es.index(index="lenient", id="1", document={"a": 1, "b": 2, "c": 3}, refresh=True)
    props = (await es.indices.get_mapping(index="lenient"))["lenient"]["mappings"]["properties"]
    assert props == {"a": {"type": "long"}, "b": {"type": "long"}}
    assert (await es.get(index="lenient", id="1"))["_source"] == {"a": 1, "b": 2, "c": 3}


async def test_put_mapping_over_the_limit_changes_nothing(keep: AsyncElasticsearch, settings: Settings) -> None:
    before, cols = await index_state(keep, "keep"), columns(settings, "keep")
    with pytest.raises(BadRequestError) as info:
        await keep.indices.put_mapping(index="keep", properties={f"p{i}": {"type": "keyword"} for i in range(1000)})
    assert info.value.error == "illegal_argument_exception"
    assert info.value.body["error"]["reason"] == "Limit of total fields [1000] has been exceeded"
    assert await index_state(keep, "keep") == before
    assert columns(settings, "keep") == cols


async def test_put_mapping_to_several_indices_is_all_or_nothing(es: AsyncElasticsearch,
                                                                settings: Settings) -> None:
    await es.indices.create(index="pa", mappings={"properties": {"x": {"type": "long"}}})
    await es.indices.create(index="pb", mappings={"properties": {"x": {"type": "keyword"}}})
    before = [await index_state(es, "pa"), await index_state(es, "pb")]
    cols = [columns(settings, "pa"), columns(settings, "pb")]
    with pytest.raises(BadRequestError) as info:  # fine for pa, a type change for pb
        await es.indices.put_mapping(index="pa,pb", properties={"y": {"type": "long"}, "x": {"type": "long"}})
    assert info.value.body["error"]["reason"] == "mapper [x] cannot be changed from type [keyword] to [long]"
    assert [await index_state(es, "pa"), await index_state(es, "pb")] == before
    assert [columns(settings, "pa"), columns(settings, "pb")] == cols


async def test_create_index_over_the_limit_creates_nothing(es: AsyncElasticsearch, settings: Settings) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="huge", mappings={"properties": {f"p{i}": {"type": "long"}
                                                                       for i in range(1001)}})
    assert info.value.body["error"]["reason"] == "Limit of total fields [1000] has been exceeded"
    assert not await es.indices.exists(index="huge")
    assert "huge" not in indices_in_file(settings)


@pytest.mark.slow
def test_a_rejected_document_leaves_an_index_that_serves_after_restart(server_process: ServerProcess) -> None:
    client = server_process.start()
    client.index(index="rs", id="1", document={"t": "x"})
    client.index(index="rs", id="2", document={f"f{i}": i for i in range(998)})  # 1000 fields
    for document in ({f"g{i}": i for i in range(5000)}, {"u": "text and keyword"}, {"v": 1}):
        with pytest.raises(BadRequestError):
            client.index(index="rs", document=document)
    assert server_process.stop() == 0

    client = server_process.start()
    client.index(index="rs", id="3", document={"t": "again"}, refresh=True)
    assert client.count(index="rs")["count"] == 3
    props = client.indices.get_mapping(index="rs")["rs"]["mappings"]["properties"]
    assert len(props) == 999 and "g0" not in props and "u" not in props and "v" not in props
    assert set(client.indices.get(index="_all").body) == {"rs"}
    assert server_process.stop() == 0


@pytest.fixture
async def typed(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await es.indices.create(index="typed", mappings={"properties": {
        "n": {"type": "long"}, "al": {"type": "alias", "path": "n"},
        "o": {"dynamic": "strict", "properties": {"x": {"type": "keyword"}}},
    }})
    await es.index(index="typed", id="1", document={"n": 1}, refresh=True)
    return es


# Each document maps a new field and is then refused for another reason: none of it may stay.
REJECTED_DOCUMENTS = [  # (document, status, type, refused by any index, not only this mapping)
    ({"new": "2024-05-01", "n": "abc"}, 400, "document_parsing_exception", False),
    ({"new": 1, "o": {"y": 1}}, 400, "strict_dynamic_mapping_exception", False),
    ({"new": 1, "al": 5}, 400, "document_parsing_exception", False),
    ({"new": 1, "n": {"x": 1}}, 400, "document_parsing_exception", False),
    ({"new": 1, "o": 5}, 400, "document_parsing_exception", False),
    ({"new": 1, "n.x": 1}, 400, "document_parsing_exception", False),
    ({"new": 1, "_source": {}}, 400, "document_parsing_exception", True),
    ({"new": 1, "": 1}, 400, "document_parsing_exception", True),
    ({"new": 1, "deep": json.loads(nested_objects(25))}, 400, "document_parsing_exception", True),
    ({"new": 1, **{f"w{i}": i for i in range(1000)}}, 400, "document_parsing_exception", True),
]


@pytest.mark.parametrize("document,status,error_type,anywhere", REJECTED_DOCUMENTS)
async def test_every_rejected_document_leaves_the_index_as_it_was(
        typed: AsyncElasticsearch, settings: Settings, document: dict[str, Any], status: int, error_type: str,
        anywhere: bool) -> None:
    before, cols = await index_state(typed, "typed"), columns(settings, "typed")
    with pytest.raises(BadRequestError) as info:
        await typed.index(index="typed", id="2", document=document)
    assert (info.value.meta.status, info.value.error) == (status, error_type)
    resp = await typed.bulk(operations=[{"index": {"_index": "typed", "_id": "3"}}, document,
                                        {"update": {"_index": "typed", "_id": "1"}}, {"doc": document}])
    assert [next(iter(item.values()))["status"] for item in resp["items"]] == [status, status]
    assert await index_state(typed, "typed") == before
    assert columns(settings, "typed") == cols
    if anywhere:  # a new index written with it is not created either
        with pytest.raises(BadRequestError):
            await typed.index(index="fresh", document=document)
        assert not await typed.indices.exists(index="fresh")


async def test_a_conflicting_create_keeps_its_new_fields_out(typed: AsyncElasticsearch, settings: Settings) -> None:
    before, cols = await index_state(typed, "typed"), columns(settings, "typed")
    resp = await typed.bulk(operations=[{"create": {"_index": "typed", "_id": "1"}}, {"brand_new": "field"}])
    assert resp["items"][0]["create"]["status"] == 409
    assert await index_state(typed, "typed") == before
    assert columns(settings, "typed") == cols


# --- 2. settings are validated before anything is stored -----------------------------------------


async def test_a_bare_string_under_index_is_an_unknown_setting(http: TestClient, settings: Settings) -> None:
    resp = await http.put("/s", json={"settings": {"index": "x"}})
    assert resp.status == 400
    error = await error_of(resp)
    assert error["type"] == "illegal_argument_exception"
    assert error["reason"].startswith("unknown setting [index.index] ")
    assert (await http.head("/s")).status == 404
    assert indices_in_file(settings) == []
    for path in ("/_all", "/*"):
        resp = await http.get(path)
        assert resp.status == 200 and await resp.json() == {}
    await assert_live(http)


@pytest.mark.parametrize("body,reason", [
    ({"index.x": 1}, f"unknown setting [index.x] {UNKNOWN_SETTING}"),
    ({"index": {"x": {"y": 1}}}, f"unknown setting [index.x.y] {UNKNOWN_SETTING}"),
    ({"number_of_shard": 1}, "unknown setting [index.number_of_shard] did you mean [index.number_of_shards]?"),
    ({"number_of_shards": 0}, "Failed to parse value [0] for setting [index.number_of_shards] must be >= 1"),
    ({"index": {"number_of_shards": 1025}},
     "Failed to parse value [1025] for setting [index.number_of_shards] must be <= 1024"),
    ({"index.number_of_shards": "abc"}, "Failed to parse value [abc] for setting [index.number_of_shards]"),
    ({"number_of_shards": 1.5}, "Failed to parse value [1.5] for setting [index.number_of_shards]"),
    ({"number_of_replicas": -1}, "Failed to parse value [-1] for setting [index.number_of_replicas] must be >= 0"),
    ({"index": {"mapping": {"depth": {"limit": 0}}}},
     "Failed to parse value [0] for setting [index.mapping.depth.limit] must be >= 1"),
    ({"hidden": "maybe"}, "Failed to parse value [maybe] as only [true] or [false] are allowed."),
    ({"refresh_interval": "soon"}, "failed to parse setting [index.refresh_interval] with value [soon] as a time "
                                   "value: unit is missing or unrecognized"),
])
async def test_bad_settings_are_refused_before_anything_is_stored(es: AsyncElasticsearch, settings: Settings,
                                                                  body: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="bad", settings=body)
    assert info.value.meta.status == 400
    assert info.value.error == "illegal_argument_exception"
    assert info.value.body["error"]["reason"] == reason
    assert not await es.indices.exists(index="bad")
    assert indices_in_file(settings) == []


async def test_private_settings_cannot_be_set(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="bad", settings={"index.uuid": "mine"})
    assert info.value.error == "validation_exception"
    assert info.value.body["error"]["reason"] == (
        "Validation Failed: 1: private index setting [index.uuid] can not be set explicitly;")
    assert not await es.indices.exists(index="bad")


async def test_settings_in_either_form_are_stored_and_shown_as_es_shows_them(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="st", settings={"number_of_shards": 1,
                                                  "index": {"mapping": {"total_fields": {"limit": "50"}}},
                                                  "index.refresh_interval": "30s"})
    shown = (await es.indices.get(index="st"))["st"]["settings"]["index"]
    assert shown["number_of_shards"] == "1" and shown["refresh_interval"] == "30s"
    assert shown["mapping"] == {"total_fields": {"limit": "50"}}
    assert shown["provided_name"] == "st" and shown["uuid"]
    flat = (await es.indices.get(index="st", flat_settings=True))["st"]["settings"]
    assert flat["index.mapping.total_fields.limit"] == "50" and flat["index.number_of_shards"] == "1"


@pytest.mark.slow
def test_settings_stored_before_validation_still_serve(server_process: ServerProcess) -> None:
    client = server_process.start()
    client.indices.create(index="old")
    client.indices.create(index="other")
    assert server_process.stop() == 0
    # a database written before settings were validated: the bare string that broke GET
    conn = sqlite3.connect(server_process.data_dir / "esquire.db")
    conn.execute("UPDATE indices SET settings = ? WHERE name = 'old'", ('{"index": "x"}',))
    conn.commit()
    conn.close()

    client = server_process.start()
    assert set(client.indices.get(index="_all").body) == {"old", "other"}
    assert set(client.indices.get(index="*").body) == {"old", "other"}
    assert client.indices.get(index="old")["old"]["settings"]["index"]["provided_name"] == "old"
    assert server_process.stop() == 0


# --- 3. mapping parameters of the wrong type, and depth ---------------------------------------------


@pytest.mark.parametrize("mappings,reason,cause", [
    ({"properties": {"f": {"type": 5}}}, "No handler for type [5] declared on field [f]", None),
    ({"properties": {"f": {"type": True}}}, "No handler for type [true] declared on field [f]", None),
    ({"properties": "x"}, "Failed to parse mapping: properties must be a map type", "parse_exception"),
    ({"properties": {"f": {"type": "keyword", "ignore_above": "abc"}}},
     'Failed to parse mapping: For input string: "abc"', "number_format_exception"),
    ({"properties": {"f": {"type": "keyword", "ignore_above": 1.5}}},
     "Failed to parse mapping: 1.5 is not an integer value", "illegal_argument_exception"),
    ({"properties": {"f": {"type": "keyword", "fields": "x"}}},
     "expected map for property [fields] on field [x] or [fields] but got a class java.lang.String", None),
    ({"properties": {"f": {"type": "keyword", "fields": [1]}}},
     "expected map for property [fields] on field [[1]] or [fields] but got a class java.util.ArrayList", None),
    ({"properties": {"f": {"type": "keyword", "fields": {"k": {"type": "object"}}}}},
     "Type [object] cannot be used in multi field", None),
    ({"dynamic": 7}, "Failed to parse mapping: Could not convert [dynamic.dynamic] to boolean",
     "illegal_argument_exception"),
    ({"properties": {"f": {"type": "long", "null_value": {}}}},
     'Failed to parse mapping: For input string: "{}"', "number_format_exception"),
    ({"properties": {"f": {"type": "keyword", "index": "abc"}}},
     "Failed to parse mapping: Failed to parse value [abc] as only [true] or [false] are allowed.",
     "illegal_argument_exception"),
    ({"properties": {"f": {"type": "keyword", "doc_values": None}}},
     "[doc_values] on mapper [f] of type [keyword] must not have a [null] value", None),
    ({"properties": {"f": {"type": "keyword", "meta": {"unit": 3}}}},
     "[meta] values can only be strings, but got Integer[3] for field [f]", None),
    ({"properties": {"f": {}}}, "No type specified for field [f]", None),
    ({"properties": {"o": {"properties": {}, "bogus": 1}}},
     "Mapping definition for [o] has unsupported parameters:  [bogus : 1]", None),
    ({"properties": {"f": {"type": "scaled_float", "scaling_factor": -1}}},
     "Failed to parse mapping: [scaling_factor] must be a positive number, got [-1.0]", "illegal_argument_exception"),
    ({"_meta": 1, "x": {"a": 1}}, "Root mapping definition has unsupported parameters:  [x : {a=1}]", None),
])
async def test_mapping_parameters_of_the_wrong_type(es: AsyncElasticsearch, http: TestClient, settings: Settings,
                                                    mappings: dict[str, Any], reason: str, cause: str | None) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="bad", mappings=mappings)
    error = info.value.body["error"]
    assert (info.value.meta.status, error["type"], error["reason"]) == (400, "mapper_parsing_exception", reason)
    assert (error.get("caused_by") or {}).get("type") == cause
    assert "Traceback" not in json.dumps(info.value.body) and "Error" not in error["reason"]
    assert not await es.indices.exists(index="bad")
    assert indices_in_file(settings) == []
    await assert_live(http)


@pytest.mark.parametrize("properties,reason", [
    ({"a": {"type": "alias", "path": "missing"}},
     "Invalid [path] value [missing] for field alias [a]: an alias must refer to an existing field in the mappings."),
    ({"a": {"type": "alias", "path": "a"}},
     "Invalid [path] value [a] for field alias [a]: an alias cannot refer to itself."),
    ({"n": {"type": "long"}, "b": {"type": "alias", "path": "n"}, "a": {"type": "alias", "path": "b"}},
     "Invalid [path] value [b] for field alias [a]: an alias cannot refer to another alias."),
    ({"o": {"properties": {"x": {"type": "long"}}}, "a": {"type": "alias", "path": "o"}},
     "Invalid [path] value [o] for field alias [a]: an alias must refer to an existing field in the mappings."),
])
async def test_field_aliases_must_point_at_a_field(es: AsyncElasticsearch, properties: dict[str, Any],
                                                   reason: str) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="bad", mappings={"properties": properties})
    assert (info.value.error, info.value.body["error"]["reason"]) == ("mapper_parsing_exception", reason)
    assert not await es.indices.exists(index="bad")
    await es.indices.create(index="good", mappings={"properties": {"t": {"type": "text", "fields": {
        "k": {"type": "keyword"}}}, "a": {"type": "alias", "path": "t.k"}}})


async def test_the_same_checks_apply_to_put_mapping(keep: AsyncElasticsearch, settings: Settings) -> None:
    before, cols = await index_state(keep, "keep"), columns(settings, "keep")
    for properties in ({"f": {"type": 5}}, {"f": {"type": "keyword", "ignore_above": "abc"}},
                       {"o": {"properties": "x"}}, {"f": {"type": "date", "format": {}}}):
        with pytest.raises(BadRequestError) as info:
            await keep.indices.put_mapping(index="keep", properties=properties)
        assert info.value.meta.status == 400
        assert await index_state(keep, "keep") == before
        assert columns(settings, "keep") == cols


async def test_values_es_accepts_are_stored_as_es_stores_them(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="loose", mappings={"properties": {
        "a": {"type": "keyword", "fields": [], "ignore_above": "12", "index": "false"},
        "b": {"type": "date", "format": 3},
        "c": {"type": "keyword", "null_value": {}},
        "d.e": {"type": "long"},
        "o": {"properties": []},
    }})
    props = (await es.indices.get_mapping(index="loose"))["loose"]["mappings"]["properties"]
    assert props == {
        "a": {"type": "keyword", "ignore_above": 12, "index": False},
        "b": {"type": "date", "format": "3"},
        "c": {"type": "keyword", "null_value": "{}"},
        "d": {"properties": {"e": {"type": "long"}}},
        "o": {"type": "object"},
    }
    await es.index(index="loose", id="1", document={"a": "x", "d": {"e": 5}})
    assert (await es.get(index="loose", id="1"))["_source"] == {"a": "x", "d": {"e": 5}}


def _objects(levels: int) -> dict[str, Any]:
    """A mapping with ``levels`` objects nested below the root."""
    node: dict[str, Any] = {"type": "keyword"}
    for _ in range(levels):
        node = {"properties": {"o": node}}
    return {"properties": {"o": node}}


async def test_mapping_depth_limit(es: AsyncElasticsearch, settings: Settings) -> None:
    await es.indices.create(index="ok", mappings=_objects(19))  # the root and 19 objects: depth 20
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="deep", mappings=_objects(20))
    assert info.value.error == "illegal_argument_exception"
    assert info.value.body["error"]["reason"] == (
        "Limit of mapping depth [20] has been exceeded due to object field [" + ".".join(["o"] * 20) + "]")
    assert not await es.indices.exists(index="deep")
    await es.indices.create(index="shallow", settings={"index.mapping.depth.limit": 3})
    with pytest.raises(BadRequestError) as info:
        await es.indices.put_mapping(index="shallow", properties=_objects(3)["properties"])
    assert info.value.body["error"]["reason"] == (
        "Limit of mapping depth [3] has been exceeded due to object field [o.o.o]")
    assert (await es.indices.get_mapping(index="shallow"))["shallow"]["mappings"] == {}
    assert indices_in_file(settings) == ["ok", "shallow"]


async def test_dynamic_objects_deeper_than_the_limit(keep: AsyncElasticsearch, http: TestClient,
                                                     settings: Settings) -> None:
    before, cols = await index_state(keep, "keep"), columns(settings, "keep")
    for levels in (21, 200, 300, 999):  # 21: the root and 20 objects, one level too many
        resp = await assert_live_during(http, http.post("/keep/_doc", data=nested_objects(levels), headers=JSON))
        assert resp.status == 400
        error = await error_of(resp)
        assert error["type"] == "document_parsing_exception"
        assert error["reason"] == ("failed to parse: Limit of mapping depth [20] has been exceeded due to object "
                                   "field [" + ".".join(["a"] * 20) + "]")
        assert error["caused_by"]["type"] == "illegal_argument_exception"
    assert await index_state(keep, "keep") == before
    assert columns(settings, "keep") == cols


@pytest.mark.parametrize("body", [nested_arrays(1000), nested_arrays(1030), nested_objects(1001),
                                  nested_objects(1030)])
async def test_json_nested_past_the_parser_limit(http: TestClient, keep: AsyncElasticsearch, body: str) -> None:
    await http.put("/loose", json={"mappings": {"dynamic": False}})
    for index in ("keep", "loose"):
        before = await index_state(keep, index)
        resp = await assert_live_during(http, http.post(f"/{index}/_doc", data=body, headers=JSON))
        assert resp.status == 400
        error = await error_of(resp)
        assert error["type"] == "document_parsing_exception"
        if body.startswith('{"a":[') or index == "loose":
            assert error["reason"] == "Error parsing document"
            assert error["caused_by"] == {"type": "stream_constraints_exception", "reason": NESTING}
        assert await index_state(keep, index) == before


async def test_documents_the_parser_accepts_are_stored_at_any_depth(http: TestClient,
                                                                    es: AsyncElasticsearch) -> None:
    await es.indices.create(index="loose", mappings={"dynamic": False})
    deep = nested_objects(999)  # the root and 999 objects: 1000 levels, the most ES reads
    resp = await http.put("/loose/_doc/1", data=deep, headers=JSON)
    assert resp.status == 201
    resp = await http.get("/loose/_doc/1")
    assert resp.status == 200 and (await resp.text()).count('"a":') == 999
    # an update whose merged document is deeper than the JSON encoder's 254 levels
    partial = '{"doc":{"b":' + nested_objects(400)[:-1] + "}}}"
    resp = await http.post("/loose/_update/1", data=partial, headers=JSON)
    assert resp.status == 200 and (await resp.json())["result"] == "updated"
    assert '"b":' in await (await http.get("/loose/_doc/1")).text()
    assert (await es.indices.get_mapping(index="loose"))["loose"]["mappings"] == {"dynamic": False}


async def test_deep_json_in_bulk_fails_its_item_only(http: TestClient, keep: AsyncElasticsearch) -> None:
    before = await index_state(keep, "keep")
    body = ndjson({"index": {"_index": "keep", "_id": "ok1"}}, {"n": 2},
                  {"index": {"_index": "keep", "_id": "d300"}}, nested_objects(300),
                  {"index": {"_index": "keep", "_id": "arrays"}}, nested_arrays(1000),
                  {"index": {"_index": "keep", "_id": "d1030"}}, nested_objects(1030),
                  {"index": {"_index": "keep", "_id": "ok2"}}, {"n": 3})
    resp = await assert_live_during(http, http.post("/_bulk", data=body, headers=NDJSON))
    assert resp.status == 200
    items = [item["index"] for item in (await resp.json())["items"]]
    assert [item["status"] for item in items] == [201, 400, 400, 400, 201]
    assert {item["error"]["type"] for item in items[1:4]} == {"document_parsing_exception"}
    assert items[2]["error"]["caused_by"]["type"] == "stream_constraints_exception"
    assert await index_state(keep, "keep") == (before[0], before[1] + 2)


async def test_an_update_body_past_the_parser_limit_fails_the_bulk(http: TestClient,
                                                                   keep: AsyncElasticsearch) -> None:
    before = await index_state(keep, "keep")
    body = ndjson({"update": {"_index": "keep", "_id": "1"}}, '{"doc":' + nested_objects(1005) + "}")
    resp = await http.post("/_bulk", data=body, headers=NDJSON)
    assert resp.status == 400
    error = await error_of(resp)
    assert (error["type"], error["reason"]) == ("parse_exception", "could not parse bulk request body")
    assert error["caused_by"] == {"type": "stream_constraints_exception", "reason": NESTING}
    assert await index_state(keep, "keep") == before


# --- 4. _index, _id and every bulk action line -----------------------------------------------------


async def test_ids_that_are_objects_or_arrays_fail_the_request(keep: AsyncElasticsearch,
                                                               settings: Settings) -> None:
    before = await index_state(keep, "keep")
    for bad, found in (({"a": 1}, "START_OBJECT"), ([1], "START_ARRAY")):
        for key in ("_id", "_index", "routing"):
            with pytest.raises(BadRequestError) as info:
                await keep.bulk(operations=[{"index": {"_index": "keep", key: bad}}, {"n": 5}])
            assert info.value.error == "illegal_argument_exception"
            assert info.value.body["error"]["reason"] == (
                f"Malformed action/metadata line [1], expected a simple value for field [{key}] but found [{found}]")
    assert await index_state(keep, "keep") == before
    assert indices_in_file(settings) == ["keep"]


async def test_scalar_ids_are_the_text_of_their_token(keep: AsyncElasticsearch, http: TestClient) -> None:
    body = b'{"index":{"_index":"keep","_id":true}}\n{"n":1}\n{"index":{"_index":"keep","_id":1.50}}\n{"n":2}\n' \
           b'{"index":{"_index":"keep","_id":123456789012345678901234567890}}\n{"n":3}\n'
    resp = await http.post("/_bulk", data=body, headers=NDJSON)
    assert [item["index"]["_id"] for item in (await resp.json())["items"]] == [
        "true", "1.50", "123456789012345678901234567890"]
    assert (await keep.get(index="keep", id="1.50"))["_source"] == {"n": 2}
    resp = await keep.bulk(operations=[{"index": {"_index": 5}}, {"n": 1}])
    assert resp["items"][0]["index"]["_index"] == "5"
    # a number's text is read off the line, which may nest as deep as the parser allows
    deep_source = b'{"index":{"_index":"keep","_id":7,"_source":{"includes":' + b"[" * 1000 + b"]" * 1000 + b"}}}"
    resp = await http.post("/_bulk", data=deep_source + b"\n{}\n", headers=NDJSON)
    assert resp.status == 400
    error = await error_of(resp)
    assert (error["type"], error["caused_by"]["type"]) == ("parse_exception", "parsing_exception")


async def test_an_id_longer_than_512_bytes(keep: AsyncElasticsearch) -> None:
    before = await index_state(keep, "keep")
    too_long = "é" * 257  # 514 bytes in UTF-8
    expected = (f"Validation Failed: 1: id [{too_long}] is too long, must be no longer than 512 bytes but was: 514;")
    with pytest.raises(BadRequestError) as info:
        await keep.bulk(operations=[{"index": {"_index": "keep", "_id": too_long}}, {"n": 1}])
    assert (info.value.error, info.value.body["error"]["reason"]) == ("action_request_validation_exception", expected)
    for call in (keep.index(index="keep", id=too_long, document={"n": 1}),
                 keep.create(index="keep", id=too_long, document={"n": 1}),
                 keep.update(index="keep", id=too_long, doc={"n": 1}),
                 keep.delete(index="keep", id=too_long)):
        with pytest.raises(BadRequestError) as info:
            await call
        assert info.value.body["error"]["reason"] == expected
    assert await index_state(keep, "keep") == before
    assert (await keep.index(index="keep", id="x" * 512, document={"n": 1}))["result"] == "created"


async def test_an_empty_index_name_creates_nothing(keep: AsyncElasticsearch, settings: Settings) -> None:
    resp = await keep.bulk(operations=[{"index": {"_index": ""}}, {"n": 1}, {"index": {"_index": "keep"}}, {"n": 2}])
    first, second = (item["index"] for item in resp["items"])
    assert first["status"] == 400 and first["error"]["type"] == "invalid_index_name_exception"
    assert first["error"]["reason"] == "Invalid index name [], must not be empty"
    assert second["status"] == 201
    assert indices_in_file(settings) == ["keep"]
    assert [row["index"] for row in (await keep.cat.indices(format="json")).body] == ["keep"]


async def test_an_empty_id_fails_its_item_or_the_request(keep: AsyncElasticsearch) -> None:
    before = await index_state(keep, "keep")
    resp = await keep.bulk(operations=[{"index": {"_index": "keep", "_id": ""}}, {"n": 1}])
    item = resp["items"][0]["index"]
    assert (item["status"], item["error"]) == (
        400, {"type": "illegal_argument_exception", "reason": "if _id is specified it must not be empty"})
    with pytest.raises(BadRequestError) as info:
        await keep.bulk(operations=[{"delete": {"_index": "keep", "_id": ""}}])
    assert info.value.body["error"]["reason"] == "Validation Failed: 1: id is missing;"
    assert await index_state(keep, "keep") == before


async def test_update_with_a_doc_that_is_not_an_object(keep: AsyncElasticsearch, http: TestClient) -> None:
    before = await index_state(keep, "keep")
    with pytest.raises(BadRequestError) as info:
        await keep.update(index="keep", id="1", doc="x")
    assert info.value.error == "x_content_parse_exception"
    assert info.value.body["error"]["reason"] == "[1:8] [UpdateRequest] doc doesn't support values of type: VALUE_STRING"
    for body, reason in ((b'{"doc":{"n":2},"doc_as_upsert":"maybe"}',
                          "[1:32] [UpdateRequest] failed to parse field [doc_as_upsert]"),
                         (b'{"doc":[1]}', "[1:8] [UpdateRequest] doc doesn't support values of type: START_ARRAY"),
                         (b'{"docs":{}}', "[1:2] [UpdateRequest] unknown field [docs]")):
        resp = await http.post("/keep/_update/1", data=body, headers=JSON)
        assert resp.status == 400
        assert (await error_of(resp))["reason"] == reason
    resp = await http.post("/keep/_update/1", data=b'{"doc_as_upsert":true}', headers=JSON)
    assert resp.status == 400 and (await error_of(resp))["reason"] == (
        "Validation Failed: 1: script or doc is missing;2: doc must be specified if doc_as_upsert is enabled;")
    assert await index_state(keep, "keep") == before
    assert (await keep.get(index="keep", id="1"))["_source"] == {"n": 1, "msg": "hello"}


async def test_a_failed_write_never_creates_an_index(es: AsyncElasticsearch, settings: Settings) -> None:
    resp = await es.bulk(operations=[
        {"delete": {"_index": "gone1", "_id": "1"}},
        {"update": {"_index": "gone2", "_id": "1"}}, {"doc": {"a": 1}},
        {"index": {"_index": "gone3", "_id": "1"}}, {"_id": "inside"},
        {"index": {"_index": "gone4", "_id": "1"}}, {f"w{i}": i for i in range(1001)},
        {"update": {"_index": "made", "_id": "1"}}, {"doc": {"a": 1}, "doc_as_upsert": True},
    ])
    statuses = [(next(iter(item)), next(iter(item.values()))["status"]) for item in resp["items"]]
    assert statuses == [("delete", 404), ("update", 404), ("index", 400), ("index", 400), ("update", 201)]
    delete = resp["items"][0]["delete"]["error"]
    assert (delete["type"], delete["reason"], delete["index"]) == (
        "index_not_found_exception", "no such index [gone1]", "gone1")
    assert resp["items"][1]["update"]["error"]["type"] == "document_missing_exception"
    with pytest.raises(NotFoundError) as info:
        await es.update(index="gone5", id="1", doc={"a": 1})
    assert info.value.error == "document_missing_exception"
    with pytest.raises(NotFoundError) as info:
        await es.delete(index="gone6", id="1")
    assert info.value.error == "index_not_found_exception"
    assert indices_in_file(settings) == ["made"]
    assert [row["index"] for row in (await es.cat.indices(format="json")).body] == ["made"]


@pytest.mark.parametrize("body,status,error_type,reason", [
    (b'{"index":{"_index":"keep","x":1}}\n{}\n', 400, "illegal_argument_exception",
     "Action/metadata line [1] contains an unknown parameter [x]"),
    (b'{"index":{"_index":"keep","_type":"doc"}}\n{}\n', 400, "illegal_argument_exception",
     "Action/metadata line [1] contains an unknown parameter [_type]"),
    (b'{"index":{"_index":"keep","_routing":"r"}}\n{}\n', 400, "illegal_argument_exception",
     "Action/metadata line [1] contains an unknown parameter [_routing]"),
    (b'{"index":{"_index":"keep","dynamic_templates":"x"}}\n{}\n', 400, "illegal_argument_exception",
     "Action/metadata line [1] contains an unknown parameter [dynamic_templates]"),
    (b'{"index":{"_index":"keep"},"extra":1}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected END_OBJECT but found [FIELD_NAME]"),
    (b'{"index":{"_index":"keep"}}{}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], unexpected data after the closing brace"),
    (b'{"index":null}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_NULL]"),
    (b'{"index":"keep"}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]"),
    (b'{}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected FIELD_NAME but found [END_OBJECT]"),
    (b'{"index":{"_index":"keep","_id":["a"]}}\n{}\n', 400, "illegal_argument_exception",
     "Malformed action/metadata line [1], expected a simple value for field [_id] but found [START_ARRAY]"),
    (b'{"delete":{"_index":"keep","_id":"1","dynamic_templates":{"a":"b"}}}\n', 400, "illegal_argument_exception",
     "Delete request in line [1] does not accept dynamic_templates"),
    (b'{"index":{"_index":"keep","require_alias":"sometimes"}}\n{}\n', 400, "illegal_argument_exception",
     "Failed to parse value [sometimes] as only [true] or [false] are allowed."),
    (b'{"update":{"_index":"keep","_id":"1","retry_on_conflict":"often"}}\n{"doc":{}}\n', 400,
     "number_format_exception", 'For input string: "often"'),
    (b'{"update":{"_index":"keep","_id":"1","retry_on_conflict":true}}\n{"doc":{}}\n', 400,
     "x_content_parse_exception", "[1:58] Current token (VALUE_TRUE) not numeric, can not use numeric value accessors"),
    (b'{"index":{"_index":"keep"}\n{}\n', 400, "x_content_e_o_f_exception", "[1:27] Unexpected end of file"),
    (b'{"index":{"_index":"keep"}}\n', 400, "action_request_validation_exception",
     "Validation Failed: 1: no requests added;"),
    (b'{"update":{"_index":"keep","_id":"1"}}\n{"doc":{},"bogus":1}\n', 400, "x_content_parse_exception",
     "[1:11] [UpdateRequest] unknown field [bogus]"),
    (b'{"update":{"_index":"keep","_id":"1"}}\n{"upsert":{"n":1}}\n', 400, "action_request_validation_exception",
     "Validation Failed: 1: script or doc is missing;"),
    (b'{"update":{"_index":"keep"}}\n{"doc":{}}\n{"delete":{}}\n', 400, "action_request_validation_exception",
     "Validation Failed: 1: id is missing;2: index is missing;3: id is missing;"),
])
async def test_malformed_action_lines_fail_the_request_as_es_does(
        http: TestClient, keep: AsyncElasticsearch, settings: Settings, body: bytes, status: int,
        error_type: str, reason: str) -> None:
    before = await index_state(keep, "keep")
    resp = await http.post("/_bulk", data=body, headers=NDJSON)
    assert resp.status == status
    error = await error_of(resp)
    assert (error["type"], error["reason"]) == (error_type, reason)
    assert await index_state(keep, "keep") == before
    assert indices_in_file(settings) == ["keep"]


async def test_document_lines_that_fail_their_item(http: TestClient, keep: AsyncElasticsearch) -> None:
    before = await index_state(keep, "keep")
    body = (b'{"index":{"_index":"keep","_id":"empty"}}\n\n'
            b'{"index":{"_index":"keep","_id":"list"}}\n[1]\n'
            b'{"index":{"_index":"keep","_id":"meta"}}\n{"_id":"x"}\n'
            b'{"update":{"_index":"keep","_id":"1"}}\n{"script":"ctx._source.n++"}\n'
            b'{"index":{"_index":"keep","_id":"ok"}}\r\n{"n":7}\r\n'
            b'{"index":{"_index":"keep","_id":"dropped"}}\n')
    resp = await http.post("/_bulk", data=body, headers=NDJSON)
    assert resp.status == 200
    items = [next(iter(item.values())) for item in (await resp.json())["items"]]
    assert [(item["_id"], item["status"]) for item in items] == [
        ("empty", 400), ("list", 400), ("meta", 400), ("1", 400), ("ok", 201)]
    assert items[0]["error"]["reason"] == "[0:0] failed to parse, document is empty"
    assert await index_state(keep, "keep") == (before[0], before[1] + 1)
    assert (await keep.get(index="keep", id="ok"))["_source"] == {"n": 7}
