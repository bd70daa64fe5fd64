"""SML's aggregate functions (spec/sml.md §7.5) for the shared ``Aggregate`` step.

``aggregate(call, scope, meter)`` is the dialect's: the value a call reads, a second input
(``earliest``/``latest``'s time field), the accumulator factory and the result type. The
accumulators take the row's values as a list (see ``query/aggregates.py``), reuse the
shared ones where SML means the same, and follow SML's dynamic rules where it does not:
the numeric aggregates read numbers and numeric-looking strings and skip anything else;
values are the same when ``values.identity`` says so (``1`` and ``1.0``, not ``"1"``).

An unknown aggregate, a wrong number of arguments or a percentile outside 0-100 is a 400
``parsing_exception`` when the task is created (``verify``).
"""

from __future__ import annotations

import math
import re
from sys import getsizeof
from typing import Any, Callable

from .. import aggregates as shared
from .. import types as T
from ..errors import ParsingError
from ..evaluate import Fn, Scope, compile_expr
from ..expr import Call, Column, Expr, Literal, Star
from . import functions
from .values import first, identity, instant, number, order_key

Factory = Callable[[], Any]
MAX_VALUES = 100  # values() and list() keep at most this many
TIME_FIELD = "@timestamp"  # earliest()/latest()'s default time field (§3)
_PERCENTILE = re.compile(r"(?:perc|p)(\d+(?:\.\d+)?)")
# name -> (least, most arguments)
ARITY: dict[str, tuple[int, int]] = {
    "count": (0, 1), "dc": (1, 1), "distinct_count": (1, 1), "sum": (1, 1), "avg": (1, 1), "mean": (1, 1),
    "min": (1, 1), "max": (1, 1), "values": (1, 1), "earliest": (1, 2), "latest": (1, 2), "first": (1, 1),
    "last": (1, 1), "median": (1, 1), "perc": (2, 2), "list": (1, 1), "stdev": (1, 1), "var": (1, 1),
    "range": (1, 1), "mode": (1, 1),
}
_ALIASES = {"distinct_count": "dc", "mean": "avg"}


def is_aggregate(name: str) -> bool:
    return name in ARITY or _PERCENTILE.fullmatch(name) is not None


def verify(call: Call) -> None:
    """Refuse (400) an aggregate SML does not have, a wrong number of arguments, a
    percentile that is not a number from 0 to 100, or a bad function call in the arguments."""
    functions.verify(call.args)
    named = _PERCENTILE.fullmatch(call.name) if call.name not in ARITY else None
    least, most = (1, 1) if named else ARITY.get(call.name, (-1, -1))
    if least < 0:
        raise _error(call, f"unknown aggregate function [{call.name}]")
    args = [a for a in call.args if not isinstance(a, Star)] if call.name == "count" else call.args
    if not least <= len(args) <= most:
        wanted = f"{least}" if least == most else f"{least} to {most}"
        raise _error(call, f"aggregate function [{call.name}] expects {wanted} argument"
                           f"{'' if most == 1 else 's'}, got {len(args)}")
    if named or call.name == "perc":
        _percent(call)


def _error(expr: Expr, message: str) -> ParsingError:
    return ParsingError(f"line {expr.src.line}:{expr.src.col}: {message}")


def _percent(call: Call) -> float:
    """The percentile a call asks for: in its name (``p95``, ``perc99``) or its second argument."""
    named = _PERCENTILE.fullmatch(call.name)
    if named:
        p: Any = float(named.group(1))
    else:
        arg = call.args[1]
        p = number(arg.value) if isinstance(arg, Literal) else None
    if p is None or not 0 <= p <= 100:
        raise _error(call, f"percentile of [{call.name}] must be a number from 0 to 100")
    return float(p)


