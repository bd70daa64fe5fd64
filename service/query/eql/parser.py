"""EQL text -> :mod:`ast` query. The grammar is ``grammar.lark`` (LALR, positions kept).

Everything Elasticsearch rejects while parsing is rejected here with its wording
(spec/eql.md §10); what needs the mapping (unknown fields, types, unknown functions)
is the verifier's job.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ...errors import ServiceError
from ..errors import ParsingError
from ..evaluate import verify_fail
from ..expr import Binary, Call, Column, Expr, In, IsNull, Like, Literal, Logical, Neg, Not, Src
from .ast import EventFilter, EventQuery, Optional, Pipe, Query, SampleQuery, SequenceQuery, Term

SUPPORTED_PIPES = ("head", "tail")
KNOWN_PIPES = ("count", "filter", "head", "sort", "tail", "unique", "unique_count")
MAX_RUNS = 100
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
# Elasticsearch's token order, which its "expecting {...}" lists follow.
_TOKEN_ORDER = (
    "AND ANY BY FALSE IN IN_INSENSITIVE JOIN LIKE LIKE_INSENSITIVE MAXSPAN NOT NULL OF OR REGEX "
    "REGEX_INSENSITIVE SAMPLE SEQUENCE TRUE UNTIL WHERE WITH SEQ ASGN EQ NEQ LT LTE GT GTE PLUS MINUS "
    "ASTERISK SLASH PERCENT DOT COMMA LB RB LP RP PIPE OPTIONAL MISSING_EVENT_OPEN STRING INTEGER_VALUE "
    "DECIMAL_VALUE IDENTIFIER QUOTED_IDENTIFIER TILDE_IDENTIFIER"
).split()


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _error(line: int, col: int, message: str) -> ParsingError:
    return ParsingError(f"line {line}:{col}: {message}")


def _at(src: Src, message: str) -> ParsingError:
    """An error about a piece of the query. ES reports these one column to the right of
    the piece (its source locations are 1-based and its message adds 1 again); errors
    from the lexer and the grammar itself (``_error``) have the exact column."""
    return _error(src.line, src.col + 1, message)


def integer_literal(text: str, src: Src) -> Literal:
    """ES reads an integer literal as a long, a double when no long holds it; an int
    when it fits one."""
    value = int(text)
    if value <= 2**31 - 1:
        return Literal(value, "integer", src=src)
    if value <= 2**63 - 1:
        return Literal(value, "long", src=src)
    return Literal(float(text), "double", src=src)


def unquote(text: str, src: Src) -> str:
    """The value of a string token: ``\"\"\"raw\"\"\"`` as is, ``"..."`` with its escapes
    (``\\n \\r \\t \\b \\f \\" \\\\`` and ``\\u{XXXX}``); single quotes and ``?"..."``
    are refused with Elasticsearch's hint."""
    if text.startswith('"""'):
        return text[3:-3]
    if text.startswith("?"):
        raise _at(src, f'Use triple double quotes ["""] to define unescaped string literals, not [?{text[1]}]')
    if text.startswith("'"):
        raise _at(src, "Use double quotes [\"] to define string literals, not single quotes [']")
    body, out, i = text[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
        elif body[i + 1] == "u":
            end = body.index("}", i)
            out.append(_code_point(body[i + 3:end], body[i:end + 1], src))
            i = end + 1
        else:  # the lexer lets only known escapes through
            out.append(_ESCAPES[body[i + 1]])
            i += 2
    return "".join(out)


def _code_point(digits: str, written: str, src: Src) -> str:
    """``\\u{XXXX}``: 2 to 8 hex digits naming a code point that is not a surrogate."""
    if not 2 <= len(digits) <= 8:
        raise _at(src, f"Unicode sequence should use [2-8] hex digits, [{written}] has [{len(digits)}]")
    code = int(digits, 16)
    if 0xD800 <= code <= 0xDFFF:
        raise _at(src, f"Invalid unicode character code, [{digits}] is a surrogate code")
    if code > 0x10FFFF:
        raise _at(src, f"Invalid unicode character code [{digits}]")
    return chr(code)


def _ident(token: str) -> str:
    return token[1:-1].replace("``", "`") if token.startswith("`") else str(token)


def _similarity(a: str, b: str) -> float:
    """Lucene's Levenshtein similarity, which ES's "did you mean" suggestions use."""
    previous = list(range(len(a) + 1))
    for j, cb in enumerate(b, 1):
        current = [j]
        for i, ca in enumerate(a, 1):
            current.append(min(current[i - 1] + 1, previous[i] + 1, previous[i - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[len(a)] / max(len(a), len(b), 1)


def _unknown_pipe(name: str) -> str:
    scored = sorted(((s, known) for known in KNOWN_PIPES if (s := _similarity(name, known)) >= 0.5),
                    key=lambda pair: -pair[0])
    names = [known for _, known in scored]
    if not names:
        return f"Unrecognized pipe [{name}]"
    listed = f"[{names[0]}]" if len(names) == 1 else "any of [" + ", ".join(names) + "]"
    return f"Unrecognized pipe [{name}], did you mean {listed}?"


class _Builder(Transformer):
    """Builds the query bottom-up; rejections carry the position of what they reject."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def _src(self, meta: Any) -> Src:
        if getattr(meta, "empty", True):
            return Src()
        return Src(meta.line, meta.column, self.text[meta.start_pos:meta.end_pos])

    def _token_src(self, token: Token) -> Src:
        return Src(token.line, token.column, str(token))

    # --- queries ---
    def start(self, c: list[Any]) -> Query:
        query, pipes = c[0], tuple(c[1:])
        if isinstance(query, EventQuery):
            return EventQuery(query.filter, pipes)
        if isinstance(query, SequenceQuery):
            return SequenceQuery(query.terms, query.until, query.maxspan_ms, pipes)
        if pipes:
            raise _at(pipes[0].src, "Samples do not support pipes")
        return query

    def event_query(self, c: list[Any]) -> EventQuery:
        return EventQuery(c[0])

    @v_args(meta=True)
    def event_filter(self, meta: Any, c: list[Any]) -> EventFilter:
        category = None if isinstance(c[0], Token) and c[0].type == "ANY" else c[0]
        return EventFilter(category, c[2], self._src(meta))

    def category(self, c: list[Token]) -> str:
        token = c[0]
        return str(token) if token.type == "IDENTIFIER" else unquote(token, self._token_src(token))

    @v_args(meta=True)
    def pipe(self, meta: Any, c: list[Any]) -> Pipe:
        name, args, src = c[1], [a for a in c[2:] if isinstance(a, Expr)], self._src(meta)
        if name not in KNOWN_PIPES:
            raise _at(self._token_src(name), _unknown_pipe(name))
        if name not in SUPPORTED_PIPES:
            raise _at(src, f"Pipe [{name}] is not supported")
        if len(args) != 1:
            raise _at(src, f"Pipe [{name}] expects exactly one argument but found [{len(args)}]")
        count = args[0]
        if not (isinstance(count, Literal) and count.type in ("integer", "long") and 0 <= count.value <= 2**31 - 1):
            raise _at(count.src, f"Pipe [{name}] expects a positive integer but found [{count.src.text}]")
        return Pipe(str(name), count.value, src)

    # --- sequences and samples ---
    @v_args(meta=True)
    def sequence(self, meta: Any, c: list[Any]) -> SequenceQuery:
        src, keys, maxspan = self._src(meta), (), None
        if isinstance(c[1], _Head):
            if c[1].keys_after:
                raise _at(src, "Please specify sequence [by] before [with] not after")
            keys, maxspan = c[1].keys, c[1].maxspan_ms
        parts = [x for x in c if isinstance(x, _Term)]
        has_until = any(isinstance(x, Token) and x.type == "UNTIL" for x in c)
        stages, until = (parts[:-1], parts[-1]) if has_until else (parts, None)
        terms = tuple(t for stage in stages for t in stage.expand(keys))
        _check_keys(stages + ([until] if until else []))
        if len(terms) < 2:
            raise _at(src, f"A sequence requires a minimum of 2 queries, found [{len(terms)}]")
        if all(t.missing for t in terms):
            raise _at(src, "A sequence requires at least one positive event query; found none")
        if maxspan is None and any(t.missing for t in terms):
            raise _at(src, "[maxspan] is required for sequences with missing events")
        if until is not None and until.missing:
            raise _at(until.src, "[until] cannot be a missing event query")
        if until is not None and until.runs is not None:
            raise _at(until.src, "[until] does not support [runs]")
        return SequenceQuery(terms, until.expand(keys)[0] if until else None, maxspan)

    def keys_first(self, c: list[Any]) -> _Head:
        return _Head(c[0], c[1] if len(c) > 1 else None, False)

    def maxspan_first(self, c: list[Any]) -> _Head:
        return _Head(c[1] if len(c) > 1 else (), c[0], len(c) > 1)

    @v_args(meta=True)
    def maxspan(self, meta: Any, c: list[Any]) -> int:
        """``with maxspan=<positive integer><unit>``, in milliseconds."""
        amount, unit = c[3], (c[4] if len(c) > 4 else None)
        written = amount.src.text + (str(unit) if unit is not None else "")
        if amount.type == "double":
            raise _at(amount.src, f"Decimal time interval [{amount.src.text}] not supported; please use an positive "
                                  f"integer")
        if amount.value <= 0:
            raise _at(amount.src, f"A positive maxspan value is required; found [{amount.value}]")
        if unit is None:
            raise _at(amount.src, f"No time unit specified, did you mean [s] as in [{written}s]?")
        if unit not in _UNIT_MS:
            raise _at(self._token_src(unit), f"Unrecognized time unit [{unit}] in [{written}], please specify one of "
                                             f"[ms, s, m, h, d]")
        return amount.value * _UNIT_MS[unit]

    @v_args(meta=True)
    def sequence_term(self, meta: Any, c: list[Any]) -> _Term:
        subquery, rest = c[0], c[1:]
        keys = next((x for x in rest if isinstance(x, tuple)), ())
        runs = next((x for x in rest if isinstance(x, int)), None)
        return _Term(subquery[0], keys, subquery[1], runs, self._src(meta), _keys_src(rest, self._src(meta)))

    @v_args(meta=True)
    def runs(self, meta: Any, c: list[Any]) -> int:
        option, amount = c[1], c[3]
        if option != "runs":
            raise _at(self._token_src(option), f"Unrecognized option [{option}], expecting [runs]")
        if amount.type == "double":
            raise _at(amount.src, f"Decimal runs value [{amount.src.text}] not supported; please use an positive "
                                  f"integer")
        if not 1 <= amount.value <= MAX_RUNS:
            raise _at(amount.src, f"A query cannot be repeated less than 1 or more than {MAX_RUNS} times; "
                                  f"found [{amount.value}]")
        return amount.value

    @v_args(meta=True)
    def sample(self, meta: Any, c: list[Any]) -> SampleQuery:
        src = self._src(meta)
        keys = next((x for x in c if isinstance(x, tuple)), ())
        stages = [x for x in c if isinstance(x, _Term)]
        _check_keys(stages)
        missing = next((t for t in stages if t.missing), None)
        if missing is not None:
            raise _at(missing.src, "Samples do not support missing events")
        if len(stages) < 2:
            raise _at(src, f"A sample requires a minimum of 2 queries, found [{len(stages)}]")
        terms = tuple(t for stage in stages for t in stage.expand(keys))
        if not terms[0].keys:
            raise _at(src, "A sample must have at least one join key, found none")
        return SampleQuery(terms)

    @v_args(meta=True)
    def join_term(self, meta: Any, c: list[Any]) -> _Term:
        keys = c[1] if len(c) > 1 else ()
        return _Term(c[0][0], keys, c[0][1], None, self._src(meta), _keys_src(c[1:], self._src(meta)))

    def join(self, c: list[Any]) -> Query:
        """ES parses ``join`` and refuses it when verifying the plan (since 8.16)."""
        raise verify_fail(self._token_src(c[0]), "JOIN command is not supported")

    def subquery(self, c: list[Any]) -> tuple[EventFilter, bool]:
        return c[1], False

    def missing_subquery(self, c: list[Any]) -> tuple[EventFilter, bool]:
        return c[1], True

    def join_keys(self, c: list[Any]) -> tuple[Expr, ...]:
        keys = tuple(x for x in c if isinstance(x, Expr))
        for key in keys:
            if not isinstance(key, (Column, Optional)):
                raise _at(key.src, f"Join keys must be fields, found [{key.src.text}]")
        return _Keys(keys, c[0])

    # --- expressions ---
    @v_args(meta=True)
    def logical(self, meta: Any, c: list[Any]) -> Expr:
        return Logical(c[1].upper(), c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def not_(self, meta: Any, c: list[Any]) -> Expr:
        return Not(c[1], src=self._src(meta))

    def lineage(self, c: list[Any]) -> Expr:
        raise _error(c[0].line, c[0].column, "Process relationships are not supported")

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
            raise _error(index.line, index.column + digits, "Array indexes are not supported")
        optional = isinstance(c[0], Token) and c[0].type == "OPTIONAL"
        name = ".".join(x for x in c if isinstance(x, str) and not isinstance(x, Token))
        src = self._src(meta)
        return Optional(name, src=src) if optional else Column(name, src=src)

    def identifier(self, c: list[Token]) -> str:
        return _ident(c[0])

    @v_args(meta=True)
    def null(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(None, "null", src=self._src(meta))

    @v_args(meta=True)
    def true(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(True, "boolean", src=self._src(meta))

    @v_args(meta=True)
    def false(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(False, "boolean", src=self._src(meta))

    @v_args(meta=True)
    def string(self, meta: Any, c: list[Token]) -> Expr:
        src = self._src(meta)
        return Literal(unquote(c[0], src), "keyword", src=src)

    @v_args(meta=True)
    def integer(self, meta: Any, c: list[Token]) -> Expr:
        return integer_literal(c[0], self._src(meta))

    @v_args(meta=True)
    def decimal(self, meta: Any, c: list[Token]) -> Expr:
        return Literal(float(c[0]), "double", src=self._src(meta))


class _Keys(tuple):
    """The keys of a ``by`` clause, remembering where the clause starts."""

    def __new__(cls, keys: tuple[Expr, ...], by: Token) -> _Keys:
        made = super().__new__(cls, keys)
        made.by = by
        return made


@dataclass(frozen=True)
class _Head:
    """What comes between ``sequence`` and its first term."""

    keys: tuple[Expr, ...]
    maxspan_ms: int | None
    keys_after: bool  # `with maxspan=.. by k`: refused


@dataclass(frozen=True)
class _Term:
    """A term as written, before ``runs`` expansion and before the query-level keys."""

    filter: EventFilter
    keys: tuple[Expr, ...]
    missing: bool
    runs: int | None
    src: Src
    keys_src: Src

    def expand(self, query_keys: tuple[Expr, ...]) -> list[Term]:
        term = Term(self.filter, tuple(query_keys) + tuple(self.keys), self.missing)
        return [term] * (self.runs or 1)


def _keys_src(rest: list[Any], term: Src) -> Src:
    by = next((x.by for x in rest if isinstance(x, _Keys)), None)
    return Src(by.line, by.column, str(by)) if by is not None else term


def _check_keys(terms: list[_Term]) -> None:
    """Every term (and ``until``) must name as many keys as the first."""
    for term in terms[1:]:
        if len(term.keys) != len(terms[0].keys):
            raise _at(term.keys_src, f"Inconsistent number of join keys specified; expected [{len(terms[0].keys)}] "
                                     f"but found [{len(term.keys)}]")


def _is_null(expr: Expr) -> bool:
    return isinstance(expr, Literal) and expr.type == "null"


def _display(name: str) -> str:
    """A terminal as ANTLR names it: a fixed token by its text, the others by name."""
    pattern = _parser().get_terminal(name).pattern
    return f"'{pattern.value}'" if pattern.type == "str" else name


def _expected(names: set[str]) -> str:
    shown = (["<EOF>"] if "$END" in names else []) + [_display(n) for n in _TOKEN_ORDER if n in names]
    return shown[0] if len(shown) == 1 else "{" + ", ".join(shown) + "}"


def _syntax_error(text: str, exc: UnexpectedInput) -> ParsingError:
    """Lark's errors in ANTLR's words: ``token recognition error at: '...'``, ``no viable
    alternative at input '...'`` (the first token), ``mismatched input 'x' expecting {...}``."""
    if isinstance(exc, UnexpectedCharacters):
        return _error(exc.line, exc.column, f"token recognition error at: '{_unlexable(text, exc.pos_in_stream)}'")
    # LALR merges look-aheads: ask the parser which tokens it would really take here
    expected = exc.interactive_parser.accepts() if isinstance(exc, UnexpectedToken) else set(exc.expected)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        if exc.token.start_pos == _first_token(text):
            return _error(exc.line, exc.column, f"no viable alternative at input '{exc.token}'")
        return _error(exc.line, exc.column, f"mismatched input '{exc.token}' expecting {_expected(expected)}")
    lines = text.split("\n")
    return _error(len(lines), len(lines[-1]) + 1, f"mismatched input '<EOF>' expecting {_expected(expected)}")


def _first_token(text: str) -> int:
    lexer = _parser().lex(text)
    return next(lexer).start_pos


_HEX = frozenset("0123456789abcdefABCDEF")


def _unlexable(text: str, pos: int) -> str:
    """What ANTLR shows of a token it cannot lex: from its start through the character
    that breaks it (an unclosed quote runs to the end of the line or text)."""
    if text[pos] == "`":
        return text[pos:]
    if text[pos] != '"':
        return text[pos]
    i = pos + 3 if text.startswith('"""', pos) else pos + 1
    while i < len(text) and text[i] not in "\r\n":
        if text[i] == "\\" and text.startswith("u", i + 1):
            i = _broken_unicode(text, i + 2)
            if i is not None:
                return text[pos:i + 1]
        elif text[i] == "\\" and text[i + 1:i + 2] not in tuple('btnfr"\'\\'):
            return text[pos:i + 2]
        i += 1
    return text[pos:i + 1]


def _broken_unicode(text: str, i: int) -> int | None:
    """The index of the character that breaks ``{hex+}`` at ``i``, or None."""
    if not text.startswith("{", i):
        return i
    j = i + 1
    while j < len(text) and text[j] in _HEX:
        j += 1
    return None if j > i + 1 and text.startswith("}", j) else j


def parse(text: str) -> Query:
    """Parse an EQL query; syntax errors are ES's ``parsing_exception`` with ``line L:C:``."""
    try:
        tree = _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None
    try:
        return _Builder(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ServiceError):
            raise exc.orig_exc from None
        raise
