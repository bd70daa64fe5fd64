"""Aggregate functions of STATS: each turns the values of one group into one value."""

from __future__ import annotations

import math
from typing import Any, Callable

from . import types as T
from .evaluate import EvalError, sort_key

Agg = Callable[[list[Any]], Any]


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return float(s[0])
    rank = p / 100 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (rank - lo))


def _sum(kind: str) -> Agg:
    def run(values: list[Any]) -> Any:
        if not values:
            return None
        total = sum(values)
        if kind == "double":
            return float(total)
        if not -(2**63) <= total < 2**63:
            raise EvalError("java.lang.ArithmeticException: long overflow")
        return total
    return run


def _variance(values: list[Any]) -> float | None:
    if not values:
        return None
    mean = sum(values) / len(values)
    return sum((v - mean) ** 2 for v in values) / len(values)


def _mad(values: list[Any]) -> float | None:
    if not values:
        return None
    median = _percentile(values, 50)
    return _percentile([abs(v - median) for v in values], 50)  # type: ignore[operator]


def _extreme(kind: str, pick: Callable[..., Any]) -> Agg:
    key = sort_key(kind) if kind in ("ip", "version") else None

    def run(values: list[Any]) -> Any:
        if not values:
            return None
        return pick(values, key=key) if key else pick(values)
    return run


def resolve(name: str, kind: str, extra: list[Any]) -> tuple[Agg, str]:
    """The aggregator for ``name`` over values of ``kind``, and its result type."""
    if name == "COUNT":
        return len, "long"
    if name == "COUNT_DISTINCT":
        return (lambda vs: len(set(vs))), "long"
    if name == "SUM":
        out = "double" if kind == "double" else "long"
        return _sum(out), out
    if name == "AVG":
        return (lambda vs: float(sum(vs)) / len(vs) if vs else None), "double"
    if name in ("MIN", "MAX"):
        return _extreme(kind, min if name == "MIN" else max), kind
    if name == "MEDIAN":
        return (lambda vs: _percentile(vs, 50)), "double"
    if name == "PERCENTILE":
        p = float(extra[0])
        return (lambda vs: _percentile(vs, p)), "double"
    if name == "VARIANCE":
        return _variance, "double"
    if name == "STD_DEV":
        return (lambda vs: None if not vs else math.sqrt(_variance(vs))), "double"  # type: ignore[arg-type]
    if name == "MEDIAN_ABSOLUTE_DEVIATION":
        return _mad, "double"
    if name == "VALUES":
        key = sort_key(kind)

        def values(vs: list[Any]) -> Any:
            distinct = sorted(set(vs), key=key) if key else sorted(set(vs))
            return None if not distinct else distinct[0] if len(distinct) == 1 else distinct
        return values, kind
    if name == "TOP":
        limit, order = int(extra[0]), str(extra[1]).lower()
        key = sort_key(kind)

        def top(vs: list[Any]) -> Any:
            chosen = sorted(vs, key=key, reverse=order == "desc")[:limit]
            return None if not chosen else chosen[0] if len(chosen) == 1 else chosen
        return top, kind
    raise KeyError(name)


def numeric_only(name: str) -> bool:
    return name in ("SUM", "AVG", "MEDIAN", "PERCENTILE", "VARIANCE", "STD_DEV", "MEDIAN_ABSOLUTE_DEVIATION",
                    "WEIGHTED_AVG")


def accepts(name: str, kind: str) -> bool:
    if numeric_only(name):
        return T.is_numeric(kind) or kind == "null"
    if name in ("MIN", "MAX"):
        return kind in (*T.NUMERIC, "date", "date_nanos", "boolean", "keyword", "text", "ip", "version", "null")
    return True
