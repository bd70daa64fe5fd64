"""An EQL search request: the body and query string of ``/{target}/_eql/search``, read and
checked as Elasticsearch's ``EqlSearchRequest`` reads and checks them.

Two stages, as in Elasticsearch: the strict ``eql/search`` parser first (a value of the wrong
JSON type, or one its setter refuses, is a 400 ``x_content_parse_exception`` naming the
field, at the first such field in body order), then ``validate()``, whose problems are
reported together, numbered (``Validation Failed: 1: query is null or empty;``).

The async options (``wait_for_completion_timeout``, ``keep_alive``, ``keep_on_completion``)
are the core's (``SubmitOptions``); the body's are type-checked here so that a bad one is
refused with the parser's wording, before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ...api.xcontent import locate, token
from ...errors import BadRequest, OwnRootCause, ServiceError, ValidationError, XContentParseError
from ...params import content_int, parse_bool, parse_time_ms, query_bool

PARSER = "eql/search"
_FIELD_PARSER = "fetch_field_and_format"  # what Elasticsearch names an entry of ``fields``

# Every body field the parser declares. ``case_sensitive`` is sent by the client (the API
# specification has it) but no 8.x or 9.x parser declares it: it is accepted and ignored,
# EQL being case-sensitive but for its ``~`` forms. ``project_routing`` is serverless only,
# ``runtime_mappings`` is checked but not applied (the engine has no runtime fields): both
# accepted so that a client's request is not refused for them.
FIELDS = frozenset({
    "query", "filter", "timestamp_field", "tiebreaker_field", "event_category_field", "size", "fetch_size",
    "result_position", "fields", "runtime_mappings", "max_samples_per_key", "allow_partial_search_results",
    "allow_partial_sequence_results", "wait_for_completion_timeout", "keep_alive", "keep_on_completion",
    "case_sensitive", "project_routing",
})
RESULT_POSITIONS = ("head", "tail")


class FieldParseError(OwnRootCause, XContentParseError):
    """``[l:c] [eql/search] failed to parse field [x]``: the parser's wrapper of what the
    field's setter threw, reported as its own root cause (the cause is not an Elasticsearch
    exception), the setter's message in ``caused_by``."""


@dataclass(frozen=True)
class EqlRequest:
    query: str
    indices: tuple[str, ...]
    event_category_field: str = "event.category"
    timestamp_field: str = "@timestamp"
    tiebreaker_field: str | None = None
    size: int = 10
    fetch_size: int = 1000
    result_position: str = "tail"
    max_samples_per_key: int = 1
    filter: dict[str, Any] | None = None
    fields: tuple[Any, ...] = ()           # as given: names or {"field":..,"format":..}
    allow_partial_search_results: bool = True
    allow_partial_sequence_results: bool = False

    @classmethod
    def parse(cls, target: str, body: Mapping[str, Any], query: Mapping[str, str] | None = None,
              raw: bytes = b"") -> EqlRequest:
        """The request for ``target`` (``a,b*``) from its JSON ``body`` (its unknown fields
        already refused, see ``FIELDS``) and query string; ``raw`` is the body as sent, for the
        ``[line:column]`` of a parse error. ``allow_partial_*`` in the query string win over
        the body's. Raises the parser's error for the first bad field, then every validation
        problem at once."""
        values = {name: _READERS[name](name, value, raw) for name, value in body.items() if name in _READERS}
        values = {name: value for name, value in values.items() if value is not None}
        for name in ("allow_partial_search_results", "allow_partial_sequence_results"):
            if query is not None and name in query:
                values[name] = query_bool(query, name, False)
        _validate(values)
        return cls(indices=tuple(p.strip() for p in target.split(",") if p.strip()),
                   **{k: v for k, v in values.items() if k in _KEPT})


# --- the parser ---------------------------------------------------------------------------

def _unsupported(name: str, value: Any, raw: bytes, parser: str = PARSER) -> XContentParseError:
    return XContentParseError(f"[{locate(raw, [name])}] [{parser}] {name} doesn't support values of type: "
                              f"{token(value)}")


def _failed(name: str, raw: bytes, cause: ServiceError) -> FieldParseError:
    return FieldParseError(f"[{locate(raw, [name])}] [{PARSER}] failed to parse field [{name}]", caused_by=cause)


def _string(name: str, value: Any, raw: bytes) -> str:
    if not isinstance(value, str):
        raise _unsupported(name, value, raw)
    return value


