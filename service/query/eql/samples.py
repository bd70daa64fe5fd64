"""EQL samples as a pure algorithm (spec/eql.md §8.1, Elasticsearch's SampleIterator):
sets of distinct events, one per filter, that share a join key tuple, in key order.

Why the per-filter cap: a sample takes one event per filter and never the same event
twice, so ``filters + max_samples_per_key - 1`` events per filter and key always leave
enough distinct choices; Elasticsearch asks each filter for that many hits per key and
nothing more, so only that many are kept here, whatever the stream's length.
"""

from __future__ import annotations

from itertools import islice
from typing import Any, Callable, Iterable, Iterator, Sequence

from .sequences import Event, Found, Match


def match_samples(stream: Iterable[tuple[Event, Sequence[Match]]], filters: int,
                  max_samples_per_key: int, size: int, key_order: Callable[[tuple], Any]) -> list[Found]:
    """Up to ``size`` samples, ``max_samples_per_key`` at most per key tuple.

    ``stream``: the events matching any filter in insertion order (index by index, then
    bulk order), each with its matches (``Match.stage`` = the filter's index). Key tuples
    present for every filter are visited in ``key_order`` (which must put null first,
    as ``natural_order`` does); per tuple the events of each filter are tried in stream
    order, depth first, and each completed choice of distinct events is a sample.
    """
    if size <= 0 or max_samples_per_key <= 0:
        return []
    buckets = _collect(stream, filters, filters + max_samples_per_key - 1)
    found: list[Found] = []
    for key in sorted((k for k, lists in buckets.items() if all(lists)), key=key_order):
        for events in islice(_choices(buckets[key], 0, []), max_samples_per_key):
            found.append(Found(key, events))
            if len(found) == size:
                return found
    return found


def _collect(stream: Iterable[tuple[Event, Sequence[Match]]], filters: int,
             cap: int) -> dict[tuple[Any, ...], list[list[Event]]]:
    """Per key tuple and filter, the first ``cap`` matching events in stream order."""
    buckets: dict[tuple[Any, ...], list[list[Event]]] = {}
    for event, matches in stream:
        for m in matches:
            for key in m.keys:
                lists = buckets.get(key)
                if lists is None:
                    lists = buckets[key] = [[] for _ in range(filters)]
                bucket = lists[m.stage]
                if len(bucket) < cap:
                    bucket.append(event)
    return buckets


def _choices(lists: list[list[Event]], i: int, chosen: list[Event]) -> Iterator[tuple[Event, ...]]:
    """Every choice of one event per filter from ``i`` on, none already ``chosen``, in
    depth-first order (the first filter's earliest event first)."""
    for event in lists[i]:
        if any(event is c for c in chosen):
            continue
        chosen.append(event)
        if i == len(lists) - 1:
            yield tuple(chosen)
        else:
            yield from _choices(lists, i + 1, chosen)
        chosen.pop()
