"""Smart Monitor's background tasks API (``/_sme/async_requests/...``, spec
sme-background-tasks.md §4.1-§4.6): create an SML task, page its result, read its logs and
status, stop it, delete it.

Thin handlers: the body is read by ``sml.request.parse`` and compiled by ``SmlJob``, both
before anything is stored; the lifecycle is ``core.background``; what is rendered here is
the wire format (camelCase keys, ISO times, the status object of §4.4).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Callable

import orjson
from aiohttp import web

from .. import keys
from ..core.background import EndLines, Limits, Line, State, TaskView
from ..core.queries import ROW_BATCH, keep_alive_ms
from ..core.searches import SearchNotFound
from ..errors import BadRequest, XContentParseError
from ..query.execute import PREVIEW_ROWS
from ..query.jobs import source_patterns
from ..query.sml import SmlJob, SmlRequest, event_fields, lookups
from ..query.options import QueryOptions
from ..query.sml import limits as sml_limits
from ..query.sml import request as sml_request
from ..store.catalog import Catalog
from ..store.dates import format_millis
from .guard import principal_of, readable
from .middleware import accepts
from .wire import ListWriter, is_pretty, read_body, respond, task_headers

# With security off, every task belongs to this one user.
DEFAULT_USER = "default"
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_FRAME_EXTRAS = ("sidebar", "timeline", "executionCost")


def owner(request: web.Request) -> str:
    """Whose tasks the request sees and creates: its principal's (an API key's are its owner
    user's), so another user's task is not found; with security off, ``DEFAULT_USER``."""
    principal = principal_of(request)
    return DEFAULT_USER if principal is None else principal.owner


def task_id_of(request: web.Request) -> str:
    """The path's id; one that no task could have is not found, like an unknown one."""
    task_id = request.match_info["id"]
    if not _ID.fullmatch(task_id):
        raise SearchNotFound(task_id)
    return task_id


def _iso(ms: int | None) -> str | None:
    return format_millis(ms) if ms is not None else None


# --- create ---------------------------------------------------------------------------------

async def _setting(request: web.Request, now_ms: int) -> Callable[[str], str]:
    """The cluster settings as the caller's task reads them: its own and its roles' limits
    (``sml.limits``) over the base limits."""
    app = request.app
    base = app[keys.CLUSTER_SETTINGS].get
    docs = await asyncio.to_thread(sml_limits.read_docs, app[keys.SETTINGS].db_path, app[keys.CATALOG],
                                   base(sml_limits.INDEX_SETTING))
    principal = principal_of(request)
    found = sml_limits.resolve(docs, owner(request), principal.effective_roles if principal else (), now_ms)
    return sml_limits.setting_for(base, found)


def _limits(setting: Callable[[str], str]) -> Limits:
    running_time = setting(sml_request.MAX_SEARCH_RUNNING_TIME)
    return Limits(keep_alive_ms=keep_alive_ms(setting(sml_request.KEEP_ALIVE), sml_request.KEEP_ALIVE),
                  max_running=int(setting(sml_request.MAX_RUNNING_PER_USER)),
                  max_tasks=int(setting(sml_request.MAX_TASKS_PER_USER)),
                  max_running_time_ms=int(running_time) * 1000 if running_time else None)


async def _body(request: web.Request) -> Any:
    raw = await read_body(request)
    if not raw.strip():
        raise BadRequest("the request body is required")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise XContentParseError(f"Failed to parse object: {exc}") from None


def _shown(submission: sml_request.Submission, job: SmlJob) -> dict[str, Any]:
    """The request as the status shows it back (§4.4), with the warnings of the limits
    applied to it and its query."""
    req = submission.request
    return {"query": req.query, "dtFieldName": req.time_field, "dtStart": submission.dt_start,
            "dtEnd": submission.dt_end,
            "timeRange": {"start": _iso(req.start_ms), "end": _iso(req.end_ms - 1 if req.end_ms is not None else None)},
            "calculateStats": req.calculate_stats, "calculateExecutionCost": req.execution_cost,
            "warnings": [*submission.warnings, *(note for note, _ in job.planned.notes)]}


