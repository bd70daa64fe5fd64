"""Hypothesis strategies for hostile HTTP requests, one per route of ``service/app.py``.

A drawn ``FuzzRequest`` is a route (method and path template), raw path parameters, query
parameters, headers and body bytes. Values that exist only once the server runs (its node
id, a stored async search id) are written as placeholders (``{node}``, ``{async_id}``) and
filled in just before the request is sent, so failures print and shrink as plain text.

``ROUTES`` maps every ``(method, template)`` to the body its handler reads; path
parameters are drawn by name (``PATH_PARAMS``, with per-route overrides), query
parameters by the names the handler accepts (its ``es_params``), each name through
``QUERY_PARAM_KINDS``. A route, path parameter or query parameter with no strategy is a
failure of ``test_every_route_has_a_strategy``, so nothing new escapes the suite.
"""

from __future__ import annotations

import dataclasses
import gzip
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from hypothesis import strategies as st

from fuzz_values import (BODY_SIZES, DEPTHS, MALFORMED, MAX_LINE_BYTES, QUERY_PARAM_KINDS, Raw, alternating_stars,
                         async_ids, bad_bools, deep_document, deep_json, doc_ids, dumps, field_names, floats,
                         index_names, ints, json_bodies, json_values, many_stars, padded_document, patterns,
                         query_pairs, repeated, scalars, task_ids, texts, time_values, truncations, wide_document)

# --- bodies per route -----------------------------------------------------------------------

def objects(fields: dict[str, st.SearchStrategy[Any]], unknown: bool = True) -> st.SearchStrategy[Any]:
    """A JSON object of some of ``fields`` (each also drawn as any JSON value: wrong types),
    and now and then an unknown field."""
    typed = {name: strategy | json_values for name, strategy in fields.items()}
    known = st.fixed_dictionaries({}, optional=typed)
    if not unknown:
        return known
    extra = st.dictionaries(st.sampled_from(["unknown", "foo", "", "query ", "_source"]) | field_names,
                            json_values, max_size=1)
    return st.builds(lambda a, b: {**b, **a}, known, extra | st.just({}) | st.just({}))


