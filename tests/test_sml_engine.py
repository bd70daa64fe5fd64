"""SML on the shared engine: every worked example of spec/sml.md §10 as a table, then the
rules of each command (§7) and the job's frame, run by ``SmlJob`` on the SQLite file a real
server wrote (the documents loaded with the official client)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service import keys
from service.errors import ServiceError
from service.query.control import Control
from service.query.options import QueryOptions
from service.query.sml import SmlJob, SmlRequest
from service.store.dates import format_millis, parse_iso_nanos

START = parse_iso_nanos("2024-05-01T00:00:00Z") // 1_000_000
END = parse_iso_nanos("2024-05-02T00:00:00Z") // 1_000_000
NOW = parse_iso_nanos("2024-05-01T12:00:00Z") // 1_000_000
AUTH = [  # spec/sml.md §10: (id, time, host.name, user.name, event.code, event.outcome)
    ("e1", "2024-05-01T10:00:00.000Z", "mail", "alice", 4624, "success"),
    ("e2", "2024-05-01T10:05:00.000Z", "mail", "bob", 4625, "failure"),
    ("e3", "2024-05-01T10:10:00.000Z", "dc01", "alice", 4624, "success"),
    ("e4", "2024-05-01T10:15:00.000Z", "dc01", "bob", 4624, "success"),
    ("e5", "2024-05-01T10:20:00.000Z", "mail", "bob", 4625, "failure"),
]


def _doc(time: str, host: str, user: str, code: int, outcome: str) -> dict[str, Any]:
    return {"@timestamp": time, "host": {"name": host}, "user": {"name": user},
            "event": {"code": code, "outcome": outcome}}


async def bulk(es: AsyncElasticsearch, index: str, docs: list[tuple[str, dict[str, Any]]]) -> None:
    """Index ``docs`` (id, document) into ``index`` and refresh."""
    ops: list[dict[str, Any]] = []
    for _id, doc in docs:
        ops += [{"index": {"_index": index, "_id": _id}}, doc]
    response = await es.bulk(operations=ops, refresh=True)
    assert not response["errors"], response


async def load_auth(es: AsyncElasticsearch) -> None:
    await bulk(es, "auth", [(row[0], _doc(*row[1:])) for row in AUTH])


def _run(server: Any, query: str, options: QueryOptions = QueryOptions(),
         **request: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The rows and the frame of ``query`` over the request range of §10."""
    sml = SmlRequest(**{"query": query, "time_field": "@timestamp", "start_ms": START, "end_ms": END,
                        "now_ms": NOW, **request})
    job = SmlJob.compile(sml, server.app[keys.CATALOG], options)
    with sqlite3.connect(server.app[keys.SETTINGS].db_path) as conn:
        answer = job.run(conn, Control())
        rows = [row[0] for row in answer.rows]
    return rows, job.frame(answer, 0)


def _error(server: Any, query: str) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        _run(server, query)
    return caught.value


def _example_16() -> list[dict[str, Any]]:
    """§10 example 16: a row for every 10-minute bucket of the range, 0 where no event is."""
    counts = {"10:00": (1, 1), "10:10": (0, 2), "10:20": (1, 0)}
    rows = []
    for start in range(START, END, 600_000):
        failure, success = counts.get(format_millis(start)[11:16], (0, 0))
        rows.append({"@timestamp": format_millis(start), "failure": failure, "success": success})
    return rows


def ids(*names: str) -> tuple[str, ...]:
    """Expected raw events, by ``_id``, in order."""
    return names


# spec/sml.md §10: query -> the events' ids in order, or the flat rows exactly
EXAMPLES = [
    ("1", "source auth | search event.code=4625 | table @timestamp, user.name",
     [{"@timestamp": "2024-05-01T10:20:00.000Z", "user.name": "bob"},
      {"@timestamp": "2024-05-01T10:05:00.000Z", "user.name": "bob"}]),
    ("2-aggs", "source auth | aggs count by host.name",
     [{"host.name": "dc01", "count": 2}, {"host.name": "mail", "count": 3}]),
    ("2-stats", "source auth | stats count by host.name",
     [{"host.name": "dc01", "count": 2}, {"host.name": "mail", "count": 3}]),
    ("3", "source auth | aggs count, dc(user.name) as users, latest(@timestamp) as last_seen by event.outcome",
     [{"event.outcome": "failure", "count": 2, "users": 1, "last_seen": "2024-05-01T10:20:00.000Z"},
      {"event.outcome": "success", "count": 3, "users": 2, "last_seen": "2024-05-01T10:15:00.000Z"}]),
    ("4", "source auth qsize=2", ids("e5", "e4")),
    ("5", "source auth qsize=2 | search event.code=4624", ids("e4", "e3")),
    ("6-search", "source auth | search host.name=mail AND event.code=4624 OR user.name=alice", ids("e3", "e1")),
    ("6-where", 'source auth | where host.name=="mail" AND event.code==4624 OR user.name=="alice"', ids("e1")),
    ("7", 'source auth | eval ok=if(event.outcome=="success", 1, 0) | stats sum(ok) as ok_count, count by user.name',
     [{"user.name": "alice", "ok_count": 2, "count": 2}, {"user.name": "bob", "ok_count": 1, "count": 3}]),
    ("8", "source auth | dedup user.name | table user.name, host.name",
     [{"user.name": "bob", "host.name": "mail"}, {"user.name": "alice", "host.name": "dc01"}]),
    ("9", "source auth | sort +@timestamp | head 2 | table @timestamp",
     [{"@timestamp": "2024-05-01T10:00:00.000Z"}, {"@timestamp": "2024-05-01T10:05:00.000Z"}]),
    ("10", "source auth | top user.name",
     [{"user.name": "bob", "count": 3, "percent": 60.0}, {"user.name": "alice", "count": 2, "percent": 40.0}]),
    ("11", "source auth | search event.code=1 | aggs count", [{"count": 0}]),
    ("12-wildcard", 'source auth | search "*462*"', ids("e5", "e4", "e3", "e2", "e1")),
    ("12-token", "source auth | search mail", ids("e5", "e2", "e1")),
    ("13-not-equal", "source auth | search user.name!=alice", ids("e5", "e4", "e2")),
    ("13-not", "source auth | search NOT user.name=alice", ids("e5", "e4", "e2")),
    ("14", "source auth | search event.code=4624 | peval ok=1 | aggs sum(ok) as n", [{"n": 3}]),
    ("15-fields", "source auth | where user.name == host.name", ids()),
    ("15-isnull", "source auth | where isnull(user.name)", ids()),
    ("16", "source auth | timechart span=10m count by event.outcome", _example_16()),
]


