"""SORT's orders as one key, and the two ways rows are sorted by it: a top-N that holds
only the rows a LIMIT lets through (as Elasticsearch's TopN operator), and a full sort for
a SORT that no LIMIT bounds. Both charge what they hold to the query's breaker."""

from __future__ import annotations

import collections
import heapq
import itertools
from typing import Any, Callable, Iterable

from . import plan as p
from .control import PREVIEW_ROWS
from .breaker import CHARGE_BYTES, TOPN_LABEL, Breaker, Reservation, object_bytes, row_bytes
from .evaluate import Scope, compile_expr, sort_key

Key = Callable[[list[Any]], Any]
BATCH = 1024  # rows a full sort charges at once
# A running query's preview of a sort: offered, once per batch, how to make the rows sorted so far
Preview = Callable[[Callable[[], list[list[Any]]]], None]
SAMPLE_STEP = 128  # a full sort measures one row in this many
KEY_BYTES = 120  # a row's sort key, for each order: the tuple, its value, the sort's slot for it


class _Reversed:
    """A sort key that compares the other way round: an order whose direction is not the sort's."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return other.key < self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.key == other.key


def _sort_value(v: Any, ascending: bool, key: Any) -> Any:
    if type(v) is list:
        v = min(v, key=key) if ascending else max(v, key=key) if key else (min(v) if ascending else max(v))
    return key(v) if key else v


def _order_key(order: p.Order, scope: Scope, reverse: bool) -> Key:
    """The key of one order, for a sort that runs descending when ``reverse``: nulls first
    or last as asked, a multi-value by its smallest (ascending) or largest value."""
    fn, kind = compile_expr(order.expr, scope)
    key = sort_key(kind)
    own = not order.ascending
    nulls_first = order.nulls_first if order.nulls_first is not None else own
    null_flag = (-1 if nulls_first else 1) * (-1 if own else 1)
    ascending = order.ascending

    def k(row: list[Any]) -> Any:
        v = fn(row)
        return (null_flag, 0) if v is None else (0, _sort_value(v, ascending, key))
    return k if own == reverse else lambda row: _Reversed(k(row))


def row_key(orders: tuple[p.Order, ...], scope: Scope) -> tuple[Key, bool]:
    """One key for all of a SORT's orders and whether to sort by it descending (as the
    first order goes): one stable sort by it orders rows as stable sorts by each order in
    turn, from the last, would."""
    reverse = not orders[0].ascending
    keys = [_order_key(order, scope, reverse) for order in reversed(orders)][::-1]
    if len(keys) == 1:
        return keys[0], reverse
    return (lambda row: [k(row) for k in keys]), reverse


def top_n(rows: Iterable[list[Any]], key: Key, reverse: bool, n: int,
          breaker: Breaker, preview: Preview | None = None) -> tuple[list[list[Any]], Reservation]:
    """The first ``n`` of ``rows`` in the order of a stable sort by ``key``, and the
    reservation of their bytes on ``breaker``. Only rows that sort before the n-th kept one
    are kept, and those are cut back to ``n`` when they reach twice as many, so at most
    ``2n`` rows are ever held. ``preview`` is offered the first ``n`` so far now and then."""
    reservation = Reservation(breaker, TOPN_LABEL)
    if n == 0:
        collections.deque(rows, maxlen=0)  # every row is still read, as a sort reads them
        return [], reservation
    sign = -1 if reverse else 1  # descending, the earlier of equal keys still comes first
    kept: list[tuple[Any, int, int, list[Any]]] = []  # (key, ordinal, bytes, row): no two entries are equal
    room = 2 * n + 64
    cut: Any = None
    held = entry_bytes = 0
    for ordinal, row in enumerate(rows):
        k = key(row)
        if cut is not None and not (cut < k if reverse else k < cut):
            continue
        if not entry_bytes:
            entry_bytes = object_bytes((k, ordinal, 0, None))
        size = entry_bytes + row_bytes(row)
        kept.append((k, sign * ordinal, size, row))
        held += size
        if len(kept) == room:
            kept.sort(reverse=reverse)
            held -= sum(e[2] for e in kept[n:])
            del kept[n:]
            cut = kept[-1][0]
            reservation.hold(held)
        elif held - reservation.bytes > CHARGE_BYTES:
            reservation.hold(held)
        if preview is not None and ordinal % BATCH == BATCH - 1:
            preview(lambda: [e[3] for e in sorted(kept, reverse=reverse)[:n]])
    kept.sort(reverse=reverse)
    reservation.hold(held - sum(e[2] for e in kept[n:]))
    del kept[n:]
    return [e[3] for e in kept], reservation


def sort_all(rows: Iterable[list[Any]], key: Key, reverse: bool, breaker: Breaker,
             orders: int, preview: Preview | None = None) -> tuple[list[list[Any]], Reservation]:
    """Every row, stably sorted by ``key`` (of ``orders`` orders), and their reservation on
    ``breaker``: charged once per batch, at the mean size of a sample of its rows. Measuring
    every row would double the time of the sort. ``preview`` is offered, once per batch,
    the first ``PREVIEW_ROWS`` rows so far in order (without sorting them all)."""
    reservation = Reservation(breaker)
    out: list[list[Any]] = []
    held = 0
    rows = iter(rows)
    while batch := list(itertools.islice(rows, BATCH)):
        sample = batch[::SAMPLE_STEP]
        held += len(batch) * (KEY_BYTES * orders + sum(map(row_bytes, sample)) // len(sample))
        reservation.hold(held)
        out += batch
        if preview is not None:
            preview(lambda: (heapq.nlargest if reverse else heapq.nsmallest)(PREVIEW_ROWS, out, key=key))
    out.sort(key=key, reverse=reverse)
    return out, reservation
