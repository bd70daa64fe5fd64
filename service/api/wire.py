"""The Elasticsearch wire format: JSON responses, content negotiation, global parameters.

Every response body leaves through ``respond()`` (or ``error_response()``), which
applies ``pretty`` and ``filter_path`` and picks the content type the client asked for.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any, Callable

import orjson
from aiohttp import web

from ..errors import BadRequest, PlainError, ServiceError, XContentParseError
from ..patterns import wildcard

VENDOR_JSON = "application/vnd.elasticsearch+json;compatible-with=9"
GLOBAL_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path"})
_COMPAT = re.compile(r"compatible-with\s*=\s*(\d+)")
_BROWSER_TYPES = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")


def _flag(request: web.Request, name: str) -> bool:
    value = request.query.get(name)
    return value is not None and value != "false"


def is_pretty(request: web.Request) -> bool:
    """Whether the answer is to be pretty-printed (``?pretty``)."""
    return _flag(request, "pretty")


def dumps(request: web.Request, body: Any) -> bytes:
    return encode(body, pretty=_flag(request, "pretty"))


def encode(body: Any, *, pretty: bool = False) -> bytes:
    """``body`` as JSON bytes (orjson's, indented by two with a final newline when
    ``pretty``), built from many small ``orjson.dumps`` calls when it is big, so that no
    single call holds the GIL for long and the event loop's thread keeps running."""
    parts: list[bytes] = []
    _encode_into(parts, body, pretty, 0)
    if pretty:
        parts.append(b"\n")
    return b"".join(parts)


_SMALL_NODES = 2000  # a container up to this many values is encoded by one orjson call
_INDENT = b"  "


def _small(node: Any, limit: int = _SMALL_NODES) -> bool:
    """Whether ``node`` holds at most ``limit`` values; stops counting past the limit, so
    the answer costs at most ``limit`` steps."""
    stack, seen = [node], 0
    while stack:
        item = stack.pop()
        seen += 1
        if seen > limit or isinstance(item, JsonText):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return True


class JsonText:
    """Part of an answer already encoded as ``encode`` would encode it at the top level
    (pretty or not, as the request asks): placed as is, re-indented to its depth."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data


class ListWriter:
    """A JSON list written a run of items at a time, as ``encode`` writes the whole list:
    a big answer's values are encoded as they are read, never all held as objects."""

    def __init__(self, pretty: bool) -> None:
        self.pretty = pretty
        self.parts: list[bytes] = [b"["]

    def extend(self, items: list[Any]) -> None:
        if items:
            text = orjson.dumps(items, option=orjson.OPT_INDENT_2 if self.pretty else 0)
            self._add(text[4:-2] if self.pretty else text[1:-1])

    def append_text(self, item: JsonText) -> None:
        """An item already encoded (a list of its own, for columnar values)."""
        self._add(item.data.replace(b"\n", b"\n" + _INDENT) if self.pretty else item.data)

    def _add(self, text: bytes) -> None:
        newline = b"\n" + _INDENT if self.pretty else b""
        self.parts.append((b"," if len(self.parts) > 1 else b"") + newline + text)

    def finish(self) -> JsonText:
        self.parts.append(b"\n]" if self.pretty and len(self.parts) > 1 else b"]")
        data = b"".join(self.parts)
        self.parts = []
        return JsonText(data)


def _encode_into(parts: list[bytes], node: Any, pretty: bool, depth: int) -> None:
    if isinstance(node, JsonText):
        parts.append(node.data.replace(b"\n", b"\n" + _INDENT * depth) if pretty and depth else node.data)
        return
    if not isinstance(node, (dict, list, tuple)) or _small(node):
        parts.append(_dump(node, pretty, depth))
        return
    newline = b"\n" + _INDENT * (depth + 1) if pretty else b""
    if isinstance(node, dict):
        parts.append(b"{")
        for i, (key, value) in enumerate(node.items()):
            if not isinstance(key, str):
                raise TypeError("Dict key must be str")  # as orjson says
            parts.append((b"," + newline if i else newline) + orjson.dumps(key) + (b": " if pretty else b":"))
            _encode_into(parts, value, pretty, depth + 1)
        parts.append((b"\n" + _INDENT * depth if pretty else b"") + b"}")
        return
    parts.append(b"[")
    _encode_items(parts, node, pretty, depth, newline)
    parts.append((b"\n" + _INDENT * depth if pretty else b"") + b"]")


_RUN_S = 0.005  # aim for orjson calls of about this long: the GIL passes between them