@pytest.mark.parametrize(("query", "expected"), [case[1:] for case in EXAMPLES], ids=[case[0] for case in EXAMPLES])
async def test_worked_examples(es, server, query: str, expected: Any) -> None:
    await load_auth(es)
    rows, frame = _run(server, query)
    if isinstance(expected, tuple):
        assert [row["_id"] for row in rows] == list(expected)
    else:
        assert rows == expected
        assert frame["fields"] == list(expected[0])
    assert frame["total"] == len(rows) and not frame["is_partial"]


async def test_refusals_of_the_worked_examples(es, server) -> None:
    await load_auth(es)
    placement = _error(server, "source auth | eval ok=1 | aggs count")  # example 14
    assert (placement.status, placement.type) == (400, "parsing_exception")
    assert "[aggs] may only follow source, search, peval or inputlookup" in placement.reason


# spec/sml.md §6.1, §9: an unknown function or aggregate, or a wrong number of arguments, is a 400
# parsing_exception when the task is created (the query never runs), in every command
REFUSED_AT_CREATION = [
    ("source auth | eval x=nosuch(1)", "line 1:22: unknown function [nosuch]"),
    ("source auth | where nosuch(1)", "line 1:21: unknown function [nosuch]"),
    ("source auth | search host.name=mail | where len(1, 2) > 0", "line 1:45: function [len] expects 1 argument, got 2"),
    ("source auth | peval x=lenght(user.name)", "line 1:23: unknown function [lenght]"),
    ("source auth | stats nosuch(user.name)", "line 1:21: unknown aggregate function [nosuch]"),
    ("source auth | aggs count, average(event.code) by host.name", "line 1:27: unknown aggregate function [average]"),
    ("source auth | stats sum(lenght(user.name))", "line 1:25: unknown function [lenght]"),
    ("source auth | stats by host.name", "line 1:21: unknown aggregate function [by]"),
    ("source auth | sort host.name | eval x=if(1==1, 2)", "line 1:39: function [if] expects 3 arguments, got 2"),
    ("source auth | append [ source auth | eval x=nosuch(1) ]", "line 1:45: unknown function [nosuch]"),
    ("source auth | eval x=case(event.code > 1, 1, event.code > 2)",
     "line 1:22: function [case] expects pairs of a condition and a value"),
    ('source auth | where isnull(validate(event.code > 1, "low", true()))',
     "line 1:28: function [validate] expects pairs of a condition and a value"),
    ("source auth | eval x=mvfilter(user.name == host.name)",
     "line 1:22: function [mvfilter] expects a condition on one field, found [host.name, user.name]"),
]


@pytest.mark.parametrize(("query", "reason"), REFUSED_AT_CREATION)
async def test_bad_calls_are_refused_when_the_task_is_created(es, server, query: str, reason: str) -> None:
    await load_auth(es)
    sml = SmlRequest(query=query, time_field="@timestamp", start_ms=START, end_ms=END, now_ms=NOW)
    with pytest.raises(ServiceError) as caught:
        SmlJob.compile(sml, server.app[keys.CATALOG], QueryOptions())
    assert (caught.value.status, caught.value.type, caught.value.reason) == (400, "parsing_exception", reason)


async def test_a_raw_event_is_the_stored_document_with_index_and_id(es, server) -> None:
    await load_auth(es)
    rows, frame = _run(server, "source auth qsize=1")
    assert rows == [{**_doc(*AUTH[4][1:]), "_index": "auth", "_id": "e5"}]
    assert frame["fields"] == ["@timestamp", "host.name", "user.name", "event.code", "event.outcome", "_index", "_id"]


async def test_not_matches_an_event_without_the_field_and_not_equal_does_not(es, server) -> None:
    await load_auth(es)
    await bulk(es, "auth", [("e6", {"@timestamp": "2024-05-01T11:00:00Z", "host": {"name": "mail"}})])
    assert [r["_id"] for r in _run(server, "source auth | search user.name!=alice")[0]] == ["e5", "e4", "e2"]
    assert [r["_id"] for r in _run(server, "source auth | search NOT user.name=alice")[0]] == ["e6", "e5", "e4", "e2"]


async def test_source_reads_lists_and_patterns_newest_first_in_the_range(es, server) -> None:
    await load_auth(es)
    await bulk(es, "auth-old", [("o1", {"@timestamp": "2024-05-01T10:12:00Z", "n": 1}),
                                 ("o2", {"@timestamp": "2024-04-30T10:00:00Z", "n": 2})])
    rows, _ = _run(server, "source auth,auth-old qsize=3")
    assert [(r["_index"], r["_id"]) for r in rows] == [("auth", "e5"), ("auth", "e4"), ("auth-old", "o1")]
    rows, _ = _run(server, "source auth-* | table _id, n")
    assert rows == [{"_id": "o1", "n": 1}]  # o2 is before the range


