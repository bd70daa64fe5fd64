"""Document APIs: ``_bulk``, ``_doc``, ``_create``, ``_update``."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import orjson
from aiohttp import web

from .. import keys
from ..errors import BadRequest, IndexNotFound, ServiceError, ValidationError, XContentParseError
from ..params import content_int, content_long, java_long, query_int, query_long
from ..store.documents import PRIMARY_TERM, BulkOp
from ..store.versioning import (
    MATCH_ANY, NO_VERSIONING, UNASSIGNED_PRIMARY_TERM, UNASSIGNED_SEQ_NO, Versioning, VersionType,
    check_primary_term, check_seq_no, problems,
)
from .middleware import accepts
from .wire import parse_json_object, read_body, respond

_WRITE_PARAMS = ("refresh", "routing", "timeout", "wait_for_active_shards", "pipeline", "require_alias",
                 "require_data_stream", "version", "version_type", "if_seq_no", "if_primary_term",
                 "include_source_on_error")
_BULK_PARAMS = (*_WRITE_PARAMS, "_source", "_source_includes", "_source_excludes", "list_executed_pipelines")
_ACTIONS = ("create", "delete", "index", "update")
_META_KEYS = {"_index", "_id", "routing", "_routing", "if_seq_no", "if_primary_term", "version", "version_type",
              "pipeline", "require_alias", "require_data_stream", "dynamic_templates", "retry_on_conflict",
              "op_type", "list_executed_pipelines", "_source"}
_REFRESH_VALUES = ("", "true", "false", "wait_for")


def _check_refresh(request: web.Request) -> None:
    value = request.query.get("refresh")
    if value is not None and value not in _REFRESH_VALUES:
        raise BadRequest(f"Unknown value for refresh: [{value}].")


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


def _body_cas(body: dict[str, Any], versioning: Versioning) -> Versioning:
    """An update body's own ``if_seq_no``/``if_primary_term``, which override the request's."""
    fields = {}
    for key, check in (("if_seq_no", check_seq_no), ("if_primary_term", check_primary_term)):
        if key not in body:
            continue
        value = body[key]
        if value is None or isinstance(value, (bool, list, dict)):
            token = ("VALUE_NULL" if value is None else "VALUE_BOOLEAN" if isinstance(value, bool)
                     else "START_ARRAY" if isinstance(value, list) else "START_OBJECT")
            raise XContentParseError(f"[1:2] [UpdateRequest] {key} doesn't support values of type: {token}")
        try:
            fields[key] = check(content_long(value))
        except ServiceError as err:
            raise XContentParseError(f"[1:2] [UpdateRequest] failed to parse field [{key}]", caused_by=err) from None
    return replace(versioning, **fields) if fields else versioning


def _validate(op: BulkOp, retry_on_conflict: int = 0) -> list[str]:
    """ES's versioning validation of one request (an update also looks at its body)."""
    body = op.source if op.action == "update" and op.source is not None else {}
    return problems(op.action, op.id, op.versioning, retry_on_conflict=retry_on_conflict,
                    doc_as_upsert=bool(body.get("doc_as_upsert")), upsert="upsert" in body)


def _doc_failure(line_no: int, raw: bytes) -> ServiceError:
    return ServiceError("failed to parse", status=400, type="document_parsing_exception",
                        caused_by=ServiceError(f"Unexpected character in document on line [{line_no}]", status=400,
                                               type="json_parse_exception"))


def parse_bulk(body: bytes, default_index: str | None) -> list[BulkOp]:
    """Split an NDJSON bulk body into actions. Malformed action lines fail the request;
    a bad document fails only its own item."""
    if not body.strip():
        raise ValidationError("no requests added")
    if not body.endswith(b"\n"):
        raise BadRequest("The bulk request must be terminated by a newline [\\n]")
    lines = body.split(b"\n")
    ops: list[BulkOp] = []
    invalid: list[str] = []  # ES validates every item once the whole body is parsed
    # Bulk bodies repeat the same action line ({"index":{}}) thousands of times.
    seen_actions: dict[bytes, tuple[str, dict[str, Any]]] = {}
    i = 0
    while i < len(lines):
        line = lines[i]
        i += 1
        if not line.strip():
            continue
        line_no = i
        parsed = seen_actions.get(line)
        if parsed is None:
            parsed = _parse_action(line, line_no)
            if len(seen_actions) < 64:
                seen_actions[line] = parsed
        action, meta = parsed
        index = meta.get("_index", default_index)
        doc_id = meta.get("_id")
        if doc_id is not None:
            doc_id = str(doc_id)
            if not doc_id:
                raise ValidationError("if _id is specified it must not be empty")
        versioning, retry_on_conflict = _meta_versioning(meta, line_no)
        if action == "index" and meta.get("op_type") == "create":
            action = "create"
        op = BulkOp(action, index, doc_id, versioning=versioning)
        if action != "delete":
            if i >= len(lines) or (not lines[i].strip() and i == len(lines) - 1):
                raise BadRequest(f"Malformed action/metadata line [{line_no}], expected a source line for "
                                 f"[{action}] action")
            raw = lines[i]
            i += 1
            try:
                source = orjson.loads(raw)
            except orjson.JSONDecodeError:
                source = None
            if action == "update":
                if versioning.version != MATCH_ANY or versioning.version_type is not VersionType.INTERNAL:
                    raise BadRequest("Update requests do not support versioning. "
                                     "Please use `if_seq_no` and `if_primary_term` instead")
                if not isinstance(source, dict):
                    raise XContentParseError(f"[{i}:1] [UpdateRequest] failed to parse update request body")
                op.source = source
                op.versioning = _body_cas(source, versioning)
            elif not isinstance(source, dict):
                op.error = _doc_failure(i, raw)
            else:
                op.source, op.raw = source, raw
        op.versioning.checked()
        if index is None:
            invalid.append("index is missing")
        invalid += _validate(op, retry_on_conflict)
        ops.append(op)
    if invalid:
        raise ValidationError(*invalid)
    if not ops:
        raise ValidationError("no requests added")
    return ops


