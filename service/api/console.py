"""The web console (``/_console``): its static page, its login, and the two things it needs
that no Elasticsearch or Smart Monitor API gives: a list of the caller's stored searches of
every language, and their rows and files read the same way whatever the language.

Everything else the console does goes through the ordinary APIs (submit, stop, delete, the
SME task's sidebar and timeline), with the session's API key.

- The page and its files are public (they hold no data) and sent with a strict
  Content-Security-Policy: scripts, styles and requests of this origin only, nothing inline,
  no framing.
- A session is an API key of the user, created on login with the user's password (its own
  privileges, nothing more, for ``SESSION_HOURS``) and invalidated on logout. The page keeps
  it in ``sessionStorage`` and sends it as ``Authorization: ApiKey``: no cookie, so no
  cross-site request can act with it.
"""

from __future__ import annotations

import asyncio
import base64
import re
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
from aiohttp import web

from .. import keys
from ..core.background import NotFinished
from ..core.listing import Stored
from ..errors import BadRequest
from ..query.esql import render_value
from ..query.fieldpath import Columns, event_fields
from ..security.authn import AuthenticationError
from .exports import FileResponse, write_export
from .guard import authenticate, principal_of
from .middleware import accepts
from .sme import owner as task_owner
from .sme_export import DownloadRequest
from .wire import read_json, respond

STATIC = Path(str(resources.files("service") / "console" / "static"))
SESSION_HOURS = 8
SESSION_KEY_NAME = "console"
MAX_PAGE = 10_000  # rows in one page of /rows

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png",
                ".json": "application/json", ".woff2": "font/woff2", ".ico": "image/x-icon"}
_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_LOGIN_FIELDS = frozenset({"username", "password"})


# --- the page -----------------------------------------------------------------------------

def _file(request: web.Request, name: str) -> web.FileResponse:
    """A file of the console's folder (flat: no path reaches outside it), or 404."""
    folder = request.app[keys.CONSOLE_FILES]
    media = _MEDIA_TYPES.get(Path(name).suffix)
    path = folder / name
    if not _NAME.fullmatch(name) or media is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(path, headers={**SECURITY_HEADERS, "Content-Type": media})


@accepts()
async def page(request: web.Request) -> web.FileResponse:
    return _file(request, "index.html")


@accepts()
async def static(request: web.Request) -> web.FileResponse:
    return _file(request, request.match_info["name"])


# --- the session ----------------------------------------------------------------------------

def _user(principal: Any) -> dict[str, Any]:
    return {"username": principal.username, "roles": list(principal.roles)}


@accepts()
async def session(request: web.Request) -> web.Response:
    """Whether security is on, and who the request's credentials are (null for none or bad)."""
    if keys.SECURITY not in request.app:
        return respond(request, {"security": False})
    try:
        principal = await authenticate(request, request.headers.get("Authorization"))
    except AuthenticationError:
        return respond(request, {"security": True, "user": None})
    return respond(request, {"security": True, "user": _user(principal)})


@accepts()
async def login(request: web.Request) -> web.Response:
    """A new session: the user's password checked as a Basic header would be, then an API
    key of that user for ``SESSION_HOURS``."""
    security = request.app.get(keys.SECURITY)
    if security is None:
        raise BadRequest("security is not enabled: the console needs no login")
    body = await read_json(request, "console_login", _LOGIN_FIELDS, required=True)
    username, password = body.get("username"), body.get("password")
    if not isinstance(username, str) or not username or not isinstance(password, str):
        raise BadRequest("[username] and [password] must be non-empty strings")
    basic = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    principal = await authenticate(request, f"Basic {basic}")
    key = await security.create_key(principal, {"name": SESSION_KEY_NAME, "expiration": f"{SESSION_HOURS}h"})
    encoded = base64.b64encode(f"{key.id}:{key.secret}".encode()).decode("ascii")
    return respond(request, {"api_key": encoded, "id": key.id, "expiration": key.expires_ms, **_user(principal)})


@accepts()
async def logout(request: web.Request) -> web.Response:
    """The session's key invalidated (credentials that are not a key end nothing)."""
    principal = principal_of(request)
    security = request.app.get(keys.SECURITY)
    if principal is None or security is None or principal.api_key is None:
        return respond(request, {"invalidated": False})
    done, _ = await security.invalidate_keys(await security.find_keys(key_id=principal.api_key.id))
    return respond(request, {"invalidated": bool(done)})


# --- my searches ------------------------------------------------------------------------------

def _search_owner(request: web.Request) -> str | None:
    """Whose async searches the list shows: the caller's (an API key's are its user's);
    everyone's with security off, where none has an owner."""
    principal = principal_of(request)
    return None if principal is None else principal.owner


@accepts()
async def searches(request: web.Request) -> web.Response:
    listing = request.app[keys.LISTING]
    now = request.app[keys.SEARCHES].now_ms()
    listed = await listing.list(_search_owner(request), task_owner(request))
    return respond(request, {"searches": [item.to_dict(now) for item in listed]})


