"""Turning one JSON document into the column values of its index's table.

Documents are flattened to dotted field paths (``host.name``), each value converted with its
field's mapping; fields seen for the first time get the mapping ES's dynamic mapping would
give them. A document may nest the 1000 levels ES's JSON parser reads: shallow documents are
walked recursively, the rest with a stack.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..errors import ServiceError
from .catalog import Index
from .mapping import METADATA_FIELDS, Field, ValueConversionError, converter, dynamic_spec


class DocumentError(ServiceError):
    status = 400
    type = "document_parsing_exception"


# Jackson's StreamReadConstraints default, which ES keeps: the root object counts 1.
MAX_NESTING_DEPTH = 1000


NESTING_DEPTH_MESSAGE = (f"Document nesting depth ({MAX_NESTING_DEPTH + 1}) exceeds the maximum allowed "
                         f"({MAX_NESTING_DEPTH}, from `StreamReadConstraints.getMaxNestingDepth()`)")


def too_deep_document() -> DocumentError:
    """ES's document parser on a source nested deeper than its JSON parser reads."""
    return DocumentError("Error parsing document", caused_by=ServiceError(
        NESTING_DEPTH_MESSAGE, status=400, type="stream_constraints_exception"))


def _flatten(doc: dict[str, Any]) -> tuple[dict[str, list[Any]], list[str]]:
    """``{field path: [values]}`` in document order, and the paths that hold objects.

    Recursion for the common shallow document; below ``_RECURSION_BOUND`` levels the rest is
    walked with a stack, since a document may nest the thousand levels ES accepts.
    """
    out: dict[str, list[Any]] = {}
    objs: list[str] = []
    _flatten_dict(doc, "", 1, out, objs)
    return out, objs


_RECURSION_BOUND = 64


def _flatten_dict(obj: dict[str, Any], prefix: str, depth: int, out: dict[str, list[Any]], objs: list[str]) -> None:
    if depth >= _RECURSION_BOUND:
        _flatten_deep(obj, prefix, depth, out, objs)
        return
    for key, value in obj.items():
        if not key:
            raise DocumentError("field name cannot be an empty string")
        path = f"{prefix}.{key}" if prefix else key
        if type(value) is dict:
            objs.append(path)
            _flatten_dict(value, path, depth + 1, out, objs)
        elif type(value) is list:
            _flatten_list(value, path, depth + 1, out, objs)
        else:
            bucket = out.get(path)
            if bucket is None:
                out[path] = [value]
            else:
                bucket.append(value)


def _flatten_list(values: list[Any], path: str, depth: int, out: dict[str, list[Any]], objs: list[str]) -> None:
    if depth >= _RECURSION_BOUND:
        _flatten_deep(values, path, depth, out, objs)
        return
    bucket = out.setdefault(path, [])
    for value in values:
        if type(value) is dict:
            objs.append(path)
            _flatten_dict(value, path, depth + 1, out, objs)
        elif type(value) is list:
            _flatten_list(value, path, depth + 1, out, objs)
        else:
            bucket.append(value)


def _flatten_deep(node: Any, path: str, depth: int, out: dict[str, list[Any]], objs: list[str]) -> None:
    """The same walk with a stack, from an object or array at ``depth`` (the root is 1)."""
    stack: list[tuple[Any, str, int, bool]] = [(node, path, depth, False)]
    while stack:
        node, path, depth, is_object_value = stack.pop()
        if type(node) is dict:
            if depth > MAX_NESTING_DEPTH:
                raise too_deep_document()
            if is_object_value:
                objs.append(path)
            children = []
            for key, value in node.items():
                if not key:
                    raise DocumentError("field name cannot be an empty string")
                children.append((value, f"{path}.{key}" if path else key, depth + 1, True))
            stack.extend(reversed(children))
        elif type(node) is list:
            if depth > MAX_NESTING_DEPTH:
                raise too_deep_document()
            out.setdefault(path, [])
            stack.extend((value, path, depth + 1, True) for value in reversed(node))
        else:
            bucket = out.get(path)
            if bucket is None:
                out[path] = [node]
            else:
                bucket.append(node)


def encode_values(values: list[Any], kind: str) -> Any:
    """Column value of a field: a scalar, ``None``, or a multi-value as a JSON BLOB.

    Multi-values are stored as doc values are: sorted (keyword-like de-duplicated). The
    BLOB storage class marks them unambiguously, whatever the column's type.
    """
    if len(values) == 1:
        return values[0]
    if not values:
        return None
    if kind == "dedup":
        values = sorted(set(values))
        if len(values) == 1:
            return values[0]
    elif kind == "sort":
        values = sorted(values)
    return orjson.dumps(values)


