"""Field names over JSON rows: how a dotted name (``host.name``) finds its value in an event
that may hold it as a literal key or as nested objects. Neutral: SML's result rows, the file
exports and the sidebar/timeline statistics all read rows this way (sml.md §4)."""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

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


def leaf_paths(node: dict[str, Any], prefix: str = "") -> Iterator[str]:
    """The dotted path of every leaf of an event (through arrays of objects), in key order."""
    for key, value in node.items():
        path = prefix + key
        if isinstance(value, dict) and value:
            yield from leaf_paths(value, path + ".")
        elif isinstance(value, list) and any(isinstance(v, dict) for v in value):
            for item in value:
                if isinstance(item, dict):
                    yield from leaf_paths(item, path + ".")
        else:
            yield path


def event_fields(events: Iterable[dict[str, Any]]) -> list[str]:
    """The fields of ``events`` in order of first appearance, as a result lists them."""
    seen: dict[str, None] = {}
    for event in events:
        seen.update(dict.fromkeys(leaf_paths(event)))
    return list(seen)


class Columns:
    """The fields of an export, compiled once: a row's values in field order, each as
    ``field_value`` finds it, None when absent (an export shows a missing value as it shows a
    null). The literal keys are looked up all at once at C speed; a dotted field not found so
    tries the nested object next (where ``field_value`` looks next), and only a row of another
    shape goes the general way."""

    def __init__(self, fields: Sequence[str]) -> None:
        self.fields = list(fields)
        # A dotted field's literal key may hold a null of its own: MISSING tells that apart.
        self._absent = [MISSING if "." in field else None for field in self.fields]
        self._dotted = [(i, field, *field.split(".", 1)) for i, field in enumerate(self.fields) if "." in field]

    def values(self, row: dict[str, Any]) -> list[Any]:
        values = list(map(row.get, self.fields, self._absent))
        for i, field, head, tail in self._dotted:
            if values[i] is MISSING:
                inner = row.get(head)
                value = inner[tail] if inner.__class__ is dict and tail in inner else field_value(row, field)
                values[i] = None if value is MISSING else value
        return values
