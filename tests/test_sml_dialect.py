"""SML's rules in the shared expression compiler (spec/sml.md §4-§6, §7.5): the shared hooks
(``Dialect.compile_node``, the ``any`` type), SML's dynamic operators, its search nodes
``Term``/``Text``, its functions and its aggregates, compiled from shared expression trees
and run over rows, and through the shared executor over a real SQLite file."""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service import keys
from service.query import plan as p
from service.query import types as T
from service.query.aggregates import Meter
from service.query.control import Control
from service.query.errors import ParsingError
from service.query.esql.dialect import ESQL
from service.query.evaluate import Scope, VerificationError, Warnings, compile_expr
from service.query.execute import run_plan
from service.query.expr import Binary, Call, Column, Expr, In, Literal, Logical, Neg, Not, Src, Star
from service.query.sml import aggregates, functions
from service.query.sml.ast import Term, Text
from service.query.sml.dialect import SML, dialect_at

NOW = 1_714_600_000_000  # 2024-05-01T21:46:40Z, the task's creation instant
AT_NOW = dialect_at(NOW)


def lit(value: Any) -> Literal:
    kind = {bool: "boolean", int: "integer", float: "double", str: "keyword", type(None): "null"}[type(value)]
    return Literal(value, kind)


def col(name: str) -> Column:
    return Column(name)


def call(name: str, *args: Any) -> Call:
    return Call(name, tuple(a if isinstance(a, Expr) else lit(a) for a in args))


def run(expr: Expr, dialect: Any = AT_NOW, **columns: tuple[str, Any]) -> Any:
    """``expr`` over one row whose columns are ``name=(type, value)`` (``__`` in a name is
    a dot): its value."""
    names = [name.replace("__", ".") for name in columns]
    scope = Scope(names, [kind for kind, _ in columns.values()], Warnings(), dialect)
    fn, _ = compile_expr(expr, scope)
    return fn([value for _, value in columns.values()])


def kind_of(expr: Expr, **columns: tuple[str, Any]) -> str:
    scope = Scope(list(columns), [kind for kind, _ in columns.values()], Warnings(), AT_NOW)
    return compile_expr(expr, scope)[1]


# --- the shared hooks ----------------------------------------------------------------------------

def test_compile_node_is_asked_first_and_none_leaves_the_shared_rules() -> None:
    seen: list[Expr] = []

    def own(expr: Expr, scope: Scope) -> Any:
        seen.append(expr)
        return ((lambda row: "mine"), "keyword") if isinstance(expr, Neg) else None
    dialect = dataclasses.replace(ESQL, compile_node=own)
    assert run(Neg(lit(2)), dialect) == "mine"
    assert run(Binary("+", lit(1), lit(2)), dialect) == 3  # the shared arithmetic
    assert [type(e) for e in seen] == [Neg, Binary, Literal, Literal]


def test_without_the_hook_the_shared_compiler_keeps_its_static_checks() -> None:
    with pytest.raises(VerificationError, match="must be \\[numeric\\]"):
        run(Binary("+", lit("a"), lit(1)), ESQL)
    assert ESQL.compile_node is None


async def test_a_filter_keeps_the_rows_where_a_dynamic_condition_is_true(es: AsyncElasticsearch, server: Any) -> None:
    await _load(es)
    # a column typed ``any`` (an SML eval result) used as the condition itself
    steps = (p.Source(("auth",), metadata=("_id",)),
             p.Eval((("ok", call("if", Binary("==", col("event.outcome"), lit("success")), True, "no")),)),
             p.Filter(col("ok")), p.Sort((p.Order(col("_id")),)))
    names, types, rows = _run(server, steps)
    assert types[names.index("ok")] == T.ANY
    assert [r[names.index("_id")] for r in rows] == ["e1", "e3", "e4"]


# --- comparisons (§4, §6) ------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "kind", "expected"), [
    (-1, "long", True), ("-1", "keyword", True), (200, "long", False), (None, "long", False),
    ([-1, 5], "long", True), ([5, -1], "long", False), ("-1.0", "keyword", True), ("abc", "keyword", False),
])
def test_numeric_looking_strings_equal_numbers_and_arrays_compare_by_their_first_value(
        value: Any, kind: str, expected: bool) -> None:
    assert run(Binary("==", col("errNo"), lit(-1)), errNo=(kind, value)) is expected


def test_the_documented_eval_example_gives_ok_for_minus_one_as_number_or_string() -> None:
    expr = call("if", Binary("==", col("errNo"), lit(-1)), "OK", "NOTOK")
    assert [run(expr, errNo=("keyword", v)) for v in (-1, "-1", 200, None)] == ["OK", "OK", "NOTOK", "NOTOK"]


@pytest.mark.parametrize("op", ["==", "!=", "<", "<=", ">", ">="])
def test_every_comparison_with_null_is_false_even_null_with_null(op: str) -> None:
    assert run(Binary(op, col("x"), lit(1)), x=("long", None)) is False
    assert run(Binary(op, lit(None), lit(None))) is False
    assert run(Binary(op, col("x"), col("y")), x=("long", None), y=("long", None)) is False


def test_strings_compare_case_sensitively_and_stars_are_plain_characters() -> None:
    assert run(Binary("==", col("u"), lit("Alice")), u=("keyword", "alice")) is False
    assert run(Binary("==", col("u"), lit("a*")), u=("keyword", "abc")) is False
    assert run(Binary("==", col("u"), lit("a*")), u=("keyword", "a*")) is True
    assert run(Binary("<", lit("B"), lit("a"))) is True  # code point order


