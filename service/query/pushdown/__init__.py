"""Running the front of a plan as SQL inside SQLite, where that gives exactly the Python answer.

``push`` plans the longest prefix of the steps after the source that SQL answers exactly
(``planner``, ``compiler``), runs it over the Python scan's rowid slices (``runner``) and
hands the rest of the pipeline a ``Relation``, or returns None and the Python path runs
everything. A surprise met while reading (a guard: overflow, division by zero; SQLite's
``sum()`` overflowing; a double sum past the exact range) ends the pushed run before any
row was handed on, and the query runs again in Python with the scan counters reset.
SQLite-specific text lives in ``dialect``; all the query SQL is in this package, SML's
own (its dynamically typed searches and ``stats`` over them, in newest-first slices) in
``sml``.

What it takes to be exact, beyond the rules in ``compiler``:

- ``Index.multi_valued``: a field that ever held a multi-value is never compared,
  aggregated, sorted or grouped in SQL (each of those treats a multi-value its own way);
  it may still pass through to the Python steps, decoded as the scan decodes it.
- Row order: rows mode returns each slice in rowid order; top-N breaks ties by scan
  order (index, then rowid), as the Python top-N's stable sort; STATS groups come out in
  the order the Python STATS first meets them, the null group first for one key.
- ``documents_found`` / ``is_partial``: every row of every slice read is counted, matched
  or not, as the Python scan counts it; a stop ends the slices and keeps what was read.
- Double SUM / AVG: the Python path sums doubles with Neumaier's compensated summation;
  SQLite 3.40's ``sum()`` is naive, so the two can differ in the last bits. Decision: push
  SUM / AVG only where both are provably the exact sum: an integer expression, or one
  scaled by a constant power of two (``bytes / 1024.0``), summed in SQL as the integer
  (exact, 64-bit; overflow falls back), with the sum of magnitudes checked to stay within
  2**53 at the end (else fall back). Inside that bound every partial sum is a representable
  double, so the compensated sum is the exact sum and the bound on the difference is zero.
  Any other double SUM / AVG runs in Python.

``profile`` describes what ran (the SQL, then the Python operators after it) in the shape
of Elasticsearch's ES|QL profile, for ``"profile": true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...store.catalog import TIMESTAMP_FIELD, Index
from .. import plan as p
from .compiler import Col, Compiler, NotPushable
from .dsl import filter_sql
from .dialect import SqliteDialect
from .planner import plan_prefix
from .prefilter import prefilter
from .runner import Fallback, Reader, meta_alias, read_groups, read_rows, read_top

if TYPE_CHECKING:
    from ..execute import Context

__all__ = ["Pushed", "prefilter", "profile", "push"]


@dataclass
class Pushed:
    relation: Any  # execute.Relation
    rest: list[p.Step]  # the steps the Python pipeline still runs
    sql: str


def source_columns(indices: list[Index], names: list[str], types: list[str],
                   metadata: tuple[str, ...]) -> list[Col]:
    """The source relation as SQL sees it: field ``i`` is ``f<i>`` of ``runner.source_sql``."""
    columns = []
    for i, (name, kind) in enumerate(zip(names, types)):
        multi = any(name in index.multi_valued for index in indices)
        columns.append(Col(name, kind, None if kind == "unsupported" else f"f{i}", multi))
    from ..execute import METADATA
    columns += [Col(m, METADATA[m], meta_alias(m)) for m in metadata]
    return columns


def push(steps: list[p.Step], indices: list[Index], names: list[str], types: list[str], metadata: tuple[str, ...],
         ctx: Context) -> Pushed | None:
    """Run the pushable prefix of ``steps`` (after the source, and the request's Query DSL
    ``ctx.source_filter``) as SQL, or None when there is none (or SQL met a surprise: the
    control's counters are then as before)."""
    from ..execute import Relation, _dedupe_names, observed_columns

    conn, control, warnings, source_filter = ctx.conn, ctx.control, ctx.warnings, ctx.source_filter
    if any(m in names for m in metadata):
        return None
    dialect = SqliteDialect()
    columns = source_columns(indices, names, types, metadata)
    time_sql = next((c.sql for c in columns if c.name == TIMESTAMP_FIELD), None)
    st = plan_prefix(steps, columns, dialect, ctx, time_sql)
    if source_filter is not None:
        try:
            st.where.insert(0, filter_sql(source_filter, names, types, columns,
                                          Compiler(dialect, ctx.dialect, columns, st.params, eager=False)))
        except NotPushable:
            return None
    elif not st.consumed:
        return None
    rest = steps[st.consumed:]
    cols = st.columns
    seen = observed_columns(rest, [c.name for c in cols])
    wanted = [i for i, c in enumerate(cols) if c.sql is not None and (seen is None or c.name in seen)]
    name_index = {n: i for i, (n, t) in enumerate(zip(names, types)) if t != "unsupported"}
    reader = Reader(conn, indices, name_index, metadata, st, control, dialect, wanted, time_sql)
    rel_names, rel_types = [c.name for c in cols], [c.type for c in cols]
    try:
        if st.mode == "aggregate":
            out_names, out_types, rows = read_groups(reader, warnings)
            rel = _dedupe_names(Relation(out_names, out_types, rows))
        elif st.mode == "topn":
            rel = Relation(rel_names, rel_types, read_top(reader, cols, wanted), st.constants)
        else:
            rel = Relation(rel_names, rel_types, read_rows(reader, cols, wanted), st.constants)
    except Fallback:
        control.rows_scanned = 0
        control.cut_short = False
        return None
    return Pushed(rel, rest, reader.sqls[0] if reader.sqls else "")


def profile(pushed: Pushed | None, rest: list[p.Step], source: str = "ScanOperator[rowid slices]") -> dict[str, Any]:
    """What ran, as Elasticsearch's profile shows drivers and their operators: the SQL
    statement (or the Python ``source``), then each Python step after it."""
    first = f"SqliteQueryOperator[sql={pushed.sql}]" if pushed else source
    operators = [{"operator": first}] + [{"operator": f"{type(step).__name__}Operator"} for step in rest]
    return {"drivers": [{"description": "main", "operators": operators}]}

