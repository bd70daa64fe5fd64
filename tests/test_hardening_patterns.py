"""Issue 10: every pattern a client controls runs in time linear in its input.

Each hostile request from the issue is sent to the real server; it must answer correctly
(or with Elasticsearch's status and error type) while ``GET /`` keeps answering within a
second. The correctness tables pin the translated syntax of LIKE, RLIKE and DISSECT.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from elasticsearch import ApiError, AsyncElasticsearch, BadRequestError, NotFoundError

from tests.conftest import assert_live, assert_live_during

STARS = "*" * 15 + "x"
DOUBLE_STARS = ".".join(["**"] * 15) + ".x"


async def esql(es: AsyncElasticsearch, query: str) -> list[list[Any]]:
    return (await es.esql.query(query=query))["values"]


def quoted(text: str) -> str:
    """An ES|QL string literal for ``text``."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def reason(error: ApiError) -> str:
    return error.body["error"]["reason"]


@pytest.fixture
async def deep(es: AsyncElasticsearch) -> AsyncElasticsearch:
    """An index whose mapping nests objects several levels deep, with many keys per level."""
    doc: dict[str, Any] = {f"leaf{i}": "v" for i in range(5)}
    for level in range(6):
        doc = {f"k{level}_{i}": doc for i in range(2)}
    await es.index(index="deep", document=doc, refresh=True)
    return es


# --- task actions ---------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")  # tasks API
async def test_task_actions_with_many_stars_answer_at_once(es: AsyncElasticsearch, http: TestClient) -> None:
    listing = await assert_live_during(http, es.tasks.list(actions=STARS))
    assert listing["nodes"] == {}
    cancelled = await assert_live_during(http, es.tasks.cancel(actions=STARS))
    assert cancelled["nodes"] == {}


@pytest.mark.filterwarnings("ignore::elasticsearch.exceptions.GeneralAvailabilityWarning")
async def test_task_actions_are_simple_wildcards(es: AsyncElasticsearch) -> None:
    """Only ``*`` is special, as Elasticsearch's Regex.simpleMatch: ``?`` is itself."""
    found = await es.tasks.list(actions="cluster:*/lists", group_by="none")
    assert [t["action"] for t in found["tasks"]] == ["cluster:monitor/tasks/lists"]
    found = await es.tasks.list(actions="cluster:*t*s*/lists", group_by="none")
    assert len(found["tasks"]) == 1
    found = await es.tasks.list(actions="cluster:monitor/tasks/list?", group_by="none")
    assert found["tasks"] == []


# --- filter_path -----------------------------------------------------------------------------

async def test_filter_path_with_many_double_wildcards_answers_at_once(deep: AsyncElasticsearch,
                                                                      http: TestClient) -> None:
    resp = await assert_live_during(http, http.get("/_mapping", params={"filter_path": DOUBLE_STARS}))
    assert resp.status == 200
    assert await resp.json() == {}
    resp = await assert_live_during(http, http.get("/_mapping", params={"filter_path": "-" + DOUBLE_STARS}))
    assert resp.status == 200
    assert "deep" in await resp.json()


async def test_filter_path_follows_elasticsearch(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="logs", mappings={"properties": {
        "host": {"properties": {"name": {"type": "keyword"}}}, "a": {"properties": {"b": {"type": "long"}}}}})
    types = await es.indices.get_mapping(index="logs", filter_path="**.type")
    assert types.body == {"logs": {"mappings": {"properties": {
        "host": {"properties": {"name": {"type": "keyword"}}}, "a": {"properties": {"b": {"type": "long"}}}}}}}
    # ** stands for one or more levels, so it does not match the top level itself
    assert (await es.indices.get_mapping(index="logs", filter_path="**.logs")).body == {}
    assert (await es.indices.get_mapping(index="logs", filter_path="logs.**.host.*")).body == {
        "logs": {"mappings": {"properties": {"host": {"properties": {"name": {"type": "keyword"}}}}}}}
    # in a name only * is special
    assert (await es.indices.get_mapping(index="logs", filter_path="l?gs")).body == {}
    assert list((await es.indices.get_mapping(index="logs", filter_path="l*s")).body) == ["logs"]
    excluded = await es.indices.get_mapping(index="logs", filter_path="-**.host")
    assert excluded.body == {"logs": {"mappings": {"properties": {"a": {"properties": {"b": {"type": "long"}}}}}}}


# --- index patterns and KEEP/DROP -------------------------------------------------------------

