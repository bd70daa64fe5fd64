"""``esquire query`` (ES|QL) against the real server: result, progress bar, errors, exit codes;
every command's man-style ``--help``."""

from __future__ import annotations

import asyncio
import importlib
import io
import subprocess
import sys

import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from conftest import ROOT, load_logs
from service.cli import COMMANDS
from service.client import ClientError, EsqlSearch, Service, run_search


async def test_query_prints_the_result_and_draws_progress(es: AsyncElasticsearch, server, slow: None) -> None:
    await load_logs(es)
    out, err = io.StringIO(), io.StringIO()
    search = EsqlSearch(Service(str(server.make_url("/"))), "FROM logs | STATS n = COUNT(*) | LIMIT 1")
    status = await asyncio.to_thread(run_search, search, "csv", out, err, progress=True)
    assert status == 0
    assert out.getvalue() == "n\r\n20000\r\n"
    frames = err.getvalue().split("\r")
    assert any("query    [" in f and "/20,000" in f for f in frames[:-1])  # drawn while running
    assert "[##############################]      20,000/20,000" in frames[-1]


async def test_query_errors_and_warnings(es: AsyncElasticsearch, server) -> None:
    service = Service(str(server.make_url("/")))
    with pytest.raises(ClientError, match=r"line 1:6: Unknown index \[nope\]"):
        await asyncio.to_thread(run_search, EsqlSearch(service, "FROM nope"), "txt", io.StringIO(), io.StringIO(),
                                progress=False)
    out, err = io.StringIO(), io.StringIO()
    await asyncio.to_thread(run_search, EsqlSearch(service, "ROW a = 1"), "json", out, err, progress=False)
    assert orjson.loads(out.getvalue())["values"] == [[1]]
    assert err.getvalue() == "warning: No limit defined, adding default limit of [1000]\n"


async def test_command_line(server) -> None:
    def esquire(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "service", "query", "--url", str(server.make_url("/")), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    done = await asyncio.to_thread(esquire, "--format", "tsv", "ROW a = 1, b = \"x\" | LIMIT 1")
    assert (done.returncode, done.stdout, done.stderr) == (0, "a\tb\n1\tx\n", "")
    failed = await asyncio.to_thread(esquire, "FROM")
    assert failed.returncode == 1 and failed.stderr.startswith("esquire: ")


@pytest.mark.parametrize("command", ["query", "load", "tasks", "export"])
def test_help_reads_like_a_man_page(command: str) -> None:
    """The module's docstring is the description, and examples close it."""
    assert command in COMMANDS
    done = subprocess.run([sys.executable, "-m", "service", command, "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    module = importlib.import_module(f"service.cli.{command}")
    assert done.returncode == 0
    assert module.__doc__.splitlines()[0] in done.stdout
    assert f"examples:\n  esquire {command}" in done.stdout
