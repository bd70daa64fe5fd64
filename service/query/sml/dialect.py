"""SML's rules for the shared compiler and executor (see ``query/dialect.py``).

SML is dynamically typed (spec/sml.md §4, §6): nothing is checked before a row is read, and
no value makes a query fail. Its dialect therefore compiles the operators itself
(``compile_node``), with the rules of ``values``:

- a comparison is false when a side is null (``null == null`` too) and otherwise compares
  numbers and numeric-looking strings numerically, strings case-sensitively; a string
  literal compared with a date column is read as a date;
- ``+`` concatenates when a side is a string, else adds; ``- * / %`` read numeric-looking
  strings as numbers; a type error, a division or modulo by zero give null;
- ``AND``/``OR``/``NOT`` are three-valued over booleans, any other value counting as null;
- a multi-value stands for its first element; a field the rows do not have is null, and
  ``x.keyword`` is ``x`` when no field has that name (OpenSearch's sub-field naming);
- the search nodes ``Term`` and ``Text`` follow §5: case-insensitive, ``*`` wildcards,
  any value of an array, full-text tokens.

``now()`` and date math (``@timestamp>=now-1h``) read the task's creation instant: a job
compiles with ``dialect_at(request.now_ms)``; ``SML`` reads the clock when it compiles.
"""

from __future__ import annotations

import functools
import math
import re
import time
from typing import Any, Callable

from ... import patterns
from ...errors import ServiceError
from ...store.catalog import Catalog, Index
from ...store.dates import format_millis, format_nanos, parse_iso_nanos
from .. import types as T
from ..dialect import Dialect
from ..evaluate import EvalError, Fn, Scope, Warnings, _java_mod, _short_circuit, compile_expr, verify_fail
from ..execute import METADATA
from ..expr import Binary, Column, Expr, In, Literal, Logical, Neg, Not, Src
from ..plan import Source
from . import aggregates, functions, times
from .ast import Holds, Term, Text
from .operators import SOURCES, STEPS
from .source import SOURCES as SCANS, STEPS as SCAN_STEPS, column_type
from .values import COMPARE, TypeMismatch, compare, first, leaves, number, numeric, result, text

Compiled = tuple[Fn, str]
Clock = Callable[[], int]
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
DATES = ("date", "date_nanos")
# Errors of an operation on values of the wrong kind: the operation gives null, never a failure.
VALUE_ERRORS = (ValueError, TypeError, ArithmeticError, EvalError)


# --- single-value operations --------------------------------------------------------------

def single(fn: Callable[..., Any], src: Src, warnings: Warnings, args: list[Fn]) -> Fn:
    """A function or operator over one value per argument: a multi-value gives its first
    element, null in gives null out, a type error gives null; no warnings."""
    if len(args) == 1:
        (a,) = args

        def run1(row: list[Any]) -> Any:
            x = first(a(row))
            if x is None:
                return None
            try:
                return fn(x)
            except VALUE_ERRORS:
                return None
        return run1

    def run(row: list[Any]) -> Any:
        values = [first(f(row)) for f in args]
        if None in values:
            return None
        try:
            return fn(*values)
        except VALUE_ERRORS:
            return None
    return run


# --- arithmetic ---------------------------------------------------------------------------

def _add(a: Any, b: Any) -> Any:
    if type(a) is str or type(b) is str:
        return text(a) + text(b)
    return result(numeric(a) + numeric(b))


def _divide(a: Any, b: Any) -> Any:
    x, y = numeric(a), numeric(b)
    if y == 0:
        raise TypeMismatch(b)
    if type(x) is int and type(y) is int and x % y == 0:
        return result(x // y)  # exact: a whole quotient stays an integer
    return result(x / y)


def _modulo(a: Any, b: Any) -> Any:
    x, y = numeric(a), numeric(b)
    if y == 0:
        raise TypeMismatch(b)
    if type(x) is int and type(y) is int:
        return _java_mod(x, y)  # the sign of the dividend, as in SPL and C
    return result(math.fmod(x, y))


_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": _add,
    "-": lambda a, b: result(numeric(a) - numeric(b)),
    "*": lambda a, b: result(numeric(a) * numeric(b)),
    "/": _divide,
    "%": _modulo,
}


