"""The web console's server side (issue 16): its page served with a strict CSP, the login that
makes a session key, and "My searches" (list, rows, download) over every language, through
the real app on a real socket. Searches are submitted with the official client and the SME API,
as the console submits them; the console's own endpoints are read with plain HTTP."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any, AsyncIterator

import openpyxl
import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import AsyncElasticsearch

from conftest import SLOW, EsTestServer, running
from service import keys
from service.api.console import SECURITY_HEADERS
from service.app import create_app
from service.settings import Settings, replace

API = "/_console/api"
SME = "/_sme/async_requests"
PASSWORD = "elastic-secret-1"
SML_RANGE = {"dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-02T00:00:00Z"}


async def load_events(es: AsyncElasticsearch, n: int = 50) -> None:
    ops: list[dict[str, Any]] = []
    for i in range(n):
        ops += [{"index": {"_index": "events", "_id": f"e{i}"}},
                {"@timestamp": f"2024-05-01T00:{i // 60:02d}:{i % 60:02d}Z", "host": {"name": f"web-{i % 3}"},
                 "event": {"category": "process"}, "process": {"name": "cmd.exe" if i % 2 else "sh"}, "n": i}]
    assert not (await es.bulk(operations=ops, refresh=True))["errors"]


async def sml_task(http: TestClient, query: str, headers: dict[str, str] | None = None) -> str:
    resp = await http.post(f"{SME}/request", json={"query": query, **SML_RANGE}, headers=headers or {})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["id"]


async def listed(http: TestClient, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    resp = await http.get(f"{API}/searches", headers=headers or {})
    assert resp.status == 200, await resp.text()
    return (await resp.json())["searches"]


async def until_done(http: TestClient, search_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    for _ in range(600):
        found = {s["id"]: s for s in await listed(http, headers)}[search_id]
        if found["state"] not in ("PENDING", "RUNNING"):
            return found
        await asyncio.sleep(0.05)
    raise AssertionError(f"{search_id} never finished")


async def page(http: TestClient, search_id: str, start: int, stop: int, status: int = 200,
               headers: dict[str, str] | None = None) -> dict[str, Any]:
    resp = await http.get(f"{API}/searches/{search_id}/rows", params={"from": start, "to": stop},
                          headers=headers or {})
    assert resp.status == status, await resp.text()
    return await resp.json()


async def download(http: TestClient, search_id: str, body: dict[str, Any], status: int = 200,
                   headers: dict[str, str] | None = None) -> tuple[bytes, Any]:
    resp = await http.post(f"{API}/searches/{search_id}/_download", json=body, headers=headers or {})
    assert resp.status == status, await resp.text()
    return await resp.read(), resp.headers


# --- the page ---------------------------------------------------------------------------------

@pytest.fixture
async def console_files(tmp_path: Path, settings: Settings, aiohttp_client) -> AsyncIterator[TestClient]:
    """A server whose console folder is a test's own, holding a page, a script and a file
    beside the folder that no URL may reach."""
    folder = tmp_path / "console"
    folder.mkdir()
    (folder / "index.html").write_text("<!doctype html><title>t</title>")
    (folder / "app.js").write_text("export const x = 1;\n")
    (tmp_path / "secret.txt").write_text("not for the web")
    app = create_app(settings)
    app[keys.CONSOLE_FILES] = folder
    server = EsTestServer(app)
    await server.start_server()
    try:
        yield await aiohttp_client(server)
    finally:
        await server.close()


async def test_the_page_and_its_files_carry_a_strict_csp(console_files: TestClient) -> None:
    for path, media in (("/_console", "text/html"), ("/_console/", "text/html"),
                        ("/_console/static/app.js", "text/javascript")):
        resp = await console_files.get(path)
        assert resp.status == 200, path
        assert resp.headers["Content-Type"].startswith(media)
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers[name] == value
    csp = SECURITY_HEADERS["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "'unsafe-inline'" not in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.parametrize("name", ["..%2Fsecret.txt", "%2E%2E%2Fsecret.txt", ".hidden.js", "nothing.js",
                                  "index.exe", "app.js%00.css", "a" * 200 + ".js"])
async def test_no_name_reaches_outside_the_console_folder(console_files: TestClient, name: str) -> None:
    resp = await console_files.get(f"/_console/static/{name}")
    assert resp.status in (400, 404)  # an encoded "/" is refused before routing
    assert b"not for the web" not in await resp.read()


# --- my searches, security off ------------------------------------------------------------------

async def test_every_language_is_listed_newest_first_and_reads_alike(es: AsyncElasticsearch, http: TestClient) -> None:
    await load_events(es)
    esql = await es.esql.async_query(query="FROM events | KEEP n, host.name | SORT n | LIMIT 40",
                                     wait_for_completion_timeout="10s", keep_on_completion=True)
    eql = await es.eql.search(index="events", query='process where process.name == "cmd.exe"', size=100,
                              wait_for_completion_timeout="10s", keep_on_completion=True)
    sml = await sml_task(http, "source events | where n < 30 | fields n, host.name")
    await until_done(http, sml)
    searches = await listed(http)
    assert [s["id"] for s in searches] == [sml, eql["id"], esql["id"]]
    by_kind = {s["kind"]: s for s in searches}
    assert by_kind["esql"]["query"] == "FROM events | KEEP n, host.name | SORT n | LIMIT 40"
    assert by_kind["eql"]["query"] == 'process where process.name == "cmd.exe"'
    assert by_kind["eql"]["index"] == "events" and by_kind["esql"]["index"] is None
    assert {s["kind"]: s["rows"] for s in searches} == {"esql": 40, "eql": 25, "sml": 30}
    for item in searches:
        assert item["state"] == "COMPLETED" and item["partial"] is False and item["progress"] == 1.0
        assert item["finished_ms"] >= item["started_ms"] and item["duration_ms"] >= 0

    table = await page(http, esql["id"], 5, 8)
    assert table["columns"] == [{"name": "n", "type": "long"}, {"name": "host.name", "type": "text"}]  # dynamic: text + keyword
    assert table["rows"] == [[5, "web-2"], [6, "web-0"], [7, "web-1"]]
    assert (table["total"], table["from"], table["to"]) == (40, 5, 8)
    hits = await page(http, eql["id"], 0, 100)
    assert hits["hits_kind"] == "events" and hits["to"] == 25
    assert [h["_id"] for h in hits["rows"]] == [f"e{i}" for i in range(1, 50, 2)]
    events = await page(http, sml, 28, 1000)
    assert events["columns"] == [{"name": "n", "type": "long"}, {"name": "host.name", "type": "keyword"}]
    assert len(events["rows"]) == 2 and (events["from"], events["to"]) == (28, 30)
    # paging matches the whole result
    whole = await es.esql.async_query_get(id=esql["id"])
    pages = [row for start in range(0, 40, 7) for row in (await page(http, esql["id"], start, start + 7))["rows"]]
    assert pages == whole["values"]


async def test_eql_sequences_read_and_export_as_grouped_events(es: AsyncElasticsearch, http: TestClient) -> None:
    await load_events(es, 12)
    found = await es.eql.search(index="events", query='sequence by host.name [process where n < 6] '
                                '[process where n >= 6]', wait_for_completion_timeout="10s", keep_on_completion=True)
    hits = await page(http, found["id"], 0, 10)
    assert hits["hits_kind"] == "sequences"
    assert hits["rows"] == found["hits"]["sequences"]
    body, _ = await download(http, found["id"], {"file_type": "csv", "download_all_results": True})
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert len(rows) == 2 * len(found["hits"]["sequences"])
    assert rows[0]["sequence"] == "1" and rows[0]["join_keys"] == json.dumps(found["hits"]["sequences"][0]["join_keys"],
                                                                              separators=(",", ":"))
    assert rows[0]["_id"] == found["hits"]["sequences"][0]["events"][0]["_id"]


async def test_downloads_of_every_language_and_format(es: AsyncElasticsearch, http: TestClient) -> None:
    await load_events(es)
    esql = await es.esql.async_query(query="FROM events | KEEP n, host.name | SORT n | LIMIT 40",
                                     wait_for_completion_timeout="10s", keep_on_completion=True)
    body, headers = await download(http, esql["id"], {"file_type": "csv", "download_all_results": True,
                                                      "file_name": "hosts"})
    assert headers["Content-Disposition"].startswith('attachment; filename="hosts.csv"')
    rows = list(csv.reader(io.StringIO(body.decode())))
    assert rows[0] == ["n", "host.name"] and rows[1:4] == [["0", "web-0"], ["1", "web-1"], ["2", "web-2"]]
    assert len(rows) == 41
    body, _ = await download(http, esql["id"], {"file_type": "json", "download_results_size": 3})
    assert json.loads(body) == [{"n": 0, "host.name": "web-0"}, {"n": 1, "host.name": "web-1"},
                                {"n": 2, "host.name": "web-2"}]
    body, headers = await download(http, esql["id"], {"file_type": "xlsx", "compress_results": True})
    assert headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        sheet = openpyxl.load_workbook(io.BytesIO(archive.read(archive.namelist()[0])), read_only=True).active
        values = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert values[0] == ["n", "host.name"] and values[1] == [0, "web-0"] and len(values) == 41

    eql = await es.eql.search(index="events", query='process where n < 3', wait_for_completion_timeout="10s",
                              keep_on_completion=True)
    body, _ = await download(http, eql["id"], {"file_type": "json", "download_all_results": True})
    assert [e["_id"] for e in json.loads(body)] == ["e0", "e1", "e2"]
    assert json.loads(body)[0]["host"] == {"name": "web-0"} and json.loads(body)[0]["_index"] == "events"
    body, _ = await download(http, eql["id"], {"file_type": "csv", "download_all_results": True})
    header = next(csv.reader(io.StringIO(body.decode())))
    assert header[:2] == ["_index", "_id"] and "host.name" in header and "process.name" in header

    sml = await sml_task(http, "source events | where n < 5 | fields n")
    await until_done(http, sml)
    body, _ = await download(http, sml, {"file_type": "csv", "download_all_results": True})
    assert sorted(body.decode().split("\r\n")[1:-1], key=int) == ["0", "1", "2", "3", "4"]


async def test_bad_reads_are_refused(es: AsyncElasticsearch, http: TestClient) -> None:
    await load_events(es, 5)
    esql = await es.esql.async_query(query="FROM events | LIMIT 5", wait_for_completion_timeout="10s",
                                     keep_on_completion=True)
    for params, reason in (({"from": "x"}, "[from] must be a non-negative integer"),
                           ({"from": 3, "to": 1}, "[from] [3] must not be greater than [to] [1]"),
                           ({"from": 0, "to": 20000}, "a page holds at most [10000] rows")):
        resp = await http.get(f"{API}/searches/{esql['id']}/rows", params=params)
        assert resp.status == 400 and reason in (await resp.json())["error"]["reason"]
    resp = await http.get(f"{API}/searches/{esql['id']}/rows", params={"size": 3})
    assert resp.status == 400  # an unknown parameter, as everywhere
    for unknown in ("FmNoSuchId", "nope", esql["id"][:-2] + "AA"):
        await page(http, unknown, 0, 10, status=404)
        await download(http, unknown, {"file_type": "csv"}, status=404)
    _, _ = await download(http, esql["id"], {"file_type": "pdf"}, status=400)
    resp = await http.post(f"{API}/searches/{esql['id']}/_download", data=b"{nope")
    assert resp.status == 400


async def test_a_running_search_shows_progress_then_stops_partial(logs: AsyncElasticsearch, http: TestClient,
                                                                  slow: None) -> None:
    running = await logs.esql.async_query(query=SLOW, wait_for_completion_timeout="1ms", keep_on_completion=True)
    assert running["is_running"] is True
    seen = []
    for _ in range(600):
        item = {s["id"]: s for s in await listed(http)}[running["id"]]
        assert item["state"] == "RUNNING" and item["finished_ms"] is None
        seen.append(item["progress"])
        if item["progress"] > 0.1:
            break
        await asyncio.sleep(0.05)
    assert seen[-1] > seen[0] or seen[-1] > 0.1, seen
    await download(http, running["id"], {"file_type": "csv"}, status=409)
    await logs.esql.async_query_stop(id=running["id"])
    item = {s["id"]: s for s in await listed(http)}[running["id"]]
    assert item["state"] == "STOPPED" and item["partial"] is True and item["finished_ms"] is not None


async def test_the_list_survives_a_restart(settings: Settings) -> None:
    async with running(settings) as server:
        es = AsyncElasticsearch(str(server.make_url("/")), request_timeout=30)
        await load_events(es, 5)
        done = await es.esql.async_query(query="FROM events | LIMIT 5", wait_for_completion_timeout="10s",
                                         keep_on_completion=True)
        await es.close()
    async with running(settings) as server:
        async with TestClient(server) as http:
            (item,) = await listed(http)
            assert (item["id"], item["query"], item["state"], item["rows"]) == (done["id"], "FROM events | LIMIT 5",
                                                                                 "COMPLETED", 5)


# --- sessions and owners, security on -------------------------------------------------------------

def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
async def secured(settings: Settings, aiohttp_client) -> AsyncIterator[tuple[TestClient, AsyncElasticsearch]]:
    async with running(replace(settings, security=True, bootstrap_password=PASSWORD)) as server:
        admin = AsyncElasticsearch(str(server.make_url("/")), basic_auth=("elastic", PASSWORD), request_timeout=30)
        await load_events(admin)
        await admin.security.put_role(name="reader", indices=[{"names": ["events"], "privileges": ["read"]}])
        for user in ("lola", "lena"):
            await admin.security.put_user(username=user, password="password-1", roles=["reader"])
        yield await aiohttp_client(server), admin
        await admin.close()


async def login(http: TestClient, user: str) -> dict[str, str]:
    resp = await http.post(f"{API}/session", json={"username": user, "password": "password-1"})
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["username"] == user and body["roles"] == ["reader"] and body["expiration"] > 0
    return {"Authorization": f"ApiKey {body['api_key']}"}


async def test_login_makes_a_session_key_and_logout_ends_it(secured: tuple[TestClient, AsyncElasticsearch]) -> None:
    http, admin = secured
    assert await (await http.get(f"{API}/session")).json() == {"security": True, "user": None}
    assert (await http.get(f"{API}/searches")).status == 401
    lola = await login(http, "lola")
    assert await (await http.get(f"{API}/session", headers=lola)).json() == \
        {"security": True, "user": {"username": "lola", "roles": []}}  # a key's own roles: none, its owner's privileges
    keys = (await admin.security.get_api_key(username="lola"))["api_keys"]
    assert [(k["name"], k["invalidated"]) for k in keys] == [("console", False)]
    lifetime = keys[0]["expiration"] - keys[0]["creation"]  # two reads of the clock apart
    assert abs(lifetime - 8 * 3600 * 1000) < 60_000
    assert (await http.get(f"{API}/searches", headers=lola)).status == 200
    resp = await http.delete(f"{API}/session", headers=lola)
    assert await resp.json() == {"invalidated": True}
    assert (await http.get(f"{API}/searches", headers=lola)).status == 401
    assert await (await http.get(f"{API}/session", headers=lola)).json() == {"security": True, "user": None}


@pytest.mark.parametrize("body, status", [({"username": "lola", "password": "wrong"}, 401),
                                          ({"username": "nobody", "password": "password-1"}, 401),
                                          ({"username": "lola"}, 400), ({"username": 1, "password": "x"}, 400),
                                          ({"username": "lola", "password": "password-1", "role": "x"}, 400)])
async def test_a_bad_login_makes_nothing(secured: tuple[TestClient, AsyncElasticsearch], body: dict[str, Any],
                                         status: int) -> None:
    http, admin = secured
    resp = await http.post(f"{API}/session", json=body)
    assert resp.status == status, await resp.text()
    if status == 401:
        assert (await resp.json())["error"]["type"] == "security_exception"
    assert (await admin.security.get_api_key())["api_keys"] == []


async def test_a_login_with_security_off_is_refused(http: TestClient) -> None:
    assert await (await http.get(f"{API}/session")).json() == {"security": False}
    resp = await http.post(f"{API}/session", json={"username": "a", "password": "b"})
    assert resp.status == 400


async def test_a_user_sees_only_its_own_searches(secured: tuple[TestClient, AsyncElasticsearch]) -> None:
    http, admin = secured
    lola, lena = await login(http, "lola"), await login(http, "lena")
    mine = await http.post("/_query/async", headers=lola, json={
        "query": "FROM events | LIMIT 3", "wait_for_completion_timeout": "10s", "keep_on_completion": True})
    esql_id = (await mine.json())["id"]
    task = await sml_task(http, "source events | fields n", headers=lola)
    await until_done(http, task, lola)
    assert {s["id"] for s in await listed(http, lola)} == {esql_id, task}
    assert await listed(http, lena) == []
    assert await listed(http, basic("lola", "password-1")) != []  # the user, by password or by its key
    for search_id in (esql_id, task):
        await page(http, search_id, 0, 3, headers=lena, status=404)
        await download(http, search_id, {"file_type": "csv"}, headers=lena, status=404)
        assert (await page(http, search_id, 0, 3, headers=lola))["total"] > 0


async def test_a_page_scripts_401_carries_no_basic_challenge(secured: tuple[TestClient, AsyncElasticsearch]) -> None:
    """A browser holds a fetch answered 401 with a Basic challenge for its own password dialog
    (headless, for ever): the console's requests get the ApiKey challenge alone; other
    clients, and a navigation, still get both, as Elasticsearch sends them."""
    http, _ = secured
    wrong = {"username": "lola", "password": "wrong"}
    for mode in ("cors", "same-origin"):
        for resp in (await http.post(f"{API}/session", json=wrong, headers={"Sec-Fetch-Mode": mode}),
                     await http.get(f"{API}/searches", headers={"Sec-Fetch-Mode": mode, "Authorization": "ApiKey Zm9vOmJhcg=="}),
                     await http.get("/_query/async/x", headers={"Sec-Fetch-Mode": mode})):
            assert resp.status == 401
            assert resp.headers.getall("WWW-Authenticate") == ["ApiKey"]
    for headers in ({}, {"Sec-Fetch-Mode": "navigate"}):
        resp = await http.get(f"{API}/searches", headers=headers)
        assert resp.status == 401
        assert resp.headers.getall("WWW-Authenticate") == ['Basic realm="security", charset="UTF-8"', "ApiKey"]
