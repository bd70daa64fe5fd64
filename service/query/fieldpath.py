"""Field names over JSON rows: how a dotted name (``host.name``) finds its value in an event
that may hold it as a literal key or as nested objects. Neutral: SML's result rows, the file
exports and the sidebar/timeline statistics all read rows this way (sml.md §4)."""

from __future__ import annotations

from typing import Any

MISSING: Any = object()  # no such field (distinct from a stored null)


def field_value(row: dict[str, Any], field: str) -> Any:
    """A row's value for a (dotted) field: a literal key first, else the nested path, where a
    key may itself hold dots; through an array of objects, the values of each (flattened).
    ``MISSING`` when absent."""
    if field in row:
        return row[field]
    dot = field.find(".")
    while dot != -1:
        inner = row.get(field[:dot], MISSING)
        if inner is not MISSING:
            value = _descend(inner, field[dot + 1:])
            if value is not MISSING:
                return value
        dot = field.find(".", dot + 1)
    return MISSING


def _descend(node: Any, field: str) -> Any:
    if isinstance(node, dict):
        return field_value(node, field)
    if isinstance(node, list):
        found = [v for v in (_descend(x, field) for x in node) if v is not MISSING]
        return [x for v in found for x in (v if isinstance(v, list) else [v])] if found else MISSING
    return MISSING
