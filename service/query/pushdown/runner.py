"""Running a ``Statement`` over rowid slices, as the Python scan reads them.

Each index is read as ``(SELECT rowid AS r, <column> AS f<i>, ... FROM <table>)``, which
SQLite flattens into the statement, so one statement text serves every index of a
pattern (a field an index lacks is NULL there). The slices are the Python scan's
(``rowid_slices``: the control's adaptive size, stop between slices, cancel), and each
counts as scanned every row it holds, matched or not, as the Python scan does.

- rows: the matching rows of each slice in rowid order, lazily (a LIMIT ends the reading
  as the Python LIMIT stops pulling rows);
- topn: each slice's first ``limit`` rows by the orders then rowid, merged: the ties keep
  scan order, as the Python top-N's stable sort does;
- aggregate: a GROUP BY per slice whose partial states are merged in Python (counts and
  sums add, MIN / MAX compare, COUNT_DISTINCT collects each slice's distinct values,
  read from a JSON array, or for doubles from a GROUP BY on the argument too). Groups come
  out in the order the Python STATS meets them (each slice's groups by their first rowid),
  so a stop answers exactly over the slices read. An aggregate that reads nothing but the
  time field is read over time ranges of its index instead (``timeline``), its groups then
  ordered by their first rowid.
"""

from __future__ import annotations

import math
import sqlite3
from sys import getsizeof
from typing import Any, Iterator

import orjson

from ...store.catalog import Index
from ...store.sql import quote
from .. import aggregates
from ..breaker import Reservation, released
from ..control import Control
from ..evaluate import EvalError, Warnings
from . import timeline
from .compiler import Col
from .dialect import Surprise, SqliteDialect
from .planner import Agg, Grouping, Statement

EXACT = 2**53  # doubles hold every integer up to here
GROUP_BYTES = 104 + 56 + 64  # a group's dict entry, its states list and the output row it becomes
VALUE_BYTES = 40  # a distinct value's set slots


class Fallback(Exception):
    """SQL met a row where its answer would not be ES|QL's: run the query in Python."""


def source_sql(name_index: dict[str, int], index: Index, metadata: tuple[str, ...]) -> str:
    """The index as the statement reads it: rowid ``r``, field ``i`` as ``f<i>``."""
    items = ["rowid AS r"]
    for name, i in name_index.items():
        column = index.columns.get(name)
        items.append(f"{quote(column) if column else 'NULL'} AS f{i}")
    for m in metadata:
        items.append(f"{':ix' if m == '_index' else quote(m)} AS {meta_alias(m)}")
    return f"(SELECT {', '.join(items)} FROM {quote(index.table)})"


def meta_alias(m: str) -> str:
    return "m" + m.lstrip("_")


def statement_sql(st: Statement, source: str, wanted: list[int]) -> str:
    """The per-slice statement: bounds ``:lo`` / ``:hi``, the row limit ``:n``."""
    where = " AND ".join(["r > :lo AND r <= :hi", *st.where])
    if st.mode == "aggregate":
        keys = group_keys(st)
        group_by = f" GROUP BY {', '.join(keys)}" if keys else ""
        return f"SELECT {', '.join(aggregate_items(st))} FROM {source} WHERE {where}{group_by}"
    outs = ["r", *(st.columns[i].sql or "NULL" for i in wanted)]
    if st.mode == "topn":
        outs += [o.sql for o in st.orders]
        order = ", ".join([*(SqliteDialect().order(o.sql, o.ascending, o.nulls_first) for o in st.orders), "r"])
        return f"SELECT {', '.join(outs)} FROM {source} WHERE {where} ORDER BY {order} LIMIT :n"
    limit = " LIMIT :n" if st.limit is not None else ""
    return f"SELECT {', '.join(outs)} FROM {source} WHERE {where} ORDER BY r{limit}"


def group_keys(st: Statement) -> list[str]:
    g = st.grouping
    assert g is not None
    return [text for _, text, _ in g.keys] + ([g.distinct] if g.distinct else [])


