"""EQL: parse, plan on the shared engine, run; the answer is one ``[hit]`` row per event,
sequence or sample, which the API puts under ``hits.events`` or ``hits.sequences``."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from typing import Any, Iterator

from ...store.catalog import Catalog
from ..control import Control
from ..execute import Result, run_plan
from ..jobs import ShipsItsIndices
from ..options import QueryOptions
from ..plan import Plan
from . import ast
from .dialect import EQL
from .parser import parse
from .planner import plan
from .request import EqlRequest

__all__ = ["EqlJob", "EqlRequest", "interrupted_frame"]


@dataclass
class Answer:
    """A running EQL query's result: its rows, counted as they are read."""

    result: Result
    count: int = 0

    @property
    def rows(self) -> Iterator[list[Any]]:
        for row in self.result.rows:
            self.count += 1
            yield row


@dataclass
class EqlJob(ShipsItsIndices):
    """One EQL search, parsed and verified (errors surface at once), ready to run on a worker."""

    request: EqlRequest
    plan: Plan
    catalog: Catalog
    options: QueryOptions
    kind_of_hits: str = field(default="events")
    kind = "eql"
    action = "indices:data/read/eql"

    @classmethod
    def compile(cls, request: EqlRequest, catalog: Catalog, options: QueryOptions) -> EqlJob:
        query = parse(request.query)
        hits = "events" if isinstance(query, ast.EventQuery) else "sequences"
        return cls(request, plan(query, request, catalog), catalog, options, hits)

    @property
    def description(self) -> str:
        return self.request.query

    @property
    def target(self) -> str:
        return ",".join(self.request.indices)


    def run(self, conn: sqlite3.Connection, control: Control) -> Answer:
        return Answer(run_plan(self.plan, self.catalog, conn, control, EQL, self.request.filter, self.options))

    def frame(self, answer: Answer, took_ms: int) -> dict[str, Any]:
        return {"took": took_ms, "is_partial": answer.result.is_partial, "timed_out": False,
                "kind": self.kind_of_hits, "total": answer.count}


def interrupted_frame() -> dict[str, Any]:
    """The frame of an async search a restart cut before its query sent one: no hits."""
    return {"kind": "events", "total": 0, "timed_out": False}
