"""Typed keys for everything the app holds: no module-level singletons."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .core.background import BackgroundTasks
from .core.cluster import ClusterSettings
from .core.listing import SearchListing
from .core.queries import Queries
from .core.runner import Runner
from .core.searches import AsyncSearches
from .core.tasks import TaskManager
from .node import Node
from .security.principal import Principal
from .security.service import Security
from .settings import Settings
from .store.catalog import Catalog
from .store.db import Database
from .store.documents import DocumentStore

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
CATALOG = web.AppKey("catalog", Catalog)
DOCUMENTS = web.AppKey("documents", DocumentStore)
NODE = web.AppKey("node", Node)
TASKS = web.AppKey("tasks", TaskManager)
RUNNER = web.AppKey("runner", Runner)
QUERIES = web.AppKey("queries", Queries)
SEARCHES = web.AppKey("searches", AsyncSearches)
CLUSTER_SETTINGS = web.AppKey("cluster_settings", ClusterSettings)
BACKGROUND = web.AppKey("background", BackgroundTasks)
LISTING = web.AppKey("listing", SearchListing)  # every language's stored searches, for the console
CONSOLE_FILES = web.AppKey("console_files", Path)  # the console's static page and files
# present only when security is on; the security step puts the request's principal in PRINCIPAL
SECURITY = web.AppKey("security", Security)
PRINCIPAL = web.RequestKey("principal", Principal)
