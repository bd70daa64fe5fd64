"""Values as Elasticsearch's Java side reads and prints them, for exact error messages.

ES quotes values with Java's ``toString`` (``{a=1}``, ``[1, 2]``, ``5.0``, ``1.0E20``), names
Java classes in some messages, and reads mapping parameters with ``XContentMapValues``
(booleans only ``true``/``false``, integers as ``Integer.parseInt`` reads them).
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from ..errors import ServiceError


def java_str(value: Any, _depth: int = 0) -> str:
    """A parsed JSON value as Java's ``toString`` prints it (``{a=1}``, ``[1, 2]``, ``true``,
    ``5.0``): ES quotes values this way in its messages and stores string parameters so."""
    if _depth > 32:
        return "..."  # ES would print it all; a bound keeps hostile nesting cheap
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={java_str(v, _depth + 1)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_str(v, _depth + 1) for v in value) + "]"
    return str(value)


def java_double(value: float) -> str:
    """Java's ``Double.toString``: shortest digits, plain from 1e-3 to 1e7, else ``1.5E20``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1, value) < 0 else "0.0"
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if 1e-3 <= magnitude < 1e7:
        text = format(Decimal(repr(magnitude)), "f")
        return sign + (text if "." in text else text + ".0")
    _, digits, exponent = Decimal(repr(magnitude)).as_tuple()
    text = "".join(map(str, digits)).rstrip("0") or "0"
    power = len(digits) + int(exponent) - 1
    return f"{sign}{text[0]}.{text[1:] or '0'}E{power}"


def java_class(value: Any) -> str:
    """The Java class ES's JSON map parser gives a value (``java.lang.Integer`` ...)."""
    if isinstance(value, bool):
        return "java.lang.Boolean"
    if isinstance(value, int):
        return "java.lang.Integer" if -(2**31) <= value < 2**31 else (
            "java.lang.Long" if -(2**63) <= value < 2**63 else "java.math.BigInteger")
    if isinstance(value, float):
        return "java.lang.Double"
    if isinstance(value, str):
        return "java.lang.String"
    if isinstance(value, list):
        return "java.util.ArrayList"
    return "java.util.LinkedHashMap"


def simple_class(value: Any) -> str:
    """The simple name of that class (``Integer``), as ES prints it in some messages."""
    return java_class(value).rpartition(".")[2]


def number_format(text: str) -> ServiceError:
    """Java's NumberFormatException for a string that is not a number."""
    return ServiceError(f'For input string: "{text}"', status=400, type="number_format_exception")


def parse_java_boolean(value: Any) -> bool:
    """``XContentMapValues.nodeBooleanValue``: a boolean, or exactly ``"true"``/``"false"``."""
    if isinstance(value, bool):
        return value
    text = java_str(value)
    if text in ("true", "false"):
        return text == "true"
    raise ServiceError(f"Failed to parse value [{text}] as only [true] or [false] are allowed.", status=400,
                       type="illegal_argument_exception")


def parse_java_int(value: Any, lo: int = -(2**31), hi: int = 2**31 - 1) -> int:
    """``XContentMapValues.nodeIntegerValue``: a whole number, or a string ``Integer.parseInt`` reads."""
    if isinstance(value, float) and not isinstance(value, bool):
        if not math.isfinite(value) or value != round(value):
            raise ServiceError(f"{java_double(value)} is not an integer value", status=400,
                               type="illegal_argument_exception")
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if not lo <= value <= hi:
            raise ServiceError("integer overflow", status=400, type="arithmetic_exception")
        return value
    text = java_str(value)
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit() or not lo <= int(text) <= hi:
        raise number_format(text)
    return int(text)


def parse_java_double(value: Any) -> float:
    """``XContentMapValues.nodeDoubleValue``: a number, or a string ``Double.parseDouble`` reads."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = java_str(value)
    try:
        if text.strip().lower().lstrip("+-") in ("inf", "infinity", "nan"):
            raise ValueError(text)  # Java spells these Infinity / NaN only
        return float(text)
    except ValueError:
        raise number_format(text) from None
