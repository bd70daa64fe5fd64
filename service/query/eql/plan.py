"""EQL's own steps over the shared plan: what to keep of the matching events, and the
sequence and sample matchers. Each runs over one time-ordered (or, for samples,
insertion-ordered) scan of the target indices whose predicate is any stage's filter;
``operators.py`` runs them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from ..expr import Expr
from ..plan import Step, columns_in

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """Which of the ordered matches a query keeps (spec/eql.md §6): the first ``size`` when
    ``position`` is head, the last when tail, then each head/tail pipe over the previous."""

    size: int
    position: str = "tail"
    pipes: tuple[tuple[str, int], ...] = ()

    @property
    def first(self) -> tuple[str, int]:
        """The selection applied to all the matches: the first pipe's, within ``size``, or
        ``size`` at the position."""
        if self.pipes:
            kind, count = self.pipes[0]
            return kind, min(count, self.size)
        return self.position, self.size

    def rest(self, kept: list[T]) -> list[T]:
        """What the pipes after the first keep of what the first selection kept."""
        for kind, count in self.pipes[1:]:
            kept = kept[:count] if kind == "head" else kept[max(len(kept) - count, 0):] if count else []
        return kept

    def select(self, items: list[T]) -> list[T]:
        """What the window keeps of all the matches, in order."""
        kind, count = self.first
        kept = items[:count] if kind == "head" else items[max(len(items) - count, 0):] if count else []
        return self.rest(kept)


@dataclass(frozen=True)
class Stage:
    """One stage of a sequence or sample (or the ``until`` term): its filter and join keys."""

    condition: Expr
    keys: tuple[Expr, ...] = ()
    optional: tuple[bool, ...] = ()  # per key: an optional (``?k``) key joins on null
    missing: bool = False


@dataclass(frozen=True)
class _EqlStep(Step):
    timestamp: str | None
    fields: tuple[object, ...]  # the request's ``fields``: names, patterns or {"field", "format"}

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        """The stages' columns and the time field (the metadata and ``_source`` come with
        every row); every column when the hits carry ``fields``."""
        if self.fields:
            return set(names), True
        return columns_in(self) | ({self.timestamp} if self.timestamp else set()), True


@dataclass(frozen=True)
class Events(_EqlStep):
    """The events of the scan (its predicate is the query's filter), kept as ``window`` says."""

    window: Window


@dataclass(frozen=True)
class Sequences(_EqlStep):
    stages: tuple[Stage, ...]
    until: Stage | None
    maxspan: int | None  # in the time field's unit
    window: Window


@dataclass(frozen=True)
class Samples(_EqlStep):
    stages: tuple[Stage, ...]
    size: int
    max_samples_per_key: int
