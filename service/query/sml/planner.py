"""From a parsed SML pipeline and its request to the shared plan.

A query is one scan: the documents of the source's indices whose time field lies in the
request's range (SQLite finds them on the time index), newest first, as ``source`` emits
them (spec/sml.md §7.1). Next comes the storage prefix, the ``search`` and ``peval``
commands right after ``source``, then ``qsize``'s Limit, which so counts the events those
let through. Every later command becomes one step or a few: shared ones where SML means
what the engine does (``where``, ``eval``, ``stats``, ``head``), SML's own (``plan.py``)
elsewhere; the last step makes each row an event or a flat row. The other generating
commands (``GENERATORS``) start a pipeline with their own step instead: ``makeresults``,
``inputlookup`` (a lookup's index read whole, as flat rows).

A subsearch ``[ ... ]`` is planned the same way, with the same request (its range unless
its source sets one, spec §3), into the steps of its command's step (``join``, ``append``;
``lookup`` reads its lookup like ``inputlookup``), which runs them when it is built.

The leading searches are ``Search`` steps right after the scan rather than the source's
predicate: their terms follow SML's rules (case-insensitive, numeric-looking strings),
which only SML's own translation (``pushdown/sml.py``) puts into SQL, and a step can say
which fields its terms read, so the engine reads (and decodes) only the columns the
pipeline uses. The scan (``source.Scan``) hands that translation the front of the plan:
a ``stats`` over the searches and ``qsize`` runs in SQL whole; otherwise the searches
narrow the scan's SQL and still decide in Python. The time range and the order (newest
first, equal times by ``_index`` then ``_id``) are SQL's.

Names are resolved here, once, following what each command does to the rows (spec §4):
a field is the column the mapping or an earlier command gives it, ``x.keyword`` is ``x``
unless mapped itself, and any other name is null (a search term on it matches nothing),
never an error.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field, fields as dataclass_fields, replace
from typing import Any, Callable, Iterable, Iterator

from ...store.catalog import Catalog, Index
from .. import types as T
from ..errors import ParsingError
from ..evaluate import walk
from ..expr import Call, Column, Expr, IsNull, Literal, Logical, Src
from ..plan import Aggregate, Eval, Filter, Limit, Plan, ScanOrder, Source, Step, TimeRange
from . import aggregates, ast, buckets, functions, times
from . import plan as sp
from .lookups import Definition, Definitions, of_index
from .operators import expand_fields as _expand, field_pattern, matching_fields as _matching
from .request import SmlRequest
from .source import Qsize, Scan

DEFAULT_QSIZE = 10_000  # events a source emits when its qsize is not given (spec §7.1)
METADATA = ("_index", "_id")
KEYWORD = ".keyword"
TIMED_AGGREGATES = ("earliest", "latest")  # their optional second argument: the time field
DEFAULT_TIME_FIELD = "@timestamp"  # of the time-aware aggregates (spec §3)


class _Rows:
    """What the rows hold at one point of the pipeline, as the commands so far left them:
    their fields in order, and while rows are events, how an event is built (the fields
    commands created, the edits of the stored document)."""

    def __init__(self, names: list[str], readable: dict[str, tuple[str, str]]) -> None:
        self.names = names
        # names that read another column while the field they belong to is there:
        # multi-fields (``x.keyword``) and aliases -> (column, owning field)
        self.readable = readable
        self.events = True
        self.created: list[str] = []
        self.edits: list[sp.Edit] = []
        self.fixed: list[str] | None = None  # the answer's field order, once a command fixes it
        self.optional: set[str] = set()  # created fields a join or lookup may leave unset
        self.kinds: dict[str, str] = {}  # the mapped type of each stored field, while rows are events
        self.time_range: TimeRange | None = None  # the source's range: the axis of the time-aware commands
        self.wide = False  # a pivot's columns (timechart by): named by the data, known only when it runs

    # --- names ---------------------------------------------------------------------------

    def column(self, name: str) -> str | None:
        """The column a field name reads here, None when the rows have no such field."""
        if name in self.names:
            return name
        if name in self.readable:
            column, owner = self.readable[name]
            if owner in self.names:
                return self.column(owner) if owner in self.created else column
        if name.endswith(KEYWORD):
            return self.column(name[:-len(KEYWORD)])
        return name if self.wide else None

    def resolve(self, node: Any) -> Any:
        """``node`` with every field name resolved: a Column of the rows, else null; a search
        term on a field the rows do not have is false (every form needs the field)."""
        if isinstance(node, Column):
            column = self.column(node.name)
            return Column(column, src=node.src) if column is not None else Literal(None, "null", src=node.src)
        if isinstance(node, ast.Term):
            column = self.column(node.field)
            return replace(node, field=column) if column is not None else Literal(False, "boolean", src=node.src)
        if isinstance(node, tuple):
            return tuple(self.resolve(n) for n in node)
        if isinstance(node, Expr):
            return type(node)(**{f.name: self.resolve(getattr(node, f.name)) for f in dataclass_fields(node)})
        return node

    def carried(self, kept: Iterable[str]) -> list[tuple[str, str | None]]:
        """The columns a Select keeps while rows are events: the ``kept`` fields, the columns
        their multi-fields and aliases read, the metadata and the stored document."""
        kept = list(kept)
        extra = [column for column, owner in self.readable.values() if owner in kept]
        out = dict.fromkeys([*kept, *extra, *METADATA, "_source"])
        return [(name, name) for name in out]

    # --- what commands do --------------------------------------------------------------

    def assign(self, name: str) -> None:
        """A command wrote the field ``name``: a literal top-level key of the event."""
        self._overwritten(name)
        if self.events:
            self.created.append(name)
        if name not in self.names:
            self.names.append(name)
            if self.fixed is not None:
                self.fixed.append(name)

    def _overwritten(self, name: str) -> None:
        self.optional.discard(name)
        if name in self.created:
            self.created.remove(name)
        self.readable = {k: v for k, v in self.readable.items() if v[1] != name}

    def renamed(self, old: str, new: str) -> None:
        """The field ``old`` is now ``new`` (in place in the field order), ``new`` replaced."""
        self._overwritten(new)
        if old in self.optional:
            self.optional.remove(old)
            self.optional.add(new)
        if old in self.created:
            self.created[self.created.index(old)] = new
        for order in (self.names, self.fixed):
            if order is not None and old in order:
                if new in order:
                    order.remove(new)
                order[order.index(old)] = new

    def flat(self, names: list[str]) -> None:
        """Rows are flat objects of exactly ``names`` from now on."""
        self.names = list(names)
        self.fixed = list(self.names)  # its own list: a field assigned later is added to each once
        self.events = False
        self.wide = False
        self.readable, self.created, self.edits, self.optional = {}, [], [], set()


# --- commands --------------------------------------------------------------------------------

def _all(conditions: list[Expr]) -> Expr:
    out = conditions[0]
    for condition in conditions[1:]:
        out = Logical("AND", out, condition, src=condition.src)
    return out


def _search(command: ast.Search, rows: _Rows) -> sp.Search:
    condition = rows.resolve(command.condition)
    nodes = walk(condition)
    reads = None if any(isinstance(n, ast.Text) for n in nodes) else \
        tuple(dict.fromkeys(n.field for n in nodes if isinstance(n, ast.Term)))
    return sp.Search(condition, reads, src=command.src)


def _where(command: ast.Where, rows: _Rows) -> Filter:
    """The rows where the condition is exactly true (§6): one of another type keeps none."""
    condition = rows.resolve(command.condition)
    return Filter(ast.Holds(condition, src=condition.src), src=command.src)


def _eval(command: ast.Eval, rows: _Rows) -> Eval:
    """Assignments left to right: each sees the fields the ones before it wrote."""
    assignments = []
    for name, expr in command.assignments:
        assignments.append((name, rows.resolve(expr)))
        rows.assign(name)
    return Eval(tuple(assignments), src=command.src)


def _aggregate(agg: ast.Agg, rows: _Rows, src: Src) -> tuple[str, Expr, None]:
    args = rows.resolve(agg.args)
    if agg.function in TIMED_AGGREGATES and len(args) == 1:
        args += (rows.resolve(Column(DEFAULT_TIME_FIELD)),)
    return agg.name, Call(agg.function, args, src=src), None


def _stats(command: ast.Stats, rows: _Rows) -> list[Step]:
    """Shared Aggregate, then SML's output rules (spec §7.5): groups with a null key gone
    (a multi-valued key already put its row in one group per distinct value), sorted by
    the keys, the keys' columns first."""
    aggregates = tuple((name, call, None) for name, call in _aggregates(command.aggs, rows))
    groups = tuple((name, rows.resolve(Column(name, src=command.src))) for name in command.by)
    steps: list[Step] = [*_time_checked(command, rows), Aggregate(aggregates, groups, src=command.src)]
    if command.by:
        present = [IsNull(Column(name, src=command.src), negated=True, src=command.src) for name in command.by]
        steps.append(Filter(_all(present), src=command.src))
        steps.append(sp.OrderBy(tuple((Column(name, src=command.src), False) for name in command.by),
                                src=command.src))
    names = list(dict.fromkeys([*command.by, *(name for name, _, _ in aggregates)]))
    steps.append(sp.Select(tuple((n, n) for n in names), src=command.src))
    rows.flat(names)
    return steps