def arithmetic(op: str, kind: str) -> Callable[[Any, Any], Any]:
    """``+ - * / %`` over values of any type (``kind`` is ``any``: the values decide)."""
    return _ARITHMETIC[op]


# --- the operators ------------------------------------------------------------------------

def compile_node(expr: Expr, scope: Scope, clock: Clock) -> Compiled | None:
    """SML's own compilation of ``expr``, or None where the shared rules are SML's too
    (literals, present columns, calls, which the dialect's ``call`` compiles)."""
    compiler = _NODES.get(type(expr))
    return compiler(expr, scope, clock) if compiler is not None else None


def _column(expr: Column, scope: Scope, clock: Clock) -> Compiled | None:
    """A field the rows do not have is null (``x.keyword``: ``x`` when it has no such field)."""
    if scope.index(expr.name) is not None:
        return None
    base = expr.name.removesuffix(".keyword")
    if base != expr.name and scope.index(base) is not None:
        return compile_expr(Column(base, src=expr.src), scope)
    return (lambda row: None), "null"


def _binary(expr: Binary, scope: Scope, clock: Clock) -> Compiled:
    left, lt = compile_expr(expr.left, scope)
    right, rt = compile_expr(expr.right, scope)
    if expr.op not in COMPARISONS:
        return single(arithmetic(expr.op, T.ANY), expr.src, scope.warnings, [left, right]), T.ANY
    left = _as_date(expr.left, rt, clock) or left
    right = _as_date(expr.right, lt, clock) or right
    test = functools.partial(compare, expr.op)
    return (lambda row: test(left(row), right(row))), "boolean"


def _as_date(expr: Expr, other: str, clock: Clock) -> Fn | None:
    """A string literal compared with a date column, as that date (ISO-8601 or date math);
    None when it is no such literal or names no date."""
    if other not in DATES or not isinstance(expr, Literal) or type(expr.value) is not str:
        return None
    ms = instant(expr.value, clock(), round_up=False)
    if ms is None:
        return None
    value = ms * 1_000_000 if other == "date_nanos" else ms
    return lambda row: value


def _neg(expr: Neg, scope: Scope, clock: Clock) -> Compiled:
    fn, _ = compile_expr(expr.value, scope)
    return single(lambda v: result(-numeric(v)), expr.src, scope.warnings, [fn]), T.ANY


def _truth(v: Any) -> bool | None:
    """A boolean operand: a multi-value's first element; anything but a boolean is null."""
    v = first(v)
    return v if type(v) is bool else None


def _not(expr: Not, scope: Scope, clock: Clock) -> Compiled:
    fn, _ = compile_expr(expr.value, scope)
    return (lambda row: None if (v := _truth(fn(row))) is None else not v), "boolean"


def _exactly_true(expr: Holds, scope: Scope, clock: Clock) -> Compiled:
    fn, _ = compile_expr(expr.value, scope)
    return (lambda row: _truth(fn(row)) is True), "boolean"


def _logical(expr: Logical, scope: Scope, clock: Clock) -> Compiled:
    left, _ = compile_expr(expr.left, scope)
    right, _ = compile_expr(expr.right, scope)
    return _short_circuit(expr.op, left, right, _truth), "boolean"


def _in(expr: In, scope: Scope, clock: Clock) -> Compiled:
    """``x IN (a, b)``: ``x == a OR x == b``, false for a null ``x``; ``NOT IN`` its negation
    where ``x`` is not null (a comparison with null is false either way)."""
    value, _ = compile_expr(expr.value, scope)
    items = [compile_expr(item, scope)[0] for item in expr.items]
    negated = expr.negated

    def run(row: list[Any]) -> bool:
        v = first(value(row))
        if v is None:
            return False
        return any(compare("==", v, item(row)) for item in items) != negated
    return run, "boolean"


