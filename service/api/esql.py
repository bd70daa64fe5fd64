"""``POST /_query``: synchronous ES|QL."""

from __future__ import annotations

import csv
import io
import time
from typing import Any

import orjson
from aiohttp import web

from .. import keys
from ..errors import BadRequest, ServiceError, ValidationError, XContentParseError
from ..node import ES_VERSION
from ..params import parse_bool
from ..query.esql import Result, execute, render_value
from .middleware import accepts
from .wire import read_json, respond

QUERY_FIELDS = frozenset({"query", "columnar", "params", "filter", "locale", "time_zone", "profile",
                          "include_ccs_metadata", "include_execution_metadata", "tables", "settings",
                          "project_routing", "pragma", "accept_pragma_risks"})
TEXT_FORMATS = {"csv": "text/csv; charset=utf-8; header=present", "tsv": "text/tab-separated-values; charset=utf-8",
                "txt": "text/plain; charset=utf-8"}
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
    if body.get("filter") is not None:
        raise BadRequest("[filter] is not supported yet by this server")
    if "columnar" in body:
        parse_bool(body["columnar"], "columnar")
    return query


def response_format(request: web.Request) -> str:
    fmt = request.query.get("format")
    if fmt is None:
        accept = request.headers.get("Accept", "")
        for name, media in (("csv", "text/csv"), ("tsv", "text/tab-separated-values"), ("txt", "text/plain")):
            if media in accept:
                return name
        return "json"
    if fmt not in ("json", "csv", "tsv", "txt"):
        raise BadRequest(f"Invalid format [{fmt}]; supported formats are json, csv, tsv, txt")
    delimiter = request.query.get("delimiter")
    if delimiter is not None and fmt != "csv":
        raise BadRequest(f"parameter: [delimiter] can only be used with the format [csv] for request [{request.path}]")
    return fmt


def warning_headers(result: Result) -> list[tuple[str, str]]:
    return [("Warning", f'299 Elasticsearch-{ES_VERSION}-esquire "{_quoted(m)}"') for m in result.warnings.messages]


def _quoted(message: str) -> str:
    """The body of an RFC 7230 quoted-string, as Elasticsearch escapes warning texts."""
    return message.replace("\\", "\\\\").replace('"', '\\"')


def render(request: web.Request, result: Result, took_ms: int, *, columnar: bool, fmt: str,
           drop_null_columns: bool, extra: dict[str, Any] | None = None) -> web.Response:
    names, types = result.names, result.types
    rows = [[render_value(v, t) for v, t in zip(r, types)] for r in result.rows]
    all_columns = [{"name": n, "type": t} for n, t in zip(names, types)]
    keep = list(range(len(names)))
    if drop_null_columns:
        keep = [i for i in keep if any(r[i] is not None for r in rows)]
    columns = [all_columns[i] for i in keep]
    rows = [[r[i] for i in keep] for r in rows]
    headers = warning_headers(result)
    if fmt != "json":
        response = web.Response(text=_text(fmt, columns, rows, request.query.get("delimiter", ",")))
        response.headers["Content-Type"] = TEXT_FORMATS[fmt]
        for name, value in headers:
            response.headers.add(name, value)
        return response
    values = [list(c) for c in zip(*rows)] if columnar and rows else ([[] for _ in columns] if columnar else rows)
    body: dict[str, Any] = {**(extra or {}), "took": took_ms, "is_partial": False,
                            "documents_found": result.documents_found, "values_loaded": result.values_loaded}
    if drop_null_columns:
        body["all_columns"] = all_columns
    body["columns"] = columns
    body["values"] = values
    response = respond(request, body)
    for name, value in headers:
        response.headers.add(name, value)
    return response


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, list):
        return "[" + ", ".join(_cell(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _text(fmt: str, columns: list[dict[str, str]], rows: list[list[Any]], delimiter: str) -> str:
    names = [c["name"] for c in columns]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
        writer.writerow(names)
        writer.writerows([[_cell(v) for v in r] for r in rows])
        return out.getvalue()
    if fmt == "tsv":
        esc = lambda s: s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")  # noqa: E731
        return "".join("\t".join(esc(_cell(v)) for v in line) + "\n" for line in [names, *rows])
    cells = [[_cell(v) for v in r] for r in rows]
    widths = [max([len(n), 15] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    header = "|".join(n.center(w) for n, w in zip(names, widths))
    separator = "+".join("-" * w for w in widths)
    lines = [header, separator] + ["|".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    return "\n".join(lines) + "\n"


@accepts(*_QUERY_PARAMS)
async def query(request: web.Request) -> web.Response:
    started = time.perf_counter()
    fmt = response_format(request)
    body = await read_json(request, "esql/query", QUERY_FIELDS)
    text = validate_request(body, "esql/query")
    columnar = bool(body.get("columnar", False))
    if columnar and fmt != "json":
        raise BadRequest("Invalid use of [columnar] argument: cannot be used in combination with [txt, csv, tsv] "
                         "formats")
    drop_null = parse_bool(request.query.get("drop_null_columns", "false"), "drop_null_columns")
    db = request.app[keys.DATABASE]
    result = await execute(text, _params(body, "esql/query"), request.app[keys.CATALOG], db.read)
    took = int((time.perf_counter() - started) * 1000)
    return render(request, result, took, columnar=columnar, fmt=fmt, drop_null_columns=drop_null)
