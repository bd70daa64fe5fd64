"""EQL's rules in the shared expression compiler: the shared additions (case-insensitive IN
and LIKE, the any-value rule over multi-values, the pushdown switch) and the EQL dialect
with its 16 functions, compiled from shared expression trees and run over rows."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service import keys, patterns
from service.query import plan as p
from service.query.control import Control
from service.query.dialect import Dialect
from service.query.eql.dialect import EQL
from service.query.esql.dialect import ESQL
from service.query.evaluate import Scope, Warnings, compile_expr
from service.query.execute import run_plan
from service.query.expr import Binary, Call, Column, Expr, In, IsNull, Like, Literal, Logical, Neg, Not, Src

# ES|QL's rules plus only the shared switches, to test the shared compiler on its own.
ANY_VALUE = dataclasses.replace(ESQL, any_value=True)


def lit(value: Any) -> Literal:
    kind = {bool: "boolean", int: "integer", float: "double", str: "keyword", type(None): "null"}[type(value)]
    return Literal(value, kind)


def run(expr: Expr, dialect: Dialect, **columns: tuple[str, Any]) -> tuple[Any, list[str]]:
    """``expr`` over one row whose columns are ``name=(type, value)``: its value and warnings."""
    warnings = Warnings()
    scope = Scope(list(columns), [kind for kind, _ in columns.values()], warnings, dialect)
    fn, _ = compile_expr(expr, scope)
    return fn([value for _, value in columns.values()]), warnings.messages


# --- the shared additions -------------------------------------------------------------------

@pytest.mark.parametrize(("op", "value", "expected"), [
    ("==", [5, 6], True), ("==", [6, 7], False), ("!=", [5, 6], False), ("!=", [6, 7], True),
    ("<", [9, 4], True), (">", [1, 2], False), (">=", [1, 5], True), ("==", None, None), ("!=", None, None),
])
def test_any_value_comparisons_hold_when_some_value_does(op: str, value: Any, expected: Any) -> None:
    assert run(Binary(op, Column("x"), lit(5)), ANY_VALUE, x=("long", value)) == (expected, [])


def test_any_value_not_of_a_comparison_is_true_when_no_value_satisfies_it() -> None:
    expr = Not(Binary("==", Column("x"), lit(5)))
    assert run(expr, ANY_VALUE, x=("long", [5, 6])) == (False, [])
    assert run(expr, ANY_VALUE, x=("long", [6, 7])) == (True, [])


def test_without_any_value_a_multi_value_comparison_is_null_with_a_warning() -> None:
    value, warnings = run(Binary("==", Column("x"), lit(5)), ESQL, x=("long", [5, 6]))
    assert value is None and "single-value function encountered multi-value" in warnings[-1]


@pytest.mark.parametrize(("negated", "value", "expected"), [
    (False, [1, 9], True), (False, [8, 9], False), (True, [1, 9], False), (True, [8, 9], True), (True, None, None),
])
def test_any_value_in_and_not_in(negated: bool, value: Any, expected: Any) -> None:
    expr = In(Column("x"), (lit(1), lit(2)), negated=negated)
    assert run(expr, ANY_VALUE, x=("long", value)) == (expected, [])


def test_in_insensitive_lowercases_strings_on_both_sides() -> None:
    expr = In(Column("s"), (lit("CMD.exe"), lit("1*")), insensitive=True)
    assert run(expr, ESQL, s=("keyword", "cmd.EXE"))[0] is True
    assert run(expr, ESQL, s=("keyword", "1abc"))[0] is False  # no wildcards in in~
    assert run(In(Column("s"), (lit("CMD.exe"),)), ESQL, s=("keyword", "cmd.EXE"))[0] is False


def test_in_insensitive_over_a_multi_value() -> None:
    expr = In(Column("s"), (lit("B"),), negated=True, insensitive=True)
    assert run(expr, ANY_VALUE, s=("keyword", ["a", "b"])) == (False, [])
    assert run(expr, ANY_VALUE, s=("keyword", ["a", "c"])) == (True, [])


def test_like_insensitive_lowercases_value_and_pattern() -> None:
    like = Like(Column("s"), (lit("*SVC?OST.exe"),), insensitive=True)
    assert run(like, ESQL, s=("keyword", "C:\\svchost.EXE"))[0] is True
    assert run(dataclasses.replace(like, insensitive=False), ESQL, s=("keyword", "C:\\svchost.EXE"))[0] is False
    regex = Like(Column("s"), (lit("SVC.*"),), regex=True, insensitive=True)
    assert run(regex, ESQL, s=("keyword", "svchost"))[0] is True


def test_like_any_value_and_its_negation() -> None:
    like = Like(Column("s"), (lit("a*"), lit("z")))
    assert run(like, ANY_VALUE, s=("keyword", ["bc", "ab"])) == (True, [])
    assert run(dataclasses.replace(like, negated=True), ANY_VALUE, s=("keyword", ["bc", "ab"])) == (False, [])
    assert run(dataclasses.replace(like, negated=True), ANY_VALUE, s=("keyword", ["bc", "cd"])) == (True, [])
    assert run(like, ANY_VALUE, s=("keyword", None)) == (None, [])


def test_a_dialect_chooses_its_wildcard_matcher() -> None:
    literal_backslash = dataclasses.replace(ESQL, wildcard=lambda t: patterns.like(t.replace("\\", "\\\\")))
    like = Like(Column("s"), (lit("*\\SAM\\*\\Account"),))
    assert run(like, literal_backslash, s=("keyword", "HKLM\\SAM\\x\\Account"))[0] is True
    with pytest.raises(Exception, match="Invalid pattern for LIKE"):
        run(like, ESQL, s=("keyword", "x"))


async def _load(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="procs", mappings={"properties": {"name": {"type": "keyword"}}})
    await es.bulk(operations=[{"index": {"_index": "procs", "_id": "1"}}, {"name": "CMD.EXE"},
                              {"index": {"_index": "procs", "_id": "2"}}, {"name": "explorer.exe"}], refresh=True)


def _first_operator(server: Any, dialect: Dialect, condition: Expr) -> tuple[str, list[list[Any]]]:
    with sqlite3.connect(server.app[keys.SETTINGS].db_path) as conn:
        result = run_plan(p.Plan((p.Source(("procs",)), p.Filter(condition))), server.app[keys.CATALOG], conn,
                          Control(), dialect)
        rows = list(result.rows)
    return result.profile["drivers"][0]["operators"][0]["operator"], rows


async def test_a_dialect_without_pushdown_scans_in_python(es, server) -> None:
    await _load(es)
    condition = Binary("==", Column("name"), lit("CMD.EXE"))
    pushed, rows = _first_operator(server, ESQL, condition)
    assert pushed.startswith("SqliteQueryOperator") and rows == [["CMD.EXE"]]
    scanned, rows = _first_operator(server, dataclasses.replace(ESQL, pushdown=False), condition)
    assert scanned.startswith("ScanOperator") and rows == [["CMD.EXE"]]


async def test_pushdown_leaves_case_insensitive_predicates_to_python(es, server) -> None:
    await _load(es)
    operator, rows = _first_operator(server, ESQL, In(Column("name"), (lit("cmd.exe"),), insensitive=True))
    assert operator.startswith("ScanOperator") and rows == [["CMD.EXE"]]
    operator, rows = _first_operator(server, ESQL, Like(Column("name"), (lit("CMD*"),), insensitive=True))
    assert operator.startswith("ScanOperator") and rows == [["CMD.EXE"]]


# --- the EQL dialect: operators ---------------------------------------------------------


def eql(expr: Expr, **columns: tuple[str, Any]) -> Any:
    """``expr`` under EQL's rules over one row; EQL never warns."""
    value, warnings = run(expr, EQL, **columns)
    assert warnings == []
    return value


