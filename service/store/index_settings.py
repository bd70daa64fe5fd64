"""Index settings as Elasticsearch reads and validates them on ``PUT /<index>``.

The ``settings`` object is flattened to dotted keys (``{"index": {"number_of_shards": 1}}`` and
``{"number_of_shards": "1"}`` both become ``index.number_of_shards``), every key is checked
against the index settings ES knows, and typed settings are parsed as ES parses them, with
ES's messages. What is stored is the flat form, values as strings (lists of strings for list
settings), exactly what ``GET /<index>`` shows.
"""

from __future__ import annotations

import re
from typing import Any, Callable

from ..errors import ServiceError, ValidationError
from ..suggest import listed, similar

PREFIX = "index."
Flat = dict[str, "str | list[str] | None"]

# Settings groups that take any key below them.
_GROUPS = ("index.analysis.", "index.similarity.", "index.routing.allocation.include.",
           "index.routing.allocation.exclude.", "index.routing.allocation.require.", "index.sort.",
           "index.lifecycle.", "index.routing.allocation.initial_recovery.")
_PRIVATE = frozenset({"index.uuid", "index.creation_date", "index.provided_name", "index.version.created",
                      "index.version.compatibility", "index.history.uuid", "index.version.upgraded",
                      "index.resize.source.name", "index.resize.source.uuid", "index.verified_before_close",
                      "index.downsample.source.name", "index.downsample.source.uuid", "index.downsample.status"})


class SettingsError(ServiceError):
    status = 400
    type = "illegal_argument_exception"


# --- value parsers (ES's Setting.intSetting, boolSetting, timeSetting, ...) ---------------


def _int(lo: int, hi: int = 2**31 - 1, bits: int = 32) -> Callable[[str, str], None]:
    top = 2**(bits - 1)

    def check(key: str, value: str) -> None:
        body = value[1:] if value[:1] in ("+", "-") else value
        if not body or not body.isascii() or not body.isdigit() or not -top <= int(value) < top:
            raise SettingsError(f"Failed to parse value [{value}] for setting [{key}]",
                                caused_by=ServiceError(f'For input string: "{value}"', status=400,
                                                       type="number_format_exception"))
        if int(value) < lo:
            raise SettingsError(f"Failed to parse value [{value}] for setting [{key}] must be >= {lo}")
        if int(value) > hi:
            raise SettingsError(f"Failed to parse value [{value}] for setting [{key}] must be <= {hi}")
    return check


def _long(lo: int) -> Callable[[str, str], None]:
    return _int(lo, 2**63 - 1, bits=64)


