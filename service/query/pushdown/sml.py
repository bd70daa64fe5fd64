"""SML's storage prefix inside SQLite: its leading searches as SQL, and ``stats`` over them.

SML is dynamically typed (``sml/dialect.py``): a search term compares case-insensitively,
reads numeric-looking strings as numbers and matches any value of an array, which the
statically typed ``compiler`` does not say. Its terms are translated here instead, exactly:

- each term is a ``CASE`` over the stored value: NULL never matches; where the value's
  storage class makes a plain SQL test provably the Python rule (a number compared with a
  number, an ASCII string compared case-insensitively with ``COLLATE NOCASE``, a string of
  ASCII digits read as an integer, an ASCII string without digits that no number matches),
  that test; anything else (a multi-value, non-ASCII text, wildcards, a date written as
  text) asks the Python term itself, registered as a deterministic SQL function
  (``esquire_sml_term``) over the decoded value. Every arm is 0 or 1, so ``AND``/``OR``/
  ``NOT`` are SQL's; full-text terms (every column) are not translated.
- a scan of events keeps the Python ``Search`` after it, so the condition only spares
  SQLite's rows the decoding (``prefilter``); ``stats`` counts what SQL lets through, so
  it is pushed only when every leading search translates.

``stats`` (``count``, ``count(f)``, by fields of the source) runs as a GROUP BY per time
slice, newest slice first, the order ``source`` emits events in: a stop between slices
answers exactly over the events read, as the Python path does, and the progress moves.
``qsize`` counts matching events: the slice that would pass it is read again as the
newest ``qsize`` events left (``ORDER BY`` time descending, then ``_index`` and ``_id``
ascending, spec §7.1) before grouping. A multi-valued key is grouped by its stored array,
which then counts once for each of its distinct values, as the Python aggregate's groups
do; the null group is kept, for the plan's next step to drop.
"""

from __future__ import annotations

import itertools
import sqlite3
from sys import getsizeof
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Callable, Iterator

import orjson

from ...store.catalog import Index
from ...store.sql import quote
from .. import plan as p
from .. import types as T
from ..breaker import Reservation, released
from ..evaluate import Scope, Warnings, compile_expr
from ..expr import Call, Column, Expr, Literal, Logical, Not, Star
from .timeline import _indexed

if TYPE_CHECKING:
    from ..execute import Context, Relation

TERM_FUNCTION = "esquire_sml_term"
NUMBERS = ("integer", "long", "double")  # stored as SQL numbers (not unsigned_long: text past 2**63)
STRINGS = ("keyword", "text")
PLAIN_ASCII = "NOT {c} GLOB '*[^ -~]*'"  # printable ASCII only: NOCASE folds exactly what lower() does
DIGITS = "NOT {c} GLOB '*[^0-9]*' AND length({c}) BETWEEN 1 AND 18"  # an integer string within 64 bits
NO_DIGIT = "NOT {c} GLOB '*[0-9]*'"
GROUP_BYTES = 104 + 120  # a group's dict entry, its key tuple and its list of states
VALUE_BYTES = 64  # a distinct value kept for dc: its set slot and the value


class Untranslatable(Exception):
    """A search condition SQL cannot decide (a full-text term)."""


@dataclass
class Terms:
    """The Python terms a statement asks (``esquire_sml_term(k, value)``) and the parameters
    of its literals; ``register`` puts the function on a connection."""

    dialect: Any  # the query's dialect (``now`` fixed at the task's creation)
    now_ms: int
    kinds: dict[str, str]  # source field -> its type
    matchers: list[Callable[[Any], bool]]
    params: list[Any]

    def register(self, conn: sqlite3.Connection) -> None:
        matchers = self.matchers

        def term(k: int, value: Any) -> int:
            return 1 if matchers[k](value) else 0
        conn.create_function(TERM_FUNCTION, 2, term, deterministic=True)

    def bind(self, value: Any) -> str:
        self.params.append(value)
        return "?"

    def python(self, term: Any, kind: str) -> str:
        """The term judged by its Python rule, over the stored value decoded as the scan does."""
        from ..execute import _decoder

        fn, _ = compile_expr(replace(term, field="v"), Scope(["v"], [kind], Warnings(), self.dialect))
        decode = _decoder(kind)
        self.matchers.append(lambda raw: fn([decode(raw)]) is True)
        return f"{TERM_FUNCTION}({len(self.matchers) - 1}, {{c}})"