async def test_source_errors_and_warnings(es, server) -> None:
    await load_auth(es)
    missing = _error(server, "source nope")
    assert (missing.status, missing.type) == (404, "index_not_found_exception")
    rows, frame = _run(server, "source nope-*")
    assert rows == [] and frame["warnings"] == ["source pattern [nope-*] matches no index"]


async def test_earliest_and_latest_set_the_sources_own_range(es, server) -> None:
    await load_auth(es)
    query = "source auth earliest=2024-05-01T10:05:00Z latest=2024-05-01T10:15:00Z | table _id"
    assert [r["_id"] for r in _run(server, query)[0]] == ["e4", "e3", "e2"]  # both bounds inclusive
    rows, _ = _run(server, "source auth earliest=now-2h | table _id")  # now: 12:00
    assert [r["_id"] for r in rows] == ["e5", "e4", "e3", "e2", "e1"]
    bad = _error(server, "source auth earliest=yesterday")
    assert bad.status == 400


@pytest.mark.parametrize(("condition", "expected"), [
    ("1", []), ('"true"', []), ("user.name", []), ("event.code", []), ("event.code + 1", []), ("nothing", []),
    ("ok", ["e4", "e3", "e1"]), ("NOT ok", ["e5", "e2"]), ("flag", ["e3", "e1"]),
])
async def test_where_keeps_a_row_only_when_its_condition_is_exactly_true(es, server, condition: str,
                                                                         expected: list[str]) -> None:
    # §6: a where keeps the rows where the expression is exactly true; a value of another type
    # is no failure (§9: runtime problems on values yield null), the row is just not kept
    await load_auth(es)
    query = ('source auth | eval ok=event.outcome=="success", flag=if(user.name=="alice", true(), "yes") '
             f"| where {condition} | table _id")
    rows, frame = _run(server, query)
    assert [r["_id"] for r in rows] == expected and frame["warnings"] == []


@pytest.mark.parametrize("pushdown", [True, False], ids=["pushdown", "python"])
@pytest.mark.parametrize(("query", "count"), [
    ("source auth | search @timestamp>=-2h@h | stats count", 5),  # now is 12:00: from 10:00
    ("source auth | search @timestamp>=-110m | stats count", 3),  # from 10:10
    ("source auth | search @timestamp<=2024-05-01T10 | stats count", 5),  # to 10:59:59.999
    ("source auth | search @timestamp<2024-05-01T10:05 | stats count", 1),
    ('source auth | where @timestamp < "-110m" | stats count', 2),
])
async def test_search_and_where_read_splunk_relative_times_and_dates_lacking_fields(
        es, server, pushdown: bool, query: str, count: int) -> None:
    await load_auth(es)
    rows, _ = _run(server, query, options=QueryOptions(pushdown=pushdown))
    assert rows == [{"count": count}]


async def test_where_and_search_read_fields_that_eval_wrote(es, server) -> None:
    await load_auth(es)
    rows, _ = _run(server, 'source auth | eval who=user.name + "@" + host.name | search who="bob@*" '
                           '| where event.code > 4624 | stats count by who')
    assert rows == [{"who": "bob@mail", "count": 2}]


async def test_stats_groups_multi_values_drops_null_keys_and_counts_empty_input(es, server) -> None:
    await bulk(es, "tags", [("t1", {"@timestamp": "2024-05-01T01:00:00Z", "tag": ["a", "b"], "n": 1}),
                             ("t2", {"@timestamp": "2024-05-01T02:00:00Z", "tag": "b", "n": 2}),
                             ("t3", {"@timestamp": "2024-05-01T03:00:00Z", "n": 4})])
    rows, _ = _run(server, "source tags | stats count, sum(n) by tag")
    assert rows == [{"tag": "a", "count": 1, "sum(n)": 1}, {"tag": "b", "count": 2, "sum(n)": 3}]
    rows, frame = _run(server, "source tags | search n>100 | stats count, max(n) as top")
    assert rows == [{"count": 0, "top": None}] and frame["fields"] == ["count", "top"]


@pytest.mark.parametrize("pushdown", [True, False], ids=["pushdown", "python"])
async def test_a_value_twice_in_a_multi_valued_by_field_puts_its_row_in_that_group_once(es, server, pushdown) -> None:
    # §7.5: one group per element; an element written twice is still one group for that row,
    # as the storage's terms aggregation (and Elasticsearch's block hash) counts it
    await bulk(es, "dups", [("d1", {"@timestamp": "2024-05-01T01:00:00Z", "tag": ["a", "b", "a"], "n": [1, 1, 2]}),
                             ("d2", {"@timestamp": "2024-05-01T02:00:00Z", "tag": "b", "n": 2})])
    options = {"options": QueryOptions(pushdown=pushdown)}
    rows, _ = _run(server, "source dups | stats count by tag", **options)
    assert rows == [{"tag": "a", "count": 1}, {"tag": "b", "count": 2}]
    rows, _ = _run(server, "source dups | stats count by tag, n", **options)
    assert rows == [{"tag": "a", "n": 1, "count": 1}, {"tag": "a", "n": 2, "count": 1},
                    {"tag": "b", "n": 1, "count": 1}, {"tag": "b", "n": 2, "count": 2}]


