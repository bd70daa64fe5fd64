"""Expression trees shared by every query language (ES|QL, EQL, SML compile to these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Src:
    """Where an expression came from: 1-based line and column, and its exact text."""

    line: int = 0
    col: int = 0
    text: str = ""


@dataclass(frozen=True, slots=True)
class Expr:
    src: Src = field(default=Src(), compare=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    value: Any
    type: str


@dataclass(frozen=True, slots=True)
class Column(Expr):
    name: str


@dataclass(frozen=True, slots=True)
class Star(Expr):
    pass


@dataclass(frozen=True, slots=True)
class Call(Expr):
    name: str  # upper case
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Binary(Expr):
    op: str  # + - * / % == != < <= > >=
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Neg(Expr):
    value: Expr


@dataclass(frozen=True, slots=True)
class Not(Expr):
    value: Expr


@dataclass(frozen=True, slots=True)
class Logical(Expr):
    op: str  # AND / OR
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class In(Expr):
    value: Expr
    items: tuple[Expr, ...]
    negated: bool = False
    insensitive: bool = False  # EQL's `in~`: strings compare lowercased


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    value: Expr
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Like(Expr):
    value: Expr
    patterns: tuple[Expr, ...]  # constant expressions
    negated: bool = False
    regex: bool = False
    insensitive: bool = False  # EQL's `:`, `like~`, `regex~`: value and patterns lowercased


@dataclass(frozen=True, slots=True)
class Cast(Expr):
    value: Expr
    type: str
