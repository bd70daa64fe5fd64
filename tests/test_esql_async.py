"""Async ES|QL through the official client: submit, get, stop, delete, keep_alive, expiry,
restart. A test-only pause per slice (``Control.pause_s``) keeps queries mid-scan."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, NotFoundError

from conftest import SLOW
from service import keys
from service.core.runner import Runner
from service.query.control import Control


async def test_done_in_time_returns_the_result_and_stores_nothing(logs: AsyncElasticsearch, http) -> None:
    resp = await logs.esql.async_query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1",
                                       wait_for_completion_timeout="10s")
    assert resp["is_running"] is False and "id" not in resp.body
    assert resp["values"] == [[20000]] and resp["documents_found"] == 20000
    assert resp.meta.headers["X-Elasticsearch-Async-Is-Running"] == "?0"
    assert "X-Elasticsearch-Async-Id" not in resp.meta.headers
    async with http.app[keys.DATABASE].read() as conn:
        async with conn.execute("SELECT count(*) FROM searches") as cur:
            assert (await cur.fetchone())[0] == 0


async def test_keep_on_completion_stores_the_result(logs: AsyncElasticsearch) -> None:
    resp = await logs.esql.async_query(query="FROM logs | STATS n = COUNT(*) BY host.name | SORT host.name | LIMIT 2",
                                       wait_for_completion_timeout="10s", keep_on_completion=True)
    assert resp["is_running"] is False and resp["id"]
    assert resp.meta.headers["X-Elasticsearch-Async-Id"] == resp["id"]
    got = await logs.esql.async_query_get(id=resp["id"])
    assert got["values"] == [[4000, "h0"], [4000, "h1"]]
    csv = await logs.esql.async_query_get(id=resp["id"], format="csv")
    assert csv.body.splitlines()[0] == "n,host.name"


async def test_running_frame_then_result(logs: AsyncElasticsearch, slow: None) -> None:
    resp = await logs.esql.async_query(query=SLOW, wait_for_completion_timeout="50ms")
    assert resp.body == {"id": resp["id"], "is_running": True, "documents_found": 0, "values_loaded": 0,
                         "columns": [], "values": []}
    assert resp.meta.headers["X-Elasticsearch-Async-Is-Running"] == "?1"
    polled = await logs.esql.async_query_get(id=resp["id"])
    assert polled["is_running"] is True
    done = await logs.esql.async_query_get(id=resp["id"], wait_for_completion_timeout="30s")
    assert done["is_running"] is False and done["is_partial"] is False
    assert done["values"] == [[sum(range(20000)) * 2, 20000]]


async def test_stop_mid_scan_gives_partial_stats(logs: AsyncElasticsearch, slow: None) -> None:
    resp = await logs.esql.async_query(query=SLOW, wait_for_completion_timeout="100ms")
    assert resp["is_running"] is True
    stopped = await logs.esql.async_query_stop(id=resp["id"])
    assert stopped["is_running"] is False and stopped["is_partial"] is True
    total, n = stopped["values"][0]
    assert 0 < n < 20000 and n == stopped["documents_found"]
    assert total == sum(range(n)) * 2  # exact over the rows read (rowid order)
    again = await logs.esql.async_query_get(id=resp["id"])
    assert again["values"] == stopped["values"]


async def test_delete_cancels_and_forgets(logs: AsyncElasticsearch, slow: None) -> None:
    resp = await logs.esql.async_query(query=SLOW, wait_for_completion_timeout="50ms")
    assert (await logs.esql.async_query_delete(id=resp["id"]))["acknowledged"] is True
    with pytest.raises(NotFoundError) as info:
        await logs.esql.async_query_get(id=resp["id"])
    assert info.value.body["error"]["reason"] == resp["id"]
    with pytest.raises(NotFoundError):
        await logs.esql.async_query_delete(id=resp["id"])


async def test_a_worker_that_dies_fails_its_query_and_is_replaced(logs: AsyncElasticsearch, http,
                                                                  slow: None) -> None:
    resp = await logs.esql.async_query(query=SLOW, wait_for_completion_timeout="50ms", keep_on_completion=True)
    (worker,) = http.app[keys.RUNNER].pool._all
    os.kill(worker.process.pid, signal.SIGKILL)
    with pytest.raises(ApiError) as info:
        await logs.esql.async_query_get(id=resp["id"], wait_for_completion_timeout="30s")
    assert info.value.status_code == 500
    assert info.value.body["error"]["reason"] == "the query worker process exited unexpectedly"
    again = await logs.esql.query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1")
    assert again["values"] == [[20000]]


async def test_a_worker_that_ignores_a_cancel_is_killed(logs: AsyncElasticsearch, http,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Control, "pause_s", 30.0)  # the worker sleeps where it cannot see the cancel
    monkeypatch.setattr(Runner, "CANCEL_GRACE_S", 0.2)
    resp = await logs.esql.async_query(query=SLOW, wait_for_completion_timeout="100ms")
    (worker,) = http.app[keys.RUNNER].pool._all
    started = time.monotonic()
    await logs.esql.async_query_delete(id=resp["id"])
    assert time.monotonic() - started < Control.pause_s  # the delete did not wait out the worker's sleep
    worker.process.join(5)  # killed: the signal is sent, the process may take a moment to go
    assert not worker.process.is_alive()
    monkeypatch.setattr(Control, "pause_s", 0.0)
    again = await logs.esql.query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1")
    assert again["values"] == [[20000]]


def test_cancel_interrupts_the_statement_sqlite_is_running() -> None:
    control = Control()
    conn = sqlite3.connect(":memory:")
    conn.set_progress_handler(control.interrupted, 10_000)
    control.cancel("test")
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        conn.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT max(i) FROM n")


async def test_bad_ids(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.esql.async_query_get(id="not-an-id")
    assert info.value.body["error"]["reason"] == "invalid id: [not-an-id]"
    unknown = "FmNJRUZ1YWZCU3dHY1BIOUhaenVSRkEaaXFlZ3h4c1RTWFNocDdnY2FSaERnUTozNDE="
    with pytest.raises(NotFoundError):
        await es.esql.async_query_get(id=unknown)
    with pytest.raises(NotFoundError):
        await es.esql.async_query_stop(id=unknown)
    with pytest.raises(NotFoundError):
        await es.esql.async_query_delete(id="not-an-id")


async def test_errors_come_back_with_their_status(logs: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await logs.esql.async_query(query="FROM logs | EVAL y = nope", wait_for_completion_timeout="5s")
    assert info.value.body["error"]["type"] == "verification_exception"
    with pytest.raises(BadRequestError) as info:
        await logs.esql.async_query(query="FROM logs | EVAL y = nope", keep_on_completion=True)
    assert info.value.body["error"]["type"] == "verification_exception"


async def test_expiry_is_immediate_for_readers_and_the_reaper_cleans_up(logs: AsyncElasticsearch, http) -> None:
    searches = http.app[keys.SEARCHES]
    now = [1_000_000.0]
    searches.clock = lambda: now[0]
    resp = await logs.esql.async_query(query="FROM logs | STATS n = COUNT(*) | LIMIT 1", keep_on_completion=True,
                                       keep_alive="1m", wait_for_completion_timeout="10s")
    await logs.esql.async_query_get(id=resp["id"], keep_alive="2m")  # now + 2m
    now[0] += 90
    assert (await logs.esql.async_query_get(id=resp["id"]))["values"] == [[20000]]
    now[0] += 60
    with pytest.raises(NotFoundError):
        await logs.esql.async_query_get(id=resp["id"])
    assert await searches.reap() == 1
    async with http.app[keys.DATABASE].read() as conn:
        async with conn.execute("SELECT count(*) FROM searches") as cur:
            assert (await cur.fetchone())[0] == 0


async def test_stored_result_survives_a_restart(server_process, tmp_path: Path) -> None:
    client = server_process.start()
    try:
        ops: list[dict[str, Any]] = []
        for i in range(100):
            ops += [{"index": {}}, {"bytes": i}]
        client.bulk(index="logs", operations=ops, refresh=True)
        resp = client.esql.async_query(query="FROM logs | STATS s = SUM(bytes) | LIMIT 1", keep_on_completion=True,
                                       wait_for_completion_timeout="10s")
        server_process.stop()
        client = server_process.start()
        got = client.esql.async_query_get(id=resp["id"])
        assert got["values"] == [[4950]] and got["is_running"] is False
    finally:
        client.close()


async def test_sigterm_stores_what_running_searches_have(server_process, tmp_path: Path) -> None:
    # a stopped query ends at its next slice, well within the grace; the grace is long here
    # so that a loaded machine does not turn the stop into a cancel (CI saw one at 5 s)
    client = server_process.start(slice_pause_s=0.2, env={"ESQUIRE_SHUTDOWN_GRACE_SECONDS": "20"})
    try:
        ops: list[dict[str, Any]] = []
        for i in range(20000):
            ops += [{"index": {}}, {"bytes": 1}]
        client.bulk(index="logs", operations=ops, refresh=True)
        resp = client.esql.async_query(query="FROM logs | STATS n = SUM(bytes) | LIMIT 1", keep_on_completion=True,
                                       wait_for_completion_timeout="500ms")
        assert resp["is_running"] is True
        assert server_process.stop() == 0  # before the query's end: its result is partial below
        client = server_process.start()
        got = client.esql.async_query_get(id=resp["id"])
        assert got["is_running"] is False and got["is_partial"] is True
        assert 0 < got["values"][0][0] < 20000
    finally:
        client.close()


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks.list
async def test_concurrent_queries_do_not_block_polling_or_ingestion(logs: AsyncElasticsearch, slow: None) -> None:
    ids = [(await logs.esql.async_query(query=SLOW, wait_for_completion_timeout="0ms"))["id"] for _ in range(3)]
    info = await asyncio.wait_for(logs.info(), timeout=5)
    assert info["tagline"] == "You Know, for Search"
    indexed = await asyncio.wait_for(logs.index(index="other", document={"n": 1}, refresh=True), timeout=5)
    assert indexed["result"] == "created"
    running = await logs.tasks.list(actions="indices:data/read/esql[a]", group_by="none")
    assert len(running["tasks"]) == 3
    for search_id in ids:
        await logs.esql.async_query_delete(id=search_id)