@pytest.mark.parametrize("query", [
    "source other | stats latest(n) as last, count", "source other | stats earliest(n) by n",
    "source other | eventstats latest(n) as last", "source other | streamstats earliest(n) as first",
])
async def test_earliest_and_latest_warn_when_no_row_has_their_default_time_field(es, server, query: str) -> None:
    # §3: the time-aware aggregates keep @timestamp even when the task's time field is another;
    # when no input row has it, a warning says so (their answer is null)
    await bulk(es, "other", [("o1", {"ts": "2024-05-01T10:00:00Z", "n": 1}),
                              ("o2", {"ts": "2024-05-01T11:00:00Z", "n": 2})])
    command = query.split("| ")[1].split()[0]
    _, frame = _run(server, query, time_field="ts")
    assert frame["warnings"] == [f"[{command}] no row has a value of [@timestamp], the time field of earliest() "
                                 "and latest(); name the events' time field as their second argument"]
    rows, frame = _run(server, query.replace("(n)", "(n, ts)"), time_field="ts")
    assert frame["warnings"] == []
    if command == "stats" and "count" in query:
        assert rows == [{"last": 2, "count": 2}]


@pytest.mark.parametrize("pushdown", [True, False], ids=["pushdown", "python"])
async def test_a_field_the_indices_map_to_different_types_keeps_each_events_value(es, server, pushdown) -> None:
    # §4: SML's values are dynamically typed (event.code=4624 and "4624" alike); a field that one
    # index maps as a number and another as a keyword (or a boolean, a date) is each event's own
    # value, not null for every event of both
    await bulk(es, "ca", [("a1", {"@timestamp": "2024-05-01T01:00:00Z", "code": 4624, "flag": True,
                                  "seen": "2024-05-01T00:30:00Z"})])
    await bulk(es, "cb", [("b1", {"@timestamp": "2024-05-01T02:00:00Z", "code": "x1", "flag": "no", "seen": "never"}),
                          ("b2", {"@timestamp": "2024-05-01T03:00:00Z", "code": "4624", "flag": "yes", "seen": "-"})])
    await es.indices.create(index="cc", mappings={"properties": {"code": {"type": "integer"}}})
    await bulk(es, "cc", [("c1", {"@timestamp": "2024-05-01T04:00:00Z", "code": 4625})])
    options = {"options": QueryOptions(pushdown=pushdown)}
    rows, _ = _run(server, "source ca,cb,cc | table _id, code, flag, seen", **options)
    assert rows == [{"_id": "c1", "code": 4625, "flag": None, "seen": None},
                    {"_id": "b2", "code": "4624", "flag": "yes", "seen": "-"},
                    {"_id": "b1", "code": "x1", "flag": "no", "seen": "never"},
                    {"_id": "a1", "code": 4624, "flag": True, "seen": "2024-05-01T00:30:00.000Z"}]
    rows, _ = _run(server, "source ca,cb,cc | stats count by code", **options)
    assert rows == [{"code": 4624, "count": 1}, {"code": "4624", "count": 1}, {"code": 4625, "count": 1},
                    {"code": "x1", "count": 1}]
    rows, _ = _run(server, "source ca,cb,cc | search code=4624 | table _id", **options)
    assert rows == [{"_id": "b2"}, {"_id": "a1"}]
    rows, _ = _run(server, 'source c* | where code > 4624 OR code == "x1" | table _id', **options)
    assert rows == [{"_id": "c1"}, {"_id": "b1"}]
    rows, _ = _run(server, "source c* | stats count(code) as n, dc(code) as d, max(code) as top", **options)
    assert rows == [{"n": 4, "d": 4, "top": 4625}]


async def test_fields_keeps_or_removes_paths_and_keeps_nesting(es, server) -> None:
    await load_auth(es)
    rows, frame = _run(server, "source auth qsize=1 | fields host.name, event.*")
    assert rows == [{"host": {"name": "mail"}, "event": {"code": 4625, "outcome": "failure"}}]
    assert frame["fields"] == ["host.name", "event.code", "event.outcome"]
    rows, frame = _run(server, "source auth qsize=1 | fields - user.name, event.code, _id")
    assert rows == [{"@timestamp": "2024-05-01T10:20:00.000Z", "host": {"name": "mail"},
                     "event": {"outcome": "failure"}, "_index": "auth"}]
    rows, _ = _run(server, "source auth | fields - user.name | search user.name=bob | table _id")
    assert rows == []  # a removed field is gone for the commands after it


async def test_eval_writes_literal_keys_that_fields_and_rename_follow(es, server) -> None:
    await load_auth(es)
    rows, frame = _run(server, 'source auth qsize=1 | eval host.name="x", n=event.code + 1 | fields host.*, n')
    assert rows == [{"host.name": "x", "n": 4626}]
    assert frame["fields"] == ["host.name", "n"]
    rows, _ = _run(server, "source auth qsize=1 | rename user.name as who, host as h | fields who, h*, _id")
    assert rows == [{"_id": "e5", "h": {"name": "mail"}, "who": "bob"}]


async def test_rename_by_pattern_renames_every_matching_field(es, server) -> None:
    # §7.10: `*` in both sides renames by pattern, each `*` of the new name standing for what
    # the old name's `*` matched
    await load_auth(es)
    rows, _ = _run(server, "source auth qsize=1 | rename host.* as h_* | table h_name, host.name")
    assert rows == [{"h_name": "mail", "host.name": None}]
    rows, _ = _run(server, "source auth qsize=1 | rename *.name as *_name | table host_name, user_name, event.code")
    assert rows == [{"host_name": "mail", "user_name": "bob", "event.code": 4625}]
    rows, frame = _run(server, "source auth | stats count by host.name, user.name | rename *.name as * "
                               "| where user==\"bob\"")
    assert rows == [{"host": "dc01", "user": "bob", "count": 1}, {"host": "mail", "user": "bob", "count": 2}]
    assert frame["fields"] == ["host", "user", "count"]
    rows, _ = _run(server, "source auth qsize=1 | rename nothing.* as n_* | table _id")
    assert rows == [{"_id": "e5"}]  # no field matches: nothing to rename
    refused = _error(server, "source auth | rename host.* as h")
    assert (refused.status, refused.reason) == (400, "line 1:22: [rename] pattern [h] must hold as many [*] "
                                                     "as [host.*]")


