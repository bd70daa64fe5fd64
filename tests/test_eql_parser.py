"""The EQL parser: the exact AST of every construct, precedence, lexical rules, and
Elasticsearch's parsing errors with their positions; then every conformance query."""

from __future__ import annotations

import re
import tomllib

import pytest
from conftest import CONFORMANCE

from service.errors import ServiceError
from service.query.eql.ast import EventFilter, EventQuery, Optional, Pipe, SampleQuery, SequenceQuery
from service.query.eql.parser import parse
from service.query.errors import ParsingError
from service.query.expr import Binary, Call, Column, Expr, In, IsNull, Like, Literal, Logical, Neg, Not, Src

EQL = CONFORMANCE / "eql"


def cond(text: str) -> Expr:
    """The condition of ``any where <text>``."""
    return parse(f"any where {text}").filter.condition


def error(text: str) -> str:
    with pytest.raises(ParsingError) as caught:
        parse(text)
    assert caught.value.status == 400 and caught.value.type == "parsing_exception"
    return caught.value.reason


def lit(value: object, type_: str) -> Literal:
    return Literal(value, type_)


def s(value: str) -> Literal:
    return Literal(value, "keyword")


# --- event queries and pipes ---

def test_event_query_with_category_any_and_string_category() -> None:
    query = parse("process where true")
    assert query == EventQuery(EventFilter("process", lit(True, "boolean"), Src(1, 1, "process where true")))
    assert parse("any where true").filter.category is None
    assert parse('"my-category" where true').filter.category == "my-category"
    assert parse('"""raw cat""" where true').filter.category == "raw cat"


def test_pipes_head_and_tail() -> None:
    query = parse("process where true | head 6 | tail 2")
    assert query.pipes == (Pipe("head", 6, Src(1, 20, "| head 6")), Pipe("tail", 2, Src(1, 29, "| tail 2")))
    assert parse("process where true | head 0").pipes[0].count == 0
    assert [parse(f"process where true | tail {n}").pipes[0].count for n in ("(5)", "2 * 3", "-(-4)", "7 / 2",
                                                                              "-7 % 3 + 2")] == [5, 6, 4, 3, 1]


def test_sources_carry_line_column_and_exact_text() -> None:
    condition = parse("process where\n  a.b  ==  1").filter.condition
    assert condition.src == Src(2, 3, "a.b  ==  1")
    assert condition.left.src == Src(2, 3, "a.b") and condition.right.src == Src(2, 12, "1")


# --- expressions ---

def test_fields() -> None:
    assert cond("a.b") == Column("a.b")
    assert cond("`a-b`.c") == Column("a-b.c")
    assert cond("`my``field`") == Column("my`field")
    assert cond("`sequence` > 1").left == Column("sequence")
    assert cond("@timestamp") == Column("@timestamp")
    assert cond("?a.b") == Optional("a.b")
    assert cond("AND") == Column("AND")  # keywords are lower case only


@pytest.mark.parametrize("keyword", ["sequence", "sample", "where", "any", "by", "with", "maxspan", "until", "of",
                                     "join", "like", "regex", "in"])
def test_keywords_are_keywords_everywhere(keyword: str) -> None:
    assert error(f"process where {keyword} == 1").startswith(f"line 1:15: mismatched input '{keyword}'")
    assert cond(f"`{keyword}` == 1").left == Column(keyword)


def test_runs_is_not_a_keyword() -> None:
    assert cond("runs == 1").left == Column("runs")


def test_literals_and_number_types() -> None:
    assert cond("null") == lit(None, "null")
    assert cond("false") == lit(False, "boolean")
    assert cond("5") == lit(5, "integer")
    assert cond("2147483647") == lit(2147483647, "integer")
    assert cond("2147483648") == lit(2147483648, "long")
    assert cond("8589934592") == lit(8589934592, "long")
    assert cond("9223372036854775808") == lit(9223372036854775808.0, "double")
    assert cond("5.2") == lit(5.2, "double")
    assert cond("5e14") == lit(5e14, "double")
    assert cond("1.") == lit(1.0, "double") and cond(".5E-1") == lit(0.05, "double")


