"""Index administration through the official client, and its bad inputs."""

from __future__ import annotations

import pytest
from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError

MAPPINGS = {"properties": {
    "@timestamp": {"type": "date"},
    "host": {"properties": {"name": {"type": "keyword"}}},
    "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
    "bytes": {"type": "long"},
}}


async def test_create_get_mapping_and_exists(es: AsyncElasticsearch) -> None:
    resp = await es.indices.create(index="logs", mappings=MAPPINGS, settings={"number_of_shards": 1})
    assert resp.body == {"acknowledged": True, "shards_acknowledged": True, "index": "logs"}
    mapping = await es.indices.get_mapping(index="logs")
    assert mapping.body == {"logs": {"mappings": {"properties": {
        "@timestamp": {"type": "date"},
        "bytes": {"type": "long"},
        "host": {"properties": {"name": {"type": "keyword"}}},
        "message": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
    }}}}
    assert await es.indices.exists(index="logs")
    assert not await es.indices.exists(index="nope")
    assert set((await es.indices.get_mapping()).body) == {"logs"}
    assert (await es.indices.get(index="logs"))["logs"]["settings"]["index"]["provided_name"] == "logs"


async def test_create_existing_index_is_400(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="dup")
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="dup")
    assert info.value.error == "resource_already_exists_exception"
    assert info.value.body["error"]["reason"].startswith("index [dup/")


@pytest.mark.parametrize("name,reason", [
    ("Upper", "must be lowercase"),
    ("_hidden", "must not start with '_', '-', or '+'"),
    ("a*b", "must not contain the following characters"),
])
async def test_invalid_index_names(es: AsyncElasticsearch, name: str, reason: str) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index=name)
    assert info.value.error == "invalid_index_name_exception"
    assert reason in info.value.body["error"]["reason"]


async def test_unknown_field_type_is_mapper_parsing_exception(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="bad", mappings={"properties": {"bar": {"type": "foo"}}})
    assert info.value.error == "mapper_parsing_exception"
    assert info.value.body["error"]["reason"] == "No handler for type [foo] declared on field [bar]"
    assert not await es.indices.exists(index="bad")


async def test_unknown_mapping_parameter(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.indices.create(index="bad", mappings={"properties": {"f": {"type": "keyword", "bogus": 1}}})
    assert info.value.body["error"]["reason"] == "unknown parameter [bogus] on mapper [f] of type [keyword]"


async def test_unknown_create_body_key(http) -> None:
    resp = await http.put("/bad", json={"mapping": {}})
    assert resp.status == 400
    assert (await resp.json())["error"]["reason"] == "unknown key [mapping] for create index"
    assert (await http.head("/bad")).status == 404


async def test_malformed_json_body(http) -> None:
    resp = await http.put("/bad", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "x_content_parse_exception"
    assert (await http.head("/bad")).status == 404


async def test_delete_index(es: AsyncElasticsearch) -> None:
    await es.index(index="gone", document={"a": 1})
    assert (await es.indices.delete(index="gone")).body == {"acknowledged": True}
    assert not await es.indices.exists(index="gone")
    with pytest.raises(NotFoundError) as info:
        await es.indices.delete(index="gone")
    assert info.value.error == "index_not_found_exception"
    assert info.value.body["error"]["resource.id"] == "gone"


async def test_mapping_of_missing_index_and_wildcards(es: AsyncElasticsearch) -> None:
    with pytest.raises(NotFoundError) as info:
        await es.indices.get_mapping(index="missing")
    assert info.value.body["error"]["reason"] == "no such index [missing]"
    assert (await es.indices.get_mapping(index="missing*")).body == {}


async def test_put_mapping_adds_fields_and_refuses_type_changes(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="pm", mappings={"properties": {"a": {"type": "long"}}})
    await es.indices.put_mapping(index="pm", properties={"b": {"type": "keyword"}})
    props = (await es.indices.get_mapping(index="pm"))["pm"]["mappings"]["properties"]
    assert props == {"a": {"type": "long"}, "b": {"type": "keyword"}}
    with pytest.raises(BadRequestError) as info:
        await es.indices.put_mapping(index="pm", properties={"a": {"type": "keyword"}})
    assert info.value.body["error"]["reason"] == "mapper [a] cannot be changed from type [long] to [keyword]"
    props = (await es.indices.get_mapping(index="pm"))["pm"]["mappings"]["properties"]
    assert props["a"] == {"type": "long"}


async def test_refresh(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="r1")
    assert (await es.indices.refresh(index="r1"))["_shards"]["failed"] == 0
    assert (await es.indices.refresh())["_shards"]["failed"] == 0
    with pytest.raises(NotFoundError):
        await es.indices.refresh(index="nope")


async def test_cat_indices_text_and_json(es: AsyncElasticsearch) -> None:
    await es.bulk(operations=[{"index": {"_index": "cat"}}, {"a": 1}, {"index": {"_index": "cat"}}, {"a": 2}])
    rows = (await es.cat.indices(format="json")).body
    assert [(r["index"], r["docs.count"]) for r in rows] == [("cat", "2")]
    text = (await es.cat.indices(v=True)).body
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["health", "status", "index"]
    assert lines[1].split()[2] == "cat"


async def test_count(es: AsyncElasticsearch) -> None:
    await es.bulk(operations=[{"index": {"_index": "cnt"}}, {"a": 1}] * 3)
    assert (await es.count(index="cnt"))["count"] == 3
