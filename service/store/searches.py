"""Stored async searches: every statement on the ``searches`` and ``search_rows`` tables.

What is stored is bounded: at most ``max_searches`` live searches and ``max_bytes`` of result
rows among them. Beyond either a new search is refused (429) and the stored ones are kept;
a running search whose rows would pass the byte cap stores what fits and no more.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable, Iterator

import orjson

from ..errors import Rejected, ServiceError
from .db import Database, query_connection
from .disk import FloodStageBlock

# Where Elasticsearch keeps async results: the index its flood-stage block names.
ASYNC_SEARCH_INDEX = ".async-search"
SCAN_CACHE_KIB = 2048  # the page cache of a one-pass read (read_rows)

RESTART_FAILURE = {"type": "node_closed_exception",
                   "reason": "the service restarted while this query was running; the results are partial"}


@dataclass
class StoredSearch:
    id: str
    kind: str
    state: str
    keep_on_completion: bool
    created_ms: int
    expires_ms: int
    headers: dict[str, str]
    response: dict[str, Any] | None
    error: dict[str, Any] | None
    row_count: int
    owner: str | None = None  # who submitted it (security on), else None
    description: str | None = None  # the query text (None: stored before it was kept)
    target: str | None = None  # the index named beside the query (EQL's path), else None
    finished_ms: int | None = None  # when its end was stored; None while it runs


_COLUMNS = ("id, kind, state, keep_on_completion, created_ms, expires_ms, headers, response, error, row_count, owner, "
            "description, target, finished_ms")


def _load(row: Any) -> StoredSearch:
    return StoredSearch(row[0], row[1], row[2], bool(row[3]), row[4], row[5], orjson.loads(row[6]),
                        orjson.loads(row[7]) if row[7] is not None else None,
                        orjson.loads(row[8]) if row[8] is not None else None, *row[9:])


class StoreFull(Rejected):
    """No room for one more stored search. Elasticsearch's answer when a bounded resource
    refuses new work (a full queue) is 429 ``es_rejected_execution_exception``: the closest to
    "refuse new, keep old" (a circuit breaker is about memory a request would take)."""


class ResponseTooLarge(ServiceError):
    """A running search's rows would pass the byte cap: those that fit (``stored``) are kept.
    Worded as Elasticsearch words an async response past ``search.max_async_search_response_size``."""

    status = 400
    type = "illegal_argument_exception"

    def __init__(self, stored: int, limit: int, others: int) -> None:
        shared = f" Other stored searches take [{others}] bytes of it." if others else ""
        super().__init__(f"Can't store an async search response larger than [{limit}] bytes. This limit can be set "
                         f"by changing the [max_stored_search_bytes] setting.{shared}")
        self.stored = stored


class SearchStore:
    def __init__(self, db: Database, *, max_searches: int = 1000, max_bytes: int = 1 << 30) -> None:
        self.db = db
        self.max_searches = max_searches
        self.max_bytes = max_bytes

    async def check_room(self, now_ms: int) -> None:
        """Raise what ``create`` would raise now: the store is full, or the disk is."""
        if await self.db.flood_stage():
            raise FloodStageBlock([ASYNC_SEARCH_INDEX])
        async with self.db.read() as conn:
            count, size = await _live_totals(conn, now_ms)
        self._refuse_if_full(count, size)

    def _refuse_if_full(self, count: int, size: int) -> None:
        if count >= self.max_searches:
            raise StoreFull(f"rejected execution of async search: [{count}] async searches are stored, the most "
                            f"[max_stored_searches] allows; delete some (DELETE /_query/async/<id>) or let them expire")
        if size >= self.max_bytes:
            raise StoreFull(f"rejected execution of async search: stored async search results take [{size}] bytes, "
                            f"the most [max_stored_search_bytes] allows ([{self.max_bytes}]); delete some "
                            "(DELETE /_query/async/<id>) or let them expire")

    async def create(self, search_id: str, kind: str, keep_on_completion: bool, created_ms: int, expires_ms: int,
                     headers: dict[str, str], owner: str | None = None, description: str | None = None,
                     target: str | None = None) -> None:
        """Store a new running search, unless the store is full (``StoreFull``, 429) or the disk
        is (``FloodStageBlock``, 429); then nothing is stored."""
        async with self.db.write(indices=[ASYNC_SEARCH_INDEX]) as conn:
            cur = await conn.execute(
                f"INSERT INTO searches ({_COLUMNS}, bytes) "
                f"SELECT ?, ?, 'running', ?, ?, ?, ?, NULL, NULL, 0, ?, ?, ?, NULL, 0 "
                f"WHERE (SELECT count(*) FROM searches WHERE expires_ms > ?) < ? "
                f"AND (SELECT coalesce(sum(bytes), 0) FROM searches WHERE expires_ms > ?) < ?",
                (search_id, kind, int(keep_on_completion), created_ms, expires_ms, orjson.dumps(headers), owner,
                 description, target, created_ms, self.max_searches, created_ms, self.max_bytes))
            if cur.rowcount == 0:
                self._refuse_if_full(*await _live_totals(conn, created_ms))

    async def append_rows(self, search_id: str, first_seq: int, rows: list[list[Any]], now_ms: int) -> None:
        """Store the rows, in order, as far as the byte cap allows: past it, the rows that fit
        are stored and ``ResponseTooLarge`` says how many."""
        encoded = [orjson.dumps(r) for r in rows]
        sizes = list(itertools.accumulate(len(e) for e in encoded))
        async with self.db.write(indices=[ASYNC_SEARCH_INDEX]) as conn:
            async with conn.execute("SELECT coalesce(sum(bytes), 0), coalesce(sum(bytes) FILTER (WHERE id = ?), 0) "
                                    "FROM searches WHERE expires_ms > ?", (search_id, now_ms)) as cur:
                used, own = await cur.fetchone()  # type: ignore[misc]
            fit = bisect.bisect_right(sizes, self.max_bytes - used)
            if fit:
                await conn.executemany("INSERT INTO search_rows (search_id, seq, row) VALUES (?, ?, ?)",
                                       [(search_id, first_seq + i, e) for i, e in enumerate(encoded[:fit])])
                await conn.execute("UPDATE searches SET bytes = bytes + ? WHERE id = ?", (sizes[fit - 1], search_id))
        if fit < len(encoded):  # raised after the commit: the rows that fit stay stored
            raise ResponseTooLarge(fit, self.max_bytes - (used - own), used - own)

    async def finish(self, search_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None,
                     row_count: int, finished_ms: int | None = None) -> bool:
        """The final state, written once: False if the search was not running any more.
        Written in the flood stage too: a search must not stay running forever."""
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            cur = await conn.execute(
                "UPDATE searches SET state = ?, response = ?, error = ?, row_count = ?, finished_ms = ? "
                "WHERE id = ? AND state = 'running'",
                ("failed" if error is not None else "done", orjson.dumps(response) if response is not None else None,
                 orjson.dumps(error) if error is not None else None, row_count, finished_ms, search_id))
            return cur.rowcount == 1

    async def get(self, search_id: str, now_ms: int) -> StoredSearch | None:
        """The search, unless it does not exist or has expired (expiry is checked on every read)."""
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_COLUMNS} FROM searches WHERE id = ? AND expires_ms > ?",
                                    (search_id, now_ms)) as cur:
                row = await cur.fetchone()
        return _load(row) if row else None

    async def listed(self, owner: str | None, now_ms: int, limit: int) -> list[StoredSearch]:
        """The live stored searches that are not background tasks (those list themselves,
        ``BackgroundStore.list``), newest first, at most ``limit``: ``owner``'s, or everyone's
        when None (security off)."""
        mine = "" if owner is None else "AND owner = ? "
        async with self.db.read() as conn:
            async with conn.execute(
                    f"SELECT {_COLUMNS} FROM searches WHERE expires_ms > ? {mine}"
                    "AND id NOT IN (SELECT id FROM background_tasks) ORDER BY created_ms DESC, id LIMIT ?",
                    (now_ms, *(() if owner is None else (owner,)), limit)) as cur:
                return [_load(row) for row in await cur.fetchall()]

    async def rows(self, search_id: str, start: int, stop: int) -> list[list[Any]]:
        """Rows ``[start, stop)`` of a search, in order, read in one range scan of the primary
        key: clamped to the rows stored (so far, for a running search); empty when the range
        is, or when the search is not stored (never was, or was deleted)."""
        start = max(start, 0)
        if stop <= start:
            return []
        async with self.db.read() as conn:
            async with conn.execute("SELECT row FROM search_rows WHERE search_id = ? AND seq >= ? AND seq < ? "
                                    "ORDER BY seq", (search_id, start, stop)) as cur:
                return [orjson.loads(r[0]) for r in await cur.fetchall()]

    async def iter_rows(self, search_id: str, batch: int = 1000) -> AsyncIterator[list[list[Any]]]:
        """Every stored row of a search, in order, in lists of at most ``batch``: one short
        range read per list (a reader is borrowed only while it runs), so memory stays one
        batch whatever the size of the result."""
        seq = 0
        while True:
            async with self.db.read() as conn:
                async with conn.execute("SELECT seq, row FROM search_rows WHERE search_id = ? AND seq >= ? "
                                        "ORDER BY seq LIMIT ?", (search_id, seq, batch)) as cur:
                    fetched = await cur.fetchall()
            if not fetched:
                return
            yield [orjson.loads(r[1]) for r in fetched]
            if len(fetched) < batch:
                return
            seq = fetched[-1][0] + 1

    def read_rows(self, search_id: str, count: int, batch: int = 1000) -> Iterator[list[bytes]]:
        """The first ``count`` stored rows of a search as their stored JSON text, in order, in
        lists of at most ``batch``: blocking, for a consumer on a worker thread (an export), so
        that no batch costs a hop through the event loop. Stops early when fewer are stored
        (the search was deleted mid-read).

        It reads on its own connection, opened on the consuming thread, with a small page
        cache: a scan reads each page once, and the shared readers' caches would otherwise
        grow the process by their full size. One short statement per list, so the read holds
        no snapshot that would keep the WAL from being checkpointed meanwhile."""
        conn = query_connection(self.db.path, cache_kib=SCAN_CACHE_KIB)
        try:
            seq, left = 0, count
            while left > 0:
                fetched = conn.execute("SELECT seq, row FROM search_rows WHERE search_id = ? AND seq >= ? "
                                       "ORDER BY seq LIMIT ?", (search_id, seq, min(batch, left))).fetchall()
                if not fetched:
                    return
                yield [r[1] for r in fetched]
                left -= len(fetched)
                seq = fetched[-1][0] + 1
        finally:
            conn.close()

    async def set_expiry(self, search_id: str, expires_ms: int) -> None:
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            await conn.execute("UPDATE searches SET expires_ms = ? WHERE id = ?", (expires_ms, search_id))

    async def delete(self, search_id: str) -> bool:
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            await conn.execute("DELETE FROM search_rows WHERE search_id = ?", (search_id,))
            cur = await conn.execute("DELETE FROM searches WHERE id = ?", (search_id,))
            return cur.rowcount == 1

    async def expired(self, now_ms: int, limit: int) -> list[str]:
        async with self.db.read() as conn:
            async with conn.execute("SELECT id FROM searches WHERE expires_ms <= ? LIMIT ?", (now_ms, limit)) as cur:
                return [r[0] for r in await cur.fetchall()]

    async def delete_many(self, ids: list[str]) -> None:
        marks = ", ".join("?" * len(ids))
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            await conn.execute(f"DELETE FROM search_rows WHERE search_id IN ({marks})", ids)
            await conn.execute(f"DELETE FROM searches WHERE id IN ({marks})", ids)

    async def set_frame(self, search_id: str, frame: dict[str, Any]) -> None:
        """The response frame (columns...) as soon as it is known, so rows stored before a
        crash can still be served."""
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            await conn.execute("UPDATE searches SET response = ? WHERE id = ? AND state = 'running'",
                               (orjson.dumps(frame), search_id))

    async def finish_interrupted(self, empty_frame: Callable[[str], dict[str, Any]] = lambda kind: {}) -> int:
        """At start-up: searches a previous process left running are finished, partial, with
        a failure saying why; the rows they had stored are kept. A search whose query had sent
        no frame gets ``empty_frame(kind)``, its language's (``Languages.interrupted_frame``)."""
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            async with conn.execute("SELECT id, kind, response, (SELECT count(*) FROM search_rows "
                                    "WHERE search_id = id) FROM searches WHERE state = 'running'") as cur:
                interrupted = await cur.fetchall()
            for search_id, kind, frame, rows in interrupted:
                response = {**(orjson.loads(frame) if frame else empty_frame(kind)), "is_partial": True,
                            "failures": [RESTART_FAILURE]}
                await conn.execute("UPDATE searches SET state = 'done', response = ?, row_count = ? WHERE id = ?",
                                   (orjson.dumps(response), rows, search_id))
            return len(interrupted)


async def _live_totals(conn: Any, now_ms: int) -> tuple[int, int]:
    """(searches, bytes of their rows) among the stored searches that have not expired."""
    async with conn.execute("SELECT count(*), coalesce(sum(bytes), 0) FROM searches WHERE expires_ms > ?",
                            (now_ms,)) as cur:
        count, size = await cur.fetchone()
    return count, size
