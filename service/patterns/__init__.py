"""Every pattern a client controls, matched in time linear in its input.

One place for each kind of pattern, each compiled once (cached) into a plain callable:

- ``wildcard(p)``: Elasticsearch's simple wildcard (``Regex.simpleMatch``, ``Glob.globMatch``):
  only ``*`` is special. Task actions, index patterns, KEEP/DROP columns, filter_path segments.
- ``like(p)``: ES|QL ``LIKE``: ``*``, ``?`` and ``\\`` escaping one of ``*?\\``.
- ``lucene_regex(p)``: ES|QL ``RLIKE``: Lucene's regular-expression syntax (see ``lucene``).
- ``dissect(p, sep)``: ES|QL ``DISSECT`` (see ``dissect``).

Wildcards run as a greedy scan of their fixed-length pieces (``str.find``, ``startswith``):
leftmost placement of each piece is optimal, so one pass decides. Lucene regexps run on RE2,
or on a DFA of our own where they use ``&`` or ``~`` (see ``engines``). Nothing here
backtracks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from . import engines, lucene
from .dissect import Dissect, dissect
from .lucene import PatternError

__all__ = ["Dissect", "Matcher", "PatternError", "dissect", "like", "lucene_regex", "wildcard"]

Match = Callable[[str], bool]
_ANY = None  # a one-character wildcard inside a piece


@dataclass(frozen=True)
class Matcher:
    """A compiled whole-value pattern: ``match(value)``, and whether it matches every string
    (Elasticsearch then rewrites the predicate to ``IS NOT NULL``)."""

    match: Match
    total: bool


@lru_cache(maxsize=1024)
def wildcard(pattern: str) -> Match:
    """Elasticsearch's simple wildcard match of a whole string: ``*`` is any run of
    characters, every other character (``?``, ``[``, ``\\`` too) is itself. Case-sensitive."""
    return _glob([list(piece) for piece in pattern.split("*")])


INVALID_ESCAPE = "Invalid sequence - escape character is not followed by special wildcard char"


@lru_cache(maxsize=1024)
def like(pattern: str) -> Matcher:
    """ES|QL ``LIKE``: ``*`` any run, ``?`` one character, ``\\`` escapes ``*``, ``?`` or
    ``\\`` (anything else after it, or nothing, is ``PatternError`` with ES's message)."""
    pieces: list[list[str | None]] = [[]]
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 == len(pattern) or pattern[i + 1] not in "*?\\":
                raise PatternError(INVALID_ESCAPE)
            pieces[-1].append(pattern[i + 1])
            i += 2
            continue
        if c == "*":
            pieces.append([])
        else:
            pieces[-1].append(_ANY if c == "?" else c)
        i += 1
    total = len(pieces) > 1 and not any(pieces)
    return Matcher(_glob(pieces), total)


@lru_cache(maxsize=1024)
def lucene_regex(pattern: str) -> Matcher:
    """ES|QL ``RLIKE``: a whole-value match in Lucene's regular-expression syntax.
    ``PatternError`` carries Lucene's message for a malformed pattern, or Elasticsearch's
    ``Pattern was too complex to determinize`` for one too large to run."""
    try:
        node = lucene.parse(pattern)
    except RecursionError:
        raise PatternError(lucene.TOO_DEEP) from None
    pieces = _as_pieces(node)
    if pieces is not None:
        match = _glob(pieces)
    elif engines.uses_boolean_ops(node):
        match = engines.dfa_matcher(node)
    else:
        match = engines.re2_matcher(node)
    return Matcher(match, lucene.is_total(node))


def _as_pieces(node: lucene.Node) -> list[list[str | None]] | None:
    """A tree made only of literals, ``.`` and ``.*`` as wildcard pieces (the fast path for
    the usual ``foo.*``, ``.*bar.*``), else None."""
    parts = node[1] if node[0] == "cat" else (node,)
    pieces: list[list[str | None]] = [[]]
    for part in parts:
        if part[0] == "str":
            pieces[-1].extend(part[1])
        elif part == lucene.ANYCHAR:
            pieces[-1].append(_ANY)
        elif part == lucene.ANY:
            pieces.append([])
        elif part == lucene.EPS:
            continue
        else:
            return None
    return pieces


# --- the wildcard scan --------------------------------------------------------------------

def _glob(pieces: list[list[str | None]]) -> Match:
    """The matcher for fixed-length pieces separated by ``*`` (one piece: no ``*``).

    Usual shapes are one or two string operations. The rest is one Python regex that
    finds each middle piece at its leftmost place and commits to it (an atomic group):
    leftmost placement is optimal for fixed-length pieces, so nothing is retried and a
    match costs at most length x pattern size."""
    texts = ["".join(p) if _ANY not in p else None for p in pieces]  # type: ignore[arg-type]
    if len(pieces) == 1 and texts[0] is not None:
        literal = texts[0]
        return lambda value: value == literal
    head, middle, tail = texts[0], [t for p, t in zip(pieces[1:-1], texts[1:-1]) if p], texts[-1]
    if len(pieces) > 1 and head is not None and tail is not None and len(middle) <= 1 and None not in middle:
        return _literal_glob(head, middle[0] if middle else None, tail)
    parts = [_regex(pieces[0])]
    parts.extend(_leftmost(p) for p in pieces[1:-1] if p)
    if len(pieces) > 1:
        parts.append(".*" + _regex(pieces[-1]))
    return _compiled("".join(parts))


def _leftmost(piece: list[str | None]) -> str:
    """Skip to the leftmost occurrence of ``piece`` and commit to it. With a literal first
    character ``c`` the skip is ``[^c]`` runs and ``c`` not starting the piece (possessive,
    so sre moves on at once); else a lazy scan."""
    first = piece[0]
    if first is _ANY:
        return f"(?>.*?{_regex(piece)})"
    c, rest = re.escape(first), _regex(piece[1:])
    loop = f"(?:{c}(?!{rest})[^{c}]*+)*+" if rest else ""
    return f"(?>[^{c}]*+{loop}{_regex(piece)})"


def _regex(piece: list[str | None]) -> str:
    return "".join("." if c is _ANY else re.escape(c) for c in piece)  # type: ignore[arg-type]


def _compiled(regex: str) -> Match:
    fullmatch = re.compile(regex, re.DOTALL).fullmatch
    return lambda value: fullmatch(value) is not None


def _literal_glob(head: str, middle: str | None, tail: str) -> Match:
    """``head*tail`` and ``head*middle*tail`` with literal pieces: the usual LIKEs."""
    if middle is None:
        if not tail:
            return (lambda value: value.startswith(head)) if head else (lambda value: True)
        if not head:
            return lambda value: value.endswith(tail)
        shortest = len(head) + len(tail)
        return lambda value: len(value) >= shortest and value.startswith(head) and value.endswith(tail)
    if not head and not tail:
        return lambda value: middle in value
    start, shortest = len(head), len(head) + len(middle) + len(tail)
    return lambda value: (len(value) >= shortest and value.startswith(head) and value.endswith(tail)
                          and value.find(middle, start, len(value) - len(tail)) >= 0)
