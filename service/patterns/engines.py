"""Two linear-time engines for a Lucene regular-expression tree.

RE2 (google-re2) runs every tree it can express: a C++ automaton, linear in the input, with
no backtracking. RE2 has no intersection or complement, so a tree that uses ``&`` or ``~``
becomes a DFA of our own, built up front from Brzozowski derivatives (as Lucene
determinizes up front), with Lucene's determinization limit as the bound on its size.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Callable

import re2
from re2 import _re2

from .lucene import ANY, EMPTY, EPS, MAX_CODE_POINT, TOO_COMPLEX, Node, PatternError, both, cat, complement, \
    alt, repeat, string

Match = Callable[[str], bool]

MAX_DFA_STATES = 10_000       # Lucene's Operations.DEFAULT_DETERMINIZE_WORK_LIMIT
MAX_DFA_WORK = 2_000_000      # tree nodes visited while deriving: about a second of Python
MAX_RE2_PATTERN = 1_000_000   # characters of RE2 syntax; past it the program would be huge
RE2_MAX_REPEAT = 1000         # RE2 refuses larger counts, and nested counts whose product is larger


def uses_boolean_ops(node: Node) -> bool:
    kind = node[0]
    if kind in ("and", "not"):
        return True
    if kind in ("cat", "alt"):
        return any(uses_boolean_ops(p) for p in node[1])
    if kind == "rep":
        return uses_boolean_ops(node[1])
    return False


# --- RE2 --------------------------------------------------------------------------------------

def _char(c: int) -> str:
    ch = chr(c)
    return ch if ch.isascii() and ch.isalnum() else f"\\x{{{c:X}}}"


def _class(ranges: tuple[tuple[int, int], ...]) -> str:
    if ranges == ((0, MAX_CODE_POINT),):
        return "(?s:.)"
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        return _char(ranges[0][0])
    body = "".join(_char(lo) if lo == hi else f"{_char(lo)}-{_char(hi)}" for lo, hi in ranges)
    return f"[{body}]"


class _Emitter:
    """RE2 syntax for a tree. Counted repetitions past RE2's limit of 1000 (alone, or as the
    product of nested counts) are written out as sequences, which RE2 accepts."""

    def __init__(self) -> None:
        self.size = 0

    def grow(self, n: int) -> None:
        self.size += n
        if self.size > MAX_RE2_PATTERN:
            raise PatternError(TOO_COMPLEX)

    def emit(self, node: Node) -> tuple[str, int]:
        """The syntax and the product of the counted repetitions nested in it."""
        kind = node[0]
        if kind == "set":
            text, nested = _class(node[1]), 1
        elif kind == "str":
            text, nested = "".join(_char(ord(c)) for c in node[1]), 1
        elif kind == "eps":
            text, nested = "(?:)", 1
        elif kind == "empty":
            text, nested = "[^\\x00-\\x{10FFFF}]", 1
        elif kind == "any":
            text, nested = "(?s:.)*", 1
        elif kind == "cat":
            parts = [self.emit(p) for p in node[1]]
            return "".join(f"(?:{t})" for t, _ in parts), max(n for _, n in parts)
        elif kind == "alt":
            parts = [self.emit(p) for p in node[1]]
            return "(?:" + "|".join(t for t, _ in parts) + ")", max(n for _, n in parts)
        else:
            return self.repetition(node)
        self.grow(len(text))  # leaves and written-out copies: what the final text holds
        return text, nested

    def repetition(self, node: Node) -> tuple[str, int]:
        inner, nested = self.emit(node[1])
        lo, hi = node[2], node[3]
        unit = f"(?:{inner})"
        if (lo, hi) in ((0, None), (0, 1), (1, None)):
            return unit + {(0, None): "*", (0, 1): "?", (1, None): "+"}[(lo, hi)], nested
        top = lo if hi is None else hi
        if nested * top <= RE2_MAX_REPEAT:
            text = unit + (f"{{{lo},}}" if hi is None else f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}")
            return text, nested * top
        if nested == 1:  # flat: chunks of at most 1000, one after another
            self.grow(len(unit) * (top // RE2_MAX_REPEAT + 2))
            pieces = _chunks(unit, lo, "")
            if hi is None:
                pieces.append(unit + "*")
            else:
                pieces.extend(_chunks(unit, hi - lo, "0,"))
            return "".join(pieces), RE2_MAX_REPEAT
        self.grow(len(unit) * (top + 1))  # nested counts: write every copy out
        optional = unit + ("*" if hi is None else "?")
        return unit * lo + (optional if hi is None else optional * (hi - lo)), nested


def _chunks(unit: str, count: int, prefix: str) -> list[str]:
    full, rest = divmod(count, RE2_MAX_REPEAT)
    out = [f"{unit}{{{prefix}{RE2_MAX_REPEAT}}}"] * full
    if rest:
        out.append(f"{unit}{{{prefix}{rest}}}")
    return out


_OPTIONS = re2.Options()
_OPTIONS.never_capture = True
_OPTIONS.log_errors = False
_BOTH = _re2.RE2.Anchor.ANCHOR_BOTH


def re2_matcher(node: Node) -> Match:
    """A whole-value matcher run by RE2."""
    text, _ = _Emitter().emit(node)
    regexp = _re2.RE2(text.encode(), _OPTIONS)
    if not regexp.ok():
        # the only failure of well-formed syntax is size: RE2's memory budget for a program
        raise PatternError(TOO_COMPLEX)
    run = regexp.Match

    def match(value: str) -> bool:
        try:
            data = value.encode()
        except UnicodeEncodeError:  # a lone surrogate: bytes RE2 sees as invalid UTF-8, no match
            data = value.encode("utf-8", "surrogatepass")
        return run(_BOTH, data, 0, len(data))[0][0] != -1
    return match


# --- a DFA from derivatives, for & and ~ ----------------------------------------------------

def _nullable(node: Node) -> bool:
    kind = node[0]
    if kind in ("eps", "any"):
        return True
    if kind in ("empty", "set", "str"):
        return False
    if kind == "cat":
        return all(_nullable(p) for p in node[1])
    if kind == "alt":
        return any(_nullable(p) for p in node[1])
    if kind == "and":
        return all(_nullable(p) for p in node[1])
    if kind == "not":
        return not _nullable(node[1])
    return node[2] == 0 or _nullable(node[1])  # rep


def _derive(node: Node, c: int, work: list[int]) -> Node:
    """The strings ``s`` such that ``chr(c) + s`` is in ``node``; ``work`` counts the nodes
    visited, so that no pattern can make the construction run long."""
    work[0] += 1
    if work[0] > MAX_DFA_WORK:
        raise PatternError(TOO_COMPLEX)
    kind = node[0]
    if kind in ("empty", "eps"):
        return EMPTY
    if kind == "any":
        return ANY
    if kind == "set":
        return EPS if any(lo <= c <= hi for lo, hi in node[1]) else EMPTY
    if kind == "str":
        return string(node[1][1:]) if ord(node[1][0]) == c else EMPTY
    if kind == "cat":
        head, rest = node[1][0], cat(*node[1][1:])
        first = cat(_derive(head, c, work), rest)
        return alt(first, _derive(rest, c, work)) if _nullable(head) else first
    if kind == "alt":
        return alt(*(_derive(p, c, work) for p in node[1]))
    if kind == "and":
        return both(*(_derive(p, c, work) for p in node[1]))
    if kind == "not":
        return complement(_derive(node[1], c, work))
    inner, lo, hi = node[1], node[2], node[3]
    return cat(_derive(inner, c, work), repeat(inner, max(lo - 1, 0), None if hi is None else hi - 1))


def _boundaries(node: Node, out: set[int]) -> None:
    """Code points where the derivative of ``node`` may change: it is constant between them."""
    kind = node[0]
    if kind == "set":
        for lo, hi in node[1]:
            out.update((lo, hi + 1))
    elif kind == "str":
        out.update((ord(node[1][0]), ord(node[1][0]) + 1))
    elif kind == "cat":
        for p in node[1]:
            _boundaries(p, out)
            if not _nullable(p):
                break
    elif kind in ("alt", "and"):
        for p in node[1]:
            _boundaries(p, out)
    elif kind in ("not", "rep"):
        _boundaries(node[1], out)


def dfa_matcher(node: Node) -> Match:
    """A whole-value matcher over a DFA built in full now; more than Lucene's limit of
    states, or than a bounded amount of work, fails as Lucene does (``Pattern was too
    complex to determinize``)."""
    index: dict[Node, int] = {node: 0}
    states, table, work = [node], [], [0]
    for state in states:  # grows while we walk it: a breadth-first construction
        points: set[int] = {0}
        _boundaries(state, points)
        bounds = sorted(p for p in points if p <= MAX_CODE_POINT)
        targets = []
        for start in bounds:
            target = _derive(state, start, work)
            if target not in index:
                if len(states) >= MAX_DFA_STATES:
                    raise PatternError(TOO_COMPLEX)
                index[target] = len(states)
                states.append(target)
            targets.append(index[target])
        table.append((bounds, targets))
    accepting = [_nullable(s) for s in states]
    dead = index.get(EMPTY, -1)

    def match(value: str) -> bool:
        state = 0
        for ch in value:
            bounds, targets = table[state]
            state = targets[bisect_right(bounds, ord(ch)) - 1]
            if state == dead:
                return False
        return accepting[state]
    return match
