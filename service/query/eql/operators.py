"""How EQL's steps (``plan.py``) run over the shared executor's relations: a relation of
scanned documents in, a relation of one ``[hit]`` per event, sequence or sample out.

The scan gives the documents in the order EQL needs (time, tiebreaker, then insertion
order; or insertion order for samples), already narrowed to those some stage can match.
Each document's hit (``_index``, ``_id``, ``_source``, ``fields``) is built only when it is
part of the answer.
"""

from __future__ import annotations

import itertools
from collections import deque
from typing import Any, Callable, Iterable, Iterator, Sequence

import orjson

from ... import patterns
from ...store.dates import format_millis, format_nanos
from ..evaluate import Fn, compile_expr, sort_key
from ..execute import Context, Relation
from ..plan import Step
from . import plan as ep
from .samples import match_samples
from .sequences import UNTIL, Event, Found, Match, key_tuples, match_sequences

MISSING_HIT = {"_index": "", "_id": "", "_source": {}, "missing": True}


class _Hits:
    """Builds the response's event of a scanned row."""

    def __init__(self, rel: Relation, fields: tuple[object, ...]) -> None:
        at = {name: i for i, name in enumerate(rel.names)}
        self.index, self.id, self.source = at["_index"], at["_id"], at["_source"]
        self.fields = _requested(fields, rel)

    def __call__(self, row: list[Any]) -> dict[str, Any]:
        hit = {"_index": row[self.index], "_id": row[self.id], "_source": orjson.loads(row[self.source])}
        values = {}
        for name, i, render in self.fields:
            v = row[i]
            if v is not None:
                values[name] = [render(x) for x in v] if type(v) is list else [render(v)]
        if values:
            hit["fields"] = values
        return hit


def _requested(fields: tuple[object, ...], rel: Relation) -> list[tuple[str, int, Callable[[Any], Any]]]:
    """(name, column, renderer) of every mapped field the request's ``fields`` names, in
    the order asked (patterns expand to the matching names, sorted)."""
    out: list[tuple[str, int, Callable[[Any], Any]]] = []
    seen: set[str] = set()
    mapped = [(n, i, t) for i, (n, t) in enumerate(zip(rel.names, rel.types)) if not n.startswith("_")]
    for entry in fields:
        pattern, fmt = (entry.get("field"), entry.get("format")) if isinstance(entry, dict) else (entry, None)
        matches = patterns.wildcard(str(pattern))
        for name, i, kind in mapped:
            if name not in seen and matches(name):
                seen.add(name)
                out.append((name, i, _renderer(kind, fmt)))
    return out


def _renderer(kind: str, fmt: Any) -> Callable[[Any], Any]:
    if kind == "date":
        return (lambda v: v) if fmt == "epoch_millis" else format_millis
    if kind == "date_nanos":
        return format_nanos
    return lambda v: v


def _window_rows(window: ep.Window, rows: Iterable[Any], descending: bool) -> list[Any]:
    """The rows a window keeps, ascending. ``rows`` come descending when the window's first
    selection is a tail (the scan then reads from the end and stops once it has them)."""
    kind, count = window.first
    kept = list(itertools.islice(rows, count))
    if descending:
        kept.reverse()
    elif kind == "tail":  # an ascending stream whose end a tail keeps
        kept = list(deque(itertools.chain(kept, rows), maxlen=count)) if count else []
    return window.rest(kept)


def run_events(step: ep.Events, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    hits = _Hits(rel, step.fields)
    descending = step.window.first[0] == "tail"
    kept = _window_rows(step.window, rel.rows, descending)
    return Relation(["hit"], ["object"], ([hits(row)] for row in kept))


# --- sequences and samples ----------------------------------------------------------------

class _Stages:
    """Compiled stages: which an event matches, with its key tuples for each."""

    def __init__(self, stages: Sequence[ep.Stage], until: ep.Stage | None, rel: Relation, ctx: Context) -> None:
        scope = ctx.scope(rel)
        numbered = [*enumerate(stages), *([(UNTIL, until)] if until is not None else [])]
        self.compiled: list[tuple[int, Fn, list[Fn], tuple[bool, ...]]] = []
        self.key_kinds: list[str] = []  # the first stage's: the join keys' types
        for number, stage in numbered:
            condition, _ = compile_expr(stage.condition, scope)
            keys = [compile_expr(k, scope) for k in stage.keys]
            self.compiled.append((number, condition, [fn for fn, _ in keys], stage.optional))
            if number == 0:
                self.key_kinds = [kind for _, kind in keys]

    def matches(self, row: list[Any]) -> list[Match]:
        out = []
        for number, condition, keys, optional in self.compiled:
            if condition(row) is True:
                tuples = key_tuples([k(row) for k in keys], optional)
                if tuples:
                    out.append(Match(number, tuples))
        return out

    def key_order(self) -> Callable[[tuple[Any, ...]], Any]:
        """Join key tuples in EQL's order: position by position, null first, then by value
        in the key type's order (strings by code point, ips as addresses...)."""
        keys = [sort_key(kind) or (lambda v: v) for kind in self.key_kinds]

        def order(values: tuple[Any, ...]) -> tuple[Any, ...]:
            return tuple((0,) if v is None else (1, key(v)) for v, key in zip(values, keys))
        return order

    def rendered(self, join_keys: tuple[Any, ...], dates: Callable[[Any, str], Any]) -> list[Any]:
        return [dates(v, kind) if v is not None else None for v, kind in zip(join_keys, self.key_kinds)]


def _stream(rows: Iterable[list[Any]], stages: _Stages, timestamp: int | None
            ) -> Iterator[tuple[Event, list[Match]]]:
    """The scanned rows as the matchers read them; the ordinal is the scan's position (the
    scan is in EQL's total order already)."""
    for position, row in enumerate(rows):
        found = stages.matches(row)
        if found:
            yield Event((position,), row[timestamp] if timestamp is not None else 0, row), found


def _sequence_hits(found: list[Found], stages: _Stages, hits: _Hits, date_key: Callable[[Any, str], Any]
                   ) -> Iterator[list[Any]]:
    for seq in found:
        out: dict[str, Any] = {}
        if seq.join_keys:
            out["join_keys"] = stages.rendered(seq.join_keys, date_key)
        out["events"] = [MISSING_HIT if e is None else hits(e.hit) for e in seq.events]
        yield [out]


def _iso_key(value: Any, kind: str) -> Any:
    return _renderer(kind, None)(value)  # as the hits' ``fields`` show it


def _epoch_key(value: Any, kind: str) -> Any:
    return value // 1_000_000 if kind == "date_nanos" else value


def run_sequences(step: ep.Sequences, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    stages = _Stages(step.stages, step.until, rel, ctx)
    timestamp = rel.names.index(step.timestamp)
    found = match_sequences(_stream(rel.rows, stages, timestamp), [s.missing for s in step.stages], step.maxspan,
                            stages.key_order())
    kept = step.window.select(found)
    return Relation(["hit"], ["object"], _sequence_hits(kept, stages, _Hits(rel, step.fields), _iso_key))


def run_samples(step: ep.Samples, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    stages = _Stages(step.stages, None, rel, ctx)
    found = match_samples(_stream(rel.rows, stages, None), len(step.stages), step.max_samples_per_key, step.size,
                          stages.key_order())
    return Relation(["hit"], ["object"], _sequence_hits(found, stages, _Hits(rel, step.fields), _epoch_key))


STEPS = {ep.Events: run_events, ep.Sequences: run_sequences, ep.Samples: run_samples}
