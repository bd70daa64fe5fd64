"""Time expressions of a background task's range (``dtStart``, ``dtEnd``, ``earliest``,
``latest``): OpenSearch date math, resolved against the task's creation instant.

```
time     := anchor op*  |  absolute            (an absolute alone takes no ops)
anchor   := "now" | absolute "||"
op       := ("+" | "-") INT unit | "/" unit
unit     := y | M | w | d | h | H | m | s | ms  (M month, m minute, H = h)
absolute := ISO-8601 date or date-time, optional offset (default UTC) | epoch millis (digits;
            four digits alone are a year)
```

Also the Splunk-style relative form SIEM users type: ``-15m``, ``-1d@d``, ``@d``, ``+0s``, and
chains of them (``@d-2h``, ``-1d@d+8h``): ``-N<u>`` is ``now-N<u>``, ``@<u>`` is ``/<u>``; units
``s m h d w mon y``, ``mon`` a month.

Everything is computed in UTC; weeks start on Monday. A start rounds down; an end rounds
up to the last millisecond of its unit (OpenSearch's ``lte``), and an absolute end that
omits fields is filled up the same way (``2024-05-01`` as an end is that day's last ms).
"""

from __future__ import annotations

import calendar
import re
from datetime import datetime, timedelta, timezone

from ...errors import BadRequest

_ISO = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ](\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?)?)?)?"
                  r"(Z|[+-]\d{2}(?::?\d{2})?)?")
_OP = re.compile(r"([+-])(\d+)(ms|[yMwdhHms])|/(ms|[yMwdhHms])")
_SPLUNK = re.compile(r"(?:[+-]\d+(?:mon|[smhdwy])|@(?:mon|[smhdwy]))+")
_SPLUNK_STEP = re.compile(r"([+-])(\d+)(mon|[smhdwy])|@(mon|[smhdwy])")
_SPLUNK_UNITS = {"mon": "M", "s": "s", "m": "m", "h": "h", "d": "d", "w": "w", "y": "y"}
_FIXED_MS = {"w": 7 * 86_400_000, "d": 86_400_000, "h": 3_600_000, "H": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def resolve(text: object, now_ms: int, *, round_up: bool, name: str) -> int:
    """The instant ``text`` names, in epoch ms; ``round_up`` for the end of a range.
    ``name`` is the field, for the error (400 ``illegal_argument_exception``)."""
    if not isinstance(text, str) or not text.strip():
        raise BadRequest(f"[{name}] must be a non-empty string, got [{text}]")
    expression = _splunk(text.strip(), name)
    if expression.startswith("now"):
        anchor, math = now_ms, expression[3:]
    elif "||" in expression:
        head, math = expression.split("||", 1)
        anchor = _absolute(head, text, name, round_up=False)
    else:
        return _absolute(expression, text, name, round_up=round_up)
    return _apply(anchor, math, text, name, round_up)


def _splunk(text: str, name: str) -> str:
    """The Splunk-style form rewritten as date math, step by step (offsets and snaps chain,
    as Splunk's ``-1d@d+8h``); any other text unchanged."""
    if text[0] not in "+-@":
        return text
    if not _SPLUNK.fullmatch(text):
        raise _error(text, name, "not a relative time such as [-15m], [-1d@d] or [@d]")
    return "now" + "".join(f"{step[1]}{step[2]}{_SPLUNK_UNITS[step[3]]}" if step[1] else f"/{_SPLUNK_UNITS[step[4]]}"
                           for step in _SPLUNK_STEP.finditer(text))


def _apply(anchor: int, math: str, text: str, name: str, round_up: bool) -> int:
    moment = _EPOCH + timedelta(milliseconds=anchor)
    pos = 0
    while pos < len(math):
        match = _OP.match(math, pos)
        if not match:
            raise _error(text, name, f"unsupported date math [{math[pos:]}]")
        pos = match.end()
        if match[4]:
            moment = _round(moment, match[4], round_up)
        else:
            amount = int(match[2]) * (1 if match[1] == "+" else -1)
            moment = _shift(moment, amount, match[3], text, name)
    return _millis(moment)


def _shift(moment: datetime, amount: int, unit: str, text: str, name: str) -> datetime:
    try:
        if unit in ("y", "M"):
            months = moment.month - 1 + amount * (12 if unit == "y" else 1)
            year, month = moment.year + months // 12, months % 12 + 1
            day = min(moment.day, calendar.monthrange(year, month)[1])
            return moment.replace(year=year, month=month, day=day)
        return moment + timedelta(milliseconds=amount * _FIXED_MS[unit])
    except (OverflowError, ValueError):
        raise _error(text, name, "the date is out of range") from None


def _round(moment: datetime, unit: str, up: bool) -> datetime:
    """The start of ``unit`` holding ``moment``; with ``up``, the last ms of it."""
    start = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    if unit == "y":
        start, following = start.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0), "y"
    elif unit == "M":
        start, following = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0), "M"
    else:
        size = _FIXED_MS[unit]
        ms = _millis(start)
        offset = 3 * 86_400_000 if unit == "w" else 0  # 1970-01-01 was a Thursday: weeks from Monday
        start = _EPOCH + timedelta(milliseconds=(ms + offset) // size * size - offset)
        following = unit
    if not up:
        return start
    return _shift(start, 1, following, "", "") - timedelta(milliseconds=1)


def _absolute(text: str, original: str, name: str, *, round_up: bool) -> int:
    """An ISO-8601 date or date-time, or epoch millis; fields it omits are the lowest
    (or, with ``round_up``, the highest) they can be."""
    if text.isdecimal() and len(text) != 4:  # four digits are a year, as OpenSearch reads them first
        return int(text)
    match = _ISO.fullmatch(text)
    if not match:
        raise _error(original, name, "not a date, a date-time, epoch milliseconds or date math")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        moment = datetime(int(year), int(month or 1), int(day or 1), int(hour or 0), int(minute or 0),
                          int(second or 0), int((fraction or "0").ljust(3, "0")[:3]) * 1000,
                          tzinfo=_zone(offset))
    except ValueError as exc:
        raise _error(original, name, str(exc)) from None
    if round_up and fraction is None:  # the last ms of the finest unit given, in its own offset
        given = [g is not None for g in (month, day, hour, minute, second)]
        finest = ["y", "M", "d", "h", "m", "s"][given.index(False) if not all(given) else 5]
        moment = _shift(moment, 1, finest, original, name) - timedelta(milliseconds=1)
    return _millis(moment)


def _zone(offset: str | None) -> timezone:
    if offset in (None, "Z"):
        return timezone.utc
    sign = -1 if offset[0] == "-" else 1
    digits = offset[1:].replace(":", "")
    return timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0)))


def _millis(moment: datetime) -> int:
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _error(text: str, name: str, detail: str) -> BadRequest:
    return BadRequest(f"failed to parse [{name}] with value [{text}]: {detail}")
