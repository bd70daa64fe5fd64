"""Document APIs: ``_bulk``, ``_doc``, ``_create``, ``_update``."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import quote

import orjson
from aiohttp import web

from .. import keys
from ..errors import (
    BadRequest, IndexNotFound, OwnRootCause, ParseError, ServiceError, ValidationError, XContentParseError,
)
from ..params import (
    INT_MAX, content_int, content_long, java_long, parse_time_ms, query_bool, query_int, query_long,
)
from ..store.document_parser import NESTING_DEPTH_MESSAGE, too_deep_document
from ..store.documents import PRIMARY_TERM, BulkOp, DocumentError
from ..store.versioning import (
    MATCH_ANY, NO_VERSIONING, UNASSIGNED_PRIMARY_TERM, UNASSIGNED_SEQ_NO, Versioning, VersionType,
    check_primary_term, check_seq_no,
)
from ..store.versioning import problems as version_problems
from .guard import authorize_bulk
from .middleware import accepts
from .wire import read_body, respond
from .xcontent import locate, nesting_depth_exceeded, token, too_deep
from .xcontent import text as xtext

_WRITE_PARAMS = ("refresh", "routing", "timeout", "wait_for_active_shards", "pipeline", "require_alias",
                 "require_data_stream", "version", "version_type", "if_seq_no", "if_primary_term",
                 "include_source_on_error")
_BULK_PARAMS = (*_WRITE_PARAMS, "_source", "_source_includes", "_source_excludes", "list_executed_pipelines")
_ACTIONS = ("create", "delete", "index", "update")
_REFRESH_VALUES = ("", "true", "false", "wait_for")
MAX_ID_BYTES = 512


def _check_write_params(request: web.Request) -> None:
    """The write parameters ES checks before it writes anything: each refused value is a 400
    and nothing is written (there are no ingest pipelines and no aliases here)."""
    query = request.query
    value = query.get("refresh")
    if value is not None and value not in _REFRESH_VALUES:
        raise BadRequest(f"Unknown value for refresh: [{value}].")
    if "timeout" in query:
        parse_time_ms(query["timeout"], "timeout")
    shards = query.get("wait_for_active_shards")
    if shards is not None and shards.lower() not in ("all", "index-setting"):
        count = java_long(shards, -1, INT_MAX)
        if count is None:
            raise BadRequest(f"Failed to parse int parameter [wait_for_active_shards] with value [{shards}]")
        if count < 0:
            raise BadRequest(f"shard count cannot be a negative value but was [{count}]")
    pipeline = query.get("pipeline")
    if pipeline not in (None, "_none"):
        raise BadRequest(f"pipeline with id [{pipeline}] does not exist")



def _check_single_write(request: web.Request) -> None:
    """``_check_write_params`` for a write of one document (a bulk checks ``require_alias``
    item by item)."""
    _check_write_params(request)
    if query_bool(request.query, "require_alias", False):
        raise _not_an_alias(request.match_info["index"])


def _not_an_alias(index: str) -> IndexNotFound:
    return IndexNotFound(index, reason=f"no such index [{index}] and [require_alias] request flag is [true] and "
                                       f"[{index}] is not an alias")


def _query_version(request: web.Request) -> tuple[int, VersionType]:
    """``version`` (else the ``If-Match`` header) and ``version_type``, as ES's REST actions read them."""
    query = request.query
    if "version" in query:
        version = query_long(query, "version", MATCH_ANY)
    elif (header := request.headers.get("If-Match")) is not None:
        parsed = java_long(header)
        if parsed is None:
            raise ServiceError(f'For input string: "{header}"', status=400, type="number_format_exception")
        version = parsed
    else:
        version = MATCH_ANY
    version_type = VersionType.parse(query["version_type"]) if "version_type" in query else VersionType.INTERNAL
    return version, version_type


def _query_cas(request: web.Request) -> tuple[int, int]:
    """``if_seq_no`` and ``if_primary_term``, each checked as soon as it is read (as ES does)."""
    if_seq_no = check_seq_no(query_long(request.query, "if_seq_no", UNASSIGNED_SEQ_NO))
    return if_seq_no, check_primary_term(query_long(request.query, "if_primary_term", UNASSIGNED_PRIMARY_TERM))