async def test_double_quoted_names_name_aggregates_renames_and_columns(es, server) -> None:
    # the SPL spelling of a field name with spaces or parentheses: "Event Count", "dc(user.name)"
    await load_auth(es)
    rows, frame = _run(server, 'source auth | stats count as "Event Count", dc(user.name) by host.name '
                               '| rename host.name as "Host", "dc(user.name)" as "Users" | table "Host", "Event Count", Users')
    assert rows == [{"Host": "dc01", "Event Count": 2, "Users": 2}, {"Host": "mail", "Event Count": 3, "Users": 2}]
    assert frame["fields"] == ["Host", "Event Count", "Users"]


async def test_table_patterns_missing_fields_and_keyword_names(es, server) -> None:
    await load_auth(es)
    rows, frame = _run(server, "source auth qsize=1 | table event.*, nothing, host.name.keyword, user.name.keyword")
    assert rows == [{"event.code": 4625, "event.outcome": "failure", "nothing": None, "host.name.keyword": "mail",
                     "user.name.keyword": "bob"}]
    assert frame["fields"] == ["event.code", "event.outcome", "nothing", "host.name.keyword", "user.name.keyword"]
    rows, _ = _run(server, "source auth qsize=1 | rename event.code as code | table code, event.code")
    assert rows == [{"code": 4625, "event.code": None}]


async def test_sort_orders_numbers_strings_booleans_then_nulls(es, server) -> None:
    await bulk(es, "mixed", [(f"m{i}", {"@timestamp": f"2024-05-01T0{i}:00:00Z"}) for i in range(7)])
    # one field with a number, a string or a boolean per event: eval writes them as they are
    mixed = ('eval w=case(_id=="m0", 3, _id=="m1", "b", _id=="m2", true(), _id=="m4", 10, _id=="m5", "a", '
             '_id=="m6", false())')
    rows, _ = _run(server, f"source mixed | {mixed} | sort w | table w")
    assert [r["w"] for r in rows] == [3, 10, "a", "b", False, True, None]
    rows, _ = _run(server, f"source mixed | {mixed} | sort -w | table w")
    assert [r["w"] for r in rows] == [True, False, "b", "a", 10, 3, None]
    rows, _ = _run(server, f"source mixed | {mixed} | sort 3 -w | table w")
    assert [r["w"] for r in rows] == [True, False, "b"]


async def test_numeric_looking_strings_sort_and_group_as_the_numbers_they_are(es, server) -> None:
    # §4: numeric-looking strings compare numerically (where "9" < "10"); sort (§7.8), the order
    # of stats groups (§7.5) and values() all follow that one order, as Splunk's sort does
    ports = ["443", "80", "8080", "22", "ssh", "22.0"]
    await bulk(es, "ports", [(f"p{i}", {"@timestamp": f"2024-05-01T0{i}:00:00Z", "port": port})
                             for i, port in enumerate(ports)])
    rows, _ = _run(server, "source ports | sort port | table port")
    assert [r["port"] for r in rows] == ["22", "22.0", "80", "443", "8080", "ssh"]
    rows, _ = _run(server, "source ports | sort -port | table port")
    assert [r["port"] for r in rows] == ["ssh", "8080", "443", "80", "22.0", "22"]
    rows, _ = _run(server, "source ports | stats count by port")
    assert [r["port"] for r in rows] == ["22", "22.0", "80", "443", "8080", "ssh"]
    rows, _ = _run(server, "source ports | stats values(port) as v")
    assert rows == [{"v": ["22", "22.0", "80", "443", "8080", "ssh"]}]


async def test_sort_keeps_the_first_n_given_as_a_number_or_as_limit(es, server) -> None:
    await load_auth(es)
    for count in ("2", "limit=2"):
        rows, _ = _run(server, f"source auth | sort {count} host.name, -@timestamp | table _id")
        assert [r["_id"] for r in rows] == ["e4", "e3"]
    rows, _ = _run(server, "source auth | sort limit=0 host.name | table _id")
    assert [r["_id"] for r in rows] == ["e4", "e3", "e5", "e2", "e1"]


async def test_sort_by_several_keys_is_stable(es, server) -> None:
    await load_auth(es)
    rows, _ = _run(server, "source auth | sort host.name, -@timestamp | table _id")
    assert [r["_id"] for r in rows] == ["e4", "e3", "e5", "e2", "e1"]
    rows, _ = _run(server, "source auth | sort user.name | table _id")
    assert [r["_id"] for r in rows] == ["e3", "e1", "e5", "e4", "e2"]  # ties keep the source's order


async def test_head_and_tail(es, server) -> None:
    await load_auth(es)
    assert [r["_id"] for r in _run(server, "source auth | head 2")[0]] == ["e5", "e4"]
    assert [r["_id"] for r in _run(server, "source auth | tail 2")[0]] == ["e2", "e1"]
    assert [r["_id"] for r in _run(server, "source auth | tail 2 | head 1")[0]] == ["e2"]


async def test_dedup_keep_keepempty_and_consecutive(es, server) -> None:
    await load_auth(es)
    await bulk(es, "auth", [("e6", {"@timestamp": "2024-05-01T11:00:00Z", "host": {"name": "mail"}})])
    dedup = "source auth | dedup {} | table _id"
    assert [r["_id"] for r in _run(server, dedup.format("2 user.name"))[0]] == ["e5", "e4", "e3", "e1"]
    assert [r["_id"] for r in _run(server, dedup.format("user.name keepempty=true"))[0]] == ["e6", "e5", "e3"]
    # host.name over e6..e1: mail mail dc01 dc01 mail mail
    assert [r["_id"] for r in _run(server, dedup.format("host.name consecutive=true"))[0]] == ["e6", "e4", "e2"]
    assert [r["_id"] for r in _run(server, dedup.format("host.name, user.name"))[0]] == ["e5", "e4", "e3", "e1"]


