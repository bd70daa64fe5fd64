"""What an SML task computes beside its rows (spec sme-background-tasks §5, §6): the sidebar
(per-field value statistics), the timeline (rows per time bucket) and the execution cost.

Pure accumulators the job feeds as its result rows stream out (``add(event)`` per row, then
``result()``), so they describe the whole result, never a page, and keep bounded memory:
the sidebar at most ``DISTINCT_CAP`` values per field (each cut to ``VALUE_CHARS``), the
timeline one counter per bucket of the range.
"""

from __future__ import annotations

import heapq
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from ...store.dates import DAY_MS, format_millis, parse_iso_nanos
from ..fieldpath import MISSING, field_value
from ..spans import add_span, date_trunc

TOP_VALUES = 10
DISTINCT_CAP = 10_000
VALUE_CHARS = 256
_ISO_LIKE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")
_RANK = {int: 0, float: 0, str: 1, bool: 2, dict: 3}  # top values' ties: numbers, text, booleans, {}


# --- sidebar (§5.1) -----------------------------------------------------------------------------

def _value_type(value: Any, is_time: bool) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "date" if is_time else "number"
    if isinstance(value, str):
        return "date" if is_time or _ISO_LIKE.match(value) else "string"
    return "object"


def _leaves(node: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted path, value) for every leaf of an event; an array gives each element under its
    path (objects in it are walked), an empty object is a leaf of its own."""
    for key, value in node.items():
        yield from _leaf(f"{prefix}{key}", value)


def _leaf(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict) and value:
        yield from _leaves(value, path + ".")
    elif isinstance(value, list):
        if not value:
            yield path, None
        for item in value:
            yield from _leaf(path, item)
    else:
        yield path, value


class _FieldStats:
    __slots__ = ("name", "is_time", "rows", "types", "values", "capped", "numbers", "total", "low", "high")

    def __init__(self, name: str, is_time: bool) -> None:
        self.name = name
        self.is_time = is_time
        self.rows = 0  # rows where the field holds a non-null value
        self.types: dict[str, int] = {}
        # (class, value) -> [count, type]: the class keeps True apart from 1; a value seen
        # before costs one lookup, its type known
        self.values: dict[tuple[type, Any], list[Any]] = {}
        self.capped = False
        self.numbers = 0
        self.total: int | float = 0
        self.low: Any = None
        self.high: Any = None

    def add(self, value: Any) -> None:
        cls = value.__class__
        key = (cls, value[:VALUE_CHARS] if cls is str else "{}" if cls is dict else value)
        entry = self.values.get(key)
        if entry is not None:
            entry[0] += 1
            kind = entry[1]
        else:
            kind = _value_type(value, self.is_time)
            if len(self.values) < DISTINCT_CAP:
                self.values[key] = [1, kind]
            else:  # past the cap: the values kept go on counting exactly, new ones are not kept
                self.capped = True
        self.types[kind] = self.types.get(kind, 0) + 1
        if kind == "number":
            self.numbers += 1
            self.total += value
            if self.low is None or value < self.low:
                self.low = value
            if self.high is None or value > self.high:
                self.high = value

    def result(self, events: int) -> dict[str, Any]:
        values = sum(self.types.values())
        out: dict[str, Any] = {"field": self.name, "type": self._type(values), "count": self.rows,
                               "percent": _percent(self.rows, events), "distinctCount": len(self.values)}
        if self.capped:
            out["distinctCountCapped"] = True
        ranked = heapq.nsmallest(TOP_VALUES, ((-count, _RANK[cls], value) for (cls, value), (count, _) in
                                              self.values.items()))
        out["topValues"] = [{"value": {} if rank == _RANK[dict] else value, "count": -count,
                             "percent": _percent(-count, events)} for count, rank, value in ranked]
        if values and self.numbers == values:
            out["numeric"] = {"min": self.low, "max": self.high, "avg": round(self.total / values, 2),
                              "sum": self.total}
        return out

    def _type(self, values: int) -> str:
        """The type of most values (more than half of them), else ``mixed``; the time field is
        ``date``, and a field with no value but nulls ``string``."""
        if self.is_time:
            return "date"
        kind, count = max(self.types.items(), key=lambda kv: kv[1], default=("string", 0))
        return kind if count * 2 > values or not values else "mixed"


def _percent(part: int, whole: int) -> float:
    return round(part * 100 / whole, 2) if whole else 0.0


class Sidebar:
    """Per-field statistics over every row: for each leaf field present (even null) in a row,
    how many rows hold it, its type, its top values with counts, its distinct count (exact up
    to ``DISTINCT_CAP``, then capped: the top values then come from the values met first) and,
    for a numeric field, min, max, avg and sum. A multi-valued field counts each element."""

    def __init__(self, time_field: str) -> None:
        self.time_field = time_field
        self.events = 0
        self.fields: dict[str, _FieldStats] = {}

    def add(self, event: dict[str, Any]) -> None:
        self.events += 1
        held: set[str] = set()
        for path, value in _leaves(event):
            stats = self.fields.get(path)
            if stats is None:
                stats = self.fields[path] = _FieldStats(path, path == self.time_field)
            if value is not None:
                stats.add(value)
                held.add(path)
        for path in held:
            self.fields[path].rows += 1

    def result(self) -> dict[str, Any]:
        fields = sorted(self.fields.values(), key=lambda s: (-s.rows, s.name))
        return {"totalEvents": self.events, "fields": [s.result(self.events) for s in fields]}


# --- timeline (§5.2) ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Interval:
    name: str  # as the timeline shows it
    span: tuple[int, str]  # for spans.date_trunc / add_span
    up_to_ms: int | None  # the longest range it serves; None: any


# The vendor's predefined spans by range length (sml.md §7.14): the first that is long enough.
INTERVALS = (
    Interval("10s", (10, "s"), 15 * 60_000),
    Interval("1m", (1, "m"), 3_600_000),
    Interval("5m", (5, "m"), 4 * 3_600_000),
    Interval("30m", (30, "m"), DAY_MS),
    Interval("1d", (1, "d"), 30 * DAY_MS),
    Interval("1M", (1, "mo"), None),
)


def predefined_interval(range_ms: int) -> Interval:
    """The bucket size for a range of ``range_ms`` (from its first to its last millisecond)."""
    return next(i for i in INTERVALS if i.up_to_ms is None or range_ms <= i.up_to_ms)


def time_millis(value: Any) -> int | None:
    """A time value as epoch ms: a number is epoch ms, a string ISO-8601; the first of an
    array; None when it is neither."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, str):
        try:
            return parse_iso_nanos(value) // 1_000_000
        except ValueError:
            return None
    return None