def condition(expr: Expr, columns: dict[str, str], terms: Terms) -> str:
    """``expr`` (a resolved search condition) as a 0/1 SQL condition over ``columns`` (field
    -> its SQL); raises ``Untranslatable``."""
    from ..sml.ast import Term

    if isinstance(expr, Literal) and type(expr.value) is bool:
        return "1" if expr.value else "0"
    if isinstance(expr, Logical):
        return f"({condition(expr.left, columns, terms)} {expr.op} {condition(expr.right, columns, terms)})"
    if isinstance(expr, Not):
        return f"(NOT {condition(expr.value, columns, terms)})"
    if isinstance(expr, Term):
        if expr.field == "_id":
            return _term(expr, "_id", "keyword", terms)
        if expr.field == "_index":
            raise Untranslatable(expr)  # one value per table: not worth a statement of its own
        column = columns.get(expr.field)
        kind = terms.kinds.get(expr.field, "unsupported")
        if column is None or kind == "unsupported":
            return "0"  # the rows hold null there: every form of term needs its field
        if kind == T.ANY:
            raise Untranslatable(expr)  # each index's values of it are decoded by their own type
        return _term(expr, column, kind, terms)
    raise Untranslatable(expr)


def _term(term: Any, column: str, kind: str, terms: Terms) -> str:
    python = terms.python(term, kind)
    arms = _plain(term, kind, terms)
    cases = "".join(f" WHEN {when} THEN {then}" for when, then in arms)
    return f"(CASE WHEN {{c}} IS NULL THEN 0{cases} ELSE {python} END)".format(c=column)


def _plain(term: Any, kind: str, terms: Terms) -> list[tuple[str, str]]:
    """(when, then) arms where a plain SQL test is the term's Python rule, ``{c}`` the value."""
    from ..sml.dialect import _date_term
    from ..sml.values import LONG_MAX, LONG_MIN, number

    op, value = term.op, term.value
    if op == "=" and value == "*":
        return [("typeof({c}) <> 'blob'", "1")]
    if type(value) is str and "*" in value:
        return []
    wanted = number(value)
    if type(wanted) is int and not LONG_MIN <= wanted <= LONG_MAX:
        return []  # SQLite binds no integer past 64 bits: the Python term decides
    negated = op == "!="
    if kind in NUMBERS or kind == "date":
        stored = "typeof({c}) IN ('integer', 'real')" if kind in NUMBERS else "typeof({c}) = 'integer'"
        if op in ("=", "!="):
            if wanted is None:
                # a number's text is numeric-looking: no number equals a non-numeric term
                return [(stored, "1" if negated else "0")] if kind in NUMBERS else []
            return [(stored, f"{{c}} {'<>' if negated else '='} {terms.bind(wanted)}")]
        bound = wanted if wanted is not None else \
            _date_term(value, kind, terms.now_ms, round_up=op in ("<=", ">")) if kind == "date" else None
        return [] if bound is None else [(stored, f"{{c}} {op} {terms.bind(bound)}")]
    if kind in STRINGS and op in ("=", "!="):
        text = "typeof({c}) = 'text' AND "
        if wanted is None:
            test = f"{{c}} = {terms.bind(str(value))} COLLATE NOCASE"
            return [(text + PLAIN_ASCII, f"NOT ({test})" if negated else test)]
        if type(wanted) is not int:
            return []
        test = f"CAST({{c}} AS INTEGER) = {terms.bind(wanted)}"
        return [(text + DIGITS, f"NOT ({test})" if negated else test),
                (text + PLAIN_ASCII + " AND " + NO_DIGIT, "1" if negated else "0")]
    return []


# --- the scan's prefilter ----------------------------------------------------------------------

def searches(rest: list[p.Step]) -> list[Expr]:
    """The conditions of the ``search`` steps right after the source."""
    from ..sml.plan import Search

    out = []
    for step in rest:
        if not isinstance(step, Search):
            break
        out.append(step.condition)
    return out


