"""The Query DSL subset accepted as a request ``filter``: compiled to a row predicate.

Supported: ``match_all``, ``match_none``, ``term``, ``terms``, ``range`` (``gt``, ``gte``,
``lt``, ``lte``, ``format`` for dates, date math such as ``now-1d/d``), ``exists`` and
``bool`` (``must``, ``filter``, ``should`` with ``minimum_should_match``, ``must_not``).
Like a Lucene query, a clause matches a multi-valued field when any value matches.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

from ..errors import ParseError
from ..store.dates import date_parser
from .evaluate import sort_key
from .functions import add_span, date_trunc

Predicate = Callable[[list[Any]], bool]
_UNITS = {"y": "y", "M": "mo", "w": "w", "d": "d", "h": "h", "H": "h", "m": "m", "s": "s"}  # date math -> span units
_MATH = re.compile(r"([+-]\d+|/)([yMwdhHms])")


def _fail(message: str) -> ParseError:
    return ParseError(message)


def compile_filter(query: Any, names: list[str], types: list[str], now_ms: int | None = None) -> Predicate:
    """A predicate over rows whose columns are ``names`` (of ES|QL ``types``)."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return _Compiler(names, types, now).query(query)


class _Compiler:
    def __init__(self, names: list[str], types: list[str], now: int) -> None:
        self.index = {n: i for i, n in enumerate(names)}
        self.types = dict(zip(names, types))
        self.now = now

    def query(self, q: Any) -> Predicate:
        if not isinstance(q, dict) or len(q) != 1:
            raise _fail("query malformed, must start with start_object" if not isinstance(q, dict) else
                        "[_na] query malformed, no start_object after query name")
        (kind, body), = q.items()
        method = getattr(self, f"q_{kind}", None)
        if method is None:
            raise _fail(f"unknown query [{kind}]")
        return method(body)

    def q_match_all(self, body: Any) -> Predicate:
        return lambda row: True

    def q_match_none(self, body: Any) -> Predicate:
        return lambda row: False

    def _field(self, body: Any, query: str) -> tuple[str, Any]:
        if not isinstance(body, dict) or len(body) != 1:
            raise _fail(f"[{query}] query doesn't support multiple fields, found [{', '.join(body)}]"
                        if isinstance(body, dict) and body else f"[{query}] query malformed, no field")
        (field, spec), = body.items()
        return field, spec

    def _values(self, field: str) -> Callable[[list[Any]], list[Any]]:
        i = self.index.get(field)
        if i is None:
            return lambda row: []
        return lambda row: [] if row[i] is None else row[i] if type(row[i]) is list else [row[i]]

    def _convert(self, field: str, value: Any) -> Any:
        kind = self.types.get(field)
        if kind in ("date", "date_nanos"):
            return self._date(value, None)
        if kind == "boolean" and isinstance(value, str):
            return value == "true"
        if kind in ("integer", "long", "double", "unsigned_long") and isinstance(value, str):
            try:
                return float(value) if kind == "double" else int(value)
            except ValueError:
                raise _fail(f"failed to create query: For input string: \"{value}\"") from None
        return value

    def q_term(self, body: Any) -> Predicate:
        field, spec = self._field(body, "term")
        value = spec.get("value") if isinstance(spec, dict) else spec
        target = self._convert(field, value)
        values = self._values(field)
        return lambda row: target in values(row)

    def q_terms(self, body: Any) -> Predicate:
        fields = {k: v for k, v in body.items() if k != "boost"} if isinstance(body, dict) else {}
        if len(fields) != 1 or not isinstance(next(iter(fields.values())), list):
            raise _fail("[terms] query does not support multiple fields" if len(fields) > 1 else
                        "[terms] query requires an array of values")
        (field, wanted), = fields.items()
        targets = {self._convert(field, v) for v in wanted}
        values = self._values(field)
        return lambda row: any(v in targets for v in values(row))

    def q_exists(self, body: Any) -> Predicate:
        if not isinstance(body, dict) or "field" not in body:
            raise _fail("[exists] must be provided with a [field]")
        pattern = body["field"]
        indices = [i for n, i in self.index.items() if n == pattern or n.startswith(pattern + ".")
                   or ("*" in pattern and re.fullmatch(pattern.replace(".", r"\.").replace("*", ".*"), n))]
        return lambda row: any(row[i] is not None for i in indices)

    def q_range(self, body: Any) -> Predicate:
        field, spec = self._field(body, "range")
        if not isinstance(spec, dict):
            raise _fail("[range] query malformed, no start_object after query name")
        fmt = spec.get("format")
        kind = self.types.get(field)
        key = sort_key(kind) if kind else None
        checks: list[Callable[[Any], bool]] = []
        for op, bound in spec.items():
            if op in ("format", "boost", "time_zone", "relation"):
                continue
            if op not in ("gt", "gte", "lt", "lte", "from", "to"):
                raise _fail(f"[range] query does not support [{op}]")
            if bound is None:
                continue
            rounding_up = op in ("gt", "lte")
            target = self._date(bound, fmt, rounding_up) if kind in ("date", "date_nanos") else \
                self._convert(field, bound)
            if kind == "date_nanos":
                target *= 1_000_000
            k = key(target) if key else target
            compare = {"gt": lambda v, k=k: v > k, "gte": lambda v, k=k: v >= k, "from": lambda v, k=k: v >= k,
                       "lt": lambda v, k=k: v < k, "lte": lambda v, k=k: v <= k, "to": lambda v, k=k: v <= k}[op]
            checks.append(compare)
        values = self._values(field)
        if key is None:
            return lambda row: any(all(c(v) for c in checks) for v in values(row))
        return lambda row: any(all(c(key(v)) for c in checks) for v in values(row))

    def q_bool(self, body: Any) -> Predicate:
        if not isinstance(body, dict):
            raise _fail("[bool] query malformed")

        def clauses(name: str) -> list[Predicate]:
            value = body.get(name, [])
            return [self.query(c) for c in (value if isinstance(value, list) else [value])]

        for name in body:
            if name not in ("must", "filter", "should", "must_not", "minimum_should_match", "boost"):
                raise _fail(f"[bool] query does not support [{name}]")
        must = clauses("must") + clauses("filter")
        should, must_not = clauses("should"), clauses("must_not")
        minimum = body.get("minimum_should_match", 0 if must else 1 if should else 0)
        minimum = int(str(minimum).rstrip("%")) if not str(minimum).endswith("%") else \
            len(should) * int(str(minimum)[:-1]) // 100

        def run(row: list[Any]) -> bool:
            if not all(p(row) for p in must) or any(p(row) for p in must_not):
                return False
            return minimum <= 0 or sum(1 for p in should if p(row)) >= minimum
        return run

    def _date(self, value: Any, fmt: str | None, round_up: bool = False) -> int:
        if isinstance(value, (int, float)):
            return int(value)
        text = str(value)
        anchor, _, math_part = text.partition("||") if "||" in text else \
            (("now", "", text[3:]) if text.startswith("now") else (text, "", ""))
        if anchor == "now":
            ms = self.now
        else:
            try:
                parse = date_parser(fmt or "strict_date_optional_time||epoch_millis")
                ms = parse(anchor) // 1_000_000
            except ValueError:
                raise _fail(f"failed to parse date field [{text}] with format "
                            f"[{fmt or 'strict_date_optional_time||epoch_millis'}]") from None
        return _date_math(ms, math_part, round_up, text)


def _date_math(ms: int, expression: str, round_up: bool, original: str) -> int:
    pos = 0
    for m in _MATH.finditer(expression):
        if m.start() != pos:
            raise _fail(f"operator not supported for date math [{original}]")
        pos = m.end()
        op, unit = m.groups()
        span = (1, _UNITS[unit])
        if op == "/":
            ms = date_trunc(ms, span)
            if round_up:
                ms = add_span(ms, span, 1, "date") - 1
        else:
            ms = add_span(ms, span, int(op), "date")
    if pos != len(expression):
        raise _fail(f"operator not supported for date math [{original}]")
    return ms
