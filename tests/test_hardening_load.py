"""Hardening against load (issue 10): a full query queue refuses new queries as Elasticsearch's
thread pools do, a huge ``_bulk`` never holds the event loop, and a created document's
``Location`` is URL-encoded whatever its id holds."""

from __future__ import annotations

import asyncio
import io
import time
import dataclasses

import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import ApiError, AsyncElasticsearch

from conftest import SLOW, assert_live, index_state, load_logs
from service.app import create_app
from service.settings import Settings


async def test_a_full_query_queue_refuses_new_queries_and_keeps_the_queued(
        aiohttp_server, aiohttp_client, settings: Settings, slow: None) -> None:
    server = await aiohttp_server(create_app(dataclasses.replace(settings, max_running_queries=1,
                                                                 max_queued_queries=2)))
    http: TestClient = await aiohttp_client(server)
    es = AsyncElasticsearch(str(server.make_url("/")), request_timeout=30)
    try:
        await load_logs(es)
        running = await es.esql.async_query(query=SLOW, wait_for_completion_timeout="0s")
        queued = [await es.esql.async_query(query=SLOW, wait_for_completion_timeout="0s") for _ in range(2)]
        with pytest.raises(ApiError) as info:
            await es.esql.async_query(query=SLOW, wait_for_completion_timeout="0s", keep_on_completion=True)
        assert info.value.meta.status == 429
        assert info.value.error == "es_rejected_execution_exception"
        assert "queue capacity = 2" in info.value.body["error"]["reason"]
        with pytest.raises(ApiError) as info:  # the sync path is bounded the same way
            await es.esql.query(query="ROW a = 1 | LIMIT 1")
        assert info.value.meta.status == 429
        await assert_live(http)
        for search in (running, *queued):  # what was accepted still runs to its end
            await es.esql.async_query_stop(id=search["id"])
            done = await es.esql.async_query_get(id=search["id"], wait_for_completion_timeout="30s")
            assert done["is_running"] is False
        again = await es.esql.query(query="ROW a = 1 | LIMIT 1")  # room again once the queue drains
        assert again["values"] == [[1]]
    finally:
        await es.close()


async def test_a_huge_bulk_leaves_the_event_loop_free(es: AsyncElasticsearch, http: TestClient) -> None:
    line = b'{"index":{}}\n{"message":"' + b"x" * 80 + b'","n":1,"host":{"name":"h1"}}\n'
    body = line * 150_000  # 18 MB: seconds of parsing and writing, held in one go before
    headers = {"Content-Type": "application/x-ndjson"}
    bulk = asyncio.ensure_future(http.post("/big/_bulk", data=io.BytesIO(body), headers=headers))
    # The server shares this event loop: if the bulk held it in one go, a GET / sent meanwhile
    # would wait for it; answered while the bulk runs, again and again, it did not.
    answered = 0
    while not bulk.done():
        await assert_live(http)
        answered += 1
    assert answered >= 5, f"only {answered} GET / answered while the bulk ran"
    await assert_live(http)
    resp = bulk.result()
    assert resp.status == 200
    assert (await resp.json())["errors"] is False
    await es.indices.refresh(index="big")
    assert (await es.count(index="big"))["count"] == 150_000


@pytest.mark.parametrize("doc_id, location", [("a\nb", "/ids/_doc/a%0Ab"), ("a\x00b", "/ids/_doc/a%00b"),
                                              ("c\r\nSet-Cookie: x=1", "/ids/_doc/c%0D%0ASet-Cookie%3A%20x%3D1"),
                                              ("a/b c", "/ids/_doc/a%2Fb%20c")])
async def test_the_location_of_a_created_document_is_url_encoded(es: AsyncElasticsearch, doc_id: str,
                                                                  location: str) -> None:
    resp = await es.index(index="ids", id=doc_id, document={"x": 1})
    assert resp.meta.status == 201
    assert resp.meta.headers["Location"] == location
    assert "Set-Cookie" not in resp.meta.headers
    assert (await es.get(index="ids", id=doc_id))["_source"] == {"x": 1}


@pytest.mark.parametrize("doc", [{"a": [{"x": 4.9e16}, 0.0001]}, {"a": [{"x": 1}, "s"]}, {"a": {"b": [{"c": 1}, 2]}}])
async def test_an_object_and_a_value_under_one_name_are_refused_and_change_nothing(
        es: AsyncElasticsearch, doc: dict) -> None:
    await es.index(index="mixed", id="seed", document={"seed": 1}, refresh=True)
    before = await index_state(es, "mixed")
    with pytest.raises(ApiError) as info:
        await es.index(index="mixed", id="x", document=doc)
    assert info.value.meta.status == 400
    assert info.value.error == "document_parsing_exception"
    assert "tried to parse field" in info.value.body["error"]["reason"]
    assert await index_state(es, "mixed") == before


@pytest.mark.parametrize("params, status, error", [
    ({"timeout": "abc"}, 400, "parse_exception"),
    ({"wait_for_active_shards": "abc"}, 400, "illegal_argument_exception"),
    ({"wait_for_active_shards": "-2"}, 400, "illegal_argument_exception"),
    ({"pipeline": "nope"}, 400, "illegal_argument_exception"),
    ({"require_alias": "true"}, 404, "index_not_found_exception"),
])
async def test_write_parameters_es_refuses_refuse_the_write(http: TestClient, es: AsyncElasticsearch,
                                                            params: dict, status: int, error: str) -> None:
    for method, path, body in (("PUT", "/fresh/_doc/1", b'{"a":1}'), ("POST", "/fresh/_doc", b'{"a":1}'),
                               ("PUT", "/fresh/_create/1", b'{"a":1}'), ("POST", "/fresh/_update/1", b'{"doc":{}}'),
                               ("POST", "/fresh/_bulk", b'{"index":{}}\n{"a":1}\n')):
        resp = await http.request(method, path, params=params, data=body,
                                  headers={"Content-Type": "application/x-ndjson" if "bulk" in path
                                           else "application/json"})
        if "bulk" in path and "require_alias" in params:  # item by item in a bulk, as in ES
            (item,) = (await resp.json())["items"]
            assert item["index"]["status"] == status
            assert item["index"]["error"]["type"] == error
            continue
        assert resp.status == status, (method, path, await resp.text())
        assert (await resp.json())["error"]["type"] == error
    assert not await es.indices.exists(index="fresh")


async def test_a_failed_write_answers_its_error_unfiltered(http: TestClient) -> None:
    await http.put("/f/_doc/1", json={"n": 1})
    for filter_path in ("-*", "*.*", "error.type"):
        resp = await http.put("/f/_doc/2", params={"filter_path": filter_path}, json={"n": "not a number"})
        assert resp.status == 400
        body = await resp.json()
        assert body["status"] == 400
        assert body["error"]["type"] == "document_parsing_exception"
        assert body["error"]["root_cause"][0]["type"] == "document_parsing_exception"
        assert body["error"]["caused_by"]["type"] == "illegal_argument_exception"