def prefilter(conditions: list[Expr], terms: Terms, index: Index) -> tuple[str, list[Any]] | None:
    """A condition on ``index``'s table that the leading searches' events satisfy (each
    search that translates: a full-text one is left to Python)."""
    columns = {name: quote(col) for name, col in index.columns.items()}
    terms.params.clear()
    parts = []
    for expr in (c for search in conditions for c in _conjuncts(search)):
        try:
            parts.append(condition(expr, columns, terms))
        except Untranslatable:
            continue  # a superset still: the other conjuncts narrow
    if not parts:
        return None
    return " AND ".join(parts), list(terms.params)


def _conjuncts(expr: Expr) -> list[Expr]:
    if isinstance(expr, Logical) and expr.op == "AND":
        return _conjuncts(expr.left) + _conjuncts(expr.right)
    return [expr]


# --- stats -----------------------------------------------------------------------------------

@dataclass
class Stats:
    """A pushed ``stats``: its keys (field, type), aggregates (name, kind: see
    ``_pushed_kind``, field), the output columns and types, the leading conditions, and
    what of the plan it replaces."""

    keys: list[tuple[str, str]]
    aggregates: list[tuple[str, str, str | None]]
    names: list[str]
    types: list[str]
    conditions: list[Expr]
    qsize: int | None
    default_qsize: bool
    consumed: int


def plan_stats(rest: list[p.Step], kinds: dict[str, str], multi: set[str], ctx: Context) -> Stats | None:
    """The pushable ``[search...] | qsize | stats`` front of ``rest``, or None."""
    from ..sml.source import Qsize

    conditions = searches(rest)
    at = len(conditions)
    qsize, default = None, False
    if at < len(rest) and isinstance(rest[at], Qsize):
        qsize, default = rest[at].count, rest[at].default
        at += 1
    if at >= len(rest) or not isinstance(rest[at], p.Aggregate):
        return None
    step = rest[at]
    names = list(kinds)
    scope = Scope(names, [kinds[n] for n in names], Warnings(), ctx.dialect)
    keys = []
    for name, expr in step.groups:
        if not isinstance(expr, Column) or expr.name != name or kinds.get(name) not in (*NUMBERS, *STRINGS,
                                                                                           "date", "boolean"):
            return None
        keys.append((name, kinds[name]))
    aggregates, types = [], []
    for name, call, cond in step.aggregates:
        kind = _pushed_kind(call, cond, kinds, multi)
        if kind is None:
            return None
        args = [a for a in call.args if not isinstance(a, Star)]
        aggregates.append((name, kind, args[0].name if args else None))
        types.append(ctx.dialect.aggregate(call, scope, _meter())[3])
    return Stats(keys, aggregates, [n for n, _, _ in aggregates] + [n for n, _ in keys],
                 types + [k for _, k in keys], conditions, qsize, default, at + 1)


# aggregate -> (what each computes per slice, the field types it is pushed for: SML reads a
# number or a string of them as SQL does, and a field that never held a multi-value)
AGGREGATES = {"count": ("present", None), "dc": ("distinct", ("keyword", "text", "integer", "long", "date")),
              "distinct_count": ("distinct", ("keyword", "text", "integer", "long", "date")),
              "min": ("min", (*NUMBERS, "date")), "max": ("max", (*NUMBERS, "date"))}


def _pushed_kind(call: Expr, cond: Expr | None, kinds: dict[str, str], multi: set[str]) -> str | None:
    """How a ``stats`` aggregate runs in SQL: ``rows`` (count), ``present`` (count(f)),
    ``distinct`` (dc), ``min``, ``max``; None when it is not pushed."""
    if cond is not None or not isinstance(call, Call) or call.name not in AGGREGATES:
        return None
    args = [a for a in call.args if not isinstance(a, Star)]
    if not args:
        return "rows" if call.name == "count" else None
    if len(args) != 1 or not isinstance(args[0], Column) or kinds.get(args[0].name, "unsupported") == "unsupported":
        return None
    kind, accepted = AGGREGATES[call.name]
    if accepted is not None and (kinds[args[0].name] not in accepted or args[0].name in multi):
        return None
    return kind


def _meter() -> Any:
    from .. import aggregates
    return aggregates.Meter()


