"""The SQL engine's spelling of what the pushdown compiler emits: SQLite's, for now.

The compiler (``compiler.py``) decides *what* can run as SQL and with which guards; this
object decides how that is written for one engine: identifiers, wildcard patterns,
null ordering, Java's integer division and modulo, floor division for time buckets, the
surprise guard, and the functions registered on the connection. A DuckDB dialect would
be a second class with the same methods.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from ...patterns import lucene_regex
from ...store.sql import quote

DOUBLE_MAX = "1.7976931348623157e308"


class Surprise(Exception):
    """Raised inside SQL by a guard: a row where SQL's answer would differ from ES|QL's
    (an overflow, a division by zero). The runner then runs the query in Python."""


class SqliteDialect:
    name = "sqlite"
    SURPRISE = "esquire_surprise"  # a registered function that raises: see ``guard``
    RLIKE = "esquire_rlike"

    def __init__(self) -> None:
        self.surprised = False  # set when the guard fired on the connection last registered

    # --- text ---
    def ident(self, name: str) -> str:
        return quote(name)

    def glob(self, like_pattern: str) -> str:
        """ES|QL's LIKE pattern (``*``, ``?``, ``\\`` escaping one of ``*?\\``; already
        validated) as a GLOB pattern: both are case-sensitive whole-value matches; GLOB's
        own ``[``, ``*``, ``?`` taken literally are bracketed."""
        out: list[str] = []
        i = 0
        while i < len(like_pattern):
            c = like_pattern[i]
            if c == "\\":
                out.append(self._glob_literal(like_pattern[i + 1]))
                i += 2
                continue
            out.append(c if c in "*?" else self._glob_literal(c))
            i += 1
        return "".join(out)

    @staticmethod
    def _glob_literal(c: str) -> str:
        return f"[{c}]" if c in "*?[" else c

    def order(self, expr: str, ascending: bool, nulls_first: bool) -> str:
        return f"{expr} {'ASC' if ascending else 'DESC'} NULLS {'FIRST' if nulls_first else 'LAST'}"

    def int_div(self, a: str, b: str) -> str:
        """Java's ``/`` on integers truncates towards zero, as SQLite's does."""
        return f"({a} / {b})"

    def int_mod(self, a: str, b: str) -> str:
        """Java's ``%`` takes the dividend's sign, as SQLite's does."""
        return f"({a} % {b})"

    def double_mod(self, a: str, b: str) -> str:
        """C's fmod, as Java's ``%`` on doubles (SQLite's ``%`` would truncate to integers)."""
        return f"mod({a}, {b})"

    def floor_to(self, a: str, step: int) -> str:
        """``a`` rounded down to a multiple of the positive ``step`` (negative ``a`` too:
        SQLite's ``%`` takes the dividend's sign)."""
        return f"({a} - ((({a} % {step}) + {step}) % {step}))"

    def guard(self, expr: str, bad: str) -> str:
        """``expr``, except that a row where ``bad`` holds raises ``Surprise`` out of the
        statement (the CASE arm only runs on that row, so the guard costs a comparison)."""
        return f"(CASE WHEN {bad} THEN {self.SURPRISE}() ELSE {expr} END)"

    def not_finite(self, expr: str) -> str:
        return f"abs({expr}) > {DOUBLE_MAX}"

    def outside(self, expr: str, lo: int, hi: int) -> str:
        return f"{expr} NOT BETWEEN {lo} AND {hi}"

    def rlike(self, value: str, pattern: str) -> str:
        return f"{self.RLIKE}({pattern}, {value})"

    # --- the connection ---
    def register(self, conn: sqlite3.Connection) -> None:
        """The functions the compiled SQL calls; ``surprised`` is reset."""
        self.surprised = False

        def surprise() -> Any:
            self.surprised = True
            raise Surprise()

        conn.create_function(self.SURPRISE, 0, surprise)
        conn.create_function(self.RLIKE, 2, _rlike, deterministic=True)

    def surprise_of(self, exc: sqlite3.Error) -> bool:
        """Whether ``exc`` is a guard firing or SQLite refusing a result ES|QL defines (its
        ``sum()`` of integers stops at a 64-bit overflow that the final sum may not reach)."""
        return self.surprised or (isinstance(exc, sqlite3.OperationalError) and str(exc) == "integer overflow")


def _rlike(pattern: str, value: Any) -> int | None:
    if value is None:
        return None
    return 1 if lucene_regex(pattern).match(value) else 0


DIALECT = SqliteDialect
