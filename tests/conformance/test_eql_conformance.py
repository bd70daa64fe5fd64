"""Elasticsearch's own EQL spec tests (``../shared/conformance/eql``), run through the
official client's ``eql.search`` on the real server.

The data sets are loaded as Elasticsearch's ``DataLoader`` loads them (see the README there):
each index created with its mapping (``#`` lines dropped, ``[runtime_random_keyword_type]``
read as ``keyword``), the documents bulk-indexed in file order, the endgame ``@timestamp``
derived from its FILETIME ``timestamp``. Every query is sent with the README's request body
and compared on the ids of the returned events (``-1`` for a missing-event placeholder) and,
when the test lists them, on the join keys. ``eql_known_failures.txt`` lists the tests known
to fail: a failure outside it fails the suite, and so does a listed test that now passes (so
the list only shrinks). ``ESQUIRE_UPDATE_KNOWN_FAILURES=1`` rewrites the list.
"""

from __future__ import annotations

import json
import os
import random
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, AsyncElasticsearch

from conftest import BOTH_PATHS, CONFORMANCE
from test_eql_parser import VALID_EQL, _disabled_queries
from tests.conformance.ratchet import Tally

EQL = CONFORMANCE / "eql"
DATA = EQL / "data"
KNOWN = Path(__file__).with_name("eql_known_failures.txt")
FILETIME_EPOCH_DIFF_MS = 11_644_473_600_000  # 1601-01-01 -> 1970-01-01
FILETIME_TICKS_PER_MS = 10_000  # a FILETIME counts 100 ns ticks

pytestmark = pytest.mark.skipif(not EQL.is_dir(), reason=f"EQL conformance data not found at {EQL} "
                                                        "(it lives in ../shared beside the project)")


@dataclass(frozen=True)
class Dataset:
    index: str
    mapping: str
    data: str
    count: int  # documents in the data file


DATASETS = [
    Dataset("endgame-140", "endgame-140.mapping", "endgame-140.data", 102),
    Dataset("endgame-140-nanos", "endgame-140-nanos.mapping", "endgame-140.data", 102),
    Dataset("extra", "extra.mapping", "extra.data", 23),
    Dataset("missing-events", "missing-events.mapping", "missing-events.data", 48),
    Dataset("sample1", "sample1.mapping", "sample1.data", 10),
    Dataset("sample2", "sample2.mapping", "sample2.data", 9),
    Dataset("sample3", "sample3.mapping", "sample3.data", 9),
    Dataset("sample-multi", "sample-multi.mapping", "sample-multi.data", 10),
]


@dataclass(frozen=True)
class Suite:
    index: str
    tiebreaker: str | None
    id_field: str


SUITES = {
    "test_queries.toml": Suite("endgame-140", "serial_event_id", "serial_event_id"),
    "additional_test_queries.toml": Suite("endgame-140", "serial_event_id", "serial_event_id"),
    "test_queries_date.toml": Suite("endgame-140", "serial_event_id", "serial_event_id"),
    "test_extra.toml": Suite("extra", "sequence", "sequence"),
    "test_missing_events.toml": Suite("missing-events", "sequence", "sequence"),
    "test_sample.toml": Suite("sample1,sample2,sample3", None, "id"),
    "test_sample_multi.toml": Suite("sample-multi", None, "id"),
    "test_queries_date_nanos.toml": Suite("endgame-140-nanos", "serial_event_id", "serial_event_id"),
}


# --- the data sets ------------------------------------------------------------------------------

def load_mapping(name: str) -> dict[str, Any]:
    text = "\n".join(line for line in (DATA / name).read_text().splitlines() if not line.startswith("#"))
    return json.loads(text.replace("[runtime_random_keyword_type]", "keyword"))


def load_documents(dataset: Dataset) -> list[dict[str, Any]]:
    """The documents as the loader indexes them: ``//`` comment lines dropped (Jackson
    skips them), the endgame timestamps derived."""
    lines = (DATA / dataset.data).read_text().splitlines()
    docs = json.loads("\n".join(line for line in lines if not line.lstrip().startswith("//")))
    if dataset.index == "endgame-140":
        for doc in docs:
            doc["@timestamp"] = doc["timestamp"] // FILETIME_TICKS_PER_MS - FILETIME_EPOCH_DIFF_MS
    elif dataset.index == "endgame-140-nanos":
        for doc in docs:
            doc["@timestamp"] = _nanos_timestamp(doc["timestamp"])
            doc["timestamp"] = doc["timestamp"] // 1_000_000
    return docs


def _nanos_timestamp(filetime: int) -> str:
    """The FILETIME read as nanoseconds since the epoch, as epoch millis with a fraction."""
    digits = str(filetime)
    millis, fraction = digits[:-6], digits[-6:]
    return millis if fraction == "000000" else f"{millis}.{fraction}"


async def load_all(es: AsyncElasticsearch) -> None:
    for dataset in DATASETS:
        await es.indices.create(index=dataset.index, mappings=load_mapping(dataset.mapping))
        ops: list[dict[str, Any]] = []
        for doc in load_documents(dataset):
            ops += [{"index": {}}, doc]
        resp = await es.bulk(index=dataset.index, operations=ops, refresh=True)
        failed = [item["index"] for item in resp["items"] if "error" in item["index"]]
        assert not failed, f"{dataset.index}: {len(failed)} documents refused, first: {json.dumps(failed[0])}"


