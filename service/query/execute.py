"""Running a logical plan: rows come from SQLite, the pipeline runs over them in Python.

The executor knows no language: the query's dialect (``dialect.py``) resolves functions,
aggregates and indices and brings the steps only its language has. A plan runs
synchronously (in a query worker process) with its own connection. The source is read
in rowid slices; between slices the ``Control`` may stop the scan (the rest of the
pipeline then finishes over the rows read, so STATS over a stopped query are correct for
the data seen) or cancel it. Rows flow lazily, so nothing holds more than SORT or STATS
need: a SORT that a LIMIT follows (and every SORT has one, the implied 1000 at least)
keeps only that many rows. What SORT and STATS hold is charged to the query's memory
breaker (``breaker.py``), once per batch of rows. What SQLite can run exactly at the front of
the plan (filters, evals, STATS, top-N) runs there instead: see ``pushdown``.
"""

from __future__ import annotations

import functools
import heapq
import itertools
import sqlite3
from dataclasses import dataclass, field, fields, replace
from sys import getsizeof
from typing import Any, Callable, Iterable, Iterator

import orjson

from ..errors import ServiceError
from ..store.catalog import Catalog, Index
from ..store.dates import format_millis, format_nanos
from ..store.sql import quote
from . import aggregates, pushdown, sort
from . import plan as p
from . import types as T
from .breaker import CHARGE_BYTES, Breaker, CommandBreaker, Reservation, object_bytes, released
from .control import PREVIEW_ROWS, Control
from .dialect import Dialect
from .dsl import compile_filter
from .evaluate import EvalError, Scope, Warnings, compile_expr, fold, verify_fail, walk
from .expr import Call, Column, Expr, Logical, Src
from .options import QueryOptions

METADATA = {"_id": "keyword", "_index": "keyword", "_version": "long"}
STATS_BATCH = 1024  # rows between two charges of a STATS' groups to the breaker
DICT_ENTRY = 104  # a dict's entry and index slots for each key, with the room it keeps free


@dataclass
class Result:
    """Columns and a row stream: rows are produced while they are read (a consumer may
    write them out in batches), and the scan counters are final once they are exhausted."""

    names: list[str]
    types: list[str]
    rows: Iterable[list[Any]]
    warnings: Warnings
    control: Control
    profile: dict[str, Any] | None = None  # what ran: the SQL pushed down, the Python operators after it

    @property
    def documents_found(self) -> int:
        return self.control.rows_scanned

    @property
    def is_partial(self) -> bool:
        return self.control.cut_short


@dataclass
class Relation:
    """Columns and a stream of rows: steps that need every row (SORT, STATS) materialise it,
    the others are lazy, so ``... | MV_EXPAND a | LIMIT 10`` never builds what it drops."""

    names: list[str]
    types: list[str]
    rows: Iterable[list[Any]] = field(default_factory=list)
    constants: dict[str, Any] = field(default_factory=dict)  # columns that hold one constant value

    def with_rows(self, rows: Iterable[list[Any]]) -> Relation:
        """The same columns over other rows (a filter, sort or limit)."""
        return Relation(self.names, self.types, rows, self.constants)


@dataclass
class Context:
    """What the steps of one running query share."""

    catalog: Catalog
    conn: sqlite3.Connection
    control: Control
    dialect: Dialect
    options: QueryOptions = QueryOptions()
    source_filter: Any = None  # a Query DSL filter the source's documents must match
    warnings: Warnings = field(default_factory=Warnings)
    profile: dict[str, Any] | None = None  # the plan's pipeline: what ran as SQL, what in Python
    commands: dict[Src, Breaker] = field(default_factory=dict)  # with a per-command limit, each one's share

    def breaker(self, step: p.Step) -> Breaker:
        """What ``step``'s operator charges what it holds to: the query's breaker, or with a
        limit per command (``options.command_memory``) the share of the command it is from."""
        limit = self.options.command_memory
        if limit < 0:
            return self.control.breaker
        share = self.commands.get(step.src)
        if share is None:
            share = self.commands[step.src] = CommandBreaker(self.control.breaker, step.src.text, limit)
        return share

    def scope(self, rel: Relation) -> Scope:
        """Expressions over ``rel``'s columns, compiled with this query's dialect."""
        return Scope(rel.names, rel.types, self.warnings, self.dialect, rel.constants)

    def offer_preview(self, rel: Relation, rest: list[p.Step]) -> sort.Preview:
        """What a sort of ``rel``'s rows offers its previews to: made when one is due."""
        def offer(rows_so_far: Callable[[], list[list[Any]]]) -> None:
            if self.control.preview_due():
                self.preview(rel.with_rows(rows_so_far()), rest)
        return offer

    def preview(self, rel: Relation, rest: list[p.Step]) -> None:
        """Answer the control's preview request: ``rel`` (a blocking step's output over
        the rows read so far) through the steps after it, but those that only watch rows
        go by, with warnings of its own; at most ``PREVIEW_ROWS`` rows."""
        steps = [step for step in rest if not step.observer]
        request = self.control.take_preview()
        out = run_steps(rel, steps, replace(self, warnings=Warnings(), profile=None))
        self.control.send_preview(request, list(itertools.islice(out.rows, PREVIEW_ROWS)))


