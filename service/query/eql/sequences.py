"""EQL sequences as pure algorithms (spec/eql.md §6, §7): join key tuples, the greedy
per-key state machine with maxspan, until and missing events, and the size/head/tail
selection shared with event queries.

Why a state machine and not a join: Elasticsearch never enumerates combinations. Per key
and stage only the most recent partial sequence can ever be extended (taking the latest
earlier partial drops every older one, §7.3), so the state is one partial per (stage, key)
and the stream is read once, lazily, whatever its length.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from itertools import product
from typing import Any, Callable, Iterable, Sequence

UNTIL = -1


@dataclass(frozen=True, slots=True)
class Event:
    ordinal: tuple[Any, ...]    # totally ordered (timestamp, tiebreaker sort key, position)
    timestamp: int              # the time field in its unit (ms; ns for date_nanos)
    hit: Any                    # carried through untouched


@dataclass(frozen=True, slots=True)
class Match:
    stage: int                          # index into the expanded terms, or UNTIL
    keys: tuple[tuple[Any, ...], ...]   # the event's key tuples for that stage (see key_tuples)


@dataclass(frozen=True, slots=True)
class Found:
    join_keys: tuple[Any, ...]
    events: tuple[Event | None, ...]    # None: a missing-stage placeholder


def key_tuples(values: Sequence[Any], optional: Sequence[bool]) -> tuple[tuple[Any, ...], ...]:
    """The key tuples one event joins with (§7.2, §8.1 step 1).

    ``values`` holds per key position the field's value: None, a scalar or a list. Lists
    give the cartesian product over positions, duplicates and nulls inside them dropped.
    A position without a value is None when its key is optional (``?k``); otherwise the
    event has no tuple at all and does not take part in the stage. No keys: one empty tuple.
    """
    if not any(type(v) is list for v in values):
        for value, opt in zip(values, optional):
            if value is None and not opt:
                return ()
        return (tuple(values),)
    columns = []
    for value, opt in zip(values, optional):
        if type(value) is list:
            present = list(dict.fromkeys(v for v in value if v is not None))
        else:
            present = [] if value is None else [value]
        if not present:
            if not opt:
                return ()
            present = [None]
        columns.append(present)
    return tuple(product(*columns))


def natural_order(keys: tuple[Any, ...]) -> tuple[Any, ...]:
    """A key order for plain Python values: position by position, null first, then by
    value (strings by code point, numbers numerically, False before True). Values of one
    position must be mutually comparable (one field type, e.g. all IPv4 or all IPv6)."""
    return tuple((v is not None, v) for v in keys)


class _Partial:
    """One in-flight sequence: its key, the timestamps of its first and last positive
    events, those events (a partial is never shared: taking it removes it from its group,
    so it is extended in place), the latest leading missing-event hit (§7.6, fixed when
    it starts), whether a middle missing event already condemned it (it still shadows
    older partials) and, when held for a trailing window, the end of that window."""

    __slots__ = ("key", "first_ts", "last_ts", "events", "lead", "doomed", "deadline")

    def __init__(self, key: tuple[Any, ...], event: Event, lead: int | None) -> None:
        self.key = key
        self.first_ts = event.timestamp
        self.last_ts = event.timestamp
        self.events = [event]
        self.lead = lead
        self.doomed = False
        self.deadline = 0


def _latest_before(seen: list[int] | None, ts: int) -> int | None:
    """The latest recorded hit strictly before ``ts``; ``seen`` holds the two latest
    distinct hit timestamps, enough because no hit is later than the current event."""
    if seen is None:
        return None
    if seen[0] < ts:
        return seen[0]
    if seen[1] is not None and seen[1] < ts:
        return seen[1]
    return None


class _Matcher:
    """The state of one sequence query while its stream is read (see match_sequences)."""

    def __init__(self, missing: Sequence[bool], maxspan: int | None) -> None:
        n = len(missing)
        positive = [s for s in range(n) if not missing[s]]
        if not positive:
            raise ValueError("a sequence needs a positive stage")
        self.stages = n
        self.positive = positive
        self.first, self.last = positive[0], positive[-1]
        self.maxspan = maxspan
        self.prev = {b: a for a, b in zip(positive, positive[1:])}
        self.middle = {b: tuple(range(a + 1, b)) for a, b in zip(positive, positive[1:])}
        self.leading = tuple(range(self.first))
        self.trailing = frozenset(range(self.last + 1, n))
        self.is_missing = tuple(missing)
        # one partial per key for each positive stage but the last
        self.groups: dict[int, dict[tuple[Any, ...], _Partial]] = {s: {} for s in positive[:-1]}
        # leading and middle missing stages: key -> [latest hit ts, latest distinct earlier]
        self.seen: dict[int, dict[tuple[Any, ...], list[Any]]] = {
            s: {} for s in range(n) if missing[s] and s not in self.trailing}
        self.pending: dict[tuple[Any, ...], deque[_Partial]] = {}
        self.completed: list[_Partial] = []
        self.sweep_at: int | None = None

    def feed(self, event: Event, matches: Sequence[Match]) -> None:
        """Apply one event. Stages run from the last to the first so that each reads the
        state before this event (an event never extends a partial it started itself);
        until runs last, so it also ends partials this very event extended (§7.5)."""
        if self.maxspan is not None:
            self._sweep(event.timestamp)
        if len(matches) > 1:
            matches = sorted(matches, key=_stage, reverse=True)
        for m in matches:
            s = m.stage
            if s == UNTIL:
                self._until(m.keys)
            elif self.is_missing[s]:
                self._missing_hit(s, event.timestamp, m.keys)
            elif s == self.first:
                for k in m.keys:
                    self._start(event, k)
            else:
                for k in m.keys:
                    self._advance(s, event, k)

    def _start(self, event: Event, key: tuple[Any, ...]) -> None:
        lead = None
        for m in self.leading:
            hit = _latest_before(self.seen[m].get(key), event.timestamp)
            if hit is not None and (lead is None or hit > lead):
                lead = hit
        p = _Partial(key, event, lead)
        if self.first == self.last:
            self._complete(p)
        else:
            self.groups[self.first][key] = p

    def _advance(self, stage: int, event: Event, key: tuple[Any, ...]) -> None:
        p = self.groups[self.prev[stage]].pop(key, None)
        ts = event.timestamp
        if p is None or (self.maxspan is not None and ts - p.first_ts > self.maxspan):
            return
        for m in self.middle[stage]:
            hit = _latest_before(self.seen[m].get(key), ts)
            if hit is not None and hit > p.last_ts:
                p.doomed = True
        p.events.append(event)
        p.last_ts = ts
        if stage == self.last:
            self._complete(p)
        else:
            self.groups[stage][key] = p

    def _until(self, keys: tuple[tuple[Any, ...], ...]) -> None:
        """Every partial of the key has its last event at or before this until event."""
        for group in self.groups.values():
            for k in keys:
                group.pop(k, None)

    def _missing_hit(self, stage: int, ts: int, keys: tuple[tuple[Any, ...], ...]) -> None:
        if stage in self.trailing:
            for k in keys:
                self._trailing_hit(k, ts)
            return
        seen = self.seen[stage]
        for k in keys:
            reg = seen.get(k)
            if reg is None:
                seen[k] = [ts, None]
            elif reg[0] != ts:
                reg[1], reg[0] = reg[0], ts

    def _complete(self, p: _Partial) -> None:
        """A candidate: accepted now, or held until its trailing window decides (§7.6)."""
        if p.doomed:
            return
        if self.trailing:
            if self.leading and p.lead is None:
                self.completed.append(p)
                return
            base = p.lead if self.leading else p.first_ts
            p.deadline = base + self.maxspan
            self.pending.setdefault(p.key, deque()).append(p)
        elif not self.leading or p.lead is None or p.last_ts - p.lead > self.maxspan:
            self.completed.append(p)

    def _trailing_hit(self, key: tuple[Any, ...], ts: int) -> None:
        """The earliest trailing hit after a candidate's last event decides it: accepted
        only when it is more than maxspan after the candidate's start (or leading hit)."""
        q = self.pending.get(key)
        if q is None:
            return
        while q and q[0].last_ts < ts:
            p = q.popleft()
            if ts > p.deadline:
                self.completed.append(p)
        if not q:
            del self.pending[key]

    def _sweep(self, ts: int) -> None:
        """Forget what maxspan has made irrelevant: partials that can no longer extend,
        missing-event hits too old to matter, and held candidates past their deadline.
        Run once per maxspan of stream time, so state lives at most two maxspans."""
        if self.sweep_at is None:
            self.sweep_at = ts + self.maxspan
            return
        if ts <= self.sweep_at:
            return
        self.sweep_at = ts + self.maxspan
        cutoff = ts - self.maxspan
        for group in self.groups.values():
            for k in [k for k, p in group.items() if p.first_ts < cutoff]:
                del group[k]
        for seen in self.seen.values():
            for k in [k for k, reg in seen.items() if reg[0] < cutoff]:
                del seen[k]
        self._expire(ts)

    def _expire(self, ts: int | None) -> None:
        """Accept held candidates whose trailing window closed without a hit (all of
        them at the end of the stream, ``ts`` None)."""
        for key in list(self.pending):
            q = self.pending[key]
            keep = deque()
            for p in q:
                if ts is None or p.deadline < ts:
                    self.completed.append(p)
                else:
                    keep.append(p)
            if keep:
                self.pending[key] = keep
            else:
                del self.pending[key]

    def results(self, key_order: Callable[[tuple], Any]) -> list[Found]:
        self._expire(None)
        done = sorted(self.completed, key=_last_ordinal)
        _order_ties(done, key_order)
        return [self._found(p) for p in done]

    def _found(self, p: _Partial) -> Found:
        if len(self.positive) == self.stages:
            return Found(p.key, tuple(p.events))
        events: list[Event | None] = [None] * self.stages
        for s, event in zip(self.positive, p.events):
            events[s] = event
        return Found(p.key, tuple(events))


