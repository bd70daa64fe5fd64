"""ES|QL data types: names, widening, and how stored field types map to them."""

from __future__ import annotations

from typing import Any

NUMERIC = ("integer", "long", "unsigned_long", "double")
STRINGS = ("keyword", "text")
# A value whose type only the row knows: what a dynamically typed language (SML) gives an
# expression it cannot type before it runs. No shared operator accepts it; the language's
# own rules (``Dialect.compile_node``) read such values.
ANY = "any"
INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1), "unsigned_long": (0, 2**64 - 1)}

FIELD_TYPES = {
    "byte": "integer", "short": "integer", "integer": "integer", "long": "long", "unsigned_long": "unsigned_long",
    "double": "double", "float": "double", "half_float": "double", "scaled_float": "double",
    "keyword": "keyword", "constant_keyword": "keyword", "wildcard": "keyword", "text": "text",
    "match_only_text": "text", "boolean": "boolean", "date": "date", "date_nanos": "date_nanos", "ip": "ip",
    "version": "version", "geo_point": "geo_point", "geo_shape": "geo_shape", "point": "cartesian_point",
    "shape": "cartesian_shape",
}

CAST_NAMES = {
    "integer": "integer", "int": "integer", "long": "long", "double": "double", "unsigned_long": "unsigned_long",
    "keyword": "keyword", "string": "keyword", "text": "keyword", "boolean": "boolean", "bool": "boolean",
    "datetime": "date", "date": "date", "date_nanos": "date_nanos", "ip": "ip", "version": "version",
}


def is_numeric(t: str) -> bool:
    return t in NUMERIC


def is_string(t: str) -> bool:
    return t in STRINGS


def widen(a: str, b: str) -> str:
    """Result type of arithmetic between two numeric types."""
    if a == "null":
        return b
    if b == "null":
        return a
    if "double" in (a, b):
        return "double"
    if "unsigned_long" in (a, b):
        return "unsigned_long"
    if "long" in (a, b):
        return "long"
    return "integer"


def comparable(a: str, b: str) -> bool:
    if "null" in (a, b) or a == b:
        return True
    if is_numeric(a) and is_numeric(b):
        return True
    if is_string(a) and is_string(b):
        return True
    return {a, b} <= {"date", "date_nanos"}


def collapse(values: list[Any]) -> Any:
    """A list of values as ES|QL holds it: null when empty, the value itself when single."""
    return None if not values else values[0] if len(values) == 1 else values


# Time-span units by every name the languages accept, to their canonical short form.
TIME_UNITS = {
    "millisecond": "ms", "milliseconds": "ms", "ms": "ms",
    "second": "s", "seconds": "s", "sec": "s", "s": "s",
    "minute": "m", "minutes": "m", "min": "m",
    "hour": "h", "hours": "h", "h": "h",
    "day": "d", "days": "d", "d": "d",
    "week": "w", "weeks": "w", "w": "w",
    "month": "mo", "months": "mo", "mo": "mo",
    "quarter": "q", "quarters": "q", "q": "q",
    "year": "y", "years": "y", "yr": "y", "y": "y",
}
