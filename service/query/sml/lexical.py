"""SML's lexical layer (spec/sml.md §2): the pipeline's split into commands, string and
number literals, default aggregate names, and errors at 1-based ``line L:C:`` positions
in words a user reads (what was expected after which token)."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from ..errors import ParsingError
from ..expr import Literal, Src

FIELD_NAME = re.compile(r"[A-Za-z_@][A-Za-z0-9_.@]*")
INDEX_PATTERN = re.compile(r"[A-Za-z0-9_.*-]+")
NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
COMMAND_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def error(line: int, col: int, message: str) -> ParsingError:
    return ParsingError(f"line {line}:{col}: {message}")


def fail(src: Src, message: str) -> ParsingError:
    """An error about a piece of the query, reported where the piece starts."""
    return error(src.line, src.col, message)


class Positions:
    """Offsets of a text as 1-based lines and columns, as the lexer counts them
    (only ``\\n`` ends a line)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def at(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset)
        return line, offset - self.starts[line - 1] + 1

    def error(self, offset: int, message: str) -> ParsingError:
        return error(*self.at(offset), message)


@dataclass(frozen=True, slots=True)
class Shift:
    """Moves positions in a piece of the query, counted from the piece's start, to where
    they are in the query: the piece starts at ``offset``, on ``line`` at ``col``."""

    offset: int
    line: int
    col: int

    def at(self, line: int, col: int) -> tuple[int, int]:
        return line + self.line - 1, col + self.col - 1 if line == 1 else col

    def tree(self, tree: Tree) -> None:
        """Every token and node of ``tree``, in place."""
        for node in tree.iter_subtrees():
            meta = node.meta
            if not meta.empty:
                meta.line, meta.column = self.at(meta.line, meta.column)
                meta.end_line, meta.end_column = self.at(meta.end_line, meta.end_column)
                meta.start_pos, meta.end_pos = meta.start_pos + self.offset, meta.end_pos + self.offset
            for token in node.children:
                if isinstance(token, Token):
                    token.line, token.column = self.at(token.line, token.column)
                    token.end_line, token.end_column = self.at(token.end_line, token.end_column)
                    token.start_pos, token.end_pos = token.start_pos + self.offset, token.end_pos + self.offset


@dataclass(frozen=True, slots=True)
class Segment:
    """One command's text between pipes: ``text[start:end]``; ``pipe`` is the offset of
    the ``|`` before it (None for the first)."""

    start: int
    end: int
    pipe: int | None


def split_pipeline(text: str, positions: Positions, begin: int = 0, end: int | None = None) -> list[Segment]:
    """Split ``text[begin:end]`` (all of it by default; a subsearch is a part) at every ``|``
    outside double quotes and outside ``[ ]`` (subsearches).
    Inside quotes ``\\"`` and ``\\\\`` are escapes, so a quote or backslash escaped
    there neither ends the string nor escapes what follows."""
    segments, start, pipe, depth, opened = [], begin, None, 0, []
    i, n = begin, len(text) if end is None else end
    while i < n:
        c = text[i]
        if c == '"':
            i = string_end(text, i, positions)
            continue
        if c == "[":
            opened.append(i)
            depth += 1
        elif c == "]" and depth:
            opened.pop()
            depth -= 1
        elif c == "|" and not depth:
            segments.append(Segment(start, i, pipe))
            start, pipe = i + 1, i
        i += 1
    if opened:
        raise positions.error(opened[-1], "subsearch [[] is not closed by []]")
    segments.append(Segment(start, n, pipe))
    return segments


def string_end(text: str, i: int, positions: Positions) -> int:
    """The offset after the string opening at ``i``."""
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
        elif text[j] == '"':
            return j + 1
        else:
            j += 1
    raise positions.error(i, "string is not closed by [\"]")


def unquote(token: str) -> str:
    """The value of ``"..."`` (``\\"`` and ``\\\\`` are escapes, any other backslash is
    literal) or of a ``'quoted field'``."""
    if token.startswith("'"):
        return token[1:-1]
    return re.sub(r'\\(["\\])', r"\1", token[1:-1])


def search_number(text: str) -> int | float | None:
    """A bare search value that reads as a number (§2), else None."""
    if not NUMBER.fullmatch(text):
        return None
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else float(text)


def number_literal(text: str, src: Src) -> Literal:
    """A numeric literal typed as the shared engine types them: integer when an int
    holds it, long when a long does, else double."""
    if not re.fullmatch(r"-?[0-9]+", text):
        value = float(text)
        if value in (float("inf"), float("-inf")):
            raise fail(src, f"number [{text}] is too large")
        return Literal(value, "double", src=src)
    value = int(text)
    if -(2**31) <= value <= 2**31 - 1:
        return Literal(value, "integer", src=src)
    if -(2**63) <= value <= 2**63 - 1:
        return Literal(value, "long", src=src)
    return Literal(float(value), "double", src=src)


