"""The single executable (``scripts/build-binary``, PyInstaller --onefile): built once, run
from outside the repository, it serves the official client's calls, runs queries in its
query workers (a forkserver started from the frozen executable) and stops cleanly. Skipped
where PyInstaller is not installed (it is in the test extra, so CI builds it)."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
from elasticsearch import Elasticsearch

from conftest import ROOT, free_port

pytestmark = [pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("PyInstaller") is None,
                                                   reason="PyInstaller is not installed (pip install -e .[test])")]


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dist = tmp_path_factory.mktemp("dist")
    subprocess.run([str(ROOT / "scripts" / "build-binary"), "--dist", str(dist)], cwd=ROOT, check=True,
                   capture_output=True, timeout=600)
    return dist / "esquire"


@pytest.fixture
def served(binary: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Elasticsearch]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ESQUIRE_", "PYTHON"))}
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([str(binary), "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")],
                            cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    es = Elasticsearch(f"http://127.0.0.1:{port}", request_timeout=30)
    deadline = time.monotonic() + 30
    while True:
        try:
            es.info()
            break
        except Exception:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "serve.log").read_text()) from None
            time.sleep(0.05)
    yield proc, es
    es.close()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def test_the_binary_knows_its_version_and_commands(binary: Path, tmp_path: Path) -> None:
    out = subprocess.run([str(binary), "--version"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.startswith("esquire ")
    helped = subprocess.run([str(binary), "--help"], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert "serve" in helped.stdout and "query" in helped.stdout


def test_the_binary_serves_and_runs_queries_in_its_workers(binary: Path, served: tuple[subprocess.Popen[bytes],
                                                                                        Elasticsearch]) -> None:
    proc, es = served
    assert es.info()["tagline"] == "You Know, for Search"
    es.bulk(index="logs", refresh=True, operations=[op for i in range(50) for op in (
        {"index": {}}, {"@timestamp": f"2024-05-01T00:00:{i:02d}Z", "host": {"name": f"h{i % 3}"}})])
    answer = es.esql.query(query="FROM logs | STATS n = COUNT(*) BY host.name | SORT host.name | LIMIT 10")
    assert answer["values"] == [[17, "h0"], [17, "h1"], [16, "h2"]]
    found = es.eql.search(index="logs", query="any where host.name == \"h1\"", size=100)
    assert len(found["hits"]["events"]) == 17
    # the queries ran in workers forked from a forkserver the frozen executable started
    processes = subprocess.run(["ps", "-e", "-ww", "-o", "args="], capture_output=True, text=True).stdout.splitlines()
    assert any(p.startswith(str(binary)) and "multiprocessing.forkserver" in p for p in processes), processes
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
