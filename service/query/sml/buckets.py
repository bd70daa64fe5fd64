"""The buckets of ``timechart``, ``timeaggs`` and ``bin`` (spec/sml.md §7.14): spans as
written, the predefined span of a search range, and bucket starts.

Time buckets are aligned to the calendar in UTC: a span of N seconds, minutes, hours or
days starts at a multiple of N units since the epoch (so ``10m`` buckets start on the
hour and every ten minutes after it, ``1d`` at midnight), weeks start on Monday (N weeks
from the Monday 1970-01-05), months on the 1st (N months counted from January 1970, so
``3mon`` gives quarters). Times are epoch milliseconds, as rows hold dates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterator

from ...store.dates import DAY_MS, civil_from_days, days_from_civil

# every spelling of a unit (spec §7.14) -> the unit
UNITS = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), "s"),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), "m"),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), "h"),
    **dict.fromkeys(("d", "day", "days"), "d"),
    **dict.fromkeys(("w", "week", "weeks"), "w"),
    **dict.fromkeys(("mon", "month", "months"), "mon"),
}
UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS, "w": 7 * DAY_MS}
MONDAY_MS = 4 * DAY_MS  # 1970-01-05, the first Monday after the epoch
_SPAN = re.compile(r"\+?([0-9]+(?:\.[0-9]+)?)([A-Za-z]*)")
DEFAULT_BINS = 100


@dataclass(frozen=True)
class Span:
    """A bucket size: ``amount`` of ``unit`` (a time unit of ``UNITS``), or a plain number
    when ``unit`` is None (``bin span=10 amount``)."""

    amount: int | float
    unit: str | None = None

    @property
    def is_time(self) -> bool:
        return self.unit is not None


def parse_span(text: str) -> Span:
    """``span=`` as written: ``10m``, ``+1d``, ``3 months`` spelled any way of §7.14, or a
    positive number. A ``ValueError`` says what is wrong."""
    match = _SPAN.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"invalid [span] [{text}], expected a positive number with an optional unit "
                         "such as [10m], [1h], [1d], [1w] or [1mon]")
    digits, written = match.groups()
    amount: int | float = float(digits) if "." in digits else int(digits)
    if amount <= 0:
        raise ValueError(f"[span] [{text}] must be greater than zero")
    if not written:
        return Span(amount)
    unit = UNITS.get(written.lower())
    if unit is None:
        raise ValueError(f"unknown unit [{written}] in [span] [{text}], expected one of "
                         f"[{', '.join(UNITS)}]")
    if type(amount) is not int:
        raise ValueError(f"a time [span] must be a whole number of its unit, found [{text}]")
    return Span(amount, unit)


# --- spans for a range --------------------------------------------------------------------

# the predefined spans (spec §7.14): the first row whose range is at least the actual one
_PREDEFINED = ((15 * 60_000, Span(10, "s")), (3_600_000, Span(1, "m")), (4 * 3_600_000, Span(5, "m")),
               (DAY_MS, Span(30, "m")), (30 * DAY_MS, Span(1, "d")))
_LONGER = Span(1, "mon")
# the spans ``bins`` may widen a span to, finest first; past a year, whole years
_LADDER = tuple(Span(n, u) for n, u in ((1, "s"), (5, "s"), (10, "s"), (30, "s"), (1, "m"), (5, "m"), (10, "m"),
                                        (30, "m"), (1, "h"), (3, "h"), (6, "h"), (12, "h"), (1, "d"), (1, "w"),
                                        (1, "mon"), (3, "mon"), (6, "mon"), (12, "mon")))


def predefined(first: int | None, last: int | None) -> Span:
    """The span of a range from ``first`` to ``last`` (inclusive, epoch ms) by the table of
    §7.14. The length is counted in whole seconds: a range given to the second (``dtEnd``
    is inclusive to its last millisecond) is as long as it reads. No range: the longest row."""
    if first is None or last is None:
        return _LONGER
    length = (last - first) // 1000 * 1000
    return next((span for longest, span in _PREDEFINED if length <= longest), _LONGER)


def widened(span: Span, first: int, last: int, bins: int) -> Span:
    """``span``, or the finest span of the ladder wider than it that makes at most ``bins``
    buckets from ``first`` to ``last``."""
    if count(span, first, last) <= bins:
        return span
    for step in _LADDER:
        if _width(step) > _width(span) and count(step, first, last) <= bins:
            return step
    years = math.ceil(count(Span(12, "mon"), first, last) / bins)
    return Span(12 * years, "mon")


def _width(span: Span) -> float:
    """A span's length in ms, a month as 30 days: only to order spans."""
    return span.amount * (30 * DAY_MS if span.unit == "mon" else UNIT_MS[span.unit or "s"])


def count(span: Span, first: int, last: int) -> int:
    """How many buckets of ``span`` hold the times from ``first`` to ``last``."""
    return _index(span, last) - _index(span, first) + 1


# --- bucket starts -------------------------------------------------------------------------

def _month_index(ms: int) -> int:
    year, month, _ = civil_from_days(ms // DAY_MS)
    return (year - 1970) * 12 + month - 1


def _index(span: Span, ms: int) -> int:
    """The number of the bucket holding ``ms``, counted from the epoch's (or the first
    Monday's) bucket."""
    if span.unit == "mon":
        return _month_index(ms) // int(span.amount)
    offset = MONDAY_MS if span.unit == "w" else 0
    return (ms - offset) // (int(span.amount) * UNIT_MS[span.unit or "s"])


def _start(span: Span, index: int) -> int:
    if span.unit == "mon":
        months = index * int(span.amount)
        return days_from_civil(1970 + months // 12, months % 12 + 1, 1) * DAY_MS
    offset = MONDAY_MS if span.unit == "w" else 0
    return index * int(span.amount) * UNIT_MS[span.unit or "s"] + offset


def floor_time(span: Span, ms: int) -> int:
    """The start of the bucket holding ``ms``."""
    return _start(span, _index(span, ms))


def starts(span: Span, first: int, last: int) -> Iterator[int]:
    """Every bucket start from the bucket of ``first`` to the bucket of ``last``, in order."""
    for index in range(_index(span, first), _index(span, last) + 1):
        yield _start(span, index)


def floor_number(size: int | float, v: int | float) -> int | float:
    """The start of the bucket of size ``size`` holding ``v``: a multiple of ``size``,
    an integer when both are."""
    if type(size) is int and type(v) is int:
        return v // size * size
    return float(math.floor(v / size) * size)
