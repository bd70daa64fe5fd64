"""What an attacker tried against a real ``serve`` after the first hardening round (issue 10),
each answered as Elasticsearch answers it, with the service live during and after.

The real app on a real socket (``es`` = the official client, ``http`` = raw aiohttp where the
client cannot send the request); ``assert_live_during`` is the issue's liveness bound.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import socket
from concurrent.futures import ProcessPoolExecutor
from typing import Any, AsyncIterator, Awaitable, TypeVar

import aiohttp
import orjson
import pytest
from elasticsearch import AsyncElasticsearch, NotFoundError

from service import keys
from conftest import SLOW, ServerProcess, assert_live, assert_live_during, load_logs

T = TypeVar("T")
pytestmark = pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks.*

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


# --- _tasks?wait_for_completion ------------------------------------------------------------------

@pytest.fixture
async def queued(es: AsyncElasticsearch, slow: None, http) -> AsyncIterator[list[str]]:
    """Twelve async queries mid-scan or queued behind the four workers; deleted at the end
    (``http`` first: closing it closes the server)."""
    await load_logs(es)
    ids = [(await es.esql.async_query(query=SLOW, wait_for_completion_timeout="0ms"))["id"] for _ in range(12)]
    yield ids
    await es.tasks.cancel(actions="*esql*")
    for search_id in ids:
        try:
            await es.esql.async_query_delete(id=search_id)
        except NotFoundError:
            pass


async def test_a_task_list_never_waits_for_another_task_list(es: AsyncElasticsearch, queued: list[str],
                                                              http) -> None:
    # As ES: waiting for a list of tasks skips the task lists, which may be waiting for this one.
    first = asyncio.ensure_future(es.tasks.list(wait_for_completion=True, timeout="30s"))
    await asyncio.sleep(0.2)  # the first is now a task list waiting for the queries
    lists = await assert_live_during(http, es.tasks.list(wait_for_completion=True, timeout="5s",
                                                         actions="cluster:monitor/tasks/lists*", group_by="none"))
    assert len(lists["tasks"]) == 2  # the first and itself; it waited for neither
    await es.tasks.cancel(actions="*esql*")
    assert (await first)["nodes"]


def _storm(url: str, n: int, path: str, params: dict[str, str]) -> list[tuple[int, str | None]]:
    """``n`` concurrent GETs, (status, error type) each. Run in a process of its own
    (``_in_a_process``): in a thread it would hold the GIL the liveness probe needs, and the
    probe would measure this client instead of the server."""
    async def main() -> list[tuple[int, str | None]]:
        async with aiohttp.ClientSession(url, connector=aiohttp.TCPConnector(limit=0)) as session:
            async def one() -> tuple[int, str | None]:
                async with session.get(path, params=params) as resp:
                    return resp.status, (await resp.json()).get("error", {}).get("type")
            return await asyncio.gather(*(one() for _ in range(n)))
    return asyncio.run(main())


async def _in_a_process(fn: Any, *args: Any) -> Any:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)


async def _live_throughout(live: aiohttp.ClientSession | Any, attack: Awaitable[T]) -> T:
    """``assert_live`` again and again while ``attack`` runs (its stall may come late, as
    when a thousand waits time out together), and once after."""
    task = asyncio.ensure_future(attack)
    while not task.done():
        await assert_live(live)  # a TestClient, or a ClientSession with a base URL
        await asyncio.sleep(0.1)
    await assert_live(live)
    return await task


@pytest.mark.slow
async def test_a_storm_of_waiting_task_lists_keeps_the_service_live(server_process: ServerProcess) -> None:
    # Was one future per waiter per task: 1000 waiters on 300 tasks took 1 GB and GET / 12 s.
    client = server_process.start(slice_pause_s=0.02)
    client.bulk(index="logs", operations=[op for i in range(20000) for op in ({"index": {}}, {"bytes": i})],
                refresh=True)
    for _ in range(200):
        client.esql.async_query(query=SLOW, wait_for_completion_timeout="0ms")
    async with aiohttp.ClientSession(server_process.url) as live:
        answers = await _live_throughout(live, _in_a_process(
            _storm, server_process.url, 1000, "/_tasks", {"wait_for_completion": "true", "timeout": "1s"}))
    # ES's timeout while the queries still run, or the list once they are done; nothing else
    assert set(answers) <= {(500, "elasticsearch_timeout_exception"), (200, None)}
    assert (500, "elasticsearch_timeout_exception") in answers
    lists = [t for t in client.tasks.list(group_by="none")["tasks"] if t["action"] == "cluster:monitor/tasks/lists"]
    assert len(lists) == 1  # every waiter is gone
    client.tasks.cancel(actions="*esql*")
    assert server_process.stop() == 0


# --- clients that leave mid-request --------------------------------------------------------------

@pytest.mark.slow
def test_clients_that_leave_mid_body_are_not_logged_as_server_errors(server_process: ServerProcess) -> None:
    # Each was an error-level traceback with an error id: an attacker could fill the disk with logs.
    client = server_process.start()
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", server_process.port)) as sock:
            sock.sendall(b"POST /logs/_doc HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100\r\n\r\n{")
    assert client.info()["tagline"] == "You Know, for Search"
    assert not client.indices.exists(index="logs")  # nothing was written
    assert server_process.stop() == 0
    log = server_process.log.read_text()
    assert "request_failed" not in log and "Traceback" not in log
    assert log.count('"client_disconnected"') == 50


# --- a body declared too big ---------------------------------------------------------------------

async def test_a_body_declared_over_the_limit_is_413_before_it_is_read(server, http) -> None:
    # Was: the server waited for (and read up to) 100 MB before answering.
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"PUT /logs/_doc/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 200000000\r\n\r\n{}")
        answer = await asyncio.to_thread(_read_answer, sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"Connection: close" in head
    error = orjson.loads(body)["error"]
    assert error["type"] == "content_too_long_exception"
    assert "104857600" in error["reason"]
    assert (await http.head("/logs")).status == 404  # nothing was written
    await assert_live(http)


def _read_answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer (head and its Content-Length of body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


# --- thousands of tasks --------------------------------------------------------------------------

async def test_thousands_of_tasks_list_as_a_tree_and_cancel_in_linear_time(server, http,
                                                                             es: AsyncElasticsearch) -> None:
    # A queue storm leaves thousands of queued searches, each a task with a child (5,819 after 3,000
    # submits); the parent tree and cancel walked every task for every task (GET / 2.5 s). Registered
    # here directly: queueing them through real queries takes half a minute.
    manager = server.app[keys.TASKS]
    parents = [manager.register("indices:data/read/esql/async", f"q{i}", {}) for i in range(8000)]
    children = [manager.register("indices:data/read/esql/compute", f"q{i}", {}, parent=p)
                for i, p in enumerate(parents)]
    tree = await _live_throughout(http, es.tasks.list(group_by="parents", detailed=True,
                                                      actions="indices:data/read/esql*"))
    assert len(tree["tasks"]) == 8000
    first = tree["tasks"][parents[0].task_id]
    assert [c["id"] for c in first["children"]] == [children[0].id]
    await _live_throughout(http, es.tasks.cancel(actions="indices:data/read/esql/async"))
    assert all(c.cancelled for c in children)  # cancelling a parent cancels its child
    for task in children + parents:
        manager.unregister(task)
    assert not manager.tasks or all(t.action.startswith("cluster:") for t in manager)


async def test_filter_path_reaches_inside_a_stored_source(es: AsyncElasticsearch) -> None:
    # The stored _source is sent pre-encoded; filter_path answered {} for any path into it (ES filters it too).
    await es.index(index="fp", id="1", document={"a": [[1]], "b": {"c": 1, "d": 2}}, refresh=True)
    assert (await es.get(index="fp", id="1", filter_path="_source.a")).body == {"_source": {"a": [[1]]}}
    assert (await es.get(index="fp", id="1", filter_path="**.c")).body == {"_source": {"b": {"c": 1}}}
    assert (await es.get(index="fp", id="1", filter_path=["_id", "-_source.b.d"])).body == {"_id": "1"}
    assert (await es.get(index="fp", id="1", filter_path="-_source.b.d"))["_source"] == {"a": [[1]], "b": {"c": 1}}
    assert (await es.get(index="fp", id="1", filter_path="_source"))["_source"] == {"a": [[1]], "b": {"c": 1, "d": 2}}


# --- repeated query parameters -------------------------------------------------------------------

async def test_a_repeated_query_parameter_takes_its_last_value_as_in_es(http) -> None:
    # ES's RestUtils.decodeQueryString keeps the last value; the first one was used, so a bad value
    # after a good one wrote the document.
    resp = await http.put("/logs/_doc/1", params=[("refresh", "wait_for"), ("refresh", "bogus")], json={"a": 1})
    assert resp.status == 400
    assert (await resp.json())["error"]["reason"] == "Unknown value for refresh: [bogus]."
    assert (await http.head("/logs")).status == 404  # nothing was written
    resp = await http.get("/", params=[("pretty", "true"), ("pretty", "false"), ("filter_path", "name"),
                                       ("filter_path", "tagline")])
    assert await resp.read() == b'{"tagline":"You Know, for Search"}'
    resp = await http.put("/logs/_doc/1", params=[("refresh", "bogus"), ("refresh", "true")], json={"a": 1})
    assert resp.status == 201
    assert (await (await http.get("/logs/_doc/1")).json())["_source"] == {"a": 1}