def _parse_action(line: bytes, line_no: int) -> tuple[str, dict[str, Any]]:
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise XContentParseError(f"[{line_no}:1] Malformed action/metadata line [{line_no}]: {exc}") from None
    if not isinstance(data, dict):
        found = "START_ARRAY" if isinstance(data, list) else "VALUE_STRING" if isinstance(data, str) else "VALUE_NUMBER"
        raise BadRequest(f"Malformed action/metadata line [{line_no}], expected START_OBJECT but found [{found}]")
    if len(data) != 1:
        raise BadRequest(f"Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] "
                         f"or [update] but found [{next(iter(data), '')}]" if data else
                         f"Malformed action/metadata line [{line_no}], expected FIELD_NAME but found [END_OBJECT]")
    (action, meta), = data.items()
    if action not in _ACTIONS:
        raise BadRequest(f"Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] "
                         f"or [update] but found [{action}]")
    if not isinstance(meta, dict):
        raise BadRequest(f"Malformed action/metadata line [{line_no}], expected START_OBJECT but found "
                         f"[VALUE_STRING]")
    for key in meta:
        if key not in _META_KEYS:
            raise BadRequest(f"Action/metadata line [{line_no}] contains an unknown parameter [{key}]")
    return action, meta


@accepts(*_BULK_PARAMS)
async def bulk(request: web.Request) -> web.Response:
    _check_refresh(request)
    started = time.perf_counter()
    body = await read_body(request, ndjson=True)
    ops = parse_bulk(body, request.match_info.get("index"))
    items = await request.app[keys.DOCUMENTS].bulk(ops)
    errors = any("error" in next(iter(item.values())) for item in items)
    took = int((time.perf_counter() - started) * 1000)
    return respond(request, {"errors": errors, "took": took, "items": items})


async def _single(request: web.Request, op: BulkOp) -> web.Response:
    (item,) = await request.app[keys.DOCUMENTS].bulk([op])
    result = dict(next(iter(item.values())))
    status = result.pop("status")
    if "error" in result:
        error = result["error"]
        return respond(request, {"error": {"root_cause": [{k: v for k, v in error.items() if k != "caused_by"}],
                                           **error}, "status": status}, status=status)
    headers = {"Location": f"/{result['_index']}/_doc/{result['_id']}"} if status == 201 else None
    return respond(request, result, status=status, headers=headers)


async def _document_op(request: web.Request, doc_id: str | None, op_type: str) -> web.Response:
    _check_refresh(request)
    raw = await read_body(request)
    if not raw.strip():
        raise ServiceError("request body is required", status=400, type="parse_exception")
    versioning = _query_versioning(request)
    action = request.query.get("op_type", op_type).lower()
    if action not in ("index", "create"):
        raise BadRequest(f"opType must be 'create' or 'index', found: [{request.query['op_type']}]")
    op = BulkOp(action, request.match_info["index"], doc_id, versioning=versioning)
    _raise_invalid(op)
    try:
        source = orjson.loads(raw)
    except orjson.JSONDecodeError:
        source = None
    if isinstance(source, dict):
        op.source, op.raw = source, raw
    else:
        op.error = _doc_failure(1, raw)
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


_UPDATE_FIELDS = ("doc", "upsert", "doc_as_upsert", "detect_noop", "scripted_upsert", "_source", "script",
                  "if_seq_no", "if_primary_term")


@accepts(*_WRITE_PARAMS, "retry_on_conflict", "lang", "_source", "_source_includes", "_source_excludes")
async def update_doc(request: web.Request) -> web.Response:
    _check_refresh(request)
    retry_on_conflict = query_int(request.query, "retry_on_conflict", 0)
    if "version" in request.query or "version_type" in request.query:
        raise ValidationError("internal versioning can not be used for optimistic concurrency control. "
                              "Please use `if_seq_no` and `if_primary_term` instead")
    versioning = Versioning(MATCH_ANY, VersionType.INTERNAL, *_query_cas(request))
    body = parse_json_object(await read_body(request))
    for key in body:
        if key not in _UPDATE_FIELDS:
            raise XContentParseError(f"[1:2] [UpdateRequest] unknown field [{key}]")
    if "script" in body:
        raise BadRequest("scripted updates are not supported")
    op = BulkOp("update", request.match_info["index"], request.match_info["id"], source=body,
                versioning=_body_cas(body, versioning))
    _raise_invalid(op, retry_on_conflict)
    return await _single(request, op)


@accepts(*_WRITE_PARAMS)
async def delete_doc(request: web.Request) -> web.Response:
    _check_refresh(request)
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
