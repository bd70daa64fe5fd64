"""A user's stored searches of every language as one list, and one way to read any of them:
the web console's "My searches".

Elasticsearch has no list of async searches; Smart Monitor lists its background tasks. Here
both kinds are one list, newest first: the stored ES|QL and EQL async searches (``searches``)
and the SML background tasks (``background``), each in the background tasks' terms (states
``PENDING``..``FAILED``, progress 0..1, started, finished, rows).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator

from ..errors import BadRequest
from ..store.searches import RESTART_FAILURE, StoredSearch
from .background import TERMINAL, BackgroundTasks, State, TaskView, scan_progress
from .queries import ROW_BATCH
from .searches import AsyncSearches, SearchNotFound, decode_id
from .tasks import visible

MAX_LISTED = 1000  # searches in one list (the store keeps at most max_stored_searches anyway)


@dataclass(frozen=True)
class Listed:
    """One stored search as the list shows it."""

    id: str
    kind: str  # its language: "esql", "eql", "sml"
    query: str | None
    index: str | None  # the indices named beside the query (EQL's), else None
    state: str  # a ``background.State`` value
    partial: bool
    progress: float | None  # 0..1; None when not known (a search that ended without finishing)
    started_ms: int
    finished_ms: int | None
    rows: int
    expires_ms: int | None

    def to_dict(self, now_ms: int) -> dict[str, Any]:
        body = asdict(self)
        body["duration_ms"] = (self.finished_ms or now_ms) - self.started_ms
        return body


@dataclass(frozen=True)
class Stored:
    """A search found for reading: its language, where it stands, its frame (columns,
    fields, kind of hits...) and how many rows are stored."""

    id: str
    kind: str
    state: str
    partial: bool
    frame: dict[str, Any]
    total: int


class SearchListing:
    def __init__(self, searches: AsyncSearches, tasks: BackgroundTasks) -> None:
        self.searches = searches
        self.tasks = tasks

    async def list(self, owner: str | None, task_owner: str) -> list[Listed]:
        """``owner``'s stored async searches (everyone's when None: security off) and
        ``task_owner``'s background tasks, newest first."""
        now = self.searches.now_ms()
        stored = await self.searches.store.listed(owner, now, MAX_LISTED)
        listed = [self._search(s) for s in stored]
        listed += [_task(view) for view in await self.tasks.list(task_owner)]
        listed.sort(key=lambda item: item.started_ms, reverse=True)
        return listed[:MAX_LISTED]

    def _search(self, stored: StoredSearch) -> Listed:
        live = self.searches.running.get(stored.id)
        state, partial, progress, rows = _ended(stored)
        if live is not None and not live.done.is_set():
            state, partial, progress, rows = State.RUNNING.value, False, scan_progress(live), live.stored_rows
        return Listed(stored.id, stored.kind, stored.description, stored.target, state, partial, progress,
                      stored.created_ms, stored.finished_ms, rows, stored.expires_ms)

    # --- reading one ------------------------------------------------------------------
    async def find(self, search_id: str, task_owner: str) -> Stored:
        """The search ``search_id`` if the caller may read it (another's is not found): a
        background task of ``task_owner``, else an async search (``tasks.visible``)."""
        try:
            view = await self.tasks.get(search_id, task_owner)
        except SearchNotFound:
            pass
        else:
            frame = await self.tasks.frame(view)
            return Stored(search_id, "sml", view.state.value, view.record.partial, frame, view.record.row_count)
        try:
            decode_id(search_id)
        except BadRequest:  # not an async search's id either
            raise SearchNotFound(search_id) from None
        stored = await self.searches.store.get(search_id, self.searches.now_ms())
        # An SML search is always a background task, found above when it is the caller's.
        if stored is None or stored.kind == "sml" or not visible(stored.owner):
            raise SearchNotFound(search_id)
        listed = self._search(stored)
        live = self.searches.running.get(search_id)
        frame = (live.frame if live is not None and live.frame is not None else stored.response) or {}
        return Stored(search_id, stored.kind, listed.state, listed.partial, frame, listed.rows)

    async def rows(self, found: Stored, start: int, stop: int) -> list[Any]:
        """Stored rows ``[start, stop)`` of a found search (clamped to those stored so far)."""
        return await self.searches.store.rows(found.id, start, stop)

    def stored_rows(self, found: Stored, count: int) -> Iterator[list[bytes]]:
        """The first ``count`` stored rows as their JSON text, batch by batch, blocking: for
        an export on its own thread."""
        return self.searches.store.read_rows(found.id, count, ROW_BATCH)


def _ended(stored: StoredSearch) -> tuple[str, bool, float | None, int]:
    """State, partial, progress and rows of a stored search as it ended (or as stored while
    it runs in another path's hands)."""
    if stored.state == "running":
        return State.RUNNING.value, False, None, stored.row_count
    if stored.state == "failed":
        return State.FAILED.value, False, None, stored.row_count
    response = stored.response or {}
    if RESTART_FAILURE in response.get("failures", []):
        return State.FAILED.value, True, None, stored.row_count
    if response.get("is_partial"):
        return State.STOPPED.value, True, None, stored.row_count
    return State.COMPLETED.value, False, 1.0, stored.row_count


def _task(view: TaskView) -> Listed:
    r = view.record
    progress = r.progress if view.state not in TERMINAL or view.state is State.COMPLETED else None
    return Listed(r.id, "sml", r.request.get("query"), None, r.state, r.partial, progress, r.created_ms,
                  r.finished_ms, r.row_count, r.expires_ms)
