"""The query languages the service runs, handed to the core by the app: the core imports none.

Each ``Language`` names the module the query workers' forkserver imports ahead (so a worker
forked from it starts with the engine loaded) and the frame a search of its kind gets when a
restart interrupted it before the query sent one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable


@dataclass(frozen=True)
class Language:
    kind: str    # the ``Job.kind`` of its jobs, e.g. "esql"
    module: str  # its engine's module, which the forkserver preloads
    # The frame of a search a restart cut before its query sent one.
    interrupted_frame: Callable[[], dict[str, Any]] = dict


@dataclass(frozen=True)
class Languages:
    entries: tuple[Language, ...] = field(default=())

    @classmethod
    def of(cls, languages: Iterable[Language]) -> Languages:
        return cls(tuple(languages))

    @property
    def modules(self) -> list[str]:
        return [language.module for language in self.entries]

    def interrupted_frame(self, kind: str) -> dict[str, Any]:
        """The frame of a ``kind`` search interrupted before its query sent one ({} when the
        kind is not registered)."""
        for language in self.entries:
            if language.kind == kind:
                return language.interrupted_frame()
        return {}