def test_numbers_and_numeric_strings_order_numerically_other_mixes_by_text() -> None:
    assert run(Binary("<", col("x"), lit(10)), x=("keyword", "9")) is True
    assert run(Binary(">", lit("10"), lit("9"))) is True
    assert run(Binary("<", lit("abc"), lit(1))) is False  # "abc" vs "1" as text
    assert run(Binary("==", call("true"), lit(True))) is True
    assert run(Binary("==", lit(True), lit(1))) is False


def test_field_to_field_comparison() -> None:
    row = {"user__name": ("keyword", "mail"), "host__name": ("keyword", "mail")}
    assert run(Binary("==", col("user.name"), col("host.name")), **row) is True
    assert run(Binary("==", col("user.name"), col("host.name")),
               user__name=("keyword", "bob"), host__name=("keyword", "mail")) is False


def test_a_string_literal_compared_with_a_date_column_is_that_date() -> None:
    ts = ("date", 1_714_557_600_000)  # 2024-05-01T10:00:00Z
    assert run(Binary("==", col("t"), lit("2024-05-01T10:00:00Z")), t=ts) is True
    assert run(Binary("<", col("t"), lit("2024-05-02")), t=ts) is True
    assert run(Binary(">=", col("t"), lit("now-1d")), t=ts) is True
    assert run(Binary(">", col("t"), lit("now")), t=ts) is False
    assert run(Binary("<", col("t"), lit("-1h")), t=ts) is True  # now-1h (§3), not the text "-1h"
    assert run(Binary(">=", col("t"), lit("@d")), t=ts) is True


def test_in_is_a_disjunction_of_equalities_and_null_is_in_nothing() -> None:
    expr = In(col("code"), (lit(4624), lit("4625")))
    assert [run(expr, code=("keyword", v)) for v in ("4624", 4625, 1, None)] == [True, True, False, False]
    negated = In(col("code"), (lit(4624),), negated=True)
    assert [run(negated, code=("long", v)) for v in (4624, 1, None)] == [False, True, False]


# --- boolean logic -------------------------------------------------------------------------------

def test_and_or_not_are_three_valued_and_non_booleans_count_as_null() -> None:
    t, f, n = call("true"), call("false"), lit(None)
    assert run(Logical("AND", t, n)) is None and run(Logical("AND", f, n)) is False
    assert run(Logical("OR", t, n)) is True and run(Logical("OR", f, n)) is None
    assert run(Not(n)) is None and run(Not(f)) is True
    assert run(Logical("AND", t, lit("yes"))) is None
    assert run(Not(col("b")), b=("boolean", [False, True])) is True  # the first value


def test_where_precedence_example_is_the_parsers_tree_evaluated_as_given() -> None:
    # ``host.name=="mail" AND event.code==4624 OR user.name=="alice"``: OR binds tighter
    expr = Logical("AND", Binary("==", col("h"), lit("mail")),
                   Logical("OR", Binary("==", col("c"), lit(4624)), Binary("==", col("u"), lit("alice"))))
    e3 = {"h": ("keyword", "dc01"), "c": ("long", 4624), "u": ("keyword", "alice")}
    e1 = {"h": ("keyword", "mail"), "c": ("long", 4624), "u": ("keyword", "alice")}
    assert run(expr, **e3) is False and run(expr, **e1) is True


# --- arithmetic ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("op", "left", "right", "expected"), [
    ("+", 1, 2, 3), ("+", "a", 1, "a1"), ("+", 1, "a", "1a"), ("+", "1", 1, "11"), ("+", 1.5, 1, 2.5),
    ("+", True, 1, None), ("+", "a", True, "atrue"), ("-", "5", 2, 3), ("*", "abc", 2, None), ("*", 3, 2.5, 7.5),
    ("/", 10, 2, 5), ("/", 7, 2, 3.5), ("/", 1, 0, None), ("/", 1.0, 0, None), ("%", 7, 0, None),
    ("%", -7, 2, -1), ("%", 7.5, 2, 1.5), ("-", None, 1, None), ("*", 2**62, 4, float(2**64)),
])
def test_arithmetic_adds_numbers_concatenates_strings_and_gives_null_for_type_errors(
        op: str, left: Any, right: Any, expected: Any) -> None:
    value = run(Binary(op, lit(left), lit(right)))
    assert value == expected and type(value) is type(expected)


def test_arithmetic_over_a_multi_value_reads_its_first_value_and_unknown_fields_are_null() -> None:
    assert run(Binary("+", col("x"), lit(1)), x=("long", [10, 20])) == 11
    assert run(Binary("+", col("missing"), lit(1))) is None
    assert kind_of(Binary("+", lit(1), lit(2))) == T.ANY
    assert run(Neg(lit("5"))) == -5 and run(Neg(lit("x"))) is None


def test_a_keyword_sub_field_is_the_field_when_no_field_has_that_name() -> None:
    assert run(Binary("==", col("user.keyword"), lit("bob")), user=("keyword", "bob")) is True
    assert run(col("user.keyword"), user=("keyword", "bob"), user__keyword=("keyword", "own")) == "own"


# --- search (§5) ---------------------------------------------------------------------------------

AUTH_ROW = {"host__name": ("keyword", "mail"), "user__name": ("keyword", "Alice"), "event__code": ("long", 4624),
            "tags": ("keyword", ["VPN", "admin"]), "path": ("keyword", "C:\\Windows\\System32\\cmd.exe"),
            "_index": ("keyword", "auth"), "_id": ("keyword", "e1"), "_source": ("_source", '{"host": "x"}')}


