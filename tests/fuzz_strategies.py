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

import base64
import dataclasses
import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import quote

from hypothesis import strategies as st

from service.api.wire import GLOBAL_PARAMS

# The fuzz server's body limit (ESQUIRE_MAX_BODY_BYTES): small, so "near the limit" is cheap.
MAX_BODY_BYTES = 1024 * 1024

# --- the baseline a fuzzed request runs against ------------------------------------------

BASELINE_MAPPINGS: dict[str, dict[str, Any]] = {
    "fuzz": {"properties": {
        "@timestamp": {"type": "date"},
        "n": {"type": "long"},
        "f": {"type": "float"},
        "b": {"type": "boolean"},
        "k": {"type": "keyword"},
        "t": {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}},
        # Deep enough that a response's keys nest as real mappings' do (filter_path walks them).
        "o": {"properties": {"x": {"type": "long"}, "p": {"properties": {"q": {"properties": {
            "r": {"properties": {"s": {"type": "keyword"}}}}}}}}},
    }},
    # Strict, and "n" of another type than in "fuzz": patterns over both meet a conflict.
    "fuzz-b": {"dynamic": "strict", "properties": {"n": {"type": "keyword"}, "k": {"type": "keyword"}}},
}
BASELINE_DOCS: dict[str, dict[str, dict[str, Any]]] = {
    "fuzz": {
        "1": {"@timestamp": "2024-05-01T12:00:00Z", "n": 1, "f": 1.5, "b": True, "k": "a", "t": "hello world",
              "o": {"x": 1, "p": {"q": {"r": {"s": "deep"}}}}},
        "2": {"@timestamp": "2024-05-02T12:00:00Z", "n": 2, "k": ["a", "b"], "t": "second"},
        "3": {"n": -3, "k": "c"},
    },
    "fuzz-b": {"1": {"n": "one", "k": "x"}, "2": {"n": "two"}},
}

# --- scalars --------------------------------------------------------------------------------

HOSTILE_INTS = [0, 1, -1, 2, 255, 256, 512, 513, 1000, 1001, 2**31 - 1, 2**31, -(2**31) - 1, 2**53 + 1,
                2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, -(10**30), 99999999, -99999999]
ints = st.sampled_from(HOSTILE_INTS) | st.integers()
floats = st.sampled_from([0.5, -0.0, 1e308, -1e308, 5e-324, 1.7976931348623157e308]) | st.floats(
    allow_nan=False, allow_infinity=False)
ODD_TEXT = ["", " ", "\x00", "a\x00b", "\u202eabc", "\ufeff", "a\u0301", "\U0001d54f", "🙂", "\u2028", "\\",
            '"', "'", "%", "%00", "..", ".", "*", "**", "?", ",", "-", "_", "_all", "null", "true", "1e999",
            "NaN", "\t", "\r\n", "<script>", "${jndi:x}", "\uffff", "\U0010ffff"]


def repeated(alphabet: st.SearchStrategy[str], sizes: list[int]) -> st.SearchStrategy[str]:
    """Long strings built from a short draw, so hypothesis never holds their bytes."""
    return st.builds(lambda c, n: (c * n)[:n], alphabet, st.sampled_from(sizes))


LONG_SIZES = [256, 257, 512, 513, 1000, 4096, 32766, 32767, 40000]
short_texts = st.sampled_from(ODD_TEXT) | st.text(max_size=12)
texts = short_texts | repeated(st.sampled_from(["x", "é", "🙂", "\x00", "ab"]), LONG_SIZES)
# In a URL: Elasticsearch reads a request line of up to 4 KB (http.max_initial_line_length);
# longer ones are the protocol test's.
url_texts = short_texts | repeated(st.sampled_from(["x", "é", "ab"]), [256, 257, 512, 513])
scalars = st.none() | st.booleans() | ints | floats | texts

FIELD_NAMES = ["n", "f", "b", "k", "t", "o", "o.x", "t.keyword", "@timestamp", "new", "", ".", "..", "a.", ".a",
               "a..b", "_id", "_source", "_index", "_seq_no", "_version", "_ignored", "\x00", "*", "é", "o.x.y",
               "a" * 300]
