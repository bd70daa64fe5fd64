"""Checking a mapping as Elasticsearch's mapping parser does, before anything is stored.

``parse_mapping`` takes the ``mappings`` object of ``PUT /<index>`` or ``PUT /<index>/_mapping``
and returns the form that is stored and shown: parameter values ES coerces (``"12"`` for an
integer, ``"true"`` for a boolean, a number for a string) in their parsed type, dotted field
names expanded into objects, empty ``fields``/``properties`` lists dropped. A mapping ES
would reject raises ES's error:

- problems ES's parser reports itself (an unknown type or parameter, a missing type) are
  ``mapper_parsing_exception`` with ES's reason;
- a value that ES's value parsers reject (a boolean parameter given ``"abc"``, an integer one
  given ``"x"``) is ``mapper_parsing_exception`` ``Failed to parse mapping: <reason>`` caused
  by the parser's own error, as ES wraps it.

``check_limits`` applies ``index.mapping.total_fields.limit`` and ``index.mapping.depth.limit``
to a whole (merged) mapping, as ES does after parsing.
"""

from __future__ import annotations

import math
from typing import Any, Callable

from ..errors import MapperParsingError, ServiceError
from .java_values import (
    java_class, java_double, java_str, number_format, parse_java_boolean, parse_java_double, parse_java_int,
    simple_class,
)
from .mapping import (
    ALL_TYPES, COMMON_PARAMS, INTEGER_RANGES, LEAF_TYPES, METADATA_FIELDS, OBJECT_PARAMS, OBJECT_TYPES,
    ROOT_PARAMS, TYPE_PARAMS, ValueConversionError, converter,
)

FIELDS_LIMIT = 1000  # index.mapping.total_fields.limit
DEPTH_LIMIT = 20  # index.mapping.depth.limit
# Mappings are stored and served as JSON, whose encoder stops at 254 levels; an object
# level costs two ("b": {"properties": ...}), so deeper mappings could not be shown.
MAX_DEPTH_LIMIT = 100
MAX_JSON_DEPTH = 240

_BOOL_PARAMS = frozenset({
    "index", "doc_values", "store", "ignore_malformed", "coerce", "norms", "eager_global_ordinals",
    "index_phrases", "fielddata", "split_queries_on_whitespace", "ignore_z_value", "time_series_dimension",
})
_INT_PARAMS = frozenset({"ignore_above", "position_increment_gap", "dims"})
_DOUBLE_PARAMS = frozenset({"scaling_factor", "boost"})
_STRING_PARAMS = frozenset({
    "analyzer", "search_analyzer", "search_quote_analyzer", "normalizer", "similarity", "format", "locale",
    "index_options", "term_vector", "element_type", "time_series_metric", "on_script_error", "orientation",
    "default_metric", "print_format", "value", "path", "synthetic_source_keep",
})


# --- value parsers, with the errors ES's parsers raise ----------------------------------


def _failed(cause: ServiceError) -> MapperParsingError:
    return MapperParsingError(f"Failed to parse mapping: {cause.reason}", caused_by=cause)


def _named_boolean(name: str, value: Any) -> bool:
    """``nodeBooleanValue(node, name)``: ES names the parameter when a boolean does not parse."""
    try:
        return parse_java_boolean(value)
    except ServiceError as cause:
        raise _failed(ServiceError(f"Could not convert [{name}] to boolean", status=400,
                                   type="illegal_argument_exception", caused_by=cause)) from None


# --- the parser --------------------------------------------------------------------------


