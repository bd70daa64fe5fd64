"""The app factory: settings in, a ready aiohttp application out."""

from __future__ import annotations

from typing import AsyncIterator

from aiohttp import web

from . import keys
from .api import documents, esql, indices, root
from .api.middleware import es_conventions
from .node import load_node
from .settings import Settings
from .store.catalog import Catalog
from .store.db import Database
from .store.documents import DocumentStore


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    db = Database(settings.db_path, synchronous=settings.sqlite_synchronous, readers=settings.read_connections)
    await db.open()
    catalog = Catalog()
    async with db.read() as conn:
        await catalog.load(conn)
    app[keys.DATABASE] = db
    app[keys.CATALOG] = catalog
    app[keys.DOCUMENTS] = DocumentStore(db, catalog)
    app[keys.NODE] = await load_node(db, settings)
    try:
        yield
    finally:
        await db.close()


def _routes(app: web.Application) -> None:
    r = app.router
    # Fixed paths first: aiohttp matches in registration order, and "/{index}" would
    # otherwise swallow "/_bulk" and friends.
    r.add_get("/", root.info, allow_head=False)
    r.add_head("/", root.ping)
    r.add_route("POST", "/_bulk", documents.bulk)
    r.add_route("PUT", "/_bulk", documents.bulk)
    r.add_post("/_query", esql.query)
    r.add_get("/_mapping", indices.get_mapping, allow_head=False)
    r.add_route("POST", "/_refresh", indices.refresh)
    r.add_get("/_refresh", indices.refresh, allow_head=False)
    r.add_get("/_cat/indices", indices.cat_indices, allow_head=False)
    r.add_get("/_cat/indices/{index}", indices.cat_indices, allow_head=False)

    r.add_put("/{index}", indices.create)
    r.add_delete("/{index}", indices.delete)
    r.add_head("/{index}", indices.exists)
    r.add_get("/{index}", indices.get, allow_head=False)
    r.add_get("/{index}/_mapping", indices.get_mapping, allow_head=False)
    r.add_put("/{index}/_mapping", indices.put_mapping)
    r.add_post("/{index}/_mapping", indices.put_mapping)
    r.add_post("/{index}/_refresh", indices.refresh)
    r.add_get("/{index}/_refresh", indices.refresh, allow_head=False)
    r.add_get("/{index}/_count", indices.count, allow_head=False)
    r.add_post("/{index}/_count", indices.count)
    r.add_post("/{index}/_bulk", documents.bulk)
    r.add_put("/{index}/_bulk", documents.bulk)
    r.add_post("/{index}/_doc", documents.index_auto_id)
    r.add_put("/{index}/_doc/{id}", documents.index_doc)
    r.add_post("/{index}/_doc/{id}", documents.index_doc)
    r.add_put("/{index}/_create/{id}", documents.create_doc)
    r.add_post("/{index}/_create/{id}", documents.create_doc)
    r.add_get("/{index}/_doc/{id}", documents.get_doc, allow_head=False)
    r.add_head("/{index}/_doc/{id}", documents.doc_exists)
    r.add_delete("/{index}/_doc/{id}", documents.delete_doc)
    r.add_post("/{index}/_update/{id}", documents.update_doc)


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[es_conventions], client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app.cleanup_ctx.append(_store)
    _routes(app)
    return app
