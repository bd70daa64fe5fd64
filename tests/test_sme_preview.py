"""Previews of running transforming SML tasks over real HTTP (issue 13, Splunk's
``results_preview``): while ``stats`` runs, ``response`` finishes the rest of the pipeline
over the events read so far, marked ``"preview": true``, and the task goes on."""

from __future__ import annotations

import asyncio

from elasticsearch import AsyncElasticsearch

from test_sme_api import get, post, progress_above, sml_task, until

# the slow fixture keeps the scan of ``timed`` (20 000 events) going for seconds
from test_sme_api import slower, timed  # noqa: F401  (fixtures)


async def preview_count(http, task_id: str, above: int) -> dict:
    """A preview whose count passed ``above``."""
    for _ in range(400):
        body = await get(http, f"response/{task_id}")
        if body.get("preview") and body["events"] and body["events"][0]["count"] > above:
            return body
        assert body["status"] == "RUNNING", body
        await asyncio.sleep(0.05)
    raise AssertionError(f"no preview of {task_id} above {above}")


async def test_a_running_stats_task_previews_counts_that_grow(timed: AsyncElasticsearch, http,
                                                              slower: None) -> None:
    task_id = await sml_task(http, "source timed qsize=20000 | stats count, max(bytes) as top | eval half=count/2")
    await until(http, task_id, "RUNNING")
    first = await preview_count(http, task_id, 0)
    assert first["status"] == "RUNNING" and first["partial"] is True and first["preview"] is True
    assert first["fields"] == ["count", "top", "half"] and first["total"] == 1
    (row,) = first["events"]
    assert 0 < row["count"] < 20000 and row["top"] == 19999 and row["half"] == row["count"] / 2  # newest first
    later = await preview_count(http, task_id, row["count"])
    assert later["events"][0]["count"] > row["count"]
    status = await get(http, f"status/{task_id}")
    assert status["status"] == "RUNNING" and status["rowCount"] == 0  # a preview stores nothing
    stopped = await post(http, f"break/{task_id}")
    assert stopped["status"] == "STOPPED"
    final = await get(http, f"response/{task_id}")
    assert "preview" not in final and final["events"][0]["count"] >= later["events"][0]["count"]


async def test_a_preview_pages_its_groups(timed: AsyncElasticsearch, http, slower: None) -> None:
    task_id = await sml_task(http, "source timed qsize=20000 | eval m=bytes % 7 | stats count by m")
    await until(http, task_id, "RUNNING")
    await progress_above(http, task_id, 0.05)
    for _ in range(200):
        page = await get(http, f"response/{task_id}?from=2&to=4")
        if page.get("preview") and page["total"] == 7:
            break
        await asyncio.sleep(0.05)
    assert page["from"] == 2 and page["to"] == 4 and [e["m"] for e in page["events"]] == [2, 3]
    assert page["fields"] == ["m", "count"]
    await post(http, f"break/{task_id}")


async def test_a_streaming_task_shows_its_stored_rows_not_a_preview(timed: AsyncElasticsearch, http,
                                                                    slower: None) -> None:
    task_id = await sml_task(http, "source timed qsize=20000 | eval x=1")
    await until(http, task_id, "RUNNING")
    body = await get(http, f"response/{task_id}")
    assert "preview" not in body
    await post(http, f"break/{task_id}")


async def test_a_running_sort_previews_its_first_rows(timed: AsyncElasticsearch, http, slower: None) -> None:
    task_id = await sml_task(http, "source timed qsize=20000 | sort bytes | head 3 | table bytes")
    await until(http, task_id, "RUNNING")
    for _ in range(400):
        body = await get(http, f"response/{task_id}")
        if body.get("preview") and body["total"] == 3:
            break
        await asyncio.sleep(0.05)
    # newest first: the smallest bytes read so far are those of the oldest events read yet
    smallest = [row["bytes"] for row in body["events"]]
    assert body["fields"] == ["bytes"] and smallest == sorted(smallest) and smallest[0] > 0
    stopped = await post(http, f"break/{task_id}")
    assert stopped["status"] == "STOPPED"
    final = [row["bytes"] for row in (await get(http, f"response/{task_id}"))["events"]]
    assert final == sorted(final) and final[0] <= smallest[0]
