"""The logical plan: a source followed by processing steps, shared by the query languages."""

from __future__ import annotations

from dataclasses import dataclass, field

from .expr import Expr, Src


@dataclass(frozen=True)
class Step:
    src: Src = field(default=Src(), compare=False, kw_only=True)


@dataclass(frozen=True)
class Source(Step):
    indices: tuple[str, ...]
    metadata: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row(Step):
    fields: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class ShowInfo(Step):
    pass


@dataclass(frozen=True)
class Filter(Step):
    condition: Expr


@dataclass(frozen=True)
class Eval(Step):
    fields: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Aggregate(Step):
    aggregates: tuple[tuple[str, Expr, Expr | None], ...]  # name, expression, per-aggregate filter
    groups: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class Order:
    expr: Expr
    ascending: bool = True
    nulls_first: bool | None = None  # None: ES default (last for ASC, first for DESC)


@dataclass(frozen=True)
class Sort(Step):
    orders: tuple[Order, ...]


@dataclass(frozen=True)
class Limit(Step):
    count: int


@dataclass(frozen=True)
class Keep(Step):
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Drop(Step):
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Rename(Step):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Dissect(Step):
    input: Expr
    pattern: str
    append_separator: str = ""


@dataclass(frozen=True)
class Grok(Step):
    input: Expr
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class MvExpand(Step):
    column: str


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]
    text: str = ""
    warnings: tuple[str, ...] = ()  # found while parsing, reported with the result
