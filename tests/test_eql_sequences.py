"""EQL sequence matching (spec/eql.md §6, §7) on synthetic events; the reference suite's
sequences run end to end in tests/conformance."""

from __future__ import annotations

from typing import Any

import pytest

from service.query.eql.plan import Window
from service.query.eql.sequences import (
    UNTIL, Event, Match, _Matcher, key_tuples, match_sequences, natural_order)

NOKEY = ((),)


def ev(ident: int, ts: int | None = None) -> Event:
    """An event whose hit is its id; timestamp = id unless given, ordinal (ts, id)."""
    ts = ident if ts is None else ts
    return Event((ts, ident), ts, ident)


def ids(stream: list[tuple[Event, list[Match]]], missing: list[bool] | int,
        maxspan: int | None = None) -> list[list[int]]:
    if isinstance(missing, int):
        missing = [False] * missing
    found = match_sequences(iter(stream), missing, maxspan, natural_order)
    return [[-1 if e is None else e.hit for e in f.events] for f in found]


def keyed(found_stream: list[tuple[Event, list[Match]]], stages: int) -> list[tuple[Any, ...]]:
    return [f.join_keys for f in match_sequences(iter(found_stream), [False] * stages, None, natural_order)]


# -- key tuples ---------------------------------------------------------------------------

def test_key_tuples_scalars_and_no_keys():
    assert key_tuples(["a", 1], [False, False]) == (("a", 1),)
    assert key_tuples([], []) == ((),)


def test_key_tuples_cartesian_product_without_duplicates_or_nulls():
    assert key_tuples([["x", "y", None, "x"], [1, 2]], [False, False]) == (
        ("x", 1), ("x", 2), ("y", 1), ("y", 2))


def test_key_tuples_missing_value_excludes_the_event_unless_optional():
    for empty in (None, [], [None]):
        assert key_tuples([empty, "a"], [False, False]) == ()
        assert key_tuples([empty, "a"], [True, False]) == ((None, "a"),)
    assert key_tuples([None, ["a", "b"]], [True, False]) == ((None, "a"), (None, "b"))


# -- the window (§6): size, result_position, head/tail --------------------------------------

def test_window_without_pipes_uses_size_and_result_position():
    items = list(range(20))
    assert Window(10, "head").select(items) == list(range(10))
    assert Window(10, "tail").select(items) == list(range(10, 20))
    assert Window(50, "tail").select(items) == items
    assert Window(30, "tail").select(items) == items  # fewer matches than size, more than half of it
    assert Window(30, "head", (("tail", 25),)).select(items) == items
    assert Window(0, "tail").select(items) == []
    assert Window(0, "head").select(items) == []


def test_window_first_pipe_sits_on_an_implicit_size_limit_of_its_kind():
    items = list(range(20))
    assert Window(10, "tail", (("head", 6),)).select(items) == list(range(6))
    assert Window(10, "head", (("tail", 3),)).select(items) == [17, 18, 19]
    assert Window(2, "head", (("tail", 3),)).select(items) == [18, 19]
    assert Window(10, "tail", (("head", 4), ("tail", 2))).select(items) == [2, 3]
    assert Window(10, "head", (("tail", 4), ("head", 1))).select(items) == [16]
    assert Window(10, "head", (("head", 0),)).select(items) == []


# -- the state machine (§7.3) --------------------------------------------------------------

def test_docs_example_second_a_overwrites_the_first():
    stream = [(ev(1), [Match(0, NOKEY)]), (ev(2), [Match(0, NOKEY)]),
              (ev(3), [Match(1, NOKEY)]), (ev(4), [Match(1, NOKEY)])]
    assert ids(stream, 2) == [[2, 3]]


def test_one_event_serves_several_sequences_but_never_extends_its_own():
    # sequence [process where serial_event_id <= 3] [process where true] [process where true]
    stream = [(ev(i), [Match(s, NOKEY) for s in range(3) if s > 0 or i <= 3]) for i in range(1, 6)]
    assert ids(stream, 3) == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]


def test_runs_expand_to_repeated_stages():
    # [any where true] with runs=3: every event matches all three stages
    stream = [(ev(i), [Match(s, NOKEY) for s in range(3)]) for i in range(1, 5)]
    assert ids(stream, 3) == [[1, 2, 3], [2, 3, 4]]


def test_keys_join_by_position_and_keep_partials_apart():
    stream = [(ev(1), [Match(0, (("a",),))]), (ev(2), [Match(0, (("b",),))]),
              (ev(3), [Match(1, (("b",),))]), (ev(4), [Match(1, (("a",),))]),
              (ev(5), [Match(1, (("c",),))])]
    assert ids(stream, 2) == [[2, 3], [1, 4]]
    assert keyed(stream, 2) == [("b",), ("a",)]


def test_maxspan_equal_is_accepted_greater_is_rejected():
    stream = [(ev(1, 0), [Match(0, NOKEY)]), (ev(2, 10), [Match(1, NOKEY)])]
    assert ids(stream, 2, maxspan=10) == [[1, 2]]
    assert ids(stream, 2, maxspan=9) == []


