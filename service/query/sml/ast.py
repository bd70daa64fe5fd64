"""SML pipelines as the parser hands them over (spec/sml.md §1, §5-§7).

Expressions are the shared trees of ``service/query/expr.py``; search adds two nodes of
its own, ``Term`` and ``Text``, whose semantics (case-insensitive, wildcards, any value
of an array, full-text tokens) differ from ``Binary`` comparisons, and ``where`` adds
``Holds``. Every command carries ``src``: the position of its name and the command's
text, for errors found later.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..expr import Expr, Src


@dataclass(frozen=True, slots=True)
class Term(Expr):
    """``f=v`` ``f!=v`` ``f<v`` ... in ``search``; ``f IN (a, b)`` is an OR of ``=`` terms."""

    field: str
    op: str  # "=" "!=" "<" "<=" ">" ">="
    value: Any  # str (may hold * wildcards) or int/float; a bare word stays str


@dataclass(frozen=True, slots=True)
class Text(Expr):
    """A bare term or ``"phrase"`` in ``search``: full text over every leaf value."""

    value: str


@dataclass(frozen=True, slots=True)
class Holds(Expr):
    """A ``where`` condition: true where ``value`` is exactly true (a multi-value: its first
    value), false for anything else, null or a value of another type (§6, §9)."""

    value: Expr


@dataclass(frozen=True)
class Command:
    """A pipeline stage; ``src`` is where its name starts, with the command's whole text."""

    src: Src = field(default=Src(), compare=False, kw_only=True)


@dataclass(frozen=True)
class Source(Command):
    indices: tuple[str, ...]
    qsize: int | None
    earliest: str | None  # as written; resolved against the request's range later
    latest: str | None


@dataclass(frozen=True)
class Search(Command):
    condition: Expr


@dataclass(frozen=True)
class Where(Command):
    condition: Expr


@dataclass(frozen=True)
class Eval(Command):
    assignments: tuple[tuple[str, Expr], ...]
    storage: bool  # True for peval


@dataclass(frozen=True)
class Agg:
    """One aggregate of ``stats``/``aggs``; ``src`` is the aggregate as written."""

    function: str  # lower case
    args: tuple[Expr, ...]
    name: str  # `as` or the default of §7.5
    src: Src = field(default=Src(), compare=False, kw_only=True)


@dataclass(frozen=True)
class Stats(Command):
    aggs: tuple[Agg, ...]
    by: tuple[str, ...]
    storage: bool  # True for aggs


@dataclass(frozen=True)
class Fields(Command):
    exclude: bool
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Table(Command):
    patterns: tuple[str, ...]


@dataclass(frozen=True)
class Rename(Command):
    pairs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sort(Command):
    keys: tuple[tuple[str, bool], ...]  # (field, descending)
    limit: int | None


@dataclass(frozen=True)
class Head(Command):
    count: int


@dataclass(frozen=True)
class Tail(Command):
    count: int


@dataclass(frozen=True)
class Dedup(Command):
    """``sort``: SPL's ``sortby`` keys (field, descending), sorting the rows kept."""

    fields: tuple[str, ...]
    keep: int = 1
    keepempty: bool = False
    consecutive: bool = False
    sort: tuple[tuple[str, bool], ...] = ()


# --- timechart, timeaggs, bin ---

@dataclass(frozen=True)
class Timechart(Command):
    """``timechart``/``timeaggs``: the aggregates per time bucket (of ``span``, else the
    range's predefined span widened to at most ``bins`` buckets), one column per ``by``
    value (the ``limit`` largest, the rest in ``OTHER``; ``limit`` None: every value)."""

    aggs: tuple[Agg, ...]
    by: str | None
    span: Any  # a buckets.Span, None for the range's
    bins: int
    limit: int | None
    timefield: str
    storage: bool  # True for timeaggs


@dataclass(frozen=True)
class Bin(Command):
    """``bin``: ``field``'s value floored to its bucket, written to ``target``."""

    field: str
    target: str
    span: Any  # a buckets.Span, None for the range's (time) or max/bins (numbers)
    bins: int
    span_src: Src = field(default=Src(), compare=False)  # where the span is written, for its errors


# --- top, rare, eventstats, streamstats, rex, makeresults ---

@dataclass(frozen=True)
class Top(Command):
    """``top`` / ``rare`` (``rare`` true): the ``limit`` most (least) frequent combinations of
    ``fields`` per ``by`` group; ``limit`` 0 keeps them all; ``count`` None: ``showcount=false``,
    ``percent`` None: ``showperc=false``."""

    fields: tuple[str, ...]
    by: tuple[str, ...] = ()
    limit: int = 10
    rare: bool = False
    count: str | None = "count"
    percent: str | None = "percent"


@dataclass(frozen=True)
class EventStats(Command):
    aggs: tuple[Agg, ...]
    by: tuple[str, ...] = ()


@dataclass(frozen=True)
class StreamStats(Command):
    """``window`` 0: every row of the group so far; ``current`` false: the rows before it."""

    aggs: tuple[Agg, ...]
    by: tuple[str, ...] = ()
    window: int = 0
    reset_on_change: bool = False
    reset_before: Expr | None = None
    reset_after: Expr | None = None
    current: bool = True


@dataclass(frozen=True)
class Rex(Command):
    """``pattern`` as written (``(?<name>...)`` groups); ``groups``: its named groups in order."""

    field: str
    pattern: str
    groups: tuple[str, ...]



# --- join, append, lookup, inputlookup ---

@dataclass(frozen=True)
class Join(Command):
    """``join [type=inner|left] [max=N] <field>... [ <subsearch> ]`` (spec §7.12)."""

    fields: tuple[str, ...]
    subsearch: Pipeline
    kind: str = "inner"  # inner | left
    max: int = 1  # matches per main row, 0 for all


@dataclass(frozen=True)
class Append(Command):
    subsearch: Pipeline


@dataclass(frozen=True)
class MakeResults(Command):
    count: int = 1


@dataclass(frozen=True)
class InputLookup(Command):
    name: str


@dataclass(frozen=True)
class Lookup(Command):
    """``lookup <name> <lookup-field> [AS <event-field>]... [OUTPUT|OUTPUTNEW ...]`` (§7.16):
    ``matches`` and ``outputs`` are (lookup field, event field) pairs; ``outputs`` None: every
    lookup field that is not matched on."""

    name: str
    matches: tuple[tuple[str, str], ...]
    outputs: tuple[tuple[str, str], ...] | None = None
    new_only: bool = False  # OUTPUTNEW: only where the event's field is null


@dataclass(frozen=True)
class Pipeline:
    commands: tuple[Command, ...]
    text: str