@pytest.mark.parametrize(("term", "expected"), [
    (Term("host.name", "=", "MAIL"), True), (Term("host.name", "=", "ma*"), True), (Term("host.name", "=", "*a*l"), True),
    (Term("host.name", "=", "mai"), False), (Term("event.code", "=", 4624), True), (Term("event.code", "=", "4624"), True),
    (Term("event.code", "=", "46*"), True), (Term("event.code", "=", 4625), False), (Term("tags", "=", "vpn"), True),
    (Term("tags", "=", "ADM*"), True), (Term("host.name", "=", "*"), True), (Term("nothing", "=", "*"), False),
    (Term("path", "=", "c:\\windows\\*"), True), (Term("host.name", "!=", "mail"), False),
    (Term("host.name", "!=", "dc01"), True), (Term("nothing", "!=", "x"), False), (Term("tags", "!=", "vpn"), False),
    (Term("event.code", ">", 4000), True), (Term("event.code", "<=", "4624"), True), (Term("event.code", "<", 4624), False),
    (Term("host.name", ">", 1), False), (Term("host.name", ">", "a"), False),
])
def test_search_terms(term: Term, expected: bool) -> None:
    assert run(term, **AUTH_ROW) is expected


def test_not_equal_needs_the_field_where_not_of_equal_does_not() -> None:
    assert run(Term("user.name", "!=", "alice"), other=("keyword", "x")) is False
    assert run(Not(Term("user.name", "=", "alice")), other=("keyword", "x")) is True


def test_search_compares_numeric_strings_with_numbers() -> None:
    assert run(Term("code", "=", 4624), code=("keyword", "4624")) is True
    assert run(Term("code", ">=", 10), code=("keyword", "9")) is False
    assert run(Term("code", "<", 10), code=("keyword", ["abc", "9"])) is True  # some value


def test_search_dates_compare_with_date_expressions() -> None:
    ts = ("date", 1_714_557_600_000)  # 2024-05-01T10:00:00Z; now is 21:46:40 that day
    assert run(Term("@timestamp", ">=", "now-12h"), **{"@timestamp": ts}) is True
    assert run(Term("@timestamp", ">=", "now-1h"), **{"@timestamp": ts}) is False
    assert run(Term("@timestamp", "<", "2024-05-01T10:00:01Z"), **{"@timestamp": ts}) is True
    assert run(Term("@timestamp", "<=", "now/d"), **{"@timestamp": ts}) is True  # rounded up to the day's end
    assert run(Term("@timestamp", "<", "now/d"), **{"@timestamp": ts}) is False  # the day's start
    assert run(Term("@timestamp", "=", "2024-05-01T10:00:00.000Z"), **{"@timestamp": ts}) is True
    assert run(Term("@timestamp", "=", "2024-05-01*"), **{"@timestamp": ts}) is True  # as the answer writes it
    assert run(Term("when", ">", "2024-04-30"), when=("keyword", "2024-05-01T00:00:00Z")) is True
    # §3's Splunk-style relative times are date expressions too, and a date that omits fields
    # ends where a range's end does (OpenSearch's lte/gt): the last ms of what it names
    assert run(Term("@timestamp", ">=", "-12h"), **{"@timestamp": ts}) is True
    assert run(Term("@timestamp", ">=", "-1h"), **{"@timestamp": ts}) is False
    assert run(Term("@timestamp", ">=", "-1d@d"), **{"@timestamp": ts}) is True
    assert run(Term("@timestamp", "<", "@d"), **{"@timestamp": ts}) is False
    assert run(Term("@timestamp", "<=", "2024-05-01"), **{"@timestamp": ts}) is True
    assert run(Term("@timestamp", ">", "2024-05-01T09"), **{"@timestamp": ts}) is True
    assert run(Term("@timestamp", ">", "2024-05-01T10"), **{"@timestamp": ts}) is False
    assert run(Term("@timestamp", ">=", "2024-05-01T10"), **{"@timestamp": ts}) is True


@pytest.mark.parametrize(("text", "expected"), [
    ("mail", True), ("MAIL", True), ("alice", True), ("4624", True), ("*462*", True), ("vpn", True),
    ("system32", True), ("cmd.exe", True), ("windows\\system32", True), ("exe", True), ("*.exe", True),
    ("ali", False), ("auth", False), ("e1", False), ("host", False), ("*x*", True), ("*zzz*", False),
])
def test_full_text_matches_whole_values_tokens_and_patterns_of_the_fields_only(text: str, expected: bool) -> None:
    assert run(Text(text), **AUTH_ROW) is expected


def test_full_text_phrases_match_consecutive_tokens() -> None:
    row = {"msg": ("text", "Failed login for user bob")}
    assert run(Text("failed login"), **row) is True
    assert run(Text("login failed"), **row) is False
    assert run(Text("Failed login for user bob"), **row) is True


def test_the_search_example_precedence_is_the_parsers_tree() -> None:
    # host.name="mail" AND NOT event.code="4625" OR event.code="4624"
    expr = Logical("OR", Logical("AND", Term("host.name", "=", "mail"), Not(Term("event.code", "=", "4625"))),
                   Term("event.code", "=", "4624"))
    assert run(expr, host__name=("keyword", "dc01"), event__code=("long", 4624)) is True
    assert run(expr, host__name=("keyword", "mail"), event__code=("long", 4625)) is False


# --- through the shared executor --------------------------------------------------------------