class Slices:
    """The statements of a pushed ``stats`` over the indices, and their reading, newest
    slice first."""

    def __init__(self, conn: sqlite3.Connection, indices: list[Index], field: str, st: Stats,
                 terms: Terms, gte: int | None, lt: int | None) -> None:
        self.conn, self.indices, self.st, self.terms = conn, indices, st, terms
        self.tables = [(quote(ix.table), quote(ix.columns[field])) for ix in indices]
        self.gte, self.lt = gte, lt
        self.where: list[tuple[str, list[Any]]] = []
        for ix in indices:
            terms.params.clear()
            columns = {name: quote(col) for name, col in ix.columns.items()}
            conds = [condition(c, columns, terms) for c in st.conditions]
            self.where.append((" AND ".join(conds) or "1", list(terms.params)))

    def _value(self, ix: Index, name: str | None) -> str:
        column = ix.columns.get(name) if name is not None else None
        return quote(column) if column is not None else "NULL"

    def _items(self, pos: int, inner: bool) -> list[str]:
        """A group's columns: its keys, its rows, each aggregate's partial count (over the
        table's columns, or ``inner``: the cut subquery's ``k<i>``/``a<i>``)."""
        ix = self.indices[pos]
        keys = [f"k{i}" if inner else self._value(ix, name) for i, (name, _) in enumerate(self.st.keys)]
        items = [*keys, "count(*)"]
        for i, (_, kind, name) in enumerate(self.st.aggregates):
            items += _partials(kind, f"a{i}" if inner else self._value(ix, name))
        return items

    def group(self, pos: int, hi: int, lo: int) -> list[tuple]:
        """One index's groups over the times ``lo..hi``."""
        table, ts = self.tables[pos]
        return self._grouped(pos, f"{ts} >= ? AND {ts} <= ? AND typeof({ts}) = 'integer'", [lo, hi])

    def group_rowids(self, pos: int, after: int, upto: int, span: tuple[int, int] | None) -> list[tuple]:
        """One index's groups over the rowids ``after+1..upto`` whose time is in ``span``
        (newest, oldest; None: every row is in the range, see ``covered``), read along the
        table: ``+`` keeps SQLite off the time index."""
        table, ts = self.tables[pos]
        if span is None:
            return self._grouped(pos, "rowid > ? AND rowid <= ?", [after, upto])
        hi, lo = span
        return self._grouped(pos, f"rowid > ? AND rowid <= ? AND +{ts} >= ? AND +{ts} <= ? AND typeof({ts}) = "
                             "'integer'", [after, upto, lo, hi])

    def _grouped(self, pos: int, bounds: str, args: list[Any]) -> list[tuple]:
        table, ts = self.tables[pos]
        where, params = self.where[pos]
        items = self._items(pos, False)
        keys = ", ".join(items[:len(self.st.keys)])
        sql = f"SELECT {', '.join(items)} FROM {table} WHERE {bounds} AND {where}{f' GROUP BY {keys}' if keys else ''}"
        return self.conn.execute(sql, [*args, *params]).fetchall()

    def newest(self, hi: int, lo: int, n: int) -> list[tuple]:
        """The groups of the newest ``n`` matching events of ``lo..hi`` over every index, in
        the source's order (time descending, then ``_index``, ``_id``)."""
        parts, params = [], []
        for pos, ix in enumerate(self.indices):
            table, ts = self.tables[pos]
            where, args = self.where[pos]
            values = [f"{self._value(ix, name)} AS k{i}" for i, (name, _) in enumerate(self.st.keys)]
            values += [f"{self._value(ix, name)} AS a{i}" for i, (_, _, name) in enumerate(self.st.aggregates)]
            parts.append(f"SELECT {', '.join([f'{ts} AS t', f'{pos} AS x', '_id AS d', *values])} FROM {table} "
                         f"WHERE {ts} >= ? AND {ts} <= ? AND typeof({ts}) = 'integer' AND {where}")
            params += [lo, hi, *args]
        keys = ", ".join(f"k{i}" for i in range(len(self.st.keys)))
        inner = f"SELECT * FROM ({' UNION ALL '.join(parts)}) ORDER BY t DESC, x, d LIMIT ?"
        sql = f"SELECT {', '.join(self._items(0, True))} FROM ({inner}){f' GROUP BY {keys}' if keys else ''}"
        return self.conn.execute(sql, [*params, n]).fetchall()

    def bounds(self) -> list[tuple[int, int]]:
        """Each index's rows and last rowid when the read starts (``execute._bounds``)."""
        from ..execute import _bounds
        return [_bounds(self.conn, ix) for ix in self.indices]

    def rows_between(self, pos: int, after: int, upto: int) -> int:
        return self.conn.execute(f"SELECT count(*) FROM {self.tables[pos][0]} WHERE rowid > ? AND rowid <= ?",
                                 (after, upto)).fetchone()[0]

    def rows_in(self, hi: int, lo: int) -> int:
        """The events of ``lo..hi`` (every index), found on the time index."""
        return sum(self.conn.execute(f"SELECT count(*) FROM {table} WHERE {ts} >= ? AND {ts} <= ? "
                                     f"AND typeof({ts}) = 'integer'", (lo, hi)).fetchone()[0]
                   for table, ts in self.tables)

    def any_in(self, hi: int, lo: int) -> bool:
        """Whether some event of ``lo..hi`` matches the searches."""
        for pos, (table, ts) in enumerate(self.tables):
            where, params = self.where[pos]
            if self.conn.execute(f"SELECT 1 FROM {table} WHERE {ts} >= ? AND {ts} <= ? AND typeof({ts}) = "
                                 f"'integer' AND {where} LIMIT 1", [lo, hi, *params]).fetchone():
                return True
        return False

    def span(self) -> tuple[int, int] | None:
        """The newest and oldest time of the range that any index holds (two seeks on each
        time index: ``max()`` and ``min()`` together under a range scan it whole)."""
        top, bottom = [], []
        lo = self.gte if self.gte is not None else -(2**63)
        hi = self.lt - 1 if self.lt is not None else 2**63 - 1
        for table, ts in self.tables:
            ends = [self.conn.execute(f"SELECT {ts} FROM {table} WHERE {ts} >= ? AND {ts} <= ? AND typeof({ts}) = "
                                      f"'integer' ORDER BY {ts} {order} LIMIT 1", (lo, hi)).fetchone()
                    for order in ("DESC", "ASC")]
            if ends[0] is not None:
                top.append(ends[0][0])
                bottom.append(ends[1][0])
        return (max(top), min(bottom)) if top else None

    def covered(self) -> bool:
        """Whether every row of every index has a time (an integer: a date column holds
        nothing else but NULL and a multi-value's BLOB) within the range: then the rows need
        no test of their time. Two seeks each: NULL sorts first, a BLOB or text last."""
        for table, ts in self.tables:
            first, last = (self.conn.execute(f"SELECT {ts} FROM {table} ORDER BY {ts} {order} LIMIT 1").fetchone()
                           for order in ("ASC", "DESC"))
            if first is None:
                continue  # an empty table
            if type(first[0]) is not int or type(last[0]) is not int:
                return False
            if (self.gte is not None and first[0] < self.gte) or (self.lt is not None and last[0] >= self.lt):
                return False
        return True

    def edge(self, hi: int, lo: int, rows: int) -> int:
        """The oldest time of the next slice: ``rows`` events back from ``hi`` in the index
        that gets there first (the slice holds every event of that time)."""
        edges = []
        for table, ts in self.tables:
            found = self.conn.execute(f"SELECT {ts} FROM {table} WHERE {ts} >= ? AND {ts} <= ? AND typeof({ts}) = "
                                      f"'integer' ORDER BY {ts} DESC LIMIT 1 OFFSET ?", (lo, hi, rows - 1)).fetchone()
            if found is not None:
                edges.append(found[0])
        return max(edges) if edges else lo