def _query_versioning(request: web.Request) -> Versioning:
    return Versioning(*_query_version(request), *_query_cas(request))


_META_VERSIONING = {"version", "version_type", "if_seq_no", "if_primary_term", "retry_on_conflict"}


def _meta_versioning(meta: dict[str, Any], line_no: int) -> tuple[Versioning, int]:
    """The versioning keys of a bulk action line and its ``retry_on_conflict``, read in the
    line's order as ES's bulk parser reads them (a null value is no value)."""
    if not _META_VERSIONING & meta.keys():
        return NO_VERSIONING, 0
    fields: dict[str, Any] = {}
    retry_on_conflict = 0
    for key, value in meta.items():
        if key not in _META_VERSIONING or value is None:
            continue
        if isinstance(value, (list, dict)):
            found = "START_ARRAY" if isinstance(value, list) else "START_OBJECT"
            raise BadRequest(f"Malformed action/metadata line [{line_no}], expected a simple value for field "
                             f"[{key}] but found [{found}]")
        if key == "version_type":
            fields[key] = VersionType.parse(_text(value))
        elif key == "retry_on_conflict":
            retry_on_conflict = content_int(value)
        else:
            fields[key] = content_long(value)
    return Versioning(**fields), retry_on_conflict


def _text(value: Any) -> str:
    """A JSON scalar as ES's parser ``text()`` gives it."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _body_cas(body: dict[str, Any], versioning: Versioning, raw: bytes) -> Versioning:
    """An update body's own ``if_seq_no``/``if_primary_term`` (``parse_update_body`` has checked
    their token kinds), which override the request's."""
    fields = {}
    for key, check in (("if_seq_no", check_seq_no), ("if_primary_term", check_primary_term)):
        if key not in body:
            continue
        try:
            fields[key] = check(content_long(body[key]))
        except ServiceError as err:
            raise XContentParseError(f"[{locate(raw, [key])}] [UpdateRequest] failed to parse field [{key}]",
                                     caused_by=err) from None
    return replace(versioning, **fields) if fields else versioning


def _validate(op: BulkOp, retry_on_conflict: int = 0) -> list[str]:
    """ES's versioning validation of one request (an update also looks at its body)."""
    body = op.source if op.action == "update" and op.source is not None else {}
    return version_problems(op.action, op.id, op.versioning, retry_on_conflict=retry_on_conflict,
                    doc_as_upsert=bool(body.get("doc_as_upsert")), upsert="upsert" in body)


def _doc_failure(line_no: int, raw: bytes) -> ServiceError:
    return ServiceError("failed to parse", status=400, type="document_parsing_exception",
                        caused_by=ServiceError(f"Unexpected character in document on line [{line_no}]", status=400,
                                               type="json_parse_exception"))


def _unparsable_body(cause: ServiceError) -> ServiceError:
    """A failure of ES's bulk parser that is not an IllegalArgumentException."""
    return ParseError("could not parse bulk request body", caused_by=cause)


def _json_failure(exc: orjson.JSONDecodeError) -> ServiceError:
    """A line of a bulk body that is not JSON, as ES's parser fails on it."""
    if too_deep(exc):
        return _unparsable_body(ServiceError(NESTING_DEPTH_MESSAGE, status=400, type="stream_constraints_exception"))
    if "end of data" in exc.msg:
        return XContentParseError(f"[1:{exc.colno}] Unexpected end of file", type="x_content_e_o_f_exception")
    return XContentParseError(f"[1:{exc.colno}] {exc.msg}")


def _source_of(raw: bytes) -> tuple[dict[str, Any] | None, ServiceError | None]:
    """An index/create document line: the document, or the error its item fails with."""
    try:
        source = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if not raw.strip():
            return None, DocumentError("[0:0] failed to parse, document is empty")
        return None, too_deep_document() if too_deep(exc) else _doc_failure(1, raw)
    if type(source) is not dict:
        return None, _doc_failure(1, raw)
    return source, None  # a document nested over 1000 levels is refused by the store's parser