async def test_index_patterns_with_many_stars_answer_at_once(es: AsyncElasticsearch, http: TestClient) -> None:
    await es.indices.create(index="logs-1")
    resp = await assert_live_during(http, http.get(f"/{STARS}/_mapping"))
    assert resp.status == 200
    assert await resp.json() == {}
    with pytest.raises(BadRequestError) as info:
        await assert_live_during(http, es.esql.query(query=f"FROM {STARS}"))
    assert info.value.error == "verification_exception"
    assert f"Unknown index [{STARS}]" in reason(info.value)


async def test_index_patterns_are_simple_wildcards(es: AsyncElasticsearch) -> None:
    for name in ("logs-1", "logs-2", "metrics"):
        await es.indices.create(index=name)
    assert sorted((await es.indices.get_mapping(index="l*s-*")).body) == ["logs-1", "logs-2"]
    assert sorted((await es.indices.get_mapping(index="*,-logs-*")).body) == ["metrics"]
    with pytest.raises(NotFoundError):  # no * in it: a concrete name, and ? is itself
        await es.indices.get_mapping(index="logs-?")


async def test_keep_and_drop_patterns_with_many_stars(es: AsyncElasticsearch, http: TestClient) -> None:
    query = f"ROW abc = 1, xbx = 2 | KEEP {'*' * 15}x, {'*' * 15}c | LIMIT 1"
    assert await assert_live_during(http, esql(es, query)) == [[2, 1]]
    assert await esql(es, f"ROW abc = 1, xbx = 2 | DROP {'*' * 15}x | LIMIT 1") == [[1]]


# --- RLIKE -----------------------------------------------------------------------------------

@pytest.mark.parametrize("length", [26, 5000])
async def test_rlike_that_backtracks_exponentially_is_linear(es: AsyncElasticsearch, http: TestClient,
                                                             length: int) -> None:
    query = f'ROW a = "{"a" * length}" | EVAL m = a RLIKE "(a|a)*b", n = a RLIKE "(a|a)*" | KEEP m, n | LIMIT 1'
    assert await assert_live_during(http, esql(es, query)) == [[False, True]]
    await assert_live(http)


RLIKE_CASES = [
    # (pattern, value, matches)
    ("abc", "abc", True), ("abc", "xabcx", False),                       # anchored, whole value
    ("a.c", "a\nc", True),                                               # . matches a newline
    ("a.c", "ac", False),
    ("[a-c]+", "abcab", True), ("[^a-c]", "d", True), ("[^a-c]", "a", False), ("[^a]", "\n", True),
    ("[]a]", "]", True), ("[a\\-z]", "-", True), ("[a-z]", "-", False),
    ("\\d+", "123", True), ("\\w\\s\\S", "a b", True), ("\\W", "_", False),
    ("a\\.b", "a.b", True), ("a\\.b", "axb", False), ("\\\\", "\\", True),
    ('"a.b*"', "a.b*", True), ('"a.b*"', "aab", False), ("x\"(\"y", "x(y", True),
    ("^a$", "^a$", True), ("^a$", "a", False),                           # ^ and $ are literals
    ("@", "anything at all", True), ("a@z", "a-z", True), ("#", "", False), ("a|#", "a", True),
    ("<1-10>", "7", True), ("<1-10>", "10", True), ("<1-10>", "11", False), ("<1-10>", "007", True),
    ("<01-10>", "07", True), ("<01-10>", "7", False), ("<10-1>", "5", True),
    ("a{2,3}", "aaa", True), ("a{2,3}", "aaaa", False), ("a{2,}", "aaaaaa", True), ("a{2}", "aa", True),
    ("(ab)+", "ababab", True), ("(ab)?c", "c", True), ("()", "", True), ("a()b", "ab", True),
    ("a+?", "", True),                                                   # (a+)?, not a lazy +
    (".*a.*&.*b.*", "xbxax", True), (".*a.*&.*b.*", "xxax", False),        # intersection
    ("~(abc)", "abd", True), ("~(abc)", "abc", False), ("a~bc", "adc", True), ("a~bc", "abc", False),
    ("|a", "|a", True), ("*", "*", True), ("&a", "&a", True), ("a]", "a]", True), ("{", "{", True),
    ("é.", "éx", True), (".", "😀", True),
]


