"""``esquire tasks`` (list, cancel) and ``esquire export`` through a subprocess against a real
server: a running query listed with its progress and cancelled; a background task's result
exported in each format and opened by its reader, its bytes drawn on a terminal."""

from __future__ import annotations

import asyncio
import csv
import json
import re
from pathlib import Path

import openpyxl
import pytest
from elasticsearch import AsyncElasticsearch, BadRequestError

from cli_process import DAY, InTerminal, esquire, load_events
from service.core.searches import new_search_id
from service.query.control import Control


@pytest.fixture
def slower(monkeypatch: pytest.MonkeyPatch) -> None:
    """Half a second per slice: a 20 000-row scan runs for some ten seconds, to be listed and cancelled."""
    monkeypatch.setattr(Control, "pause_s", 0.5)


async def test_tasks_lists_a_running_query_and_cancels_it(es: AsyncElasticsearch, server, slower: None) -> None:
    await load_events(es)
    url = ("--url", str(server.make_url("/")))
    submitted = await es.esql.async_query(query="FROM events | STATS n = COUNT(*) | LIMIT 1",
                                          wait_for_completion_timeout="0s", keep_alive="1m")
    search_id = submitted["id"]
    for _ in range(200):  # until its first slice is read
        listed = await asyncio.to_thread(esquire, "tasks", *url, "--format", "tsv")
        rows = [line.split("\t") for line in listed.stdout.splitlines()[1:]]
        if rows and re.search(r"[1-9][\d,]*/20,000 rows", rows[0][3]):
            break
        await asyncio.sleep(0.05)
    assert listed.returncode == 0 and listed.stderr == ""
    assert listed.stdout.splitlines()[0].split("\t") == ["id", "action", "description", "progress", "running"]
    (task_id, action, description, progress, running), child = rows  # the query, then its compute task
    assert action == "indices:data/read/esql[a]" and child[1] == "indices:data/read/esql/compute"
    assert description == "FROM events | STATS n = COUNT(*) | LIMIT 1"
    assert re.fullmatch(r"[\d,]+/20,000 rows \(\d+%\)", progress) and running.endswith(" s")
    table = await asyncio.to_thread(esquire, "tasks", *url)
    assert [c.strip() for c in table.stdout.splitlines()[0].split("|")] == ["id", "action", "description",
                                                                           "progress", "running"]
    assert "cluster:monitor/tasks/lists" not in listed.stdout  # the listing's own task left out
    as_json = await asyncio.to_thread(esquire, "tasks", *url, "--format", "json", "--actions", "*esql*")
    assert [t["action"] for t in json.loads(as_json.stdout)["tasks"]] == [action, child[1]]
    cancelled = await asyncio.to_thread(esquire, "tasks", *url, "cancel", task_id)
    assert (cancelled.returncode, cancelled.stderr) == (0, f"cancelled {task_id}\n")
    with pytest.raises(BadRequestError) as failed:  # the query ended, cancelled
        await es.perform_request("GET", f"/_query/async/{search_id}", params={"wait_for_completion_timeout": "10s"})
    assert failed.value.error == "task_cancelled_exception"
    again = await asyncio.to_thread(esquire, "tasks", *url, "cancel", task_id)
    assert again.returncode == 1 and again.stderr.startswith("esquire: task [")
    refused = await asyncio.to_thread(esquire, "tasks", *url, "cancel")
    assert (refused.returncode, refused.stderr) == (2, "esquire tasks: cancel takes one TASK_ID, list none\n")


async def _kept_task(es: AsyncElasticsearch, server, n: int) -> str:
    await load_events(es, n)
    done = await asyncio.to_thread(esquire, "query", "--url", str(server.make_url("/")), "--sml", "--keep", *DAY,
                                   "--format", "csv", f"source events qsize={n} | sort +bytes")
    assert done.returncode == 0, done.stderr
    return re.findall(r"kept: background task (\S+) ", done.stderr)[0]


def test_an_id_never_starts_like_an_option() -> None:
    """``esquire export ID`` / ``tasks cancel ID``: argparse reads a leading ``-`` as an
    option (CI met such an id); before, one id in 64 began with ``-`` and one with ``_``."""
    ids = [new_search_id() for _ in range(3000)]
    assert all(i[0].isalnum() and len(i) == 22 for i in ids) and len(set(ids)) == len(ids)


async def test_export_each_format_opened_by_its_reader(es: AsyncElasticsearch, server, tmp_path: Path) -> None:
    task_id = await _kept_task(es, server, 30)
    tmp_path = tmp_path / "out"  # beside the server's data directory
    tmp_path.mkdir()
    url = ("--url", str(server.make_url("/")))
    for fmt in ("csv", "xlsx", "json"):
        done = await asyncio.to_thread(esquire, "export", task_id, *url, "--format", fmt, "--all", cwd=tmp_path)
        target = tmp_path / f"{task_id}.{fmt}"  # the name the service gives
        assert done.returncode == 0, done.stderr
        assert (done.returncode, done.stderr) == (0, f"exported {target.stat().st_size:,} bytes to {target.name}\n")
    with open(tmp_path / f"{task_id}.csv", newline="", encoding="utf-8") as text:
        rows = list(csv.reader(text))
    assert rows[0][:4] == ["@timestamp", "event.category", "host.name", "bytes"]
    assert [int(r[3]) for r in rows[1:]] == list(range(30))
    sheet = list(openpyxl.load_workbook(tmp_path / f"{task_id}.xlsx").active.values)
    assert [r[3] for r in sheet[1:]] == list(range(30))  # numbers as numbers
    events = json.loads((tmp_path / f"{task_id}.json").read_text())
    assert [e["bytes"] for e in events] == list(range(30)) and events[0]["host"] == {"name": "h0"}
    some = await asyncio.to_thread(esquire, "export", task_id, *url, "--format", "json", "--size", "5", "--output",
                                   "-")
    assert [e["bytes"] for e in json.loads(some.stdout)] == list(range(5))
    exists = await asyncio.to_thread(esquire, "export", task_id, *url, "--format", "csv", cwd=tmp_path)
    assert exists.returncode == 1 and "exists: give --output FILE" in exists.stderr
    missing = await asyncio.to_thread(esquire, "export", "nope", *url)
    assert (missing.returncode, missing.stderr) == (1, "esquire: no background task nope\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{task_id}.{f}" for f in ("csv", "json", "xlsx"))


async def test_export_draws_the_bytes_received(es: AsyncElasticsearch, server, tmp_path: Path) -> None:
    task_id = await _kept_task(es, server, 10000)
    target = tmp_path / "all.json"
    run = InTerminal("export", task_id, "--url", str(server.make_url("/")), "--format", "json", "--all",
                     "--output", str(target))
    status, _, tty = await asyncio.to_thread(run.finish)
    assert status == 0, tty
    size = target.stat().st_size / 1e6
    drawn = [f for f in tty.split("\r") if f.startswith("export   [")]
    assert drawn and drawn[-1].startswith(f"export   [##############################] {size:,.1f}/{size:,.1f} MB")
    assert len(json.loads(target.read_text())) == 10000
