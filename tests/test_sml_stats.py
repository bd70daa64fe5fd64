"""Sidebar, timeline and execution cost of an SML task (spec sme-background-tasks §5.1, §5.2,
§6), fed row by row and checked against results computed by hand from the spec's rules."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service.query import sml
from service.query.sml.stats import (DISTINCT_CAP, CommandCost, ExecutionCost, Sidebar, Timeline,
                                     predefined_interval)
from service.store.dates import format_millis, parse_iso_nanos

MIN = 60_000
HOUR = 60 * MIN
DAY = 24 * HOUR


def ms(text: str) -> int:
    return parse_iso_nanos(text) // 1_000_000


def sidebar(rows: list[dict[str, Any]], time_field: str = "@timestamp") -> dict[str, Any]:
    acc = Sidebar(time_field)
    for row in rows:
        acc.add(row)
    return acc.result()


def by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["field"]: f for f in result["fields"]}


# --- sidebar ------------------------------------------------------------------------------------

def test_sidebar_of_the_spec_example() -> None:
    # §5.1's example: 1200 rows, event.code 4624 x 900, 4625 x 280, 4634 x 20. (The spec's own
    # sum and avg, 5549380 and 4624.48, do not follow from these counts: 900*4624 + 280*4625
    # + 20*4634 = 5549280, / 1200 = 4624.4.)
    rows = [{"event": {"code": 4624}}] * 900 + [{"event": {"code": 4625}}] * 280 + [{"event": {"code": 4634}}] * 20
    assert sidebar(rows) == {"totalEvents": 1200, "fields": [{
        "field": "event.code", "type": "number", "count": 1200, "percent": 100.0, "distinctCount": 3,
        "topValues": [{"value": 4624, "count": 900, "percent": 75.0},
                      {"value": 4625, "count": 280, "percent": 23.33},
                      {"value": 4634, "count": 20, "percent": 1.67}],
        "numeric": {"min": 4624, "max": 4634, "avg": 4624.4, "sum": 5549280}}]}


def test_sidebar_fields_are_leaves_ordered_by_count_then_name() -> None:
    rows = [{"@timestamp": "2024-05-01T12:00:00.000Z", "host": {"name": "a", "ip": "10.0.0.1"}, "x": None},
            {"@timestamp": "2024-05-01T12:00:01.000Z", "host": {"name": "b"}, "user.name": "lit"},
            {"@timestamp": "2024-05-01T12:00:02.000Z", "x": None}]
    result = sidebar(rows)
    assert result["totalEvents"] == 3
    assert [(f["field"], f["count"], f["percent"]) for f in result["fields"]] == [
        ("@timestamp", 3, 100.0), ("host.name", 2, 66.67), ("host.ip", 1, 33.33), ("user.name", 1, 33.33),
        ("x", 0, 0.0)]  # present, but only ever null
    assert by_name(result)["x"]["topValues"] == []


def test_sidebar_counts_each_element_of_a_multi_value() -> None:
    rows = [{"tags": ["b", "a"]}, {"tags": ["a"]}, {"tags": []}, {"tags": ["c", None]},
            {"tags": [{"k": 1}, {"k": 2}]}]
    fields = by_name(sidebar(rows))
    tags = fields["tags"]
    # rows holding a value: the first, second and fourth ([] and [None] hold none; the last row's
    # objects are the leaf tags.k)
    assert (tags["count"], tags["distinctCount"]) == (3, 3)
    assert tags["topValues"] == [{"value": "a", "count": 2, "percent": 40.0},
                                 {"value": "b", "count": 1, "percent": 20.0},
                                 {"value": "c", "count": 1, "percent": 20.0}]  # ties by value ascending
    assert fields["tags.k"]["count"] == 1 and fields["tags.k"]["numeric"]["sum"] == 3


def test_sidebar_keeps_the_top_ten() -> None:
    rows = [{"n": i} for i in range(12) for _ in range(i + 1)]  # value i appears i+1 times
    field = sidebar(rows)["fields"][0]
    assert [v["value"] for v in field["topValues"]] == list(range(11, 1, -1))
    assert field["distinctCount"] == 12
    assert field["numeric"] == {"min": 0, "max": 11, "avg": round(sum(i * (i + 1) for i in range(12)) / 78, 2),
                                "sum": sum(i * (i + 1) for i in range(12))}


def test_sidebar_types() -> None:
    rows = [{"@timestamp": 1714564800000, "when": "2024-05-01T12:00:00Z", "flag": True, "code": 1, "obj": {},
             "mix": 1, "mostly": 1, "text": "x"},
            {"@timestamp": 1714564800001, "when": "2024-05-01 13:00", "flag": False, "code": True, "obj": {},
             "mix": "one", "mostly": 2, "text": "y"},
            {"mix": None, "mostly": "three", "flag": 1, "@timestamp": "2024-05-01T12:00:00.002Z"}]
    fields = by_name(sidebar(rows))
    assert {name: f["type"] for name, f in fields.items()} == {
        "@timestamp": "date", "when": "date", "flag": "boolean", "code": "mixed", "obj": "object", "mix": "mixed",
        "mostly": "number", "text": "string"}
    # true is not 1: booleans and numbers are different values
    assert {(v["value"], v["count"]) for v in fields["flag"]["topValues"]} == {(True, 1), (False, 1), (1, 1)}
    assert fields["obj"]["topValues"] == [{"value": {}, "count": 2, "percent": 66.67}]
    assert "numeric" not in fields["mostly"] and "numeric" not in fields["code"]
    # ties between types: numbers first, then text, then booleans
    assert [v["value"] for v in fields["flag"]["topValues"]] == [1, False, True]
    assert [v["value"] for v in fields["@timestamp"]["topValues"]] == [1714564800000, 1714564800001,
                                                                        "2024-05-01T12:00:00.002Z"]


def test_sidebar_cuts_long_values_for_the_panel() -> None:
    long = "v" * 300
    field = sidebar([{"m": long}, {"m": long + "tail"}])["fields"][0]
    assert field["topValues"] == [{"value": "v" * 256, "count": 2, "percent": 100.0}]


def test_sidebar_distinct_count_is_capped() -> None:
    rows = [{"id": i} for i in range(DISTINCT_CAP + 5)] + [{"id": 7}, {"id": 7}, {"id": DISTINCT_CAP + 1}]
    field = sidebar(rows)["fields"][0]
    assert (field["distinctCount"], field["distinctCountCapped"]) == (DISTINCT_CAP, True)
    assert field["count"] == DISTINCT_CAP + 8
    assert field["topValues"][0] == {"value": 7, "count": 3, "percent": round(300 / (DISTINCT_CAP + 8), 2)}
    assert field["numeric"]["max"] == DISTINCT_CAP + 4  # min/max/sum/avg stay exact past the cap


# --- timeline -----------------------------------------------------------------------------------

@pytest.mark.parametrize("length, interval", [
    (15 * MIN, "10s"), (15 * MIN + 1, "1m"), (HOUR, "1m"), (4 * HOUR, "5m"), (4 * HOUR + 1, "30m"),
    (DAY, "30m"), (DAY + 1, "1d"), (30 * DAY, "1d"), (30 * DAY + 1, "1M"), (3650 * DAY, "1M"), (0, "10s"),
])
def test_predefined_intervals(length: int, interval: str) -> None:
    assert predefined_interval(length).name == interval


def test_timeline_of_a_day_has_half_hour_buckets_including_empty_ones() -> None:
    # dtStart=now-1d, dtEnd=now (both inclusive) with now = 2024-05-01T12:00:00Z: end_ms is now + 1
    now = ms("2024-05-01T12:00:00Z")
    timeline = Timeline("@timestamp", now - DAY, now + 1)
    for stamp in ("2024-04-30T12:00:00.000Z", "2024-04-30T12:29:59.999Z", "2024-04-30T13:10:00.000Z",
                  "2024-05-01T12:00:00.000Z"):
        timeline.add({"@timestamp": stamp, "x": 1})
    timeline.add({"x": 2})  # no time: in no bucket
    result = timeline.result()
    assert {k: result[k] for k in ("field", "interval", "start", "end")} == {
        "field": "@timestamp", "interval": "30m", "start": "2024-04-30T12:00:00.000Z",
        "end": "2024-05-01T12:00:00.000Z"}
    buckets = result["fields"]
    assert len(buckets) == 49  # 12:00, 12:30, ... the next day's 12:00 (the end is in the range)
    assert buckets[:4] == [{"@timestamp": "2024-04-30T12:00:00.000Z", "count": 2},
                           {"@timestamp": "2024-04-30T12:30:00.000Z", "count": 0},
                           {"@timestamp": "2024-04-30T13:00:00.000Z", "count": 1},
                           {"@timestamp": "2024-04-30T13:30:00.000Z", "count": 0}]
    assert buckets[-1] == {"@timestamp": "2024-05-01T12:00:00.000Z", "count": 1}
    assert sum(b["count"] for b in buckets) == 4


def test_timeline_of_a_day_given_to_the_second_is_a_day() -> None:
    # dtStart=2024-05-01T00:00:00Z, dtEnd=2024-05-02T00:00:00Z: the end rounds up to .999
    timeline = Timeline("@timestamp", ms("2024-05-01T00:00:00Z"), ms("2024-05-02T00:00:00.999Z") + 1)
    assert timeline.result()["interval"] == "30m"
    assert Timeline("t", 0, DAY + 1001).result()["interval"] == "1d"  # a second more is more than a day


def test_timeline_buckets_align_to_the_calendar() -> None:
    # a range starting mid-bucket: the first bucket is the one holding the start
    start, end = ms("2024-05-01T10:07:13Z"), ms("2024-05-01T10:52:00Z")  # 45 minutes: 1m buckets
    timeline = Timeline("t", start, end)
    timeline.add({"t": "2024-05-01T10:07:59.999Z"})
    buckets = timeline.result()["fields"]
    assert buckets[0] == {"t": "2024-05-01T10:07:00.000Z", "count": 1}
    assert buckets[-1]["t"] == "2024-05-01T10:51:00.000Z" and len(buckets) == 45


def test_timeline_months_start_on_the_first() -> None:
    start, end = ms("2023-05-15T00:00:00Z"), ms("2024-05-15T00:00:00Z")
    timeline = Timeline("@timestamp", start, end)
    for stamp in ("2023-05-15T00:00:00Z", "2023-05-31T23:59:59.999Z", "2024-02-29T08:00:00+03:00",
                  "2024-05-14T23:59:59.999Z"):
        timeline.add({"@timestamp": stamp})
    result = timeline.result()
    assert result["interval"] == "1M"
    keys = [b["@timestamp"] for b in result["fields"]]
    assert keys[0] == "2023-05-01T00:00:00.000Z" and keys[-1] == "2024-05-01T00:00:00.000Z" and len(keys) == 13
    counts = {b["@timestamp"][:7]: b["count"] for b in result["fields"] if b["count"]}
    assert counts == {"2023-05": 2, "2024-02": 1, "2024-05": 1}  # +03:00 08:00 is 05:00 UTC, still February


def test_timeline_reads_epoch_millis_nested_fields_and_the_first_of_an_array() -> None:
    start = ms("2024-05-01T00:00:00Z")
    timeline = Timeline("event.created", start, start + 10 * MIN)
    timeline.add({"event": {"created": start + 15_000}})
    timeline.add({"event.created": [format_millis(start + 25_000), format_millis(start)]})
    timeline.add({"event": {"created": "not a date"}})
    timeline.add({"event": {"created": True}})
    result = timeline.result()
    assert result["interval"] == "10s" and len(result["fields"]) == 60
    assert [b["count"] for b in result["fields"][:4]] == [0, 1, 1, 0]


def test_timeline_without_times_has_no_buckets() -> None:
    now = ms("2024-05-01T12:00:00Z")
    timeline = Timeline("@timestamp", now - HOUR, now + 1)
    timeline.add({"host.name": "a", "count": 3})  # e.g. after `aggs count by host.name`
    assert timeline.result() == {"field": "@timestamp", "interval": "1m", "start": "2024-05-01T11:00:00.000Z",
                                 "end": "2024-05-01T12:00:00.000Z", "fields": []}


def test_an_open_range_widens_to_the_rows_and_coarsens_exactly() -> None:
    base = ms("2024-01-01T00:00:00Z")
    times = [base + i * 7 * MIN + (i % 5) * 1000 for i in range(0, 9000, 3)]  # ~ 44 days, fed out of order
    times = times[1::2] + times[::2]
    open_range = Timeline("t")
    for t in times:
        open_range.add({"t": t})
    # the same rows with the range known from the start: counted at 1M from the first row
    known = Timeline("t", min(times), max(times) + 1)
    for t in times:
        known.add({"t": t})
    assert open_range.result() == known.result()
    result = open_range.result()
    assert result["interval"] == "1M" and [b["t"][:7] for b in result["fields"]] == ["2024-01", "2024-02"]
    january = sum(1 for t in times if t < ms("2024-02-01T00:00:00Z"))
    assert [b["count"] for b in result["fields"]] == [january, len(times) - january]


def test_rows_outside_the_task_range_widen_it() -> None:
    start = ms("2024-05-01T12:00:00Z")
    timeline = Timeline("t", start, start + 10 * MIN)  # 10 minutes: 10s buckets
    timeline.add({"t": start - 50 * MIN})  # a source's earliest= reached further back
    result = timeline.result()
    assert (result["interval"], result["start"]) == ("1m", "2024-05-01T11:10:00.000Z")
    assert result["fields"][0] == {"t": "2024-05-01T11:10:00.000Z", "count": 1}


# --- execution cost -----------------------------------------------------------------------------

COMMANDS = [("source", "source sysmon_operational-* qsize=500"), ("search", "search host.name=dc*"),
            ("where", "where event.code==4624"), ("stats", "stats count by host.name")]


def costs(level: str) -> ExecutionCost:
    cost = ExecutionCost(level, COMMANDS, pipeline="source ... | stats count by host.name")
    cost.parsed(2.4)
    for slice_ms, rows in ((500.2, 300), (364.9, 200)):  # the source read in two slices
        cost.add(CommandCost(0, ms=slice_ms, rows_out=rows, details={"rowsScanned": rows * 3}))
    cost.add(CommandCost(1, ms=12.0, rows_in=500, rows_out=500, fused_into=0))
    cost.add(CommandCost(0, details={"indices": ["sysmon_operational-2024.05.01"],
                                     "pushedDown": ["search host.name=dc*"]}))
    cost.add(CommandCost(2, ms=30.4, rows_in=500, rows_out=120))
    cost.add(CommandCost(3, ms=11.6, rows_in=120, rows_out=12, details={"groups": 12}))
    return cost


def test_execution_cost_off_is_absent() -> None:
    assert costs("OFF").result(909, 12) is None


def test_execution_cost_info() -> None:
    assert costs("info").result(909.4, 12) == {
        "level": "INFO", "totalMs": 909, "parseMs": 2, "rowsOut": 12, "commands": [
            {"index": 0, "command": "source", "text": "source sysmon_operational-* qsize=500", "ms": 865,
             "rowsIn": 0, "rowsOut": 500},
            {"index": 1, "command": "search", "text": "search host.name=dc*", "ms": 0, "rowsIn": 500,
             "rowsOut": 500, "fusedInto": 0},
            {"index": 2, "command": "where", "text": "where event.code==4624", "ms": 30, "rowsIn": 500,
             "rowsOut": 120},
            {"index": 3, "command": "stats", "text": "stats count by host.name", "ms": 12, "rowsIn": 120,
             "rowsOut": 12}]}


def test_execution_cost_debug_adds_details_and_the_pipeline() -> None:
    result = costs("DEBUG").result(909, 12)
    assert result is not None and result["level"] == "DEBUG"
    assert result["pipeline"] == "source ... | stats count by host.name"
    details = [c.get("details") for c in result["commands"]]
    assert details == [{"rowsScanned": 1500, "indices": ["sysmon_operational-2024.05.01"],
                        "pushedDown": ["search host.name=dc*"]}, None, None, {"groups": 12}]
    assert [c["ms"] for c in result["commands"]] == [865, 0, 30, 12]


def test_execution_cost_level_is_checked() -> None:
    with pytest.raises(ValueError):
        ExecutionCost("VERBOSE", COMMANDS)


# --- over real HTTP: a task with calculateStats --------------------------------------------------

BASE = "/_sme/async_requests"
needs_sml = pytest.mark.skipif(not hasattr(sml, "SmlJob"), reason="SmlJob (branch i13/smlplan) is not merged yet")


@needs_sml
async def test_a_task_with_calculate_stats_reports_sidebar_and_timeline(es: AsyncElasticsearch, http: Any) -> None:
    ops: list[dict[str, Any]] = []
    for i, (minute, host) in enumerate([(0, "mail"), (5, "mail"), (40, "dc01")]):
        ops += [{"index": {"_id": f"e{i}"}}, {"@timestamp": f"2024-05-01T10:{minute:02d}:00.000Z",
                                              "host": {"name": host}}]
    await es.bulk(index="auth", operations=ops, refresh=True)
    body = {"query": "source auth", "dtStart": "2024-05-01T10:00:00.000Z", "dtEnd": "2024-05-01T10:59:59.999Z",
            "calculateStats": True}
    task_id = (await (await http.post(f"{BASE}/request", json=body)).json())["id"]
    for _ in range(600):
        result = await (await http.get(f"{BASE}/response/{task_id}?from=0&to=1")).json()
        if result["status"] == "COMPLETED":
            break
        await asyncio.sleep(0.05)
    # over the whole result, not the page of one row
    fields = {f["field"]: f for f in result["sidebar"]["fields"]}
    assert result["sidebar"]["totalEvents"] == 3
    assert fields["host.name"]["topValues"] == [{"value": "mail", "count": 2, "percent": 66.67},
                                                {"value": "dc01", "count": 1, "percent": 33.33}]
    assert fields["@timestamp"]["type"] == "date"
    timeline = result["timeline"]
    assert (timeline["interval"], timeline["start"], timeline["end"]) == (
        "1m", "2024-05-01T10:00:00.000Z", "2024-05-01T10:59:59.999Z")
    assert len(timeline["fields"]) == 60
    assert {b["@timestamp"][11:16]: b["count"] for b in timeline["fields"] if b["count"]} == {
        "10:00": 1, "10:05": 1, "10:40": 1}
