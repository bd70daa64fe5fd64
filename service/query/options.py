"""What the service's settings decide about running a query, handed to every language's job."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LIMIT = 10000


@dataclass(frozen=True)
class QueryOptions:
    max_rows: int = MAX_LIMIT  # the cap on rows a query returns (esql.query.result_truncation_max_size)
    pushdown: bool = True  # run what SQLite can run exactly as SQL; off, the whole pipeline runs in Python
