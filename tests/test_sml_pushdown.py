"""SML's storage prefix in SQL (``pushdown/sml.py``): every query gives the same answer with
the pushdown on and off (the Python operators alone are the reference), over data made to
catch the places where SQL and SML's rules part: mixed case and non-ASCII text (the Kelvin
sign lowers to an ASCII ``k``), numeric-looking strings of every spelling, multi-values,
missing fields, runs of equal times across two indices. Then what only the pushed path
shows: it ran (the profile), ``qsize`` cuts newest first with ties by ``_index``/``_id``, a
stop answers exactly over the newest events read, the default qsize's warning, and a
background task over HTTP that is stopped while it really runs."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from conftest import StopAfter
from service import keys
from service.query.control import Control
from service.query.options import QueryOptions
from service.query.sml import SmlJob, SmlRequest
from service.store.dates import format_millis, parse_iso_nanos

START = parse_iso_nanos("2024-05-01T00:00:00Z") // 1_000_000
END = parse_iso_nanos("2024-05-02T00:00:00Z") // 1_000_000
NOW = parse_iso_nanos("2024-05-01T12:00:00Z") // 1_000_000
MAPPING = {"properties": {
    "@timestamp": {"type": "date"}, "host": {"properties": {"name": {"type": "keyword"}}},
    "code": {"type": "integer"}, "code_s": {"type": "keyword"}, "tags": {"type": "keyword"},
    "bytes": {"type": "long"}, "msg": {"type": "text"}, "flag": {"type": "boolean"}, "ratio": {"type": "double"},
}}
HOSTS = ["mail", "MAIL", "Mail", "dc01", "\u212aelvin", "kelvin", "m\u00e4il", "web-1", None]
CODES = [4624, 4625, 4625, 4634, None]
CODE_TEXTS = ["4625", "04625", "4625.0", "4.625e3", "+4625", "abc", "\u0664\u0666\u0662\u0665", "4624", None]
TAGS: list[Any] = [["a", "b"], ["b", "b"], [], None, "a", ["c"], "b"]


def _doc(i: int, index: int) -> tuple[str, dict[str, Any]]:
    """Runs of equal times (seven events a second), ``_id``s that do not follow insertion."""
    time = START + 36_000_000 + (i // 7) * 1000
    doc: dict[str, Any] = {"@timestamp": format_millis(time), "bytes": i * 37 % 1000, "flag": i % 3 == 0,
                           "ratio": i / 8, "msg": f"user {i % 4} logged in from MAIL"}
    for name, pool in (("host", HOSTS), ("code", CODES), ("code_s", CODE_TEXTS), ("tags", TAGS)):
        value = pool[(i * (index + 3) + len(name)) % len(pool)]
        if value is not None:
            doc[name] = {"name": value} if name == "host" else value
    return f"{(i * 7919) % 100_003:06d}-{index}", doc


async def _load(es: AsyncElasticsearch, index: str, n: int, pos: int = 0) -> None:
    await es.indices.create(index=index, mappings=MAPPING)
    for start in range(0, n, 2000):  # bodies the client sends without a warning
        ops: list[Any] = []
        for i in range(start, min(start + 2000, n)):
            _id, doc = _doc(i, pos)
            ops += [{"index": {"_id": _id}}, doc]
        response = await es.bulk(index=index, operations=ops, refresh=True)
        assert not response["errors"]


@pytest.fixture
async def events(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await _load(es, "ev", 300)
    await _load(es, "ev2", 90, pos=1)
    return es


def _run(server: Any, query: str, pushdown: bool = True, control: Control | None = None,
         cost: str = "OFF") -> tuple[list, Any]:
    rows, answer, _ = _run_job(server, query, pushdown, control, cost)
    return rows, answer


def _run_job(server: Any, query: str, pushdown: bool = True, control: Control | None = None,
             cost: str = "OFF") -> tuple[list, Any, SmlJob]:
    request = SmlRequest(query=query, time_field="@timestamp", start_ms=START, end_ms=END, now_ms=NOW,
                         execution_cost=cost)
    job = SmlJob.compile(request, server.app[keys.CATALOG], QueryOptions(pushdown=pushdown))
    with sqlite3.connect(server.app[keys.SETTINGS].db_path) as conn:
        answer = job.run(conn, control or Control())
        rows = [row[0] for row in answer.rows]
    return rows, answer, job


def _pushed(answer: Any) -> bool:
    return "sml stats" in answer.result.profile["drivers"][0]["operators"][0]["operator"]


STATS = [
    "source ev | stats count by host.name",
    "source ev | stats count, count(code) as c, count(tags) by tags",
    "source ev | stats count(code_s) as n, count by code, flag",
    "source ev | stats count",
    "source ev | stats dc(host.name) as hosts, dc(code) as codes, min(code), max(code) by flag",
    "source ev | stats min(ratio), max(ratio), min(@timestamp) as first, max(@timestamp) as last, dc(@timestamp)",
    "source ev | search code=4625 | stats dc(code_s) as n, dc(msg), min(bytes), max(bytes) by tags",
    "source ev | search nosuch=1 | stats dc(host.name), min(code), max(code), count",
    "source ev qsize=30 | stats dc(host.name) as hosts, max(bytes) as most by code",
    "source ev,ev2 qsize=100 | stats dc(host.name), min(bytes) by tags",
    "source ev | search code=4625 | stats count by host.name",
    "source ev | search host.name=mail | stats count",
    "source ev | search host.name=kelvin | stats count by host.name",
    'source ev | search host.name="M\u00c4IL" | stats count by host.name',
    "source ev | search code_s=4625 | stats count by code_s",
    "source ev | search code_s!=4625 | stats count by code_s",
    "source ev | search code_s=abc OR code_s=ABC | stats count by code_s",
    "source ev | search host.name!=mail code>4624 | stats count by host.name",
    "source ev | search code<=4625 code>=4625 | stats count by code",
    "source ev | search host.name=m* | stats count by host.name",
    "source ev | search NOT host.name=mail OR code<4625 | stats count by flag",
    "source ev | search tags=b | stats count by tags",
    "source ev | search tags=* ratio>10 | stats count by tags",
    "source ev | search bytes=500 OR bytes=abc | stats count",
    "source ev | search ratio=2.5 | stats count by ratio",
    "source ev | search flag=true | stats count by flag",
    "source ev | search @timestamp>=2024-05-01T10:05:00 | stats count by host.name",
    "source ev | search @timestamp<now-1h | stats count",
    "source ev | search nosuch=1 | stats count",
    "source ev | search code IN (4624, 4634) | stats count by code",
    "source ev | search _id=000000-0 OR _id=07* OR _id!=0* | stats count by code",
    "source ev qsize=50 | stats count by host.name",
    "source ev earliest=2024-05-01T10:00:10 latest=2024-05-01T10:00:20 | stats count, dc(code) by host.name",
    "source ev earliest=2024-05-01T10:00:10 latest=2024-05-01T10:00:20 qsize=9 | search code=4625 | stats count",
    "source ev qsize=1 | stats count by host.name",
    "source ev qsize=300 | stats count by host.name",
    "source ev,ev2 qsize=77 | stats count by host.name",
    "source ev* qsize=33 | search tags=b | stats count(code) as c by tags",
    "source ev* | search code=4625 | stats count by host.name",
    "source ev qsize=20 | search code_s=4625 | stats count by code_s",
]


@pytest.mark.parametrize("query", STATS)
async def test_stats_same_answer_pushed_or_not(server, events, query: str) -> None:
    pushed, answer = _run(server, query)
    python, reference = _run(server, query, pushdown=False)
    assert pushed == python
    assert _pushed(answer) and not _pushed(reference)
    assert answer.result.warnings.messages == reference.result.warnings.messages


@pytest.fixture
async def ragged(es: AsyncElasticsearch) -> AsyncElasticsearch:
    """``in``: every event in the range; ``out``: some before or after it, some without a
    time, one with two; ``edge``: events at the range's first and last millisecond."""
    await es.indices.create(index="in", mappings=MAPPING)
    await es.indices.create(index="out", mappings=MAPPING)
    await es.indices.create(index="edge", mappings=MAPPING)
    times: list[Any] = [START - 1, START + 5, END, END + 60_000, None, [START + 7, START + 9], START + 11]
    ops: list[Any] = []
    for i in range(40):
        ops += [{"index": {"_index": "in"}}, {"@timestamp": format_millis(START + 1000 * i), "code": i % 3}]
        when = times[i % len(times)]
        doc: dict[str, Any] = {"code": i % 3}
        if when is not None:
            doc["@timestamp"] = [format_millis(t) for t in when] if type(when) is list else format_millis(when)
        ops += [{"index": {"_index": "out"}}, doc]
    for when in (START, END - 1):
        ops += [{"index": {"_index": "edge"}}, {"@timestamp": format_millis(when), "code": 1}]
    response = await es.bulk(operations=ops, refresh=True)
    assert not response["errors"]
    return es