def test_maxspan_rejection_still_consumes_the_partial():
    # the rejected take trims stage 0, so the later event has nothing to extend
    stream = [(ev(1, 0), [Match(0, NOKEY)]), (ev(2, 50), [Match(1, NOKEY)]),
              (ev(3, 51), [Match(1, NOKEY)])]
    assert ids(stream, 2, maxspan=10) == []


def test_maxspan_is_measured_from_the_first_event():
    stream = [(ev(1, 0), [Match(0, NOKEY)]), (ev(2, 6), [Match(1, NOKEY)]),
              (ev(3, 12), [Match(2, NOKEY)])]
    assert ids(stream, 3, maxspan=10) == []
    assert ids(stream, 3, maxspan=12) == [[1, 2, 3]]


def test_until_between_events_kills_only_its_key():
    k_a, k_b = (("a",),), (("b",),)
    stream = [(ev(1), [Match(0, k_a)]), (ev(2), [Match(0, k_b)]),
              (ev(3), [Match(UNTIL, k_a)]),
              (ev(4), [Match(1, k_a)]), (ev(5), [Match(1, k_b)])]
    assert ids(stream, 2) == [[2, 5]]


def test_until_is_inclusive_on_the_left():
    # event 2 both extends the sequence to stage 1 and matches until: the sequence ends there
    stream = [(ev(1), [Match(0, NOKEY)]), (ev(2), [Match(1, NOKEY), Match(UNTIL, NOKEY)]),
              (ev(3), [Match(2, NOKEY)])]
    assert ids(stream, 3) == []


def test_until_on_the_completing_event_or_after_changes_nothing():
    stream = [(ev(1), [Match(0, NOKEY)]), (ev(2), [Match(1, NOKEY), Match(UNTIL, NOKEY)]),
              (ev(3), [Match(UNTIL, NOKEY)])]
    assert ids(stream, 2) == [[1, 2]]


def test_until_does_not_prevent_later_partials():
    stream = [(ev(1), [Match(0, NOKEY)]), (ev(2), [Match(UNTIL, NOKEY)]),
              (ev(3), [Match(0, NOKEY)]), (ev(4), [Match(1, NOKEY)])]
    assert ids(stream, 2) == [[3, 4]]


def test_multi_valued_keys_tie_on_the_last_event_and_order_by_key():
    tags = (("tag4",), ("tag1",), ("tag3",))
    stream = [(ev(1), [Match(0, tags)]), (ev(2), [Match(1, tags)])]
    found = match_sequences(iter(stream), [False, False], None, natural_order)
    assert [f.join_keys for f in found] == [("tag1",), ("tag3",), ("tag4",)]
    assert all([e.hit for e in f.events] == [1, 2] for f in found)


def test_output_is_ordered_by_last_event_not_first():
    k_a, k_b = (("a",),), (("b",),)
    stream = [(ev(1), [Match(0, k_a)]), (ev(2), [Match(0, k_b)]),
              (ev(3), [Match(1, k_b)]), (ev(4), [Match(1, k_a)])]
    assert ids(stream, 2) == [[2, 3], [1, 4]]


def test_optional_null_keys_join_with_each_other():
    null = key_tuples([None], [True])
    stream = [(ev(1), [Match(0, null)]), (ev(2), [Match(1, key_tuples(["x"], [True]))]),
              (ev(3), [Match(1, null)])]
    found = match_sequences(iter(stream), [False, False], None, natural_order)
    assert [(f.join_keys, [e.hit for e in f.events]) for f in found] == [((None,), [1, 3])]


# -- missing events (§7.6) -----------------------------------------------------------------

MIN = 60_000


def test_middle_missing_event_discards_the_candidate():
    stream = [(ev(1), [Match(0, NOKEY)]), (ev(2), [Match(1, NOKEY)]), (ev(3), [Match(2, NOKEY)])]
    assert ids(stream, [False, True, False], maxspan=10) == []
    stream[1] = (ev(2), [Match(1, (("other",),))])
    assert ids(stream, [False, True, False], maxspan=10) == [[1, -1, 3]]


def test_middle_window_has_strict_bounds():
    # hits at the same timestamps as the positive events are outside the window
    stream = [(ev(1, 5), [Match(0, NOKEY), Match(1, NOKEY)]), (ev(2, 7), [Match(1, NOKEY)]),
              (ev(3, 7), [Match(2, NOKEY)])]
    assert ids(stream, [False, True, False], maxspan=10) == [[1, -1, 3]]


def test_a_condemned_candidate_still_shadows_older_partials():
    # [A] ![M] [B] [C]: [A2, B2] has M in between; it is still the latest partial at B, so
    # C takes it (dropping [A1, B1]) and the candidate is discarded afterwards
    a, m, b, c = (Match(s, NOKEY) for s in range(4))
    stream = [(ev(1), [a]), (ev(2), [b]), (ev(3), [a]), (ev(4), [m]), (ev(5), [b]), (ev(6), [c])]
    assert ids(stream, [False, True, False, False], maxspan=100) == []
    stream[3] = (ev(4), [])
    assert ids(stream, [False, True, False, False], maxspan=100) == [[3, -1, 5, 6]]