def test_strings_and_escapes() -> None:
    assert cond('"a\\tb\\n\\r\\"\\\\"') == s('a\tb\n\r"\\')
    assert cond('"\\u{41}\\u{00Eb}\\u{01f4a9}\\u{00000000}"') == s("Aë\U0001f4a9\x00")
    assert cond('"""C:\\temp\\n"""') == s("C:\\temp\\n")
    assert cond('"""a""""') == s('a"')
    assert cond('"""say "hi" """') == s('say "hi" ')
    assert cond('"it\'s"') == s("it's")


def test_raw_strings_end_at_the_first_triple_quote_plus_up_to_two() -> None:
    """Elasticsearch's own cases (ExpressionTests), behind ``any where ``."""
    both = cond('"""""hello""world!"""" == """"foo"bar"""""')
    assert (both.left.value, both.right.value) == ('""hello""world!"', '"foo"bar""')
    assert error('any where """"""hello world!""" == """foobar"""').startswith(
        "line 1:17: mismatched input 'hello' expecting {<EOF>,")
    assert error('any where """""\\"hello world!"""""" == """foobar"""').startswith(
        "line 1:35: mismatched input '\" == \"' expecting {<EOF>,")
    assert error('any where """""\\"hello world!""\\"""" == """"""foobar"""').startswith(
        "line 1:47: mismatched input 'foobar' expecting {<EOF>,")
    assert error('any where """""\\"hello world!""\\"""" == """""\\"foobar\\"\\""""""') == (
        "line 1:62: token recognition error at: '\"'")


def test_unary_and_arithmetic() -> None:
    assert cond("-5.2") == Neg(lit(5.2, "double"))
    assert cond("+x") == Column("x")
    assert cond("1 * -2 <= -3 * 4") == Binary("<=", Binary("*", lit(1, "integer"), Neg(lit(2, "integer"))),
                                               Binary("*", Neg(lit(3, "integer")), lit(4, "integer")))
    assert cond("a - b - c") == Binary("-", Binary("-", Column("a"), Column("b")), Column("c"))
    assert cond("a + b * c % d") == Binary("+", Column("a"), Binary("%", Binary("*", Column("b"), Column("c")),
                                                                          Column("d")))
    assert cond("a / b") == Binary("/", Column("a"), Column("b"))


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_comparisons(op: str) -> None:
    assert cond(f"a {op} 2.0") == Binary(op, Column("a"), lit(2.0, "double"))


def test_null_comparisons_become_null_checks() -> None:
    assert cond("x == null") == IsNull(Column("x"))
    assert cond("null == x") == IsNull(Column("x"))
    assert cond("x != null") == IsNull(Column("x"), negated=True)
    assert cond("null != ?x") == IsNull(Optional("x"), negated=True)
    assert cond("null == null") == IsNull(lit(None, "null"))
    assert cond("null == (a > -1)") == IsNull(Binary(">", Column("a"), Neg(lit(1, "integer"))))
    assert cond("x < null") == Binary("<", Column("x"), lit(None, "null"))


def test_logic() -> None:
    a, b, c = Column("a"), Column("b"), Column("c")
    assert cond("a and b or c") == Logical("OR", Logical("AND", a, b), c)
    assert cond("a or b and c") == Logical("OR", a, Logical("AND", b, c))
    assert cond("not a and b") == Logical("AND", Not(a), b)
    assert cond("not a == 1") == Not(Binary("==", a, lit(1, "integer")))
    assert cond("not not a") == Not(Not(a))
    assert cond("(a or b) and c") == Logical("AND", Logical("OR", a, b), c)


def test_lookups() -> None:
    one, two = lit(1, "integer"), lit(2, "integer")
    assert cond("a in (1, 2)") == In(Column("a"), (one, two))
    assert cond("a not in (1)") == In(Column("a"), (one,), negated=True)
    assert cond('a in~ ("X")') == In(Column("a"), (s("X"),), insensitive=True)
    assert cond('a not in~ ("X")') == In(Column("a"), (s("X"),), negated=True, insensitive=True)
    assert cond("a in (b, 1)") == In(Column("a"), (Column("b"), one))  # fields: the verifier's to refuse


