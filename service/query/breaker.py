"""A memory circuit breaker per query, as Elasticsearch's ``request`` breaker.

The operators that hold rows (SORT's top-N buffer, STATS groups and their accumulators,
pushed-down group counts, the output batches) keep a ``Reservation`` on the query's
``Breaker`` and bring it up to date once per batch of rows with an estimate of what they
hold; when they are done it is released. A charge that would take the query past its
limit raises ``CircuitBreakingError``: the query ends, what it held is freed with it, and
the worker serves the next query.

Estimates come from ``sys.getsizeof`` (``row_bytes``), so they follow the data: a row of
long strings costs what its strings cost. They are estimates: the query worker also runs
under an address-space limit (``core/workers.py``), so an estimate that is wrong cannot
take the host down.
"""

from __future__ import annotations

from sys import getsizeof
from typing import Any, Iterable, Iterator

from ..errors import ServiceError

LABEL = "<esql_block_factory>"  # the label ES|QL's block factory charges its breaker with
TOPN_LABEL = "topn"  # and its TopN operator
CHARGE_BYTES = 1 << 20  # an operator that grows within a batch charges again once it holds this much more
_NONE = getsizeof(None)
_UNITS = (("pb", 1 << 50), ("tb", 1 << 40), ("gb", 1 << 30), ("mb", 1 << 20), ("kb", 1 << 10))


def byte_size(n: int) -> str:
    """``n`` bytes as Elasticsearch's ``ByteSizeValue.toString()`` prints them: the largest
    unit that fits, one decimal truncated, a ``.0`` dropped (``1.5mb``, ``512b``)."""
    value, suffix = float(n), "b"
    for unit, size in _UNITS:
        if n >= size:
            value, suffix = n / size, unit
            break
    whole, _, fraction = repr(value).partition(".")
    digit = fraction[:1]
    return f"{whole}{suffix}" if digit in ("", "0") else f"{whole}.{digit}{suffix}"


class CircuitBreakingError(ServiceError):
    """429 ``circuit_breaking_exception``: the query would hold more than its limit."""

    status = 429
    type = "circuit_breaking_exception"

    def __init__(self, reason: str, wanted: int, limit: int) -> None:
        super().__init__(reason, bytes_wanted=wanted, bytes_limit=limit, durability="TRANSIENT")

    @classmethod
    def tripped(cls, label: str, wanted: int, limit: int) -> CircuitBreakingError:
        return cls(f"[request] Data too large, data for [{label}] would be [{wanted}/{byte_size(wanted)}], "
                   f"which is larger than the limit of [{limit}/{byte_size(limit)}]", wanted, limit)

    @classmethod
    def command(cls, command: str, wanted: int, limit: int) -> CircuitBreakingError:
        """One command held more than the limit each may hold (SML's ``max_command_ram_usage``)."""
        return cls(f"command [{command}] would hold [{wanted}/{byte_size(wanted)}] of memory, which is larger than "
                   f"the limit [max_command_ram_usage] of [{limit}/{byte_size(limit)}]", wanted, limit)

    @classmethod
    def out_of_memory(cls, used: int, limit: int) -> CircuitBreakingError:
        """The worker's memory limit was hit although the estimates were below the breaker's:
        Elasticsearch's parent breaker, which watches real memory, answers this way."""
        return cls(f"[parent] Data too large, data for [{LABEL}] would be larger than the limit of "
                   f"[{limit}/{byte_size(limit)}], real usage: [{used}/{byte_size(used)}]", used, limit)


class Breaker:
    """The bytes one query holds, against its limit (-1: no limit, as in Elasticsearch)."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int = -1) -> None:
        self.limit = limit
        self.used = 0

    def add(self, delta: int, label: str = LABEL) -> None:
        """Add ``delta`` bytes (negative: release); raises, adding nothing, past the limit."""
        used = self.used + delta
        if delta > 0 and 0 <= self.limit < used:
            raise CircuitBreakingError.tripped(label, used, self.limit)
        self.used = used


class CommandBreaker(Breaker):
    """One command's share of its query's breaker, under a limit of its own: what the
    command's operators hold counts on both."""

    __slots__ = ("query", "command")

    def __init__(self, query: Breaker, command: str, limit: int) -> None:
        super().__init__(limit)
        self.query = query
        self.command = command

    def add(self, delta: int, label: str = LABEL) -> None:
        used = self.used + delta
        if delta > 0 and 0 <= self.limit < used:
            raise CircuitBreakingError.command(self.command, used, self.limit)
        self.query.add(delta, label)
        self.used = used


class Reservation:
    """What one operator holds on the query's breaker, set to its current estimate."""

    __slots__ = ("breaker", "label", "bytes")

    def __init__(self, breaker: Breaker, label: str = LABEL) -> None:
        self.breaker = breaker
        self.label = label
        self.bytes = 0

    def hold(self, total: int) -> None:
        """The operator now holds ``total`` bytes: charge (or release) the difference."""
        if total != self.bytes:
            self.breaker.add(total - self.bytes, self.label)
            self.bytes = total

    def close(self) -> None:
        self.hold(0)


def released(rows: Iterable[list[Any]], reservation: Reservation) -> Iterator[list[Any]]:
    """``rows`` (held by an operator) then the operator's reservation released, once its
    consumer has read them all or dropped them."""
    try:
        yield from rows
    finally:
        reservation.close()


def row_bytes(row: list[Any]) -> int:
    """An estimate of the memory a row holds: the list, its values and the values of its
    multi-values (nulls are one shared object; other shared ones are counted, erring high)."""
    size = getsizeof(row) + sum(map(getsizeof, row)) - _NONE * row.count(None)
    if list in map(type, row):
        for v in row:
            if type(v) is list:
                size += sum(map(getsizeof, v))
    return size


def object_bytes(obj: Any, depth: int = 3) -> int:
    """An estimate of a small structure's memory (a STATS group's accumulators): the object,
    its list/tuple/set items or ``__slots__`` values, ``depth`` levels down. Functions and
    classes are shared between groups and not counted."""
    if callable(obj):
        return 0
    size = getsizeof(obj)
    if depth == 0:
        return size
    if isinstance(obj, (list, tuple, set, frozenset)):
        children: Iterable[Any] = obj
    else:
        slots = [s for cls in type(obj).__mro__ for s in getattr(cls, "__slots__", ())]
        children = [getattr(obj, s, None) for s in slots]
    return size + sum(object_bytes(c, depth - 1) for c in children if c is not None)
