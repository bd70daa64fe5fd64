"""Elasticsearch's parsing of time values, booleans and numbers, in one place.

Both are used for query-string parameters and body fields alike; the caller decides
how a failure is wrapped (body fields become ``x_content_parse_exception``).
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from .errors import BadRequest, OwnRootCause, ParseError, ServiceError, XContentParseError

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


LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1
INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
_JAVA_INTEGER = re.compile(r"[+-]?\d+")  # Long.parseLong / Integer.parseInt (any Unicode digit)
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class _ParamError(OwnRootCause, BadRequest):
    """An IllegalArgumentException with a cause: ES reports it, not its cause, as the root cause."""


def _number_format(text: str) -> ServiceError:
    return ServiceError(f'For input string: "{text}"', status=400, type="number_format_exception")


def java_long(text: str, low: int = LONG_MIN, high: int = LONG_MAX) -> int | None:
    """Java's ``Long.parseLong`` (``Integer.parseInt`` with int bounds): None when it would throw."""
    if not _JAVA_INTEGER.fullmatch(text):
        return None
    # Past 19 significant digits it cannot fit, and int() would refuse a string past 4300 digits.
    digits = text.lstrip("+-")
    significant = len(digits) - next((i for i, c in enumerate(digits) if unicodedata.digit(c) != 0), len(digits))
    if significant > 19:
        return None
    value = int(text[: len(text) - len(digits)] + (digits[len(digits) - significant:] or "0"))
    return value if low <= value <= high else None


def query_long(query: "dict[str, str] | object", name: str, default: int) -> int:
    """ES's ``paramAsLong``: absent -> default; not a long -> 400 naming the parameter."""
    return _query_number(query, name, default, "long", LONG_MIN, LONG_MAX)


def query_int(query: "dict[str, str] | object", name: str, default: int) -> int:
    """ES's ``paramAsInt``."""
    return _query_number(query, name, default, "int", INT_MIN, INT_MAX)


def _query_number(query: object, name: str, default: int, kind: str, low: int, high: int) -> int:
    text = query.get(name)  # type: ignore[attr-defined]
    if text is None:
        return default
    value = java_long(text, low, high)
    if value is None:
        raise _ParamError(f"Failed to parse {kind} parameter [{name}] with value [{text}]",
                          caused_by=_number_format(text))
    return value


def content_long(value: object) -> int:
    """A JSON value read as ES's x-content ``longValue()`` reads it: numbers truncated, numeric
    strings accepted (a decimal part dropped), anything else refused."""
    if isinstance(value, str):
        return _string_long(value)
    return _number(value, "long", LONG_MIN, LONG_MAX)


def content_int(value: object) -> int:
    """x-content ``intValue()``: strings go through ``Double.parseDouble``."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            raise ServiceError("empty String", status=400, type="number_format_exception")
        if text == "NaN":
            return 0
        if not (_DECIMAL.fullmatch(text) or text.lstrip("+-") == "Infinity"):
            raise _number_format(value)
        number = float(text.replace("Infinity", "inf"))
        if not INT_MIN <= number <= INT_MAX:
            raise BadRequest(f"Value [{value}] is out of range for an integer")
        return int(number)
    return _number(value, "int", INT_MIN, INT_MAX)


def _string_long(text: str) -> int:
    exact = java_long(text)
    if exact is not None:
        return exact
    if not _DECIMAL.fullmatch(text):
        raise BadRequest(f'For input string: "{text}"')
    number = Decimal(text)
    _, coefficient, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if exponent > 19 or len(coefficient) + exponent > 19:  # more digits before the point than a long has
        raise BadRequest(f"Value [{text}] is out of range for a long")
    whole = 0 if exponent < -19 else int(number)
    if not LONG_MIN <= whole <= LONG_MAX:
        raise BadRequest(f"Value [{text}] is out of range for a long")
    return whole


def _number(value: object, kind: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        token = f"VALUE_{str(value).upper()}" if isinstance(value, bool) else "VALUE_NULL"
        raise XContentParseError(f"Current token ({token}) not numeric, can not use numeric value accessors")
    if not low <= value <= high:
        raise XContentParseError(f"Numeric value ({value}) out of range of {kind} ({low} - {high})")
    return int(value)
