"""Running a logical plan: rows come from SQLite, the pipeline runs over them in Python.

A plan runs synchronously (in a query worker process) with its own connection. The source is read
in rowid slices; between slices the ``Control`` may stop the scan (the rest of the
pipeline then finishes over the rows read, so STATS over a stopped query are correct for
the data seen) or cancel it. Rows flow lazily, so nothing holds more than SORT or STATS
need: a SORT that a LIMIT follows (and every SORT has one, the implied 1000 at least)
keeps only that many rows. What SORT and STATS hold is charged to the query's memory
breaker (``breaker.py``), once per batch of rows. What SQLite can run exactly at the front of
the plan (filters, evals, STATS, top-N) runs there instead: see ``pushdown``.
"""

from __future__ import annotations

import itertools
import sqlite3
from dataclasses import dataclass, field, fields, replace
from sys import getsizeof
from typing import Any, Callable, Iterable, Iterator

import orjson

from ..errors import IndexNotFound, ServiceError
from ..node import ES_VERSION
from ..patterns import PatternError, dissect, wildcard
from ..store.catalog import Catalog, Index
from ..store.sql import quote
from . import aggregates, pushdown, sort
from . import plan as p
from . import types as T
from .breaker import CHARGE_BYTES, Breaker, Reservation, object_bytes, released
from .control import Control
from .dsl import compile_filter
from .evaluate import (
    EvalError, Scope, VerificationError, Warnings, compile_expr, fold, verify_fail, walk,
)
from .expr import Call, Column, Expr, Logical, Star
from .functions import AGGREGATES, ALIASES, aggregate_constants
from .grok import GrokError, compile_grok, first_match
from .options import QueryOptions

DEFAULT_LIMIT = 1000
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

    def scope(self, warnings: Warnings) -> Scope:
        return Scope(self.names, self.types, warnings, self.constants)

    def with_rows(self, rows: Iterable[list[Any]]) -> Relation:
        """The same columns over other rows (a filter, sort or limit)."""
        return Relation(self.names, self.types, rows, self.constants)


# --- the source -------------------------------------------------------------------------

def resolve_indices(catalog: Catalog, step: p.Source) -> list[Index]:
    missing = [n for n in step.indices if "*" not in n and not n.startswith("-") and n not in catalog.indices]
    if missing and len(missing) == len([n for n in step.indices if not n.startswith("-")]):
        raise VerificationError([(step.src if step.src.line else _src_at(1, 6),
                                  f"Unknown index [{','.join(step.indices)}]")])
    if missing:
        raise IndexNotFound(missing[0])
    indices = catalog.resolve(",".join(step.indices))
    if not indices:
        raise VerificationError([(_src_at(1, 6), f"Unknown index [{','.join(step.indices)}]")])
    return indices


def _src_at(line: int, col: int) -> Any:
    from .expr import Src
    return Src(line, col, "")


def source_columns(indices: list[Index]) -> tuple[list[str], list[str]]:
    """Every mapped leaf field of the indices, sorted by name; conflicting types are ``unsupported``."""
    kinds: dict[str, str] = {}
    for index in indices:
        for path, f in index.fields.items():
            if f.target is not None or f.column is None:
                continue
            kind = T.FIELD_TYPES.get(f.type, "unsupported")
            previous = kinds.get(path)
            kinds[path] = kind if previous in (None, kind) else "unsupported"
    names = sorted(kinds)
    return names, [kinds[n] for n in names]


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


def _bounds(conn: sqlite3.Connection, index: Index) -> tuple[int, int]:
    """Rows to read: the rowids that exist when the query starts (later writes are not seen)."""
    count, top = conn.execute(f"SELECT count(*), max(rowid) FROM {quote(index.table)}").fetchone()
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


def scan(conn: sqlite3.Connection, indices: list[Index], names: list[str], types: list[str],
         metadata: tuple[str, ...], control: Control, read: set[str] | None = None) -> Iterator[list[Any]]:
    """Every document of ``indices`` as a row, read in rowid slices; between slices the
    control may end the scan (stop) or abort it (cancel). Only the columns in ``read``
    (all when None) are read and decoded; the others are null."""
    width = len(names)
    wanted = [i for i, n in enumerate(names) if (read is None or n in read) and types[i] != "unsupported"]
    decoders = [(i, _decoder(types[i])) for i in wanted]
    blank = [None] * width
    tail = len(wanted) + 1  # metadata columns follow rowid and the wanted ones
    bounds = [_bounds(conn, index) for index in indices]
    control.rows_total = sum(count for count, _ in bounds)
    control.phase = "running"
    for index, (_, top) in zip(indices, bounds):
        exprs = [quote(index.columns[names[i]]) if names[i] in index.columns else "NULL" for i in wanted]
        meta = [{"_id": "_id", "_version": "_version", "_index": "?"}[m] for m in metadata]
        sql = (f"SELECT {', '.join(['rowid', *exprs, *meta])} FROM {quote(index.table)} "
               f"WHERE rowid > ? AND rowid <= ? ORDER BY rowid")
        extra = [index.name] if "_index" in metadata else []
        for after, upto in rowid_slices(control, top):
            batch = conn.execute(sql, [*extra, after, upto]).fetchall()
            control.scanned(len(batch))
            for raw in batch:
                row = blank.copy()
                for j, (i, decode) in enumerate(decoders, 1):
                    row[i] = decode(raw[j])
                row += raw[tail:]
                yield row
        if control.cut_short:
            return


