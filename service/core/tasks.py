"""The task registry: every running query is a task ``node_id:number`` that can be listed,
waited for and cancelled. It knows no query language: a task carries an action name, a
description, the request headers and a ``Control`` whose counters give its progress."""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from ..query.control import Control


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


class TaskManager:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
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