def _first_lines(submission: sml_request.Submission, job: SmlJob, shown: dict[str, Any]) -> list[Line]:
    lines: list[Line] = [("INFO", f"time range {shown['timeRange']['start']} .. {shown['timeRange']['end']} on "
                             f"{submission.request.time_field}", None)]
    lines += [("WARN", warning, None) for warning in submission.warnings]
    lines += [("WARN", note, command) for note, command in job.planned.notes]
    return lines


def _end_lines(cost: str) -> EndLines:
    """The log lines a finished job's frame gives: its warnings, and at DEBUG its commands."""
    def lines(frame: dict[str, Any]) -> list[Line]:
        out: list[Line] = [("WARN", str(warning), None) for warning in frame.get("warnings", [])]
        if cost == "DEBUG":
            for command in (frame.get("executionCost") or {}).get("commands", []):
                out.append(("DEBUG", f"{command.get('text', command.get('command'))}: {command.get('ms')} ms, "
                                     f"{command.get('rowsIn')} rows in, {command.get('rowsOut')} rows out",
                            command.get("index")))
        return out
    return lines


async def _job(request: web.Request, sml: SmlRequest, catalog: Catalog) -> SmlJob:
    settings = request.app[keys.SETTINGS]
    return await asyncio.to_thread(SmlJob.compile, sml, catalog, QueryOptions.of(settings),
                                   lookups.reader(settings.db_path, catalog))


@accepts()
async def create(request: web.Request) -> web.Response:
    app = request.app
    body = await _body(request)
    now_ms = app[keys.SEARCHES].now_ms()
    setting = await _setting(request, now_ms)
    submission = sml_request.parse(body, setting, now_ms)
    job = await _job(request, submission.request, app[keys.CATALOG])
    if principal_of(request) is not None:  # planned again among the indices the principal may read
        job = await _job(request, submission.request, readable(request, job.action, source_patterns(job.plan.steps)))
    user = owner(request)
    sml_request.check_commands(job.planned.used, submission.allowed_commands, user)
    shown = _shown(submission, job)
    view = await app[keys.BACKGROUND].create(job, user, task_headers(request), _limits(setting), shown,
                                             _first_lines(submission, job, shown),
                                             _end_lines(submission.request.execution_cost), now_ms)
    return respond(request, {"id": view.record.id, "status": view.state.value,
                             "createdAt": _iso(view.record.created_ms)})


# --- reads ----------------------------------------------------------------------------------

def _status(request: web.Request, view: TaskView) -> dict[str, Any]:
    """The status object of §4.4."""
    r = view.record
    shown = {k: v for k, v in r.request.items() if k != "warnings"}
    now = request.app[keys.SEARCHES].now_ms()
    duration = ((r.finished_ms or now) - r.started_ms) if r.started_ms is not None else 0
    return {"id": r.id, "status": r.state, "partial": r.partial, **shown, "user": r.owner,
            "createdAt": _iso(r.created_ms), "startedAt": _iso(r.started_ms), "finishedAt": _iso(r.finished_ms),
            "durationMs": duration, "progress": round(r.progress, 4), "rowCount": r.row_count,
            "expiresAt": _iso(r.expires_ms), "error": r.error}


def _offset(request: web.Request, name: str) -> int | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    if not raw.isdecimal():  # what int() reads: isdigit() also takes ² and ①
        raise BadRequest(f"[{name}] must be a non-negative integer, got [{raw}]")
    return int(raw)


def _page(start: int | None, to: int | None, total: int) -> tuple[int, int]:
    """The rows ``[first, stop)`` a page returns: ``from`` and ``to`` clamped to the rows
    there are, so a page past the end is empty and names where the rows end (§4.2)."""
    first = min(start or 0, total)
    return first, max(first, min(total, to if to is not None else total))


