"""The limits of spec sme-background-tasks.md §7.2 that act on the query, over real HTTP:
``allowed_commands`` refuses a task (403, nothing stored), ``max_qsize`` reduces a
source's qsize with a warning in the result and the log; then the per-user and per-role
limits of the limits index over the base limits of the cluster settings (§7.1)."""

from __future__ import annotations

import orjson
import pytest
from elasticsearch import AsyncElasticsearch

from service.errors import BadRequest
from service.query.sml import limits

from test_sme_api import BASE, RANGE, get, post, sml_task, until
from test_sme_api import auth  # noqa: F401  (fixture)


async def limit(http, name: str, value: str | None) -> None:
    resp = await http.put("/_cluster/settings", json={"transient": {f"sme.core.limits.base.{name}": value}})
    assert resp.status == 200, await resp.text()


async def test_a_command_outside_allowed_commands_is_403_and_stores_nothing(auth: AsyncElasticsearch, http) -> None:
    await limit(http, "allowed_commands", "source, search, stats")
    before = (await get(http, "status/"))["tasks"]
    resp = await http.post(f"{BASE}/request", json={"query": "source auth | aggs count", **RANGE})
    body = await resp.json()
    assert resp.status == 403 and body["status"] == 403
    assert body["error"]["type"] == "security_exception"
    assert body["error"]["reason"] == ("command [aggs] is not allowed for user [default] by the limit "
                                       "allowed_commands [search, source, stats]")  # aggs is not stats
    assert (await get(http, "status/"))["tasks"] == before
    allowed = await sml_task(http, "source auth | SEARCH user.name=bob | stats count")
    await until(http, allowed, "COMPLETED")
    assert (await get(http, f"response/{allowed}"))["events"] == [{"count": 3}]


async def test_allowed_commands_may_be_a_json_list_as_in_a_limits_document(auth: AsyncElasticsearch, http) -> None:
    resp = await http.put("/_cluster/settings",
                          json={"transient": {"sme.core.limits.base.allowed_commands": ["source", "Stats"]}})
    assert resp.status == 200 and (await resp.json())["transient"]["sme"]["core"]["limits"]["base"] == {
        "allowed_commands": "source,Stats"}
    resp = await http.post(f"{BASE}/request", json={"query": "source auth | aggs count", **RANGE})
    assert resp.status == 403 and (await resp.json())["error"]["reason"].endswith("allowed_commands [source, stats]")
    allowed = await sml_task(http, "source auth | stats count")
    assert (await until(http, allowed, "COMPLETED"))["status"] == "COMPLETED"


async def test_a_list_for_a_setting_of_one_value_is_refused_as_json(http) -> None:
    for value, shown in ([["now-1d"], '["now-1d"]'], [["source", 1], '["source",1]'],
                         [["source", ["x"]], '["source",["x"]]']):
        name = "sme.core.limits.base.allowed_dt_start" if shown.startswith('["now') else \
            "sme.core.limits.base.allowed_commands"
        resp = await http.put("/_cluster/settings", json={"transient": {name: value}})
        assert resp.status == 400
        assert (await resp.json())["error"]["reason"] == f"Failed to parse value [{shown}] for setting [{name}]"


async def test_a_syntax_error_comes_before_the_command_limit(auth: AsyncElasticsearch, http) -> None:
    await limit(http, "allowed_commands", "source")
    resp = await http.post(f"{BASE}/request", json={"query": "source auth | stats count by", **RANGE})
    assert resp.status == 400 and (await resp.json())["error"]["type"] == "parsing_exception"


async def test_clearing_the_limit_allows_every_command(auth: AsyncElasticsearch, http) -> None:
    await limit(http, "allowed_commands", "source")
    await limit(http, "allowed_commands", None)
    task_id = await sml_task(http, "source auth | dedup user.name | table user.name")
    assert (await until(http, task_id, "COMPLETED"))["status"] == "COMPLETED"


async def test_max_qsize_reduces_a_larger_qsize_with_a_warning(auth: AsyncElasticsearch, http) -> None:
    await limit(http, "max_qsize", "2")
    task_id = await sml_task(http, "source auth qsize=100")
    await until(http, task_id, "COMPLETED")
    result = await get(http, f"response/{task_id}")
    assert [e["_id"] for e in result["events"]] == ["e5", "e4"]
    assert result["warnings"] == ["qsize=100 reduced to 2 by limit max_qsize"]
    lines = (await get(http, f"logs/{task_id}"))["logs"]
    assert {"level": "WARN", "message": "qsize=100 reduced to 2 by limit max_qsize", "command": 0} in \
        [{k: v for k, v in line.items() if k != "timestamp"} for line in lines]