def observed_columns(steps: list[p.Step], names: list[str]) -> set[str] | None:
    """The source columns (of ``names``) a plan can observe, when a STATS or KEEP ends what
    the source shows (after it, only its output and what the steps name); None when every
    column may reach the output."""
    seen: set[str] = set()
    for step in steps:
        if isinstance(step, p.Rename):
            seen.update(old for old, _ in step.pairs)
        elif isinstance(step, p.MvExpand):
            seen.add(step.column)
        elif isinstance(step, p.Keep):
            seen.update(n for matched in _match(step.patterns, names, "") for n in matched)
            return seen
        seen.update(e.name for e in walk(step) if isinstance(e, Column))
        if isinstance(step, p.Aggregate):
            return seen
    return None


# --- processing steps ------------------------------------------------------------------

def _aggregate_calls(expr: Expr, found: list[Call]) -> Expr:
    """Replace every aggregate call inside ``expr`` by a column ``$aggN``, collecting the calls."""
    if isinstance(expr, Call) and ALIASES.get(expr.name, expr.name) in AGGREGATES:
        found.append(expr)
        return Column(f"$agg{len(found) - 1}", src=expr.src)
    changes = {}
    for f in fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, Expr):
            changes[f.name] = _aggregate_calls(value, found)
        elif isinstance(value, tuple) and value and all(isinstance(v, Expr) for v in value):
            changes[f.name] = tuple(_aggregate_calls(v, found) for v in value)
    return replace(expr, **changes) if changes else expr


def _as_list(v: Any) -> list[Any]:
    return [] if v is None else v if type(v) is list else [v]


def run_stats(step: p.Aggregate, rel: Relation, warnings: Warnings, breaker: Breaker) -> Relation:
    if any(_is_alias(name, expr) for name, expr in step.groups):
        rel, step = _computed_groups(step, rel, warnings)
    scope = rel.scope(warnings)
    group_fns, group_types = [], []
    for name, expr in step.groups:
        fn, kind = compile_expr(expr, scope)
        group_fns.append(fn)
        group_types.append(kind)
    calls: list[Call] = []
    outer = [(name, _aggregate_calls(expr, calls), cond) for name, expr, cond in step.aggregates]
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
        call = calls[call_index]
        name = ALIASES.get(call.name, call.name)
        args = call.args
        if name == "COUNT" and (not args or isinstance(args[0], Star)):
            aggs.append((call_index, None, None, aggregates.CountRows, cond_fn))
            agg_types[call_index] = "long"
            continue
        if not args:
            raise verify_fail(call.src, f"error building [{name.lower()}]: expects at least one argument")
        fn, kind = compile_expr(args[0], scope)
        if not aggregates.accepts(name, kind):
            raise verify_fail(call.src, f"argument of [{call.src.text}] must be [numeric except unsigned_long or "
                                        f"counter types], found value [{args[0].src.text}] type [{kind}]")
        second = args[1] if name in aggregates.TWO_INPUTS and len(args) > 1 else \
            args[3] if name == "TOP" and len(args) > 3 else None
        other_fn, other_kind = compile_expr(second, scope) if second is not None else (None, None)
        extra = aggregate_constants(name, call, scope)
        factory, agg_types[call_index] = aggregates.resolve(name, kind, extra, other_kind, meter)
        aggs.append((call_index, fn, other_fn, factory, cond_fn))
    out_width = len(step.groups) + len(calls)
    groups, reservation = _accumulate(rel.rows, group_fns, aggs, meter, breaker, out_width)
    if not step.groups and not groups:
        groups[()] = [a[3]() for a in aggs]
    if len(step.groups) == 1 and (None,) in groups:  # ES's one-key hashes give the null group id 0
        groups = {(None,): groups.pop((None,)), **groups}
    agg_names = [f"$agg{i}" for i in range(len(calls))]
    out_rows = []
    group_names = [name for name, _ in step.groups]
    for key, states in groups.items():
        agg_values: list[Any] = [None] * len(calls)
        for (call_index, *_), state in zip(aggs, states):
            try:
                agg_values[call_index] = state.result()
            except EvalError as exc:
                warnings.failure(calls[call_index].src, exc.java_message)
        out_rows.append((list(key), agg_values))
    inner = Scope(group_names + agg_names, group_types + agg_types, warnings)
    compiled = [compile_expr(expr, inner) for _, expr, _ in outer]
    names = [name for name, _, _ in step.aggregates]
    result_rows = []
    for key, agg_values in out_rows:
        row = key + agg_values
        result_rows.append([fn(row) for fn, _ in compiled] + key)
    return _dedupe_names(Relation(names + group_names, [k for _, k in compiled] + group_types,
                                  released(result_rows, reservation)))


