"""Query worker processes: each running query's pipeline gets a process of its own.

Why processes: a query pipeline is Python work, and Python threads share one interpreter
lock. Four heavy queries on threads ran three times slower than one after another (every
row SQLite returns hands the lock over), and made the event loop wait for it, so polling
lagged. In processes they use every core and the server's event loop stays free.

A worker is forked from a ``forkserver`` that has already imported the query engine, so
one starts in milliseconds; workers are started on first use and then reused. Each has a
pipe and a small shared-memory array that holds its current query's ``Control`` state
(stop, cancel, progress), so watching a query costs no messages.

No worker outlives the server: on Linux the kernel kills the forkserver when the server
exits and each worker when the forkserver does (``die_with_parent``), even a worker that
is stopped or deep in one C call; everywhere, a worker that sees EOF on its pipe (idle, or
between slices) exits, and the forkserver exits once no worker is left.

Memory: each query gets a ``Breaker`` with the configured limit, which the operators that
hold rows charge (429 ``circuit_breaking_exception`` past it; the worker carries on). The
result rows are charged too, as they all end up in the server. Under that, the worker's
data segment is capped (``RLIMIT_DATA``) at 1.5 times the limit plus room for SQLite's
cache and the interpreter (the estimates were measured within 0.8 to 1.5 times what the
rows really take), so an estimate that is wrong ends in a ``MemoryError``, answered with
the same 429, never in the host running out; the worker then exits and a fresh one
replaces it.

The protocol, parent -> worker: ``(job, db_path, pause_s)`` (see ``pack``) to run a job, ``None`` to exit.
Worker -> parent, per job: ``("frame", frame)``, then ``("rows", [...])`` batches, then
``("end", frame)``; or, at any point, ``("error", status, error)``, ``("cancelled",)`` or
``("failed", summary, traceback)``; ``("error", status, error, "exiting")`` when the worker
exits after it (it ran out of memory). The job is pickled: it must carry everything it needs.
A failure is logged by the parent, with the worker's traceback and an error id; the client
gets only the id (``InternalError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import multiprocessing.forkserver
import os
import resource
import signal
import sqlite3
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator, MutableSequence, Sequence

import structlog

from ..errors import InternalError, ServiceError
from ..query.breaker import Breaker, CircuitBreakingError, Reservation, row_bytes
from ..query.control import STATE_FIELDS, Cancelled, Control
from ..runtime import FORKSERVER_PARENT_ENV, die_with_parent, tune_gc
from ..store.db import query_connection

if TYPE_CHECKING:
    from .runner import Result

log = structlog.get_logger(__name__)
ROW_BATCH = 1000
BATCH_BYTES = 4 << 20  # a batch of long rows is sent before it has ROW_BATCH rows
MEMORY_ROOM = 256 << 20  # beyond 1.5 times the breaker's limit: SQLite's page cache, the interpreter
EXITING = "exiting"

_context = multiprocessing.get_context("forkserver")
_PRELOAD = ["service.core.forkserver", __name__]  # then the languages' modules (``WorkerPool``)
_context.set_forkserver_preload(_PRELOAD)


class WorkerDied(ServiceError):
    status = 500
    type = "exception"


# --- in the worker process ----------------------------------------------------------------

def _serve(conn: Connection, state: MutableSequence[int], memory_limit: int) -> None:
    from . import forkserver  # imported by the forkserver already: this is its pid
    die_with_parent(forkserver.PID)
    # The parent decides when queries end: a Ctrl-C or a SIGTERM sent to the whole process
    # group must let it stop them and store what they have.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    tune_gc()
    _yield_cpu()
    ceiling = _cap_memory(memory_limit)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:  # the server closes the pool
            return
        job, db_path, pause_s = message
        control = _WorkerControl(conn, state)
        control.pause_s = pause_s
        control.breaker = Breaker(memory_limit)
        try:
            if not _run(conn, job, db_path, control, ceiling):
                return  # after a MemoryError a fresh process is safer than this one
        except (BrokenPipeError, ConnectionResetError):
            return


WORKER_NICENESS = 5


def _yield_cpu() -> None:
    """Run below the service process: when queries take every core, the event loop still gets
    one at once, so status polls, stops and ``_bulk`` acknowledgements do not wait behind
    them (Elasticsearch keeps its search pool apart from its transport threads the same way).
    The queries lose nothing when the service is idle."""
    with contextlib.suppress(OSError):
        os.nice(WORKER_NICENESS)


def _cap_memory(limit: int) -> int:
    """Cap this process's data segment at 1.5 times the breaker's ``limit`` plus room over
    what it holds now; the cap, or -1 when there is none (no limit, or a platform without
    RLIMIT_DATA)."""
    if limit < 0:
        return -1
    try:
        with open("/proc/self/status") as status:
            data_kb = next(int(line.split()[1]) for line in status if line.startswith("VmData:"))
        _, hard = resource.getrlimit(resource.RLIMIT_DATA)
        ceiling = data_kb * 1024 + limit * 3 // 2 + MEMORY_ROOM
        if hard != resource.RLIM_INFINITY:
            ceiling = min(ceiling, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (ceiling, hard))
    except (OSError, ValueError, StopIteration, AttributeError):
        return -1
    return ceiling


class _WorkerControl(Control):
    """Also ends the query when the server is gone (or closing the worker): during a job
    the server sends nothing, so anything readable on the pipe, EOF included, means that."""

    def __init__(self, conn: Connection, state: MutableSequence[int]) -> None:
        super().__init__(state=state)
        self.conn = conn

    def publish_preview(self, request: int, rows: list[list[Any]]) -> None:
        self.conn.send(("preview", request, rows))

    def check(self) -> None:
        if not self.cancelled and self.conn.poll():
            self.cancel("the server exited")
        super().check()


def _run(conn: Connection, job: Any, db_path: Path, control: Control, ceiling: int) -> bool:
    """Run ``job`` and send its outcome; False when it ran out of memory."""
    try:
        _stream(conn, job, db_path, control)
        return True
    except MemoryError:
        pass  # answered below, out of this handler: its traceback holds what the query allocated
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    log.warning("query_out_of_memory", limit=ceiling, peak_rss=peak, estimated=control.breaker.used)
    conn.send(("error", 429, CircuitBreakingError.out_of_memory(peak, ceiling).to_dict(), EXITING))
    return False


def _batches(rows: Any, breaker: Breaker) -> Any:
    """The result rows in batches of ROW_BATCH rows or about BATCH_BYTES, every one charged
    to ``breaker`` for good: the whole result ends up in the server's memory."""
    reservation = Reservation(breaker)
    batch: list[Any] = []
    size = 0
    for row in rows:
        batch.append(row)
        size += row_bytes(row)
        if len(batch) == ROW_BATCH or size - reservation.bytes >= BATCH_BYTES:
            reservation.hold(size)
            yield batch
            batch = []
    if batch:
        reservation.hold(size)
        yield batch


