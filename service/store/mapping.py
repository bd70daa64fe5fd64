"""Index mappings: validation, the field list they imply, and value conversion.

A mapping is kept in Elasticsearch's own JSON shape (what ``GET _mapping`` returns), as
``mapping_parser.parse_mapping`` checked and normalised it.
Every leaf field that has doc values gets its own SQLite column; multi-fields
(``message.keyword``, ``height.float``) get columns of their own, derived from the
parent value at index time with the sub-field's own conversion, as ES does.
"""

from __future__ import annotations

import math
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import ServiceError
from .dates import date_parser, detect_date, iso_first, printed_millis

STRING_TYPES = {"keyword", "constant_keyword", "wildcard", "text", "match_only_text", "version"}
INTEGER_RANGES = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsigned_long": (0, 2**64 - 1),
}
FLOAT_TYPES = {"double", "float", "half_float", "scaled_float"}
OTHER_LEAF_TYPES = {"boolean", "date", "date_nanos", "ip", "geo_point", "geo_shape", "point", "shape",
                    "binary", "flattened", "dense_vector", "histogram", "aggregate_metric_double"}
LEAF_TYPES = STRING_TYPES | set(INTEGER_RANGES) | FLOAT_TYPES | OTHER_LEAF_TYPES
OBJECT_TYPES = {"object", "nested"}
ALL_TYPES = LEAF_TYPES | OBJECT_TYPES | {"alias"}
# Types whose doc values ES sorts and de-duplicates; numbers, booleans and dates are
# sorted with duplicates kept; text keeps source order.
DEDUP_TYPES = {"keyword", "constant_keyword", "wildcard", "ip", "version"}
UNSORTED_TYPES = {"text", "match_only_text", "geo_point", "geo_shape", "point", "shape", "binary",
                  "flattened", "dense_vector"}

COMMON_PARAMS = {"type", "fields", "index", "doc_values", "store", "meta", "boost", "copy_to",
                 "ignore_malformed", "null_value", "coerce", "script", "on_script_error",
                 "time_series_dimension", "time_series_metric", "synthetic_source_keep"}
TYPE_PARAMS: dict[str, set[str]] = {
    "keyword": {"ignore_above", "normalizer", "eager_global_ordinals", "norms", "similarity",
                "split_queries_on_whitespace", "index_options"},
    "constant_keyword": {"value"},
    "wildcard": {"ignore_above"},
    "text": {"analyzer", "search_analyzer", "search_quote_analyzer", "norms", "similarity",
             "index_options", "index_prefixes", "index_phrases", "fielddata", "fielddata_frequency_filter",
             "eager_global_ordinals", "position_increment_gap", "term_vector"},
    "match_only_text": set(),
    "scaled_float": {"scaling_factor"},
    "date": {"format", "locale", "print_format"},
    "date_nanos": {"format", "locale", "print_format"},
    "dense_vector": {"dims", "similarity", "element_type", "index_options"},
    "geo_point": {"ignore_z_value"},
    "geo_shape": {"ignore_z_value", "orientation"},
    "aggregate_metric_double": {"metrics", "default_metric"},
}
OBJECT_PARAMS = {"type", "properties", "dynamic", "enabled", "subobjects", "include_in_parent",
                 "include_in_root"}
ROOT_PARAMS = OBJECT_PARAMS | {"_source", "_meta", "_routing", "date_detection", "numeric_detection",
                               "dynamic_date_formats", "dynamic_templates", "runtime", "_data_stream_timestamp",
                               "_field_names"}
METADATA_FIELDS = {"_id", "_index", "_source", "_routing", "_version", "_seq_no", "_primary_term",
                   "_ignored", "_field_names", "_doc_count", "_tier", "_data_stream_timestamp",
                   "_nested_path", "_feature", "_ignored_source"}


@dataclass(slots=True)
class Field:
    """A leaf field with a column, or an alias (``target`` set, no column)."""

    path: str
    type: str
    params: dict[str, Any]
    column: str | None = None
    parent: str | None = None  # set on multi-fields: the field whose value they derive from
    target: str | None = None  # set on aliases
    convert: Callable[[Any], Any] = field(default=lambda v: v, repr=False)
    sort_kind: str = "sort"  # how a multi-value is ordered: "dedup", "sort" or "keep"
    fast: bool = True  # no null_value / ignore_above / ignore_malformed to consider

    def __post_init__(self) -> None:
        if self.type in DEDUP_TYPES:
            self.sort_kind = "dedup"
        elif self.type in UNSORTED_TYPES:
            self.sort_kind = "keep"
        self.fast = not ({"null_value", "ignore_above", "ignore_malformed"} & self.params.keys())


