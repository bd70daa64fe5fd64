"""Dates as Elasticsearch stores and prints them: epoch milliseconds, ISO-8601 UTC.

Parsing follows a field's ``format`` (default ``strict_date_optional_time||epoch_millis``):
named ES formats and the common Java ``DateTimeFormatter`` pattern letters. Civil-date
arithmetic is done by hand so that years outside 1..9999 (which ES accepts) still work.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from functools import lru_cache
from typing import Callable

DEFAULT_FORMAT = "strict_date_optional_time||epoch_millis"
DAY_MS = 86_400_000

_ISO = re.compile(
    r"^([+-]?\d{4,9})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?$"
)


def days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z: int) -> tuple[int, int, int]:
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    y = yoe + era * 400
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return y + (m <= 2), m, d


def _days_in_month(y: int, m: int) -> int:
    if m == 2:
        return 29 if (y % 4 == 0 and (y % 100 != 0 or y % 400 == 0)) else 28
    return 30 if m in (4, 6, 9, 11) else 31


def _offset_ms(zone: str | None) -> int:
    if not zone or zone == "Z":
        return 0
    sign = -1 if zone[0] == "-" else 1
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    return sign * (hours * 3_600_000 + minutes * 60_000)


def _to_epoch_nanos(y: int, mo: int, d: int, h: int, mi: int, s: int, nanos: int, offset_ms: int) -> int:
    if not (1 <= mo <= 12 and 1 <= d <= _days_in_month(y, mo) and h < 24 and mi < 60 and s < 60):
        raise ValueError("invalid date field value")
    ms = days_from_civil(y, mo, d) * DAY_MS + ((h * 60 + mi) * 60 + s) * 1000 - offset_ms
    return ms * 1_000_000 + nanos


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ONE_MS = timedelta(milliseconds=1)


def printed_millis(text: str) -> int | None:
    """Epoch ms of a date in the shape ES itself prints (``yyyy-MM-ddTHH:mm:ss.SSSZ``, what most
    clients send too), parsed in C; None for any other text, which the full parser reads."""
    if len(text) == 24 and text[10] == "T" and text[23] == "Z" and text[19] == ".":
        try:
            return (datetime.fromisoformat(text) - _EPOCH) // _ONE_MS
        except ValueError:
            return None
    return None


def parse_iso_nanos(text: str) -> int:
    """``strict_date_optional_time`` to epoch nanoseconds; ValueError when it does not match."""
    ms = printed_millis(text)
    if ms is not None:
        return ms * 1_000_000
    m = _ISO.match(text)
    if not m:
        raise ValueError(f"failed to parse date field [{text}]")
    y, mo, d, h, mi, s, frac, zone = m.groups()
    nanos = int((frac or "0").ljust(9, "0"))
    return _to_epoch_nanos(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0),
                           nanos, _offset_ms(zone))


SLASHED_FORMAT = "yyyy/MM/dd HH:mm:ss||yyyy/MM/dd||epoch_millis"


def detect_date(text: str) -> str | None:
    """ES's dynamic date detection: ``""`` for ``strict_date_optional_time`` (the default
    format), the slashed format for ``2015/09/02``-style values, None for no date."""
    if _ISO.match(text) and "-" in text[1:]:
        try:
            parse_iso_nanos(text)
            return ""
        except ValueError:
            return None
    try:
        if "/" in text:
            date_parser(SLASHED_FORMAT.rpartition("||")[0])(text)
            return SLASHED_FORMAT
    except ValueError:
        pass
    return None


# --- Java DateTimeFormatter patterns -------------------------------------------------

_JAVA_TOKENS = re.compile(r"'[^']*'|y+|u+|M+|d+|H+|h+|m+|s+|S+|a|X+|x+|Z+|z+|E+|[^A-Za-z']+")


@lru_cache(maxsize=256)
def _compile_java(pattern: str) -> Callable[[str], int]:
    regex, groups = [], []
    for tok in _JAVA_TOKENS.findall(pattern):
        c = tok[0]
        if c == "'":
            regex.append(re.escape(tok[1:-1] or "'"))
        elif c in "yu":
            regex.append(r"([+-]?\d{4,9})" if len(tok) != 2 else r"(\d{2})")
            groups.append("y2" if len(tok) == 2 else "y")
        elif c == "M":
            if len(tok) >= 3:
                regex.append(r"([A-Za-z]+)")
                groups.append("Mname")
            else:
                regex.append(r"(\d{1,2})" if len(tok) == 1 else r"(\d{2})")
                groups.append("M")
        elif c in "dHhms":
            regex.append(r"(\d{1,2})" if len(tok) == 1 else r"(\d{2})")
            groups.append(c)
        elif c == "S":
            regex.append(r"(\d{1,%d})" % len(tok))
            groups.append("S")
        elif c == "a":
            regex.append(r"([AaPp][Mm])")
            groups.append("a")
        elif c in "XxZz":
            regex.append(r"(Z|[+-]\d{2}:?\d{2}|UTC|GMT)")
            groups.append("zone")
        elif c == "E":
            regex.append(r"[A-Za-z]+")
        else:
            regex.append(re.escape(tok))
    compiled = re.compile("^" + "".join(regex) + "$")

    def parse(text: str) -> int:
        m = compiled.match(text)
        if not m:
            raise ValueError(f"failed to parse date field [{text}] with format [{pattern}]")
        parts = dict(y=1970, M=1, d=1, H=0, m=0, s=0, S=0)
        pm, zone = None, None
        for name, value in zip(groups, m.groups()):
            if name == "y2":
                parts["y"] = 2000 + int(value)
            elif name == "Mname":
                parts["M"] = _MONTHS[value[:3].lower()]
            elif name == "S":
                parts["S"] = int(value.ljust(9, "0"))
            elif name == "a":
                pm = value.lower() == "pm"
            elif name == "zone":
                zone = None if value in ("UTC", "GMT") else value
            elif name == "h":
                parts["H"] = int(value) % 12
            else:
                parts[name] = int(value)
        if pm:
            parts["H"] += 12
        return _to_epoch_nanos(parts["y"], parts["M"], parts["d"], parts["H"], parts["m"], parts["s"],
                               parts["S"], _offset_ms(zone))

    return parse


_MONTHS = {m: i for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)}


def _epoch(scale: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not re.fullmatch(r"[+-]?\d+(\.\d+)?", text):
            raise ValueError(f"failed to parse date field [{text}]")
        # exactly: a float has 15-17 digits, "131509374294.365140" epoch millis need 18
        return int(Decimal(text) * scale) if "." in text else int(text) * scale
    return parse


_NAMED: dict[str, Callable[[str], int]] = {
    "strict_date_optional_time": parse_iso_nanos,
    "date_optional_time": parse_iso_nanos,
    "strict_date_optional_time_nanos": parse_iso_nanos,
    "strict_date_time": parse_iso_nanos,
    "date_time": parse_iso_nanos,
    "strict_date": parse_iso_nanos,
    "date": parse_iso_nanos,
    "iso8601": parse_iso_nanos,
    "epoch_millis": _epoch(1_000_000),
    "epoch_second": _epoch(1_000_000_000),
    "basic_date": _compile_java("yyyyMMdd"),
    "basic_date_time": _compile_java("yyyyMMdd'T'HHmmss.SSSZ"),
    "strict_year_month_day": _compile_java("yyyy-MM-dd"),
    "year_month_day": _compile_java("yyyy-MM-dd"),
}


def iso_first(fmt: str | None) -> bool:
    """Whether ``fmt`` tries an ISO-8601 format first: then a text that ``printed_millis``
    reads is that date, whatever the format's other alternatives."""
    return _NAMED.get((fmt or DEFAULT_FORMAT).split("||")[0].strip()) is parse_iso_nanos