def _fields(command: ast.Fields, rows: _Rows) -> Step:
    if rows.wide:
        return _wide_pick(command.patterns, command.exclude, rows)
    chosen = _expand(command.patterns, rows.names)
    if command.exclude:
        kept = [n for n in rows.names if n not in chosen]
        if rows.fixed is not None:
            rows.fixed = [n for n in rows.fixed if n not in chosen]
    else:
        kept = chosen
        rows.fixed = list(chosen)
    if not rows.events:
        rows.flat(kept)
        return sp.Select(tuple((n, n) for n in rows.names), src=command.src)
    rows.edits.append(sp.Edit("drop" if command.exclude else "keep", command.patterns))
    rows.created = [n for n in rows.created if n in kept]
    rows.names = [n for n in rows.names if n in kept]
    return sp.Select(tuple(rows.carried(rows.names)), src=command.src)


def _table(command: ast.Table, rows: _Rows) -> Step:
    """Flat rows of exactly the named fields; a pattern gives the matching ones in the
    rows' order, a name the rows lack a column of nulls."""
    if rows.wide and any("*" in glob for glob in command.patterns):
        return _wide_pick(command.patterns, None, rows)
    columns: dict[str, str | None] = {}
    for glob in command.patterns:
        for name in (_matching(glob, rows.names) if "*" in glob else [glob]):
            columns.setdefault(name, rows.column(name))
    rows.flat(list(columns))
    return sp.Select(tuple(columns.items()), src=command.src)


