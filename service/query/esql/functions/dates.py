"""Date functions: NOW, DATE_TRUNC, DATE_EXTRACT, DATE_FORMAT, DATE_PARSE, DATE_DIFF, DAY_NAME, MONTH_NAME."""

from __future__ import annotations

import re
from typing import Any

from ....errors import ServiceError
from ....store.dates import DAY_MS, civil_from_days, date_parser, days_from_civil, format_millis
from ...evaluate import EvalError, Fn, Scope
from ...expr import Call, Expr
from ...spans import ZERO_INTERVAL, date_trunc
from ._base import _arity, _require, _single, register
from .strings import STRING


# --- time spans and dates ---------------------------------------------------------------


CHRONO_FIELDS = {
    "year": lambda y, m, d, ms, days: y,
    "month_of_year": lambda y, m, d, ms, days: m,
    "day_of_month": lambda y, m, d, ms, days: d,
    "day_of_week": lambda y, m, d, ms, days: (days + 3) % 7 + 1,
    "day_of_year": lambda y, m, d, ms, days: days - days_from_civil(y, 1, 1) + 1,
    "hour_of_day": lambda y, m, d, ms, days: (ms % DAY_MS) // 3_600_000,
    "minute_of_hour": lambda y, m, d, ms, days: (ms % 3_600_000) // 60_000,
    "second_of_minute": lambda y, m, d, ms, days: (ms % 60_000) // 1000,
    "milli_of_second": lambda y, m, d, ms, days: ms % 1000,
    "epoch_day": lambda y, m, d, ms, days: days,
    "minute_of_day": lambda y, m, d, ms, days: (ms % DAY_MS) // 60_000,
    "second_of_day": lambda y, m, d, ms, days: (ms % DAY_MS) // 1000,
    "aligned_week_of_year": lambda y, m, d, ms, days: (days - days_from_civil(y, 1, 1)) // 7 + 1,
    "aligned_day_of_week_in_month": lambda y, m, d, ms, days: (d - 1) % 7 + 1,
    "aligned_week_of_month": lambda y, m, d, ms, days: (d - 1) // 7 + 1,
    "quarter_of_year": lambda y, m, d, ms, days: (m - 1) // 3 + 1,
}


def date_extract(part: str, ms: int) -> int:
    f = CHRONO_FIELDS.get(part.lower())
    if f is None:
        raise EvalError(f"java.lang.IllegalArgumentException: No enum constant java.time.temporal.ChronoField."
                        f"{part.upper()}")
    days = ms // DAY_MS
    y, m, d = civil_from_days(days)
    return f(y, m, d, ms, days)


_JAVA_FORMAT = re.compile(r"'[^']*'|y+|M+|d+|H+|h+|m+|s+|S+|a|E+|[^A-Za-z']+|[A-Za-z]")
_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December"]
_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def date_format(ms: int, pattern: str) -> str:
    days, rem = divmod(ms, DAY_MS)
    y, mo, d = civil_from_days(days)
    h, mi, s, milli = rem // 3_600_000, rem // 60_000 % 60, rem // 1000 % 60, rem % 1000
    out = []
    for tok in _JAVA_FORMAT.findall(pattern):
        c, n = tok[0], len(tok)
        if c == "'":
            out.append(tok[1:-1] or "'")
        elif c == "y":
            out.append(f"{y % 100:02d}" if n == 2 else f"{y:0{n}d}")
        elif c == "M":
            out.append(_MONTH_NAMES[mo - 1] if n >= 4 else _MONTH_NAMES[mo - 1][:3] if n == 3 else f"{mo:0{n}d}")
        elif c == "d":
            out.append(f"{d:0{n}d}")
        elif c == "H":
            out.append(f"{h:0{n}d}")
        elif c == "h":
            out.append(f"{(h % 12) or 12:0{n}d}")
        elif c == "m":
            out.append(f"{mi:0{n}d}")
        elif c == "s":
            out.append(f"{s:0{n}d}")
        elif c == "S":
            out.append(f"{milli:03d}"[:n].ljust(n, "0"))
        elif c == "a":
            out.append("AM" if h < 12 else "PM")
        elif c == "E":
            name = _DAY_NAMES[(days + 3) % 7]
            out.append(name if n >= 4 else name[:3])
        elif c == "Z":
            out.append("Z")
        else:
            out.append(tok)
    return "".join(out)


# dates

DATES = ("date", "date_nanos")