def run_stats(step: p.Source, rest: list[p.Step], ctx: Context, indices: list[Index], kinds: dict[str, str],
              terms: Terms) -> tuple[Relation, int] | None:
    """The front ``[search...] | qsize | stats`` of ``rest`` in SQL, or None when it is not
    pushable (then nothing was read)."""
    from ..execute import Relation, _dedupe_names

    st = plan_stats(rest, kinds, {name for ix in indices for name in ix.multi_valued}, ctx)
    if st is None or step.time_range is None or step.order is None:
        return None
    field = step.time_range.field
    if any(field not in ix.columns or not _indexed(ctx.conn, ix.table, ix.columns[field]) for ix in indices):
        return None
    try:
        slices = Slices(ctx.conn, indices, field, st, terms, step.time_range.gte, step.time_range.lt)
    except Untranslatable:
        return None
    terms.register(ctx.conn)
    groups: dict[tuple, list[Any]] = {}
    held = Reservation(ctx.breaker(rest[st.consumed - 1]))  # the stats step's
    after = rest[st.consumed:]

    def relation(groups: dict[tuple, list[Any]]) -> Relation:
        return _dedupe_names(Relation(st.names, st.types, list(_outputs(groups, st))))

    def preview(groups: dict[tuple, list[Any]]) -> None:
        """Between slices, a preview asked for: the rest of the plan over the groups so far."""
        if ctx.control.preview_due():
            ctx.preview(relation(groups), after)
    try:
        _read(slices, st, ctx, groups, held, preview)
        rel = relation(groups)
    except BaseException:
        held.close()
        raise
    return rel.with_rows(released(rel.rows, held)), st.consumed