# A step that transforms its input: (the step, its input, the query, the steps after it).
Operator = Callable[[Any, Relation, Context, list[p.Step]], Relation]
# A source step: (the step, the steps after it, the query) -> its rows, and how many of the
# steps after it it ran itself (the SQL pushdown runs a prefix of them inside SQLite).
SourceRunner = Callable[[Any, list[p.Step], Context], tuple[Relation, int]]


# --- the source -------------------------------------------------------------------------

def _one_or_unsupported(kinds: set[str]) -> str:
    return next(iter(kinds)) if len(kinds) == 1 else "unsupported"


def source_columns(indices: list[Index],
                   column_type: Callable[[set[str]], str] | None = None) -> tuple[list[str], list[str]]:
    """Every mapped leaf field of the indices, sorted by name, with its type; a field they
    map to several types is ``unsupported`` (ES|QL's rule), or what the dialect's
    ``column_type`` makes of them."""
    kinds: dict[str, set[str]] = {}
    for index in indices:
        for path, f in index.fields.items():
            if f.target is None and f.column is not None:
                kinds.setdefault(path, set()).add(T.FIELD_TYPES.get(f.type, "unsupported"))
    one_type = column_type or _one_or_unsupported
    names = sorted(kinds)
    return names, [one_type(kinds[n]) for n in names]


def _decoder(kind: str) -> Any:
    def decode(v: Any) -> Any:
        if type(v) is bytes:
            values = orjson.loads(v)
            return [bool(x) for x in values] if kind == "boolean" else values
        if kind == "boolean" and v is not None:
            return bool(v)
        if kind == "double" and type(v) is int:
            return float(v)
        return v
    return decode


def _dynamic_decoder(index: Index, name: str) -> Any:
    """``index``'s values of a field of type ``any``: decoded by the index's type of it, a
    date as its ISO text (no type says how to show it)."""
    f = index.fields.get(name)
    kind = T.FIELD_TYPES.get(f.type, T.ANY) if f is not None else T.ANY
    decode = _decoder(kind)
    if kind in ("date", "date_nanos"):
        show = format_millis if kind == "date" else format_nanos
        return lambda v: None if v is None else [show(x) for x in v] if type(v := decode(v)) is list else show(v)
    return decode


def _bounds(conn: sqlite3.Connection, index: Index) -> tuple[int, int]:
    """Rows to read: the rowids that exist when the query starts (later writes are not seen).
    Two scalar subqueries in one statement (one snapshot): each alone is answered from the
    b-trees' structure (a page count, the last key), where ``count(*), max(rowid)`` together
    scan the whole table (40 ms per million rows, every query)."""
    table = quote(index.table)
    count, top = conn.execute(f"SELECT (SELECT count(*) FROM {table}), (SELECT max(rowid) FROM {table})").fetchone()
    return count, top or 0


def rowid_slices(control: Control, top: int, scale: int = 1) -> Iterator[tuple[int, int]]:
    """Rowid ranges ``(after, upto]`` covering ``1..top``, sized by the control; a stop ends
    them early (marking the scan cut short), a cancel raises."""
    last = 0
    while last < top:
        if not control.proceed():
            control.cut_short = True
            return
        end = min(last + control.slice_rows * scale, top)
        yield last, end
        last = end


@dataclass
class _Reader:
    """How one index's rows are selected and turned into the query's rows: which columns
    are read (``read``; the others are null), the metadata after them, the time range."""

    names: list[str]
    types: list[str]
    metadata: tuple[str, ...]
    with_source: bool
    read: set[str] | None
    time_range: p.TimeRange | None

    def __post_init__(self) -> None:
        self.wanted = [i for i, n in enumerate(self.names)
                       if (self.read is None or n in self.read) and self.types[i] != "unsupported"]
        self.decoders = [(i, _decoder(self.types[i])) for i in self.wanted]
        self.blank = [None] * len(self.names)
        self.tail = len(self.wanted) + 1  # metadata columns follow rowid and the wanted ones
        self.dynamic = any(self.types[i] == T.ANY for i in self.wanted)
        self.by_index: dict[str, list[tuple[int, Any]]] = {}  # an index's decoders (dynamic only)

    def _index_decoders(self, index: Index) -> list[tuple[int, Any]]:
        """The decoders of ``index``'s rows: a column of type ``any`` (a dynamically typed
        language's field mapped to several types) by this index's type of the field."""
        decoders = self.by_index.get(index.name)
        if decoders is None:
            decoders = self.by_index[index.name] = [
                (i, _dynamic_decoder(index, self.names[i]) if self.types[i] == T.ANY else decode)
                for i, decode in self.decoders]
        return decoders

    def select(self, index: Index, *extra: str) -> tuple[str, list[Any]]:
        """``SELECT rowid, <columns>, <metadata>[, <extra>] FROM <table> WHERE <time range>``
        (the caller appends its own conditions with AND), its leading and trailing parameters."""
        exprs = [quote(index.columns[self.names[i]]) if self.names[i] in index.columns else "NULL"
                 for i in self.wanted]
        meta = [{"_id": "_id", "_version": "_version", "_index": "?"}[m] for m in self.metadata]
        meta += ["_source"] if self.with_source else []
        lead = [index.name] if "_index" in self.metadata else []
        where, args = ["1"], []
        if self.time_range is not None:
            column = index.columns.get(self.time_range.field)
            if column is None:
                where = ["0"]
            else:
                # ``+``: the range is checked on each row, never the time index's bounds, which
                # SQLite would take over a page's (``ordered_scan``), reading from the range's start
                for op, bound in ((">=", self.time_range.gte), ("<", self.time_range.lt)):
                    if bound is not None:
                        where.append(f"+{quote(column)} {op} ?")
                        args.append(bound)
        selected = ", ".join(["rowid", *exprs, *meta, *extra])
        sql = f"SELECT {selected} FROM {quote(index.table)} WHERE {' AND '.join(where)}"
        return sql, lead + args

    def row(self, raw: tuple[Any, ...], end: int | None = None, index: Index | None = None) -> list[Any]:
        row = self.blank.copy()
        decoders = self._index_decoders(index) if self.dynamic and index is not None else self.decoders
        for j, (i, decode) in enumerate(decoders, 1):
            row[i] = decode(raw[j])
        row += raw[self.tail:end]
        return row


