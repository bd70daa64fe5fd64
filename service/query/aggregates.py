"""Aggregate functions of STATS as accumulators: one object per (group, aggregate) that
takes the values of each row as they stream past and gives the result at the end.

``add(values, others)`` receives the row's values of the first argument as a list (empty
for null, several for a multi-value) and, for two-input aggregates, those of the second.

The accumulators that keep values (percentiles, distinct values, TOP) add what they keep
to a ``Meter`` shared by the whole STATS, which charges it to the query's breaker once
per batch of rows; the others hold a fixed size, counted once per group.
"""

from __future__ import annotations

import functools
import math
import operator
from sys import getsizeof
from typing import Any, Callable

from . import types as T
from .evaluate import MV_WARNING, EvalError, sort_key


_POINTER = 16  # a list's slot for each value it keeps, with what the list over-allocates and the allocator rounds up
_SET_SLOT = 40  # a set's hash slots for each value (about 5 slots per 3 values, 16 bytes each)
_PAIR = 72  # TOP's (key, value) tuple beside the value itself
# values of these types are small objects of one size (as the allocator rounds them): no need to measure each
_FIXED_BYTES = {"integer": 32, "long": 32, "double": 32, "date": 32, "date_nanos": 32, "boolean": 32,
                "unsigned_long": 48}


class Meter:
    """The bytes the value-keeping accumulators of one STATS hold."""

    __slots__ = ("bytes",)

    def __init__(self) -> None:
        self.bytes = 0


def _identity(v: Any) -> Any:
    return v


def _first(pair: tuple[Any, Any]) -> Any:
    return pair[0]


def _percentile(values: list[Any], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    if len(s) == 1:
        return float(s[0])
    rank = p / 100 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (rank - lo))


def _mad(values: list[Any]) -> float | None:
    if not values:
        return None
    median = _percentile(values, 50)
    return _percentile([abs(v - median) for v in values], 50)  # type: ignore[operator]


class CountRows:
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def add(self, values: Any, others: Any = None) -> None:
        self.n += 1

    def result(self) -> int:
        return self.n


class Count(CountRows):
    __slots__ = ()

    def add(self, values: list[Any], others: Any = None) -> None:
        self.n += len(values)


class Kahan:
    """Compensated (Neumaier) summation, as Elasticsearch sums doubles."""

    __slots__ = ("total", "c")

    def __init__(self) -> None:
        self.total = 0.0
        self.c = 0.0

    def add(self, v: float) -> None:
        t = self.total + v
        self.c += (self.total - t) + v if abs(self.total) >= abs(v) else (v - t) + self.total
        self.total = t

    def value(self) -> float:
        return self.total + self.c


class Sum:
    __slots__ = ("total", "seen", "double")

    def __init__(self, double: bool) -> None:
        self.total: Any = Kahan() if double else 0
        self.seen = False
        self.double = double

    def add(self, values: list[Any], others: Any = None) -> None:
        if values:
            self.seen = True
            if self.double:
                for v in values:
                    self.total.add(v)
            else:
                self.total += sum(values)

    def result(self) -> Any:
        if not self.seen:
            return None
        if self.double:
            return self.total.value()
        if not -(2**63) <= self.total < 2**63:
            raise EvalError("java.lang.ArithmeticException: long overflow")
        return self.total


class Avg:
    __slots__ = ("total", "n")

    def __init__(self) -> None:
        self.total = Kahan()
        self.n = 0

    def add(self, values: list[Any], others: Any = None) -> None:
        for v in values:
            self.total.add(v)
        self.n += len(values)

    def result(self) -> float | None:
        return self.total.value() / self.n if self.n else None


class Extreme:
    __slots__ = ("best", "key", "better")

    def __init__(self, key: Callable[[Any], Any] | None, smallest: bool) -> None:
        self.best: Any = None
        self.key = key or _identity
        self.better = operator.lt if smallest else operator.gt

    def add(self, values: list[Any], others: Any = None) -> None:
        for v in values:
            if self.best is None or self.better(self.key(v), self.key(self.best)):
                self.best = v

    def result(self) -> Any:
        return self.best