def aggregate_items(st: Statement) -> list[str]:
    """A slice's columns in aggregate mode: the keys, its first rowid, its rows, the partial states."""
    g = st.grouping
    assert g is not None
    return [*group_keys(st), "min(r)", "count(*)", *(part for a in g.aggs for part in partials(a))]


def by_time(st: Statement, time_alias: str | None, aliases: list[str]) -> bool:
    """Whether ``st`` may read through the time field's index (``timeline``): an aggregate
    that reads no column but the time field, with no key or one bucket of that field."""
    g = st.grouping
    if st.mode != "aggregate" or g is None or time_alias is None or g.distinct is not None:
        return False
    if g.keys and (g.floor is None or g.floor[0] != time_alias):
        return False
    return timeline.reads(" ".join([*aggregate_items(st), *st.where]), aliases) <= {time_alias}


def partials(a: Agg) -> list[str]:
    """The per-slice columns of one aggregate's partial state."""
    x = a.sql
    return {"rows": [], "grouped": [], "distinct": [f"json_group_array(DISTINCT {x})"], "count": [f"count({x})"],
            "sum": [f"sum({x})"],
            "dyadic": [f"sum({x})", f"sum(abs({x}))", f"count({x})"], "min": [f"min({x})"],
            "max": [f"max({x})"]}[a.func]


class Reader:
    """One statement over the indices of a source, slice by slice."""

    def __init__(self, conn: sqlite3.Connection, indices: list[Index], name_index: dict[str, int],
                 metadata: tuple[str, ...], st: Statement, control: Control, dialect: SqliteDialect,
                 wanted: list[int], time_alias: str | None = None) -> None:
        self.conn, self.indices, self.st, self.control, self.dialect = conn, indices, st, control, dialect
        self.sources = [source_sql(name_index, ix, metadata) for ix in indices]
        self.sqls = [statement_sql(st, source, wanted) for source in self.sources]
        self.limit = st.limit  # rows mode: what a LIMIT still lets through
        aliases = [f"f{i}" for i in name_index.values()] + [meta_alias(m) for m in metadata]
        self.time_alias = time_alias if by_time(st, time_alias, aliases) else None
        self.timed = False  # some index was read through its time index: rows are not in rowid order

    def slices(self) -> Iterator[tuple[int, list[tuple]]]:
        """(index position, the slice's rows) for every slice, its rows counted as scanned
        once it has run. Reading through the time index, one read transaction holds every
        slice to the snapshot the bounds were taken in (``timeline``)."""
        self.dialect.register(self.conn)
        snapshot = self.time_alias is not None and not self.conn.in_transaction
        if snapshot:
            self.conn.execute("BEGIN")
        try:
            yield from self._slices()
        except timeline.NotInteger:
            raise Fallback() from None
        except sqlite3.Error as exc:
            if self.dialect.surprise_of(exc):
                raise Fallback() from None
            raise
        finally:
            if snapshot and self.conn.in_transaction:
                self.conn.execute("ROLLBACK")  # nothing was written: it ends the read

    def _slices(self) -> Iterator[tuple[int, list[tuple]]]:
        from ..execute import _bounds

        bounds = [_bounds(self.conn, index) for index in self.indices]
        self.control.rows_total = sum(count for count, _ in bounds)
        self.control.phase = "running"
        for pos, (index, (count, top)) in enumerate(zip(self.indices, bounds)):
            params = {**self.st.params, "ix": index.name}
            line = None if self.time_alias is None else \
                timeline.plan(self.conn, index, self.st, self.time_alias, count, aggregate_items(self.st))
            if line is not None:
                self.timed = True
                self.sqls[pos] = line.range_sql
                yield from ((pos, rows) for rows in timeline.ranges(self.conn, line, params, self.control, count))
            else:
                yield from self._rowid_slices(pos, index, params, count, top)
            if self.control.cut_short:
                return

    def _rowid_slices(self, pos: int, index: Index, params: dict[str, Any], count: int,
                      top: int) -> Iterator[tuple[int, list[tuple]]]:
        from ..execute import rowid_slices

        dense = count == top  # no rowid is missing: a slice holds as many rows as its range
        first, last = self._span(pos, params, top)
        for after, upto in rowid_slices(self.control, top):
            if upto < first or after >= last:  # no row here is in the time range
                self.control.scanned(upto - after if dense else self._count(index, after, upto))
                yield pos, []
                continue
            rows = self.conn.execute(self.sqls[pos], {**params, "lo": after, "hi": upto, "n": self.limit}).fetchall()
            self.control.scanned(upto - after if dense else self._count(index, after, upto))
            yield pos, rows

    def _span(self, pos: int, params: dict[str, Any], top: int) -> tuple[int, int]:
        """The rowids from the first to the last row in the WHERE's time range, found
        through the time field's index (1..top when the WHERE bounds no time): the slices
        outside hold no match, and are counted as scanned without being read."""
        if not self.st.ranges:
            return 1, top
        first, last = self.conn.execute(f"SELECT min(r), max(r) FROM {self.sources[pos]} WHERE "
                                        f"{' AND '.join(self.st.ranges)}", params).fetchone()
        return (1, 0) if first is None else (first, last)

    def _count(self, index: Index, after: int, upto: int) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {quote(index.table)} WHERE rowid > ? AND rowid <= ?",
                                 (after, upto)).fetchone()[0]


