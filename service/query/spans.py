"""Date/time-span arithmetic shared by the expression compiler, the function library and
the query DSL: adding a span to a date and truncating a date to a span. Neutral: it
imports neither ``evaluate`` nor ``functions``."""

from __future__ import annotations

from ..store.dates import DAY_MS, civil_from_days, days_from_civil
from . import numeric
from .rowerror import EvalError

SPAN_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}


def _add_months(ms: int, months: int) -> int:
    days, rem = divmod(ms, DAY_MS)
    y, m, d = civil_from_days(days)
    total = y * 12 + (m - 1) + months
    ny, nm = divmod(total, 12)
    nm += 1
    import calendar
    last = calendar.monthrange(ny, nm)[1] if 1 <= ny <= 9999 else 28
    return days_from_civil(ny, nm, min(d, last)) * DAY_MS + rem


def add_span(date: int, span: tuple[int, str], sign: int, kind: str) -> int:
    """``date`` (millis, or nanos for ``date_nanos``) plus ``sign`` times ``span``; a result
    outside the long range is Java's ``long overflow``, as in ES."""
    amount, unit = span
    amount *= sign
    scale = 1_000_000 if kind == "date_nanos" else 1
    if unit in SPAN_MS:
        out = date + amount * SPAN_MS[unit] * scale
    else:
        months = amount * {"mo": 1, "q": 3, "y": 12}[unit]
        ms, sub = divmod(date, scale)
        out = _add_months(ms, months) * scale + sub
    if not numeric.LONG_MIN <= out <= numeric.LONG_MAX:
        raise EvalError("java.lang.ArithmeticException: long overflow")
    return out


ZERO_INTERVAL = "Zero or negative time interval is not supported"


def date_trunc(ms: int, span: tuple[int, str]) -> int:
    amount, unit = span
    if amount <= 0:
        raise EvalError(f"java.lang.IllegalArgumentException: {ZERO_INTERVAL}")
    if unit in SPAN_MS and unit != "w":
        step = amount * SPAN_MS[unit]
        return ms - ms % step
    days, _ = divmod(ms, DAY_MS)
    y, m, d = civil_from_days(days)
    if unit == "w":
        monday = days - (days + 3) % 7  # 1970-01-01 was a Thursday
        if amount == 1:
            return monday * DAY_MS
        return (monday - monday % (7 * amount)) * DAY_MS
    months = {"mo": 1, "q": 3, "y": 12}[unit] * amount
    total = y * 12 + m - 1
    total -= total % months
    ny, nm = divmod(total, 12)
    return days_from_civil(ny, nm + 1, 1) * DAY_MS