def _accumulate(rows: Iterable[list[Any]], group_fns: list[Callable[..., Any]], aggs: list[tuple],
                meter: aggregates.Meter, breaker: Breaker,
                out_width: int) -> tuple[dict[tuple, list[Any]], Reservation]:
    """One pass over ``rows``, one accumulator per (group, aggregate). Once per batch of
    rows the groups (keys, accumulators and the output row each will become) and what the
    accumulators keep (``meter``) are charged to ``breaker``; the reservation is returned
    for the output rows to release."""
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
            keys = [_as_list(f(row)) or [None] for f in group_fns]
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
    return groups, reservation


def _is_alias(name: str, expr: Expr) -> bool:
    return not (isinstance(expr, Column) and expr.name == name)


def _computed_groups(step: p.Aggregate, rel: Relation, warnings: Warnings) -> tuple[Relation, p.Aggregate]:
    """``BY l = languages + 1``: the aggregates and their filters see ``l``. Every grouping
    expression is evaluated over the input rows (``BY l = l + 1, l = l + 1`` adds one,
    once), a repeated name keeps its last; each becomes a column the groups refer to."""
    scope = rel.scope(warnings)
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
    return Relation([rel.names[i] for i in keep], [rel.types[i] for i in keep], map(_picker(keep), rel.rows))


def run_eval(fields: tuple[tuple[str, Expr], ...], rel: Relation, warnings: Warnings) -> Relation:
    for name, expr in fields:
        scope = rel.scope(warnings)
        fn, kind = compile_expr(expr, scope)
        keep = [i for i, n in enumerate(rel.names) if n != name]
        constants = {n: v for n, v in rel.constants.items() if n != name}
        if not any(isinstance(e, Call) and e.name == "NOW" for e in walk(expr)):
            constant, value = fold(expr, Scope(scope.names, scope.types, Warnings(), scope.constants))
            if constant:
                constants[name] = value
        rel = Relation([rel.names[i] for i in keep] + [name], [rel.types[i] for i in keep] + [kind],
                       map(_appender(keep, fn), rel.rows), constants)
    return rel


def run_row(step: p.Row, warnings: Warnings) -> Relation:
    """ROW's fields are independent constants; a repeated name keeps every column, as in ES."""
    empty = Scope([], [], warnings)
    compiled = [compile_expr(expr, empty) for _, expr in step.fields]
    values = [fn([]) for fn, _ in compiled]
    return Relation([name for name, _ in step.fields], [kind for _, kind in compiled], [values],
                    dict(zip((name for name, _ in step.fields), values)))


def _appender(keep: list[int], fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], list[Any]]:
    return lambda r: [r[i] for i in keep] + [fn(r)]


def _picker(idx: list[int]) -> Callable[[list[Any]], list[Any]]:
    return lambda r: [r[i] for i in idx]


def run_sort(step: p.Sort, rel: Relation, warnings: Warnings, breaker: Breaker, keep: int | None) -> Relation:
    """The rows in ``step``'s order. With ``keep``, only that many are wanted (a LIMIT
    follows) and only they are held, as Elasticsearch's TopN operator does."""
    key, reverse = sort.row_key(step.orders, rel.scope(warnings))
    if keep is None:
        rows, reservation = sort.sort_all(rel.rows, key, reverse, breaker, len(step.orders))
    else:
        rows, reservation = sort.top_n(rel.rows, key, reverse, keep, breaker)
    return rel.with_rows(released(rows, reservation))


def _match(patterns: tuple[str, ...], names: list[str], src_name: str) -> list[list[str]]:
    out = []
    for pattern in patterns:
        if "*" in pattern:
            matches = wildcard(pattern)
            out.append([n for n in names if matches(n)])
        else:
            out.append([pattern] if pattern in names else [])
    return out