def _read(slices: Slices, st: Stats, ctx: Context, groups: dict[tuple, list[Any]], held: Reservation,
          preview: Callable[[dict[tuple, list[Any]]], None]) -> None:
    """Every slice's groups merged into ``groups`` (key -> [rows, states...]) until a stop.
    When the range holds no more events than ``qsize`` (none is cut) and at least half the
    tables' rows, they are read in rowid slices, as ES|QL's pushed STATS reads them (along
    the table: a third faster than through the time index), and with no test of their time
    when every row is in the range (``covered``, found without a count); else newest slice
    first, until ``qsize`` events matched."""
    control = ctx.control
    control.phase = "running"
    bounds = slices.bounds()
    rows = sum(count for count, _ in bounds)
    if (st.qsize is None or rows <= st.qsize) and slices.covered():
        _by_rowids(slices, bounds, None, ctx, groups, held, preview)
        return
    span = slices.span()
    total = 0 if span is None else slices.rows_in(*span)
    if span is None:
        control.rows_total = 0
    elif (st.qsize is None or total <= st.qsize) and 2 * total >= rows:
        _by_rowids(slices, bounds, span, ctx, groups, held, preview)
    else:
        control.rows_total = total
        _by_time(slices, span, st, ctx, groups, held, preview)


def _by_rowids(slices: Slices, bounds: list[tuple[int, int]], span: tuple[int, int] | None, ctx: Context,
               groups: dict[tuple, list[Any]], held: Reservation,
               preview: Callable[[dict[tuple, list[Any]]], None]) -> None:
    from ..execute import rowid_slices

    control = ctx.control
    control.rows_total = sum(count for count, _ in bounds)
    for pos, (count, top) in enumerate(bounds):
        dense = count == top
        for after, upto in rowid_slices(control, top):
            _merge(groups, slices.group_rowids(pos, after, upto, span), slices.st, held)
            control.scanned(upto - after if dense else slices.rows_between(pos, after, upto))
            preview(groups)
        if control.cut_short:
            return


def _by_time(slices: Slices, span: tuple[int, int], st: Stats, ctx: Context, groups: dict[tuple, list[Any]],
             held: Reservation, preview: Callable[[dict[tuple, list[Any]]], None]) -> None:
    control = ctx.control
    hi, bottom = span
    left = st.qsize or 0
    width = len(st.keys)
    while hi >= bottom:
        if not control.proceed():
            control.cut_short = True
            break
        lo = slices.edge(hi, bottom, control.slice_rows)
        found = [row for pos in range(len(slices.indices)) for row in slices.group(pos, hi, lo)]
        matched = sum(row[width] for row in found)
        cut = matched > left
        if cut:
            found = slices.newest(hi, lo, left)
            matched = left
        control.scanned(slices.rows_in(hi, lo) if st.conditions else matched)
        _merge(groups, found, st, held)
        preview(groups)
        left -= matched
        if left == 0:
            if st.default_qsize and (cut or (lo > bottom and slices.any_in(lo - 1, bottom))):
                ctx.warnings.add(default_qsize_warning(st.qsize or 0))
            return
        hi = lo - 1


def default_qsize_warning(qsize: int) -> str:
    return f"source stopped at the default qsize of {qsize} events; set qsize= for more"


