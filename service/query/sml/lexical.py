"""SML's lexical layer (spec/sml.md §2): the pipeline's split into commands, string and
number literals, and errors at 1-based ``line L:C:`` positions."""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

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

    def src(self, start: int, end: int) -> Src:
        return Src(*self.at(start), self.text[start:end])

    def error(self, offset: int, message: str) -> ParsingError:
        return error(*self.at(offset), message)


@dataclass(frozen=True, slots=True)
class Segment:
    """One command's text between pipes: ``text[start:end]``; ``pipe`` is the offset of
    the ``|`` before it (None for the first)."""

    start: int
    end: int
    pipe: int | None


def split_pipeline(text: str, positions: Positions) -> list[Segment]:
    """Split at every ``|`` outside double quotes and outside ``[ ]`` (subsearches).
    Inside quotes ``\\"`` and ``\\\\`` are escapes, so a quote or backslash escaped
    there neither ends the string nor escapes what follows."""
    segments, start, pipe, depth, opened = [], 0, None, 0, []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i = _string_end(text, i, positions)
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


def _string_end(text: str, i: int, positions: Positions) -> int:
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
