"""What an attacker tried against a real ``serve`` after the first hardening round (issue 10),
each answered as Elasticsearch answers it, with the service live during and after.

The real app on a real socket (``es`` = the official client, ``http`` = raw aiohttp where the
client cannot send the request); ``assert_live_during`` is the issue's liveness bound.
"""

from __future__ import annotations

import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from conftest import assert_live, assert_live_during

DOCS = 10_000


async def _bulk_answer(es: AsyncElasticsearch, **params) -> dict:
    ops = [op for i in range(DOCS) for op in ({"index": {"_id": str(i)}}, {"n": i})]
    return (await es.bulk(index="big", operations=ops, **params)).body


# --- filter_path and pretty are built off the event loop, in bounded steps ---------------------

async def test_a_thousand_filter_paths_over_a_bulk_answer_keep_the_service_live(es: AsyncElasticsearch,
                                                                                 http) -> None:
    # Was 33 s of the event loop: every key of the answer walked every path.
    paths = [f"**.x{i}" for i in range(1000)]
    resp = await assert_live_during(http, _bulk_answer(es, filter_path=paths))
    assert resp == {}
    resp = await assert_live_during(http, _bulk_answer(es, filter_path=paths + ["items.*._id"]))
    assert [item["index"]["_id"] for item in resp["items"]] == [str(i) for i in range(DOCS)]


async def test_many_wildcard_filter_paths_keep_the_service_live(es: AsyncElasticsearch, http) -> None:
    paths = [f"*x{i}*.**" for i in range(700)]  # as many as an 8 KB request line holds
    resp = await assert_live_during(http, _bulk_answer(es, filter_path=paths + ["-**._shards", "errors"]))
    assert resp == {"errors": False}


async def test_a_big_pretty_answer_is_exactly_orjsons_indented_json(es: AsyncElasticsearch, http) -> None:
    await _bulk_answer(es, refresh=True)
    lines = "".join(orjson.dumps(line).decode() + "\n" for i in range(DOCS)
                    for line in ({"index": {"_id": str(i)}}, {"n": i, "tags": ["a", "b"], "o": {"p": [1, {}]}}))
    resp = await assert_live_during(http, http.post("/big/_bulk", params={"pretty": "true"}, data=lines,
                                                    headers={"Content-Type": "application/x-ndjson"}))
    assert resp.status == 200
    text = await resp.read()
    body = orjson.loads(text)
    assert len(body["items"]) == DOCS
    assert text == orjson.dumps(body, option=orjson.OPT_INDENT_2) + b"\n"  # built in pieces, same bytes
    compact = await (await http.post("/big/_bulk", data=lines, headers={"Content-Type": "application/x-ndjson"})).read()
    assert compact == orjson.dumps(orjson.loads(compact))


async def test_filter_path_answers_as_before_on_small_bodies(es: AsyncElasticsearch) -> None:
    await es.index(index="logs", id="1", document={"host": {"name": "a", "ip": "10.0.0.1"}, "n": 1}, refresh=True)
    mapping = await es.indices.get_mapping(index="logs", filter_path="**.host.properties.*.type")
    assert mapping.body == {"logs": {"mappings": {"properties": {"host": {"properties": {
        "ip": {"type": "text"}, "name": {"type": "text"}}}}}}}
    assert (await es.indices.get_mapping(index="logs", filter_path=["-**.fields", "-**.n"])).body == {
        "logs": {"mappings": {"properties": {"host": {"properties": {
            "ip": {"type": "text"}, "name": {"type": "text"}}}}}}}
    info = await es.info(filter_path=["version.number", "tag*"])
    assert set(info.body) == {"version", "tagline"} and list(info.body["version"]) == ["number"]


async def test_head_answers_have_no_body_and_build_none(http) -> None:
    resp = await http.head("/", params={"pretty": "true"})
    assert resp.status == 200 and await resp.read() == b""
    resp = await http.head("/missing", params={"filter_path": "**.x"})
    assert resp.status == 404 and await resp.read() == b""


# --- HTTP methods ------------------------------------------------------------------------------

@pytest.mark.parametrize("path, allowed", [
    ("/logs/_doc/1", "DELETE,GET,HEAD,POST,PUT"),
    ("/", "GET,HEAD"),
    ("/_query/async/x/stop", "POST"),
])
async def test_options_answers_200_with_the_routes_methods(http, path: str, allowed: str) -> None:
    # ES's RestController answers OPTIONS itself: 200, empty body, Allow.
    resp = await http.options(path)
    assert resp.status == 200
    assert resp.headers["Allow"] == allowed
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    assert await resp.read() == b""
    resp = await http.patch(path)
    assert resp.status == 405 and resp.headers["Allow"] == allowed
    await assert_live(http)
