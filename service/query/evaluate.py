"""Compiling expressions into Python closures over rows, with a language's semantics.

A row is a list of values; a multi-value is a Python list; null is None. The operators
(arithmetic, comparison, boolean logic, IN, LIKE) are compiled here; what a function
name means, how literals are cast, and what a single-value operation does with null, a
multi-value or an error, the scope's dialect says (``dialect.py``). ``guarded`` is the
rule Elasticsearch's languages share: null in, null out; a multi-value, an arithmetic
overflow or a division by zero give null plus a warning with the Java exception's text.
A dialect with ``any_value`` (EQL) reads multi-values as Lucene does instead: a comparison,
IN or LIKE holds when any value satisfies it. ``In`` and ``Like`` nodes marked
``insensitive`` compare lowercased strings. A dialect's ``compile_node`` is asked first for
every node (SML's dynamic rules, its search terms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, Callable

from .. import patterns
from ..errors import ServiceError
from . import types as T
from .expr import Binary, Call, Cast, Column, Expr, In, IsNull, Like, Literal, Logical, Neg, Not, Src, Star
from .rowerror import EvalError
from .spans import add_span

if TYPE_CHECKING:
    from .dialect import Dialect

Fn = Callable[[list[Any]], Any]
MV_WARNING = "java.lang.IllegalArgumentException: single-value function encountered multi-value"
MAX_RECORDED = 20


class VerificationError(ServiceError):
    status = 400
    type = "verification_exception"

    def __init__(self, problems: list[tuple[Src, str]]) -> None:
        lines = "\n".join(f"line {src.line}:{src.col}: {msg}" for src, msg in problems)
        count = len(problems)
        super().__init__(f"Found {count} problem{'s' if count != 1 else ''}\n{lines}")


def verify_fail(src: Src, message: str) -> VerificationError:
    return VerificationError([(src, message)])


@dataclass
class Warnings:
    """Warnings of one query, in the order first seen; at most one pair per expression."""

    messages: list[str] = field(default_factory=list)
    _recorded: dict[tuple[int, int, str], int] = field(default_factory=dict)

    def failure(self, src: Src, java_message: str, result: str = "null", located: bool = True) -> None:
        """Record one failed evaluation of ``src``: a header line the first time, then each
        distinct exception, at most MAX_RECORDED per expression (as Elasticsearch does)."""
        key = (src.line, src.col, src.text)
        count = self._recorded.get(key)
        if count is None:
            self.messages.append(f"Line {src.line}:{src.col}: evaluation of [{src.text}] failed, treating result "
                                 f"as {result}. Only first {MAX_RECORDED} failures recorded.")
            count = 0
        if count >= MAX_RECORDED:
            return
        self._recorded[key] = count + 1
        self.add(f"Line {src.line}:{src.col}: {java_message}" if located else java_message)

    def add(self, message: str) -> None:
        if message not in self.messages:
            self.messages.append(message)


@dataclass
class Scope:
    names: list[str]
    types: list[str]
    warnings: Warnings
    dialect: Dialect
    constants: dict[str, Any] = field(default_factory=dict)  # columns known to hold one constant value

    def index(self, name: str) -> int | None:
        # the last column of a name wins (EVAL may shadow)
        for i in range(len(self.names) - 1, -1, -1):
            if self.names[i] == name:
                return i
        return None


def guarded(fn: Callable[..., Any], src: Src, warnings: Warnings, args: list[Fn]) -> Fn:
    """A single-value operation: null in -> null out; multi-value or error -> null + warning."""
    n = len(args)
    if n == 1:
        (a,) = args

        def run1(row: list[Any]) -> Any:
            x = a(row)
            if x is None:
                return None
            if type(x) is list:
                warnings.failure(src, MV_WARNING)
                return None
            try:
                return fn(x)
            except EvalError as exc:
                warnings.failure(src, exc.java_message)
                return None
        return run1
    if n == 2:
        a, b = args

        def run2(row: list[Any]) -> Any:
            x = a(row)
            if x is None:
                return None
            y = b(row)
            if y is None:
                return None
            if type(x) is list or type(y) is list:
                warnings.failure(src, MV_WARNING)
                return None
            try:
                return fn(x, y)
            except EvalError as exc:
                warnings.failure(src, exc.java_message)
                return None
        return run2

    def run(row: list[Any]) -> Any:
        values = [f(row) for f in args]
        if any(v is None for v in values):
            return None
        if any(type(v) is list for v in values):
            warnings.failure(src, MV_WARNING)
            return None
        try:
            return fn(*values)
        except EvalError as exc:
            warnings.failure(src, exc.java_message)
            return None
    return run


# --- arithmetic ---------------------------------------------------------------------

def _checked(kind: str) -> Callable[[int], int]:
    lo, hi = T.INT_RANGE[kind]
    message = {"integer": "java.lang.ArithmeticException: integer overflow",
               "long": "java.lang.ArithmeticException: long overflow",
               "unsigned_long": "java.lang.ArithmeticException: unsigned_long overflow"}[kind]

    def check(v: int) -> int:
        if lo <= v <= hi:
            return v
        raise EvalError(message)
    return check


def _java_div(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("java.lang.ArithmeticException: / by zero")
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def _java_mod(a: int, b: int) -> int:
    if b == 0:
        raise EvalError("java.lang.ArithmeticException: / by zero")
    r = abs(a) % abs(b)
    return r if a >= 0 else -r


def _fdiv(a: float, b: float) -> float:
    if b == 0:
        raise EvalError("java.lang.ArithmeticException: / by zero")
    return _finite(a / b)


def _fmod(a: float, b: float) -> float:
    if b == 0:
        raise EvalError("java.lang.ArithmeticException: / by zero")
    if a in (float("inf"), float("-inf")):  # Java's % gives NaN, which ES|QL refuses as it refuses any
        raise EvalError("java.lang.ArithmeticException: not a finite double number: NaN")
    return math.fmod(a, b)


def _finite(v: float) -> float:
    if v != v or v in (float("inf"), float("-inf")):
        raise EvalError("java.lang.ArithmeticException: not a finite double number: " + ("NaN" if v != v else
                        "Infinity" if v > 0 else "-Infinity"))
    return v


def arithmetic(op: str, kind: str) -> Callable[[Any, Any], Any]:
    if kind == "double":
        return {"+": lambda a, b: _finite(a + b), "-": lambda a, b: _finite(a - b),
                "*": lambda a, b: _finite(a * b), "/": _fdiv, "%": _fmod}[op]
    check = _checked(kind)
    return {"+": lambda a, b: check(a + b), "-": lambda a, b: check(a - b), "*": lambda a, b: check(a * b),
            "/": lambda a, b: check(_java_div(a, b)), "%": _java_mod}[op]


# --- comparison keys --------------------------------------------------------------------

def version_key(v: str) -> tuple:
    main, _, pre = v.partition("-")
    parts = []
    for p in main.split("."):
        # numeric parts compare as numbers: by length, then digits (no int(), which a
        # 5000-digit part would exceed)
        digits = p.lstrip("0")
        parts.append((0, len(digits), digits) if p.isascii() and p.isdigit() else (1, 0, p))
    return (tuple(parts), 0 if pre else 1, pre)


def ip_key(v: str) -> bytes:
    import ipaddress
    addr = ipaddress.ip_address(v)
    # IPv4 sorts as its IPv4-mapped IPv6 form, so both families share one ordering.
    return b"\x00" * 10 + b"\xff\xff" + addr.packed if addr.version == 4 else addr.packed


def sort_key(kind: str) -> Callable[[Any], Any] | None:
    if kind == "version":
        return version_key
    if kind == "ip":
        return ip_key
    if kind == "text" or kind == "keyword":
        return lambda s: s.encode("utf-8")  # Lucene compares UTF-8 bytes
    return None


def _compare(op: str, key: Callable[[Any], Any] | None) -> Callable[[Any, Any], bool]:
    import operator
    base = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
            ">=": operator.ge}[op]
    if key is None:
        return base
    return lambda a, b: base(key(a), key(b))


# --- the compiler -----------------------------------------------------------------------

def compile_expr(expr: Expr, scope: Scope) -> tuple[Fn, str]:
    """Compile ``expr`` against the columns in ``scope``; return the closure and its type."""
    own = scope.dialect.compile_node
    if own is not None and (compiled := own(expr, scope)) is not None:
        return compiled
    if isinstance(expr, Literal):
        value = expr.value
        return (lambda row: value), expr.type
    if isinstance(expr, Column):
        i = scope.index(expr.name)
        if i is None:
            raise verify_fail(expr.src, f"Unknown column [{expr.name}]")
        return (lambda row: row[i]), scope.types[i]
    if isinstance(expr, Binary):
        return _binary(expr, scope)
    if isinstance(expr, Neg):
        fn, kind = compile_expr(expr.value, scope)
        if kind in ("time_duration", "date_period"):
            return (lambda row: _neg_span(fn(row))), kind
        if not T.is_numeric(kind) and kind != "null":
            raise verify_fail(expr.src, f"argument of [{expr.src.text}] must be [numeric, date_period or "
                                        f"time_duration], found value [{expr.value.src.text}] type [{kind}]")
        neg = (lambda v: _finite(-v)) if kind == "double" else (lambda v: _checked(kind)(-v)) \
            if kind != "null" else (lambda v: None)
        return scope.dialect.single(neg, expr.src, scope.warnings, [fn]), kind
    if isinstance(expr, Not):
        fn, kind = _boolean_operand(expr.value, scope, expr)
        if scope.dialect.any_value:  # NOT of a multi-valued boolean: true when no value is
            return (lambda row: None if (v := fn(row)) is None else not any(_values(v))), "boolean"
        return scope.dialect.single(lambda v: not v, expr.src, scope.warnings, [fn]), "boolean"
    if isinstance(expr, Logical):
        return _logical(expr, scope)
    if isinstance(expr, IsNull):
        fn, _ = compile_expr(expr.value, scope)
        if expr.negated:
            return (lambda row: fn(row) is not None), "boolean"
        return (lambda row: fn(row) is None), "boolean"
    if isinstance(expr, In):
        return _in(expr, scope)
    if isinstance(expr, Like):
        return _like(expr, scope)
    if isinstance(expr, Cast):
        target = T.CAST_NAMES.get(expr.type)
        if target is None:
            raise verify_fail(expr.src, f"Unsupported conversion to type [{expr.type.upper()}]")
        return scope.dialect.cast(expr.value, target, scope)
    if isinstance(expr, Call):
        return scope.dialect.call(expr, scope)
    if isinstance(expr, Star):
        raise verify_fail(expr.src, "Using wildcards [*] in this context is not allowed")
    raise verify_fail(expr.src, f"unsupported expression [{expr.src.text}]")


def _neg_span(v: Any) -> Any:
    return None if v is None else (-v[0], v[1])


def _boolean_operand(expr: Expr, scope: Scope, parent: Expr) -> tuple[Fn, str]:
    fn, kind = compile_expr(expr, scope)
    if kind not in ("boolean", "null"):
        raise verify_fail(parent.src, f"argument of [{parent.src.text}] must be [boolean], found value "
                                      f"[{expr.src.text}] type [{kind}]")
    return fn, kind


def _logical(expr: Logical, scope: Scope) -> tuple[Fn, str]:
    left, _ = _boolean_operand(expr.left, scope, expr)
    right, _ = _boolean_operand(expr.right, scope, expr)
    warnings, src, multi_value = scope.warnings, expr.src, scope.dialect.multi_value_warning
    any_value = scope.dialect.any_value

    def single(v: Any) -> Any:
        if type(v) is list:
            if any_value:  # a multi-valued boolean holds when any of its values does
                return any(v)
            warnings.failure(src, multi_value)
            return None
        return v

    if any_value:  # no warnings to show (EQL): a side that decides skips the other
        return _short_circuit(expr.op, left, right, single), "boolean"
    if expr.op == "AND":
        def and_(row: list[Any]) -> Any:
            # both sides are evaluated, as Elasticsearch evaluates whole blocks: their warnings show
            a, b = single(left(row)), single(right(row))
            if a is False or b is False:
                return False
            return None if a is None or b is None else True
        return and_, "boolean"

    def or_(row: list[Any]) -> Any:
        a, b = single(left(row)), single(right(row))
        if a is True or b is True:
            return True
        return None if a is None or b is None else False
    return or_, "boolean"


def _short_circuit(op: str, left: Fn, right: Fn, single: Callable[[Any], Any]) -> Fn:
    """AND / OR in three-valued logic, the right side evaluated only when the left does not decide."""
    decides = op == "OR"  # the value of the left side that is the answer

    def run(row: list[Any]) -> Any:
        a = single(left(row))
        if a is decides:
            return decides
        b = single(right(row))
        if b is decides:
            return decides
        return None if a is None or b is None else not decides
    return run


def _binary(expr: Binary, scope: Scope) -> tuple[Fn, str]:
    left, lt = compile_expr(expr.left, scope)
    right, rt = compile_expr(expr.right, scope)
    op = expr.op
    if op in ("==", "!=", "<", "<=", ">", ">="):
        coerced = scope.dialect.coerce(expr.right, lt, scope)
        if coerced:
            right, rt = coerced
        coerced = scope.dialect.coerce(expr.left, rt, scope)
        if coerced:
            left, lt = coerced
        if not T.comparable(lt, rt):
            raise verify_fail(expr.src, f"first argument of [{expr.src.text}] is [{_kind_word(lt)}] so second "
                                        f"argument must also be [{_kind_word(lt)}] but was [{rt}]")
        key = None if T.is_numeric(lt) and T.is_numeric(rt) and lt != rt else sort_key(lt if lt != "null" else rt)
        if scope.dialect.any_value:
            return _any_comparison(op, key, left, right), "boolean"
        return scope.dialect.single(_compare(op, key), expr.src, scope.warnings, [left, right]), "boolean"
    if lt in ("date", "date_nanos") and rt in ("time_duration", "date_period") and op in "+-":
        sign = 1 if op == "+" else -1
        return scope.dialect.single(lambda d, s: add_span(d, s, sign, lt), expr.src, scope.warnings,
                                    [left, right]), lt
    if rt in ("date", "date_nanos") and lt in ("time_duration", "date_period") and op == "+":
        return scope.dialect.single(lambda s, d: add_span(d, s, 1, rt), expr.src, scope.warnings,
                                    [left, right]), rt
    for side, kind in ((expr.left, lt), (expr.right, rt)):
        if not T.is_numeric(kind) and kind != "null":
            raise verify_fail(expr.src, f"{'first' if side is expr.left else 'second'} argument of "
                                        f"[{expr.src.text}] must be [numeric], found value [{side.src.text}] "
                                        f"type [{kind}]")
    kind = T.widen(lt, rt)
    if kind == "null":
        return (lambda row: None), "null"
    if "unsigned_long" in (lt, rt) and kind != "double" and {lt, rt} - {"unsigned_long", "null"}:
        raise verify_fail(expr.src, f"first argument of [{expr.src.text}] is [{lt}] and second is [{rt}]. "
                                    f"[unsigned_long] can only be operated on together with another [unsigned_long]")
    fn = scope.dialect.arithmetic(op, kind)
    if kind == "double":
        inner = fn
        fn = lambda a, b: inner(float(a), float(b))  # noqa: E731
    return scope.dialect.single(fn, expr.src, scope.warnings, [left, right]), kind


def _values(v: Any) -> list[Any] | tuple[Any]:
    return v if type(v) is list else (v,)


def _any_comparison(op: str, key: Callable[[Any], Any] | None, left: Fn, right: Fn) -> Fn:
    """A comparison under the any-value rule: true when some pair of values satisfies ``op``;
    ``!=`` is the negation of ``==`` (true when no value equals); a null side gives null."""
    negated = op == "!="
    test = _compare("==" if negated else op, key)

    def run(row: list[Any]) -> Any:
        a = left(row)
        if a is None:
            return None
        b = right(row)
        if b is None:
            return None
        if type(a) is not list and type(b) is not list:
            return test(a, b) != negated
        return any(test(x, y) for x in _values(a) for y in _values(b)) != negated
    return run


def _kind_word(kind: str) -> str:
    return "numeric" if T.is_numeric(kind) else "keyword" if T.is_string(kind) else kind


def _in(expr: In, scope: Scope) -> tuple[Fn, str]:
    value, vt = compile_expr(expr.value, scope)
    items = []
    for item in expr.items:
        coerced = scope.dialect.coerce(item, vt, scope)
        fn, it = coerced if coerced else compile_expr(item, scope)
        if not T.comparable(vt, it):
            raise verify_fail(expr.src, f"{_ordinal(len(items) + 2)} argument of [{expr.src.text}] must be "
                                        f"[{vt}], found value [{item.src.text}] type [{it}]")
        items.append(fn)
    key = _in_key(vt, expr.insensitive)
    warnings, src, negated, multi_value = scope.warnings, expr.src, expr.negated, scope.dialect.multi_value_warning
    any_value = scope.dialect.any_value

    def run(row: list[Any]) -> Any:
        v = value(row)
        if v is None:
            return None
        if type(v) is list and not any_value:
            warnings.failure(src, multi_value)
            return None
        saw_null = False
        wanted = [key(x) if key else x for x in _values(v)]
        for f in items:
            x = f(row)
            if x is None:
                saw_null = True
                continue
            if type(x) is list:
                warnings.failure(src, multi_value)
                saw_null = True
                continue
            if (key(x) if key else x) in wanted:
                return not negated
        return None if saw_null else negated
    return run, "boolean"


def _in_key(kind: str, insensitive: bool) -> Callable[[Any], Any] | None:
    """What IN compares: ip and version values by their order key; ``in~`` strings lowercased
    (Java's ``toLowerCase(Locale.ROOT)`` is ``str.lower``, not ``casefold``)."""
    if kind in ("ip", "version"):
        return sort_key(kind)
    if insensitive:
        return lambda v: v.lower() if type(v) is str else v
    return None


def _ordinal(n: int) -> str:
    return {1: "first", 2: "second", 3: "third", 4: "fourth", 5: "fifth"}.get(n, f"{n}th")


def _pattern(text: str, expr: Like, dialect: Dialect) -> patterns.Matcher:
    """The compiled LIKE or RLIKE pattern; a malformed one is ES's parsing_exception."""
    try:
        return patterns.lucene_regex(text) if expr.regex else dialect.wildcard(text)
    except patterns.PatternError as exc:
        kind = "Invalid regex pattern for RLIKE" if expr.regex else "Invalid pattern for LIKE"
        raise ServiceError(f"line {expr.src.line}:{expr.src.col}: {kind} [{text}]: [{exc}]", status=400,
                           type="parsing_exception") from None


def fold(expr: Expr, scope: Scope) -> tuple[bool, Any]:
    """Evaluate ``expr`` now if it depends only on literals and constant columns."""
    columns = [e for e in walk(expr) if isinstance(e, Column)]
    if any(c.name not in scope.constants for c in columns):
        return False, None
    fn, _ = compile_expr(expr, scope)
    row = [scope.constants.get(n) for n in scope.names]
    return True, fn(row)


def walk(node: Any) -> list[Expr]:
    """Every expression in ``node`` (an expression, a plan step, or tuples of them), each
    before the expressions inside it."""
    out = [node] if isinstance(node, Expr) else []
    if isinstance(node, tuple):
        for item in node:
            out.extend(walk(item))
    elif is_dataclass(node) and not isinstance(node, (Src, type)):
        for f in fields(node):
            out.extend(walk(getattr(node, f.name)))
    return out


def _like(expr: Like, scope: Scope) -> tuple[Fn, str]:
    value, vt = compile_expr(expr.value, scope)
    if not T.is_string(vt) and vt != "null":
        raise verify_fail(expr.src, f"argument of [{expr.src.text}] must be [string], found value "
                                    f"[{expr.value.src.text}] type [{vt}]")
    texts = []
    for pattern in expr.patterns:
        constant, text = fold(pattern, scope)
        if not constant or not isinstance(text, str):
            raise verify_fail(pattern.src, f"pattern must be a constant string, found [{pattern.src.text}]")
        texts.append(text)
    negated = expr.negated
    matchers = [_pattern(t.lower() if expr.insensitive else t, expr, scope.dialect) for t in texts]
    if any(m.total for m in matchers):
        # Elasticsearch rewrites a match-everything pattern to IS NOT NULL (so NOT gives IS NULL)
        return (lambda row: (value(row) is not None) != negated), "boolean"
    positive = _matches([m.match for m in matchers], expr.insensitive)
    if scope.dialect.any_value:
        return _any_match(value, positive, negated), "boolean"
    test = (lambda v: not positive(v)) if negated else positive
    return scope.dialect.single(test, expr.src, scope.warnings, [value]), "boolean"


def _matches(tests: list[patterns.Match], insensitive: bool) -> patterns.Match:
    """Whether a value matches any of the patterns; lowercased first when case-insensitive
    (the patterns are lowercased already)."""
    test = tests[0] if len(tests) == 1 else (lambda v: any(t(v) for t in tests))
    return (lambda v: test(v.lower())) if insensitive else test


def _any_match(value: Fn, positive: patterns.Match, negated: bool) -> Fn:
    """LIKE under the any-value rule: true when some value matches (NOT LIKE: when none does)."""
    def run(row: list[Any]) -> Any:
        v = value(row)
        if v is None:
            return None
        return any(positive(x) for x in _values(v)) != negated
    return run
