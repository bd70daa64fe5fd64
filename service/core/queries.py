"""What every language's query handlers share: the synchronous query path and the options
of an async submit and get, with Elasticsearch's semantics and wording.

A synchronous query (``Queries.run``) is a task with a ``/compute`` child that carry the
request's headers, bound to the request's log context, cancelled when the client goes away.
Its rows stream to the caller batch by batch while the worker still produces them (a full
consumer holds the worker back), so a result of millions of rows is never held whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, AsyncIterator, Awaitable, Callable, Mapping

import structlog

from ..errors import ValidationError
from ..params import parse_bool, parse_time_ms
from .runner import Job, Runner, Sink
from .tasks import Task, TaskManager
from .workers import Stream

DEFAULT_KEEP_ALIVE_MS = 5 * 24 * 3600 * 1000
# A keep_alive is added to the clock and stored as a 64-bit integer: past this (146
# million years) it is as good as forever, and the sum can no longer overflow.
MAX_KEEP_ALIVE_MS = 2**62
MIN_KEEP_ALIVE_MS = 60_000  # where a language has a minimum (EQL), it is this one
DEFAULT_WAIT_MS = 1000
FOREVER_S = 1e9  # a wait of -1: until the query ends
DISCONNECT_POLL_S = 0.1
_HANDOFF_BATCHES = 4  # batches in flight between the worker's thread and the consumer


# --- async options ------------------------------------------------------------------------

def _given(sources: tuple[Mapping[str, Any], ...], name: str) -> Any:
    """The value of ``name`` in the first source that has it (None: not given)."""
    return next((source[name] for source in sources if name in source), None)


def time_value_text(ms: int) -> str:
    """A duration as Elasticsearch's ``TimeValue.toString()`` prints it: the largest unit it
    fills, one decimal at most (``30s``, ``1.5m``, ``-1``)."""
    if ms < 0:
        return str(ms)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{round(ms / size, 1):g}{unit}"
    return f"{ms}ms" if ms else "0s"


def _keep_alive_ms(raw: object, name: str = "keep_alive") -> int:
    return min(parse_time_ms(raw, name), MAX_KEEP_ALIVE_MS)


def _kept_ms(keep_alive_ms: int) -> int:
    return keep_alive_ms if keep_alive_ms > 0 else DEFAULT_KEEP_ALIVE_MS


def keep_alive_ms(raw: object, name: str = "keep_alive") -> int:
    """How long a ``keep_alive`` value (``5d``, ``0``, ``-1``) keeps a result: 0 or -1 is the
    default (5 days), a huge one is capped at ``MAX_KEEP_ALIVE_MS``."""
    return _kept_ms(_keep_alive_ms(raw, name))


@dataclass(frozen=True)
class SubmitOptions:
    """How an async submit waits and keeps its result."""

    wait_s: float | None  # how long the submit waits (FOREVER_S for -1; None: not given, no default)
    keep_alive_ms: int = DEFAULT_KEEP_ALIVE_MS  # from submission; the search is gone after it
    keep_on_completion: bool = False  # store the result even when it comes within the wait

    @classmethod
    def parse(cls, *sources: Mapping[str, Any], default_wait_ms: int | None = DEFAULT_WAIT_MS,
              min_keep_alive: bool = False) -> SubmitOptions:
        """The options from ``sources`` (a request's body, its query string...), the first
        that has a field winning. ``wait_for_completion_timeout`` -1 waits until the end;
        ``keep_alive`` 0 or -1 is the default (5 days), a huge one is capped at
        ``MAX_KEEP_ALIVE_MS``; with ``min_keep_alive`` one under a minute is refused, as
        EQL refuses it. Checked in that order, each with Elasticsearch's error."""
        wait = _given(sources, "wait_for_completion_timeout")
        wait_ms = parse_time_ms(wait, "wait_for_completion_timeout") if wait is not None else default_wait_ms
        keep_alive = _given(sources, "keep_alive")
        keep_alive_ms = _keep_alive_ms(keep_alive) if keep_alive is not None else DEFAULT_KEEP_ALIVE_MS
        if min_keep_alive and keep_alive_ms < MIN_KEEP_ALIVE_MS:
            raise ValidationError(f"[keep_alive] must be greater than 1 minute, got:{time_value_text(keep_alive_ms)}")
        keep = _given(sources, "keep_on_completion")
        return cls(wait_s=None if wait_ms is None else wait_ms / 1000 if wait_ms >= 0 else FOREVER_S,
                   keep_alive_ms=_kept_ms(keep_alive_ms),
                   keep_on_completion=parse_bool(keep, "keep_on_completion") if keep is not None else False)


@dataclass(frozen=True)
class GetOptions:
    """How a GET of an async search waits, and whether it extends the search's life."""

    wait_s: float = 0.0  # 0: answer at once (also for -1, as Elasticsearch)
    keep_alive_ms: int = 0  # > 0: the search now expires this long from now; else unchanged

    @classmethod
    def parse(cls, *sources: Mapping[str, Any]) -> GetOptions:
        wait = _given(sources, "wait_for_completion_timeout")
        wait_ms = parse_time_ms(wait, "wait_for_completion_timeout") if wait is not None else 0
        keep_alive = _given(sources, "keep_alive")
        return cls(wait_s=wait_ms / 1000 if wait_ms > 0 else 0,
                   keep_alive_ms=_keep_alive_ms(keep_alive) if keep_alive is not None else 0)


# --- the synchronous path -------------------------------------------------------------------

Batches = Callable[[], AsyncIterator[list[list[Any]]]]
ROW_BATCH = 1000
_END = object()


def in_batches(rows: list[list[Any]]) -> Batches:
    """Rows held in memory as ``Batches``: slices of at most ``ROW_BATCH``."""
    async def batches() -> AsyncIterator[list[list[Any]]]:
        for i in range(0, len(rows), ROW_BATCH):
            yield rows[i:i + ROW_BATCH]
    return batches


class _Handoff:
    """Hands a query's frame and row batches from the sink's thread to the event loop, at
    most ``_HANDOFF_BATCHES`` in flight: a consumer that falls behind holds the worker back."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[Any] = asyncio.Queue(_HANDOFF_BATCHES)
        self.abandoned = False

    def sink(self, stream: Stream) -> dict[str, Any]:
        """The runner's sink (on its thread): the first frame, the batches, then the end; the
        final frame is its value."""
        try:
            self._put(stream.frame)
            for batch in stream.batches:
                if self.abandoned:
                    break
                self._put(batch)
            return stream.frame
        finally:
            self._put(_END)

    def _put(self, item: Any) -> None:
        if not self.abandoned:
            asyncio.run_coroutine_threadsafe(self.queue.put(item), self.loop).result()

    async def get(self) -> Any:
        return await self.queue.get()

    def abandon(self) -> None:
        """The consumer reads no more: a sink waiting to hand a batch over is freed, and
        hands over nothing from now on (the runner then drains the worker)."""
        self.abandoned = True
        while not self.queue.empty():
            self.queue.get_nowait()


class StreamedRows:
    """A running query's rows, batch by batch as the worker sends them: one pass only
    (``replayable`` gives more). Exhausting them waits for the query's end, so its error, if
    any, is raised here and its frame is then final."""

    def __init__(self, handoff: _Handoff, finish: Callable[[], Awaitable[None]], spool_dir: Path) -> None:
        self._handoff = handoff
        self._finish = finish
        self._spool_dir = spool_dir
        self._read = False
        self.spool: IO[bytes] | None = None

    async def __call__(self) -> AsyncIterator[list[list[Any]]]:
        if self._read:
            raise RuntimeError("streamed rows are read once")
        self._read = True
        while (batch := await self._handoff.get()) is not _END:
            yield batch
        await self._finish()

    def replayable(self) -> Batches:
        """The rows for as many passes as a renderer needs (txt widths, dropped null columns):
        the first pass streams them and spools them to a temporary file beside the database,
        the later ones read that file, so even then they are not held in memory."""
        async def batches() -> AsyncIterator[list[list[Any]]]:
            if self.spool is not None:
                await asyncio.to_thread(self.spool.seek, 0)
                while batch := await asyncio.to_thread(_unspooled, self.spool):
                    yield batch
                return
            self.spool = tempfile.TemporaryFile(dir=self._spool_dir)
            async for batch in self():
                await asyncio.to_thread(pickle.dump, batch, self.spool, pickle.HIGHEST_PROTOCOL)
                yield batch
        return batches

    def close(self) -> None:
        if self.spool is not None:
            self.spool.close()


def _unspooled(spool: IO[bytes]) -> list[list[Any]] | None:
    try:
        return pickle.load(spool)
    except EOFError:
        return None


def replayable(rows: Batches) -> Batches:
    """``rows`` for several passes: streamed rows are spooled (see ``StreamedRows``); held or
    stored rows already read from the first row on each call."""
    return rows.replayable() if isinstance(rows, StreamedRows) else rows


@dataclass
class Streamed:
    """A synchronous query's answer while it runs: ``frame`` holds the columns at once and is
    completed in place (warnings, counts, ``took``) once ``rows`` are exhausted."""

    frame: dict[str, Any]
    rows: StreamedRows = field(repr=False)


@contextlib.asynccontextmanager
async def cancelled_when(gone: Callable[[], bool], task: Task, interval_s: float = DISCONNECT_POLL_S
                         ) -> AsyncIterator[None]:
    """While inside, a client that ``gone`` says has closed its connection cancels ``task``'s
    query, as Elasticsearch cancels a request's tasks when its HTTP channel closes."""
    async def watch() -> None:
        while not gone():
            await asyncio.sleep(interval_s)
        task.control.cancel("http channel closed")

    watcher = asyncio.create_task(watch(), name=f"disconnect-watch-{task.task_id}")
    try:
        yield
    finally:
        watcher.cancel()


class Queries:
    """Runs jobs as tasks: synchronously for a request (``run``), or under a task of the
    caller's (``compute``, which async searches use)."""

    def __init__(self, tasks: TaskManager, runner: Runner) -> None:
        self.tasks = tasks
        self.runner = runner

    async def compute(self, job: Job, parent: Task, sink: Sink) -> tuple[Any, int]:
        """Run ``job`` under a ``/compute`` child of ``parent`` (which the query's cancel and
        progress go through); the sink's value and the time taken, in ms."""
        child = self.tasks.register(f"{job.action}/compute", job.description, parent.headers, parent=parent)
        try:
            return await self.runner.run(job, parent.control, sink)
        finally:
            self.tasks.unregister(child)

    @contextlib.asynccontextmanager
    async def run(self, job: Job, headers: dict[str, str], gone: Callable[[], bool] = lambda: False
                  ) -> AsyncIterator[Streamed]:
        """Run ``job`` for a request with ``headers``, as a task bound to its log context,
        cancelled when ``gone()`` says the client left; yields once the query has sent its
        frame (its error, if it fails first, is raised instead). Leaving before the rows are
        read to their end cancels the query."""
        task = self.tasks.register(job.action, job.description, headers)
        structlog.contextvars.bind_contextvars(task_id=task.task_id)
        handoff = _Handoff()

        async def execute() -> tuple[dict[str, Any], int]:
            try:
                async with cancelled_when(gone, task):
                    return await self.compute(job, task, handoff.sink)
            finally:
                self.tasks.unregister(task)

        async def finish() -> None:
            final, took = await running
            frame.update(final, took=took)

        running = asyncio.create_task(execute(), name=f"query-{task.task_id}")
        rows = StreamedRows(handoff, finish, self.runner.db_path.parent)
        try:
            frame = await _first(handoff, running)
            yield Streamed(frame, rows)
        finally:
            if not running.done():  # the caller left early, or was cancelled: so is the query
                handoff.abandon()
                running.cancel()
            await asyncio.wait([running])  # a second cancel of the caller leaves it to end alone
            if not running.cancelled():
                running.exception()  # raised to the caller already (or moot): retrieved
            rows.close()


async def _first(handoff: _Handoff, running: asyncio.Task[Any]) -> dict[str, Any]:
    """The query's first frame, or its error if it ends without sending one."""
    getter = asyncio.ensure_future(handoff.get())
    try:
        await asyncio.wait((getter, running), return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not getter.done():
            getter.cancel()
    if getter.done() and not getter.cancelled():
        return getter.result()
    running.result()  # raises the query's error
    raise AssertionError("a query that succeeded sent a frame")
