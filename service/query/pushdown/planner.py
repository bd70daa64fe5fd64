"""The longest prefix of a plan that SQL can run exactly, as one ``Statement``.

The prefix is read step by step after the source: WHERE conditions become conjuncts,
EVAL fields become SQL expressions that later steps inline, KEEP / DROP / RENAME reshape
the column list (through the Python operators themselves, over one row of positions),
and it ends at the first step SQL cannot run, or after the one that decides the shape of
what SQL returns: a STATS (per-slice GROUP BY), a SORT that a LIMIT bounds (per-slice
top-N) or a LIMIT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import plan as p
from ..evaluate import walk
from ..expr import Binary, Call, Column, Expr, Logical, Star
from .compiler import ORDERED, Col, Compiler, NotPushable
from .dialect import SqliteDialect

if TYPE_CHECKING:
    from ..execute import Context

PUSHED_AGGREGATES = ("COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX")
GROUPABLE = (*ORDERED, "ip", "version")  # grouped by stored value: equal values, equal text


@dataclass
class Agg:
    """One pushed aggregate. ``func`` is what the slices compute: ``rows`` (COUNT(*)),
    ``count``, ``distinct`` (a JSON array of a slice's values), ``grouped`` (COUNT_DISTINCT
    of doubles: its argument is grouped on too), ``sum`` (of integers), ``dyadic`` (SUM or AVG of integers
    times ``2**scale``, summed exactly), ``min``, ``max``."""

    name: str
    func: str
    sql: str | None
    type: str
    call: Call
    average: bool = False
    scale: int = 0


@dataclass
class Grouping:
    keys: list[tuple[str, str, str]]  # output name, SQL, type
    aggs: list[Agg]
    distinct: str | None  # the one COUNT_DISTINCT argument, grouped on too
    floor: tuple[str, int] | None = None  # the one key, when it is a fixed-length bucket: its value's SQL, step


@dataclass
class Order:
    sql: str
    ascending: bool
    nulls_first: bool


@dataclass
class Statement:
    """What SQL runs per slice, and where the Python pipeline takes over."""

    columns: list[Col]  # the relation after the prefix (rows and top-N modes)
    constants: dict[str, Any]
    where: list[str]  # conjuncts
    params: dict[str, Any]
    consumed: int  # steps of the plan the statement replaces
    mode: str = "rows"  # rows | aggregate | topn
    limit: int | None = None
    orders: list[Order] = field(default_factory=list)
    grouping: Grouping | None = None
    ranges: list[str] = field(default_factory=list)  # the conjuncts bounding the time field (its index finds them)


def plan_prefix(steps: list[p.Step], columns: list[Col], dialect: SqliteDialect, ctx: Context,
                time_sql: str | None = None, eager: bool = True) -> Statement:
    """The statement for the longest pushable prefix of ``steps``. Guards are allowed only
    when the statement reads every slice before answering: if the prefix ends in plain rows,
    it is planned again without them."""
    from ..execute import sort_bound

    cap = ctx.options.max_rows
    comp = Compiler(dialect, ctx.dialect, list(columns), {}, eager)
    st = Statement(list(comp.columns), {}, [], comp.params, 0)
    for i, step in enumerate(steps):
        try:
            if isinstance(step, p.Filter):
                if comp.kind(step.condition) not in ("boolean", "null"):
                    raise NotPushable(step)
                # all of a WHERE or none: a condition left to Python would warn on fewer rows
                parts = [(comp.sql(c)[0], _time_bound(c, comp, time_sql)) for c in _conjuncts(step.condition)]
                st.where += [text for text, _ in parts]
                st.ranges += [text for text, bound in parts if bound]
            elif isinstance(step, p.Eval):
                _eval(step, comp)
            elif step.projection:
                _reshape(step, comp, ctx)
            elif isinstance(step, p.Aggregate):
                st.grouping, st.mode = _grouping(step, comp), "aggregate"
            elif isinstance(step, p.Sort):
                bound = sort_bound(steps[i + 1:], cap)
                if bound is None:
                    raise NotPushable(step)
                st.orders, st.mode, st.limit = [_order(o, comp) for o in step.orders], "topn", bound
            elif isinstance(step, p.Limit):
                st.limit = step.count
            else:
                raise NotPushable(step)
        except NotPushable:
            break
        st.columns, st.constants, st.consumed = list(comp.columns), dict(comp.constants), i + 1
        if st.mode != "rows" or st.limit is not None:
            break
    if st.mode == "rows" and eager and any(dialect.SURPRISE in text for text in _texts(st)):
        return plan_prefix(steps, columns, dialect, ctx, time_sql, eager=False)
    return st


def _conjuncts(expr: Expr) -> list[Expr]:
    if isinstance(expr, Logical) and expr.op == "AND":
        return _conjuncts(expr.left) + _conjuncts(expr.right)
    return [expr]


def _time_bound(expr: Expr, comp: Compiler, time_sql: str | None) -> bool:
    """Whether ``expr`` compares the source's time field with a constant."""
    if time_sql is None or not isinstance(expr, Binary) or expr.op not in ("<", "<=", ">", ">=", "=="):
        return False
    for column, other in ((expr.left, expr.right), (expr.right, expr.left)):
        if isinstance(column, Column) and comp.column(column.name).sql == time_sql and comp.constant(other)[0]:
            return True
    return False