def _encode_items(parts: list[bytes], items: list[Any] | tuple[Any, ...], pretty: bool, depth: int,
                  newline: bytes) -> None:
    """A big list's items, in runs encoded by one orjson call each, the run length adapted
    so a call stays short; a big item alone is encoded piecewise."""
    i, run = 0, 1
    while i < len(items):
        parts.append(b"," + newline if i else newline)
        if run == 1 and not _small(items[i]):
            _encode_into(parts, items[i], pretty, depth + 1)
            i += 1
            continue
        chunk = items[i:i + run]
        started = time.perf_counter()
        text = orjson.dumps(chunk, option=orjson.OPT_INDENT_2 if pretty else 0)
        elapsed = time.perf_counter() - started
        # "[a,b]" -> "a,b"; pretty "[\n  a,\n  b\n]" -> "a,\n  b", re-indented to this depth
        parts.append(text[4:-2].replace(b"\n", b"\n" + _INDENT * depth) if pretty else text[1:-1])
        i += len(chunk)
        run = min(run * 2, 65536) if elapsed < _RUN_S else max(run // 2, 1)


def _dump(node: Any, pretty: bool, depth: int) -> bytes:
    data = orjson.dumps(node, option=orjson.OPT_INDENT_2 if pretty else 0)
    # orjson indents from column 0; JSON text has no raw newline inside a string.
    return data.replace(b"\n", b"\n" + _INDENT * depth) if pretty and depth else data


def _json_type(request: web.Request) -> str:
    for header in ("Accept", "Content-Type"):
        if "vnd.elasticsearch" in request.headers.get(header, ""):
            return VENDOR_JSON
    return "application/json"


def task_headers(request: web.Request) -> dict[str, str]:
    """The request headers a task keeps (and ``_tasks`` shows): ``X-Opaque-Id``."""
    opaque = request.headers.get("X-Opaque-Id")
    return {"X-Opaque-Id": opaque} if opaque else {}


def client_gone(request: web.Request) -> Callable[[], bool]:
    """Whether the client of ``request`` has closed its connection (for the core, which
    cancels a query whose client is gone, as Elasticsearch does when the channel closes)."""
    def gone() -> bool:
        transport = request.transport
        return transport is None or transport.is_closing()
    return gone


class JsonResponse(web.Response):
    """A JSON answer whose body is built by ``render()`` (the middleware calls it; ``prepare``
    does if nobody did). A big body, or any with ``filter_path``, is filtered and encoded on
    a worker thread: that work grows with the answer times the filter paths, and on the
    event loop it would stall every other request (ES filters while it serialises, on a
    transport thread, never on the HTTP loop)."""

    def __init__(self, request: web.Request, body: Any, status: int, headers: dict[str, str] | None,
                 paths: str | None) -> None:
        super().__init__(status=status, headers=headers)
        self.headers["Content-Type"] = _json_type(request)
        self._pending: tuple[Any, str | None, bool] | None = (body, paths or None, _flag(request, "pretty"))

    async def render(self) -> None:
        """Build the body, once; off the event loop unless it is small and unfiltered."""
        if self._pending is None:
            return
        body, paths, pretty = self._pending
        self._pending = None
        if paths is None and _small(body):
            self.body = encode(body, pretty=pretty)
        else:
            self.body = await asyncio.to_thread(_filtered, body, paths, pretty)

    def drop_body(self) -> None:
        """A HEAD answer: no body, and none is built."""
        self._pending = None
        self.body = None

    async def prepare(self, request: web.BaseRequest) -> Any:
        await self.render()
        return await super().prepare(request)


def _filtered(body: Any, paths: str | None, pretty: bool) -> bytes:
    return encode(filter_path(body, paths) if paths else body, pretty=pretty)


def respond(request: web.Request, body: Any, status: int = 200,
            headers: dict[str, str] | None = None) -> JsonResponse:
    """A JSON response as ES sends it: ``filter_path`` and ``pretty`` applied (when it is
    rendered, see ``JsonResponse``)."""
    return JsonResponse(request, body, status, headers, request.query.get("filter_path"))


def _json_response(request: web.Request, body: Any, status: int, headers: dict[str, str] | None) -> JsonResponse:
    return JsonResponse(request, body, status, headers, None)


def error_response(request: web.Request, err: ServiceError | PlainError) -> web.Response:
    """Errors are never filtered (ES builds them with filtering off)."""
    body = err.body()
    if isinstance(err, ServiceError) and _flag(request, "error_trace"):
        body["error"]["stack_trace"] = f"{err.type}: {err.reason}"
    headers = err.headers_for(request.headers)
    return _json_response(request, body, err.status, headers)


def empty_response(status: int) -> web.Response:
    """HEAD answers carry no body."""
    return web.Response(status=status)


# --- filter_path ----------------------------------------------------------------------


def filter_path(body: Any, expression: str) -> Any:
    """Apply ES's ``filter_path``: ``a.b``, ``*`` wildcards in a name, ``**`` one or more
    levels, ``\\.`` a dot inside a name, ``-x`` excludes. Each path is followed as a set
    of positions (an NFA), so the work is bounded by keys x total path length."""
    filters = [f.strip() for f in expression.split(",")]
    includes = _Paths([f for f in filters if f and not f.startswith("-")])
    excludes = _Paths([f[1:].strip() for f in filters if f.startswith("-") and len(f) > 1])
    if includes:
        body = _include(body, includes, includes.start)
        if body is _NOTHING:
            body = {}
    if excludes:
        body = _exclude(body, excludes, excludes.start)
    return body


_NOTHING = object()
_States = frozenset[tuple[int, int]]


_Plan = tuple[dict[str, list[tuple[int, int]]], list[tuple[tuple[int, int], Any]], _States]


class _Paths:
    """Filter paths as name matchers; a state ``(p, j)`` has matched the first ``j``
    names of path ``p``. A set of states is compiled once into a plan (literal names in a
    dict, wildcard names in a list, the states a ``**`` keeps), and each (key, states)
    step is remembered: an answer repeats its keys, so most steps are one lookup, and a
    step costs the wildcard names, never every path."""

    _MEMO_LIMIT = 65536  # steps remembered per request (past it, recomputed)
    _STATES_LIMIT = 262144  # states held in remembered sets and plans, so memory stays bounded too

    def __init__(self, filters: list[str]) -> None:
        self.names = [_segments(f) for f in filters if f]
        self._memo: dict[tuple[str, _States], tuple[bool, _States]] = {}
        self._plans: dict[_States, _Plan] = {}
        self._sets: dict[_States, _States] = {}
        self._held = 0  # states in self._sets and self._plans
        self.start: _States = self._interned(frozenset((p, 0) for p in range(len(self.names))))

    def __bool__(self) -> bool:
        return bool(self.names)

    def advance(self, key: str, states: _States) -> tuple[bool, _States]:
        """Whether ``key`` completes a path, and the states that continue below it
        (as ES: a ``**`` matches the key and also stays, for one or more levels)."""
        step = self._memo.get((key, states))
        if step is None:
            step = self._step(key, self._plan(states))
            # only steps between held sets: a remembered step must not keep a set of its own alive
            if len(self._memo) < self._MEMO_LIMIT and all(not s or s in self._sets for s in (states, step[1])):
                self._memo[(key, states)] = step
        return step

    def _step(self, key: str, plan: _Plan) -> tuple[bool, _States]:
        literal, wild, stay = plan
        matched = list(literal.get(key, ()))
        matched.extend(state for state, match in wild if match(key))
        if not matched:
            return False, stay
        if any(j + 1 == len(self.names[p]) for p, j in matched):
            return True, frozenset()
        return False, self._interned(stay.union((p, j + 1) for p, j in matched))

    def _interned(self, states: _States) -> _States:
        """One object per distinct set, so remembered steps compare by identity."""
        known = self._sets.get(states)
        if known is None and self._room(states):
            known = self._sets[states] = states
        return known if known is not None else states

    def _plan(self, states: _States) -> _Plan:
        plan = self._plans.get(states)
        if plan is None:
            literal: dict[str, list[tuple[int, int]]] = {}
            wild, stay = [], []
            for p, j in states:
                name = self.names[p][j]
                if "*" in name:
                    wild.append(((p, j), wildcard(name)))
                else:
                    literal.setdefault(name, []).append((p, j))
                if j > 0 and self.names[p][j - 1] == "**":
                    stay.append((p, j))
            plan = (literal, wild, self._interned(frozenset(stay)))
            if self._room(states):
                self._plans[states] = plan
        return plan

    def _room(self, states: _States) -> bool:
        """Whether ``states`` may be remembered (and counts it if so)."""
        if self._held + len(states) > self._STATES_LIMIT:
            return False
        self._held += len(states)
        return True


def _segments(path: str) -> list[str]:
    """ES's FilterPath split: at each ``.`` that is not escaped as ``\\.``; in a name with an
    escape every backslash-and-character becomes a dot, as ES's ``replaceAll`` does."""
    out = []
    while True:
        split, escaped, i = -1, False, 0
        while i < len(path):
            if path[i] == ".":
                split = i
                break
            if path[i] == "\\" and i + 1 < len(path) and path[i + 1] == ".":
                i += 1
                escaped = True
            i += 1
        name = path[:split] if split > 0 else path
        out.append(re.sub(r"\\.", ".", name) if escaped else name)
        if split <= 0:
            return out
        path = path[split + 1:]


def _opened(node: Any) -> Any:
    """A pre-encoded part of an answer (``orjson.Fragment``, as a stored ``_source``) as
    values, for a path that goes inside it."""
    if isinstance(node, JsonText):
        return orjson.loads(node.data)
    return orjson.loads(orjson.dumps(node)) if isinstance(node, orjson.Fragment) else node


def _include(node: Any, paths: _Paths, states: _States) -> Any:
    node = _opened(node)
    if isinstance(node, list):
        kept = [v for v in (_include(item, paths, states) for item in node) if v is not _NOTHING]
        return kept if kept else _NOTHING
    if not isinstance(node, dict):
        return _NOTHING
    out = {}
    for key, value in node.items():
        full, below = paths.advance(key, states)
        if full:
            out[key] = value
        elif below:
            kept = _include(value, paths, below)
            if kept is not _NOTHING:
                out[key] = kept
    return out if out else _NOTHING


def _exclude(node: Any, paths: _Paths, states: _States) -> Any:
    node = _opened(node)
    if isinstance(node, list):
        return [_exclude(item, paths, states) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        full, below = paths.advance(key, states)
        if full:
            continue
        out[key] = _exclude(value, paths, below) if below else value
    return out


# --- request bodies -------------------------------------------------------------------


def check_content_type(request: web.Request, *, ndjson: bool = False) -> None:
    """ES's checks of Content-Type and compatible-with, for a request that has a body."""
    content_type = request.headers.get("Content-Type")
    if content_type is None:
        raise PlainError(406, "Content-Type header is missing")
    media = content_type.split(";")[0].strip().lower()
    if media in _BROWSER_TYPES:
        raise PlainError(406, f"Content-Type header [{content_type}] is not supported")
    versions = []
    for header in ("Content-Type", "Accept"):
        match = _COMPAT.search(request.headers.get(header, ""))
        versions.append(match[1] if match else None)
        if match and match[1] not in ("8", "9"):
            raise _media_type_error(request, f"Content-Type version must be either version 8 or 9, but found "
                                             f"{match[1]}. Content-Type={content_type}")
    if any(versions) and "Accept" in request.headers and versions[0] != versions[1]:
        raise _media_type_error(
            request, "A compatible version is required on both Content-Type and Accept headers if either one has "
                     "requested a compatible version and the compatible versions must match. "
                     f"Accept={request.headers.get('Accept')}, Content-Type={content_type}")


def _media_type_error(request: web.Request, message: str) -> ServiceError:
    return ServiceError("Invalid media-type value on headers [Accept, Content-Type]", status=400,
                        type="media_type_header_exception",
                        caused_by=ServiceError(message, status=400, type="status_exception"))


async def read_body(request: web.Request, *, ndjson: bool = False) -> bytes:
    """The raw request body ("" when there is none), its content type checked."""
    body = await request.read()
    if body:
        check_content_type(request, ndjson=ndjson)
    return body


async def read_json(request: web.Request, parser: str, fields: frozenset[str] | None = None,
                    *, required: bool = False) -> dict[str, Any]:
    """Parse a JSON object body; unknown top-level fields are ES's strict-parser error."""
    body = await read_body(request)
    if not body.strip():
        if required:
            raise ServiceError("request body is required", status=400, type="parse_exception")
        return {}
    data = parse_json_object(body)
    if fields is not None:
        for key in data:
            if key not in fields:
                raise XContentParseError(f"[1:2] [{parser}] unknown field [{key}]")
    return data


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise XContentParseError(f"Failed to parse object: {exc}", type="x_content_parse_exception") from None
    if not isinstance(data, dict):
        raise BadRequest("request body or source parameter is required" if data is None else
                         f"Unknown key for a {_token(data)} in [{type(data).__name__}].",
                         type="parse_exception")
    return data


def _token(value: Any) -> str:
    return "START_ARRAY" if isinstance(value, list) else "VALUE_STRING" if isinstance(value, str) else "VALUE_NUMBER"
