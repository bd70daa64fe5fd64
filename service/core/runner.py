"""Runs queries: each on a worker thread with its own read connection, at most
``max_running`` at once (the rest wait, phase ``queued``).

A query is any object with the ``Job`` shape; the runner knows no query language. The
pipeline is Python work, so it runs off the event loop: ingestion and polling stay
responsive while queries run. The sink consumes the job's rows on the same thread.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from typing import Any, Callable, Iterable, Protocol

import structlog

from ..query.control import Cancelled, Control
from ..store.db import Database

log = structlog.get_logger(__name__)


class Outcome(Protocol):
    names: list[str]
    types: list[str]
    rows: Iterable[list[Any]]


class Job(Protocol):
    kind: str          # "esql"
    action: str        # the task action, e.g. "indices:data/read/esql"
    description: str   # the query text, shown in task listings

    def run(self, conn: sqlite3.Connection, control: Control) -> Any:
        """Start the query on this thread; the returned result streams its rows."""

    def frame(self, result: Any, took_ms: int) -> dict[str, Any]:
        """Everything of the response but the rows (JSON-able), as known at this point."""


Sink = Callable[[Any], Any]


class Runner:
    def __init__(self, db: Database, max_running: int) -> None:
        self.db = db
        self._slots = asyncio.Semaphore(max_running)

    async def run(self, job: Job, control: Control, sink: Sink) -> tuple[Any, int]:
        """Run ``job`` and feed its result to ``sink``; returns the sink's value and the
        time taken in ms. Raises the query's error, or ``Cancelled``."""
        async with self._slots:
            started = time.perf_counter()
            try:
                value = await asyncio.to_thread(self._work, job, control, sink)
            except asyncio.CancelledError:
                control.cancel("the request was closed")
                raise
            took = int((time.perf_counter() - started) * 1000)
            log.info("query finished", action=job.action, took_ms=took, rows_scanned=control.rows_scanned,
                     partial=control.cut_short)
            return value, took

    def _work(self, job: Job, control: Control, sink: Sink) -> Any:
        control.check()
        conn = self.db.query_connection()
        control.connection = conn
        try:
            return sink(job.run(conn, control))
        except sqlite3.OperationalError:
            if control.cancelled:
                raise Cancelled(control.cancel_reason or "cancelled") from None
            raise
        finally:
            control.connection = None
            conn.close()
            control.phase = "done"
