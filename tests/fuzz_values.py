"""Hostile values for the fuzz suite: numbers, texts, JSON text (valid, broken, deep,
huge), index names and patterns, document, task and async ids, query-parameter values, and
the baseline indices the requests run against. ``fuzz_strategies`` builds requests of them.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

from service.api.wire import GLOBAL_PARAMS

# The fuzz server's body limit (ESQUIRE_MAX_BODY_BYTES): small, so "near the limit" is cheap.
MAX_BODY_BYTES = 1024 * 1024
# Elasticsearch's longest request line (http.max_initial_line_length).
MAX_LINE_BYTES = 4096

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
                     "write_index_only", "lenient", "include_unloaded_segments", "pri", "follow_relocations",
                     "allow_partial_search_results", "allow_partial_sequence_results", "ccs_minimize_roundtrips"],
                    bad_bools),
    **dict.fromkeys(["timeout", "master_timeout", "wait_for_completion_timeout", "keep_alive"], time_values),
    **dict.fromkeys(["version", "if_seq_no", "if_primary_term", "retry_on_conflict", "terminate_after",
                     "min_score", "wait_for_active_shards", "from", "to"], int_values | st.just("all")),
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