def _stage(m: Match) -> int:
    return m.stage


def _last_ordinal(p: _Partial) -> tuple[Any, ...]:
    return p.events[-1].ordinal


def _order_ties(done: list[_Partial], key_order: Callable[[tuple], Any]) -> None:
    """Sequences ending on the same event (multi-valued keys) go by key (§7.4); the
    key order is computed for those runs only."""
    i, n = 0, len(done)
    while i < n:
        j = i + 1
        last = done[i].events[-1].ordinal
        while j < n and done[j].events[-1].ordinal == last:
            j += 1
        if j - i > 1:
            done[i:j] = sorted(done[i:j], key=lambda p: key_order(p.key))
        i = j


def match_sequences(stream: Iterable[tuple[Event, Sequence[Match]]], missing: Sequence[bool],
                    maxspan: int | None, key_order: Callable[[tuple], Any]) -> list[Found]:
    """All sequences of a query (§7.3-§7.6), ordered by their last positive event, ties by
    ``key_order(join_keys)``.

    ``stream``: every event that matches any stage or the until term, ascending ordinal
    (so timestamps never decrease), each with its matches; ``missing[s]`` says stage ``s``
    is a ``![...]`` stage (then ``maxspan`` is required). Memory: one partial per stage
    and key, plus the held candidates of trailing missing stages; with a maxspan, only
    what the last two maxspans of stream time touched.
    """
    if any(missing) and maxspan is None:
        raise ValueError("missing events need a maxspan")
    matcher = _Matcher(missing, maxspan)
    for event, matches in stream:
        matcher.feed(event, matches)
    return matcher.results(key_order)
