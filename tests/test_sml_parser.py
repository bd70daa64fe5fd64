"""The SML parser: the exact AST of every CORE command and expression form, both
precedences (search and where), default aggregate names, the structural rules of
spec/sml.md §1, refusals and syntax errors with their positions, and the queries of
§10 and §12."""

from __future__ import annotations

import dataclasses
import pickle
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lark import Token

from service.query.errors import ParsingError
from service.query.expr import Binary, Call, Column, Expr, In, Literal, Logical, Neg, Not, Src
from service.query.sml.ast import (Agg, Dedup, Eval, Fields, Head, InputLookup, Join, MakeResults, Pipeline, Rename,
                                   Search, Sort, Source, Stats, Table, Tail, Term, Text, Where)
from service.query.sml.parser import SECONDARY, parse


def command(text: str, index: int = 1):
    """The command at ``index`` of ``source a | <text>``."""
    return parse(f"source a | {text}").commands[index]


def search(text: str) -> Expr:
    return command(f"search {text}").condition


def where(text: str) -> Expr:
    return command(f"where {text}").condition


def error(text: str) -> str:
    with pytest.raises(ParsingError) as caught:
        parse(text)
    assert caught.value.status == 400 and caught.value.type == "parsing_exception"
    return caught.value.reason


def col(name: str) -> Column:
    return Column(name)


def i(value: int) -> Literal:
    return Literal(value, "integer")


def s(value: str) -> Literal:
    return Literal(value, "keyword")


def AND(left: Expr, right: Expr) -> Logical:
    return Logical("AND", left, right)


def OR(left: Expr, right: Expr) -> Logical:
    return Logical("OR", left, right)


def eq(left: Expr, right: Expr) -> Binary:
    return Binary("==", left, right)


# --- source ---

def test_source_index_list_patterns_and_parameters() -> None:
    assert parse("source nginx-1").commands == (Source(("nginx-1",), None, None, None),)
    assert parse("source tweets1,tweets2").commands[0].indices == ("tweets1", "tweets2")
    assert parse("source a , b*,c.d").commands[0].indices == ("a", "b*", "c.d")
    assert parse("source sysmon_operational-* qsize=5").commands[0] == Source(("sysmon_operational-*",), 5, None, None)
    assert parse('source a earliest=-1d@d latest="2024-05-02 00:00"').commands[0] == \
        Source(("a",), None, "-1d@d", "2024-05-02 00:00")
    assert parse("source QSIZE = 3 latest=now/d a Earliest=now-1h").commands[0] == \
        Source(("a",), 3, "now-1h", "now/d")
    assert parse("source a earliest=2024-05-01T00:00:00Z").commands[0].earliest == "2024-05-01T00:00:00Z"


def test_source_refusals() -> None:
    assert error("source a qsize=abc") == "line 1:16: [qsize] must be a positive integer, found [abc]"
    assert error("source a qsize=0") == "line 1:16: [qsize] must be a positive integer, found [0]"
    assert error("source a qsize=1 qsize=2") == "line 1:18: duplicate parameter [qsize]"
    assert error("source ab$c") == "line 1:8: invalid index name or pattern [ab$c]"
    assert error("source a b") == "line 1:10: expected [qsize=], [earliest=], [latest=] or [,] after [a], found [b]"
    assert error("source") == "line 1:7: expected an index name or pattern, [qsize=], [earliest=] or [latest=] " \
                               "after [source]"
    assert error("source qsize=5") == "line 1:15: expected an index name or pattern, [qsize=], [earliest=] or " \
                                      "[latest=] after [5]"


def test_commands_carry_the_position_of_their_name_and_their_text() -> None:
    pipeline = parse("source a  |\n  search  x=1 \n| head 3")
    assert [c.src for c in pipeline.commands] == [Src(1, 1, "source a"), Src(2, 3, "search  x=1"),
                                                  Src(3, 3, "head 3")]
    assert pipeline == Pipeline((Source(("a",), None, None, None), Search(Term("x", "=", 1)), Head(3)),
                                "source a  |\n  search  x=1 \n| head 3")


# --- search ---