async def test_rlike_translates_lucene_syntax(es: AsyncElasticsearch) -> None:
    columns = ", ".join(f"m{i} = {quoted(v)} RLIKE {quoted(p)}" for i, (p, v, _) in enumerate(RLIKE_CASES))
    [row] = await esql(es, f"ROW x = 1 | EVAL {columns} | DROP x | LIMIT 1")
    got = {(p, v): m for (p, v, _), m in zip(RLIKE_CASES, row)}
    assert got == {(p, v): expected for p, v, expected in RLIKE_CASES}


async def test_rlike_matching_everything_is_not_null(es: AsyncElasticsearch) -> None:
    """As ES rewrites a total pattern to IS NOT NULL: NOT of it is IS NULL, true on null."""
    query = 'ROW a = null::keyword | EVAL t = a RLIKE "@", u = NOT a RLIKE ".*", v = a RLIKE "b" | LIMIT 1'
    assert await esql(es, query) == [[None, False, True, None]]


@pytest.mark.parametrize("pattern, message", [
    ("(a", "expected ')' at position 2"),
    ("[z-a]", "invalid range: from (122) cannot be > to (97)"),
    ("a{3,2}", "invalid repetition range(out of order): 3..2"),
    ("<foo>", "'foo' not found"),
    ("\\\\q", "invalid character class \\113"),
    ("(a{1000}){1000}", "Pattern was too complex to determinize"),
])
async def test_rlike_invalid_pattern_is_elasticsearchs_parsing_exception(es: AsyncElasticsearch, pattern: str,
                                                                         message: str) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.esql.query(query=f'ROW a = "x" | WHERE a RLIKE "{pattern}" | LIMIT 1')
    assert info.value.error == "parsing_exception"
    shown = pattern.replace("\\\\", "\\")
    assert reason(info.value) == f"line 1:21: Invalid regex pattern for RLIKE [{shown}]: [{message}]"


async def test_rlike_too_complex_to_determinize_fails_at_once(es: AsyncElasticsearch, http: TestClient) -> None:
    """A complement over a blow-up (Lucene's determinize limit) is refused, not run."""
    query = 'ROW a = "x" | WHERE a RLIKE "~((a|b)*a(a|b){14})" | LIMIT 1'
    with pytest.raises(BadRequestError) as info:
        await assert_live_during(http, es.esql.query(query=query))
    assert reason(info.value).endswith("[Pattern was too complex to determinize]")


# --- LIKE ------------------------------------------------------------------------------------

async def test_like_with_many_stars_is_linear(es: AsyncElasticsearch, http: TestClient) -> None:
    query = f'ROW a = "{"a" * 50000}" | EVAL m = a LIKE "*a*a*a*a*a*b", n = a LIKE "*a*a*a*a*a" | KEEP m, n | LIMIT 1'
    assert await assert_live_during(http, esql(es, query)) == [[False, True]]


LIKE_CASES = [
    ("abc", "abc", True), ("abc", "abcd", False), ("", "", True), ("", "a", False),
    ("a*", "abc", True), ("*c", "abc", True), ("*b*", "abc", True), ("a*c", "ac", True), ("a*c", "a", False),
    ("a?c", "abc", True), ("a?c", "ac", False), ("?", "😀", True), ("a?", "a\n", True),
    ("*a*b*", "xaxbx", True), ("*a*b*", "xbxax", False), ("a*b*a", "aba", True), ("a*b*a", "ab", False),
    ("*ab*b", "abxab", True), ("?*?", "ab", True), ("?*?", "a", False), ("G?orgi*Dev*r", "Georgi the Developer", True),
    ("a\\*b", "a*b", True), ("a\\*b", "axb", False), ("a\\?", "a?", True), ("a\\\\b", "a\\b", True),
    ("[a]*", "[a]x", True), ("[a]*", "ax", False), (".*", ".*x", True), (".*", "ax", False),
]


async def test_like_wildcards(es: AsyncElasticsearch) -> None:
    columns = ", ".join(f"m{i} = {quoted(v)} LIKE {quoted(p)}" for i, (p, v, _) in enumerate(LIKE_CASES))
    [row] = await esql(es, f"ROW x = 1 | EVAL {columns} | DROP x | LIMIT 1")
    got = {(p, v): m for (p, v, _), m in zip(LIKE_CASES, row)}
    assert got == {(p, v): expected for p, v, expected in LIKE_CASES}