class Timeline:
    """Rows per time bucket over the task's range (``start_ms`` inclusive, ``end_ms``
    exclusive; an open side, or rows outside it (a source's ``earliest``/``latest``), widen it
    to the rows' times). Buckets are the predefined interval for the range's length, aligned to
    the UTC calendar, empty ones included. Counting starts at the finest interval the range
    allows and coarsens when the range grows: every interval is a union of the finer ones, so
    the counts stay exact."""

    def __init__(self, time_field: str, start_ms: int | None = None, end_ms: int | None = None) -> None:
        self.time_field = time_field
        self.low = start_ms
        self.high = None if end_ms is None else end_ms - 1
        self.counts: dict[int, int] = {}
        self.interval = predefined_interval(self._range())

    def _range(self) -> int:
        """The range's length in whole seconds (as ms): an end given to the second is
        inclusive to its last millisecond (``dtEnd`` rounds up to ``.999``), and a day from
        midnight to midnight is still a day."""
        if self.low is None or self.high is None:
            return 0
        return (self.high - self.low) // 1000 * 1000

    def add(self, event: dict[str, Any]) -> None:
        value = field_value(event, self.time_field)
        ms = None if value is MISSING else time_millis(value)
        if ms is None:
            return
        self.low = ms if self.low is None else min(self.low, ms)
        self.high = ms if self.high is None else max(self.high, ms)
        bucket = date_trunc(ms, self.interval.span)
        self.counts[bucket] = self.counts.get(bucket, 0) + 1
        wanted = predefined_interval(self._range())
        if wanted.name != self.interval.name:
            self._coarsen(wanted)

    def _coarsen(self, interval: Interval) -> None:
        counts: dict[int, int] = {}
        for bucket, count in self.counts.items():
            coarse = date_trunc(bucket, interval.span)
            counts[coarse] = counts.get(coarse, 0) + count
        self.counts, self.interval = counts, interval

    def result(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.time_field, "interval": self.interval.name}
        if self.low is not None:
            out["start"] = format_millis(self.low)
        if self.high is not None:
            out["end"] = format_millis(self.high)
        out["fields"] = [{self.time_field: format_millis(b), "count": c} for b, c in self._buckets()]
        return out

    def _buckets(self) -> Iterator[tuple[int, int]]:
        """Every bucket from the one holding the range's start to the one holding its end;
        none when no row had a time."""
        if not self.counts or self.low is None or self.high is None:
            return
        bucket = date_trunc(self.low, self.interval.span)
        while bucket <= self.high:
            yield bucket, self.counts.get(bucket, 0)
            bucket = add_span(bucket, self.interval.span, 1, "date")


