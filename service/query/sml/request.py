"""A background task's SML request, as the job reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SmlRequest:
    query: str
    time_field: str          # dtFieldName
    start_ms: int | None     # resolved dtStart (inclusive)
    end_ms: int | None       # resolved dtEnd (exclusive)
    now_ms: int              # the creation instant (now() in the query)
    calculate_stats: bool = False
    execution_cost: str = "OFF"       # OFF | INFO | DEBUG
    max_rows: int = 10_000_000        # limits of spec §7, resolved by the API
