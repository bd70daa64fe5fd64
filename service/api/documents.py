"""Document APIs: ``_bulk``, ``_doc``, ``_create``, ``_update``."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from .. import keys
from ..errors import BadRequest, IndexNotFound, ServiceError, ValidationError, XContentParseError
from ..store.documents import PRIMARY_TERM, BulkOp
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
    missing_index = 0
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
        if index is None:
            missing_index += 1
        op = BulkOp(action, index, doc_id)
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
                if not isinstance(source, dict):
                    raise XContentParseError(f"[{i}:1] [UpdateRequest] failed to parse update request body")
                op.source = source
            elif not isinstance(source, dict):
                op.error = _doc_failure(i, raw)
            else:
                op.source, op.raw = source, raw
        ops.append(op)
    if missing_index:
        raise ValidationError(*["index is missing"] * missing_index)
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


async def _document_op(request: web.Request, action: str, doc_id: str | None) -> web.Response:
    _check_refresh(request)
    raw = await read_body(request)
    if not raw.strip():
        raise ServiceError("request body is required", status=400, type="parse_exception")
    op = BulkOp(action, request.match_info["index"], doc_id)
    try:
        source = orjson.loads(raw)
    except orjson.JSONDecodeError:
        source = None
    if isinstance(source, dict):
        op.source, op.raw = source, raw
    else:
        op.error = _doc_failure(1, raw)
    return await _single(request, op)


@accepts(*_WRITE_PARAMS, "op_type")
async def index_doc(request: web.Request) -> web.Response:
    op_type = request.query.get("op_type", "index")
    if op_type not in ("index", "create"):
        raise BadRequest(f"opType must be 'create' or 'index', found: [{op_type}]")
    return await _document_op(request, op_type, request.match_info["id"])


@accepts(*_WRITE_PARAMS, "op_type")
async def index_auto_id(request: web.Request) -> web.Response:
    return await _document_op(request, "index", None)


@accepts(*_WRITE_PARAMS)
async def create_doc(request: web.Request) -> web.Response:
    return await _document_op(request, "create", request.match_info["id"])


@accepts(*_WRITE_PARAMS, "retry_on_conflict", "lang", "_source", "_source_includes", "_source_excludes")
async def update_doc(request: web.Request) -> web.Response:
    _check_refresh(request)
    body = parse_json_object(await read_body(request))
    for key in body:
        if key not in ("doc", "upsert", "doc_as_upsert", "detect_noop", "scripted_upsert", "_source", "script"):
            raise XContentParseError(f"[1:2] [UpdateRequest] unknown field [{key}]")
    if "script" in body:
        raise BadRequest("scripted updates are not supported")
    op = BulkOp("update", request.match_info["index"], request.match_info["id"], source=body)
    return await _single(request, op)


@accepts(*_WRITE_PARAMS)
async def delete_doc(request: web.Request) -> web.Response:
    _check_refresh(request)
    request.app[keys.CATALOG].get(request.match_info["index"])
    return await _single(request, BulkOp("delete", request.match_info["index"], request.match_info["id"]))


async def _fetch(request: web.Request) -> tuple[str, str, tuple[int, int, bytes] | None]:
    name, doc_id = request.match_info["index"], request.match_info["id"]
    index = request.app[keys.CATALOG].get(name)
    return name, doc_id, await request.app[keys.DOCUMENTS].get(index, doc_id)


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