class Variance:
    """Population variance (or its square root) by Welford's online algorithm, as
    Elasticsearch computes it, so the rounding matches and no value is kept. ``sample``:
    the sample variance (SML's ``var``/``stdev``), null below two values."""

    __slots__ = ("count", "mean", "m2", "root", "sample")

    def __init__(self, root: bool, sample: bool = False) -> None:
        self.count = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.root = root
        self.sample = sample

    def add(self, values: list[Any], others: Any = None) -> None:
        for v in values:
            self.count += 1
            delta = v - self.mean
            self.mean += delta / self.count
            self.m2 += delta * (v - self.mean)

    def result(self) -> float | None:
        if self.count < (2 if self.sample else 1):
            return None
        variance = self.m2 / (self.count - 1 if self.sample else self.count)
        return math.sqrt(variance) if self.root else variance


class Collect:
    """Keeps every value and hands the list to ``finish`` (percentiles, median...); ``each``
    is the size of one value when they all have the same (0: measure them)."""

    __slots__ = ("values", "finish", "meter", "each")

    def __init__(self, finish: Callable[[list[Any]], Any], meter: Meter, each: int) -> None:
        self.values: list[Any] = []
        self.finish = finish
        self.meter = meter
        self.each = each

    def add(self, values: list[Any], others: Any = None) -> None:
        if values:
            self.values.extend(values)
            self.meter.bytes += (_POINTER + self.each) * len(values) if self.each else \
                _POINTER * len(values) + sum(map(getsizeof, values))

    def result(self) -> Any:
        return self.finish(self.values)


class Distinct:
    """Keeps each distinct value once and hands the set to ``finish`` (COUNT_DISTINCT, VALUES)."""

    __slots__ = ("values", "finish", "meter")

    def __init__(self, finish: Callable[[set[Any]], Any], meter: Meter) -> None:
        self.values: set[Any] = set()
        self.finish = finish
        self.meter = meter

    def add(self, values: list[Any], others: Any = None) -> None:
        if values:
            seen = self.values
            before = len(seen)
            seen.update(values)
            if len(seen) != before:
                self.meter.bytes += (len(seen) - before) * (_SET_SLOT + getsizeof(values[0]))

    def result(self) -> Any:
        return self.finish(self.values)


class Present:
    __slots__ = ("seen", "want")

    def __init__(self, want: bool) -> None:
        self.seen = False
        self.want = want

    def add(self, values: list[Any], others: Any = None) -> None:
        self.seen = self.seen or bool(values)

    def result(self) -> bool:
        return self.seen == self.want


class WeightedAvg:
    """SUM(value * weight) / SUM(weight). A constant weight applies to every value of a
    multi-valued row; otherwise both sides must be single values."""

    __slots__ = ("total", "weights", "constant", "integral", "error", "seen")

    def __init__(self, constant: bool, integral: bool) -> None:
        self.total: Any = 0 if integral else Kahan()
        self.weights: Any = 0
        self.constant, self.integral = constant, integral
        self.error: EvalError | None = None
        self.seen = False

    def add(self, values: list[Any], others: list[Any]) -> None:
        if not values or not others:
            return
        self.seen = True
        if len(others) > 1 or (len(values) > 1 and not self.constant):
            self.error = EvalError(MV_WARNING)
            return
        w = others[0]
        for v in values:
            if self.integral:
                self.total += v * w
            else:
                self.total.add(v * w)
            self.weights += w

    def result(self) -> float | None:
        if self.error is not None:
            raise self.error
        total = self.total if self.integral else self.total.value()
        if self.integral and not -(2**63) <= total < 2**63:
            raise EvalError("java.lang.ArithmeticException: long overflow")
        if self.weights == 0:
            if self.seen:
                raise EvalError("java.lang.ArithmeticException: / by zero")
            return None
        return total / self.weights


class FirstLast:
    """FIRST(value, sort) / LAST(value, sort): the value of the row with the smallest
    (largest) sort key, the earlier row on a tie; rows without a sort key count only if no
    row has one, and never unless ``keyless`` (SML's ``earliest``/``latest``)."""

    __slots__ = ("best_key", "best", "fallback", "key", "last", "keyless")

    def __init__(self, key: Callable[[Any], Any] | None, last: bool, keyless: bool = True) -> None:
        self.best_key: Any = None
        self.best: Any = None
        self.fallback: Any = None
        self.key = key or _identity
        self.last = last
        self.keyless = keyless

    def add(self, values: list[Any], others: list[Any]) -> None:
        if not values:
            return
        if not others:
            if self.keyless and self.fallback is None:
                self.fallback = T.collapse(values)
            return
        k = self.key(max(others, key=self.key) if self.last else min(others, key=self.key))
        if self.best_key is None or (k > self.best_key if self.last else k < self.best_key):
            self.best_key, self.best = k, T.collapse(values)

    def result(self) -> Any:
        return self.best if self.best_key is not None else self.fallback