def scan(conn: sqlite3.Connection, indices: list[Index], names: list[str], types: list[str],
         metadata: tuple[str, ...], control: Control, read: set[str] | None = None, *, with_source: bool = False,
         time_range: p.TimeRange | None = None) -> Iterator[list[Any]]:
    """Every document of ``indices`` as a row, read in rowid slices; between slices the
    control may end the scan (stop) or abort it (cancel). Only the columns in ``read``
    (all when None) are read and decoded; the others are null."""
    reader = _Reader(names, types, metadata, with_source, read, time_range)
    bounds = [_bounds(conn, index) for index in indices]
    control.rows_total = sum(count for count, _ in bounds)
    control.phase = "running"
    for index, (_, top) in zip(indices, bounds):
        select, lead = reader.select(index)
        sql = f"{select} AND rowid > ? AND rowid <= ? ORDER BY rowid"
        for after, upto in rowid_slices(control, top):
            batch = conn.execute(sql, [*lead, after, upto]).fetchall()
            control.scanned(len(batch))
            for raw in batch:
                yield reader.row(raw, index=index)
        if control.cut_short:
            return


def ordered_scan(conn: sqlite3.Connection, indices: list[Index], names: list[str], types: list[str],
                 metadata: tuple[str, ...], control: Control, order: p.ScanOrder, read: set[str] | None = None, *,
                 with_source: bool = False, time_range: p.TimeRange | None = None,
                 where: Callable[[Index], tuple[str, list[Any]] | None] | None = None) -> Iterator[list[Any]]:
    """The documents of ``indices`` in ``order``: each index is read in pages along the
    order field's index, and the indices' streams are merged. A page is the next
    ``control.slice_rows`` documents in that order (found from the index alone), so the
    documents examined are counted exactly even when ``where`` (a condition per index, see
    ``pushdown.prefilter``) lets SQLite skip most of them. Between pages the control may
    stop or cancel the scan."""
    reader = _Reader(names, types, metadata, with_source, read, time_range)
    control.rows_total = sum(_bounds(conn, index)[0] for index in indices)
    control.phase = "running"
    sign = -1 if order.descending else 1

    def pages(position: int, index: Index) -> Iterator[list[Any]]:
        column = index.columns.get(order.field)
        if column is None:
            return
        tie = index.columns.get(order.tiebreaker) if order.tiebreaker else None
        ties = tie is not None or order.ids  # a run of equal values is put in merge-key order
        key, table = quote(column), quote(index.table)
        select, lead = reader.select(index, key, "_id" if order.ids else quote(tie) if tie else "NULL")
        condition = where(index) if where is not None else None
        narrowed, narrowing = (f" AND ({condition[0]})", condition[1]) if condition else ("", [])
        direction, after, upto = ("DESC", "<", ">=") if order.descending else ("ASC", ">", "<=")
        valued = f"typeof({key}) = 'integer'"  # documents with one value of the order field
        ordered = f"ORDER BY {key} {direction}, rowid {direction}"
        past = f" AND ({key}, rowid) {after} (?, ?)"
        last: tuple[int, int] | None = None
        run: list[list[Any]] = []  # rows with one value of the order field, to order by the tiebreaker
        while True:
            if not control.proceed():
                control.cut_short = True
                yield from _by_tiebreaker(run, ties)
                return
            since, since_args = ("", []) if last is None else (past, list(last))
            end = conn.execute(f"SELECT {key}, rowid FROM {table} WHERE {valued}{since} {ordered} LIMIT 1 OFFSET ?",
                               [*since_args, control.slice_rows - 1]).fetchone()
            until, until_args = ("", []) if end is None else (f" AND ({key}, rowid) {upto} (?, ?)", list(end))
            batch = conn.execute(f"{select} AND {valued}{narrowed}{since}{until} {ordered}",
                                 [*lead, *narrowing, *since_args, *until_args]).fetchall()
            last_page = None if end is not None else f"SELECT count(*) FROM {table} WHERE {valued}{since}"
            control.scanned(control.slice_rows if last_page is None else
                            conn.execute(last_page, since_args).fetchone()[0])
            if not keyed:  # one index, no tiebreaker: the page's order is the order
                yield from ([None, reader.row(raw, -2, index)] for raw in batch)
                batch = []
            for raw in batch:
                value, tiebreak = raw[-2], raw[-1]
                if run and run[0][0][0] != sign * value:
                    yield from _by_tiebreaker(run, ties)
                    run = []
                # the merge key: the order field, then the index and the _id (``ids``), or the
                # tiebreaker (nulls last), the index, the rowid
                merge_key = (sign * value, position, tiebreak) if order.ids else \
                    (sign * value, tiebreak is None, _Directed(tiebreak, sign), position, sign * raw[0])
                run.append([merge_key, reader.row(raw, -2, index)])
            if end is None:
                yield from _by_tiebreaker(run, ties)
                return
            last = end

    keyed = len(indices) > 1 or order.tiebreaker is not None or order.ids  # rows need their merge key
    streams = [pages(position, index) for position, index in enumerate(indices)]
    merged = heapq.merge(*streams, key=lambda pair: pair[0]) if len(streams) > 1 else streams[0] if streams else ()
    for _, row in merged:
        yield row


