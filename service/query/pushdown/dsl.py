"""The request's Query DSL ``filter`` as an SQL condition, where that is exact.

The Python predicate (``query.dsl``) stays the judge of what the filter means: it is
compiled first (so a malformed filter fails with its message), and the values are
converted by its own rules (``_convert``, ``_date``, date math and ``now``). The clauses
translated: ``match_all``, ``match_none``, ``term``, ``terms``, ``range`` (not on ip or
version fields, which order differently), ``exists`` and ``bool``. A clause on a field that
may hold a multi-value (it matches when any value does) is not, and the whole filter then
runs in Python. Each leaf is made two-valued (``IS TRUE``): a DSL clause is true or false,
never null, which is what ``must_not`` needs.
"""

from __future__ import annotations

import time
from typing import Any

from ..dsl import _Compiler, _minimum_should_match, compile_filter, wildcard_match
from .compiler import Col, Compiler, NotPushable

_OPS = {"gt": ">", "gte": ">=", "from": ">=", "lt": "<", "lte": "<=", "to": "<="}


class _SqlFilter(_Compiler):
    def __init__(self, names: list[str], types: list[str], now: int, columns: dict[str, Col],
                 comp: Compiler) -> None:
        super().__init__(names, types, now)
        self.columns, self.comp = columns, comp

    def _column(self, field: str) -> str | None:
        col = self.columns.get(field)
        if col is None or col.sql is None:
            return None  # no such field (or one Python reads as null): matches nothing
        if col.multi:
            raise NotPushable(field)
        return col.sql

    def q_match_all(self, body: Any) -> str:  # type: ignore[override]
        return "1"

    def q_match_none(self, body: Any) -> str:  # type: ignore[override]
        return "0"

    def q_term(self, body: Any) -> str:  # type: ignore[override]
        field, spec = self._field(body, "term")
        value = spec.get("value") if isinstance(spec, dict) else spec
        column = self._column(field)
        return "0" if column is None else f"(({column} = {self.comp.bind(self._convert(field, value))}) IS TRUE)"

    def q_terms(self, body: Any) -> str:  # type: ignore[override]
        (field, wanted), = ((k, v) for k, v in body.items() if k != "boost")
        column = self._column(field)
        if column is None or not wanted:
            return "0"
        items = ", ".join(self.comp.bind(self._convert(field, v)) for v in wanted)
        return f"(({column} IN ({items})) IS TRUE)"

    def q_exists(self, body: Any) -> str:  # type: ignore[override]
        pattern = body["field"]
        pattern = pattern if isinstance(pattern, str) else str(pattern).lower()
        found = [c.sql for n, c in self.columns.items() if c.sql is not None and
                 (n == pattern or n.startswith(pattern + ".") or ("*" in pattern and wildcard_match(pattern, n)))]
        return f"({' OR '.join(f'{s} IS NOT NULL' for s in found)})" if found else "0"

    def q_range(self, body: Any) -> str:  # type: ignore[override]
        field, spec = self._field(body, "range")
        fmt = spec.get("format")
        fmt = None if fmt is None else fmt if isinstance(fmt, str) else str(fmt)
        kind = self.types.get(field)
        if kind in ("ip", "version", "unsigned_long"):
            raise NotPushable(field)
        column = self._column(field)
        if column is None:
            return "0"
        checks = []
        for op, bound in spec.items():
            if op not in _OPS or bound is None:
                continue
            target = self._date(bound, fmt, op in ("gt", "lte")) if kind in ("date", "date_nanos") else \
                self._convert(field, bound)
            if kind == "date_nanos":
                target *= 1_000_000
            checks.append(f"{column} {_OPS[op]} {self.comp.bind(target)}")
        return f"(({' AND '.join(checks or [f'{column} IS NOT NULL'])}) IS TRUE)"

    def q_bool(self, body: Any) -> str:  # type: ignore[override]
        def clauses(name: str) -> list[str]:
            value = body.get(name, [])
            return [self.query(c) for c in (value if isinstance(value, list) else [value])]

        must = clauses("must") + clauses("filter")
        should, must_not = clauses("should"), clauses("must_not")
        minimum = _minimum_should_match(body.get("minimum_should_match", 0 if must else 1 if should else 0),
                                        len(should))
        parts = [*must, *(f"NOT {c}" for c in must_not)]
        if minimum > 0:
            parts.append(f"({' + '.join(should) if should else '0'}) >= {minimum}")
        return f"({' AND '.join(parts)})" if parts else "1"


def filter_sql(query: Any, names: list[str], types: list[str], columns: list[Col], comp: Compiler) -> str:
    """The filter as an SQL condition over the source ``columns``; raises ``NotPushable``,
    or the Python compiler's error for a malformed filter."""
    now = int(time.time() * 1000)
    compile_filter(query, names, types, now)  # validates, with the Python path's errors
    source = set(names)
    return _SqlFilter(names, types, now, {c.name: c for c in columns if c.name in source}, comp).query(query)
