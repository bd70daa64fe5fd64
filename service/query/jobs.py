"""What every language's job shares with the query workers it runs on."""

from __future__ import annotations

from typing import Any

from .plan import Source


class ShipsItsIndices:
    """A job (with ``plan`` and ``catalog``) pickled for a query worker carries only the
    catalog entries its plan's source can name, not every index of the service."""

    def __getstate__(self) -> dict[str, Any]:
        source = self.plan.steps[0]  # type: ignore[attr-defined]
        patterns = list(source.indices) if isinstance(source, Source) else []
        return {**self.__dict__, "catalog": self.catalog.subset(patterns)}  # type: ignore[attr-defined]
