"""A second query language, as small as one can be, for the core's own tests: ``COUNT n``
counts from 0 (for ever without ``n``). It imports nothing of ES|QL: what a language needs
from the core is the ``Job`` shape and nothing else."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any, Iterator

from service.errors import BadRequest
from service.query.control import Control

CHECK_EVERY = 100  # rows between two looks at stop and cancel


@dataclass
class Counted:
    """The result: rows ``[i, i * i]`` produced while they are read."""

    limit: int | None
    fail_after: int | None
    control: Control
    produced: int = 0

    @property
    def rows(self) -> Iterator[list[Any]]:
        while self.limit is None or self.produced < self.limit:
            if self.produced % CHECK_EVERY == 0:
                self.control.check()
            if self.produced == self.fail_after:
                raise BadRequest(f"failed after {self.produced} rows")
            yield [self.produced, self.produced * self.produced]
            self.produced += 1


@dataclass
class CountJob:
    limit: int | None = None
    fail: str | None = None  # an error before any row
    fail_after: int | None = None  # an error after this many rows
    kind = "count"
    action = "indices:data/read/count"
    target = None

    @property
    def description(self) -> str:
        return f"COUNT {self.limit}" if self.limit is not None else "COUNT"

    def run(self, conn: sqlite3.Connection, control: Control) -> Counted:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # a real read of the database
        if self.fail is not None:
            raise BadRequest(self.fail)
        return Counted(self.limit, self.fail_after, control)

    def frame(self, result: Counted, took_ms: int) -> dict[str, Any]:
        return {"names": ["i", "square"], "counted": result.produced, "took": took_ms}