# --- search (§5) --------------------------------------------------------------------------

def instant(written: str, now_ms: int, round_up: bool) -> int | None:
    """A date as a range's bound reads it (``times.resolve``: ISO-8601, epoch ms, date math
    such as ``now-1h``, ``now/d``, ``2024-05-01||+1d``, Splunk-style ``-1h``, ``-1d@d``) in
    epoch ms; ``round_up`` ends it at the last millisecond of what it names (``now/d``,
    ``2024-05-01``); None when it is no date."""
    try:
        return times.resolve(written, now_ms, round_up=round_up, name="date")
    except ServiceError:
        return None


def _as_text(kind: str) -> Callable[[Any], str]:
    """How a search reads a value as text: a date column's values as the answer writes them."""
    if kind == "date":
        return lambda v: format_millis(v) if type(v) is int else text(v)
    if kind == "date_nanos":
        return lambda v: format_nanos(v) if type(v) is int else text(v)
    return text


def _field(name: str, scope: Scope) -> tuple[Fn, str]:
    """A search's field: its values as a list (none for null or a missing field), its type."""
    i = scope.index(name)
    if i is None and name.endswith(".keyword"):
        i = scope.index(name.removesuffix(".keyword"))
    if i is None:
        return (lambda row: []), "null"
    return (lambda row: leaves(row[i])), scope.types[i]


def _equals(value: Any, kind: str, now_ms: int) -> Callable[[Any], bool]:
    """Whether one value of a field of type ``kind`` matches ``f=value``."""
    as_text = _as_text(kind)
    if type(value) is str and "*" in value:
        match = patterns.wildcard(value.lower())
        return lambda v: match(as_text(v).lower())
    wanted = number(value)
    if wanted is None and kind in DATES and type(value) is str:
        wanted = _date_term(value, kind, now_ms, round_up=False)
    lowered = text(value).lower()
    if wanted is None:
        return lambda v: as_text(v).lower() == lowered

    def matches(v: Any) -> bool:
        n = number(v)
        return n == wanted if n is not None else as_text(v).lower() == lowered
    return matches


def _date_term(value: str, kind: str, now_ms: int, round_up: bool) -> int | None:
    ms = instant(value, now_ms, round_up)
    return None if ms is None else ms * 1_000_000 if kind == "date_nanos" else ms


def _ordered(op: str, value: Any, kind: str, now_ms: int) -> Callable[[Any], bool]:
    """Whether one value satisfies ``f<value`` (and ``<= > >=``): numerically, or as dates
    when ``value`` is a date expression (date math rounds up for ``<=`` and ``>``, as a
    range query's ``lte``/``gt`` do); never for a value that is neither."""
    holds = COMPARE[op]
    bound = number(value)
    if bound is not None:
        return lambda v: (n := number(v)) is not None and holds(n, bound)
    date = _date_term(value, kind, now_ms, round_up=op in ("<=", ">")) if type(value) is str else None
    if date is None:
        return lambda v: False
    parse = _date_value(kind)
    return lambda v: (n := parse(v)) is not None and holds(n, date)


def _date_value(kind: str) -> Callable[[Any], int | None]:
    """A value compared with a date: a number as it is (epoch ms, or ns for date_nanos), an
    ISO-8601 string as that date."""
    scale = 1 if kind == "date_nanos" else 1_000_000

    def parse(v: Any) -> int | None:
        n = number(v)
        if n is not None or type(v) is not str:
            return n
        try:
            return parse_iso_nanos(v) // scale
        except ValueError:
            return None
    return parse


