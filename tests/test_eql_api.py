"""The EQL API through the official client: ``eql.search`` (sync and async), ``eql.get``,
``eql.get_status``, ``eql.delete`` and ``/_tasks``, with Elasticsearch's validation wording,
framing and lifecycle. A test-only pause per slice (``Control.pause_s``, the ``slow``
fixture) keeps a search running long enough to be seen running."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch, BadRequestError, NotFoundError

from service import keys
from service.query.eql.request import EqlRequest

UNKNOWN = "FmNJRUZ1YWZCU3dHY1BIOUhaenVSRkEaaXFlZ3h4c1RTWFNocDdnY2FSaERnUTozNDE="
EVENTS = 20000
MOST = 10000  # the most events a search returns (``max_result_rows``)


# --- data -----------------------------------------------------------------------------------

async def load_events(es: AsyncElasticsearch, n: int) -> None:
    await es.indices.create(index="events", mappings={"properties": {
        "@timestamp": {"type": "date"}, "event": {"properties": {"category": {"type": "keyword"}}},
        "host": {"properties": {"name": {"type": "keyword"}}}, "n": {"type": "long"}}})
    for start in range(0, n, 5000):  # bodies the client sends without a warning
        ops: list[dict[str, Any]] = []
        for i in range(start, min(start + 5000, n)):
            ops += [{"index": {"_id": str(i)}},
                    {"@timestamp": 1_600_000_000_000 + i, "event": {"category": "process"},
                     "host": {"name": f"h{i % 5}"}, "n": i}]
        resp = await es.bulk(index="events", operations=ops, refresh=True)
        assert not resp["errors"]


@pytest.fixture
async def events(es: AsyncElasticsearch) -> AsyncElasticsearch:
    """A few events."""
    await load_events(es, 100)
    return es


@pytest.fixture
async def many(es: AsyncElasticsearch) -> AsyncElasticsearch:
    """Enough events for a slowed search (``slow``) to be seen running."""
    await load_events(es, EVENTS)
    return es


QUERY = "process where true"


# --- validation -------------------------------------------------------------------------------

@pytest.mark.parametrize("body, reason", [
    ({}, "Validation Failed: 1: query is null or empty;"),
    ({"query": ""}, "Validation Failed: 1: query is null or empty;"),
    ({"query": QUERY, "timestamp_field": ""}, "Validation Failed: 1: @timestamp field is null or empty;"),
    ({"query": QUERY, "event_category_field": ""}, "Validation Failed: 1: event category field is null or empty;"),
    ({"query": QUERY, "size": -1}, "Validation Failed: 1: size must be greater than or equal to 0;"),
    ({"query": QUERY, "fetch_size": 1}, "Validation Failed: 1: fetch size must be greater than 1;"),
    ({"query": QUERY, "max_samples_per_key": 0}, "Validation Failed: 1: max_samples_per_key must be greater than 0;"),
    ({"query": "", "size": -1, "fetch_size": 0},
     "Validation Failed: 1: query is null or empty;2: size must be greater than or equal to 0;"
     "3: fetch size must be greater than 1;"),
    ({"query": QUERY, "keep_alive": "30s"}, "Validation Failed: 1: [keep_alive] must be greater than 1 minute, got:30s;"),
    ({"query": QUERY, "keep_alive": "30s", "wait_for_completion_timeout": "1s"},
     "Validation Failed: 1: [keep_alive] must be greater than 1 minute, got:30s;"),
])
async def test_validation_errors(events: AsyncElasticsearch, body: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadRequestError) as info:
        await events.eql.search(index="events", body=body)
    assert info.value.body["error"]["type"] == "action_request_validation_exception"
    assert info.value.body["error"]["reason"] == reason
    assert info.value.body["status"] == 400


async def test_parse_errors_name_the_field_and_where(events: AsyncElasticsearch, http) -> None:
    resp = await http.post("/events/_eql/search", data=b'{"query": "process where true", "result_position": "x"}',
                           headers={"Content-Type": "application/json"})
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["root_cause"] == [{"type": "x_content_parse_exception",
                                    "reason": "[1:52] [eql/search] failed to parse field [result_position]"}]
    assert error["caused_by"] == {"type": "illegal_argument_exception",
                                  "reason": "result position needs to be 'head' or 'tail', received 'x'"}
    resp = await http.post("/events/_eql/search", data=b'{"query": "process where true", "nope": 1}',
                           headers={"Content-Type": "application/json"})
    assert (await resp.json())["error"]["reason"] == "[1:2] [eql/search] unknown field [nope]"
    resp = await http.post("/events/_eql/search", json={"query": QUERY, "filter": None})
    assert (await resp.json())["error"]["reason"] == "[1:43] [eql/search] filter doesn't support values of type: VALUE_NULL"
    with pytest.raises(BadRequestError) as info:
        await events.eql.search(index="events", query=QUERY, filter={})
    assert info.value.body["error"]["caused_by"]["reason"].startswith("query malformed, empty clause found")
    with pytest.raises(BadRequestError) as info:
        await events.eql.search(index="events", query=QUERY, fields=[{"format": "x"}])
    assert info.value.body["error"]["caused_by"]["reason"] == "Required [field]"
    resp = await http.post("/events/_eql/search")
    assert resp.status == 400
    assert (await resp.json())["error"] == {
        "root_cause": [{"type": "parse_exception", "reason": "request body or source parameter is required"}],
        "type": "parse_exception", "reason": "request body or source parameter is required"}


def test_the_request_keeps_what_was_given() -> None:
    request = EqlRequest.parse("a, b*,", {"query": QUERY, "size": "5", "fields": ["x", {"field": "y", "format": "z"}],
                                          "result_position": "head", "case_sensitive": True,
                                          "allow_partial_search_results": True},
                               {"allow_partial_search_results": "false"})
    assert request == EqlRequest(QUERY, ("a", "b*"), size=5, result_position="head",
                                 fields=("x", {"field": "y", "format": "z"}), allow_partial_search_results=False)


# --- sync -----------------------------------------------------------------------------------------

async def test_sync_search_answers_events_in_elasticsearch_key_order(events: AsyncElasticsearch) -> None:
    resp = await events.eql.search(index="events", query="process where n < 5", size=3)
    assert list(resp.body) == ["is_partial", "is_running", "took", "timed_out", "hits"]
    assert resp["is_partial"] is False and resp["is_running"] is False and resp["timed_out"] is False
    assert resp["hits"]["total"] == {"value": 3, "relation": "eq"}
    assert [e["_id"] for e in resp["hits"]["events"]] == ["2", "3", "4"]  # the last 3: result_position tail
    assert resp["hits"]["events"][1] == {"_index": "events", "_id": "3", "_source": {
        "@timestamp": 1_600_000_000_003, "event": {"category": "process"}, "host": {"name": "h3"}, "n": 3}}
    head = await events.eql.search(index="events", query="process where n < 5", size=3, result_position="head")
    assert [e["_id"] for e in head["hits"]["events"]] == ["0", "1", "2"]


async def test_sequences_fields_and_filter(events: AsyncElasticsearch) -> None:
    resp = await events.eql.search(index="events", query="sequence by host.name [process where n == 1] "
                                                         "[process where n == 6]", fields=["n"])
    (sequence,) = resp["hits"]["sequences"]
    assert sequence["join_keys"] == ["h1"] and resp["hits"]["total"]["value"] == 1
    assert [(e["_id"], e["fields"]) for e in sequence["events"]] == [("1", {"n": [1]}), ("6", {"n": [6]})]
    filtered = await events.eql.search(index="events", query=QUERY, filter={"range": {"n": {"lt": 2}}})
    assert [e["_id"] for e in filtered["hits"]["events"]] == ["0", "1"]


async def test_query_errors_come_back_as_elasticsearch_words_them(events: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await events.eql.search(index="events", query="process where nope == 1")
    assert info.value.body["error"]["type"] == "verification_exception"
    assert info.value.body["error"]["reason"].startswith("Found 1 problem\nline 1:15: Unknown column [nope]")
    with pytest.raises(BadRequestError) as info:
        await events.eql.search(index="events", query="process where", wait_for_completion_timeout="1s")
    assert info.value.body["error"]["type"] == "parsing_exception"
    with pytest.raises(NotFoundError) as info:
        await events.eql.search(index="missing", query=QUERY)
    assert info.value.body["error"]["root_cause"][0] == {"type": "verification_exception",
                                                         "reason": "Found 1 problem\nline -1:-1: Unknown index [missing]"}


async def test_get_with_a_body_and_the_async_options_in_the_query_string(events: AsyncElasticsearch, http) -> None:
    resp = await http.get("/events/_eql/search", json={"query": "process where n == 7"})
    assert resp.status == 200 and [e["_id"] for e in (await resp.json())["hits"]["events"]] == ["7"]
    http.app[keys.SEARCHES].clock = lambda: 1_000_000.0
    resp = await http.post("/events/_eql/search", params={"wait_for_completion_timeout": "10s", "keep_alive": "2m",
                                                          "keep_on_completion": "true"},
                           json={"query": "process where n == 7", "keep_alive": "30s"})  # the query string wins
    body = await resp.json()
    assert resp.status == 200 and body["is_running"] is False
    status = await events.eql.get_status(id=body["id"])
    assert status["completion_status"] == 200 and status["expiration_time_in_millis"] == 1_000_000_000 + 120_000
    resp = await http.post("/events/_eql/search", params={"nope": "1"}, json={"query": QUERY})
    assert (await resp.json())["error"]["reason"] == "request [/events/_eql/search] contains unrecognized parameter: [nope]"


async def test_wait_of_minus_one_is_synchronous(events: AsyncElasticsearch) -> None:
    resp = await events.eql.search(index="events", query=QUERY, size=1, wait_for_completion_timeout="-1")
    assert "id" not in resp.body and resp["hits"]["total"]["value"] == 1


# --- async ----------------------------------------------------------------------------------------

async def test_async_done_in_time_stores_nothing(events: AsyncElasticsearch, http) -> None:
    resp = await events.eql.search(index="events", query=QUERY, size=2, wait_for_completion_timeout="10s")
    assert "id" not in resp.body and resp["is_running"] is False
    assert [e["_id"] for e in resp["hits"]["events"]] == ["98", "99"]
    async with http.app[keys.DATABASE].read() as conn:
        async with conn.execute("SELECT count(*) FROM searches") as cur:
            assert (await cur.fetchone())[0] == 0


async def test_keep_on_completion_stores_the_result(events: AsyncElasticsearch) -> None:
    resp = await events.eql.search(index="events", query=QUERY, size=2, wait_for_completion_timeout="10s",
                                   keep_on_completion=True)
    assert list(resp.body) == ["id", "is_partial", "is_running", "took", "timed_out", "hits"]
    got = await events.eql.get(id=resp["id"])
    assert got.body == resp.body
    status = await events.eql.get_status(id=resp["id"])
    assert status.body == {"id": resp["id"], "is_running": False, "is_partial": False,
                           "expiration_time_in_millis": status["expiration_time_in_millis"], "completion_status": 200}


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks.list
async def test_running_frame_status_then_result(many: AsyncElasticsearch, slow: None) -> None:
    resp = await many.eql.search(index="events", query=QUERY, size=MOST, wait_for_completion_timeout="50ms")
    assert resp.body == {"id": resp["id"], "is_partial": True, "is_running": True, "took": resp["took"],
                         "timed_out": False, "hits": {}}
    assert isinstance(resp["took"], int)
    tasks = await many.tasks.list(actions="indices:data/read/eql*", detailed=True, group_by="none")
    (task,) = [t for t in tasks["tasks"] if t["action"] == "indices:data/read/eql[a]"]
    assert task["description"] == QUERY and task["status"]["request_id"] == resp["id"]
    status = await many.eql.get_status(id=resp["id"])
    assert list(status.body) == ["id", "is_running", "is_partial", "start_time_in_millis", "expiration_time_in_millis"]
    assert status["is_running"] is True and status["is_partial"] is True
    assert status["expiration_time_in_millis"] - status["start_time_in_millis"] == 5 * 24 * 3600 * 1000
    polled = await many.eql.get(id=resp["id"])
    assert polled["is_running"] is True and polled["hits"] == {}
    done = await many.eql.get(id=resp["id"], wait_for_completion_timeout="30s")
    assert done["is_running"] is False and done["is_partial"] is False and done["id"] == resp["id"]
    assert done["hits"]["total"]["value"] == MOST == len(done["hits"]["events"])
    after = await many.eql.get_status(id=resp["id"])
    assert "start_time_in_millis" not in after.body and after["completion_status"] == 200


async def test_keep_alive_moves_the_expiry_and_expired_is_gone(events: AsyncElasticsearch, http) -> None:
    searches = http.app[keys.SEARCHES]
    now = [1_000_000.0]
    searches.clock = lambda: now[0]
    resp = await events.eql.search(index="events", query=QUERY, size=1, keep_on_completion=True, keep_alive="1m",
                                   wait_for_completion_timeout="10s")
    assert (await events.eql.get_status(id=resp["id"]))["expiration_time_in_millis"] == 1_000_000_000 + 60_000
    await events.eql.get(id=resp["id"], keep_alive="2m")
    assert (await events.eql.get_status(id=resp["id"]))["expiration_time_in_millis"] == 1_000_000_000 + 120_000
    now[0] += 90
    assert (await events.eql.get(id=resp["id"]))["hits"]["total"]["value"] == 1
    now[0] += 60
    with pytest.raises(NotFoundError):
        await events.eql.get(id=resp["id"])
    with pytest.raises(NotFoundError):
        await events.eql.get_status(id=resp["id"])


async def test_status_human_adds_dates_as_text(events: AsyncElasticsearch, http) -> None:
    http.app[keys.SEARCHES].clock = lambda: 1_611_690_235.0
    resp = await events.eql.search(index="events", query=QUERY, size=1, keep_on_completion=True,
                                   wait_for_completion_timeout="10s", keep_alive="1m")
    status = await events.eql.get_status(id=resp["id"], human=True)
    assert status["expiration_time"] == "2021-01-26T19:44:55.000Z"
    assert list(status.body)[3:5] == ["expiration_time", "expiration_time_in_millis"]


async def test_delete_cancels_a_running_search_and_forgets_it(many: AsyncElasticsearch, slow: None) -> None:
    resp = await many.eql.search(index="events", query=QUERY, size=MOST, wait_for_completion_timeout="50ms")
    assert resp["is_running"] is True
    assert (await many.eql.delete(id=resp["id"])).body == {"acknowledged": True}
    with pytest.raises(NotFoundError) as info:
        await many.eql.get(id=resp["id"])
    assert info.value.body["error"] == {"root_cause": [{"type": "resource_not_found_exception", "reason": resp["id"]}],
                                        "type": "resource_not_found_exception", "reason": resp["id"]}
    with pytest.raises(NotFoundError):
        await many.eql.get_status(id=resp["id"])
    with pytest.raises(NotFoundError):
        await many.eql.delete(id=resp["id"])


async def test_unknown_and_malformed_ids(es: AsyncElasticsearch) -> None:
    for call in (es.eql.get, es.eql.get_status, es.eql.delete):
        with pytest.raises(NotFoundError) as info:
            await call(id=UNKNOWN)
        assert info.value.body["error"]["reason"] == UNKNOWN
    for call in (es.eql.get, es.eql.get_status):
        with pytest.raises(BadRequestError) as info:
            await call(id="not-an-id")
        assert info.value.body["error"]["reason"] == "invalid id: [not-an-id]"
    with pytest.raises(NotFoundError):
        await es.eql.delete(id="not-an-id")


async def test_an_esql_search_is_not_found_as_eql(events: AsyncElasticsearch) -> None:
    resp = await events.esql.async_query(query="FROM events | STATS n = COUNT(*) | LIMIT 1", keep_on_completion=True,
                                         wait_for_completion_timeout="10s")
    with pytest.raises(NotFoundError):
        await events.eql.get(id=resp["id"])
    with pytest.raises(NotFoundError):
        await events.eql.get_status(id=resp["id"])


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks.*
async def test_cancelling_the_task_ends_the_search_with_its_error(many: AsyncElasticsearch, slow: None) -> None:
    resp = await many.eql.search(index="events", query=QUERY, size=MOST, wait_for_completion_timeout="50ms",
                                 keep_alive="10m")
    tasks = await many.tasks.list(actions="indices:data/read/eql[a]", group_by="none")
    (task,) = tasks["tasks"]
    cancelled = await many.tasks.cancel(task_id=f"{task['node']}:{task['id']}", wait_for_completion=True)
    assert [t["cancelled"] for n in cancelled["nodes"].values() for t in n["tasks"].values()] == [True]
    with pytest.raises(BadRequestError) as info:
        await many.eql.get(id=resp["id"], wait_for_completion_timeout="10s")
    assert info.value.body["error"]["type"] == "task_cancelled_exception"
    status = await many.eql.get_status(id=resp["id"])
    assert status["is_running"] is False and status["completion_status"] == 400


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks.list
async def test_a_sync_search_is_a_task_while_it_runs(many: AsyncElasticsearch, slow: None) -> None:
    search = asyncio.ensure_future(many.options(opaque_id="eql-1").eql.search(index="events", query=QUERY,
                                                                              size=MOST))
    listed: list[dict[str, Any]] = []
    while not listed and not search.done():
        await asyncio.sleep(0.01)
        listed = (await many.tasks.list(actions="indices:data/read/eql", detailed=True, group_by="none"))["tasks"]
    assert [(t["description"], t["headers"]) for t in listed] == [(QUERY, {"X-Opaque-Id": "eql-1"})]
    assert (await search)["hits"]["total"]["value"] == MOST


# --- restarts: a real process, so the real engine ---------------------------------------------

def bulk_events(client: Any, n: int) -> None:
    ops: list[dict[str, Any]] = []
    for i in range(n):
        ops += [{"index": {"_id": str(i)}}, {"@timestamp": 1_600_000_000_000 + i, "event": {"category": "process"}}]
    assert not client.bulk(index="events", operations=ops, refresh=True)["errors"]


def test_stored_result_survives_a_restart(server_process) -> None:
    client = server_process.start()
    try:
        bulk_events(client, 100)
        resp = client.eql.search(index="events", query=QUERY, size=3, keep_on_completion=True,
                                 wait_for_completion_timeout="10s")
        server_process.stop()
        client = server_process.start()
        got = client.eql.get(id=resp["id"])
        assert got.body == resp.body and [e["_id"] for e in got["hits"]["events"]] == ["97", "98", "99"]
    finally:
        client.close()


def test_a_search_cut_by_a_crash_is_finished_partial(server_process) -> None:
    client = server_process.start(slice_pause_s=0.2)
    try:
        bulk_events(client, 20000)
        resp = client.eql.search(index="events", query=QUERY, size=20000, keep_on_completion=True,
                                 wait_for_completion_timeout="500ms")
        assert resp["is_running"] is True
        server_process.kill()
        client = server_process.start()
        got = client.eql.get(id=resp["id"])
        assert got["is_running"] is False and got["is_partial"] is True
        assert got["shard_failures"][0]["reason"]["type"] == "node_closed_exception"
        assert got["hits"]["total"]["value"] == len(got["hits"]["events"])
        status = client.eql.get_status(id=resp["id"])
        assert status["is_partial"] is True and status["completion_status"] == 200
    finally:
        client.close()
