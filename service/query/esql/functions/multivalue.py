"""Multi-value functions (they take the whole list)."""

from __future__ import annotations

import itertools
import math
from typing import Any, Callable

from ... import numeric
from ... import types as T
from ...evaluate import EvalError, Fn, MV_WARNING, Scope, _checked, sort_key
from ...expr import Call
from ._base import REGISTRY, _arity, register
from .conditional import _common_type


# multi-value functions (take the whole list)

def _mv(name: str, fn: Callable[[list[Any], str], Any], out: str | None = None) -> None:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        kind = kinds[0]
        arg = args[0]
        extra = args[1:]
        out_kind = out or kind
        if out == "double_or_same":
            out_kind = "double" if kind == "double" else kind
        warnings, src = scope.warnings, expr.src

        def run(row: list[Any]) -> Any:
            v = arg(row)
            if v is None:
                return None
            values = v if type(v) is list else [v]
            options = [e(row) for e in extra]
            if any(o is None for o in options):
                return None
            if any(type(o) is list for o in options):  # the other arguments are single values
                warnings.failure(src, MV_WARNING)
                return None
            try:
                return fn(values, kind, *options)
            except EvalError as exc:
                warnings.failure(src, exc.java_message)
                return None
        return run, out_kind
    REGISTRY[name] = resolve


def _keyed(kind: str) -> Callable[[Any], Any] | None:
    return sort_key(kind)


def _mv_sum(values: list[Any], kind: str) -> Any:
    if kind == "double":
        return float(sum(values))
    return _checked(kind)(sum(values))


def _median(values: list[Any], kind: str) -> Any:
    s = sorted(values)
    n = len(s)
    if kind == "double":
        return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2


def _mv_slice(values: list[Any], kind: str, start: int, end: int | None = None) -> Any:
    n = len(values)
    end = start if end is None else end
    if start < 0:
        start += n
    if end < 0:
        end += n
    out = values[max(start, 0):end + 1]
    return T.collapse(out)


_mv("MV_COUNT", lambda v, k: len(v), "integer")
_mv("MV_FIRST", lambda v, k: v[0])
_mv("MV_LAST", lambda v, k: v[-1])
_mv("MV_MIN", lambda v, k: min(v, key=_keyed(k)) if _keyed(k) else min(v))
_mv("MV_MAX", lambda v, k: max(v, key=_keyed(k)) if _keyed(k) else max(v))
_mv("MV_SUM", _mv_sum)
_mv("MV_AVG", lambda v, k: float(sum(v)) / len(v), "double")
_mv("MV_MEDIAN", _median)
_mv("MV_DEDUPE", lambda v, k: T.collapse(list(dict.fromkeys(v))))
_mv("MV_SORT", lambda v, k, order="ASC": T.collapse(sorted(v, key=_keyed(k), reverse=str(order).upper() == "DESC")))
_mv("MV_CONCAT", lambda v, k, delim: delim.join(v), "keyword")
_mv("MV_SLICE", _mv_slice)


@register("MV_APPEND")
def _mv_append(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    a, b = args

    def run(row: list[Any]) -> Any:
        x, y = a(row), b(row)
        if x is None or y is None:
            return x if y is None else y
        return (x if type(x) is list else [x]) + (y if type(y) is list else [y])
    return run, _common_type(expr, kinds)


@register("MV_ZIP")
def _mv_zip(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2, 3)
    left, right = args[0], args[1]
    delim = args[2] if len(args) == 3 else (lambda row: ",")

    def run(row: list[Any]) -> Any:
        a, b, d = left(row), right(row), delim(row)
        if d is None or (a is None and b is None):
            return None
        if type(d) is list:
            scope.warnings.failure(expr.src, MV_WARNING)
            return None
        xs = [] if a is None else a if type(a) is list else [a]
        ys = [] if b is None else b if type(b) is list else [b]
        out = [d.join(p for p in pair if p is not None) for pair in itertools.zip_longest(xs, ys)]
        return T.collapse(out)
    return run, "keyword"


def _mv_percentile(values: list[Any], kind: str, p: Any) -> Any:
    if not 0 <= p <= 100:
        raise EvalError(f"java.lang.IllegalArgumentException: Percentile parameter must be a number between 0 and "
                        f"100, found [{float(p)}]")
    s = sorted(values)
    rank = p / 100 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    if kind == "double":
        return s[lo] + (s[hi] - s[lo]) * (rank - lo)
    return s[lo] + int((s[hi] - s[lo]) * (rank - lo))


def _mv_mad(values: list[Any], kind: str) -> Any:
    median = _median(values, kind)
    return _median([abs(v - median) for v in values], kind)


def _pseries(values: list[Any], kind: str, p: Any) -> float:
    # weights are Java doubles: a huge p makes a weight infinite (a term of 0), a hugely
    # negative one makes it 0 (an infinite term), never a huge exact power
    total = 0.0
    for i, v in enumerate(sorted(values, reverse=True)):
        weight = numeric.java_pow(i + 1.0, float(p))
        term = v / weight if weight else math.nan
        if not math.isfinite(term):
            raise EvalError("java.lang.ArithmeticException: double overflow")
        total += term
    if not math.isfinite(total):
        raise EvalError("java.lang.ArithmeticException: double overflow")
    return total


_mv("MV_PERCENTILE", _mv_percentile)
_mv("MV_MEDIAN_ABSOLUTE_DEVIATION", _mv_mad)
_mv("MV_PSERIES_WEIGHTED_SUM", _pseries, "double")