def call(name: str, *args: Any) -> Call:
    return Call(name, tuple(a if isinstance(a, Expr) else lit(a) for a in args))


def failure(expr: Expr, **columns: tuple[str, Any]) -> dict[str, Any]:
    """The error body of evaluating (or compiling) ``expr``."""
    with pytest.raises(Exception) as info:
        eql(expr, **columns)
    return info.value.body()


@pytest.mark.parametrize(("op", "left", "right", "expected"), [
    ("<", "System", "System Idle Process", True), ("<", "S", "s", True), ("==", "cmd*.exe", "cmd.exe", False),
    ("<", 3, 4.5, True), (">=", 4.5, 4, True), ("!=", 1, 1.0, False),
])
def test_comparisons_are_exact_and_case_sensitive(op: str, left: Any, right: Any, expected: bool) -> None:
    kind = "keyword" if isinstance(left, str) else "long"
    assert eql(Binary(op, Column("f"), lit(right)), f=(kind, left)) is expected


def test_a_comparison_with_null_is_null_and_null_checks_are_never_null() -> None:
    assert eql(Binary("==", Column("x"), lit(5)), x=("long", None)) is None
    assert eql(IsNull(Column("x")), x=("long", None)) is True
    assert eql(IsNull(Binary(">", Column("x"), lit(-1))), x=("long", None)) is True
    assert eql(IsNull(Column("x"), negated=True), x=("long", [1, 2])) is True


