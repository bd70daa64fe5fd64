"""Issue 10, ES|QL side: no argument makes a function do unbounded work, and malformed
query-side input is Elasticsearch's 4xx, never a 500. Each hostile request goes through
the official client (raw HTTP where the client itself would refuse it), and the service
must still answer ``GET /`` while it runs and after (how fast: scripts/bench's liveness)."""

from __future__ import annotations

import re
import warnings
from typing import Any, Awaitable

import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import ApiError, AsyncElasticsearch

from tests.conftest import assert_live_during

HEADER = "Elasticsearch-9.2.0-esquire"


async def outcome(call: Awaitable[Any]) -> Any:
    """The client's answer, or the ApiError it raised, with the warnings it emitted."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = await call
        except ApiError as exc:
            result = exc
    return result, [str(w.message) for w in caught]


async def query(http: TestClient, es: AsyncElasticsearch, text: str, **kwargs: Any) -> tuple[Any, list[str]]:
    """``POST /_query`` through the client, checked for liveness during and after."""
    return await assert_live_during(http, outcome(es.esql.query(query=text, **kwargs)))


def assert_error(result: Any, status: int, kind: str, reason: str) -> None:
    assert isinstance(result, ApiError), result
    assert result.meta.status == status
    assert result.body["error"]["type"] == kind
    assert result.body["error"]["reason"] == reason
    assert result.body["error"]["root_cause"][0]["reason"] == reason


async def raw_warnings(http: TestClient, text: str) -> list[str]:
    """The Warning headers of ``POST /_query`` (the client keeps only the first)."""
    resp = await http.post("/_query", json={"query": text})
    assert resp.status == 200
    return [re.sub(r"\\(.)", r"\1", re.fullmatch(rf'299 {HEADER} "(.*)"', h).group(1))
            for h in resp.headers.getall("Warning", [])]


def failure_warnings(src: str, line_col: str, exception: str) -> list[str]:
    return [f"Line {line_col}: evaluation of [{src}] failed, treating result as null. Only first 20 failures recorded.",
            f"Line {line_col}: {exception}"]


@pytest.fixture
async def numbers(es: AsyncElasticsearch) -> AsyncElasticsearch:
    await es.indices.create(index="numbers", mappings={"properties": {
        "n": {"type": "long"}, "d": {"type": "double"}, "@timestamp": {"type": "date"}}})
    await es.bulk(index="numbers", refresh=True, operations=[
        {"index": {}}, {"n": 1, "d": 1.5, "@timestamp": "2024-05-01T00:00:00Z"},
        {"index": {}}, {"n": 5, "d": 2.5, "@timestamp": "2024-05-02T00:00:00Z"},
        {"index": {}}, {"n": 9, "d": 3.5, "@timestamp": "2024-05-03T00:00:00Z"},
    ])
    return es


# --- ROUND: Elasticsearch's Maths.round, in bounded time ------------------------------------

@pytest.mark.parametrize("text, value, kind", [
    ("ROUND(123, -99999999)", 0, "integer"),                 # every long is below 10^19: 0 at once
    ("ROUND(123, -9223372036854775808)", 0, "integer"),
    ("ROUND(123, 99999999)", 123, "integer"),
    ("ROUND(9223372036854775807, -18)", 9000000000000000000, "long"),
    ("ROUND(155, -1)", 160, "integer"),
    ("ROUND(-155, -1)", -160, "integer"),                    # half away from zero
    ("ROUND(5, -1)", 10, "integer"),
    ("ROUND(123.5, -99999999)", 0.0, "double"),              # 10^p underflows to zero
    ("ROUND(123.5, 99999999)", 123.5, "double"),             # 10^p overflows: the value back
    ("ROUND(1.5, 300)", 1.5, "double"),                      # past the long range: BigDecimal
    ("ROUND(-2.5)", -3.0, "double"),
    ("ROUND(123.456, -1)", 120.0, "double"),
])
async def test_round_any_digits_answers_at_once(http: TestClient, es: AsyncElasticsearch, text: str, value: Any,
                                               kind: str) -> None:
    resp, warned = await query(http, es, f"ROW a = {text} | LIMIT 1")
    assert resp["columns"] == [{"name": "a", "type": kind}]
    assert resp["values"] == [[value]] and warned == []


async def test_async_round_finishes_instead_of_pinning_a_worker(http: TestClient, es: AsyncElasticsearch) -> None:
    resp, _ = await assert_live_during(http, outcome(es.esql.async_query(
        query="ROW a = ROUND(123, -99999999) | LIMIT 1", wait_for_completion_timeout="10s", keep_on_completion=False)))
    assert resp["is_running"] is False and resp["values"] == [[0]]


async def test_round_long_overflow_is_a_warning(http: TestClient, es: AsyncElasticsearch) -> None:
    text = "ROW a = ROUND(9223372036854775807, -19) | LIMIT 1"
    resp, _ = await query(http, es, text)
    assert resp["values"] == [[None]]
    assert await raw_warnings(http, text) == failure_warnings("ROUND(9223372036854775807, -19)", "1:9",
                                      "java.lang.ArithmeticException: long overflow")


# --- strings: Elasticsearch builds none longer than 1 MB ------------------------------------

async def test_repeat_past_a_megabyte_is_null_with_a_warning(http: TestClient, es: AsyncElasticsearch) -> None:
    text = 'ROW a = REPEAT("x", 300000000) | LIMIT 1'
    resp, _ = await query(http, es, text)
    assert resp["values"] == [[None]]
    assert await raw_warnings(http, text) == failure_warnings(
        'REPEAT("x", 300000000)', "1:9",
        "java.lang.IllegalArgumentException: Creating repeated strings with more than [1048576] bytes is not supported")
    exact, warned = await query(http, es, 'ROW a = LENGTH(REPEAT("ab", 524288)) | LIMIT 1')
    assert exact["values"] == [[1048576]] and warned == []


async def test_constant_space_past_a_megabyte_fails_the_query(http: TestClient, es: AsyncElasticsearch) -> None:
    err, _ = await query(http, es, "ROW a = SPACE(2000000) | LIMIT 1")
    assert_error(err, 400, "illegal_argument_exception",
                 "Creating strings longer than [1048576] bytes is not supported")
    err, _ = await query(http, es, "ROW a = SPACE(-1) | LIMIT 1")
    assert_error(err, 400, "illegal_argument_exception", "Number parameter cannot be negative, found [-1]")


async def test_computed_space_past_a_megabyte_is_a_warning(http: TestClient, numbers: AsyncElasticsearch) -> None:
    text = "FROM numbers | EVAL s = SPACE(n * 2000000) | SORT n | KEEP s | LIMIT 1"
    resp, _ = await query(http, numbers, text)
    assert resp["values"] == [[None]]
    assert await raw_warnings(http, text) == failure_warnings(
        "SPACE(n * 2000000)", "1:25",
        "java.lang.IllegalArgumentException: Creating strings longer than [1048576] bytes is not supported")


async def test_concat_past_a_megabyte_fails_the_query(http: TestClient, es: AsyncElasticsearch) -> None:
    err, _ = await query(http, es, 'ROW a = CONCAT(REPEAT("x", 1000000), REPEAT("y", 1000000)) | LIMIT 1')
    assert_error(err, 400, "esql_client_exception", "concatenating more than [1048576] bytes is not supported")


async def test_replace_stops_building_at_a_megabyte(http: TestClient, es: AsyncElasticsearch) -> None:
    text = 'ROW a = REPLACE(REPEAT("x", 100000), "", REPEAT("y", 100)) | LIMIT 1'
    resp, _ = await query(http, es, text)
    assert resp["values"] == [[None]]
    assert await raw_warnings(http, text) == failure_warnings(
        'REPLACE(REPEAT("x", 100000), "", REPEAT("y", 100))', "1:9",
        "java.lang.IllegalArgumentException: Creating strings with more than [1048576] bytes is not supported")


# --- numbers and dates that would grow without bound ----------------------------------------

@pytest.mark.parametrize("text, exception", [
    ("-(-2147483648)", "java.lang.ArithmeticException: integer overflow"),
    ("POW(2, 99999999)", "java.lang.ArithmeticException: invalid result when computing pow"),
    ("9223372036854775807 * 9223372036854775807", "java.lang.ArithmeticException: long overflow"),
    ("NOW() + 999999999 years", "java.lang.ArithmeticException: long overflow"),
    ("MV_PSERIES_WEIGHTED_SUM([1.0, 2.0], -99999999.0)", "java.lang.ArithmeticException: double overflow"),
])
async def test_overflow_is_a_warning_and_null(http: TestClient, es: AsyncElasticsearch, text: str,
                                             exception: str) -> None:
    resp, _ = await query(http, es, f"ROW a = {text} | LIMIT 1")
    assert resp["values"] == [[None]]
    assert await raw_warnings(http, f"ROW a = {text} | LIMIT 1") == failure_warnings(text, "1:9", exception)


async def test_pseries_with_a_huge_power_is_computed_in_doubles(http: TestClient, es: AsyncElasticsearch) -> None:
    resp, warned = await query(http, es, "ROW a = MV_PSERIES_WEIGHTED_SUM([1.0, 2.0, 3.0], 99999999.0) | LIMIT 1")
    assert resp["values"] == [[3.0]] and warned == []


@pytest.mark.parametrize("text, reason", [
    ("NOW() + 9223372036854775807 days", "line 1:17: Number [9223372036854775807] outside of [days] range"),
    ("DATE_TRUNC(99999999999 years, NOW())", "line 1:20: Number [99999999999] outside of [years] range"),
    ("NOW() - 9223372036854775807 hours", "line 1:17: Number [9223372036854775807] outside of [hours] range"),
])
async def test_time_spans_beyond_java_are_parse_errors(http: TestClient, es: AsyncElasticsearch, text: str,
                                                       reason: str) -> None:
    err, _ = await query(http, es, f"ROW a = {text} | LIMIT 1")
    assert_error(err, 400, "parsing_exception", reason)


async def test_zero_time_interval_is_refused(http: TestClient, numbers: AsyncElasticsearch) -> None:
    for text in ("ROW a = DATE_TRUNC(0 days, NOW()) | LIMIT 1",
                 "FROM numbers | STATS c = COUNT(*) BY b = BUCKET(@timestamp, 0 hours) | LIMIT 1"):
        err, _ = await query(http, numbers, text)
        assert_error(err, 400, "illegal_argument_exception", "Zero or negative time interval is not supported")


# --- BUCKET -----------------------------------------------------------------------------------

async def test_bucket_of_zero_span_is_null_with_warnings(http: TestClient, numbers: AsyncElasticsearch) -> None:
    text = "FROM numbers | STATS c = COUNT(*) BY b = BUCKET(n, 0) | LIMIT 5"
    resp, _ = await query(http, numbers, text)
    assert resp["values"] == [[3, None]]
    assert await raw_warnings(http, text) == failure_warnings("BUCKET(n, 0)", "1:42",
                                                              "java.lang.ArithmeticException: / by zero")


@pytest.mark.parametrize("args", ["0, 0, 10", "10, 0, 0", "-5, 0, 10"])
async def test_bucket_count_over_an_impossible_range(http: TestClient, numbers: AsyncElasticsearch,
                                                     args: str) -> None:
    text = f"FROM numbers | STATS c = COUNT(*) BY b = BUCKET(n, {args}) | LIMIT 5"
    resp, _ = await query(http, numbers, text)
    assert resp["values"] == [[3, None]]
    assert (await raw_warnings(http, text))[0] == (f"Line 1:42: evaluation of [BUCKET(n, {args})] failed, treating "
                                                   f"result as null. Only first 20 failures recorded.")


async def test_bucket_count_is_counted_not_stepped(http: TestClient, numbers: AsyncElasticsearch) -> None:
    """Two billion buckets over two centuries: the rounding is chosen arithmetically."""
    resp, _ = await query(http, numbers, 'FROM numbers | STATS c = COUNT(*) BY b = BUCKET(@timestamp, 2000000000, '
                                         '"1900-01-01", "2100-01-01") | SORT b | LIMIT 1')
    assert resp["values"] == [[1, "2024-05-01T00:00:00.000Z"]]


async def test_bucket_range_that_is_not_a_date(http: TestClient, numbers: AsyncElasticsearch) -> None:
    err, _ = await query(http, numbers, 'FROM numbers | STATS c = COUNT(*) BY b = BUCKET(@timestamp, 20, "x", '
                                        '"2100-01-01") | LIMIT 1')
    assert_error(err, 400, "illegal_argument_exception",
                 "failed to parse date field [x] with format [strict_date_optional_time]")


# --- aggregates ---------------------------------------------------------------------------------

async def test_percentile_out_of_range_is_null(http: TestClient, numbers: AsyncElasticsearch) -> None:
    resp, warned = await query(http, numbers, "FROM numbers | STATS p = PERCENTILE(n, 500), q = PERCENTILE(n, -1), "
                                              "m = PERCENTILE(n, 50) | LIMIT 1")
    assert resp["values"] == [[None, None, 5.0]] and warned == []


@pytest.mark.parametrize("text, kind, reason", [
    ("PERCENTILE(n)", "parsing_exception",
     "line 1:26: error building [percentile]: function [percentile] expects exactly two arguments, it received 1"),
    ("TOP(n)", "parsing_exception", "line 1:26: error building [top]: expects three or four arguments"),
    ("PERCENTILE(n, n)", "verification_exception",
     "Found 1 problem\nline 1:26: second argument of [PERCENTILE(n, n)] must be a constant, received [n]"),
    ('PERCENTILE(n, "x")', "verification_exception", 'Found 1 problem\nline 1:26: second argument of '
     '[PERCENTILE(n, "x")] must be [numeric except unsigned_long], found value ["x"] type [keyword]'),
    ('TOP(n, -1, "asc")', "verification_exception",
     'Found 1 problem\nline 1:26: Limit must be greater than 0 in [TOP(n, -1, "asc")], found [-1]'),
    ('TOP(n, 3, "sideways")', "verification_exception", 'Found 1 problem\nline 1:26: Invalid order value in '
     '[TOP(n, 3, "sideways")], expected [ASC, DESC] but got [sideways]'),
    ('WEIGHTED_AVG(n, "a")', "verification_exception", 'Found 1 problem\nline 1:26: second argument of '
     '[WEIGHTED_AVG(n, "a")] must be [numeric except unsigned_long or counter types], found value ["a"] type '
     '[keyword]'),
])
async def test_aggregate_arguments_are_verified(http: TestClient, numbers: AsyncElasticsearch, text: str, kind: str,
                                                reason: str) -> None:
    err, _ = await query(http, numbers, f"FROM numbers | STATS p = {text} | LIMIT 1")
    assert_error(err, 400, kind, reason)


# --- LIMIT ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("limit, shown, kind", [
    ("99999999999999999999", "99999999999999999999", "double"),
    ("3000000000", "3000000000", "long"),
    ("-1", "-1", "integer"),
    ('"ten"', '"ten"', "keyword"),
    ("null", "null", "null"),
])
async def test_limit_must_be_a_non_negative_integer(http: TestClient, es: AsyncElasticsearch, limit: str, shown: str,
                                                    kind: str) -> None:
    err, _ = await query(http, es, f"ROW a = 1 | LIMIT {limit}")
    assert_error(err, 400, "parsing_exception", f"line 1:13: value of [LIMIT {limit}] must be a non negative integer, "
                                                f"found value [{shown}] type [{kind}]")


async def test_limit_up_to_the_largest_integer_is_accepted(http: TestClient, es: AsyncElasticsearch) -> None:
    resp, _ = await query(http, es, "ROW a = 1 | LIMIT 2147483647")
    assert resp["values"] == [[1]]
    resp, _ = await query(http, es, "ROW a = 1 | LIMIT ?", params=[0])
    assert resp["values"] == []


# --- how big and how deep a query may be -------------------------------------------------------

async def test_expression_depth_is_bounded_as_in_es(http: TestClient, es: AsyncElasticsearch) -> None:
    deep = "ABS(" * 390 + "1" + ")" * 390
    resp, _ = await query(http, es, f"ROW a = {deep} | LIMIT 1")
    assert resp["values"] == [[1]]
    chain, _ = await query(http, es, "ROW a = " + " + ".join(["1"] * 399) + " | LIMIT 1")
    assert chain["values"] == [[399]]
    err, _ = await query(http, es, "ROW a = " + "-" * 5000 + "1 | LIMIT 1")
    assert isinstance(err, ApiError) and err.meta.status == 400
    assert err.body["error"]["type"] == "parsing_exception"
    assert err.body["error"]["reason"].startswith(
        "line -1:-1: ESQL statement exceeded the maximum expression depth allowed (400): [")


async def test_pipeline_depth_is_bounded_as_in_es(http: TestClient, es: AsyncElasticsearch) -> None:
    err, _ = await query(http, es, "ROW a = 1" + " | EVAL a = a + 1" * 501)
    assert isinstance(err, ApiError) and err.meta.status == 400
    assert err.body["error"]["type"] == "parsing_exception"
    assert err.body["error"]["reason"].startswith(
        "line -1:-1: ESQL statement exceeded the maximum query depth allowed (500): [ROWa=1|EVALa=a+1|")


async def test_statement_longer_than_a_million_characters(http: TestClient, es: AsyncElasticsearch) -> None:
    text = "ROW a = 1 // " + "x" * 1_000_000
    err, _ = await query(http, es, text)
    assert_error(err, 400, "parsing_exception",
                 f"line -1:-1: ESQL statement is too large [{len(text)} characters > 1000000]")


async def test_a_large_statement_is_parsed_off_the_event_loop(http: TestClient, es: AsyncElasticsearch) -> None:
    """Half a million list items take seconds to parse; the service keeps answering."""
    resp, _ = await query(http, es, "ROW a = [" + ",".join(["1"] * 60_000) + "] | EVAL n = MV_COUNT(a) | KEEP n "
                                                                            "| LIMIT 1")
    assert resp["values"] == [[60000]]


@pytest.mark.parametrize("text, reason", [
    ("ROW a = " + "9" * 400, "line 1:9: Number [" + "9" * 400 + "] is too large"),
    ("ROW a = 1e400", "line 1:9: Number [1e400] is too large"),
])
async def test_numbers_past_a_double_are_refused(http: TestClient, es: AsyncElasticsearch, text: str,
                                                 reason: str) -> None:
    err, _ = await query(http, es, text + " | LIMIT 1")
    assert_error(err, 400, "parsing_exception", reason)


# --- function calls that do not type-check ------------------------------------------------------

@pytest.mark.parametrize("text, kind, reason", [
    ("MV_COUNT(1, 2)", "parsing_exception", "line 1:9: error building [mv_count]: expects exactly one argument"),
    ("POW(2)", "parsing_exception",
     "line 1:9: error building [pow]: function [pow] expects exactly two arguments, it received 1"),
    ("CONCAT()", "parsing_exception", "line 1:9: error building [concat]: expects at least two arguments"),
    ('MV_AVG("a")', "verification_exception",
     'Found 1 problem\nline 1:9: argument of [MV_AVG("a")] must be [numeric], found value ["a"] type [keyword]'),
    ("SPLIT(1, 2)", "verification_exception",
     "Found 1 problem\nline 1:9: first argument of [SPLIT(1, 2)] must be [string], found value [1] type [integer]"),
    ("DATE_FORMAT(5, NOW())", "verification_exception", "Found 1 problem\nline 1:9: first argument of "
     "[DATE_FORMAT(5, NOW())] must be [string], found value [5] type [integer]"),
    ('CIDR_MATCH(TO_IP("1.2.3.4"), "x")', "illegal_argument_exception", "'x' is not an IP string literal."),
    ('CIDR_MATCH(TO_IP("1.2.3.4"), "1.2.3.4/99")', "illegal_argument_exception",
     "illegal prefixLength '99'. Must be 0-32 for IPv4 ranges, 0-128 for IPv6 ranges"),
])
async def test_bad_function_calls_are_client_errors(http: TestClient, es: AsyncElasticsearch, text: str, kind: str,
                                                    reason: str) -> None:
    err, _ = await query(http, es, f"ROW a = {text} | LIMIT 1")
    assert_error(err, 400, kind, reason)


# --- request parameters and body fields ------------------------------------------------------

async def test_keep_alive_beyond_the_clock_is_stored(http: TestClient, es: AsyncElasticsearch) -> None:
    resp, _ = await assert_live_during(http, outcome(es.esql.async_query(
        query="ROW a = 1 | LIMIT 1", keep_alive="9999999999999999d", keep_on_completion=True)))
    assert resp["values"] == [[1]] and resp["id"]
    got, _ = await outcome(es.esql.async_query_get(id=resp["id"], keep_alive="9999999999999999d"))
    assert got["values"] == [[1]]


@pytest.mark.parametrize("field", ["keep_alive", "wait_for_completion_timeout"])
async def test_time_value_beyond_a_long(http: TestClient, field: str) -> None:
    body = {"query": "ROW a = 1 | LIMIT 1", field: "99999999999999999999d"}
    resp = await assert_live_during(http, http.post("/_query/async", json=body))
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["type"] == "parse_exception"
    assert error["reason"] == "failed to parse [99999999999999999999d], fractional time values are not supported"


@pytest.mark.parametrize("delimiter, reason", [
    ("ab", "invalid multi-character delimiter [ab]"),
    ("", "invalid empty delimiter []"),
    ('"', 'illegal reserved character specified as delimiter ["]'),
    ("\t", "illegal delimiter [TAB] specified as delimiter for the [csv] format; choose the [tsv] format instead"),
])
async def test_csv_delimiter_must_be_one_plain_character(http: TestClient, es: AsyncElasticsearch, delimiter: str,
                                                         reason: str) -> None:
    err, _ = await query(http, es, "ROW a = 1, b = 2 | LIMIT 1", format="csv", delimiter=delimiter)
    assert_error(err, 400, "illegal_argument_exception", reason)


async def test_csv_delimiter_of_one_character(http: TestClient, es: AsyncElasticsearch) -> None:
    resp, _ = await query(http, es, "ROW a = 1, b = 2 | LIMIT 1", format="csv", delimiter=";")
    assert resp.body == "a;b\r\n1;2\r\n"


@pytest.mark.parametrize("dsl, kind, reason", [
    ({"range": {"n": {"gte": {"a": 1}}}}, "parsing_exception", "[range] query does not support [a]"),
    ({"range": {"@timestamp": {"gte": {"a": 1}}}}, "parsing_exception", "[range] query does not support [a]"),
    ({"term": {"n": {"a": 1}}}, "parsing_exception", "[term] query does not support [a]"),
    ({"term": {"n": [1]}}, "parsing_exception", "[term] query does not support array of values"),
    ({"exists": {"field": {"a": 1}}}, "parsing_exception", "[exists] unknown token [START_OBJECT] after [field]"),
    ({"range": {"@timestamp": {"gte": "now+99999999999y"}}}, "parse_exception",
     "failed to parse date field [now+99999999999y] with format [strict_date_optional_time||epoch_millis]"),
    ({"bool": {"should": [{"match_all": {}}], "minimum_should_match": "x"}}, "illegal_argument_exception",
     'For input string: "x"'),
])
async def test_malformed_query_dsl_filter(http: TestClient, numbers: AsyncElasticsearch, dsl: dict[str, Any],
                                          kind: str, reason: str) -> None:
    err, _ = await query(http, numbers, "FROM numbers | LIMIT 1", filter=dsl)
    assert_error(err, 400, kind, reason)


async def test_exists_wildcards_match_in_linear_time(http: TestClient, numbers: AsyncElasticsearch) -> None:
    resp, _ = await query(http, numbers, "FROM numbers | STATS c = COUNT(*) | LIMIT 1",
                          filter={"exists": {"field": "*a" * 5000 + "x"}})
    assert resp["values"] == [[0]]


@pytest.mark.parametrize("body", [
    {"query": 5}, {"query": ["ROW a = 1"]}, {"query": {"a": 1}}, {"query": None},
    {"query": "ROW a = 1", "params": "x"}, {"query": "ROW a = ?", "params": [[1, [2]]]},
    {"query": "ROW a = ?", "params": [[1, "a"]]}, {"query": "ROW a = ?a", "params": [{"a": {"b": 1}}]},
    {"query": "ROW a = 1", "columnar": "yes"}, {"query": "ROW a = 1", "columnar": None},
    {"query": "ROW a = 1", "filter": []}, {"query": "ROW a = 1", "filter": 5},
    {"query": "ROW a = 1", "unknown": 5}, {"query": "ROW a = 1", "tables": {}},
])
async def test_wrong_body_types_are_client_errors(http: TestClient, body: dict[str, Any]) -> None:
    resp = await assert_live_during(http, http.post("/_query", json=body))
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["status"] == 400


@pytest.mark.parametrize("body", [
    {"query": "ROW a = 1", "keep_alive": True}, {"query": "ROW a = 1", "keep_alive": [1]},
    {"query": "ROW a = 1", "keep_alive": "5"}, {"query": "ROW a = 1", "wait_for_completion_timeout": {"a": 1}},
    {"query": "ROW a = 1", "keep_on_completion": "x"}, {"query": "ROW a = 1", "keep_alive": "1.5s"},
])
async def test_wrong_async_settings_are_client_errors(http: TestClient, body: dict[str, Any]) -> None:
    resp = await assert_live_during(http, http.post("/_query/async", json=body))
    assert resp.status == 400, await resp.text()


async def test_replace_runs_a_backtracking_pattern_in_linear_time(http: TestClient, es: AsyncElasticsearch) -> None:
    """``(a|a)*b`` doubles its work per character on a backtracking engine; RE2 does not."""
    resp, warned = await query(http, es, 'ROW a = REPLACE(REPEAT("a", 5000), "(a|a)*b", "x") | EVAL n = LENGTH(a) '
                                         '| KEEP n | LIMIT 1')
    assert resp["values"] == [[5000]] and warned == []


async def test_replace_with_a_back_reference_is_bounded(http: TestClient, es: AsyncElasticsearch) -> None:
    text = 'ROW a = REPLACE(REPEAT("a", 40), "(a|aa)*(?=b)\\\\1", "") | LIMIT 1'
    resp, _ = await query(http, es, text)
    assert resp["values"] == [[None]]
    assert await raw_warnings(http, text) == failure_warnings(
        'REPLACE(REPEAT("a", 40), "(a|aa)*(?=b)\\\\1", "")', "1:9",
        "java.lang.IllegalArgumentException: REPLACE pattern matching was interrupted after [1000] ms")
    resp, _ = await query(http, es, 'ROW a = REPLACE("aaaa", "(a)\\\\1", "x") | LIMIT 1')
    assert resp["values"] == [["xx"]]