async def test_dedup_sortby_sorts_the_rows_it_keeps(es, server) -> None:
    # SPL's dedup ... sortby <sort keys> (§7.11 is silent): dedup, then sort as sort does
    await load_auth(es)
    rows, _ = _run(server, "source auth | dedup user.name sortby +@timestamp | table _id")
    assert [r["_id"] for r in rows] == ["e3", "e5"]
    rows, _ = _run(server, "source auth | dedup 2 host.name sortby host.name, -@timestamp | table _id")
    assert [r["_id"] for r in rows] == ["e4", "e3", "e5", "e2"]


async def test_the_row_limit_cuts_the_answer_and_says_so(es, server) -> None:
    await load_auth(es)
    rows, frame = _run(server, "source auth | table _id", max_rows=3)
    assert [r["_id"] for r in rows] == ["e5", "e4", "e3"]
    assert frame["is_partial"] and frame["total"] == 3 and frame["warnings"] == ["result truncated to 3 rows"]
    rows, frame = _run(server, "source auth | table _id", max_rows=5)
    assert len(rows) == 5 and not frame["is_partial"] and frame["warnings"] == []


async def test_stats_frame_has_sidebar_and_timeline_when_asked(es, server) -> None:
    await load_auth(es)
    _, frame = _run(server, "source auth | table @timestamp, host.name")
    assert "sidebar" not in frame and "timeline" not in frame
    _, frame = _run(server, "source auth | table @timestamp, host.name", calculate_stats=True)
    assert frame["sidebar"]["totalEvents"] == 5
    host = next(f for f in frame["sidebar"]["fields"] if f["field"] == "host.name")
    assert host["topValues"][0] == {"value": "mail", "count": 3, "percent": 60.0}
    buckets = {b["@timestamp"]: b["count"] for b in frame["timeline"]["fields"]}
    assert buckets["2024-05-01T10:00:00.000Z"] == 5 and sum(buckets.values()) == 5


async def test_a_task_through_the_background_tasks_api(es, server, http) -> None:
    await load_auth(es)
    body = {"query": "source auth | stats count by host.name", "dtFieldName": "@timestamp",
            "dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-01T23:59:59.999Z"}
    created = await http.post("/_sme/async_requests/request", json=body)
    assert created.status == 200, await created.text()
    task = (await created.json())["id"]
    for _ in range(200):
        status = await (await http.get(f"/_sme/async_requests/status/{task}")).json()
        if status["status"] not in ("PENDING", "RUNNING"):
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "COMPLETED", status
    response = await (await http.get(f"/_sme/async_requests/response/{task}")).json()
    assert response["events"] == [{"host.name": "dc01", "count": 2}, {"host.name": "mail", "count": 3}]
    assert (response["total"], response["fields"], response["partial"]) == (2, ["host.name", "count"], False)


async def test_execution_cost_counts_each_commands_rows(es, server) -> None:
    await load_auth(es)
    query = 'source auth | search event.code=4624 | where user.name=="bob" | sort -@timestamp | stats count by host.name'
    _, frame = _run(server, query)
    assert "executionCost" not in frame
    _, frame = _run(server, query, execution_cost="INFO")
    cost = frame["executionCost"]
    assert cost["level"] == "INFO" and cost["rowsOut"] == 1 and "pipeline" not in cost
    # the search right after the source is part of its query (sml.md §7.1), fused into it (§6)
    assert [(c["command"], c["rowsIn"], c["rowsOut"], c.get("fusedInto")) for c in cost["commands"]] == [
        ("source", 0, 3, None), ("search", 3, 3, 0), ("where", 3, 1, None), ("sort", 1, 1, None),
        ("stats", 1, 1, None)]
    assert cost["commands"][2]["text"] == 'where user.name=="bob"'
    assert all(c["ms"] >= 0 and "details" not in c for c in cost["commands"])
    _, frame = _run(server, query, execution_cost="DEBUG")
    commands = frame["executionCost"]["commands"]
    details = commands[0]["details"]
    assert details.pop("storageQuery").startswith("SqliteQueryOperator[ordered scan where (CASE WHEN ")
    assert details == {"indices": ["auth"], "rowsScanned": 5, "pushedDown": ["search event.code=4624"]}
    assert commands[4]["details"] == {"groups": 1} and frame["executionCost"]["pipeline"].startswith("source auth | ")


async def test_qsize_counts_what_a_search_after_peval_lets_through(es, server) -> None:
    await load_auth(es)
    rows, _ = _run(server, "source auth qsize=2 | peval double=event.code * 2 | search double=9250 | table _id, double")
    assert rows == [{"_id": "e5", "double": 9250}, {"_id": "e2", "double": 9250}]
    rows, _ = _run(server, 'source auth | where user.name.keyword == "alice" | stats count by host.name.keyword')
    assert rows == [{"host.name.keyword": "dc01", "count": 1}, {"host.name.keyword": "mail", "count": 1}]