@pytest.mark.parametrize("query", [
    "source in | stats count by code",
    "source out | stats count by code",
    "source out,edge | stats count, dc(code)",
    "source in,out | stats count by code",
    "source edge | stats count",
    "source in,edge qsize=20 | stats count by code",
    "source out | search code=1 | stats count",
])
async def test_stats_read_only_events_of_the_range(server, ragged, query: str) -> None:
    """Pushed, an index whose every row is in the range is read without a test of each
    row's time; one that holds others (before, after, none, a multi-value) is not."""
    pushed, answer = _run(server, query)
    python, _ = _run(server, query, pushdown=False)
    assert pushed == python
    assert _pushed(answer)


@pytest.mark.parametrize("query", [
    "source ev | search mail | stats count",  # full text reads every field: Python
    "source ev | stats dc(tags) by code",  # a field that held multi-values
    "source ev | stats sum(bytes) by code",  # not pushed (yet)
    "source ev | stats min(host.name) by code",  # min of strings
    "source ev | eval x=1 | stats count by x",
    "source ev* | search _index=ev2 | stats count by host.name",
])
async def test_stats_not_pushed_still_answers(server, events, query: str) -> None:
    pushed, answer = _run(server, query)
    assert pushed == _run(server, query, pushdown=False)[0]
    assert not _pushed(answer)