def _texts(st: Statement) -> list[str]:
    return [*st.where, *(c.sql or "" for c in st.columns)]


def _eval(step: p.Eval, comp: Compiler) -> None:
    columns, constants = list(comp.columns), dict(comp.constants)
    try:
        for name, expr in step.fields:
            text, kind = comp.sql(expr)
            done, value = (False, None) if any(isinstance(e, Call) and e.name == "NOW" for e in walk(expr)) \
                else comp.constant(expr)
            comp.constants.pop(name, None)
            if done:
                comp.constants[name] = value
            try:
                dyadic = _dyadic(expr, comp) if kind == "double" else None
            except NotPushable:
                dyadic = None
            comp.columns[:] = [c for c in comp.columns if c.name != name] + [Col(name, kind, text, dyadic=dyadic)]
    except NotPushable:
        comp.columns[:], comp.constants.clear()
        comp.columns.extend(columns)
        comp.constants.update(constants)
        raise


def _reshape(step: p.Step, comp: Compiler, ctx: Context) -> None:
    """A projection (ES|QL's KEEP / DROP / RENAME) run by the language's own operator over one
    row holding each column's position: the columns it gives are the ones SQL then selects
    (its errors are the Python path's, raised there)."""
    from ..execute import Relation

    rel = Relation([c.name for c in comp.columns], [c.type for c in comp.columns], [list(range(len(comp.columns)))])
    try:
        out = ctx.dialect.steps[type(step)](step, rel, ctx, [])
        positions = next(iter(out.rows))
    except Exception:  # noqa: BLE001 - the Python path raises it
        raise NotPushable(step) from None
    old = comp.columns
    comp.columns[:] = [Col(name, kind, old[j].sql, old[j].multi) for name, kind, j in
                       zip(out.names, out.types, positions)]
    comp.constants.clear()  # as the Python operators drop them


def _order(order: p.Order, comp: Compiler) -> Order:
    if comp.constant(order.expr)[0]:
        raise NotPushable(order)  # a constant order orders nothing; SQL would read it as a position
    text, kind = comp.sql(order.expr)
    if kind not in ORDERED or kind == "unsigned_long":
        raise NotPushable(order)
    nulls_first = order.nulls_first if order.nulls_first is not None else not order.ascending
    return Order(text, order.ascending, nulls_first)