def run_keep(step: p.Keep, rel: Relation) -> Relation:
    order: list[str] = []
    exact = {pat for pat in step.patterns if "*" not in pat}
    for pattern, matched in zip(step.patterns, _match(step.patterns, rel.names, "keep")):
        if not matched and "*" not in pattern:
            raise verify_fail(_src_at(1, 1), f"Unknown column [{pattern}]")
        for name in matched:
            if name in order:
                if "*" in pattern and name in exact:
                    continue
                order.remove(name)
            order.append(name)
    idx = [rel.names.index(n) for n in order]
    return Relation(order, [rel.types[i] for i in idx], map(_picker(idx), rel.rows))


def run_drop(step: p.Drop, rel: Relation) -> Relation:
    dropped: set[str] = set()
    for pattern, matched in zip(step.patterns, _match(step.patterns, rel.names, "drop")):
        if not matched and "*" not in pattern:
            raise verify_fail(_src_at(1, 1), f"Unknown column [{pattern}]")
        dropped.update(matched)
    idx = [i for i, n in enumerate(rel.names) if n not in dropped]
    return Relation([rel.names[i] for i in idx], [rel.types[i] for i in idx], map(_picker(idx), rel.rows))


def run_rename(step: p.Rename, rel: Relation) -> Relation:
    names, types, rows = list(rel.names), list(rel.types), rel.rows
    for old, new in step.pairs:
        if old not in names:
            raise verify_fail(_src_at(1, 1), f"Unknown column [{old}]")
        i = names.index(old)
        if new in names and new != old:
            j = names.index(new)
            del names[j], types[j]
            rows = map(_picker([k for k in range(len(names) + 1) if k != j]), rows)
            i = names.index(old)
        names[i] = new
    return Relation(names, types, rows)


def run_mv_expand(step: p.MvExpand, rel: Relation) -> Relation:
    if step.column not in rel.names:
        raise verify_fail(_src_at(1, 1), f"Unknown column [{step.column}]")
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


def _text_input(step: p.Dissect | p.Grok, rel: Relation, warnings: Warnings, command: str) -> Callable[..., Any]:
    fn, kind = compile_expr(step.input, rel.scope(warnings))
    if not T.is_string(kind) and kind != "null":
        raise verify_fail(step.input.src, f"{command} only supports KEYWORD or TEXT values, found expression "
                                          f"[{step.input.src.text}] type [{kind}]")
    return fn


