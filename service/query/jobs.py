"""What every language's job shares with the query workers it runs on."""

from __future__ import annotations

from dataclasses import fields
from typing import Any, Iterator

from .plan import Source, Step


def _patterns(node: Any) -> Iterator[str]:
    """The index patterns of every ``Source`` in ``node``: a step, or a tuple of them, also
    inside the steps of another step (a subsearch's, a Combine's inputs)."""
    if isinstance(node, Source):
        yield from node.indices
    elif isinstance(node, tuple):
        for item in node:
            yield from _patterns(item)
    elif isinstance(node, Step):
        for f in fields(node):
            yield from _patterns(getattr(node, f.name))


def source_patterns(steps: tuple[Step, ...]) -> list[str]:
    """The index expressions a plan's sources name, each once, in order."""
    return list(dict.fromkeys(_patterns(steps)))


class ShipsItsIndices:
    """A job (with ``plan`` and ``catalog``) pickled for a query worker carries only the
    catalog entries its plan's sources can name, not every index of the service."""

    def __getstate__(self) -> dict[str, Any]:
        patterns = source_patterns(self.plan.steps)  # type: ignore[attr-defined]
        return {**self.__dict__, "catalog": self.catalog.subset(patterns)}  # type: ignore[attr-defined]
