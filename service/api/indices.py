"""Index administration: create, delete, exists, get, mappings, refresh, ``_cat/indices``, ``_count``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys
from ..errors import IndexNotFound, ParseError
from ..params import query_bool
from ..store.catalog import Index, validate_index_name
from ..store.index_settings import nested
from .guard import within_reach
from .middleware import accepts
from .wire import read_json, respond

_RESOLVE_PARAMS = ("allow_no_indices", "expand_wildcards", "ignore_unavailable")
_CREATE_FIELDS = frozenset({"settings", "mappings", "aliases"})


def _resolve(request: web.Request, default: str = "_all") -> list[Index]:
    """The indices of the path's expression (or ``default``): with security on, an index-less
    route's among those the principal may act on (``guard.within_reach``)."""
    expression = request.match_info.get("index", default)
    return within_reach(request, expression).resolve(
        expression,
        allow_no_indices=query_bool(request.query, "allow_no_indices", True),
        ignore_unavailable=query_bool(request.query, "ignore_unavailable", False),
    )


@accepts("wait_for_active_shards", "timeout", "master_timeout")
async def create(request: web.Request) -> web.Response:
    name = request.match_info["index"]
    validate_index_name(name)
    body = await read_json(request, "create_index")
    for key in body:
        if key not in _CREATE_FIELDS:
            raise ParseError(f"unknown key [{key}] for create index")
    settings = body.get("settings")
    if settings is not None and not isinstance(settings, dict):
        raise ParseError("key [settings] must be an object")
    mappings = body.get("mappings")
    await request.app[keys.DOCUMENTS].create_index(name, settings or {}, {} if mappings is None else mappings)
    return respond(request, {"acknowledged": True, "shards_acknowledged": True, "index": name})


@accepts("timeout", "master_timeout", *_RESOLVE_PARAMS)
async def delete(request: web.Request) -> web.Response:
    indices = _resolve(request)
    await request.app[keys.DOCUMENTS].delete_indices(indices)
    return respond(request, {"acknowledged": True})


@accepts("local", "flat_settings", "include_defaults", *_RESOLVE_PARAMS)
async def exists(request: web.Request) -> web.Response:
    try:
        found = _resolve(request)
    except IndexNotFound:
        found = []
    return web.Response(status=200 if found else 404)


def _mapping_of(index: Index) -> dict[str, Any]:
    """The mapping as ES prints it: fields sorted by name at every level."""
    return _sorted_properties(index.mapping)


def _sorted_properties(node: dict[str, Any]) -> dict[str, Any]:
    out = dict(node)
    if isinstance(node.get("properties"), dict):
        out["properties"] = {k: _sorted_properties(v) for k, v in sorted(node["properties"].items())}
    return out


def _settings_of(index: Index, flat: bool) -> dict[str, object]:
    """The index's settings as ES shows them: what was set, with the ones ES always shows,
    sorted by key, nested unless ``flat_settings``."""
    shown = {"index.creation_date": str(index.created_ms), "index.number_of_replicas": "1",
             "index.number_of_shards": "1", "index.provided_name": index.name, "index.uuid": index.uuid,
             "index.version.created": "9039000", **index.settings}
    shown = dict(sorted(shown.items()))
    return shown if flat else nested(shown)


@accepts("local", "flat_settings", "include_defaults", "features", "master_timeout", *_RESOLVE_PARAMS)
async def get(request: web.Request) -> web.Response:
    flat = query_bool(request.query, "flat_settings", False)
    out = {index.name: {"aliases": {}, "mappings": _mapping_of(index), "settings": _settings_of(index, flat)}
           for index in _resolve(request)}
    return respond(request, out)


@accepts("local", "master_timeout", *_RESOLVE_PARAMS)
async def get_mapping(request: web.Request) -> web.Response:
    return respond(request, {index.name: {"mappings": _mapping_of(index)} for index in _resolve(request)})


@accepts("timeout", "master_timeout", "write_index_only", *_RESOLVE_PARAMS)
async def put_mapping(request: web.Request) -> web.Response:
    indices = _resolve(request)
    body = await read_json(request, "put_mapping", required=True)
    await request.app[keys.DOCUMENTS].put_mapping(indices, body)
    return respond(request, {"acknowledged": True})


@accepts(*_RESOLVE_PARAMS)
async def refresh(request: web.Request) -> web.Response:
    # Writes are visible as soon as they are acknowledged; refresh only checks the names.
    indices = _resolve(request)
    total = 2 * len(indices)
    return respond(request, {"_shards": {"total": total, "successful": len(indices), "failed": 0}})


@accepts("q", "analyzer", "default_operator", "df", "lenient", "min_score", "routing", "terminate_after",
         "preference", *_RESOLVE_PARAMS)
async def count(request: web.Request) -> web.Response:
    indices = _resolve(request)
    body = await read_json(request, "count", frozenset({"query"}))
    if body.get("query") not in (None, {"match_all": {}}) or "q" in request.query:
        raise ParseError("only match_all queries are supported by _count")
    documents = request.app[keys.DOCUMENTS]
    total = sum([await documents.count(index) for index in indices])
    return respond(request, {"count": total, "_shards": {"total": len(indices), "successful": len(indices),
                                                          "skipped": 0, "failed": 0}})


_CAT_COLUMNS = ("health", "status", "index", "uuid", "pri", "rep", "docs.count", "docs.deleted", "store.size",
                "pri.store.size", "dataset.size")


@accepts("format", "v", "h", "s", "bytes", "health", "pri", "help", "local", "master_timeout",
         "expand_wildcards", "include_unloaded_segments", "time")
async def cat_indices(request: web.Request) -> web.Response:
    documents = request.app[keys.DOCUMENTS]
    rows = []
    for index in _resolve(request):
        n = await documents.count(index)
        rows.append({"health": "yellow", "status": "open", "index": index.name, "uuid": index.uuid, "pri": "1",
                     "rep": "1", "docs.count": str(n), "docs.deleted": "0", "store.size": "0b",
                     "pri.store.size": "0b", "dataset.size": "0b"})
    wanted = request.query.get("h")
    columns = [c.strip() for c in wanted.split(",")] if wanted else list(_CAT_COLUMNS)
    rows = [{c: row.get(c) for c in columns} for row in rows]
    if request.query.get("s"):
        key, _, order = request.query["s"].partition(":")
        rows.sort(key=lambda r: r.get(key) or "", reverse=order == "desc")
    if request.query.get("format") == "json":
        return respond(request, rows)
    lines = [[str(r[c]) for c in columns] for r in rows]
    if query_bool(request.query, "v", False):
        lines.insert(0, columns)
    widths = [max((len(line[i]) for line in lines), default=0) for i in range(len(columns))]
    text = "".join(" ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() + "\n" for line in lines)
    return web.Response(text=text, content_type="text/plain")