dsl_leaf = st.one_of(
    st.just({"match_all": {}}),
    st.builds(lambda f, bounds: {"range": {f: bounds}}, st.sampled_from(["n", "ts", "@timestamp", "k", "nope"]),
              st.dictionaries(st.sampled_from(["gte", "gt", "lte", "lt", "format", "time_zone", "boost", "from"]),
                              json_values, max_size=3)),
    st.builds(lambda f, v: {"term": {f: v}}, st.sampled_from(["n", "k", "t", "o", ""]), json_values),
    st.builds(lambda f, v: {"match": {f: v}}, st.sampled_from(["t", "k", "n"]), json_values),
    st.builds(lambda f: {"exists": {"field": f}}, json_values),
    st.builds(lambda name, v: {name: v}, st.sampled_from(["nope_query", "match_all", "bool", "script", "wildcard",
                                                        "regexp", "query_string", "ids"]), json_values),
)
def _bool_query(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.builds(lambda occur, queries: {"bool": {occur: queries}},
                     st.sampled_from(["must", "filter", "should", "must_not", "nope"]),
                     st.lists(inner, max_size=3) | inner)


dsl = st.recursive(dsl_leaf, _bool_query, max_leaves=6)

FUNCTION_CALLS = ["ROUND(123, {i})", "ROUND(n, {i})", "REPEAT(\"x\", {i})", "BUCKET(n, {i})", "LEFT(\"abc\", {i})",
                  "SUBSTRING(\"abc\", {i}, {i})", "POW(10, {i})", "POW({i}, {i})", "{i} / 0", "{i} % 0",
                  "{i} * {i}", "ABS({i})", "TO_INTEGER({i})", "TO_DATETIME({i})", "DATE_EXTRACT(\"year\", {i})",
                  "MV_SLICE([1,2,3], {i}, {i})", "LOG({i}, {i})", "SPACE({i})", "TO_STRING({i})",
                  "DATE_TRUNC({i} days, NOW())", "LOCATE(\"abc\", \"b\", {i})", "SQRT({i})", "EXP({i})"]
function_calls = st.builds(lambda template, i: template.replace("{i}", str(i)), st.sampled_from(FUNCTION_CALLS), ints)
ESQL_FIXED = [
    "ROW a = ROUND(123, -99999999)",
    "ROW a = REPEAT(\"x\", 300000000)",
    "ROW a = \"aaaaaaaaaaaaaaaaaaaaaaaaaa\" | WHERE a RLIKE \"(a|a)*b\"",
    "ROW a = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\" | WHERE a LIKE \"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b\"",
    "ROW a = \"aaaaaaaaaaaaaaaaaaaaaaaaaa!\" | GROK a \"(?<x>(a|a)*b)\"",
    "ROW a = \"x\" | GROK a \"%{NOPE:x}\"",
    "ROW a = \"1 2\" | DISSECT a \"%{x} %{y}\"",
    "FROM fuzz | MV_EXPAND k | MV_EXPAND k | MV_EXPAND k",
    "FROM fuzz | STATS c = COUNT(*) BY b = BUCKET(n, 0)",
    "FROM fuzz | STATS p = PERCENTILE(n, 500)",
    "FROM fuzz | STATS p = PERCENTILE(n, -1)",
    "FROM fuzz | LIMIT 99999999999999999999",
    "FROM fuzz | LIMIT -1",
    "FROM fuzz | SORT n | LIMIT 9223372036854775807",
    "FROM fuzz, fuzz-b | KEEP n",
    "FROM * | STATS COUNT(*)",
    "FROM fuzz METADATA _id, _index, _version",
    "ROW a = 99999999999999999999999999",
    "ROW a = 1e999",
    "ROW a = 9223372036854775807 + 1",
    "ROW a = -9223372036854775808 - 1",
    "ROW a = ?",
    "ROW a = ?1, b = ?2",
    "ROW a = ?x",
    "SHOW INFO",
    "ROW a = TO_DATETIME(\"9999999-01-01\")",
    "FROM fuzz | WHERE t LIKE \"*\" | EVAL x = CONCAT(t, t, t)",
    "FROM fuzz | EVAL x = n::datetime",
    "FROM fuzz | WHERE o.x > 0 | KEEP o.*",
    "FROM fuzz | RENAME n AS t",
    "FROM fuzz | DROP *",
    "FROM fuzz | KEEP `n`",
]
esql_queries = st.one_of(
    st.sampled_from(ESQL_FIXED),
    st.builds(lambda call: f"ROW a = {call}", function_calls),
    st.builds(lambda call: f"FROM fuzz | EVAL a = {call} | KEEP a", function_calls),
    st.builds(lambda p: f"FROM {p} | LIMIT 1", patterns),
    st.builds(lambda n: "ROW a = " + "(" * n + "1" + ")" * n, st.sampled_from([10, 100, 500, 1000, 2000, 5000])),
    st.builds(lambda n: "ROW a = 1" + " + 1" * n, st.sampled_from([10, 1000, 5000, 20000])),
    st.builds(lambda n: "ROW a = 1" + " | EVAL a = a + 1" * n, st.sampled_from([10, 200, 1000])),
    st.builds(lambda s: f'ROW a = "{s}"', texts),
    st.builds(lambda s: f'ROW a = "aaaaaaaaaaaaaaaaaaaaaaaaaa" | WHERE a RLIKE "{s}"',
              st.sampled_from(["(a+)+b", "(a|aa)*c", "(.*)*x", "a{1,99999}", "[", "(", "\\", "a{99999999}",
                               "(a*)*(b*)*c", "((a?){20})a{20}"]) | texts),
    st.builds(lambda s: f'ROW a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" | WHERE a LIKE "{s}"',
              many_stars | alternating_stars | texts),
    texts,
)
esql_params = st.lists(json_values, max_size=3) | st.lists(
    st.dictionaries(st.sampled_from(["x", "1", "", "a b", "_x"]) | st.text(max_size=3), json_values, min_size=1,
                    max_size=2), max_size=3)
ESQL_FIELDS = {
    "query": esql_queries, "columnar": st.booleans(), "params": esql_params, "filter": dsl,
    "locale": texts, "time_zone": texts, "profile": st.booleans(), "include_ccs_metadata": st.booleans(),
    "include_execution_metadata": st.booleans(), "tables": json_values, "settings": json_values,
    "project_routing": texts, "pragma": json_values, "accept_pragma_risks": st.booleans(),
}
ASYNC_ESQL_FIELDS = {**ESQL_FIELDS, "wait_for_completion_timeout": time_values | ints,
                     "keep_alive": time_values | ints, "keep_on_completion": st.booleans() | bad_bools}
# A query always present: without one, every body stops at the first check.
esql_body = st.builds(lambda q, rest: {"query": q, **rest}, esql_queries, objects(ESQL_FIELDS))
async_esql_body = st.builds(lambda q, rest: {"query": q, **rest}, esql_queries, objects(ASYNC_ESQL_FIELDS))

# EQL: valid queries over the fuzz index, each construct once, and hostile ones.
EQL_FIXED = [
    "any where true", "any where n > 1 | head 2 | tail 1", 'any where t : "a*"', 'any where t like~ "A?"',
    "any where n in (1, 2, 3) and not t == null", "sequence [any where true] [any where n > 0]",
    "sequence by t with maxspan=1s [any where true] ![any where n == 2] [any where true] until [any where n < 0]",
    "sample by t [any where true] [any where true]", "any where ?nope == 1", "any where n == t",
    "any where string(n) == \"1\"", "any where length(t) > 99999999999999999999", "join [a where true] [b where true]",
    "sequence with maxspan=0s [a where true] [b where true]", "any where " + "(" * 300 + "true" + ")" * 300,
    "any where true | sort n", "sequence [a where true] with runs=101", "/* /* */ any where true",
]
eql_queries = st.one_of(st.sampled_from(EQL_FIXED), texts,
                        st.builds(lambda call: f"any where {call} == null", function_calls))
EQL_FIELDS = {
    "query": eql_queries, "filter": dsl, "timestamp_field": field_names | st.just("@timestamp"),
    "event_category_field": field_names, "tiebreaker_field": field_names, "size": ints, "fetch_size": ints,
    "result_position": st.sampled_from(["head", "tail", "", "HEAD"]), "fields": st.lists(field_names, max_size=3),
    "runtime_mappings": json_values, "max_samples_per_key": ints, "allow_partial_search_results": st.booleans(),
    "allow_partial_sequence_results": st.booleans(), "wait_for_completion_timeout": time_values | ints,
    "keep_alive": time_values | ints, "keep_on_completion": st.booleans() | bad_bools, "case_sensitive": json_values,
}
eql_body = st.builds(lambda q, rest: {"query": q, **rest}, eql_queries, objects(EQL_FIELDS))

# SML background tasks: valid queries over the fuzz index, each command once, and hostile ones.
SML_FIXED = [
    "source fuzz", "source fuzz qsize=2 | search n>1 OR t=a*", "source fuzz* | where n == 1 AND t == \"a\" OR n > 2",
    "source fuzz | eval x = n * 2, y = if(n > 1, \"a\", \"b\") | table x, y", "source fuzz | stats count, dc(t) by n",
    "source fuzz | search x=1 | peval y=x*2 | aggs count by y", "source fuzz | eval y=1 | aggs count",
    "source fuzz | sort -n | head 2 | fields - t", "source fuzz | dedup t | rename t as u", "source fuzz | top t",
    "source fuzz | timechart limit=1 count, avg(n) by t", "source fuzz | bin bins=3 n | timeaggs count",
    "source fuzz | timeaggs useother=false max(n) by n",
    "source nope", "source fuzz earliest=-1d@d latest=now", "source fuzz qsize=abc", "| source fuzz", "eval x=1",
    "source fuzz | where " + "(" * 300 + "n > 1" + ")" * 300, "source fuzz | search " + "NOT " * 500 + "x",
]
sml_queries = st.one_of(st.sampled_from(SML_FIXED), texts)
times = st.sampled_from(["now", "now-1d", "now/d", "-15m", "@d", "-1d@d", "2024-05-01T00:00:00Z", "0", "nope", "",
                         "now-99999999d", "1714521600000", "@d-2h", "-1d@d+8h"]) | texts
SME_FIELDS = {"query": sml_queries, "dtFieldName": field_names | st.just("@timestamp"), "dtStart": times,
              "dtEnd": times, "calculateStats": st.booleans() | bad_bools,
              "calculateExecutionCost": st.sampled_from(["OFF", "INFO", "DEBUG", "debug", "x"]) | json_values}
sme_body = st.builds(lambda q, rest: {"query": q, **rest}, sml_queries, objects(SME_FIELDS))
EXPORT_FIELDS = {"file_name": texts, "file_type": st.sampled_from(["json", "csv", "xlsx", "pdf", ""]) | json_values,
                 "compress_results": st.booleans() | bad_bools, "download_all_results": st.booleans() | bad_bools,
                 "download_results_size": ints}
CLUSTER_SETTING_KEYS = ["sme.core.global_dt_params.dtFieldName", "sme.core.global_dt_params.dtStart",
                        "sme.core.global_dt_params.dtEnd", "cluster.routing.allocation.enable", "nope", "",
                        "sme.core.global_dt_params.*", "sme.*"]
cluster_settings_body = objects({
    part: st.dictionaries(st.sampled_from(CLUSTER_SETTING_KEYS) | field_names, json_values, max_size=3)
    for part in ("persistent", "transient")})

# Mappings: properties with every kind of parameter, of the right and wrong types.
FIELD_TYPES = ["keyword", "text", "long", "integer", "short", "byte", "unsigned_long", "double", "float",
               "half_float", "scaled_float", "boolean", "date", "date_nanos", "ip", "object", "nested", "alias",
               "flattened", "geo_point", "binary", "wildcard", "constant_keyword", "version", "dense_vector",
               "nope", "", "Keyword"]
field_param_values = {
    "type": st.sampled_from(FIELD_TYPES), "ignore_above": ints, "index": st.booleans(), "doc_values": st.booleans(),
    "store": st.booleans(), "null_value": scalars, "format": st.sampled_from(["epoch_millis", "yyyy", "nope", "||"]),
    "copy_to": field_names, "coerce": st.booleans(), "ignore_malformed": st.booleans(), "scaling_factor": floats,
    "path": field_names, "dynamic": st.sampled_from(["true", "false", "strict", "runtime", "nope"]) | st.booleans(),
    "enabled": st.booleans(), "analyzer": texts, "normalizer": texts, "dims": ints, "value": scalars,
    "meta": st.dictionaries(texts, texts, max_size=2), "fields": st.just({"keyword": {"type": "keyword"}}),
}


def _nested_fields(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Object fields whose properties are ``inner`` fields; keyword fields whose
    multi-fields are."""
    objects_of = st.builds(lambda props, extra: {**extra, "properties": props},
                           st.dictionaries(field_names, inner, max_size=3),
                           objects({"type": st.sampled_from(["object", "nested"]),
                                    "dynamic": field_param_values["dynamic"]}, unknown=False))
    keyword_with = st.builds(lambda sub: {"type": "keyword", "fields": sub},
                             st.dictionaries(field_names, inner, max_size=2))
    return objects_of | keyword_with


field_definitions = st.recursive(objects(field_param_values), _nested_fields, max_leaves=6)


def wide_mapping(n: int) -> dict[str, Any]:
    return {"properties": {f"w{i}": {"type": "long"} for i in range(n)}}


def deep_mapping(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "long"}
    for _ in range(depth):
        node = {"properties": {"d": node}}
    return node


mapping_objects = st.one_of(
    objects({"properties": st.dictionaries(field_names, field_definitions, max_size=4),
             "dynamic": field_param_values["dynamic"], "_source": objects({"enabled": st.booleans()}),
             "date_detection": st.booleans(), "numeric_detection": st.booleans(),
             "dynamic_templates": st.lists(json_values, max_size=2), "runtime": json_values, "_meta": json_values,
             "_routing": json_values, "subobjects": st.booleans()}),
    st.builds(wide_mapping, st.sampled_from([999, 1000, 1001, 1500])),
    st.builds(deep_mapping, st.sampled_from([19, 20, 21, 50, 150])),
)
SETTING_KEYS = ["number_of_shards", "number_of_replicas", "index.number_of_shards", "mapping.total_fields.limit",
                "index.mapping.total_fields.limit", "index.mapping.depth.limit", "mapping.depth.limit",
                "index.mapping.nested_fields.limit", "refresh_interval", "index.hidden", "analysis",
                "index.mapping.ignore_malformed", "index.mode", "nope", "index.nope", ""]
settings_objects = st.one_of(
    st.dictionaries(st.sampled_from(SETTING_KEYS), json_values, max_size=3),
    st.builds(lambda inner: {"index": inner}, json_values),
    st.builds(lambda inner: {"index": inner}, st.dictionaries(st.sampled_from(SETTING_KEYS), json_values, max_size=3)),
)
create_index_body = objects({"settings": settings_objects, "mappings": mapping_objects,
                             "aliases": st.dictionaries(texts, json_values, max_size=2)})

# Documents: fields of the baseline mapping with values of other types, new fields, odd names.
documents = st.dictionaries(field_names, json_values, max_size=5)


def document_bodies() -> st.SearchStrategy[bytes]:
    return json_bodies(documents) | st.one_of(
        st.builds(deep_document, st.sampled_from(DEPTHS), scalars),
        st.builds(wide_document, st.sampled_from([999, 1000, 1001, 1500, 5000]), st.sampled_from(["w", "t", "n."])),
    )


update_body = objects({"doc": documents, "upsert": documents, "doc_as_upsert": st.booleans(),
                       "detect_noop": st.booleans(), "scripted_upsert": st.booleans(),
                       "_source": st.booleans() | st.lists(texts, max_size=2),
                       "script": st.just({"source": "ctx._source.n += 1"})})
count_body = objects({"query": dsl})

# _bulk: NDJSON with broken lines.
ACTIONS = ["index", "create", "update", "delete", "nope", "INDEX", ""]
bulk_meta = objects({
    "_index": index_names, "_id": doc_ids, "if_seq_no": ints, "if_primary_term": ints, "version": ints,
    "version_type": QUERY_PARAM_KINDS["version_type"], "routing": texts, "retry_on_conflict": ints,
    "op_type": QUERY_PARAM_KINDS["op_type"], "pipeline": texts, "require_alias": st.booleans(),
    "dynamic_templates": json_values, "_source": json_values,
})


def bulk_item(action: str, meta: Any, source: bytes | None) -> list[bytes]:
    lines = [dumps({action: meta})]
    return lines if source is None else [*lines, source]


bulk_sources = st.one_of(
    st.builds(dumps, documents), st.builds(dumps, documents), st.builds(dumps, json_values),
    st.builds(dumps, update_body), st.sampled_from(MALFORMED), truncations(st.builds(dumps, documents)),
    deep_json, st.builds(deep_document, st.sampled_from(DEPTHS), scalars),
    st.builds(wide_document, st.sampled_from([1000, 1001, 5000]), st.sampled_from(["w", "t"])),
)
bulk_items = st.builds(bulk_item, st.sampled_from(ACTIONS), bulk_meta | json_values,
                       st.none() | bulk_sources | bulk_sources | bulk_sources)


def ndjson(items: list[list[bytes]], junk: list[tuple[int, bytes]], ending: bytes, separator: bytes) -> bytes:
    lines = [line for item in items for line in item]
    for position, line in junk:
        lines.insert(position % (len(lines) + 1), line)
    return separator.join(lines) + ending


bulk_bodies = st.one_of(
    st.builds(ndjson, st.lists(bulk_items, min_size=1, max_size=5),
              st.lists(st.tuples(st.integers(0, 10), st.sampled_from(MALFORMED) | deep_json), max_size=1),
              st.sampled_from([b"\n", b"\n", b"\n", b"", b"\n\n", b"\r\n"]), st.sampled_from([b"\n", b"\n", b"\r\n"])),
    st.builds(lambda n: b'{"index":{"_index":"fuzz"}}\n{"n":1}\n' * n, st.sampled_from([1, 1000, 20000])),
    st.builds(lambda size: b'{"index":{}}\n' + padded_document(size - 14) + b"\n", st.sampled_from(BODY_SIZES)),
    st.sampled_from(MALFORMED), st.just(b""), st.binary(max_size=40),
)

# --- headers ----------------------------------------------------------------------------------

JSON_TYPES = ["application/json", "application/json", "application/json", "application/json; charset=UTF-8",
              "application/vnd.elasticsearch+json; compatible-with=9",
              "application/vnd.elasticsearch+json; compatible-with=8",
              "application/vnd.elasticsearch+json; compatible-with=7",
              "application/vnd.elasticsearch+json; compatible-with=abc",
              "application/vnd.elasticsearch+json", "text/plain", "application/x-www-form-urlencoded",
              "multipart/form-data; boundary=x", "application/cbor", "application/smile", "application/yaml",
              "application/x-ndjson", "application/json; charset=latin1", "*/*", "", ";", "application/",
              None]
NDJSON_TYPES = ["application/x-ndjson", "application/x-ndjson", "application/x-ndjson", *JSON_TYPES]
accepts_headers = st.sampled_from([None, None, None, "application/json", "text/csv", "text/plain", "*/*",
                                   "application/vnd.elasticsearch+json; compatible-with=8",
                                   "application/vnd.elasticsearch+json; compatible-with=7", "image/png"])
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=10)
extra_headers = st.lists(st.one_of(
    st.tuples(st.just("X-Opaque-Id"), header_text),
    st.tuples(st.sampled_from(["X-Elastic-Product-Origin", "Authorization", "traceparent"]), header_text),
), max_size=2)  # two X-Opaque-Id headers now and then: ES refuses that


def headers(content_types: list[str | None]) -> st.SearchStrategy[tuple[tuple[str, str | None], ...]]:
    """Content-Type (``None``: none sent), Accept, and now and then odd extras."""
    def build(ctype: str | None, accept: str | None, extra: list[tuple[str, str]]) -> tuple:
        pairs: list[tuple[str, str | None]] = [("Content-Type", ctype)]
        if accept is not None:
            pairs.append(("Accept", accept))
        return tuple(pairs + extra)
    return st.builds(build, st.sampled_from(content_types), accepts_headers, extra_headers)


# --- routes -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RouteFuzz:
    """How to fuzz one route: the body its handler reads and the path parameters, by name
    (``PATH_PARAMS`` unless overridden)."""

    body: st.SearchStrategy[bytes]
    content_types: list[str | None] = field(default_factory=lambda: JSON_TYPES)
    params: dict[str, st.SearchStrategy[str]] = field(default_factory=dict)


PATH_PARAMS: dict[str, st.SearchStrategy[str]] = {"index": index_names, "id": doc_ids, "task_id": task_ids}

# A handler that reads no body still gets one now and then: it must ignore it or refuse it.
stray_body = st.sampled_from([b""] * 6) | json_bodies(json_values)
NO_BODY = RouteFuzz(stray_body)
BULK = RouteFuzz(bulk_bodies, NDJSON_TYPES)
DOCUMENT = RouteFuzz(document_bodies())
ASYNC_ID = RouteFuzz(stray_body, params={"id": async_ids})
sme_ids = st.sampled_from(["a", "Yz4xN2FmQk9lUXVXb1lTd0", "-", "x" * 65, "..", "%00", ""]) | async_ids | texts
SME_ID = RouteFuzz(stray_body, params={"id": sme_ids})
MAPPING = RouteFuzz(json_bodies(mapping_objects) | st.just(b""))
console_files = st.sampled_from(["index.html", "app.js", "app.css", "nope.js", "index", "..", ".hidden.js",
                                 "a" * 200 + ".js", "%2e%2e", "x.exe"]) | texts
CONSOLE_FILE = RouteFuzz(stray_body, params={"name": console_files})
CONSOLE_LOGIN = RouteFuzz(json_bodies(objects({"username": texts, "password": texts})) | st.just(b""))
CONSOLE_SEARCH = RouteFuzz(stray_body, params={"id": sme_ids})

ROUTES: dict[tuple[str, str], RouteFuzz] = {
    ("GET", "/"): NO_BODY,
    ("HEAD", "/"): NO_BODY,
    ("POST", "/_bulk"): BULK,
    ("PUT", "/_bulk"): BULK,
    ("POST", "/_query"): RouteFuzz(json_bodies(esql_body)),
    ("POST", "/_query/async"): RouteFuzz(json_bodies(async_esql_body)),
    ("GET", "/_query/async/{id}"): ASYNC_ID,
    ("POST", "/_query/async/{id}/stop"): ASYNC_ID,
    ("DELETE", "/_query/async/{id}"): ASYNC_ID,
    ("GET", "/{index}/_eql/search"): RouteFuzz(json_bodies(eql_body)),
    ("POST", "/{index}/_eql/search"): RouteFuzz(json_bodies(eql_body)),
    ("GET", "/_eql/search/{id}"): ASYNC_ID,
    ("DELETE", "/_eql/search/{id}"): ASYNC_ID,
    ("GET", "/_eql/search/status/{id}"): ASYNC_ID,
    ("GET", "/_cluster/settings"): NO_BODY,
    ("PUT", "/_cluster/settings"): RouteFuzz(json_bodies(cluster_settings_body) | st.just(b"")),
    ("POST", "/_sme/async_requests/request"): RouteFuzz(json_bodies(sme_body)),
    ("GET", "/_sme/async_requests/response/{id}"): SME_ID,
    ("GET", "/_sme/async_requests/logs/{id}"): SME_ID,
    ("GET", "/_sme/async_requests/status"): NO_BODY,
    ("GET", "/_sme/async_requests/status/"): NO_BODY,
    ("GET", "/_sme/async_requests/status/{id}"): SME_ID,
    ("POST", "/_sme/async_requests/break"): NO_BODY,
    ("POST", "/_sme/async_requests/break/"): NO_BODY,
    ("POST", "/_sme/async_requests/break/{id}"): SME_ID,
    ("DELETE", "/_sme/async_requests/delete/{id}"): SME_ID,
    ("POST", "/_sme/async_requests/file_download/{id}"): RouteFuzz(json_bodies(objects(EXPORT_FIELDS)) | st.just(b""),
                                                               params={"id": sme_ids}),
    ("GET", "/_console"): NO_BODY,
    ("GET", "/_console/"): NO_BODY,
    ("GET", "/_console/static/{name}"): CONSOLE_FILE,
    ("GET", "/_console/api/session"): NO_BODY,
    ("POST", "/_console/api/session"): CONSOLE_LOGIN,
    ("DELETE", "/_console/api/session"): NO_BODY,
    ("GET", "/_console/api/searches"): NO_BODY,
    ("GET", "/_console/api/searches/{id}/rows"): CONSOLE_SEARCH,
    ("POST", "/_console/api/searches/{id}/_download"): RouteFuzz(json_bodies(objects(EXPORT_FIELDS)) | st.just(b""),
                                                                params={"id": sme_ids}),
    ("GET", "/_tasks"): NO_BODY,
    ("POST", "/_tasks/_cancel"): NO_BODY,
    ("GET", "/_tasks/{task_id}"): NO_BODY,
    ("POST", "/_tasks/{task_id}/_cancel"): NO_BODY,
    ("GET", "/_mapping"): NO_BODY,
    ("POST", "/_refresh"): NO_BODY,
    ("GET", "/_refresh"): NO_BODY,
    ("GET", "/_cat/indices"): NO_BODY,
    ("GET", "/_cat/indices/{index}"): NO_BODY,
    ("PUT", "/{index}"): RouteFuzz(json_bodies(create_index_body) | st.just(b"")),
    ("DELETE", "/{index}"): NO_BODY,
    ("HEAD", "/{index}"): NO_BODY,
    ("GET", "/{index}"): NO_BODY,
    ("GET", "/{index}/_mapping"): NO_BODY,
    ("PUT", "/{index}/_mapping"): MAPPING,
    ("POST", "/{index}/_mapping"): MAPPING,
    ("POST", "/{index}/_refresh"): NO_BODY,
    ("GET", "/{index}/_refresh"): NO_BODY,
    ("GET", "/{index}/_count"): RouteFuzz(json_bodies(count_body) | st.just(b"")),
    ("POST", "/{index}/_count"): RouteFuzz(json_bodies(count_body) | st.just(b"")),
    ("POST", "/{index}/_bulk"): BULK,
    ("PUT", "/{index}/_bulk"): BULK,
    ("POST", "/{index}/_doc"): DOCUMENT,
    ("PUT", "/{index}/_doc/{id}"): DOCUMENT,
    ("POST", "/{index}/_doc/{id}"): DOCUMENT,
    ("PUT", "/{index}/_create/{id}"): DOCUMENT,
    ("POST", "/{index}/_create/{id}"): DOCUMENT,
    ("GET", "/{index}/_doc/{id}"): NO_BODY,
    ("HEAD", "/{index}/_doc/{id}"): NO_BODY,
    ("DELETE", "/{index}/_doc/{id}"): NO_BODY,
    ("POST", "/{index}/_update/{id}"): RouteFuzz(json_bodies(update_body)),
}

# --- requests -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FuzzRequest:
    method: str
    template: str
    params: tuple[tuple[str, str], ...]
    query: tuple[tuple[str, str | None], ...]
    headers: tuple[tuple[str, str | None], ...]
    body: bytes

    def url(self, fill: Callable[[str], str]) -> str:
        """The request target, percent-encoded; ``fill`` resolves placeholders."""
        path = self.template
        for name, value in self.params:
            path = path.replace("{" + name + "}", _encode(fill(value)))
        query = "&".join(_encode(fill(k)) if v is None else f"{_encode(fill(k))}={_encode(fill(v))}"
                         for k, v in self.query)
        return f"{path}?{query}" if query else path

    def __repr__(self) -> str:
        body = self.body if len(self.body) <= 300 else self.body[:300] + b"...(%d bytes)" % len(self.body)
        return (f"FuzzRequest({self.method} {self.template} params={_short(dict(self.params))} "
                f"query={_short(list(self.query))} headers={_short(list(self.headers))} body={body!r})")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """How hypothesis prints a failing example: the short repr."""
        printer.text(repr(self))


def _short(value: Any) -> str:
    """``repr`` with long strings cut (to 60 characters and their length)."""
    if isinstance(value, str) and len(value) > 100:
        return repr(value[:60]) + f"...({len(value)} chars)"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_short(k)}: {_short(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]" if isinstance(value, list) else \
            "(" + ", ".join(_short(v) for v in value) + ")"
    return repr(value)


def _encode(value: str) -> str:
    if isinstance(value, Raw):
        return str(value)
    return quote(value.encode("utf-8", "surrogatepass"), safe="")


def requests_for(method: str, template: str, accepted: frozenset[str]) -> st.SearchStrategy[FuzzRequest]:
    """Hostile requests for one route: its path parameters, the query parameters its
    handler accepts (``accepted``) and more, odd headers, and the body it reads."""
    route = ROUTES[(method, template)]
    names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
    params = st.tuples(*[st.tuples(st.just(n), {**PATH_PARAMS, **route.params}[n]) for n in names])
    body = st.just(b"") if method == "HEAD" else route.body
    requests = st.builds(FuzzRequest, st.just(method), st.just(template), params,
                         query_pairs(accepted).map(tuple), headers(route.content_types), body)
    return requests.map(_fit_line)


def _fit_line(request: FuzzRequest) -> FuzzRequest:
    """The request with its last query parameters dropped until its line fits in what
    Elasticsearch reads (4 KB, less room for placeholders): longer lines are the protocol
    test's. (A map, not a filter: hypothesis describes a filter's rejections by its repr.)"""
    query = request.query
    while query and len(dataclasses.replace(request, query=query).url(str)) > MAX_LINE_BYTES - 200:
        query = query[:-1]
    return dataclasses.replace(request, query=query)


# --- protocol level: what aiohttp reads before any route --------------------------------------

# Elasticsearch reads up to 16 KB of headers (http.max_header_size) and compressed bodies.
LONG_HEADER_SIZES = [4096, 8190, 8191, 8192, 12000, 16000, 20000]
protocol_extras = st.one_of(
    st.tuples(st.just("?long"), repeated(st.sampled_from(["a", "é"]), [3000, 4000, 4097, 8190, 8191, 10000])),
    st.tuples(st.sampled_from(["X-Opaque-Id", "X-Long"]), repeated(st.sampled_from(["a", "é"]), LONG_HEADER_SIZES)),
    st.tuples(st.just("Content-Encoding"), st.sampled_from(["gzip", "deflate", "br", "zstd", "identity", "nope",
                                                             "gzip, gzip", ""])),
)


def with_protocol(request: FuzzRequest, extra: tuple[str, str], compress: bool) -> FuzzRequest:
    """``request`` with a long request line (``("?long", value)``: one more query
    parameter) or a protocol-level header; with ``Content-Encoding: gzip`` or ``deflate``
    its body is compressed when ``compress`` (else sent as is: a lie)."""
    if extra[0] == "?long":
        return dataclasses.replace(request, query=(*request.query, ("long", extra[1])))
    body = request.body
    if compress and extra == ("Content-Encoding", "gzip"):
        body = gzip.compress(body)
    elif compress and extra == ("Content-Encoding", "deflate"):
        body = zlib.compress(body)
    return dataclasses.replace(request, headers=(*request.headers, extra), body=body)