def test_string_matching() -> None:
    a = Column("a")
    assert cond('a : "p*"') == Like(a, (s("p*"),), insensitive=True)
    assert cond('a : ("p", "q")') == Like(a, (s("p"), s("q")), insensitive=True)
    assert cond('a like "p"') == Like(a, (s("p"),))
    assert cond('a like~ ("p", "q")') == Like(a, (s("p"), s("q")), insensitive=True)
    assert cond('a regex "p.*"') == Like(a, (s("p.*"),), regex=True)
    assert cond('a regex~ "p"') == Like(a, (s("p"),), regex=True, insensitive=True)


def test_predicates_bind_to_the_primary_on_their_left() -> None:
    one, two = lit(1, "integer"), lit(2, "integer")
    assert cond("a + b in (1, 2)") == Binary("+", Column("a"), In(Column("b"), (one, two)))
    assert cond("(a + b) in (1, 2)") == In(Binary("+", Column("a"), Column("b")), (one, two))
    assert cond('- a : "x"') == Neg(Like(Column("a"), (s("x"),), insensitive=True))
    assert cond("a * b not in (1) == c") == Binary(
        "==", Binary("*", Column("a"), In(Column("b"), (one,), negated=True)), Column("c"))


def test_function_calls() -> None:
    assert cond('concat(some.field, "x")') == Call("CONCAT", (Column("some.field"), s("x")))
    assert cond('startsWith~(a, "b")') == Call("STARTSWITH~", (Column("a"), s("b")))
    assert cond("CONCAT()") == Call("CONCAT", ())
    assert cond("length(between(a, \"x\", \"y\")) > 0").left == Call(
        "LENGTH", (Call("BETWEEN", (Column("a"), s("x"), s("y"))),))


def test_comments_are_whitespace() -> None:
    query = parse("// a comment\nprocess /* one /* nested /* twice */ */ more */ where // trailing\n true")
    assert query.filter.category == "process" and query.filter.condition == lit(True, "boolean")
    assert query.filter.condition.src == Src(3, 2, "true")
    assert error("process where /* open /* nested */ true").startswith("line 1:15: mismatched input '/'")


# --- sequences and samples ---

def shape(terms) -> list[tuple]:
    """Terms without their sources: category, keys, missing."""
    return [(t.filter.category, t.keys, t.missing) for t in terms]


def test_sequence_keys_maxspan_until_and_pipes() -> None:
    query = parse("sequence by user with maxspan=10s [a where true] by pid [b where true] by ppid "
                  "until [c where true] by pid | head 4")
    assert isinstance(query, SequenceQuery) and query.maxspan_ms == 10_000
    assert [t.keys for t in query.terms] == [(Column("user"), Column("pid")), (Column("user"), Column("ppid"))]
    assert query.until.filter.category == "c" and query.until.keys == (Column("user"), Column("pid"))
    assert [t.filter.category for t in query.terms] == ["a", "b"] and query.pipes[0].count == 4
    assert query.terms[0].filter.src.text == "a where true"


@pytest.mark.parametrize(("span", "ms"), [("1ms", 1), ("2s", 2000), ("3m", 180_000), ("4h", 14_400_000),
                                          ("5d", 432_000_000), ("6 s", 6000)])
def test_maxspan_units(span: str, ms: int) -> None:
    assert parse(f"sequence with maxspan={span} [a where true] [b where true]").maxspan_ms == ms


def test_runs_expand_in_place() -> None:
    query = parse("sequence by k [a where true] by j with runs=3 [b where true] by j")
    assert [t.filter.category for t in query.terms] == ["a", "a", "a", "b"]
    assert all(len(t.keys) == 2 for t in query.terms) and query.until is None and query.maxspan_ms is None
    assert len(parse("sequence [a where true] with runs=2").terms) == 2
    assert len(parse("sequence [a where true] with runs=100").terms) == 100


def test_missing_events() -> None:
    query = parse("sequence with maxspan=1h ![a where true] [b where true] ![c where true] with runs=2")
    assert shape(query.terms) == [("a", (), True), ("b", (), False), ("c", (), True), ("c", (), True)]
    assert query.terms[1].filter.condition == lit(True, "boolean")