def _int(name: str, value: Any, raw: bytes) -> int:
    """A number, or a string holding one, as ``XContentParser.intValue()`` reads it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise _unsupported(name, value, raw)
    try:
        return content_int(value)
    except ServiceError as exc:
        raise _failed(name, raw, exc) from None


def _bool(name: str, value: Any, raw: bytes) -> bool:
    if not isinstance(value, (bool, str)):
        raise _unsupported(name, value, raw)
    try:
        return parse_bool(value, name, empty_is_true=False)
    except ServiceError as exc:
        raise _failed(name, raw, exc) from None


def _time(name: str, value: Any, raw: bytes) -> None:
    """Checked only: the core reads the async options (``SubmitOptions``). Any scalar is
    read by its text, as ``TimeValue.parseTimeValue(p.text())``; null is no value."""
    if isinstance(value, (dict, list)):
        raise _unsupported(name, value, raw)
    if value is None:
        return None
    try:
        parse_time_ms(("true" if value else "false") if isinstance(value, bool) else value, name)
    except ServiceError as exc:
        raise _failed(name, raw, exc) from None
    return None


def _object(name: str, value: Any, raw: bytes) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _unsupported(name, value, raw)
    return value


def _filter(name: str, value: Any, raw: bytes) -> dict[str, Any]:
    """A Query DSL object; the query inside it is the engine's to compile (an empty one is
    refused here, as the top-level query parser refuses it before anything runs)."""
    if not _object(name, value, raw):
        raise _failed(name, raw, ServiceError(f"query malformed, empty clause found at [{locate(raw, [name])}]",
                                              status=400, type="parsing_exception"))
    return value


def _result_position(name: str, value: Any, raw: bytes) -> str:
    position = _string(name, value, raw)
    if position not in RESULT_POSITIONS:
        raise _failed(name, raw, BadRequest(f"result position needs to be 'head' or 'tail', received '{position}'"))
    return position


def _fields(name: str, value: Any, raw: bytes) -> tuple[Any, ...]:
    """Field names (a scalar is read by its text) or ``{"field", "format", "include_unmapped"}``
    objects, kept as given."""
    if not isinstance(value, list):
        raise _unsupported(name, value, raw)
    out: list[Any] = []
    for item in value:
        try:
            out.append(_field_and_format(item))
        except ServiceError as exc:
            raise _failed(name, raw, exc) from None
    return tuple(out)


def _field_and_format(item: Any) -> Any:
    if isinstance(item, str):
        return item
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, (int, float)):
        return str(item)
    if not isinstance(item, dict):
        raise XContentParseError(f"[{_FIELD_PARSER}] Expected START_OBJECT but was: {token(item)}")
    for key, entry in item.items():
        if key not in ("field", "format", "include_unmapped"):
            raise XContentParseError(f"[{_FIELD_PARSER}] unknown field [{key}]")
        allowed = (str,) if key == "field" else (str, type(None)) if key == "format" else (bool,)
        if not isinstance(entry, allowed):
            raise XContentParseError(f"[{_FIELD_PARSER}] {key} doesn't support values of type: {token(entry)}")
    if "field" not in item:
        raise BadRequest("Required [field]")
    return item


_Reader = Callable[[str, Any, bytes], Any]
_READERS: dict[str, _Reader] = {
    "query": _string, "timestamp_field": _string, "tiebreaker_field": _string, "event_category_field": _string,
    "project_routing": _string, "size": _int, "fetch_size": _int, "max_samples_per_key": _int,
    "allow_partial_search_results": _bool, "allow_partial_sequence_results": _bool, "keep_on_completion": _bool,
    "case_sensitive": _bool, "wait_for_completion_timeout": _time, "keep_alive": _time, "filter": _filter,
    "result_position": _result_position, "fields": _fields, "runtime_mappings": _object,
}
_KEPT = frozenset(EqlRequest.__dataclass_fields__) - {"indices"}


# --- validate() ---------------------------------------------------------------------------

def _validate(values: Mapping[str, Any]) -> None:
    """``EqlSearchRequest.validate()``, in its order; ``keep_alive``'s minimum is the core's
    (``SubmitOptions.parse(min_keep_alive=True)``). ``values`` holds the fields given."""
    problems = []
    if not values.get("query"):
        problems.append("query is null or empty")
    if values.get("timestamp_field") == "":
        problems.append("@timestamp field is null or empty")
    if values.get("event_category_field") == "":
        problems.append("event category field is null or empty")
    if values.get("size", 0) < 0:
        problems.append("size must be greater than or equal to 0")
    if values.get("fetch_size", 2) < 2:
        problems.append("fetch size must be greater than 1")
    problems.extend(_runtime_problems(values.get("runtime_mappings")))
    if values.get("max_samples_per_key", 1) < 1:
        problems.append("max_samples_per_key must be greater than 0")
    if problems:
        raise ValidationError(*problems)


def _runtime_problems(mappings: dict[str, Any] | None) -> list[str]:
    """The first bad runtime field, worded as ``validateRuntimeMappings`` words it."""
    for name, definition in (mappings or {}).items():
        if not isinstance(definition, dict):
            return [f"Expected map for runtime field [{name}] definition but got [String]"]
        if definition.get("type") is None:
            return [f"No type specified for runtime field [{name}]"]
    return []