@register("NOW")
def _now(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    import time
    value = int(time.time() * 1000)
    return (lambda row: value), "date"


def check_interval(expr: Expr, scope: Scope) -> None:
    """A constant time span must be positive: ES refuses any other while planning (400)."""
    from ...evaluate import fold
    constant, span = fold(expr, scope)
    if constant and isinstance(span, tuple) and span[0] <= 0:
        raise ServiceError(ZERO_INTERVAL, status=400, type="illegal_argument_exception")


@register("DATE_TRUNC")
def _date_trunc(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    _require(expr, 1, kinds[1], DATES, "date_nanos or datetime")
    check_interval(expr.args[0], scope)
    return _single(lambda span, d: date_trunc(d, span), kinds[1])(expr, kinds, args, scope)


@register("DATE_EXTRACT")
def _date_extract(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    return _single(lambda part, d: date_extract(part, d), "long")(expr, kinds, args, scope)


@register("DATE_FORMAT")
def _date_format(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1, 2)
    if len(args) == 2:
        _require(expr, 0, kinds[0], STRING, "string")
    _require(expr, len(args) - 1, kinds[-1], DATES, "datetime or date_nanos")
    if len(args) == 1:
        return _single(format_millis, "keyword")(expr, kinds, args, scope)
    return _single(lambda p, d: date_format(d, p), "keyword")(expr, kinds, args, scope)


@register("DATE_PARSE")
def _date_parse(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1, 2)

    def fn(*vs: Any) -> int:
        fmt = vs[0] if len(vs) == 2 else "strict_date_optional_time"
        try:
            return date_parser(fmt)(vs[-1]) // 1_000_000
        except ValueError:
            raise EvalError(f'java.lang.IllegalArgumentException: failed to parse date field [{vs[-1]}] with format '
                            f'[{fmt}]') from None
    return _single(fn, "date")(expr, kinds, args, scope)


DIFF_UNITS = {"year": "y", "years": "y", "yy": "y", "yyyy": "y", "quarter": "q", "quarters": "q", "qq": "q", "q": "q",
              "month": "mo", "months": "mo", "mm": "mo", "m": "mo", "week": "w", "weeks": "w", "wk": "w", "ww": "w",
              "day": "d", "days": "d", "dd": "d", "d": "d", "hour": "h", "hours": "h", "hh": "h",
              "minute": "mi", "minutes": "mi", "mi": "mi", "n": "mi", "second": "s", "seconds": "s", "ss": "s",
              "s": "s", "millisecond": "ms", "milliseconds": "ms", "ms": "ms"}


def _date_diff_value(unit: str, a: int, b: int) -> int:
    u = DIFF_UNITS.get(unit.lower())
    if u is None:
        raise EvalError(f"java.lang.IllegalArgumentException: A value of [YEAR, QUARTER, MONTH, DAYOFYEAR, DAY, WEEK, "
                        f"WEEKDAY, HOUR, MINUTE, SECOND, MILLISECOND, MICROSECOND, NANOSECOND] or their aliases is "
                        f"required; received [{unit}]")
    fixed = {"w": 7 * DAY_MS, "d": DAY_MS, "h": 3_600_000, "mi": 60_000, "s": 1000, "ms": 1}
    if u in fixed:
        diff = b - a
        q = abs(diff) // fixed[u]
        r = q if diff >= 0 else -q
    else:
        ya, ma, da = civil_from_days(a // DAY_MS)
        yb, mb, db = civil_from_days(b // DAY_MS)
        months = (yb - ya) * 12 + (mb - ma)
        if months > 0 and (db, b % DAY_MS) < (da, a % DAY_MS):
            months -= 1
        elif months < 0 and (db, b % DAY_MS) > (da, a % DAY_MS):
            months += 1
        r = months // {"mo": 1, "q": 3, "y": 12}[u] if months >= 0 else -((-months) // {"mo": 1, "q": 3, "y": 12}[u])
    if not -(2**31) <= r < 2**31:
        raise EvalError("org.elasticsearch.xpack.esql.core.InvalidArgumentException: [" + str(r) + "] out of [integer] range")
    return r


@register("DATE_DIFF")
def _date_diff(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 3)
    return _single(_date_diff_value, "integer")(expr, kinds, args, scope)


@register("DAY_NAME", "MONTH_NAME")
def _names(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], DATES, "datetime or date_nanos")
    scale = 1_000_000 if kinds[0] == "date_nanos" else 1
    if expr.name == "DAY_NAME":
        return _single(lambda d: _DAY_NAMES[(d // scale // DAY_MS + 3) % 7], "keyword")(expr, kinds, args, scope)
    return _single(lambda d: _MONTH_NAMES[civil_from_days(d // scale // DAY_MS)[1] - 1], "keyword")(
        expr, kinds, args, scope)