async def test_max_qsize_also_bounds_the_default_qsize(auth: AsyncElasticsearch, http) -> None:
    await limit(http, "max_qsize", "3")
    task_id = await sml_task(http, "source auth | stats count")
    await until(http, task_id, "COMPLETED")
    result = await get(http, f"response/{task_id}")
    assert result["events"] == [{"count": 3}]
    assert result["warnings"] == ["qsize=10000 reduced to 3 by limit max_qsize"]
    small = await sml_task(http, "source auth qsize=2")
    await until(http, small, "COMPLETED")
    assert (await get(http, f"response/{small}"))["warnings"] == []


async def test_a_bad_limit_value_is_refused(http) -> None:
    resp = await http.put("/_cluster/settings", json={"transient": {"sme.core.limits.base.max_qsize": "lots"}})
    assert resp.status == 400 and (await resp.json())["error"]["type"] == "illegal_argument_exception"


async def test_max_payload_row_count_stops_storing_rows(auth: AsyncElasticsearch, http) -> None:
    await limit(http, "max_payload_row_count", "3")
    task_id = await sml_task(http, "source auth")
    status = await until(http, task_id, "COMPLETED")
    assert status["partial"] is True and status["rowCount"] == 3
    result = await get(http, f"response/{task_id}")
    assert [e["_id"] for e in result["events"]] == ["e5", "e4", "e3"]
    assert result["warnings"] == ["result truncated to 3 rows"]
    lines = (await get(http, f"logs/{task_id}"))["logs"]
    assert any(line["level"] == "WARN" and line["message"] == "result truncated to 3 rows" for line in lines)


async def test_max_payload_size_stops_storing_rows_past_its_bytes(auth: AsyncElasticsearch, http) -> None:
    # stored rows newest first: bob, bob, alice... as JSON rows of 21, 21 and 23 bytes
    assert [len(orjson.dumps([{"user.name": n}])) for n in ("bob", "alice")] == [21, 23]
    await limit(http, "max_payload_size", "50")
    task_id = await sml_task(http, "source auth | table user.name")
    status = await until(http, task_id, "COMPLETED")
    result = await get(http, f"response/{task_id}")
    assert status["partial"] is True and result["events"] == [{"user.name": "bob"}] * 2
    assert result["warnings"] == ["result truncated to 2 rows by limit max_payload_size [50 bytes]"]
    await limit(http, "max_payload_size", "1kb")
    small = await sml_task(http, "source auth | table user.name")
    assert (await until(http, small, "COMPLETED"))["partial"] is False


async def test_a_bad_payload_size_is_refused(http) -> None:
    resp = await http.put("/_cluster/settings", json={"transient": {"sme.core.limits.base.max_payload_size": "big"}})
    body = await resp.json()
    assert resp.status == 400 and body["error"]["reason"] == (
        "failed to parse setting [sme.core.limits.base.max_payload_size] with value [big] as a size in bytes")


async def test_max_command_ram_usage_fails_the_task_naming_the_command(auth: AsyncElasticsearch, http) -> None:
    """Each command's operators may hold that much (their estimates, as the breaker's): the
    five events sorted hold about 3kb, their two groups counted well under 1kb."""
    await limit(http, "max_command_ram_usage", "1kb")
    counted = await sml_task(http, "source auth | stats count by user.name")
    assert (await until(http, counted, "COMPLETED"))["rowCount"] == 2
    # a subsearch's command too
    sorted_ = await sml_task(http, "source auth | stats count by user.name | append [source auth | sort user.name]")
    status = await until(http, sorted_, "FAILED")
    assert status["partial"] is True and status["error"]["type"] == "circuit_breaking_exception"
    reason = status["error"]["reason"]
    assert reason.startswith("command [sort user.name] would hold [") and \
        reason.endswith("of memory, which is larger than the limit [max_command_ram_usage] of [1024/1kb]"), reason
    lines = (await get(http, f"logs/{sorted_}"))["logs"]
    assert lines[-1]["level"] == "ERROR" and "command [sort user.name]" in lines[-1]["message"]


async def test_a_bad_command_ram_usage_is_refused(http) -> None:
    resp = await http.put("/_cluster/settings",
                          json={"persistent": {"sme.core.limits.base.max_command_ram_usage": "0"}})
    assert resp.status == 400 and (await resp.json())["error"]["reason"] == (
        "failed to parse setting [sme.core.limits.base.max_command_ram_usage] with value [0] as a size in bytes")


# --- per user and per role (the limits index) ---------------------------------------------------

NOW = 1_714_521_600_000  # 2024-05-01T00:00:00Z


