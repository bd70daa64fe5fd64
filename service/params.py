"""Elasticsearch's parsing of time values and booleans, in one place.

Both are used for query-string parameters and body fields alike; the caller decides
how a failure is wrapped (body fields become ``x_content_parse_exception``).
"""

from __future__ import annotations

import re

from .errors import BadRequest, ParseError

_UNITS_MS = {
    "nanos": 1e-6,
    "micros": 1e-3,
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
}
# Longest suffix first so "ms" is not read as "s" and "nanos" not as "s".
_SUFFIXES = sorted(_UNITS_MS, key=len, reverse=True)
_LONG = re.compile(r"[+-]?[0-9]+")
LONG_MAX = 2**63 - 1

INFINITE = -1


def parse_time_ms(value: object, setting: str) -> int:
    """Parse an ES time value (``2s``, ``5d``, ``100ms``, ``0``, ``-1``) to milliseconds.

    ``-1`` (unit-less) is returned as ``INFINITE``. JSON numbers are read by their text,
    as Elasticsearch does, so ``-1`` and ``0`` may arrive as integers. As in Java, the
    amount must fit a long (a longer one is ES's "fractional" error) and the milliseconds
    saturate at the largest long instead of growing without bound.
    """
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ParseError(f"failed to parse setting [{setting}] with value [{value}] as a time value: "
                         "unit is missing or unrecognized")
    text = str(value).strip().lower()
    suffix = next((u for u in _SUFFIXES if text.endswith(u) and (u != "m" or str(value).strip().endswith("m"))),
                  None)
    if suffix is None:
        if re.fullmatch(r"-0*1", text):
            return INFINITE
        if re.fullmatch(r"0+", text):
            return 0
        raise ParseError(f"failed to parse setting [{setting}] with value [{value}] as a time value: "
                         "unit is missing or unrecognized")
    number = text[: -len(suffix)].strip()
    if not _LONG.fullmatch(number) or not -LONG_MAX - 1 <= int(number) <= LONG_MAX:
        try:
            float(number)
        except ValueError:
            raise ParseError(f"failed to parse [{value}]") from None
        raise ParseError(f"failed to parse [{value}], fractional time values are not supported") from None
    amount = int(number)
    if amount < 0:
        raise BadRequest(f"duration cannot be negative, was given [{amount}]")
    return min(int(amount * _UNITS_MS[suffix]), LONG_MAX)


def parse_bool(value: object, name: str, *, empty_is_true: bool = True) -> bool:
    """ES's strict boolean: only ``true``/``false`` (an empty query flag means true)."""
    if isinstance(value, bool):
        return value
    if value == "" and empty_is_true:
        return True
    if value == "true":
        return True
    if value == "false":
        return False
    raise BadRequest(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def query_bool(query: "dict[str, str] | object", name: str, default: bool) -> bool:
    """A boolean query-string parameter with ES's defaults (absent -> default, ``?flag`` -> true)."""
    value = query.get(name)  # type: ignore[attr-defined]
    if value is None:
        return default
    return parse_bool(value, name)