def test_optional_keys() -> None:
    query = parse("sequence by ?k [a where true] by i [b where true] by ?j")
    assert query.terms[1].keys == (Optional("k"), Optional("j"))
    assert query.terms[0].keys == (Optional("k"), Column("i"))


def test_sample() -> None:
    query = parse("sample by host [a where true] by x [b where true] by y")
    assert isinstance(query, SampleQuery)
    assert shape(query.terms) == [("a", (Column("host"), Column("x")), False),
                                  ("b", (Column("host"), Column("y")), False)]
    assert len(parse("sample [a where true] by x [b where true] by y").terms) == 2


# --- errors ---

@pytest.mark.parametrize(("query", "message"), [
    # lexer and grammar errors: the column of the offending token
    ("process where a = 1", "line 1:17: mismatched input '='"),
    ("process where a == 1 == 2", "line 1:22: mismatched input '=='"),
    ("process where a AND b", "line 1:17: mismatched input 'AND'"),
    ("process where a in ()", "line 1:21: mismatched input ')'"),
    ("process where", "line 1:14: mismatched input '<EOF>'"),
    ("process where x # 1", "line 1:17: token recognition error at: '#'"),
    ("process where `wrong == true", "line 1:15: token recognition error at: '`wrong == true'"),
    ('process where "abc', "line 1:15: token recognition error at: '\"abc'"),
    ('process where "a\\w"', "line 1:15: token recognition error at: '\"a\\w'"),
    ('process where "ab\ncd"', "line 1:15: token recognition error at: '\"ab\\n'"),
    ("process where 1e400 > 1", "line 1:16: Number [1e400] is too large"),
    (f"process where {'9' * 400} > 1", f"line 1:16: Number [{'9' * 400}] is too large"),
    ('process where "\\u{U1}"', "line 1:15: token recognition error at: '\"\\u{U'"),
    ('process where "\\u{}"', "line 1:15: token recognition error at: '\"\\u{}'"),
    ("`identifier` where foo == true", "line 1:1: no viable alternative at input '`identifier`'"),
    ('process where """"""hello""" == 1', "line 1:21: mismatched input 'hello'"),
    ("process where a like b", "line 1:22: mismatched input 'b'"),
    ("sample [a where true] [b where true] with runs=2", "line 1:38: mismatched input 'with'"),
    ("sequence [a where true] [b where true] fork", "line 1:40: mismatched input 'fork'"),
    ("process where true | unique a b", "line 1:31: mismatched input 'b'"),
    ("process where a[0] == 1", "line 1:17: Array indexes are not supported"),
    ("process where descendant of [x where true]", "line 1:15: Process relationships are not supported"),
    # errors about a piece of the query: one column to the right, as ES reports them
    ("process where name=='hello world'", "line 1:22: Use double quotes [\"] to define string literals, not "
                                          "single quotes [']"),
    ("process where name == ?'hi'", "line 1:24: Use triple double quotes [\"\"\"] to define unescaped string "
                                    "literals, not [?']"),
    ('process where name == ?"hi"', "line 1:24: Use triple double quotes [\"\"\"] to define unescaped string "
                                    "literals, not [?\"]"),
    ('process where "\\u{D}"', "line 1:16: Unicode sequence should use [2-8] hex digits, [\\u{D}] has [1]"),
    ('process where "\\u{123456789}"', "line 1:16: Unicode sequence should use [2-8] hex digits, "
                                       "[\\u{123456789}] has [9]"),
    ('process where "\\u{10000000}"', "line 1:16: Invalid unicode character code [10000000]"),
    ('process where "\\u{dB12}"', "line 1:16: Invalid unicode character code, [dB12] is a surrogate code"),
    ("process where true | sort a", "line 1:21: Pipe [sort] is not supported"),
    ("process where true | hed 1", "line 1:23: Unrecognized pipe [hed], did you mean [head]?"),
    ("process where true | tale 1", "line 1:23: Unrecognized pipe [tale], did you mean [tail]?"),
    ("process where true | nope", "line 1:23: Unrecognized pipe [nope]"),
    ("process where true | head", "line 1:21: Pipe [head] expects exactly one argument but found [0]"),
    ("process where true | head 1, 2", "line 1:21: Pipe [head] expects exactly one argument but found [2]"),
    ("process where true | head -1", "line 1:28: Pipe [head] expects a positive integer but found [-1]"),
    ("process where true | tail 1.5", "line 1:28: Pipe [tail] expects a positive integer but found [1.5]"),
    ("process where true | tail x", "line 1:28: Pipe [tail] expects a positive integer but found [x]"),
    ("process where true | tail 1 - 2", "line 1:28: Pipe [tail] expects a positive integer but found [1 - 2]"),
    ("process where true | tail 1 / 0", "line 1:28: Pipe [tail] expects a positive integer but found [1 / 0]"),
    ("sequence with maxspan=1s by key [a where true] [b where true]",
     "line 1:2: Please specify sequence [by] before [with] not after"),
    ("sequence with maxspan=30 [a where true] [b where true]",
     "line 1:24: No time unit specified, did you mean [s] as in [30s]?"),
    ("sequence with maxspan=10 x [a where true] [b where true]",
     "line 1:27: Unrecognized time unit [x] in [10x], please specify one of [ms, s, m, h, d]"),
    ("sequence with maxspan=0s [a where true] [b where true]", "line 1:24: A positive maxspan value is required; "
                                                               "found [0]"),
    ("sequence with maxspan=1.5h [a where true] [b where true]",
     "line 1:24: Decimal time interval [1.5] not supported; please use an positive integer"),
    ("sequence [a where true] by x [b where true] by x, y",
     "line 1:46: Inconsistent number of join keys specified; expected [1] but found [2]"),
    ("sequence [a where true] by x [b where true]",
     "line 1:31: Inconsistent number of join keys specified; expected [1] but found [0]"),
    ("sequence by k [a where true] [b where true] until [c where true] by j",
     "line 1:67: Inconsistent number of join keys specified; expected [0] but found [1]"),
    ("sample [a where true] by x [b where true]",
     "line 1:29: Inconsistent number of join keys specified; expected [1] but found [0]"),
    ("sequence [a where true] by pid * 2 [b where true] by pid", "line 1:26: Unsupported join key "),
    ("sample by string(pid) [a where true] [b where true]", "line 1:9: Unsupported join key "),
])
def test_errors(query: str, message: str) -> None:
    assert error(query).startswith(message)


