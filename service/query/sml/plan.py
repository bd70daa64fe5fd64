"""SML's own steps over the shared plan (``operators.py`` runs them).

The shared steps do what SML shares with the other languages (Filter for ``where``, Eval
for ``eval``/``peval``, Aggregate for ``stats``/``aggs``, Limit for ``head`` and ``qsize``).
These are the rest: search conditions (whose terms name fields by text), projections,
SML's value order, ``dedup``, ``tail``, the generating ``makeresults``, the steps that
run a subsearch (or a lookup) of their own (``join``, ``append``, ``lookup``), and the last
step, which turns rows into the answer's events. Every name in them was resolved by the planner against what the rows
hold at that point, so operators never guess.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from ..expr import Call, Expr
from ..plan import Aggregate, Step, columns_in


@dataclass(frozen=True)
class Search(Step):
    """A ``search`` condition. Its terms name fields by text (``Term.field``) or read every
    field (full text), which ``columns_in`` cannot see: ``reads`` says what it reads, None
    for every column. Not a shared Filter, so no optimisation moves it past an Eval it
    reads through a term."""

    condition: Expr
    reads: tuple[str, ...] | None

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        if self.reads is None:
            return set(names), False
        return set(self.reads) | columns_in(self.condition), False


@dataclass(frozen=True)
class Select(Step):
    """Exactly these columns, in this order: (output name, input column, None for null).
    ``table``, ``fields`` over flat rows, and the column order of ``stats``."""

    columns: tuple[tuple[str, str | None], ...]
    keeps_rows: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return {source for _, source in self.columns if source is not None}, True


@dataclass(frozen=True)
class Rename(Step):
    """Columns renamed (old, new); a column already named ``new`` is replaced."""

    pairs: tuple[tuple[str, str], ...]
    keeps_rows: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return {old for old, _ in self.pairs}, False


@dataclass(frozen=True)
class OrderBy(Step):
    """``sort``: stable, by each key in SML's value order (numbers, then strings, then
    booleans; null last in both directions); ``descending`` per key."""

    keys: tuple[tuple[Expr, bool], ...]
    previews: ClassVar[bool] = True


@dataclass(frozen=True)
class Dedup(Step):
    """The first ``keep`` rows of each combination of the ``keys``' values, in order; a row
    with a null key is dropped, or kept as it is with ``keepempty``; ``consecutive`` counts
    only runs of adjacent rows."""

    keys: tuple[Expr, ...]
    keep: int = 1
    keepempty: bool = False
    consecutive: bool = False


@dataclass(frozen=True)
class Tail(Step):
    """The last ``count`` rows, in their order."""

    count: int


@dataclass(frozen=True)
class TimeCheck(Step):
    """The rows as they are; once read, ``warning`` when there were some and none had a
    value of ``value`` (spec §3: the default ``@timestamp`` of the time-aware commands may
    not be the data's time field)."""

    value: Expr
    warning: str
    keeps_rows: ClassVar[bool] = True


# --- timechart, timeaggs, bin ---

@dataclass(frozen=True)
class Bin(Step):
    """``value`` floored to its bucket, into the column ``name`` (replacing one of that name).
    A time ``span``: the calendar-aligned bucket start (epoch ms; a number is epoch ms, an
    ISO-8601 string is read as a date); a numeric one: a multiple of it; None: buckets of
    ``max(value) / bins`` (every row is held until the largest value is known). Anything
    else, null. ``absent``: the command whose warning says when no row had a value."""

    name: str
    value: Expr
    span: Any  # buckets.Span | None
    bins: int
    absent: str | None = None
    keeps_rows: ClassVar[bool] = True


@dataclass(frozen=True)
class Pivot(Step):
    """A shared Aggregate's groups (``bucket`` and, with ``by``, the ``by`` value) turned
    wide: one row per bucket of ``span`` from the bucket of ``axis[0]`` to that of
    ``axis[1]`` (None: of the first and last group), in time order, named ``time``; per
    aggregate (name, function) a column, or with ``by`` a column per value (the ``limit``
    largest by the first aggregate's total, the rest merged into ``OTHER``). A bucket
    without rows has count 0 and null for the other aggregates."""

    time: str
    bucket: str
    by: str | None
    aggregates: tuple[tuple[str, str], ...]
    limit: int | None
    span: Any  # buckets.Span
    axis: tuple[int, int] | None


@dataclass(frozen=True)
class Pick(Step):
    """``fields`` (``exclude`` True or False) or ``table`` (``exclude`` None) with patterns
    over a pivot's columns, which are named only when the query runs."""

    patterns: tuple[str, ...]
    exclude: bool | None
    keeps_rows: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return set(names), True


# --- top, rare, eventstats, streamstats, rex, makeresults ---

@dataclass(frozen=True)
class Top(Step):
    """``top``/``rare``: per combination of the ``by`` values (groups in SML's value order),
    the ``limit`` (0: all) most frequent (``rare``: least frequent) combinations of the
    ``fields``' values, ties by the values ascending, with their ``count`` (None: not shown)
    and their share of the group's rows holding every field (``percent``, 2 decimals; None:
    not shown). Rows without one of the fields or ``by`` fields are not counted; a
    multi-value counts each of its values once."""

    fields: tuple[tuple[str, Expr], ...]
    by: tuple[tuple[str, Expr], ...]
    limit: int
    rare: bool
    count: str | None
    percent: str | None
    previews: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return columns_in(self), True


@dataclass(frozen=True)
class EventStats(Step):
    """``eventstats``: ``aggregate`` (the shared step, its aggregates named ``$0``...) over all
    the rows, then each row, in its order, with its group's results as the columns ``names``;
    a row with a null ``by`` value gets nulls, one with a multi-value the group of its first
    values (it counts in the group of each)."""

    aggregate: Aggregate
    names: tuple[str, ...]
    previews: ClassVar[bool] = True


@dataclass(frozen=True)
class Attach(Step):
    """``eventstats``' second half, put in when it runs: each row it holds (``held``, rows of
    the relation ``into``), in order, with its group's results, read from this step's input:
    the shared Aggregate's groups (the results ``$0``..., then the ``groups``' keys).
    ``take``: the rows leave ``held`` as they are handed on (the answer); else (a preview of
    a running task) they stay."""

    groups: tuple[tuple[str, Expr], ...]
    names: tuple[str, ...]
    held: Any = field(compare=False)
    into: Any = field(compare=False)
    take: bool = False


@dataclass(frozen=True)
class StreamStats(Step):
    """``streamstats``: each row, in order, with the aggregates of the rows of its ``by`` group
    so far (itself included, unless not ``current``; ``window`` > 0: only the group's last
    ``window`` rows). A group
    starts again: after a change of the ``by`` values from the row before
    (``reset_on_change``, every group), before a row where ``reset_before`` is true, after one
    where ``reset_after`` (over the row with its values) is true. A row with a null ``by``
    value is not counted and gets nulls."""

    aggregates: tuple[tuple[str, Call], ...]
    by: tuple[Expr, ...]
    window: int
    reset_on_change: bool
    reset_before: Expr | None
    reset_after: Expr | None
    current: bool = True
    keeps_rows: ClassVar[bool] = True


@dataclass(frozen=True)
class Rex(Step):
    """``rex``: the first match of ``pattern`` in ``field`` (the first value of a multi-value
    that matches) sets the ``groups`` columns; a group that took no part, or no match,
    leaves a column the rows had as it was (a new one null)."""

    field: Expr
    pattern: str
    groups: tuple[str, ...]
    keeps_rows: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return columns_in(self.field) | set(self.groups), False



# --- join, append, lookup, inputlookup ---

@dataclass(frozen=True)
class MakeResults(Step):
    """A source of ``count`` rows holding only ``field``: the instant ``now_ms``."""

    count: int
    field: str
    now_ms: int


@dataclass(frozen=True)
class Join(Step):
    """``join`` (spec §7.12): the subsearch ``steps`` run once, their first ``cap`` rows
    kept; each row is matched with the subsearch rows whose ``sub_keys`` columns equal its
    ``keys`` (all non-null, compared as strings, case-sensitively). A match (the first
    ``max``, 0 for all) gives the row with the subsearch's ``carried`` columns, their
    non-null values over the row's; ``kind`` ``left`` keeps unmatched rows as they are."""

    steps: tuple[Step, ...]
    keys: tuple[Expr, ...]
    sub_keys: tuple[str | None, ...]  # None: the subsearch has no such field, nothing matches
    carried: tuple[str, ...]
    kind: str
    max: int
    cap: int

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return columns_in(self.keys) | set(self.carried), False


@dataclass(frozen=True)
class Append(Step):
    """``append``: the rows, then the subsearch's (``steps``, their first ``cap``), over the
    columns of both. ``edits``: the subsearch's own changes to its events' documents,
    replayed on its ``_source`` when the rows are events."""

    steps: tuple[Step, ...]
    cap: int
    edits: tuple[Edit, ...] = ()
    keeps_rows: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return set(), False


@dataclass(frozen=True)
class Lookup(Step):
    """``lookup``: the lookup's rows (``steps``) read once; a row matches the first lookup
    row whose ``matches`` (lookup column, the row's value) all match by ``definition``'s
    rules, and gets its ``outputs`` (lookup column, target column): the non-null values,
    with ``new_only`` only where the target is null."""

    steps: tuple[Step, ...]
    definition: Any  # lookups.Definition
    matches: tuple[tuple[str | None, Expr], ...]
    outputs: tuple[tuple[str | None, str], ...]
    new_only: bool
    keeps_rows: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return columns_in(tuple(e for _, e in self.matches)) | {t for _, t in self.outputs}, False


@dataclass(frozen=True)
class Edit:
    """A change a command made to the stored documents' shape (``fields``, ``rename``),
    replayed on each document when its event is built. ``kind``: ``keep`` (only the paths
    matching ``patterns``, nested structure kept), ``drop`` (the matching paths), ``move``
    (the path ``patterns[0]`` becomes the literal key ``target``)."""

    kind: str
    patterns: tuple[str, ...]
    target: str | None = None


@dataclass(frozen=True)
class Events(Step):
    """The last step while rows are events: each row becomes its stored document, shaped by
    ``edits``, with ``_index`` and ``_id``, then the ``created`` fields (eval, rename) as
    literal top-level keys from their columns. ``dates``: the mapped date fields, shown as
    ISO-8601 where the document holds them as epoch numbers. ``optional``: created fields
    a join or lookup may set, written only where their value is not null and not what the
    document already holds there (so a row they leave is as it was). A row without a
    ``_source`` (appended from flat rows) starts from an empty object."""

    edits: tuple[Edit, ...]
    created: tuple[str, ...]
    dates: tuple[str, ...]
    optional: tuple[str, ...] = ()

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return {"_source", "_index", "_id", *self.created, *self.dates}, True


@dataclass(frozen=True)
class Rows(Step):
    """The last step once rows are flat (after ``table`` or ``stats``): each row becomes an
    object of the ``names`` columns, in that order; None: of every column the rows have
    (a pivot's, whose names come from the data)."""

    names: tuple[str, ...] | None

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return set(names if self.names is None else self.names), True


@dataclass(frozen=True)
class Probe(Step):
    """Where one command's steps end, when the task measures its execution cost: the rows
    that pass and the time spent, counted on ``clock`` (an ``operators.CostClock``) for
    ``command``. Put into the plan at run time only."""

    command: int
    clock: Any = field(compare=False)
    fused: bool = False  # the command ran inside the source's storage query (spec §6 ``fusedInto``)
    keeps_rows: ClassVar[bool] = True
    observer: ClassVar[bool] = True

    def observes(self, names: list[str]) -> tuple[set[str], bool]:
        return set(), False

    def ran_past(self) -> Probe:
        return self if self.command == 0 else replace(self, fused=True)
