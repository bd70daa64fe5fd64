"""Math functions: constants, rounding, logarithms, trigonometry, clamps."""

from __future__ import annotations

import math
from typing import Any, Callable

from ... import numeric
from ... import types as T
from ...evaluate import EvalError, Fn, Scope, _checked, sort_key
from ...expr import Call
from ._base import NUMERIC, REGISTRY, _arity, _require, _single, register
from .conditional import _common_type, _widen_value
from .dates import DATES


def _math1(name: str, fn: Callable[[float], float], out: str = "double") -> None:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        _arity(expr, 1)
        _require(expr, 0, kinds[0], NUMERIC, "numeric")

        def safe(v: Any) -> Any:
            try:
                r = fn(float(v))
            except (ValueError, OverflowError):
                raise EvalError(f"java.lang.ArithmeticException: {name.title()} of negative number"
                                if name in ("SQRT", "LOG10") else "java.lang.ArithmeticException: invalid") from None
            if r != r or math.isinf(r):
                raise EvalError("java.lang.ArithmeticException: invalid")
            return r
        return _single(safe, out)(expr, kinds, args, scope)
    REGISTRY[name] = resolve


for _name, _fn in {"SQRT": math.sqrt, "EXP": math.exp, "SIN": math.sin, "COS": math.cos, "TAN": math.tan,
                   "ASIN": math.asin, "ACOS": math.acos, "ATAN": math.atan, "SINH": math.sinh, "COSH": math.cosh,
                   "TANH": math.tanh, "CBRT": lambda x: math.copysign(abs(x) ** (1 / 3), x)}.items():
    _math1(_name, _fn)


def _log10(x: float) -> float:
    if x <= 0:
        raise ValueError
    return math.log10(x)


_math1("LOG10", _log10)