def _grouping(step: p.Aggregate, comp: Compiler) -> Grouping:
    names = [name for name, _ in step.groups]
    if len(set(names)) != len(names):
        raise NotPushable(step)
    keys = []
    computed: list[Col] = []
    for name, expr in step.groups:
        text, kind = comp.sql(expr)
        if kind not in GROUPABLE or kind == "unsigned_long" or comp.constant(expr)[0]:
            raise NotPushable(step)
        keys.append((name, text, kind))
        if not (isinstance(expr, Column) and expr.name == name):
            computed.append(Col(name, kind, text))
    if computed:  # the aggregates see the computed groups (``BY h = DATE_TRUNC(...)``)
        final = {c.name for c in computed}
        comp.columns[:] = [c for c in comp.columns if c.name not in final] + computed
    aggs = [_agg(name, expr, cond, comp) for name, expr, cond in step.aggregates]
    distinct = {a.sql for a in aggs if a.func == "grouped"}
    if len(distinct) > 1:
        raise NotPushable(step)
    floor = comp.floors.get(keys[0][1]) if len(keys) == 1 else None
    return Grouping(keys, aggs, distinct.pop() if distinct else None, floor)


def _agg(name: str, expr: Expr, cond: Expr | None, comp: Compiler) -> Agg:
    if cond is not None or not isinstance(expr, Call):
        raise NotPushable(expr)
    func = comp.language.canonical(expr.name)
    args = expr.args
    if func not in PUSHED_AGGREGATES:
        raise NotPushable(expr)
    if func == "COUNT" and (not args or isinstance(args[0], Star)):
        return Agg(name, "rows", None, "long", expr)
    if len(args) != 1:
        raise NotPushable(expr)
    from .. import aggregates

    kind = comp.kind(args[0])
    if not aggregates.accepts(func, kind) or kind in ("null", "unsigned_long"):
        raise NotPushable(expr)
    if func in ("SUM", "AVG"):
        if func == "SUM" and kind in ("integer", "long"):
            return Agg(name, "sum", comp.sql(args[0])[0], "long", expr)
        integral, scale = _dyadic(args[0], comp)
        return Agg(name, "dyadic", integral, "double", expr, average=func == "AVG", scale=scale)
    text, kind = comp.sql(args[0])
    if func == "COUNT":
        return Agg(name, "count", text, "long", expr)
    if func == "COUNT_DISTINCT":
        if kind not in GROUPABLE:
            raise NotPushable(expr)
        # the distinct values of each slice's group as a JSON array; doubles would not
        # survive SQLite's JSON text exactly, so they are grouped on instead
        return Agg(name, "grouped" if kind == "double" else "distinct", text, "long", expr)
    if kind not in ORDERED:
        raise NotPushable(expr)
    return Agg(name, func.lower(), text, kind, expr)


def _dyadic(expr: Expr, comp: Compiler) -> tuple[str, int]:
    """``expr`` as the SQL of an integer expression and a ``scale``: its value is that
    integer times ``2**scale``. An integer column is one; so is one multiplied or divided
    by a positive power of two, or an EVAL'd column defined so. Its values are then exact
    doubles, and so is every partial sum while the sum of their magnitudes stays within
    2**53: the Python path's compensated sum gives exactly the integer sum, scaled."""
    kind = comp.kind(expr)
    if kind in ("integer", "long"):
        return comp.sql(expr)[0], 0
    if isinstance(expr, Column) and comp.column(expr.name).dyadic is not None:
        return comp.column(expr.name).dyadic  # type: ignore[return-value]
    if isinstance(expr, Binary) and expr.op in "*/":
        for inner, factor, sign in ((expr.left, expr.right, 1 if expr.op == "*" else -1),
                                    (expr.right, expr.left, 1 if expr.op == "*" else 0)):
            done, value = comp.constant(factor)
            if not sign or not done or type(value) not in (int, float) or value <= 0:
                continue
            mantissa, exponent = math.frexp(value)
            if mantissa == 0.5 and abs(exponent) < 900:
                integral, scale = _dyadic(inner, comp)
                return integral, scale + sign * (exponent - 1)
    raise NotPushable(expr)