def _extract(rel: Relation, fn: Callable[..., Any], out: list[tuple[str, str]],
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


def run_dissect(step: p.Dissect, rel: Relation, warnings: Warnings) -> Relation:
    fn = _text_input(step, rel, warnings, "Dissect")
    try:
        parser = dissect(step.pattern, step.append_separator)
    except PatternError:
        raise _parsing_error(step, f"Invalid pattern for dissect: [{step.pattern}]") from None
    if parser.references:
        raise _parsing_error(step, f"Reference keys not supported in dissect patterns: [%{{*{parser.references[0]}}}]")
    out_names: list[str] = []
    for key in parser.keys:
        if not key.skip and key.name not in out_names:
            out_names.append(key.name)
    return _extract(rel, fn, [(n, "keyword") for n in out_names], parser.parse)


def _parsing_error(step: p.Step, message: str) -> ServiceError:
    return ServiceError(f"line {step.src.line}:{step.src.col}: {message}", status=400, type="parsing_exception")


def run_grok(step: p.Grok, rel: Relation, warnings: Warnings) -> Relation:
    fn = _text_input(step, rel, warnings, "Grok")
    try:
        groks = [compile_grok(pattern) for pattern in step.patterns]
    except GrokError as exc:
        raise verify_fail(step.src, str(exc)) from None
    out: dict[str, str] = {}
    for g in groks:
        for name, kind in g.fields:
            if out.setdefault(name, kind) != kind:
                raise verify_fail(step.src, f"Invalid GROK patterns: conflicting types for [{name}]")
    return _extract(rel, fn, list(out.items()), first_match(groks))


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


def push_filters_below_sorts(steps: list[p.Step]) -> list[p.Step]:
    """``SORT a | WHERE c`` runs as ``WHERE c | SORT a``: the same rows in the same order,
    and the LIMIT after it then bounds the sort. Elasticsearch's optimizer does the same."""
    out: list[p.Step] = []
    for step in steps:
        at = len(out)
        if isinstance(step, p.Filter):
            while at and isinstance(out[at - 1], p.Sort):
                at -= 1
        out.insert(at, step)
    return out


# Steps that turn each row into one row or more, keeping the order: a LIMIT after them
# needs no more than that many of the rows before them.
_ROWS_KEPT = (p.Eval, p.Keep, p.Drop, p.Rename, p.Dissect, p.Grok, p.MvExpand)


def sort_bound(rest: list[p.Step], cap: int) -> int | None:
    """How many rows of a SORT followed by ``rest`` can reach the output (which ``cap``
    ends), or None when a step between it and the next LIMIT drops or regroups rows."""
    for step in rest:
        if isinstance(step, p.Limit):
            return min(step.count, cap)
        if not isinstance(step, _ROWS_KEPT):
            return None
    return cap


def run_plan(plan: p.Plan, catalog: Catalog, conn: sqlite3.Connection, control: Control,
             source_filter: Any = None, options: QueryOptions = QueryOptions()) -> Result:
    """Run ``plan`` over ``conn``; ``control`` can stop or cancel it.
    ``source_filter`` is a Query DSL filter applied to the documents before the plan."""
    max_rows = options.max_rows
    warnings = Warnings()
    for message in plan.warnings:
        warnings.add(message)
    steps = merge_filters(push_filters_below_sorts(list(plan.steps)))
    source = steps.pop(0)
    limited = any(isinstance(step, p.Limit) for step in steps)
    cap = max_rows if limited else min(DEFAULT_LIMIT, max_rows)
    pushed: pushdown.Pushed | None = None
    if isinstance(source, p.Row):
        rel = run_row(source, warnings)
    elif isinstance(source, p.ShowInfo):
        rel = Relation(["version", "date", "hash"], ["keyword"] * 3, [[ES_VERSION, "2025-10-21T10:06:21.288Z",
                                                                         "esquire"]])
    elif isinstance(source, p.Source):
        indices = resolve_indices(catalog, source)
        names, types = source_columns(indices)
        for m in source.metadata:
            if m not in METADATA:
                raise verify_fail(_src_at(1, 1), f"unsupported metadata field [{m}]")
        if options.pushdown and source_filter is None:
            pushed = pushdown.push(steps, indices, names, types, source.metadata, conn, control, warnings, cap)
        if pushed is not None:
            rel, steps = pushed.relation, pushed.rest
        else:
            read = None if source_filter is not None else observed_columns(steps, names)
            rows: Iterable[list[Any]] = scan(conn, indices, names, types, source.metadata, control, read)
            if source_filter is not None:
                rows = filter(compile_filter(source_filter, names, types), rows)
            rel = Relation(names + list(source.metadata), types + [METADATA[m] for m in source.metadata], rows)
    else:  # pragma: no cover - the grammar only makes these
        raise ServiceError("unknown source command", status=400)
    for i, step in enumerate(steps):
        if isinstance(step, p.Filter):
            fn, kind = compile_expr(step.condition, rel.scope(warnings))
            if kind not in ("boolean", "null"):
                raise verify_fail(step.condition.src, f"Condition expression needs to be boolean, found [{kind}]")
            rel = rel.with_rows(filter(_accepts(fn), rel.rows))
        elif isinstance(step, p.Eval):
            rel = run_eval(step.fields, rel, warnings)
        elif isinstance(step, p.Aggregate):
            rel = run_stats(step, rel, warnings, control.breaker)
        elif isinstance(step, p.Sort):
            rel = run_sort(step, rel, warnings, control.breaker, sort_bound(steps[i + 1:], cap))
        elif isinstance(step, p.Limit):
            rel = rel.with_rows(itertools.islice(rel.rows, step.count))
        elif isinstance(step, p.Keep):
            rel = run_keep(step, rel)
        elif isinstance(step, p.Drop):
            rel = run_drop(step, rel)
        elif isinstance(step, p.Rename):
            rel = run_rename(step, rel)
        elif isinstance(step, p.MvExpand):
            rel = run_mv_expand(step, rel)
        elif isinstance(step, p.Dissect):
            rel = run_dissect(step, rel, warnings)
        elif isinstance(step, p.Grok):
            rel = run_grok(step, rel, warnings)
        else:
            raise ServiceError(f"[{type(step).__name__.upper()}] is not supported yet", status=400,
                               type="verification_exception")
    if not limited:
        warnings.messages.insert(0, f"No limit defined, adding default limit of [{DEFAULT_LIMIT}]")
    return Result(rel.names, rel.types, itertools.islice(rel.rows, cap), warnings, control,
                  pushdown.profile(pushed, steps))


def _accepts(fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], bool]:
    return lambda r: fn(r) is True
