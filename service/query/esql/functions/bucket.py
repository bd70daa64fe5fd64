"""BUCKET and the roundings it picks."""

from __future__ import annotations

import math
from typing import Any, Callable

from ....errors import ServiceError
from ....store.dates import DAY_MS, civil_from_days
from ... import numeric
from ... import types as T
from ...evaluate import EvalError, Fn, MV_WARNING, Scope, verify_fail
from ...expr import Call
from ...spans import SPAN_MS, date_trunc
from ._base import NUMERIC, _require, _single, register
from .conversion import _java_double, _to_date_value
from .dates import DATES, check_interval
from .strings import STRING, _INTS


# --- BUCKET ------------------------------------------------------------------------------

# Elasticsearch's "human" date roundings for BUCKET(date, n, from, to), coarsest first
# after the year; the finest one that still gives at most n buckets is chosen.
_HUMAN_DATE_ROUNDINGS = [(1, "mo"), (1, "w"), (1, "d"), (12, "h"), (3, "h"), (1, "h"), (30, "m"), (10, "m"), (5, "m"),
                         (1, "m"), (30, "s"), (10, "s"), (5, "s"), (1, "s"), (100, "ms"), (50, "ms"), (10, "ms"),
                         (1, "ms")]


def _steps_to_reach(span: tuple[int, str], start: int, end: int) -> int:
    """How many roundings after the one holding ``start`` it takes to reach ``end``: counted,
    not stepped through, so a huge bucket count over a huge range costs nothing."""
    first = date_trunc(start, span)
    if end <= first:
        return 0
    amount, unit = span
    if unit in SPAN_MS:
        return -((first - end) // (amount * SPAN_MS[unit]))  # ceiling division
    y0, m0, _ = civil_from_days(first // DAY_MS)  # monthly: ``first`` is the 1st, at midnight
    y1, m1, d1 = civil_from_days(end // DAY_MS)
    months = (y1 * 12 + m1) - (y0 * 12 + m0)
    return months if (d1, end % DAY_MS) == (1, 0) else months + 1


def _rounding_fits(span: tuple[int, str], buckets: int, start: int, end: int) -> bool:
    steps = _steps_to_reach(span, start, end)
    return steps == 0 or steps + 1 <= buckets


def pick_date_rounding(buckets: int, start: int, end: int) -> tuple[int, str]:
    chosen = (1, "y")
    for span in _HUMAN_DATE_ROUNDINGS:
        if not _rounding_fits(span, buckets, start, end):
            break
        chosen = span
    return chosen


def _java_ceil(x: float) -> float:
    return float(math.ceil(x)) if math.isfinite(x) else x


def pick_numeric_rounding(buckets: int, start: float, end: float) -> float:
    """ES's bucket width for ``buckets`` over ``[start, end]``, in Java doubles: a count of
    zero or an empty range gives an infinite, zero or NaN width, which then fails per row."""
    span = end - start
    precise = span / buckets if buckets else (math.copysign(math.inf, span) if span else math.nan)
    next_power = numeric.java_pow(10.0, _java_ceil(numeric.java_log10(precise)))
    half = next_power / 2
    return half if precise < half else next_power


def _bucket_number(step: float) -> Callable[[Any], float]:
    """``floor(v / step) * step`` as ES evaluates it (a Div, a Floor, a Mul), each step's
    non-finite result a warning and null."""
    def bucket(v: Any) -> float:
        quotient = v / step if step else math.nan
        if not math.isfinite(quotient):
            raise EvalError("java.lang.ArithmeticException: / by zero")
        out = float(math.floor(quotient)) * step
        if not math.isfinite(out):
            raise EvalError("java.lang.ArithmeticException: not a finite double number: " + _java_double(out))
        return out
    return bucket


def _constant_arg(expr: Call, i: int, scope: Scope) -> Any:
    from ...evaluate import fold
    constant, value = fold(expr.args[i], scope)
    if not constant or value is None:
        raise verify_fail(expr.args[i].src, f"{['first', 'second', 'third', 'fourth'][i]} argument of "
                                            f"[{expr.src.text}] must be a constant, received [{expr.args[i].src.text}]")
    return value


def _date_bound(expr: Call, i: int, kind: str, scope: Scope) -> int:
    _require(expr, i, kind, (*DATES, *STRING), "datetime, date_nanos or string")
    bound = _constant_arg(expr, i, scope)
    if type(bound) is list:
        raise verify_fail(expr.args[i].src, MV_WARNING)
    if not isinstance(bound, str):
        return bound // 1_000_000 if kind == "date_nanos" else bound
    try:
        return _to_date_value(bound, "keyword")
    except EvalError as exc:  # ES parses the bounds while planning: the query fails
        raise ServiceError(exc.java_message.removeprefix("java.lang.IllegalArgumentException: "), status=400,
                           type="illegal_argument_exception") from None


def _numeric_arg(expr: Call, i: int, kind: str, scope: Scope) -> float:
    _require(expr, i, kind, NUMERIC, "numeric")
    value = _constant_arg(expr, i, scope)
    if type(value) is list:
        raise verify_fail(expr.args[i].src, MV_WARNING)
    return float(value)


@register("BUCKET")
def _bucket(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    if len(args) not in (2, 4):
        raise verify_fail(expr.src, f"error building [bucket]: expects exactly two or four arguments")
    kind = kinds[0]
    if kind not in DATES and not T.is_numeric(kind):
        _require(expr, 0, kind, (), "datetime or numeric")
    if kind in DATES:
        span = _date_span(expr, kinds, scope)
        scale = 1_000_000 if kind == "date_nanos" else 1
        return _single(lambda d: date_trunc(d // scale, span) * scale, kind)(expr, kinds[:1], args[:1], scope)
    if len(args) == 4:
        _require(expr, 1, kinds[1], _INTS, "integer")
        step = pick_numeric_rounding(int(_numeric_arg(expr, 1, kinds[1], scope)),
                                     _numeric_arg(expr, 2, kinds[2], scope), _numeric_arg(expr, 3, kinds[3], scope))
    else:
        step = _numeric_arg(expr, 1, kinds[1], scope)
    return _single(_bucket_number(step), "double")(expr, kinds[:1], args[:1], scope)


def _date_span(expr: Call, kinds: list[str], scope: Scope) -> tuple[int, str]:
    if len(expr.args) == 4:
        _require(expr, 1, kinds[1], _INTS, "integer")
        buckets = _constant_arg(expr, 1, scope)
        start, end = (_date_bound(expr, i, kinds[i], scope) for i in (2, 3))
        return pick_date_rounding(int(buckets), start, end)
    if kinds[1] not in ("date_period", "time_duration"):
        raise verify_fail(expr.args[1].src, f"second argument of [{expr.src.text}] must be [date_period or "
                                            f"time_duration] when the first is a date, found value "
                                            f"[{expr.args[1].src.text}] type [{kinds[1]}]")
    check_interval(expr.args[1], scope)
    return _constant_arg(expr, 1, scope)
