"""A language's rules, handed to the shared expression compiler and executor.

The compiler (``evaluate.py``) and the executor (``execute.py``) know no language: what a
function name means, how a literal compared with a typed column is cast, what a
single-value operation does with a null or a multi-value, how unknown indices are
reported and which steps only one language has, they ask the query's dialect.
ES|QL's is ``esql.dialect.ESQL``. A dynamically typed language (SML) compiles the nodes
whose meaning it changes itself (``compile_node``) and types what it cannot know ``any``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

from .. import patterns
from .evaluate import arithmetic

if TYPE_CHECKING:
    from ..store.catalog import Catalog, Index
    from .aggregates import Meter
    from .evaluate import Fn, Scope, Warnings
    from .expr import Call, Expr, Src
    from .plan import Source, Step

    Compiled = tuple[Fn, str]


@dataclass(frozen=True)
class Dialect:
    name: str
    # A function call (a cast is a call of the dialect's conversion function for that type).
    call: Callable[[Call, Scope], Compiled]
    cast: Callable[[Expr, str, Scope], Compiled]
    # An operand compared with (or listed in IN against) a value of ``kind``: the compiled,
    # implicitly cast operand, or None to compare it as it is.
    coerce: Callable[[Expr, str, Scope], Compiled | None]
    # A single-value operation over ``args``: what null, a multi-value and an evaluation
    # error give (ES|QL: null; a multi-value or error also records a warning).
    single: Callable[[Callable[..., Any], Src, Warnings, list[Fn]], Fn]
    # The warning of a multi-value met by a boolean operator or IN, which then sees null.
    multi_value_warning: str
    is_aggregate: Callable[[str], bool]
    # A function's canonical name (ES|QL: TO_INT is TO_INTEGER): what pushdown translates by.
    canonical: Callable[[str], str]
    # One aggregate call of an Aggregate step: (the value it reads, a second input or None,
    # the accumulator factory, the result type); see esql.dialect.aggregate.
    aggregate: Callable[[Call, Scope, Meter], tuple[Fn | None, Fn | None, Callable[[], Any], str]]
    # The indices a Source names, with the language's errors for names that match nothing.
    indices: Callable[[Catalog, Source], list[Index]]
    # Steps only this language has, and how each runs (see execute.Operator).
    steps: Mapping[type[Step], Callable[..., Any]] = field(default_factory=dict)
    # Source steps only this language has (``ROW``, ``SHOW INFO``), see execute.SourceRunner.
    sources: Mapping[type[Step], Callable[..., Any]] = field(default_factory=dict)
    # A comparison, IN or LIKE over a multi-value is true when any value satisfies it, and
    # ``!=`` / ``NOT IN`` when none does, without a warning (Lucene's rule, EQL's); else the
    # multi-value is a single-value operation's (ES|QL: null and a warning).
    any_value: bool = False
    # Whether steps may run inside SQLite (``pushdown``), which knows ES|QL's rules only.
    pushdown: bool = True
    # A LIKE pattern's matcher (ES|QL's: ``*``, ``?`` and ``\\`` escaping them).
    wildcard: Callable[[str], patterns.Matcher] = patterns.like
    # ``+ - * / %`` over two values of a numeric type: (op, type) -> function (ES|QL's:
    # Java's integer rules, and a non-finite double is an error).
    arithmetic: Callable[[str, str], Callable[[Any, Any], Any]] = arithmetic
    # A language's own compilation of an expression node, asked before the shared rules:
    # the compiled node, or None to leave it to them. A dynamically typed language (SML)
    # gives the operators its run-time rules here, and compiles the nodes only it has
    # (SML's search terms), which the shared compiler does not know.
    compile_node: Callable[[Expr, Scope], Compiled | None] | None = None
    # The type of a field the source's indices map to several types (``execute.source_columns``;
    # None: ``unsupported``, ES|QL's rule). A dynamically typed language (SML) may type it
    # ``any``: each index's values are then decoded by that index's own type.
    column_type: Callable[[set[str]], str] | None = None