def test_expected_tokens_are_listed_in_antlr_style() -> None:
    assert error("process where a == 1 == 2") == (
        "line 1:22: mismatched input '==' expecting {<EOF>, 'and', 'or', '+', '-', '|'}")
    assert error("process where true |") == "line 1:21: mismatched input '<EOF>' expecting IDENTIFIER"


@pytest.mark.parametrize(("query", "message"), [
    ("sequence [a where true]", "line 1:2: A sequence requires a minimum of 2 queries, found [1]"),
    ("sequence [a where true] until [b where true]", "line 1:2: A sequence requires a minimum of 2 queries, "
                                                     "found [1]"),
    ("sequence [a where true] with runs=0", "line 1:36: A positive runs value is required; found [0]"),
    ("sequence [a where true] with runs=101", "line 1:36: A query cannot be repeated more than 100 times; "
                                              "found [101]"),
    ("sequence [a where true] with runs=99999999999999999999",
     "line 1:36: A query cannot be repeated more than 100 times; found [9223372036854775807]"),
    ("sequence [a where true] with repeats=2", "line 1:31: Unrecognized option [repeats], expecting [runs]"),
    ("sequence [a where true] with runs=100 [b where true] with runs=100 [c where true] with runs=57",
     "line 1:69: Sequence cannot contain more than 256 queries; found [257]"),
    ("sequence [a where true] ![b where true]", "line 1:2: [maxspan] is required for sequences with missing events "
                                                "queries; found none"),
    ("sample [a where true] by x ![b where true] by x", "line -1:0: Missing events are supported only for "
                                                        "sequences"),
    ("sample [a where true] by x", "line 1:2: A sample requires a minimum of 2 queries, found [1]"),
    ("sample by k [a where true] [b where true] [c where true] [d where true] [e where true] [f where true]",
     "line 1:89: A sample cannot contain more than 5 queries, found [6]"),
    ("sample [a where true] by x [b where true] by y [c where true]",
     "line 1:49: Inconsistent number of join keys specified; expected [1] but found [0]"),
    ("sample [a where true] [b where true]", "line 1:9: A sample must have at least one join key, found none"),
    ("sample by x [a where true] by x, y [b where true] by y, x",
     "line 1:29: Join keys must be used only once, found duplicates: [x]"),
    ("sample by x [a where true] [b where true] | head 1", "line 1:44: Samples do not support pipes yet"),
    ("sample by x [a where true] [b where true] | sort x", "line 1:44: Samples do not support pipes yet"),
    ("join [a where true] ![b where true]", "line -1:0: Missing events are supported only for sequences"),
    ("join [a where true] by x [b where true]",
     "line 1:27: Inconsistent number of join keys specified; expected [1] but found [0]"),
])
def test_sequence_and_sample_rules(query: str, message: str) -> None:
    assert error(query) == message