def _term(expr: Term, scope: Scope, clock: Clock) -> Compiled:
    values, kind = _field(expr.field, scope)
    if expr.op == "=" and expr.value == "*":
        return (lambda row: bool(values(row))), "boolean"
    if expr.op in ("=", "!="):
        matches = _equals(expr.value, kind, clock())
        if expr.op == "=":
            return (lambda row: any(map(matches, values(row)))), "boolean"
        return (lambda row: bool(vs := values(row)) and not any(map(matches, vs))), "boolean"
    holds = _ordered(expr.op, expr.value, kind, clock())
    return (lambda row: any(map(holds, values(row)))), "boolean"


_TOKEN = re.compile(r"\w+")
_NOT_TEXT = {*METADATA, "_source"}  # what full text does not search: the metadata, the stored JSON


def _text(expr: Text, scope: Scope, clock: Clock) -> Compiled:
    """Full text: some leaf value of the row, as text, matches the whole pattern (with
    ``*``) or equals the term or holds its tokens in a row (a phrase); case-insensitive."""
    columns = [(i, _as_text(kind)) for i, (name, kind) in enumerate(zip(scope.names, scope.types))
               if name not in _NOT_TEXT and scope.index(name) == i]
    term = expr.value.lower()
    if "*" in term:
        match = patterns.wildcard(term)
    else:
        tokens = _TOKEN.findall(term)
        match = functools.partial(_holds_tokens, term, tokens)

    def run(row: list[Any]) -> bool:
        return any(match(as_text(v).lower()) for i, as_text in columns for v in leaves(row[i]))
    return run, "boolean"


def _holds_tokens(term: str, tokens: list[str], value: str) -> bool:
    if value == term:
        return True
    if not tokens:
        return False
    found = _TOKEN.findall(value)
    n = len(tokens)
    return any(found[i:i + n] == tokens for i in range(len(found) - n + 1))


_NODES: dict[type, Callable[[Any, Scope, Clock], Compiled | None]] = {
    Column: _column, Binary: _binary, Neg: _neg, Not: _not, Logical: _logical, In: _in, Term: _term, Text: _text,
    Holds: _exactly_true,
}


# --- the rest of the dialect --------------------------------------------------------------

def cast(value: Expr, target: str, scope: Scope) -> Compiled:
    """SML has no casts (``tonumber``/``tostring`` convert); its parser never makes one."""
    raise verify_fail(value.src, f"Unsupported conversion to type [{target.upper()}]")


def coerce(expr: Expr, target: str, scope: Scope) -> Compiled | None:
    """SML's comparisons convert at run time (``compile_node``); nothing is cast before."""
    return None


def resolve_indices(catalog: Catalog, step: Source) -> list[Index]:
    """``source``'s indices: a name that is no index is ``index_not_found_exception``
    (404), a pattern that matches nothing matches nothing."""
    return catalog.resolve(",".join(step.indices))


def _wall_clock() -> int:
    return int(time.time() * 1000)


def dialect_at(now_ms: int | None = None) -> Dialect:
    """SML's dialect with ``now`` fixed at ``now_ms`` (a task's creation instant); None:
    the clock when an expression is compiled."""
    clock: Clock = _wall_clock if now_ms is None else (lambda: now_ms)
    return Dialect(
        name="sml",
        call=functools.partial(functions.compile_call, clock=clock),
        cast=cast,
        coerce=coerce,
        single=single,
        multi_value_warning="",  # never shown: a multi-value stands for its first element
        is_aggregate=aggregates.is_aggregate,
        canonical=lambda name: name,
        aggregate=aggregates.aggregate,
        indices=resolve_indices,
        pushdown=False,  # the SQL pushdown knows the statically typed rules only
        arithmetic=arithmetic,
        compile_node=functools.partial(compile_node, clock=clock),
        steps={**STEPS, **SCAN_STEPS},
        sources={**SOURCES, **SCANS},
        column_type=column_type,
    )


SML = dialect_at()