def _by_tiebreaker(run: list[list[Any]], ordered: bool) -> list[list[Any]]:
    """Rows of one order-field value (read in rowid order) in merge-key order, when ties
    are ``ordered`` (by a tiebreaker, or by ``_id``)."""
    return sorted(run, key=lambda pair: pair[0]) if ordered and len(run) > 1 else run


class _Directed:
    """A tiebreaker value that sorts the scan's way (descending scans reverse it); nulls are
    handled beside it, so it never compares None."""

    __slots__ = ("value", "sign")

    def __init__(self, value: Any, sign: int) -> None:
        self.value, self.sign = value, sign

    def __lt__(self, other: _Directed) -> bool:
        if self.value is None or other.value is None:
            return False
        return self.value < other.value if self.sign > 0 else other.value < self.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Directed) and self.value == other.value


def observed_columns(steps: list[p.Step], names: list[str]) -> set[str] | None:
    """The source columns (of ``names``) a plan can observe, when a step such as STATS or
    KEEP ends what the source shows (after it, only its output and what the steps name);
    None when every column may reach the output."""
    seen: set[str] = set()
    for step in steps:
        reads, ends = step.observes(names)
        seen |= reads
        if ends:
            return seen
    return None


# --- processing steps ------------------------------------------------------------------

def _aggregate_calls(expr: Expr, found: list[Call], dialect: Dialect) -> Expr:
    """Replace every aggregate call inside ``expr`` by a column ``$aggN``, collecting the calls."""
    if isinstance(expr, Call) and dialect.is_aggregate(expr.name):
        found.append(expr)
        return Column(f"$agg{len(found) - 1}", src=expr.src)
    changes = {}
    for f in fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, Expr):
            changes[f.name] = _aggregate_calls(value, found, dialect)
        elif isinstance(value, tuple) and value and all(isinstance(v, Expr) for v in value):
            changes[f.name] = tuple(_aggregate_calls(v, found, dialect) for v in value)
    return replace(expr, **changes) if changes else expr


def _as_list(v: Any) -> list[Any]:
    return [] if v is None else v if type(v) is list else [v]


def group_values(v: Any) -> list[Any]:
    """The groups a row's key value puts it in: each distinct value of a multi-value once (as
    Elasticsearch's block hash dedupes a multi-valued position), the null group for null or []."""
    values = _as_list(v)
    if len(values) > 1:
        values = list(dict.fromkeys(values))
    return values or [None]


