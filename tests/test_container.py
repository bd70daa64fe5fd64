"""The Containerfile, built and run with podman or docker where one of them has an engine
that answers and can pull the base image: the official client talks to the container (security
on, as the image sets it), ``esquire check`` (the HEALTHCHECK) passes in it, it runs as a
non-root user with no compiler, and ``stop`` ends it cleanly (exit status 0) within the grace."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import uuid
from typing import Iterator

import pytest
from elasticsearch import Elasticsearch

from conftest import ROOT, free_port, index_hosts

pytestmark = pytest.mark.slow

BASE_IMAGE = "docker.io/library/python:3.11-slim"  # the Containerfile's FROM
PASSWORD = "container-pw"
# 2 x shutdown_grace_seconds (5 s) + 5 s to close: the unit's TimeoutStopSec too.
STOP_TIMEOUT_S = 15


def _engine() -> str:
    """podman or docker, whichever has an engine that answers; else skip saying why not."""
    reasons = []
    for tool in ("podman", "docker"):
        path = shutil.which(tool)
        if path is None:
            reasons.append(f"{tool} is not installed")
            continue
        info = subprocess.run([path, "info"], capture_output=True, text=True, timeout=60)
        if info.returncode == 0:
            return path
        said = (info.stderr.strip().splitlines() or ["no answer"])[-1]
        reasons.append(f"{tool} has no engine that answers ({said})")
    pytest.skip("; ".join(reasons))


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image() -> Iterator[tuple[str, str]]:
    """``(engine, tag)`` of the image built from the Containerfile, removed afterwards."""
    engine = _engine()
    pulled = _run(engine, "pull", BASE_IMAGE, timeout=600)
    if pulled.returncode != 0:
        pytest.skip(f"{engine} cannot pull {BASE_IMAGE}: {(pulled.stderr.strip().splitlines() or ['?'])[-1]}")
    tag = f"localhost/esquire-test:{uuid.uuid4().hex[:12]}"
    built = _run(engine, "build", "-t", tag, "-f", str(ROOT / "Containerfile"), str(ROOT), timeout=1800)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    yield engine, tag
    _run(engine, "rmi", "-f", tag)


@pytest.fixture
def container(image: tuple[str, str]) -> Iterator[tuple[str, str, int]]:
    """``(engine, name, port)`` of a container of the image, published on a loopback port."""
    engine, tag = image
    name, port = f"esquire-test-{uuid.uuid4().hex[:12]}", free_port()
    started = _run(engine, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:9200",
                   "-e", f"ELASTIC_PASSWORD={PASSWORD}", tag)
    assert started.returncode == 0, started.stderr
    yield engine, name, port
    _run(engine, "rm", "-f", name)


def test_the_container_serves_checks_and_stops_cleanly(container: tuple[str, str, int]) -> None:
    engine, name, port = container
    client = Elasticsearch(f"http://127.0.0.1:{port}", basic_auth=("elastic", PASSWORD), request_timeout=30)
    deadline = time.monotonic() + 60
    while not client.ping():
        state = _run(engine, "inspect", "-f", "{{.State.Running}}", name).stdout.strip()
        assert state == "true" and time.monotonic() < deadline, _run(engine, "logs", name).stderr
        time.sleep(0.2)
    assert client.info()["tagline"] == "You Know, for Search"
    index_hosts(client, 30, hosts=3)
    result = client.esql.query(query="FROM logs | STATS n = COUNT(*) BY host.name | SORT host.name | LIMIT 5")
    assert result["values"] == [[10, "web-0"], [10, "web-1"], [10, "web-2"]]

    health = _run(engine, "exec", name, "esquire", "check")
    assert (health.returncode, health.stderr) == (0, ""), health.stderr
    assert _run(engine, "exec", name, "id", "-u").stdout.strip() == "10001"
    compilers = _run(engine, "exec", name, "sh", "-c", "command -v gcc cc make || true")
    assert compilers.stdout.strip() == ""

    stopped = _run(engine, "stop", "-t", str(STOP_TIMEOUT_S), name, timeout=STOP_TIMEOUT_S + 60)
    assert stopped.returncode == 0, stopped.stderr
    # Ended by its own SIGTERM handling within the grace, not by the SIGKILL at the timeout (exit status 137).
    assert _run(engine, "inspect", "-f", "{{.State.ExitCode}}", name).stdout.strip() == "0"
    logs = _run(engine, "logs", name)
    assert re.search(r'"event": ?"stopped"', logs.stdout + logs.stderr)
