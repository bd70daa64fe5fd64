"""Background tasks: owned searches that are always stored, for any query language.

A task is an async search (``searches.py``) started with ``AsyncSearches.start``, plus an
owner and a state: ``PENDING`` until one of its owner's execution slots is free (at most
``max_running`` per owner, first come first served), ``RUNNING``, then ``COMPLETED``,
``STOPPED`` (a ``stop``: the result over the data read so far) or ``FAILED`` (an error, a
cancel from ``/_tasks``, the service stopping or restarting; rows already stored are kept).
A finished task is kept ``keep_alive`` after it finished, then the reaper deletes it. An
owner has at most ``max_tasks`` live tasks. Every task keeps log lines, readable while it
runs. Owners only ever see their own tasks: another's id is not found.
"""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Callable, Iterator

import structlog

from ..errors import ServiceError
from ..store.background import BackgroundStore, LogLine, StoredTask
from ..store.dates import format_millis
from .queries import ROW_BATCH
from .runner import Job
from .searches import AsyncSearches, Search, SearchNotFound

log = structlog.get_logger(__name__)

GATE_POLL_S = 0.1  # a pending task also looks at its control this often (a cancel from /_tasks)
STOP_WAIT_S = 5.0  # how long a stop waits for the task to store its result
PREVIEW_WAIT_S = 1.0  # how long a read waits for the preview it asked a running task for
PREVIEW_POLL_S = 0.02


