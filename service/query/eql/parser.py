"""EQL text -> :mod:`ast` query. The grammar is ``grammar.lark`` (LALR, positions kept).

Everything Elasticsearch rejects while parsing is rejected here with its wording
(spec/eql.md §10); what needs the mapping (unknown fields, types, unknown functions)
is the verifier's job.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ...errors import ServiceError
from ...suggest import listed, similar
from ..evaluate import verify_fail
from ..expr import Binary, Call, Column, Expr, In, IsNull, Like, Literal, Neg, Src
from ..parsing import CommonRules
from .ast import EventFilter, EventQuery, Optional, Pipe, Query, SampleQuery, SequenceQuery, Term
from .lexical import decimal_literal, error, fail, identifier, integer_literal, syntax_error, unquote

SUPPORTED_PIPES = ("head", "tail")
KNOWN_PIPES = ("count", "filter", "head", "sort", "tail", "unique", "unique_count")
MAX_RUNS = 100
MAX_SEQUENCE_QUERIES = 256
MAX_SAMPLE_QUERIES = 5
# ES refuses what overflows its parser's stack. Ours does not recurse, but the shared
# engine walks expressions recursively, with the process's recursion limit sized for
# 400 levels (see esql/parser.py): deeper queries get ES's message instead of a crash.
MAX_DEPTH = 400
_QUERY_LEVELS = 6  # start, sequence, term, subquery, filter: the levels above a condition
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}



@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="basic", propagate_positions=True, maybe_placeholders=False,
                regex=True)


def _unknown_pipe(name: str) -> str:
    names = similar(name, KNOWN_PIPES, 0.5)
    if not names:
        return f"Unrecognized pipe [{name}]"
    return f"Unrecognized pipe [{name}], did you mean {listed(names)}?"


class _Builder(CommonRules, Transformer_NonRecursive):
    """Builds the query bottom-up (without recursion); rejections carry the position of
    what they reject."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _src(self, meta: Any) -> Src:
        if getattr(meta, "empty", True):
            return Src()
        return Src(meta.line, meta.column, self.text[meta.start_pos:meta.end_pos])

    # --- queries ---
    def start(self, c: list[Any]) -> Query:
        query, pipes = c[0], c[1:]
        if isinstance(query, SampleQuery):
            if pipes:  # ES looks at no pipe of a sample, not even an unknown one
                raise fail(pipes[0].src, "Samples do not support pipes yet")
            return query
        built = tuple(_pipe(p) for p in pipes)
        if isinstance(query, _Join):  # refused when ES verifies the plan, after its pipes
            raise verify_fail(query.src, "JOIN command is not supported")
        return replace(query, pipes=built)

    def event_query(self, c: list[Any]) -> EventQuery:
        return EventQuery(c[0])

    @v_args(meta=True)
    def event_filter(self, meta: Any, c: list[Any]) -> EventFilter:
        category = None if isinstance(c[0], Token) and c[0].type == "ANY" else c[0]
        return EventFilter(category, c[2], self._src(meta))

    def category(self, c: list[Token]) -> str:
        token = c[0]
        return str(token) if token.type == "IDENTIFIER" else unquote(token, _token_src(token))

    @v_args(meta=True)
    def pipe(self, meta: Any, c: list[Any]) -> _Pipe:
        return _Pipe(c[1], tuple(a for a in c[2:] if isinstance(a, Expr)), self._src(meta))

    # --- sequences and samples: built first, then checked in the order ES checks them ---
    @v_args(meta=True)
    def sequence(self, meta: Any, c: list[Any]) -> SequenceQuery:
        src = self._src(meta)
        head = next((x for x in c if isinstance(x, _Head)), _Head(None, None, False))
        if head.by_after_with:
            raise fail(src, "Please specify sequence [by] before [with] not after")
        outer = _keys(head.by)
        maxspan_ms = _maxspan_ms(*head.span) if head.span else None
        written = [x for x in c if isinstance(x, _Term)]
        stages: list[Term] = []
        for term in written:
            keys = term.keys(outer)
            _check_key_count(written[0], term)
            runs = _runs(*term.runs) if term.runs else 1
            if len(stages) + runs > MAX_SEQUENCE_QUERIES:
                raise fail(term.src, f"Sequence cannot contain more than {MAX_SEQUENCE_QUERIES} queries; found "
                                     f"[{len(stages) + runs}]")
            stages += [Term(term.filter, keys, term.missing)] * runs
        if len(stages) < 2:
            raise fail(src, f"A sequence requires a minimum of 2 queries, found [{len(stages)}]")
        until = None
        if any(isinstance(x, Token) and x.type == "UNTIL" for x in c):
            # the until term counted above, `runs` included; ES ignores a `!` on it
            last = stages.pop()
            until = Term(last.filter, last.keys)
            if len(stages) < 2:
                raise fail(src, f"A sequence requires a minimum of 2 queries, found [{len(stages)}]")
        if maxspan_ms is None and any(t.missing for t in stages):
            raise fail(src, "[maxspan] is required for sequences with missing events queries; found none")
        if all(t.missing for t in stages):
            raise ServiceError("A sequence requires at least one positive event query; found none", status=500,
                               type="illegal_state_exception")
        return SequenceQuery(tuple(stages), until, maxspan_ms)

    def keys_first(self, c: list[Any]) -> _Head:
        return _Head(c[0], c[1] if len(c) > 1 else None, False)

    def maxspan_first(self, c: list[Any]) -> _Head:
        return _Head(None, c[0], len(c) > 1)

    def maxspan(self, c: list[Any]) -> tuple[Literal, Token | None]:
        return c[3], (c[4] if len(c) > 4 else None)

    @v_args(meta=True)
    def sequence_term(self, meta: Any, c: list[Any]) -> _Term:
        (event_filter, missing), rest = c[0], c[1:]
        by = next((x for x in rest if isinstance(x, _By)), None)
        runs = next((x for x in rest if isinstance(x, tuple)), None)
        return _Term(event_filter, by, missing, self._src(meta), runs)

    def runs(self, c: list[Any]) -> tuple[Token, Literal]:
        return c[1], c[3]

    @v_args(meta=True)
    def sample(self, meta: Any, c: list[Any]) -> SampleQuery:
        outer = _keys(next((x for x in c if isinstance(x, _By)), None))
        written = [x for x in c if isinstance(x, _Term)]
        terms, keyless = [], None
        for term in written:
            _refuse_missing(term)
            keys = term.keys(outer)
            _check_key_count(written[0], term)
            keyless = keyless or (term.src if not keys else None)
            terms.append(Term(term.filter, keys))
            if len(terms) > MAX_SAMPLE_QUERIES:
                raise fail(term.src, f"A sample cannot contain more than {MAX_SAMPLE_QUERIES} queries, found "
                                     f"[{len(terms)}]")
            names = [k.name for k in keys]
            twice = list(dict.fromkeys(n for n in names if names.count(n) > 1))
            if twice:
                raise fail(term.keys_src, f"Join keys must be used only once, found duplicates: [{','.join(twice)}]")
        if len(terms) < 2:
            raise fail(self._src(meta), f"A sample requires a minimum of 2 queries, found [{len(terms)}]")
        if keyless is not None:
            raise fail(keyless, "A sample must have at least one join key, found none")
        return SampleQuery(tuple(terms))

    @v_args(meta=True)
    def join_term(self, meta: Any, c: list[Any]) -> _Term:
        (event_filter, missing), by = c[0], (c[1] if len(c) > 1 else None)
        return _Term(event_filter, by, missing, self._src(meta))

    @v_args(meta=True)
    def join(self, meta: Any, c: list[Any]) -> _Join:
        """ES parses ``join``, its terms and keys checked as a sample's."""
        outer = _keys(next((x for x in c if isinstance(x, _By)), None))
        written = [x for x in c if isinstance(x, _Term)]
        for term in written:
            _refuse_missing(term)
            term.keys(outer)
            _check_key_count(written[0], term)
        return _Join(self._src(meta))

    def subquery(self, c: list[Any]) -> tuple[EventFilter, bool]:
        return c[1], False

    def missing_subquery(self, c: list[Any]) -> tuple[EventFilter, bool]:
        return c[1], True

    @v_args(meta=True)
    def join_keys(self, meta: Any, c: list[Any]) -> _By:
        return _By(tuple(x for x in c if isinstance(x, Expr)), self._src(meta))

    # --- expressions ---
    def lineage(self, c: list[Any]) -> Expr:
        raise error(c[0].line, c[0].column, "Process relationships are not supported")

    @v_args(meta=True)
    def comparison(self, meta: Any, c: list[Any]) -> Expr:
        left, op, right = c
        src = self._src(meta)
        if op in ("==", "!=") and _is_null(right):
            return IsNull(left, op == "!=", src=src)
        if op in ("==", "!=") and _is_null(left):
            return IsNull(right, op == "!=", src=src)
        return Binary(op, left, right, src=src)

    def comparison_op(self, c: list[Token]) -> str:
        return str(c[0])

    @v_args(meta=True)
    def arithmetic(self, meta: Any, c: list[Any]) -> Expr:
        return Binary(str(c[1]), c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def negate(self, meta: Any, c: list[Any]) -> Expr:
        return Neg(c[1], src=self._src(meta))

    def positive(self, c: list[Any]) -> Expr:
        return c[1]

    @v_args(meta=True)
    def in_(self, meta: Any, c: list[Any]) -> Expr:
        tokens = [t for t in c if isinstance(t, Token)]
        negated = any(t.type == "NOT" for t in tokens)
        insensitive = any(t.type == "IN_INSENSITIVE" for t in tokens)
        items = tuple(x for x in c[1:] if isinstance(x, Expr))
        return In(c[0], items, negated, insensitive=insensitive, src=self._src(meta))

    @v_args(meta=True)
    def match(self, meta: Any, c: list[Any]) -> Expr:
        op = c[1]
        patterns = tuple(x for x in c[2:] if isinstance(x, Expr))
        insensitive = op == ":" or op.endswith("~")
        return Like(c[0], patterns, regex=op.startswith("regex"), insensitive=insensitive, src=self._src(meta))

    def match_op(self, c: list[Token]) -> str:
        return str(c[0])

    def parenthesized(self, c: list[Any]) -> Expr:
        return c[1]

    @v_args(meta=True)
    def function_call(self, meta: Any, c: list[Any]) -> Expr:
        args = tuple(a for a in c[1:] if isinstance(a, Expr))
        return Call(c[0].upper(), args, src=self._src(meta))

    @v_args(meta=True)
    def qualified_name(self, meta: Any, c: list[Any]) -> Expr:
        index = next((t for t in c if isinstance(t, Token) and t.type == "ARRAY_INDEX"), None)
        if index is not None:
            digits = len(index) - len(index[1:].lstrip())
            raise error(index.line, index.column + digits, "Array indexes are not supported")
        optional = isinstance(c[0], Token) and c[0].type == "OPTIONAL"
        name = ".".join(x for x in c if isinstance(x, str) and not isinstance(x, Token))
        src = self._src(meta)
        return Optional(name, src=src) if optional else Column(name, src=src)

    def identifier(self, c: list[Token]) -> str:
        return identifier(c[0])

    @v_args(meta=True)
    def string(self, meta: Any, c: list[Token]) -> Expr:
        src = self._src(meta)
        return Literal(unquote(c[0], src), "keyword", src=src)

    @v_args(meta=True)
    def integer(self, meta: Any, c: list[Token]) -> Expr:
        return integer_literal(c[0], self._src(meta))

    @v_args(meta=True)
    def decimal(self, meta: Any, c: list[Token]) -> Expr:
        return decimal_literal(c[0], self._src(meta))


def _pipe(raw: _Pipe) -> Pipe:
    """``| head n`` or ``| tail n``; the other Endgame pipes are known and refused."""
    name, src = str(raw.name), raw.src
    if name not in KNOWN_PIPES:
        raise fail(_token_src(raw.name), _unknown_pipe(name))
    if name not in SUPPORTED_PIPES:
        raise fail(src, f"Pipe [{name}] is not supported")
    if len(raw.args) != 1:
        raise fail(src, f"Pipe [{name}] expects exactly one argument but found [{len(raw.args)}]")
    count = _fold_integer(raw.args[0])
    if count is None or not 0 <= count <= 2**31 - 1:
        raise fail(raw.args[0].src, f"Pipe [{name}] expects a positive integer but found [{raw.args[0].src.text}]")
    return Pipe(name, count, src)


def _fold_integer(expr: Expr) -> int | None:
    """The value of integer arithmetic over literals (ES folds ``head 2 * 3``), with
    Java's truncating division; None for anything else."""
    if isinstance(expr, Literal):
        return expr.value if expr.type in ("integer", "long") else None
    if isinstance(expr, Neg):
        value = _fold_integer(expr.value)
        return -value if value is not None else None
    if not isinstance(expr, Binary) or expr.op not in ("+", "-", "*", "/", "%"):
        return None
    left, right = _fold_integer(expr.left), _fold_integer(expr.right)
    if left is None or right is None or (expr.op in ("/", "%") and right == 0):
        return None
    if expr.op in ("/", "%"):
        quotient = abs(left) // abs(right) * (1 if (left < 0) == (right < 0) else -1)
        return quotient if expr.op == "/" else left - quotient * right
    return left + right if expr.op == "+" else left - right if expr.op == "-" else left * right


@dataclass(frozen=True)
class _Pipe:
    """A pipe as written; only event queries and sequences look at it further."""

    name: Token
    args: tuple[Expr, ...]
    src: Src


@dataclass(frozen=True)
class _Join:
    """A ``join`` query, which only its refusal needs."""

    src: Src


@dataclass(frozen=True)
class _By:
    """A ``by`` clause and where it starts."""

    keys: tuple[Expr, ...]
    src: Src


@dataclass(frozen=True)
class _Head:
    """What comes between ``sequence`` and its first term."""

    by: _By | None
    span: tuple[Literal, Token | None] | None  # `with maxspan=<amount><unit>`
    by_after_with: bool  # `with maxspan=.. by k`: refused


@dataclass(frozen=True)
class _Term:
    """A term as written: its own keys only, ``runs`` not expanded."""

    filter: EventFilter
    by: _By | None
    missing: bool
    src: Src
    runs: tuple[Token, Literal] | None = None  # `with <option>=<amount>`

    def keys(self, outer: tuple[Expr, ...]) -> tuple[Expr, ...]:
        return outer + _keys(self.by)

    @property
    def keys_src(self) -> Src:
        return self.by.src if self.by else self.src


def _keys(by: _By | None) -> tuple[Expr, ...]:
    """Keys are fields, optional or not; ES says no more than this about anything else."""
    if by is None:
        return ()
    if not all(isinstance(k, (Column, Optional)) for k in by.keys):
        raise fail(by.src, "Unsupported join key ")
    return by.keys


def _check_key_count(first: _Term, term: _Term) -> None:
    """Every term (``until`` too) names as many keys of its own as the first."""
    expected, found = len(_keys(first.by)), len(_keys(term.by))
    if found != expected:
        raise fail(term.keys_src, f"Inconsistent number of join keys specified; expected [{expected}] but found "
                                  f"[{found}]")


def _maxspan_ms(amount: Literal, unit: Token | None) -> int:
    """``with maxspan=<positive integer><unit>``, in milliseconds."""
    written = amount.src.text + (str(unit) if unit is not None else "")
    if not _integer_syntax(amount):
        raise fail(amount.src, f"Decimal time interval [{amount.src.text}] not supported; please use an positive "
                               f"integer")
    value = _long_value(amount)
    if value <= 0:
        raise fail(amount.src, f"A positive maxspan value is required; found [{value}]")
    if unit is None:
        raise fail(amount.src, f"No time unit specified, did you mean [s] as in [{written}s]?")
    if unit not in _UNIT_MS:
        raise fail(_token_src(unit), f"Unrecognized time unit [{unit}] in [{written}], please specify one of "
                                     f"[ms, s, m, h, d]")
    return value * _UNIT_MS[unit]


def _runs(option: Token, amount: Literal) -> int:
    """``with runs=N``: 1 to 100; ES reads a decimal N as no ``runs`` at all."""
    if option != "runs":
        raise fail(_token_src(option), f"Unrecognized option [{option}], expecting [runs]")
    if not _integer_syntax(amount):
        return 1
    value = _long_value(amount)
    if value < 1:
        raise fail(amount.src, f"A positive runs value is required; found [{value}]")
    if value > MAX_RUNS:
        raise fail(amount.src, f"A query cannot be repeated more than {MAX_RUNS} times; found [{value}]")
    return value


def _refuse_missing(term: _Term) -> None:
    if term.missing:  # ES gives this one no position: line -1, column 0
        raise error(-1, 0, "Missing events are supported only for sequences")


def _integer_syntax(number: Literal) -> bool:
    return number.src.text.isdigit()


def _long_value(number: Literal) -> int:
    """Java's ``Number.longValue()``: an integer too large for a long saturates."""
    return min(int(number.value), 2**63 - 1)


def _token_src(token: Token) -> Src:
    return Src(token.line, token.column, str(token))


def _is_null(expr: Expr) -> bool:
    return isinstance(expr, Literal) and expr.type == "null"


def _check_depth(tree: Tree, text: str) -> None:
    """Refuse a tree deeper than the engine can walk, measured without recursion."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH + _QUERY_LEVELS:
            raise error(-1, 0, f"EQL statement is too large, causing stack overflow when generating the parsing "
                               f"tree: [{text}]")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def parse(text: str) -> Query:
    """Parse an EQL query; syntax errors are ES's ``parsing_exception`` with ``line L:C:``."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise syntax_error(_parser(), text, exc) from None
    _check_depth(tree, text)
    try:
        return _Builder(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ServiceError):
            raise exc.orig_exc from None
        raise
