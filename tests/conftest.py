"""Shared fixtures: the real app on a real socket, a real SQLite file, the official client."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Iterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from elasticsearch import AsyncElasticsearch, Elasticsearch

from service.api.middleware import EsRunner
from service.app import create_app
from service.query.control import Control
from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
CONFORMANCE = ROOT.parent / "shared" / "conformance"


# Run a test over both query paths: SQL pushdown (the default) and the Python operators alone,
# the reference pushdown is held to. ``@BOTH_PATHS`` overrides the ``query_pushdown`` fixture,
# so ``settings`` and every server built from it follow.
BOTH_PATHS = pytest.mark.parametrize("query_pushdown", [True, False], ids=["pushdown", "python"])


class StopAfter(Control):
    """A control whose watcher asks for a stop before the ``slices``-th slice (after
    ``slices`` of them), over slices of ``slice_rows`` rows."""

    def __init__(self, slices: int, slice_rows: int = 500) -> None:
        super().__init__(slice_rows=slice_rows, adaptive=False)
        self.left = slices

    def proceed(self) -> bool:
        self.left -= 1
        if self.left < 0:
            self.stop()
        return super().proceed()


@pytest.fixture
def query_pushdown() -> bool:
    return True


@pytest.fixture
def settings(tmp_path: Path, query_pushdown: bool) -> Settings:
    # no 16 MB disk-space reserve file per test database (tests/test_hardening_disk.py covers it)
    return Settings(data_dir=tmp_path / "data", port=0, log_format="json", log_level="warning", disk_reserve_bytes=0,
                    query_pushdown=query_pushdown)


class EsTestServer(TestServer):
    """The app on a real socket behind the same HTTP protocol as ``esquire serve``, so what
    aiohttp's parser refuses (a too-long header, a bad chunk) is answered as in production."""

    async def _make_runner(self, **kwargs: Any) -> EsRunner:
        return EsRunner(self.app, **kwargs)


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[EsTestServer]:
    """The app of ``settings`` on a real socket, closed at the end."""
    server = EsTestServer(create_app(settings))
    await server.start_server()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def server(settings: Settings) -> AsyncIterator[TestServer]:
    async with running(settings) as server:
        yield server


@pytest.fixture
async def http(aiohttp_client, server: TestServer) -> TestClient:
    """Raw HTTP against the same server, for what the official client cannot send."""
    return await aiohttp_client(server)


@pytest.fixture
async def es(server: TestServer) -> AsyncIterator[AsyncElasticsearch]:
    client = AsyncElasticsearch(str(server.make_url("/")), request_timeout=30)
    yield client
    await client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A real ``python -m service serve`` process, for crash and restart tests."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"server-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, slice_pause_s: float = 0.0, env: dict[str, str] | None = None) -> Elasticsearch:
        """Start the server; ``slice_pause_s`` sets the test-only ``Control.pause_s`` in it,
        so its queries stay mid-scan; ``env`` adds ``ESQUIRE_*`` settings."""
        args = ["serve", "--port", str(self.port), "--data-dir", str(self.data_dir), "--log-format", "json"]
        boot = ("import sys; from service.query.control import Control; from service.__main__ import main; "
                f"Control.pause_s = {slice_pause_s!r}; sys.exit(main(sys.argv[1:]))")
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", boot, *args], cwd=ROOT, stdout=log, stderr=log,
                                         env={**os.environ, **(env or {})})
        client = Elasticsearch(self.url, request_timeout=30)
        deadline = time.monotonic() + 30
        while not client.ping():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {self.log.read_text()}")
            time.sleep(0.05)
        return client

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=30)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data")
    yield process
    if process.proc is not None and process.proc.poll() is None:
        process.kill()


# --- liveness and "changes nothing" checks for hostile requests ---------------------------

