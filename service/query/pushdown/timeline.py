"""An aggregate read through the time field's index, one time range at a time.

A STATS that reads nothing but the time field (``STATS COUNT(*) BY DATE_TRUNC(1 hour,
@timestamp)``, ``WHERE @timestamp > ... | STATS COUNT(*), MAX(@timestamp)``) is answered from
the store's index on that field alone (a few bytes a row, in time order), never the table
(the whole document a row). Measured over 1M documents, 168 hourly buckets: 55 ms, against
300 ms for the rowid slices' table scan with a GROUP BY and 124 ms for raw SQLite's own plan.

- Ranges, not GROUP BY: a range never crosses a bucket's edge, so it holds one group and
  its statement needs no GROUP BY (SQLite's sorter is most of a grouping's cost). With no
  key a range is any span. Its width adapts so that it holds about the control's slice of
  rows; empty stretches are jumped over (the next matching time is one index seek). The
  rows where the time is null are a range of their own.
- The same rows: the ranges run in one read transaction, the snapshot the scan's bounds were
  taken in, so they see exactly the rows that existed when the query started.
- The same answer: each range's statement is the rowid slice's (the same key, partial
  states, WHERE) over other bounds, merged as the slices' are; groups are then put in the
  order the rowid scan meets them, by each one's first rowid.
- The same counters: every row of the index is counted as scanned once, in the range that
  holds it (the rows a WHERE drops too, as the Python scan counts them); a stop ends the
  ranges and keeps what was read.
- The store writes the time field as integers (epoch ms or ns), a multi-value as a BLOB
  (its field is ``multi_valued``, never pushed). A range bound that is not an integer sends
  the query to Python.

Worth it only where ranges hold many rows: each costs two statements, against about a
quarter of a microsecond a row saved. Buckets are used when the index holds at least
``MIN_BUCKET_ROWS`` rows per bucket of its time span (fewer buckets may hold rows, never
more).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Iterator

from ...store.catalog import TIMESTAMP_FIELD, Index
from ...store.sql import quote
from ..control import Control
from .planner import Statement

MAX_INT = 2**63 - 1
MIN_BUCKET_ROWS = 128


class NotInteger(Exception):
    """A time that is not an integer: the ranges cannot hold it."""


@dataclass
class Timeline:
    """One index's statements over time ranges ``:a..:b`` (inclusive)."""

    range_sql: str  # the slice statement over a range
    null_sql: str  # the same over the rows whose time is null
    next_sql: str  # the first time at or after ``:a`` that the WHERE keeps
    count_sql: str | None  # the rows of ``:a..:b`` (None: no WHERE, every row is counted by the statement)
    null_count_sql: str | None
    rest_count_sql: str | None  # the rows at or after ``:a``
    step: int | None  # the bucket's length, or None: no key
    first: int
    last: int
    count_at: int  # the statement's count(*) column


def reads(sql: str, aliases: list[str]) -> set[str]:
    """The source's column aliases ``sql`` names (literals are bound as parameters, so a
    name in the text is a column)."""
    return set(re.findall(r"\b(?:" + "|".join(map(re.escape, aliases)) + r")\b", sql)) if aliases else set()


def plan(conn: sqlite3.Connection, index: Index, st: Statement, alias: str, count: int,
         items: list[str]) -> Timeline | None:
    """The timeline of ``index`` for ``st`` (which reads only the time field, as ``alias``), or
    None when the index lacks the time index or its buckets would hold too few rows."""
    g = st.grouping
    assert g is not None
    column = index.columns.get(TIMESTAMP_FIELD)
    if column is None or not _indexed(conn, index.table, column):
        return None
    table = quote(index.table)
    first, last = conn.execute(f"SELECT (SELECT min({quote(column)}) FROM {table}), "
                               f"(SELECT max({quote(column)}) FROM {table})").fetchone()
    if type(first) is not int or type(last) is not int:
        return None  # no time at all, or one the ranges cannot hold: the rowid slices read them
    step = g.floor[1] if g.keys else None
    if step is not None and count < MIN_BUCKET_ROWS * ((last - last % step - (first - first % step)) // step + 1):
        return None
    source = f"(SELECT rowid AS r, {quote(column)} AS {alias} FROM {table})"
    where = " AND ".join(["{bounds}", *st.where])
    select = f"SELECT {', '.join(items)} FROM {source} WHERE {where}"
    counting = bool(st.where)
    counted = f"SELECT count(*) FROM {source} WHERE {{bounds}}"
    return Timeline(
        select.format(bounds=f"{alias} >= :a AND {alias} <= :b"), select.format(bounds=f"{alias} IS NULL"),
        f"SELECT min({alias}) FROM {source} WHERE {where.format(bounds=f'{alias} >= :a')}",
        counted.format(bounds=f"{alias} >= :a AND {alias} <= :b") if counting else None,
        counted.format(bounds=f"{alias} IS NULL") if counting else None,
        counted.format(bounds=f"{alias} >= :a") if counting else None,
        step, first, last, len(g.keys) + 1)


def _indexed(conn: sqlite3.Connection, table: str, column: str) -> bool:
    """Whether an index of ``table`` starts with ``column`` (the store gives the time field one)."""
    return conn.execute("SELECT 1 FROM pragma_index_list(?) AS l, pragma_index_info(l.name) AS i "
                        "WHERE i.seqno = 0 AND i.name = ?", (table, column)).fetchone() is not None


def ranges(conn: sqlite3.Connection, t: Timeline, params: dict[str, Any], control: Control,
           count: int) -> Iterator[list[tuple]]:
    """Each range's rows (the null times first, then ascending), counted as scanned."""
    if not control.proceed():
        control.cut_short = True
        return
    rows = conn.execute(t.null_sql, params).fetchall()
    control.scanned(_rows(conn, t, t.null_count_sql, params, rows))
    yield rows
    width = max(1, (t.last - t.first + 1) * control.slice_rows // max(count, 1))
    lo = t.first  # every row before it is counted
    while True:
        at = conn.execute(t.next_sql, {**params, "a": lo}).fetchone()[0]
        if at is None:
            break
        if type(at) is not int:
            raise NotInteger()
        hi = at + width - 1
        if t.step is not None:  # within the bucket of ``at``
            hi = min(hi, at - at % t.step + t.step - 1)
        hi = min(hi, MAX_INT)
        if not control.proceed():
            control.cut_short = True
            return
        bounds = {**params, "a": lo, "b": hi}
        rows = conn.execute(t.range_sql, {**bounds, "a": at}).fetchall()
        n = _rows(conn, t, t.count_sql, bounds, rows)
        control.scanned(n)
        yield rows
        width = max(1, min(2 * width, (hi - at + 1) * control.slice_rows // max(n, 1)))
        if hi == MAX_INT:
            return
        lo = hi + 1
    if t.rest_count_sql is not None:  # the rows after the last the WHERE keeps
        control.scanned(conn.execute(t.rest_count_sql, {**params, "a": lo}).fetchone()[0])


def _rows(conn: sqlite3.Connection, t: Timeline, count_sql: str | None, params: dict[str, Any],
          rows: list[tuple]) -> int:
    """The rows a range holds: the statement counted them all, unless a WHERE dropped some."""
    if count_sql is None:
        return sum(raw[t.count_at] for raw in rows)
    return conn.execute(count_sql, params).fetchone()[0]