EVENTS = [  # sml.md §10's index ``auth``
    ("e1", "2024-05-01T10:00:00.000Z", "mail", "alice", 4624, "success"),
    ("e2", "2024-05-01T10:05:00.000Z", "mail", "bob", 4625, "failure"),
    ("e3", "2024-05-01T10:10:00.000Z", "dc01", "alice", 4624, "success"),
    ("e4", "2024-05-01T10:15:00.000Z", "dc01", "bob", 4624, "success"),
    ("e5", "2024-05-01T10:20:00.000Z", "mail", "bob", 4625, "failure"),
]


async def _load(es: AsyncElasticsearch) -> None:
    await es.indices.create(index="auth", mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"properties": {"name": {"type": "keyword"}}},
        "user": {"properties": {"name": {"type": "keyword"}}},
        "event": {"properties": {"code": {"type": "long"}, "outcome": {"type": "keyword"}}}}})
    ops: list[dict[str, Any]] = []
    for _id, ts, host, user, code, outcome in EVENTS:
        ops += [{"index": {"_index": "auth", "_id": _id}},
                {"@timestamp": ts, "host": {"name": host}, "user": {"name": user},
                 "event": {"code": code, "outcome": outcome}}]
    await es.bulk(operations=ops, refresh=True)


def _run(server: Any, steps: tuple[p.Step, ...]) -> tuple[list[str], list[str], list[list[Any]]]:
    settings = server.app[keys.SETTINGS]
    with sqlite3.connect(settings.db_path) as conn:
        result = run_plan(p.Plan(steps), server.app[keys.CATALOG], conn, Control(), AT_NOW)
        return result.names, result.types, list(result.rows)


def _rows(names: list[str], rows: list[list[Any]]) -> list[dict[str, Any]]:
    return [dict(zip(names, r)) for r in rows]


async def test_search_terms_filter_an_ordered_source(es: AsyncElasticsearch, server: Any) -> None:
    await _load(es)
    newest_first = p.ScanOrder("@timestamp", descending=True)
    source = p.Source(("auth",), metadata=("_id",), order=newest_first, predicate=Term("event.code", "=", "4625"))
    names, _, rows = _run(server, (source,))
    assert [r[names.index("_id")] for r in rows] == ["e5", "e2"]
    text = p.Source(("auth",), metadata=("_id", "_index"), order=newest_first, predicate=Text("mail"))
    names, _, rows = _run(server, (text,))
    assert [r[names.index("_id")] for r in rows] == ["e5", "e2", "e1"]


def _stats(*aggs: tuple[str, Call], by: tuple[str, ...] = ()) -> p.Aggregate:
    return p.Aggregate(tuple((name, c, None) for name, c in aggs), tuple((f, col(f)) for f in by))


async def test_the_worked_example_aggregates_per_outcome(es: AsyncElasticsearch, server: Any) -> None:
    await _load(es)
    step = _stats(("count", call("count")), ("users", call("dc", col("user.name"))),
                  ("last_seen", call("latest", col("@timestamp"))), by=("event.outcome",))
    names, types, rows = _run(server, (p.Source(("auth",)), step, p.Sort((p.Order(col("event.outcome")),))))
    assert _rows(names, rows) == [
        {"count": 2, "users": 1, "last_seen": 1_714_558_800_000, "event.outcome": "failure"},
        {"count": 3, "users": 2, "last_seen": 1_714_558_500_000, "event.outcome": "success"}]
    assert types[names.index("last_seen")] == "date"  # so the answer writes it as a date


async def test_an_eval_result_summed_per_user(es: AsyncElasticsearch, server: Any) -> None:
    await _load(es)
    ok = call("if", Binary("==", col("event.outcome"), lit("success")), 1, 0)
    steps = (p.Source(("auth",)), p.Eval((("ok", ok),)),
             _stats(("ok_count", call("sum", col("ok"))), ("count", call("count")), by=("user.name",)),
             p.Sort((p.Order(col("user.name")),)))
    names, _, rows = _run(server, steps)
    assert _rows(names, rows) == [{"ok_count": 2, "count": 2, "user.name": "alice"},
                                  {"ok_count": 1, "count": 3, "user.name": "bob"}]


async def test_without_by_one_row_even_over_no_rows(es: AsyncElasticsearch, server: Any) -> None:
    await _load(es)
    steps = (p.Source(("auth",), predicate=Term("event.code", "=", 1)),
             _stats(("count", call("count")), ("s", call("sum", col("event.code"))),
                    ("v", call("values", col("user.name")))))
    names, _, rows = _run(server, steps)
    assert _rows(names, rows) == [{"count": 0, "s": None, "v": None}]


def _aggregate(c: Call, *rows: dict[str, Any], kinds: dict[str, str] | None = None) -> Any:
    """One aggregate call over ``rows`` (dicts), as the shared Aggregate step feeds it."""
    names = sorted({n for r in rows for n in r} | {"@timestamp"})
    scope = Scope(names, [(kinds or {}).get(n, T.ANY) for n in names], Warnings(), AT_NOW)
    fn, other, factory, _ = AT_NOW.aggregate(c, scope, Meter())
    state = factory()
    for r in rows:
        row = [r.get(n) for n in names]
        state.add(_as_list(fn(row)) if fn else None, _as_list(other(row)) if other else None)
    return state.result()


def _as_list(v: Any) -> list[Any]:
    return [] if v is None else v if type(v) is list else [v]


def rows_of(field: str, *values: Any) -> list[dict[str, Any]]:
    return [{field: v} for v in values]