def test_multi_value_comparisons_take_any_value() -> None:
    assert eql(Binary("==", Column("transID"), lit(1234)), transID=("long", [1234, 599999])) is True
    assert eql(Binary("!=", Column("transID"), lit(1234)), transID=("long", [1234, 599999])) is False
    assert eql(Binary("<", lit(1000), Column("transID")), transID=("long", [5, 1234])) is True


@pytest.mark.parametrize(("a", "b", "and_", "or_"), [
    (True, None, None, True), (False, None, False, None), (None, None, None, None),
])
def test_three_valued_logic(a: Any, b: Any, and_: Any, or_: Any) -> None:
    cols = {"a": ("boolean", a), "b": ("boolean", b)}
    assert eql(Logical("AND", Column("a"), Column("b")), **cols) is and_
    assert eql(Logical("OR", Column("a"), Column("b")), **cols) is or_
    assert eql(Not(Column("b")), **cols) is (None if b is None else not b)


def test_a_multi_valued_boolean_holds_when_any_value_does() -> None:
    assert eql(Logical("AND", Column("b"), lit(True)), b=("boolean", [False, True])) is True
    assert eql(Not(Column("b")), b=("boolean", [False, True])) is False
    assert eql(Not(Column("b")), b=("boolean", [False])) is True


def test_date_fields_compare_with_iso_strings_and_epoch_millis() -> None:
    ts = ("date", 1504126053000)
    assert eql(Binary("==", Column("@timestamp"), lit("2017-08-30T20:47:33Z")), **{"@timestamp": ts}) is True
    assert eql(Binary("==", Column("@timestamp"), lit("2017-08-30T22:47:33+02:00")), **{"@timestamp": ts}) is True
    assert eql(Binary("==", Column("@timestamp"), lit(1504126053000)), **{"@timestamp": ts}) is True
    assert eql(Binary("<", Column("@timestamp"), lit("2017-08-30")), **{"@timestamp": ts}) is False
    assert eql(Binary(">", Column("@timestamp"), lit("2017")), **{"@timestamp": ts}) is True  # a year
    assert eql(Binary(">", Column("@timestamp"), lit("1504126052999")), **{"@timestamp": ts}) is True
    assert eql(In(Column("@timestamp"), (lit("2000-01-01"), lit("2017-08-30T20:47:33.000Z"))),
               **{"@timestamp": ts}) is True


def test_date_nanos_fields_compare_at_nanosecond_precision() -> None:
    ts = ("date_nanos", 1504126053123456789)
    assert eql(Binary("==", Column("t"), lit("2017-08-30T20:47:33.123456789Z")), t=ts) is True
    assert eql(Binary("<", Column("t"), lit("2017-08-30T20:47:33.12345679Z")), t=ts) is True
    assert eql(Binary(">", Column("t"), lit(1504126053123)), t=ts) is True