def test_search_comparisons_and_value_types() -> None:
    assert [search(f"f{op}v") for op in ("=", "!=", "<", "<=", ">", ">=")] == \
        [Term("f", op, "v") for op in ("=", "!=", "<", "<=", ">", ">=")]
    assert search("count > 10") == Term("count", ">", 10)
    assert search("x=1.5") == Term("x", "=", 1.5)
    assert search("x=-1") == Term("x", "=", -1)
    assert search('event.code="4768"') == Term("event.code", "=", "4768")  # quoted: a string
    assert search("user.name=alice") == Term("user.name", "=", "alice")
    assert search('file.path="*/example.json"') == Term("file.path", "=", "*/example.json")
    assert search("host=web-*") == Term("host", "=", "web-*")
    assert search("f=*") == Term("f", "=", "*")
    assert search("@timestamp>=now-1h") == Term("@timestamp", ">=", "now-1h")
    assert search("'user-name'=bob") == Term("user-name", "=", "bob")
    assert search('country="IN"') == Term("country", "=", "IN")


def test_search_strings_escapes_and_backslashes() -> None:
    assert search(r'path="C:\Windows\*"') == Term("path", "=", r"C:\Windows\*")
    assert search(r'msg="say \"hi\" \\ ok"') == Term("msg", "=", r'say "hi" \ ok')
    assert search(r'"a | b"') == Text("a | b")  # a pipe inside quotes does not split


def test_search_full_text_terms() -> None:
    assert search("mail") == Text("mail")
    assert search('"*4624*"') == Text("*4624*")
    assert search("*462*") == Text("*462*")
    assert search("4624") == Text("4624")
    assert search('"two words"') == Text("two words")


def test_search_in_is_an_or_of_equal_terms() -> None:
    assert search('f IN (a, "b*", 3)') == OR(OR(Term("f", "=", "a"), Term("f", "=", "b*")), Term("f", "=", 3))
    assert search("f in (a)") == Term("f", "=", "a")
    a, b, c, d = (Term("f", "=", v) for v in "abcd")
    assert search("f IN (a, b, c, d)") == OR(OR(a, b), OR(c, d))  # balanced: long lists stay shallow


def test_search_precedence_not_then_and_then_or() -> None:
    a, b, c = Text("a"), Text("b"), Text("c")
    assert search("a AND b OR c") == OR(AND(a, b), c)
    assert search("a OR b AND c") == OR(a, AND(b, c))
    assert search("a b OR c") == OR(AND(a, b), c)  # juxtaposition is AND
    assert search("a OR b c") == OR(a, AND(b, c))
    assert search("NOT a b") == AND(Not(a), b)
    assert search("NOT (a OR b)") == Not(OR(a, b))
    assert search("a AND (b OR c)") == AND(a, OR(b, c))
    assert search("a and b or not c") == OR(AND(a, b), Not(c))  # keywords in any case
    # the documented examples (§5)
    assert search('event.code="4768" AND event.outcome="success" OR event.action="logged-in"') == \
        OR(AND(Term("event.code", "=", "4768"), Term("event.outcome", "=", "success")),
           Term("event.action", "=", "logged-in"))
    assert search('host.name="mail" AND NOT event.code="4625" OR event.code="4624"') == \
        OR(AND(Term("host.name", "=", "mail"), Not(Term("event.code", "=", "4625"))), Term("event.code", "=", "4624"))


def test_search_keywords_only_as_whole_words() -> None:
    assert search("android order notice index") == \
        AND(AND(AND(Text("android"), Text("order")), Text("notice")), Text("index"))


def test_search_positions() -> None:
    condition = search("a=1  OR\n b")
    assert condition.src == Src(1, 19, "a=1  OR\n b")
    assert condition.left.src == Src(1, 19, "a=1") and condition.right.src == Src(2, 2, "b")


def test_search_refusals() -> None:
    assert error("source a | search 4624=x") == "line 1:19: invalid field name [4624], quote it: ['4624']"
    assert error("source a | search x=") == "line 1:21: expected a value after [=]"
    assert error("source a | search a AND") == "line 1:24: expected a search term after [AND]"
    assert error("source a | search (x=1") == "line 1:23: expected a search term, [and], [or] or [)] after [1]"
    assert error("source a | search 'a'") == "line 1:22: expected a comparison operator or [in] after ['a']"
    assert error('source a | search "abc') == 'line 1:19: string is not closed by ["]'
    assert error("source a | search") == "line 1:18: expected a search term after [search]"


# --- where and eval expressions ---

def test_where_precedence_or_binds_tighter_than_and() -> None:
    a, b, c = col("a"), col("b"), col("c")
    assert where("a AND b OR c") == AND(a, OR(b, c))
    assert where("a OR b AND c") == AND(OR(a, b), c)
    assert where("(a AND b) OR c") == OR(AND(a, b), c)
    assert where("NOT a OR b") == OR(Not(a), b)
    assert where("a and b and c") == AND(AND(a, b), c)
    assert where('host.name=="mail" AND event.code==4624 OR user.name=="alice"') == \
        AND(eq(col("host.name"), s("mail")), OR(eq(col("event.code"), i(4624)), eq(col("user.name"), s("alice"))))


