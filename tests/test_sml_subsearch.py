"""SML's generating commands and subsearches (spec/sml.md §7.12, §7.16, §7.17, §3), end to
end: tasks created, run and read through ``/_sme/async_requests/...`` over real HTTP on a
real server, its documents loaded with the official client."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service import keys
from service.query.sml import SmlJob, SmlRequest
from service.query.options import QueryOptions

BASE = "/_sme/async_requests"
RANGE = {"dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-02T00:00:00Z"}
AUTH = [  # spec/sml.md §10: (id, time, host.name, user.name, event.code, event.outcome)
    ("e1", "2024-05-01T10:00:00.000Z", "mail", "alice", 4624, "success"),
    ("e2", "2024-05-01T10:05:00.000Z", "mail", "bob", 4625, "failure"),
    ("e3", "2024-05-01T10:10:00.000Z", "dc01", "alice", 4624, "success"),
    ("e4", "2024-05-01T10:15:00.000Z", "dc01", "bob", 4624, "success"),
    ("e5", "2024-05-01T10:20:00.000Z", "mail", "bob", 4625, "failure"),
]
USERS = [  # a lookup index: (id, user, dept, title)
    ("u1", "Alice", "sales", "lead"),
    ("u2", "bob", "it", None),
    ("u3", "bob", "dup", "second"),  # a second match: the first one in lookup order wins
]


async def _bulk(es: AsyncElasticsearch, index: str, docs: list[tuple[str, dict[str, Any]]]) -> None:
    ops: list[dict[str, Any]] = []
    for _id, doc in docs:
        ops += [{"index": {"_index": index, "_id": _id}}, doc]
    response = await es.bulk(operations=ops, refresh=True)
    assert not response["errors"], response


@pytest.fixture
async def auth(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await _bulk(es, "auth", [(i, {"@timestamp": t, "host": {"name": h}, "user": {"name": u},
                                  "event": {"code": c, "outcome": o}}) for i, t, h, u, c, o in AUTH])
    users = [(i, {"user": u, "dept": d, **({"title": t} if t else {})}) for i, u, d, t in USERS]
    await _bulk(es, "users", users)
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
    assert status["status"] == "COMPLETED", status
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


async def test_makeresults_time_is_the_task_instant(http) -> None:
    row, = await _events(http, "makeresults")
    created = row["@timestamp"]
    assert created.endswith("Z") and created[:4] >= "2024"
    rows = await _events(http, "makeresults count=2 | stats dc(@timestamp) as instants, count")
    assert rows == [{"instants": 1, "count": 2}]
