"""Lucene's regular-expression syntax (``org.apache.lucene.util.automaton.RegExp``), parsed to a tree.

The parser follows Lucene 10's grammar and flags as ES|QL's RLIKE uses them
(``RegExp.ALL | RegExp.DEPRECATED_COMPLEMENT``): ``|`` union, ``&`` intersection,
``~`` complement, ``?*+{n,m}`` repetition, ``[...]`` and ``[^...]`` classes, ``\\d\\s\\w``
and their negations, ``.`` any character (newline included), ``#`` the empty language,
``@`` any string, ``"..."`` a literal string, ``()`` the empty string, ``<n-m>`` a decimal
interval. Every other character is literal (``^ $`` included) and a match is always of the
whole value. Errors carry Lucene's own messages.

A tree node is a hashable tuple, built only by the constructors below, which keep it
normalised (flattened, deduplicated, simplified) so that equal languages built the same way
compare equal. That keeps the derivative automaton in ``engines`` small.
"""

from __future__ import annotations

from typing import Optional

MAX_CODE_POINT = 0x10FFFF
MAX_NESTING = 100  # Lucene fails deep nesting with a StackOverflowError; we refuse earlier, as clearly

Node = tuple
EMPTY: Node = ("empty",)   # no string at all
EPS: Node = ("eps",)       # the empty string
ANY: Node = ("any",)       # every string
ANYCHAR: Node = ("set", ((0, MAX_CODE_POINT),))


class PatternError(ValueError):
    """A pattern the engine refuses, with the message Elasticsearch gives for it."""


TOO_COMPLEX = "Pattern was too complex to determinize"
TOO_DEEP = "Pattern nesting is too deep to evaluate"


# --- constructors -------------------------------------------------------------------------

def charset(ranges: list[tuple[int, int]]) -> Node:
    """The single characters in ``ranges`` (inclusive code-point pairs), merged and sorted."""
    merged: list[list[int]] = []
    for lo, hi in sorted(ranges):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return ("set", tuple((lo, hi) for lo, hi in merged)) if merged else EMPTY


def negate(ranges: tuple[tuple[int, int], ...]) -> list[tuple[int, int]]:
    out, start = [], 0
    for lo, hi in ranges:
        if lo > start:
            out.append((start, lo - 1))
        start = hi + 1
    if start <= MAX_CODE_POINT:
        out.append((start, MAX_CODE_POINT))
    return out


def string(s: str) -> Node:
    return ("str", s) if s else EPS


def cat(*parts: Node) -> Node:
    flat: list[Node] = []
    for part in parts:
        if part == EMPTY:
            return EMPTY
        for p in (part[1] if part[0] == "cat" else (part,)):
            if p == EPS:
                continue
            if flat and p[0] == "str" and flat[-1][0] == "str":
                flat[-1] = ("str", flat[-1][1] + p[1])
            else:
                flat.append(p)
    if not flat:
        return EPS
    return flat[0] if len(flat) == 1 else ("cat", tuple(flat))


def alt(*parts: Node) -> Node:
    members: set[Node] = set()
    sets: list[tuple[int, int]] = []
    for part in parts:
        for p in (part[1] if part[0] == "alt" else (part,)):
            if p == ANY:
                return ANY
            if p[0] == "set":
                sets.extend(p[1])
            elif p != EMPTY:
                members.add(p)
    if sets:
        members.add(charset(sets))
    if not members:
        return EMPTY
    return next(iter(members)) if len(members) == 1 else ("alt", frozenset(members))


def both(*parts: Node) -> Node:
    members: set[Node] = set()
    for part in parts:
        for p in (part[1] if part[0] == "and" else (part,)):
            if p == EMPTY:
                return EMPTY
            if p != ANY:
                members.add(p)
    if not members:
        return ANY
    return next(iter(members)) if len(members) == 1 else ("and", frozenset(members))


def complement(node: Node) -> Node:
    if node[0] == "not":
        return node[1]
    if node == EMPTY:
        return ANY
    if node == ANY:
        return EMPTY
    return ("not", node)


def repeat(node: Node, lo: int, hi: Optional[int]) -> Node:
    """``node{lo,hi}``; ``hi`` None is unbounded (``*`` is 0..None, ``?`` 0..1, ``+`` 1..None)."""
    if node in (EMPTY, EPS):
        return EPS if lo == 0 or node == EPS else EMPTY
    if hi == 0:
        return EPS
    if (lo, hi) == (1, 1):
        return node
    if node == ANY or (node[0] == "rep" and node[2] == 0 and node[3] is None and hi is None):
        return node if node != ANY else ANY
    if node == ANYCHAR and lo == 0 and hi is None:
        return ANY
    return ("rep", node, lo, hi)