def test_an_unreadable_date_fails_the_search_as_the_shard_query_does() -> None:
    body = failure(Binary("==", Column("t"), lit("2020-02-41")), t=("date", 0))
    assert body["status"] == 400 and body["error"]["type"] == "search_phase_execution_exception"
    assert body["error"]["root_cause"][0] == {
        "type": "query_shard_exception",
        "reason": "failed to create query: failed to parse date field [2020-02-41] with format "
                  "[strict_date_optional_time||epoch_millis]"}


def test_ip_version_and_boolean_fields_read_string_literals() -> None:
    assert eql(Binary("==", Column("ip"), lit("10.0.0.1")), ip=("ip", "10.0.0.1")) is True
    assert eql(Binary("<", Column("ip"), lit("10.0.0.10")), ip=("ip", "10.0.0.9")) is True  # as addresses
    assert eql(Binary(">", Column("v"), lit("1.5.0")), v=("version", "1.11.3")) is True
    assert eql(Binary("<", Column("v"), lit("1.5.0")), v=("version", "1.2.4-SNAPSHOT")) is True
    assert eql(Binary("<", Column("v"), lit("1.5.0")), v=("version", "bad")) is False
    assert eql(Binary("==", Column("b"), lit("true")), b=("boolean", True)) is True
    assert failure(Binary("==", Column("ip"), lit("nope")), ip=("ip", "10.0.0.1"))["error"]["root_cause"][0][
        "reason"] == "failed to create query: 'nope' is not an IP string literal."


def test_literals_of_another_type_become_terms_of_the_fields_type() -> None:
    # a keyword field read with a number matches its text (no error: spec/eql.md §4.3)
    assert eql(Binary("==", Column("k"), lit(123)), k=("keyword", "123")) is True
    assert eql(Binary("==", Column("n"), lit("17")), n=("long", 17)) is True
    body = failure(Binary("==", Column("n"), lit("abcdef")), n=("long", 17))
    assert body["error"]["root_cause"][0]["reason"] == 'failed to create query: For input string: "abcdef"'


@pytest.mark.parametrize(("pattern", "value", "expected"), [
    ("*.exe", "cmd.EXE", True), ("cmd.exe", "CMD.exe", True), ("c?d.exe", "cmd.exe", True),
    ("c?d.exe", "cd.exe", False), ("*\\SAM\\*\\Account", "HKLM\\SAM\\Domains\\Account", True), ("*", "", True),
])
def test_colon_is_a_case_insensitive_wildcard_match(pattern: str, value: str, expected: bool) -> None:
    assert eql(Like(Column("s"), (lit(pattern),), insensitive=True), s=("keyword", value)) is expected


def test_like_and_regex_with_and_without_tilde() -> None:
    value = {"s": ("keyword", "Explorer.EXE")}
    assert eql(Like(Column("s"), (lit("explorer.*"),)), **value) is False
    assert eql(Like(Column("s"), (lit("explorer.*"),), insensitive=True), **value) is True
    assert eql(Like(Column("s"), (lit("x*"), lit("Explorer.???"))), **value) is True
    assert eql(Like(Column("s"), (lit("[eE]xplorer\\.[A-Z]+"),), regex=True), **value) is True
    assert eql(Like(Column("s"), (lit("explorer\\.exe"),), regex=True), **value) is False
    assert eql(Like(Column("s"), (lit("explorer\\.exe"),), regex=True, insensitive=True), **value) is True
    assert eql(Like(Column("s"), (lit("a*"),)), s=("keyword", ["b", "ab"])) is True


def test_in_and_in_tilde_and_not_in() -> None:
    names = (lit("svchost.EXE"), lit("bad.exe"))
    assert eql(In(Column("s"), names), s=("keyword", "svchost.exe")) is False
    assert eql(In(Column("s"), names, insensitive=True), s=("keyword", "svchost.exe")) is True
    assert eql(In(Column("s"), (lit("1*"),), insensitive=True), s=("keyword", "123")) is False
    assert eql(In(Column("n"), (lit(58), lit(64)), negated=True), n=("long", [58, 1])) is False
    assert eql(In(Column("n"), (lit(58),)), n=("long", None)) is None