EVENTS = [
    "source ev qsize=40",
    "source ev,ev2 qsize=60 | table _index, _id, @timestamp",
    "source ev | search host.name=mail | table _id, host.name",
    "source ev | search code_s=4625 mail | table _id, code_s",
    "source ev | search code_s!=4625 host.name=m* | table _id",
    "source ev* | search tags=b OR code=4634 | table _index, _id, tags",
    "source ev | search host.name=kelvin | table _id, host.name",
    "source ev* | search _index=ev2 code=4625 | table _index, _id",
    "source ev | search _id=01* mail code_s=4625 | table _id",
    # numbers past a 64-bit integer, which SQLite cannot bind
    "source ev | search bytes<9223372036854775808 code!=-9223372036854775809 | table _id",
    "source ev* | search code_s!=99999999999999999999 ratio>=-18446744073709551616 | table _index, _id",
    "source ev | search @timestamp<99999999999999999999 | table _id",
]


@pytest.mark.parametrize("query", EVENTS)
async def test_events_same_answer_pushed_or_not(server, events, query: str) -> None:
    assert _run(server, query)[0] == _run(server, query, pushdown=False)[0]


@pytest.mark.parametrize("query", STATS + EVENTS)
async def test_measuring_the_cost_runs_the_same_plan(server, events, query: str) -> None:
    """``calculateExecutionCost`` only watches: the same storage query and steps run (its
    probes between the commands do not keep a search or stats out of SQL), same answer."""
    rows, answer = _run(server, query)
    measured, measured_answer = _run(server, query, cost="DEBUG")
    assert measured == rows and measured_answer.result.profile == answer.result.profile