def _rename(command: ast.Rename, rows: _Rows) -> list[Step]:
    """Each pair in turn: a field (or, while rows are events, an object and the fields
    under it) takes the new name as a literal key; a name the rows lack is ignored. A pair
    with ``*`` renames every field its old pattern matches (§7.10)."""
    steps: list[Step] = []
    for old, new in command.pairs:
        for name, target in _renamed_by(old, new, rows, command.src):
            steps += _rename_one(name, target, rows, command.src)
    return steps


def _renamed_by(old: str, new: str, rows: _Rows, src: Src) -> list[tuple[str, str]]:
    """The (field, new name) pairs of one ``rename`` pair: itself, or with ``*`` the fields
    the old pattern matches, each ``*`` of the new name replaced by what its ``*`` matched."""
    if "*" not in old:
        return [(old, new)]
    if rows.wide:
        raise ParsingError(f"line {src.line}:{src.col}: renaming by pattern [{old}] after a pivot's "
                           "columns is not supported yet")
    shape = re.compile("(.*?)".join(map(re.escape, old.split("*"))) + "$", re.DOTALL)
    pieces = new.split("*")
    matches = field_pattern(old)
    pairs = []
    for name in rows.names:
        found = shape.match(name) if matches(name) else None
        if found is not None:
            pairs.append((name, pieces[0] + "".join(g + p for g, p in zip(found.groups(), pieces[1:]))))
    return pairs


def _rename_one(old: str, new: str, rows: _Rows, src: Src) -> list[Step]:
    column = rows.column(old)
    if column in rows.names:
        old = column  # ``x.keyword`` renames ``x``
    if old == new:
        return []
    inside = [n for n in rows.names if n.startswith(old + ".")] if rows.events and column is None else []
    if column is None and not inside:
        return []
    if column is not None:
        pairs = [(column, new)]
        stored = rows.events and old in rows.names and old not in rows.created
    else:
        pairs = [(n, new + n[len(old):]) for n in inside]
        stored = True
    if stored:
        rows.edits.append(sp.Edit("move", (old,), new))
        for name, target in pairs:
            rows.renamed(name, target)
    elif old in rows.names:
        rows.renamed(old, new)
    else:  # a multi-field or alias: its value becomes a field of its own
        rows.assign(new)
    return [sp.Rename(tuple(pairs), src=src)]


def _sort(command: ast.Sort, rows: _Rows) -> list[Step]:
    keys = tuple((rows.resolve(Column(name, src=command.src)), descending) for name, descending in command.keys)
    steps: list[Step] = [sp.OrderBy(keys, src=command.src)]
    if command.limit is not None:
        steps.append(Limit(command.limit, src=command.src))
    return steps


