"""Conventions every response follows, in one place.

The product header and the echoed ``X-Opaque-Id`` go on every response, errors and HEAD
included; ``ServiceError`` becomes ES's error body; routing misses become ES's
routing errors; unexpected exceptions are logged once, with their traceback and an error
id, and answered with a generic 500 that carries the same id and nothing of the exception.
Unknown query parameters are rejected as ES rejects them. What aiohttp's HTTP parser
rejects before any handler runs is answered the same way, by ``EsRunner``'s protocol.
"""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable

import orjson
import structlog
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

from .. import keys
from ..errors import BadRequest, InternalError, PlainError, ServiceError
from .wire import GLOBAL_PARAMS, JsonResponse, error_response

log = structlog.get_logger("esquire.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def accepts(*names: str) -> Callable[[Handler], Handler]:
    """Declare the query parameters a handler accepts (besides the global ones)."""

    def mark(handler: Handler) -> Handler:
        handler.es_params = frozenset(names) | GLOBAL_PARAMS  # type: ignore[attr-defined]
        return handler

    return mark


def _check_params(request: web.Request) -> None:
    allowed = getattr(request.match_info.handler, "es_params", None)
    if allowed is None:
        return
    unknown = [name for name in request.query if name not in allowed]
    if unknown:
        listed = ", ".join(f"[{n}]" for n in unknown)
        noun = "parameter" if len(unknown) == 1 else "parameters"
        raise BadRequest(f"request [{request.path}] contains unrecognized {noun}: {listed}")


def _last_values(request: web.Request) -> web.Request:
    """The request as handlers see it: a repeated query parameter has its last value, as ES's
    ``RestUtils.decodeQueryString`` keeps it (aiohttp's ``query.get`` gives the first)."""
    query = request.rel_url.query
    if len(query) == len(set(query)):
        return request
    last = {name: value for name, value in query.items()}  # later pairs overwrite earlier ones
    return request.clone(rel_url=request.rel_url.with_query(last))


def _check_declared_length(request: web.Request) -> None:
    """A body declared bigger than ``max_body_bytes`` is refused before a byte of it is read,
    as Netty's aggregator refuses it from its Content-Length (aiohttp would read up to the
    limit first: 100 MB of an attacker's bandwidth and time per request)."""
    limit = request.app[keys.SETTINGS].max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)


def _routing_error(request: web.Request, exc: web.HTTPException) -> PlainError | ServiceError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ",".join(sorted(exc.allowed_methods))
        return PlainError(405, f"Incorrect HTTP method for uri [{request.path_qs}] and method [{request.method}], "
                               f"allowed: [{allowed}]", headers={"Allow": allowed})
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return ServiceError(f"request body exceeds the maximum content length [{exc.text}]", status=413,
                            type="content_too_long_exception")
    if isinstance(exc, web.HTTPNotFound):
        return PlainError(400, f"no handler found for uri [{request.path_qs}] and method [{request.method}]",
                          with_status=False)
    return ServiceError(exc.reason, status=exc.status)


def _options(exc: web.HTTPMethodNotAllowed) -> web.Response:
    """``OPTIONS`` on a route: ES's RestController answers 200, no body, and the route's
    methods in ``Allow`` (CORS pre-flights and proxies ask this)."""
    return web.Response(status=200, headers={"Allow": ",".join(sorted(exc.allowed_methods))})


