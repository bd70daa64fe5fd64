"""``PUT|GET /_cluster/settings`` through the official client and raw HTTP: persistent and
transient, flat and nested names, resets, Elasticsearch's errors, and a restart."""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import AsyncElasticsearch, BadRequestError

from service import keys

DT_START = "sme.core.global_dt_params.dt_start"


async def test_nothing_set_is_two_empty_scopes(es: AsyncElasticsearch) -> None:
    assert (await es.cluster.get_settings()).body == {"persistent": {}, "transient": {}}


async def test_defaults_on_request(es: AsyncElasticsearch) -> None:
    body = (await es.cluster.get_settings(include_defaults=True, flat_settings=True)).body
    assert body["defaults"][DT_START] == "now-15m"
    assert body["defaults"]["sme.core.global_dt_params.dt_field_name"] == "@timestamp"
    assert body["defaults"]["sme.core.global_dt_params.dt_end"] == "now"
    assert body["defaults"]["sme.core.async_requests.keep_alive"] == "5d"
    nested = (await es.cluster.get_settings(include_defaults=True)).body
    assert nested["defaults"]["sme"]["core"]["async_requests"]["max_running_per_user"] == "3"


async def test_defaults_leave_out_what_is_set(es: AsyncElasticsearch) -> None:
    """As Elasticsearch's ``include_defaults``: ``defaults`` holds only the settings set in
    neither scope."""
    await es.cluster.put_settings(persistent={DT_START: "now-1d"}, transient={"sme.core.enable_limits": False})
    body = (await es.cluster.get_settings(include_defaults=True, flat_settings=True)).body
    assert DT_START not in body["defaults"] and "sme.core.enable_limits" not in body["defaults"]
    assert body["defaults"]["sme.core.global_dt_params.dt_end"] == "now"
    assert body["persistent"] == {DT_START: "now-1d"} and body["transient"] == {"sme.core.enable_limits": "false"}


async def test_flat_and_nested_names_are_the_same_setting(es: AsyncElasticsearch, http) -> None:
    resp = await es.cluster.put_settings(persistent={"sme.core.global_dt_params.dt_start": "now-1d"},
                                         transient={"sme": {"core": {"global_dt_params": {"dt_end": "now/d"}}}})
    assert resp.body == {"acknowledged": True,
                         "persistent": {"sme": {"core": {"global_dt_params": {"dt_start": "now-1d"}}}},
                         "transient": {"sme": {"core": {"global_dt_params": {"dt_end": "now/d"}}}}}
    flat = (await es.cluster.get_settings(flat_settings=True)).body
    assert flat == {"persistent": {DT_START: "now-1d"},
                    "transient": {"sme.core.global_dt_params.dt_end": "now/d"}}
    settings = http.app[keys.CLUSTER_SETTINGS]
    assert settings.get(DT_START) == "now-1d" and settings.get("sme.core.global_dt_params.dt_end") == "now/d"


async def test_transient_wins_and_null_resets(es: AsyncElasticsearch, http) -> None:
    await es.cluster.put_settings(persistent={DT_START: "now-1d"}, transient={DT_START: "now-2h"})
    settings = http.app[keys.CLUSTER_SETTINGS]
    assert settings.get(DT_START) == "now-2h"
    resp = await es.cluster.put_settings(transient={DT_START: None})
    assert resp.body == {"acknowledged": True, "persistent": {}, "transient": {}}
    assert settings.get(DT_START) == "now-1d"
    await es.cluster.put_settings(persistent={DT_START: None})
    assert settings.get(DT_START) == "now-15m"
    assert (await es.cluster.get_settings()).body == {"persistent": {}, "transient": {}}