F = col("f")


@pytest.mark.parametrize(("c", "values", "expected"), [
    (call("count"), [1, None, 3], 3),
    (Call("count", (Star(),)), [1, None], 2),
    (call("count", F), [1, None, [2, 3], "x"], 3),
    (call("dc", F), [1, 1.0, "1", True, None, [2, 1]], 4),
    (call("distinct_count", F), ["a", "A", "a"], 2),
    (call("sum", F), [1, "2", "x", None, [3, 4]], 10),
    (call("sum", F), [1, 2.5], 3.5),
    (call("sum", F), ["x", None], None),
    (call("sum", F), [2**62, 2**62], float(2**63)),
    (call("avg", F), [1, "2", "x", 6], 3.0),
    (call("mean", F), [], None),
    (call("min", F), [5, "3", "abc", -1.5], -1.5),
    (call("max", F), [5, "30", "abc"], 30),
    (call("max", F), ["b", "abc", None], "b"),
    (call("min", F), ["b", "abc", True], "abc"),
    (call("values", F), ["b", 10, "a", 2, "b", True, 2.0], [2, 10, "a", "b", True]),
    (call("first", F), [None, "x", "y"], "x"),
    (call("last", F), ["x", "y", None], "y"),
    (call("median", F), [5, 1, 3, 2], 2),
    (call("median", F), [5, 1, 3], 3),
    (call("perc", F, 95), list(range(1, 21)), 19),
    (call("perc", F, 0), [3, 1, 2], 1),
    (call("p50", F), [4, 1, 3, 2], 2),
    (call("perc99", F), list(range(1, 201)), 198),
    (call("p99.5", F), list(range(1, 201)), 199),
    (call("list", F), ["b", None, "a", "b"], ["b", "a", "b"]),
    (call("var", F), [2, 4, 4, 4, 5, 5, 7, 9], 32 / 7),
    (call("stdev", F), [2, 4, 4, 4, 5, 5, 7, 9], math.sqrt(32 / 7)),
    (call("stdev", F), [5], None),
    (call("range", F), [5, "1", 9.5, "x"], 8.5),
    (call("mode", F), ["b", "a", "a", "b", "c"], "b"),
    (call("mode", F), [None], None),
])
def test_aggregates(c: Call, values: list[Any], expected: Any) -> None:
    value = _aggregate(c, *rows_of("f", *values))
    assert value == pytest.approx(expected) if isinstance(expected, float) else value == expected
    assert type(value) is type(expected)


def test_values_and_list_keep_at_most_a_hundred() -> None:
    assert _aggregate(call("values", F), *rows_of("f", *range(150))) == list(range(100))
    assert _aggregate(call("list", F), *rows_of("f", *range(150))) == list(range(100))


def test_earliest_and_latest_read_the_time_field_and_skip_rows_without_it_or_the_value() -> None:
    rows = [{"f": "a", "@timestamp": 30}, {"f": "b", "@timestamp": 10}, {"f": "tie", "@timestamp": 10},
            {"f": "none"}, {"f": None, "@timestamp": 99}, {"f": "late", "@timestamp": "1970-01-01T00:00:00.050Z"},
            {"f": "bad", "@timestamp": "not a date"}]
    assert _aggregate(call("earliest", F), *rows) == "b"
    assert _aggregate(call("latest", F), *rows) == "late"
    by_seq = [{"f": "x", "seq": 2}, {"f": "y", "seq": 1}]
    assert _aggregate(call("earliest", F, col("seq")), *by_seq) == "y"
    assert _aggregate(call("latest", F, col("seq")), *by_seq) == "x"
    assert _aggregate(call("latest", F), {"f": "x"}) is None


def test_every_documented_aggregate_is_known_and_others_are_refused_at_creation() -> None:
    for name in ("count", "dc", "distinct_count", "sum", "avg", "mean", "min", "max", "values", "earliest",
                 "latest", "first", "last", "median", "perc", "perc95", "p99", "list", "stdev", "var", "range",
                 "mode"):
        assert AT_NOW.is_aggregate(name)
    assert not AT_NOW.is_aggregate("len") and not AT_NOW.is_aggregate("pxx")
    with pytest.raises(ParsingError, match=r"line 1:7: unknown aggregate function \[average\]"):
        aggregates.verify(Call("average", (F,), src=Src(1, 7, "average(f)")))
    with pytest.raises(ParsingError, match=r"aggregate function \[sum\] expects 1 argument, got 2"):
        aggregates.verify(call("sum", F, F))
    with pytest.raises(ParsingError, match=r"aggregate function \[latest\] expects 1 to 2 arguments, got 0"):
        aggregates.verify(call("latest"))
    with pytest.raises(ParsingError, match=r"percentile of \[perc\] must be a number from 0 to 100"):
        aggregates.verify(call("perc", F, 101))
    with pytest.raises(ParsingError, match=r"percentile of \[perc\]"):
        aggregates.verify(call("perc", F, F))
    with pytest.raises(ParsingError, match=r"percentile of \[p101\]"):
        aggregates.verify(call("p101", F))


# --- functions (§6.1) ----------------------------------------------------------------------------