async def test_dates_are_iso_in_the_answer_and_epoch_ms_in_expressions(es, server) -> None:
    await es.indices.create(index="epoch", mappings={"properties": {"@timestamp": {"type": "date"},
                                                                     "seen": {"type": "date"}}})
    ms = START + 3_600_000
    await bulk(es, "epoch", [("x1", {"@timestamp": ms, "seen": ms})])
    rows, _ = _run(server, "source epoch")
    assert rows[0]["@timestamp"] == "2024-05-01T01:00:00.000Z" and rows[0]["seen"] == "2024-05-01T01:00:00.000Z"
    rows, _ = _run(server, "source epoch | eval later=@timestamp + 1000, hour=(@timestamp - seen) / 1000 "
                           "| table later, hour")
    assert rows == [{"later": ms + 1000, "hour": 0}]


# spec/sml.md §6.1, end to end (Splunk's documented meaning where the spec is silent): an
# expression evaluated on the newest event of §10 (e5: 10:20, bob, 4625) -> its value, exactly
EVAL_FUNCTIONS = [
    # mathematical: log in bases 10 and 2 exactly where the power is exact
    ("log(1000)", 3.0), ("log(0.001)", -3.0), ("log(1024, 2)", 10.0), ("log(100, 10)", 2.0),
    # printf: the ' flag groups thousands with commas (SPL's printf, as glibc's)
    ("""printf("%'d", 1234567)""", "1,234,567"), ("""printf("%'d events", -1234)""", "-1,234 events"),
    ("""printf("%'.2f", 1234567.891)""", "1,234,567.89"), ("""printf("[%'10d]", 12345)""", "[    12,345]"),
    ("""printf("[%-'8d]", 1234)""", "[1,234   ]"), ("""printf("%'d", 999)""", "999"),
    # printf: C's alternate octal form, length modifiers (read, no effect), * widths and precisions
    ('printf("%#o|%#x|%o", 8, 255, 8)', "010|0xff|10"),
    ('printf("%ld|%lld|%hd|%lu|%lf", 42, 42, 42, 42, 1.5)', "42|42|42|42|1.500000"),
    ('printf("[%*d]", 5, 42)', "[   42]"), ('printf("[%-*d]", 4, 7)', "[7   ]"), ('printf("%.*f", 2, 3.14159)', "3.14"),
    ('printf("[%*.*f]", 7, 1, 2.25)', "[    2.2]"), ('printf("%*d", "x", 1)', None),
    # printf: SPL's examples, %c of a string is its first character, %a/%A a double in hexadecimal
    ('printf("%c,%c", 65, "Foo")', "A,F"), ('printf("%.3A", pi())', "0X1.922P+1"),
    ('printf("%a|%a|%a", 1, 0.5, -2.5)', "0x1p+0|0x1p-1|-0x1.4p+1"),
    ('printf("%a|%.2a", 0, 1)', "0x0p+0|0x1.00p+0"), ('printf("[%10.1a]", 3)', "[  0x1.8p+1]"),
    # conversion: tostring durations of negative seconds, tonumber of SPL's decimals, ASCII digits only
    ('tostring(-5, "duration")', "-00:00:05"), ('tostring(-90061, "duration")', "-1+01:01:01"),
    ('tostring(59.9, "duration")', "00:00:59"),
    ('tonumber(".5")', 0.5), ('tonumber("-.5e1")', -5.0), ('tonumber("5.")', 5.0), ('tonumber(" +7 ")', 7),
    ('tonumber("1_000")', None), ('tonumber(".")', None), ('tonumber("inf")', None),
    ('tonumber("\u0664\u0666\u0662\u0665")', None), ('tonumber("\u0664\u0666\u0662\u0665" + "") + 1', None),
    # conditional: SPL's null()
    ("null()", None), ("isnull(null())", True), ('coalesce(null(), "b")', "b"),
    # time: SPL's %Q (subseconds, %3Q ms by default) beside %N; strptime reads %F, %T and %s too
    ('strftime(@timestamp + 123, "%H:%M:%S.%Q")', "10:20:00.123"), ('strftime(@timestamp + 123, "%6Q")', "123000"),
    ('strptime("2024-05-01 10:20:00.250", "%Y-%m-%d %H:%M:%S.%3Q")', "2024-05-01T10:20:00.250Z"),
    ('strptime("2024-05-01", "%F")', "2024-05-01T00:00:00.000Z"),
    ('strptime("10:20:00 2024-05-01", "%T %F")', "2024-05-01T10:20:00.000Z"),
    ('strptime("1714558800", "%s")', "2024-05-01T10:20:00.000Z"), ('strptime("17145x", "%s")', None),
    ('strptime("-86400", "%s")', "1969-12-31T00:00:00.000Z"), ('strptime("99999999999999999999", "%s")', None),
    ('strptime("\u0661\u0662", "%s")', None),
    # time: SPL's relative_time(t, modifier), the modifier read as source's earliest reads one from t
    ('relative_time(@timestamp, "-1d@d")', "2024-04-30T00:00:00.000Z"),
    ('relative_time(now(), "@h")', "2024-05-01T12:00:00.000Z"),
    ('relative_time(now(), "-30m")', "2024-05-01T11:30:00.000Z"),
    ('relative_time(@timestamp, "+1d@d+8h")', "2024-05-02T08:00:00.000Z"),
    ('relative_time(@timestamp, "now")', "2024-05-01T10:20:00.000Z"), ('relative_time(now(), "yesterday")', None),
    ('relative_time("x", "-1h")', None),
    # multivalue: SPL's mvsort, mvfind, mvzip, mvrange, past the spec's cut-off list
    ('mvsort(split("b,10,a,9", ","))', ["10", "9", "a", "b"]), ('mvsort(mvappend(10, 9, 100))', [10, 100, 9]),
    ('mvsort("x")', "x"), ('mvsort(nothing)', None),
    ('mvfind(split("ok,err42,err7", ","), "err\\d+")', 1), ('mvfind(split("a,b", ","), "z")', None),
    ('mvfind("abc", "b")', 0),
    ('mvzip(split("h1,h2,h3", ","), split("80,443", ","))', ["h1,80", "h2,443"]),
    ('mvzip(split("a,b", ","), split("1,2", ","), "=")', ["a=1", "b=2"]), ('mvzip("a", nothing)', None),
    ("mvrange(1, 11, 2)", [1, 3, 5, 7, 9]), ("mvrange(3, 0, -1)", [3, 2, 1]), ("mvrange(1, 4)", [1, 2, 3]),
    ("mvrange(0, 1, 0.25)", [0, 0.25, 0.5, 0.75]), ("mvrange(1, 2)", 1), ("mvrange(1, 1)", None),
    ("mvrange(1, 5, 0)", None), ('mvrange(0, "1e400")', None), ('mvrange("-1e400", "-1e400")', None),
]


