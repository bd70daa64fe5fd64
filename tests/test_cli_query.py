"""``esquire query`` in each language through a subprocess against a real server: every
output format read back by its reader, the progress bar as a terminal sees it, Ctrl-C while
the query really runs (a pause per slice in the server's workers keeps it running)."""

from __future__ import annotations

import asyncio
import csv
import io
import re
from pathlib import Path

import openpyxl
import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from cli_process import DAY, InTerminal, esquire, load_events
from service.query.control import Control

# One question in each language: events per host, over the index of ``load_events``.
PER_HOST = {
    "esql": ("FROM events | STATS n = COUNT(*) BY host.name | SORT host.name | LIMIT 10",),
    "eql": ("--eql", "--index", "events", "--size", "3", "process where bytes < 3"),
    "sml": ("--sml", *DAY, "source events | stats count() as n by host.name | sort host.name"),
}
# One slow question in each language: a scan of every event, caught mid-way.
SCAN = {
    "esql": ("FROM events | STATS n = COUNT(*) | LIMIT 1",),
    "eql": ("--eql", "--index", "events", "--size", "10000", "process where bytes >= 0"),
    "sml": ("--sml", *DAY, "source events qsize=20000 | stats count() as n"),
}


@pytest.fixture
def slower(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tenth of a second per slice of at most 1000 rows: 20 000 events take two seconds."""
    monkeypatch.setattr(Control, "pause_s", 0.1)


def _table(fmt: str, text: str) -> list[list[str]]:
    """Rows of text, from the csv or tsv the command printed."""
    return list(csv.reader(io.StringIO(text), delimiter="," if fmt == "csv" else "\t"))


@pytest.mark.parametrize("language", list(PER_HOST))
async def test_every_format_of_every_language(es: AsyncElasticsearch, server, tmp_path: Path, language: str) -> None:
    await load_events(es, 1000)
    url = ("--url", str(server.make_url("/")))
    query = PER_HOST[language]
    runs = {fmt: await asyncio.to_thread(esquire, "query", *url, "--format", fmt, *query)
            for fmt in ("txt", "csv", "tsv", "json")}
    book = tmp_path / "out.xlsx"
    runs["xlsx"] = await asyncio.to_thread(esquire, "query", *url, "--format", "xlsx", "--output", str(book), *query)
    assert {fmt: (run.returncode, run.stderr) for fmt, run in runs.items() if run.returncode or run.stderr} == {}
    sheet = [list(row) for row in openpyxl.load_workbook(book).active.values]
    if language == "eql":  # three events, in order: their index, id and fields
        assert sheet[0][:2] == ["_index", "_id"] and sheet[0][2:] == ["@timestamp", "event.category", "host.name",
                                                                      "bytes"]
        assert [row[5] for row in sheet[1:]] == [0, 1, 2]  # numbers as numbers
        assert [r[5] for r in _table("csv", runs["csv"].stdout)[1:]] == ["0", "1", "2"]
        hits = orjson.loads(runs["json"].stdout)["hits"]
        assert [e["_source"]["bytes"] for e in hits["events"]] == [0, 1, 2]
        assert runs["txt"].stdout.splitlines()[0].split("|")[0].strip() == "_index"
        return
    names = ["n", "host.name"] if language == "esql" else ["host.name", "n"]
    expected = [[200 if name == "n" else f"h{i}" for name in names] for i in range(5)]
    assert sheet == [names, *expected]
    text = [[str(v) for v in row] for row in expected]
    assert _table("csv", runs["csv"].stdout) == [names, *text]
    assert _table("tsv", runs["tsv"].stdout) == [names, *text]
    lines = runs["txt"].stdout.splitlines()
    assert [c.strip() for c in lines[0].split("|")] == names and set(lines[1]) == {"-", "+"}
    assert [[c.strip() for c in line.split("|")] for line in lines[2:]] == text
    document = orjson.loads(runs["json"].stdout)
    if language == "esql":
        assert document["values"] == [[200, f"h{i}"] for i in range(5)]
    else:
        assert document["status"] == "COMPLETED" and document["events"] == [{"host.name": f"h{i}", "n": 200}
                                                                             for i in range(5)]


@pytest.mark.parametrize("language", list(SCAN))
async def test_the_progress_bar_is_drawn_on_a_terminal(es: AsyncElasticsearch, server, slow: None,
                                                        language: str) -> None:
    await load_events(es)
    run = InTerminal("query", "--url", str(server.make_url("/")), "--format", "csv", *SCAN[language])
    status, out, tty = await asyncio.to_thread(run.finish)
    assert status == 0, tty
    frames = tty.split("\r")
    label = {"esql": "query", "eql": "eql", "sml": "sml"}[language]
    drawn = [f for f in frames if f.startswith(f"{label:<8} [")]
    assert len(drawn) >= 2  # redrawn in place while it ran
    full = "[##############################]"
    assert full in drawn[-1] and (drawn[-1].endswith("\n") or frames[-1].endswith("\n"))
    assert any(full not in f for f in drawn[:-1])  # seen part-way
    if language == "sml":
        assert drawn[-1].split("]")[1].splitlines()[0].strip() == "100.0%"
    else:
        assert "20,000/20,000" in drawn[-1]
    if language == "eql":
        assert len(out.splitlines()) == 10001  # the size asked for
    else:
        assert out.splitlines()[1] == "20000"


def _read_some(frames: list[str]) -> bool:
    """A frame of the bar with something read: rows scanned above 0, or a share above 0%."""
    return any(re.search(r"\] +(?:[1-9][\d,]*/|\d+\.\d%)", f) and not re.search(r"\] +0\.0%", f) for f in frames)


@pytest.mark.parametrize("language", list(SCAN))
async def test_ctrl_c_stops_with_the_partial_result(es: AsyncElasticsearch, server, slower: None,
                                                     language: str) -> None:
    await load_events(es)
    run = InTerminal("query", "--url", str(server.make_url("/")), "--format", "csv", *SCAN[language])
    await asyncio.to_thread(run.wait_for, _read_some)
    run.interrupt()
    status, out, tty = await asyncio.to_thread(run.finish)
    assert status == 130, tty
    if language == "eql":  # no stop in EQL: cancelled, nothing shown, nothing kept
        assert out == ""
        assert "cancelled: an EQL search has no stop with partial results (as in Elasticsearch)" in tty
    else:
        header, count = out.splitlines()
        assert header == "n" and 0 < int(count) < 20000  # the rows read before the stop, exactly counted
        assert "stopped: the result covers the" in tty
    tasks = (await es.perform_request("GET", "/_tasks", params={"detailed": "true", "group_by": "none"})).body
    assert [t["action"] for t in tasks["tasks"] if "read" in t["action"]] == []  # nothing left running
    if language == "sml":  # not kept either
        assert (await es.perform_request("GET", "/_sme/async_requests/status/")).body == {"tasks": []}


async def test_sml_keep_leaves_the_task_for_export(es: AsyncElasticsearch, server) -> None:
    await load_events(es, 10)
    done = await asyncio.to_thread(esquire, "query", "--url", str(server.make_url("/")), "--sml", "--keep", *DAY,
                                   "--format", "csv", "source events | stats count() as n")
    assert done.returncode == 0 and done.stdout.splitlines() == ["n", "10"]
    (task_id,) = re.findall(r"^kept: background task (\S+) \(esquire export \1 --format csv\)$", done.stderr, re.M)
    status = (await es.perform_request("GET", f"/_sme/async_requests/status/{task_id}")).body
    assert status["status"] == "COMPLETED" and status["rowCount"] == 1


@pytest.mark.parametrize(("args", "message"), [
    (("--index", "events", "FROM events"), "--index is for --eql"),
    (("--eql", "process where true"), "--eql needs --index"),
    (("--eql", "--index", "events", "--from", "now-1d", "process where true"), "--from is for --sml"),
    (("--sml", "--size", "3", "source events"), "--size is for --eql"),
    (("--keep", "FROM events"), "--keep is for --sml"),
    (("--format", "xlsx", "FROM events"), "xlsx is written to a file: give --output FILE"),
])
def test_flags_of_another_language_are_refused(args: tuple[str, ...], message: str) -> None:
    done = esquire("query", "--url", "http://127.0.0.1:9", *args)
    assert (done.returncode, done.stdout, done.stderr) == (2, "", f"esquire query: {message}\n")


async def test_a_query_refused_by_the_service_is_status_1(es: AsyncElasticsearch, server) -> None:
    await load_events(es, 10)
    url = ("--url", str(server.make_url("/")))
    for query in (("FROM nope",), ("--eql", "--index", "events", "process where"), ("--sml", "source events | nope")):
        done = await asyncio.to_thread(esquire, "query", *url, *query)
        assert done.returncode == 1 and done.stdout == "" and done.stderr.startswith("esquire: "), done