def test_where_comparisons_and_operands() -> None:
    assert [where(f"x {op} 1") for op in ("==", "!=", "<", "<=", ">", ">=")] == \
        [Binary(op, col("x"), i(1)) for op in ("==", "!=", "<", "<=", ">", ">=")]
    assert where("x = 1") == eq(col("x"), i(1))  # `=` is `==`
    assert where("user.name == host.name") == eq(col("user.name"), col("host.name"))
    assert where("'user-name' == \"a\"") == eq(col("user-name"), s("a"))
    assert where("x IN (1, \"a\", y)") == In(col("x"), (i(1), s("a"), col("y")))
    assert where("NOT x == 1") == Not(eq(col("x"), i(1)))
    assert where("x == null") == eq(col("x"), Literal(None, "null"))
    assert where("x == TRUE OR x == false") == OR(eq(col("x"), Literal(True, "boolean")),
                                                  eq(col("x"), Literal(False, "boolean")))


def test_eval_arithmetic_precedence_and_negation() -> None:
    x, y = col("x"), col("y")
    assert where("x + 2 * y > 3 - x / y % 2") == \
        Binary(">", Binary("+", x, Binary("*", i(2), y)),
               Binary("-", i(3), Binary("%", Binary("/", x, y), i(2))))
    assert where("(x + 2) * y == 1") == eq(Binary("*", Binary("+", x, i(2)), y), i(1))
    assert where("x - 1 - 2 == 0") == eq(Binary("-", Binary("-", x, i(1)), i(2)), i(0))
    assert where("errNo == -1") == eq(col("errNo"), i(-1))  # `-1` is a number (§2)
    assert where("-x == -(1)") == eq(Neg(x), Neg(i(1)))
    assert where("x == - -1") == eq(x, Neg(i(-1)))
    assert where("x-1 == 0") == eq(Binary("-", x, i(1)), i(0))


def test_literal_types() -> None:
    assert where("x == 2147483647").right == i(2147483647)
    assert where("x == -2147483648").right == i(-2147483648)
    assert where("x == 2147483648").right == Literal(2147483648, "long")
    assert where("x == 99999999999999999999").right == Literal(1e20, "double")
    assert where("x == 1.5").right == Literal(1.5, "double")
    assert where("x == 1e3").right == Literal(1000.0, "double")
    assert where(r'x == "a\"b\\c\d"').right == s('a"b\\c\\d')


def test_function_calls_lower_case_and_boolean_constants() -> None:
    assert where("isnotnull(event.type)") == Call("isnotnull", (col("event.type"),))
    assert where("IsNull(x) AND Like(x, \"a%\")") == AND(Call("isnull", (col("x"),)),
                                                          Call("like", (col("x"), s("a%"))))
    assert where("myVal == false()") == eq(col("myVal"), Call("false", ()))
    assert where("pi() > round(x, 2)") == Binary(">", Call("pi", ()), Call("round", (col("x"), i(2))))


def test_expression_positions() -> None:
    condition = where("a == 1 AND\n  f(b, -2)")
    assert condition.src == Src(1, 18, "a == 1 AND\n  f(b, -2)")
    assert condition.right == Call("f", (col("b"), i(-2)))
    assert condition.right.src == Src(2, 3, "f(b, -2)")
    assert condition.right.args[1].src == Src(2, 8, "-2")


def test_eval_and_peval() -> None:
    assert command('eval res = if(errNo == -1, "OK", "NOTOK")') == \
        Eval((("res", Call("if", (eq(col("errNo"), i(-1)), s("OK"), s("NOTOK")))),), False)
    assert command("eval a=1, 'new field'=a+1") == \
        Eval((("a", i(1)), ("new field", Binary("+", col("a"), i(1)))), False)
    assert parse("source a | search x=1 | peval ok=x*2").commands[2] == \
        Eval((("ok", Binary("*", col("x"), i(2))),), True)
    assert command("eval b = x = 1") == Eval((("b", eq(col("x"), i(1))),), False)