def decoders(types: list[str]) -> list[Any]:
    from ..execute import _decoder
    return [_decoder(t) for t in types]


def read_rows(reader: Reader, columns: list[Col], wanted: list[int]) -> Iterator[list[Any]]:
    """rows mode: the relation's rows, the columns not ``wanted`` null."""
    decode = list(zip(wanted, decoders([columns[i].type for i in wanted])))
    blank = [None] * len(columns)
    if reader.limit == 0:
        return
    for _, rows in reader.slices():
        for raw in rows:
            row = blank.copy()
            for j, (i, dec) in enumerate(decode, 1):
                row[i] = dec(raw[j])
            yield row
        if reader.limit is not None:
            reader.limit -= len(rows)
            if reader.limit <= 0:
                return


def read_top(reader: Reader, columns: list[Col], wanted: list[int]) -> list[list[Any]]:
    """topn mode: the first ``limit`` rows by the orders, ties in scan order."""
    st = reader.st
    n = st.limit or 0
    width = 1 + len(wanted)
    kept: list[tuple[tuple[int, int], tuple]] = []
    for pos, rows in reader.slices():
        if not rows or not n:
            continue
        kept += [((pos, raw[0]), raw) for raw in rows]
        kept.sort(key=lambda e: e[0])
        for k in range(len(st.orders) - 1, -1, -1):
            o = st.orders[k]
            null = (2 if o.nulls_first else 0) if not o.ascending else (0 if o.nulls_first else 2)
            at = width + k
            kept.sort(key=lambda e: (null, 0) if e[1][at] is None else (1, e[1][at]), reverse=not o.ascending)
        del kept[n:]
    decode = list(zip(wanted, decoders([columns[i].type for i in wanted])))
    out = []
    for _, raw in kept:
        row = [None] * len(columns)
        for j, (i, dec) in enumerate(decode, 1):
            row[i] = dec(raw[j])
        out.append(row)
    return out


def read_groups(reader: Reader, warnings: Warnings) -> tuple[list[str], list[str], Iterator[list[Any]]]:
    """aggregate mode: the STATS output (aggregates then keys), exact over the slices read."""
    g = reader.st.grouping
    assert g is not None
    reservation = Reservation(reader.control.breaker)
    try:
        return _groups(reader, g, warnings, reservation)
    except BaseException:
        reservation.close()
        raise