@pytest.mark.parametrize(("docs", "user", "roles", "expected"), [
    ([], "alice", ["a"], {}),
    ([{"user": "alice", "max_qsize": 5}, {"user": "bob", "max_qsize": 7}], "alice", [], {"max_qsize": "5"}),
    # the most permissive of the roles', unless the user has its own
    ([{"role": "a", "max_qsize": 10, "max_payload_size": "1kb"}, {"role": "b", "max_qsize": 20,
      "max_payload_size": 4096}, {"role": "c", "max_qsize": 99}], "alice", ["a", "b"],
     {"max_qsize": "20", "max_payload_size": "4096"}),
    ([{"role": "a", "max_command_ram_usage": "10mb"}, {"role": "b", "max_command_ram_usage": 1024}], "alice",
     ["a", "b"], {"max_command_ram_usage": str(10 << 20)}),
    ([{"role": "a", "max_qsize": 10}, {"user": "alice", "max_qsize": 3}], "alice", ["a"], {"max_qsize": "3"}),
    ([{"role": "a", "allowed_dt_start": "now-1d", "allowed_dt_end": "now"},
      {"role": "b", "allowed_dt_start": "now-3w", "allowed_dt_end": "now+1d"}], "alice", ["a", "b"],
     {"allowed_dt_start": "now-3w", "allowed_dt_end": "now+1d"}),
    # allowed_commands: the union of the user's own list and its roles'
    ([{"user": "alice", "allowed_commands": "source, stats, eval"},
      {"role": "a", "allowed_commands": ["source", "streamstats", "eventstats"]}], "alice", ["a"],
     {"allowed_commands": "eval,eventstats,source,stats,streamstats"}),
    # a document naming both, or neither, or another's role, is not the user's
    ([{"user": "alice", "role": "a", "max_qsize": 1}, {"max_qsize": 2}, {"role": "x", "max_qsize": 3}, "junk"],
     "alice", ["a"], {}),
])
def test_limits_resolve_user_then_most_permissive_role(docs, user, roles, expected) -> None:
    assert limits.resolve(docs, user, roles, NOW) == expected


@pytest.mark.parametrize("doc", [{"user": "alice", "max_qsize": "lots"}, {"user": "alice", "max_qsize": 0},
                                 {"user": "alice", "max_payload_size": "big"}, {"user": "alice", "max_qsize": True},
                                 {"user": "alice", "allowed_dt_start": "yesterday-ish"},
                                 {"user": "alice", "allowed_commands": {"a": 1}}, {"user": "alice", "max_qsize": "²"}])
def test_a_limit_that_does_not_parse_refuses_the_task(doc) -> None:
    with pytest.raises(BadRequest) as err:
        limits.resolve([doc], "alice", [], NOW)
    assert "of user [alice] in the limits index is not valid" in err.value.reason


async def test_the_users_own_limit_is_over_the_base_limit(auth: AsyncElasticsearch, http) -> None:
    """With security off every task is the default user's: its document in the limits index
    applies over the base limit, and ``enable_limits: false`` turns both off."""
    await limit(http, "max_qsize", "4")
    await auth.index(index=".sm_sme_limits_user", id="user-default", document={"user": "default", "max_qsize": 2},
                     refresh=True)
    task_id = await sml_task(http, "source auth qsize=100")
    await until(http, task_id, "COMPLETED")
    assert (await get(http, f"response/{task_id}"))["warnings"] == ["qsize=100 reduced to 2 by limit max_qsize"]
    await auth.index(index=".sm_sme_limits_user", id="user-default",
                     document={"user": "default", "allowed_commands": "source"}, refresh=True)
    resp = await http.post(f"{BASE}/request", json={"query": "source auth | stats count", **RANGE})
    assert resp.status == 403
    resp = await http.put("/_cluster/settings", json={"transient": {"sme.core.enable_limits": False}})
    assert resp.status == 200
    task_id = await sml_task(http, "source auth qsize=100 | stats count")
    await until(http, task_id, "COMPLETED")
    result = await get(http, f"response/{task_id}")
    assert result["warnings"] == [] and result["events"] == [{"count": 5}]


async def test_a_bad_document_refuses_the_task_and_stores_nothing(auth: AsyncElasticsearch, http) -> None:
    await auth.index(index=".sm_sme_limits_user", document={"user": "default", "max_qsize": "lots"}, refresh=True)
    before = (await get(http, "status/"))["tasks"]
    resp = await http.post(f"{BASE}/request", json={"query": "source auth", **RANGE})
    assert resp.status == 400
    assert "the limit [max_qsize] of user [default] in the limits index is not valid" in \
        (await resp.json())["error"]["reason"]
    assert (await get(http, "status/"))["tasks"] == before
