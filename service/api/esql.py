"""``POST /_query``: synchronous ES|QL."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from aiohttp import web

from .. import keys
from ..errors import BadRequest, ValidationError, XContentParseError
from ..node import ES_VERSION
from ..core.queries import Batches, GetOptions, SubmitOptions, replayable
from ..core.searches import Answer
from ..params import parse_bool
from ..query.esql import EsqlJob, render_value
from ..query.jobs import source_patterns
from ..query.options import QueryOptions
from .formats import TEXT_FORMATS, Column, csv_delimiter, media_type, response_format, text_lines, txt_widths
from .guard import readable
from .middleware import accepts
from .wire import JsonText, ListWriter, client_gone, is_pretty, read_json, respond, task_headers

QUERY_FIELDS = frozenset({"query", "columnar", "params", "filter", "locale", "time_zone", "profile",
                          "include_ccs_metadata", "include_execution_metadata", "tables", "settings",
                          "project_routing", "pragma", "accept_pragma_risks"})
_QUERY_PARAMS = ("format", "delimiter", "drop_null_columns", "allow_partial_results")


def _params(body: dict[str, Any], parser: str) -> list[Any] | dict[str, Any] | None:
    raw = body.get("params")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise XContentParseError(f"[1:2] [{parser}] params must be an array")
    named = [p for p in raw if isinstance(p, dict)]
    if named and len(named) != len(raw):
        raise XContentParseError("Failed to parse params: Params cannot contain both named and unnamed parameters; "
                                 f"got {[p for p in raw if isinstance(p, dict)]} and "
                                 f"{[p for p in raw if not isinstance(p, dict)]}")
    if not named:
        return raw
    out: dict[str, Any] = {}
    for p in named:
        if len(p) != 1:
            raise XContentParseError(f"Failed to parse params: Cannot parse more than one key:value pair as "
                                     f"parameter, found [{p}]")
        out.update(p)
    return out


def validate_request(body: dict[str, Any], parser: str) -> str:
    query = body.get("query")
    if not isinstance(query, str) or not query.strip():
        raise ValidationError("[query] is required")
    if "tables" in body:
        raise BadRequest("[tables] only allowed in snapshot builds")
    if "pragma" in body:
        raise BadRequest("[pragma] only allowed in snapshot builds")
    if body.get("filter") is not None and not isinstance(body["filter"], dict):
        raise XContentParseError(f"[1:2] [{parser}] filter doesn't support values of type: VALUE_STRING")
    if "columnar" in body:
        parse_bool(body["columnar"], "columnar")
    return query


def warning_headers(messages: list[str]) -> list[tuple[str, str]]:
    return [("Warning", f'299 Elasticsearch-{ES_VERSION}-esquire "{_quoted(m)}"') for m in messages]


def _quoted(message: str) -> str:
    """The body of an RFC 7230 quoted-string, as Elasticsearch escapes warning texts."""
    return message.replace("\\", "\\\\").replace('"', '\\"')


async def render(request: web.Request, frame: dict[str, Any], rows: Batches, *, columnar: bool, fmt: str,
                 drop_null_columns: bool, extra: dict[str, Any] | None = None,
                 headers: list[tuple[str, str]] = (), delimiter: str = ",") -> web.Response:
    """A finished query as Elasticsearch answers it, in any of the formats. The rows are
    encoded into the body a batch at a time (after a first pass when the columns kept or
    the txt widths depend on every row), so no more than one batch of them is held. The
    frame's columns are known at once, the rest of it once the rows are read."""
    names, types = frame.get("names", []), frame.get("types", [])
    all_columns = [Column(n, t) for n, t in zip(names, types)]
    keep = list(range(len(names)))
    widths: list[int] = []
    if drop_null_columns or fmt == "txt":
        rows = replayable(rows)
        seen, all_widths = [False] * len(names), txt_widths(names, []) if fmt == "txt" else None
        async for batch in _rendered(rows, types, keep):
            for r in batch:
                seen = [s or v is not None for s, v in zip(seen, r)]
            if fmt == "txt":
                all_widths = txt_widths(names, batch, all_widths)
        if drop_null_columns:
            keep = [i for i in keep if seen[i]]
        if all_widths is not None:
            widths = [all_widths[i] for i in keep]
    columns = [all_columns[i] for i in keep]
    if fmt != "json":
        chunks = [text_lines(fmt, [[c.name for c in columns]], widths, delimiter, header=True).encode()]
        async for batch in _rendered(rows, types, keep):
            chunks.append(text_lines(fmt, batch, widths, delimiter).encode())
        response = web.Response(body=b"".join(chunks))
        response.headers["Content-Type"] = TEXT_FORMATS[fmt]
    else:
        values, loaded = await _values(rows, types, keep, columnar, pretty=is_pretty(request))
        body: dict[str, Any] = {**(extra or {}), "took": frame.get("took", 0),
                                "is_partial": bool(frame.get("is_partial")),
                                "documents_found": frame.get("documents_found", 0),
                                "values_loaded": loaded}
        if frame.get("failures"):
            body["_clusters"] = _partial_clusters(frame["failures"])
        if drop_null_columns:
            body["all_columns"] = [c._asdict() for c in all_columns]
        body["columns"] = [c._asdict() for c in columns]
        body["values"] = values
        response = respond(request, body)
    headers = [*headers, *warning_headers(frame.get("warnings", []))]
    for name, value in headers:
        response.headers.add(name, value)
    return response