def _dedup(command: ast.Dedup, rows: _Rows) -> list[Step]:
    """The rows kept, then (``sortby``) sorted as ``sort`` does."""
    keys = tuple(rows.resolve(Column(name, src=command.src)) for name in command.fields)
    steps: list[Step] = [sp.Dedup(keys, command.keep, command.keepempty, command.consecutive, src=command.src)]
    if command.sort:
        steps += _sort(ast.Sort(command.sort, None, src=command.src), rows)
    return steps


# --- timechart, timeaggs, bin ---

BUCKET = "$bucket"  # the Aggregate's time key: the time field itself stays for the aggregates to read
DATE_KINDS = ("date", "date_nanos")


def _axis(rows: _Rows) -> tuple[int, int] | None:
    """The first and last millisecond of the source's range, None when it is open."""
    r = rows.time_range
    if r is None or r.gte is None or r.lt is None:
        return None
    return r.gte, r.lt - 1


def _time_span(span: buckets.Span | None, bins: int, rows: _Rows) -> buckets.Span:
    """A span as written, else the range's predefined one widened to at most ``bins`` buckets."""
    if span is not None:
        return span
    axis = _axis(rows)
    if axis is None:
        return buckets.predefined(None, None)
    return buckets.widened(buckets.predefined(*axis), *axis, bins)


def _kind(rows: _Rows, name: str) -> str | None:
    """``time``, ``number`` or None (decided by each value) for a field a ``bin`` reads:
    a stored field by its mapping, the task's time field as time."""
    column = rows.column(name)
    if rows.time_range is not None and column == rows.time_range.field:
        return "time"
    if not rows.events or column is None or column in rows.created:
        return None
    kind = rows.kinds.get(column)
    if kind in DATE_KINDS:
        return "time"
    return "number" if kind is not None and T.is_numeric(T.FIELD_TYPES.get(kind, "")) else None


def _bin(command: ast.Bin, rows: _Rows) -> sp.Bin:
    """A time span on a numeric field, or a numeric span on a time field, is refused; a
    field the mapping does not type is bucketed as the span says (a value of the other
    kind is null)."""
    kind = _kind(rows, command.field)
    span = command.span
    if span is not None and kind is not None and span.is_time != (kind == "time"):
        detail = "is numeric: its [span] must be a number" if kind == "number" else \
            "is a time field: its [span] needs a time unit"
        raise ParsingError(f"line {command.span_src.line}:{command.span_src.col}: [bin] field [{command.field}] "
                           f"{detail}")
    if span is None and kind == "time":
        span = _time_span(None, command.bins, rows)
    value = rows.resolve(Column(command.field, src=command.src))
    rows.assign(command.target)
    return sp.Bin(command.target, value, span, command.bins, src=command.src)


def _timechart(command: ast.Timechart, rows: _Rows) -> list[Step]:
    """A Bin of the time field into its own column, the shared Aggregate by it (and the
    ``by`` field), then the Pivot that makes the groups wide and fills the empty buckets."""
    src = command.src
    calls = _aggregates(command.aggs, rows)
    span = _time_span(command.span, command.bins, rows)
    bucket = sp.Bin(BUCKET, rows.resolve(Column(command.timefield, src=src)), span, command.bins,
                    absent=_command_name(command), src=src)
    groups = ((BUCKET, Column(BUCKET, src=src)),)
    if command.by is not None:
        groups += ((command.by, rows.resolve(Column(command.by, src=src))),)
    pivot = sp.Pivot(command.timefield, BUCKET, command.by, tuple((agg.name, agg.function) for agg in command.aggs),
                     command.limit, span, _axis(rows), src=src)
    if command.by is None:
        rows.flat([command.timefield, *dict.fromkeys(name for name, _ in calls)])
    else:
        rows.flat([command.timefield])
        rows.fixed, rows.wide = None, True
    return [bucket, Aggregate(tuple((name, call, None) for name, call in calls), groups, src=src), pivot]


def _wide_pick(patterns: tuple[str, ...], exclude: bool | None, rows: _Rows) -> sp.Pick:
    """``fields`` (``exclude`` True or False) or ``table`` (None) with patterns over a
    pivot's columns: matched when the query runs, when their names are known."""
    rows.fixed = None
    return sp.Pick(patterns, exclude)


# --- top, rare, eventstats, streamstats, rex, makeresults ---

