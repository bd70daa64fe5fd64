"""SML ``timechart``, ``timeaggs`` and ``bin`` (spec/sml.md §7.14, §10 example 16) end to end:
background tasks created, run and read over the real HTTP API (``/_sme/async_requests``)
of a real server over a real SQLite file, the documents loaded with the official client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service.store.dates import format_millis, parse_iso_nanos
from test_sme_api import BASE, RANGE, auth, get, post, slower, timed, until  # noqa: F401 (fixtures)

MINUTE, HOUR, DAY = 60_000, 3_600_000, 86_400_000
RANGE_2D = {"dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-03T00:00:00Z"}


def ms(text: str) -> int:
    return parse_iso_nanos(text) // 1_000_000


async def answer(http, query: str, **extra: Any) -> dict[str, Any]:
    """The COMPLETED response of a task running ``query`` (over §10's range unless ``extra``
    sets another)."""
    created = await post(http, "request", {"query": query, **RANGE, **extra})
    await until(http, created["id"], "COMPLETED", "FAILED")
    response = await get(http, f"response/{created['id']}")
    assert response["status"] == "COMPLETED", response
    return response


async def refusal(http, query: str) -> str:
    """The reason of the 400 ``parsing_exception`` that refuses ``query`` at creation."""
    resp = await http.post(f"{BASE}/request", json={"query": query, **RANGE})
    body = await resp.json()
    assert resp.status == 400 and body["error"]["type"] == "parsing_exception", body
    return body["error"]["reason"]


def times(events: list[dict[str, Any]], field: str = "@timestamp") -> list[int]:
    return [ms(e[field]) for e in events]


async def load(es: AsyncElasticsearch, index: str, docs: list[dict[str, Any]]) -> None:
    ops: list[dict[str, Any]] = []
    for doc in docs:
        ops += [{"index": {}}, doc]
    assert not (await es.bulk(index=index, operations=ops, refresh=True))["errors"]


@pytest.fixture
async def logins(es: AsyncElasticsearch) -> AsyncElasticsearch:
    """On 2024-05-01 and 02: u1 logs in 4 times, u2 3, u3 2, u4 once, with ``n`` = 1, 2, ..."""
    docs, n = [], 0
    for user, count in (("u1", 4), ("u2", 3), ("u3", 2), ("u4", 1)):
        for i in range(count):
            n += 1
            docs.append({"@timestamp": f"2024-05-0{1 + i % 2}T0{i}:30:00Z", "user": user, "n": n})
    await load(es, "logins", docs)
    return es


# --- timechart: §10 example 16, the wide format, the range's buckets -------------------------

async def test_worked_example_16_every_bucket_of_the_range_wide(auth: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source auth | timechart span=10m count by event.outcome")
    events = result["events"]
    assert result["fields"] == ["@timestamp", "failure", "success"] and result["total"] == len(events)
    # the range is 2024-05-01T00:00:00Z up to dtEnd 2024-05-02T00:00:00Z, inclusive to its last ms
    assert times(events) == list(range(ms("2024-05-01T00:00:00Z"), ms("2024-05-02T00:00:00Z") + 1, 10 * MINUTE))
    by_time = {e["@timestamp"]: e for e in events}
    assert by_time.pop("2024-05-01T10:00:00.000Z") == {"@timestamp": "2024-05-01T10:00:00.000Z",
                                                       "failure": 1, "success": 1}
    assert {k: v for k, v in by_time.pop("2024-05-01T10:10:00.000Z").items() if k != "@timestamp"} == \
        {"failure": 0, "success": 2}
    assert {k: v for k, v in by_time.pop("2024-05-01T10:20:00.000Z").items() if k != "@timestamp"} == \
        {"failure": 1, "success": 0}
    assert all(e["failure"] == 0 and e["success"] == 0 for e in by_time.values())


async def test_empty_buckets_count_zero_and_other_aggregates_null(auth: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source auth | timechart span=1h count, avg(event.code) as code, dc(user.name)")
    assert result["fields"] == ["@timestamp", "count", "code", "dc(user.name)"]
    by_time = {e["@timestamp"]: e for e in result["events"]}
    assert by_time["2024-05-01T10:00:00.000Z"] == {"@timestamp": "2024-05-01T10:00:00.000Z", "count": 5,
                                                   "code": 4624.4, "dc(user.name)": 2}
    assert by_time["2024-05-01T09:00:00.000Z"] == {"@timestamp": "2024-05-01T09:00:00.000Z", "count": 0,
                                                   "code": None, "dc(user.name)": None}
    assert len(by_time) == 25  # 00:00 .. 00:00 the next day


async def test_no_events_still_gives_every_bucket(auth: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source auth | search event.code=1 | timechart span=6h count")
    assert result["events"] == [{"@timestamp": f"2024-05-0{d}T{h:02}:00:00.000Z", "count": 0}
                                for d, h in ((1, 0), (1, 6), (1, 12), (1, 18), (2, 0))]


@pytest.mark.parametrize(("start", "end", "step", "first"), [
    ("2024-05-01T10:00:00Z", "2024-05-01T10:15:00Z", 10_000, "2024-05-01T10:00:00.000Z"),  # <= 15 min: 10 s
    ("2024-05-01T10:00:00Z", "2024-05-01T11:00:00Z", MINUTE, "2024-05-01T10:00:00.000Z"),  # <= 1 h: 1 min
    ("2024-05-01T09:07:00Z", "2024-05-01T13:07:00Z", 5 * MINUTE, "2024-05-01T09:05:00.000Z"),  # <= 4 h: 5 min
    ("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z", 30 * MINUTE, "2024-05-01T00:00:00.000Z"),  # <= 24 h: 30 min
    ("2024-04-25T12:00:00Z", "2024-05-02T12:00:00Z", DAY, "2024-04-25T00:00:00.000Z"),  # 7 days: 1 day
    ("2024-04-02T00:00:00Z", "2024-05-02T00:00:00Z", DAY, "2024-04-02T00:00:00.000Z"),  # 30 days: 1 day
])
async def test_predefined_spans_by_the_length_of_the_range(auth: AsyncElasticsearch, http, start: str, end: str,
                                                           step: int, first: str) -> None:
    events = (await answer(http, "source auth | timechart count", dtStart=start, dtEnd=end))["events"]
    starts = times(events)
    assert events[0]["@timestamp"] == first and starts[-1] <= ms(end) < starts[-1] + step
    assert {b - a for a, b in zip(starts, starts[1:])} == {step}
    assert sum(e["count"] for e in events) == sum(ms(start) <= ms(t) <= ms(end) + 999 for t in (
        "2024-05-01T10:00:00Z", "2024-05-01T10:05:00Z", "2024-05-01T10:10:00Z", "2024-05-01T10:15:00Z",
        "2024-05-01T10:20:00Z"))


async def test_a_year_is_in_calendar_months(auth: AsyncElasticsearch, http) -> None:
    events = (await answer(http, "source auth | timechart count", dtStart="2023-06-15T00:00:00Z",
                           dtEnd="2024-06-14T00:00:00Z"))["events"]
    assert [e["@timestamp"][:10] for e in events] == \
        [f"2023-{m:02}-01" for m in range(6, 13)] + [f"2024-{m:02}-01" for m in range(1, 7)]
    assert [e["count"] for e in events if e["count"]] == [5]
    assert next(e for e in events if e["count"])["@timestamp"] == "2024-05-01T00:00:00.000Z"


# every spelling of every unit (spec §7.14): (span, its length, a range holding a few of them)
_WINDOWS = {1000: "2024-05-01T10:00:10Z", MINUTE: "2024-05-01T10:10:00Z", HOUR: "2024-05-01T16:00:00Z",
            DAY: "2024-05-10T00:00:00Z", 7 * DAY: "2024-06-30T00:00:00Z"}
SPANS = [(f"2{unit}", 2 * size) for unit, size in (
    ("s", 1000), ("sec", 1000), ("secs", 1000), ("second", 1000), ("seconds", 1000),
    ("m", MINUTE), ("min", MINUTE), ("mins", MINUTE), ("minute", MINUTE), ("minutes", MINUTE),
    ("h", HOUR), ("hr", HOUR), ("hrs", HOUR), ("hour", HOUR), ("hours", HOUR), ("H", HOUR),
    ("d", DAY), ("day", DAY), ("days", DAY), ("w", 7 * DAY), ("week", 7 * DAY), ("weeks", 7 * DAY))]
SPANS.append(("+2h", 2 * HOUR))


async def test_every_spelling_of_the_span_units(auth: AsyncElasticsearch, http) -> None:
    ids = {}
    for span, size in SPANS:
        window = {"dtStart": "2024-05-01T10:00:00Z", "dtEnd": _WINDOWS[size // 2]}
        ids[span] = (await post(http, "request", {"query": f"source auth | timechart span={span} count",
                                                  **window}))["id"]
    for span, size in SPANS:
        await until(http, ids[span], "COMPLETED")
        starts = times((await get(http, f"response/{ids[span]}?to=3"))["events"])
        assert (starts[1] - starts[0], starts[2] - starts[1]) == (size, size), span


async def test_buckets_are_calendar_aligned_weeks_on_monday_months_on_the_first(auth: AsyncElasticsearch,
                                                                                  http) -> None:
    window = {"dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-20T00:00:00Z"}  # a Wednesday
    weeks = (await answer(http, "source auth | timechart span=1w count", **window))["events"]
    assert [e["@timestamp"] for e in weeks] == ["2024-04-29T00:00:00.000Z", "2024-05-06T00:00:00.000Z",
                                                "2024-05-13T00:00:00.000Z", "2024-05-20T00:00:00.000Z"]
    assert [e["count"] for e in weeks] == [5, 0, 0, 0]
    window = {"dtStart": "2024-01-15T00:00:00Z", "dtEnd": "2024-07-02T00:00:00Z"}
    for span in ("1mon", "1month", "1months"):
        months = (await answer(http, f"source auth | timechart span={span} count", **window))["events"]
        assert [e["@timestamp"][:10] for e in months] == [f"2024-0{m}-01" for m in range(1, 8)], span
    quarters = (await answer(http, "source auth | timechart span=3months count", **window))["events"]
    assert [(e["@timestamp"][:10], e["count"]) for e in quarters] == [
        ("2024-01-01", 0), ("2024-04-01", 5), ("2024-07-01", 0)]
    seven = (await answer(http, "source auth | timechart span=7m count"))["events"]
    assert all(ms(e["@timestamp"]) % (7 * MINUTE) == 0 for e in seven)  # N units from the epoch
    minutes = [10 * 60 + m for m in (0, 5, 10, 15, 20)]
    starts = sorted({m - (m + 24 * 60 * 19844) % 7 for m in minutes})  # 2024-05-01 is day 19844
    assert [e["count"] for e in seven if e["count"]] == \
        [sum(1 for m in minutes if start <= m < start + 7) for start in starts]


async def test_bins_widens_the_predefined_span(auth: AsyncElasticsearch, http) -> None:
    events = (await answer(http, "source auth | timechart bins=10 count"))["events"]
    starts = times(events)
    assert len(events) <= 10 and {b - a for a, b in zip(starts, starts[1:])} == {3 * HOUR}
    assert [(e["@timestamp"], e["count"]) for e in events if e["count"]] == [("2024-05-01T09:00:00.000Z", 5)]
    events = (await answer(http, "source auth | timechart span=1h bins=2 count"))["events"]
    assert len(events) == 25  # an explicit span wins over bins


# --- by: columns, limit, useother, OTHER ------------------------------------------------------

async def test_limit_keeps_the_largest_values_and_merges_the_rest_into_other(logins: AsyncElasticsearch,
                                                                              http) -> None:
    result = await answer(http, "source logins | timechart span=1d limit=2 count by user", **RANGE_2D)
    assert result["fields"] == ["@timestamp", "u1", "u2", "OTHER"]
    assert result["events"] == [
        {"@timestamp": "2024-05-01T00:00:00.000Z", "u1": 2, "u2": 2, "OTHER": 2},
        {"@timestamp": "2024-05-02T00:00:00.000Z", "u1": 2, "u2": 1, "OTHER": 1},
        {"@timestamp": "2024-05-03T00:00:00.000Z", "u1": 0, "u2": 0, "OTHER": 0}]
    default = await answer(http, "source logins | timechart span=1d count by user", **RANGE_2D)
    assert default["fields"] == ["@timestamp", "u1", "u2", "u3", "u4"]  # 4 values: under the default 10
    for every in ("limit=2 useother=false", "limit=0"):
        result = await answer(http, f"source logins | timechart span=1d {every} count by user", **RANGE_2D)
        assert result["fields"] == ["@timestamp", "u1", "u2", "u3", "u4"], every
        assert result["events"][0] == {"@timestamp": "2024-05-01T00:00:00.000Z", "u1": 2, "u2": 2, "u3": 1,
                                       "u4": 1}


async def test_several_aggregates_by_a_field_are_named_aggregate_colon_value(logins: AsyncElasticsearch,
                                                                              http) -> None:
    query = "source logins | timechart span=1d limit=1 count, max(n) as top, avg(n) by user"
    result = await answer(http, query, **RANGE_2D)
    assert result["fields"] == ["@timestamp", "count: u1", "count: OTHER", "top: u1", "top: OTHER",
                                "avg(n): u1", "avg(n): OTHER"]
    # u1: n 1..4 (1, 3 on the 1st); the others: n 5..10; an average of the rest is no merge of theirs: null
    assert result["events"][0] == {"@timestamp": "2024-05-01T00:00:00.000Z", "count: u1": 2, "count: OTHER": 4,
                                   "top: u1": 3, "top: OTHER": 10, "avg(n): u1": 2.0, "avg(n): OTHER": None}
    assert result["events"][2] == {"@timestamp": "2024-05-03T00:00:00.000Z", "count: u1": 0, "count: OTHER": 0,
                                   "top: u1": None, "top: OTHER": None, "avg(n): u1": None, "avg(n): OTHER": None}


async def test_by_values_of_several_kinds_multi_values_and_nulls(es: AsyncElasticsearch, http) -> None:
    await load(es, "tags", [{"@timestamp": "2024-05-01T01:00:00Z", "tag": ["a", "b"]},
                            {"@timestamp": "2024-05-01T01:30:00Z", "tag": "b"},
                            {"@timestamp": "2024-05-01T02:00:00Z"}])
    result = await answer(http, "source tags | timechart span=12h count by tag")
    assert result["events"][0] == {"@timestamp": "2024-05-01T00:00:00.000Z", "a": 1, "b": 2}  # no tag: no column
    await load(es, "codes", [{"@timestamp": "2024-05-01T01:00:00Z", "code": c} for c in (10, 9, 9)])
    result = await answer(http, "source codes | timechart span=1d count by code")
    assert result["fields"] == ["@timestamp", "9", "10"]  # numbers in numeric order, named as text


async def test_perc_and_median(logins: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source logins | timechart span=1d perc(n, 50), median(n), p90(n), "
                                "perc(n, 100) as top", **RANGE_2D)
    assert result["fields"] == ["@timestamp", "perc(n, 50)", "median(n)", "p90(n)", "top"]
    # on the 1st: n = 1, 3, 5, 7, 8, 10 (nearest rank)
    assert result["events"][0] == {"@timestamp": "2024-05-01T00:00:00.000Z", "perc(n, 50)": 5, "median(n)": 5,
                                   "p90(n)": 10, "top": 10}


# --- timefield, later commands, timeaggs --------------------------------------------------------

async def test_timefield_buckets_another_date_and_a_missing_one_warns(es: AsyncElasticsearch, http) -> None:
    await load(es, "seen", [{"@timestamp": "2024-05-01T10:00:00Z", "seen": "2024-05-01T03:00:00Z"},
                            {"@timestamp": "2024-05-01T11:00:00Z", "seen": "2024-05-01T04:59:00Z"}])
    result = await answer(http, "source seen | timechart span=6h timefield=seen count")
    assert result["fields"] == ["seen", "count"]
    assert [(e["seen"], e["count"]) for e in result["events"]][:2] == [("2024-05-01T00:00:00.000Z", 2),
                                                                       ("2024-05-01T06:00:00.000Z", 0)]
    await load(es, "other", [{"ts": "2024-05-01T10:00:00Z", "n": 1}])
    result = await answer(http, "source other | timechart span=6h count", dtFieldName="ts")
    assert all(e["count"] == 0 for e in result["events"])  # @timestamp, the default, is not this data's field
    warning = "[timechart] no row has a value of its time field; set timefield= to the field that holds the " \
              "events' time"
    assert result["warnings"] == [warning]
    lines = (await get(http, f"logs/{result['id']}"))["logs"]
    assert any(line["level"] == "WARN" and line["message"] == warning for line in lines)
    result = await answer(http, "source other | timechart span=6h timefield=ts count", dtFieldName="ts")
    assert [e["count"] for e in result["events"]] == [0, 1, 0, 0, 0] and result["warnings"] == []


async def test_commands_after_timechart_read_its_columns(auth: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source auth | timechart span=10m count by event.outcome | where success > 0 "
                                "| rename success as ok | table @timestamp, ok, failure")
    assert result["events"] == [{"@timestamp": "2024-05-01T10:00:00.000Z", "ok": 1, "failure": 1},
                                {"@timestamp": "2024-05-01T10:10:00.000Z", "ok": 2, "failure": 0}]
    result = await answer(http, "source auth | timechart span=10m count | stats sum(count) as n, max(count) as top")
    assert result["events"] == [{"n": 5, "top": 2}]


async def test_timeaggs_is_timechart_after_storage_commands_only(auth: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source auth | search event.code=4624 | peval h=host.name "
                                "| timeaggs composite=true span=1h count by h")
    assert result["fields"] == ["@timestamp", "dc01", "mail"]
    assert [e for e in result["events"] if e["dc01"] or e["mail"]] == [
        {"@timestamp": "2024-05-01T10:00:00.000Z", "dc01": 2, "mail": 1}]
    assert await refusal(http, "source auth | eval h=1 | timeaggs count") == \
        "line 1:26: [timeaggs] may only follow source, search, peval or inputlookup"
    assert await refusal(http, "source auth | timeaggs composite=true count") == \
        "line 1:34: [composite] of [timeaggs] needs a [by] field"
    assert await refusal(http, "source auth | timeaggs bins=3 count") == \
        "line 1:24: unknown parameter [bins] for [timeaggs], expected one of " \
        "[composite, limit, span, timefield, useother]"


async def test_timechart_refusals_at_their_position(auth: AsyncElasticsearch, http) -> None:
    for query, reason in [
        ("source auth | timechart span=10x count", "line 1:30: unknown unit [x] in [span] [10x], expected one of "
         "[s, sec, secs, second, seconds, m, min, mins, minute, minutes, h, hr, hrs, hour, hours, d, day, days, w, "
         "week, weeks, mon, month, months]"),
        ("source auth | timechart span=10 count", "line 1:30: [span] of [timechart] needs a time unit, found [10]"),
        ("source auth | timechart span=0m count", "line 1:30: [span] [0m] must be greater than zero"),
        ("source auth | timechart span=1.5h count",
         "line 1:30: a time [span] must be a whole number of its unit, found [1.5h]"),
        ("source auth | timechart limit=x count", "line 1:31: [limit] must be a non-negative integer, found [x]"),
        ("source auth | timechart bins=0 count", "line 1:30: [bins] must be a positive integer, found [0]"),
        ("source auth | timechart useother=maybe count", "line 1:34: [useother] must be true or false, found [maybe]"),
        ("source auth | timechart qsize=3 count", "line 1:25: unknown parameter [qsize] for [timechart], "
         "expected one of [bins, limit, span, timefield, useother]"),
        ("source auth | timechart count by a b", "line 1:36: expected a parameter after [a], found [b]"),
        ("source auth | timechart span=1h", "line 1:32: expected a field name or a parameter "
         "after [1h]"),
        ("source auth | timechart average(n)", "line 1:25: unknown aggregate function [average]"),
        ("source auth | timechart perc(n, 101)", "line 1:25: percentile of [perc] must be a number from 0 to 100"),
    ]:
        assert await refusal(http, query) == reason, query
    assert await get(http, "status/") == {"tasks": []}  # nothing was stored


# --- bin ---------------------------------------------------------------------------------------

async def test_bin_floors_times_to_calendar_buckets(auth: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source auth | bin span=15m @timestamp | stats count by @timestamp")
    assert result["events"] == [{"@timestamp": "2024-05-01T10:00:00.000Z", "count": 3},
                                {"@timestamp": "2024-05-01T10:15:00.000Z", "count": 2}]
    result = await answer(http, "source auth qsize=1 | bin span=1d @timestamp as day | table _id, day, @timestamp")
    assert result["events"] == [{"_id": "e5", "day": "2024-05-01T00:00:00.000Z",
                                 "@timestamp": "2024-05-01T10:20:00.000Z"}]
    raw = await answer(http, "source auth qsize=1 | bin span=1h @timestamp")
    assert raw["events"][0]["@timestamp"] == "2024-05-01T10:00:00.000Z" and raw["events"][0]["_id"] == "e5"
    # no span: the range's predefined one (24 h: 30 min)
    result = await answer(http, "source auth | bin @timestamp | stats count by @timestamp")
    assert result["events"] == [{"@timestamp": "2024-05-01T10:00:00.000Z", "count": 5}]


async def test_bin_floors_numbers_to_multiples(logins: AsyncElasticsearch, http) -> None:
    result = await answer(http, "source logins | bin span=4 n as b | stats count by b", **RANGE_2D)
    assert result["events"] == [{"b": 0, "count": 3}, {"b": 4, "count": 4}, {"b": 8, "count": 3}]
    result = await answer(http, "source logins | bin span=2.5 n | stats count by n", **RANGE_2D)
    assert result["events"] == [{"n": 0.0, "count": 2}, {"n": 2.5, "count": 2}, {"n": 5.0, "count": 3},
                                {"n": 7.5, "count": 2}, {"n": 10.0, "count": 1}]
    # bins without span: buckets of max(n) / bins = 10 / 5
    result = await answer(http, "source logins | bin bins=5 n | stats count by n", **RANGE_2D)
    assert result["events"] == [{"n": 0, "count": 1}, {"n": 2, "count": 2}, {"n": 4, "count": 2},
                                {"n": 6, "count": 2}, {"n": 8, "count": 2}, {"n": 10, "count": 1}]
    result = await answer(http, 'source logins | eval s=if(n > 5, "x", n) | bin span=5 s | stats count by s',
                          **RANGE_2D)
    assert result["events"] == [{"s": 0, "count": 4}, {"s": 5, "count": 1}]  # "x" is no number: null


async def test_bin_refuses_a_span_of_the_other_kind(logins: AsyncElasticsearch, http) -> None:
    assert await refusal(http, "source logins | bin span=1h n") == \
        "line 1:26: [bin] field [n] is numeric: its [span] must be a number"
    assert await refusal(http, "source logins | bin span=10 @timestamp") == \
        "line 1:26: [bin] field [@timestamp] is a time field: its [span] needs a time unit"
    assert await refusal(http, "source logins | bin span=1h bins=3 nope=1 n") == \
        "line 1:36: unknown parameter [nope] for [bin], expected one of [bins, span]"


# --- a task that is stopped -------------------------------------------------------------------

async def test_break_pivots_exactly_the_rows_read(timed: AsyncElasticsearch, http, slower: None) -> None:
    created = await post(http, "request", {"query": "source timed qsize=20000 | timechart span=1h count", **RANGE})
    await until(http, created["id"], "RUNNING")
    for _ in range(400):
        if (await get(http, f"status/{created['id']}"))["progress"] > 0:
            break
        await asyncio.sleep(0.05)
    assert (await post(http, f"break/{created['id']}"))["status"] == "STOPPED"
    result = await get(http, f"response/{created['id']}")
    assert result["partial"] is True and len(result["events"]) == 25
    counts = [e["count"] for e in result["events"]]
    read = sum(counts)
    assert 0 < read < 20000
    # newest first: the newest ``read`` of the events, one a second from 00:00:00 (20 000 of them)
    newest = range(20000 - read, 20000)
    assert counts == [sum(1 for i in newest if h * 3600 <= i < (h + 1) * 3600) for h in range(25)]
    assert result["events"][0]["@timestamp"] == format_millis(ms("2024-05-01T00:00:00Z"))


async def test_fields_and_table_patterns_over_the_columns_of_a_by(logins: AsyncElasticsearch, http) -> None:
    base = "source logins | timechart span=1d limit=2 count by user"
    result = await answer(http, f"{base} | fields - OTHER", **RANGE_2D)
    assert result["fields"] == ["@timestamp", "u1", "u2"] and result["events"][0] == \
        {"@timestamp": "2024-05-01T00:00:00.000Z", "u1": 2, "u2": 2}
    result = await answer(http, f"{base} | fields u*", **RANGE_2D)
    assert result["events"][1] == {"u1": 2, "u2": 1}
    result = await answer(http, f"{base} | table @timestamp, O*, nothing", **RANGE_2D)
    assert result["events"][0] == {"@timestamp": "2024-05-01T00:00:00.000Z", "OTHER": 2, "nothing": None}


async def test_a_running_timechart_previews_every_bucket(timed: AsyncElasticsearch, http, slower: None) -> None:
    created = await post(http, "request", {"query": "source timed qsize=20000 | timechart span=1h count", **RANGE})
    await until(http, created["id"], "RUNNING")
    for _ in range(400):
        body = await get(http, f"response/{created['id']}")
        if body.get("preview") and sum(e["count"] for e in body["events"]) > 0:
            break
        await asyncio.sleep(0.05)
    assert body["status"] == "RUNNING" and body["preview"] is True and body["fields"] == ["@timestamp", "count"]
    assert len(body["events"]) == body["total"] == 25 and 0 < sum(e["count"] for e in body["events"]) < 20000
    await post(http, f"break/{created['id']}")