def leading_trailing(lead_at: int | None, trail_at: int | None, maxspan: int,
                     shape: list[bool]) -> list[list[int]]:
    """One positive stage between optional leading/trailing missing stages; missing
    hits at the given minutes (positive events at minutes 10 and 11)."""
    positive = [s for s, miss in enumerate(shape) if not miss]
    lead = Match(0, NOKEY) if shape[0] else None
    trail = Match(len(shape) - 1, NOKEY) if shape[-1] else None
    stream = []
    if lead and lead_at is not None:
        stream.append((ev(1, lead_at * MIN), [lead]))
    stream.append((ev(2, 10 * MIN), [Match(positive[0], NOKEY)]))
    stream.append((ev(3, 11 * MIN), [Match(positive[-1], NOKEY)]))
    if trail and trail_at is not None:
        stream.append((ev(4, trail_at * MIN), [trail]))
    stream.sort(key=lambda item: item[0].ordinal)
    return ids(stream, shape, maxspan=maxspan * MIN)


def test_rule_1_no_leading_and_no_trailing_hit():
    assert leading_trailing(None, None, 5, [True, False, False, True]) == [[-1, 2, 3, -1]]


def test_rule_2_stage_zero_missing_without_leading_hit():
    assert leading_trailing(None, 12, 5, [True, False, False, True]) == [[-1, 2, 3, -1]]
    assert leading_trailing(None, None, 5, [True, False, False]) == [[-1, 2, 3]]


def test_rule_3_last_stage_missing_without_trailing_hit():
    assert leading_trailing(8, None, 5, [True, False, False, True]) == [[-1, 2, 3, -1]]
    assert leading_trailing(None, None, 5, [False, False, True]) == [[2, 3, -1]]


def test_rule_4_both_ends_missing_span_between_hits():
    shape = [True, False, False, True]
    assert leading_trailing(0, 20, 19, shape) == [[-1, 2, 3, -1]]   # 20m > 19m
    assert leading_trailing(0, 20, 20, shape) == []                 # 20m == 20m
    assert leading_trailing(0, 20, 21, shape) == []


def test_rule_5_only_stage_zero_missing_span_to_last_positive():
    shape = [True, False, False]
    assert leading_trailing(5, None, 5, shape) == [[-1, 2, 3]]     # 11 - 5 = 6 > 5
    assert leading_trailing(5, None, 6, shape) == []               # 6 == 6


def test_rule_6_only_last_stage_missing_span_from_first_positive():
    shape = [False, False, True]
    assert leading_trailing(None, 16, 5, shape) == [[2, 3, -1]]    # 16 - 10 = 6 > 5
    assert leading_trailing(None, 16, 6, shape) == []
    assert leading_trailing(None, 11, 60, shape) == [[2, 3, -1]]   # not after the last event


def test_leading_and_trailing_19m_and_21m():
    # a positive event at 12:10 with missing events at 12:00 and 12:20 (+1 ms)
    stream = [(ev(1, 0), [Match(0, NOKEY), Match(2, NOKEY)]),
              (ev(2, 10 * MIN + 1), [Match(1, NOKEY)]),
              (ev(3, 20 * MIN + 1), [Match(0, NOKEY), Match(2, NOKEY)])]
    assert ids(stream, [True, False, True], maxspan=19 * MIN) == [[-1, 2, -1]]
    assert ids(stream, [True, False, True], maxspan=21 * MIN) == []


def test_held_candidates_still_come_out_in_last_event_order():
    # ![M] [P] ![M]: key a has a leading hit, so its candidate waits for the trailing
    # window; key b has none and is accepted at once, yet a ends first and comes first
    a, b = (("a",),), (("b",),)
    stream = [(ev(1, 0), [Match(0, a)]), (ev(2, 1), [Match(1, a)]), (ev(3, 2), [Match(1, b)])]
    found = match_sequences(iter(stream), [True, False, True], 10, natural_order)
    assert [(f.join_keys, f.events[1].hit) for f in found] == [(("a",), 2), (("b",), 3)]
    stream.append((ev(4, 5), [Match(2, a)]))
    found = match_sequences(iter(stream), [True, False, True], 10, natural_order)
    assert [(f.join_keys, f.events[1].hit) for f in found] == [(("b",), 3)]


def test_missing_events_need_a_maxspan():
    with pytest.raises(ValueError):
        match_sequences(iter([]), [False, True], None, natural_order)


def test_state_stays_bounded_by_the_live_window():
    """A long stream of distinct keys keeps only what the last two maxspans touched."""
    matcher = _Matcher([False, True, False], 100)
    for i in range(20_000):
        k = ((i,),)
        matcher.feed(ev(i, i), [Match(0, k), Match(1, ((i - 1,),))])
        assert len(matcher.groups[0]) <= 201
        assert len(matcher.seen[1]) <= 201
    assert matcher.results(natural_order) == []