def test_checks_follow_elasticsearch_order() -> None:
    assert error("sequence with maxspan=10 by f(x) [a where true] [b where true]") == (
        "line 1:2: Please specify sequence [by] before [with] not after")
    assert error("sequence by f(x) with maxspan=10 [a where true] [b where true]") == (
        "line 1:11: Unsupported join key ")
    assert error("sequence [a where true] by x with runs=0 [b where true]") == (
        "line 1:41: A positive runs value is required; found [0]")
    assert error("sequence [a where true] by x [b where true] with runs=0") == (
        "line 1:31: Inconsistent number of join keys specified; expected [1] but found [0]")


def test_sequence_quirks_kept_from_elasticsearch() -> None:
    """A decimal ``runs`` counts as none; ``runs`` on ``until`` leaves the extra copies as
    stages; a ``!`` on ``until`` is ignored."""
    assert len(parse("sequence [a where true] with runs=1.5 [b where true]").terms) == 2
    query = parse("sequence [a where true] until [b where true] with runs=2")
    assert shape(query.terms) == [("a", (), False), ("b", (), False)] and query.until.filter.category == "b"
    query = parse("sequence [a where true] [b where true] until ![c where true]")
    assert query.until.missing is False and query.until.filter.category == "c"


def test_only_missing_stages_is_an_internal_error_as_in_elasticsearch() -> None:
    with pytest.raises(ServiceError) as caught:
        parse("sequence with maxspan=1h ![a where true] ![b where true]")
    assert (caught.value.status, caught.value.type) == (500, "illegal_state_exception")
    assert caught.value.reason == "A sequence requires at least one positive event query; found none"


def test_join_is_refused_as_elasticsearch_does() -> None:
    with pytest.raises(ServiceError) as caught:
        parse("join by k [a where true] [b where true]")
    assert (caught.value.status, caught.value.type) == (400, "verification_exception")
    assert caught.value.reason == "Found 1 problem\nline 1:1: JOIN command is not supported"
    assert error("join [a where true] [b where true] | sort x") == "line 1:37: Pipe [sort] is not supported"


def test_deep_queries_parse_without_recursion_up_to_a_limit() -> None:
    deep = "process where " + "(" * 400 + "true" + ")" * 400
    assert parse(deep).filter.condition == lit(True, "boolean")
    chain = "process where " + " and ".join(["a == 1"] * 400)
    assert parse(chain).filter.condition.op == "AND"
    too_deep = "process where " + "not " * 500 + "true"
    assert error(too_deep) == ("line -1:0: EQL statement is too large, causing stack overflow when generating the "
                               f"parsing tree: [{too_deep}]")


def test_parsing_error_is_shared_with_esql() -> None:
    from service.query.esql import parser as esql_parser
    assert esql_parser.ParsingError is ParsingError


# --- the conformance suite ---