def _groups(reader: Reader, g: Grouping, warnings: Warnings,
            reservation: Reservation) -> tuple[list[str], list[str], Iterator[list[Any]]]:
    nkeys = len(g.keys)
    split = nkeys + (1 if g.distinct else 0)
    groups: dict[tuple, list[Any]] = {}
    grouped = [slot for slot, a in enumerate(g.aggs) if a.func == "grouped"]
    held = 0
    first: dict[tuple, tuple[int, int]] = {}  # reading by time: each group's first (index, rowid)
    for pos, rows in reader.slices():
        rows.sort(key=lambda raw: raw[split])
        for raw in rows:
            n = raw[split + 1]
            if not n:
                continue  # no GROUP BY: the one row of an empty slice
            key = raw[:nkeys]
            if reader.time_alias is not None:
                first[key] = min(first.get(key, (pos, raw[split])), (pos, raw[split]))
            states = groups.get(key)
            if states is None:
                states = groups[key] = [_empty(a) for a in g.aggs]
                held += GROUP_BYTES + getsizeof(key) + sum(map(getsizeof, key))
            held += _merge(states, g.aggs, raw, split + 2, n)
            if grouped and raw[nkeys] is not None:
                for slot in grouped:
                    if raw[nkeys] not in states[slot]:
                        states[slot].add(raw[nkeys])
                        held += VALUE_BYTES + 24
        reservation.hold(held)
    if not g.keys and not groups:
        groups[()] = [_empty(a) for a in g.aggs]
    if reader.timed:  # in the order the rowid scan meets them (the one empty group of no key has no first)
        groups = dict(sorted(groups.items(), key=lambda item: first.get(item[0], (-1, 0))))
    if nkeys == 1 and (None,) in groups:  # as the Python STATS: the null group first
        groups = {(None,): groups.pop((None,)), **groups}
    key_decoders = decoders([t for _, _, t in g.keys])
    agg_decoders = decoders([a.type for a in g.aggs])
    out = []
    for key, states in groups.items():
        values = [_final(a, s, warnings, dec) for a, s, dec in
                  zip(g.aggs, states, agg_decoders)]
        out.append(values + [dec(k) for dec, k in zip(key_decoders, key)])
    names = [a.name for a in g.aggs] + [name for name, _, _ in g.keys]
    types = [a.type for a in g.aggs] + [t for _, _, t in g.keys]
    return names, types, released(out, reservation)


def _empty(a: Agg) -> Any:
    f = a.func
    return [0, 0, 0] if f in ("sum", "dyadic") else None if f in ("min", "max") else set() \
        if f in ("distinct", "grouped") else 0


def _merge(states: list[Any], aggs: list[Agg], raw: tuple, at: int, n: int) -> int:
    """Add one slice's partial states of a group; returns the bytes the distinct sets grew by."""
    grew = 0
    for slot, a in enumerate(aggs):
        f = a.func
        if f == "distinct":
            seen = states[slot]
            before = len(seen)
            seen.update(orjson.loads(raw[at]))
            seen.discard(None)
            grew += (len(seen) - before) * (VALUE_BYTES + 24)
            at += 1
        elif f == "rows":
            states[slot] += n
        elif f == "count":
            states[slot] += raw[at]
            at += 1
        elif f == "sum":  # SQL's sum() is NULL when it saw no value
            if raw[at] is not None:
                s = states[slot]
                s[0] += raw[at]
                s[2] = 1
            at += 1
        elif f == "dyadic":
            s = states[slot]
            s[0] += raw[at] or 0
            s[1] += raw[at + 1] or 0
            s[2] += raw[at + 2]
            at += 3
        elif f in ("min", "max"):
            v, best = raw[at], states[slot]
            if v is not None and (best is None or (v < best if f == "min" else v > best)):
                states[slot] = v
            at += 1
    return grew


def _final(a: Agg, state: Any, warnings: Warnings, decode: Any) -> Any:
    f = a.func
    if f in ("distinct", "grouped"):
        return len(state)
    if f == "sum":
        if not state[2]:
            return None
        total = aggregates.Sum(False)
        total.add([state[0]])
        try:
            return total.result()
        except EvalError as exc:  # past the long range: ES|QL's warning, as the Python STATS gives it
            warnings.failure(a.call.src, exc.java_message)
            return None
    if f == "dyadic":
        if not state[2]:
            return None
        if state[1] > EXACT:
            raise Fallback()  # a partial sum might round: only the Python path's summation says how
        value = math.ldexp(float(state[0]), a.scale)
        return value / state[2] if a.average else value
    return state if f in ("rows", "count") else decode(state)


__all__ = ["Fallback", "Grouping", "Reader", "Surprise", "read_groups", "read_rows", "read_top"]
