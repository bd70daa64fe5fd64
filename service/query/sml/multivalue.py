"""SML's multivalue eval functions (spec/sml.md §6.1, SPL's meaning; also SPL's mvsort, mvzip,
mvrange and mvfilter past the spec's cut-off list, mvfind being with the regex functions):
they read a field's array as a whole, where every other function reads its first value. A
result of one value is that value, of none null."""

from __future__ import annotations

import math
from typing import Any

from .. import types as T
from ..evaluate import Scope, walk
from ..expr import Call, Column
from .registry import Clock, Compiled, error, raw, register, truth
from .values import first, identity, number, numeric, text

MAX_RANGE = 10_000  # values mvrange may make: more is null


def _elements(v: Any) -> list[Any]:
    """A value's elements: a multi-value's (nulls dropped), a single value alone, null none."""
    if v is None:
        return []
    return [x for x in v if x is not None] if type(v) is list else [v]


@raw("split", 2, 2, T.ANY)
def _split(s: Any, delimiter: Any) -> Any:
    """The pieces of ``s`` between occurrences of ``delimiter`` (``""``: every character)."""
    s, delimiter = first(s), first(delimiter)
    if s is None or delimiter is None:
        return None
    value, sep = text(s), text(delimiter)
    return T.collapse(value.split(sep) if sep else list(value))


@raw("mvcount", 1, 1, "long")
def _mvcount(v: Any) -> int | None:
    """How many values: null for none."""
    return len(_elements(v)) or None


@raw("mvindex", 2, 3, T.ANY)
def _mvindex(v: Any, start: Any, end: Any = None) -> Any:
    """The value at the 0-based ``start``, or the values from ``start`` to ``end`` included;
    negative positions count from the end; out of range is null."""
    values = _elements(v)
    i, j = number(first(start)), number(first(end)) if end is not None else None
    if type(i) is not int or (end is not None and type(j) is not int):
        return None
    i = i + len(values) if i < 0 else i
    j = i if j is None else j + len(values) if j < 0 else min(j, len(values) - 1)
    if not 0 <= i < len(values) or j < i:
        return None
    return T.collapse(values[i:j + 1])


@raw("mvjoin", 2, 2, "keyword")
def _mvjoin(v: Any, delimiter: Any) -> str | None:
    values, sep = _elements(v), first(delimiter)
    if not values or sep is None:
        return None
    return text(sep).join(map(text, values))


@raw("mvappend", 1, None, T.ANY)
def _mvappend(*args: Any) -> Any:
    """Every value of every argument, in order; nulls left out."""
    return T.collapse([x for arg in args for x in _elements(arg)])


@raw("mvdedup", 1, 1, T.ANY)
def _mvdedup(v: Any) -> Any:
    """The values with repeats removed, first occurrences kept in order."""
    seen: set[tuple] = set()
    out = []
    for x in _elements(v):
        key = identity(x)
        if key not in seen:
            seen.add(key)
            out.append(x)
    return T.collapse(out)


@raw("mvsort", 1, 1, T.ANY)
def _mvsort(v: Any) -> Any:
    """The values in lexicographic order of their text (SPL's: ``10`` before ``9``)."""
    return T.collapse(sorted(_elements(v), key=text))


@raw("mvzip", 2, 3, T.ANY)
def _mvzip(left: Any, right: Any, delimiter: Any = ",") -> Any:
    """The values of both, pairwise, joined by ``delimiter`` (``,``), as far as the shorter goes."""
    sep = first(delimiter)
    if sep is None:
        return None
    return T.collapse([text(a) + text(sep) + text(b) for a, b in zip(_elements(left), _elements(right))])


@raw("mvrange", 2, 3, T.ANY)
def _mvrange(start: Any, end: Any, step: Any = 1) -> Any:
    """The numbers from ``start`` by ``step`` (1) up to, not including, ``end`` (down to, for
    a negative step); null for a zero step, a non-number, or more than ``MAX_RANGE`` values."""
    try:
        begin, stop, by = numeric(start), numeric(end), numeric(step)
        count = max(0, math.ceil((stop - begin) / by)) if by else MAX_RANGE + 1
    except (ValueError, ArithmeticError):  # a non-number, an infinite bound ("1e400")
        return None
    return T.collapse([begin + i * by for i in range(count)]) if count <= MAX_RANGE else None


def filtered_field(expr: Call) -> str | None:
    """The field an ``mvfilter`` call's condition reads (None: none); a condition on several
    is refused (400 ``parsing_exception``), when the task is created."""
    names = sorted({e.name for e in walk(expr.args[0]) if isinstance(e, Column)})
    if len(names) > 1:
        raise error(expr, f"function [mvfilter] expects a condition on one field, found [{', '.join(names)}]")
    return names[0] if names else None


def _mvfilter(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``mvfilter(<condition>)``: the values of the one field the condition reads for which
    it is true, the field standing for each value in turn (null when it keeps none or the
    rows have no such field); a condition on several fields is refused (400)."""
    (condition, _), = args
    name = filtered_field(expr)
    at = None if name is None else scope.index(name) if scope.index(name) is not None \
        else scope.index(name.removesuffix(".keyword"))
    if at is None:
        return (lambda row: None), T.ANY

    def run(row: list[Any]) -> Any:
        each = list(row)
        kept = []
        for value in _elements(row[at]):
            each[at] = value
            if truth(condition(each)):
                kept.append(value)
        return T.collapse(kept)
    return run, T.ANY


register("mvfilter", 1, 1, _mvfilter)