def test_positions_of_commands_that_start_mid_line_after_other_lines() -> None:
    pipeline = parse('source a |\n search x=1 |\n  stats count(x) as n by y | where z == "a" AND\n q')
    assert pipeline.commands[3].src == Src(3, 30, 'where z == "a" AND\n q')
    assert pipeline.commands[3].condition.left.src == Src(3, 36, 'z == "a"')
    assert pipeline.commands[3].condition.right.src == Src(4, 2, "q")
    assert pipeline.commands[2].aggs[0].src == Src(3, 9, "count(x) as n")
    assert error("source a |\n head 1 | where x ==\n  )") == "line 3:3: expected an expression after [==], found [)]"
    assert error("source a |\n head 1 | where x ==") == "line 2:21: expected an expression after [==]"
    assert error("source a |\n head 1 | where") == "line 2:16: expected an expression after [where]"
    assert error("source a |\n head 1 | where x $") == \
        "line 2:19: expected an operator, [and], [or], [in] or [(] after [x], found [$]"
    assert error("source a |\n head 1 | dedup 0 x") == "line 2:17: [dedup] count must be a positive integer, found [0]"


def test_expression_refusals() -> None:
    assert error("source a | where") == "line 1:17: expected an expression after [where]"
    assert error("source a | where x ==") == "line 1:22: expected an expression after [==]"
    assert error("source a | where x == 1 )") == \
        "line 1:25: expected an arithmetic operator, [and] or [or] after [1], found [)]"
    assert error("source a | eval x") == "line 1:18: expected [=] after [x]"
    assert error("source a | eval a=1 b=2") == \
        "line 1:21: expected an operator, [and], [or], [in] or [,] after [1], found [b]"
    assert error("source a | eval x=1 $") == \
        "line 1:21: expected an operator, [and], [or], [in] or [,] after [1], found [$]"
    assert error("source a\n| search x=1\n  | where (x") == \
        "line 3:13: expected an operator, [and], [or], [in], [(] or [)] after [x]"
    assert error("source a | where a < b < c") == \
        "line 1:24: expected an arithmetic operator, [and], [or] or [(] after [b], found [<]"


def test_nesting_deeper_than_the_engine_walks_is_refused() -> None:
    assert where("(" * 100 + "x" + ")" * 100) == col("x")
    deep = "source a | where " + "NOT " * 500 + "x"
    assert error(deep).startswith("line 1:") and error(deep).endswith("expression nested deeper than 400 levels")


# --- aggs and stats ---

def test_stats_aggregates_names_and_by() -> None:
    assert command("stats count") == Stats((Agg("count", (), "count"),), (), False)
    assert command("stats count(f), dc(user.name) as users by host.name") == \
        Stats((Agg("count", (col("f"),), "count(f)"), Agg("dc", (col("user.name"),), "users")), ("host.name",), False)
    assert command("stats perc( f ,95 ), latest(f,ts) by a, b c") == \
        Stats((Agg("perc", (col("f"), i(95)), "perc(f, 95)"), Agg("latest", (col("f"), col("ts")), "latest(f, ts)")),
              ("a", "b", "c"), False)
    assert command("STATS Count AS n BY 'a b'") == Stats((Agg("count", (), "n"),), ("a b",), False)
    assert command("stats Max(x) sum(x)") == \
        Stats((Agg("max", (col("x"),), "Max(x)"), Agg("sum", (col("x"),), "sum(x)")), (), False)
    assert command("stats count()").aggs == (Agg("count", (), "count()"),)
    assert command('stats count(eval(x == "a, b"))').aggs[0].name == 'count(eval(x=="a, b"))'
    assert [a.src for a in command("stats count,\n  avg( x ) as m").aggs] == [Src(1, 18, "count"),
                                                                          Src(2, 3, "avg( x ) as m")]


def test_aggs_is_storage_executed_and_accepts_composite() -> None:
    assert command("aggs count by host.name") == Stats((Agg("count", (), "count"),), ("host.name",), True)
    assert command("aggs composite=true count, latest(@timestamp) by user.name") == \
        Stats((Agg("count", (), "count"), Agg("latest", (col("@timestamp"),), "latest(@timestamp)")),
              ("user.name",), True)
    assert error("source a | aggs composite=yes count") == \
        "line 1:27: [composite] must be true or false, found [yes]"


def test_stats_refusals() -> None:
    assert error("source auth | aggs count by") == "line 1:28: expected a field name after [by]"
    assert error("source auth | stats count by | head") == "line 1:29: expected a field name after [by]"
    assert error("source a | stats") == "line 1:17: expected a field name after [stats]"
    assert error("source a | stats count as") == "line 1:26: expected a field name after [as]"