def run_aggregate(step: p.Aggregate, rel: Relation, ctx: Context, rest: list[p.Step]) -> Relation:
    if any(_is_alias(name, expr) for name, expr in step.groups):
        rel, step = _computed_groups(step, rel, ctx)
    scope = ctx.scope(rel)
    warnings = ctx.warnings
    group_fns, group_types = [], []
    for name, expr in step.groups:
        fn, kind = compile_expr(expr, scope)
        group_fns.append(fn)
        group_types.append(kind)
    calls: list[Call] = []
    outer = [(name, _aggregate_calls(expr, calls, ctx.dialect), cond) for name, expr, cond in step.aggregates]
    for name, expr, cond in outer:
        if not any(isinstance(e, Column) and e.name.startswith("$agg") for e in walk(expr)) and \
                not _only_groups(expr, step):
            raise verify_fail(expr.src, f"expected an aggregate function but found [{expr.src.text}]")
    # one aggregator per (call, filter)
    specs = []
    for name, expr, cond in outer:
        cond_fn = compile_expr(cond, scope)[0] if cond is not None else None
        for col in walk(expr):
            if isinstance(col, Column) and col.name.startswith("$agg"):
                specs.append((int(col.name[4:]), cond_fn))
    aggs = []  # (call index, value fn, second-input fn, factory, filter)
    agg_types = ["null"] * len(calls)
    meter = aggregates.Meter()
    for call_index, cond_fn in specs:
        fn, other_fn, factory, agg_types[call_index] = ctx.dialect.aggregate(calls[call_index], scope, meter)
        aggs.append((call_index, fn, other_fn, factory, cond_fn))
    out_width = len(step.groups) + len(calls)
    group_names = [name for name, _ in step.groups]
    agg_names = [f"$agg{i}" for i in range(len(calls))]
    inner = ctx.scope(Relation(group_names + agg_names, group_types + agg_types))
    compiled = [compile_expr(expr, inner) for _, expr, _ in outer]
    names = [name for name, _, _ in step.aggregates]

    def output(groups: dict[tuple, list[Any]], warn: Warnings) -> Relation:
        """The rows of ``groups`` (their accumulators are read, never changed)."""
        if not step.groups and not groups:
            groups = {(): [a[3]() for a in aggs]}
        if len(step.groups) == 1 and (None,) in groups:  # ES's one-key hashes give the null group id 0
            groups = {(None,): groups[(None,)], **groups}
        result_rows = []
        for key, states in groups.items():
            agg_values: list[Any] = [None] * len(calls)
            for (call_index, *_), state in zip(aggs, states):
                try:
                    agg_values[call_index] = state.result()
                except EvalError as exc:
                    warn.failure(calls[call_index].src, exc.java_message)
            row = list(key) + agg_values
            result_rows.append([fn(row) for fn, _ in compiled] + list(key))
        return _dedupe_names(Relation(names + group_names, [k for _, k in compiled] + group_types, result_rows))

    def preview(groups: dict[tuple, list[Any]]) -> None:
        ctx.preview(output(groups, Warnings()), rest)

    groups, reservation = _accumulate(rel.rows, group_fns, aggs, meter, ctx.control, ctx.breaker(step), out_width,
                                      preview)
    rel = output(groups, ctx.warnings)
    return rel.with_rows(released(rel.rows, reservation))


def _accumulate(rows: Iterable[list[Any]], group_fns: list[Callable[..., Any]], aggs: list[tuple],
                meter: aggregates.Meter, control: Control, breaker: Breaker, out_width: int,
                preview: Callable[[dict[tuple, list[Any]]], None]) -> tuple[dict[tuple, list[Any]], Reservation]:
    """One pass over ``rows``, one accumulator per (group, aggregate). Once per batch of
    rows the groups (keys, accumulators and the output row each will become) and what the
    accumulators keep (``meter``) are charged to ``breaker``, and a preview asked
    for is made of the groups so far; the reservation is returned for the output rows to
    release."""
    groups: dict[tuple, list[Any]] = {}
    factories = [a[3] for a in aggs]
    # a group's table entry, its accumulators, and the three lists and the values its output row is built from
    group_bytes = (DICT_ENTRY + object_bytes([f() for f in factories]) + 3 * getsizeof([None] * out_width)
                   + getsizeof(()) + 32 * len(aggs))
    reservation = Reservation(breaker)
    held = 0  # the groups' bytes, without what their accumulators keep

    def new_group(key: tuple) -> list[Any]:
        nonlocal held
        states = groups.get(key)
        if states is None:  # not merely a group without aggregates, whose empty list is falsy
            states = groups[key] = [f() for f in factories]
            held += group_bytes + getsizeof(key) + sum(map(getsizeof, key))
            if held - reservation.bytes > CHARGE_BYTES:  # one row's multi-values can make many groups
                reservation.hold(held + meter.bytes)
        return states

    rows = iter(rows)
    while batch := list(itertools.islice(rows, STATS_BATCH)):
        for row in batch:
            keys = [group_values(f(row)) for f in group_fns]
            states_list = [groups.get(combo) or new_group(combo)
                           for combo in (itertools.product(*keys) if keys else [()])]
            for slot, (_, fn, other_fn, _, cond_fn) in enumerate(aggs):
                if cond_fn is not None and cond_fn(row) is not True:
                    continue
                values = _as_list(fn(row)) if fn is not None else None
                others = _as_list(other_fn(row)) if other_fn is not None else None
                for states in states_list:
                    states[slot].add(values, others)
        reservation.hold(held + meter.bytes)
        if control.preview_due():
            preview(groups)
    return groups, reservation


def _is_alias(name: str, expr: Expr) -> bool:
    return not (isinstance(expr, Column) and expr.name == name)


