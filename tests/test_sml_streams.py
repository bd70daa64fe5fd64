"""SML's ``top``/``rare``, ``eventstats``, ``streamstats`` and ``rex`` (spec/sml.md §7.13,
§7.15, §7.17, §10 example 10), end to end: documents loaded with the official client, tasks
created, awaited and read over the real HTTP API ``/_sme/async_requests/...``."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service import keys
from service.query.breaker import Breaker, CircuitBreakingError
from service.query.control import Control
from service.query.options import QueryOptions
from service.query.sml import SmlJob, SmlRequest
from service.query.expr import Binary, Column, Literal
from service.query.sml.ast import Agg, EventStats, Rex, StreamStats, Top
from service.query.sml.parser import parse

from test_sme_api import RANGE, get, post, until
from test_sml_engine import bulk, load_auth

# oldest first, as `sort +@timestamp` gives them
ASCENDING = "source auth | sort +@timestamp"


@pytest.fixture
async def auth(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await load_auth(es)
    return es


async def result(http, query: str) -> dict[str, Any]:
    """The whole result of ``query`` over the range of §10, once its task completed."""
    task_id = (await post(http, "request", {"query": query, **RANGE}))["id"]
    await until(http, task_id, "COMPLETED")
    return await get(http, f"response/{task_id}")


async def events(http, query: str) -> list[dict[str, Any]]:
    return (await result(http, query))["events"]


async def refusal(http, query: str) -> str:
    """The reason of the 400 ``parsing_exception`` that creating ``query`` gets."""
    body = await post(http, "request", {"query": query, **RANGE}, status=400)
    assert body["error"]["type"] == "parsing_exception"
    assert await get(http, "status/") == {"tasks": []}  # nothing was stored
    return body["error"]["reason"]


# --- the syntax -----------------------------------------------------------------------------------

def test_the_documented_queries_parse_to_their_commands() -> None:
    assert parse("source auth | top user.name").commands[1] == Top(("user.name",))  # §10 example 10
    # §12 query 14
    assert parse("source server_warnings | streamstats avg(amount) as stream_avg by server_name").commands[1] == \
        StreamStats((Agg("avg", (Column("amount"),), "stream_avg"),), ("server_name",))


def test_every_option_in_every_place() -> None:
    assert parse("source a | rare limit=3 a, b countfield=n by c showperc=false").commands[1] == \
        Top(("a", "b"), ("c",), 3, True, "n", None)
    assert parse("source a | TOP 0 'odd-name' percentfield=\"p c\"").commands[1] == \
        Top(("odd-name",), limit=0, percent="p c")
    assert parse("source a | eventstats count, dc(u) by h, k").commands[1] == \
        EventStats((Agg("count", (), "count"), Agg("dc", (Column("u"),), "dc(u)")), ("h", "k"))
    assert parse("source a | streamstats window=5 reset_on_change=true count by h "
                 "reset_before=(x > 1) reset_after=(count == 3)").commands[1] == \
        StreamStats((Agg("count", (), "count"),), ("h",), 5, True, Binary(">", Column("x"), Literal(1, "integer")),
                    Binary("==", Column("count"), Literal(3, "integer")))
    assert parse('source a | rex field=msg "(?<u>\\w+)@(?P<h>\\w+)"').commands[1] == \
        Rex("msg", "(?<u>\\w+)@(?P<h>\\w+)", ("u", "h"))


# --- top / rare (spec §7.13) -------------------------------------------------------------------

async def test_top_is_worked_example_10(auth, http) -> None:
    answer = await result(http, "source auth | top user.name")
    assert answer["events"] == [{"user.name": "bob", "count": 3, "percent": 60.0},
                                {"user.name": "alice", "count": 2, "percent": 40.0}]
    assert answer["fields"] == ["user.name", "count", "percent"] and answer["total"] == 2


async def test_rare_puts_the_least_frequent_first(auth, http) -> None:
    assert await events(http, "source auth | rare user.name") == [
        {"user.name": "alice", "count": 2, "percent": 40.0}, {"user.name": "bob", "count": 3, "percent": 60.0}]


async def test_top_counts_combinations_ties_by_value_and_limits(auth, http) -> None:
    rows = await events(http, "source auth | top limit=0 user.name, host.name showperc=false")
    assert rows == [{"user.name": "bob", "host.name": "mail", "count": 2},  # then ties by the values ascending
                    {"user.name": "alice", "host.name": "dc01", "count": 1},
                    {"user.name": "alice", "host.name": "mail", "count": 1},
                    {"user.name": "bob", "host.name": "dc01", "count": 1}]
    assert await events(http, "source auth | top 2 user.name host.name showperc=false") == rows[:2]
    assert await events(http, "source auth | rare 1 user.name, host.name showperc=false") == [rows[1]]


async def test_top_keeps_ten_by_default(timed, http) -> None:
    rows = await events(http, "source timed qsize=20 | top bytes")  # the 20 newest: 19980..19999, once each
    assert rows == [{"bytes": b, "count": 1, "percent": 5.0} for b in range(19980, 19990)]
    rows = await events(http, "source timed qsize=20 | rare 3 bytes by host showperc=false")
    assert rows == [{"host": "h0", "bytes": b, "count": 1} for b in (19980, 19983, 19986)] + \
        [{"host": "h1", "bytes": b, "count": 1} for b in (19981, 19984, 19987)] + \
        [{"host": "h2", "bytes": b, "count": 1} for b in (19982, 19985, 19988)]


async def test_top_by_groups_in_value_order_with_their_own_percent(auth, http) -> None:
    rows = await events(http, "source auth | top 1 host.name by event.outcome countfield=n percentfield=share")
    assert rows == [{"event.outcome": "failure", "host.name": "mail", "n": 2, "share": 100.0},
                    {"event.outcome": "success", "host.name": "dc01", "n": 2, "share": 66.67}]


async def test_top_counts_each_value_of_a_multi_value_and_skips_rows_without_the_field(es, http) -> None:
    await bulk(es, "tags", [("t1", {"@timestamp": "2024-05-01T01:00:00Z", "tag": ["a", "b"]}),
                             ("t2", {"@timestamp": "2024-05-01T02:00:00Z", "tag": "b"}),
                             ("t3", {"@timestamp": "2024-05-01T03:00:00Z", "n": 1}),
                             ("t4", {"@timestamp": "2024-05-01T04:00:00Z", "tag": 7})])
    # percent: the share of the rows holding the field (3), so a multi-value can make more than 100 in all
    assert await events(http, "source tags | top tag") == [
        {"tag": "b", "count": 2, "percent": 66.67}, {"tag": "7", "count": 1, "percent": 33.33},
        {"tag": "a", "count": 1, "percent": 33.33}]  # a keyword field: 7 is the text "7", before "a"
    assert await events(http, "source tags | top nosuchfield") == []


async def test_top_showcount_false_leaves_the_count_out(auth, http) -> None:
    # §7.13 names no showcount; Splunk's top/rare have it (default true), as they have showperc
    assert await refusal(http, "source auth | top user.name showcount=maybe") == \
        "line 1:39: [showcount] must be true or false, found [maybe]"
    answer = await result(http, "source auth | top user.name showcount=false")
    assert answer["events"] == [{"user.name": "bob", "percent": 60.0}, {"user.name": "alice", "percent": 40.0}]
    assert answer["fields"] == ["user.name", "percent"]
    assert await events(http, "source auth | rare showcount=false host.name showperc=false") == [
        {"host.name": "dc01"}, {"host.name": "mail"}]  # still ranked by their counts
    assert await events(http, "source auth | top 1 user.name showcount=true countfield=n") == [
        {"user.name": "bob", "n": 3, "percent": 60.0}]


async def test_top_shows_dates_as_dates_and_its_output_feeds_later_commands(auth, http) -> None:
    assert await events(http, "source auth | top 1 @timestamp showperc=false") == [
        {"@timestamp": "2024-05-01T10:00:00.000Z", "count": 1}]
    assert await events(http, "source auth | top user.name | where count > 2 | table user.name") == [
        {"user.name": "bob"}]


async def test_top_refusals(auth, http) -> None:
    assert await refusal(http, "source auth | top") == \
        "line 1:18: expected a field name, a number or a parameter after [top]"
    assert await refusal(http, "source auth | top 3 user.name limit=2") == "line 1:37: [top] count given twice"
    assert await refusal(http, "source auth | top user.name by a by b") == "line 1:34: only one [by] clause is allowed"
    assert await refusal(http, "source auth | top user.name showperc=maybe") == \
        "line 1:38: [showperc] must be true or false, found [maybe]"
    assert await refusal(http, "source auth | rare user.name countfeld=c") == \
        "line 1:30: unknown parameter [countfeld] for [rare], expected one of " \
        "[countfield, limit, percentfield, showcount, showperc]"


# --- eventstats (spec §7.15) --------------------------------------------------------------------

async def test_eventstats_adds_each_groups_aggregates_to_its_rows_in_order(auth, http) -> None:
    rows = await events(http, "source auth | eventstats count as n, dc(user.name) as users, "
                              "latest(@timestamp) as last by host.name | table _id, host.name, n, users, last")
    mail = {"host.name": "mail", "n": 3, "users": 2, "last": "2024-05-01T10:20:00.000Z"}
    dc01 = {"host.name": "dc01", "n": 2, "users": 2, "last": "2024-05-01T10:15:00.000Z"}
    assert rows == [{"_id": "e5", **mail}, {"_id": "e4", **dc01}, {"_id": "e3", **dc01}, {"_id": "e2", **mail},
                    {"_id": "e1", **mail}]


async def test_eventstats_without_by_and_on_raw_events(auth, http) -> None:
    rows = await events(http, "source auth | eventstats count, avg(event.code) as mean | head 2")
    assert [(r["_id"], r["count"], r["mean"]) for r in rows] == [("e5", 5, 4624.4), ("e4", 5, 4624.4)]
    assert rows[0]["user"] == {"name": "bob"}  # the stored event, the aggregates beside it
    rows = await events(http, "source auth | eventstats max(event.code) as host by user.name | table _id, host")
    assert [r["host"] for r in rows] == [4625, 4625, 4624, 4625, 4624]  # a field named like a by field's object


async def test_eventstats_gives_rows_without_the_by_field_nulls(es, http) -> None:
    await bulk(es, "tags", [("t1", {"@timestamp": "2024-05-01T01:00:00Z", "tag": ["a", "b"], "n": 1}),
                             ("t2", {"@timestamp": "2024-05-01T02:00:00Z", "tag": "b", "n": 2}),
                             ("t3", {"@timestamp": "2024-05-01T03:00:00Z", "n": 4})])
    rows = await events(http, "source tags | eventstats sum(n) as total by tag | table _id, total")
    # t1 counts in the groups a and b and shows its first value's group
    assert rows == [{"_id": "t3", "total": None}, {"_id": "t2", "total": 3}, {"_id": "t1", "total": 1}]


async def test_eventstats_and_streamstats_over_flat_rows_add_their_columns_once(auth, http) -> None:
    answer = await result(http, "source auth | stats count by host.name | eventstats sum(count) as total "
                                "| streamstats sum(count) as running")
    assert answer["events"] == [{"host.name": "dc01", "count": 2, "total": 5, "running": 2},
                                {"host.name": "mail", "count": 3, "total": 5, "running": 5}]
    assert answer["fields"] == ["host.name", "count", "total", "running"]


async def test_eventstats_refusals(auth, http) -> None:
    assert await refusal(http, "source auth | eventstats average(event.code)") == \
        "line 1:26: unknown aggregate function [average]"
    assert await refusal(http, "source auth | eventstats count by") == "line 1:34: expected a field name after [by]"


# --- streamstats (spec §7.15) -------------------------------------------------------------------

async def test_streamstats_running_aggregates_per_group(auth, http) -> None:
    rows = await events(http, f"{ASCENDING} | streamstats count as n, sum(event.code) as s by user.name "
                              "| table _id, n, s")
    assert rows == [{"_id": "e1", "n": 1, "s": 4624}, {"_id": "e2", "n": 1, "s": 4625},
                    {"_id": "e3", "n": 2, "s": 9248}, {"_id": "e4", "n": 2, "s": 9249},
                    {"_id": "e5", "n": 3, "s": 13874}]


async def test_streamstats_documented_example(es, http) -> None:
    amounts = [("w1", "a", 10), ("w2", "b", 100), ("w3", "a", 20), ("w4", "a", 60), ("w5", "b", 50)]
    await bulk(es, "server_warnings", [(_id, {"@timestamp": f"2024-05-01T0{i}:00:00Z", "server_name": server,
                                               "amount": amount})
                                        for i, (_id, server, amount) in enumerate(amounts, 1)])
    rows = await events(http, "source server_warnings | streamstats avg(amount) as stream_avg by server_name "
                              "| table _id, stream_avg")  # newest first: w5 first
    assert rows == [{"_id": "w5", "stream_avg": 50.0}, {"_id": "w4", "stream_avg": 60.0},
                    {"_id": "w3", "stream_avg": 40.0}, {"_id": "w2", "stream_avg": 75.0},
                    {"_id": "w1", "stream_avg": 30.0}]


async def test_streamstats_window_counts_only_the_groups_last_rows(auth, http) -> None:
    rows = await events(http, f"{ASCENDING} | streamstats window=2 count as n, min(event.code) as low, "
                              "values(user.name) as who | table _id, n, low, who")
    assert rows == [{"_id": "e1", "n": 1, "low": 4624, "who": ["alice"]},
                    {"_id": "e2", "n": 2, "low": 4624, "who": ["alice", "bob"]},
                    {"_id": "e3", "n": 2, "low": 4624, "who": ["alice", "bob"]},
                    {"_id": "e4", "n": 2, "low": 4624, "who": ["alice", "bob"]},
                    {"_id": "e5", "n": 2, "low": 4624, "who": ["bob"]}]
    rows = await events(http, f"{ASCENDING} | streamstats count as n, max(event.code) as high by user.name "
                              "window=1 | table _id, n, high")
    assert [(r["n"], r["high"]) for r in rows] == [(1, 4624), (1, 4625), (1, 4624), (1, 4624), (1, 4625)]


async def test_streamstats_resets(auth, http) -> None:
    async def counts(options: str) -> list[int]:
        return [r["n"] for r in await events(http, f"{ASCENDING} | streamstats count as n {options} | table n")]
    # hosts in time order: mail mail dc01 dc01 mail
    assert await counts("by host.name reset_on_change=true") == [1, 2, 1, 2, 1]
    assert await counts("by host.name") == [1, 2, 1, 2, 3]
    # codes in time order: 4624 4625 4624 4624 4625
    assert await counts("reset_before=(event.code == 4625)") == [1, 1, 2, 3, 1]
    assert await counts("reset_after=(n >= 2)") == [1, 2, 1, 2, 1]  # reset_after sees the running values
    # a reset clears the row's own group only: users in time order alice bob alice bob bob
    assert await counts("by user.name reset_after=(event.code == 4625)") == [1, 1, 2, 1, 2]


async def test_streamstats_current_false_leaves_the_row_itself_out(auth, http) -> None:
    # §7.15 is silent on current; Splunk's streamstats has it (default true): with current=false
    # each row gets the aggregates of the rows before it (over no row: count 0, others null)
    rows = await events(http, f"{ASCENDING} | streamstats current=false count as n, last(host.name) as prev, "
                              "max(event.code) as high by user.name | table _id, n, prev, high")
    # users in time order alice bob alice bob bob, hosts mail mail dc01 dc01 mail
    assert rows == [{"_id": "e1", "n": 0, "prev": None, "high": None},
                    {"_id": "e2", "n": 0, "prev": None, "high": None},
                    {"_id": "e3", "n": 1, "prev": "mail", "high": 4624},
                    {"_id": "e4", "n": 1, "prev": "mail", "high": 4625},
                    {"_id": "e5", "n": 2, "prev": "dc01", "high": 4625}]
    rows = await events(http, f"{ASCENDING} | streamstats window=2 current=false count as n, min(event.code) as low "
                              "| table n, low")
    assert rows == [{"n": 0, "low": None}, {"n": 1, "low": 4624}, {"n": 2, "low": 4624}, {"n": 2, "low": 4624},
                    {"n": 2, "low": 4624}]
    assert await events(http, f"{ASCENDING} | streamstats current=true count as n | table n") == \
        [{"n": n} for n in range(1, 6)]


async def test_streamstats_gives_rows_without_the_by_field_nulls_and_counts_them_nowhere(es, http) -> None:
    await bulk(es, "tags", [("t1", {"@timestamp": "2024-05-01T01:00:00Z", "tag": "a", "n": 1}),
                             ("t2", {"@timestamp": "2024-05-01T02:00:00Z", "n": 2}),
                             ("t3", {"@timestamp": "2024-05-01T03:00:00Z", "tag": "a", "n": 4})])
    rows = await events(http, "source tags | sort +@timestamp | streamstats sum(n) as total by tag | table _id, total")
    assert rows == [{"_id": "t1", "total": 1}, {"_id": "t2", "total": None}, {"_id": "t3", "total": 5}]


async def test_streamstats_refusals(auth, http) -> None:
    assert await refusal(http, "source auth | streamstats window=-1 count") == \
        "line 1:34: expected a field name, a number or [(] after [=], found [-1]"
    assert await refusal(http, "source auth | streamstats window=(2) count") == \
        "line 1:35: [window] takes a value, not an expression"
    assert await refusal(http, "source auth | streamstats count reset_after=n") == \
        "line 1:45: [reset_after] takes an eval expression in parentheses, found [n]"
    assert await refusal(http, "source auth | streamstats count reset_before=(nosuch(n))") == \
        "line 1:47: unknown function [nosuch]"
    assert await refusal(http, "source auth | streamstats count allnum=true") == \
        "line 1:33: unknown parameter [allnum] for [streamstats], expected one of " \
        "[current, reset_after, reset_before, reset_on_change, window]"
    assert await refusal(http, "source auth | streamstats count current=no") == \
        "line 1:41: [current] must be true or false, found [no]"


# --- rex (spec §7.17) ---------------------------------------------------------------------------

@pytest.fixture
async def messages(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await bulk(es, "msgs", [
        ("m1", {"@timestamp": "2024-05-01T01:00:00Z", "message": "login user=alice from 10.0.0.1 ok"}),
        ("m2", {"@timestamp": "2024-05-01T02:00:00Z", "message": "login user=bob", "src": "kept"}),
        ("m3", {"@timestamp": "2024-05-01T03:00:00Z", "message": "nothing here", "user": "old"}),
        ("m4", {"@timestamp": "2024-05-01T04:00:00Z", "message": ["no", "user=carol from 10.0.0.4",
                                                                  "user=dave from 10.0.0.5"]}),
        ("m5", {"@timestamp": "2024-05-01T05:00:00Z", "code": 17})])
    return es


async def test_rex_extracts_named_groups_of_the_first_match(messages, http) -> None:
    rows = await events(http, 'source msgs | sort +@timestamp '
                              '| rex field=message "user=(?<user>\\w+)( from (?<src>[0-9.]+))?" | table _id, user, src')
    assert rows == [{"_id": "m1", "user": "alice", "src": "10.0.0.1"},
                    {"_id": "m2", "user": "bob", "src": "kept"},  # a group that took no part keeps the field
                    {"_id": "m3", "user": "old", "src": None},  # no match: the fields stay as they were
                    {"_id": "m4", "user": "carol", "src": "10.0.0.4"},  # the first value that matches
                    {"_id": "m5", "user": None, "src": None}]


async def test_rex_fields_are_strings_later_commands_read(messages, http) -> None:
    rows = await events(http, 'source msgs | rex field=code "(?P<tens>\\d)(?<ones>\\d)" '
                              '| where isnotnull(tens) | eval n = tens * 10 + ones * 1 | table tens, ones, n')
    # a number is read as its text; then `+` would join the strings, `*` reads them as numbers
    assert rows == [{"tens": "1", "ones": "7", "n": 17}]
    rows = await events(http, 'source msgs qsize=1 | rex field=message "(?<word>\\w+)"')
    assert rows[0]["_id"] == "m5" and rows[0]["word"] is None and rows[0]["code"] == 17  # the raw event, extended
    rows = await events(http, 'source msgs | rex field=message "^(?<verb>\\w+) user" | stats count by verb')
    assert rows == [{"verb": "login", "count": 2}]


async def test_rex_refusals(messages, http) -> None:
    assert await refusal(http, 'source msgs | rex field=message "(?<a>x)\\1"') == \
        "line 1:33: invalid regular expression [(?<a>x)\\1]: invalid escape sequence: \\1"
    assert await refusal(http, 'source msgs | rex field=message "(?<a>x"') == \
        "line 1:33: invalid regular expression [(?<a>x]: missing ): (?<a>x"
    assert await refusal(http, 'source msgs | rex field=message "user=\\w+"') == \
        "line 1:33: regular expression [user=\\w+] names no group to extract: (?<name>...)"
    assert await refusal(http, 'source msgs | rex "(?<a>x)"') == \
        "line 1:15: [rex] needs the field to read: field=<name>"
    assert await refusal(http, 'source msgs | rex field=message mode=sed "s/a/b/"') == \
        "line 1:33: unknown parameter [mode] for [rex], expected one of [field]"


# --- the tasks -----------------------------------------------------------------------------------

@pytest.fixture
async def timed(es: AsyncElasticsearch) -> AsyncElasticsearch:
    """20 000 events one second apart from 2024-05-01T00:00:00Z, ``bytes`` their number, ``host`` of 3."""
    for chunk in range(0, 20000, 5000):
        ops: list[dict[str, Any]] = []
        for i in range(chunk, chunk + 5000):
            ops += [{"index": {}}, {"@timestamp": 1_714_521_600_000 + i * 1000, "bytes": i, "host": f"h{i % 3}"}]
        assert not (await es.bulk(index="timed", operations=ops, refresh=True))["errors"]
    return es


async def test_a_stopped_task_finishes_every_command_over_the_rows_read(timed, http, monkeypatch) -> None:
    monkeypatch.setattr(Control, "pause_s", 0.06)  # a slice pause keeps the scan running for seconds
    query = "source timed qsize=20000 | eventstats count as total | streamstats count as n | where n == total"
    task_id = (await post(http, "request", {"query": f"{query} | table total, n", **RANGE}))["id"]
    shares_id = (await post(http, "request", {"query": "source timed qsize=20000 | top 3 host", **RANGE}))["id"]
    await until(http, task_id, "RUNNING")
    await asyncio.sleep(0.5)
    assert (await post(http, "break/"))["stopped"]
    (row,) = (await get(http, f"response/{task_id}"))["events"]
    assert 0 < row["total"] == row["n"] < 20000  # the totals of the rows read, exactly
    shares = (await get(http, f"response/{shares_id}"))["events"]
    assert 0 < sum(r["count"] for r in shares) < 20000 and all(33 <= r["percent"] <= 34 for r in shares)


async def test_large_inputs_complete_exactly(timed, http) -> None:
    rows = await events(http, "source timed qsize=20000 | sort +@timestamp | streamstats window=100 sum(bytes) as s "
                              "by host | eventstats max(s) as top by host | top 5 top showperc=false")
    # each host's highest sum is over its last 100 rows; h0 and h1 have 6667 rows, h2 6666
    highest = {h: sum(range(last, last - 300, -3)) for h, last in (("h0", 19998), ("h1", 19999), ("h2", 19997))}
    assert rows == [{"top": highest["h0"], "count": 6667}, {"top": highest["h1"], "count": 6667},
                    {"top": highest["h2"], "count": 6666}]


def _run_within(server: Any, query: str, limit: int) -> int:
    """How many rows ``query`` gives over the server's file with a memory breaker of ``limit`` bytes."""
    request = SmlRequest(query=query, time_field="@timestamp", start_ms=1_714_521_600_000,
                         end_ms=1_714_608_000_000, now_ms=1_714_608_000_000)
    job = SmlJob.compile(request, server.app[keys.CATALOG], QueryOptions())
    control = Control()
    control.breaker = Breaker(limit)
    with sqlite3.connect(server.app[keys.SETTINGS].db_path) as conn:
        return sum(1 for _ in job.run(conn, control).rows)