async def test_like_escape_before_an_ordinary_character_is_elasticsearchs_error(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.esql.query(query='ROW a = "x" | WHERE a LIKE "a\\\\b" | LIMIT 1')
    assert info.value.error == "parsing_exception"
    assert reason(info.value) == ("line 1:21: Invalid pattern for LIKE [a\\b]: "
                                  "[Invalid sequence - escape character is not followed by special wildcard char]")


# --- DISSECT -----------------------------------------------------------------------------------

async def test_dissect_with_a_hostile_key_delimiter_mix_is_linear(es: AsyncElasticsearch, http: TestClient) -> None:
    pattern = '"%{a} %{b} %{c} %{d} %{e} %{f}x"'
    query = f'ROW s = "{"a " * 20000}" | DISSECT s {pattern} | KEEP a, f | LIMIT 1'
    assert await assert_live_during(http, esql(es, query)) == [[None, None]]
    # as ES's parser: repeated delimiters give the following keys empty values
    query = f'ROW s = "{" " * 20000}" | DISSECT s {pattern} | KEEP a, f | LIMIT 1'
    assert await assert_live_during(http, esql(es, query)) == [["", ""]]


DISSECT_CASES = [
    # (pattern, value, expected columns)
    ("%{a} %{b},%{c}", "foo bar,baz", ["foo", "bar", "baz"]),
    ("%{a} %{b},%{c}", "foo bar baz", [None, None, None]),           # all or nothing
    ("%{a},%{b},%{c}", "x,,", ["x", "", ""]),
    ("%{a->} %{b} %{c}", "foo      bar baz", ["foo", "bar", "baz"]),
    ("%{a} %{b}. %{c}", "x y.z. w", ["x", "y.z", "w"]),               # the first ". " ends b
    ("%{a} %{b}.", "x y.z.", ["x", "y"]),                             # and the rest is ignored
    ("[%{a}] %{b}", "[x] y z", ["x", "y z", None]),
]


async def test_dissect_follows_elasticsearchs_parser(es: AsyncElasticsearch) -> None:
    for pattern, value, expected in DISSECT_CASES:
        names = [n for n in ("a", "b", "c") if "%{" + n in pattern or "%{" + n + "->" in pattern]
        query = f"ROW s = {quoted(value)} | DISSECT s {quoted(pattern)} | KEEP {', '.join(names)} | LIMIT 1"
        assert await esql(es, query) == [expected[:len(names)]], pattern
    query = 'ROW s = "1 2 3" | DISSECT s "%{a} %{+a} %{+a}" APPEND_SEPARATOR="-" | KEEP a | LIMIT 1'
    assert await esql(es, query) == [["1-2-3"]]
    query = 'ROW s = "1 2 3" | DISSECT s "%{a} %{+a/3} %{+a/2}" | KEEP a | LIMIT 1'
    assert await esql(es, query) == [["132"]]


async def test_dissect_reference_keys_are_elasticsearchs_parsing_exception(es: AsyncElasticsearch) -> None:
    with pytest.raises(BadRequestError) as info:
        await es.esql.query(query='ROW s = "a b" | DISSECT s "%{*k} %{&k}" | LIMIT 1')
    assert info.value.error == "parsing_exception"
    assert reason(info.value).endswith("Reference keys not supported in dissect patterns: [%{*k}]")


# --- GROK --------------------------------------------------------------------------------------

@pytest.mark.parametrize("pattern", ["(?<x>(a|a)*)b", "(?<x>(x+x+)+)y"])
async def test_grok_user_patterns_from_the_issue_answer(es: AsyncElasticsearch, http: TestClient, pattern: str) -> None:
    text = ("a" if "a" in pattern else "x") * 40
    query = f'ROW s = "{text}" | GROK s "{pattern}" | KEEP x | LIMIT 1'
    assert await assert_live_during(http, esql(es, query)) == [[None]]


async def test_grok_match_past_the_watchdog_bound_fails_as_elasticsearch(es: AsyncElasticsearch,
                                                                        http: TestClient) -> None:
    """A match that backtracks past 1000 ms stops there; the query fails with ES's error."""
    query = f'ROW s = "{"a" * 60}" | GROK s "(?<x>(a|aa)+)c" | KEEP x | LIMIT 1'
    with pytest.raises(ApiError) as info:
        await assert_live_during(http, es.esql.query(query=query))
    assert info.value.meta.status == 500
    assert info.value.error == "runtime_exception"
    assert reason(info.value) == "grok pattern matching was interrupted after [1000] ms"
    # the worker is free again: the next query runs
    assert await esql(es, 'ROW s = "a1" | GROK s "%{WORD:w}" | KEEP w | LIMIT 1') == [["a1"]]
