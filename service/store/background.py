"""Background tasks: every statement on ``background_tasks`` and ``background_task_logs``.

A task is a stored search (``searches``, whose expiry the reaper follows) plus this row:
its owner, state and times. State changes are guarded statements (``WHERE state IN``);
deleting the search (delete, reaper) deletes the task and its log lines with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from ..errors import Rejected
from .db import Database
from .searches import ASYNC_SEARCH_INDEX

UNFINISHED = ("PENDING", "RUNNING")
INTERRUPTED = {"type": "node_closed_exception",
               "reason": "the service restarted while this task was running; the results are partial"}


@dataclass
class StoredTask:
    id: str
    owner: str
    state: str
    created_ms: int
    started_ms: int | None
    finished_ms: int | None
    expires_ms: int | None  # None while unfinished
    partial: bool
    row_count: int
    progress: float
    request: dict[str, Any]
    error: dict[str, Any] | None


@dataclass(frozen=True)
class LogLine:
    ts_ms: int
    level: str  # DEBUG | INFO | WARN | ERROR
    message: str
    command: int | None = None


_COLUMNS = ("b.id, b.owner, b.state, b.created_ms, b.started_ms, b.finished_ms, s.expires_ms, b.partial, "
            "b.row_count, b.progress, b.request, b.error")
_JOIN = "background_tasks b JOIN searches s ON s.id = b.id"


def _load(row: Any) -> StoredTask:
    finished = row[2] not in UNFINISHED
    return StoredTask(row[0], row[1], row[2], row[3], row[4], row[5], row[6] if finished else None, bool(row[7]),
                      row[8], row[9], orjson.loads(row[10]), orjson.loads(row[11]) if row[11] else None)


class TooManyTasks(Rejected):
    type = "rejected_execution_exception"


class BackgroundStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, task_id: str, owner: str, created_ms: int, keep_alive_ms: int,
                     request: dict[str, Any], max_tasks: int, lines: list[LogLine]) -> None:
        """A new PENDING task of the stored search ``task_id``, with its first log lines,
        unless ``owner`` already has ``max_tasks`` live tasks (``TooManyTasks``, 429)."""
        async with self.db.write(indices=[ASYNC_SEARCH_INDEX]) as conn:
            cur = await conn.execute(
                "INSERT INTO background_tasks (id, owner, state, created_ms, keep_alive_ms, request) "
                f"SELECT ?, ?, 'PENDING', ?, ?, ? WHERE (SELECT count(*) FROM {_JOIN} "
                "WHERE b.owner = ? AND s.expires_ms > ?) < ?",
                (task_id, owner, created_ms, keep_alive_ms, orjson.dumps(request), owner, created_ms, max_tasks))
            if cur.rowcount == 0:
                raise TooManyTasks(f"rejected execution of background task: user [{owner}] already has [{max_tasks}] "
                                   "stored tasks, the most [sme.core.async_requests.max_tasks_per_user] allows; "
                                   "delete some or let them expire")
            await _append(conn, task_id, lines)

    async def start(self, task_id: str, started_ms: int) -> bool:
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            cur = await conn.execute("UPDATE background_tasks SET state = 'RUNNING', started_ms = ? "
                                     "WHERE id = ? AND state = 'PENDING'", (started_ms, task_id))
            return cur.rowcount == 1

    async def finish(self, task_id: str, state: str, finished_ms: int, partial: bool, row_count: int,
                     progress: float, error: dict[str, Any] | None, lines: list[LogLine]) -> bool:
        """The final state, written once, with the last log lines; the search now expires
        ``keep_alive_ms`` after ``finished_ms``. False if the task had finished already."""
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            async with conn.execute(
                    "UPDATE background_tasks SET state = ?, finished_ms = ?, partial = ?, row_count = ?, progress = ?, "
                    "error = ? WHERE id = ? AND state IN ('PENDING', 'RUNNING') RETURNING keep_alive_ms",
                    (state, finished_ms, int(partial), row_count, progress,
                     orjson.dumps(error) if error else None, task_id)) as cur:
                found = await cur.fetchone()
            if found is None:
                return False
            await conn.execute("UPDATE searches SET expires_ms = ? WHERE id = ?",
                               (min(finished_ms + found[0], 2**62), task_id))
            await _append(conn, task_id, lines)
            return True

    async def log(self, task_id: str, lines: list[LogLine]) -> None:
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            await _append(conn, task_id, lines)

    async def get(self, task_id: str, owner: str, now_ms: int) -> StoredTask | None:
        """The owner's task, unless it does not exist, is another's or has expired."""
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_COLUMNS} FROM {_JOIN} WHERE b.id = ? AND b.owner = ? "
                                    "AND s.expires_ms > ?", (task_id, owner, now_ms)) as cur:
                row = await cur.fetchone()
        return _load(row) if row else None

    async def list(self, owner: str, now_ms: int) -> list[StoredTask]:
        """The owner's live tasks, newest first."""
        async with self.db.read() as conn:
            async with conn.execute(f"SELECT {_COLUMNS} FROM {_JOIN} WHERE b.owner = ? AND s.expires_ms > ? "
                                    "ORDER BY b.created_ms DESC, b.rowid DESC", (owner, now_ms)) as cur:
                return [_load(row) for row in await cur.fetchall()]

    async def logs(self, task_id: str) -> list[LogLine]:
        async with self.db.read() as conn:
            async with conn.execute("SELECT ts_ms, level, message, command FROM background_task_logs "
                                    "WHERE task_id = ? ORDER BY seq", (task_id,)) as cur:
                return [LogLine(*row) for row in await cur.fetchall()]

    async def finish_interrupted(self, now_ms: int) -> int:
        """At start-up: tasks a previous process left unfinished are FAILED, partial, with an
        error saying why; the rows they had stored are kept."""
        async with self.db.write(grows=False, indices=[ASYNC_SEARCH_INDEX]) as conn:
            async with conn.execute("SELECT id FROM background_tasks WHERE state IN ('PENDING', 'RUNNING')") as cur:
                ids = [row[0] for row in await cur.fetchall()]
        for task_id in ids:
            rows = await self._stored_rows(task_id)
            line = LogLine(now_ms, "ERROR", f"task finished: FAILED, {rows} rows: {INTERRUPTED['reason']}")
            await self.finish(task_id, "FAILED", now_ms, True, rows, 0.0, INTERRUPTED, [line])
        return len(ids)

    async def _stored_rows(self, task_id: str) -> int:
        async with self.db.read() as conn:
            async with conn.execute("SELECT count(*) FROM search_rows WHERE search_id = ?", (task_id,)) as cur:
                (count,) = await cur.fetchone()  # type: ignore[misc]
        return count


async def _append(conn: Any, task_id: str, lines: list[LogLine]) -> None:
    """Log lines after the task's last, numbered in order (inside the caller's transaction);
    none for a task no longer stored (deleted while a stop or an export was logging)."""
    async with conn.execute("SELECT coalesce(max(seq), -1) + 1 FROM background_task_logs WHERE task_id = ?",
                            (task_id,)) as cur:
        (seq,) = await cur.fetchone()
    await conn.executemany("INSERT INTO background_task_logs (task_id, seq, ts_ms, level, message, command) "
                           "SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM background_tasks WHERE id = ?)",
                           [(task_id, seq + i, line.ts_ms, line.level, line.message, line.command, task_id)
                            for i, line in enumerate(lines)])
