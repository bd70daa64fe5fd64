"""The security step, one middleware before every handler: authenticate the request, then
authorize its action (``actions.ACTIONS``) for the principal's cluster or index privileges.

Nothing here runs when security is off (no ``keys.SECURITY`` in the app), nor for a request
no route matched (ES answers those before its security filter). A route missing from the
action table is refused: a new route is closed until it is given an action. Failed attempts
are logged with who tried and from where, never the secret; denials with the action.
"""

from __future__ import annotations

from typing import Iterable

import structlog
from aiohttp import web

from .. import keys
from ..core.tasks import CALLER
from ..errors import Forbidden
from ..security import authn
from ..security.principal import Principal
from ..store.catalog import Catalog
from ..store.documents import BulkOp
from .actions import ANY, OWN, PATH, SOURCES, Action, action_of, index_expressions
from .middleware import Handler

log = structlog.get_logger("esquire.security")


def principal_of(request: web.Request) -> Principal | None:
    """The request's principal; None when security is off."""
    return request.get(keys.PRINCIPAL)


def within_reach(request: web.Request, expression: str) -> Catalog:
    """The catalog the route's ``expression`` resolves in: for a ``SOURCES`` route (a query,
    an index-less listing), the indices the principal may act on; else every index (the
    guard has checked the path's expressions themselves)."""
    action = _route_action(request)
    if action is None or action.index != SOURCES:
        return request.app[keys.CATALOG]
    return readable(request, action.name, [expression])


def readable(request: web.Request, action: str, expressions: Iterable[str]) -> Catalog:
    """The catalog a query's sources (``expressions``: names, wildcards, ``-`` exclusions)
    resolve in for the request. With security on, only the indices the principal may run
    ``action`` on: a wildcard or ``_all`` silently skips the others, as Elasticsearch
    resolves an expression for its user; a concrete name of an index it may not read is
    refused (403) before anything runs."""
    catalog: Catalog = request.app[keys.CATALOG]
    principal = principal_of(request)
    if principal is None:
        return catalog
    permission = principal.permission
    names = [n.strip() for e in expressions for n in e.split(",")]
    refused = [n for n in dict.fromkeys(names) if n in catalog.indices and not permission.allows_index(action, n)]
    if refused:
        raise _denied(request, principal, Action(action, PATH), refused)
    return catalog.only(lambda name: permission.allows_index(action, name))


@web.middleware
async def security_step(request: web.Request, handler: Handler) -> web.StreamResponse:
    security = request.app.get(keys.SECURITY)
    if security is None or request.match_info.http_exception is not None:
        return await handler(request)
    action = _route_action(request)
    if action is not None and action.public:  # the console's page and its login
        return await handler(request)
    principal = await authenticate(request, request.headers.get("Authorization"))
    request[keys.PRINCIPAL] = principal
    _authorize(request, principal)
    # Whose tasks and async results the handler sees and makes (``core.tasks.CALLER``); reset
    # after it, as the requests of one keep-alive connection share the connection's context.
    token = CALLER.set(None if principal.permission.sees_every_owner else principal.owner)
    try:
        return await handler(request)
    finally:
        CALLER.reset(token)


async def authenticate(request: web.Request, header: str | None) -> Principal:
    """The principal the ``Authorization`` value ``header`` authenticates, for ``request``,
    or ES's 401; a failed attempt is logged (who tried and from where, never the secret)."""
    security = request.app[keys.SECURITY]
    uri = request.raw_path
    try:
        return await authn.authenticate(header, uri, security.cache, security.lookup)
    except authn.AuthenticationError as err:
        if err.user is None and err.key_id is None and err.detail is None:  # no credentials, or unreadable ones
            log.info("authentication_missing", remote=request.remote, method=request.method, path=request.path,
                     reason=err.reason.split(" for REST")[0])
        else:
            log.warning("authentication_failed", user=_short(err.user), api_key_id=_short(err.key_id),
                        remote=request.remote, method=request.method, path=request.path, reason=err.detail)
        raise