def _columns(names: Iterable[str], rows: _Rows, src: Src) -> tuple[tuple[str, Expr], ...]:
    """Each name (once) with what it reads here."""
    return tuple((name, rows.resolve(Column(name, src=src))) for name in dict.fromkeys(names))


def _time_checked(command: Any, rows: _Rows) -> list[Step]:
    """Before the aggregates of ``command``, when one is ``earliest()``/``latest()`` on the
    default ``@timestamp``, the step that warns if no row has it (§3)."""
    if not any(agg.function in TIMED_AGGREGATES and len(agg.args) == 1 for agg in command.aggs):
        return []
    warning = f"[{_command_name(command)}] no row has a value of [{DEFAULT_TIME_FIELD}], the time field of " \
              "earliest() and latest(); name the events' time field as their second argument"
    return [sp.TimeCheck(rows.resolve(Column(DEFAULT_TIME_FIELD, src=command.src)), warning, src=command.src)]


def _aggregates(aggs: tuple[ast.Agg, ...], rows: _Rows) -> tuple[tuple[str, Call], ...]:
    """The aggregates of a stats-like command as calls over the rows, refused now (400) when
    SML has no such aggregate or its arguments are wrong."""
    out = []
    for agg in aggs:
        name, call, _ = _aggregate(agg, rows, agg.src)
        aggregates.verify(call)
        out.append((name, call))
    return tuple(out)


def _top(command: ast.Top, rows: _Rows) -> list[Step]:
    """Flat rows: the ``by`` fields, the fields, (``showcount``) the count and (``showperc``)
    the percent."""
    fields, by = _columns(command.fields, rows, command.src), _columns(command.by, rows, command.src)
    shown = [name for name in (command.count, command.percent) if name]
    rows.flat(list(dict.fromkeys([*command.by, *command.fields, *shown])))
    return [sp.Top(fields, by, command.limit, command.rare, command.count, command.percent, src=command.src)]


def _eventstats(command: ast.EventStats, rows: _Rows) -> list[Step]:
    """The shared Aggregate over the rows, its results added to each row of the group; the
    aggregates are named ``$0``... inside, so no ``by`` field's name can hide one."""
    aggs = _aggregates(command.aggs, rows)
    inner = tuple((f"${i}", call, None) for i, (_, call) in enumerate(aggs))
    steps = [*_time_checked(command, rows),
             sp.EventStats(Aggregate(inner, _columns(command.by, rows, command.src), src=command.src),
                           tuple(name for name, _ in aggs), src=command.src)]
    for name, _ in aggs:
        rows.assign(name)
    return steps


def _streamstats(command: ast.StreamStats, rows: _Rows) -> list[Step]:
    """``reset_before`` reads the row as it comes, ``reset_after`` the row with its running
    values (spec §7.15)."""
    aggs = _aggregates(command.aggs, rows)
    by = tuple(expr for _, expr in _columns(command.by, rows, command.src))
    check = _time_checked(command, rows)
    before = None if command.reset_before is None else rows.resolve(command.reset_before)
    for name, _ in aggs:
        rows.assign(name)
    after = None if command.reset_after is None else rows.resolve(command.reset_after)
    return [*check, sp.StreamStats(aggs, by, command.window, command.reset_on_change, before, after,
                                   command.current, src=command.src)]


def _rex(command: ast.Rex, rows: _Rows) -> sp.Rex:
    step = sp.Rex(rows.resolve(Column(command.field, src=command.src)), command.pattern, command.groups,
                  src=command.src)
    for name in command.groups:
        rows.assign(name)
    return step



# --- join, append, lookup, inputlookup ---

@dataclass
class _Context:
    """What planning a command needs beyond the rows: the request (the time range of every
    subsearch), the catalog, the lookups' definitions, the plan's warnings and notes."""

    request: SmlRequest
    catalog: Catalog
    lookups: Definitions
    warnings: list[str]
    notes: list[tuple[str, int]] = field(default_factory=list)  # see Planned.notes
    command: int = 0  # the pipeline's command being planned: a note of its subsearches is its
    depth: int = 0  # of the subsearch being planned (0: the pipeline)


@dataclass
class _Generated:
    """A generating command's plan: the steps per command (the generating step first), what
    the rows hold, the date fields, the indices read, how many commands after it it took."""

    per_command: list[list[Step]]
    rows: _Rows
    dates: list[str]
    indices: list[Index]
    count: int = 0