def default_agg_name(call: str) -> str:
    """§7.5: the call as written without whitespace, except one space after each comma
    (``perc(f, 95)``); quoted parts are kept as they are."""
    out, i, quote = [], 0, None
    while i < len(call):
        c = call[i]
        if quote:
            out.append(call[i:i + 2] if c == "\\" and quote == '"' else c)
            i += 2 if c == "\\" and quote == '"' else 1
            quote = None if c == quote else quote
            continue
        if c in "\"'":
            quote = c
        if not c.isspace():
            out.append(", " if c == "," else c)
        i += 1
    return "".join(out)


def syntax_error(parser: Lark, rule: str, name: str, arguments: str, tokens: list[Token], exc: UnexpectedInput,
                 shift: Shift) -> ParsingError:
    """``expected <what> after [<previous token>], found [<token>]`` at the token, or at
    the end of the previous token when the command ends too early. ``arguments`` is the
    text after the command's ``name``, parsed from ``rule``; ``tokens`` those it read."""
    rejected = isinstance(exc, UnexpectedToken) and tokens and exc.token is tokens[-1]
    consumed = tokens[:-1] if rejected else tokens
    replay = parser.parse_interactive(arguments, start=rule)
    for token in consumed:
        replay.feed_token(token)
    expected = _describe(parser, replay.accepts())
    previous = _shown(consumed[-1]) if consumed else name
    if isinstance(exc, UnexpectedToken) and exc.token.type == "$END":
        end = (consumed[-1].end_line, consumed[-1].end_column) if consumed else (1, 1)
        return error(*shift.at(*end), f"expected {expected} after [{previous}]")
    if isinstance(exc, UnexpectedCharacters):
        at, found = (exc.line, exc.column), arguments[exc.pos_in_stream]
    else:
        at, found = (exc.token.line, exc.token.column), _shown(exc.token)
    if not expected:
        return error(*shift.at(*at), f"unexpected [{found}] after [{previous}]")
    return error(*shift.at(*at), f"expected {expected} after [{previous}], found [{found}]")


def _shown(token: Token) -> str:
    """A token as an error message shows it: a subsearch (parsed as blanks) as ``[...]``."""
    return "[...]" if token.type == "SUBSEARCH" else str(token)


# What a group of terminals is called in error messages, most specific first: (the
# terminals that must all be there, the terminals the words then cover, the words).
_OPERATORS = {"EQEQ", "EQUAL", "NEQ", "LT", "LTE", "GT", "GTE", "PLUS", "MINUS", "STAR", "SLASH", "PERCENT"}
_GROUPS = (
    ({"NAME", "NUMBER", "STRING"}, {"NAME", "QFIELD", "NUMBER", "STRING", "LPAR", "MINUS", "NOT"}, "an expression"),
    ({"BARE", "QFIELD", "NOT"}, {"BARE", "QFIELD", "STRING", "LPAR", "NOT"}, "a search term"),
    ({"BARE", "STRING"}, {"BARE", "STRING"}, "a value"),
    ({"BARE"}, {"BARE"}, "an index name or pattern"),
    ({"NAME"}, {"NAME", "QFIELD", "STRING"}, "a field name"),  # a name given may be "quoted"
    ({"AGG"}, {"AGG"}, "a field name"),  # an aggregate function, named as before AGG was split from NAME
    ({"PATTERN"}, {"PATTERN", "QFIELD", "STRING"}, "a field name or pattern"),
    ({"NUMBER"}, {"NUMBER"}, "a number"),
    ({"OPTION"}, {"OPTION"}, "a parameter"),
    ({"SUBSEARCH"}, {"SUBSEARCH"}, "a subsearch [...]"),
    ({"EQEQ", "PLUS", "STAR"}, _OPERATORS, "an operator"),
    ({"EQUAL", "NEQ", "LT"}, _OPERATORS, "a comparison operator"),
    ({"PLUS", "STAR"}, _OPERATORS, "an arithmetic operator"),
)
_PARAMETERS = ("QSIZE", "EARLIEST", "LATEST", "COMPOSITE", "LIMIT", "KEEPEMPTY", "CONSECUTIVE")
_KEYWORDS = ("AND", "OR", "NOT", "IN", "AS", "BY", "ASC", "DESC", "OUTPUT", "OUTPUTNEW", "SORTBY")


def _describe(parser: Lark, accepted: set[str]) -> str:
    """The terminals a parser state accepts, in words; the end of the command is left
    out (a command may end wherever it is complete)."""
    left, words = set(accepted) - {"$END"}, []
    for needs, covers, word in _GROUPS:
        if needs <= left:
            words.append(word)
            left -= covers
    words += [f"[{name.lower()}]" for name in _KEYWORDS if name in left]
    words += [f"[{name.lower()}=]" for name in _PARAMETERS if name in left]
    words += [f"[{parser.get_terminal(name).pattern.value}]" for name in sorted(left)
              if name not in _KEYWORDS and name not in _PARAMETERS]
    if len(words) < 2:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]