@pytest.mark.parametrize(("op", "a", "b", "expected"), [
    ("/", 83, 2, 41), ("/", -7, 2, -3), ("%", -10, 3, -1), ("%", 10, -6, 4), ("/", 66.0, 66, 1.0),
    ("*", 6, 5, 30), ("-", 1, 2.5, -1.5), ("/", 1, 0.0, float("inf")), ("/", -1, 0.0, float("-inf")),
])
def test_arithmetic_is_javas(op: str, a: Any, b: Any, expected: Any) -> None:
    result = eql(Binary(op, lit(a), lit(b)))
    assert result == expected and type(result) is type(expected)


def test_integer_division_by_zero_and_overflow_fail_the_search() -> None:
    body = failure(Binary("/", Column("n"), lit(0)), n=("long", 5))
    assert body["status"] == 400 and body["error"]["type"] == "search_phase_execution_exception"
    assert body["error"]["caused_by"]["type"] == "script_exception"
    assert body["error"]["caused_by"]["caused_by"] == {"type": "arithmetic_exception", "reason": "/ by zero"}
    body = failure(Binary("+", Column("n"), lit(1)), n=("long", 2**63 - 1))
    assert body["error"]["root_cause"][0] == {"type": "arithmetic_exception", "reason": "long overflow"}
    assert eql(Neg(Column("n")), n=("long", None)) is None
    assert eql(Binary("/", Column("n"), lit(-1)), n=("long", -(2**63))) == -(2**63)  # Java's / wraps


def test_arithmetic_over_a_multi_value_gives_one_result_per_value() -> None:
    # Elasticsearch runs the script once per value (MultiValueAwareScriptQuery), so any may match
    assert eql(Binary("==", Binary("+", Column("n"), lit(1)), lit(6)), n=("long", [1, 5])) is True
    assert eql(Binary("==", Binary("*", Column("n"), lit(2)), lit(4)), n=("long", [1, 5])) is False


# --- the EQL dialect: functions ----------------------------------------------------------

@pytest.mark.parametrize(("expr", "expected"), [
    (call("BETWEEN", "System Idle Process", "S", "e", True), "ystem Idle Proc"),
    (call("BETWEEN", "System Idle Process", "S", "e", False), "yst"),
    (call("BETWEEN", "System", "s", "e"), "t"),
    (call("BETWEEN~", "System", "s", "E"), "yst"),
    (call("BETWEEN", "C:\\Windows\\System32\\cmd.exe", "System32\\", ".exe"), "cmd"),
    (call("BETWEEN", "C:\\Windows\\System32\\cmd.exe", "workspace\\", ".exe"), ""),
    (call("BETWEEN", "abc", "", "c"), "abc"),  # Elasticsearch returns the source for an empty bound
    (call("BETWEEN", "", "a", "c"), ""),
    (call("BETWEEN", "bac", "c", "b", True), ""),  # the last `right` is before `left`
    (call("BETWEEN", None, "a", "c"), None),
])
def test_between(expr: Expr, expected: Any) -> None:
    assert eql(expr) == expected


@pytest.mark.parametrize(("address", "blocks", "expected"), [
    ("10.6.48.157", ("10.6.48.157/8",), True), ("10.6.48.157", ("192.168.0.0/16", "10.0.0.0/8"), True),
    ("11.0.0.1", ("10.0.0.0/8",), False), ("192.168.1.1", ("0.0.0.0/0",), True),
    ("2001:db8::1", ("2001:db8::/32",), True), ("2001:db9::1", ("2001:db8::/32",), False),
    ("10.0.0.1", ("::ffff:10.0.0.0/104",), True), ("10.0.0.1", ("10.0.0.1",), True),
    (["1.1.1.1", "10.0.0.1"], ("10.0.0.0/8",), True), (None, ("10.0.0.0/8",), None),
])
def test_cidr_match(address: Any, blocks: tuple[str, ...], expected: Any) -> None:
    assert eql(call("CIDRMATCH", Column("ip"), *blocks), ip=("ip", address)) is expected