X = col("x")
CASES: list[tuple[Expr, Any]] = [
    # conditional
    (call("if", Binary("==", lit(1), lit(1)), "a", "b"), "a"),
    (call("if", lit(None), "a", "b"), "b"),
    (call("if", lit("true"), "a", "b"), "b"),
    (call("case", Binary(">", lit(5), lit(10)), "big", Binary(">", lit(5), lit(1)), "mid"), "mid"),
    (call("case", call("false"), "x"), None),
    (call("case", Binary(">", lit(5), lit(10)), "big", call("true"), "other"), "other"),
    (call("coalesce", lit(None), col("empty"), "b", "c"), "b"),
    (call("coalesce", lit(None)), None),
    (call("nullif", "a", "a"), None),
    (call("nullif", "4", 4), None),
    (call("nullif", "a", "b"), "a"),
    (call("nullif", lit(None), lit(None)), None),
    (call("like", "abc", "a%"), True),
    (call("like", "abc", "a_c"), True),
    (call("like", "abc", "A%"), False),
    (call("like", "a*c", "a*c"), True),
    (call("like", "abc", "a*c"), False),
    (call("like", "50%", "50\\%"), False),  # no escape character: the backslash is itself
    (call("like", lit(None), "%"), None),
    (call("cidrmatch", "10.0.0.0/8", "10.1.2.3"), True),
    (call("cidrmatch", "10.0.0.0/8", "11.1.2.3"), False),
    (call("cidrmatch", "2001:db8::/32", "2001:db8::1"), True),
    (call("cidrmatch", "10.0.0.0/8", "2001:db8::1"), False),
    (call("cidrmatch", "10.0.0.0/8", "not an ip"), False),
    (call("cidrmatch", "nonsense", "10.1.2.3"), None),
    (call("validate", Binary(">", lit(5), lit(1)), "small", Binary(">", lit(5), lit(9)), "too small"), "too small"),
    (call("validate", call("true"), "x"), None),
    (call("validate", lit(None), "null fails"), "null fails"),
    (call("match", "user=bob", "b.b"), True),
    (call("match", "user=bob", "^bob"), False),
    (call("match", 4624, "^46"), True),
    (call("replace", "2024-05-01", "(\\d+)-(\\d+)-(\\d+)", "\\3/\\2/\\1"), "01/05/2024"),
    (call("replace", "aaa", "a", "b"), "bbb"),
    (call("replace", "abc", "x", "y"), "abc"),
    # mathematical
    (call("abs", -3), 3), (call("abs", "-2.5"), 2.5), (call("abs", "x"), None), (call("abs", lit(None)), None),
    (call("ceil", 1.2), 2), (call("ceil", -1.2), -1), (call("floor", 1.8), 1), (call("floor", "-1.2"), -2),
    (call("ceil", 5), 5), (call("ceiling", 0.5), 1),
    (call("round", 2.5), 3), (call("round", -2.5), -3), (call("round", 1.2345, 2), 1.23),
    (call("round", 1.235, 2), 1.24), (call("round", 1234, -2), 1200), (call("round", 7), 7),
    (call("round", 1.5, 400), 1.5),
    (call("exact", 0.1), 0.1), (call("sigfig", 1.23456), 1.23456), (call("exact", "x"), None),
    (call("exp", 0), 1.0), (call("exp", 10_000), None),
    (call("ln", math.e), 1.0), (call("ln", 0), None), (call("ln", -1), None),
    (call("log", 100), 2.0), (call("log", 8, 2), 3.0), (call("log", 8, 1), None), (call("log", -8), None),
    (call("pi"), math.pi),
    (call("pow", 2, 10), 1024), (call("pow", 2, -1), 0.5), (call("pow", 2, 0.5), math.sqrt(2)),
    (call("pow", -8, 0.5), None), (call("pow", 10, 400), None), (call("pow", 2, 100), float(2**100)),
    (call("sqrt", 16), 4.0), (call("sqrt", -1), None),
    # time
    (call("now"), NOW),
    (call("strftime", 1_714_557_600_123, "%Y-%m-%d %H:%M:%S"), "2024-05-01 10:00:00"),
    (call("strftime", 1_714_557_600_123, "%H:%M:%S.%3N %%s %s"), "10:00:00.123 %s 1714557600"),
    (call("strftime", 1_714_557_600_123, "%6N|%N"), "123000|123000000"),
    (call("strftime", "2024-05-01T10:00:00Z", "%d/%m/%Y"), "01/05/2024"),
    (call("strftime", "yesterday", "%Y"), None),
    (call("strptime", "2024-05-01 10:00:00", "%Y-%m-%d %H:%M:%S"), 1_714_557_600_000),
    (call("strptime", "01/05/2024 10:00:00.123", "%d/%m/%Y %H:%M:%S.%3N"), 1_714_557_600_123),
    (call("strptime", "2024-05-01 12:00 +0200", "%Y-%m-%d %H:%M %z"), 1_714_557_600_000),
    (call("strptime", "May 1", "%Y-%m-%d"), None),
    # type identification
    (call("isnull", lit(None)), True), (call("isnull", col("empty")), True), (call("isnull", "x"), False),
    (call("isnull", col("missing")), True), (call("isnotnull", 0), True), (call("isnotnull", lit(None)), False),
    (call("isbool", call("true")), True), (call("isbool", "true"), False),
    (call("isint", 1), True), (call("isint", 1.0), False), (call("isint", "1"), False),
    (call("isnum", 1.5), True), (call("isnum", "1.5"), False), (call("isnum", call("true")), False),
    (call("isstr", "a"), True), (call("isstr", 1), False), (call("isstr", lit(None)), False),
    (call("typeof", "a"), "String"), (call("typeof", 1), "Number"), (call("typeof", 1.5), "Number"),
    (call("typeof", call("false")), "Boolean"), (call("typeof", lit(None)), "Null"),
    (call("typeof", col("multi")), "Multivalue"), (call("typeof", col("object")), "Object"),
    # conversion
    (call("tonumber", "42"), 42), (call("tonumber", " 4.5 "), 4.5), (call("tonumber", "1e3"), 1000.0),
    (call("tonumber", "abc"), None), (call("tonumber", "ff", 16), 255), (call("tonumber", "0x1F", 16), 31),
    (call("tonumber", "101", 2), 5), (call("tonumber", "12", 2), None), (call("tonumber", "1", 99), None),
    (call("tonumber", 7), 7), (call("tonumber", call("true")), None),
    (call("tostring", 42), "42"), (call("tostring", 1.5), "1.5"), (call("tostring", call("true")), "true"),
    (call("tostring", lit(None)), None), (call("tostring", col("multi")), "a"),
    (call("tostring", 255, "hex"), "0xff"), (call("tostring", 1234567, "commas"), "1,234,567"),
    (call("tostring", 1234.567, "commas"), "1,234.57"), (call("tostring", 3725, "duration"), "01:02:05"),
    (call("tostring", 90061, "duration"), "1+01:01:01"), (call("tostring", 1, "roman"), None),
    (call("tobool", 0), False), (call("tobool", "1"), True), (call("tobool", "TRUE"), True),
    (call("tobool", "false"), False), (call("tobool", "maybe"), None), (call("tobool", call("true")), True),
    (call("printf", "%s has %d events (%.1f%%)", "mail", "3", 60), "mail has 3 events (60.0%)"),
    (call("printf", "%05d|%-4s|%x|%e", 42, "ab", 255, 1234.5), "00042|ab  |ff|1.234500e+03"),
    (call("printf", "%d", "abc"), None), (call("printf", "%s %s", "only one"), None),
    (call("printf", "%999999999d", 1), None),
    # statistical
    (call("max", 1, 3, 2), 3), (call("max", 1, "abc", 9), "abc"), (call("max", 3, "10"), "10"),
    (call("min", 3, "10", "abc"), 3), (call("min", lit(None), 2), 2), (call("max", lit(None)), None),
    (call("max", col("numbers"), 1), 9), (call("min", col("numbers")), 2),
    # text
    (call("len", "héllo"), 5), (call("len", 1234), 4), (call("len", lit(None)), None),
    (call("lower", "MiXeD"), "mixed"), (call("upper", "MiXeD"), "MIXED"), (call("upper", col("multi")), "A"),
    (call("ltrim", "  a  "), "a  "), (call("rtrim", "  a  "), "  a"), (call("trim", "  a  "), "a"),
    (call("trim", "xxaxx", "x"), "a"), (call("ltrim", "ZZa", "Z"), "a"), (call("rtrim", "a.;", ";."), "a"),
    (call("substr", "string", 1, 3), "str"), (call("substr", "string", 3), "ring"),
    (call("substr", "string", -3), "ing"), (call("substr", "string", -3, 2), "in"),
    (call("substr", "string", 0, 2), "st"), (call("substr", "string", 10), ""),
    (call("substr", "string", -10, 2), "st"), (call("substr", "string", 1, -1), None),
    (call("true"), True), (call("false"), False),
    # multivalue
    (call("split", "a,b,c", ","), ["a", "b", "c"]), (call("split", "abc", ","), "abc"),
    (call("split", "abc", ""), ["a", "b", "c"]), (call("split", lit(None), ","), None),
    (call("mvcount", col("multi")), 3), (call("mvcount", "x"), 1), (call("mvcount", lit(None)), None),
    (call("mvcount", col("empty")), None),
    (call("mvindex", col("multi"), 0), "a"), (call("mvindex", col("multi"), -1), "c"),
    (call("mvindex", col("multi"), 1, 2), ["b", "c"]), (call("mvindex", col("multi"), 0, -2), ["a", "b"]),
    (call("mvindex", col("multi"), 0, 99), ["a", "b", "c"]), (call("mvindex", col("multi"), 5), None),
    (call("mvindex", col("multi"), 2, 1), None), (call("mvindex", "x", 0), "x"),
    (call("mvjoin", col("multi"), ";"), "a;b;c"), (call("mvjoin", col("numbers"), ","), "9,2"),
    (call("mvjoin", lit(None), ","), None),
    (call("mvappend", col("multi"), "d", lit(None), col("numbers")), ["a", "b", "c", "d", 9, 2]),
    (call("mvappend", lit(None), "x"), "x"), (call("mvappend", lit(None)), None),
    (call("mvdedup", col("dups")), ["a", 1, "1", True]), (call("mvdedup", "x"), "x"),
]
ROW = {"multi": ("keyword", ["a", "b", "c"]), "numbers": ("long", [9, 2]), "empty": ("keyword", []),
       "object": (T.ANY, {"a": 1}), "dups": (T.ANY, ["a", 1, "a", 1.0, "1", True])}


