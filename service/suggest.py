"""Elasticsearch's "did you mean" suggestions: the known names most like a mistyped one,
by Lucene's Levenshtein similarity (1 - edit distance / the longer length)."""

from __future__ import annotations

from typing import Iterable


def similarity(a: str, b: str) -> float:
    previous = list(range(len(a) + 1))
    for j, cb in enumerate(b, 1):
        current = [j]
        for i, ca in enumerate(a, 1):
            current.append(min(current[i - 1] + 1, previous[i] + 1, previous[i - 1] + (ca != cb)))
        previous = current
    return 1.0 - previous[len(a)] / max(len(a), len(b), 1)


def similar(name: str, known: Iterable[str], threshold: float, *, strictly: bool = False) -> list[str]:
    """The ``known`` names at least ``threshold`` similar to ``name`` (more than it when
    ``strictly``), most similar first, ties in ``known``'s order."""
    scored = [(similarity(name, k), k) for k in known]
    kept = [(s, k) for s, k in scored if (s > threshold if strictly else s >= threshold)]
    return [k for _, k in sorted(kept, key=lambda pair: -pair[0])]


def listed(names: list[str]) -> str:
    """``[a]`` for one name, ``any of [a, b]`` for more, as the suggestions are worded."""
    return f"[{names[0]}]" if len(names) == 1 else "any of [" + ", ".join(names) + "]"
