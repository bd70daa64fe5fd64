"""Elasticsearch's own ES|QL csv-spec tests, run through POST /_query on the real server.

The data sets are loaded through the HTTP API; every runnable test is compared on
columns, types, rows and warnings. ``esql_known_failures.txt`` lists the tests known to
fail: a failure outside it fails the suite, and so does a listed test that now passes
(so the list only shrinks). The suite runs twice, with SQL pushdown and without it, against
the one list: a test that passes one way only is a pushdown bug. ``ESQUIRE_UPDATE_KNOWN_FAILURES=1``
rewrites the list from the pushdown run; the run without pushdown is still checked against it.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from conftest import BOTH_PATHS, CONFORMANCE
from service.node import ES_VERSION
from tests.conformance.csv_spec import SpecTest, load_csv_dataset, parse_cell, parse_spec_file
from tests.conformance.ratchet import Tally

ESQL = CONFORMANCE / "esql"
KNOWN = Path(__file__).with_name("esql_known_failures.txt")
DATASETS = {"employees": "mapping-default.json", "sample_data": "mapping-sample_data.json",
            "apps": "mapping-apps.json", "hosts": "mapping-hosts.json", "languages": "mapping-languages.json"}
OUT_OF_SCOPE_CAPABILITIES = re.compile(
    r"^(match_|kql|qstr|knn|dense_vector|spatial|st_|join_lookup|lookup_join|enrich|inline_stat|fork|fuse|"
    r"categorize|change_point|sample|semantic|completion|rerank|metrics_command|ts_command|set_command|"
    r"date_nanos|unmapped|optional_fields|subquer|views|aggregate_metric|rate|promql|text_embedding|"
    r"tbucket|term_function)", re.I)
OUT_OF_SCOPE_WORDS = re.compile(
    r"\b(MATCH|MATCH_PHRASE|QSTR|KQL|KNN|ST_[A-Z_]+|TO_GEO[A-Z]*|TO_CARTESIAN[A-Z]*|LOOKUP|ENRICH|COMPLETION|"
    r"RERANK|CATEGORIZE|CHANGE_POINT|FORK|FUSE|INLINE\s+STATS|INLINESTATS|SAMPLE|RATE|[A-Z_]+_OVER_TIME|_score|"
    r"TEXT_EMBEDDING|V_[A-Z_]+)\b", re.I)

pytestmark = pytest.mark.skipif(not ESQL.is_dir(), reason=f"ES|QL conformance data not found at {ESQL} "
                                                         "(it lives in ../shared beside the project)")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def skip_reason(test: SpecTest) -> str | None:
    if test.name.endswith("-Ignore"):
        return "disabled upstream"
    if test.skip_below is not None and _version(ES_VERSION) <= _version(test.skip_below):
        return "skipped upstream for this version"
    if any(OUT_OF_SCOPE_CAPABILITIES.match(c) for c in test.capabilities):
        return "out of scope (capability)"
    if OUT_OF_SCOPE_WORDS.search(re.sub(r'"[^"]*"', '""', test.query)):
        return "out of scope (command or function)"
    source = test.query.lstrip().split(None, 1)
    if source and source[0].lower() == "from":
        names = re.split(r"\s*,\s*", re.split(r"\s|\|", source[1].strip(), maxsplit=1)[0]) if len(source) > 1 else []
        for name in names:
            if "*" in name:
                if not any(re.fullmatch(name.replace("*", ".*"), d) for d in DATASETS):
                    return "needs another data set"
            elif name not in DATASETS:
                return "needs another data set"
    elif source and source[0].lower() not in ("row", "show"):
        return "out of scope (source command)"
    return None


def _matches(expected: Any, actual: Any, kind: str) -> bool:
    if expected is None or actual is None:
        return expected is None and actual is None
    if isinstance(expected, list):
        actual_list = actual if isinstance(actual, list) else [actual]
        return len(expected) == len(actual_list) and all(_matches(e, a, kind) for e, a in zip(expected, actual_list))
    if isinstance(actual, list):
        return False
    if kind in ("integer", "long", "unsigned_long", "double", "counter_long", "counter_double"):
        try:
            return float(expected) == float(actual) if kind == "double" else int(expected) == int(actual)
        except (TypeError, ValueError):
            return False
    if kind == "boolean":
        return str(expected).lower() == str(actual).lower()
    return str(expected) == str(actual)


def compare(test: SpecTest, status: int, body: Any, warnings: list[str]) -> str | None:
    if status != 200:
        return f"HTTP {status}: {json.dumps(body)[:300]}"
    columns = [(c["name"], c["type"]) for c in body["columns"]]
    if [n for n, _ in columns] != [n for n, _ in test.columns]:
        return f"columns {[n for n, _ in columns]} != {[n for n, _ in test.columns]}"
    if [t for _, t in columns] != [t for _, t in test.columns]:
        return f"types {[t for _, t in columns]} != {[t for _, t in test.columns]}"
    expected = [[parse_cell(c) for c in row] for row in test.rows]
    actual = body["values"]
    if len(expected) != len(actual):
        return f"{len(actual)} rows != {len(expected)}"
    kinds = [t for _, t in test.columns]

    def row_ok(e: list[Any], a: list[Any]) -> bool:
        return len(e) == len(a) and all(_matches(x, y, k) for x, y, k in zip(e, a, kinds))

    if test.ignore_order:
        remaining = list(actual)
        for e in expected:
            hit = next((i for i, a in enumerate(remaining) if row_ok(e, a)), None)
            if hit is None:
                return f"row {e} missing"
            remaining.pop(hit)
    else:
        for n, (e, a) in enumerate(zip(expected, actual)):
            if not row_ok(e, a):
                return f"row {n}: {a} != {e}"
    got = {w for w in warnings if not w.startswith("No limit defined")}
    if test.warning_regexes:
        if not all(any(re.search(rx, w) for w in got) for rx in test.warning_regexes):
            return f"warnings {sorted(got)} do not match {test.warning_regexes}"
    elif got != set(test.warnings):
        return f"warnings {sorted(got)} != {sorted(test.warnings)}"
    return None


def _warnings(headers: Any) -> list[str]:
    out = []
    for value in headers.getall("Warning", []):
        m = re.match(r'^299 \S+ "(.*)"$', value)
        out.append(m[1] if m else value)
    return out


async def _load(http: Any) -> None:
    for index, mapping_file in DATASETS.items():
        mapping = json.loads((ESQL / "mappings" / mapping_file).read_text())
        resp = await http.put(f"/{index}", json={"mappings": mapping})
        assert resp.status == 200, await resp.text()
        lines = []
        for doc_id, doc in load_csv_dataset(ESQL / "data" / f"{index}.csv", mapping):
            meta = {"_id": doc_id} if doc_id else {}
            lines.append(json.dumps({"index": meta}))
            lines.append(json.dumps(doc))
        resp = await http.post(f"/{index}/_bulk", data="\n".join(lines) + "\n",
                               headers={"Content-Type": "application/x-ndjson"}, params={"refresh": "true"})
        result = await resp.json()
        assert resp.status == 200 and not result["errors"], json.dumps(result)[:1000]


# One test runs the whole reference suite (about a thousand queries): the default per-test
# timeout guards a single request, not this.
@pytest.mark.timeout(900)
@BOTH_PATHS
async def test_esql_reference_suite(http: Any, query_pushdown: bool, capsys: pytest.CaptureFixture[str]) -> None:
    await _load(http)
    tally = Tally()
    for spec in sorted((ESQL / "specs").glob("*.csv-spec")):
        file = spec.name.removesuffix(".csv-spec")
        for test in parse_spec_file(spec):
            if skip_reason(test):
                tally.skipped(file)
                continue
            resp = await http.post("/_query", json={"query": test.query})
            try:
                body = await resp.json()
            except Exception:  # noqa: BLE001 - a non-JSON answer is a failure like any other
                body = await resp.text()
            tally.record(file, test.id, compare(test, resp.status, body, _warnings(resp.headers)))
    tally.print_figures(f"ES|QL conformance, pushdown {'on' if query_pushdown else 'off'}", capsys)
    tally.check(KNOWN, update=query_pushdown and os.environ.get("ESQUIRE_UPDATE_KNOWN_FAILURES") == "1",
                path="with pushdown" if query_pushdown else "without pushdown")
