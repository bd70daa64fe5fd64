"""The async search lifecycle, with Elasticsearch's semantics, for any query language.

submit -> wait up to ``wait_for_completion_timeout``: done in time and not kept -> the
result, nothing stored; otherwise the search is stored under an id, its rows written in
batches while it runs, its final state written once. get / stop / delete / keep_alive act
on the running search in memory or on the stored one. Expired searches are gone for
readers at once; the reaper deletes them and cancels expired running ones.

Storing is bounded (see ``SearchStore``): a search that cannot be stored (too many stored,
their bytes at the cap, the disk in the flood stage) is refused with a 429 and cancelled;
one whose rows reach the byte cap or the full disk while it runs is stopped, and ends
partial with the reason among its failures.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Awaitable, Callable, Protocol

import structlog

from ..errors import BadRequest, InternalError, ServiceError
from ..query.control import Control
from ..store.searches import ResponseTooLarge, SearchStore, StoredSearch
from .queries import MAX_KEEP_ALIVE_MS, ROW_BATCH, Batches, Queries, SubmitOptions, in_batches
from .runner import Job
from .workers import Stream
from .tasks import Task, visible

log = structlog.get_logger(__name__)


class SearchNotFound(ServiceError):
    status = 404
    type = "resource_not_found_exception"


# --- ids --------------------------------------------------------------------------------

def _string(value: str) -> bytes:
    data = value.encode()
    return bytes([len(data)]) + data


def encode_id(doc_id: str, task_id: str) -> str:
    """Elasticsearch's async id: two length-prefixed strings, URL-safe base64."""
    return base64.urlsafe_b64encode(_string(doc_id) + _string(task_id)).decode()


def decode_id(search_id: str) -> tuple[str, str]:
    """(doc id, task id), or ``BadRequest`` as Elasticsearch words it."""
    try:
        raw = base64.urlsafe_b64decode(search_id + "=" * (-len(search_id) % 4))
        parts, pos = [], 0
        for _ in range(2):
            n = raw[pos]
            parts.append(raw[pos + 1:pos + 1 + n].decode())
            if len(parts[-1].encode()) != n:
                raise ValueError
            pos += 1 + n
        if pos != len(raw):
            raise ValueError
    except (ValueError, IndexError, binascii.Error, UnicodeDecodeError):
        raise BadRequest(f"invalid id: [{search_id}]") from None
    node, _, number = parts[1].partition(":")
    if not node or not number.isdigit():
        raise BadRequest(f"malformed task id {parts[1]}")
    return parts[0], parts[1]


# --- answers ----------------------------------------------------------------------------

@dataclass
class Answer:
    """What the API renders: a running frame, a result (frame + rows) or an error.

    ``rows`` gives the result's rows in batches, each call a new pass from the first row: a
    stored result is read from disk batch by batch, so rendering it holds one batch."""

    id: str | None
    is_running: bool
    frame: dict[str, Any] = field(default_factory=dict)
    rows: Batches = field(default_factory=lambda: in_batches([]))
    error: ServiceError | None = None
    start_ms: int = 0
    expires_ms: int = 0


@dataclass(frozen=True)
class Status:
    """A search's state without its result, as a status API reports it."""

    id: str
    is_running: bool
    is_partial: bool
    start_ms: int
    expires_ms: int
    completion_status: int | None = None  # the HTTP status it finished with; None while it runs


class Hooks(Protocol):
    """What a lifecycle built on these searches adds (``background.py``): called on the
    event loop, each under the search's lock but ``before_run``."""

    async def stored(self, search: Search) -> None:
        """The search was just stored and has not run; raising refuses it (it is removed)."""

    async def before_run(self, search: Search) -> bool:
        """Wait until the search may run; False ends it without running (an empty result)."""

    async def after_run(self, search: Search) -> None:
        """The search ended (its end stored, unless it was deleted): rows, frame and error final."""


def new_search_id() -> str:
    """A random, unguessable, URL-safe id: 22 characters of base64url (128 bits) that start
    with a letter or digit: ``esquire export -x...`` would read an id's leading ``-`` as an
    option (one id in 64 began with one)."""
    while True:
        found = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")
        if found[0].isalnum():
            return found


@dataclass
class Search:
    id: str
    job: Job
    task: Task
    keep_on_completion: bool
    created_ms: int
    expires_ms: int
    headers: dict[str, str]
    persisted: bool = False
    deleted: bool = False
    frame: dict[str, Any] | None = None
    pending: list[list[Any]] = field(default_factory=list)  # rows not yet stored
    pending_lock: threading.Lock = field(default_factory=threading.Lock)  # the sink's thread appends, the loop takes
    stored_rows: int = 0
    store_error: ServiceError | None = None  # why rows stopped being stored
    error: ServiceError | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    runner_task: asyncio.Task[None] | None = None
    hooks: Hooks | None = None

    @property
    def control(self) -> Control:
        return self.task.control