@pytest.mark.parametrize(("expr", "expected"), CASES, ids=[str(i) for i in range(len(CASES))])
def test_functions(expr: Expr, expected: Any) -> None:
    value = run(expr, **ROW)
    if isinstance(expected, float):
        assert value == pytest.approx(expected) and type(value) is float
    else:
        assert value == expected and type(value) is type(expected)


def test_every_function_of_the_spec_is_known() -> None:
    core = ("if case coalesce nullif like abs ceil floor round now isnull isnotnull tonumber tostring len lower upper "
            "ltrim rtrim trim replace substr true false match")
    secondary = ("cidrmatch validate exact exp ln log pi pow sigfig sqrt strftime strptime isbool isint isnum isstr "
                 "typeof printf tobool max min split mvcount mvindex mvjoin mvappend mvdedup")
    assert set(f"{core} {secondary}".split()) <= set(functions.FUNCTIONS)


def test_if_evaluates_only_the_branch_it_takes() -> None:
    taken: list[str] = []
    spy = dataclasses.replace(AT_NOW, call=lambda c, s: ((lambda row: taken.append(c.name)), T.ANY)
                              if c.name in ("left", "right") else AT_NOW.call(c, s))
    run(call("if", call("true"), Call("left", ()), Call("right", ())), spy)
    assert taken == ["left"]


