"""Dissect: Elasticsearch's ``DissectParser``, a left-to-right scan for each delimiter in turn.

``%{a} %{b},%{c}`` is keys and the delimiters after them. The scan finds each key's
delimiter at its first occurrence after the key's start (``str.find``: no backtracking, so
linear in the input), takes the rest for the last key when it has no delimiter, and matches
all or nothing. Modifiers: ``->`` skips repeats of the delimiter that follows, ``+`` appends
(``/n`` in that order), ``?`` and an empty name skip, ``*``/``&`` are reference pairs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from .lucene import PatternError

_LEADING = re.compile(r"^(.*?)%\{")               # no DOTALL, as in Java
_PAIRS = re.compile(r"%\{([^}]*?)}(.+?(?=%\{)|.*$)", re.DOTALL)
_MODIFIERS = re.compile(r"[/+*&?]")

NONE, APPEND, APPEND_ORDER, NAME, VALUE, SKIP = "", "+", "/", "*", "&", "?"


@dataclass(frozen=True)
class Key:
    name: str
    modifier: str
    skip: bool
    pad: bool           # ``->``: repeats of the next delimiter are skipped
    order: int = 0      # ``+name/order``


def _key(text: str) -> Key:
    """``DissectKey``: the name and modifier of ``%{text}``."""
    modifier, seen = NONE, 0
    for m in _MODIFIERS.finditer(text):
        prior, modifier = modifier, m.group()
        seen += 1
        if seen > 1 and not (prior == APPEND and modifier == APPEND_ORDER):
            raise PatternError(f"Unable to parse key [{text}]: multiple modifiers are not allowed.")
    pad = text.endswith("->")
    body = text[:-2] if pad else text
    order = 0
    if modifier == NONE:
        name = body
    elif modifier == APPEND_ORDER:
        found = re.search(r"[+](.*?)/([0-9]+)$", body, re.DOTALL)
        if found is None:
            raise PatternError(f"Unable to parse key [{text}]: The key name could not be determined")
        name, order = found.group(1), int(found.group(2))
    else:
        name = body[body.find(modifier) + 1:]  # what follows the (only) modifier
    skip = modifier == SKIP or not name
    if not name and modifier != NONE and modifier != SKIP:
        raise PatternError(f"Unable to parse key [{text}]: The key name could not be determined")
    return Key(name, modifier, skip, pad, order)


@dataclass(frozen=True)
class Dissect:
    """A compiled dissect pattern: ``keys`` in order (with their delimiters), and
    ``parse(text)`` to the values by name, or None where the text does not match."""

    leading: str
    keys: tuple[Key, ...]
    delimiters: tuple[str, ...]
    separator: str

    @property
    def references(self) -> list[str]:
        return [k.name for k in self.keys if k.modifier == NAME]

    def parse(self, text: str) -> dict[str, str] | None:
        lead, n = self.leading, len(text)
        if n <= len(lead) or not text.startswith(lead):
            return None
        found: list[tuple[Key, str]] = []
        pairs = iter(zip(self.keys, self.delimiters))
        key, delimiter = next(pairs)
        i = start = len(lead)
        while i < n:
            at = text.find(delimiter, i) if delimiter else -1
            if at < 0:
                break
            found.append((key, text[start:at]))
            i = at + len(delimiter)
            while text.startswith(delimiter, i):  # consecutive delimiters
                i += len(delimiter)
                if not key.pad:
                    following = next(pairs, None)
                    if following is None:
                        break
                    key = following[0]  # Elasticsearch keeps the delimiter it was scanning for
                    found.append((key, ""))
            following = next(pairs, None)
            if following is None:
                break
            key, delimiter = following
            start = i
        if len(found) < len(self.keys) and not delimiter:
            found.append((key, text[start:]))
        return self._results(found)

    def _results(self, found: list[tuple[Key, str]]) -> dict[str, str] | None:
        if len(found) != len(self.keys):
            return None
        simple: dict[str, str] = {}
        appended: dict[str, list[tuple[int, str]]] = {}
        refs: dict[str, list[str | None]] = {}
        implicit = -1000
        for key, value in found:
            if key.skip:
                continue
            if key.modifier == NONE:
                simple[key.name] = value
            elif key.modifier in (APPEND, APPEND_ORDER):
                order = key.order if key.modifier == APPEND_ORDER else implicit
                implicit += key.modifier == APPEND
                appended.setdefault(key.name, []).append((order, value))
            else:
                slot = refs.setdefault(key.name, [None, None])
                slot[0 if key.modifier == NAME else 1] = value
        results = dict(simple)
        for name_value in refs.values():
            results[name_value[0]] = name_value[1]  # type: ignore[index]
        for name, values in appended.items():
            results[name] = self.separator.join(v for _, v in sorted(values, key=lambda p: p[0]))
        wanted = len({k.name for k in self.keys if not k.skip})
        return results if len(results) == wanted else None


def dissect(pattern: str, separator: str = "") -> Dissect:
    """Compile a dissect pattern as ``DissectParser`` does; ``PatternError`` if it has no keys,
    a key ES cannot parse, or unpaired ``*``/``&`` references."""
    lead = _LEADING.match(pattern)
    leading = lead.group(1) if lead else ""
    keys, delimiters = [], []
    for m in _PAIRS.finditer(pattern, len(leading)):
        keys.append(_key(m.group(1)))
        delimiters.append(m.group(2))
    if not keys or not any(not k.skip for k in keys):
        raise PatternError("Unable to find any keys or delimiters.")
    appends = {k.name for k in keys if k.modifier in (APPEND, APPEND_ORDER)}
    # a plain key that shares its name with an appended one appends too
    keys = [Key(k.name, APPEND, k.skip, k.pad) if k.modifier == NONE and k.name in appends else k for k in keys]
    for name in {k.name for k in keys if k.modifier in (NAME, VALUE)}:
        if sum(1 for k in keys if k.name == name and k.modifier in (NAME, VALUE)) != 2:
            raise PatternError("Found invalid key/reference associations")
    return Dissect(leading, tuple(keys), tuple(delimiters), separator)

