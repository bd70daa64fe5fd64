"""SML's own expression nodes (the search command's); the rest are ``query/expr.py``'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..expr import Expr


@dataclass(frozen=True, slots=True)
class Term(Expr):          # search: f=v, f!=v, f<v ... ; f IN (...) becomes OR of Term("=")
    field: str
    op: str                # "=" "!=" "<" "<=" ">" ">="
    value: Any             # str (may hold * wildcards) or int/float; a bare word stays str
@dataclass(frozen=True, slots=True)
class Text(Expr):          # search: a bare term or "phrase" (full text over every leaf)
    value: str