def _offset(request: web.Request, name: str, default: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise BadRequest(f"[{name}] must be a non-negative integer, got [{raw}]")
    return int(raw)


async def _found(request: web.Request) -> Stored:
    return await request.app[keys.LISTING].find(request.match_info["id"], task_owner(request))


@accepts("from", "to")
async def rows(request: web.Request) -> web.Response:
    """A page of a search's stored rows, one shape for every language (``Table``)."""
    start, to = _offset(request, "from", 0), _offset(request, "to", 100)
    if start > to:
        raise BadRequest(f"[from] [{start}] must not be greater than [to] [{to}]")
    if to - start > MAX_PAGE:
        raise BadRequest(f"a page holds at most [{MAX_PAGE}] rows, asked for [{to - start}]")
    found = await _found(request)
    stop = max(start, min(found.total, to))
    stored = await request.app[keys.LISTING].rows(found, start, stop)
    table = TABLES[found.kind](found.frame)
    page = [table.row(row) for row in stored]
    return respond(request, {"id": found.id, "kind": found.kind, "state": found.state, "partial": found.partial,
                             "total": found.total, "from": start, "to": stop, **table.header(page),
                             "rows": page})


@accepts()
async def download(request: web.Request) -> web.StreamResponse:
    """A finished search's rows as a JSON, CSV or XLSX file, as SME's ``file_download``."""
    found = await _found(request)
    options = DownloadRequest.parse(await read_json(request, "file_download"), found.id)
    if found.state in ("PENDING", "RUNNING"):
        raise NotFinished(f"search [{found.id}] has not finished yet: {found.state}; only a finished search can be "
                          "downloaded")
    count = found.total if options.limit is None else min(options.limit, found.total)
    listing = request.app[keys.LISTING]
    table = TABLES[found.kind](found.frame)
    fields = await asyncio.to_thread(table.fields, listing.stored_rows(found, count))  # EQL's: a pass over the rows
    export = await write_export(table.records(listing.stored_rows(found, count)), fields,
                                file_type=options.file_type, name=options.file_name,
                                directory=request.app[keys.SETTINGS].data_dir, compress=options.compress)
    return FileResponse(export)


# --- one table shape for every language's rows ---------------------------------------------------

Batches = Iterator[list[bytes]]


class Table:
    """How one language's stored rows read as a table: ``row`` one stored row as the page
    shows it, ``header`` the page's columns, ``fields`` and ``records`` the export's field
    list and its rows as JSON objects (``exports``' input). A stored row is the JSON array
    the query sent."""

    def __init__(self, frame: dict[str, Any]) -> None:
        self.frame = frame

    def row(self, row: list[Any]) -> Any:
        return row[0]

    def header(self, page: list[Any]) -> dict[str, Any]:
        """The task's fields, each typed by the values the page holds (``value_type``)."""
        columns = Columns(self.frame.get("fields", []))
        found: list[set[str]] = [set() for _ in columns.fields]
        for event in page:
            for kinds, value in zip(found, columns.values(event)):
                if value is not None:
                    kinds.add(value_type(value))
        return {"columns": [{"name": name, "type": kinds.pop() if len(kinds) == 1 else ("mixed" if kinds else None)}
                            for name, kinds in zip(columns.fields, found)]}

    def fields(self, batches: Batches) -> list[str]:
        return list(self.frame.get("fields", []))

    def records(self, batches: Batches) -> Iterator[list[bytes]]:
        for batch in batches:  # a stored row is ``[event]``: the event's text less the brackets
            yield [text[1:-1] for text in batch]


class EsqlTable(Table):
    """ES|QL: rows of values in the order of the typed columns (``names``, ``types``),
    rendered as its API renders them (dates as ISO text...)."""

    def __init__(self, frame: dict[str, Any]) -> None:
        super().__init__(frame)
        self.names, self.types = list(frame.get("names", [])), list(frame.get("types", []))

    def row(self, row: list[Any]) -> Any:
        return [render_value(v, t) for v, t in zip(row, self.types)]

    def header(self, page: list[Any]) -> dict[str, Any]:
        return {"columns": [{"name": n, "type": t} for n, t in zip(self.names, self.types)]}

    def fields(self, batches: Batches) -> list[str]:
        return self.names

    def records(self, batches: Batches) -> Iterator[list[bytes]]:
        names, dumps, loads, row = self.names, orjson.dumps, orjson.loads, self.row
        for batch in batches:
            yield [dumps(dict(zip(names, row(loads(text))))) for text in batch]


class EqlTable(Table):
    """EQL: each row one hit, an event or a sequence of them (``hits_kind``). As a table, a
    hit's events are rows of ``_index``, ``_id`` and their source's fields (a sequence's
    with its number and join keys): the field list takes a pass over the rows first."""

    def header(self, page: list[Any]) -> dict[str, Any]:
        return {"hits_kind": self.frame.get("kind", "events"), "columns": []}

    def _events(self, batches: Batches) -> Iterator[list[dict[str, Any]]]:
        sequences = self.frame.get("kind") == "sequences"
        number = 0
        for batch in batches:
            out = []
            for text in batch:
                hit = orjson.loads(text)[0]
                number += 1
                if sequences:
                    keys_ = {"sequence": number, "join_keys": hit.get("join_keys", [])}
                    out += [{**keys_, **_event(e)} for e in hit.get("events", [])]
                else:
                    out.append(_event(hit))
            yield out

    def fields(self, batches: Batches) -> list[str]:
        seen: dict[str, None] = {}
        for events in self._events(batches):
            seen.update(dict.fromkeys(event_fields(events)))
        return list(seen)

    def records(self, batches: Batches) -> Iterator[list[bytes]]:
        for events in self._events(batches):
            yield [orjson.dumps(e) for e in events]


def value_type(value: Any) -> str:
    """An event value's type, in Elasticsearch's field type names where one fits."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "keyword"
    return "array" if isinstance(value, list) else "object"


def _event(hit: dict[str, Any]) -> dict[str, Any]:
    return {"_index": hit.get("_index"), "_id": hit.get("_id"), **(hit.get("_source") or {})}


TABLES: dict[str, Callable[[dict[str, Any]], Table]] = {"esql": EsqlTable, "eql": EqlTable, "sml": Table}