field_names = st.sampled_from(FIELD_NAMES) | st.text(max_size=6)

def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(field_names, inner, max_size=4)


json_values = st.recursive(scalars, _containers, max_leaves=10)

# --- JSON text: valid, broken, deep, huge ---------------------------------------------------


def dumps(value: Any, ascii_only: bool = False) -> bytes:
    """JSON text as a client might send it: big ints kept, NaN as ``NaN`` (not JSON)."""
    text = json.dumps(value, ensure_ascii=ascii_only)
    return text.encode("utf-8", "surrogatepass")


def nested_text(depth: int, kind: str) -> bytes:
    """``{"a":{"a":...1...}}`` or ``[[...]]`` ``depth`` deep, written out (json.dumps recurses)."""
    if kind == "object":
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == "array":
        return b"[" * depth + b"1" + b"]" * depth
    return b'{"a":[' * (depth // 2) + b"1" + b"]}" * (depth // 2)


DEPTHS = [2, 19, 20, 21, 50, 100, 199, 200, 254, 255, 500, 1000, 1023, 1024, 1025, 2000]
deep_json = st.builds(nested_text, st.sampled_from(DEPTHS), st.sampled_from(["object", "array", "mixed"]))


def deep_document(depth: int, leaf: Any) -> bytes:
    """A document whose one field nests ``depth`` objects: ``{"d":{"d":...}}``."""
    return b'{"d":' * depth + dumps(leaf) + b"}" * depth


def wide_document(n: int, prefix: str) -> bytes:
    """A document with ``n`` distinct new fields (the 1000-field limit is near)."""
    return dumps({f"{prefix}{i}": i for i in range(n)})


def padded_document(size: int) -> bytes:
    """A valid one-field document of exactly ``size`` bytes (for the body limit)."""
    head, tail = b'{"pad":"', b'"}'
    return head + b"x" * max(0, size - len(head) - len(tail)) + tail


BODY_SIZES = [MAX_BODY_BYTES - 1, MAX_BODY_BYTES, MAX_BODY_BYTES + 1, 2 * MAX_BODY_BYTES]
MALFORMED = [b"{", b"}", b"[", b"{]", b'{"a":}', b'{"a" 1}', b"{'a': 1}", b'{"a":1,}', b"nul", b"NaN",
             b'{"a":NaN}', b'{"a":Infinity}', b'{"a":1e999}', b'{"a":"\\ud800"}', b'{"a":"\\x"}', b"\xff\xfe",
             b'{"a":"\xff"}', b"\x00", b'{"a":1}{"b":2}', b'{"a":1} x', b"\xef\xbb\xbf{}", b"--", b" ", b"\n"]


def truncations(data: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    """A prefix of a valid body: JSON cut anywhere."""
    return st.builds(lambda b, frac: b[: int(len(b) * frac)], data, st.floats(0, 0.99))


def json_bodies(objects: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    """Bodies for a handler that reads a JSON object built by ``objects``."""
    valid = st.builds(dumps, objects, st.booleans())
    return st.one_of(
        valid, valid, valid,
        truncations(valid),
        st.sampled_from(MALFORMED),
        st.builds(dumps, json_values),  # any JSON: arrays, strings, numbers at the top
        deep_json,
        st.builds(padded_document, st.sampled_from(BODY_SIZES)),
        st.binary(max_size=40),
        st.just(b""),
    )


# --- index names, patterns, ids -------------------------------------------------------------

def stars(n: int, tail: str) -> str:
    return "*" * n + tail


# Counts where backtracking matchers turn slow (a second and more from about 10 stars).
COUNTS = [1, 2, 5, 10, 12, 15, 20, 40]
PATTERN_TAILS = ["x", "fuzz", "z", ""]
many_stars = st.builds(stars, st.sampled_from(COUNTS), st.sampled_from(PATTERN_TAILS))
alternating_stars = st.builds(lambda n, c: f"{c}*" * n + "x", st.sampled_from(COUNTS), st.sampled_from(["f", "a", "."]))
patterns = st.sampled_from(["*", "**", "_all", "fuzz*", "*fuzz", "f*z", "fuzz*,-fuzz-b", "-fuzz", "fuzz,-*",
                            "*,-*", "fuzz,nope", "nope*", "fuzz,fuzz", "fu?z", "fuzz[", "*-b", ",", ",,fuzz"]) \
    | many_stars | alternating_stars
BAD_INDEX_NAMES = ["nope", "Fuzz", "_fuzz", "-fuzz", "+fuzz", ".", "..", ".hidden", "a b", "a#b", "a:b", "a\\b",
                   "a|b", "a<b", 'a"b', "a" * 256, "é" * 128, "\x00", "fuzz\x00", "%00", "\u202e", "fuzz\n",
                   "con", "nul"]
existing_indices = st.sampled_from(["fuzz", "fuzz", "fuzz-b"])
# Mostly an index that exists: that is where a rejected request could break something.
index_names = st.one_of(existing_indices, existing_indices, existing_indices, st.sampled_from(["fresh", "fresh-2"]),
                        patterns, st.sampled_from(BAD_INDEX_NAMES), st.text(min_size=1, max_size=10))


class Raw(str):
    """A path or query part sent exactly as written (already percent-encoded, or not)."""

    def __repr__(self) -> str:
        return f"Raw({str.__repr__(self)})"


RAW_PARTS = [Raw("%FF"), Raw("%"), Raw("%zz"), Raw("%C0%AF"), Raw("%E2%80%AE"), Raw("a%00b"), Raw("%2F"),
             Raw("..%2F.."), Raw("%25")]
raw_parts = st.sampled_from(RAW_PARTS)

doc_ids = (st.sampled_from(["1", "2", "3", "nope", "_doc", "*", "..", ".", "%", " ", "\x00", "a/b", "a\nb",
                            "a\r\nX-Injected: 1", "\u202e1", "-1", "1.0", "01", "🙂"])
           | st.text(min_size=1, max_size=10) | repeated(st.sampled_from(["x", "é"]), [511, 512, 513])
           | raw_parts)

NUMBERS_AS_TEXT = ["0", "1", "-1", "00", "1.5", "1e3", "9223372036854775807", "9223372036854775808",
                   "99999999999999999999999", "", " 1", "+1", "0x10", "١"]
task_ids = (st.builds(lambda n: "{node}:" + n, st.sampled_from(NUMBERS_AS_TEXT) | st.text(max_size=5))
            | st.sampled_from(["{node}", "{node}:", ":1", "other:1", "a:b:c", "{node}:1:2", "*", "_all", ":",
                               "{node}:1,{node}:2", "é:1"])
            | st.text(min_size=1, max_size=10) | raw_parts)


def async_id(doc: bytes, task: bytes, *, length_fix: int = 0, pad: bool = True) -> str:
    """An async id as Elasticsearch encodes one (two length-prefixed strings, URL-safe
    base64), optionally with a lying length prefix or without padding."""
    raw = bytes([(len(doc) + length_fix) % 256]) + doc + bytes([len(task) % 256]) + task
    text = base64.urlsafe_b64encode(raw).decode()
    return text if pad else text.rstrip("=")


id_parts = st.sampled_from([b"", b"x", b"\xff\xfe", "é".encode(), b"a" * 300, b"doc"])
task_parts = st.sampled_from([b"", b"x", b"x:1", b"x:", b":1", b"x:-1", b"x:99999999999999999999", b"x:1:2",
                              "é:١".encode(), b"\xff:1"])
async_ids = (st.sampled_from(["{async_id}", "{async_id}", "{async_id}A", "{async_id}==", "{async_id}{async_id}"])
             | st.builds(async_id, id_parts, task_parts, length_fix=st.sampled_from([0, 0, 1, -1]),
                         pad=st.booleans())
             | st.sampled_from(["!!!", "A", "AA", "AAA=", "====", "-_-_", "*", "_all"])
             | st.text(min_size=1, max_size=12) | repeated(st.sampled_from(["A", "ab"]), [1000, 3000]) | raw_parts)

# --- query parameters -----------------------------------------------------------------------

bad_bools = st.sampled_from(["", "true", "false", "TRUE", "False", "yes", "no", "1", "0", "on", "tru", "t",
                             "null", " true", "true ", "\x00"]) | st.text(max_size=5)
time_values = st.sampled_from(["0", "-1", "1s", "5x", "1m", "1ms", "100nanos", "5micros", "1d", "1h", "-5s", "-0",
                               "1.5s", "1 s", " 1s", "s", "", "1S", "1e3s", "0x10s", "99999999999999999999d",
                               "9223372036854775807ms", "9223372036854775807d", "106751991167301d", "1y",
                               "1w", "١s", "nanos", "-1ms", "2147483648s"]) | st.text(max_size=6)
int_values = st.builds(str, ints) | st.sampled_from(NUMBERS_AS_TEXT) | st.text(max_size=6)
text_values = url_texts | patterns
filter_paths = st.one_of(
    st.sampled_from(["**", "*", "-*", "a.b", "**.x", "*.*.*", ".", "..", ",", "-", "error", "-error.type",
                     "took,-took", "nodes.*.tasks"]),
    st.builds(lambda n, tail: ".".join(["**"] * n) + tail, st.sampled_from(COUNTS), st.sampled_from([".x", "", ".*"])),
    st.builds(lambda n: ".".join(["*"] * n), st.sampled_from(COUNTS)),
    many_stars, alternating_stars, url_texts)


def one_of_values(*values: str) -> st.SearchStrategy[str]:
    """An enumerated parameter: its valid values, near misses and junk."""
    return st.sampled_from(values) | st.sampled_from([v.upper() for v in values if v]) | url_texts


# Every query parameter a handler accepts, by kind. A name missing here fails the suite.
QUERY_PARAM_KINDS: dict[str, st.SearchStrategy[str]] = {
    **dict.fromkeys(["pretty", "human", "error_trace", "detailed", "wait_for_completion", "allow_no_indices",
                     "ignore_unavailable", "local", "flat_settings", "include_defaults", "v", "help",
                     "drop_null_columns", "keep_on_completion", "allow_partial_results", "require_alias",
                     "require_data_stream", "include_source_on_error", "list_executed_pipelines", "realtime",
                     "write_index_only", "lenient", "include_unloaded_segments", "pri", "follow_relocations"],
                    bad_bools),
    **dict.fromkeys(["timeout", "master_timeout", "wait_for_completion_timeout", "keep_alive"], time_values),
    **dict.fromkeys(["version", "if_seq_no", "if_primary_term", "retry_on_conflict", "terminate_after",
                     "min_score", "wait_for_active_shards"], int_values | st.just("all")),
    **dict.fromkeys(["routing", "pipeline", "preference", "_source", "_source_includes", "_source_excludes",
                     "stored_fields", "q", "analyzer", "df", "lang", "h", "s", "features", "health"], text_values),
    # Matched against task actions and node names as wildcards: patterns first.
    **dict.fromkeys(["actions", "nodes"], st.one_of(many_stars, alternating_stars, patterns, text_values)),
    "parent_task_id": task_ids,
    "filter_path": filter_paths,
    "refresh": one_of_values("", "true", "false", "wait_for"),
    "op_type": one_of_values("index", "create"),
    "version_type": one_of_values("internal", "external", "external_gte", "force"),
    "group_by": one_of_values("nodes", "parents", "none"),
    "format": one_of_values("json", "csv", "tsv", "txt", "yaml", "cbor", "smile"),
    "delimiter": st.sampled_from([",", ";", "\t", "", ",,", "ab", "\x00", "\"", "\n", "é"]) | st.text(max_size=3),
    "expand_wildcards": one_of_values("all", "open", "closed", "hidden", "none", "open,hidden"),
    "default_operator": one_of_values("AND", "OR"),
    "bytes": one_of_values("b", "kb", "mb", "gb"),
    "time": one_of_values("d", "h", "m", "s", "ms", "micros", "nanos"),
}
unknown_param_names = st.sampled_from(["foo", "size", "from", "timeout_s", "PRETTY", "", " ", "a[b]", "%", "\x00",
                                       "filter_path "]) | st.text(min_size=1, max_size=6)


def query_pairs(accepted: frozenset[str]) -> st.SearchStrategy[list[tuple[str, str | None]]]:
    """Query parameters with hostile values: mostly one of the route's own (or
    ``filter_path``) first, then a few more accepted ones, now and then an unknown name or a
    bare flag (``None``: no ``=``)."""
    own = sorted(accepted - GLOBAL_PARAMS) or sorted(accepted)
    value_for = lambda name: QUERY_PARAM_KINDS[name] | st.none()  # noqa: E731
    pair_of = lambda names: st.sampled_from(names).flatmap(  # noqa: E731
        lambda name: st.tuples(st.just(name), value_for(name)))
    # filter_path is matched against every response's keys: a pattern each route must survive.
    filter_path = st.tuples(st.just("filter_path"), filter_paths)
    stray = st.tuples(unknown_param_names, url_texts | st.none())
    focused = st.builds(lambda first, rest: [first, *rest], pair_of(own) | pair_of(own) | filter_path,
                        st.lists(pair_of(sorted(accepted)) | stray, max_size=3))
    return st.one_of(focused, focused, focused, st.just([]))


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
MAPPING = RouteFuzz(json_bodies(mapping_objects) | st.just(b""))
CANCEL = RouteFuzz(stray_body)

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
    ("GET", "/_tasks"): NO_BODY,
    ("POST", "/_tasks/_cancel"): CANCEL,
    ("GET", "/_tasks/{task_id}"): NO_BODY,
    ("POST", "/_tasks/{task_id}/_cancel"): CANCEL,
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
    params = st.tuples(*[st.tuples(st.just(n), route.params.get(n, PATH_PARAMS[n])) for n in names])
    body = st.just(b"") if method == "HEAD" else route.body
    return st.builds(FuzzRequest, st.just(method), st.just(template), params,
                     query_pairs(accepted).map(tuple), headers(route.content_types), body)


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


# --- seeds: known attacks, checked on every run -----------------------------------------------

def seed(method: str, template: str, params: dict[str, str] | None = None, query: list[tuple[str, str]] = (),
         body: Any = b"", content_type: str = "application/json", headers: tuple = ()) -> FuzzRequest:
    """A hand-written request for the same properties (a dict or list body is sent as JSON)."""
    raw = body if isinstance(body, bytes) else dumps(body)
    return FuzzRequest(method, template, tuple((params or {}).items()), tuple(query),
                       (("Content-Type", content_type), *headers), raw)


def bulk_lines(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, bytes) else dumps(line)) + b"\n" for line in lines)


# The attacks issue 10 names, and those the fuzzer found (tests/test_fuzz.py runs each), so
# that every run checks them whatever the random examples reach. Add a request here for
# every new finding.
SEEDS: dict[str, FuzzRequest] = {
    "tasks actions, 15 stars": seed("GET", "/_tasks", query=[("actions", "*" * 15 + "x")]),
    "cancel actions, 15 stars": seed("POST", "/_tasks/_cancel", query=[("actions", "*" * 15 + "x")]),
    "filter_path, 15 **": seed("GET", "/_mapping", query=[("filter_path", ".".join(["**"] * 15) + ".x")]),
    "index pattern, 40 stars": seed("GET", "/{index}", {"index": "*" * 40 + "x"}),
    "ROUND digits": seed("POST", "/_query", body={"query": "ROW a = ROUND(123, -99999999)"}),
    "ROUND digits, async": seed("POST", "/_query/async", body={"query": "ROW a = ROUND(123, -99999999)"}),
    "RLIKE backtracking": seed("POST", "/_query", body={
        "query": 'ROW a = "' + "a" * 32 + '" | WHERE a RLIKE "(a|a)*b"'}),
    "GROK backtracking": seed("POST", "/_query", body={
        "query": 'ROW a = "aaaaaaaaaaaaaaaaaaaaaaaaaaaa!" | GROK a "(?<x>(a|a)*b)"'}),
    "BUCKET span 0": seed("POST", "/_query", body={"query": "FROM fuzz | STATS c = COUNT(*) BY b = BUCKET(n, 0)"}),
    "PERCENTILE 500": seed("POST", "/_query", body={"query": "FROM fuzz | STATS p = PERCENTILE(n, 500)"}),
    "LIMIT beyond a long": seed("POST", "/_query", body={"query": "FROM fuzz | LIMIT 99999999999999999999"}),
    "keep_alive overflow": seed("POST", "/_query/async", body={"query": "ROW a = 1", "keep_alive": "99999999999999d",
                                                               "keep_on_completion": True}),
    "csv delimiter of two": seed("POST", "/_query", query=[("format", "csv"), ("delimiter", "ab")],
                                 body={"query": "ROW a = 1"}),
    "1001 new fields": seed("PUT", "/{index}/_doc/{id}", {"index": "fuzz", "id": "w"},
                            body=wide_document(1001, "w")),
    "document 500 deep": seed("PUT", "/{index}/_doc/{id}", {"index": "fuzz", "id": "d"}, body=deep_document(500, 1)),
    "document 300 deep": seed("PUT", "/{index}/_doc/{id}", {"index": "fuzz", "id": "d"}, body=deep_document(300, 1)),
    "bulk document 500 deep": seed("POST", "/_bulk", content_type="application/x-ndjson", body=bulk_lines(
        {"index": {"_index": "fuzz", "_id": "d"}}, deep_document(500, 1))),
    "array of a scalar and an object": seed("PUT", "/{index}/_doc/{id}", {"index": "fuzz", "id": "m"},
                                            body={"mixed": [False, {"n": False}]}),
    "settings index not an object": seed("PUT", "/{index}", {"index": "fresh"}, body={"settings": {"index": "x"}}),
    "mapping parameter of a wrong type": seed("PUT", "/{index}", {"index": "fresh"}, body={
        "mappings": {"properties": {"a": {"type": "keyword", "ignore_above": "x"}}}}),
    "put mapping, wrong type": seed("PUT", "/{index}/_mapping", {"index": "fuzz"}, body={
        "properties": {"new": {"type": "long", "ignore_malformed": "x"}}}),
    "bulk _index not a string": seed("POST", "/_bulk", content_type="application/x-ndjson", body=bulk_lines(
        {"index": {"_index": 1}}, {"a": 1})),
    "bulk _index empty": seed("POST", "/_bulk", content_type="application/x-ndjson", body=bulk_lines(
        {"index": {"_index": ""}}, {"a": 1})),
    "bulk delete, missing index": seed("POST", "/_bulk", content_type="application/x-ndjson", body=bulk_lines(
        {"delete": {"_index": "fresh", "_id": "1"}})),
    "bulk update, missing index": seed("POST", "/_bulk", content_type="application/x-ndjson", body=bulk_lines(
        {"update": {"_index": "fresh", "_id": "1"}}, {"doc": {"a": 1}})),
    "update, missing index": seed("POST", "/{index}/_update/{id}", {"index": "fresh", "id": "1"}, body={}),
    "update doc not an object": seed("POST", "/{index}/_update/{id}", {"index": "fuzz", "id": "1"}, body={"doc": "x"}),
    "count range of objects": seed("POST", "/{index}/_count", {"index": "fuzz"}, body={
        "query": {"range": {"n": {"gte": {}}}}}),
    "id with a NUL": seed("PUT", "/{index}/_create/{id}", {"index": "fuzz", "id": "\x00"}, body={}),
    "error through filter_path": seed("PUT", "/{index}/_doc/{id}", {"index": "*", "id": "1"},
                                      query=[("filter_path", "-*")], body={}),
    "gzip that is not": seed("POST", "/{index}/_count", {"index": "fuzz"}, body={},
                             headers=(("Content-Encoding", "gzip"),)),
    "X-Opaque-Id of 10 KB": seed("GET", "/", headers=(("X-Opaque-Id", "a" * 10000),)),
    "request line of 9 KB": seed("GET", "/", query=[("filter_path", "a" * 9000)]),
}
