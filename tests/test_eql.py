"""EQL end to end through the official client, on data of its own (the reference suite in
tests/conformance needs ../shared): the shared engine's scans, EQL's steps and verifier, on
both paths (scans narrowed inside SQLite by the stages' filters, and not)."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import ApiError, AsyncElasticsearch

from conftest import BOTH_PATHS

MAPPING = {"properties": {
    "@timestamp": {"type": "date"}, "event": {"properties": {"category": {"type": "keyword"}}},
    "host": {"type": "keyword"}, "user": {"type": "keyword"}, "pid": {"type": "long"}, "seq": {"type": "long"},
    "tags": {"type": "keyword"}, "path": {"type": "keyword"}, "nanos": {"type": "date_nanos"},
}}
# (category, host, user, pid, tags): one event a second
EVENTS = [
    ("process", "h1", "root", 1, ["a"]), ("file", "h1", "root", 1, ["a", "b"]), ("process", "h2", "bob", 2, []),
    ("network", "h1", "root", 1, None), ("file", "h2", "bob", 2, ["b"]), ("process", "h1", "eve", 3, ["c"]),
    ("file", "h1", "eve", 3, ["c", "a"]), ("network", "h2", "bob", 2, None),
]


@pytest.fixture
async def events(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await es.indices.create(index="ev", mappings=MAPPING)
    ops: list[dict[str, Any]] = []
    for i, (category, host, user, pid, tags) in enumerate(EVENTS):
        doc: dict[str, Any] = {"@timestamp": 1000 * i,
                               "event": {"category": category}, "host": host, "user": user, "pid": pid,
                               "seq": 100 - i, "path": f"C:\\Windows\\f{i}.exe"}
        if tags is not None:
            doc["tags"] = tags
        ops += [{"index": {"_index": "ev", "_id": f"e{i}"}}, doc]
    await es.bulk(operations=ops, refresh=True)
    return es


async def _ids(es: AsyncElasticsearch, query: str, **body: Any) -> list[Any]:
    resp = await es.eql.search(index="ev", query=query, tiebreaker_field="seq", **body)
    hits = resp["hits"]
    if "events" in hits:
        return [e["_id"] for e in hits["events"]]
    return [[e.get("_id") or None for e in s["events"]] + s.get("join_keys", []) for s in hits["sequences"]]


@BOTH_PATHS
async def test_event_queries_order_select_and_match_multi_values(events: AsyncElasticsearch) -> None:
    assert await _ids(events, "file where true") == ["e1", "e4", "e6"]
    # any value of a multi-valued field satisfies a predicate; != is true when none equals
    assert await _ids(events, 'any where tags == "a"') == ["e0", "e1", "e6"]
    assert await _ids(events, 'file where tags != "a"') == ["e4"]
    assert await _ids(events, 'any where user : "EV*"') == ["e5", "e6"]
    assert await _ids(events, 'any where path like "C:\\\\Windows\\\\f?.exe" and pid in (2, 3)') == \
        ["e2", "e4", "e5", "e6", "e7"]
    # the default position is the tail: the last events, listed in ascending order
    assert await _ids(events, "any where true", size=3) == ["e5", "e6", "e7"]
    assert await _ids(events, "any where true", size=3, result_position="head") == ["e0", "e1", "e2"]
    assert await _ids(events, "any where true | head 5 | tail 2") == ["e3", "e4"]
    assert await _ids(events, "any where true", size=0) == []


@BOTH_PATHS
async def test_sequences_with_keys_maxspan_until_and_missing_events(events: AsyncElasticsearch) -> None:
    assert await _ids(events, "sequence by host [process where true] [file where true]") == \
        [["e0", "e1", "h1"], ["e2", "e4", "h2"], ["e5", "e6", "h1"]]
    assert await _ids(events, "sequence by host with maxspan=1s [process where true] [file where true]") == \
        [["e0", "e1", "h1"], ["e5", "e6", "h1"]]
    assert await _ids(events, "sequence by host [process where true] [file where true] "
                              "until [network where true]") == [["e0", "e1", "h1"], ["e2", "e4", "h2"], ["e5", "e6", "h1"]]
    assert await _ids(events, "sequence by host [process where true] [network where true] "
                              "until [file where true]") == []
    # a missing event: no matching event between its neighbours (e3 lies between e0 and e5)
    root_then = 'sequence by host with maxspan=10s [process where user == "root"] ![%s] [process where true]'
    assert await _ids(events, root_then % "network where true") == []
    assert await _ids(events, root_then % 'file where user == "bob"') == [["e0", None, "e5", "h1"]]
    # keys joined by position: a process's pid with a later event's pid
    assert await _ids(events, "sequence [process where true] by pid [file where true] by pid "
                              "| tail 1") == [["e5", "e6", 3]]


async def test_samples(events: AsyncElasticsearch) -> None:
    assert await _ids(events, "sample by host [process where true] [network where true]") == \
        [["e0", "e3", "h1"], ["e2", "e7", "h2"]]


async def test_fields_are_returned_when_asked(events: AsyncElasticsearch) -> None:
    resp = await events.eql.search(index="ev", query='process where user == "bob"', fields=["pid", "host*", "@timestamp"])
    (hit,) = resp["hits"]["events"]
    assert hit["fields"] == {"pid": [2], "host": ["h2"], "@timestamp": ["1970-01-01T00:00:02.000Z"]}
    assert hit["_source"]["user"] == "bob"


async def test_field_to_field_comparisons_are_refused_as_elasticsearch_refuses_them(
        events: AsyncElasticsearch) -> None:
    with pytest.raises(ApiError) as raised:
        await events.eql.search(index="ev", query="process where pid == 1 or (pid == seq)")
    assert raised.value.status_code == 500
    assert raised.value.body["error"]["root_cause"][0] == {
        "type": "ql_illegal_argument_exception",
        "reason": "Line 1:35: Comparisons against fields are not (currently) supported; offender [seq] in [==]"}
    with pytest.raises(ApiError) as raised:
        await events.eql.search(index="ev", query='process where user in (host, "x")')
    assert raised.value.status_code == 400
    assert raised.value.body["error"]["reason"] == (
        "Found 1 problem\nline 1:15: Comparisons against fields are not (currently) supported; offender [host] "
        'in [user in (host, "x")]')


async def test_date_nanos_from_epoch_millis_with_a_fraction_keep_every_digit(events: AsyncElasticsearch) -> None:
    await events.index(index="ev", id="n", document={"@timestamp": 9000, "event": {"category": "x"},
                                                     "nanos": "131509374294.365140"}, refresh=True)
    assert await _ids(events, 'x where nanos == "1974-03-03T02:22:54.294365140Z"') == ["n"]