def test_cidr_match_with_a_null_block_is_null_and_wants_an_ip() -> None:
    assert eql(call("CIDRMATCH", Column("ip"), None), ip=("ip", "10.0.0.1")) is None
    assert failure(call("CIDRMATCH", Column("s"), "10.0.0.0/8"), s=("keyword", "10.0.0.1"))["error"]["reason"] == \
        "Found 1 problem\nline 0:0: first argument of [] must be [ip], found value [] type [keyword]"


@pytest.mark.parametrize(("expr", "expected"), [
    (call("CONCAT", 5, ":", "wininit.exe", 3), "5:wininit.exe3"),
    (call("CONCAT", "a", 1.0, True, 1e20, 0.001), "a1.0true1.0E200.001"),
    (call("CONCAT", "a", None), None),
    (call("CONCAT", 7), "7"),
    (call("STRING", 42.5), "42.5"), (call("STRING", 1.0), "1.0"), (call("STRING", 1e-5), "1.0E-5"),
    (call("STRING", 12345678.9), "1.23456789E7"), (call("STRING", False), "false"), (call("STRING", 17), "17"),
    (call("STRING", None), None),
])
def test_concat_and_string_format_values_as_java(expr: Expr, expected: Any) -> None:
    assert eql(expr) == expected


def test_string_of_dates_and_ips() -> None:
    assert eql(call("STRING", Column("t")), t=("date", 1504126053000)) == "2017-08-30T20:47:33.000Z"
    assert eql(call("STRING", Column("ip")), ip=("ip", "10.0.0.1")) == "10.0.0.1"


@pytest.mark.parametrize(("expr", "expected"), [
    (call("ADD", 4, 5), 9), (call("ADD", 4, 0.5), 4.5), (call("SUBTRACT", 10, 2), 8),
    (call("MULTIPLY", 2, 2.5), 5.0), (call("DIVIDE", 4, 3), 1), (call("DIVIDE", 4, 3.0), 4 / 3),
    (call("DIVIDE", -4, 3), -1), (call("MODULO", -10, -6), -4), (call("MODULO", 10, -6), 4),
    (call("MODULO", 10, 6), 4), (call("ADD", None, 1), None),
])
def test_math_functions(expr: Expr, expected: Any) -> None:
    result = eql(expr)
    assert result == expected and type(result) is type(expected)


def test_math_functions_want_numbers() -> None:
    assert failure(Call("ADD", (Column("s"), lit(1)), src=Src(1, 11, "add(s, 1)")), s=("keyword", "x"))[
        "error"]["reason"] == \
        "Found 1 problem\nline 1:11: first argument of [add(s, 1)] must be [numeric], found value [] type [keyword]"


@pytest.mark.parametrize(("expr", "expected"), [
    (call("STARTSWITH", "explorer.exe", "explorer."), True), (call("STARTSWITH", "explorer.exe", "EXPLORER."), False),
    (call("STARTSWITH~", "explorer.exe", "EXPLORER."), True), (call("STARTSWITH", "", ""), True),
    (call("ENDSWITH", "explorer.exe", "lorer.exe"), True), (call("ENDSWITH~", "explorer.exe", "loREr.exe"), True),
    (call("ENDSWITH", "explorer.exe", "loREr.exe"), False), (call("ENDSWITH", "", ""), True),
    (call("STRINGCONTAINS", "ABCexplorer.exeJKL", "explorer.exe"), True),
    (call("STRINGCONTAINS", "ABCexplorer.exeJKL", "EXPLORER"), False),
    (call("STRINGCONTAINS~", "ABCexplorer.exeJKL", "EXPLORER"), True),
    (call("STRINGCONTAINS", "", ""), False), (call("STRINGCONTAINS", "abc", ""), False),
    (call("STARTSWITH", None, "a"), None), (call("ENDSWITH", "a", None), None),
])
def test_prefix_suffix_and_contains(expr: Expr, expected: Any) -> None:
    assert eql(expr) is expected


