"""The steps only ES|QL has: its sources ROW and SHOW INFO, and KEEP, DROP, RENAME,
DISSECT and GROK. They run through the ES|QL dialect (``operators.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...patterns import wildcard
from ..expr import Expr
from ..plan import Step


def matching(patterns: tuple[str, ...], names: list[str]) -> list[list[str]]:
    """For each of KEEP's or DROP's patterns, the names it matches (a plain name: itself, if present)."""
    out = []
    for pattern in patterns:
        if "*" in pattern:
            matches = wildcard(pattern)
            out.append([n for n in names if matches(n)])
        else:
            out.append([pattern] if pattern in names else [])
    return out


@dataclass(frozen=True)
class Row(Step):
    fields: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class ShowInfo(Step):
    pass


@dataclass(frozen=True)
class Keep(Step):
    patterns: tuple[str, ...]
    keeps_rows: ClassVar[bool] = True
    projection: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return {n for matched in matching(self.patterns, names) for n in matched}, True


@dataclass(frozen=True)
class Drop(Step):
    patterns: tuple[str, ...]
    keeps_rows: ClassVar[bool] = True
    projection: ClassVar[bool] = True


@dataclass(frozen=True)
class Rename(Step):
    pairs: tuple[tuple[str, str], ...]
    keeps_rows: ClassVar[bool] = True
    projection: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return {old for old, _ in self.pairs}, False


@dataclass(frozen=True)
class Dissect(Step):
    input: Expr
    pattern: str
    append_separator: str = ""
    keeps_rows: ClassVar[bool] = True


@dataclass(frozen=True)
class Grok(Step):
    input: Expr
    patterns: tuple[str, ...]
    keeps_rows: ClassVar[bool] = True
