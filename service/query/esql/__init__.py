"""ES|QL: parse to the shared plan, run it, and render values the way Elasticsearch prints them."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from ...store.catalog import Catalog
from ...store.dates import format_millis, format_nanos
from ..control import Control
from ..execute import Result, run_plan
from ..jobs import ShipsItsIndices
from ..options import QueryOptions
from ..plan import Limit, Plan
from .dialect import ESQL
from .parser import parse

DEFAULT_LIMIT = 1000

__all__ = ["EsqlJob", "Result", "interrupted_frame", "render_value"]


@dataclass
class EsqlJob(ShipsItsIndices):
    """One ES|QL query, parsed (syntax errors surface at once), ready to run on a worker."""

    plan: Plan
    catalog: Catalog
    source_filter: Any
    options: QueryOptions
    kind = "esql"
    target = None  # its sources are named in the query
    action = "indices:data/read/esql"

    @classmethod
    def compile(cls, text: str, params: list[Any] | dict[str, Any] | None, source_filter: Any, catalog: Catalog,
                options: QueryOptions) -> EsqlJob:
        return cls(parse(text, params), catalog, source_filter, options)

    @property
    def description(self) -> str:
        return self.plan.text


    def run(self, conn: sqlite3.Connection, control: Control) -> Result:
        return run_plan(with_default_limit(self.plan), self.catalog, conn, control, ESQL, self.source_filter,
                        self.options)

    def frame(self, result: Result, took_ms: int) -> dict[str, Any]:
        return {"names": result.names, "types": result.types, "warnings": list(result.warnings.messages),
                "documents_found": result.documents_found, "is_partial": result.is_partial, "took": took_ms,
                "profile": result.profile}


def with_default_limit(plan: Plan) -> Plan:
    """ES|QL returns at most DEFAULT_LIMIT rows of a query without a LIMIT, and says so first."""
    if any(isinstance(step, Limit) for step in plan.steps):
        return plan
    return Plan((*plan.steps, Limit(DEFAULT_LIMIT)), plan.text,
                (f"No limit defined, adding default limit of [{DEFAULT_LIMIT}]", *plan.warnings))


def interrupted_frame() -> dict[str, Any]:
    """The frame of an async search a restart cut before its query sent one: no columns."""
    return {"columns": []}


def _one(value: Any, kind: str) -> Any:
    if kind == "date":
        return format_millis(value)
    if kind == "date_nanos":
        return format_nanos(value)
    if kind in ("time_duration", "date_period"):
        return f"{value[0]}{value[1]}"
    return value


def render_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if type(value) is list:
        return [_one(v, kind) for v in value]
    return _one(value, kind)