def aggregate(call: Call, scope: Scope, meter: shared.Meter) -> tuple[Fn | None, Fn | None, Factory, str]:
    """One aggregate of ``stats``/``aggs``: (the value it reads, the time field of
    ``earliest``/``latest`` or None, the accumulator factory, the result type)."""
    verify(call)
    args = [a for a in call.args if not isinstance(a, Star)]
    name = _ALIASES.get(call.name, call.name)
    if name == "count" and not args:
        return None, None, shared.CountRows, "long"
    fn, kind = compile_expr(args[0], scope)
    if name in ("earliest", "latest"):
        time_field = args[1] if len(args) > 1 else Column(TIME_FIELD, src=call.src)
        moment, moment_kind = compile_expr(time_field, scope)
        nanos = moment_kind == "date_nanos"
        factory = lambda: shared.FirstLast(None, name == "latest", keyless=False)  # noqa: E731
        return fn, lambda row: instant(moment(row), nanos), factory, kind
    if name not in ARITY or name == "perc":
        p = _percent(call)
        return fn, None, (lambda: Numbers(shared.Collect(lambda vs: _nearest_rank(vs, p), meter, 32))), \
            _numeric_kind(kind)
    factory, out = _FACTORIES[name](kind, meter)
    return fn, None, factory, out


def _numeric_kind(kind: str) -> str:
    """The type of a result that is one of the values read, as a number."""
    return kind if T.is_numeric(kind) or kind in ("date", "date_nanos") else T.ANY


def _nearest_rank(values: list[Any], p: float) -> Any:
    """The nearest-rank percentile: the smallest value with at least ``p``% of the values
    at or below it (the smallest value for ``p`` = 0)."""
    if not values:
        return None
    values.sort()  # in place (the accumulator's own list): a running percentile then sorts an almost sorted one
    return values[max(math.ceil(p / 100 * len(values)), 1) - 1]


# --- accumulators -----------------------------------------------------------------------------

class Numbers:
    """Hands only the numbers among the values on (numeric-looking strings as numbers)."""

    __slots__ = ("inner",)

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def add(self, values: list[Any], others: Any = None) -> None:
        numbers = [n for v in values if (n := number(v)) is not None and n == n]
        if numbers:
            self.inner.add(numbers)

    def result(self) -> Any:
        return self.inner.result()


class Present(shared.CountRows):
    """``count(f)``: the rows where ``f`` is not null."""

    __slots__ = ()

    def add(self, values: list[Any], others: Any = None) -> None:
        if values:
            self.n += 1


class Sum:
    """Integers summed exactly, doubles with compensation; an integer total past the long
    range is a double."""

    __slots__ = ("whole", "doubles", "seen")

    def __init__(self) -> None:
        self.whole = 0
        self.doubles: shared.Kahan | None = None
        self.seen = False

    def add(self, values: list[Any], others: Any = None) -> None:
        self.seen = True
        for v in values:
            if type(v) is int:
                self.whole += v
            else:
                if self.doubles is None:
                    self.doubles = shared.Kahan()
                self.doubles.add(v)

    def result(self) -> Any:
        if not self.seen:
            return None
        if self.doubles is not None:
            return self.whole + self.doubles.value()
        return self.whole if T.INT_RANGE["long"][0] <= self.whole <= T.INT_RANGE["long"][1] else float(self.whole)


class Extreme:
    """``min``/``max``: over the numbers among the values; over the strings (by code point)
    when there is no number."""

    __slots__ = ("numbers", "strings")

    def __init__(self, smallest: bool) -> None:
        self.numbers = shared.Extreme(None, smallest)
        self.strings = shared.Extreme(None, smallest)

    def add(self, values: list[Any], others: Any = None) -> None:
        for v in values:
            n = number(v)
            if n is not None and n == n:
                self.numbers.add([n])
            elif type(v) is str:
                self.strings.add([v])

    def result(self) -> Any:
        best = self.numbers.result()
        return best if best is not None else self.strings.result()


class Range:
    """``range(f)``: the largest number minus the smallest."""

    __slots__ = ("low", "high")

    def __init__(self) -> None:
        self.low, self.high = shared.Extreme(None, True), shared.Extreme(None, False)

    def add(self, values: list[Any], others: Any = None) -> None:
        self.low.add(values)
        self.high.add(values)

    def result(self) -> Any:
        low = self.low.result()
        return None if low is None else self.high.result() - low


