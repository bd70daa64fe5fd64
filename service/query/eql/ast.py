"""EQL queries as the parser hands them over.

Conditions are the shared expression trees of ``service/query/expr.py``; the only
EQL-only expression is the optional field ``?name``. ``with runs=N`` is already
expanded and every term carries its full key list (sequence- or sample-level keys
first), so later stages never look back at the syntax.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..expr import Expr, Src


@dataclass(frozen=True, slots=True)
class Optional(Expr):
    """``?name``: a field that may be unmapped in every index (then it is null)."""

    name: str


@dataclass(frozen=True)
class EventFilter:
    category: str | None  # None for `any`
    condition: Expr
    src: Src


@dataclass(frozen=True)
class Term:
    """One stage of a sequence or sample, after ``with runs=N`` expansion."""

    filter: EventFilter
    keys: tuple[Expr, ...]  # Column or Optional: sequence/sample-level keys first, then the term's
    missing: bool = False  # `![ ... ]`


@dataclass(frozen=True)
class Pipe:
    kind: str  # "head" | "tail"
    count: int
    src: Src


@dataclass(frozen=True)
class EventQuery:
    filter: EventFilter
    pipes: tuple[Pipe, ...] = ()


@dataclass(frozen=True)
class SequenceQuery:
    terms: tuple[Term, ...]
    until: Term | None = None
    maxspan_ms: int | None = None
    pipes: tuple[Pipe, ...] = ()


@dataclass(frozen=True)
class SampleQuery:
    terms: tuple[Term, ...]


Query = EventQuery | SequenceQuery | SampleQuery