@pytest.mark.parametrize(("expr", "expected"), [
    (call("INDEXOF", "explorer.exe", "plorer."), 2), (call("INDEXOF", "explorer.exe", "plorer.", 2), 2),
    (call("INDEXOF", "explorer.exe", "plorer.", 4), None), (call("INDEXOF", "explorer.exe", "never"), None),
    (call("INDEXOF", "explorer.exe", "PLORER."), None), (call("INDEXOF~", "explorer.exe", "pLOrer.", 2), 2),
    (call("INDEXOF", "abc", "a", -5), 0), (call("INDEXOF", "abc", "", 2), 2), (call("INDEXOF", "abc", "", -3), 0),
    (call("INDEXOF", "abc", "a", 4), None), (call("INDEXOF", "abc", None), None),
    (call("INDEXOF", "abc", "a", None), None),
])
def test_index_of(expr: Expr, expected: Any) -> None:
    assert eql(expr) == expected


@pytest.mark.parametrize(("expr", "expected"), [
    (call("LENGTH", "explorer.exe"), 12), (call("LENGTH", ""), 0), (call("LENGTH", "\U0001F600"), 2),
    (call("LENGTH", None), None),
    (call("SUBSTRING", "start regsvr32.exe", -4), ".exe"), (call("SUBSTRING", "start regsvr32.exe", -4, -1), ".ex"),
    (call("SUBSTRING", "start regsvr32.exe", 0, 5), "start"), (call("SUBSTRING", "abc", 5), ""),
    (call("SUBSTRING", "abc", -10, 2), "ab"), (call("SUBSTRING", "abc", 2, 1), ""), (call("SUBSTRING", None, 1), None),
])
def test_length_and_substring(expr: Expr, expected: Any) -> None:
    assert eql(expr) == expected


@pytest.mark.parametrize(("expr", "expected"), [
    (call("NUMBER", "5"), 5), (call("NUMBER", "-17"), -17), (call("NUMBER", "42.5"), 42.5),
    (call("NUMBER", "1e3"), 1000.0), (call("NUMBER", " 42 "), 42.0), (call("NUMBER", "32", 16), 50),
    (call("NUMBER", "0x32", 16), 50), (call("NUMBER", "0x32"), 50), (call("NUMBER", "0x32", None), 50),
    (call("NUMBER", "17", 10), 17), (call("NUMBER", "17", None), 17), (call("NUMBER", "101", 2), 5),
    (call("NUMBER", "z", 36), 35), (call("NUMBER", "9223372036854775808"), 9.223372036854776e18),
    (call("NUMBER", None), None),
])
def test_number(expr: Expr, expected: Any) -> None:
    result = eql(expr)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize("text", ["", "abc", "0x", "1_000", "inf"])
def test_number_of_unparsable_text_fails_the_search(text: str) -> None:
    cause = failure(call("NUMBER", text))["error"]["caused_by"]["caused_by"]
    assert cause == {"type": "eql_illegal_argument_exception",
                     "reason": f"Unable to convert [{text.removeprefix('0x')}] to number of base "
                               f"[{16 if text.startswith('0x') else 10}]"}


def test_number_wants_a_constant_base() -> None:
    expr = Call("NUMBER", (lit("17"), Column("b")), src=Src(1, 15, "number(\"17\", b)"))
    assert failure(expr, b=("integer", 16))["error"]["reason"] == \
        "Found 1 problem\nline 1:15: second argument of [number(\"17\", b)] must be a constant, received []"


def test_functions_over_multi_values_answer_for_any_value() -> None:
    s = ("keyword", ["bc", "abc"])
    assert eql(Binary("==", call("LENGTH", Column("s")), lit(3)), s=s) is True
    assert eql(call("STARTSWITH", Column("s"), "a"), s=s) is True
    assert eql(Not(call("STARTSWITH", Column("s"), "a")), s=s) is False
    assert eql(Like(call("CONCAT", Column("s"), "!"), (lit("ab*!"),)), s=s) is True


def test_too_many_combinations_of_values_fail_as_painless_loops_do() -> None:
    many = ("keyword", [str(i) for i in range(101)])
    cause = failure(call("CONCAT", Column("s"), Column("s"), Column("s")), s=many)["error"]["caused_by"]
    assert cause["type"] == "script_exception" and cause["caused_by"]["type"] == "painless_error"