def _queries(path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    # test_extra.toml has bare `null`s in its join_keys arrays, which TOML does not allow
    return tomllib.loads(re.sub(r"(?m)^(join_keys\s*=.*)$",
                                lambda m: re.sub(r'(?<!")\bnull\b(?!")', '"null"', m.group(1)), text))["queries"]


def _disabled_queries() -> list[dict]:
    """The ``#[[queries]]`` blocks of test_queries.toml, uncommented."""
    blocks, current = [], None
    for line in (EQL / "test_queries.toml").read_text(encoding="utf-8").split("\n"):
        if line.startswith("#[[queries]]"):
            current = [line[1:]]
            blocks.append(current)
        elif current is not None and line.startswith("#"):
            current.append(line[1:])
        else:
            current = None
    return [tomllib.loads("\n".join(block))["queries"][0] for block in blocks]


needs_conformance = pytest.mark.skipif(not EQL.is_dir(), reason=f"no EQL conformance data at {EQL}")

# Disabled queries the parser accepts, as Elasticsearch's parser does: unknown fields,
# field-to-field comparisons and Endgame functions are refused by the verifier and the
# dialect; the others are valid EQL whose Endgame expectations differ (case-insensitive).
ACCEPTED_BY_THE_PARSER = {
    "missingField1", "equalsNullHead", "invalidFieldName", "badFieldWithLength", "fakeField",
    "fakeFieldWithHead1", "fakeFieldWithHead2",  # unknown fields (verifier)
    "processWithMultipleConditions2", "compareTwoFields1", "compareTwoFields2", "twoINs",
    "twoINsCaseInsensitive", "stringEqualsCaseInsensitive2", "fieldsComparisonCaseInsensitive",
    "fieldComparisonCaseInsensitive", "moduloEquals",  # field-to-field comparisons (verifier)
    "arrayContainsCaseInsensitive1", "arrayContainsCaseInsensitive2", "arrayContainsCaseInsensitive3",
    "arrayContainsCaseInsensitive4", "arrayContainsCaseInsensitive5", "matchLite1", "matchLite2", "matchLite3",
    "matchLite4", "match1", "arraySearch1", "arraySearchCaseSensitive", "arraySearchCaseInsensitive1",
    "arraySearchCaseInsensitive2", "arraySearchWithMysteriousField1", "arraySearchWithMysteriousField2",
    "arraySearchWithMysteriousField3", "arraySearchWithMysteriousField4", "arraySearchWithMysteriousField5",
    "arraySearchWithMysteriousField6", "arraySearchWithMysteriousField7", "arraySearchWithMysteriousField8",
    "safeWrapper", "arrayCount1", "arrayCount2",  # Endgame functions (dialect: unknown function)
    "notExitCodeGtWithHead2", "notExitCodeGtWithHead3", "processWithStringComparisonCaseInsensitive1",
    "processWithStringComparisonCaseInsensitive2", "processWithStringComparisonCaseInsensitive3",
    "processWithStringComparisonCaseInsensitive4", "nestedSetComparisons",
    "lengthCaseInsensitiveAndBetween",  # valid EQL, different expectations
}
VALID_EQL = {"notExitCodeGtWithHead2", "notExitCodeGtWithHead3", "processWithStringComparisonCaseInsensitive1",
             "processWithStringComparisonCaseInsensitive2", "processWithStringComparisonCaseInsensitive3",
             "processWithStringComparisonCaseInsensitive4", "nestedSetComparisons", "lengthCaseInsensitiveAndBetween"}


SUITES = ["additional_test_queries.toml", "test_extra.toml", "test_missing_events.toml", "test_queries.toml",
          "test_queries_date.toml", "test_queries_date_nanos.toml", "test_sample.toml", "test_sample_multi.toml"]


@needs_conformance
def test_the_suites_are_all_known() -> None:
    assert sorted(p.name for p in EQL.glob("*.toml")) == SUITES


@needs_conformance
@pytest.mark.parametrize("name", SUITES)
def test_every_conformance_query_parses(name: str) -> None:
    queries = _queries(EQL / name)
    assert queries
    for query in queries:
        parse(query["query"].strip())


@needs_conformance
def test_disabled_endgame_queries_are_rejected() -> None:
    disabled = _disabled_queries()
    assert len(disabled) == 112
    accepted = set()
    for query in disabled:
        try:
            parse(query["query"].strip())
        except ParsingError:
            continue
        except Exception as exc:  # only `join`: a verification error, as in Elasticsearch
            assert getattr(exc, "type", None) == "verification_exception", exc
            continue
        accepted.add(query["name"])
    assert accepted == ACCEPTED_BY_THE_PARSER