@web.middleware
async def es_conventions(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    opaque_ids = request.headers.getall("X-Opaque-Id", [])
    opaque_id = opaque_ids[0] if opaque_ids else None
    structlog.contextvars.clear_contextvars()
    if opaque_id is not None:
        structlog.contextvars.bind_contextvars(opaque_id=opaque_id)
    try:
        if len(opaque_ids) > 1:
            raise BadRequest("multiple values for single-valued header [X-Opaque-Id].")
        _check_declared_length(request)
        response = await handler(_last_values(request))
        if isinstance(response, JsonResponse) and request.method != "HEAD":
            await response.render()  # here, so a body that cannot be encoded is our logged 500
    except (ServiceError, PlainError) as err:
        response = error_response(request, err)
    except web.HTTPException as exc:
        if request.method == "OPTIONS" and isinstance(exc, web.HTTPMethodNotAllowed):
            response = _options(exc)
        else:
            response = error_response(request, _routing_error(request, exc))
    except ConnectionResetError:  # the client left mid-body: no one to answer, and not our error
        log.info("client_disconnected", method=request.method, path=request.path)
        response = error_response(request, BadRequest("the client closed the connection"))
    except RequestPayloadError as exc:  # the body broke off mid-way: bad chunks, bad gzip, ...
        response = error_response(request, _http_error(exc.__cause__))
    except Exception:
        error = InternalError()
        log.exception("request_failed", method=request.method, path=request.path, error_id=error.error_id)
        response = error_response(request, error)
    response.headers["X-Elastic-Product"] = "Elasticsearch"
    if opaque_id is not None:
        response.headers["X-Opaque-Id"] = opaque_id
    if response.status == 413:  # the unread body must not be taken for the next request
        response.force_close()
    if request.method == "HEAD" and isinstance(response, JsonResponse):
        response.drop_body()
    elif request.method == "HEAD" and isinstance(response, web.Response):
        response.body = None
    log.info("request", method=request.method, path=request.path, status=response.status,
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return response


@web.middleware
async def known_params(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unknown query parameters are refused as ES refuses them: innermost, after the security
    step, as ES's handlers read their parameters only once the request is authenticated."""
    _check_params(request)
    return await handler(request)


# --- errors found before any handler runs ----------------------------------------------

def _http_error(exc: BaseException | None) -> ServiceError:
    """What aiohttp's parser rejected, as Elasticsearch answers a request Netty could not
    decode: 400 with its error body (aiohttp's own text names the problem, then draws the
    offending bytes: keep the first line)."""
    if isinstance(exc, LineTooLong):
        return ServiceError(f"An HTTP line is larger than {exc.args[1]} bytes.", status=400,
                            type="too_long_frame_exception")
    message = exc.message if isinstance(exc, HttpProcessingError) else ""
    reason = next((line.strip().rstrip(":") for line in message.splitlines() if line.strip()), "")
    return BadRequest(reason or "malformed HTTP request")


class _EsProtocol(RequestHandler):
    """aiohttp's HTTP/1 protocol, answering its own errors as the middleware answers ours:
    a malformed request line, bad chunked encoding or a too-long header is a 400 with
    Elasticsearch's JSON body, and an exception outside every handler a generic 500 whose
    error id is in the log line, never aiohttp's text or HTML page.

    After the answer to a parser error the connection closes lingering: the client may still
    be sending the body, and closing with its bytes unread makes the kernel reset the
    connection, which can destroy the answer before the client reads it. So the server
    half-closes, reads and drops whatever arrives until the client closes or
    ``LINGER_SECONDS`` pass, then closes (aiohttp does the same for a parsed request whose
    body was left unread, but a request it could not parse has no body to read)."""

    LINGER_SECONDS = 2.0

    __slots__ = ("_discarding", "_peer_gone")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._discarding = False  # a parser error was answered: what arrives is dropped
        self._peer_gone: asyncio.Future[None] | None = None

    def data_received(self, data: bytes) -> None:
        if not self._discarding:
            super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._peer_gone is not None and not self._peer_gone.done():
            self._peer_gone.set_result(None)
        super().connection_lost(exc)

    async def finish_response(self, request: web.BaseRequest, resp: web.StreamResponse,
                              start_time: float | None) -> tuple[web.StreamResponse, bool]:
        finished = await super().finish_response(request, resp, start_time)
        if self._discarding:
            await self._linger()
        return finished

    async def _linger(self) -> None:
        """Half-close, then drain until the peer closes or ``LINGER_SECONDS`` pass."""
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        self._peer_gone = asyncio.get_running_loop().create_future()
        if transport.can_write_eof():
            transport.write_eof()
        transport.resume_reading()  # aiohttp may have paused it under queued (error) messages
        try:
            async with asyncio.timeout(self.LINGER_SECONDS):
                await self._peer_gone
        except TimeoutError:
            pass

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # too late for a response: aiohttp closes the connection
            return super().handle_error(request, status, exc, message)
        if 400 <= status < 500:  # only aiohttp's parser answers 4xx here
            self._discarding = True
            error = _http_error(exc)
            log.info("bad_http_request", status=error.status, reason=error.reason)
        else:
            error = InternalError()
            log.error("request_failed", status=status, error_id=error.error_id, exc_info=exc or True)
        response = web.Response(body=orjson.dumps(error.body()), status=error.status,
                                content_type="application/json")
        response.headers["X-Elastic-Product"] = "Elasticsearch"
        response.force_close()
        return response


# aiohttp has no hook for the answers to its own parser's errors; a server whose protocol is
# ours is the seam. It uses two private attributes of ``web.Server`` (aiohttp is pinned, and
# tests/test_hardening_process.py sends malformed requests to a real ``serve``).

class _EsServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _EsProtocol(self, loop=self._loop, **self._kwargs)  # as web.Server.__call__ does


class EsRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer HTTP-level errors as Elasticsearch does."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()  # starts the app
        return _EsServer(plain.request_handler, request_factory=plain.request_factory,
                         handler_cancellation=plain.handler_cancellation, loop=plain._loop, **plain._kwargs)
