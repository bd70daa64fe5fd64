"""`pip install .` (not editable) gives a working service: the wheel carries its grammar and
migrations, and a server started from it, outside the repository, answers the official client."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from conftest import ROOT, free_port

pytestmark = pytest.mark.slow

SOURCES = ["pyproject.toml", "README.md", "service", "migrations"]


def run(*args: str | Path, cwd: Path) -> None:
    subprocess.run([str(a) for a in args], cwd=cwd, check=True, capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built once for the module from a copy of the tree (so the build's
    ``build/`` and ``*.egg-info`` never touch, or race in, the checkout). The build backend
    comes from pip's configured index, as for any ``pip install .``."""
    tmp_path = tmp_path_factory.mktemp("wheel")
    src = tmp_path / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True,
                            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(ROOT / name, src / name)
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp_path / "dist", src, cwd=tmp_path)
    (built,) = (tmp_path / "dist").glob("esquire-*.whl")
    return built


def install(wheel: Path, venv: Path) -> Path:
    """A fresh venv holding only the wheel; the pinned dependencies are reached through a
    ``.pth`` line naming this venv's site-packages (a bare path: its ``.pth`` files, the
    editable install's finder among them, are not run), so nothing is downloaded."""
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=venv.parent)
    python = venv / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", "--quiet", wheel,
        cwd=venv.parent)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    (Path(site) / "esquire-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_wheel_ships_its_data_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    migrations = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert migrations and {f"service/migrations/{m}" for m in migrations} <= names
    assert "service/query/esql/grammar.lark" in names
    assert "service/systemd/esquire.service" in names  # what esquire install-unit writes
    console = {f"service/console/static/{p.name}" for p in (ROOT / "service" / "console" / "static").iterdir()}
    assert {"service/console/static/index.html", "service/console/static/app.js"} <= console <= names


def test_installed_wheel_serves_outside_the_repository(wheel: Path, tmp_path: Path) -> None:
    python = install(wheel, tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("ESQUIRE_")}
    where = subprocess.run([python, "-c", "import service; print(service.__file__)"], cwd=elsewhere, env=env,
                           check=True, capture_output=True, text=True).stdout.strip()
    assert Path(where).is_relative_to(tmp_path / "venv"), where

    port = free_port()
    log = tmp_path / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([python, "-m", "service", "serve", "--port", str(port), "--data-dir", "data"],
                                cwd=elsewhere, env=env, stdout=out, stderr=out)
    try:
        client = Elasticsearch(f"http://127.0.0.1:{port}", request_timeout=30)
        deadline = time.monotonic() + 30
        while not client.ping():
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        assert client.info()["tagline"] == "You Know, for Search"

        client.indices.create(index="logs", mappings={"properties": {"host": {"properties": {
            "name": {"type": "keyword"}}}, "bytes": {"type": "long"}}})
        ops: list[dict] = []
        for i in range(30):
            ops += [{"index": {"_index": "logs"}}, {"host": {"name": f"web-{i % 3}"}, "bytes": i}]
        assert client.bulk(operations=ops, refresh=True)["errors"] is False

        result = client.esql.query(query="FROM logs | STATS n = COUNT(*), b = SUM(bytes) BY host.name "
                                         "| SORT host.name | LIMIT 10")
        assert result["values"] == [[10, 135, "web-0"], [10, 145, "web-1"], [10, 155, "web-2"]]
        assert (elsewhere / "data").is_dir()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_console/", timeout=30) as page:  # the web console
            assert page.headers["Content-Type"].startswith("text/html") and b"app.js" in page.read()
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
    assert code == 0, log.read_text()