# A hang guard, not a speed bound: a GET / unanswered by then is a blocked service. How fast it
# answers, idle and under load, is measured by scripts/bench's liveness section.
LIVE_DEADLINE_S = 10.0


async def assert_live(http: TestClient) -> None:
    """``GET /`` answers 200: the service is not blocked."""
    resp = await asyncio.wait_for(http.get("/"), timeout=LIVE_DEADLINE_S)
    assert resp.status == 200


async def assert_live_during(http: TestClient, attack: Awaitable[Any]) -> Any:
    """Start ``attack`` (a request coroutine), check liveness while it runs and after it,
    and return what it returned."""
    task = asyncio.ensure_future(attack)
    await asyncio.sleep(0.05)
    await assert_live(http)
    result = await task
    await assert_live(http)
    return result


async def index_state(es: AsyncElasticsearch, index: str) -> tuple[Any, int]:
    """What a rejected request must leave as it was: the index's mapping and document count."""
    mapping = (await es.indices.get_mapping(index=index)).body
    await es.indices.refresh(index=index)
    count = (await es.count(index=index))["count"]
    return mapping, count


# --- a slow query over enough logs to be caught mid-scan ------------------------------------

SLOW = "FROM logs | EVAL x = bytes * 2 | STATS total = SUM(x), n = COUNT(*) | LIMIT 1"


async def create_and_load(es: AsyncElasticsearch, index: str, mappings: dict[str, Any],
                          docs: list[dict[str, Any]]) -> None:
    """``index`` created with ``mappings``, then ``docs`` indexed in order by one refreshed ``_bulk``."""
    await es.indices.create(index=index, mappings=mappings)
    ops: list[Any] = []
    for doc in docs:
        ops += [{"index": {}}, doc]
    resp = await es.bulk(index=index, operations=ops, refresh=True)
    assert not resp["errors"]


async def load_logs(es: AsyncElasticsearch, n: int = 20000) -> None:
    ops: list[dict[str, Any]] = []
    for i in range(n):
        ops.append({"index": {}})
        ops.append({"host": {"name": f"h{i % 5}"}, "bytes": i})
    resp = await es.bulk(index="logs", operations=ops, refresh=True)
    assert not resp["errors"]


def index_hosts(client: Elasticsearch, n: int, hosts: int) -> None:
    """``n`` documents ``{"host": {"name": "web-<i % hosts>"}, "bytes": i}`` in ``logs``, by one
    refreshed ``_bulk`` of the synchronous client (a server process or a container)."""
    ops: list[dict[str, Any]] = []
    for i in range(n):
        ops += [{"index": {"_index": "logs"}}, {"host": {"name": f"web-{i % hosts}"}, "bytes": i}]
    assert client.bulk(operations=ops, refresh=True)["errors"] is False


@pytest.fixture
async def logs(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await load_logs(es)
    return es


@pytest.fixture
def slow(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pause per slice (``Control.pause_s``, sent to the query workers), so queries are
    reliably caught mid-scan."""
    monkeypatch.setattr(Control, "pause_s", 0.02)


def pytest_configure(config: pytest.Config) -> None:
    from service.logs import configure_logging

    configure_logging("json", "warning")


# --- a real tiny filesystem, where a disk past its flood stage or full is real ---------------------------------------------------------------

def _mount_tmpfs(path: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a tiny tmpfs needs root; the ENOSPC paths need a real full filesystem")
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MB tmpfs; unmounted after the test."""
    mount = tmp_path / "disk"
    _mount_tmpfs(mount, "4m")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_to_the_brim(disk: Path, leave: int = 0) -> Path:
    """Write a filler file until the filesystem has no more than ``leave`` bytes free."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            st = os.statvfs(disk)
            room = st.f_bavail * st.f_frsize - leave
            if room <= 0:
                break
            os.write(fd, b"\0" * min(room, 1 << 16))
    except OSError:  # ENOSPC: full
        pass
    finally:
        os.close(fd)
    return filler

