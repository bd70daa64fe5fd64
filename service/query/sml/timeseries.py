"""How ``bin`` and the time-aware commands' steps (``plan.Bin``, ``plan.Pivot``) run.

``timechart``/``timeaggs`` are a Bin of the time field, the shared Aggregate grouped by
that bucket (and the ``by`` value), then a Pivot: the aggregation is the shared one, so a
stopped task pivots the groups of the rows read so far. The Pivot holds one entry per
group the Aggregate made (never the input rows) and makes the rows of empty buckets as
they are read, so a fine span over a long range costs rows of output, not memory.
"""

from __future__ import annotations

import heapq
from typing import Any, Callable, Iterable, Iterator

from .. import types as T
from ..breaker import Reservation, released, row_bytes
from ..evaluate import compile_expr
from ..execute import Context, Relation
from ..plan import Step
from . import buckets
from . import plan as sp
from .values import identity, instant, number, order_key, text

CHARGE_EVERY = 1024  # rows between two charges of what a step holds to the breaker
OTHER = "OTHER"
# how the OTHER column merges the values of the by values it stands for; other functions
# (avg, dc, perc...) cannot be merged from their results, so their OTHER is null
_MERGED: dict[str, Callable[[list[Any]], Any]] = {
    "count": sum, "sum": sum,
    "min": lambda vs: _extreme(vs, min), "max": lambda vs: _extreme(vs, max),
}


# --- bin -------------------------------------------------------------------------------------

def _time_floor(span: buckets.Span, kind: str) -> Callable[[Any], Any]:
    nanos = kind == "date_nanos"

    def floor(v: Any) -> int | None:
        ms = instant(v, nanos)
        return None if ms is None else buckets.floor_time(span, ms)
    return floor


def _number_floor(size: int | float) -> Callable[[Any], Any]:
    def floor(v: Any) -> int | float | None:
        n = number(v)
        return None if n is None or n != n else buckets.floor_number(size, n)
    return floor