# --- the tests ----------------------------------------------------------------------------------

def load_toml(name: str) -> list[dict[str, Any]]:
    """A suite's queries; test_extra.toml has bare ``null`` join keys, which are not TOML."""
    text = (EQL / name).read_text()
    try:
        return tomllib.loads(text)["queries"]
    except tomllib.TOMLDecodeError:
        # only in the join_keys arrays: a query's ``?x == null`` must stay as written
        return tomllib.loads(re.sub(r"(?m)^(join_keys\s*=.*)$",
                                    lambda m: re.sub(r'(?<!")\bnull\b(?!")', '"null"', m.group(1)), text))["queries"]


def request_body(test: dict[str, Any], suite: Suite) -> dict[str, Any]:
    """Elasticsearch's harness request: fetch size and result position are random there and
    must not change the answer; seeded by the test's name here, so a failure reproduces."""
    rng = random.Random(test["name"])
    size = test.get("size", 50)
    body: dict[str, Any] = {"query": test["query"].strip(), "event_category_field": "event.category",
                            "timestamp_field": "@timestamp", "size": size,
                            "fetch_size": 2 if suite.tiebreaker is None else rng.randint(2, max(size, 2)),
                            "result_position": rng.choice(["head", "tail"]),
                            "max_samples_per_key": test.get("max_samples_per_key", 1)}
    if suite.tiebreaker is not None:
        body["tiebreaker_field"] = suite.tiebreaker
    return body


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)


def compare(test: dict[str, Any], suite: Suite, hits: dict[str, Any]) -> str | None:
    """Why the answer differs from the test's expectation, or None."""
    if "events" in hits:
        events, keys = hits["events"], None
    else:
        sequences = hits.get("sequences", [])
        events = [e for s in sequences for e in s.get("events", [])]
        keys = [_key_text(k) for s in sequences for k in s.get("join_keys", [])]
    ids = [-1 if e.get("missing") else e["_source"].get(suite.id_field) for e in events]
    expected = test["expected_event_ids"]
    alternatives = expected if expected and isinstance(expected[0], list) else [expected]
    if ids not in alternatives:
        return f"ids {ids} != {expected}"
    if "join_keys" in test and keys != [_key_text(k) for k in test["join_keys"]]:
        return f"join_keys {keys} != {test['join_keys']}"
    return None


async def run_test(es: AsyncElasticsearch, test: dict[str, Any], suite: Suite) -> str | None:
    try:
        resp = await es.eql.search(index=suite.index, body=request_body(test, suite))
    except ApiError as exc:
        return f"HTTP {exc.status_code}: {json.dumps(exc.body)[:300]}"
    return compare(test, suite, resp["hits"])


async def test_the_data_sets_load_with_their_mappings(es: AsyncElasticsearch) -> None:
    await load_all(es)
    for dataset in DATASETS:
        assert (await es.count(index=dataset.index))["count"] == dataset.count, dataset.index
        mapping = (await es.indices.get_mapping(index=dataset.index))[dataset.index]["mappings"]["properties"]
        assert mapping["event"]["properties"]["category"] == {"type": "alias", "path": "event_type"}
    extra = (await es.indices.get_mapping(index="extra"))["extra"]["mappings"]["properties"]
    assert extra["optional_field_default_null"] == {"type": "keyword", "null_value": "NULL"}
    assert extra["version"] == {"type": "version"}
    sample1 = (await es.indices.get_mapping(index="sample1"))["sample1"]["mappings"]["properties"]
    assert sample1["@timestamp_pretty"] == {"type": "date", "format": "dd-MM-yyyy"}


# The whole reference suite in one test (about 300 queries): the default per-test timeout
# guards a single request, not this.
# Run on both paths: the scans narrowed inside SQLite by the stages' filters, and not.
@BOTH_PATHS
@pytest.mark.timeout(900)
async def test_eql_reference_suite(es: AsyncElasticsearch, query_pushdown: bool,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    await load_all(es)
    tally = Tally()
    for name, suite in SUITES.items():
        file = name.removesuffix(".toml")
        for test in load_toml(name):
            tally.record(file, f"{file}::{test['name']}", await run_test(es, test, suite))
    tally.print_figures(f"EQL conformance, pushdown {'on' if query_pushdown else 'off'}", capsys)
    tally.check(KNOWN, update=query_pushdown and os.environ.get("ESQUIRE_UPDATE_KNOWN_FAILURES") == "1",
                path="with pushdown" if query_pushdown else "without pushdown")


async def test_the_disabled_endgame_queries_are_refused_end_to_end(es: AsyncElasticsearch) -> None:
    """The 112 Endgame queries test_queries.toml keeps commented out use what Elasticsearch
    does not support; each is refused with an error (parser, verifier or dialect), but the
    few that are valid EQL with Endgame's case-insensitive expectations."""
    await load_all(es)
    answered = set()
    for test in _disabled_queries():
        try:
            await es.eql.search(index="endgame-140", query=test["query"].strip())
        except ApiError as exc:
            assert exc.status_code in (400, 500) and exc.body["error"]["type"] != "exception", (test["name"], exc)
            continue
        answered.add(test["name"])
    assert answered == VALID_EQL