def fill_row(obj: dict[str, Any], tree: dict[str, Any], row: list[Any]) -> bool:
    """The common case in one pass: every key already mapped, single non-null values that
    convert cleanly, written straight into the row. Anything else (arrays, nulls, new or
    dotted keys, bad values) returns False, and the document goes through the general
    parser, which also reports the errors."""
    for key, value in obj.items():
        entry = tree.get(key)
        if entry is None:
            return False
        if type(entry) is dict:
            if type(value) is not dict or not fill_row(value, entry, row):
                return False
            continue
        if value is None or type(value) is dict or type(value) is list:
            return False
        try:
            for position, convert in entry:
                row[position] = convert(value)
        except ValueConversionError:
            return False
    return True


def _concrete_value_in_object(path: str) -> DocumentError:
    return DocumentError(f"object mapping for [{path}] tried to parse field [{path}] as object, but found a "
                         "concrete value")


def _preview(value: Any) -> str:
    return "true" if value is True else "false" if value is False else str(value)


class DocumentParser:
    """Turns one JSON document into the column values of its index's table."""

    def __init__(self, index: Index) -> None:
        self.index = index

    def parse(self, doc: dict[str, Any], doc_id: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        """Return ``{field path: column value}`` and the new dynamic fields the document needs."""
        index = self.index
        for key in doc:
            if key in METADATA_FIELDS:
                raise DocumentError(f"Field [{key}] is a metadata field and cannot be added inside a document. "
                                    "Use the index API request parameters.")
        flat, objs = _flatten(doc)
        for path in objs:
            if path in index.fields:
                f = index.fields[path]
                raise DocumentError(self._failed(f, doc_id, "{...}"), caused_by=ServiceError(
                    f"Can't get text on a START_OBJECT", status=400, type="illegal_state_exception"))
            if any(v is not None for v in flat.get(path, ())):  # [{"x": 1}, 2]: an object, then a value
                raise _concrete_value_in_object(path)
        values = {}
        new_fields: list[tuple[str, dict[str, Any]]] = []
        for path, raw in flat.items():
            f = index.fields.get(path)
            if f is None:
                if path in index.objects:
                    if any(v is not None for v in raw):
                        raise _concrete_value_in_object(path)
                    continue
                spec = self._dynamic(path, raw)
                if spec is None:
                    continue
                new_fields.append((path, spec))
                f = Field(path, spec["type"], spec, convert=converter(spec["type"], spec))
                subs = [Field(f"{path}.{n}", s["type"], s, parent=path, convert=converter(s["type"], s))
                        for n, s in spec.get("fields", {}).items()]
            else:
                if f.target is not None:
                    raise DocumentError(f"Cannot write to a field alias [{path}].")
                subs = index.subfields.get(path, ())
            values[path] = self._convert(f, raw, doc_id)
            for sub in subs:
                values[sub.path] = self._convert(sub, raw, doc_id)
        return values, new_fields

    def _dynamic(self, path: str, raw: list[Any]) -> dict[str, Any] | None:
        index = self.index
        parts = path.split(".")
        for i in range(1, len(parts)):
            prefix = ".".join(parts[:i])
            if prefix in index.fields:
                existing = index.fields[prefix]
                raise DocumentError(f"Could not dynamically add mapping for field [{path}]. Existing mapping for "
                                    f"[{prefix}] must be of type object but found [{existing.type}].")
        parent = ".".join(parts[:-1])
        while parent not in index.objects:
            parent = parent.rpartition(".")[0]
        dynamic = index.objects[parent]
        first = next((v for v in raw if v is not None), None)
        if first is None:
            return None
        if dynamic == "strict":
            raise ServiceError(f"[{path.rpartition('.')[0] or '_doc'}] mapping set to strict, dynamic introduction "
                               f"of [{parts[-1]}] within [{parent or '_doc'}] is not allowed",
                               status=400, type="strict_dynamic_mapping_exception")
        if dynamic in ("false", "runtime"):
            return None
        return dynamic_spec(first)

    def _convert(self, f: Field, raw: list[Any], doc_id: str) -> Any:
        if len(raw) == 1 and f.fast:
            value = raw[0]
            if value is not None:
                try:
                    return f.convert(value)
                except ValueConversionError:
                    pass  # the general path below reports it
        params = f.params
        null_value = params.get("null_value")
        ignore_above = params.get("ignore_above")
        convert = f.convert
        out = []
        for value in raw:
            if value is None:
                if null_value is None:
                    continue
                value = null_value
            try:
                converted = convert(value)
            except ValueConversionError as exc:
                if params.get("ignore_malformed"):
                    continue
                raise DocumentError(self._failed(f, doc_id, _preview(value)), caused_by=ServiceError(
                    str(exc), status=400, type="illegal_argument_exception")) from None
            if ignore_above is not None and isinstance(converted, str) and len(converted) > ignore_above:
                continue
            if converted is not None:
                out.append(converted)
        return encode_values(out, f.sort_kind)

    @staticmethod
    def _failed(f: Field, doc_id: str, preview: str) -> str:
        return (f"failed to parse field [{f.path}] of type [{f.type}] in document with id '{doc_id}'. "
                f"Preview of field's value: '{preview}'")