@pytest.mark.parametrize("command", ["eventstats count", "streamstats count by bytes", "top 0 bytes",
                                     "streamstats dc(bytes) as d", "streamstats window=20000 max(bytes) as m"])
async def test_what_the_commands_hold_is_charged_to_the_breaker(timed, server, command: str) -> None:
    limit = 1 << 20
    assert _run_within(server, "source timed qsize=20000 | stats count by host", limit) == 3
    assert _run_within(server, f"source timed qsize=500 | {command}", limit) == 500
    with pytest.raises(CircuitBreakingError):
        _run_within(server, f"source timed qsize=20000 | {command}", limit)


async def test_what_a_reset_group_held_is_released(timed, server) -> None:
    # the host changes on every row: each group starts again, so the distinct values never pile up
    query = "source timed qsize=20000 | streamstats dc(bytes) as d, values(bytes) as v by host reset_on_change=true"
    assert _run_within(server, query, 1 << 20) == 20000
    with pytest.raises(CircuitBreakingError):
        _run_within(server, query.replace(" reset_on_change=true", ""), 1 << 20)


async def _preview(http, task_id: str, rows: int = 0) -> dict[str, Any]:
    """The first preview of a running task that shows rows, over more than ``rows`` events."""
    for _ in range(400):
        body = await get(http, f"response/{task_id}")
        progress = (await get(http, f"status/{task_id}"))["progress"]
        if body.get("preview") and body["events"] and progress * 20000 > rows:
            return body
        assert body["status"] == "RUNNING", body
        await asyncio.sleep(0.05)
    raise AssertionError(f"no preview of {task_id}")


async def test_running_top_and_eventstats_tasks_show_previews(timed, http, monkeypatch) -> None:
    monkeypatch.setattr(Control, "pause_s", 0.06)
    top = (await post(http, "request", {"query": "source timed qsize=20000 | top 2 host", **RANGE}))["id"]
    totals = (await post(http, "request", {"query": "source timed qsize=20000 | eventstats count as total "
                                                     "| stats max(total) as t, count as c", **RANGE}))["id"]
    await until(http, top, "RUNNING")
    preview = await _preview(http, top)
    assert preview["fields"] == ["host", "count", "percent"] and len(preview["events"]) == 2
    assert 0 < sum(e["count"] for e in preview["events"]) < 20000
    await until(http, totals, "RUNNING")
    (row,) = (await _preview(http, totals, 5000))["events"]  # the stats after it reads the preview's rows in batches
    assert 2048 < row["t"] == row["c"] < 20000  # every row read so far, with the count of every row read so far
    assert (await get(http, f"status/{totals}"))["status"] == "RUNNING"
    await post(http, "break/")