def test_function_names_resolve_case_insensitively() -> None:
    assert eql(Call("CONCAT", (lit("a"), lit("b")), src=Src(1, 1, "CONCAT(\"a\", \"b\")"))) == "ab"


@pytest.mark.parametrize(("text", "message"), [
    ("arrayContains(x, \"En\")", "Unknown function [arrayContains], did you mean [stringcontains]?"),
    ("arraySearch(x, y, true)", "Unknown function [arraySearch]"),
    ("safe(x)", "Unknown function [safe]"),
    ("startWith(x, \"a\")", "Unknown function [startWith], did you mean [startswith]?"),
])
def test_unknown_functions(text: str, message: str) -> None:
    name = text.partition("(")[0]
    body = failure(Call(name.upper(), (lit("x"),), src=Src(1, 16, text)))
    assert body["status"] == 400 and body["error"]["type"] == "verification_exception"
    assert body["error"]["reason"] == f"Found 1 problem\nline 1:16: {message}"


def test_tilde_on_a_function_without_a_variant_and_wrong_arity_are_parsing_errors() -> None:
    body = failure(Call("LENGTH~", (lit("x"),), src=Src(1, 11, "length~(\"x\")")))
    assert (body["status"], body["error"]["type"]) == (400, "parsing_exception")
    assert body["error"]["reason"] == "line 1:11: Function [CASE_INSENSITIVE] does not support case-(in)sensitivity " \
                                      "length()"
    for name, args, message in [("BETWEEN", ("a", "b"), "expects three or four arguments"),
                                ("ADD", (1,), "expects exactly two arguments"),
                                ("LENGTH", ("a", "b"), "expects exactly one argument"),
                                ("NUMBER", (), "expects one or two arguments"),
                                ("CIDRMATCH", ("a",), "expects at least two arguments"),
                                ("CONCAT", (), "expects at least one argument")]:
        body = failure(Call(name, tuple(lit(a) for a in args), src=Src(1, 5, "")))
        assert body["error"]["reason"] == f"line 1:5: error building [{name.lower()}]: {message}"


def test_string_functions_want_strings() -> None:
    expr = Call("LENGTH", (Column("pid"),), src=Src(1, 11, "length(pid)"))
    assert failure(expr, pid=("long", 1))["error"]["reason"] == \
        "Found 1 problem\nline 1:11: argument of [length(pid)] must be [string], found value [] type [long]"
    expr = Call("BETWEEN", (lit("a"), lit("b"), lit("c"), Column("g")),
                src=Src(1, 1, "between(\"a\", \"b\", \"c\", g)"))
    assert "fourth argument of [between(\"a\", \"b\", \"c\", g)] must be a constant" in \
        failure(expr, g=("boolean", True))["error"]["reason"]


# --- the EQL dialect: indices -----------------------------------------------------------

async def test_indices_skip_missing_names_while_another_matches(es, server) -> None:
    await _load(es)
    catalog = server.app[keys.CATALOG]
    assert [i.name for i in EQL.indices(catalog, p.Source(("procs", "missing")))] == ["procs"]
    assert [i.name for i in EQL.indices(catalog, p.Source(("pro*", "nothing*")))] == ["procs"]


@pytest.mark.parametrize("target", ["missing", "missing1,missing2", "missing*"])
async def test_indices_matching_nothing_are_a_404_unknown_index(es, server, target: str) -> None:
    await _load(es)
    with pytest.raises(Exception) as info:
        EQL.indices(server.app[keys.CATALOG], p.Source(tuple(target.split(","))))
    body = info.value.body()
    assert body["status"] == 404 and body["error"]["type"] == "index_not_found_exception"
    assert body["error"]["root_cause"] == [{"type": "verification_exception",
                                            "reason": f"Found 1 problem\nline -1:-1: Unknown index [{target}]"}]


async def test_an_eql_filter_runs_on_the_shared_executor_without_pushdown(es, server) -> None:
    await _load(es)
    operator, rows = _first_operator(server, EQL, Like(Column("name"), (lit("cmd.*"),), insensitive=True))
    assert operator.startswith("ScanOperator") and rows == [["CMD.EXE"]]
