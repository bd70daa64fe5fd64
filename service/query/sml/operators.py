"""How SML's steps (``plan.py``) run over the shared executor's relations.

Rows stay the executor's typed rows (dates are epoch milliseconds, as expressions see
them) until the last step, ``Events`` or ``Rows``, makes each one a JSON-able object:
dates become ISO-8601 there, and an event is rebuilt from its stored document only then,
so the shape changes of ``fields`` and ``rename`` are replayed once per row that reaches
the answer.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections import deque
from dataclasses import fields, replace
from sys import getsizeof
from typing import Any, Callable, Iterator

import orjson

from ... import patterns
from ...store.dates import format_millis, format_nanos
from .. import sort
from .. import types as T
from ..aggregates import Meter
from ..breaker import CHARGE_BYTES, Breaker, Reservation, object_bytes, released, row_bytes
from ..evaluate import EvalError, compile_expr
from ..execute import (DICT_ENTRY, Context, Relation, _as_list, rowid_slices, run_aggregate, run_filter, run_pipeline,
                       sort_bound)
from ..expr import Expr
from ..fieldpath import MISSING, field_value
from ..plan import Step
from . import plan as sp
from .functions import compile_regex
from .timeseries import run_bin, run_pivot, run_time_check
from .values import first, identity, order_key, text

Document = dict[str, Any]
CHARGE_EVERY = 1024  # rows (or new dedup keys) between two charges to the breaker


def _last_positions(names: list[str]) -> dict[str, int]:
    """Each name's column; the last of a name wins, as in expressions (EVAL shadows)."""
    return {name: i for i, name in enumerate(names)}


# --- values ----------------------------------------------------------------------------------

def renderer(kind: str) -> Callable[[Any], Any]:
    """A column's values as the answer shows them: dates ISO-8601, the rest as they are."""
    fmt = format_millis if kind == "date" else format_nanos if kind == "date_nanos" else None
    if fmt is None:
        return lambda v: v
    return lambda v: None if v is None else [fmt(x) for x in v] if type(v) is list else fmt(v)


def _rank(v: Any) -> tuple | None:
    """A value's place in SML's order (``values.order_key``: numbers and numeric-looking
    strings numerically, dates as epoch ms, then strings by code point, then booleans); an
    array by its first element; None for null."""
    if type(v) is list:
        v = v[0] if v else None
    return None if v is None else order_key(v)


class _Descending:
    """A rank that sorts the other way round; nulls are placed beside it, never inside."""

    __slots__ = ("rank",)

    def __init__(self, rank: tuple[int, Any]) -> None:
        self.rank = rank

    def __lt__(self, other: _Descending) -> bool:
        return other.rank < self.rank

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.rank == other.rank


def _order_item(descending: bool) -> Callable[[Any], tuple[Any, ...]]:
    """One key of a sort: null last whichever the direction."""
    if descending:
        return lambda v: (1,) if (r := _rank(v)) is None else (0, _Descending(r))
    return lambda v: (1,) if (r := _rank(v)) is None else (0, r)


def _hashable(v: Any) -> Any:
    return tuple(v) if type(v) is list else v


# --- row steps -------------------------------------------------------------------------------