# --- execution cost (§6) ------------------------------------------------------------------------

LEVELS = ("OFF", "INFO", "DEBUG")


@dataclass(frozen=True)
class CommandCost:
    """One measurement of a pipeline command; several for one command add up (one per slice:
    times, row counts and numeric details summed, other details the latest)."""

    index: int
    ms: float = 0
    rows_in: int = 0
    rows_out: int = 0
    details: dict[str, Any] | None = None  # DEBUG only: indices, rowsScanned, storageQuery, groups...
    fused_into: int | None = None  # run inside that command's storage query: ``ms`` 0


class ExecutionCost:
    """The ``executionCost`` of a task: per command its wall-clock ms and rows in and out
    (``INFO``), plus each command's ``details`` and the parsed pipeline (``DEBUG``); nothing for
    ``OFF``. ``commands`` are the pipeline's (name, text) pairs, in order."""

    def __init__(self, level: str, commands: Sequence[tuple[str, str]], pipeline: str = "") -> None:
        self.level = level.upper()
        if self.level not in LEVELS:
            raise ValueError(f"execution cost level must be one of {LEVELS}, got [{level}]")
        self.pipeline = pipeline
        self.parse_ms = 0.0
        self.commands = [{"index": i, "command": name, "text": text, "ms": 0.0, "rowsIn": 0, "rowsOut": 0}
                         for i, (name, text) in enumerate(commands)]

    def parsed(self, ms: float) -> None:
        self.parse_ms = ms

    def add(self, cost: CommandCost) -> None:
        entry = self.commands[cost.index]
        entry["rowsIn"] += cost.rows_in
        entry["rowsOut"] += cost.rows_out
        if cost.fused_into is not None:
            entry["fusedInto"] = cost.fused_into
        else:
            entry["ms"] += cost.ms
        if self.level == "DEBUG" and cost.details:
            _merge_details(entry.setdefault("details", {}), cost.details)

    def result(self, total_ms: float, rows_out: int) -> dict[str, Any] | None:
        """The cost object, None for ``OFF``; times in whole milliseconds."""
        if self.level == "OFF":
            return None
        out: dict[str, Any] = {"level": self.level, "totalMs": round(total_ms), "parseMs": round(self.parse_ms),
                               "rowsOut": rows_out,
                               "commands": [{**c, "ms": 0 if "fusedInto" in c else round(c["ms"])}
                                            for c in self.commands]}
        if self.level == "DEBUG":
            out["pipeline"] = self.pipeline
        return out


def _merge_details(into: dict[str, Any], details: dict[str, Any]) -> None:
    for key, value in details.items():
        before = into.get(key)
        summed = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (before, value))
        into[key] = before + value if summed else value
