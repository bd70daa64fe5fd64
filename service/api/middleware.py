"""Conventions every response follows, in one place.

The product header and the echoed ``X-Opaque-Id`` go on every response, errors and HEAD
included; ``ServiceError`` becomes ES's error body; routing misses become ES's
routing errors; unexpected exceptions are logged once and answered with a plain 500.
Unknown query parameters are rejected as ES rejects them.
"""

from __future__ import annotations

import time
from typing import Awaitable, Callable

import structlog
from aiohttp import web

from ..errors import BadRequest, PlainError, ServiceError
from .wire import GLOBAL_PARAMS, error_response

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
        _check_params(request)
        response = await handler(request)
    except (ServiceError, PlainError) as err:
        response = error_response(request, err)
    except web.HTTPException as exc:
        response = error_response(request, _routing_error(request, exc))
    except Exception:
        log.exception("request_failed", method=request.method, path=request.path)
        response = error_response(request, ServiceError("internal server error", status=500, type="exception"))
    response.headers["X-Elastic-Product"] = "Elasticsearch"
    if opaque_id is not None:
        response.headers["X-Opaque-Id"] = opaque_id
    if request.method == "HEAD" and isinstance(response, web.Response):
        response.body = None
    log.info("request", method=request.method, path=request.path, status=response.status,
             duration_ms=round((time.perf_counter() - started) * 1000, 2))
    return response
