"""EQL samples (spec/eql.md §8) on synthetic events; the reference suite's sample files run
end to end in tests/conformance."""

from __future__ import annotations

from typing import Any

from service.query.eql.samples import _collect, match_samples
from service.query.eql.sequences import Event, Match, natural_order


def ev(ident: int) -> Event:
    return Event((0, ident), 0, ident)


def samples(stream: list[tuple[Event, list[Match]]], filters: int, per_key: int = 1,
            size: int = 50) -> list[tuple[tuple[Any, ...], list[int]]]:
    found = match_samples(iter(stream), filters, per_key, size, natural_order)
    return [(f.join_keys, [e.hit for e in f.events]) for f in found]


def both(key: tuple[Any, ...]) -> list[Match]:
    return [Match(0, (key,)), Match(1, (key,))]


def test_keys_go_null_first_then_by_value():
    stream = [(ev(1), both(("doom",))), (ev(2), both(("doom",))), (ev(3), both((None,))),
              (ev(4), both((None,))), (ev(5), both(("GTA",))), (ev(6), both(("GTA",)))]
    assert [k for k, _ in samples(stream, 2)] == [(None,), ("GTA",), ("doom",)]


def test_null_first_position_by_position():
    keys = [("doom", "win10"), ("doom", None), ("GTA", None)]
    stream = [(ev(i * 2 + j), both(k)) for i, k in enumerate(keys) for j in (0, 1)]
    assert [k for k, _ in samples(stream, 2)] == [("GTA", None), ("doom", None), ("doom", "win10")]


def test_only_keys_present_for_every_filter_make_samples():
    stream = [(ev(1), [Match(0, (("a",),))]), (ev(2), [Match(1, (("b",),))]),
              (ev(3), [Match(1, (("a",),))])]
    assert samples(stream, 2) == [(("a",), [1, 3])]


def test_an_event_is_never_used_twice_in_one_sample():
    assert samples([(ev(1), both(("k",)))], 2) == []
    assert samples([(ev(1), both(("k",))), (ev(2), both(("k",)))], 2) == [(("k",), [1, 2])]


def test_backtracking_finds_distinct_events_depth_first():
    # Elasticsearch's own example: [d1, d2, d3] [d4, d5] [d4, d5, d3] -> [d1, d4, d5]
    k = (("k",),)
    stream = [(ev(1), [Match(0, k)]), (ev(2), [Match(0, k)]), (ev(4), [Match(1, k), Match(2, k)]),
              (ev(5), [Match(1, k), Match(2, k)]), (ev(3), [Match(0, k), Match(2, k)])]
    assert samples(stream, 3) == [(("k",), [1, 4, 5])]
    # [d1, d1] style: one event for every filter has no solution
    assert samples([(ev(1), [Match(0, k), Match(1, k), Match(2, k)])], 3) == []


def test_max_samples_per_key_reuses_events_across_samples():
    k = (("win10",),)
    stream = [(ev(1), [Match(0, k)]), (ev(2), [Match(0, k)]), (ev(3), [Match(1, k)]),
              (ev(4), [Match(0, k)])]
    assert samples(stream, 2, per_key=1) == [(("win10",), [1, 3])]
    assert samples(stream, 2, per_key=2) == [(("win10",), [1, 3]), (("win10",), [2, 3])]
    assert samples(stream, 2, per_key=10) == [(("win10",), [1, 3]), (("win10",), [2, 3]),
                                             (("win10",), [4, 3])]


def test_size_limits_samples_across_keys():
    stream = [(ev(i * 10 + j), both((i,))) for i in range(5) for j in (0, 1)]
    assert [k for k, _ in samples(stream, 2, size=3)] == [(0,), (1,), (2,)]
    assert samples(stream, 2, per_key=2, size=3) == [((0,), [0, 1]), ((0,), [1, 0]), ((1,), [10, 11])]
    assert samples(stream, 2, size=0) == []


def test_only_the_first_events_per_filter_and_key_are_kept():
    """Memory per key is bounded by filters + max_samples_per_key - 1 events per filter."""
    stream = ((ev(i), [Match(0, (("k",),)), Match(1, (("k", i % 3),))]) for i in range(10_000))
    buckets = _collect(stream, 2, 3)
    assert [[e.hit for e in b] for b in buckets[("k",)]] == [[0, 1, 2], []]
    assert len(buckets) == 4
