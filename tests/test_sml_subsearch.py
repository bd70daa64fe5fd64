"""SML's generating commands and subsearches (spec/sml.md §7.12, §7.16, §7.17, §3), end to
end: tasks created, run and read through ``/_sme/async_requests/...`` over real HTTP on a
real server, its documents loaded with the official client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service.query.control import Control

from test_sme_api import BASE, RANGE
from test_sme_api import slower, timed  # noqa: F401  (fixtures)
from test_sml_engine import AUTH, bulk, load_auth

USERS = [  # a lookup index: (id, user, dept, title)
    ("u1", "Alice", "sales", "lead"),
    ("u2", "bob", "it", None),
    ("u3", "bob", "dup", "second"),  # a second match: the first one in lookup order wins
]


@pytest.fixture
async def auth(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await load_auth(es)
    users = [(i, {"user": u, "dept": d, **({"title": t} if t else {})}) for i, u, d, t in USERS]
    await bulk(es, "users", users)
    return es


async def _request(http, body: dict[str, Any], status: int = 200) -> dict[str, Any]:
    resp = await http.post(f"{BASE}/request", json={**RANGE, **body})
    assert resp.status == status, await resp.text()
    return await resp.json()


async def _result(http, query: str, **extra: Any) -> dict[str, Any]:
    """The response of a task running ``query`` to its end."""
    task = await _request(http, {"query": query, **extra})
    for _ in range(600):
        resp = await http.get(f"{BASE}/status/{task['id']}")
        status = await resp.json()
        if status["status"] in ("COMPLETED", "STOPPED", "FAILED"):
            break
        await asyncio.sleep(0.05)
    assert status["status"] == "COMPLETED", (status["status"], status["error"])
    resp = await http.get(f"{BASE}/response/{task['id']}")
    assert resp.status == 200
    return await resp.json()


async def _events(http, query: str, **extra: Any) -> list[dict[str, Any]]:
    return (await _result(http, query, **extra))["events"]


async def _refused(http, query: str) -> str:
    body = await _request(http, {"query": query}, status=400)
    assert body["error"]["type"] == "parsing_exception", body
    return body["error"]["reason"]


# --- makeresults ---------------------------------------------------------------------------

async def test_makeresults_gives_rows_of_the_time_field_at_now(http) -> None:
    assert await _events(http, "makeresults", dtStart="2024-05-01T00:00:00Z", dtEnd="now") != []
    rows = await _events(http, "makeresults count=3 | eval n=1 | table n")
    assert rows == [{"n": 1}] * 3
    result = await _result(http, 'makeresults count=2 | eval x="a" + "b"')
    assert [sorted(row) for row in result["events"]] == [["@timestamp", "x"]] * 2
    assert result["events"][0]["x"] == "ab" and result["fields"] == ["@timestamp", "x"]


async def test_a_long_makeresults_stops_on_break_with_exact_partial_counts(http, monkeypatch) -> None:
    monkeypatch.setattr(Control, "pause_s", 0.05)  # a pause per slice of at most 1000 rows
    task = await _request(http, {"query": "makeresults count=10000000 | stats count"})
    for _ in range(600):
        status = await (await http.get(f"{BASE}/status/{task['id']}")).json()
        if status["progress"] > 0:
            break
        await asyncio.sleep(0.05)
    assert 0 < status["progress"] < 1, status
    assert (await http.post(f"{BASE}/break/{task['id']}")).status == 200
    for _ in range(600):
        result = await (await http.get(f"{BASE}/response/{task['id']}")).json()
        status = await (await http.get(f"{BASE}/status/{task['id']}")).json()
        if status["status"] == "STOPPED":
            break
        await asyncio.sleep(0.05)
    result = await (await http.get(f"{BASE}/response/{task['id']}")).json()
    assert status["status"] == "STOPPED" and result["partial"] is True
    (row,) = result["events"]
    assert 0 < row["count"] < 10_000_000 and row["count"] % 1000 == 0  # whole slices, each counted once


async def test_makeresults_time_is_the_task_instant(http) -> None:
    row, = await _events(http, "makeresults")
    created = row["@timestamp"]
    assert created.endswith("Z") and created[:4] >= "2024"
    rows = await _events(http, "makeresults count=2 | stats dc(@timestamp) as instants, count")
    assert rows == [{"instants": 1, "count": 2}]


# --- join ------------------------------------------------------------------------------------

async def test_join_inner_merges_the_first_match_in_main_row_order(auth, http) -> None:
    await bulk(auth, "hosts", [("h1", {"@timestamp": "2024-05-01T09:00:00Z", "host": {"name": "mail"},
                                        "site": "paris", "owner": "ops"}),
                                ("h2", {"@timestamp": "2024-05-01T08:00:00Z", "host": {"name": "mail"},
                                        "site": "lyon"})])
    rows = await _events(http, "source auth | join host.name [ source hosts | table host.name, site ] "
                               "| table _id, host.name, site")
    # the subsearch emits newest first: paris before lyon; dc01 has no match and goes
    assert rows == [{"_id": "e5", "host.name": "mail", "site": "paris"},
                    {"_id": "e2", "host.name": "mail", "site": "paris"},
                    {"_id": "e1", "host.name": "mail", "site": "paris"}]


async def test_join_left_keeps_unmatched_rows_unchanged_and_max_takes_more(auth, http) -> None:
    await bulk(auth, "hosts", [("h1", {"@timestamp": "2024-05-01T09:00:00Z", "host": {"name": "mail"},
                                        "site": "paris"}),
                                ("h2", {"@timestamp": "2024-05-01T08:00:00Z", "host": {"name": "mail"},
                                        "site": "lyon"})])
    events = await _events(http, "source auth | join type=left host.name [ source hosts | table host.name, site ]")
    assert [(e["_id"], e.get("site")) for e in events] == \
        [("e5", "paris"), ("e4", None), ("e3", None), ("e2", "paris"), ("e1", "paris")]
    stored = {i: {"@timestamp": t, "host": {"name": h}, "user": {"name": u}, "event": {"code": c, "outcome": o},
                  "_index": "auth", "_id": i} for i, t, h, u, c, o in AUTH}
    assert events[1] == stored["e4"]  # unmatched: the event exactly as stored
    assert events[0] == {**stored["e5"], "site": "paris"}
    # SPL's join takes type=outer as another name of left (§7.12 is silent)
    assert await _events(http, "source auth | join type=OUTER host.name [ source hosts | table host.name, site ]") \
        == events
    events = await _events(http, "source auth | join type=left host.name [ source hosts | table host.name, site ] "
                                 "| rename site as place")
    assert events[1] == stored["e4"] and events[0] == {**stored["e5"], "place": "paris"}
    rows = await _events(http, "source auth | search host.name=mail | join max=0 host.name "
                               "[ source hosts | table host.name, site ] | table _id, site")
    assert rows == [{"_id": i, "site": s} for i in ("e5", "e2", "e1") for s in ("paris", "lyon")]


async def test_join_compares_strings_case_sensitively_on_every_field(auth, http) -> None:
    await bulk(auth, "codes", [("c1", {"@timestamp": "2024-05-01T09:00:00Z", "code": "4624", "who": "alice",
                                        "label": "logon"}),
                                ("c2", {"@timestamp": "2024-05-01T09:01:00Z", "code": "4625", "who": "BOB",
                                        "label": "failed"})])
    rows = await _events(http, "source auth | rename event.code as code, user.name as who "
                               "| join code, who [ source codes | table code, who, label ] | table _id, label")
    assert rows == [{"_id": "e3", "label": "logon"}, {"_id": "e1", "label": "logon"}]  # BOB is not bob


async def test_join_subsearch_values_overwrite_and_later_commands_see_them(auth, http) -> None:
    rows = await _events(http, "source auth | join user.name [ source auth | stats count as n, "
                               "latest(host.name) as host.name by user.name ] | where n > 2 | table _id, host.name, n")
    # bob's latest host (e5's) overwrites every bob event's host.name
    assert rows == [{"_id": "e5", "host.name": "mail", "n": 3}, {"_id": "e4", "host.name": "mail", "n": 3},
                    {"_id": "e2", "host.name": "mail", "n": 3}]


async def test_join_on_flat_rows_and_a_null_key_never_matches(auth, http) -> None:
    rows = await _events(http, "source auth | stats count by user.name | join type=left user.name "
                               "[ inputlookup users | rename user as user.name ]")
    assert rows == [{"user.name": "alice", "count": 2, "dept": None, "title": None},
                    {"user.name": "bob", "count": 3, "dept": "it", "title": None}]
    rows = await _events(http, "source auth | eval k=null | join k [ makeresults | eval k=null ]")
    assert rows == []


async def test_a_subsearch_has_the_task_range_unless_its_source_sets_one(auth, http) -> None:
    await bulk(auth, "hosts", [("old", {"@timestamp": "2024-04-20T00:00:00Z", "host": {"name": "dc01"},
                                         "site": "old-site"})])
    assert await _events(http, "source auth | join host.name [ source hosts ]") == []
    rows = await _events(http, "source auth | join host.name [ source hosts earliest=2024-04-01T00:00:00Z "
                               "| table host.name, site ] | table _id, site")
    assert rows == [{"_id": "e4", "site": "old-site"}, {"_id": "e3", "site": "old-site"}]
    # the main source's own range is not the subsearch's
    rows = await _events(http, "source hosts earliest=2024-04-01T00:00:00Z | join host.name "
                               "[ source auth | stats count by host.name ] | table site, count")
    assert rows == [{"site": "old-site", "count": 2}]


async def test_subsearch_rows_are_capped_with_a_warning(auth, http) -> None:
    resp = await http.put("/_cluster/settings", json={"persistent": {"sme.core.max_subsearch_hits": 2}})
    assert resp.status == 200, await resp.text()
    result = await _result(http, "source auth | join type=left _id [ source auth | eval mark=1 | table _id, mark ] "
                                 "| table _id, mark")
    assert result["events"] == [{"_id": i, "mark": 1 if i in ("e5", "e4") else None}
                                for i in ("e5", "e4", "e3", "e2", "e1")]
    assert result["warnings"] == ["subsearch of [join] truncated to 2 rows (max_subsearch_hits)"]
    result = await _result(http, "source auth | append [ source auth ]")
    assert result["total"] == 7 and "subsearch of [append] truncated to 2 rows (max_subsearch_hits)" \
        in result["warnings"]


# --- append ----------------------------------------------------------------------------------

async def test_append_puts_the_subsearch_rows_after_the_current_ones(auth, http) -> None:
    await bulk(auth, "hosts", [("h1", {"@timestamp": "2024-05-01T09:00:00Z", "host": {"name": "mail"},
                                        "site": "paris"})])
    events = await _events(http, "source auth qsize=2 | append [ source hosts ]")
    assert [(e["_index"], e["_id"]) for e in events] == [("auth", "e5"), ("auth", "e4"), ("hosts", "h1")]
    assert events[2] == {"@timestamp": "2024-05-01T09:00:00Z", "host": {"name": "mail"}, "site": "paris",
                         "_index": "hosts", "_id": "h1"}
    rows = await _events(http, "source auth | stats count by host.name | append [ source auth | stats count ]")
    assert rows == [{"host.name": "dc01", "count": 2}, {"host.name": "mail", "count": 3},
                    {"host.name": None, "count": 5}]
    events = await _events(http, "source auth qsize=1 | append [ makeresults count=2 | eval note=\"x\" ] "
                                 "| search note=x OR _id=*")
    assert [sorted(e) for e in events[1:]] == [["@timestamp", "note"]] * 2 and events[0]["_id"] == "e5"
    assert "note" not in events[0]


async def test_append_and_join_nest_and_run_their_own_placement_rule(auth, http) -> None:
    rows = await _events(http, "makeresults | eval n=1 | append [ makeresults | eval n=2 "
                               "| append [ makeresults | eval n=3 ] ] | table n")
    assert rows == [{"n": 1}, {"n": 2}, {"n": 3}]
    rows = await _events(http, "source auth | search event.code=4625 | peval x=1 | aggs count by host.name "
                               "| append [ source auth | search event.code=4624 | aggs count by host.name ]")
    assert rows == [{"host.name": "mail", "count": 2}, {"host.name": "dc01", "count": 2},
                    {"host.name": "mail", "count": 1}]
    reason = await _refused(http, "source auth | append [ source auth | eval y=1 | aggs count ]")
    assert reason == "line 1:49: [aggs] may only follow source, search, peval or inputlookup"


# --- inputlookup, lookup ---------------------------------------------------------------------

async def test_inputlookup_emits_every_row_of_the_lookup_index_without_a_range(auth, http) -> None:
    rows = await _events(http, "inputlookup users")
    assert rows == [{"dept": "sales", "title": "lead", "user": "Alice"}, {"dept": "it", "title": None, "user": "bob"},
                    {"dept": "dup", "title": "second", "user": "bob"}]
    rows = await _events(http, "inputlookup users | search user=bob | peval d=dept | aggs count by d")
    assert rows == [{"d": "dup", "count": 1}, {"d": "it", "count": 1}]


async def test_lookup_by_index_matches_case_insensitively_first_row_wins(auth, http) -> None:
    rows = await _events(http, "source auth | lookup users user AS user.name | table _id, user.name, dept, title")
    assert rows == [{"_id": "e5", "user.name": "bob", "dept": "it", "title": None},
                    {"_id": "e4", "user.name": "bob", "dept": "it", "title": None},
                    {"_id": "e3", "user.name": "alice", "dept": "sales", "title": "lead"},
                    {"_id": "e2", "user.name": "bob", "dept": "it", "title": None},
                    {"_id": "e1", "user.name": "alice", "dept": "sales", "title": "lead"}]
    events = await _events(http, "source auth qsize=2 | lookup users user AS user.name OUTPUT dept AS department")
    assert events[0]["department"] == "it" and "dept" not in events[0] and "title" not in events[0]


async def test_lookup_output_overwrites_and_outputnew_fills_only_empty_fields(auth, http) -> None:
    base = 'source auth | search user.name=alice | eval dept=if(_id=="e1", "kept", null) '
    rows = await _events(http, base + "| lookup users user AS user.name OUTPUT dept | table _id, dept")
    assert rows == [{"_id": "e3", "dept": "sales"}, {"_id": "e1", "dept": "sales"}]
    rows = await _events(http, base + "| lookup users user AS user.name OUTPUTNEW dept | table _id, dept")
    assert rows == [{"_id": "e3", "dept": "sales"}, {"_id": "e1", "dept": "kept"}]
    # no match: the event is left as it is
    events = await _events(http, "source auth qsize=1 | eval user.name=\"carol\" | lookup users user AS user.name")
    assert "dept" not in events[0] and events[0]["user.name"] == "carol"


async def test_lookup_definitions_in_the_lookups_index(auth, http) -> None:
    await bulk(auth, ".sm_sme_lookups", [
        ("d1", {"name": "people", "idx": "users", "case_sensitive": ["user"]}),
        ("d2", {"name": "nets", "idx": "networks", "cidrmatch": ["cidr"], "wildcards": "host"}),
    ])
    await bulk(auth, "networks", [("n1", {"cidr": "10.0.0.0/8", "host": "mail*", "zone": "internal-mail"}),
                                   ("n2", {"cidr": "10.0.0.0/8", "host": "*", "zone": "internal"}),
                                   ("n3", {"cidr": "0.0.0.0/0", "host": "*", "zone": "outside"})])
    rows = await _events(http, "source auth | lookup people user AS user.name OUTPUT dept | table _id, dept")
    assert rows == [{"_id": i, "dept": "it" if i in ("e5", "e4", "e2") else None}  # Alice is not alice
                    for i in ("e5", "e4", "e3", "e2", "e1")]
    rows = await _events(http, 'source auth | eval ip=if(host.name=="mail", "10.1.2.3", "192.168.0.1") '
                               "| lookup nets cidr AS ip, host AS host.name OUTPUT zone | dedup host.name "
                               "| table host.name, zone")
    assert rows == [{"host.name": "mail", "zone": "internal-mail"}, {"host.name": "dc01", "zone": "outside"}]
    assert await _events(http, "inputlookup people | stats count") == [{"count": 3}]


async def test_lookup_and_subsearch_refusals(auth, http) -> None:
    resp = await http.post(f"{BASE}/request", json={"query": "source auth | lookup nosuch user", **RANGE})
    assert resp.status == 404 and (await resp.json())["error"]["type"] == "index_not_found_exception"
    cases = {
        "source auth | join user.name": "line 1:29: expected a field name, a parameter, a subsearch [...] "
                                        "or [,] after [user.name]",
        "source auth | join x [ ]": "line 1:22: empty subsearch",
        "source auth | join type=full x [ source auth ]":
            "line 1:25: [type] must be one of [inner, left, outer], found [full]",
        "source auth | join max=-1 x [ source auth ]": "line 1:24: [max] must be a non-negative integer, found [-1]",
        "source auth | join x [ where x==1 ]": "line 1:24: query must start with a generating command",
        "source auth | join x [ source auth | makeresults ]":
            "line 1:38: generating command [makeresults] may only start a pipeline",
        "source auth | append [ source auth | nosuch ]": "line 1:38: unknown command [nosuch]",
        "source auth | lookup users": "line 1:27: expected a field name after [users]",
        "source auth | lookup users user OUTPUT": "line 1:39: expected a field name after [OUTPUT]",
        "source auth | lookup size=3 users user": "line 1:22: unknown parameter [size] for [lookup], "
                                                  "expected one of [dedup, packsize, system, type]",
        "source auth | lookup type=slow users user":
            "line 1:27: [type] must be one of [default, fast, elk], found [slow]",
        "makeresults count=0": "line 1:19: [count] must be a positive integer, found [0]",
        "makeresults counts=2": "line 1:13: unknown parameter [counts] for [makeresults], expected one of [count]",
        "source auth | makeresults": "line 1:15: generating command [makeresults] may only start a pipeline",
        "inputlookup users | inputlookup users":
            "line 1:21: generating command [inputlookup] may only start a pipeline",
    }
    for query, reason in cases.items():
        assert await _refused(http, query) == reason, query
    assert await _events(http, "source auth | lookup type=elk packsize=10 dedup=true system=false users user "
                               "AS user.name OUTPUT dept | stats count by dept") == \
        [{"dept": "it", "count": 3}, {"dept": "sales", "count": 2}]


async def test_allowed_commands_covers_the_commands_of_subsearches(auth, http) -> None:
    resp = await http.put("/_cluster/settings",
                          json={"transient": {"sme.core.limits.base.allowed_commands": "source, append, table"}})
    assert resp.status == 200
    resp = await http.post(f"{BASE}/request", json={"query": "source auth | append [ source auth | stats count ]",
                                                    **RANGE})
    assert resp.status == 403 and "command [stats] is not allowed" in (await resp.json())["error"]["reason"]
    assert len(await _events(http, "source auth | append [ source auth | table _id ]")) == 10


async def test_a_preview_shows_the_task_rows_never_a_subsearch_s(timed, http, slower) -> None:
    task = await _request(http, {"query": "source timed qsize=20000 | join type=left bytes [ source timed qsize=20000 "
                                          "| stats count as n by bytes ] | stats count"})
    seen = []
    for _ in range(600):
        body = await (await http.get(f"{BASE}/response/{task['id']}")).json()
        if body.get("preview"):
            seen.append(body["events"])
        if body["status"] != "RUNNING" and body["status"] != "PENDING":
            break
        await asyncio.sleep(0.05)
    assert body["events"] == [{"count": 20000}] and "preview" not in body
    assert seen and all(events == [] or list(events[0]) == ["count"] for events in seen), seen[:3]


async def test_execution_cost_and_stats_with_subsearches(auth, http) -> None:
    result = await _result(http, "source auth | join type=left user.name [ inputlookup users "
                                 "| rename user as user.name ] | table user.name, dept",
                           calculateStats=True, calculateExecutionCost="DEBUG")
    assert result["events"][0] == {"user.name": "bob", "dept": "it"} and result["total"] == 5
    commands = result["executionCost"]["commands"]
    assert [(c["command"], c["rowsOut"]) for c in commands] == [("source", 5), ("join", 5), ("table", 5)]
    assert commands[0]["details"]["rowsScanned"] == 5  # the task's own scan: the lookup's rows are not counted
    assert commands[1]["details"] == {"subsearchRows": 3}
    result = await _result(http, "source auth | lookup users user AS user.name | append [ makeresults count=2 ]",
                           calculateExecutionCost="DEBUG")
    details = [c.get("details") for c in result["executionCost"]["commands"]]
    assert details[1:] == [{"lookupRows": 3}, {"subsearchRows": 2}] and result["total"] == 7
    result = await _result(http, "makeresults count=4", calculateStats=True, calculateExecutionCost="INFO")
    assert result["total"] == 4 and result["executionCost"]["commands"][0]["rowsOut"] == 4


async def test_max_qsize_bounds_a_subsearch_s_source_noted_on_its_command(auth, http) -> None:
    resp = await http.put("/_cluster/settings", json={"transient": {"sme.core.limits.base.max_qsize": "4"}})
    assert resp.status == 200
    task = await _request(http, {"query": "source auth qsize=2 | append [ source auth qsize=3 "
                                          "| append [ source auth qsize=9 ] ] | stats count"})
    result = await _result(http, "source auth qsize=2 | append [ source auth qsize=3 | append [ source auth qsize=9 ] ]"
                                 " | stats count")
    assert result["events"] == [{"count": 9}] and result["warnings"] == ["qsize=9 reduced to 4 by limit max_qsize"]
    logs = (await (await http.get(f"{BASE}/logs/{task['id']}")).json())["logs"]
    assert {"level": "WARN", "message": "qsize=9 reduced to 4 by limit max_qsize", "command": 1} in \
        [{k: v for k, v in line.items() if k != "timestamp"} for line in logs]