@dataclass(slots=True)
class _ActionLine:
    """An action line as read the first time it appears: bulk bodies repeat the same line
    (``{"index":{}}``) thousands of times, and all that the line alone decides is decided once."""

    action: str  # op_type applied
    meta: dict[str, Any]
    index: str | None
    id: str | None
    versioning: Versioning
    retry_on_conflict: int
    # An index or create whose every check but its document's has passed once: each later
    # action of the line passes them too (they read only the line), so they are skipped.
    plain: bool = False


def _read_action(line: bytes, line_no: int, default_index: str | None) -> _ActionLine:
    action, meta = _parse_action(line, line_no)
    versioning, retry_on_conflict = _meta_versioning(meta, line_no)
    if action == "index" and meta.get("op_type") == "create":
        action = "create"
    return _ActionLine(action, meta, meta.get("_index", default_index), meta.get("_id"), versioning,
                       retry_on_conflict)


def parse_bulk(body: bytes, default_index: str | None, require_alias: bool = False) -> list[BulkOp]:
    """Split an NDJSON bulk body into actions as ES's bulk parser does.

    A malformed action line or an update body ES cannot read fails the whole request; then
    ES's validation of every action (index and id present, ids of at most 512 bytes, an
    update with a ``doc``) fails it with every problem listed. A bad document fails only its
    own item. An action left without its document line at the end is dropped, as ES drops it.
    """
    if not body.strip():
        raise ValidationError("no requests added")
    if not body.endswith(b"\n"):
        raise BadRequest("The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")
    last = len(lines) - 1  # lines[last] is the empty text after the final newline
    ops: list[BulkOp] = []
    problems: list[str] = []
    seen: dict[bytes, _ActionLine] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        entry = seen.get(line)
        if entry is None:
            if not line.strip():
                continue
            entry = _read_action(line, i, default_index)
            if len(seen) < 64:
                seen[line] = entry
        raw = None
        if entry.action != "delete":
            if i >= last:
                break  # no document line follows: ES drops the action
            raw = lines[i]
            i += 1
            if raw.endswith(b"\r"):
                raw = raw[:-1]  # as ES trims a carriage return before the newline
            if entry.plain:
                source, error = _source_of(raw)
                ops.append(BulkOp(entry.action, entry.index, entry.id, source, raw if error is None else None,
                                  error, versioning=entry.versioning))
                continue
        op = BulkOp(entry.action, entry.index, entry.id, versioning=entry.versioning)
        if raw is not None:
            _read_document(op, raw)
        op.versioning.checked()
        if op.id == "" and op.action in ("index", "create"):
            op.error = BadRequest("if _id is specified it must not be empty")
        alias_error = bool(op.index and entry.meta.get("require_alias", require_alias))
        if alias_error and op.error is None:
            op.error = _not_an_alias(op.index)  # there are no aliases: such an item always fails
        found = _problems(op)
        validated = _validate(op, entry.retry_on_conflict)
        problems.extend(found)
        problems.extend(p for p in validated if p not in problems)
        if op.action in ("index", "create"):
            entry.plain = not (found or validated or alias_error or op.id == "")
        ops.append(op)
    if not ops:
        problems.append("no requests added")
    if problems:
        raise ValidationError(*problems)
    return ops


def _read_document(op: BulkOp, raw: bytes) -> None:
    """The line after an index, create or update action: its document or update body."""
    if op.action == "update":
        versioning = op.versioning
        if versioning.version != MATCH_ANY or versioning.version_type is not VersionType.INTERNAL:
            raise BadRequest("Update requests do not support versioning. "
                             "Please use `if_seq_no` and `if_primary_term` instead")
        op.source = parse_update_body(raw, bulk=True)
        op.versioning = _body_cas(op.source, versioning, raw)
        if op.source.get("script") is not None:
            op.error = BadRequest("scripted updates are not supported")
    else:
        op.source, op.error = _source_of(raw)
        op.raw = raw if op.error is None else None


