"""The handle between a running query (on a worker thread) and whoever watches it.

The executor calls ``proceed()`` between slices: it raises ``Cancelled`` once the query is
cancelled and returns False once a stop was requested, so the pipeline finishes over the
rows read so far. ``cancel()`` also interrupts the statement SQLite is running right now.
Progress fields are plain attributes: one writer thread, readers that only display them.
"""

from __future__ import annotations

import sqlite3
import time

from ..errors import ServiceError


class Cancelled(ServiceError):
    status = 400
    type = "task_cancelled_exception"

    def __init__(self, reason: str) -> None:
        super().__init__(f"task cancelled [{reason}]")
        self.reason = reason


class Control:
    TARGET_SLICE_SECONDS = 0.02
    pause_s = 0.0  # tests only: a pause per slice, so a query is reliably caught mid-scan

    def __init__(self, slice_rows: int = 4096, adaptive: bool = True) -> None:
        self.stop_requested = False
        self.cancel_reason: str | None = None
        self.cut_short = False  # a stop ended the scan before every row was read
        self.rows_scanned = 0
        self.rows_total = 0
        self.phase = "queued"
        self.slice_rows = slice_rows
        self.adaptive = adaptive
        self.connection: sqlite3.Connection | None = None
        self._slice_started = 0.0

    # --- from the watcher (event loop thread) ---
    def stop(self) -> None:
        self.stop_requested = True

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        conn = self.connection
        if conn is not None:
            conn.interrupt()

    @property
    def cancelled(self) -> bool:
        return self.cancel_reason is not None

    # --- from the executor (worker thread) ---
    def check(self) -> None:
        if self.cancel_reason is not None:
            raise Cancelled(self.cancel_reason)

    def proceed(self) -> bool:
        """Called before each slice: False ends the scan (stop), Cancelled aborts the query."""
        self.check()
        if self.pause_s:
            time.sleep(self.pause_s)
            self.slice_rows = min(self.slice_rows, 1000)
            return not self.stop_requested
        now = time.perf_counter()
        if self.adaptive and self._slice_started:
            elapsed = max(now - self._slice_started, 1e-4)
            wanted = int(self.slice_rows * self.TARGET_SLICE_SECONDS / elapsed)
            self.slice_rows = max(256, min(wanted, self.slice_rows * 2, 200_000))
        self._slice_started = now
        return not self.stop_requested

    def scanned(self, rows: int) -> None:
        self.rows_scanned += rows