def run_order_by(step: sp.OrderBy, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    """The rows in the sort's order; with a ``head`` (or ``sort N``) after it, only that many
    are held (the shared top-N), else all (the shared full sort), charged to the breaker."""
    scope = ctx.scope(rel)
    parts = [(compile_expr(expr, scope)[0], _order_item(descending)) for expr, descending in step.keys]

    def key(row: list[Any]) -> list[tuple[Any, ...]]:
        return [item(fn(row)) for fn, item in parts]
    keep = sort_bound(rest, ctx.options.max_rows)
    breaker, preview = ctx.breaker(step), ctx.offer_preview(rel, rest)
    if keep is None:
        rows, reservation = sort.sort_all(rel.rows, key, False, breaker, len(parts), preview)
    else:
        rows, reservation = sort.top_n(rel.rows, key, False, keep, breaker, preview)
    return rel.with_rows(released(rows, reservation))


def run_dedup(step: sp.Dedup, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    scope = ctx.scope(rel)
    fns = [compile_expr(expr, scope)[0] for expr in step.keys]
    breaker = ctx.breaker(step)

    def rows() -> Iterator[list[Any]]:
        counts: dict[tuple[Any, ...], int] = {}
        reservation = Reservation(breaker)
        previous, run = None, 0
        try:
            for row in rel.rows:
                values = [fn(row) for fn in fns]
                if any(v is None or v == [] for v in values):
                    previous = None  # a row without the fields ends a run of equal ones
                    if step.keepempty:
                        yield row
                    continue
                key = tuple(map(_hashable, values))
                if step.consecutive:
                    run = run + 1 if key == previous else 1
                    previous = key
                    if run <= step.keep:
                        yield row
                    continue
                seen = counts.get(key, 0)
                if seen < step.keep:
                    counts[key] = seen + 1
                    if not seen and len(counts) % CHARGE_EVERY == 0:
                        reservation.hold(len(counts) * (DICT_ENTRY + object_bytes(key)))
                    yield row
        finally:
            reservation.close()
    return rel.with_rows(rows())


def run_tail(step: sp.Tail, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    breaker = ctx.breaker(step)

    def rows() -> Iterator[list[Any]]:
        kept: deque[list[Any]] = deque(maxlen=step.count)
        reservation = Reservation(breaker)
        try:
            for n, row in enumerate(rel.rows, 1):
                kept.append(row)
                if n % CHARGE_EVERY == 0:
                    reservation.hold(len(kept) * row_bytes(row))
            yield from kept
        finally:
            reservation.close()
    return rel.with_rows(rows())


# --- columns ---------------------------------------------------------------------------------

def run_select(step: sp.Select, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    at = _last_positions(rel.names)
    where = [at.get(source) if source is not None else None for _, source in step.columns]
    names = [name for name, _ in step.columns]
    types = [rel.types[i] if i is not None else "null" for i in where]
    constants = {name: rel.constants[source] for name, source in step.columns if source in rel.constants}
    rows = ([None if i is None else row[i] for i in where] for row in rel.rows)
    return Relation(names, types, rows, constants)


def run_rename(step: sp.Rename, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    renamed = dict(step.pairs)
    at = _last_positions(rel.names)
    moved = {at[old] for old in renamed if old in at}
    targets = {renamed[rel.names[i]] for i in moved}
    keep = [i for i, name in enumerate(rel.names) if i in moved or name not in targets]
    names = [renamed[rel.names[i]] if i in moved else rel.names[i] for i in keep]
    constants = {renamed.get(n, n): v for n, v in rel.constants.items() if n in renamed or n not in targets}
    rows = ([row[i] for i in keep] for row in rel.rows)
    return Relation(names, [rel.types[i] for i in keep], rows, constants)


# --- the answer's objects --------------------------------------------------------------------

def field_pattern(glob: str) -> Callable[[str], bool]:
    """Whether a field path matches a ``fields``/``table`` pattern: ``*`` is any run of
    characters, and matches ``_index``/``_id`` only in a pattern that starts with ``_``."""
    match = patterns.wildcard(glob)
    if "*" not in glob or glob.startswith("_"):
        return match
    return lambda path: not path.startswith("_") and match(path)


def matching_fields(pattern: str, names: Iterable[str]) -> list[str]:
    """The fields a ``fields``/``table`` pattern names: the fields whose path, or the path
    of an object holding them, matches (see ``field_pattern``)."""
    match = field_pattern(pattern)
    return [n for n in names if _path_matches(match, n)]


def _path_matches(match: Callable[[str], bool], name: str) -> bool:
    parts = name.split(".")
    return any(match(".".join(parts[:i])) for i in range(1, len(parts) + 1))


def expand_fields(globs: Iterable[str], names: list[str]) -> list[str]:
    return list(dict.fromkeys(n for g in globs for n in matching_fields(g, names)))


def _matcher(globs: tuple[str, ...]) -> Callable[[str], bool]:
    tests = [field_pattern(g) for g in globs]
    return lambda path: any(t(path) for t in tests)


def _kept(node: Document, match: Callable[[str], bool], prefix: str = "") -> Document:
    """The paths of ``node`` that ``match`` (a matching object is kept whole), nested as they were."""
    out: Document = {}
    for key, value in node.items():
        path = prefix + key
        if match(path):
            out[key] = value
        elif isinstance(value, dict):
            if inner := _kept(value, match, path + "."):
                out[key] = inner
        elif isinstance(value, list):
            if items := [k for v in value if isinstance(v, dict) and (k := _kept(v, match, path + "."))]:
                out[key] = items
    return out


def _dropped(node: Document, match: Callable[[str], bool], prefix: str = "") -> Document:
    """``node`` without the paths that ``match``; an object emptied by it goes too."""
    out: Document = {}
    for key, value in node.items():
        path = prefix + key
        if match(path):
            continue
        if isinstance(value, dict) and value:
            if inner := _dropped(value, match, path + "."):
                out[key] = inner
            continue
        if isinstance(value, list) and any(isinstance(v, dict) for v in value):
            value = [_dropped(v, match, path + ".") if isinstance(v, dict) else v for v in value]
        out[key] = value
    return out


def _without(doc: Document, path: str) -> Document:
    """``doc`` without the field ``path`` (a literal key, or nested)."""
    if path in doc:
        del doc[path]
        return doc
    if "." not in path or field_value(doc, path) is MISSING:
        return doc
    return _dropped(doc, path.__eq__)


def _moved(doc: Document, old: str, new: str) -> Document:
    value = field_value(doc, old)
    if value is MISSING:
        return doc
    doc = _without(doc, old)
    doc = _without(doc, new)
    doc[new] = value
    return doc


def _edit(edit: sp.Edit) -> Callable[[Document], Document]:
    if edit.kind == "keep":
        match = _matcher(edit.patterns)
        return lambda doc: _kept(doc, match)
    if edit.kind == "drop":
        match = _matcher(edit.patterns)
        return lambda doc: _dropped(doc, match)
    old, new = edit.patterns[0], edit.target or ""
    return lambda doc: _moved(doc, old, new)


def _iso_in_place(doc: Document, path: str, value: Any) -> None:
    """The date field ``path`` as ISO-8601 where the document holds a single epoch number
    for it (``value`` is its column: epoch ms)."""
    node: Any = doc
    rest = path
    while isinstance(node, dict):
        if rest in node:
            held = node[rest]
            if isinstance(held, (int, float)) and not isinstance(held, bool) and type(value) is int:
                node[rest] = format_millis(value)
            return
        head, dot, rest = rest.partition(".")
        if not dot:
            return
        node = node.get(head)


def run_events(step: sp.Events, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    at = _last_positions(rel.names)
    source, index, id_ = at["_source"], at["_index"], at["_id"]
    created = [(name, at[name], renderer(rel.types[at[name]])) for name in step.created if name in at]
    dates = [(name, at[name]) for name in step.dates if name in at and rel.types[at[name]] == "date"]
    edits = [_edit(e) for e in step.edits]
    optional = set(step.optional)

    def event(row: list[Any]) -> list[Any]:
        stored = row[source]
        doc: Document = orjson.loads(stored) if stored is not None else {}
        for name, i in dates:
            _iso_in_place(doc, name, row[i])
        if stored is not None:
            doc["_index"], doc["_id"] = row[index], row[id_]
        for edit in edits:
            doc = edit(doc)
        for name, i, render in created:
            value = render(row[i])
            if name in optional and (value is None or field_value(doc, name) == value):
                continue
            doc = _without(doc, name)
            doc[name] = value
        return [doc]
    return Relation(["event"], ["object"], map(event, rel.rows))


def run_rows(step: sp.Rows, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    at = _last_positions(rel.names)
    names = dict.fromkeys(rel.names) if step.names is None else step.names
    columns = [(name, at.get(name), renderer(rel.types[at[name]]) if name in at else None) for name in names]

    def row_object(row: list[Any]) -> list[Any]:
        return [{name: None if i is None else render(row[i]) for name, i, render in columns}]
    return Relation(["event"], ["object"], map(row_object, rel.rows))


# --- execution cost --------------------------------------------------------------------------

class CostClock:
    """Wall-clock time and rows per command of a running pipeline. The time between two
    probe events goes to the command whose steps run then: entering a probe's input runs
    its command's steps; once the probe hands a row on (or ends), the command after it
    consumes it. So a sort or stats, which reads its whole input when the pipeline is
    built, is charged its own work and its input's commands theirs."""

    def __init__(self, commands: int) -> None:
        self.ms = [0.0] * commands
        self.rows = [0] * commands
        self.owner = 0  # building the pipeline is the source's until a probe says otherwise
        self.since = time.perf_counter()
        self.details: dict[int, dict[str, Any]] = {}  # per command, what its operators report (DEBUG)
        self.fused: set[int] = set()  # the commands that ran inside the source's storage query

    def switch(self, owner: int) -> None:
        now = time.perf_counter()
        if self.owner < len(self.ms):  # past the last command: the task's consumer, not the pipeline
            self.ms[self.owner] += (now - self.since) * 1000
        self.owner, self.since = owner, now


def with_probes(steps: tuple[Step, ...], ends: tuple[int, ...], clock: CostClock, fused: int = 0) -> tuple[Step, ...]:
    """``steps`` with a probe after the last step of each command (``ends``: per command,
    how many steps end with it). The first ``fused`` commands after the source are part of
    its query (sml.md §7.1: the searches and pevals that follow it, which ``qsize`` counts
    after): their probes follow the source's, after their steps, marked fused into it."""
    out: list[Step] = []
    start = 0
    for command, end in enumerate(ends):
        out += steps[start:end]
        start = end
        if command == fused:  # the source's query ends: its probe, then its prefix's
            out += [sp.Probe(c, clock, fused=c > 0) for c in range(fused + 1)]
        elif command > fused:
            out.append(sp.Probe(command, clock))
    return tuple(out)


def run_probe(step: sp.Probe, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    clock, command = step.clock, step.command
    if step.fused:
        clock.fused.add(command)

    def rows() -> Iterator[list[Any]]:
        upstream = iter(rel.rows)
        while True:
            clock.switch(command)
            row = next(upstream, None)
            clock.switch(command + 1)
            if row is None:
                return
            clock.rows[command] += 1
            yield row
    return rel.with_rows(rows())


# --- timechart, timeaggs, bin ---

def run_pick(step: sp.Pick, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    """``fields``/``table`` over a pivot's columns, as the planner does over known ones."""
    if step.exclude is None:  # table: a pattern's matches, a name as it is (null when absent)
        names = list(dict.fromkeys(n for g in step.patterns
                                   for n in (matching_fields(g, rel.names) if "*" in g else [g])))
    else:
        chosen = expand_fields(step.patterns, rel.names)
        names = [n for n in rel.names if n not in chosen] if step.exclude else chosen
    present = set(rel.names)
    return run_select(sp.Select(tuple((n, n if n in present else None) for n in names)), rel, ctx, rest)


# --- top, rare, eventstats, streamstats, rex, makeresults ---

def _present(v: Any) -> list[Any]:
    """A value's non-null elements: a multi-value's, a single value alone, none for null."""
    if type(v) is list:
        return [x for x in v if x is not None]
    return [] if v is None else [v]


def _combinations(fns: list[Callable[[list[Any]], Any]], row: list[Any]) -> list[tuple[Any, ...]]:
    """The distinct combinations of the values ``fns`` read from ``row`` (one per element of
    each multi-value); none when one of them is null."""
    return list(dict.fromkeys(itertools.product(*(_present(fn(row)) for fn in fns))))


def _identity(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """What makes two combinations of values the same (``1`` is ``1.0``, not ``"1"`` nor ``true``)."""
    return tuple(map(identity, values))


_ASCENDING = _order_item(False)


def _ranked(values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Combinations of values in SML's order, nulls last."""
    return [_ASCENDING(v) for v in values]


class _TopGroup:
    """One ``by`` group of ``top``: its rows holding every field, and per combination of the
    fields' values (by identity) the values and their count."""

    __slots__ = ("values", "rows", "counts")

    def __init__(self, values: tuple[Any, ...]) -> None:
        self.values = values
        self.rows = 0
        self.counts: dict[tuple[Any, ...], list[Any]] = {}


def run_top(step: sp.Top, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    scope = ctx.scope(rel)
    by = [compile_expr(expr, scope) for _, expr in step.by]
    fields = [compile_expr(expr, scope) for _, expr in step.fields]
    names = [name for name, _ in (*step.by, *step.fields)]
    types = [kind for _, kind in (*by, *fields)]
    if step.count is not None:
        names.append(step.count)
        types.append("long")
    if step.percent is not None:
        names.append(step.percent)
        types.append("double")

    def output(groups: dict[tuple, _TopGroup]) -> Iterator[list[Any]]:
        """The rows of the groups so far (which they only read)."""
        for group in sorted(groups.values(), key=lambda g: _ranked(g.values)):
            for values, count in _top_chosen(group, step):
                out = [*group.values, *values]
                if step.count is not None:
                    out.append(count)
                if step.percent is not None:
                    out.append(round(count * 100 / group.rows, 2))
                yield out

    def rows() -> Iterator[list[Any]]:
        reservation = Reservation(ctx.breaker(step))
        try:
            counts = _TopCounts([fn for fn, _ in by], [fn for fn, _ in fields], reservation)
            for n, row in enumerate(rel.rows, 1):
                counts.add(row)
                if n % CHARGE_EVERY == 0 and ctx.control.preview_due():
                    ctx.preview(Relation(names, types, output(counts.groups)), rest)
            reservation.hold(counts.held)
            yield from output(counts.groups)
        finally:
            reservation.close()
    return Relation(names, types, rows())


class _TopCounts:
    """Every ``by`` group's counts, what they hold charged to the breaker as it grows."""

    def __init__(self, by: list[Callable[[list[Any]], Any]], fields: list[Callable[[list[Any]], Any]],
                 reservation: Reservation) -> None:
        self.by, self.fields, self.reservation = by, fields, reservation
        self.groups: dict[tuple, _TopGroup] = {}
        self.held = 0

    def add(self, row: list[Any]) -> None:
        combinations = _combinations(self.fields, row)
        if not combinations:
            return
        for key in _combinations(self.by, row):
            group = self.groups.get(ident := _identity(key))
            if group is None:
                group = self.groups[ident] = _TopGroup(key)
                self.held += DICT_ENTRY + object_bytes(group) + object_bytes(ident)
            group.rows += 1
            for values in combinations:
                entry = group.counts.get(ident := _identity(values))
                if entry is None:
                    group.counts[ident] = [values, 1]
                    self.held += 2 * DICT_ENTRY + object_bytes(values) + object_bytes(ident)
                else:
                    entry[1] += 1
        if self.held - self.reservation.bytes > CHARGE_BYTES:
            self.reservation.hold(self.held)


def _top_chosen(group: _TopGroup, step: sp.Top) -> list[tuple[tuple[Any, ...], int]]:
    """The group's combinations in ``top``'s order (count descending, ``rare``: ascending;
    then the values ascending), the first ``limit`` (0: all) of them."""
    sign = 1 if step.rare else -1
    entries = ((sign * count, _ranked(values), values, count) for values, count in group.counts.values())
    ordered = heapq.nsmallest(step.limit, entries, key=_first_two) if step.limit else sorted(entries, key=_first_two)
    return [(values, count) for _, _, values, count in ordered]


def _first_two(entry: tuple[Any, ...]) -> tuple[Any, Any]:
    return entry[0], entry[1]


def _added(rel: Relation, names: tuple[str, ...] | list[str], types: list[str]) -> tuple[list[int], Relation]:
    """The columns of ``rel`` a step keeps when it adds (or overwrites) the columns ``names``,
    and the relation it makes (rows still to be given)."""
    new = set(names)
    keep = [i for i, name in enumerate(rel.names) if name not in new]
    constants = {n: v for n, v in rel.constants.items() if n not in new}
    return keep, Relation([rel.names[i] for i in keep] + list(names), [rel.types[i] for i in keep] + types, [],
                          constants)


def run_eventstats(step: sp.EventStats, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    """The rows are held (charged to the breaker) while the shared Aggregate reads them, then
    handed on with their group's results (``Attach``); a preview asked for meanwhile is the
    rows held so far with the groups so far."""
    held: deque[list[Any]] = deque()
    reservation = Reservation(ctx.breaker(step))

    def kept() -> Iterator[list[Any]]:
        for n, row in enumerate(rel.rows, 1):
            held.append(row)
            if n % CHARGE_EVERY == 0:
                reservation.hold(n * row_bytes(row))
            yield row
    attach = sp.Attach(step.aggregate.groups, step.names, held, rel, src=step.src)
    try:
        groups = run_aggregate(step.aggregate, rel.with_rows(kept()), ctx, [attach, *rest])
    except BaseException:
        reservation.close()
        raise
    out = run_attach(replace(attach, take=True), groups, ctx, rest)
    return out.with_rows(released(out.rows, reservation))


def run_attach(step: sp.Attach, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    width = len(step.names)
    keep, out = _added(step.into, step.names, rel.types[:width])
    scope = ctx.scope(step.into)
    keys = [compile_expr(expr, scope)[0] for _, expr in step.groups]
    nulls = [None] * width

    def rows() -> Iterator[list[Any]]:
        reservation = Reservation(ctx.breaker(step))
        try:
            results = {tuple(row[width:]): row[:width] for row in rel.rows}
            reservation.hold(len(results) * (DICT_ENTRY + 2 * getsizeof([None] * width)))
            for row in _drained(step.held) if step.take else list(step.held):
                key = tuple(first(fn(row)) for fn in keys)
                yield [row[i] for i in keep] + (nulls if None in key else results.get(key, nulls))
        finally:
            reservation.close()
    return out.with_rows(rows())


def _drained(rows: deque[list[Any]]) -> Iterator[list[Any]]:
    """The rows, each leaving ``rows`` as it is handed on."""
    while rows:
        yield rows.popleft()


class _Running:
    """One ``streamstats`` group's accumulators. With a window, the inputs of the group's last
    ``window`` rows are kept too, and the accumulators rebuilt over them once a row leaves.
    ``bytes``: the group's size, what its accumulators keep as the meter counts it included
    (the growth of the meter while they take a row is theirs)."""

    __slots__ = ("states", "inputs", "base", "kept")

    def __init__(self, factories: list[Callable[[], Any]], window: int) -> None:
        self.states = [factory() for factory in factories]
        self.inputs: deque[list[tuple[Any, Any]]] | None = deque(maxlen=window) if window else None
        self.base = DICT_ENTRY + object_bytes(self.states)  # and the window's inputs
        self.kept = 0

    @property
    def bytes(self) -> int:
        return self.base + self.kept

    def add(self, inputs: list[tuple[Any, Any]], factories: list[Callable[[], Any]], meter: Meter) -> None:
        before, window = meter.bytes, self.inputs
        if window is not None and len(window) == window.maxlen:
            window.append(inputs)
            self.states, self.kept = [factory() for factory in factories], 0
            for row_inputs in window:
                self._take(row_inputs)
        else:
            if window is not None:
                window.append(inputs)
                self.base += object_bytes(inputs)
            self._take(inputs)
        self.kept += meter.bytes - before

    def _take(self, inputs: list[tuple[Any, Any]]) -> None:
        for state, (values, others) in zip(self.states, inputs):
            state.add(values, others)


def _condition(expr: Expr | None, scope: Any) -> Callable[[list[Any]], bool]:
    """Whether an optional eval condition is exactly true for a row (never, without one)."""
    if expr is None:
        return lambda row: False
    fn = compile_expr(expr, scope)[0]
    return lambda row: fn(row) is True


class _Stream:
    """What ``streamstats`` keeps while rows pass: the groups' running accumulators and their
    size (``held``), and the first key of the row before (for ``reset_on_change``)."""

    def __init__(self, step: sp.StreamStats, specs: list[tuple[Any, ...]], meter: Meter,
                 warnings: Any) -> None:
        self.step, self.specs, self.meter, self.warnings = step, specs, meter, warnings
        self.factories = [factory for _, _, factory, _ in specs]
        self.groups: dict[tuple, _Running] = {}
        self.held = 0
        self.previous: list[tuple] | None = None

    def inputs(self, row: list[Any]) -> list[tuple[Any, Any]]:
        """The values each aggregate reads from ``row`` (as the shared Aggregate hands them on)."""
        return [(_as_list(fn(row)) if fn is not None else None, _as_list(other(row)) if other is not None else None)
                for fn, other, _, _ in self.specs]

    def changed(self, keys: list[tuple]) -> None:
        """``reset_on_change``: every group starts again when the row's key is not the one before."""
        if keys[:1] != self.previous:
            if self.previous is not None:
                self.drop(list(self.groups))
            self.previous = keys[:1]

    def add(self, keys: list[tuple], inputs: list[tuple[Any, Any]]) -> list[Any]:
        """The row counted in each of its groups; the running values of the first, after the
        row (``current``) or before it."""
        if not self.step.current:
            values = self.values(keys[0])
        for key in keys:
            group = self.groups.get(key)
            if group is None:
                group = self.groups[key] = _Running(self.factories, self.step.window)
            else:
                self.held -= group.bytes
            group.add(inputs, self.factories, self.meter)
            self.held += group.bytes
        return self.values(keys[0]) if self.step.current else values

    def values(self, key: tuple) -> list[Any]:
        """The running values of ``key``'s group (over no row when it has none yet)."""
        group = self.groups.get(key)
        states = group.states if group is not None else [factory() for factory in self.factories]
        values = []
        for state, (_, call) in zip(states, self.step.aggregates):
            try:
                values.append(state.result())  # every accumulator's result() leaves it as it was
            except EvalError as exc:
                self.warnings.failure(call.src, exc.java_message)
                values.append(None)
        return values

    def drop(self, keys: list[tuple]) -> None:
        """``keys``' groups start again."""
        for key in keys:
            group = self.groups.pop(key, None)
            if group is not None:
                self.held -= group.bytes


def run_streamstats(step: sp.StreamStats, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    scope = ctx.scope(rel)
    meter = Meter()
    specs = [ctx.dialect.aggregate(call, scope, meter) for _, call in step.aggregates]
    by = [compile_expr(expr, scope)[0] for expr in step.by]
    before = _condition(step.reset_before, scope)
    keep, out = _added(rel, [name for name, _ in step.aggregates], [kind for *_, kind in specs])
    after = _condition(step.reset_after, ctx.scope(out))
    nulls = [None] * len(specs)
    breaker = ctx.breaker(step)

    def rows() -> Iterator[list[Any]]:
        stream = _Stream(step, specs, meter, ctx.warnings)
        reservation = Reservation(breaker)
        try:
            for n, row in enumerate(rel.rows, 1):
                keys = [_identity(key) for key in _combinations(by, row)]
                if step.reset_on_change:
                    stream.changed(keys)
                if not keys:  # a null by value: in no group
                    yield [row[i] for i in keep] + nulls
                    continue
                if before(row):
                    stream.drop(keys)
                emitted = [row[i] for i in keep] + stream.add(keys, stream.inputs(row))
                if after(emitted):
                    stream.drop(keys)
                if n % CHARGE_EVERY == 0:
                    reservation.hold(stream.held)
                yield emitted
        finally:
            reservation.close()
    return out.with_rows(rows())


def run_rex(step: sp.Rex, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    read = compile_expr(step.field, ctx.scope(rel))[0]
    pattern = compile_regex(step.pattern)
    at = _last_positions(rel.names)
    before = [at.get(name) for name in step.groups]
    kinds = ["keyword" if i is None or rel.types[i] == "keyword" else T.ANY for i in before]
    keep, out = _added(rel, step.groups, kinds)

    def extract(row: list[Any]) -> list[Any]:
        match = None
        for value in _present(read(row)):
            if (match := pattern.search(text(value))) is not None:
                break
        found = [None if match is None else match.group(name) for name in step.groups]
        return [row[i] for i in keep] + [row[j] if v is None and j is not None else v
                                         for v, j in zip(found, before)]
    return out.with_rows(map(extract, rel.rows))


# --- join, append, lookup, inputlookup ---

def run_makeresults(step: sp.MakeResults, rest: list[Step], ctx: Context) -> tuple[Relation, int]:
    """``makeresults``' rows, made as they are read, in slices as a scan reads its rows:
    a stop ends them, and they count for the task's progress."""
    control = ctx.control

    def rows() -> Iterator[list[Any]]:
        control.rows_total = step.count
        for after, upto in rowid_slices(control, step.count):
            control.scanned(upto - after)
            for _ in range(upto - after):
                yield [step.now_ms]
    return Relation([step.field], ["date"], rows()), 0


class _Subsearch(Context):
    """A subsearch's (or a lookup's) run: the task's, except that it answers no preview
    request (a preview shows the task's rows; its own blocking step answers)."""

    def preview(self, rel: Relation, rest: list[Step]) -> None:
        return None


def _run_subsearch(steps: tuple[Step, ...], ctx: Context) -> Relation:
    return run_pipeline(list(steps), _Subsearch(**{f.name: getattr(ctx, f.name) for f in fields(ctx)}))


def _materialised(steps: tuple[Step, ...], ctx: Context, cap: int | None, what: str,
                  breaker: Breaker) -> tuple[Relation, list[list[Any]], Reservation]:
    """A subsearch's (or a lookup's) rows, all read now: at most ``cap``, with a warning
    when it has more; what they hold is charged to the breaker until the reservation closes.
    The task's progress is its own scan's: the counters are put back once they are read."""
    control = ctx.control
    scanned, total = control.rows_scanned, control.rows_total
    reservation = Reservation(breaker)
    rows: list[list[Any]] = []
    size = 0
    try:
        rel = _run_subsearch(steps, ctx)
        for row in rel.rows:
            if len(rows) == cap:
                ctx.warnings.add(f"subsearch of [{what}] truncated to {cap} rows (max_subsearch_hits)")
                break
            rows.append(row)
            size += row_bytes(row) + DICT_ENTRY  # the row and its place in the operator's index
            if len(rows) % CHARGE_EVERY == 0:
                reservation.hold(size)
        reservation.hold(size)
    except BaseException:
        reservation.close()
        raise
    finally:
        control.rows_scanned, control.rows_total = scanned, total
    return rel, rows, reservation


def _report(rest: list[Step], name: str, value: Any) -> None:
    """A detail of the command a step belongs to, for the execution cost: the first probe
    after the step is its command's (none when the cost is not measured, nor in a preview)."""
    probe = next((step for step in rest if isinstance(step, sp.Probe)), None)
    if probe is not None:
        probe.clock.details.setdefault(probe.command, {})[name] = value


def _merged_type(rel: Relation, at: int | None, kind: str) -> str:
    return kind if at is None or rel.types[at] == kind else T.ANY


def _join_key(values: list[Any]) -> tuple[str, ...] | None:
    """Join fields' values as they are compared: as strings; None when one is null."""
    firsts = [first(v) for v in values]
    return None if None in firsts else tuple(map(text, firsts))


def _set(value: Any, at: int | None, row: list[Any]) -> Any:
    """A join's or lookup's value for a column: its own unless null, else the row's."""
    return value if value is not None else None if at is None else row[at]


def run_join(step: sp.Join, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    sub, table, reservation = _materialised(step.steps, ctx, step.cap, "join", ctx.breaker(step))
    _report(rest, "subsearchRows", len(table))
    sub_at, at = _last_positions(sub.names), _last_positions(rel.names)
    key_at = [None if k is None else sub_at.get(k) for k in step.sub_keys]
    matches: dict[tuple[str, ...], list[list[Any]]] = {}
    if None not in key_at:
        for row in table:
            if (key := _join_key([row[i] for i in key_at])) is not None:  # type: ignore[index]
                matches.setdefault(key, []).append(row)
    carried = [(sub_at[n], at.get(n)) for n in step.carried if n in sub_at]
    names = rel.names + [sub.names[j] for j, _ in carried]
    types = rel.types + [_merged_type(rel, i, sub.types[j]) for j, i in carried]
    scope = ctx.scope(rel)
    keys = [compile_expr(expr, scope)[0] for expr in step.keys]

    def rows() -> Iterator[list[Any]]:
        try:
            for row in rel.rows:
                key = _join_key([fn(row) for fn in keys])
                found = matches.get(key, ()) if key is not None else ()
                if not found and step.kind == "left":
                    yield row + [_set(None, i, row) for _, i in carried]
                for match in found[:step.max] if step.max else found:
                    yield row + [_set(match[j], i, row) for j, i in carried]
        finally:
            reservation.close()
    return Relation(names, types, rows())


def run_append(step: sp.Append, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    """The rows, then the subsearch's (built now, read once the rows are done), over the
    columns of both: the rows' (the last of a name), then the subsearch's new ones; a
    column of two types is of any type."""
    sub = _run_subsearch(step.steps, ctx)
    at, sub_at = _last_positions(rel.names), _last_positions(sub.names)
    names = list(at) + [n for n in sub_at if n not in at]
    types = [sub.types[sub_at[n]] if n not in at else rel.types[at[n]] if n not in sub_at
             else _merged_type(rel, at[n], sub.types[sub_at[n]]) for n in names]
    mains, subs = [at.get(n) for n in names], [sub_at.get(n) for n in names]
    edits = [_edit(e) for e in step.edits]
    stored = sub_at.get("_source") if edits else None

    def edited(row: list[Any]) -> list[Any]:
        if stored is not None and row[stored] is not None:
            doc: Document = orjson.loads(row[stored])
            for edit in edits:
                doc = edit(doc)
            row = [*row[:stored], orjson.dumps(doc), *row[stored + 1:]]
        return row

    def rows() -> Iterator[list[Any]]:
        for row in rel.rows:
            yield [None if i is None else row[i] for i in mains]
        taken = 0
        for row in sub.rows:
            if taken == step.cap:
                ctx.warnings.add(f"subsearch of [append] truncated to {step.cap} rows (max_subsearch_hits)")
                break
            taken += 1
            row = edited(row)
            yield [None if i is None else row[i] for i in subs]
        _report(rest, "subsearchRows", taken)
    return Relation(names, types, rows())


Tests = list[Callable[[Any], bool] | None]


def _lookup_index(definition: Any, table: list[list[Any]], exact: list[tuple[int, str]],
                  patterned: list[tuple[int, str]]) -> dict[tuple[str | None, ...], list[tuple[list[Any], Tests]]]:
    """The lookup's rows by their values of the fields matched exactly, each with the tests
    of its pattern (wildcard, CIDR) fields, in lookup order; a row that can match nothing
    (a null, a bad CIDR) is left out."""
    index: dict[tuple[str | None, ...], list[tuple[list[Any], Tests]]] = {}
    for row in table:
        key = tuple(definition.key(column, row[j]) for j, column in exact)
        tests = [definition.matcher(column, row[j]) for j, column in patterned]
        if None not in key and None not in tests:
            index.setdefault(key, []).append((row, tests))
    return index


def run_lookup(step: sp.Lookup, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    table_rel, table, reservation = _materialised(step.steps, ctx, None, "lookup", ctx.breaker(step))
    _report(rest, "lookupRows", len(table))
    definition = step.definition
    table_at, at = _last_positions(table_rel.names), _last_positions(rel.names)
    scope = ctx.scope(rel)
    compared = [(None if column is None else table_at.get(column), column, compile_expr(expr, scope)[0])
                for column, expr in step.matches]
    exact = [(j, column, fn) for j, column, fn in compared if definition.exact(column)]
    patterned = [(j, column, fn) for j, column, fn in compared if not definition.exact(column)]
    index = _lookup_index(definition, table, [(j, c) for j, c, _ in exact], [(j, c) for j, c, _ in patterned]) \
        if all(j is not None for j, _, _ in compared) else {}
    outputs = [(None if column is None else table_at.get(column), at.get(target)) for column, target in step.outputs]
    names = rel.names + [target for _, target in step.outputs]
    types = rel.types + [_merged_type(rel, i, T.ANY if j is None else table_rel.types[j]) for j, i in outputs]

    def matched(row: list[Any]) -> list[Any] | None:
        key = tuple(definition.key(column, fn(row)) for _, column, fn in exact)
        values = [first(fn(row)) for _, _, fn in patterned]
        for found, tests in index.get(key, ()):
            if all(v is not None and test(v) for v, test in zip(values, tests)):  # type: ignore[misc]
                return found
        return None

    def value(found: list[Any] | None, j: int | None, i: int | None, row: list[Any]) -> Any:
        if found is None or j is None or (step.new_only and i is not None and row[i] is not None):
            return _set(None, i, row)
        return _set(found[j], i, row)

    def rows() -> Iterator[list[Any]]:
        try:
            for row in rel.rows:
                found = matched(row)
                yield row + [value(found, j, i, row) for j, i in outputs]
        finally:
            reservation.close()
    return Relation(names, types, rows())


SOURCES: dict[type[Step], Callable[..., tuple[Relation, int]]] = {
    sp.MakeResults: run_makeresults,
}


STEPS: dict[type[Step], Callable[..., Relation]] = {
    sp.Search: run_filter,
    sp.Select: run_select,
    sp.Rename: run_rename,
    sp.OrderBy: run_order_by,
    sp.Dedup: run_dedup,
    sp.Tail: run_tail,
    sp.Events: run_events,
    sp.Rows: run_rows,
    sp.Probe: run_probe,
    sp.TimeCheck: run_time_check,
    # timechart, timeaggs, bin
    sp.Bin: run_bin,
    sp.Pivot: run_pivot,
    sp.Pick: run_pick,

    # top, rare, eventstats, streamstats, rex, makeresults
    sp.Top: run_top,
    sp.EventStats: run_eventstats,
    sp.Attach: run_attach,
    sp.StreamStats: run_streamstats,
    sp.Rex: run_rex,

    # join, append, lookup, inputlookup
    sp.Join: run_join,
    sp.Append: run_append,
    sp.Lookup: run_lookup,
}