def _computed_groups(step: p.Aggregate, rel: Relation, ctx: Context) -> tuple[Relation, p.Aggregate]:
    """``BY l = languages + 1``: the aggregates and their filters see ``l``. Every grouping
    expression is evaluated over the input rows (``BY l = l + 1, l = l + 1`` adds one,
    once), a repeated name keeps its last; each becomes a column the groups refer to."""
    scope = ctx.scope(rel)
    final = {name: expr for name, expr in step.groups if _is_alias(name, expr)}
    compiled = {name: compile_expr(expr, scope) for name, expr in final.items()}
    keep = [i for i, n in enumerate(rel.names) if n not in final]
    fns = [fn for fn, _ in compiled.values()]
    rel = Relation([rel.names[i] for i in keep] + list(final), [rel.types[i] for i in keep] +
                   [kind for _, kind in compiled.values()],
                   ([r[i] for i in keep] + [fn(r) for fn in fns] for r in rel.rows),
                   {n: v for n, v in rel.constants.items() if n not in final})
    groups = tuple((name, Column(name, src=final[name].src) if name in final else expr) for name, expr in step.groups)
    return rel, replace(step, groups=groups)


def _only_groups(expr: Expr, step: p.Aggregate) -> bool:
    group_names = {name for name, _ in step.groups}
    cols = [e for e in walk(expr) if isinstance(e, Column)]
    return bool(cols) and all(c.name in group_names for c in cols)


def _dedupe_names(rel: Relation) -> Relation:
    """When a name appears twice, the last one wins (ES's shadowing)."""
    last = {name: i for i, name in enumerate(rel.names)}
    keep = [i for i, name in enumerate(rel.names) if last[name] == i]
    if len(keep) == len(rel.names):
        return rel
    return Relation([rel.names[i] for i in keep], [rel.types[i] for i in keep], map(picker(keep), rel.rows))


def run_eval(step: p.Eval, rel: Relation, ctx: Context, rest: list[p.Step]) -> Relation:
    for name, expr in step.fields:
        scope = ctx.scope(rel)
        fn, kind = compile_expr(expr, scope)
        keep = [i for i, n in enumerate(rel.names) if n != name]
        constants = {n: v for n, v in rel.constants.items() if n != name}
        if not any(isinstance(e, Call) and e.name == "NOW" for e in walk(expr)):
            constant, value = fold(expr, Scope(scope.names, scope.types, Warnings(), ctx.dialect, scope.constants))
            if constant:
                constants[name] = value
        rel = Relation([rel.names[i] for i in keep] + [name], [rel.types[i] for i in keep] + [kind],
                       map(_appender(keep, fn), rel.rows), constants)
    return rel


def _appender(keep: list[int], fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], list[Any]]:
    return lambda r: [r[i] for i in keep] + [fn(r)]


def picker(idx: list[int]) -> Callable[[list[Any]], list[Any]]:
    return lambda r: [r[i] for i in idx]


def run_sort(step: p.Sort, rel: Relation, ctx: Context, rest: list[p.Step]) -> Relation:
    """The rows in ``step``'s order. When a LIMIT bounds how many can reach the output,
    only that many are held, as Elasticsearch's TopN operator does."""
    key, reverse = sort.row_key(step.orders, ctx.scope(rel))
    keep = sort_bound(rest, ctx.options.max_rows)
    breaker, preview = ctx.breaker(step), ctx.offer_preview(rel, rest)
    if keep is None:
        rows, reservation = sort.sort_all(rel.rows, key, reverse, breaker, len(step.orders), preview)
    else:
        rows, reservation = sort.top_n(rel.rows, key, reverse, keep, breaker, preview)
    return rel.with_rows(released(rows, reservation))


def run_mv_expand(step: p.MvExpand, rel: Relation, ctx: Context, rest: list[p.Step]) -> Relation:
    if step.column not in rel.names:
        raise verify_fail(Src(1, 1, ""), f"Unknown column [{step.column}]")
    i = rel.names.index(step.column)

    def expand(rows: Iterable[list[Any]]) -> Iterable[list[Any]]:
        for r in rows:
            v = r[i]
            if type(v) is list:
                for x in v:
                    yield r[:i] + [x] + r[i + 1:]
            else:
                yield r
    return Relation(rel.names, rel.types, expand(rel.rows))


def extract(rel: Relation, fn: Callable[..., Any], out: list[tuple[str, str]],
            extractor: Callable[[str], dict[str, Any] | None]) -> Relation:
    """Append the columns ``out`` filled by ``extractor`` from each value of ``fn``; a
    multi-valued input is matched value by value and the captures are collected."""
    names = [n for n, _ in out]
    empty = [None] * len(names)

    def extract(value: Any) -> list[Any]:
        if value is None:
            return empty
        if type(value) is not list:
            found = extractor(value)
            return empty if found is None else [found.get(n) for n in names]
        collected: dict[str, list[Any]] = {n: [] for n in names}
        for v in value:
            for n, x in (extractor(v) or {}).items():
                if x is not None:
                    collected[n].extend(x if type(x) is list else [x])
        return [T.collapse(c) for c in collected.values()]

    keep = [i for i, n in enumerate(rel.names) if n not in names]
    rows = map(lambda r: [r[i] for i in keep] + extract(fn(r)), rel.rows)
    return Relation([rel.names[i] for i in keep] + names, [rel.types[i] for i in keep] + [k for _, k in out], rows)


# --- the whole plan ---------------------------------------------------------------------

