"""Stored async searches: every statement on the ``searches`` and ``search_rows`` tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from .db import Database

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


_COLUMNS = "id, kind, state, keep_on_completion, created_ms, expires_ms, headers, response, error, row_count"


def _load(row: Any) -> StoredSearch:
    return StoredSearch(row[0], row[1], row[2], bool(row[3]), row[4], row[5], orjson.loads(row[6]),
                        orjson.loads(row[7]) if row[7] is not None else None,
                        orjson.loads(row[8]) if row[8] is not None else None, row[9])


class SearchStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, search_id: str, kind: str, keep_on_completion: bool, created_ms: int, expires_ms: int,
                     headers: dict[str, str]) -> None:
        async with self.db.write() as conn:
            await conn.execute(f"INSERT INTO searches ({_COLUMNS}) VALUES (?, ?, 'running', ?, ?, ?, ?, NULL, NULL, 0)",
                               (search_id, kind, int(keep_on_completion), created_ms, expires_ms,
                                orjson.dumps(headers)))

    async def append_rows(self, search_id: str, first_seq: int, rows: Iterable[list[Any]]) -> None:
        async with self.db.write() as conn:
            await conn.executemany("INSERT INTO search_rows (search_id, seq, row) VALUES (?, ?, ?)",
                                   [(search_id, first_seq + i, orjson.dumps(r)) for i, r in enumerate(rows)])

    async def finish(self, search_id: str, response: dict[str, Any] | None, error: dict[str, Any] | None,
                     row_count: int) -> bool:
        """The final state, written once: False if the search was not running any more."""
        async with self.db.write() as conn:
            cur = await conn.execute(
                "UPDATE searches SET state = ?, response = ?, error = ?, row_count = ? WHERE id = ? AND state = 'running'",
                ("failed" if error is not None else "done", orjson.dumps(response) if response is not None else None,
                 orjson.dumps(error) if error is not None else None, row_count, search_id))
            return cur.rowcount == 1

    async def get(self, search_id: str, now_ms: int) -> StoredSearch | None:
        """The search, unless it does not exist or has expired (expiry is checked on every read)."""
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_COLUMNS} FROM searches WHERE id = ? AND expires_ms > ?",
                                    (search_id, now_ms)) as cur:
                row = await cur.fetchone()
        return _load(row) if row else None

    async def rows(self, search_id: str) -> list[list[Any]]:
        async with self.db.read() as conn:
            async with conn.execute("SELECT row FROM search_rows WHERE search_id = ? ORDER BY seq", (search_id,)) as cur:
                return [orjson.loads(r[0]) for r in await cur.fetchall()]

    async def set_expiry(self, search_id: str, expires_ms: int) -> None:
        async with self.db.write() as conn:
            await conn.execute("UPDATE searches SET expires_ms = ? WHERE id = ?", (expires_ms, search_id))

    async def delete(self, search_id: str) -> bool:
        async with self.db.write() as conn:
            await conn.execute("DELETE FROM search_rows WHERE search_id = ?", (search_id,))
            cur = await conn.execute("DELETE FROM searches WHERE id = ?", (search_id,))
            return cur.rowcount == 1

    async def expired(self, now_ms: int, limit: int) -> list[str]:
        async with self.db.read() as conn:
            async with conn.execute("SELECT id FROM searches WHERE expires_ms <= ? LIMIT ?", (now_ms, limit)) as cur:
                return [r[0] for r in await cur.fetchall()]

    async def delete_many(self, ids: list[str]) -> None:
        marks = ", ".join("?" * len(ids))
        async with self.db.write() as conn:
            await conn.execute(f"DELETE FROM search_rows WHERE search_id IN ({marks})", ids)
            await conn.execute(f"DELETE FROM searches WHERE id IN ({marks})", ids)

    async def set_frame(self, search_id: str, frame: dict[str, Any]) -> None:
        """The response frame (columns...) as soon as it is known, so rows stored before a
        crash can still be served."""
        async with self.db.write() as conn:
            await conn.execute("UPDATE searches SET response = ? WHERE id = ? AND state = 'running'",
                               (orjson.dumps(frame), search_id))

    async def finish_interrupted(self) -> int:
        """At start-up: searches a previous process left running are finished, partial, with
        a failure saying why; the rows they had stored are kept."""
        async with self.db.write() as conn:
            async with conn.execute("SELECT id, response, (SELECT count(*) FROM search_rows WHERE search_id = id) "
                                    "FROM searches WHERE state = 'running'") as cur:
                interrupted = await cur.fetchall()
            for search_id, frame, rows in interrupted:
                response = {**(orjson.loads(frame) if frame else {"columns": []}), "is_partial": True,
                            "failures": [RESTART_FAILURE]}
                await conn.execute("UPDATE searches SET state = 'done', response = ?, row_count = ? WHERE id = ?",
                                   (orjson.dumps(response), rows, search_id))
            return len(interrupted)