class Top:
    """The ``limit`` first values by key. The pairs are cut back to ``limit`` whenever they
    pass twice that: a stable sort keeps the earlier of equal keys, as one sort at the end."""

    __slots__ = ("pairs", "limit", "desc", "key", "output", "meter")

    def __init__(self, limit: int, desc: bool, key: Callable[[Any], Any] | None, output: bool,
                 meter: Meter) -> None:
        self.pairs: list[tuple[Any, Any]] = []
        self.limit, self.desc, self.key, self.output = limit, desc, key or _identity, output
        self.meter = meter

    def add(self, values: list[Any], others: list[Any] | None) -> None:
        before = len(self.pairs)
        if self.output:
            if len(values) == 1 and others:
                self.pairs.extend((self.key(values[0]), o) for o in others)
        else:
            self.pairs.extend((self.key(v), v) for v in values)
        added = len(self.pairs) - before
        if added:
            self.meter.bytes += added * (_PAIR + getsizeof(self.pairs[-1][1]))
            if 0 < self.limit and len(self.pairs) > 2 * self.limit + 64:
                self._cut()

    def _cut(self) -> None:
        before = len(self.pairs)
        self.pairs.sort(key=_first, reverse=self.desc)
        del self.pairs[self.limit:]
        self.meter.bytes -= (before - len(self.pairs)) * _PAIR

    def result(self) -> Any:
        chosen = sorted(self.pairs, key=_first, reverse=self.desc)[:self.limit]
        return T.collapse([v for _, v in chosen])


def _values(kind: str) -> Callable[[set[Any]], Any]:
    key = sort_key(kind)
    return lambda vs: T.collapse(sorted(vs, key=key) if key else sorted(vs))


Factory = Callable[[], Any]
TWO_INPUTS = {"WEIGHTED_AVG", "FIRST", "LAST"}


def resolve(name: str, kind: str, extra: list[Any], other: str | None = None,
            meter: Meter | None = None) -> tuple[Factory, str]:
    """A factory of accumulators for ``name`` over values of ``kind``, and the result type.
    ``extra`` holds the constant arguments; ``other`` is the type of a second input;
    ``meter`` counts what value-keeping accumulators hold."""
    key = sort_key(kind)
    meter = meter if meter is not None else Meter()
    each = _FIXED_BYTES.get(kind, 0)
    if name == "COUNT":
        return Count, "long"
    if name == "COUNT_DISTINCT":
        return (lambda: Distinct(len, meter)), "long"
    if name == "SUM":
        out = "null" if kind == "null" else "double" if kind == "double" else "long"
        return (lambda: Sum(out == "double")), out
    if name == "AVG":
        return Avg, "double"
    if name in ("MIN", "MAX"):
        return (lambda: Extreme(key if kind in ("ip", "version") else None, name == "MIN")), kind
    if name in ("MEDIAN", "PERCENTILE"):
        p = 50.0 if name == "MEDIAN" else float(extra[0])
        if not 0 <= p <= 100:  # ES's percentile states answer null for one out of range
            return (lambda: Collect(lambda vs: None, meter, each)), "double"
        finish = functools.partial(_percentile, p=p)
        return (lambda: Collect(finish, meter, each)), "double"
    if name in ("VARIANCE", "STD_DEV"):
        return (lambda: Variance(name == "STD_DEV")), "double"
    if name == "MEDIAN_ABSOLUTE_DEVIATION":
        return (lambda: Collect(_mad, meter, each)), "double"
    if name == "VALUES":
        return (lambda: Distinct(_values(kind), meter)), kind
    if name == "TOP":
        limit, desc = int(extra[0]), str(extra[1]).lower() == "desc"
        output = other is not None
        return (lambda: Top(limit, desc, key, output, meter)), (other if output else kind)
    if name in ("PRESENT", "ABSENT"):
        return (lambda: Present(name == "PRESENT")), "boolean"
    if name == "WEIGHTED_AVG":
        constant, integral = bool(extra), kind in ("integer", "long")
        return (lambda: WeightedAvg(constant, integral)), "double"
    if name in ("FIRST", "LAST"):
        other_key = sort_key(other or "null")
        return (lambda: FirstLast(other_key, name == "LAST")), kind
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