# §2: the keywords (AND OR NOT IN AS BY) are no field names; a field so named is written
# in single quotes. A keyword where a field name goes is refused, never read as a field
# (`stats count by host.name as h` grouped by three fields, two of them missing, and kept no row)
KEYWORDS_FOR_FIELDS = [
    ("stats count by host.name as h", "line 1:40: expected a field name or [,] after [host.name], found [as]"),
    ("stats count by as", "line 1:30: expected a field name after [by], found [as]"),
    ("eventstats count by host.name as h", "line 1:45: expected a field name or [,] after [host.name], found [as]"),
    ("streamstats count by host.name as h",
     "line 1:46: expected a field name, a parameter, [by] or [,] after [host.name], found [as]"),
    ("top user.name as u", "line 1:29: expected a field name, a parameter, [by] or [,] after [user.name], found [as]"),
    ("table user.name as u", "line 1:31: expected a field name or pattern or [,] after [user.name], found [as]"),
    ("dedup user.name as u",
     "line 1:31: expected a field name, [sortby], [keepempty=], [consecutive=] or [,] after [user.name], found [as]"),
    ("sort user.name as u",
     "line 1:30: expected a field name, [asc], [desc], [,], [-] or [+] after [user.name], found [as]"),
    ("fields user.name as u", "line 1:32: expected a field name or pattern or [,] after [user.name], found [as]"),
    ("join user.name as u [ source auth ]",
     "line 1:30: expected a field name, a parameter, a subsearch [...] or [,] after [user.name], found [as]"),
    ("where and == 1", "line 1:21: expected an expression after [where], found [and]"),
    ("table by", "line 1:21: expected a field name or pattern after [table], found [by]"),
]


@pytest.mark.parametrize(("text", "reason"), KEYWORDS_FOR_FIELDS)
def test_a_keyword_is_no_field_name(text: str, reason: str) -> None:
    assert error(f"source auth | {text}") == reason


def test_quoted_keywords_and_names_that_start_with_one_are_fields() -> None:
    assert command("stats count by 'as', byte, notes, in.bytes, order") == \
        Stats((Agg("count", (), "count"),), ("as", "byte", "notes", "in.bytes", "order"), False)
    assert command("table 'by', and*, asset") == Table(("by", "and*", "asset"))
    assert command("where android == 1") == Where(eq(col("android"), i(1)))


# --- fields, table, rename ---

def test_fields_and_table() -> None:
    assert command("fields host.name, user.*") == Fields(False, ("host.name", "user.*"))
    assert command("fields + a b") == Fields(False, ("a", "b"))
    assert command("fields - _id, 'odd-name'") == Fields(True, ("_id", "odd-name"))
    assert command("fields -a") == Fields(True, ("a",))
    assert command("table event.code, event.outcome, event.action") == \
        Table(("event.code", "event.outcome", "event.action"))
    assert command("table @timestamp user.name *") == Table(("@timestamp", "user.name", "*"))
    assert error("source a | fields") == "line 1:18: expected a field name or pattern, [-] or [+] after [fields]"
    assert error("source a | table a-b") == "line 1:19: expected a field name or pattern or [,] after [a], found [-b]"


def test_rename() -> None:
    assert command("rename a as b, 'c d' AS e f as g") == Rename((("a", "b"), ("c d", "e"), ("f", "g")))
    assert error("source a | rename a b") == "line 1:21: expected [as] after [a], found [b]"
    assert command("rename host.* as h_*, *.name AS *") == Rename((("host.*", "h_*"), ("*.name", "*")))
    assert error("source a | rename host.* as h") == "line 1:19: [rename] pattern [h] must hold as many [*] as [host.*]"


def test_names_a_query_gives_may_be_double_quoted_as_in_spl() -> None:
    # SPL names a new field with spaces in double quotes (stats count as "Event Count", rename
    # x as "Nice Name", table "Nice Name"); §2's single quotes stay the documented spelling
    assert command('stats count as "Event Count", dc(u) AS "Users" by h') == \
        Stats((Agg("count", (), "Event Count"), Agg("dc", (col("u"),), "Users")), ("h",), False)
    assert command('rename "dc(u)" as "Distinct \\"users\\"", h as "Host"') == \
        Rename((("dc(u)", 'Distinct "users"'), ("h", "Host")))
    assert command('table "Event Count", h') == Table(("Event Count", "h"))
    assert command('fields - "Event Count"') == Fields(True, ("Event Count",))


