"""Elasticsearch's numeric semantics where Python's differ: Java doubles that overflow to
infinity instead of raising, and ``ROUND`` as ES's ``Maths.round`` computes it.

Python integers are unbounded, so anything that raises 10 to a client-chosen power must
stop where Java's fixed-width types stop; these helpers do, in time independent of the
arguments' magnitude.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal

from . import types as T

LONG_MIN, LONG_MAX = T.INT_RANGE["long"]
_DECIMAL128 = Context(prec=34, rounding=ROUND_HALF_EVEN)


class ArithmeticOverflow(ArithmeticError):
    """A result outside the Java type it must fit (``long overflow``)."""


def java_pow(base: float, exponent: float) -> float:
    """``Math.pow``: an overflow is an infinity (with the sign of an odd power of a negative
    base), not an exception."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        negative = base < 0 and exponent == int(exponent) and int(exponent) % 2 == 1
        return -math.inf if negative else math.inf
    except ValueError:  # a negative base to a fractional power
        return math.nan


def java_log10(x: float) -> float:
    """``Math.log10``: ``-Infinity`` at zero and NaN below it, rather than an error."""
    if x != x or x < 0:
        return math.nan
    return -math.inf if x == 0 else math.log10(x)


def java_round_half_up(v: float) -> int:
    """``Math.round`` of a finite double: the nearest integer, halves towards +Infinity."""
    whole = math.floor(v)
    return int(whole) + (1 if v - whole >= 0.5 else 0)


def round_long(n: int, precision: int) -> int:
    """``Maths.round(long, long)``: ``n`` rounded half away from zero to ``10^-precision``.

    A non-negative precision leaves a whole number as it is; at a scale of ``10^20`` or more
    every long rounds to zero (so the scale never grows past ``10^19``); a result outside
    the long range raises ``ArithmeticOverflow``.
    """
    if n == 0 or precision >= 0:
        return n
    if precision <= -20:
        return 0
    scale = 10 ** -precision
    whole, remainder = divmod(abs(n), scale)
    if 2 * remainder >= scale:
        whole += 1
    result = whole * scale if n > 0 else -whole * scale
    if not LONG_MIN <= result <= LONG_MAX:
        raise ArithmeticOverflow("long overflow")
    return result


def round_unsigned_long(n: int, precision: int) -> int:
    """ROUND of an unsigned long: zero at 20 digits or more, else as a long would round
    (the caller checks the unsigned range)."""
    if n == 0 or precision >= 0:
        return n
    if precision <= -20:
        return 0
    scale = 10 ** -precision
    whole, remainder = divmod(n, scale)
    return (whole + (1 if 2 * remainder >= scale else 0)) * scale


def round_double(v: float, precision: int) -> float:
    """``Maths.round(double, long)``: NaN rounds to 0; a scale that underflows to zero gives
    0, one that overflows (or a product that does) gives the value back; otherwise
    ``Math.round(|v| * 10^p) / 10^p`` with the sign restored, and 34 significant digits
    (``BigDecimal`` with ``DECIMAL128``) where the product leaves the long range."""
    if v != v:
        return 0.0
    ten = java_pow(10.0, float(precision))
    if ten == 0.0 or v == 0.0:
        return 0.0
    middle = v * ten
    if math.isinf(middle):
        return v
    sign = 1.0 if middle >= 0 else -1.0
    if float(LONG_MIN + 1) < middle < float(LONG_MAX):
        return java_round_half_up(abs(middle)) / ten * sign
    exact = _DECIMAL128.plus(Decimal(abs(middle)))
    return float(_DECIMAL128.divide(exact, Decimal(ten))) * sign


INT_MAX = T.INT_RANGE["integer"][1]

# How Java builds each time span (``Duration.ofMinutes``, ``Period.ofWeeks``...): the type
# its amount must fit, and the factor the amount is then multiplied by, exactly.
_SPAN_LIMITS = {"ms": ("long", 1), "s": ("long", 1), "m": ("long", 60), "h": ("long", 3600), "d": ("integer", 1),
                "w": ("integer", 7), "mo": ("integer", 1), "q": ("integer", 3), "y": ("integer", 1)}


def span_amount_problem(amount: int, unit: str) -> str | None:
    """Why Java cannot hold ``amount`` of the canonical ``unit`` (ES's own exception text),
    or None. Bounds every later date computation by the sizes ES allows."""
    kind, factor = _SPAN_LIMITS[unit]
    low, high = T.INT_RANGE[kind]
    if not low <= amount <= high:
        return f"[{amount}] out of [{kind}] range"
    if not low <= amount * factor <= high:
        return f"{kind} overflow"
    return None
