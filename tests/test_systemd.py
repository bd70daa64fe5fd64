"""Running under systemd: READY=1 and STOPPING=1 over a real NOTIFY_SOCKET from a real
``esquire serve``; ``esquire check`` through the command line over real data directories and
ports; the unit ``esquire install-unit`` writes, verified by ``systemd-analyze`` where it is
installed; the service under the kernel's MemoryDenyWriteExecute."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from elasticsearch import Elasticsearch

from conftest import ROOT, ServerProcess, free_port, index_hosts
from service.notify import notify

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


def esquire(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ESQUIRE_") and k != "NOTIFY_SOCKET"}
    return subprocess.run([sys.executable, "-m", "service", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**environ, **(env or {})})


# --- sd_notify ------------------------------------------------------------------------------

@pytest.fixture(params=["path", "abstract"])
def notify_socket(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A datagram socket bound where systemd's would be, and the NOTIFY_SOCKET naming it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    if request.param == "path":
        address = name = str(tmp_path / "notify")
    else:
        name = f"@esquire-test-{uuid.uuid4().hex}"
        address = "\0" + name[1:]
    sock.bind(address)
    sock.settimeout(60)
    yield sock, name
    sock.close()


@pytest.mark.slow
def test_serve_notifies_ready_once_listening_and_stopping(notify_socket: tuple[socket.socket, str],
                                                          tmp_path: Path) -> None:
    sock, name = notify_socket
    port = free_port()
    proc = serve(tmp_path, port, env={"NOTIFY_SOCKET": name})
    try:
        ready = sock.recv(4096).decode().split("\n")
        assert ready == ["READY=1", f"STATUS=serving http://127.0.0.1:{port}, data in {tmp_path / 'data'}"]
        # Ready means listening: the first request, with no retry, is answered.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
            assert response.status == 200
        proc.terminate()
        stopping = sock.recv(4096).decode().split("\n")
        assert stopping == ["STOPPING=1", "STATUS=stopping: finishing the requests and queries in flight"]
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_notify_without_a_socket_sends_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify("READY=1") is False  # logged, not raised: the service runs the same unwatched


# --- esquire check --------------------------------------------------------------------------

def failures(done: subprocess.CompletedProcess[str]) -> list[str]:
    lines = done.stderr.splitlines()
    assert all(line.startswith("esquire check: ") for line in lines), done.stderr
    return [line.removeprefix("esquire check: ") for line in lines]


def test_check_a_first_start_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "new" / "data"
    port = str(free_port())
    done = esquire("check", "--data-dir", str(data), "--port", port)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"esquire check: ok ({data}, 127.0.0.1:{port})\n"
    assert not (tmp_path / "new").exists()
    assert esquire("check", "--data-dir", str(data), "--port", port, "--before-start").returncode == 0


@pytest.mark.slow
def test_check_a_stopped_and_a_running_service(server_process: ServerProcess) -> None:
    data, port = str(server_process.data_dir), str(server_process.port)
    server_process.start()
    running = esquire("check", "--data-dir", data, "--port", port)
    assert running.returncode == 0, running.stderr  # the port is Esquire's
    before_start = esquire("check", "--data-dir", data, "--port", port, "--before-start")
    assert before_start.returncode == 1
    assert failures(before_start) == [f"port 127.0.0.1:{port} is in use: serve could not listen there"]
    assert server_process.stop() == 0

    files = sorted(p.name for p in server_process.data_dir.iterdir())
    for extra in ((), ("--before-start",)):
        done = esquire("check", "--data-dir", data, "--port", port, *extra)
        assert (done.returncode, done.stderr) == (0, "")
    assert sorted(p.name for p in server_process.data_dir.iterdir()) == files  # no -shm, no -wal left


def started(proc: subprocess.Popen[bytes], client: Elasticsearch, log: Path) -> None:
    """Wait until ``client`` pings the server ``proc`` runs; fail with its log if it exits."""
    deadline = time.monotonic() + 30
    while not client.ping():
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)


def serve(tmp_path: Path, port: int, *prefix: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """``esquire serve`` on ``port`` over ``tmp_path/data``, logging to ``tmp_path/server.log``;
    ``prefix`` is the interpreter's command line before the service's arguments."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("ESQUIRE_") and k != "NOTIFY_SOCKET"}
    args = ["serve", "--port", str(port), "--data-dir", str(tmp_path / "data"), "--log-format", "json"]
    with open(tmp_path / "server.log", "ab") as log:
        return subprocess.Popen([sys.executable, *(prefix or ("-m", "service")), *args], cwd=ROOT, stdout=log,
                                stderr=log, env={**environ, **(env or {})})