# --- sort, head, tail, dedup ---

def test_sort() -> None:
    assert command("sort num") == Sort((("num", False),), None)
    assert command("sort -count, +@timestamp, b desc, c ASC d") == \
        Sort((("count", True), ("@timestamp", False), ("b", True), ("c", False), ("d", False)), None)
    assert command("sort 5 - x") == Sort((("x", True),), 5)
    assert command("sort -x desc") == Sort((("x", True),), None)
    assert command("sort 0 x") == Sort((("x", False),), None)  # SPL's `sort 0`: no limit
    # SPL writes the count also as limit=<int>, as head and tail take it (§7.9)
    assert command("sort limit=3 x, -y") == Sort((("x", False), ("y", True)), 3)
    assert command("sort LIMIT = 0 x") == Sort((("x", False),), None)
    assert error("source a | sort limit=x y") == "line 1:23: expected a number after [=], found [x]"
    assert error("source a | sort +x desc") == "line 1:20: [desc] contradicts the sign [+] of [x]"
    assert error("source a | sort") == "line 1:16: expected a field name, a number, [limit=], [-] or [+] after [sort]"
    assert error("source a | sort x y -") == "line 1:22: expected a field name after [-]"


def test_head_and_tail() -> None:
    assert command("head") == Head(10)
    assert command("head 5") == Head(5)
    assert command("head limit=3") == Head(3)
    assert command("head 0") == Head(0)
    assert command("tail") == Tail(10)
    assert command("TAIL LIMIT = 2") == Tail(2)
    assert error("source a | head -1") == "line 1:17: expected a number or [limit=] after [head], found [-1]"
    assert error("source a | head 1.5") == "line 1:17: [head] count must be a non-negative integer, found [1.5]"
    assert error("source a | head 5 6") == "line 1:19: unexpected [6] after [5]"


def test_dedup() -> None:
    assert command("dedup user.name") == Dedup(("user.name",))
    assert command("dedup 2 a, b keepempty=true consecutive=TRUE") == Dedup(("a", "b"), 2, True, True)
    assert command("dedup a 'b c' consecutive=false") == Dedup(("a", "b c"), 1, False, False)
    assert command("dedup 3 keepempty=true x") == Dedup(("x",), 3, True, False)
    assert error("source a | dedup") == \
        "line 1:17: expected a field name, a number, [keepempty=] or [consecutive=] after [dedup]"
    assert error("source a | dedup 0 x") == "line 1:18: [dedup] count must be a positive integer, found [0]"
    assert error("source a | dedup keepempty=true x keepempty=false") == "line 1:35: duplicate parameter [keepempty]"
    assert error("source a | dedup x keepempty=maybe") == "line 1:30: [keepempty] must be true or false, found [maybe]"
    # SPL's sortby: the rows kept, then sorted as by sort
    assert command("dedup 2 a, b keepempty=true SORTBY -c, d desc") == \
        Dedup(("a", "b"), 2, True, False, (("c", True), ("d", True)))
    assert command("dedup a sortby +b") == Dedup(("a",), sort=(("b", False),))
    assert command("dedup sortbyx") == Dedup(("sortbyx",))
    assert error("source a | dedup a sortby") == \
        "line 1:26: expected a field name, [-] or [+] after [sortby]"


# --- the pipeline's structure (§1, §1.1) ---

def test_placement_rule_of_aggs_and_peval() -> None:
    assert error("source auth | eval ok=1 | aggs count") == \
        "line 1:27: [aggs] may only follow source, search, peval or inputlookup"
    assert error("source auth | where x==1 | peval ok=1") == \
        "line 1:28: [peval] may only follow source, search, peval or inputlookup"
    assert error("source auth | search x=1 | stats count | aggs count") == \
        "line 1:42: [aggs] may only follow source, search, peval or inputlookup"
    pipeline = parse("source auth | search x=1 | peval ok=1 | aggs sum(ok) as n")
    assert pipeline.commands[1:] == (Search(Term("x", "=", 1)), Eval((("ok", i(1)),), True),
                                     Stats((Agg("sum", (col("ok"),), "n"),), (), True))
    assert parse("source a | peval x=1 | peval y=x | aggs count").commands[3].storage


def test_generating_command_first_and_only_first() -> None:
    assert error("search x") == "line 1:1: query must start with a generating command"
    assert error("  head 5 | source a") == "line 1:3: query must start with a generating command"
    assert error("source a | source b") == "line 1:12: generating command [source] may only start a pipeline"


