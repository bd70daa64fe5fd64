"""The known attacks, as requests: those issue 10 names and those the fuzz suite found.
``test_fuzz.test_seed`` checks each under the suite's properties on every run, whatever the
random examples reach. Add one for every new finding.
"""

from __future__ import annotations

from typing import Any

from fuzz_strategies import FuzzRequest
from fuzz_values import deep_document, dumps, wide_document


def seed(method: str, template: str, params: dict[str, str] | None = None, query: list[tuple[str, str]] = (),
         body: Any = b"", content_type: str = "application/json", headers: tuple = ()) -> FuzzRequest:
    """A hand-written request for the same properties (a dict or list body is sent as JSON)."""
    raw = body if isinstance(body, bytes) else dumps(body)
    return FuzzRequest(method, template, tuple((params or {}).items()), tuple(query),
                       (("Content-Type", content_type), *headers), raw)


def bulk_lines(*lines: Any) -> bytes:
    return b"".join((line if isinstance(line, bytes) else dumps(line)) + b"\n" for line in lines)


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
