"""EQL: ``/{target}/_eql/search`` (synchronous, or async with ``wait_for_completion_timeout``)
and the async search's get, status and delete, as Elasticsearch answers them.

Thin handlers on the shared core: the request is read by ``EqlRequest``, run by
``Queries.run`` (sync) or ``AsyncSearches`` (async), and the job's frame and rows are
rendered here. Each row holds one hit: an event, or a sequence or sample
(``{"join_keys", "events"}``); the frame says which (``kind``) and whether it is partial.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from .. import keys
from ..core.queries import FOREVER_S, Batches, GetOptions, SubmitOptions
from ..core.runner import Job
from ..core.searches import Answer, Status
from ..errors import ParseError
from ..query.eql import EqlJob
from ..query.eql.request import FIELDS, PARSER, EqlRequest
from ..query.options import QueryOptions
from ..store.dates import format_millis
from .guard import readable
from .middleware import accepts
from .wire import ListWriter, client_gone, is_pretty, read_json, respond, task_headers

_SEARCH_PARAMS = ("allow_no_indices", "expand_wildcards", "ignore_unavailable", "ccs_minimize_roundtrips",
                  "wait_for_completion_timeout", "keep_alive", "keep_on_completion",
                  "allow_partial_search_results", "allow_partial_sequence_results")


# --- rendering ----------------------------------------------------------------------------

async def _hits(request: web.Request, frame: dict[str, Any], rows: Batches) -> dict[str, Any]:
    """``hits``: the rows' hits under ``events`` or ``sequences``, encoded as they are read,
    and their count, which is what Elasticsearch reports as the total."""
    writer, total = ListWriter(is_pretty(request)), 0
    async for batch in rows():
        writer.extend([row[0] for row in batch])
        total += len(batch)
    return {"total": {"value": total, "relation": "eq"}, frame.get("kind", "events"): writer.finish()}


async def _result(request: web.Request, frame: dict[str, Any], rows: Batches,
                  search_id: str | None = None) -> web.Response:
    """A finished search, in Elasticsearch's key order. The rows are read first: a
    synchronous query's frame is final (``took``, ``is_partial``) only once they are."""
    hits = await _hits(request, frame, rows)
    body: dict[str, Any] = {"id": search_id} if search_id else {}
    body.update(is_partial=bool(frame.get("is_partial")), is_running=False, took=frame.get("took", 0),
                timed_out=False)
    if frame.get("failures"):
        body["shard_failures"] = [{"shard": -1, "index": None, "reason": f} for f in frame["failures"]]
    body["hits"] = hits
    return respond(request, body)


def _running(request: web.Request, answer: Answer) -> web.Response:
    """The running frame, exactly: ``hits`` empty, ``took`` the time so far."""
    took = max(request.app[keys.SEARCHES].now_ms() - answer.start_ms, 0)
    return respond(request, {"id": answer.id, "is_partial": True, "is_running": True, "took": took,
                             "timed_out": False, "hits": {}})


async def _answer(request: web.Request, answer: Answer) -> web.Response:
    if answer.is_running:
        return _running(request, answer)
    return await _result(request, answer.frame, answer.rows, answer.id)


def _human(request: web.Request) -> bool:
    return request.query.get("human") not in (None, "false")


def _status_body(request: web.Request, status: Status) -> dict[str, Any]:
    """``QlStatusResponse``: the start only while running, the completion status only once
    done; ``human`` adds each time as text before its millis, as Elasticsearch does."""
    body: dict[str, Any] = {"id": status.id, "is_running": status.is_running, "is_partial": status.is_partial}
    times = [("start_time", status.start_ms)] if status.is_running else []
    for name, ms in [*times, ("expiration_time", status.expires_ms)]:
        if _human(request):
            body[name] = format_millis(ms)
        body[f"{name}_in_millis"] = ms
    if not status.is_running:
        body["completion_status"] = status.completion_status
    return body


# --- handlers -----------------------------------------------------------------------------

async def _job(request: web.Request, eql_request: EqlRequest) -> Job:
    """The compiled search, off the event loop (a long query takes a while to parse); its
    syntax, field and index errors are raised here, before anything runs."""
    catalog = readable(request, EqlJob.action, eql_request.indices)
    return await asyncio.to_thread(EqlJob.compile, eql_request, catalog, QueryOptions.of(request.app[keys.SETTINGS]))


@accepts(*_SEARCH_PARAMS)
async def search(request: web.Request) -> web.Response:
    """Synchronous without ``wait_for_completion_timeout`` (or with -1, which Elasticsearch
    also runs synchronously); otherwise an async search. ``keep_alive`` is checked either way."""
    raw = await request.read()
    if not raw.strip():
        raise ParseError("request body or source parameter is required")
    body = await read_json(request, PARSER, FIELDS)
    eql_request = EqlRequest.parse(request.match_info["index"], body, request.query, raw)
    options = SubmitOptions.parse(request.query, body, default_wait_ms=None, min_keep_alive=True)
    job = await _job(request, eql_request)
    if options.wait_s is None or options.wait_s == FOREVER_S:
        async with request.app[keys.QUERIES].run(job, task_headers(request), client_gone(request)) as answer:
            return await _result(request, answer.frame, answer.rows)
    return await _answer(request, await request.app[keys.SEARCHES].submit(job, options, task_headers(request)))


@accepts("wait_for_completion_timeout", "keep_alive")
async def get(request: web.Request) -> web.Response:
    options = GetOptions.parse(request.query)
    answer = await request.app[keys.SEARCHES].get(request.match_info["id"], wait_s=options.wait_s,
                                                  keep_alive_ms=options.keep_alive_ms, kind=EqlJob.kind)
    return await _answer(request, answer)


@accepts("keep_alive")
async def status(request: web.Request) -> web.Response:
    options = GetOptions.parse(request.query)
    found = await request.app[keys.SEARCHES].status(request.match_info["id"], keep_alive_ms=options.keep_alive_ms,
                                                    kind=EqlJob.kind)
    return respond(request, _status_body(request, found))


@accepts()
async def delete(request: web.Request) -> web.Response:
    await request.app[keys.SEARCHES].delete(request.match_info["id"])
    return respond(request, {"acknowledged": True})