def _each(floor: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``floor`` over one value, or over each value of a multi-value (nulls dropped)."""
    def bucket(v: Any) -> Any:
        if type(v) is list:
            out = [b for x in v if (b := floor(x)) is not None]
            return out or None
        return None if v is None else floor(v)
    return bucket


def _replaced(rel: Relation, name: str, kind: str, fn: Callable[[list[Any]], Any],
              rows: Iterable[list[Any]]) -> Relation:
    """``rel``'s columns without ``name``, then ``name`` computed by ``fn`` over ``rows``."""
    keep = [i for i, n in enumerate(rel.names) if n != name]
    return Relation([rel.names[i] for i in keep] + [name], [rel.types[i] for i in keep] + [kind],
                    ([row[i] for i in keep] + [fn(row)] for row in rows),
                    {n: v for n, v in rel.constants.items() if n != name})


def run_bin(step: sp.Bin, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    value, kind = compile_expr(step.value, ctx.scope(rel))
    if step.span is None:
        return _by_bins(step, rel, ctx, value)
    if step.span.is_time:
        bucket, out = _each(_time_floor(step.span, kind)), "date"
    else:
        bucket, out = _each(_number_floor(step.span.amount)), T.ANY
    rows: Iterable[list[Any]] = rel.rows
    if step.absent is not None:
        rows = _warn_when_absent(rel.rows, value, f"[{step.absent}] no row has a value of its time field; set "
                                                  "timefield= to the field that holds the events' time", ctx)
    return _replaced(rel, step.name, out, lambda row: bucket(value(row)), rows)


def run_time_check(step: sp.TimeCheck, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    return rel.with_rows(_warn_when_absent(rel.rows, compile_expr(step.value, ctx.scope(rel))[0], step.warning, ctx))


def _warn_when_absent(rows: Iterable[list[Any]], value: Callable[[list[Any]], Any], warning: str,
                      ctx: Context) -> Iterator[list[Any]]:
    """``rows`` as they are; once read, ``warning`` when there were some and none had a
    value of the time field (spec §3: the default ``@timestamp`` may not be the data's)."""
    seen = found = False
    for row in rows:
        seen = True
        found = found or value(row) is not None
        yield row
    if seen and not found:
        ctx.warnings.add(warning)


def _by_bins(step: sp.Bin, rel: Relation, ctx: Context, value: Callable[[list[Any]], Any]) -> Relation:
    """Numbers in buckets of ``max(value) / bins``: every row is held (charged to the
    breaker) until the largest value is known. No positive largest value: null."""
    keep = [i for i, n in enumerate(rel.names) if n != step.name]

    def rows() -> Iterator[list[Any]]:
        held: list[list[Any]] = []
        reservation = Reservation(ctx.breaker(step))
        top: int | float | None = None
        size = 0
        try:
            for row in rel.rows:
                held.append(row)
                size += row_bytes(row)
                if len(held) % CHARGE_EVERY == 0:
                    reservation.hold(size)
                for n in map(number, _values(value(row))):
                    if n is not None and n == n and (top is None or n > top):
                        top = n
            width = _bin_size(top, step.bins)
            bucket = _each(_number_floor(width)) if width is not None else (lambda v: None)
            for row in held:
                yield [row[i] for i in keep] + [bucket(value(row))]
        finally:
            reservation.close()
    return Relation([rel.names[i] for i in keep] + [step.name], [rel.types[i] for i in keep] + [T.ANY], rows(),
                    {n: v for n, v in rel.constants.items() if n != step.name})


def _values(v: Any) -> list[Any]:
    return v if type(v) is list else [] if v is None else [v]


def _bin_size(top: int | float | None, bins: int) -> int | float | None:
    """``top / bins``, an integer when it divides exactly; None when ``top`` is not positive."""
    if top is None or top <= 0:
        return None
    if type(top) is int and top % bins == 0:
        return top // bins
    return top / bins


# --- the pivot -------------------------------------------------------------------------------

def _extreme(values: list[Any], pick: Callable[..., Any]) -> Any:
    """``min``/``max`` of results: over the numbers among them, else over the strings."""
    numbers = [v for v in values if type(v) in (int, float)]
    if numbers:
        return pick(numbers)
    strings = [v for v in values if type(v) is str]
    return pick(strings) if strings else None


def _empty(function: str) -> Any:
    """An aggregate over no rows: 0 for a count, else null (spec §7.14)."""
    return 0 if function == "count" else None


class _Groups:
    """The Aggregate's groups by bucket, then by series (the ``by`` value's identity; ``()``
    without ``by``): each group's aggregate values. Charged to the breaker while held."""

    def __init__(self, step: sp.Pivot, rel: Relation, ctx: Context) -> None:
        at = {name: i for i, name in enumerate(rel.names)}
        self.values_at = [at[name] for name, _ in step.aggregates]
        self.types = [rel.types[i] for i in self.values_at]
        self.table: dict[int, dict[Any, list[Any]]] = {}
        self.series: dict[Any, Any] = {}  # identity -> the value
        self.reservation = Reservation(ctx.breaker(step))
        self._read(rel.rows, at[step.bucket], at.get(step.by) if step.by is not None else None)

    def _read(self, rows: Iterable[list[Any]], bucket_at: int, by_at: int | None) -> None:
        size = 0
        for n, row in enumerate(rows, 1):
            bucket = row[bucket_at]
            value = row[by_at] if by_at is not None else ()
            if bucket is None or value is None:  # no time, or no by value: in no column (as stats drops it)
                continue
            key = identity(value) if by_at is not None else ()
            self.series.setdefault(key, value)
            self.table.setdefault(bucket, {})[key] = [row[i] for i in self.values_at]
            size += row_bytes(row)
            if n % CHARGE_EVERY == 0:
                self.reservation.hold(size)
        self.reservation.hold(size)

    def ranked(self, limit: int | None) -> tuple[list[Any], list[Any]]:
        """The series with a column of their own, in value order, and the rest (OTHER):
        the ``limit`` with the largest total of the first aggregate (ties: value order)."""
        ordered = sorted(self.series, key=lambda k: order_key(self.series[k]))
        if limit is None or len(ordered) <= limit:
            return ordered, []
        totals = {key: 0.0 for key in ordered}
        for cells in self.table.values():
            for key, values in cells.items():
                if type(values[0]) in (int, float):
                    totals[key] += values[0]
        kept = set(sorted(ordered, key=lambda k: -totals[k])[:limit])  # a stable sort keeps value order in ties
        return [k for k in ordered if k in kept], [k for k in ordered if k not in kept]


def _columns(step: sp.Pivot, groups: _Groups, own: list[Any], other: list[Any]) -> list[tuple[str, int, Any]]:
    """The wide columns, aggregate by aggregate: (name, aggregate, series key or None for
    OTHER). Without ``by``: the aggregates' names; with one aggregate: the values; with
    several, ``<aggregate>: <value>``."""
    out: list[tuple[str, int, Any]] = []
    several = len(step.aggregates) > 1
    for j, (name, _) in enumerate(step.aggregates):
        if step.by is None:
            out.append((name, j, ()))
            continue
        for key in own:
            label = text(groups.series[key])
            out.append((f"{name}: {label}" if several else label, j, key))
        if other:
            out.append((f"{name}: {OTHER}" if several else OTHER, j, None))
    return out


def _bucket_starts(step: sp.Pivot, found: Iterable[int]) -> Iterator[int]:
    """Every bucket of the axis in time order, with the buckets of groups outside it (a
    ``timefield`` other than the range's field) merged in; no axis: the groups' buckets
    from the first to the last."""
    found = sorted(found)
    if step.axis is None:
        return buckets.starts(step.span, found[0], found[-1]) if found else iter(())
    first, last = (buckets.floor_time(step.span, ms) for ms in step.axis)
    outside = [b for b in found if b < first or b > last]
    return heapq.merge(buckets.starts(step.span, *step.axis), outside)


def run_pivot(step: sp.Pivot, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    groups = _Groups(step, rel, ctx)
    own, other = groups.ranked(step.limit)
    columns = _columns(step, groups, own, other)
    functions = [function for _, function in step.aggregates]
    empty = [_empty(f) for f in functions]
    merge = [_MERGED.get(f) for f in functions]

    def cell(cells: dict[Any, list[Any]], j: int, key: Any) -> Any:
        if key is not None:
            values = cells.get(key)
            return empty[j] if values is None else values[j]
        if merge[j] is None:
            return None
        merged = [cells[k][j] for k in other if k in cells and cells[k][j] is not None]
        return merge[j](merged) if merged else empty[j]

    def rows() -> Iterator[list[Any]]:
        for start in _bucket_starts(step, groups.table):
            cells = groups.table.get(start, {})
            yield [start, *(cell(cells, j, key) for _, j, key in columns)]
    names = [step.time, *(name for name, _, _ in columns)]
    types = ["date", *(groups.types[j] for _, j, _ in columns)]
    return Relation(names, types, released(rows(), groups.reservation))
