"""Elasticsearch conventions every endpoint follows: product header, errors, parameters."""

from __future__ import annotations

from elasticsearch import AsyncElasticsearch

VENDOR = "application/vnd.elasticsearch+json; compatible-with=9"


async def test_info_reports_a_9x_cluster(es: AsyncElasticsearch) -> None:
    info = await es.info()
    assert info["version"]["number"].startswith("9.")
    assert info["tagline"] == "You Know, for Search"
    assert set(info) == {"name", "cluster_name", "cluster_uuid", "version", "tagline"}
    assert info.meta.headers["x-elastic-product"] == "Elasticsearch"


async def test_ping(es: AsyncElasticsearch) -> None:
    assert await es.ping() is True


async def test_cluster_uuid_is_stable_across_restarts(aiohttp_server, settings) -> None:
    from service.app import create_app
    from elasticsearch import AsyncElasticsearch as Client

    uuids = []
    for _ in range(2):
        server = await aiohttp_server(create_app(settings))
        async with Client(str(server.make_url("/"))) as client:
            uuids.append((await client.info())["cluster_uuid"])
        await server.close()
    assert uuids[0] == uuids[1]


async def test_product_header_on_errors_and_head(http) -> None:
    for method, path in [("GET", "/nope/_mapping"), ("HEAD", "/"), ("HEAD", "/missing"), ("GET", "/_nothing_here")]:
        resp = await http.request(method, path)
        assert resp.headers["X-Elastic-Product"] == "Elasticsearch", (method, path)


async def test_unknown_route_is_es_routing_error(http) -> None:
    resp = await http.get("/_nothing_here/_at_all/x/y")
    assert resp.status == 400
    assert await resp.json() == {"error": "no handler found for uri [/_nothing_here/_at_all/x/y] and method [GET]"}


async def test_wrong_method_is_405_with_allow(http) -> None:
    resp = await http.post("/")
    assert resp.status == 405
    body = await resp.json()
    assert body["status"] == 405 and body["error"].startswith("Incorrect HTTP method for uri [/] and method [POST]")
    assert "GET" in resp.headers["Allow"]


async def test_opaque_id_is_echoed(es: AsyncElasticsearch) -> None:
    resp = await es.options(opaque_id="trace-me").info()
    assert resp.meta.headers["x-opaque-id"] == "trace-me"


async def test_vendor_media_type_is_accepted_and_echoed(http) -> None:
    resp = await http.put("/vendor", data=b"{}", headers={"Content-Type": VENDOR, "Accept": VENDOR})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/vnd.elasticsearch+json")


async def test_missing_content_type_is_406(http) -> None:
    resp = await http.put("/ct", data=b"{}", skip_auto_headers={"Content-Type"})
    assert await resp.json() == {"error": "Content-Type header is missing", "status": 406}


async def test_text_plain_body_is_406(http) -> None:
    resp = await http.put("/ct", data=b"{}", headers={"Content-Type": "text/plain"})
    assert resp.status == 406
    assert await resp.json() == {"error": "Content-Type header [text/plain] is not supported", "status": 406}
    assert (await http.head("/ct")).status == 404


async def test_mismatched_compatible_versions_are_rejected(http) -> None:
    resp = await http.put("/ct", data=b"{}", headers={
        "Content-Type": "application/vnd.elasticsearch+json; compatible-with=9",
        "Accept": "application/vnd.elasticsearch+json; compatible-with=8"})
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "media_type_header_exception"


async def test_unknown_query_parameter_is_rejected(http) -> None:
    resp = await http.get("/_mapping", params={"foo": "1"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"]["type"] == "illegal_argument_exception"
    assert body["error"]["reason"] == "request [/_mapping] contains unrecognized parameter: [foo]"


async def test_pretty_indents_and_ends_with_newline(http) -> None:
    text = await (await http.get("/", params={"pretty": ""})).text()
    assert text.endswith("\n") and '\n  "name"' in text


async def test_filter_path(http) -> None:
    body = await (await http.get("/", params={"filter_path": "version.number,tagline"})).json()
    assert set(body) == {"version", "tagline"} and list(body["version"]) == ["number"]
    body = await (await http.get("/", params={"filter_path": "-version"})).json()
    assert "version" not in body and "tagline" in body
    body = await (await http.get("/", params={"filter_path": "**.number"})).json()
    assert body == {"version": {"number": body["version"]["number"]}}


async def test_bulk_filter_path_errors(http) -> None:
    lines = b'{"index":{"_index":"fp"}}\n{"a":1}\n'
    resp = await http.post("/_bulk", params={"filter_path": "errors"}, data=lines,
                           headers={"Content-Type": "application/x-ndjson"})
    assert await resp.json() == {"errors": False}


async def test_error_trace_adds_stack_trace(http) -> None:
    body = await (await http.get("/missing/_mapping", params={"error_trace": "true"})).json()
    assert "stack_trace" in body["error"]


async def test_errors_are_not_filtered(http) -> None:
    body = await (await http.get("/missing/_mapping", params={"filter_path": "nothing"})).json()
    assert body["status"] == 404 and body["error"]["type"] == "index_not_found_exception"


async def test_percent_encoded_path_segments_are_decoded(es: AsyncElasticsearch) -> None:
    await es.index(index="enc", id="a/b:c d", document={"x": 1})
    doc = await es.get(index="enc", id="a/b:c d")
    assert doc["_id"] == "a/b:c d"


async def test_oversized_body_is_413(aiohttp_server, aiohttp_client, tmp_path) -> None:
    from service.app import create_app
    from service.settings import Settings

    app = create_app(Settings(data_dir=tmp_path / "d", port=0, max_body_bytes=2048))
    client = await aiohttp_client(await aiohttp_server(app))
    resp = await client.post("/_bulk", data=b'{"index":{"_index":"big"}}\n' + b'{"a":"' + b"x" * 4096 + b'"}\n',
                             headers={"Content-Type": "application/x-ndjson"})
    assert resp.status == 413
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    assert (await client.head("/big")).status == 404


async def test_bad_boolean_parameter(http) -> None:
    resp = await http.get("/x*/_mapping", params={"allow_no_indices": "yes"})
    assert resp.status == 400
    assert (await resp.json())["error"]["reason"] == (
        "Failed to parse value [yes] as only [true] or [false] are allowed.")
