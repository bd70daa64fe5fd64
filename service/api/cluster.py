"""``PUT|GET /_cluster/settings``, as Elasticsearch answers them: settings nested by their
dotted names unless ``flat_settings``, ``defaults`` only with ``include_defaults``."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .. import keys
from ..core.cluster import SCOPES, nest
from ..params import query_bool
from .middleware import accepts
from .wire import read_json, respond


def _shaped(request: web.Request, flat: dict[str, str]) -> dict[str, Any]:
    return dict(sorted(flat.items())) if query_bool(request.query, "flat_settings", False) else nest(flat)


@accepts("flat_settings", "include_defaults", "master_timeout", "timeout", "local")
async def get_settings(request: web.Request) -> web.Response:
    settings = request.app[keys.CLUSTER_SETTINGS]
    body = {scope: _shaped(request, settings.values[scope]) for scope in SCOPES}
    if query_bool(request.query, "include_defaults", False):
        body["defaults"] = _shaped(request, settings.defaults())
    return respond(request, body)


@accepts("flat_settings", "master_timeout", "timeout")
async def put_settings(request: web.Request) -> web.Response:
    body = await read_json(request, "cluster_update_settings_request", frozenset(SCOPES), required=True)
    applied = await request.app[keys.CLUSTER_SETTINGS].update(body)
    return respond(request, {"acknowledged": True, **{scope: _shaped(request, applied[scope]) for scope in SCOPES}})