def _makeresults(command: ast.MakeResults, commands: tuple[Any, ...], context: _Context) -> _Generated:
    """Rows of the time field alone, at the task's instant (spec §7.17)."""
    name = context.request.time_field
    rows = _Rows([name], {})
    rows.flat([name])
    step = sp.MakeResults(command.count, name, context.request.now_ms, src=command.src)
    return _Generated([[step]], rows, [], [])


def _lookup_rows(definition: Definition, context: _Context, src: Src) -> _Generated:
    """A lookup's rows: every document of its index, in insertion order, no time range,
    as flat rows of its fields."""
    indices = context.catalog.resolve(definition.index)
    rows, _ = _rows_of(indices)
    rows.flat([n for n in rows.names if n not in METADATA])
    return _Generated([[Source((definition.index,), src=src)]], rows, [], indices)


def _inputlookup(command: ast.InputLookup, commands: tuple[Any, ...], context: _Context) -> _Generated:
    return _lookup_rows(context.lookups(command.name), context, command.src)


def _subsearch(pipeline: ast.Pipeline, context: _Context, events: bool | None) -> tuple[tuple[Step, ...], _Rows]:
    """A subsearch's steps (run as they are, before its caller's rows) and what its rows
    hold; planned with the task's request (its range, unless its source sets its own)."""
    context.depth += 1
    try:
        generated = _planned(pipeline.commands, context, events)
    finally:
        context.depth -= 1
    return tuple(step for group in generated.per_command for step in group), generated.rows


def _used(commands: tuple[Any, ...]) -> Iterator[str]:
    """The names of ``commands`` and of the commands of their subsearches."""
    for command in commands:
        yield _command_name(command)
        if isinstance(command, (ast.Join, ast.Append)):
            yield from _used(command.subsearch.commands)


def _merged(rows: _Rows, name: str) -> None:
    """A join or lookup may set ``name``: a column from now on and, while rows are events,
    a literal key written only where it was set."""
    rows.assign(name)
    if rows.events:
        rows.optional.add(name)


def _join(command: ast.Join, rows: _Rows, context: _Context) -> list[Step]:
    steps, sub = _subsearch(command.subsearch, context, events=False)
    carried = tuple(n for n in sub.names if n not in METADATA)
    keys = tuple(rows.resolve(Column(name, src=command.src)) for name in command.fields)
    sub_keys = tuple(sub.column(name) for name in command.fields)
    for name in carried:
        _merged(rows, name)
    return [sp.Join(steps, keys, sub_keys, carried, command.kind, command.max,
                    context.request.max_subsearch_hits, src=command.src)]


def _append(command: ast.Append, rows: _Rows, context: _Context) -> list[Step]:
    """The subsearch's rows after these. Events stay events when both are (a flat row
    among them is an object of its fields); with flat rows on either side the rows become
    flat, of the fields of both."""
    steps, sub = _subsearch(command.subsearch, context, events=None)
    edits: tuple[sp.Edit, ...] = ()
    if rows.events and sub.events:
        edits = tuple(sub.edits)
        for name in sub.names:
            if name in sub.created:
                _merged(rows, name)
            elif name not in rows.names:
                rows.names.append(name)
                if rows.fixed is not None:
                    rows.fixed.append(name)
    elif rows.events:
        for name in sub.names:
            _merged(rows, name)
    else:
        rows.flat(list(dict.fromkeys([*rows.names, *sub.names])))
    return [sp.Append(steps, context.request.max_subsearch_hits, edits, src=command.src)]


def _lookup(command: ast.Lookup, rows: _Rows, context: _Context) -> list[Step]:
    """A left join against the lookup's rows (spec §7.16); without ``OUTPUT`` its every
    field that is not matched on is an output."""
    definition = context.lookups(command.name)
    table = _lookup_rows(definition, context, command.src)
    matches = tuple((table.rows.column(lookup_field), rows.resolve(Column(target, src=command.src)))
                    for lookup_field, target in command.matches)
    matched = {lookup_field for lookup_field, _ in command.matches}
    outputs = command.outputs if command.outputs is not None else \
        tuple((name, name) for name in table.rows.names if name not in matched)
    for _, target in outputs:
        _merged(rows, target)
    steps = tuple(step for group in table.per_command for step in group)
    return [sp.Lookup(steps, definition, matches, tuple((table.rows.column(f), t) for f, t in outputs),
                      command.new_only, src=command.src)]


# the commands whose planning needs the request and the catalog: (command, rows, context) -> steps
NESTED: dict[type, Callable[[Any, _Rows, _Context], list[Step]]] = {
    ast.Join: _join,
    ast.Append: _append,
    ast.Lookup: _lookup,
}