def test_now_is_the_tasks_instant_and_sml_alone_reads_the_clock() -> None:
    assert run(call("now"), dialect_at(123)) == 123
    assert abs(run(call("now"), SML) - run(call("now"), dialect_at(None))) < 60_000


def test_string_functions_give_their_type_and_dynamic_ones_any() -> None:
    assert kind_of(call("lower", "A")) == "keyword" and kind_of(call("isnull", X), x=("long", 1)) == "boolean"
    assert kind_of(call("now")) == "date" and kind_of(call("strptime", "1", "%d")) == "date"
    assert kind_of(call("coalesce", X, "a"), x=("long", 1)) == T.ANY
    assert kind_of(call("if", call("true"), "a", "b")) == "keyword"


@pytest.mark.parametrize(("expr", "message"), [
    (Call("nosuch", (), src=Src(1, 12, "nosuch()")), r"line 1:12: unknown function \[nosuch\]"),
    (call("substr", "a"), r"function \[substr\] expects 2 to 3 arguments, got 1"),
    (call("len"), r"function \[len\] expects 1 argument, got 0"),
    (call("pi", 1), r"function \[pi\] expects 0 arguments, got 1"),
    (call("coalesce"), r"function \[coalesce\] expects at least 1 argument, got 0"),
    (call("case", call("true")), r"function \[case\] expects at least 2 arguments, got 1"),
    (call("case", call("true"), 1, call("false")), r"function \[case\] expects pairs of a condition and a value"),
    (call("validate", call("true"), 1, 2), r"function \[validate\] expects pairs"),
    (call("replace", "a", "(a", "b"), r"invalid regular expression \[\(a\]: missing \)"),
    (call("match", "a", "(a)\\1"), r"invalid regular expression"),
    (Call("count", (X,)), r"unknown function \[count\]"),
])
def test_unknown_functions_and_wrong_arguments_are_parsing_errors(expr: Call, message: str) -> None:
    with pytest.raises(ParsingError, match=message) as caught:
        run(expr, x=("long", 1))
    assert caught.value.status == 400 and caught.value.type == "parsing_exception"


def test_verify_finds_bad_calls_anywhere_in_a_step_before_anything_runs() -> None:
    step = p.Eval((("ok", Logical("AND", call("isnull", X), Binary("==", call("lenght", X), lit(1)))),))
    with pytest.raises(ParsingError, match=r"unknown function \[lenght\]"):
        functions.verify(step)
    functions.verify(p.Eval((("ok", call("len", X)),)))


def test_a_computed_regular_expression_that_re2_refuses_is_null() -> None:
    assert run(call("match", "aa", X), x=("keyword", "(a)\\1")) is None
    assert run(call("match", "aa", X), x=("keyword", "a+")) is True


def test_string_results_past_the_cap_are_null() -> None:
    big = "a" * 300_000
    assert run(call("replace", X, "a", "aaaa"), x=("keyword", big)) is None
    assert len(run(call("replace", X, "a", "b"), x=("keyword", big))) == 300_000


def test_an_aggregates_arguments_are_verified_as_eval_expressions() -> None:
    with pytest.raises(ParsingError, match=r"unknown function \[lenght\]"):
        aggregates.verify(call("sum", call("lenght", X)))
    aggregates.verify(call("sum", call("len", X)))


async def test_an_ordered_sources_predicate_keeps_smls_meaning(es: AsyncElasticsearch, server: Any) -> None:
    # a numeric comparison over a keyword field: SQL would compare the texts ("9" > "10")
    await es.indices.create(index="codes", mappings={"properties": {"@timestamp": {"type": "date"},
                                                                    "code": {"type": "keyword"}}})
    await es.bulk(operations=[{"index": {"_index": "codes", "_id": "nine"}}, {"@timestamp": 1, "code": "9"},
                              {"index": {"_index": "codes", "_id": "ten"}}, {"@timestamp": 2, "code": "10"}],
                  refresh=True)
    source = p.Source(("codes",), metadata=("_id",), order=p.ScanOrder("@timestamp"),
                      predicate=Binary("<", col("code"), lit("10")))
    names, _, rows = _run(server, (source,))
    assert [r[names.index("_id")] for r in rows] == ["nine"]


def test_type_errors_never_fail_and_never_warn() -> None:
    warnings = Warnings()
    scope = Scope(["x"], ["keyword"], warnings, AT_NOW)
    exprs = [Binary("*", col("x"), lit(2)), Binary("/", lit(1), lit(0)), call("abs", col("x")),
             call("substr", col("x"), "a"), Neg(col("x")), call("round", col("x"), "y"), call("pow", col("x"), 2)]
    assert [compile_expr(e, scope)[0](["abc"]) for e in exprs] == [None] * len(exprs)
    assert warnings.messages == []
