"""SML's dynamic value rules (spec/sml.md §4, §6), shared by its operators, functions and
aggregates.

Values are what the rows hold: str, int, float, bool, None, a list for a multi-value (a
field's array) and a dict for an object. Nothing is typed before the query runs, so every
rule here looks at the value itself:

- a number is an int or float; a string that looks like one (``"-1"``, ``"4624"``,
  ``"1.5e3"``) is read as that number where numbers are compared or computed with;
- a multi-value stands for its first element wherever one value is needed (``first``);
- a value is written as text the way the answer shows it: ``true``/``false`` for booleans,
  a whole number without a fraction, objects as JSON;
- values order numbers (numerically) before strings (by code point) before booleans.
"""

from __future__ import annotations

import math
import operator
import re
from typing import Any, Callable

import orjson

from ...store.dates import parse_iso_nanos
from .. import types as T

_NUMBER = re.compile(r"[+-]?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")  # ASCII digits only (\d is Unicode)
LONG_MIN, LONG_MAX = T.INT_RANGE["long"]
COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq, "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


class TypeMismatch(ValueError):
    """A value of the wrong type for an operation: the operation gives null (§6)."""


def first(v: Any) -> Any:
    """The value a single-value rule reads: a multi-value's first element (null when empty)."""
    if type(v) is list:
        return v[0] if v else None
    return v


def number(v: Any) -> int | float | None:
    """``v`` as a number: itself, or the number a numeric-looking string spells (spec §2's
    number syntax, an optional ``+`` allowed); None for anything else (booleans included)."""
    kind = type(v)
    if kind is int or kind is float:
        return v
    if kind is str and _NUMBER.fullmatch(v):
        return int(v) if v.lstrip("+-").isdigit() else float(v)
    return None


def instant(v: Any, nanos: bool = False) -> int | None:
    """A value as the epoch ms it stands for (a multi-value: its first): a number (epoch ns
    when ``nanos``, a ``date_nanos`` column's), an ISO-8601 string, or a string holding a
    number; None for anything else."""
    v = first(v)
    n = number(v) if type(v) is not str else None
    if n is None and type(v) is str:
        try:
            return parse_iso_nanos(v) // 1_000_000
        except ValueError:
            n = number(v)
    if n is None:
        return None
    return int(n // 1_000_000 if nanos else n)


def numeric(v: Any) -> int | float:
    """``number(first(v))``, or ``TypeMismatch``."""
    n = number(first(v))
    if n is None:
        raise TypeMismatch(v)
    return n


def result(n: int | float) -> int | float:
    """An arithmetic result as a row holds it: an int past the long range becomes a double,
    a non-finite double (no JSON number) a type error."""
    if type(n) is int:
        return n if LONG_MIN <= n <= LONG_MAX else result(float(n))
    if not math.isfinite(n):
        raise TypeMismatch(n)
    return n


def text(v: Any) -> str:
    """``v`` as the answer shows it, for string operations and concatenation."""
    kind = type(v)
    if kind is str:
        return v
    if kind is bool:
        return "true" if v else "false"
    if kind is int:
        return str(v)
    if kind is float:
        return repr(v)
    if kind is list:
        return text(v[0]) if v else ""
    return orjson.dumps(v).decode()


def compare(op: str, a: Any, b: Any) -> bool:
    """A comparison of ``where``/``eval``: false when a side is null (``null == null`` too);
    numbers and numeric-looking strings numerically, two booleans as booleans, anything
    else by its text, case-sensitively."""
    a, b = first(a), first(b)
    if a is None or b is None:
        return False
    x, y = number(a), number(b)
    if x is None or y is None:
        if type(a) is bool and type(b) is bool:
            x, y = a, b
        else:
            x, y = text(a), text(b)
    return COMPARE[op](x, y)


def order_key(v: Any) -> tuple:
    """The sort key of a non-null value: numbers (numeric-looking strings among them, after
    an equal number) before strings before booleans; objects last, by their JSON."""
    n = number(v)
    if n is not None and n == n:
        return (0, n, 1, v) if type(v) is str else (0, n, 0)
    kind = type(v)
    if kind is str:
        return (1, v)
    if kind is bool:
        return (2, v)
    return (3, text(v))


def identity(v: Any) -> tuple:
    """What makes two values the same value (``dc``, ``values``, ``mvdedup``): the value and
    whether it is a number, a string or a boolean, so ``1 == 1.0`` but ``1 != "1" != true``."""
    kind = type(v)
    if kind is bool:
        return (2, v)
    if kind is int or kind is float:
        return (0, v)
    if kind is str:
        return (1, v)
    return (3, text(v))


def leaves(v: Any) -> list[Any]:
    """Every non-null scalar inside ``v`` (the elements of arrays, the values of objects)."""
    if v is None:
        return []
    if type(v) is list:
        return [x for item in v for x in leaves(item)]
    if type(v) is dict:
        return [x for item in v.values() for x in leaves(item)]
    return [v]

