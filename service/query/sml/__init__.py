"""SML: parse, plan on the shared engine, run; the answer is one ``[event]`` row per result
row (a raw event: the stored document with ``_index`` and ``_id``; after ``table``,
``stats``... a flat object), which the background tasks API stores and pages."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Iterator

import orjson

from ...store.catalog import Catalog
from ..control import Control
from ..execute import Result, previews, run_plan
from ..fieldpath import event_fields, leaf_paths
from ..jobs import ShipsItsIndices
from ..options import QueryOptions
from ..plan import Plan
from .dialect import dialect_at
from .operators import CostClock, with_probes
from .lookups import Definitions, of_index
from .parser import parse
from .planner import Planned, plan
from .request import SmlRequest
from .stats import CommandCost, ExecutionCost, Sidebar, Timeline

__all__ = ["SmlJob", "SmlRequest", "event_fields", "interrupted_frame"]


@dataclass
class Answer:
    """A running SML task's result: its rows, counted (and cut at the task's limits of rows
    and of bytes) as they are read, with what the frame reports of them gathered on the way."""

    result: Result
    limit: int
    fixed: tuple[str, ...] | None  # the field order the query fixes, else gathered from the events
    max_bytes: int | None = None  # the rows' JSON bytes at most (max_payload_size)
    sidebar: Sidebar | None = None
    timeline: Timeline | None = None
    clock: CostClock | None = None  # per command time and rows, when the task measures its cost
    count: int = 0
    bytes: int = 0
    truncated: str | None = None  # the warning of the limit that cut the result
    seen: dict[str, None] = field(default_factory=dict)  # fields in order of first appearance

    @property
    def rows(self) -> Iterator[list[Any]]:
        for row in self.result.rows:
            if self.count == self.limit:
                self.truncated = f"result truncated to {self.limit} rows"
                return
            if self.max_bytes is not None:
                self.bytes += len(orjson.dumps(row))
                if self.bytes > self.max_bytes:
                    self.truncated = f"result truncated to {self.count} rows by limit max_payload_size " \
                                     f"[{self.max_bytes} bytes]"
                    return
            self.count += 1
            event = row[0]
            if self.fixed is None:
                self.seen.update(dict.fromkeys(leaf_paths(event)))
            if self.sidebar is not None and self.timeline is not None:
                self.sidebar.add(event)
                self.timeline.add(event)
            yield row

    @property
    def fields(self) -> list[str]:
        return list(self.fixed) if self.fixed is not None else list(self.seen)


@dataclass
class SmlJob(ShipsItsIndices):
    """One SML task, parsed and planned (errors surface at once), ready to run on a worker."""

    request: SmlRequest
    planned: Planned
    catalog: Catalog
    options: QueryOptions
    parse_ms: float = 0.0
    kind = "sml"
    target = None  # its sources are named in the query
    action = "indices:data/read/sml"

    @classmethod
    def compile(cls, request: SmlRequest, catalog: Catalog, options: QueryOptions,
                lookups: Definitions = of_index) -> SmlJob:
        """``lookups``: the lookups' definitions (``lookups.reader`` over the task's database)."""
        started = time.perf_counter()
        pipeline = parse(request.query)
        parse_ms = (time.perf_counter() - started) * 1000
        return cls(request, plan(pipeline, request, catalog, lookups), catalog, options, parse_ms)

    @property
    def plan(self) -> Plan:
        return self.planned.plan

    @property
    def description(self) -> str:
        return self.request.query

    @property
    def previews(self) -> bool:
        """Whether the running task can show a preview (``BackgroundTasks.preview``)."""
        return previews(self.plan)

    def run(self, conn: sqlite3.Connection, control: Control) -> Answer:
        # one row past the limit is asked for, so that a cut result is known to be one
        command_memory = self.request.max_command_bytes
        options = replace(self.options, max_rows=self.request.max_rows + 1,
                          command_memory=-1 if command_memory is None else command_memory)
        # ``now()`` is the task's creation instant; the steps only SML has run as SML's operators say
        dialect = dialect_at(self.request.now_ms)
        clock = CostClock(len(self.planned.ends)) if self.request.execution_cost != "OFF" else None
        planned = self.plan if clock is None else \
            replace(self.plan, steps=with_probes(self.plan.steps, self.planned.ends, clock, self.planned.fused))
        result = run_plan(planned, self.catalog, conn, control, dialect, None, options)
        answer = Answer(result, self.request.max_rows, self.planned.fields, self.request.max_bytes, clock=clock)
        if self.request.calculate_stats:
            answer.sidebar = Sidebar(self.request.time_field)
            answer.timeline = Timeline(self.request.time_field, self.request.start_ms, self.request.end_ms)
        return answer

    def frame(self, answer: Answer, took_ms: int) -> dict[str, Any]:
        warnings = list(answer.result.warnings.messages)
        if answer.truncated:
            warnings.append(answer.truncated)
        out: dict[str, Any] = {"took": took_ms, "is_partial": answer.result.is_partial or bool(answer.truncated),
                               "total": answer.count, "fields": answer.fields, "warnings": warnings}
        if answer.sidebar is not None and answer.timeline is not None:
            out["sidebar"] = answer.sidebar.result()
            out["timeline"] = answer.timeline.result()
        if answer.clock is not None:
            out["executionCost"] = self._cost(answer, answer.clock, took_ms)
        return out

    def _cost(self, answer: Answer, clock: CostClock, took_ms: int) -> dict[str, Any] | None:
        """Spec §6: per command its time and rows in and out; at DEBUG what the source read
        and how many groups a stats made."""
        commands = self.planned.commands
        cost = ExecutionCost(self.request.execution_cost, commands, " | ".join(text for _, text in commands))
        cost.parsed(self.parse_ms)
        for i, (name, _) in enumerate(commands):
            details: dict[str, Any] | None = None
            if i == 0:
                details = {"indices": list(self.planned.indices), "rowsScanned": answer.result.documents_found,
                           "storageQuery": answer.result.profile["drivers"][0]["operators"][0]["operator"],
                           "pushedDown": [commands[f][1] for f in sorted(clock.fused)]}
            elif name in ("stats", "aggs") and i not in clock.fused:
                details = {"groups": clock.rows[i]}
            details = {**(details or {}), **clock.details.get(i, {})} or None  # a subsearch's rows
            cost.add(CommandCost(i, clock.ms[i], clock.rows[i - 1] if i else 0, clock.rows[i], details,
                                 0 if i in clock.fused else None))
        return cost.result(self.parse_ms + took_ms, answer.count)  # parsing is part of the total (spec §6)


def interrupted_frame() -> dict[str, Any]:
    """The frame of a task a restart cut before its query sent one: no rows."""
    return {"total": 0, "fields": [], "warnings": []}
