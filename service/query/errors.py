"""Errors shared by the query languages' parsers."""

from __future__ import annotations

from ..errors import ServiceError


class ParsingError(ServiceError):
    """A syntax error: Elasticsearch's 400 ``parsing_exception``, message ``line L:C: ...``."""

    status = 400
    type = "parsing_exception"