async def _rendered(rows: Batches, types: list[str], keep: list[int]) -> AsyncIterator[list[list[Any]]]:
    """The rows, batch by batch, with values as the wire shows them, in the ``keep`` columns."""
    async for batch in rows():
        rendered = [[render_value(v, t) for v, t in zip(r, types)] for r in batch]
        yield [[r[i] for i in keep] for r in rendered]


async def _values(rows: Batches, types: list[str], keep: list[int], columnar: bool,
                  pretty: bool) -> tuple[JsonText, int]:
    """``values`` (row by row, or column by column when ``columnar``), encoded as the rows
    are read, and how many of them are not null."""
    loaded = 0
    by_row, by_column = ListWriter(pretty), [ListWriter(pretty) for _ in keep]
    async for batch in _rendered(rows, types, keep):
        loaded += sum(1 for r in batch for v in r if v is not None)
        if not columnar:
            by_row.extend(batch)
            continue
        for j, writer in enumerate(by_column):
            writer.extend([r[j] for r in batch])
    if not columnar:
        return by_row.finish(), loaded
    for writer in by_column:
        by_row.append_text(writer.finish())
    return by_row.finish(), loaded


def _partial_clusters(failures: list[dict[str, Any]]) -> dict[str, Any]:
    """How Elasticsearch reports a partial result: one local "cluster" with its failures."""
    return {"total": 1, "successful": 0, "running": 0, "skipped": 0, "partial": 1, "failed": 0,
            "details": {"(local)": {"status": "partial", "indices": "*", "failures": [
                {"shard": -1, "index": None, "reason": f} for f in failures]}}}


class _Request:
    """What every ES|QL endpoint reads from a request: format, columnar, drop_null_columns."""

    def __init__(self, request: web.Request, body: dict[str, Any] | None = None) -> None:
        self.fmt = response_format(request)
        # checked before the query runs: a bad delimiter must not cost a query
        self.delimiter = csv_delimiter(request) if self.fmt == "csv" else ","
        self.columnar = parse_bool((body or {}).get("columnar", False), "columnar")
        if self.columnar and self.fmt != "json":
            raise BadRequest("Invalid use of [columnar] argument: cannot be used in combination with [txt, csv, tsv] "
                             "formats")
        self.drop_null = parse_bool(request.query.get("drop_null_columns", "false"), "drop_null_columns")
        self.profile = (body or {}).get("profile") is True  # show what ran (pushdown.profile)

    async def render(self, request: web.Request, frame: dict[str, Any], rows: Batches,
                     extra: dict[str, Any] | None = None, headers: list[tuple[str, str]] = ()) -> web.Response:
        if self.profile and frame.get("profile"):
            extra = {**(extra or {}), "profile": frame["profile"]}
        return await render(request, frame, rows, columnar=self.columnar, fmt=self.fmt, drop_null_columns=self.drop_null,
                      extra=extra, headers=headers, delimiter=self.delimiter)


