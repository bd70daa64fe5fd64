"""EQL's rules in the shared expression compiler: the shared additions (case-insensitive IN
and LIKE, the any-value rule over multi-values, the pushdown switch) and the EQL dialect
with its 16 functions, compiled from shared expression trees and run over rows."""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any

import pytest
from elasticsearch import AsyncElasticsearch

from service import keys
from service.query import plan as p
from service.query.control import Control
from service.query.dialect import Dialect
from service.query.esql.dialect import ESQL
from service.query.evaluate import Scope, Warnings, compile_expr
from service.query.execute import run_plan
from service.query.expr import Binary, Column, Expr, In, Like, Literal, Not

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
    from service import patterns
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