def _bool(key: str, value: str) -> None:
    if value not in ("true", "false"):
        raise SettingsError(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


_TIME = re.compile(r"^(-?\d+(?:\.\d+)?)\s*(nanos|micros|ms|s|m|h|d)$")


def _time(key: str, value: str) -> None:
    """``TimeValue.parseTimeValue``: ``-1``, ``0`` or a number with a unit (``30s``, ``5m``)."""
    if value in ("-1", "0"):
        return
    match = _TIME.match(value.strip().lower())
    if match is None:
        raise SettingsError(f"failed to parse setting [{key}] with value [{value}] as a time value: unit is missing "
                            "or unrecognized",
                            caused_by=ServiceError(f"failed to parse setting [{key}] with value [{value}] as a time "
                                                   "value: unit is missing or unrecognized", status=400,
                                                   type="parse_exception"))
    if float(match[1]) < 0:
        raise SettingsError(f"failed to parse setting [{key}] with value [{value}] as a time value: negative "
                            "durations are not supported")


_ANY = None
# Every index setting of Elasticsearch's IndexScopedSettings (and the common x-pack ones),
# with the parser of its value where ES checks one. Unknown keys are refused.
KNOWN: dict[str, Callable[[str, str], None] | None] = {
    "index.number_of_shards": _int(1, 1024),
    "index.number_of_replicas": _int(0),
    "index.number_of_routing_shards": _int(1, 1024),
    "index.routing_partition_size": _int(1, 1024),
    "index.auto_expand_replicas": _ANY,
    "index.refresh_interval": _time,
    "index.max_result_window": _int(1),
    "index.max_inner_result_window": _int(1),
    "index.max_rescore_window": _int(1),
    "index.max_docvalue_fields_search": _int(0),
    "index.max_script_fields": _int(0),
    "index.max_token_count": _int(1),
    "index.max_terms_count": _int(1),
    "index.max_regex_length": _int(1),
    "index.max_ngram_diff": _int(0),
    "index.max_shingle_diff": _int(0),
    "index.max_refresh_listeners": _int(0),
    "index.max_slices_per_scroll": _int(1),
    "index.max_adjacency_matrix_filters": _int(1),
    "index.highlight.max_analyzed_offset": _int(-1),
    "index.mapping.total_fields.limit": _long(0),
    "index.mapping.total_fields.ignore_dynamic_beyond_limit": _bool,
    "index.mapping.depth.limit": _long(1),
    "index.mapping.nested_fields.limit": _long(0),
    "index.mapping.nested_objects.limit": _long(0),
    "index.mapping.field_name_length.limit": _long(1),
    "index.mapping.dimension_fields.limit": _long(0),
    "index.mapping.ignore_malformed": _bool,
    "index.mapping.coerce": _bool,
    "index.mapping.source.mode": _ANY,
    "index.mapping.synthetic_source_keep": _ANY,
    "index.mapping.ignore_above": _int(0),
    "index.hidden": _bool,
    "index.blocks.read_only": _bool,
    "index.blocks.read": _bool,
    "index.blocks.write": _bool,
    "index.blocks.metadata": _bool,
    "index.blocks.read_only_allow_delete": _bool,
    "index.priority": _int(0),
    "index.codec": _ANY,
    "index.mode": _ANY,
    "index.routing_path": _ANY,
    "index.time_series.start_time": _ANY,
    "index.time_series.end_time": _ANY,
    "index.look_ahead_time": _ANY,
    "index.look_back_time": _ANY,
    "index.default_pipeline": _ANY,
    "index.final_pipeline": _ANY,
    "index.write.wait_for_active_shards": _ANY,
    "index.translog.durability": _ANY,
    "index.translog.sync_interval": _time,
    "index.translog.flush_threshold_size": _ANY,
    "index.translog.flush_threshold_age": _time,
    "index.translog.generation_threshold_size": _ANY,
    "index.translog.retention.age": _time,
    "index.translog.retention.size": _ANY,
    "index.flush_after_merge": _ANY,
    "index.gc_deletes": _time,
    "index.soft_deletes.enabled": _bool,
    "index.soft_deletes.retention.operations": _long(0),
    "index.soft_deletes.retention_lease.period": _time,
    "index.search.idle.after": _time,
    "index.search.throttled": _bool,
    "index.search.slowlog.threshold.query.warn": _time,
    "index.search.slowlog.threshold.query.info": _time,
    "index.search.slowlog.threshold.query.debug": _time,
    "index.search.slowlog.threshold.query.trace": _time,
    "index.search.slowlog.threshold.fetch.warn": _time,
    "index.search.slowlog.threshold.fetch.info": _time,
    "index.search.slowlog.threshold.fetch.debug": _time,
    "index.search.slowlog.threshold.fetch.trace": _time,
    "index.search.slowlog.include.user": _bool,
    "index.search.slowlog.level": _ANY,
    "index.indexing.slowlog.threshold.index.warn": _time,
    "index.indexing.slowlog.threshold.index.info": _time,
    "index.indexing.slowlog.threshold.index.debug": _time,
    "index.indexing.slowlog.threshold.index.trace": _time,
    "index.indexing.slowlog.reformat": _bool,
    "index.indexing.slowlog.source": _ANY,
    "index.indexing.slowlog.include.user": _bool,
    "index.indexing.slowlog.level": _ANY,
    "index.merge.scheduler.auto_throttle": _bool,
    "index.merge.scheduler.max_merge_count": _int(1),
    "index.merge.scheduler.max_thread_count": _int(1),
    "index.merge.policy.type": _ANY,
    "index.merge.policy.deletes_pct_allowed": _ANY,
    "index.merge.policy.expunge_deletes_allowed": _ANY,
    "index.merge.policy.floor_segment": _ANY,
    "index.merge.policy.max_merge_at_once": _int(2),
    "index.merge.policy.max_merge_at_once_explicit": _int(2),
    "index.merge.policy.max_merged_segment": _ANY,
    "index.merge.policy.segments_per_tier": _ANY,
    "index.merge.policy.merge_factor": _int(2),
    "index.compound_format": _ANY,
    "index.warmer.enabled": _bool,
    "index.fast_refresh": _bool,
    "index.query.default_field": _ANY,
    "index.query_string.lenient": _bool,
    "index.query.parse.allow_unmapped_fields": _bool,
    "index.shard.check_on_startup": _ANY,
    "index.requests.cache.enable": _bool,
    "index.queries.cache.enabled": _bool,
    "index.fielddata.cache": _ANY,
    "index.store.type": _ANY,
    "index.store.preload": _ANY,
    "index.store.stats_refresh_interval": _time,
    "index.store.fs.fs_lock": _ANY,
    "index.recovery.type": _ANY,
    "index.load_fixed_bitset_filters_eagerly": _bool,
    "index.unassigned.node_left.delayed_timeout": _time,
    "index.routing.rebalance.enable": _ANY,
    "index.routing.allocation.enable": _ANY,
    "index.routing.allocation.total_shards_per_node": _int(-1),
    "index.routing.allocation.disk.watermark.ignore": _bool,
    "index.allocation.max_retries": _int(0),
    "index.allocation.existing_shards_allocator": _ANY,
    "index.shard_limit.group": _ANY,
    "index.bloom_filter_for_id_field.enabled": _bool,
    "index.optimize_auto_generated_id": _bool,
    "index.force_memory_term_dictionary": _bool,
    "index.format": _int(0),
    "index.data_path": _ANY,
    "index.rollup.source.name": _ANY,
    "index.rollup.source.uuid": _ANY,
    "index.time_series.es87tsdb_codec.enabled": _bool,
    "index.frozen": _bool,
    "index.xpack.version": _ANY,
}


# --- flattening ----------------------------------------------------------------------------


def flatten_settings(settings: dict[str, Any]) -> Flat:
    """``Settings.builder().loadFromMap(...).normalizePrefix("index.")``, iteratively (a hostile
    body may nest a thousand levels)."""
    flat: Flat = {}
    stack: list[tuple[str, Any]] = [("", settings)]
    while stack:
        prefix, node = stack.pop()
        for key, value in reversed(list(node.items())):
            path = prefix + key
            if isinstance(value, dict):
                stack.append((path + ".", value))
            elif isinstance(value, list):
                if any(isinstance(item, (dict, list)) or item is None for item in value):
                    raise ServiceError("only value lists are allowed in serialized settings", status=400,
                                       type="illegal_state_exception")
                flat[path] = [_text(item) for item in value]
            else:
                flat[path] = None if value is None else _text(value)
    return {(key if key.startswith(PREFIX) else PREFIX + key): value for key, value in sorted(flat.items())}


def _text(value: Any) -> str:
    """A value as ES's settings parser reads it: the JSON token's text."""
    if value is True or value is False:
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


# --- validation ----------------------------------------------------------------------------


def validate_settings(settings: Any) -> Flat:
    """The flat, validated form of a create-index ``settings`` object, or ES's error: the
    first bad key in key order (ES validates in that order), then private settings."""
    if not isinstance(settings, dict):
        raise ServiceError("key [settings] must be an object", status=400, type="parse_exception")
    flat = flatten_settings(settings)
    for key, value in flat.items():
        if key in _PRIVATE or any(key.startswith(group) for group in _GROUPS):
            continue
        if key not in KNOWN:
            raise SettingsError(_unknown(key))
        check = KNOWN[key]
        if check is not None and value is not None:
            for item in value if isinstance(value, list) else [value]:
                check(key, item)
    private = [key for key in flat if key in _PRIVATE]
    if private:
        error = ValidationError(*[f"private index setting [{key}] can not be set explicitly" for key in private])
        error.type = "validation_exception"
        raise error
    return {key: value for key, value in flat.items() if value is not None}


def _unknown(key: str) -> str:
    """ES's message, with its suggestions: known keys more than 70% similar, most similar first."""
    names = similar(key, sorted(KNOWN), 0.7, strictly=True)
    if not names:
        return (f"unknown setting [{key}] please check that any required plugins are installed, or check the "
                "breaking changes documentation for removed settings")
    return f"unknown setting [{key}] did you mean {listed(names)}?"


# --- reading them back -----------------------------------------------------------------------


def stored_settings(raw: Any) -> Flat:
    """The flat form of settings as stored, tolerating rows written before settings were
    validated (nested objects, numbers, even a bare string)."""
    if not isinstance(raw, dict):
        return {}
    try:
        return {key: value for key, value in flatten_settings(raw).items() if value is not None}
    except ServiceError:
        return {}


def setting_int(settings: Flat, key: str, default: int) -> int:
    """A validated integer setting, or ``default`` when it is absent."""
    value = settings.get(key)
    return int(value) if isinstance(value, str) else default


def setting_bool(settings: Flat, key: str, default: bool) -> bool:
    value = settings.get(key)
    return value == "true" if isinstance(value, str) else default


def nested(flat: Flat) -> dict[str, Any]:
    """``{"index.a.b": "1"}`` as ES prints settings without ``flat_settings``: ``{"index": {"a": {"b": "1"}}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node, parts = out, key.split(".")
        while len(parts) > 1 and isinstance(node.setdefault(parts[0], {}), dict):
            node = node[parts.pop(0)]
        node[".".join(parts)] = value  # where "a" and "a.b" are both set, the rest stays dotted
    return out