async def test_the_cost_shows_the_commands_fused_into_the_storage_query(server, events) -> None:
    rows, answer, job = _run_job(server, "source ev | search code=4625 | stats count by host.name", cost="DEBUG")
    source, search, stats = job.frame(answer, 1)["executionCost"]["commands"]
    assert source["details"]["pushedDown"] == ["search code=4625"]
    assert "sml stats" in source["details"]["storageQuery"] and source["rowsOut"] == len(rows)
    assert search["fusedInto"] == 0 and search["ms"] == 0 and "fusedInto" not in stats


async def test_equal_times_come_by_index_then_id(server, events) -> None:
    rows, _ = _run(server, "source ev,ev2 | table _index, _id, @timestamp")
    assert len(rows) == 390
    keys_ = [(-parse_iso_nanos(r["@timestamp"]), r["_index"], r["_id"]) for r in rows]
    assert keys_ == sorted(keys_)
    assert any(a[0] == b[0] and a[1] != b[1] for a, b in zip(keys_, keys_[1:]))  # ties across the two indices


async def test_qsize_cut_keeps_the_newest_events(server, events) -> None:
    """The pushed cut takes the same events as the Python scan: the newest, ties by id."""
    rows, _ = _run(server, "source ev qsize=45 | stats count by host.name")
    events_ = _run(server, "source ev qsize=45 | table host.name")[0]
    assert rows == [{"host.name": h, "count": n} for h, n in sorted(Counter(
        r["host.name"] for r in events_ if r["host.name"] is not None).items())]


async def test_stop_answers_exactly_over_the_newest_events_read(server, es) -> None:
    await _load(es, "many", 3000)
    query = "source many qsize=2999 | stats count by host.name"
    control = StopAfter(3, slice_rows=256)
    rows, answer = _run(server, query, control=control)
    assert _pushed(answer) and answer.result.is_partial
    read = answer.result.documents_found
    assert 0 < read < 2999 and sum(r["count"] for r in rows) <= read
    expected, _ = _run(server, f"source many qsize={read} | stats count by host.name", pushdown=False)
    assert rows == expected


async def test_stop_in_rowid_slices_counts_what_was_read(server, es) -> None:
    await _load(es, "many", 3000)
    control = StopAfter(2, slice_rows=256)
    rows, answer = _run(server, "source many qsize=5000 | stats count", control=control)
    assert _pushed(answer) and answer.result.is_partial
    assert rows == [{"count": answer.result.documents_found}] and 0 < rows[0]["count"] < 3000


async def test_default_qsize_warns_when_it_cuts(server, es) -> None:
    await _load(es, "big", 10_050)
    warning = "source stopped at the default qsize of 10000 events; set qsize= for more"
    for pushdown in (True, False):
        rows, answer = _run(server, "source big | stats count", pushdown)
        assert rows == [{"count": 10_000}] and answer.result.warnings.messages == [warning]
        rows, answer = _run(server, "source big | search code=4624 | stats count", pushdown)
        assert rows[0]["count"] < 10_000 and answer.result.warnings.messages == []
        rows, answer = _run(server, "source big qsize=10000 | stats count", pushdown)
        assert rows == [{"count": 10_000}] and answer.result.warnings.messages == []
        rows, answer = _run(server, "source big | table _id", pushdown)
        assert len(rows) == 10_000 and answer.result.warnings.messages == [warning]
    rows, answer = _run(server, "source big qsize=20000 | stats count")
    assert rows == [{"count": 10_050}] and answer.result.warnings.messages == []


# --- over HTTP --------------------------------------------------------------------------------

BASE = "/_sme/async_requests"


@pytest.fixture
def slower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Control, "pause_s", 0.05)


async def _status(http: Any, task: str) -> dict[str, Any]:
    resp = await http.get(f"{BASE}/status/{task}")
    assert resp.status == 200
    return await resp.json()