async def test_a_wildcard_null_resets_every_matching_setting(es: AsyncElasticsearch, http) -> None:
    """Elasticsearch's ``"indices.recovery.*": null``: every set name matching resets; a
    pattern matching none is no error."""
    await es.cluster.put_settings(persistent={DT_START: "now-1d", "sme.core.global_dt_params.dt_end": "now/d",
                                              "sme.core.enable_limits": False},
                                  transient={DT_START: "now-2h"})
    resp = await es.cluster.put_settings(persistent={"sme.core.global_dt_params.*": None})
    assert resp.body == {"acknowledged": True, "persistent": {}, "transient": {}}
    assert (await es.cluster.get_settings(flat_settings=True)).body == {
        "persistent": {"sme.core.enable_limits": "false"}, "transient": {DT_START: "now-2h"}}
    await es.cluster.put_settings(transient={"sme": {"*": None}}, persistent={"nothing.here.*": None})
    settings = http.app[keys.CLUSTER_SETTINGS]
    assert settings.get(DT_START) == "now-15m" and settings.get("sme.core.enable_limits") == "false"
    assert (await es.cluster.get_settings(flat_settings=True)).body == {
        "persistent": {"sme.core.enable_limits": "false"}, "transient": {}}
    resp = await es.cluster.put_settings(transient={"nothing.here.*": None})
    assert resp.body == {"acknowledged": True, "persistent": {}, "transient": {}}
    # a value set in the same request wins over the wildcard, whichever comes first
    resp = await es.cluster.put_settings(persistent={"sme.core.enable_limits": True, "sme.core.*": None})
    assert resp.body["persistent"] == {"sme": {"core": {"enable_limits": "true"}}}
    assert settings.get("sme.core.enable_limits") == "true"


async def test_values_are_stored_as_strings(es: AsyncElasticsearch) -> None:
    resp = await es.cluster.put_settings(persistent={"sme.core.async_requests.max_tasks_per_user": 7,
                                                     "sme.core.enable_limits": False})
    assert resp["persistent"]["sme"]["core"] == {"async_requests": {"max_tasks_per_user": "7"},
                                                 "enable_limits": "false"}


@pytest.mark.parametrize(("body", "error_type", "reason"), [
    ({"persistent": {"sme.core.nope": "1"}}, "illegal_argument_exception",
     "persistent setting [sme.core.nope], not recognized"),
    ({"transient": {"cluster": {"x": 1}}}, "illegal_argument_exception",
     "transient setting [cluster.x], not recognized"),
    ({"persistent": {DT_START: "yesterday"}}, "illegal_argument_exception",
     f"failed to parse [{DT_START}] with value [yesterday]: not a date, a date-time, epoch milliseconds or date math"),
    ({"persistent": {"sme.core.async_requests.max_running_per_user": "0"}}, "illegal_argument_exception",
     "Failed to parse value [0] for setting [sme.core.async_requests.max_running_per_user] must be >= 1"),
    ({"persistent": {"sme.core.async_requests.max_running_per_user": "many"}}, "illegal_argument_exception",
     "Failed to parse value [many] for setting [sme.core.async_requests.max_running_per_user]"),
    ({"persistent": {"sme.core.enable_limits": "yes"}}, "illegal_argument_exception",
     "Failed to parse value [yes] as only [true] or [false] are allowed."),
    ({"persistent": {"sme.core.async_requests.keep_alive": "5 days"}}, "parse_exception",
     "failed to parse [5 days]"),
    ({"persistent": {"sme.core.global_dt_params.dt_field_name": " "}}, "illegal_argument_exception",
     "[sme.core.global_dt_params.dt_field_name] must be a non-empty string, got [ ]"),
    ({"persistent": {"sme.core.*": "1"}}, "illegal_argument_exception",
     "persistent setting [sme.core.*], not recognized"),
    ({}, "action_request_validation_exception", "Validation Failed: 1: no settings to update;"),
    ({"persistent": {}, "transient": {}}, "action_request_validation_exception",
     "Validation Failed: 1: no settings to update;"),
])
async def test_bad_updates_change_nothing(es: AsyncElasticsearch, http, body, error_type, reason) -> None:
    resp = await http.put("/_cluster/settings", json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert (error["type"], error["reason"]) == (error_type, reason)
    assert (await es.cluster.get_settings()).body == {"persistent": {}, "transient": {}}


async def test_one_bad_name_refuses_the_whole_request(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError):
        await es.cluster.put_settings(persistent={DT_START: "now-1d", "nope": "1"})
    assert (await es.cluster.get_settings()).body == {"persistent": {}, "transient": {}}


async def test_unknown_body_field_is_refused(http) -> None:
    resp = await http.put("/_cluster/settings", json={"persistent": {DT_START: "now-1d"}, "other": {}})
    assert resp.status == 400
    assert (await resp.json())["error"]["type"] == "x_content_parse_exception"


async def test_persistent_survives_a_restart_and_transient_does_not(server_process, tmp_path: Path) -> None:
    client = server_process.start()
    try:
        client.cluster.put_settings(persistent={DT_START: "now-3d"}, transient={"sme.core.enable_limits": False})
        server_process.stop()
        client.close()
        client = server_process.start()
        assert client.cluster.get_settings(flat_settings=True).body == {"persistent": {DT_START: "now-3d"},
                                                                         "transient": {}}
    finally:
        client.close()