@register("PI", "E", "TAU")
def _constants(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    value = {"PI": math.pi, "E": math.e, "TAU": math.tau}[expr.name]
    return (lambda row: value), "double"


@register("ABS")
def _abs(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    if kinds[0] == "double":
        return _single(abs, "same")(expr, kinds, args, scope)
    check = _checked(kinds[0]) if kinds[0] != "null" else (lambda v: v)
    return _single(lambda v: check(abs(v)), "same")(expr, kinds, args, scope)


@register("CEIL", "FLOOR")
def _ceil_floor(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    if kinds[0] != "double":
        return args[0], kinds[0]
    fn = math.ceil if expr.name == "CEIL" else math.floor
    return _single(lambda v: float(fn(v)), "double")(expr, kinds, args, scope)


@register("SIGNUM")
def _signum(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    return _single(lambda v: float((v > 0) - (v < 0)), "double")(expr, kinds, args, scope)


@register("ROUND")
def _round(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    """ES's ``Maths.round``: half away from zero, in bounded time whatever the digits
    (``ROUND(123, -99999999)`` is 0 at once, as every long is below 10^19)."""
    _arity(expr, 1, 2)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    if len(args) == 2:
        _require(expr, 1, kinds[1], ("integer", "long"), "integer")
    return _single(_ROUNDERS.get(kinds[0], _round_integer), "same")(expr, kinds, args, scope)


def _round_integer(v: int, digits: int = 0) -> int:
    # ES rounds an integer as a long and keeps the low 32 bits (Java's intValue()), so an
    # integer that rounds past 2^31 wraps rather than failing
    r = _round_long_value(v, digits)
    return (r + 2**31) % 2**32 - 2**31


def _round_long_value(v: int, digits: int = 0) -> int:
    try:
        return numeric.round_long(v, digits)
    except numeric.ArithmeticOverflow:
        raise EvalError("java.lang.ArithmeticException: long overflow") from None


def _round_unsigned(v: int, digits: int = 0) -> int:
    r = numeric.round_unsigned_long(v, digits)
    if r > T.INT_RANGE["unsigned_long"][1]:
        raise EvalError(f"org.elasticsearch.xpack.esql.core.InvalidArgumentException: [{r}] out of [unsigned_long] "
                        f"range")
    return r


_ROUNDERS: dict[str, Callable[..., Any]] = {
    "double": lambda v, digits=0: numeric.round_double(v, digits), "long": _round_long_value,
    "unsigned_long": _round_unsigned,
}


@register("POW")
def _pow(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    for i in range(2):
        _require(expr, i, kinds[i], NUMERIC, "numeric")

    def fn(b: Any, e: Any) -> float:
        try:
            r = math.pow(float(b), float(e))
        except (ValueError, OverflowError):
            raise EvalError("java.lang.ArithmeticException: invalid result when computing pow") from None
        if r != r or math.isinf(r):
            raise EvalError("java.lang.ArithmeticException: invalid result when computing pow")
        return r
    return _single(fn, "double")(expr, kinds, args, scope)


@register("LOG")
def _log(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1, 2)

    def fn(*vs: Any) -> float:
        try:
            r = math.log(float(vs[-1])) / (math.log(float(vs[0])) if len(vs) == 2 else 1.0)
        except (ValueError, ZeroDivisionError):
            raise EvalError("java.lang.ArithmeticException: Log of non-positive number") from None
        return r
    return _single(fn, "double")(expr, kinds, args, scope)


@register("ATAN2", "HYPOT")
def _two_doubles(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    fn = math.atan2 if expr.name == "ATAN2" else math.hypot
    return _single(lambda a, b: fn(float(a), float(b)), "double")(expr, kinds, args, scope)


@register("CLAMP", "CLAMP_MIN", "CLAMP_MAX")
def _clamp(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 3 if expr.name == "CLAMP" else 2)
    kind = _common_type(expr, kinds)
    key = sort_key(kind) or (lambda v: v)

    def lower(v: Any, lo: Any) -> Any:
        return lo if key(v) < key(lo) else v

    def upper(v: Any, hi: Any) -> Any:
        return hi if key(v) > key(hi) else v

    fn = {"CLAMP": lambda v, lo, hi: upper(lower(v, lo), hi), "CLAMP_MIN": lower, "CLAMP_MAX": upper}[expr.name]
    return _single(lambda *vs: _widen_value(fn(*vs), kind), kind)(expr, kinds, args, scope)


@register("COPY_SIGN")
def _copy_sign(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    for i in range(2):
        _require(expr, i, kinds[i], NUMERIC, "numeric")
    kind = kinds[0]
    if kind == "double":
        return _single(lambda m, s: math.copysign(m, float(s)), "double")(expr, kinds, args, scope)
    check = _checked(kind) if kind in T.INT_RANGE else (lambda v: v)
    return _single(lambda m, s: check(-abs(m) if s < 0 or (s == 0 and math.copysign(1, s) < 0) else abs(m)),
                   kind)(expr, kinds, args, scope)


@register("ROUND_TO")
def _round_to(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    field = kinds[0]
    family = DATES if field in DATES else NUMERIC
    if field not in DATES and field != "null":
        _require(expr, 0, field, NUMERIC, "numeric or date")
    for i, kind in enumerate(kinds[1:], 1):  # the points are of the field's kind
        _require(expr, i, kind, family, "date" if family is DATES else "numeric")
    kind = _common_type(expr, kinds) if field not in DATES else field

    def fn(v: Any, *points: Any) -> Any:
        below = [p for p in points if p <= v]
        return _widen_value(max(below) if below else min(points), kind)
    return _single(fn, kind)(expr, kinds, args, scope)


def _angles(name: str, fn: Callable[[float], float]) -> None:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        _arity(expr, 1)
        _require(expr, 0, kinds[0], NUMERIC, "numeric")
        arg = args[0]

        def run(row: list[Any]) -> Any:  # element-wise, like the other conversions
            v = arg(row)
            if v is None:
                return None
            return [fn(float(x)) for x in v] if type(v) is list else fn(float(v))
        return run, "double"
    REGISTRY[name] = resolve


_angles("TO_DEGREES", math.degrees)
_angles("TO_RADIANS", math.radians)
