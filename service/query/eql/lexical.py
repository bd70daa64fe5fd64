"""EQL's lexical layer: string and number literals as Elasticsearch reads them, and its
parsing errors in ANTLR's words, where ES places them."""

from __future__ import annotations

import math

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import ParsingError
from ..expr import Literal, Src

# Elasticsearch's token order, which its "expecting {...}" lists follow.
_TOKEN_ORDER = (
    "AND ANY BY FALSE IN IN_INSENSITIVE JOIN LIKE LIKE_INSENSITIVE MAXSPAN NOT NULL OF OR REGEX "
    "REGEX_INSENSITIVE SAMPLE SEQUENCE TRUE UNTIL WHERE WITH SEQ ASGN EQ NEQ LT LTE GT GTE PLUS MINUS "
    "ASTERISK SLASH PERCENT DOT COMMA LB RB LP RP PIPE OPTIONAL MISSING_EVENT_OPEN STRING INTEGER_VALUE "
    "DECIMAL_VALUE IDENTIFIER QUOTED_IDENTIFIER TILDE_IDENTIFIER"
).split()
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}


def error(line: int, col: int, message: str) -> ParsingError:
    """An error at an exact position: what ES's lexer and grammar report."""
    return ParsingError(f"line {line}:{col}: {message}")


def fail(src: Src, message: str) -> ParsingError:
    """An error about a piece of the query, which ES reports one column to the right of
    the piece: its source locations are already 1-based and its message adds 1 again."""
    return error(src.line, src.col + 1, message)


def integer_literal(text: str, src: Src) -> Literal:
    """ES reads an integer literal as a long, a double when no long holds it; an int
    when it fits one."""
    value = int(text)
    if value <= 2**31 - 1:
        return Literal(value, "integer", src=src)
    if value <= 2**63 - 1:
        return Literal(value, "long", src=src)
    return decimal_literal(text, src)


def decimal_literal(text: str, src: Src) -> Literal:
    value = float(text)
    if math.isinf(value):
        raise fail(src, f"Number [{text}] is too large")
    return Literal(value, "double", src=src)


def unquote(text: str, src: Src) -> str:
    """The value of a string token: ``\"\"\"raw\"\"\"`` as is, ``"..."`` with its escapes
    (``\\n \\r \\t \\b \\f \\" \\\\`` and ``\\u{XXXX}``); single quotes and ``?"..."``
    are refused with Elasticsearch's hint."""
    if text.startswith('"""'):
        return text[3:-3]
    if text.startswith("?"):
        raise fail(src, f'Use triple double quotes ["""] to define unescaped string literals, not [?{text[1]}]')
    if text.startswith("'"):
        raise fail(src, "Use double quotes [\"] to define string literals, not single quotes [']")
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
        raise fail(src, f"Unicode sequence should use [2-8] hex digits, [{written}] has [{len(digits)}]")
    code = int(digits, 16)
    if 0xD800 <= code <= 0xDFFF:
        raise fail(src, f"Invalid unicode character code, [{digits}] is a surrogate code")
    if code > 0x10FFFF:
        raise fail(src, f"Invalid unicode character code [{digits}]")
    return chr(code)


def identifier(token: str) -> str:
    return token[1:-1].replace("``", "`") if token.startswith("`") else str(token)


_HEX = frozenset("0123456789abcdefABCDEF")


def unlexable(text: str, pos: int) -> str:
    """What ANTLR shows of a token it cannot lex: from its start through the character
    that breaks it (an unclosed quote runs to the end of its line), control characters
    escaped."""
    end = pos + 1
    if text[pos] == "`":
        end = len(text)
    elif text[pos] == '"':
        end = _string_break(text, pos + 1) + 1
    return text[pos:end].replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")


def _string_break(text: str, i: int) -> int:
    """Where a ``"...`` string that the lexer refused goes wrong."""
    while i < len(text) and text[i] not in "\r\n":
        if text[i] == "\\" and text.startswith("u", i + 1):
            j = i + 3
            if not text.startswith("{", i + 2):
                return i + 2
            while j < len(text) and text[j] in _HEX:
                j += 1
            if j == i + 3 or not text.startswith("}", j):
                return j
            i = j
        elif text[i] == "\\":
            if text[i + 1:i + 2] not in tuple('btnfr"\'\\'):
                return i + 1
            i += 1
        i += 1
    return i


def _display(parser: Lark, name: str) -> str:
    """A terminal as ANTLR names it: a fixed token by its text, the others by name."""
    pattern = parser.get_terminal(name).pattern
    return f"'{pattern.value}'" if pattern.type == "str" else name


def _expected(parser: Lark, names: set[str]) -> str:
    shown = (["<EOF>"] if "$END" in names else []) + [_display(parser, n) for n in _TOKEN_ORDER if n in names]
    return shown[0] if len(shown) == 1 else "{" + ", ".join(shown) + "}"


def syntax_error(parser: Lark, text: str, exc: UnexpectedInput) -> ParsingError:
    """Lark's errors in ANTLR's words: ``token recognition error at: '...'``, ``no viable
    alternative at input '...'`` (the first token), ``mismatched input 'x' expecting {...}``."""
    if isinstance(exc, UnexpectedCharacters):
        return error(exc.line, exc.column, f"token recognition error at: '{unlexable(text, exc.pos_in_stream)}'")
    # LALR merges look-aheads: ask the parser which tokens it would really take here
    expected = exc.interactive_parser.accepts() if isinstance(exc, UnexpectedToken) else set(exc.expected)
    if isinstance(exc, UnexpectedToken) and exc.token.type != "$END":
        if exc.token.start_pos == _first_token(parser, text):
            return error(exc.line, exc.column, f"no viable alternative at input '{exc.token}'")
        return error(exc.line, exc.column, f"mismatched input '{exc.token}' expecting {_expected(parser, expected)}")
    lines = text.split("\n")
    return error(len(lines), len(lines[-1]) + 1, f"mismatched input '<EOF>' expecting {_expected(parser, expected)}")


def _first_token(parser: Lark, text: str) -> int:
    lexer = parser.lex(text)
    return next(lexer).start_pos