@pytest.mark.slow
def test_check_a_secured_service_answering_401(tmp_path: Path) -> None:
    port = free_port()
    proc = serve(tmp_path, port, env={"ESQUIRE_SECURITY": "true", "ELASTIC_PASSWORD": "secret-pw"})
    try:
        started(proc, Elasticsearch(f"http://127.0.0.1:{port}", basic_auth=("elastic", "secret-pw")),
                tmp_path / "server.log")
        done = esquire("check", "--data-dir", str(tmp_path / "data"), "--port", str(port))
        assert done.returncode == 0, done.stderr
    finally:
        proc.kill()
        proc.wait()


def applied(db: Path, sql: str) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute(sql)
    conn.close()


def migrated(data: Path) -> Path:
    """A data directory a real start migrated; its database."""
    server = ServerProcess(data)
    server.start()
    assert server.stop() == 0
    return data / "esquire.db"


@pytest.mark.slow
def test_check_schema_newer_or_behind(tmp_path: Path) -> None:
    data = tmp_path / "data"
    db = migrated(data)
    port = str(free_port())
    (newest,) = sqlite3.connect(db).execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    applied(db, f"DELETE FROM schema_migrations WHERE version = {newest}")
    behind = esquire("check", "--data-dir", str(data), "--port", port)
    assert behind.returncode == 1
    assert failures(behind) == [f"database schema version {newest - 1} is behind this Esquire's ({newest}): "
                                "serve applies the missing migrations when it starts"]
    assert esquire("check", "--data-dir", str(data), "--port", port, "--before-start").returncode == 0

    applied(db, f"INSERT INTO schema_migrations VALUES ({newest}, 'x', 0), ({newest + 1}, 'future', 0)")
    for extra in ((), ("--before-start",)):
        newer = esquire("check", "--data-dir", str(data), "--port", port, *extra)
        assert newer.returncode == 1
        assert failures(newer) == [f"database schema version {newest + 1} is newer than this Esquire supports "
                                   f"({newest}); upgrade Esquire or use another data directory"]


class _NotElasticsearch(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html>hello</html>")

    def log_message(self, *args: object) -> None:
        pass


def test_check_names_every_failure_one_line_each(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "esquire.db").write_bytes(b"not a database, " * 512)
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotElasticsearch)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    port = other.server_address[1]
    try:
        done = esquire("check", "--data-dir", str(data), "--port", str(port))
    finally:
        other.shutdown()
        other.server_close()
    assert done.returncode == 1
    assert failures(done) == [
        f"cannot read the database {data / 'esquire.db'}: file is not a database",
        f"port 127.0.0.1:{port} is in use by something that is not Esquire: "
        f"GET http://127.0.0.1:{port}/ answered 200, not as Elasticsearch",
    ]


def test_check_refuses_a_data_dir_that_is_a_file_and_bad_settings(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    done = esquire("check", "--data-dir", str(tmp_path / "file"), "--port", str(free_port()))
    assert (done.returncode, failures(done)) == (1, [f"data directory {tmp_path / 'file'} is not a directory"])
    bad = esquire("check", "--port", "70000")
    assert (bad.returncode, failures(bad)) == (2, ["port must be between 0 and 65535, got 70000"])


# --- the unit -------------------------------------------------------------------------------

def unit_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_install_unit_prints_this_installation_s_unit(tmp_path: Path) -> None:
    done = esquire("install-unit", "--print")
    assert done.returncode == 0
    lines = unit_lines(done.stdout)
    command = f"{sys.executable} -m service"  # run as python -m service: this interpreter, not resolved
    assert f"ExecStartPre={command} check --before-start" in lines
    assert f"ExecStart={command} serve" in lines
    for setting in ("Type=notify", "NotifyAccess=main", "DynamicUser=yes", "StateDirectory=esquire",
                    "Restart=on-failure", "TimeoutStopSec=15s", "ProtectSystem=strict", "ProtectHome=yes",
                    "NoNewPrivileges=yes", "PrivateTmp=yes", "PrivateDevices=yes", "CapabilityBoundingSet=",
                    "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service",
                    "SystemCallFilter=~@privileged", "MemoryDenyWriteExecute=yes", "UMask=0077",
                    "Environment=ESQUIRE_DATA_DIR=%S/esquire ESQUIRE_LOG_FORMAT=json"):
        assert setting in lines, setting
    assert "@" not in "".join(line.partition("=")[2] for line in lines if not line.startswith("SystemCallFilter"))


def test_install_unit_writes_the_unit_for_an_executable_and_a_config(tmp_path: Path) -> None:
    config = tmp_path / "etc esquire.toml"
    config.write_text("shutdown_grace_seconds = 7\nport = 9201\n")
    done = esquire("install-unit", "--dest", str(tmp_path), "--exec", "/opt/esquire/bin/esquire",
                   "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "systemctl daemon-reload\n  systemctl enable --now esquire.service" in done.stdout
    lines = unit_lines((tmp_path / "esquire.service").read_text())
    assert "ExecStart=/opt/esquire/bin/esquire serve" in lines
    assert f'Environment=ESQUIRE_DATA_DIR=%S/esquire ESQUIRE_LOG_FORMAT=json "ESQUIRE_CONFIG={config}"' in lines
    assert "TimeoutStopSec=19s" in lines  # 2 x 7 s of grace + 5 s to close


def test_install_unit_warns_of_a_home_directory_and_an_unwritable_dest(tmp_path: Path) -> None:
    done = esquire("install-unit", "--print", "--exec", "/home/me/.local/bin/esquire")
    assert done.returncode == 0
    assert "ProtectHome=yes hides /home/me/.local/bin/esquire" in done.stderr
    (tmp_path / "file").write_text("")
    failed = esquire("install-unit", "--dest", str(tmp_path / "file"))
    assert failed.returncode == 1 and failed.stderr.startswith("esquire install-unit: cannot write ")


@pytest.fixture
def unit_file(tmp_path: Path) -> Path:
    """The unit for this interpreter (``-m service``), under the unit's own name."""
    done = esquire("install-unit", "--dest", str(tmp_path))
    assert done.returncode == 0, done.stderr
    return tmp_path / "esquire.service"


@needs_systemd_analyze
def test_systemd_analyze_verify(unit_file: Path) -> None:
    done = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit_file)], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