def merge_filters(steps: list[p.Step]) -> list[p.Step]:
    """Consecutive WHEREs become one conjunction, as Elasticsearch's optimizer combines them
    (so the warnings of every condition are seen)."""
    out: list[p.Step] = []
    for step in steps:
        if isinstance(step, p.Filter) and out and isinstance(out[-1], p.Filter):
            previous = out.pop()
            step = p.Filter(Logical("AND", previous.condition, step.condition, src=step.condition.src), src=step.src)
        out.append(step)
    return out


def push_filters_down(steps: list[p.Step]) -> list[p.Step]:
    """A WHERE runs before the SORTs and EVALs in front of it that it does not depend on
    (``SORT a | WHERE c`` as ``WHERE c | SORT a``; ``EVAL x = f(b) | WHERE c`` as
    ``WHERE c | EVAL x = f(b)`` when ``c`` reads no ``x``): the same rows in the same order,
    a LIMIT after it then bounds the sort, and an EVAL is not computed (nor warns) for the
    rows the WHERE drops. Elasticsearch's optimizer does the same."""
    out: list[p.Step] = []
    for step in steps:
        at = len(out)
        if isinstance(step, p.Filter):
            reads = p.columns_in(step.condition)
            while at and (isinstance(out[at - 1], p.Sort) or
                          isinstance(out[at - 1], p.Eval) and not reads & {n for n, _ in out[at - 1].fields}):
                at -= 1
        out.insert(at, step)
    return out


def prune_evals(steps: list[p.Step]) -> list[p.Step]:
    """EVAL columns that nothing after them can observe (a STATS or KEEP ends what reaches
    the output, and no step in between names them) are not computed, nor do they warn, as
    Elasticsearch's optimizer prunes them; an EVAL left with no column goes."""
    out = list(steps)
    for i in range(len(out) - 1, -1, -1):
        step = out[i]
        if not isinstance(step, p.Eval):
            continue
        needed = observed_columns(out[i + 1:], [name for name, _ in step.fields])
        if needed is None:
            continue
        kept = []
        for name, expr in reversed(step.fields):  # a later field may read an earlier one
            if name in needed:
                kept.append((name, expr))
                needed = (needed - {name}) | p.columns_in(expr)
        if len(kept) == len(step.fields):
            continue
        if kept:
            out[i] = replace(step, fields=tuple(reversed(kept)))
        else:
            del out[i]
    return out


def sort_bound(rest: list[p.Step], cap: int) -> int | None:
    """How many rows of a SORT followed by ``rest`` can reach the output (which ``cap``
    ends), or None when a step between it and the next LIMIT drops or regroups rows."""
    for step in rest:
        if isinstance(step, p.Limit):
            return min(step.count, cap)
        if not step.keeps_rows:
            return None
    return cap


def run_filter(step: p.Filter, rel: Relation, ctx: Context, rest: list[p.Step]) -> Relation:
    fn, kind = compile_expr(step.condition, ctx.scope(rel))
    if kind not in ("boolean", "null", T.ANY):  # ANY: a dynamic condition, kept where it is true
        raise verify_fail(step.condition.src, f"Condition expression needs to be boolean, found [{kind}]")
    return rel.with_rows(filter(_accepts(fn), rel.rows))


def _accepts(fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], bool]:
    return lambda r: fn(r) is True


def run_limit(step: p.Limit, rel: Relation, ctx: Context, rest: list[p.Step]) -> Relation:
    return rel.with_rows(itertools.islice(rel.rows, step.count))


OPERATORS: dict[type[p.Step], Operator] = {
    p.Filter: run_filter, p.Eval: run_eval, p.Aggregate: run_aggregate, p.Sort: run_sort, p.Limit: run_limit,
    p.MvExpand: run_mv_expand,
}


def run_source(step: p.Source, rest: list[p.Step], ctx: Context,
               where: Callable[[Index], tuple[str, list[Any]] | None] | None = None) -> tuple[Relation, int]:
    """The documents of the step's indices, with as many of the steps after it as can run
    inside SQLite already applied. ``where``: a language's own narrowing of an ordered scan
    (see ``ordered_scan``), in place of the predicate's."""
    indices = ctx.dialect.indices(ctx.catalog, step)
    names, types = source_columns(indices, ctx.dialect.column_type)
    for m in step.metadata:
        if m not in METADATA:
            raise verify_fail(Src(1, 1, ""), f"unsupported metadata field [{m}]")
    plain = step.order is None and step.time_range is None and not step.with_source
    pushed = pushdown.push(rest, indices, names, types, step.metadata, ctx) \
        if ctx.options.pushdown and ctx.dialect.pushdown and plain else None
    if ctx.profile is None:
        ctx.profile = pushdown.profile(pushed, pushed.rest if pushed else rest)
    if pushed is not None:
        return pushed.relation, len(rest) - len(pushed.rest)
    read = None if ctx.source_filter is not None else observed_columns(rest, names)
    options = {"with_source": step.with_source, "time_range": step.time_range}
    if step.order is None:
        rows: Iterable[list[Any]] = scan(ctx.conn, indices, names, types, step.metadata, ctx.control, read, **options)
    else:
        narrow = where if where is not None else None if step.predicate is None or not ctx.options.pushdown else \
            functools.partial(pushdown.prefilter, step.predicate, names=names, types=types, language=ctx.dialect)
        rows = ordered_scan(ctx.conn, indices, names, types, step.metadata, ctx.control, step.order, read,
                            where=narrow, **options)
    if ctx.source_filter is not None:
        rows = filter(compile_filter(ctx.source_filter, names, types), rows)
    out_names = names + list(step.metadata) + (["_source"] if step.with_source else [])
    out_types = types + [METADATA[m] for m in step.metadata] + (["_source"] if step.with_source else [])
    return Relation(out_names, out_types, rows), 0


