"""The app factory: settings in, a ready aiohttp application out."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import AsyncIterator

import structlog
from aiohttp import web

from . import keys
from .core.background import BackgroundTasks
from .core.cluster import ClusterSettings
from .core.languages import Language, Languages
from .core.listing import SearchListing
from .core.queries import Queries
from .core.runner import Runner
from .core.searches import AsyncSearches
from .core.tasks import TaskManager
from .api import cluster, console, documents, eql, esql, indices, root, security, sme, sme_export, tasks
from .api.guard import security_step
from .api.middleware import es_conventions, known_params
from .node import load_node
from .query import eql as eql_language
from .query import esql as esql_language
from .query import sml as sml_language
from .query.sml import request as sml_request
from .runtime import DataDirLock
from .settings import Settings
from .store.background import BackgroundStore
from .store.catalog import Catalog
from .store.cluster_settings import ClusterSettingsStore
from .store.db import Database
from .store.disk import FloodStageBlock
from .store.documents import DocumentStore
from .store.searches import SearchStore
from .store.security import SecurityStore
from .security.service import Security

log = structlog.get_logger(__name__)

# The query languages, handed to the core (which knows none).
LANGUAGES = Languages.of([
    Language("esql", esql_language.__name__, esql_language.interrupted_frame),
    Language("eql", eql_language.__name__, eql_language.interrupted_frame),
    Language("sml", sml_language.__name__, sml_language.interrupted_frame),
])
# The cluster settings the service knows (PUT /_cluster/settings refuses any other).
CLUSTER_SETTINGS = sml_request.SETTINGS


async def _store(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    # Before the database opens: a second process on the same directory would rewrite the
    # stored mappings from its own stale catalog.
    lock = DataDirLock(settings.data_dir)
    lock.acquire(f"{settings.host}:{settings.port}")
    try:
        async with _opened_store(app):
            yield
    finally:
        lock.release()


@contextlib.asynccontextmanager
async def _opened_store(app: web.Application) -> AsyncIterator[None]:
    settings = app[keys.SETTINGS]
    db = Database(settings.db_path, synchronous=settings.sqlite_synchronous, readers=settings.read_connections,
                  disk=settings.disk_policy)
    await db.open()
    try:
        await _load(app, db)
    except FloodStageBlock:  # a start-up write met a full disk: exit with one line, never half-started
        await db.close()
        raise db.disk.no_space() from None
    except BaseException:
        await db.close()
        raise
    runner = app[keys.RUNNER]
    try:
        yield
    finally:
        await app[keys.SEARCHES].shutdown()
        await runner.close()
        await db.close()


async def _load(app: web.Application, db: Database) -> None:
    """Everything built on the open database: catalog, node ids, the search lifecycle."""
    settings = app[keys.SETTINGS]
    catalog = Catalog()
    async with db.read() as conn:
        await catalog.load(conn)
    app[keys.DATABASE] = db
    app[keys.CATALOG] = catalog
    app[keys.DOCUMENTS] = DocumentStore(db, catalog)
    node = app[keys.NODE] = await load_node(db, settings)
    store = SearchStore(db, max_searches=settings.max_stored_searches, max_bytes=settings.max_stored_search_bytes)
    interrupted = await store.finish_interrupted(LANGUAGES.interrupted_frame)
    if interrupted:
        log.warning("searches interrupted by the last shutdown finished as partial", count=interrupted)
    background = BackgroundStore(db)
    interrupted = await background.finish_interrupted(int(time.time() * 1000))
    if interrupted:
        log.warning("background_tasks_interrupted", count=interrupted)
    cluster_settings = app[keys.CLUSTER_SETTINGS] = ClusterSettings(ClusterSettingsStore(db), CLUSTER_SETTINGS)
    await cluster_settings.load()
    manager = app[keys.TASKS] = TaskManager(node.id, node.name)
    runner = app[keys.RUNNER] = Runner(db.path, settings.max_running_queries, settings.max_queued_queries,
                                       settings.query_memory_limit, LANGUAGES)
    runner.pool.warm_up()
    queries = app[keys.QUERIES] = Queries(manager, runner)
    searches = app[keys.SEARCHES] = AsyncSearches(store, queries)
    background_tasks = app[keys.BACKGROUND] = BackgroundTasks(searches, background)
    app[keys.LISTING] = SearchListing(searches, background_tasks)
    if settings.security_enabled:
        await _secure(app, db)


async def _secure(app: web.Application, db: Database) -> None:
    """Security on: the users, roles and keys, and the ``elastic`` superuser at the first start.
    A generated password is shown once, on stderr and never in a log line."""
    security = app[keys.SECURITY] = Security(SecurityStore(db))
    generated = await security.bootstrap(app[keys.SETTINGS].bootstrap_password or None)
    if generated is not None:
        print(f"esquire: security is on; the password of the elastic superuser is: {generated}\n"
              "esquire: it is shown this once; change it with POST /_security/user/elastic/_password",
              file=sys.stderr, flush=True)


async def _drain(app: web.Application) -> None:
    """The first step of a shutdown, once the listening socket is closed: async searches are
    stopped (each stores what it has), every running query gets ``shutdown_grace_seconds``
    to end, and the rest are cancelled (their clients get ``task_cancelled_exception``)."""
    if keys.RUNNER not in app:  # the start failed before the store was open
        return
    grace = app[keys.SETTINGS].shutdown_grace_seconds
    await asyncio.gather(app[keys.SEARCHES].shutdown(timeout_s=grace), app[keys.RUNNER].drain(grace))


async def _reaper(app: web.Application) -> AsyncIterator[None]:
    """Deletes expired async searches (and cancels expired running ones) periodically."""
    interval = app[keys.SETTINGS].reaper_interval_seconds

    async def sweep() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                removed = await app[keys.SEARCHES].reap()
                if removed:
                    log.info("expired searches deleted", count=removed)
            except Exception:  # noqa: BLE001 - the reaper must outlive one bad sweep
                log.exception("reaper sweep failed")

    task = asyncio.create_task(sweep())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _routes(app: web.Application) -> None:
    r = app.router
    # Fixed paths first: aiohttp matches in registration order, and "/{index}" would
    # otherwise swallow "/_bulk" and friends.
    r.add_get("/", root.info, allow_head=False)
    r.add_head("/", root.ping)
    _console_routes(r)
    r.add_route("POST", "/_bulk", documents.bulk)
    r.add_route("PUT", "/_bulk", documents.bulk)
    r.add_post("/_query", esql.query)
    r.add_post("/_query/async", esql.async_query)
    r.add_get("/_query/async/{id}", esql.async_get, allow_head=False)
    r.add_post("/_query/async/{id}/stop", esql.async_stop)
    r.add_delete("/_query/async/{id}", esql.async_delete)
    r.add_get("/_eql/search/status/{id}", eql.status, allow_head=False)
    r.add_get("/_eql/search/{id}", eql.get, allow_head=False)
    r.add_delete("/_eql/search/{id}", eql.delete)
    r.add_get("/_cluster/settings", cluster.get_settings, allow_head=False)
    r.add_put("/_cluster/settings", cluster.put_settings)
    r.add_post("/_sme/async_requests/request", sme.create)
    r.add_get("/_sme/async_requests/response/{id}", sme.response, allow_head=False)
    r.add_get("/_sme/async_requests/logs/{id}", sme.logs, allow_head=False)
    for slash in ("", "/"):
        r.add_get(f"/_sme/async_requests/status{slash}", sme.status_all, allow_head=False)
        r.add_post(f"/_sme/async_requests/break{slash}", sme.stop_all)
    r.add_get("/_sme/async_requests/status/{id}", sme.status, allow_head=False)
    r.add_post("/_sme/async_requests/break/{id}", sme.stop)
    r.add_delete("/_sme/async_requests/delete/{id}", sme.delete)
    r.add_post("/_sme/async_requests/file_download/{id}", sme_export.file_download)
    r.add_get("/_tasks", tasks.list_tasks, allow_head=False)
    r.add_post("/_tasks/_cancel", tasks.cancel_tasks)
    r.add_get("/_tasks/{task_id}", tasks.get_task, allow_head=False)
    r.add_post("/_tasks/{task_id}/_cancel", tasks.cancel_tasks)
    r.add_get("/_mapping", indices.get_mapping, allow_head=False)
    r.add_route("POST", "/_refresh", indices.refresh)
    r.add_get("/_refresh", indices.refresh, allow_head=False)
    r.add_get("/_cat/indices", indices.cat_indices, allow_head=False)
    r.add_get("/_cat/indices/{index}", indices.cat_indices, allow_head=False)
    if app[keys.SETTINGS].security_enabled:  # off, they are unknown routes, as before security existed
        _security_routes(r)

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
    r.add_get("/{index}/_eql/search", eql.search, allow_head=False)
    r.add_post("/{index}/_eql/search", eql.search)
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


def _console_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/_console", console.page, allow_head=False)
    r.add_get("/_console/", console.page, allow_head=False)
    r.add_get("/_console/static/{name}", console.static, allow_head=False)
    r.add_get("/_console/api/session", console.session, allow_head=False)
    r.add_post("/_console/api/session", console.login)
    r.add_delete("/_console/api/session", console.logout)
    r.add_get("/_console/api/searches", console.searches, allow_head=False)
    r.add_get("/_console/api/searches/{id}/rows", console.rows, allow_head=False)
    r.add_post("/_console/api/searches/{id}/_download", console.download)


def _security_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/_security/_authenticate", security.authenticate, allow_head=False)
    r.add_get("/_security/user", security.get_users, allow_head=False)
    for method in ("PUT", "POST"):
        r.add_route(method, "/_security/user/_password", security.change_password)
        r.add_route(method, "/_security/user/{name}/_password", security.change_password)
        r.add_route(method, "/_security/user/{name}", security.put_user)
        r.add_route(method, "/_security/role/{name}", security.put_role)
        r.add_route(method, "/_security/api_key", security.create_api_key)
    r.add_get("/_security/user/{name}", security.get_users, allow_head=False)
    r.add_delete("/_security/user/{name}", security.delete_user)
    r.add_get("/_security/role", security.get_roles, allow_head=False)
    r.add_get("/_security/role/{name}", security.get_roles, allow_head=False)
    r.add_delete("/_security/role/{name}", security.delete_role)
    r.add_get("/_security/api_key", security.get_api_keys, allow_head=False)
    r.add_delete("/_security/api_key", security.invalidate_api_keys)


def create_app(settings: Settings) -> web.Application:
    # The security step runs inside es_conventions, so its 401 and 403 are rendered as every error is,
    # and before the parameter check, as Elasticsearch authenticates before its handlers read them.
    app = web.Application(middlewares=[es_conventions, security_step, known_params],
                          client_max_size=settings.max_body_bytes)
    app[keys.SETTINGS] = settings
    app[keys.CONSOLE_FILES] = console.STATIC
    app.cleanup_ctx.append(_store)
    app.cleanup_ctx.append(_reaper)
    app.on_shutdown.append(_drain)
    _routes(app)
    return app