@needs_systemd_analyze
def test_systemd_analyze_security_exposure(unit_file: Path) -> None:
    done = subprocess.run([SYSTEMD_ANALYZE, "security", "--offline=yes", str(unit_file)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    score = re.search(r"Overall exposure level for esquire\.service: (\d+\.\d+) (\w+)", done.stdout)
    assert score is not None, done.stdout
    # 0 to 10, systemd's scale: "OK" below 2; what is left open is the network the service serves
    # (AF_INET, no PrivateNetwork or IP allow list) and @resources, which the workers need.
    assert float(score[1]) <= 1.5 and score[2] == "OK", score[0]


# --- MemoryDenyWriteExecute -----------------------------------------------------------------

_PR_SET_MDWE, _PR_MDWE_REFUSE_EXEC_GAIN = 65, 1  # <linux/prctl.h>, Linux 6.3
_UNDER_MDWE = """
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl({set}, {refuse}, 0, 0, 0) != 0:
    sys.exit(3)
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except PermissionError:
    pass
else:
    sys.exit(4)
os.execv(sys.executable, [sys.executable, "-c", {boot!r}, *sys.argv[1:]])
"""


def _kernel_has_mdwe() -> bool:
    if not sys.platform.startswith("linux"):
        return False
    done = subprocess.run([sys.executable, "-c", "import ctypes, sys; "
                           f"sys.exit(ctypes.CDLL(None).prctl({_PR_SET_MDWE}, {_PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0))"])
    return done.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _kernel_has_mdwe(), reason="the kernel has no PR_SET_MDWE (Linux 6.3 or later)")
def test_the_service_runs_under_memory_deny_write_execute(tmp_path: Path) -> None:
    """The kernel's own W^X (prctl PR_SET_MDWE, inherited by every child, as systemd's
    MemoryDenyWriteExecute= seccomp filter is): the server, its forkserver and a query worker."""
    port = free_port()
    boot = "import sys; from service.__main__ import main; sys.exit(main(sys.argv[1:]))"
    proc = serve(tmp_path, port, "-c", _UNDER_MDWE.format(set=_PR_SET_MDWE, refuse=_PR_MDWE_REFUSE_EXEC_GAIN,
                                                          boot=boot))
    try:
        client = Elasticsearch(f"http://127.0.0.1:{port}", request_timeout=30)
        started(proc, client, tmp_path / "server.log")
        index_hosts(client, 100, hosts=4)
        result = client.esql.query(query='FROM logs | WHERE host.name RLIKE "web-[0-2]" | STATS n = COUNT(*), '
                                         "b = SUM(bytes) | LIMIT 1")
        assert result["values"] == [[75, sum(i for i in range(100) if i % 4 < 3)]]
        proc.terminate()
        assert proc.wait(timeout=30) == 0, (tmp_path / "server.log").read_text()
    finally:
        proc.kill()
        proc.wait()
