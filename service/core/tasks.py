"""The task registry: every running query is a task ``node_id:number`` that can be listed,
waited for and cancelled. It knows no query language: a task carries an action name, a
description, the request headers and a ``Control`` whose counters give its progress.

Owners: with security on, a task belongs to the principal whose request registered it
(``CALLER``, set by the security step for the request and inherited by the asyncio tasks it
starts); ``TaskFilter.owner`` and ``visible`` show a principal only its own."""

from __future__ import annotations

import asyncio
import itertools
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

from ..errors import ServiceError
from ..patterns import wildcard
from ..query.control import Control

LIST_ACTION = "cluster:monitor/tasks/lists"  # the task of a task list, never waited for

# Whose work the request being served sees and creates: its principal's owner name, or None
# when security is off or the principal sees every owner's (``superuser``). A task, and an
# async search, made under None belongs to no one: only an unrestricted caller sees it.
CALLER: ContextVar[str | None] = ContextVar("esquire_caller", default=None)


def visible(owner: str | None) -> bool:
    """Whether the caller being served may see work of ``owner``."""
    caller = CALLER.get()
    return caller is None or owner == caller


@dataclass
class Task:
    node: str
    id: int
    action: str
    description: str
    headers: dict[str, str]
    control: Control
    parent: Task | None = None
    request_id: str | None = None  # the async id, for async searches
    cancellable: bool = True
    start_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    start_ns: int = field(default_factory=time.monotonic_ns)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    owner: str | None = field(default_factory=CALLER.get)

    @property
    def task_id(self) -> str:
        return f"{self.node}:{self.id}"

    @property
    def cancelled(self) -> bool:
        return self.control.cancelled

    def status(self) -> dict[str, Any]:
        c = self.control
        status: dict[str, Any] = {}
        if self.request_id is not None:
            status["request_id"] = self.request_id
        status.update({"phase": c.phase, "rows_scanned": c.rows_scanned, "rows_total": c.rows_total})
        return status

    def info(self, detailed: bool) -> dict[str, Any]:
        """The task info object, in Elasticsearch's field order."""
        out: dict[str, Any] = {"node": self.node, "id": self.id, "type": "transport", "action": self.action}
        if detailed:
            out["status"] = self.status()
            out["description"] = self.description
        out["start_time_in_millis"] = self.start_ms
        out["running_time_in_nanos"] = time.monotonic_ns() - self.start_ns
        out["cancellable"] = self.cancellable
        if self.cancellable:
            out["cancelled"] = self.cancelled
        if self.parent is not None:
            out["parent_task_id"] = self.parent.task_id
        out["headers"] = dict(self.headers)
        return out


@dataclass(frozen=True)
class TaskFilter:
    """Which tasks a list or cancel names, as Elasticsearch's ``actions``, ``parent_task_id``
    and ``nodes``: a field left empty names every task."""

    actions: tuple[str, ...] = ()  # simple wildcards (only ``*`` is special), any may match
    parent: str | None = None      # a parent's ``node:number``
    nodes: tuple[str, ...] = ()    # ``_all``, ``_local``, ``*``, a node id or name
    owner: str | None = None       # only this owner's tasks (None: every owner's)


class TaskManager:
    def __init__(self, node_id: str, node_name: str = "") -> None:
        self.node_id = node_id
        self.node_name = node_name
        self._numbers = itertools.count(1)
        self.tasks: dict[int, Task] = {}
        self._children: dict[int, dict[int, Task]] = {}  # parent id -> its children, for cancel

    def register(self, action: str, description: str, headers: dict[str, str], control: Control | None = None,
                 parent: Task | None = None, cancellable: bool = True) -> Task:
        task = Task(self.node_id, next(self._numbers), action, description, headers,
                    control or (parent.control if parent else Control()), parent, cancellable=cancellable)
        self.tasks[task.id] = task
        if parent is not None:
            self._children.setdefault(parent.id, {})[task.id] = task
        return task

    def unregister(self, task: Task) -> None:
        self.tasks.pop(task.id, None)
        if task.parent is not None:
            siblings = self._children.get(task.parent.id, {})
            siblings.pop(task.id, None)
            if not siblings:
                self._children.pop(task.parent.id, None)
        task.done.set()

    def get(self, number: int) -> Task | None:
        return self.tasks.get(number)

    def __iter__(self) -> Iterator[Task]:
        return iter(list(self.tasks.values()))

    def select(self, which: TaskFilter = TaskFilter(), *, cancellable: bool = False) -> list[Task]:
        """The running tasks ``which`` names, oldest first; only those that can be cancelled if
        ``cancellable``. Nodes that do not name this one select nothing."""
        if which.nodes and not any(n in ("_all", "_local", "*", self.node_id, self.node_name) for n in which.nodes):
            return []
        actions = [wildcard(a) for a in which.actions]  # compiled once, not once per task
        return [t for t in self.tasks.values()
                if (t.cancellable or not cancellable)
                and (not actions or any(match(t.action) for match in actions))
                and (not which.parent or (t.parent is not None and t.parent.task_id == which.parent))
                and (which.owner is None or t.owner == which.owner)]

    async def wait(self, tasks: Iterable[Task], timeout_s: float, what: str) -> None:
        """Wait until ``tasks`` have ended, or raise Elasticsearch's timeout error naming ``what``
        after ``timeout_s``. As Elasticsearch, never waits for a task list: it could be waiting
        for this very waiter."""
        waited = [t for t in tasks if not t.action.startswith(LIST_ACTION)]
        if not await self.wait_done(waited, timeout_s):
            raise ServiceError(f"Timed out waiting for completion of task [{what}]", status=500,
                               type="elasticsearch_timeout_exception")

    def cancel_matching(self, which: TaskFilter, reason: str) -> list[Task]:
        """Cancel every cancellable task ``which`` names, with its children; the tasks cancelled."""
        chosen = self.select(which, cancellable=True)
        for task in chosen:
            self.cancel(task, reason)
        return chosen

    @staticmethod
    async def wait_done(tasks: list[Task], timeout_s: float) -> bool:
        """Wait until every one of ``tasks`` has ended, at most ``timeout_s``; whether they all
        did. One at a time, so a waiter holds one wake-up at a time however many tasks it
        waits for (a thousand waiters on a thousand tasks must not cost a million futures)."""
        try:
            async with asyncio.timeout(timeout_s):
                for task in tasks:
                    await task.done.wait()
        except TimeoutError:
            return False
        return True

    def cancel(self, task: Task, reason: str) -> None:
        """Cancel ``task`` and its children (they share or derive from its control)."""
        task.control.cancel(reason)
        for child in list(self._children.get(task.id, {}).values()):
            child.control.cancel(reason)