class MappingParser:
    """One parse of one ``mappings`` object, with the index's depth limit."""

    def __init__(self, depth_limit: int = DEPTH_LIMIT) -> None:
        self.depth_limit = depth_limit

    def parse(self, mapping: Any) -> dict[str, Any]:
        if not isinstance(mapping, dict):
            raise MapperParsingError("Failed to parse mapping: Expected map for property [mappings] on field "
                                     "[mappings] but got a class java.lang.String")
        out: dict[str, Any] = {}
        for key, value in mapping.items():
            if key not in ROOT_PARAMS:
                raise MapperParsingError(f"Root mapping definition has unsupported parameters:  [{key} : "
                                         f"{java_str(value)}]")
            if key in ("date_detection", "numeric_detection"):
                out[key] = _named_boolean(key, value)
            elif key not in ("properties", "dynamic", "enabled", "subobjects"):
                out[key] = value
        self._object_params(mapping, out, "")
        return out

    def _object_params(self, spec: dict[str, Any], out: dict[str, Any], path: str) -> None:
        """``dynamic``, ``enabled``, ``subobjects``, ``properties`` of an object or the root."""
        if "dynamic" in spec:
            out["dynamic"] = _dynamic(spec["dynamic"])
        if "enabled" in spec:
            out["enabled"] = _named_boolean("enabled.enabled", spec["enabled"])
        if "subobjects" in spec:
            out["subobjects"] = _subobjects(spec["subobjects"])
        if "properties" in spec:
            properties = spec["properties"]
            if isinstance(properties, list) and not properties:
                return  # ES accepts [] for an empty map (for clients that cannot send one)
            if not isinstance(properties, dict):
                raise _failed(ServiceError("properties must be a map type", status=400, type="parse_exception"))
            out["properties"] = self._properties(properties, path)

    def _properties(self, properties: dict[str, Any], prefix: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, spec in properties.items():
            if isinstance(spec, list) and not spec:
                continue
            parts = _split_name(name)
            if not isinstance(spec, dict):
                raise MapperParsingError(f"Expected map for property [fields] on field [{name}] but got a "
                                         f"class java.lang.String")
            # "a.b": {...} is the object a holding b, as ES expands it
            node, path = out, prefix
            for part in parts[:-1]:
                path = f"{path}.{part}" if path else part
                self._check_depth(path)
                holder = node.setdefault(part, {"properties": {}})
                if _type_of(holder) not in OBJECT_TYPES:
                    raise _conflict(path, _type_of(holder), "object")
                node = holder.setdefault("properties", {})
            leaf = parts[-1]
            path = f"{path}.{leaf}" if path else leaf
            parsed = self._field(leaf, path, spec)
            previous = node.get(leaf)
            if previous is not None:  # "a.b" and "a" in one properties object
                if _type_of(previous) not in OBJECT_TYPES or _type_of(parsed) not in OBJECT_TYPES:
                    raise _conflict(path, _type_of(previous), _type_of(parsed))
                parsed = {**previous, **parsed, "properties": {**previous.get("properties", {}),
                                                               **parsed.get("properties", {})}}
            node[leaf] = parsed
        return out

    def _field(self, name: str, path: str, spec: dict[str, Any]) -> dict[str, Any]:
        if path in METADATA_FIELDS:
            raise MapperParsingError(f"Field [{path}] is defined more than once")
        type_node = spec.get("type")
        if type_node is not None:
            type_ = java_str(type_node)
        elif spec.get("properties") is not None or (len(spec) == 1 and spec.get("enabled") is not None):
            type_ = "object"
        else:
            raise MapperParsingError(f"No type specified for field [{name}]")
        if type_ not in ALL_TYPES:
            raise MapperParsingError(f"No handler for type [{type_}] declared on field [{name}]")
        if type_ in OBJECT_TYPES:
            return self._object(name, path, type_, spec)
        if type_ == "alias":
            return _alias(path, spec)
        return _leaf(path, type_, spec, multi_field=False)

    def _object(self, name: str, path: str, type_: str, spec: dict[str, Any]) -> dict[str, Any]:
        self._check_depth(path)
        params: dict[str, Any] = {}
        for key, value in spec.items():
            if key not in OBJECT_PARAMS or (key.startswith("include_in_") and type_ != "nested"):
                raise MapperParsingError(f"Mapping definition for [{name}] has unsupported parameters:  "
                                         f"[{key} : {java_str(value)}]")
            if key.startswith("include_in_"):
                params[key] = _named_boolean(f"{name}.{key}", value)
        self._object_params(spec, params, path)
        # as ES prints objects: the type only for nested ones and for objects without fields
        return {"type": type_, **params} if type_ == "nested" or "properties" not in params else params

    def _check_depth(self, path: str) -> None:
        check_object_depth(path, self.depth_limit)


def parse_mapping(mapping: Any, *, depth_limit: int = DEPTH_LIMIT) -> dict[str, Any]:
    """The stored form of a ``mappings`` object, or ES's error for it (see the module doc)."""
    parsed = MappingParser(depth_limit).parse(mapping)
    if json_depth(parsed, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        # ES would keep it (its parser allows 1000 levels), but it could not be stored or shown here
        raise MapperParsingError(f"Failed to parse mapping: the mapping is nested deeper than [{MAX_JSON_DEPTH}] "
                                 "levels")
    return parsed


def check_object_depth(path: str, limit: int) -> None:
    """``index.mapping.depth.limit``: the root counts 1 and each object below it one more
    (object ``a.b`` is at depth 3)."""
    limit = min(limit, MAX_DEPTH_LIMIT)
    if path.count(".") + 2 > limit:
        raise ServiceError(f"Limit of mapping depth [{limit}] has been exceeded due to object field [{path}]",
                           status=400, type="illegal_argument_exception")


def json_depth(value: Any, stop: int) -> int:
    """How deeply ``value`` nests (a scalar is 0, ``[]`` is 1), counting no further than ``stop + 1``."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if depth > stop:
            return depth
        stack.extend((child, depth + 1) for child in children)
    return deepest


def _split_name(name: str) -> list[str]:
    if not name:
        raise _failed(ServiceError("field name cannot be an empty string", status=400,
                                   type="illegal_argument_exception"))
    parts = name.split(".")
    while parts and parts[-1] == "":
        parts.pop()  # as Java's String.split drops trailing empty strings
    if not parts:
        raise _failed(ServiceError("field name cannot contain only dots", status=400,
                                   type="illegal_argument_exception"))
    for part in parts:
        if not part:
            raise _failed(ServiceError("field name cannot be an empty string", status=400,
                                       type="illegal_argument_exception"))
        if part.isspace():
            raise _failed(ServiceError("field name cannot contain only whitespaces", status=400,
                                       type="illegal_argument_exception"))
    return parts


def _type_of(spec: dict[str, Any]) -> str:
    return spec.get("type", "object")


def _conflict(path: str, old: str, new: str) -> ServiceError:
    return ServiceError(f"mapper [{path}] cannot be changed from type [{old}] to [{new}]", status=400,
                        type="illegal_argument_exception")


def _dynamic(value: Any) -> Any:
    text = java_str(value)
    if text.lower() in ("strict", "runtime"):
        return text.lower()
    if isinstance(value, bool):
        return value
    # ES names the parameter "dynamic.dynamic" here (its field name plus ".dynamic")
    _named_boolean("dynamic.dynamic", value)
    return text


def _subobjects(value: Any) -> Any:
    text = java_str(value).lower()
    if text not in ("true", "false", "auto"):
        raise _failed(ServiceError(f"unknown subobjects value: {java_str(value)}", status=400,
                                   type="illegal_argument_exception"))
    return value if isinstance(value, bool) else text


def _alias(path: str, spec: dict[str, Any]) -> dict[str, Any]:
    for key in spec:
        if key not in ("type", "path"):
            raise MapperParsingError(f"unknown parameter [{key}] on mapper [{path}] of type [alias]")
    if spec.get("path") is None:
        raise MapperParsingError(f"The [path] property must be specified for field [{path}].")
    return {"type": "alias", "path": java_str(spec["path"])}


def _leaf(path: str, type_: str, spec: dict[str, Any], *, multi_field: bool) -> dict[str, Any]:
    allowed = COMMON_PARAMS | TYPE_PARAMS.get(type_, set())
    out: dict[str, Any] = {"type": type_}
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in allowed:
            raise MapperParsingError(f"unknown parameter [{key}] on mapper [{path}] of type [{type_}]")
        if value is None and key != "null_value":
            raise MapperParsingError(f"[{key}] on mapper [{path}] of type [{type_}] must not have a [null] value")
        parsed = _param(path, type_, key, value, multi_field)
        if parsed is not _DROP:
            out[key] = parsed
    if type_ == "scaled_float" and "scaling_factor" not in out:
        raise _failed(ServiceError("Field [scaling_factor] is required", status=400, type="illegal_argument_exception"))
    if out.get("null_value") is not None:
        _check_null_value(type_, out)
    if type_ in ("date", "date_nanos") and "format" in out:
        _check_date_format(path, out["format"])
    return out


_DROP = object()


def _param(path: str, type_: str, key: str, value: Any, multi_field: bool) -> Any:
    parse = _PARAM_PARSERS.get(key)
    if key == "fields":
        return _multi_fields(path, value, multi_field)
    if key == "meta":
        return _meta(path, value)
    if key == "copy_to":
        return [java_str(v) for v in value] if isinstance(value, list) else java_str(value)
    if key == "null_value":
        return value if value is None or type_ not in ("keyword", "constant_keyword", "wildcard", "text",
                                                       "date", "date_nanos", "ip", "version") else java_str(value)
    if key == "scaling_factor":
        factor = _guard(parse_java_double, value)
        if not math.isfinite(factor) or factor <= 0:
            raise _failed(ServiceError(f"[scaling_factor] must be a positive number, got [{java_double(factor)}]",
                                       status=400, type="illegal_argument_exception"))
        return factor
    if parse is not None:
        return _guard(parse, value)
    return value  # structured parameters (script, metrics, index_prefixes, ...) are kept as sent


def _guard(parse: Callable[[Any], Any], value: Any) -> Any:
    try:
        return parse(value)
    except ServiceError as cause:
        raise _failed(cause) from None


_PARAM_PARSERS: dict[str, Callable[[Any], Any]] = {
    **{name: parse_java_boolean for name in _BOOL_PARAMS},
    **{name: parse_java_int for name in _INT_PARAMS},
    **{name: parse_java_double for name in _DOUBLE_PARAMS},
    **{name: java_str for name in _STRING_PARAMS},
}


def _multi_fields(path: str, value: Any, within_multi_field: bool) -> Any:
    if within_multi_field:
        raise _failed(ServiceError(f"Encountered a multi-field [{path}] which itself contains a multi-field. "
                                   "Defining chained multi-fields is not supported.", status=400,
                                   type="illegal_argument_exception"))
    if isinstance(value, list) and not value:
        return _DROP
    if not isinstance(value, dict):
        raise MapperParsingError(f"expected map for property [fields] on field [{java_str(value)}] or [fields] "
                                 f"but got a class {java_class(value)}")
    out = {}
    for name, spec in value.items():
        if "." in name:
            raise MapperParsingError(f"Field name [{name}] which is a multi field of [{path}] cannot contain '.'")
        if not isinstance(spec, dict):
            raise MapperParsingError(f"illegal field [{name}], only fields can be specified inside fields")
        if spec.get("type") is None:
            raise MapperParsingError(f"no type specified for property [{name}]")
        sub_type = java_str(spec["type"])
        if sub_type in OBJECT_TYPES or sub_type == "alias":
            raise MapperParsingError(f"Type [{sub_type}] cannot be used in multi field")
        if sub_type not in LEAF_TYPES:
            raise MapperParsingError(f"no handler for type [{sub_type}] declared on field [{name}]")
        out[name] = _leaf(f"{path}.{name}", sub_type, spec, multi_field=True)
    return out


def _meta(path: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        raise MapperParsingError(f"[meta] must be an object, got {simple_class(value)}[{java_str(value)}] for "
                                 f"field [{path}]")
    if len(value) > 5:
        raise MapperParsingError(f"[meta] can't have more than 5 entries, but got {len(value)} on field [{path}]")
    for key in value:
        if len(key) > 20:
            raise MapperParsingError(f"[meta] keys can't be longer than 20 chars, but got [{key}] for field [{path}]")
    for entry in value.values():
        if entry is None:
            raise MapperParsingError(f"[meta] values can't be null (field [{path}])")
        if not isinstance(entry, str):
            raise MapperParsingError(f"[meta] values can only be strings, but got {simple_class(entry)}"
                                     f"[{java_str(entry)}] for field [{path}]")
        if len(entry) > 50:
            raise MapperParsingError(f"[meta] values can't be longer than 50 chars, but got [{entry}] for field "
                                     f"[{path}]")
    return value


def _check_null_value(type_: str, spec: dict[str, Any]) -> None:
    value = spec["null_value"]
    if type_ == "boolean":
        spec["null_value"] = _guard(parse_java_boolean, value)
        return
    if isinstance(value, (dict, list, bool)) and (type_ in INTEGER_RANGES or type_ in ("float", "double",
                                                                                        "half_float", "scaled_float")):
        raise _failed(number_format(java_str(value)))
    try:
        converter(type_, spec)(value)
    except ValueConversionError as exc:
        raise MapperParsingError(f"Failed to parse mapping: {exc}") from None


# The pattern letters of Java's DateTimeFormatter; any other letter is an error there.
_JAVA_PATTERN_LETTERS = frozenset("GuyDMLdQqYwWEecFaBhKkHmsSAnNVvzOXxZp")


def _check_date_format(path: str, fmt: str) -> None:
    """A date ``format`` as ``DateFormatter.forPattern`` reads it: named formats or Java
    patterns joined by ``||``."""
    from .dates import _NAMED

    for part in fmt.split("||"):
        if part.strip() in _NAMED or part.strip() in ("epoch_millis", "epoch_second"):
            continue
        problem = _java_pattern_problem(part)
        if problem:
            reason = f"Error parsing [format] on field [{path.rpartition('.')[2]}]: Invalid format: [{fmt}]: {problem}"
            raise _failed(ServiceError(reason, status=400, type="illegal_argument_exception"))


def _java_pattern_problem(pattern: str) -> str | None:
    quoted = False
    for c in pattern:
        if c == "'":
            quoted = not quoted
        elif quoted:
            continue
        elif c in "{}#":
            return f"Pattern includes reserved character: '{c}'"
        elif c.isascii() and c.isalpha() and c not in _JAVA_PATTERN_LETTERS:
            return f"Unknown pattern letter: {c}"
    return None


# --- limits on a whole mapping -------------------------------------------------------


def count_fields(mapping: dict[str, Any]) -> int:
    """ES's total field count: every object, leaf, multi-field, alias and runtime field."""
    total = len(mapping.get("runtime") or {}) if isinstance(mapping.get("runtime"), dict) else 0
    stack = [mapping.get("properties", {})]
    while stack:
        for spec in stack.pop().values():
            total += 1 + len(spec.get("fields") or {})
            if "properties" in spec:
                stack.append(spec["properties"])
    return total


def check_limits(mapping: dict[str, Any], *, fields_limit: int = FIELDS_LIMIT,
                 depth_limit: int = DEPTH_LIMIT) -> None:
    """ES's checks of a whole (merged) mapping: field aliases, then the total field limit,
    then the object depth limit."""
    check_aliases(mapping)
    if count_fields(mapping) > fields_limit:
        raise ServiceError(f"Limit of total fields [{fields_limit}] has been exceeded", status=400,
                           type="illegal_argument_exception")
    stack = [(mapping.get("properties", {}), "")]
    while stack:
        properties, prefix = stack.pop()
        for name, spec in properties.items():
            if _type_of(spec) in OBJECT_TYPES:
                path = prefix + name
                check_object_depth(path, depth_limit)
                stack.append((spec.get("properties", {}), path + "."))


def check_aliases(mapping: dict[str, Any]) -> None:
    """Every field alias must point at a field of the mapping that is not an alias."""
    fields: dict[str, str] = {}
    aliases: list[tuple[str, str]] = []
    stack = [(mapping.get("properties", {}), "")]
    while stack:
        properties, prefix = stack.pop()
        for name, spec in properties.items():
            path, type_ = prefix + name, _type_of(spec)
            if type_ in OBJECT_TYPES:
                stack.append((spec.get("properties", {}), path + "."))
                continue
            fields[path] = type_
            fields.update({f"{path}.{sub}": "multi-field" for sub in spec.get("fields") or {}})
            if type_ == "alias":
                aliases.append((path, spec["path"]))
    for path, target in sorted(aliases):
        problem = ("an alias cannot refer to itself." if target == path else
                   "an alias must refer to an existing field in the mappings." if target not in fields else
                   "an alias cannot refer to another alias." if fields[target] == "alias" else None)
        if problem:
            raise MapperParsingError(f"Invalid [path] value [{target}] for field alias [{path}]: {problem}")
