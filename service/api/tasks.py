"""``/_tasks``: list, get, cancel and wait for running queries, as Elasticsearch answers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys
from ..core.tasks import CALLER, LIST_ACTION, Task, TaskFilter, TaskManager, visible
from ..errors import BadRequest, ServiceError
from ..params import parse_bool, parse_time_ms
from .middleware import accepts
from .wire import respond, task_headers

DEFAULT_TIMEOUT_MS = 30_000


def parse_task_id(value: str) -> tuple[str, int]:
    node, sep, number = value.partition(":")
    if not sep or not node or not number.isdigit() or ":" in number:
        raise BadRequest(f"malformed task id {value}")
    return node, int(number)


def _filter(request: web.Request) -> TaskFilter:
    actions = tuple(a for a in request.query.get("actions", "").split(",") if a)
    parent = request.query.get("parent_task_id")
    if parent in ("", "-1", "unset"):
        parent = None
    if parent is not None:
        parse_task_id(parent)
    nodes = tuple(n for n in request.query.get("nodes", "").split(",") if n)
    return TaskFilter(actions, parent, nodes, CALLER.get())  # with security on, the caller's own


def _node_entry(request: web.Request, tasks: dict[str, Any]) -> dict[str, Any]:
    node = request.app[keys.NODE]
    return {node.id: {"name": node.name, "transport_address": node.transport_address, "host": node.host,
                      "ip": node.transport_address, "roles": ["data", "ingest", "master"], "tasks": tasks}}


def _grouped(request: web.Request, tasks: list[Task], group_by: str, detailed: bool,
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = dict(extra or {})
    if group_by == "none":
        body["tasks"] = [t.info(detailed) for t in tasks]
    elif group_by == "parents":
        chosen = {t.id for t in tasks}
        children: dict[int, list[Task]] = {}  # built once: thousands of tasks must not cost millions of steps
        for t in tasks:
            if t.parent is not None:
                children.setdefault(t.parent.id, []).append(t)

        def tree(task: Task) -> dict[str, Any]:
            info = task.info(detailed)
            if task.id in children:
                info["children"] = [tree(c) for c in children[task.id]]
            return info
        body["tasks"] = {t.task_id: tree(t) for t in tasks if t.parent is None or t.parent.id not in chosen}
    else:
        body["nodes"] = _node_entry(request, {t.task_id: t.info(detailed) for t in tasks}) if tasks else {}
    return body


def _group_by(request: web.Request) -> str:
    group_by = request.query.get("group_by", "nodes")
    if group_by not in ("nodes", "parents", "none"):
        raise BadRequest(f"[group_by] must be one of [nodes], [parents] or [none] but was [{group_by}]")
    return group_by


def _timeout_s(request: web.Request) -> float:
    raw = request.query.get("timeout")
    return (parse_time_ms(raw, "timeout") if raw is not None else DEFAULT_TIMEOUT_MS) / 1000


@accepts("actions", "detailed", "group_by", "nodes", "parent_task_id", "timeout", "wait_for_completion",
         "master_timeout")
async def list_tasks(request: web.Request) -> web.Response:
    manager: TaskManager = request.app[keys.TASKS]
    which = _filter(request)
    detailed = parse_bool(request.query.get("detailed", "false"), "detailed")
    group_by = _group_by(request)
    me = manager.register(LIST_ACTION, "", task_headers(request), cancellable=False)
    try:
        if parse_bool(request.query.get("wait_for_completion", "false"), "wait_for_completion"):
            # this list's own task is among them, and never waited for (a task list)
            await manager.wait(manager.select(which), _timeout_s(request), ",".join(which.actions) or "*")
        return respond(request, _grouped(request, manager.select(which), group_by, detailed))
    finally:
        manager.unregister(me)


def _lookup(request: web.Request, task_id: str) -> Task:
    node_id, number = parse_task_id(task_id)
    node = request.app[keys.NODE]
    if node_id != node.id:
        raise ServiceError(f"task [{task_id}] belongs to the node [{node_id}] which isn't part of the cluster and "
                           f"there is no record of the task", status=404, type="resource_not_found_exception")
    task = request.app[keys.TASKS].get(number)
    if task is None or not visible(task.owner):  # another's task is not found, as another's result
        raise ServiceError(f"task [{task_id}] isn't running and hasn't stored its results", status=404,
                           type="resource_not_found_exception")
    return task


@accepts("timeout", "wait_for_completion", "follow_relocations")
async def get_task(request: web.Request) -> web.Response:
    task = _lookup(request, request.match_info["task_id"])
    if parse_bool(request.query.get("wait_for_completion", "false"), "wait_for_completion"):
        await request.app[keys.TASKS].wait([task], _timeout_s(request), task.task_id)
        return respond(request, {"completed": True, "task": task.info(True)})
    return respond(request, {"completed": False, "task": task.info(True)})


@accepts("actions", "nodes", "parent_task_id", "wait_for_completion", "group_by", "timeout")
async def cancel_tasks(request: web.Request) -> web.Response:
    manager: TaskManager = request.app[keys.TASKS]
    node = request.app[keys.NODE]
    group_by = _group_by(request)
    task_id = request.match_info.get("task_id")
    extra: dict[str, Any] = {}
    if task_id is not None:
        node_id, number = parse_task_id(task_id)
        task = manager.get(number) if node_id == node.id else None
        if task is None or not visible(task.owner):
            failure = {"type": "failed_node_exception", "reason": f"Failed node [{node_id}]", "node_id": node_id,
                       "caused_by": {"type": "resource_not_found_exception",
                                     "reason": f"task [{task_id}] is not found"}}
            return respond(request, {"node_failures": [failure], "nodes": {}})
        if not task.cancellable:
            failure = {"type": "failed_node_exception", "reason": f"Failed node [{node_id}]", "node_id": node_id,
                       "caused_by": {"type": "illegal_argument_exception",
                                     "reason": f"task [{task_id}] doesn't support cancellation"}}
            return respond(request, {"node_failures": [failure], "nodes": {}})
        manager.cancel(task, "by user request")
        chosen = [task]
    else:
        chosen = manager.cancel_matching(_filter(request), "by user request")
    if parse_bool(request.query.get("wait_for_completion", "false"), "wait_for_completion"):
        await manager.wait(chosen, _timeout_s(request), ",".join(t.task_id for t in chosen))
    return respond(request, _grouped(request, chosen, group_by, False, extra))