async def _events(request: web.Request, task_id: str, start: int, stop: int) -> Any:
    """Rows ``[start, stop)``, read from disk a batch at a time and encoded as they come."""
    writer = ListWriter(is_pretty(request))
    tasks = request.app[keys.BACKGROUND]
    for first in range(start, stop, ROW_BATCH):
        writer.extend([row[0] for row in await tasks.rows(task_id, first, min(first + ROW_BATCH, stop))])
    return writer.finish()


@accepts("from", "to")
async def response(request: web.Request) -> web.Response:
    start, to = _offset(request, "from"), _offset(request, "to")
    if start is not None and to is not None and start > to:
        raise BadRequest(f"[from] [{start}] must not be greater than [to] [{to}]")
    tasks = request.app[keys.BACKGROUND]
    view = await tasks.get(task_id_of(request), owner(request))
    preview = await tasks.preview(view)
    if preview is not None:
        return respond(request, _preview(request, view, preview, start, to))
    frame = await tasks.frame(view)
    total = view.record.row_count
    first, stop = _page(start, to, total)
    body: dict[str, Any] = {"id": view.record.id, "status": view.state.value, "partial": view.record.partial,
                            "total": total, "from": first, "to": stop, "fields": frame.get("fields", []),
                            "events": await _events(request, view.record.id, first, stop)}
    body.update((name, frame[name]) for name in _FRAME_EXTRAS if name in frame)
    body["warnings"] = [*view.record.request.get("warnings", []), *frame.get("warnings", [])]
    if view.state is State.FAILED:
        body["error"] = view.record.error
    return respond(request, body)


def _preview(request: web.Request, view: TaskView, rows: list[list[Any]], start: int | None,
             to: int | None) -> dict[str, Any]:
    """A running transforming task's page of its preview (Splunk's results preview): the
    rest of its pipeline over the data read so far, nothing stored, the task going on."""
    events = [row[0] for row in rows]
    first, stop = _page(start, to, len(events))
    warnings = list(view.record.request.get("warnings", []))
    if len(events) == PREVIEW_ROWS:
        warnings.append(f"the preview shows the first {PREVIEW_ROWS} rows")
    return {"id": view.record.id, "status": view.state.value, "partial": True, "preview": True,
            "total": len(events), "from": first, "to": stop, "fields": event_fields(events),
            "events": events[first:stop], "warnings": warnings}


@accepts()
async def logs(request: web.Request) -> web.Response:
    task_id = task_id_of(request)
    lines = await request.app[keys.BACKGROUND].logs(task_id, owner(request))
    rendered = []
    for line in lines:
        item: dict[str, Any] = {"timestamp": format_millis(line.ts_ms), "level": line.level, "message": line.message}
        if line.command is not None:
            item["command"] = line.command
        rendered.append(item)
    return respond(request, {"id": task_id, "logs": rendered})


@accepts()
async def status(request: web.Request) -> web.Response:
    view = await request.app[keys.BACKGROUND].get(task_id_of(request), owner(request))
    return respond(request, _status(request, view))


@accepts()
async def status_all(request: web.Request) -> web.Response:
    views = await request.app[keys.BACKGROUND].list(owner(request))
    return respond(request, {"tasks": [_status(request, view) for view in views]})


# --- stop and delete ------------------------------------------------------------------------

@accepts()
async def stop(request: web.Request) -> web.Response:
    view = await request.app[keys.BACKGROUND].stop(task_id_of(request), owner(request))
    return respond(request, {"id": view.record.id, "status": view.state.value, "partial": view.record.partial})


@accepts()
async def stop_all(request: web.Request) -> web.Response:
    return respond(request, {"stopped": await request.app[keys.BACKGROUND].stop_all(owner(request))})


@accepts()
async def delete(request: web.Request) -> web.Response:
    task_id = task_id_of(request)
    await request.app[keys.BACKGROUND].delete(task_id, owner(request))
    return respond(request, {"id": task_id, "deleted": True})