def _one(build: Callable[[Any, _Rows], Step]) -> Callable[[Any, _Rows], list[Step]]:
    return lambda command, rows: [build(command, rows)]


# each command's steps after the storage prefix: (command, what the rows hold) -> steps
PLANNERS: dict[type, Callable[[Any, _Rows], list[Step]]] = {
    ast.Search: _one(_search),
    ast.Where: _one(_where),
    ast.Eval: _one(_eval),
    ast.Stats: _stats,
    ast.Fields: _one(_fields),
    ast.Table: _one(_table),
    ast.Rename: _rename,
    ast.Sort: _sort,
    ast.Head: lambda command, rows: [Limit(command.count, src=command.src)],
    ast.Tail: lambda command, rows: [sp.Tail(command.count, src=command.src)],
    ast.Dedup: _dedup,
    # timechart, timeaggs, bin
    ast.Timechart: _timechart,
    ast.Bin: _one(_bin),

    # top, rare, eventstats, streamstats, rex, makeresults
    ast.Top: _top,
    ast.EventStats: _eventstats,
    ast.StreamStats: _streamstats,
    ast.Rex: _one(_rex),

    # join, append, lookup, inputlookup: in NESTED (they plan subsearches)

}


def _command(command: Any, rows: _Rows, context: _Context) -> list[Step]:
    """The steps of one command after the storage prefix."""
    if type(command) in NESTED:
        return NESTED[type(command)](command, rows, context)
    return PLANNERS[type(command)](command, rows)


# --- the source ------------------------------------------------------------------------------

def _indices(command: ast.Source, catalog: Catalog, warnings: list[str]) -> list[Index]:
    """The source's indices: a name that is no index is a 404 now; a pattern that matches
    none is a warning (its part of the union is empty)."""
    for pattern in command.indices:
        if "*" in pattern and not catalog.resolve(pattern):
            warnings.append(f"source pattern [{pattern}] matches no index")
    return catalog.resolve(",".join(command.indices))


def _rows_of(indices: list[Index]) -> tuple[_Rows, list[str]]:
    """The fields of the indices' events (sorted, then the metadata) and their date fields."""
    names: set[str] = set()
    dates: set[str] = set()
    kinds: dict[str, str] = {}
    readable: dict[str, tuple[str, str]] = {}
    for index in indices:
        for path, f in index.fields.items():
            if f.target is not None:
                readable[path] = (f.target, f.target)
            elif f.column is None:
                continue
            elif f.parent is not None:
                readable[path] = (path, f.parent)
            else:
                names.add(path)
                kinds[path] = f.type
                if f.type == "date":
                    dates.add(path)
    rows = _Rows([*sorted(names), *METADATA], readable)
    rows.kinds = kinds
    return rows, sorted(dates)


def _time_range(command: ast.Source, request: SmlRequest) -> TimeRange | None:
    """The request's range, or the source's own bounds where it sets them (spec §3):
    ``earliest`` rounds down, ``latest`` up and is inclusive to the millisecond."""
    start, end = request.start_ms, request.end_ms
    if command.earliest is not None:
        start = times.resolve(command.earliest, request.now_ms, round_up=False, name="earliest")
    if command.latest is not None:
        end = times.resolve(command.latest, request.now_ms, round_up=True, name="latest") + 1
    if start is None and end is None:
        return None
    return TimeRange(request.time_field, start, end)


def _storage_prefix(commands: tuple[Any, ...], rows: _Rows) -> tuple[list[list[Step]], int]:
    """The steps of each ``search``/``peval`` command right after ``source`` (spec §7.1)."""
    out: list[list[Step]] = []
    for command in commands:
        if isinstance(command, ast.Search):
            out.append([_search(command, rows)])
        elif isinstance(command, ast.Eval) and command.storage:
            out.append([_eval(command, rows)])
        else:
            break
    return out, len(out)


def _qsize(source: ast.Source, request: SmlRequest, notes: list[tuple[str, int]], command: int = 0) -> int:
    """The events the source emits: its qsize or the default, within the ``max_qsize``
    limit (spec §7.1, API spec §7.2: a larger one is reduced, with a warning)."""
    qsize = source.qsize if source.qsize is not None else DEFAULT_QSIZE
    if request.max_qsize is not None and qsize > request.max_qsize:
        notes.append((f"qsize={qsize} reduced to {request.max_qsize} by limit max_qsize", command))
        qsize = request.max_qsize
    return qsize


