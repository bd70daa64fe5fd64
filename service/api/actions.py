"""Every route's Elasticsearch action name, and which indices it acts on: the table the
security step authorizes by, read at a glance beside ``app._routes``.

``index`` says where the indices are: ``PATH`` (the ``{index}`` of the path, a comma-separated
expression), ``ANY`` (a composite request, ``_bulk``: the privilege on some index lets it in,
and each item is then checked on its own index, as ES does), ``SOURCES`` (a query: the
privilege on some index lets it in, and its handler resolves the query's sources among the
indices the principal may read, ``guard.readable``; the index-less ``_mapping``, ``_refresh``
and ``_cat/indices`` likewise act on the indices it may), ``OWN`` (an async result or
background task: any authenticated principal, who is then shown only its own,
``core.tasks.CALLER``), or ``ALL`` (the privilege is needed on ``*``). ``self_service`` actions are allowed to any authenticated principal, as ES
allows ``_authenticate`` and changing one's own password. ``public`` ones need no credentials
at all: the web console's page and its login, which hold no data.
"""

from __future__ import annotations

from dataclasses import dataclass

PATH = "path"
ALL = "all"
ANY = "any"  # a composite (``_bulk``): allowed on some index here, each item checked by its handler
SOURCES = "sources"  # a query: allowed on some index here, its sources resolved by its handler
OWN = "own"  # the caller's own results and tasks


@dataclass(frozen=True)
class Action:
    name: str
    index: str | None = None
    self_service: bool = False
    public: bool = False  # no credentials needed: the console's static files and its login


def _routes(methods: str, path: str, action: Action) -> dict[tuple[str, str], Action]:
    return {(method, path): action for method in methods.split("|")}


_SEC = "cluster:admin/xpack/security/"
_ESQL_GET, _EQL_GET = "indices:data/read/esql/async/get", "indices:data/read/eql/async/get"
_ASYNC_DELETE = "indices:data/read/async_search/delete"
_SML_GET = "indices:data/read/sml/async/get"
_CONSOLE_PAGE = Action("cluster:monitor/esquire/console", public=True)
_CONSOLE_SEARCHES = "indices:data/read/esquire/console/searches"