async def test_pushed_task_shows_progress_and_stops_with_partial_counts(http, es, slower) -> None:
    await _load(es, "many", 20_000)
    resp = await http.post(f"{BASE}/request", json={"query": "source many qsize=20000 | stats count by host.name",
                                                    "dtStart": "2024-05-01", "dtEnd": "2024-05-01"})
    assert resp.status == 200, await resp.text()
    task = (await resp.json())["id"]
    for _ in range(400):
        status = await _status(http, task)
        if status["status"] == "RUNNING" and status["progress"] > 0:
            break
        await asyncio.sleep(0.02)
    assert status["status"] == "RUNNING" and 0 < status["progress"] < 1
    assert (await http.post(f"{BASE}/break/{task}")).status == 200
    for _ in range(400):
        if (status := await _status(http, task))["status"] == "STOPPED":
            break
        await asyncio.sleep(0.02)
    assert status["status"] == "STOPPED"
    body = await (await http.get(f"{BASE}/response/{task}")).json()
    assert body["partial"] is True
    assert 0 < sum(row["count"] for row in body["events"]) < 20_000


async def _previewed_total(http: Any, task: str, above: int) -> int:
    for _ in range(400):
        body = await (await http.get(f"{BASE}/response/{task}")).json()
        if body.get("preview") and (total := sum(row["count"] for row in body["events"])) > above:
            assert body["status"] == "RUNNING" and body["fields"] == ["host.name", "count"]
            return total
        assert body["status"] in ("PENDING", "RUNNING"), body
        await asyncio.sleep(0.03)
    raise AssertionError(f"no preview of {task} above {above}")


@pytest.mark.parametrize("qsize", [20_000, 19_999])  # rowid slices; newest-first time slices
async def test_pushed_task_previews_counts_that_grow(http, es, slower, qsize: int) -> None:
    await _load(es, "many", 20_000)
    resp = await http.post(f"{BASE}/request", json={"query": f"source many qsize={qsize} | stats count by host.name",
                                                    "dtStart": "2024-05-01", "dtEnd": "2024-05-01"})
    task = (await resp.json())["id"]
    first = await _previewed_total(http, task, 0)
    assert await _previewed_total(http, task, first) > first
    assert (await http.post(f"{BASE}/break/{task}")).status == 200


async def test_pushed_task_over_http_as_the_python_path(http, events) -> None:
    query = "source ev* qsize=100 | search code_s=4625 OR host.name=mail | stats count by host.name"
    resp = await http.post(f"{BASE}/request", json={"query": query, "dtStart": "2024-05-01", "dtEnd": "2024-05-01"})
    task = (await resp.json())["id"]
    for _ in range(400):
        if (await _status(http, task))["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.02)
    body = await (await http.get(f"{BASE}/response/{task}")).json()
    assert body["events"] == _run(http.server, query, pushdown=False)[0]



@pytest.mark.slow
def test_bench_sml_section_runs_and_answers_as_esql() -> None:
    """scripts/bench.py's sml section at a tiny size, so it does not rot (times mean nothing here)."""
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "scripts/bench.py", "--docs", "3000", "--runs", "1", "--only", "sml"],
                          cwd=root, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "- answers: 50 groups, the same as ES|QL's" in done.stdout


async def test_default_qsize_cut_is_in_the_task_warnings_and_log(http, es) -> None:
    await _load(es, "big", 10_050)
    resp = await http.post(f"{BASE}/request", json={"query": "source big | stats count by flag",
                                                    "dtStart": "2024-05-01", "dtEnd": "2024-05-01"})
    task = (await resp.json())["id"]
    for _ in range(400):
        if (await _status(http, task))["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.02)
    warning = "source stopped at the default qsize of 10000 events; set qsize= for more"
    body = await (await http.get(f"{BASE}/response/{task}")).json()
    assert sum(row["count"] for row in body["events"]) == 10_000 and warning in body["warnings"]
    logs = (await (await http.get(f"{BASE}/logs/{task}")).json())["logs"]
    assert any(line["level"] == "WARN" and line["message"] == warning for line in logs)