# --- the parser ---------------------------------------------------------------------------

class _Parser:
    """Lucene's recursive descent, production for production, so that what is literal,
    what is an operator and every error message (position included) are the same."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.pos = 0
        self.depth = 0
        self.unresolved: str | None = None

    def fail(self, message: str) -> PatternError:
        return PatternError(message)

    def at(self, i: int) -> int:
        """A string position as Java counts it (UTF-16 units)."""
        return i + sum(1 for ch in self.s[:i] if ord(ch) > 0xFFFF)

    def more(self) -> bool:
        return self.pos < len(self.s)

    def peek(self, chars: str) -> bool:
        return self.more() and self.s[self.pos] in chars

    def match(self, ch: str) -> bool:
        if self.more() and self.s[self.pos] == ch:
            self.pos += 1
            return True
        return False

    def next(self) -> str:
        if not self.more():
            raise self.fail("unexpected end-of-string")
        self.pos += 1
        return self.s[self.pos - 1]

    def parse(self) -> Node:
        if not self.s:
            return EPS
        node = self.union()
        if self.more():
            raise self.fail(f"end-of-string expected at position {self.at(self.pos)}")
        if self.unresolved is not None:
            # Lucene resolves named automata after parsing; ES|QL supplies none
            raise self.fail(f"'{self.unresolved}' not found")
        return node

    def union(self) -> Node:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise PatternError(TOO_DEEP)
        parts = [self.inter()]
        while self.match("|"):
            parts.append(self.inter())
        self.depth -= 1
        return alt(*parts)

    def inter(self) -> Node:
        parts = [self.concat()]
        while self.match("&"):
            parts.append(self.concat())
        return both(*parts)

    def concat(self) -> Node:
        parts = [self.repeat()]
        while self.more() and not self.peek(")|&"):
            parts.append(self.repeat())
        return cat(*parts)

    def repeat(self) -> Node:
        node = self.compl()
        while self.peek("?*+{"):
            if self.match("?"):
                node = repeat(node, 0, 1)
            elif self.match("*"):
                node = repeat(node, 0, None)
            elif self.match("+"):
                node = repeat(node, 1, None)
            else:
                self.pos += 1
                lo = self.integer(required=True)
                hi: Optional[int] = lo
                if self.match(","):
                    hi = self.integer(required=False)
                if not self.match("}"):
                    raise self.fail(f"expected '}}' at position {self.at(self.pos)}")
                if hi is not None and lo > hi:
                    raise self.fail(f"invalid repetition range(out of order): {lo}..{hi}")
                node = repeat(node, lo, hi)
        return node

    def integer(self, required: bool) -> Optional[int]:
        start = self.pos
        while self.peek("0123456789"):
            self.pos += 1
        if start == self.pos:
            if required:
                raise self.fail(f"integer expected at position {self.at(self.pos)}")
            return None
        digits = self.s[start:self.pos]
        if int(digits) > 2**31 - 1:  # Integer.parseInt
            raise self.fail(f'For input string: "{digits}"')
        return int(digits)

    def compl(self) -> Node:
        if self.match("~"):
            return complement(self.compl())
        return self.charclass()

    def charclass(self) -> Node:
        if not self.match("["):
            return self.simple()
        negated = self.match("^")
        ranges = self.classes()
        if not self.match("]"):
            raise self.fail(f"expected ']' at position {self.at(self.pos)}")
        return charset(negate(charset(ranges)[1]) if negated else ranges)

    def classes(self) -> list[tuple[int, int]]:
        ranges: list[tuple[int, int]] = []
        while True:
            if self.match("\\"):
                if self.peek("\\" + _LETTERS):
                    ranges.extend(self.predefined())
                else:
                    c = ord(self.next())
                    ranges.append((c, c))
            else:
                c = self.char()
                if self.match("-"):
                    ranges.append((c, self.char()))
                else:
                    ranges.append((c, c))
            if not self.more() or self.peek("]"):
                break
        for lo, hi in ranges:
            if lo > hi:
                raise self.fail(f"invalid range: from ({lo}) cannot be > to ({hi})")
        return ranges

    def predefined(self) -> list[tuple[int, int]]:
        """After a backslash: ``\\\\``, ``\\d \\D \\s \\S \\w \\W``; any other letter is an error."""
        ch = self.s[self.pos]
        if ch == "\\":
            self.pos += 1
            return [(92, 92)]
        if ch in _PREDEFINED:
            self.pos += 1
            return _PREDEFINED[ch]
        raise self.fail(f"invalid character class \\{ord(self.next())}")

    def char(self) -> int:
        self.match("\\")
        return ord(self.next())

    def simple(self) -> Node:
        if self.match("."):
            return ANYCHAR
        if self.match("#"):
            return EMPTY
        if self.match("@"):
            return ANY
        if self.match('"'):
            start = self.pos
            while self.more() and not self.peek('"'):
                self.pos += 1
            if not self.match('"'):
                raise self.fail(f"expected '\"' at position {self.at(self.pos)}")
            return string(self.s[start:self.pos - 1])
        if self.match("("):
            if self.match(")"):
                return EPS
            node = self.union()
            if not self.match(")"):
                raise self.fail(f"expected ')' at position {self.at(self.pos)}")
            return node
        if self.match("<"):
            return self.interval()
        if self.match("\\"):
            if self.peek("\\" + _LETTERS):
                return charset(self.predefined())
            return string(self.next())
        return string(self.next())

    def interval(self) -> Node:
        start = self.pos
        while self.more() and not self.peek(">"):
            self.pos += 1
        if not self.match(">"):
            raise self.fail(f"expected '>' at position {self.at(self.pos)}")
        body = self.s[start:self.pos - 1]
        where = self.at(self.pos - 1)
        dash = body.find("-")
        if dash == -1:
            if self.unresolved is None:
                self.unresolved = body
            return EMPTY
        low, high = body[:dash], body[dash + 1:]
        if dash == 0 or dash == len(body) - 1 or "-" in high or not (_java_int(low) and _java_int(high)):
            raise self.fail(f"interval syntax error at position {where}")
        lo, hi = sorted((int(low), int(high)))
        return decimal_interval(lo, hi, len(low) if len(low) == len(high) else 0)


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT = [(48, 57)]
_SPACE = [(9, 10), (13, 13), (32, 32)]
_WORD = [(48, 57), (65, 90), (95, 95), (97, 122)]
_PREDEFINED = {
    "d": _DIGIT, "D": negate(tuple(_DIGIT)),
    "s": _SPACE, "S": negate(tuple(_SPACE)),
    "w": _WORD, "W": negate(tuple(_WORD)),
}


def _java_int(text: str) -> bool:
    """Whether ``Integer.parseInt`` accepts ``text`` (an optional ``+``, ASCII digits, in range)."""
    digits = text[1:] if text.startswith("+") else text
    return digits.isascii() and digits.isdigit() and int(digits) <= 2**31 - 1


def decimal_interval(lo: int, hi: int, digits: int) -> Node:
    """Lucene's ``makeDecimalInterval``: the decimal numbers lo..hi, exactly ``digits`` long
    (zero-padded) when ``digits`` > 0, else with any number of leading zeros."""
    if digits > 0:
        width = max(digits, len(str(hi)))
        return _same_length(str(lo).zfill(width), str(hi).zfill(width))
    parts = []
    for width in range(len(str(lo)), len(str(hi)) + 1):
        first = max(lo, 10 ** (width - 1) if width > 1 else 0)
        last = min(hi, 10 ** width - 1)
        parts.append(_same_length(str(first), str(last)))
    return cat(repeat(string("0"), 0, None), alt(*parts))


def _same_length(lo: str, hi: str) -> Node:
    """Every digit string of this length between ``lo`` and ``hi`` (both included)."""
    if lo == hi:
        return string(lo)
    if len(lo) == 1:
        return charset([(ord(lo), ord(hi))])
    if lo[0] == hi[0]:
        return cat(string(lo[0]), _same_length(lo[1:], hi[1:]))
    rest = len(lo) - 1
    parts = [cat(string(lo[0]), _same_length(lo[1:], "9" * rest)),
             cat(string(hi[0]), _same_length("0" * rest, hi[1:]))]
    if ord(hi[0]) - ord(lo[0]) > 1:
        parts.append(cat(charset([(ord(lo[0]) + 1, ord(hi[0]) - 1)]), repeat(charset(_DIGIT), rest, rest)))
    return alt(*parts)


def parse(pattern: str) -> Node:
    """The tree of a Lucene regular expression; ``PatternError`` with Lucene's message if invalid."""
    return _Parser(pattern).parse()


def is_total(node: Node) -> bool:
    """Whether ``node`` surely matches every string (what ES|QL rewrites to IS NOT NULL).
    A sound check on the normalised tree: it never says yes wrongly."""
    kind = node[0]
    if kind == "any":
        return True
    if kind == "rep":
        inner = node[1]
        return is_total(inner) or (node[2] == 0 and node[3] is None and _has_every_char(inner))
    if kind == "alt":
        return any(is_total(p) for p in node[1])
    if kind in ("cat", "and"):
        return all(is_total(p) for p in node[1])
    if kind == "not":
        return node[1] == EMPTY
    return False


def _has_every_char(node: Node) -> bool:
    if node == ANYCHAR:
        return True
    return node[0] == "alt" and ANYCHAR in node[1]
