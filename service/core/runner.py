"""Runs queries, each in a worker process (``workers.py``), at most ``max_running`` at
once: the rest wait, phase ``queued``.

A query is any picklable object with the ``Job`` shape; the runner knows no query
language. The sink consumes the job's ``Stream`` (frame and rows) on a thread of this
process, so it may block, e.g. to write rows to SQLite through the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Protocol

import structlog

from ..errors import Rejected
from ..query.control import Cancelled, Control
from .languages import Languages
from .workers import Stream, Worker, WorkerPool, pack

log = structlog.get_logger(__name__)


class Result(Protocol):
    """What a job's ``run`` returns, in the worker: its rows, streamed to the server, and
    whatever its ``frame`` reads (the job's own type: ``Result`` declares only the rows)."""

    @property
    def rows(self) -> Iterable[list[Any]]: ...


class Job(Protocol):
    kind: str          # "esql"
    action: str        # the task action, e.g. "indices:data/read/esql"
    description: str   # the query text, shown in task listings
    target: str | None  # the indices named beside the query (EQL's path), None when it names them

    def run(self, conn: sqlite3.Connection, control: Control) -> Result:
        """Start the query (in the worker); the returned result streams its ``rows``."""

    def frame(self, result: Any, took_ms: int) -> dict[str, Any]:
        """Everything of the response but the rows (JSON-able), as known at this point."""


Sink = Callable[[Stream], Any]


class Runner:
    CANCEL_GRACE_S = 5.0  # a worker that has not ended a cancelled query by then is killed
    SHUTDOWN_KILL_S = 1.0  # the same at shutdown, once the grace is over
    SHUTDOWN_REASON = "the service is shutting down"

    def __init__(self, db_path: Path, max_running: int, max_queued: int = 1000, memory_limit: int = -1,
                 languages: Languages | None = None) -> None:
        self.db_path = db_path
        self.languages = languages = languages or Languages()
        # memory_limit: bytes per query, -1 for none; the workers start with the languages loaded
        self.pool = WorkerPool(max_running, memory_limit, languages.modules)
        self.max_running = max_running
        self.max_queued = max_queued
        self.queued = 0  # runs waiting for a worker
        # One thread per running query consumes its stream; a pool of our own, so that
        # neither starves the event loop's default executor.
        self._threads = ThreadPoolExecutor(max_running, thread_name_prefix="esquire-sink")
        self._running: dict[asyncio.Future[Any], tuple[Worker, Control]] = {}
        self._draining = False

    async def run(self, job: Job, control: Control, sink: Sink) -> tuple[Any, int]:
        """Run ``job`` and feed its stream to ``sink``; returns the sink's value and the
        time taken in ms. Raises the query's error, or ``Cancelled``."""
        self._refuse_if_draining(control)
        self.admit(job)
        message = pack(job, self.db_path, control)
        self.queued += 1
        try:
            worker = await self.pool.acquire()
        finally:
            self.queued -= 1
        try:
            self._refuse_if_draining(control)  # it was queued while the shutdown began
        except Cancelled:
            self.pool.release(worker)
            raise
        control.attach(worker.state)  # here, not on the sink's thread: a stop must not slip between
        started = time.perf_counter()
        context = contextvars.copy_context()  # the request's log context, on the sink's thread
        work = asyncio.get_running_loop().run_in_executor(
            self._threads, context.run, self._work, worker, message, control, sink)
        self._running[work] = worker, control
        work.add_done_callback(lambda _: self._release(work, worker, control))
        control.on_cancel = self._enforcer(worker, work)
        try:
            value = await asyncio.shield(work)
        except asyncio.CancelledError:
            control.cancel("the request was closed")
            raise
        except Cancelled as exc:
            log.info("query cancelled", action=job.action, reason=exc.cancel_reason, rows_scanned=control.rows_scanned)
            raise
        took = int((time.perf_counter() - started) * 1000)
        log.info("query finished", action=job.action, took_ms=took, rows_scanned=control.rows_scanned,
                 partial=control.cut_short)
        return value, took

    def admit(self, job: Job) -> None:
        """Refuse ``job`` with Elasticsearch's 429 when ``max_queued`` runs already wait for a
        worker, as a full thread-pool queue refuses a task (nothing is queued without bound)."""
        if self.queued >= self.max_queued:
            raise Rejected(f"rejected execution of [{job.action}] on the query queue [queue capacity = "
                           f"{self.max_queued}, queued queries = {self.queued}, running queries = "
                           f"{self.max_running}]")

    def _refuse_if_draining(self, control: Control) -> None:
        if self._draining:
            control.cancel(self.SHUTDOWN_REASON)
        control.check()

    def _work(self, worker: Worker, message: bytes, control: Control, sink: Sink) -> Any:
        stream = worker.start(message, control)
        try:
            return sink(stream)
        finally:
            stream.drain()

    def _enforcer(self, worker: Worker, work: asyncio.Future[Any]) -> Callable[[], None]:
        """A cancel is cooperative (the worker checks between slices); a worker stuck in one
        long step past ``CANCEL_GRACE_S`` is killed, and its query ends cancelled."""
        loop = asyncio.get_running_loop()

        def kill() -> None:
            if not work.done():
                worker.kill()  # first: nothing, not even a failing log line, may keep it alive
                log.warning("query_worker_killed", pid=worker.process.pid, reason="ignored a cancel")

        def enforce() -> None:  # from any thread
            with contextlib.suppress(RuntimeError):  # the loop is closed: so is everything
                loop.call_soon_threadsafe(loop.call_later, self.CANCEL_GRACE_S, kill)
        return enforce

    def _release(self, work: asyncio.Future[Any], worker: Worker, control: Control) -> None:
        del self._running[work]
        control.on_cancel = None
        control.detach()
        control.phase = "done"
        self.pool.release(worker)

    async def drain(self, grace_s: float) -> None:
        """At shutdown: give the running queries ``grace_s`` to end, then cancel the rest;
        a worker that has not ended its cancelled query ``SHUTDOWN_KILL_S`` later is killed,
        which ends its query cancelled too. Queries that start from now on are refused."""
        self._draining = True
        running = dict(self._running)
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=grace_s)
        for work in pending:
            running[work][1].cancel(self.SHUTDOWN_REASON)
        if pending:
            _, pending = await asyncio.wait(pending, timeout=self.SHUTDOWN_KILL_S)
        for work in pending:
            worker = running[work][0]
            log.warning("query_worker_killed", pid=worker.process.pid, reason="ignored a cancel at shutdown")
            worker.kill()
        if pending:
            await asyncio.wait(pending, timeout=self.SHUTDOWN_KILL_S)

    async def close(self) -> None:
        await self.pool.close()
        self._threads.shutdown(wait=False)
