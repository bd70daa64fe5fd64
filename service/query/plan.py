"""The logical plan every query language compiles to.

A plan is a pipeline: a source step, then the steps that transform its rows, in order.
The source is a ``Source`` (documents of indices) or a ``Combine`` of other pipelines
(EQL sequences and samples, SML append and join), or a step a language adds itself
(ES|QL's ``ROW``). The steps here are the language-neutral operators; a language's own
steps (ES|QL's KEEP, DISSECT...) subclass ``Step`` beside its parser and come with its
dialect (``dialect.py``), which tells the executor how to run them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .expr import Column, Expr, Src

if TYPE_CHECKING:
    from .execute import Context, Relation


def columns_in(node: Any) -> set[str]:
    """The names of the columns ``node`` (a step, an expression, tuples of them) refers to."""
    if isinstance(node, Column):
        return {node.name}
    if isinstance(node, tuple):
        return set().union(*map(columns_in, node)) if node else set()
    if is_dataclass(node) and not isinstance(node, (Src, type)):
        return set().union(*(columns_in(getattr(node, f.name)) for f in fields(node)))
    return set()


@dataclass(frozen=True)
class Step:
    src: Src = field(default=Src(), compare=False, kw_only=True)
    # Each input row becomes one row or more, in order: a LIMIT after the step needs no
    # more than that many of the rows before it.
    keeps_rows: ClassVar[bool] = False
    # Only picks, orders or renames columns (its operator never looks at a value), so SQL
    # can select what it gives (see pushdown.planner).
    projection: ClassVar[bool] = False
    # Only watches the rows go by (measures them): a preview of a running query skips it.
    observer: ClassVar[bool] = False
    # Collects its input before its first row and, running, makes previews of what it has
    # so far (``Control.preview_due``): a running query with such a step can show one.
    previews: ClassVar[bool] = False

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        """The input columns (of ``names``) this step reads, and whether it ends what its
        input shows (after it, only its output and what later steps name can be seen)."""
        return columns_in(self), False

    def ran_past(self) -> Step:
        """This observer, watching the source's output instead of its own place: the source
        ran the steps in front of it itself (a SQL pushdown)."""
        return self


@dataclass(frozen=True)
class ScanOrder:
    """Read documents by ``field`` (the time field: EQL reads events in time order), then by
    ``tiebreaker`` (nulls last), then in insertion order; with ``ids``, equal times by
    ``_index`` then ``_id`` ascending whatever the direction (SML's ``source``). Documents
    without a single value of ``field`` are not read."""

    field: str
    descending: bool = False
    tiebreaker: str | None = None
    ids: bool = False


@dataclass(frozen=True)
class TimeRange:
    """Only documents whose ``field`` lies in ``[gte, lt)`` (epoch milliseconds; None: open)."""

    field: str
    gte: int | None = None
    lt: int | None = None


@dataclass(frozen=True)
class Source(Step):
    """The documents of ``indices`` (names or patterns): a row per document with every
    mapped field, then the ``metadata`` columns (``_id``, ``_index``, ``_version``), then
    with ``with_source`` the document as stored: a ``_source`` column of its JSON text, which
    only the rows that reach the answer need decoded. ``predicate`` is a
    condition the language puts on the documents themselves (EQL's event category, SML's
    search terms): it runs as a Filter right after the source, where pushdown can take it."""

    indices: tuple[str, ...]
    metadata: tuple[str, ...] = ()
    with_source: bool = False
    order: ScanOrder | None = None  # None: insertion (rowid) order, read in rowid slices
    predicate: Expr | None = None
    time_range: TimeRange | None = None


class Combiner(Protocol):
    """How a ``Combine`` makes one relation of its inputs' (an EQL sequence matcher, SML append)."""

    def __call__(self, inputs: list[Relation], ctx: Context) -> Relation: ...


@dataclass(frozen=True)
class Combine(Step):
    """A source made of other pipelines: each input runs to a relation, ``combiner`` merges them."""

    inputs: tuple[tuple[Step, ...], ...]
    combiner: Combiner = field(compare=False)


@dataclass(frozen=True)
class Filter(Step):
    condition: Expr


@dataclass(frozen=True)
class Eval(Step):
    fields: tuple[tuple[str, Expr], ...]
    keeps_rows: ClassVar[bool] = True


@dataclass(frozen=True)
class Aggregate(Step):
    aggregates: tuple[tuple[str, Expr, Expr | None], ...]  # name, expression, per-aggregate filter
    groups: tuple[tuple[str, Expr], ...]
    previews: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return columns_in(self), True


@dataclass(frozen=True)
class Order:
    expr: Expr
    ascending: bool = True
    nulls_first: bool | None = None  # None: ES default (last for ASC, first for DESC)


@dataclass(frozen=True)
class Sort(Step):
    orders: tuple[Order, ...]
    previews: ClassVar[bool] = True


@dataclass(frozen=True)
class Limit(Step):
    count: int


@dataclass(frozen=True)
class MvExpand(Step):
    column: str
    keeps_rows: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return {self.column}, False


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]  # the source, then the steps over its rows
    text: str = ""
    warnings: tuple[str, ...] = ()  # found while parsing, reported with the result
