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

from ..errors import BadRequest, ParseError, ServiceError
from ..store.dates import date_parser
from .evaluate import EvalError, sort_key
from .spans import add_span, date_trunc

Predicate = Callable[[list[Any]], bool]
_UNITS = {"y": "y", "M": "mo", "w": "w", "d": "d", "h": "h", "H": "h", "m": "m", "s": "s"}  # date math -> span units
_MATH = re.compile(r"([+-]\d+|/)([yMwdhHms])")


class QueryParsingError(ServiceError):
    """How ES's query builders refuse a malformed clause (``ParsingException``)."""

    status = 400
    type = "parsing_exception"


def _fail(message: str) -> QueryParsingError:
    return QueryParsingError(message)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


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
        if kind in ("keyword", "text", "version", "ip") and value is not None:
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            if kind == "ip":
                return _ip_text(text)
            return text
        if kind in ("integer", "long", "double", "unsigned_long") and isinstance(value, str):
            try:
                return float(value) if kind == "double" else int(value)
            except ValueError:
                raise ServiceError(f"failed to create query: For input string: \"{value}\"", status=400,
                                   type="query_shard_exception") from None
        return value

    def q_term(self, body: Any) -> Predicate:
        field, spec = self._field(body, "term")
        if isinstance(spec, list):
            raise _fail("[term] query does not support array of values")
        if isinstance(spec, dict):
            unknown = [k for k in spec if k not in ("value", "boost", "case_insensitive", "_name")]
            if unknown:
                raise _fail(f"[term] query does not support [{unknown[0]}]")
        value = spec.get("value") if isinstance(spec, dict) else spec
        if not _scalar(value):
            raise _fail("[term] query does not support [value]")
        target = self._convert(field, value)
        values = self._values(field)
        return lambda row: target in values(row)

    def q_terms(self, body: Any) -> Predicate:
        fields = {k: v for k, v in body.items() if k != "boost"} if isinstance(body, dict) else {}
        if len(fields) != 1 or not isinstance(next(iter(fields.values())), list):
            raise _fail("[terms] query does not support multiple fields" if len(fields) > 1 else
                        "[terms] query requires an array of values")
        (field, wanted), = fields.items()
        if not all(_scalar(v) for v in wanted):
            raise _fail("[terms] query does not support values that are objects or arrays")
        targets = {self._convert(field, v) for v in wanted}
        values = self._values(field)
        return lambda row: any(v in targets for v in values(row))

    def q_exists(self, body: Any) -> Predicate:
        if not isinstance(body, dict) or "field" not in body:
            raise _fail("[exists] must be provided with a [field]")
        pattern = body["field"]
        if not _scalar(pattern) or pattern is None:
            token = "START_OBJECT" if isinstance(pattern, dict) else "START_ARRAY" if pattern is not None else \
                "VALUE_NULL"
            raise _fail(f"[exists] unknown token [{token}] after [field]")
        pattern = pattern if isinstance(pattern, str) else str(pattern).lower()
        indices = [i for n, i in self.index.items() if n == pattern or n.startswith(pattern + ".")
                   or ("*" in pattern and wildcard_match(pattern, n))]
        return lambda row: any(row[i] is not None for i in indices)

    def q_range(self, body: Any) -> Predicate:
        field, spec = self._field(body, "range")
        if not isinstance(spec, dict):
            raise _fail("[range] query malformed, no start_object after query name")
        fmt = spec.get("format")
        fmt = None if fmt is None else fmt if isinstance(fmt, str) else str(fmt)
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
            if not _scalar(bound):
                # ES reads the bound's first key as the next range parameter
                inner = next(iter(bound), op) if isinstance(bound, dict) else op
                raise _fail(f"[range] query does not support [{inner}]")
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
        minimum = _minimum_should_match(body.get("minimum_should_match", 0 if must else 1 if should else 0),
                                        len(should))

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
        fmt = fmt or "strict_date_optional_time||epoch_millis"
        try:
            ms = self.now if anchor == "now" else date_parser(fmt)(anchor) // 1_000_000
            return _date_math(ms, math_part, round_up, text)
        except (ValueError, EvalError):  # unparsable, or date math past the long range
            raise ParseError(f"failed to parse date field [{text}] with format [{fmt}]") from None


def _ip_text(text: str) -> str:
    """An IP as the index stores it; a term that is not one fails the query, as in ES."""
    from ..store.mapping import ValueConversionError, _ip
    try:
        return _ip(text)
    except ValueConversionError:
        raise ServiceError(f"failed to create query: '{text}' is not an IP string literal.", status=400,
                           type="query_shard_exception") from None


def _minimum_should_match(spec: Any, optional: int) -> int:
    """A count (``2``, ``-1``) or a percentage (``75%``) of the optional clauses."""
    text = str(spec).strip()
    try:
        if text.endswith("%"):
            return optional * int(text[:-1]) // 100
        return int(text)
    except ValueError:
        raise BadRequest(f'For input string: "{text.rstrip("%")}"') from None


def wildcard_match(pattern: str, text: str) -> bool:
    """``*`` matches any run of characters, everything else itself. The pieces between
    stars are found left to right, each at its first place (which is always a safe choice),
    so the time is linear in the pattern and the text whatever the pattern."""
    first, *middle_last = pattern.split("*")
    if not middle_last:
        return pattern == text
    *middle, last = middle_last
    if len(first) + len(last) > len(text) or not text.startswith(first) or not text.endswith(last):
        return False
    pos, end = len(first), len(text) - len(last)
    for piece in middle:
        found = text.find(piece, pos, end)
        if found < 0:
            return False
        pos = found + len(piece)
    return True


def _date_math(ms: int, expression: str, round_up: bool, original: str) -> int:
    pos = 0
    for m in _MATH.finditer(expression):
        if m.start() != pos:
            raise ParseError(f"operator not supported for date math [{original}]")
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
        raise ParseError(f"operator not supported for date math [{original}]")
    return ms
