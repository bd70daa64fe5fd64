"""``GET /`` (cluster info) and ``HEAD /`` (ping)."""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..node import BUILD_DATE, ES_VERSION, LUCENE_VERSION
from .middleware import accepts
from .wire import respond


@accepts()
async def info(request: web.Request) -> web.Response:
    node = request.app[keys.NODE]
    return respond(request, {
        "name": node.name,
        "cluster_name": node.cluster_name,
        "cluster_uuid": node.cluster_uuid,
        "version": {
            "number": ES_VERSION,
            "build_flavor": "default",
            "build_type": "tar",
            "build_hash": "esquire",
            "build_date": BUILD_DATE,
            "build_snapshot": False,
            "lucene_version": LUCENE_VERSION,
            "minimum_wire_compatibility_version": "8.19.0",
            "minimum_index_compatibility_version": "8.0.0",
        },
        "tagline": "You Know, for Search",
    })


@accepts()
async def ping(request: web.Request) -> web.Response:
    return web.Response(status=200)