def _short(name: str | None) -> str | None:
    """A client-given name as logged: at most 256 characters (a header may hold 8 KB)."""
    return name if name is None or len(name) <= 256 else name[:256] + "..."


def _route_action(request: web.Request) -> Action | None:
    """The action of the route the request matched (``actions.ACTIONS``), None for none."""
    resource = request.match_info.route.resource
    return action_of(request.method, resource.canonical) if resource is not None else None


def _authorize(request: web.Request, principal: Principal) -> None:
    action = _route_action(request)
    if action is None:
        log.error("route_without_action", method=request.method, path=request.path)
        raise Forbidden(f"action [unknown] is unauthorized for {principal.describe()}")
    if _self_service(request, action, principal):
        return
    if action.index is None:
        if not principal.permission.allows_cluster(action.name):
            raise _denied(request, principal, action)
        return
    if action.index == OWN:
        return  # the handler shows the principal its own (``core.tasks.CALLER``)
    if action.index in (ANY, SOURCES):
        if not principal.permission.allows_some_index(action.name):
            raise _denied(request, principal, action)
        return
    expressions = index_expressions(action, request.match_info.get("index"))
    refused = [e for e in expressions if not principal.permission.allows_index(action.name, e)]
    if refused:
        raise _denied(request, principal, action, expressions)
    created = _auto_created(request, action, expressions)
    if created and not all(principal.permission.allows_index(AUTO_CREATE.name, n) for n in created):
        raise _denied(request, principal, AUTO_CREATE, created)


AUTO_CREATE = Action("indices:admin/auto_create", PATH)


def _auto_created(request: web.Request, action: Action, expressions: list[str]) -> list[str]:
    """The indices a document write would create: as in ES, ``write`` alone does not create an
    index, ``create_index`` (or ``auto_configure``, ``manage``) does."""
    if action.index != PATH or not action.name.startswith("indices:data/write/"):
        return []
    catalog = request.app[keys.CATALOG]
    return [n for n in expressions if "*" not in n and n not in catalog.indices]


def _self_service(request: web.Request, action: Action, principal: Principal) -> bool:
    """``_authenticate``, and a user changing its own password (never an API key's owner's)."""
    if action.self_service:
        return principal.api_key is None or action.name.endswith("/authenticate")
    name = request.match_info.get("name")
    return action.name.endswith("/change_password") and principal.api_key is None and name == principal.username


def _denied(request: web.Request, principal: Principal, action: Action, indices: list[str] | None = None) -> Forbidden:
    log.info("access_denied", user=principal.username, api_key_id=principal.api_key.id if principal.api_key else None,
             action=action.name, remote=request.remote, path=request.path)
    return principal.denied(action.name, indices)


_ITEM_ACTIONS = {"index": "indices:data/write/index", "create": "indices:data/write/index",
                 "update": "indices:data/write/update", "delete": "indices:data/write/delete"}


def authorize_bulk(request: web.Request, ops: list[BulkOp]) -> None:
    """Each ``_bulk`` item on its own index, as ES authorizes a bulk's items: one the principal
    may not write fails alone (403 ``security_exception`` in its item), the others go on; an
    item that would create its index needs ``auto_create`` too. Nothing with security off."""
    principal = principal_of(request)
    if principal is None:
        return
    indices = request.app[keys.CATALOG].indices
    for op in ops:
        if op.error is not None or op.index is None or op.action not in _ITEM_ACTIONS:
            continue
        action = _ITEM_ACTIONS[op.action]
        if not principal.permission.allows_index(action, op.index):
            op.error = principal.denied(action, [op.index])
        elif (op.action != "delete" and op.index not in indices
              and not principal.permission.allows_index(AUTO_CREATE.name, op.index)):
            op.error = principal.denied(AUTO_CREATE.name, [op.index])