def test_empty_query_and_empty_commands() -> None:
    assert error("") == "line 1:1: empty query"
    assert error(" \n ") == "line 1:1: empty query"
    assert error("| source a") == "line 1:1: expected a command, found [|]"
    assert error("source a |") == "line 1:11: expected a command after [|]"
    assert error("source a |  \n ") == "line 1:11: expected a command after [|]"
    assert error("source a | | head") == "line 1:12: expected a command after [|], found [|]"
    assert error("source a | 5") == "line 1:12: expected a command after [|], found [5]"


def test_command_names_are_case_insensitive_fields_are_not() -> None:
    pipeline = parse("SOURCE Auth | Search Host.Name=Mail | WHERE X == 1 | Table Host.Name")
    assert pipeline.commands[1:] == (Search(Term("Host.Name", "=", "Mail")), Where(eq(col("X"), i(1))),
                                     Table(("Host.Name",)))
    assert pipeline.commands[0].indices == ("Auth",)


def test_unknown_and_not_yet_supported_commands() -> None:
    assert error("source a | foo x") == "line 1:12: unknown command [foo]"
    assert error("source a | Frobnicate") == "line 1:12: unknown command [Frobnicate]"
    for name in sorted(SECONDARY):
        assert error(f"source a | {name} x") == f"line 1:12: command [{name}] is not supported yet"
    assert parse("makeresults count=3").commands == (MakeResults(3),)
    assert parse("inputlookup users").commands == (InputLookup("users"),)
    timechart = parse("source a\n  | TimeChart count").commands[1]  # supported now: names are case-insensitive
    assert (type(timechart).__name__, timechart.src.line, timechart.src.col) == ("Timechart", 2, 5)


def test_subsearches_are_lexed_whole() -> None:
    # the pipe inside [ ] does not split the outer pipeline
    _, join, head = parse("source a | join user [ source b | head 1 ] | head 2").commands
    assert join == Join(("user",), Pipeline((Source(("b",), None, None, None), Head(1)), "source b | head 1"))
    assert head == Head(2) and join.subsearch.commands[1].src == Src(1, 35, "head 1")
    assert error("source a | join [ source b ") == "line 1:17: subsearch [[] is not closed by []]"
    assert error('source a | append [ search "]" ') == "line 1:19: subsearch [[] is not closed by []]"
    # a subsearch in an error is named so, not shown as the blanks it is parsed as
    assert error("source a | join [ source b ]") == \
        "line 1:17: expected a field name or a parameter after [join], found [[...]]"
    assert error("source a | append [ source b ] x") == "line 1:32: unexpected [x] after [[...]]"


# --- the documented queries ---

WORKED_EXAMPLES = [  # §10, those with CORE commands only
    "source auth | search event.code=4625 | table @timestamp, user.name",
    "source auth | aggs count by host.name",
    "source auth | stats count by host.name",
    "source auth | aggs count, dc(user.name) as users, latest(@timestamp) as last_seen by event.outcome",
    "source auth qsize=2",
    "source auth qsize=2 | search event.code=4624",
    "source auth | search host.name=mail AND event.code=4624 OR user.name=alice",
    'source auth | where host.name=="mail" AND event.code==4624 OR user.name=="alice"',
    'source auth | eval ok=if(event.outcome=="success", 1, 0) | stats sum(ok) as ok_count, count by user.name',
    "source auth | dedup user.name | table user.name, host.name",
    "source auth | sort +@timestamp | head 2 | table @timestamp",
    "source auth | search event.code=1 | aggs count",
    'source auth | search "*462*"',
    "source auth | search mail",
    "source auth | search user.name!=alice",
    "source auth | search NOT user.name=alice",
    "source auth | search event.code=4624 | peval ok=1 | aggs sum(ok) as n",
    "source auth | where user.name == host.name",
    "source auth | where isnull(user.name)",
    "source auth | timechart span=10m count by event.outcome",
]
REAL_WORLD = [  # §12, `...` written as `source x`
    "source sysmon_operational-* qsize=5",
    "source tweets1,tweets2",
    "source tweets | sort num",
    'source sm_cs_auth_indexes | search "*4624*"',
    "source sm_cs_auth_indexes | search event.code=4624",
    'source sm_cs_auth_indexes | search file.path="*/example.json"',
    'source winlog_auth* | search event.code="4768" AND event.outcome="success" OR event.action="logged-in" '
    "| table event.code, event.outcome, event.action",
    'source winlog_auth* | where event.code=="4768" AND event.outcome=="success" OR event.action=="logged-in" '
    "| table event.code, event.outcome, event.action",
    'source winlog_auth* | search host.name="mail" AND NOT event.code="4625" OR event.code="4624" '
    "| table event.code, event.action, event.outcome",
    'source x | where bytes >= 8749 or ipaddr == "104.182.234.109"',
    'source x | eval myVal=if(conn_type == "vpn", true(), false()) | where myVal == false()',
    'source x | where (winlog.computer_name == "VLG-WEB01" or source.host != "WS-IVANOV") '
    "and isnotnull(event.type)",
    'source nix_events-* | eval res = if(errNo == -1, "OK", "NOTOK")',
    "source x | bin span=1d _time",
]