@dataclass(frozen=True)
class Planned:
    """A pipeline's plan and what the job reports beside its rows."""

    plan: Plan
    fields: tuple[str, ...] | None  # the answer's field order when the commands fix it, else None
    commands: tuple[tuple[str, str], ...]  # (name, text) of each command, for the execution cost
    ends: tuple[int, ...]  # per command: how many steps of the plan end with it
    indices: tuple[str, ...]  # what the source read
    notes: tuple[tuple[str, int], ...] = ()  # limits applied while planning: (warning, command index)
    used: tuple[str, ...] = ()  # every command's name, a subsearch's too (for allowed_commands)
    fused: int = 0  # the commands after the first that are part of its query (the storage prefix)


def _command_name(command: Any) -> str:
    words = command.src.text.split()
    return words[0].lower() if words else type(command).__name__.lower()


def _source(source: ast.Source, commands: tuple[Any, ...], context: _Context) -> _Generated:
    """``source``: the scan, the storage prefix, then qsize's Limit."""
    indices = _indices(source, context.catalog, context.warnings)
    rows, dates = _rows_of(indices)
    time_range = _time_range(source, context.request)
    rows.time_range = time_range
    prefix, count = _storage_prefix(commands, rows)
    qsize = _qsize(source, context.request, context.notes, context.command)  # a subsearch's too
    per_command: list[list[Step]] = [[], *prefix]
    # qsize counts what the prefix let through
    per_command[-1].append(Qsize(qsize, default=source.qsize is None and qsize == DEFAULT_QSIZE, src=source.src))
    # with_source is set once the pipeline is planned (``_planned``)
    per_command[0].insert(0, Scan(tuple(source.indices), metadata=("_id", "_index"), with_source=True,
                                  order=ScanOrder(context.request.time_field, descending=True, ids=True),
                                  time_range=time_range, now_ms=context.request.now_ms, src=source.src))
    return _Generated(per_command, rows, dates, indices, count)


# the first command of a pipeline: (command, the commands after it, context) -> its plan
GENERATORS: dict[type, Callable[[Any, tuple[Any, ...], _Context], _Generated]] = {
    ast.Source: _source,
    ast.MakeResults: _makeresults,
    ast.InputLookup: _inputlookup,
}


def _planned(commands: tuple[Any, ...], context: _Context, events: bool | None = None) -> _Generated:
    """Each command's steps, the last one's without the answer's final step. The stored
    documents are read only when the answer is made of them (``events``: whether a
    subsearch's caller wants them; None: whether the rows end as events)."""
    first, *rest = commands
    generated = GENERATORS[type(first)](first, tuple(rest), context)
    rows = generated.rows
    for at, command in enumerate(rest[generated.count:], generated.count + 1):
        if not context.depth:
            context.command = at
        generated.per_command.append(_command(command, rows, context))
    head = generated.per_command[0][0]
    if isinstance(head, Source):
        generated.per_command[0][0] = replace(head, with_source=rows.events if events is None else events)
    return generated


def plan(pipeline: ast.Pipeline, request: SmlRequest, catalog: Catalog,
         lookups: Definitions = of_index) -> Planned:
    """The shared plan of ``pipeline`` over ``request``'s time range. Unknown indices and
    bad options, unknown functions and aggregates are raised now."""
    functions.verify(pipeline.commands)  # every eval function call, subsearches' too (§6.1, §9)
    warnings: list[str] = []
    context = _Context(request, catalog, lookups, warnings)
    generated = _planned(pipeline.commands, context)
    per_command, rows, dates = generated.per_command, generated.rows, generated.dates
    if rows.events:
        kept_dates = tuple(d for d in dates if d in rows.names and d not in rows.created)
        optional = tuple(n for n in rows.created if n in rows.optional)
        per_command[-1].append(sp.Events(tuple(rows.edits), tuple(rows.created), kept_dates, optional))
    else:
        per_command[-1].append(sp.Rows(None if rows.wide else tuple(rows.names)))
    steps = [step for group in per_command for step in group]
    ends = tuple(itertools.accumulate(len(group) for group in per_command))
    fixed = tuple(rows.fixed) if rows.fixed is not None else None
    named = tuple((_command_name(c), c.src.text) for c in pipeline.commands)
    return Planned(Plan(tuple(steps), pipeline.text, tuple(warnings)), fixed, named, ends,
                   tuple(index.name for index in generated.indices), tuple(context.notes),
                   tuple(dict.fromkeys(_used(pipeline.commands))), generated.count)


__all__ = ["plan", "Planned", "DEFAULT_QSIZE"]
