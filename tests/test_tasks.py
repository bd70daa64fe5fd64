"""The task management API through the official client, while real queries run."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from typing import Any, AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError

from service import keys
from conftest import SLOW, load_logs

pytestmark = pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")


@pytest.fixture
async def running(es: AsyncElasticsearch, slow: None, http) -> AsyncIterator[list[str]]:
    """Two async queries mid-scan; deleted at the end."""
    await load_logs(es)
    ids = [(await es.esql.async_query(query=SLOW, wait_for_completion_timeout="0ms"))["id"] for _ in range(2)]
    yield ids
    for search_id in ids:
        try:
            await es.esql.async_query_delete(id=search_id)
        except NotFoundError:
            pass


def esql_tasks(listing: dict[str, Any]) -> dict[str, Any]:
    (node,) = listing["nodes"].values()
    return {tid: t for tid, t in node["tasks"].items() if t["action"].startswith("indices:data/read/esql")}


async def test_list_groups_by_nodes_parents_and_none(es: AsyncElasticsearch, running: list[str], http) -> None:
    node_id = http.app[keys.NODE].id
    listing = (await es.tasks.list(actions="*esql*", detailed=True)).body
    node = listing["nodes"][node_id]
    assert node["name"] == "esquire-1" and node["transport_address"] == "127.0.0.1:9300"
    tasks = esql_tasks(listing)
    async_tasks = [t for t in tasks.values() if t["action"] == "indices:data/read/esql[a]"]
    assert len(async_tasks) == 2
    assert {t["status"]["request_id"] for t in async_tasks} == set(running)
    assert all(t["description"] == SLOW and t["cancellable"] and not t["cancelled"] for t in async_tasks)
    children = [t for t in tasks.values() if t["action"] == "indices:data/read/esql/compute"]
    assert {c["parent_task_id"] for c in children} == {f"{t['node']}:{t['id']}" for t in async_tasks}

    parents = (await es.tasks.list(actions="*esql*", group_by="parents")).body["tasks"]
    assert len(parents) == 2 and all(len(p["children"]) == 1 for p in parents.values())
    flat = (await es.tasks.list(actions="indices:data/read/esql[a]", group_by="none")).body["tasks"]
    assert len(flat) == 2 and "description" not in flat[0]

    own = (await es.tasks.list(actions="cluster:monitor/tasks/lists", group_by="none")).body["tasks"]
    assert [t["action"] for t in own] == ["cluster:monitor/tasks/lists"]
    with pytest.raises(BadRequestError):
        await es.tasks.list(group_by="other")


async def test_detailed_progress_increases(es: AsyncElasticsearch, running: list[str]) -> None:
    def scanned(listing: dict[str, Any]) -> int:
        return sum(t["status"]["rows_scanned"] for t in esql_tasks(listing).values()
                   if t["action"].endswith("[a]"))

    first = scanned((await es.tasks.list(actions="*esql*", detailed=True)).body)
    await asyncio.sleep(0.3)
    second = (await es.tasks.list(actions="*esql*", detailed=True)).body
    assert scanned(second) > first
    statuses = [t["status"] for t in esql_tasks(second).values() if t["action"].endswith("[a]")]
    assert all(s["rows_total"] == 20000 and s["phase"] == "running" for s in statuses)


async def test_get_wait_and_cancel_by_id(es: AsyncElasticsearch, running: list[str]) -> None:
    tasks = esql_tasks((await es.tasks.list(actions="indices:data/read/esql[a]")).body)
    task_id = next(iter(tasks))
    got = await es.tasks.get(task_id=task_id)
    assert got["completed"] is False and got["task"]["description"] == SLOW
    with pytest.raises(Exception) as info:
        await es.tasks.get(task_id=task_id, wait_for_completion=True, timeout="100ms")
    assert "Timed out waiting for completion" in str(info.value)
    cancelled = await es.tasks.cancel(task_id=task_id)
    (node,) = cancelled["nodes"].values()
    assert node["tasks"][task_id]["cancelled"] is True
    waited = await es.tasks.get(task_id=task_id, wait_for_completion=True, timeout="10s")
    assert waited["completed"] is True
    with pytest.raises(NotFoundError):
        await es.tasks.get(task_id=task_id)
    with pytest.raises(BadRequestError) as error:
        for candidate in running:
            await es.esql.async_query_get(id=candidate, wait_for_completion_timeout="10s")
    assert error.value.body["error"]["type"] == "task_cancelled_exception"


async def test_cancel_by_filter_and_unknown_ids(es: AsyncElasticsearch, running: list[str], http) -> None:
    cancelled = await es.tasks.cancel(actions="indices:data/read/esql[a]", wait_for_completion=True)
    (node,) = cancelled["nodes"].values()
    assert len(node["tasks"]) == 2
    assert (await es.tasks.list(actions="*esql*")).body == {"nodes": {}}
    node_id = http.app[keys.NODE].id
    missing = await es.tasks.cancel(task_id=f"{node_id}:999999")
    assert missing["nodes"] == {} and missing["node_failures"][0]["caused_by"]["reason"] == \
        f"task [{node_id}:999999] is not found"
    with pytest.raises(NotFoundError):
        await es.tasks.get(task_id=f"{node_id}:999999")
    with pytest.raises(BadRequestError) as info:
        await es.tasks.get(task_id="nonsense")
    assert info.value.body["error"]["reason"] == "malformed task id nonsense"


async def test_opaque_id_travels_to_task_and_logs(es: AsyncElasticsearch, slow: None,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from service.logs import configure_logging
    configure_logging("json", "info")
    try:
        await load_logs(es, 2000)
        client = es.options(opaque_id="trace-42")
        resp = await client.esql.async_query(query=SLOW, wait_for_completion_timeout="0ms")
        listing = (await es.tasks.list(actions="indices:data/read/esql[a]", detailed=True)).body
        (task,) = esql_tasks(listing).values()
        assert task["headers"] == {"X-Opaque-Id": "trace-42"}
        await es.esql.async_query_get(id=resp["id"], wait_for_completion_timeout="30s")
        sync = await client.esql.query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1")
        assert sync.meta.headers["X-Opaque-Id"] == "trace-42"
    finally:
        configure_logging("json", "warning")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]
    finished = [line for line in lines if line.get("event") == "query finished"]
    assert finished and all(line.get("opaque_id") == "trace-42" for line in finished)
    assert all("task_id" in line for line in finished)


def test_a_client_that_goes_away_cancels_its_query(server_process) -> None:
    """On a real server process: production does not cancel handlers on disconnect (the
    test server does), so the query handler watches its connection itself."""
    client = server_process.start(slice_pause_s=0.5)  # 20 slices: 10 s unless cancelled
    try:
        client.bulk(index="logs", operations=[op for i in range(20000) for op in ({"index": {}}, {"bytes": i})],
                    refresh=True)
        request = urllib.request.Request(f"{server_process.url}/_query", data=json.dumps({"query": SLOW}).encode(),
                                         headers={"Content-Type": "application/json"})
        with pytest.raises(OSError):  # the timeout closes the connection
            urllib.request.urlopen(request, timeout=0.5)
        deadline = time.monotonic() + 5
        while client.tasks.list(actions="indices:data/read/esql*", group_by="none")["tasks"]:
            assert time.monotonic() < deadline, "the query outlived its client"
            time.sleep(0.1)
    finally:
        client.close()