class Ordinal:
    """``first(f)``/``last(f)``: the first / last non-null value in input order."""

    __slots__ = ("value", "seen", "last")

    def __init__(self, last: bool) -> None:
        self.value: Any = None
        self.seen = False
        self.last = last

    def add(self, values: list[Any], others: Any = None) -> None:
        if values and (self.last or not self.seen):
            self.value, self.seen = T.collapse(values), True

    def result(self) -> Any:
        return self.value


class Listed:
    """``list(f)``: the values in input order, the first ``MAX_VALUES`` of them."""

    __slots__ = ("values", "meter")

    def __init__(self, meter: shared.Meter) -> None:
        self.values: list[Any] = []
        self.meter = meter

    def add(self, values: list[Any], others: Any = None) -> None:
        room = MAX_VALUES - len(self.values)
        if values and room > 0:
            kept = values[:room]
            self.values.extend(kept)
            self.meter.bytes += sum(16 + getsizeof(v) for v in kept)

    def result(self) -> Any:
        return list(self.values) or None


class Mode:
    """``mode(f)``: the most frequent value, the first seen of equally frequent ones."""

    __slots__ = ("counts", "meter")

    def __init__(self, meter: shared.Meter) -> None:
        self.counts: dict[tuple, list[Any]] = {}  # identity -> [count, the value]
        self.meter = meter

    def add(self, values: list[Any], others: Any = None) -> None:
        for v in values:
            key = identity(v)
            entry = self.counts.get(key)
            if entry is None:
                self.counts[key] = [1, v]
                self.meter.bytes += 160 + getsizeof(v)
            else:
                entry[0] += 1

    def result(self) -> Any:
        best = max(self.counts.values(), key=lambda entry: entry[0], default=None)  # max keeps the first of ties
        return None if best is None else best[1]


class Identities(shared.Distinct):
    """The shared distinct-value keeper over ``values.identity`` keys (``1`` is ``1.0``,
    ``true`` is not ``1``, objects by their JSON)."""

    __slots__ = ()

    def add(self, values: list[Any], others: Any = None) -> None:
        super().add([identity(v) for v in values])


def _sorted_values(keys: set[tuple]) -> list[Any] | None:
    """``values(f)``: the distinct values, numbers before strings, the first ``MAX_VALUES``."""
    if not keys:
        return None
    return sorted((key[1] for key in keys), key=order_key)[:MAX_VALUES]


_FACTORIES: dict[str, Callable[[str, shared.Meter], tuple[Factory, str]]] = {
    "count": lambda kind, meter: (Present, "long"),
    "dc": lambda kind, meter: ((lambda: Identities(len, meter)), "long"),
    "sum": lambda kind, meter: ((lambda: Numbers(Sum())), T.ANY),
    "avg": lambda kind, meter: ((lambda: Numbers(shared.Avg())), "double"),
    "min": lambda kind, meter: ((lambda: Extreme(True)), _numeric_kind(kind)),
    "max": lambda kind, meter: ((lambda: Extreme(False)), _numeric_kind(kind)),
    "values": lambda kind, meter: ((lambda: Identities(_sorted_values, meter)), kind),
    "first": lambda kind, meter: ((lambda: Ordinal(False)), kind),
    "last": lambda kind, meter: ((lambda: Ordinal(True)), kind),
    "median": lambda kind, meter: ((lambda: Numbers(shared.Collect(lambda vs: _nearest_rank(vs, 50), meter, 32))),
                                   _numeric_kind(kind)),
    "list": lambda kind, meter: ((lambda: Listed(meter)), kind),
    "stdev": lambda kind, meter: ((lambda: Numbers(shared.Variance(root=True, sample=True))), "double"),
    "var": lambda kind, meter: ((lambda: Numbers(shared.Variance(root=False, sample=True))), "double"),
    "range": lambda kind, meter: ((lambda: Numbers(Range())), T.ANY),
    "mode": lambda kind, meter: ((lambda: Mode(meter)), kind),
}
