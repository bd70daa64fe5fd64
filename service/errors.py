"""One hierarchy of errors, each carrying its HTTP status and Elasticsearch error type.

The API middleware renders every ``ServiceError`` as Elasticsearch's error body;
anything else is logged once and rendered as a 500 without a traceback.
"""

from __future__ import annotations

import secrets
from typing import Any, Mapping


class ServiceError(Exception):
    status = 500
    type = "exception"

    def __init__(
        self,
        reason: str | None,
        *,
        status: int | None = None,
        type: str | None = None,
        caused_by: ServiceError | None = None,
        **metadata: Any,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        if status is not None:
            self.status = status
        if type is not None:
            self.type = type
        self.caused_by = caused_by
        self.metadata = metadata

    def headers_for(self, request_headers: Mapping[str, str]) -> Mapping[str, str] | None:
        """The answer's extra headers, given the request's (none by default)."""
        return None

    def to_dict(self) -> dict[str, Any]:
        """The error object without ``root_cause``, ``caused_by`` nested."""
        body: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.metadata}
        if self.caused_by is not None:
            body["caused_by"] = self.caused_by.to_dict()
        return body

    def root_cause(self) -> ServiceError:
        err = self
        while err.caused_by is not None:
            err = err.caused_by
        return err

    @classmethod
    def from_dict(cls, error: dict[str, Any], status: int) -> ServiceError:
        """Rebuild an error stored with ``to_dict`` (its status kept beside it)."""
        extra = {k: v for k, v in error.items() if k not in ("type", "reason", "caused_by", "root_cause")}
        cause = cls.from_dict(error["caused_by"], status) if isinstance(error.get("caused_by"), dict) else None
        return ServiceError(error.get("reason"), status=status, type=error.get("type"), caused_by=cause, **extra)

    def body(self) -> dict[str, Any]:
        """Elasticsearch's full error body: ``{"error": {...}, "status": N}``."""
        root = self.root_cause()
        root_dict = {"type": root.type, "reason": root.reason, **root.metadata}
        return {"error": {"root_cause": [root_dict], **self.to_dict()}, "status": self.status}


class InternalError(ServiceError):
    """An unexpected failure as the client sees it: a generic reason and an id, never the
    exception's text. Whoever raises it logs the traceback with the same ``error_id``."""

    status = 500
    type = "exception"

    def __init__(self) -> None:
        self.error_id = secrets.token_hex(4)
        super().__init__(f"internal server error, error id [{self.error_id}]")


class OwnRootCause(ServiceError):
    """An error Elasticsearch reports as its own root cause although it has a cause: an
    IllegalArgumentException wrapping another, or a failed write item."""

    def root_cause(self) -> ServiceError:
        return self


class BadRequest(ServiceError):
    status = 400
    type = "illegal_argument_exception"


class ParseError(ServiceError):
    status = 400
    type = "parse_exception"


class XContentParseError(ServiceError):
    status = 400
    type = "x_content_parse_exception"


class ValidationError(ServiceError):
    """``action_request_validation_exception`` with ES's numbered message format."""

    status = 400
    type = "action_request_validation_exception"

    def __init__(self, *problems: str) -> None:
        listed = "".join(f"{n}: {p};" for n, p in enumerate(problems, 1))
        super().__init__(f"Validation Failed: {listed}")


class MapperParsingError(ServiceError):
    status = 400
    type = "mapper_parsing_exception"


class NotFound(ServiceError):
    status = 404
    type = "resource_not_found_exception"


class IndexNotFound(ServiceError):
    status = 404
    type = "index_not_found_exception"

    def __init__(self, index: str, reason: str | None = None) -> None:
        super().__init__(
            reason or f"no such index [{index}]",
            **{
                "resource.type": "index_or_alias",
                "resource.id": index,
                "index_uuid": "_na_",
                "index": index,
            },
        )


class Forbidden(ServiceError):
    status = 403
    type = "security_exception"


class Conflict(ServiceError):
    status = 409
    type = "version_conflict_engine_exception"


class Rejected(ServiceError):
    """A bounded resource refused new work (a full queue): Elasticsearch's 429."""

    status = 429
    type = "es_rejected_execution_exception"


class PlainError(Exception):
    """A routing-level error that Elasticsearch renders outside the standard shape:
    ``{"error": "<text>"}`` with or without a ``status`` field."""

    def __init__(self, status: int, text: str, *, with_status: bool = True,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.with_status = with_status
        self.headers = headers or {}

    def headers_for(self, request_headers: Mapping[str, str]) -> Mapping[str, str] | None:
        return self.headers

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.text}
        if self.with_status:
            body["status"] = self.status
        return body