@lru_cache(maxsize=256)
def date_parser(fmt: str | None) -> Callable[[object], int]:
    """A parser from a mapping's ``format`` to epoch **nanoseconds**."""
    parsers = [_NAMED.get(part.strip()) or _compile_java(part.strip())
               for part in (fmt or DEFAULT_FORMAT).split("||")]
    numeric = [p for p in parsers if p in (_NAMED["epoch_millis"], _NAMED["epoch_second"])]

    def parse(value: object) -> int:
        if isinstance(value, bool):
            raise ValueError(f"failed to parse date field [{value}]")
        if isinstance(value, (int, float)):
            if not numeric:  # ES still reads numbers as epoch millis for non-numeric formats
                return int(value * 1_000_000)
            return numeric[0](repr(value) if isinstance(value, float) else str(value))
        text = str(value)
        for parser in parsers:
            try:
                return parser(text)
            except ValueError:
                continue
        raise ValueError(f"failed to parse date field [{text}] with format [{fmt or DEFAULT_FORMAT}]")

    return parse


def format_millis(ms: int) -> str:
    """Epoch ms as ``yyyy-MM-ddTHH:mm:ss.SSSZ`` (UTC)."""
    days, rem = divmod(ms, DAY_MS)
    y, m, d = civil_from_days(days)
    secs, millis = divmod(rem, 1000)
    h, secs = divmod(secs, 3600)
    mi, s = divmod(secs, 60)
    year = f"{y:04d}" if 0 <= y <= 9999 else f"{y:+05d}"
    return f"{year}-{m:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}.{millis:03d}Z"


def format_nanos(ns: int) -> str:
    """Epoch ns with 3 to 9 fraction digits, trailing zeros trimmed down to 3."""
    ms, sub = divmod(ns, 1_000_000)
    base = format_millis(ms)
    if not sub:
        return base
    frac = (f"{ms % 1000:03d}{sub:06d}").rstrip("0")
    return f"{base[:-5]}.{frac}Z"
