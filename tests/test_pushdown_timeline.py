"""A STATS that reads only the time field runs over the time field's index, one time range at
a time (``pushdown/timeline``), and answers exactly what the Python pipeline answers: the same
groups in the same (first-seen) order, the same counters; a stop keeps what was read; a write
during the scan is not seen."""

from __future__ import annotations

import asyncio
import random
from typing import Any, AsyncIterator

import pytest
from elasticsearch import AsyncElasticsearch

from conftest import StopAfter, create_and_load
from service import keys
from service.query.control import Control
from service.settings import Settings
from service.store.db import query_connection
from test_pushdown import run_esql

N = 3000
HOUR = 3_600_000
MAPPINGS = {"properties": {"@timestamp": {"type": "date"}, "bytes": {"type": "long"}}}


def _docs(n: int, seed: int) -> list[dict[str, Any]]:
    """``n`` documents over ten hours around the epoch (negative epochs too), in shuffled
    order so that rowid order is not time order; every 17th has no time."""
    rng = random.Random(seed)
    docs: list[dict[str, Any]] = [{"@timestamp": rng.randrange(-5 * HOUR, 5 * HOUR), "bytes": i} for i in range(n)]
    for i in range(0, n, 17):
        del docs[i]["@timestamp"]
    docs[5]["@timestamp"] = -HOUR  # on an edge
    docs[6]["@timestamp"] = HOUR - 1
    rng.shuffle(docs)
    return docs


@pytest.fixture
async def store(es: AsyncElasticsearch, server: Any, settings: Settings) -> AsyncIterator[Any]:
    await create_and_load(es, "logs", MAPPINGS, _docs(N, 1))
    await create_and_load(es, "logs2", MAPPINGS, _docs(N // 2, 2))
    conn = query_connection(settings.db_path)
    yield server.app[keys.CATALOG], conn
    conn.close()


BY_TIME = [
    "FROM logs | STATS COUNT(*) BY hour = DATE_TRUNC(1 hour, @timestamp)",
    "FROM logs | STATS COUNT(*) BY hour = DATE_TRUNC(1 hour, @timestamp) | LIMIT 3",  # which groups: the order
    "FROM logs | STATS c = COUNT(*), lo = MIN(@timestamp), hi = MAX(@timestamp), n = COUNT(@timestamp), "
    "d = COUNT_DISTINCT(@timestamp) BY b = BUCKET(@timestamp, 1 hour)",
    'FROM logs | WHERE @timestamp >= "1969-12-31T22:00:00Z" AND @timestamp < "1970-01-01T03:00:00Z" '
    "| STATS COUNT(*) BY h = DATE_TRUNC(1 hour, @timestamp)",
    "FROM logs | STATS COUNT(*), MIN(@timestamp)",
    'FROM logs | WHERE @timestamp > "1970-01-01T01:00:00Z" | STATS COUNT(*), MAX(@timestamp)',
    "FROM logs | WHERE @timestamp IS NULL | STATS COUNT(*)",
    'FROM logs | WHERE @timestamp > "2000-01-01" | STATS COUNT(*) BY h = DATE_TRUNC(1 hour, @timestamp)',  # none
    "FROM logs* | STATS COUNT(*) BY h = DATE_TRUNC(30 minutes, @timestamp)",
    "FROM logs | STATS n = COUNT(*) BY h = DATE_TRUNC(1 hour, @timestamp) | SORT n DESC, h | LIMIT 4",
]


@pytest.mark.parametrize("control", [Control, lambda: Control(slice_rows=256, adaptive=False)],
                         ids=["adaptive", "small ranges"])
@pytest.mark.parametrize("query", BY_TIME)
async def test_a_stats_over_the_time_field_reads_its_index_and_answers_as_python(
        store: Any, query: str, control: Any) -> None:
    pushed, first = run_esql(store, query, True, control())
    python, scan = run_esql(store, query, False)
    assert first.startswith("SqliteQueryOperator[sql=SELECT") and ">= :a" in first and "GROUP BY" not in first, first
    assert scan.startswith("ScanOperator")
    assert pushed == python


@pytest.mark.parametrize("query", [
    "FROM logs | STATS COUNT(*) BY m = DATE_TRUNC(1 minute, @timestamp)",  # a few rows a bucket: a GROUP BY
    "FROM logs | STATS COUNT(*), SUM(bytes) BY h = DATE_TRUNC(1 hour, @timestamp)",  # reads more than the time
])
async def test_otherwise_the_rowid_slices_group_in_sql(store: Any, query: str) -> None:
    pushed, first = run_esql(store, query, True)
    assert "GROUP BY" in first and "r > :lo" in first, first
    assert pushed == run_esql(store, query, False)[0]


async def test_a_stop_keeps_exactly_the_ranges_read(store: Any) -> None:
    catalog, conn = store
    query = "FROM logs | STATS c = COUNT(*) BY h = DATE_TRUNC(1 hour, @timestamp)"
    (names, _, rows, _, found, partial), first = run_esql((catalog, conn), query, True, StopAfter(4, slice_rows=256))
    assert ">= :a" in first and partial
    full = {r[1]: r[0] for r in run_esql((catalog, conn), query, False)[0][2]}
    got = {r[1]: r[0] for r in rows}
    assert sum(got.values()) == found < N
    assert got[None] == full[None]  # the rows without a time are read first
    times = sorted(k for k in got if k is not None)
    assert times == sorted(k for k in full if k is not None)[:len(times)]  # the earliest buckets
    assert all(got[k] == full[k] for k in times[:-1]) and got[times[-1]] <= full[times[-1]]


class _WriteDuringScan(Control):
    """A control that indexes one more document (through the API, on the server's loop) in
    the middle of the scan."""

    def __init__(self, loop: asyncio.AbstractEventLoop, es: AsyncElasticsearch) -> None:
        super().__init__(slice_rows=256, adaptive=False)
        self.loop, self.es, self.calls = loop, es, 0

    def proceed(self) -> bool:
        self.calls += 1
        if self.calls == 3:
            asyncio.run_coroutine_threadsafe(
                self.es.index(index="logs", document={"@timestamp": 4 * HOUR}, refresh=True), self.loop).result()
        return super().proceed()


async def test_a_write_during_the_scan_is_not_seen(store: Any, es: AsyncElasticsearch, settings: Settings) -> None:
    catalog, conn = store
    query = "FROM logs | STATS c = COUNT(*) BY h = DATE_TRUNC(1 hour, @timestamp)"
    before, _ = run_esql((catalog, conn), query, False)
    control = _WriteDuringScan(asyncio.get_running_loop(), es)

    def run() -> tuple[Any, str]:
        own = query_connection(settings.db_path)
        try:
            return run_esql((catalog, own), query, True, control)
        finally:
            own.close()

    during, first = await asyncio.to_thread(run)
    assert ">= :a" in first and control.calls > 3
    assert during == before and during[4] == N
    after, _ = run_esql((catalog, conn), query, True)
    assert after[4] == N + 1 and after != before