async def test_mvfilter_keeps_the_values_of_its_field_for_which_the_condition_holds(es, server) -> None:
    # SPL's mvfilter(<condition on one field>): the condition evaluated with the field standing
    # for each of its values in turn
    await bulk(es, "mail", [("m1", {"@timestamp": "2024-05-01T10:00:00Z", "to": ["a@x.net", "b@y.com", "c@z.net"],
                                    "n": [1, 5, 10], "one": "q@x.net"})])
    rows, _ = _run(server, 'source mail | eval net=mvfilter(match(to, "\\.net$")), big=mvfilter(n > 3), '
                           'none=mvfilter(n > 99), single=mvfilter(like(one, "%.net")), gone=mvfilter(nothing > 1), '
                           'self=mvfilter(isnotnull(to)) | table net, big, none, single, gone, self')
    assert rows == [{"net": ["a@x.net", "c@z.net"], "big": [5, 10], "none": None, "single": "q@x.net", "gone": None,
                     "self": ["a@x.net", "b@y.com", "c@z.net"]}]


@pytest.mark.parametrize(("expression", "expected"), EVAL_FUNCTIONS, ids=[case[0] for case in EVAL_FUNCTIONS])
async def test_eval_functions_over_an_event(es, server, expression: str, expected: Any) -> None:
    await load_auth(es)
    rows, frame = _run(server, f"source auth qsize=1 | eval x={expression} | table x")
    assert rows == [{"x": expected}] and type(rows[0]["x"]) is type(expected)
    assert frame["warnings"] == []


@pytest.mark.parametrize("pushdown", [True, False], ids=["pushdown", "python"])
@pytest.mark.parametrize("query", [
    "source auth | search code=4625 | table _id", "source auth | search code>4000 | table _id",
    "source auth | where code == 4625 | table _id", "source auth | where code == 4625.0 | table _id",
    "source auth | eval n=code * 1 | where isnotnull(n) | table _id",
])
async def test_a_numeric_looking_string_is_written_in_ascii_digits(es, server, pushdown: bool, query: str) -> None:
    # §2's number syntax: "4625" is the number 4625, Arabic-Indic digits are text (as in SPL and
    # OpenSearch), however Python's int() would read them
    await bulk(es, "auth", [("a1", {"@timestamp": "2024-05-01T10:00:00Z", "code": "4625"}),
                            ("a2", {"@timestamp": "2024-05-01T10:01:00Z", "code": "\u0664\u0666\u0662\u0665"})])
    rows, _ = _run(server, query, options=QueryOptions(pushdown=pushdown))
    assert rows == [{"_id": "a1"}]


async def test_strptime_of_a_string_the_mapping_read_as_a_date_is_that_instant(es, server) -> None:
    # a string such as "2024-05-01 09:30:00" is mapped as a date, so an expression reads it as
    # epoch ms (§4); strptime with the format it was written in gives that instant, not null
    await es.indices.create(index="nanos", mappings={"properties": {"@timestamp": {"type": "date"},
                                                                     "seen": {"type": "date_nanos"}}})
    await bulk(es, "logs", [("l1", {"@timestamp": "2024-05-01T10:00:00Z", "created": "2024-05-01 09:30:00",
                                    "day": "01/05/2024"})])
    await bulk(es, "nanos", [("n1", {"@timestamp": "2024-05-01T10:00:00Z", "seen": "2024-05-01T09:45:00.123456789Z"})])
    rows, _ = _run(server, 'source logs | eval t=strptime(created, "%Y-%m-%d %H:%M:%S"), d=strptime(day, "%d/%m/%Y"), '
                           'age=@timestamp - t | table t, d, age')
    assert rows == [{"t": "2024-05-01T09:30:00.000Z", "d": "2024-05-01T00:00:00.000Z", "age": 1_800_000}]
    rows, _ = _run(server, 'source nanos | eval t=strptime(seen, "%Y-%m-%dT%H:%M:%S.%9NZ"), n=strptime(seen, null()) '
                           '| table t, n')
    assert rows == [{"t": "2024-05-01T09:45:00.123Z", "n": None}]


async def test_a_date_chosen_by_a_conditional_function_is_still_a_date(es, server) -> None:
    # §4: dates are ISO-8601 in the answer; if/case/coalesce/nullif whose every non-null
    # branch is a date give a date, as if(c, now(), @timestamp) already did
    await load_auth(es)
    rows, _ = _run(server, 'source auth qsize=1 | eval a=coalesce(nothing, @timestamp), '
                           'b=if(true(), @timestamp, null), c=case(false(), null, true(), @timestamp), '
                           'd=nullif(@timestamp, 0), e=if(true(), @timestamp, 0) | table a, b, c, d, e')
    at = "2024-05-01T10:20:00.000Z"
    assert rows == [{"a": at, "b": at, "c": at, "d": at, "e": parse_iso_nanos(at) // 1_000_000}]