class ValueConversionError(ValueError):
    pass


# --- value conversion ----------------------------------------------------------------


def _to_string(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    raise ValueConversionError("expected a concrete value")


def _integer(type_: str, coerce: bool) -> Callable[[Any], int]:
    lo, hi = INTEGER_RANGES[type_]

    def convert(value: Any) -> int:
        if type(value) is int and lo <= value <= hi:
            return value
        if isinstance(value, bool):
            raise ValueConversionError(f"Current token (VALUE_{str(value).upper()}) not numeric, "
                                       f"can not use numeric value accessors")
        if isinstance(value, int):
            number = value
        elif isinstance(value, float) or (isinstance(value, str) and coerce):
            try:
                as_float = float(value)
                number = int(value) if isinstance(value, str) and value.lstrip("+-").isdigit() else int(as_float)
            except (ValueError, OverflowError):
                raise ValueConversionError(f'For input string: "{value}"') from None
            if not math.isfinite(as_float):
                raise ValueConversionError(f"[{type_}] supports only finite values, but got [{value}]")
        else:
            raise ValueConversionError(f'For input string: "{value}"')
        if not lo <= number <= hi:
            raise ValueConversionError(f"Value [{value}] is out of range for {'an' if type_ == 'integer' else 'a'} "
                                       f"{type_}")
        return number

    return convert


def _floating(type_: str, params: dict[str, Any], coerce: bool) -> Callable[[Any], float]:
    scale = float(params.get("scaling_factor", 1))

    def convert(value: Any) -> float:
        if type_ == "double" and type(value) is float and math.isfinite(value):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (
            isinstance(value, str) and not coerce
        ):
            raise ValueConversionError(f'For input string: "{value}"')
        try:
            number = float(value)
        except (ValueError, OverflowError):
            raise ValueConversionError(f'For input string: "{value}"') from None
        if not math.isfinite(number):
            raise ValueConversionError(f"[{type_}] supports only finite values, but got [{value}]")
        if type_ == "float":
            return struct.unpack("f", struct.pack("f", number))[0]
        if type_ == "half_float":
            return struct.unpack("e", struct.pack("e", number))[0]
        if type_ == "scaled_float":
            return round(number * scale) / scale
        return number

    return convert


def _boolean(value: Any) -> int:
    if value is True or value == "true":
        return 1
    if value is False or value == "false" or value == "":
        return 0
    raise ValueConversionError(
        f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def _date(params: dict[str, Any], nanos: bool) -> Callable[[Any], int]:
    fmt = params.get("format")
    parse = date_parser(fmt)
    printed = iso_first(fmt)

    def convert(value: Any) -> int:
        if printed and type(value) is str:  # the common shape, without the general parser's turns
            ms = printed_millis(value)
            if ms is not None:
                return ms * 1_000_000 if nanos else ms
        try:
            result = parse(value)
        except ValueError as exc:
            raise ValueConversionError(str(exc)) from None
        return result if nanos else result // 1_000_000

    return convert


_V4_MAPPED = bytes(10) + b"\xff\xff"


def _ip(value: Any) -> str:
    """Canonical text of an IP (IPv4 dotted, IPv6 compressed; IPv4-mapped IPv6 as IPv4)."""
    if type(value) is str:
        try:
            return socket.inet_ntop(socket.AF_INET, socket.inet_pton(socket.AF_INET, value))
        except OSError:
            try:
                packed = socket.inet_pton(socket.AF_INET6, value)
            except OSError:
                pass
            else:
                if packed.startswith(_V4_MAPPED):
                    return socket.inet_ntop(socket.AF_INET, packed[12:])
                return socket.inet_ntop(socket.AF_INET6, packed)
    raise ValueConversionError(f"'{value}' is not an IP string literal.")


def _opaque(value: Any) -> Any:
    return value if isinstance(value, (str, int, float)) else None


def converter(type_: str, params: dict[str, Any]) -> Callable[[Any], Any]:
    coerce = params.get("coerce", True) is not False
    if type_ in ("keyword", "constant_keyword", "wildcard", "text", "match_only_text", "version"):
        return _to_string
    if type_ in INTEGER_RANGES:
        return _integer(type_, coerce)
    if type_ in FLOAT_TYPES:
        return _floating(type_, params, coerce)
    if type_ == "boolean":
        return _boolean
    if type_ in ("date", "date_nanos"):
        return _date(params, type_ == "date_nanos")
    if type_ == "ip":
        return _ip
    return _opaque


# --- the field list -------------------------------------------------------------------


def iter_fields(mapping: dict[str, Any]) -> list[Field]:
    """Every leaf field, multi-field and alias of a mapping, in mapping order."""
    out: list[Field] = []

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            type_ = spec.get("type", "object")
            if type_ == "object":
                walk(spec.get("properties", {}), path + ".")
            elif type_ == "nested":
                continue  # nested objects live in _source only, as ES|QL does not read them
            elif type_ == "alias":
                out.append(Field(path, "alias", spec, target=spec["path"]))
            else:
                out.append(Field(path, type_, spec, convert=converter(type_, spec)))
                for sub_name, sub in (spec.get("fields") or {}).items():
                    out.append(Field(f"{path}.{sub_name}", sub["type"], sub, parent=path,
                                     convert=converter(sub["type"], sub)))

    walk(mapping.get("properties", {}), "")
    return out


def dynamic_spec(value: Any) -> dict[str, Any] | None:
    """The mapping ES's dynamic mapping gives a first-seen JSON value (None: add nothing)."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "long"} if -(2**63) <= value < 2**63 else {"type": "float"}
    if isinstance(value, float):
        return {"type": "float"}
    if isinstance(value, str):
        date_format = detect_date(value)
        if date_format is not None:
            return {"type": "date", "format": date_format} if date_format else {"type": "date"}
        return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    return None


def add_field(mapping: dict[str, Any], path: str, spec: dict[str, Any]) -> None:
    """Insert ``spec`` at dotted ``path``, creating intermediate objects as ES does."""
    parts = path.split(".")
    node = mapping.setdefault("properties", {})
    for part in parts[:-1]:
        child = node.setdefault(part, {"properties": {}})
        if child.get("type") == "object":
            del child["type"]  # ES shows an object's type only while it has no fields
        node = child.setdefault("properties", {})
    node[parts[-1]] = spec


def object_paths(mapping: dict[str, Any]) -> dict[str, str]:
    """Every object path with its ``dynamic`` setting (inherited from the parent)."""
    out: dict[str, str] = {"": str(mapping.get("dynamic", True)).lower()}

    def walk(properties: dict[str, Any], prefix: str, inherited: str) -> None:
        for name, spec in properties.items():
            if spec.get("type", "object") in OBJECT_TYPES:
                path = prefix + name
                dynamic = str(spec.get("dynamic", inherited)).lower()
                out[path] = dynamic
                walk(spec.get("properties", {}), path + ".", dynamic)

    walk(mapping.get("properties", {}), "", out[""])
    return out


def merge_mappings(current: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``PUT /<index>/_mapping``: new fields are added; a changed type is an error."""
    merged = {**current, **{k: v for k, v in update.items() if k != "properties"}}
    merged["properties"] = _merge_properties(current.get("properties", {}), update.get("properties", {}), "")
    return merged


def _merge_properties(current: dict[str, Any], update: dict[str, Any], prefix: str) -> dict[str, Any]:
    out = dict(current)
    for name, spec in update.items():
        existing = current.get(name)
        if existing is None:
            out[name] = spec
            continue
        old_type = existing.get("type", "object")
        new_type = spec.get("type", "object" if "properties" in spec else old_type)
        if old_type != new_type:
            raise ServiceError(f"mapper [{prefix}{name}] cannot be changed from type [{old_type}] to "
                               f"[{new_type}]", status=400, type="illegal_argument_exception")
        if old_type in OBJECT_TYPES:
            out[name] = {**existing, **{k: v for k, v in spec.items() if k != "properties"},
                         "properties": _merge_properties(existing.get("properties", {}),
                                                         spec.get("properties", {}), f"{prefix}{name}.")}
            if out[name].get("type") == "object" and out[name]["properties"]:
                del out[name]["type"]  # as ES shows objects: the type only while they have no fields
        else:
            out[name] = {**existing, **spec, "fields": {**existing.get("fields", {}), **spec.get("fields", {})}}
            if not out[name]["fields"]:
                del out[name]["fields"]
    return out
