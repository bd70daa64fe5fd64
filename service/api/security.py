"""``/_security/...``: users, roles, API keys and ``_authenticate``, in Elasticsearch's shapes
and status codes. Thin handlers: the checks and the changes are ``security.service``'s; who may
call them was decided by the security step (``guard``), except what depends on the request's
body: whose API keys a ``manage_own_api_key`` holder asks for.

The routes exist only with security on: off, the service answers them as it always has (no
handler for the URI), so a service without security is exactly what it was before.
"""

from __future__ import annotations

import base64
from typing import Any

from aiohttp import web

from .. import keys
from ..errors import ValidationError, XContentParseError
from ..params import query_bool
from ..security.principal import Principal
from ..security.service import Security
from ..store.security import StoredKey, StoredUser
from .guard import principal_of
from .middleware import accepts
from .wire import read_json, respond
from .xcontent import token

_KEYS = "cluster:admin/xpack/security/api_key/"


def _security(request: web.Request) -> Security:
    return request.app[keys.SECURITY]


def _me(request: web.Request) -> Principal:
    principal = principal_of(request)
    assert principal is not None, "the security step runs before every security handler"
    return principal


def _names(request: web.Request) -> list[str] | None:
    raw = request.match_info.get("name")
    return None if raw is None else [n for n in raw.split(",") if n]


# --- _authenticate --------------------------------------------------------------------------

@accepts()
async def authenticate(request: web.Request) -> web.Response:
    _security(request)
    return respond(request, _me(request).authenticate_body())


# --- users ----------------------------------------------------------------------------------

def _user_body(user: StoredUser) -> dict[str, Any]:
    return {"username": user.username, "roles": user.roles, "full_name": user.full_name, "email": user.email,
            "metadata": user.metadata, "enabled": user.enabled}


@accepts("with_profile_uid")
async def get_users(request: web.Request) -> web.Response:
    users = await _security(request).get_users(_names(request))
    body = {u.username: _user_body(u) for u in users}
    return respond(request, body, status=200 if body or _names(request) is None else 404)


@accepts("refresh")
async def put_user(request: web.Request) -> web.Response:
    security = _security(request)
    body = await read_json(request, "put_user_request", required=True)
    created = await security.put_user(request.match_info["name"], body)
    return respond(request, {"created": created})


@accepts("refresh")
async def delete_user(request: web.Request) -> web.Response:
    found = await _security(request).delete_user(request.match_info["name"])
    return respond(request, {"found": found}, status=200 if found else 404)


@accepts("refresh")
async def change_password(request: web.Request) -> web.Response:
    security = _security(request)
    body = await read_json(request, "change_password_request", frozenset({"password", "password_hash"}),
                           required=True)
    name = request.match_info.get("name") or _me(request).username
    await security.change_password(name, body.get("password"))
    return respond(request, {})


# --- roles ----------------------------------------------------------------------------------

@accepts()
async def get_roles(request: web.Request) -> web.Response:
    roles = await _security(request).get_roles(_names(request))
    return respond(request, roles, status=200 if roles or _names(request) is None else 404)


@accepts("refresh")
async def put_role(request: web.Request) -> web.Response:
    security = _security(request)
    body = await read_json(request, "put_role_request", required=True)
    created = await security.put_role(request.match_info["name"], body)
    return respond(request, {"role": {"created": created}})


@accepts("refresh")
async def delete_role(request: web.Request) -> web.Response:
    found = await _security(request).delete_role(request.match_info["name"])
    return respond(request, {"found": found}, status=200 if found else 404)


# --- API keys -------------------------------------------------------------------------------

@accepts("refresh")
async def create_api_key(request: web.Request) -> web.Response:
    security = _security(request)
    body = await read_json(request, "create_api_key_request", required=True)
    key = await security.create_key(_me(request), body)
    encoded = base64.b64encode(f"{key.id}:{key.secret}".encode()).decode("ascii")
    shown: dict[str, Any] = {"id": key.id, "name": key.name}
    if key.expires_ms is not None:
        shown["expiration"] = key.expires_ms
    return respond(request, {**shown, "api_key": key.secret, "encoded": encoded})


def _key_body(key: StoredKey, with_limited_by: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"id": key.id, "name": key.name, "type": "rest", "creation": key.created_ms}
    if key.expires_ms is not None:
        body["expiration"] = key.expires_ms
    body["invalidated"] = key.invalidated_ms is not None
    if key.invalidated_ms is not None:
        body["invalidation"] = key.invalidated_ms
    body.update({"username": key.owner, "realm": key.realm, "realm_type": key.realm_type, "metadata": key.metadata,
                 "role_descriptors": key.role_descriptors})
    if with_limited_by:
        body["limited_by"] = [key.limited_by]  # ES: one object of the creator's roles, by name
    return body


def _key_filter(request: web.Request, source: dict[str, Any], owner: bool, action: str) -> dict[str, Any]:
    """The keys asked for (``id``, ``name``, ``username``, ``realm_name``, ``owner``), narrowed
    to the caller's own when that is all its privileges allow (else ES's 403)."""
    me = _me(request)
    wanted = {"key_id": source.get("id"), "name": source.get("name"), "owner": source.get("username"),
              "realm": source.get("realm_name")}
    if owner:
        wanted["owner"] = me.username
    if me.permission.own_api_keys_only:
        own_key = me.api_key is not None and wanted["key_id"] == me.api_key.id
        if not (owner or wanted["owner"] == me.username or own_key):
            raise me.denied(action)
        if not own_key:
            wanted["owner"] = me.username
    return wanted


@accepts("id", "name", "owner", "realm_name", "username", "with_limited_by", "active_only", "with_profile_uid")
async def get_api_keys(request: web.Request) -> web.Response:
    security = _security(request)
    wanted = _key_filter(request, dict(request.query), query_bool(request.query, "owner", False), _KEYS + "get")
    found = await security.find_keys(**wanted, active_only=query_bool(request.query, "active_only", False))
    with_limited_by = query_bool(request.query, "with_limited_by", False)
    return respond(request, {"api_keys": [_key_body(k, with_limited_by) for k in found]})


_INVALIDATE_FIELDS = frozenset({"id", "ids", "name", "owner", "realm_name", "username"})


def _typed(body: dict[str, Any]) -> None:
    """The invalidate request's fields, of the types ES's parser takes."""
    for name, value in body.items():
        ok = (isinstance(value, bool) if name == "owner" else
              isinstance(value, list) and all(isinstance(v, str) for v in value) if name == "ids" else
              isinstance(value, str))
        if not ok and value is not None:
            raise XContentParseError(f"[1:2] [invalidate_api_key] {name} doesn't support values of type: "
                                     f"{token(value)}")


@accepts("refresh")
async def invalidate_api_keys(request: web.Request) -> web.Response:
    security = _security(request)
    body = await read_json(request, "invalidate_api_key_request", _INVALIDATE_FIELDS, required=True)
    _typed(body)
    ids = body.get("ids") or ([body["id"]] if body.get("id") else [])
    if not (ids or body.get("name") or body.get("username") or body.get("realm_name") or body.get("owner") is True):
        raise ValidationError("One of [api key id(s), api key name, username, realm name] must be specified if "
                              "[owner] flag is false")
    found: list[StoredKey] = []
    for key_id in ids or [None]:
        wanted = _key_filter(request, {**body, "id": key_id}, body.get("owner") is True, _KEYS + "invalidate")
        found += await security.find_keys(**wanted)
    done, before = await security.invalidate_keys(found)
    return respond(request, {"invalidated_api_keys": done, "previously_invalidated_api_keys": before,
                             "error_count": 0})
