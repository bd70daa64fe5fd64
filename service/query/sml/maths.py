"""SML's mathematical, time (with SPL's relative_time) and statistical eval functions
(spec/sml.md §6.1): numbers and numeric-looking strings in, null for anything else or a
result no JSON number holds."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

from ...errors import ServiceError
from ...store.dates import parse_iso_nanos
from .. import types as T
from ..evaluate import Scope
from ..expr import Call
from . import times
from .registry import Clock, Compiled, raw, register, scalar
from .values import TypeMismatch, leaves, number, numeric, order_key, result, text


# --- mathematical -----------------------------------------------------------------------------

@scalar("abs", 1, 1, T.ANY)
def _abs(x: Any) -> Any:
    return result(abs(numeric(x)))


@scalar("ceil ceiling", 1, 1, "long")
def _ceil(x: Any) -> int:
    return result(math.ceil(numeric(x)))


@scalar("floor", 1, 1, "long")
def _floor(x: Any) -> int:
    return result(math.floor(numeric(x)))


_DECIMAL = Context(prec=1000, rounding=ROUND_HALF_UP)
_MAX_DIGITS = 400  # past this, every double rounds to itself (or to zero)


@scalar("round", 1, 2, T.ANY)
def _round(x: Any, digits: Any = 0) -> Any:
    """``x`` rounded half away from zero to ``digits`` decimals (negative: tens, hundreds...);
    an integer with no fractional digits asked stays as it is, ``digits <= 0`` gives an
    integer."""
    value, n = numeric(x), int(numeric(digits))
    if type(value) is int and n >= 0:
        return value
    n = max(-_MAX_DIGITS, min(_MAX_DIGITS, n))
    exact = Decimal(repr(value)) if type(value) is float else Decimal(value)
    rounded = exact.quantize(Decimal(1).scaleb(-n), context=_DECIMAL)
    return result(int(rounded)) if n <= 0 else result(float(rounded))


@scalar("exact sigfig", 1, 1, T.ANY)
def _unchanged(x: Any) -> Any:
    """``exact`` marks a precise computation and ``sigfig`` rounds to the operands'
    significant figures in SPL; here both return the number unchanged (spec §6.1)."""
    return numeric(x)


@scalar("exp", 1, 1, "double")
def _exp(x: Any) -> float:
    return result(math.exp(numeric(x)))


@scalar("ln", 1, 1, "double")
def _ln(x: Any) -> float:
    return math.log(numeric(x))


@scalar("log", 1, 2, "double")
def _log(x: Any, base: Any = 10) -> float:
    """The logarithm in ``base`` (10 by default); bases 10 and 2 exactly where the power is
    exact (``log(1000)`` is 3, not ``math.log``'s 2.9999999999999996)."""
    value, radix = numeric(x), numeric(base)
    if radix == 10:
        return math.log10(value)
    if radix == 2:
        return math.log2(value)
    return math.log(value, radix)


@scalar("sqrt", 1, 1, "double")
def _sqrt(x: Any) -> float:
    return math.sqrt(numeric(x))


@scalar("pow", 2, 2, T.ANY)
def _pow(x: Any, y: Any) -> Any:
    """``x`` to the ``y``: exact for integers while the result fits a long, else a double
    (a complex or infinite result is null)."""
    base, exponent = numeric(x), numeric(y)
    if type(base) is int and type(exponent) is int and exponent >= 0 and \
            (abs(base) <= 1 or exponent * math.log2(abs(base)) < 64):
        return result(base ** exponent)
    return result(math.pow(base, exponent))


def _pi(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    return (lambda row: math.pi), "double"


register("pi", 0, 0, _pi)


# --- time ------------------------------------------------------------------------------------

def _now(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """The task's creation instant, epoch ms (one value for the whole task)."""
    now = clock()
    return (lambda row: now), "date"


register("now", 0, 0, _now)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SUBSECONDS = re.compile(r"%(\d?)([NQ])|%s|%%")


def _millis(t: Any) -> int:
    """A time argument: epoch ms, or an ISO-8601 string."""
    n = number(t)
    if n is not None:
        return int(n)
    if type(t) is str:
        return parse_iso_nanos(t) // 1_000_000
    raise TypeMismatch(t)


@scalar("strftime", 2, 2, "keyword")
def _strftime(t: Any, fmt: Any) -> str:
    """``t`` (epoch ms) in UTC by a C ``strftime`` format; also ``%s`` (epoch seconds) and
    SPL's subseconds ``%3N`` (ms), ``%6N`` (µs), ``%N``/``%9N`` (ns), and ``%Q`` the same
    with 3 digits by default (``%3Q``, ``%6Q``, ``%9Q``)."""
    ms = _millis(t)
    moment = _EPOCH + timedelta(milliseconds=ms)

    def own(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%%"
        if m.group(0) == "%s":
            return str(ms // 1000)
        width = int(m.group(1) or (9 if m.group(2) == "N" else 3))
        return f"{ms % 1000:03d}{'0' * 6}"[:width]
    return moment.strftime(_SUBSECONDS.sub(own, text(fmt)))


@scalar("relative_time", 2, 2, "date")
def _relative_time(t: Any, modifier: Any) -> int:
    """``t`` (epoch ms) moved by a time modifier as ``earliest=`` reads one, ``t`` standing
    for now (``-1d@d``, ``@h``, ``+1d@d+8h``, ``now-1h``); null for no such modifier."""
    try:
        return times.resolve(text(modifier), _millis(t), round_up=False, name="relative_time")
    except ServiceError:
        raise TypeMismatch(modifier) from None


_PARSE_AS = {"F": "%Y-%m-%d", "T": "%H:%M:%S", "N": "%f", "Q": "%f", "%": "%%"}
_PARSE_SHORTHANDS = re.compile(r"%\d?([NQ])|%([FT%])")
_EPOCH_SECONDS = re.compile(r"[+-]?[0-9]+")


def _strptime_call(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``strptime``; over a value the index holds as a date (a string its mapping read as
    one: its text is gone, the expression sees epoch ms or, for ``date_nanos``, ns), that
    instant whatever the format, where parsing the number's digits would give null."""
    (value, kind), (fmt, _) = args
    scale = 1_000_000 if kind == "date_nanos" else 1

    def held(t: Any, f: Any) -> int:
        return int(numeric(t)) // scale
    read = held if kind in ("date", "date_nanos") else _strptime
    return scope.dialect.single(read, expr.src, scope.warnings, [value, fmt]), "date"


register("strptime", 2, 2, _strptime_call)


def _strptime(s: Any, fmt: Any) -> int:
    """``s`` read by a C ``strptime`` format, as epoch ms; UTC unless the format reads an
    offset (``%z``). SPL's variables are read too: ``%F`` (``%Y-%m-%d``), ``%T``
    (``%H:%M:%S``), subseconds ``%3N``/``%3Q``..., and ``%s`` alone (epoch seconds)."""
    value, pattern = text(s), text(fmt)
    if pattern == "%s":
        if not _EPOCH_SECONDS.fullmatch(value.strip()):
            raise TypeMismatch(s)
        return (_EPOCH + timedelta(seconds=int(value)) - _EPOCH) // timedelta(milliseconds=1)  # years 1-9999
    pattern = _PARSE_SHORTHANDS.sub(lambda m: _PARSE_AS[m.group(1) or m.group(2)], pattern)
    parsed = datetime.strptime(value, pattern)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


# --- statistical ------------------------------------------------------------------------------

@raw("max", 1, None, T.ANY)
def _max(*values: Any) -> Any:
    """The largest value of the arguments (every value of a multi-value): strings are
    larger than numbers; nulls ignored."""
    present = [v for arg in values for v in leaves(arg)]
    return max(present, key=order_key) if present else None


@raw("min", 1, None, T.ANY)
def _min(*values: Any) -> Any:
    present = [v for arg in values for v in leaves(arg)]
    return min(present, key=order_key) if present else None
