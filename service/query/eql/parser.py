"""EQL text -> :mod:`ast` query. The grammar is ``grammar.lark`` (LALR, positions kept).

Everything Elasticsearch rejects while parsing is rejected here with its wording
(spec/eql.md §10); what needs the mapping (unknown fields, types, unknown functions)
is the verifier's job.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError

from ...errors import ServiceError
from ..errors import ParsingError
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
    return _error(src.line, src.col, message)


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
            i = _unicode_escape(body, i, out, src)
        elif body[i + 1] in _ESCAPES:
            out.append(_ESCAPES[body[i + 1]])
            i += 2
        else:
            raise _at(src, f"Illegal escape sequence [\\{body[i + 1]}] in [{text}]")
    return "".join(out)


def _unicode_escape(body: str, i: int, out: list[str], src: Src) -> int:
    """``\\u{XXXX}``: 2 to 8 hex digits naming a code point."""
    end = body.find("}", i)
    digits = body[i + 3:end] if body.startswith("\\u{", i) and end > 0 else ""
    if not 2 <= len(digits) <= 8 or any(c not in "0123456789abcdefABCDEF" for c in digits):
        raise _at(src, f"Unicode sequence must be in the format \\u{{XXXX}} with 2 to 8 hex digits, found "
                       f"[{body[i:end + 1] if end > 0 else body[i:]}]")
    code = int(digits, 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        raise _at(src, f"Invalid unicode character code [{digits}]")
    out.append(chr(code))
    return end + 1


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

    # --- expressions ---
    @v_args(meta=True)
    def logical(self, meta: Any, c: list[Any]) -> Expr:
        return Logical(c[1].upper(), c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def not_(self, meta: Any, c: list[Any]) -> Expr:
        return Not(c[1], src=self._src(meta))

    def lineage(self, c: list[Any]) -> Expr:
        raise _at(self._token_src(c[0]), "Process relationships are not supported")

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
    """Lark's errors in ANTLR's words: ``mismatched input 'x' expecting {...}``."""
    if isinstance(exc, UnexpectedCharacters):
        return _error(exc.line, exc.column, f"token recognition error at: '{text[exc.pos_in_stream]}'")
    # LALR merges look-aheads: ask the parser which tokens it would really take here
    expected = exc.interactive_parser.accepts() if isinstance(exc, UnexpectedToken) else set(exc.expected)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        return _error(exc.line, exc.column, f"mismatched input '{exc.token}' expecting {_expected(expected)}")
    lines = text.split("\n")
    return _error(len(lines), len(lines[-1]) + 1, f"mismatched input '<EOF>' expecting {_expected(expected)}")


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