class AsyncSearches:
    def __init__(self, store: SearchStore, queries: Queries, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.queries = queries
        self.runner = queries.runner
        self.tasks = queries.tasks
        self.clock = clock
        self.running: dict[str, Search] = {}
        self.closing = False  # ``shutdown`` began: what ends now was stopped by it

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # --- submit -----------------------------------------------------------------------
    async def submit(self, job: Job, options: SubmitOptions, headers: dict[str, str]) -> Answer:
        """Run ``job`` as an async search for a request with ``headers``; the submit request
        is a task of its own while it waits, bound to the request's log context."""
        request = self.tasks.register(job.action, job.description, headers)
        structlog.contextvars.bind_contextvars(task_id=request.task_id)
        try:
            return await self._submit(job, options, headers)
        finally:
            self.tasks.unregister(request)

    async def _submit(self, job: Job, options: SubmitOptions, headers: dict[str, str]) -> Answer:
        wait_s = options.wait_s or 0.0  # None (not given, and no default): no wait
        keep_on_completion = options.keep_on_completion
        self.runner.admit(job)  # a full queue refuses the submit itself, before anything is stored
        if keep_on_completion or wait_s <= 0:  # it will be stored: refuse before running it
            await self.store.check_room(self.now_ms())
        task = self.tasks.register(f"{job.action}[a]", job.description, headers)
        doc_id = new_search_id()
        now = self.now_ms()
        search = Search(encode_id(doc_id, task.task_id), job, task, keep_on_completion, now,
                        now + options.keep_alive_ms, headers)
        task.request_id = search.id
        self.running[search.id] = search
        search.runner_task = asyncio.create_task(self._execute(search))
        try:
            await asyncio.wait_for(search.done.wait(), timeout=max(wait_s, 0))
        except asyncio.TimeoutError:
            pass
        async with search.lock:
            if not search.done.is_set():
                try:
                    await self._persist(search)
                except ServiceError:
                    if not search.persisted:  # refused: nothing stored, nobody can reach it
                        search.deleted = True
                        search.control.cancel("the async search could not be stored")
                    raise
                return self._running_answer(search)
        if keep_on_completion:
            async with search.lock:
                await self._persist(search)
                await self._finish_stored(search)
            if search.error is not None:
                raise search.error
            return await self.get(search.id, wait_s=0, keep_alive_ms=0)
        if search.error is not None:
            raise search.error
        return Answer(None, False, search.frame or {}, in_batches(search.pending), start_ms=search.created_ms,
                      expires_ms=search.expires_ms)

    async def start(self, job: Job, headers: dict[str, str], hooks: Hooks, created_ms: int | None = None) -> Search:
        """Run ``job`` as a search stored from the start under a plain ``new_search_id``,
        never expiring by itself: ``hooks`` decide when it runs and what its end means (they
        set its expiry). ``created_ms`` is when it was created (the instant its request read
        as now), by default now. Raises, storing nothing, when the store, the disk or
        ``hooks.stored`` refuse it."""
        task = self.tasks.register(f"{job.action}[a]", job.description, headers)
        created = self.now_ms() if created_ms is None else created_ms
        search = Search(new_search_id(), job, task, True, created, MAX_KEEP_ALIVE_MS, headers, hooks=hooks)
        task.request_id = search.id
        try:
            async with search.lock:
                await self._persist(search)
                await hooks.stored(search)
        except BaseException:
            self.tasks.unregister(task)
            if search.persisted:
                await asyncio.shield(self.store.delete(search.id))
            raise
        self.running[search.id] = search
        search.runner_task = asyncio.create_task(self._execute(search), name=f"search-{search.id}")
        return search

    async def _persist(self, search: Search) -> None:
        """Store the search (under its lock): from now on its rows and end go to SQLite.
        Raises, storing nothing, when the store or the disk is full."""
        job = search.job
        await self.store.create(search.id, job.kind, search.keep_on_completion, search.created_ms,
                                search.expires_ms, search.headers, search.task.owner, job.description,
                                job.target)
        search.persisted = True
        if search.frame is not None:
            await self.store.set_frame(search.id, search.frame)
        await self._flush(search)

    async def _flush(self, search: Search) -> None:
        """Store the pending rows; past the byte cap or on a full disk, stop the search and
        store no more (the rows that fit are kept)."""
        with search.pending_lock:
            rows, search.pending = search.pending, []
        if not rows or search.store_error is not None:
            return
        try:
            await self.store.append_rows(search.id, search.stored_rows, rows, self.now_ms())
        except ServiceError as exc:  # the byte cap (ResponseTooLarge) or the flood-stage block
            search.stored_rows += exc.stored if isinstance(exc, ResponseTooLarge) else 0
            search.store_error = exc
            search.control.stop()
            log.warning("search_storing_stopped", search_id=search.id, rows=search.stored_rows, reason=exc.reason)
            return
        search.stored_rows += len(rows)

    def _sink(self, search: Search) -> Callable[[Stream], None]:
        """Consumes the stream on a thread of its own (see ``Runner``): rows go to SQLite in
        batches once the search is stored, and stay in memory until then."""
        loop = asyncio.get_running_loop()

        def when_stored(action: Callable[[], Awaitable[None]]) -> None:
            """Run ``action`` on the loop, under the search's lock, if the search is stored."""
            async def go() -> None:
                async with search.lock:
                    if search.persisted:
                        await action()
            asyncio.run_coroutine_threadsafe(go(), loop).result()

        def sink(stream: Stream) -> None:
            search.frame = stream.frame
            when_stored(lambda: self.store.set_frame(search.id, search.frame or {}))
            for batch in stream.batches:
                with search.pending_lock:
                    search.pending.extend(batch)
                    full = len(search.pending) >= ROW_BATCH
                if full and search.persisted:
                    when_stored(lambda: self._flush(search))
            search.frame = stream.frame
        return sink

    async def _execute(self, search: Search) -> None:
        took = 0
        try:
            if search.hooks is None or await search.hooks.before_run(search):
                _, took = await self.queries.compute(search.job, search.task, self._sink(search))
            else:
                search.frame = self.runner.languages.interrupted_frame(search.job.kind)
        except ServiceError as exc:
            search.error = exc
        except Exception:  # noqa: BLE001 - a query bug must still end the search
            search.error = InternalError()
            log.exception("query_failed", search_id=search.id, error_id=search.error.error_id)
        if search.frame is not None:
            search.frame["took"] = took
        try:
            async with search.lock:
                if search.persisted and not search.deleted:
                    await self._finish_stored(search)
                if search.hooks is not None:
                    await search.hooks.after_run(search)
        except ServiceError:  # the disk is full even for the final state: a restart closes it
            log.exception("search_finish_not_stored", search_id=search.id)
        finally:
            self.running.pop(search.id, None)
            self.tasks.unregister(search.task)
            search.done.set()

    async def _finish_stored(self, search: Search) -> None:
        await self._flush(search)
        if search.store_error is not None and search.frame is not None:
            search.frame = {**search.frame, "is_partial": True,
                            "failures": [*search.frame.get("failures", []), search.store_error.to_dict()]}
        error = {"status": search.error.status, "error": search.error.to_dict()} if search.error else None
        await self.store.finish(search.id, search.frame, error, search.stored_rows, self.now_ms())

    def _running_answer(self, search: Search) -> Answer:
        return Answer(search.id, True, start_ms=search.created_ms, expires_ms=search.expires_ms)

    # --- get / status / stop / delete -------------------------------------------------
    async def get(self, search_id: str, *, wait_s: float, keep_alive_ms: int, kind: str | None = None) -> Answer:
        """The search's answer (``kind``: only a search of that language; another is not found)."""
        decode_id(search_id)
        search = self.running.get(search_id)
        if search is not None:
            await self._touch(search, keep_alive_ms, kind)
            if wait_s > 0:
                try:
                    await asyncio.wait_for(asyncio.shield(search.done.wait()), timeout=wait_s)
                except asyncio.TimeoutError:
                    pass
            if not search.done.is_set():
                return self._running_answer(search)
        stored = await self._stored(search_id, keep_alive_ms, kind)
        if stored.state == "running":  # finishing right now on another path
            return Answer(search_id, True, start_ms=stored.created_ms, expires_ms=stored.expires_ms)
        if stored.error is not None:
            raise ServiceError.from_dict(stored.error["error"], stored.error["status"])
        return Answer(search_id, False, stored.response or {}, self._stored_rows(search_id, stored.row_count),
                      start_ms=stored.created_ms, expires_ms=stored.expires_ms)

    async def _touch(self, search: Search, keep_alive_ms: int, kind: str | None) -> None:
        """A read of a search in memory: gone once expired; ``keep_alive_ms`` > 0 moves its
        expiry to now + that (stored too, once it is stored)."""
        now = self.now_ms()
        if search.expires_ms <= now or kind not in (None, search.job.kind) or not visible(search.task.owner):
            raise SearchNotFound(search.id)
        if keep_alive_ms > 0:
            search.expires_ms = now + keep_alive_ms
            if search.persisted:
                await self.store.set_expiry(search.id, search.expires_ms)

    async def _stored(self, search_id: str, keep_alive_ms: int, kind: str | None) -> StoredSearch:
        """A read of a stored search, as ``_touch`` for one in memory."""
        stored = await self.store.get(search_id, self.now_ms())
        if stored is None or kind not in (None, stored.kind) or not visible(stored.owner):
            raise SearchNotFound(search_id)
        if keep_alive_ms > 0:
            stored.expires_ms = self.now_ms() + keep_alive_ms
            await self.store.set_expiry(search_id, stored.expires_ms)
        return stored

    async def status(self, search_id: str, *, keep_alive_ms: int = 0, kind: str | None = None) -> Status:
        """Where the search stands, without its rows (``keep_alive_ms`` and ``kind`` as for
        ``get``): a running one is partial; a finished one has the HTTP status it ended with."""
        decode_id(search_id)
        search = self.running.get(search_id)
        if search is not None and not search.done.is_set():
            await self._touch(search, keep_alive_ms, kind)
            return Status(search_id, True, True, search.created_ms, search.expires_ms)
        stored = await self._stored(search_id, keep_alive_ms, kind)
        if stored.state == "running":  # finishing right now on another path
            return Status(search_id, True, True, stored.created_ms, stored.expires_ms)
        if stored.error is not None:
            return Status(search_id, False, False, stored.created_ms, stored.expires_ms, stored.error["status"])
        partial = bool((stored.response or {}).get("is_partial"))
        return Status(search_id, False, partial, stored.created_ms, stored.expires_ms, 200)

    def _stored_rows(self, search_id: str, count: int) -> Batches:
        """A finished search's rows, streamed from the store. Fewer than it finished with
        means it was deleted (or reaped) mid-read: answered as if the GET came after."""
        async def batches() -> AsyncIterator[list[list[Any]]]:
            seen = 0
            async for batch in self.store.iter_rows(search_id, ROW_BATCH):
                seen += len(batch)
                yield batch
            if seen < count:
                raise SearchNotFound(search_id)
        return batches

    async def stop(self, search_id: str) -> Answer:
        decode_id(search_id)
        search = self.running.get(search_id)
        if search is not None and search.expires_ms > self.now_ms() and visible(search.task.owner):
            search.control.stop()
            await asyncio.shield(search.done.wait())
        return await self.get(search_id, wait_s=1.0, keep_alive_ms=0)

    async def delete(self, search_id: str) -> None:
        try:
            decode_id(search_id)
        except BadRequest:
            raise SearchNotFound(search_id) from None
        if not await self.discard(search_id):
            raise SearchNotFound(search_id)

    async def discard(self, search_id: str) -> bool:
        """Cancel the search if it runs, then delete it with its rows; whether it was there
        (and had not expired); another owner's is not there for the caller (``tasks.visible``)."""
        search = self.running.get(search_id)
        found = False
        if search is not None and search.expires_ms > self.now_ms():
            if not visible(search.task.owner):
                return False
            found = True
            search.deleted = True
            search.control.cancel("cancelled by user")
            await asyncio.shield(search.done.wait())
        elif (stored := await self.store.get(search_id, self.now_ms())) is not None:
            if not visible(stored.owner):
                return False
            found = True
        if found:
            await self.store.delete(search_id)
        return found

    # --- expiry and shutdown ------------------------------------------------------------
    async def reap(self, batch: int = 500) -> int:
        """Cancel expired running searches and delete expired stored ones; returns how many."""
        now = self.now_ms()
        for search in list(self.running.values()):
            if search.expires_ms <= now:
                search.deleted = True
                search.control.cancel("keep_alive expired")
        removed = 0
        while True:
            ids = await self.store.expired(now, batch)
            if not ids:
                return removed
            await self.store.delete_many(ids)
            removed += len(ids)

    async def shutdown(self, timeout_s: float = 5.0) -> None:
        """Stop every running search: each stores what it has, marked partial."""
        self.closing = True
        searches = list(self.running.values())
        for search in searches:
            search.control.stop()
        if searches:
            await asyncio.wait([asyncio.ensure_future(s.done.wait()) for s in searches], timeout=timeout_s)
        for search in list(self.running.values()):
            search.control.cancel("the service is shutting down")