def _problems(op: BulkOp) -> list[str]:
    """ES's validation of one action (``IndexRequest.validate`` and its kin)."""
    problems = []
    if op.index is None:
        problems.append("index is missing")
    if op.action in ("delete", "update") and not op.id:
        problems.append("id is missing")
    if op.id is not None and len(op.id.encode()) > MAX_ID_BYTES:
        problems.append(f"id [{op.id}] is too long, must be no longer than {MAX_ID_BYTES} bytes but was: "
                        f"{len(op.id.encode())}")
    if op.action == "update" and op.source is not None:
        problems.extend(_update_problems(op.source))
    return problems


def _malformed(line_no: int, detail: str) -> BadRequest:
    return BadRequest(f"Malformed action/metadata line [{line_no}], {detail}")


def _parse_action(line: bytes, line_no: int) -> tuple[str, dict[str, Any]]:
    """An action line, as ES's bulk parser reads it: ``{"<action>": {<metadata>}}``."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        if "after document" in exc.msg:
            raise _malformed(line_no, "unexpected data after the closing brace") from None
        raise _json_failure(exc) from None
    if not isinstance(data, dict):
        raise _malformed(line_no, f"expected START_OBJECT but found [{token(data)}]")
    if not data:
        raise _malformed(line_no, "expected FIELD_NAME but found [END_OBJECT]")
    action, meta = next(iter(data.items()))
    if action not in _ACTIONS:
        raise _malformed(line_no, f"expected field [create], [delete], [index] or [update] but found [{action}]")
    if not isinstance(meta, dict):
        raise _malformed(line_no, f"expected START_OBJECT or END_OBJECT but found [{token(meta)}]")
    parsed = _parse_meta(action, meta, line, line_no)
    if len(data) > 1:
        raise _malformed(line_no, "expected END_OBJECT but found [FIELD_NAME]")
    if meta.get("dynamic_templates") and action in ("delete", "update"):
        raise BadRequest(f"{action.capitalize()} request in line [{line_no}] does not accept dynamic_templates")
    if action == "update" and parsed.get("require_data_stream"):
        raise BadRequest("Update requests do not support the `require_data_stream` flag, as data streams do not "
                         "support update operations")
    return action, parsed


# Metadata ES reads from an action line, by how it reads the value.
_TEXT_META = frozenset({"_index", "_id", "routing", "op_type", "pipeline", "version_type"})
_LONG_META = frozenset({"version", "if_seq_no", "if_primary_term"})
_BOOLEAN_META = frozenset({"require_alias", "require_data_stream", "list_executed_pipelines"})


def _parse_meta(action: str, meta: dict[str, Any], line: bytes, line_no: int) -> dict[str, Any]:
    """Each metadata value, checked as ES's bulk parser reads it. ``_index``, ``_id`` and the
    other text values become the text of their JSON token (``5`` -> ``"5"``)."""
    out: dict[str, Any] = {}
    for key, value in meta.items():
        if value is None:
            continue  # ES skips null metadata values
        if isinstance(value, list) or isinstance(value, dict) and key not in ("dynamic_templates", "_source"):
            raise _malformed(line_no, f"expected a simple value for field [{key}] but found [{token(value)}]")
        if key in _TEXT_META:
            out[key] = xtext(value, line, [action, key])
        elif key in _LONG_META:
            out[key] = value  # read by the write path that uses it
        elif key in _BOOLEAN_META:
            out[key] = _meta_boolean(value, line, [action, key])
        elif key == "retry_on_conflict":
            out[key] = _meta_int(value, line, [action, key])
        elif key == "_source":
            out[key] = _meta_source(value, line, [action, key])
        elif key == "dynamic_templates" and isinstance(value, dict):
            out[key] = _meta_strings(value, line, [action, key])
        else:
            raise BadRequest(f"Action/metadata line [{line_no}] contains an unknown parameter [{key}]")
    return out


def _meta_boolean(value: Any, line: bytes, path: list[str]) -> bool:
    """``XContentParser.booleanValue()``: a boolean, or ``"true"``/``"false"`` (``""`` is false)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        if value in ("true", "false", ""):
            return value == "true"
        raise BadRequest(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
    raise XContentParseError(f"[{locate(line, path)}] Current token ({_jackson_token(value)}) not of boolean type")


def _meta_int(value: Any, line: bytes, path: list[str]) -> int:
    """``XContentParser.intValue()``: a number (truncated), or a string holding one."""
    if isinstance(value, bool):
        raise XContentParseError(f"[{locate(line, path)}] Current token ({_jackson_token(value)}) not numeric, "
                                 "can not use numeric value accessors")
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            raise ServiceError(f'For input string: "{value}"', status=400, type="number_format_exception") from None
        if not -(2**31) <= number <= 2**31 - 1:
            raise BadRequest(f"Value [{value}] is out of range for an integer")
        return int(number)
    if not -(2**31) <= value <= 2**31 - 1:
        raise XContentParseError(f"[{locate(line, path)}] Numeric value ({xtext(value, line, path)}) out of range "
                                 f"of int (-2147483648 - 2147483647)")
    return int(value)


def _meta_source(value: Any, line: bytes, path: list[str]) -> Any:
    """``FetchSourceContext.fromXContent``: a boolean, a string, or ``{"includes": ..., "excludes": ...}``."""
    if isinstance(value, (bool, str)):
        return value
    if not isinstance(value, dict):
        raise _unparsable_body(ServiceError(f"Expected one of [VALUE_BOOLEAN, START_OBJECT] but found "
                                            f"[{token(value)}]", status=400, type="parsing_exception"))
    for key, item in value.items():
        items = item if isinstance(item, list) else [item]
        if key not in ("includes", "excludes") or not all(isinstance(i, str) for i in items):
            bad = next((i for i in items if not isinstance(i, str)), item)
            raise _unparsable_body(ServiceError(f"Unknown key for a {token(bad)} in [{key}].", status=400,
                                                type="parsing_exception"))
    return value


def _meta_strings(value: dict[str, Any], line: bytes, path: list[str]) -> dict[str, str]:
    """``XContentParser.mapStrings()``: every value read as text."""
    out = {}
    for key, item in value.items():
        if item is None or isinstance(item, (dict, list)):
            raise BadRequest(f"Expected text at {locate(line, [*path, key])} but found {token(item)}")
        out[key] = xtext(item, line, [*path, key])
    return out


def _jackson_token(value: Any) -> str:
    """Jackson's own token names, which its messages use (``VALUE_TRUE``, ``VALUE_NUMBER_INT``)."""
    if isinstance(value, bool):
        return "VALUE_TRUE" if value else "VALUE_FALSE"
    if isinstance(value, int):
        return "VALUE_NUMBER_INT"
    return "VALUE_NUMBER_FLOAT" if isinstance(value, float) else token(value)


# --- update bodies -------------------------------------------------------------------------

# The fields of an update body and the tokens ES's UpdateRequest parser takes for each.
_UPDATE_FIELDS: dict[str, tuple[str, ...]] = {
    "doc": ("START_OBJECT",),
    "upsert": ("START_OBJECT",),
    "script": ("START_OBJECT", "VALUE_STRING"),
    "doc_as_upsert": ("VALUE_BOOLEAN", "VALUE_STRING"),
    "detect_noop": ("VALUE_BOOLEAN", "VALUE_STRING"),
    "scripted_upsert": ("VALUE_BOOLEAN", "VALUE_STRING"),
    "_source": ("START_OBJECT", "START_ARRAY", "VALUE_BOOLEAN", "VALUE_STRING"),
    "if_seq_no": ("VALUE_NUMBER", "VALUE_STRING"),  # read as longs by _body_cas
    "if_primary_term": ("VALUE_NUMBER", "VALUE_STRING"),
}


def parse_update_body(raw: bytes, *, bulk: bool = False) -> dict[str, Any]:
    """An update request body, checked as ES's ``UpdateRequest`` parser reads it: unknown
    fields and values of the wrong kind are ``x_content_parse_exception`` with their location.
    Booleans given as ``"true"``/``"false"`` are read as booleans."""
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _json_failure(exc) from None
    if not isinstance(body, dict):
        raise XContentParseError(f"[1:1] [UpdateRequest] Expected START_OBJECT but was: {token(body)}")
    if nesting_depth_exceeded(body):
        error = ServiceError(NESTING_DEPTH_MESSAGE, status=400, type="stream_constraints_exception")
        raise _unparsable_body(error) if bulk else ParseError("Failed to parse content to map", caused_by=error)
    for key, value in body.items():
        accepted = _UPDATE_FIELDS.get(key)
        if accepted is None:
            raise XContentParseError(f"[{locate(raw, [key], key=True)}] [UpdateRequest] unknown field [{key}]")
        if token(value) not in accepted:
            raise XContentParseError(f"[{locate(raw, [key])}] [UpdateRequest] {key} doesn't support values of "
                                     f"type: {token(value)}")
        if isinstance(value, str) and "VALUE_BOOLEAN" in accepted:
            if value not in ("true", "false", ""):
                raise XContentParseError(
                    f"[{locate(raw, [key])}] [UpdateRequest] failed to parse field [{key}]",
                    caused_by=BadRequest(f"Failed to parse value [{value}] as only [true] or [false] are allowed."))
            body[key] = value == "true"
    return body


def _update_problems(body: dict[str, Any]) -> list[str]:
    """``UpdateRequest.validate``, for its body."""
    problems = []
    if body.get("script") is None and body.get("doc") is None:
        problems.append("script or doc is missing")
    if body.get("script") is not None and body.get("doc") is not None:
        problems.append("can't provide both script and doc")
    if body.get("doc") is None and body.get("doc_as_upsert"):
        problems.append("doc must be specified if doc_as_upsert is enabled")
    return problems


@accepts(*_BULK_PARAMS)
async def bulk(request: web.Request) -> web.Response:
    _check_write_params(request)
    started = time.perf_counter()
    body = await read_body(request, ndjson=True)
    # Parsing a body of up to 100 MB is seconds of Python: on a thread, so the event loop
    # keeps answering (the GIL passes between them every few milliseconds).
    ops = await asyncio.to_thread(parse_bulk, body, request.match_info.get("index"),
                                  query_bool(request.query, "require_alias", False))
    authorize_bulk(request, ops)
    result = await request.app[keys.DOCUMENTS].bulk(ops)
    took = int((time.perf_counter() - started) * 1000)
    return respond(request, {"errors": result.errors, "took": took, "items": result.items})


def _location(index: str, doc_id: str) -> str:
    """The ``Location`` of a created document, each part URL-encoded as Elasticsearch encodes
    it (an id may hold any character, a newline or NUL included)."""
    return f"/{quote(index, safe='')}/_doc/{quote(doc_id, safe='')}"


async def _single(request: web.Request, op: BulkOp) -> web.Response:
    problems = _problems(op)
    if problems:
        raise ValidationError(*problems)
    (item,) = (await request.app[keys.DOCUMENTS].bulk([op])).items
    result = dict(next(iter(item.values())))
    status = result.pop("status")
    if "error" in result:  # raised, so it is rendered as every error is: never filtered
        error = result["error"]
        cause = ServiceError.from_dict(error["caused_by"], status) if isinstance(error.get("caused_by"), dict) else None
        extra = {k: v for k, v in error.items() if k not in ("type", "reason", "caused_by")}
        raise OwnRootCause(error.get("reason"), status=status, type=error.get("type"), caused_by=cause, **extra)
    headers = {"Location": _location(result["_index"], result["_id"])} if status == 201 else None
    return respond(request, result, status=status, headers=headers)


async def _document_op(request: web.Request, doc_id: str | None, op_type: str) -> web.Response:
    _check_single_write(request)
    raw = await read_body(request)
    if not raw.strip():
        raise ServiceError("request body is required", status=400, type="parse_exception")
    versioning = _query_versioning(request)
    action = request.query.get("op_type", op_type).lower()
    if action not in ("index", "create"):
        raise BadRequest(f"opType must be 'create' or 'index', found: [{request.query['op_type']}]")
    op = BulkOp(action, request.match_info["index"], doc_id, versioning=versioning)
    _raise_invalid(op)
    op.source, op.error = _source_of(raw)
    op.raw = raw if op.error is None else None
    return await _single(request, op)


def _raise_invalid(op: BulkOp, retry_on_conflict: int = 0) -> None:
    invalid = _validate(op, retry_on_conflict)
    if invalid:
        raise ValidationError(*invalid)


@accepts(*_WRITE_PARAMS, "op_type")
async def index_doc(request: web.Request) -> web.Response:
    return await _document_op(request, request.match_info["id"], "index")


@accepts(*_WRITE_PARAMS, "op_type")
async def index_auto_id(request: web.Request) -> web.Response:
    # POST without an id is op_type=create unless told otherwise, as in ES.
    return await _document_op(request, None, "create")


@accepts(*_WRITE_PARAMS, "op_type")
async def create_doc(request: web.Request) -> web.Response:
    op_type = request.query.get("op_type")
    if op_type is not None and op_type.lower() != "create":
        raise BadRequest(f"opType must be 'create', found: [{op_type}]")
    return await _document_op(request, request.match_info["id"], "create")


@accepts(*_WRITE_PARAMS, "retry_on_conflict", "lang", "_source", "_source_includes", "_source_excludes")
async def update_doc(request: web.Request) -> web.Response:
    _check_single_write(request)
    retry_on_conflict = query_int(request.query, "retry_on_conflict", 0)
    if "version" in request.query or "version_type" in request.query:
        raise ValidationError("internal versioning can not be used for optimistic concurrency control. "
                              "Please use `if_seq_no` and `if_primary_term` instead")
    versioning = Versioning(MATCH_ANY, VersionType.INTERNAL, *_query_cas(request))
    raw = await read_body(request)
    if not raw.strip():
        raise ParseError("request body is required")
    body = parse_update_body(raw)
    if body.get("script") is not None:
        raise BadRequest("scripted updates are not supported")
    op = BulkOp("update", request.match_info["index"], request.match_info["id"], source=body,
                versioning=_body_cas(body, versioning, raw))
    _raise_invalid(op, retry_on_conflict)
    return await _single(request, op)


@accepts(*_WRITE_PARAMS)
async def delete_doc(request: web.Request) -> web.Response:
    _check_single_write(request)
    name = request.match_info["index"]
    op = BulkOp("delete", name, request.match_info["id"], versioning=_query_versioning(request))
    _raise_invalid(op)
    request.app[keys.CATALOG].get(name)
    return await _single(request, op)


async def _fetch(request: web.Request) -> tuple[str, str, tuple[int, int, bytes] | None]:
    name, doc_id = request.match_info["index"], request.match_info["id"]
    version, version_type = _query_version(request)
    if not version_type.accepts_for_reads(version):
        raise ValidationError(f"illegal version value [{version}] for version type [{version_type.name}]")
    index = request.app[keys.CATALOG].get(name)
    return name, doc_id, await request.app[keys.DOCUMENTS].get(index, doc_id, version, version_type)


_GET_PARAMS = ("realtime", "refresh", "routing", "preference", "stored_fields", "version", "version_type",
               "_source", "_source_includes", "_source_excludes")


@accepts(*_GET_PARAMS)
async def get_doc(request: web.Request) -> web.Response:
    name, doc_id, found = await _fetch(request)
    if found is None:
        return respond(request, {"_index": name, "_id": doc_id, "found": False}, status=404)
    version, seq_no, source = found
    body: dict[str, Any] = {"_index": name, "_id": doc_id, "_version": version, "_seq_no": seq_no,
                            "_primary_term": PRIMARY_TERM, "found": True}
    if request.query.get("_source") != "false":
        body["_source"] = orjson.Fragment(source)
    return respond(request, body)


@accepts(*_GET_PARAMS)
async def doc_exists(request: web.Request) -> web.Response:
    try:
        _, _, found = await _fetch(request)
    except IndexNotFound:
        found = None
    return web.Response(status=200 if found else 404)