ACTIONS: dict[tuple[str, str], Action] = {
    **_routes("GET|HEAD", "/", Action("cluster:monitor/main")),
    **_routes("POST|PUT", "/_bulk", Action("indices:data/write/bulk", ANY)),
    **_routes("POST", "/_query", Action("indices:data/read/esql", SOURCES)),
    **_routes("POST", "/_query/async", Action("indices:data/read/esql", SOURCES)),
    **_routes("GET", "/_query/async/{id}", Action(_ESQL_GET, OWN)),
    **_routes("POST", "/_query/async/{id}/stop", Action("indices:data/read/esql/async/stop", OWN)),
    **_routes("DELETE", "/_query/async/{id}", Action(_ASYNC_DELETE, OWN)),
    **_routes("GET", "/_eql/search/status/{id}", Action("cluster:monitor/eql/async/status")),
    **_routes("GET", "/_eql/search/{id}", Action(_EQL_GET, OWN)),
    **_routes("DELETE", "/_eql/search/{id}", Action(_ASYNC_DELETE, OWN)),
    **_routes("GET", "/_cluster/settings", Action("cluster:monitor/settings")),
    **_routes("PUT", "/_cluster/settings", Action("cluster:admin/settings/update")),
    # Smart Monitor's background tasks: SML reads indices; its async actions are named as ES's are
    **_routes("POST", "/_sme/async_requests/request", Action("indices:data/read/sml", SOURCES)),
    **_routes("GET", "/_sme/async_requests/response/{id}", Action(_SML_GET, OWN)),
    **_routes("GET", "/_sme/async_requests/logs/{id}", Action(_SML_GET, OWN)),
    **_routes("GET", "/_sme/async_requests/status", Action(_SML_GET, OWN)),
    **_routes("GET", "/_sme/async_requests/status/", Action(_SML_GET, OWN)),
    **_routes("GET", "/_sme/async_requests/status/{id}", Action(_SML_GET, OWN)),
    **_routes("POST", "/_sme/async_requests/break", Action("indices:data/read/sml/async/stop", OWN)),
    **_routes("POST", "/_sme/async_requests/break/", Action("indices:data/read/sml/async/stop", OWN)),
    **_routes("POST", "/_sme/async_requests/break/{id}", Action("indices:data/read/sml/async/stop", OWN)),
    **_routes("DELETE", "/_sme/async_requests/delete/{id}", Action("indices:data/read/sml/async/delete", OWN)),
    **_routes("POST", "/_sme/async_requests/file_download/{id}", Action(_SML_GET, OWN)),
    **_routes("GET", "/_tasks", Action("cluster:monitor/tasks/lists")),
    **_routes("POST", "/_tasks/_cancel", Action("cluster:admin/tasks/cancel")),
    **_routes("GET", "/_tasks/{task_id}", Action("cluster:monitor/task/get")),
    **_routes("POST", "/_tasks/{task_id}/_cancel", Action("cluster:admin/tasks/cancel")),
    **_routes("GET", "/_mapping", Action("indices:admin/mappings/get", SOURCES)),
    **_routes("GET|POST", "/_refresh", Action("indices:admin/refresh", SOURCES)),
    **_routes("GET", "/_cat/indices", Action("indices:monitor/stats", SOURCES)),
    **_routes("GET", "/_cat/indices/{index}", Action("indices:monitor/stats", PATH)),
    # the web console: its page and login need no credentials; a session is an API key
    **_routes("GET", "/_console", _CONSOLE_PAGE),
    **_routes("GET", "/_console/", _CONSOLE_PAGE),
    **_routes("GET", "/_console/static/{name}", _CONSOLE_PAGE),
    **_routes("GET|POST", "/_console/api/session", Action("cluster:admin/esquire/console/login", public=True)),
    **_routes("DELETE", "/_console/api/session", Action("cluster:admin/esquire/console/logout", OWN)),
    **_routes("GET", "/_console/api/searches", Action(_CONSOLE_SEARCHES, OWN)),
    **_routes("GET", "/_console/api/searches/{id}/rows", Action(_CONSOLE_SEARCHES, OWN)),
    **_routes("POST", "/_console/api/searches/{id}/_download", Action(_CONSOLE_SEARCHES, OWN)),
    # the security APIs
    **_routes("GET", "/_security/_authenticate", Action(_SEC + "user/authenticate", self_service=True)),
    **_routes("GET", "/_security/user", Action(_SEC + "user/get")),
    **_routes("GET", "/_security/user/{name}", Action(_SEC + "user/get")),
    **_routes("PUT|POST", "/_security/user/{name}", Action(_SEC + "user/put")),
    **_routes("DELETE", "/_security/user/{name}", Action(_SEC + "user/delete")),
    **_routes("PUT|POST", "/_security/user/_password", Action(_SEC + "user/change_password", self_service=True)),
    # one's own password is self-service (the guard compares the name), another's is not
    **_routes("PUT|POST", "/_security/user/{name}/_password", Action(_SEC + "user/change_password")),
    **_routes("GET", "/_security/role", Action(_SEC + "role/get")),
    **_routes("GET", "/_security/role/{name}", Action(_SEC + "role/get")),
    **_routes("PUT|POST", "/_security/role/{name}", Action(_SEC + "role/put")),
    **_routes("DELETE", "/_security/role/{name}", Action(_SEC + "role/delete")),
    **_routes("POST|PUT", "/_security/api_key", Action(_SEC + "api_key/create")),
    **_routes("GET", "/_security/api_key", Action(_SEC + "api_key/get")),
    **_routes("DELETE", "/_security/api_key", Action(_SEC + "api_key/invalidate")),
    # one index (or an expression of them) in the path
    **_routes("PUT", "/{index}", Action("indices:admin/create", PATH)),
    **_routes("DELETE", "/{index}", Action("indices:admin/delete", PATH)),
    **_routes("GET|HEAD", "/{index}", Action("indices:admin/get", PATH)),
    **_routes("GET", "/{index}/_mapping", Action("indices:admin/mappings/get", PATH)),
    **_routes("PUT|POST", "/{index}/_mapping", Action("indices:admin/mapping/put", PATH)),
    **_routes("GET|POST", "/{index}/_refresh", Action("indices:admin/refresh", PATH)),
    **_routes("GET|POST", "/{index}/_count", Action("indices:data/read/search", PATH)),
    **_routes("GET|POST", "/{index}/_eql/search", Action("indices:data/read/eql", SOURCES)),
    # a bulk item may name another index than the path's: each item is checked (guard.authorize_bulk)
    **_routes("POST|PUT", "/{index}/_bulk", Action("indices:data/write/bulk", ANY)),
    **_routes("POST", "/{index}/_doc", Action("indices:data/write/index", PATH)),
    **_routes("PUT|POST", "/{index}/_doc/{id}", Action("indices:data/write/index", PATH)),
    **_routes("PUT|POST", "/{index}/_create/{id}", Action("indices:data/write/index", PATH)),
    **_routes("GET|HEAD", "/{index}/_doc/{id}", Action("indices:data/read/get", PATH)),
    **_routes("DELETE", "/{index}/_doc/{id}", Action("indices:data/write/delete", PATH)),
    **_routes("POST", "/{index}/_update/{id}", Action("indices:data/write/update", PATH)),
}


def action_of(method: str, canonical: str) -> Action | None:
    return ACTIONS.get((method, canonical))


def index_expressions(action: Action, path_index: str | None) -> list[str]:
    """The index expressions ``action`` must be allowed on: the path's, split at commas
    (``_all`` is ``*``; an exclusion ``-x`` only narrows, so it needs nothing), or ``*``."""
    if action.index == ALL or (action.index == PATH and not path_index):
        return ["*"]
    names = [n.strip() for n in (path_index or "").split(",")]
    return ["*" if n == "_all" else n for n in names if n and not n.startswith("-")] or ["*"]