def _partials(kind: str, v: str) -> list[str]:
    """One aggregate's columns in a slice's groups (``count(*)``, the group's rows, is always there)."""
    numbers, texts = f"CASE WHEN typeof({v}) IN ('integer', 'real') THEN {v} END", \
        f"CASE WHEN typeof({v}) = 'text' THEN {v} END"
    return {"rows": [], "present": [f"sum({v} IS NOT NULL AND {v} IS NOT X'5B5D')"],  # an empty array is none
            "distinct": [f"json_group_array(DISTINCT {v})"],
            # the numbers' extreme, else the strings' (SML's min/max: strings only when no number)
            "min": [f"min({numbers})", f"min({texts})"], "max": [f"max({numbers})", f"max({texts})"]}[kind]


def _states(st: Stats, row: tuple, at: int) -> list[Any]:
    """A group's states from a slice's row (its partial columns from ``at``): the rows, then
    one per aggregate."""
    states: list[Any] = [row[at]]
    at += 1
    for _, kind, _ in st.aggregates:
        if kind == "present":
            states.append(row[at] or 0)
        elif kind == "distinct":
            states.append(set(orjson.loads(row[at])) - {None})
        elif kind in ("min", "max"):
            states.append(list(row[at:at + 2]))
        else:
            states.append(None)
        at += len(_partials(kind, ""))
    return states


def _combined(st: Stats, a: list[Any], b: list[Any]) -> list[Any]:
    """Two states of a group as one (new objects: a state may be shared by the groups of
    a multi-valued key)."""
    out = [a[0] + b[0]]
    for (_, kind, _), x, y in zip(st.aggregates, a[1:], b[1:]):
        if kind == "present":
            out.append(x + y)
        elif kind == "distinct":
            out.append(x | y)
        elif kind in ("min", "max"):
            pick = min if kind == "min" else max
            out.append([u if v is None else v if u is None else pick(u, v) for u, v in zip(x, y)])
        else:
            out.append(None)
    return out


def _final(kind: str, state: Any, rows: int) -> Any:
    if kind == "rows":
        return rows
    if kind == "distinct":
        return len(state)
    if kind in ("min", "max"):
        return state[0] if state[0] is not None else state[1]
    return state


def _held(states: list[Any]) -> int:
    return sum(VALUE_BYTES * len(s) for s in states if type(s) is set)


def _merge(groups: dict[tuple, list[Any]], found: list[tuple], st: Stats, held: Reservation) -> None:
    """A slice's groups added to ``groups``; what they grew by is charged to the breaker."""
    width = len(st.keys)
    grew = 0
    for row in found:
        key = row[:width]
        states = _states(st, row, width)
        before = groups.get(key)
        if before is None:
            grew += GROUP_BYTES + sum(map(getsizeof, key)) + _held(states)
            groups[key] = states
        else:
            grew -= _held(before)
            groups[key] = _combined(st, before, states)
            grew += _held(groups[key])
    if grew:
        held.hold(held.bytes + grew)


def _outputs(groups: dict[tuple, list[Any]], st: Stats) -> Iterator[list[Any]]:
    """The output rows (aggregates, then keys): a stored array key counts in one group per
    distinct value (an empty one in the null group); without keys, one row even over no events."""
    from ..execute import _decoder, group_values

    if not st.keys and not groups:
        groups = {(): [0, *(0 if k == "present" else set() if k == "distinct" else [None, None] if k in ("min", "max")
                            else None for _, k, _ in st.aggregates)]}
    decoders = [_decoder(kind) for _, kind in st.keys]
    results = [_decoder(kind) for kind in st.types[:len(st.aggregates)]]
    merged: dict[tuple, list[Any]] = {}
    for key, states in groups.items():
        values = [dec(v) for dec, v in zip(decoders, key)]
        choices = [group_values(v) for v in values]
        for combo in itertools.product(*choices):
            before = merged.get(combo)
            merged[combo] = states if before is None else _combined(st, before, states)
    for key, states in merged.items():
        yield [*(dec(_final(kind, state, states[0])) for (_, kind, _), state, dec in
                 zip(st.aggregates, states[1:], results)), *key]


__all__ = ["Terms", "default_qsize_warning", "prefilter", "run_stats", "searches"]