def run_combine(step: p.Combine, rest: list[p.Step], ctx: Context) -> tuple[Relation, int]:
    """Each input pipeline runs to a relation (lazily: a combiner may stop reading one), then
    the step's combiner makes them one."""
    return step.combiner([run_pipeline(list(steps), ctx) for steps in step.inputs], ctx), 0


SOURCES: dict[type[p.Step], SourceRunner] = {p.Source: run_source, p.Combine: run_combine}


def append(inputs: list[Relation], ctx: Context) -> Relation:
    """A ``Combiner``: the rows of every input, one input after the other. Columns are the
    union of the inputs' by name, in the order first seen; a row lacks (null) the columns its
    input does not have; a name with two types is ``unsupported`` and null."""
    names: list[str] = []
    kinds: dict[str, str] = {}
    for rel in inputs:
        for name, kind in zip(rel.names, rel.types):
            if name not in kinds:
                names.append(name)
                kinds[name] = kind
            elif kinds[name] != kind:
                kinds[name] = "unsupported"
    supported = {n for n in names if kinds[n] != "unsupported"}

    def rows() -> Iterator[list[Any]]:
        for rel in inputs:
            at = {n: i for i, n in enumerate(rel.names)}
            where = [at.get(n) if n in supported else None for n in names]
            for row in rel.rows:
                yield [None if i is None else row[i] for i in where]
    return Relation(names, [kinds[n] for n in names], rows())


def run_pipeline(steps: list[p.Step], ctx: Context) -> Relation:
    """The rows of a source step and the steps after it."""
    source = steps[0]
    if isinstance(source, p.Source) and source.predicate is not None:
        steps = [source, p.Filter(source.predicate, src=source.predicate.src), *steps[1:]]
    steps = prune_evals(merge_filters(push_filters_down(steps)))
    source, rest = steps[0], steps[1:]
    runner = SOURCES.get(type(source)) or ctx.dialect.sources.get(type(source))
    if runner is None:
        raise ServiceError(f"[{type(source).__name__.upper()}] cannot start a query", status=400,
                           type="verification_exception")
    rel, done = runner(source, [step for step in rest if not step.observer], ctx)
    return run_steps(rel, _after(rest, done), ctx)


def _after(steps: list[p.Step], done: int) -> list[p.Step]:
    """``steps`` after the first ``done`` of those that are not observers (the source ran
    them): a source sees through observers, so measuring a query never changes how it runs;
    the observers among those steps watch the source's output, in their order."""
    at = 0
    for step in steps:
        if done == 0 and not step.observer:
            break
        at += 1
        done -= not step.observer
    return [step.ran_past() for step in steps[:at] if step.observer] + steps[at:]


def previews(plan: p.Plan) -> bool:
    """Whether the plan, running, can answer a preview: one of its steps collects its
    input before it gives a row (STATS, SORT) and makes previews of what it has so far."""
    return any(step.previews for step in plan.steps)


def run_steps(rel: Relation, steps: list[p.Step], ctx: Context) -> Relation:
    """``rel`` through ``steps``, each told the steps after it."""
    for i, step in enumerate(steps):
        operator = OPERATORS.get(type(step)) or ctx.dialect.steps.get(type(step))
        if operator is None:
            raise ServiceError(f"[{type(step).__name__.upper()}] is not supported yet", status=400,
                               type="verification_exception")
        rel = operator(step, rel, ctx, steps[i + 1:])
    return rel


def run_plan(plan: p.Plan, catalog: Catalog, conn: sqlite3.Connection, control: Control, dialect: Dialect,
             source_filter: Any = None, options: QueryOptions = QueryOptions()) -> Result:
    """Run ``plan`` over ``conn`` with ``dialect``'s rules; ``control`` can stop or cancel it.
    ``source_filter`` is a Query DSL filter applied to the documents before the plan.
    At most ``options.max_rows`` rows are returned."""
    ctx = Context(catalog, conn, control, dialect, options, source_filter)
    for message in plan.warnings:
        ctx.warnings.add(message)
    rel = run_pipeline(list(plan.steps), ctx)
    profile = ctx.profile or pushdown.profile(None, list(plan.steps[1:]), f"{type(plan.steps[0]).__name__}Operator")
    return Result(rel.names, rel.types, itertools.islice(rel.rows, options.max_rows), ctx.warnings, control, profile)