@pytest.mark.parametrize("query", WORKED_EXAMPLES + REAL_WORLD)
def test_documented_queries_parse(query: str) -> None:
    pipeline = parse(query)
    assert pipeline.text == query and isinstance(pipeline.commands[0], Source)


def test_documented_queries_build_the_documented_trees() -> None:
    where_ = parse('source x | where (winlog.computer_name == "VLG-WEB01" or source.host != "WS-IVANOV") '
                   "and isnotnull(event.type)").commands[1]
    assert where_ == Where(AND(OR(eq(col("winlog.computer_name"), s("VLG-WEB01")),
                                  Binary("!=", col("source.host"), s("WS-IVANOV"))),
                               Call("isnotnull", (col("event.type"),))))
    assert parse("source x | where bytes >= 8749 or ipaddr == \"104.182.234.109\"").commands[1] == \
        Where(OR(Binary(">=", col("bytes"), i(8749)), eq(col("ipaddr"), s("104.182.234.109"))))
    stats = parse("source auth | aggs count, dc(user.name) as users, latest(@timestamp) as last_seen "
                  "by event.outcome").commands[1]
    assert stats == Stats((Agg("count", (), "count"), Agg("dc", (col("user.name"),), "users"),
                           Agg("latest", (col("@timestamp"),), "last_seen")), ("event.outcome",), True)


# --- robustness ---

PIECES = ["source", "a", "search", "where", "eval", "stats", "aggs", "peval", "by", "as", "AND", "or", "NOT", "IN",
          "(", ")", ",", "=", "==", "!=", "<", ">=", "+", "-", "*", "/", "%", '"x"', '"a\\"b"', "'f g'", "1", "-2",
          "3.5e1", "x.y", "@t", "|", "[", "]", "qsize=", "limit=", "head", "tail", "sort", "dedup", "fields",
          "table", "rename", "keepempty=", "true", "\n", "desc", "count", "dc(", "$", "\\", "join", "é"]


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(st.lists(st.sampled_from(PIECES), max_size=14), st.sampled_from([" ", ""]))
def test_any_input_parses_or_is_a_positioned_parsing_exception(pieces: list[str], glue: str) -> None:
    text = "source a | " + glue.join(pieces)
    try:
        pipeline = parse(text)
    except ParsingError as exc:
        position = re.match(r"line (\d+):(\d+): ", exc.reason)
        assert position, exc.reason
        line, col = int(position[1]), int(position[2])
        lines = text.split("\n")
        assert 1 <= line <= len(lines) and 1 <= col <= len(lines[line - 1]) + 1, exc.reason
    else:
        assert pipeline.text == text


def test_trees_hold_plain_values_and_survive_pickling() -> None:
    """Plans go to query worker processes: no parser object may ride along."""
    pipeline = parse("source a,b* qsize=5 earliest=-1d latest=\"now\" "
                     "| search f IN (a, \"b\") x=1 'q f'!=\"z\" mail | where 'k'==1 AND f(x) OR y IN (1) "
                     "| eval a=-1, 'b c'=x | stats count, perc(x, 9) as p by 'h', i "
                     "| fields - a | table b 'c' | rename a as b, 'x' as 'y' | sort 3 -a, 'b' desc | head 2 "
                     "| tail limit=1 | dedup 2 a 'b' keepempty=true")
    stack: list[object] = [pipeline]
    while stack:
        value = stack.pop()
        assert not isinstance(value, Token), value
        if dataclasses.is_dataclass(value):
            stack.extend(getattr(value, f.name) for f in dataclasses.fields(value))
        elif isinstance(value, tuple):
            stack.extend(value)
    copy = pickle.loads(pickle.dumps(pipeline))
    assert copy == pipeline and [c.src for c in copy.commands] == [c.src for c in pipeline.commands]