async def _job(request: web.Request, body: dict[str, Any], parser: str) -> EsqlJob:
    """The request's query, parsed off the event loop: a query of up to a million
    characters takes seconds to parse, and nothing else may wait for it."""
    text = validate_request(body, parser)
    job = await asyncio.to_thread(EsqlJob.compile, text, _params(body, parser), body.get("filter"),
                                  request.app[keys.CATALOG], QueryOptions.of(request.app[keys.SETTINGS]))
    # the sources are resolved as the query runs: among the indices the principal may read
    job.catalog = readable(request, job.action, source_patterns(job.plan.steps))
    return job


@accepts(*_QUERY_PARAMS)
async def query(request: web.Request) -> web.Response:
    body = await read_json(request, "esql/query", QUERY_FIELDS)
    req = _Request(request, body)
    job = await _job(request, body, "esql/query")
    async with request.app[keys.QUERIES].run(job, task_headers(request), client_gone(request)) as answer:
        return await req.render(request, answer.frame, answer.rows)


ASYNC_FIELDS = QUERY_FIELDS | {"wait_for_completion_timeout", "keep_alive", "keep_on_completion"}
_ASYNC_PARAMS = (*_QUERY_PARAMS, "wait_for_completion_timeout", "keep_alive", "keep_on_completion")


def _async_headers(answer: Answer) -> list[tuple[str, str]]:
    headers = [("X-Elasticsearch-Async-Id", answer.id)] if answer.id else []
    return headers + [("X-Elasticsearch-Async-Is-Running", "?1" if answer.is_running else "?0")]


async def _answer(request: web.Request, req: _Request, answer: Answer) -> web.Response:
    headers = _async_headers(answer)
    if answer.is_running:
        if req.fmt != "json":
            response = web.Response(text="", content_type=media_type(req.fmt))
            for name, value in headers:
                response.headers.add(name, value)
            return response
        body = {"id": answer.id, "is_running": True, "documents_found": 0, "values_loaded": 0, "columns": [],
                "values": []}
        return respond(request, body, headers=dict(headers))
    extra: dict[str, Any] = {"id": answer.id} if answer.id else {}
    extra["is_running"] = False
    return await req.render(request, answer.frame, answer.rows, extra=extra, headers=headers)


@accepts(*_ASYNC_PARAMS)
async def async_query(request: web.Request) -> web.Response:
    body = await read_json(request, "esql/async_query", ASYNC_FIELDS)
    req = _Request(request, body)
    job = await _job(request, body, "esql/async_query")
    options = SubmitOptions.parse(body, request.query)
    answer = await request.app[keys.SEARCHES].submit(job, options, task_headers(request))
    return await _answer(request, req, answer)


@accepts("wait_for_completion_timeout", "keep_alive", "drop_null_columns", "format", "delimiter")
async def async_get(request: web.Request) -> web.Response:
    req = _Request(request)
    options = GetOptions.parse(request.query)
    answer = await request.app[keys.SEARCHES].get(request.match_info["id"], wait_s=options.wait_s,
                                                  keep_alive_ms=options.keep_alive_ms)
    return await _answer(request, req, answer)


@accepts("drop_null_columns", "format", "delimiter")
async def async_stop(request: web.Request) -> web.Response:
    req = _Request(request)
    answer = await request.app[keys.SEARCHES].stop(request.match_info["id"])
    return await _answer(request, req, answer)


@accepts()
async def async_delete(request: web.Request) -> web.Response:
    await request.app[keys.SEARCHES].delete(request.match_info["id"])
    return respond(request, {"acknowledged": True})
