"""Process-wide tuning shared by the server and its query workers."""

from __future__ import annotations

import gc


def tune_gc() -> None:
    """Bulk indexing and query pipelines allocate many short-lived containers; with the
    default thresholds the collector rescans long-lived start-up objects again and again.
    Freeze those, and let the youngest generation grow before collecting."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
