"""Hardening of the service process (issue 10): one process per data directory, a bounded
SIGTERM, workers that die with their server, and no 500 that carries exception text.

Real server processes (``server_process``) for the process lifecycle; the real app on a
real socket for the error paths; raw sockets for what aiohttp's parser rejects.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, Elasticsearch

from conftest import LIVE_DEADLINE_S, ROOT, SLOW, ServerProcess, assert_live, free_port, load_logs
from service import keys
from service.core.workers import WORKER_NICENESS
from service.logs import configure_logging

pytestmark = pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks.list

ERROR_ID = re.compile(r"internal server error, error id \[([0-9a-f]{8})\]")


def _load(client: Elasticsearch, n: int = 20000) -> None:
    client.bulk(index="logs", operations=[op for i in range(n) for op in ({"index": {}}, {"bytes": 1})],
                refresh=True)


def _assert_live(client: Elasticsearch) -> None:
    """``GET /`` answers (how fast: scripts/bench's liveness section)."""
    assert client.options(request_timeout=LIVE_DEADLINE_S).info()["tagline"] == "You Know, for Search"


def _serve(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "service", "serve", "--port", str(port), "--data-dir", str(data_dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)


# --- one process per data directory ----------------------------------------------------------

@pytest.mark.slow
def test_a_second_serve_on_the_same_data_directory_exits_at_once_naming_the_holder(
        server_process: ServerProcess) -> None:
    client = server_process.start()
    try:
        client.index(index="logs", id="1", document={"a": 1}, refresh=True)
        second = _serve(server_process.data_dir, free_port())
        assert second.returncode == 1
        assert re.fullmatch(
            rf"esquire: data directory {re.escape(str(server_process.data_dir))} is in use by process "
            rf"{server_process.proc.pid} \(serving 127\.0\.0\.1:{server_process.port}, since \S+Z\)\n",
            second.stderr), second.stderr
        _assert_live(client)
        # the first one is untouched: new fields still map (the symptom was "duplicate column name")
        client.index(index="logs", id="2", document={"a": 2, "b": "new"}, refresh=True)
        assert set(client.indices.get_mapping(index="logs")["logs"]["mappings"]["properties"]) == {"a", "b"}
        assert client.count(index="logs")["count"] == 2
    finally:
        client.close()
    server_process.kill()  # the kernel drops the lock with the process: no stale lock after kill -9
    client = server_process.start()
    try:
        assert client.count(index="logs")["count"] == 2
    finally:
        client.close()
    assert server_process.stop() == 0


# --- SIGTERM within a bounded grace -----------------------------------------------------------

def _wait_for_rows(client: Elasticsearch, action: str) -> None:
    """Until a task ``action`` has read some rows."""
    deadline = time.monotonic() + 10
    while not any(task["status"]["rows_scanned"] > 0 for task in
                  client.tasks.list(actions=action, detailed=True, group_by="none")["tasks"]):
        assert time.monotonic() < deadline, f"no {action} task read a row"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_cancels_sync_queries_after_the_grace_and_stores_async_partials(
        server_process: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ESQUIRE_SHUTDOWN_GRACE_SECONDS", "1")
    client = server_process.start(slice_pause_s=0.5)  # 20 slices of 1000 rows: 10 s unless cut short
    try:
        _load(client)
        submitted = client.esql.async_query(query=SLOW, keep_on_completion=True, wait_for_completion_timeout="100ms")
        assert submitted["is_running"] is True
        outcome: dict[str, Any] = {}

        def sync_query() -> None:
            try:
                outcome["response"] = client.esql.query(query=SLOW)
            except ApiError as exc:
                outcome["error"] = exc
        thread = threading.Thread(target=sync_query)
        thread.start()
        _wait_for_rows(client, "indices:data/read/esql")
        _wait_for_rows(client, "indices:data/read/esql[a]")
        _assert_live(client)
        assert server_process.stop() == 0  # within the grace: the running queries end, not run out
        thread.join(timeout=10)
        error = outcome["error"]
        assert isinstance(error, BadRequestError)
        assert error.body["error"]["type"] == "task_cancelled_exception"
        assert error.body["error"]["reason"] == "task cancelled [the service is shutting down]"
    finally:
        client.close()
    client = server_process.start()
    try:
        _assert_live(client)
        got = client.esql.async_query_get(id=submitted["id"])
        assert got["is_running"] is False and got["is_partial"] is True
        assert 0 < got["values"][0][0] < 20000 * 2  # total = SUM(bytes * 2) over the rows read
    finally:
        client.close()
    assert server_process.stop() == 0


# --- no worker outlives its server ------------------------------------------------------------

def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """Running, sleeping or stopped; a zombie (its parent not reaping yet) holds nothing."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG and /proc are Linux's")
def test_workers_and_their_forkserver_die_with_a_killed_server(server_process: ServerProcess) -> None:
    client = server_process.start(slice_pause_s=0.5)
    try:
        _load(client)
        for _ in range(2):  # two busy workers: one will be stopped, one keeps computing
            running = client.esql.async_query(query=SLOW, keep_on_completion=True, wait_for_completion_timeout="0ms")
            assert running["is_running"] is True
        _assert_live(client)
    finally:
        client.close()
    (forkserver,) = [pid for pid in _children(server_process.proc.pid) if "forkserver" in _cmdline(pid)]
    deadline = time.monotonic() + 10
    while len(workers := _children(forkserver)) < 2:
        assert time.monotonic() < deadline, "the second worker did not start"
        time.sleep(0.05)
    descendants = _children(server_process.proc.pid) + workers
    os.kill(workers[0], signal.SIGSTOP)  # a stopped process cannot read its pipe: the hardest state
    try:
        server_process.kill()
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in descendants):
            assert time.monotonic() < deadline, \
                f"outlived the server: {[(pid, _cmdline(pid)) for pid in descendants if _alive(pid)]}"
            time.sleep(0.05)
    finally:
        for pid in descendants:  # never leave a stray process behind, whatever happened
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _priorities(pids: list[int]) -> list[int]:
    """The scheduling priorities of those of ``pids`` still alive."""
    priorities = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            priorities.append(os.getpriority(os.PRIO_PROCESS, pid))
    return priorities


def test_query_workers_run_below_the_service_process(server_process: ServerProcess) -> None:
    client = server_process.start(slice_pause_s=0.5)
    try:
        _load(client)
        client.esql.async_query(query=SLOW, keep_on_completion=True, wait_for_completion_timeout="0ms")
        _wait_for_rows(client, "indices:data/read/esql[a]")  # so a worker runs it
        (forkserver,) = [pid for pid in _children(server_process.proc.pid) if "forkserver" in _cmdline(pid)]
        service = os.getpriority(os.PRIO_PROCESS, server_process.proc.pid)
        # A worker lowers its priority as it starts, before it takes a job; a spare one that
        # is still starting gets there within the deadline.
        deadline = time.monotonic() + 10
        while set(priorities := _priorities(_children(forkserver))) != {service + WORKER_NICENESS}:
            assert time.monotonic() < deadline, f"workers' priorities {priorities}, the service's {service}"
            time.sleep(0.05)
    finally:
        client.close()


# --- unexpected errors: a generic 500 with an error id that is in the log ---------------------

def _break_index(http: Any, index: str) -> None:
    """Drop the index's table behind the service's back, on the real SQLite file: every
    read of it then fails in a way no request validation can foresee."""
    table = http.app[keys.CATALOG].get(index).table
    conn = sqlite3.connect(http.app[keys.DATABASE].path, isolation_level=None)
    try:
        conn.execute(f'DROP TABLE "{table}"')
    finally:
        conn.close()


def _generic_500(error: ApiError) -> str:
    """The error id of a 500 that carries nothing of the exception."""
    assert error.status_code == 500
    body = error.body["error"]
    assert body["type"] == "exception" and body["root_cause"][0]["reason"] == body["reason"]
    match = ERROR_ID.fullmatch(body["reason"])
    assert match, body
    assert "table" not in json.dumps(error.body).lower()
    return match.group(1)


def _logged(lines: list[dict[str, Any]], error_id: str) -> dict[str, Any]:
    (line,) = [line for line in lines if line.get("error_id") == error_id]
    assert line["level"] == "error"
    return line


def _log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The service's JSON log lines since the last call, as rendered in production."""
    return [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.startswith("{")]


async def test_an_unexpected_error_is_a_generic_500_whose_id_is_in_the_log(
        es: AsyncElasticsearch, http, capsys: pytest.CaptureFixture[str]) -> None:
    await load_logs(es, 100)
    _break_index(http, "logs")
    configure_logging("json", "info")  # here: it binds the captured stderr of this test
    try:
        with pytest.raises(ApiError) as info:  # in a handler, on the server
            await es.count(index="logs")
        line = _logged(_log_lines(capsys), _generic_500(info.value))
        assert line["event"] == "request_failed" and "no such table" in line["exception"]

        with pytest.raises(ApiError) as info:  # in a query worker: its traceback, logged by the server
            await es.esql.query(query="FROM logs | STATS n = COUNT(*)")
        line = _logged(_log_lines(capsys), _generic_500(info.value))
        assert line["event"] == "query_failed" and "no such table" in line["traceback"]
        assert "Traceback (most recent call last)" in line["traceback"]

        submitted = await es.esql.async_query(query="FROM logs | STATS n = COUNT(*)", keep_on_completion=True,
                                              wait_for_completion_timeout="0ms")
        with pytest.raises(ApiError) as info:  # a stored async search keeps the same generic error
            await es.esql.async_query_get(id=submitted["id"], wait_for_completion_timeout="30s")
        error_id = _generic_500(info.value)
        assert _logged(_log_lines(capsys), error_id)["event"] == "query_failed"
        with pytest.raises(ApiError) as again:
            await es.esql.async_query_get(id=submitted["id"])
        assert _generic_500(again.value) == error_id
    finally:
        configure_logging("json", "warning")
    await assert_live(http)


# --- what aiohttp's HTTP parser rejects: Elasticsearch's JSON 400, never a text page -----------

def _raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return int(status_line.split()[1]), headers, body


MALFORMED = [
    (b"GARBAGE\r\n\r\n", "illegal_argument_exception", "Invalid method encountered"),
    (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", "illegal_argument_exception", "Bad status line"),
    (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", "too_long_frame_exception",
     "An HTTP line is larger than 8190 bytes."),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Long: " + b"a" * 20_000 + b"\r\n\r\n", "too_long_frame_exception",
     "An HTTP line is larger than 8190 bytes."),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", "illegal_argument_exception", "Invalid header token"),
    (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", "illegal_argument_exception",
     "Invalid character in Content-Length"),
    (b"POST /_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"zz\r\nabc\r\n0\r\n\r\n", "illegal_argument_exception", "Invalid character in chunk size"),
    (b"PUT /gz HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
     b"Content-Length: 8\r\nConnection: close\r\n\r\nnot-gzip", "illegal_argument_exception",
     "Can not decode content-encoding: gzip"),
]


@pytest.mark.slow
def test_malformed_http_gets_elasticsearchs_json_400(server_process: ServerProcess) -> None:
    client = server_process.start()
    try:
        for request, error_type, reason in MALFORMED:
            status, headers, body = _raw(server_process.port, request)
            assert (status, headers["content-type"]) == (400, "application/json"), (request[:40], body)
            assert headers["x-elastic-product"] == "Elasticsearch"
            assert json.loads(body) == {"error": {"root_cause": [{"type": error_type, "reason": reason}],
                                                  "type": error_type, "reason": reason}, "status": 400}
            _assert_live(client)
        assert "gz" not in client.indices.get(index="*").body  # a body that could not be read created nothing
    finally:
        client.close()
    assert server_process.stop() == 0


@pytest.mark.slow
def test_a_rejected_request_whose_body_is_still_coming_gets_its_whole_400(
        server_process: ServerProcess) -> None:
    """The parser rejects the header line while the client is still sending a 2 MB body:
    the server keeps draining it until the answer is read, so no reset destroys the answer."""
    client = server_process.start()
    try:
        with socket.create_connection(("127.0.0.1", server_process.port), timeout=10) as sock:
            sock.sendall(b"PUT /logs/_bulk HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\n"
                         b"X-Opaque-Id: " + b"a" * 20_000 + b"\r\nContent-Length: 2000000\r\n\r\n")
            try:  # all of the body before reading: unread bytes at the server's close would reset
                for _ in range(200):
                    sock.sendall(b"x" * 10_000)
            except OSError:  # the server closed after its answer: the rest has nowhere to go
                pass
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] == b"400", head
        assert b"\r\ncontent-type: application/json" in head.lower(), head
        reason = "An HTTP line is larger than 8190 bytes."
        assert json.loads(body) == {"error": {"root_cause": [{"type": "too_long_frame_exception", "reason": reason}],
                                              "type": "too_long_frame_exception", "reason": reason}, "status": 400}
        _assert_live(client)
    finally:
        client.close()
    assert server_process.stop() == 0


@pytest.mark.slow
def test_a_client_that_keeps_sending_after_a_rejected_request_is_cut_off(server_process: ServerProcess) -> None:
    """The lingering close is bounded: a client that trickles its body and never closes is
    closed on by the server (well within the 10 s this test allows), and the service stays live."""
    client = server_process.start()
    try:
        with socket.create_connection(("127.0.0.1", server_process.port), timeout=10) as sock:
            sock.sendall(b"PUT /logs/_bulk HTTP/1.1\r\nHost: x\r\nX-Opaque-Id: " + b"a" * 20_000
                         + b"\r\nContent-Length: 2000000\r\n\r\n")
            received = b""
            while chunk := sock.recv(65536):  # the answer, then the server's half-close
                received += chunk
            assert received.split(b" ")[1] == b"400", received[:80]
            with pytest.raises(OSError):  # once the server has closed, a send is reset
                for _ in range(100):
                    sock.sendall(b"x")
                    time.sleep(0.1)
        _assert_live(client)
    finally:
        client.close()
    assert server_process.stop() == 0
