"""What the service's settings decide about running a query, handed to every language's job."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..settings import Settings

MAX_LIMIT = 10000


@dataclass(frozen=True)
class QueryOptions:
    max_rows: int = MAX_LIMIT  # the cap on rows a query returns (esql.query.result_truncation_max_size)
    pushdown: bool = True  # run what SQLite can run exactly as SQL; off, the whole pipeline runs in Python
    command_memory: int = -1  # the bytes one command's operators may hold (SML's max_command_ram_usage); -1: no limit

    @classmethod
    def of(cls, settings: Settings) -> QueryOptions:
        return cls(max_rows=settings.max_result_rows, pushdown=settings.query_pushdown)