def _stream(conn: Connection, job: Any, db_path: Path, control: Control) -> None:
    db = None
    try:
        started = time.perf_counter()
        db = query_connection(db_path)
        db.set_progress_handler(control.interrupted, 10_000)
        result: Result = job.run(db, control)
        conn.send(("frame", job.frame(result, 0)))
        for batch in _batches(result.rows, control.breaker):
            conn.send(("rows", batch))
        # the rows are computed as they are read: only now is the run's time known (an SML
        # task's executionCost.totalMs is this one)
        conn.send(("end", job.frame(result, int((time.perf_counter() - started) * 1000))))
    except Cancelled:
        conn.send(("cancelled",))
    except ServiceError as exc:
        conn.send(("error", exc.status, exc.to_dict()))
    except MemoryError:
        raise
    except sqlite3.OperationalError as exc:
        if control.cancelled:  # the progress handler interrupted the statement
            conn.send(("cancelled",))
        else:
            _send_failure(conn, exc)
    except Exception as exc:  # noqa: BLE001 - a query bug must reach the parent, which logs it
        _send_failure(conn, exc)
    finally:
        if db is not None:
            db.close()


def _send_failure(conn: Connection, exc: Exception) -> None:
    conn.send(("failed", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


# --- in the server --------------------------------------------------------------------------

class Stream:
    """A job's result as the parent sees it: ``frame`` (final once ``rows`` is exhausted)
    and ``rows``, read from the worker batch by batch. Blocking: use it off the event loop."""

    def __init__(self, worker: Worker, control: Control) -> None:
        self.worker = worker
        self.control = control
        self.frame: dict[str, Any] = {}
        self.finished = False
        self._receive()  # the first frame, or the query's error

    def _receive(self) -> list[list[Any]] | None:
        """The next batch of rows, or None at the end; raises the query's error. Previews
        are handed to the control on the way."""
        while True:
            try:
                message = self.worker.conn.recv()
            except (EOFError, OSError):
                self.finished = True
                self.worker.broken = True
                if self.control.cancelled:  # killed for not ending a cancelled query in time
                    raise Cancelled(self.control.cancel_reason or "cancelled") from None
                raise WorkerDied("the query worker process exited unexpectedly") from None
            if message[0] != "preview":
                break
            self.control.previewed(message[1], message[2])
        kind = message[0]
        if kind == "rows":
            return message[1]
        self.finished = kind != "frame"
        if kind in ("frame", "end"):
            self.frame = message[1]
            return None
        if kind == "cancelled":
            raise Cancelled(self.control.cancel_reason or "cancelled")
        if kind == "error":
            if message[3:] == (EXITING,):
                self.worker.broken = True
            raise ServiceError.from_dict(message[2], message[1])
        error = InternalError()
        log.error("query_failed", error_id=error.error_id, error=message[1], traceback=message[2])
        raise error

    @property
    def batches(self) -> Iterator[list[list[Any]]]:
        """The rows, in the batches the worker sent."""
        while not self.finished:
            batch = self._receive()
            if batch:
                yield batch

    @property
    def rows(self) -> Iterator[list[Any]]:
        for batch in self.batches:
            yield from batch

    def drain(self) -> None:
        """Read to the end, for a consumer that stopped early: the worker is then free."""
        if self.finished:
            return
        self.control.cancel(self.control.cancel_reason or "the result was abandoned")
        try:
            while not self.finished:
                self._receive()
        except ServiceError:
            pass


def pack(job: Any, db_path: Path, control: Control) -> bytes:
    """The message that runs ``job``. Pickle it on the event loop's thread: the job may
    refer to the catalog, which only that thread changes."""
    return bytes(ForkingPickler.dumps((job, db_path, control.pause_s)))


def ensure_forkserver() -> None:
    """Start the workers' forkserver unless it is running. Call it from a thread that lives
    as long as the process (the event loop's): on Linux the forkserver dies with the
    *thread* that started it, not only with the process."""
    os.environ[FORKSERVER_PARENT_ENV] = str(os.getpid())
    multiprocessing.forkserver.ensure_running()


class Worker:
    def __init__(self, memory_limit: int = -1) -> None:
        ensure_forkserver()  # a no-op when the pool started it, as it should, on the loop's thread
        self.state = _context.RawArray("q", STATE_FIELDS)
        self.conn, child = _context.Pipe()
        self.process = _context.Process(target=_serve, args=(child, self.state, memory_limit), name="esquire-query",
                                        daemon=True)
        self.process.start()
        child.close()
        self.broken = False

    @property
    def usable(self) -> bool:
        return not self.broken and self.process.is_alive()

    def start(self, job: bytes, control: Control) -> Stream:
        """Send ``job`` (from ``pack``) to the worker; ``control`` must be attached to
        ``state`` already (on the event loop's thread, where stop and cancel are called)."""
        self.conn.send_bytes(job)
        return Stream(self, control)

    def kill(self) -> None:
        self.broken = True
        self.process.kill()

    def close(self, timeout_s: float = 2.0) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.process.join(timeout_s)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


class WorkerPool:
    """Up to ``size`` workers, started on demand; ``acquire`` waits for a free one. Each
    query's rows may hold ``memory_limit`` bytes (-1: no limit). The forkserver preloads the
    ``preload`` modules (the languages' engines) once it starts, which the first pool does."""

    def __init__(self, size: int, memory_limit: int = -1, preload: Sequence[str] = ()) -> None:
        self.memory_limit = memory_limit
        _context.set_forkserver_preload([*_PRELOAD, *preload])  # no effect once the forkserver runs
        self._free = asyncio.Semaphore(size)
        self._idle: list[Worker] = []
        self._all: set[Worker] = set()
        self._warming: asyncio.Task[None] | None = None

    def warm_up(self) -> None:
        """Start one worker in the background (the first also starts the forkserver,
        about 0.3 s), so that the first query does not wait for it."""
        async def start() -> None:
            worker = await self.acquire()
            self.release(worker)
        self._warming = asyncio.create_task(start())

    async def acquire(self) -> Worker:
        await self._free.acquire()
        try:
            while self._idle:
                worker = self._idle.pop()
                if worker.usable:
                    return worker
                self._all.discard(worker)
                await asyncio.to_thread(worker.close)
            ensure_forkserver()
            worker = await asyncio.to_thread(Worker, self.memory_limit)
        except BaseException:
            self._free.release()
            raise
        self._all.add(worker)
        return worker

    def release(self, worker: Worker) -> None:
        self._idle.append(worker)
        self._free.release()

    async def close(self) -> None:
        if self._warming is not None:
            await asyncio.gather(self._warming, return_exceptions=True)
        workers, self._idle = list(self._all), []
        self._all.clear()
        await asyncio.gather(*(asyncio.to_thread(w.close) for w in workers))
