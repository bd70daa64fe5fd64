"""A source's predicate as an SQL condition that narrows an ordered scan: a superset test.

An ordered scan (EQL's events in time order) cannot be answered by the slice statements of
``runner``, but it can skip, inside SQLite, the documents its predicate certainly rejects:
those are never decoded. The condition is a *superset* of the predicate: every document the
predicate accepts satisfies it, and the predicate itself still runs in Python over what the
scan hands on, so it stays the judge of the answer. The condition is built from the
predicate's conjuncts that translate exactly (``Compiler``), an OR only when both sides do.

Kept to the constructs whose meaning no language changes: comparisons, IN, IS NULL, NOT,
AND, OR and case-sensitive wildcard patterns without a backslash (the languages differ on
escapes), over columns that never held a multi-value (where "any value" and "the value"
are the same). Functions, arithmetic, regexes and case-insensitive forms stay in Python.
"""

from __future__ import annotations

import re

from typing import Any

from ...store.catalog import Index
from ...store.sql import quote
from ..dialect import Dialect
from ..evaluate import walk
from ..expr import Binary, Call, Column, Expr, In, IsNull, Like, Literal, Logical, Neg, Not
from .compiler import COMPARISONS, Col, Compiler, NotPushable
from .dialect import SqliteDialect

_LEAVES = (Binary, Column, In, IsNull, Like, Literal, Logical, Not)
_PARAM = re.compile(r'"(?:[^"]|"")*"|:(p\d+)')


def prefilter(predicate: Expr, index: Index, names: list[str], types: list[str],
              language: Dialect) -> tuple[str, list[Any]] | None:
    """A condition on ``index``'s table that every document ``predicate`` accepts satisfies,
    with its positional parameters; None when no part of the predicate translates (nothing
    does for a language that compiles nodes itself, ``Dialect.compile_node``: it gives the
    shared constructs meanings SQL does not know)."""
    if language.compile_node is not None:
        return None
    columns = [Col(name, kind, quote(index.columns[name]) if name in index.columns else "NULL",
                   name in index.multi_valued) for name, kind in zip(names, types)]
    comp = Compiler(SqliteDialect(), language, columns, {}, eager=False)
    sql = _superset(predicate, comp)
    if sql is None:
        return None
    params: list[Any] = []

    def positional(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return match.group(0)  # a quoted identifier, as it is
        params.append(comp.params[match.group(1)])
        return "?"
    return _PARAM.sub(positional, sql), params


def _superset(expr: Expr, comp: Compiler) -> str | None:
    if isinstance(expr, Logical):
        left, right = _superset(expr.left, comp), _superset(expr.right, comp)
        if expr.op == "AND":
            return " AND ".join(f"({s})" for s in (left, right) if s is not None) or None
        return f"({left}) OR ({right})" if left is not None and right is not None else None
    if not all(_translatable(node) for node in walk(expr)):
        return None
    try:
        return comp.sql(expr)[0]
    except NotPushable:
        return None


def _translatable(node: Expr) -> bool:
    if isinstance(node, (Call, Neg)) or not isinstance(node, _LEAVES):
        return False
    if isinstance(node, Binary):
        return node.op in COMPARISONS
    if isinstance(node, (In, Like)) and node.insensitive:
        return False
    if isinstance(node, Like):
        return not node.regex and all(isinstance(p, Literal) and isinstance(p.value, str) and "\\" not in p.value
                                      for p in node.patterns)
    return True