class State(str, Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    STOPPED = "STOPPED"
    FAILED = "FAILED"


TERMINAL = frozenset({State.COMPLETED, State.STOPPED, State.FAILED})
SHUTDOWN_FAILURE = {"type": "node_closed_exception",
                    "reason": "the service stopped while this task was running; the results are partial"}


Line = tuple[str, str, int | None]  # a log line to write: level, message, pipeline command
EndLines = Callable[[dict[str, Any]], list[Line]]  # the lines a finished job's frame gives


class NotFinished(ServiceError):
    status = 409
    type = "status_exception"


@dataclass(frozen=True)
class Limits:
    """An owner's limits, as in force when a task is created."""

    keep_alive_ms: int
    max_running: int
    max_tasks: int
    max_running_time_ms: int | None = None  # a task still running then is stopped and FAILED


@dataclass
class _Live:
    """A task in this process: its search and what its end is written with."""

    owner: str
    search: Search
    limits: Limits
    end_lines: EndLines
    stopped: bool = False  # by its owner (``stop``), not by the service
    timed_out: bool = False  # stopped by ``max_running_time_ms``
    started_ms: int | None = None
    timer: asyncio.TimerHandle | None = None


@dataclass
class TaskView:
    """A task as its owner sees it: the stored record, brought up to date while it runs."""

    record: StoredTask
    frame: dict[str, Any] = field(default_factory=dict)

    @property
    def state(self) -> State:
        return State(self.record.state)


class BackgroundTasks:
    def __init__(self, searches: AsyncSearches, store: BackgroundStore) -> None:
        self.searches = searches
        self.store = store
        self.live: dict[str, _Live] = {}
        self._waiting: dict[str, deque[str]] = {}   # owner -> pending task ids, oldest first
        self._active: dict[str, set[str]] = {}      # owner -> ids holding an execution slot
        self._changed = asyncio.Condition()

    def now_ms(self) -> int:
        return self.searches.now_ms()  # one clock: a test moves it for both

    # --- create -------------------------------------------------------------------------
    async def create(self, job: Job, owner: str, headers: dict[str, str], limits: Limits, request: dict[str, Any],
                     lines: list[Line],
                     end_lines: EndLines = lambda frame: [],
                     created_ms: int | None = None) -> TaskView:
        """Store a new task running ``job`` for ``owner`` and start it (or queue it, PENDING):
        ``request`` is shown back by ``get``; ``lines`` are its first log lines after the
        creation line, ``end_lines(frame)`` its lines once the job ended; ``created_ms`` its
        creation instant, the ``now`` its request was resolved against (default: now).
        Raises 429 when the owner has ``limits.max_tasks`` tasks, or the store or the disk
        is full."""
        hooks = _Hooks(self, owner, limits, request, list(lines), end_lines)
        search = await self.searches.start(job, headers, hooks, created_ms)
        return await self.get(search.id, owner)

    def _lines(self, lines: list[Line]) -> list[LogLine]:
        now = self.now_ms()
        return [LogLine(now, level, message, command) for level, message, command in lines]

    # --- the execution slots --------------------------------------------------------------
    async def _wait_for_slot(self, live: _Live) -> bool:
        """Wait, first come first served, until the owner has a free slot; False when the task
        was stopped meanwhile (a cancel raises)."""
        search, queue = live.search, self._waiting.setdefault(live.owner, deque())
        queue.append(search.id)
        try:
            async with self._changed:
                while queue[0] != search.id or len(self._active.get(live.owner, ())) >= live.limits.max_running:
                    search.control.check()
                    if search.control.stop_requested:
                        return False
                    try:
                        await asyncio.wait_for(self._changed.wait(), GATE_POLL_S)
                    except TimeoutError:
                        pass
                search.control.check()
                if search.control.stop_requested:
                    return False
                self._active.setdefault(live.owner, set()).add(search.id)
                return True
        finally:
            queue.remove(search.id)
            if not queue:
                del self._waiting[live.owner]
            await self._notify()

    async def _release(self, live: _Live) -> None:
        active = self._active.get(live.owner, set())
        active.discard(live.search.id)
        if not active:
            self._active.pop(live.owner, None)
        await self._notify()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # --- reads --------------------------------------------------------------------------
    async def get(self, task_id: str, owner: str) -> TaskView:
        """The owner's task (404 for an unknown, expired or another owner's id)."""
        record = await self.store.get(task_id, owner, self.now_ms())
        if record is None:
            raise SearchNotFound(task_id)
        return self._view(record)

    async def list(self, owner: str) -> list[TaskView]:
        """The owner's live tasks, newest first."""
        return [self._view(r) for r in await self.store.list(owner, self.now_ms())]

    def _view(self, record: StoredTask) -> TaskView:
        live = self.live.get(record.id)
        if live is None or record.state in TERMINAL:
            stored = self.searches.running.get(record.id)
            return TaskView(record, (stored.frame if stored else None) or {})
        search = live.search
        record.progress = scan_progress(search)
        record.row_count = search.stored_rows
        return TaskView(record, dict(search.frame or {}))

    async def frame(self, view: TaskView) -> dict[str, Any]:
        """The job's frame: as the job last sent it while the task runs, else as stored."""
        if view.frame or view.state not in TERMINAL:
            return view.frame
        stored = await self.searches.store.get(view.record.id, self.now_ms())
        return (stored.response if stored else None) or {}

    async def rows(self, task_id: str, start: int, stop: int) -> list[list[Any]]:
        """Stored rows ``[start, stop)``, read from disk (clamped to those stored so far)."""
        return await self.searches.store.rows(task_id, start, stop)

    def stored_rows(self, task_id: str, count: int) -> Iterator[list[bytes]]:
        """The first ``count`` stored rows as their JSON text, batch by batch from disk, read
        blocking on the caller's thread: for an export, which runs on a worker thread."""
        return self.searches.store.read_rows(task_id, count, ROW_BATCH)

    async def preview(self, view: TaskView, wait_s: float = PREVIEW_WAIT_S) -> list[list[Any]] | None:
        """A preview of a running task whose job makes them (``job.previews``): the rest of
        its pipeline over the rows read so far, the task going on. Asked for now and awaited
        at most ``wait_s``, else the latest earlier one; None when there is none. While a
        request is unanswered (the step that answers has not started, or runs in SQL) no
        other is made, so reads do not wait again."""
        live = self.live.get(view.record.id)
        if live is None or view.state is not State.RUNNING or not getattr(live.search.job, "previews", False):
            return None
        search, control = live.search, live.search.control
        answered = control.preview[0] if control.preview is not None else 0
        if control.preview_wanted > answered:
            return control.preview[1] if control.preview is not None else None
        wanted = control.want_preview()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while (control.preview is None or control.preview[0] < wanted) and not search.done.is_set() \
                and loop.time() < deadline:
            await asyncio.sleep(PREVIEW_POLL_S)
        return control.preview[1] if control.preview is not None else None

    async def log(self, task_id: str, lines: list[Line]) -> None:
        """Add log lines to a task (an export, say, logs itself)."""
        await self.store.log(task_id, self._lines(lines))

    async def logs(self, task_id: str, owner: str) -> list[LogLine]:
        await self.get(task_id, owner)
        return await self.store.logs(task_id)

    # --- stop and delete ----------------------------------------------------------------
    async def stop(self, task_id: str, owner: str, wait_s: float = STOP_WAIT_S) -> TaskView:
        """Stop an unfinished task: it stores the result over the data read so far (a
        pending one an empty result) and ends STOPPED; waits at most ``wait_s`` for that.
        409 for a finished task."""
        view = await self.get(task_id, owner)
        live = self.live.get(task_id)
        if view.state in TERMINAL or live is None:
            raise NotFinished(f"background task [{task_id}] has already finished: {view.state.value}")
        await self._request_stop(live)
        try:
            await asyncio.wait_for(asyncio.shield(live.search.done.wait()), wait_s)
        except TimeoutError:
            pass
        return await self.get(task_id, owner)

    async def _request_stop(self, live: _Live) -> None:
        if not live.stopped:
            live.stopped = True
            await self.log(live.search.id, [("INFO", "stop requested by the owner", None)])
        live.search.control.stop()
        await self._notify()

    async def stop_all(self, owner: str, wait_s: float = STOP_WAIT_S) -> list[str]:
        """Stop every unfinished task of ``owner``; their ids, oldest first."""
        mine = sorted((l for l in self.live.values() if l.owner == owner), key=lambda l: l.search.created_ms)
        for live in mine:
            await self._request_stop(live)
        if mine:
            await asyncio.wait([asyncio.ensure_future(l.search.done.wait()) for l in mine], timeout=wait_s)
        return [live.search.id for live in mine]

    async def delete(self, task_id: str, owner: str) -> None:
        """Remove the task and all it holds (an unfinished one is stopped first)."""
        await self.get(task_id, owner)
        if not await self.searches.discard(task_id):
            raise SearchNotFound(task_id)

    # --- the end --------------------------------------------------------------------------
    async def _finish(self, live: _Live) -> None:
        """Write the task's final state from how its search ended."""
        search = live.search
        state, error = self._outcome(live)
        frame = search.frame or {}
        partial = state is not State.COMPLETED or bool(frame.get("is_partial")) or search.store_error is not None
        now = self.now_ms()
        started = live.started_ms if live.started_ms is not None else now
        lines = list(live.end_lines(frame)) if live.started_ms is not None else []  # a task that never ran
        if search.store_error is not None:
            lines.append(("WARN", f"rows stopped being stored after {search.stored_rows}: "
                                  f"{search.store_error.reason}", None))
        summary = f"task finished: {state.value}, {search.stored_rows} rows, {now - started} ms"
        lines.append(("ERROR", f"{summary}: {error['type']}: {error['reason']}", None) if error else
                     ("INFO", summary, None))
        progress = 1.0 if state is State.COMPLETED else scan_progress(search)
        await self.store.finish(search.id, state.value, now, partial, search.stored_rows, progress, error,
                                self._lines(lines))
        search.expires_ms = now + live.limits.keep_alive_ms
        log.info("background_task_finished", task_id=search.id, state=state.value, rows=search.stored_rows)

    def _time_out(self, live: _Live) -> None:
        """The running-time limit: the task stops (its result over the data read so far is
        stored) and ends FAILED, saying why."""
        live.timed_out = True
        live.search.control.stop()

    def _outcome(self, live: _Live) -> tuple[State, dict[str, Any] | None]:
        search = live.search
        if search.error is not None:
            return State.FAILED, search.error.to_dict()
        if live.timed_out:
            limit = live.limits.max_running_time_ms or 0
            return State.FAILED, {"type": "timeout_exception",
                                  "reason": f"timeout: the task ran longer than the limit max_search_running_time "
                                            f"[{limit // 1000}s]; the results are partial"}
        if live.stopped:
            return State.STOPPED, None
        if self.searches.closing and search.control.stop_requested:
            return State.FAILED, SHUTDOWN_FAILURE
        return State.COMPLETED, None


def scan_progress(search: Search) -> float:
    """The share of the source rows scanned so far, 0..1."""
    control = search.control
    if control.rows_total <= 0:
        return 0.0
    return max(0.0, min(control.rows_scanned / control.rows_total, 1.0))


class _Hooks:
    """One task's part in its search's lifecycle (``searches.Hooks``)."""

    def __init__(self, tasks: BackgroundTasks, owner: str, limits: Limits, request: dict[str, Any],
                 lines: list[Line],
                 end_lines: EndLines) -> None:
        self.tasks = tasks
        self.owner = owner
        self.limits = limits
        self.request = request
        self.lines = lines
        self.end_lines = end_lines

    async def stored(self, search: Search) -> None:
        tasks = self.tasks
        first = [("INFO", f"task created by user {self.owner}", None), *self.lines]
        await tasks.store.create(search.id, self.owner, search.created_ms, self.limits.keep_alive_ms, self.request,
                                 self.limits.max_tasks, tasks._lines(first))
        tasks.live[search.id] = _Live(self.owner, search, self.limits, self.end_lines)

    async def before_run(self, search: Search) -> bool:
        tasks = self.tasks
        live = tasks.live[search.id]
        if not await tasks._wait_for_slot(live):
            return False
        live.started_ms = tasks.now_ms()
        if live.limits.max_running_time_ms is not None:
            live.timer = asyncio.get_running_loop().call_later(live.limits.max_running_time_ms / 1000,
                                                               tasks._time_out, live)
        await tasks.store.start(search.id, live.started_ms)
        await tasks.log(search.id, [("INFO", f"task started at {format_millis(live.started_ms)}", None)])
        return True

    async def after_run(self, search: Search) -> None:
        tasks = self.tasks
        live = tasks.live.pop(search.id)
        if live.timer is not None:
            live.timer.cancel()
        try:
            if not search.deleted:
                await tasks._finish(live)
        finally:
            await tasks._release(live)
