"""The handle between a running query and whoever watches it.

The executor calls ``proceed()`` between slices: it raises ``Cancelled`` once the query is
cancelled and returns False once a stop was requested, so the pipeline finishes over the
rows read so far. ``interrupted()`` is SQLite's progress handler: a cancel also aborts the
statement running right now.

The fields both sides read (flags and progress) live in ``state``, a list of integers. A
query running in a worker process gets a shared-memory array there instead (``attach``),
so stop, cancel and progress cross the process boundary without messages. Each field has
one writer: the watcher writes the flags, the executor the progress.

A watcher may also ask a running query for a *preview*, the rest of its pipeline finished
over the rows read so far without stopping it (Splunk's results preview): it bumps
``preview_wanted`` (``want_preview``); the executor's blocking step (STATS) sees
``preview_due`` between batches, takes the request (``take_preview``) and hands the rows to
``send_preview``, which in a worker crosses the pipe and here lands in ``preview`` as (the
request it answers, the rows).

``breaker`` is the query's memory breaker (``breaker.py``), which only the executor uses:
the worker gives each query one with the configured limit; elsewhere it has none.
"""

from __future__ import annotations

import time
from typing import Any, Callable, MutableSequence

from ..errors import ServiceError
from .breaker import Breaker

PHASES = ("queued", "running", "done")
STATE_FIELDS = 7
PREVIEW_ROWS = 10_000  # rows a preview of a running query holds at most
_CANCEL = 1


class Cancelled(ServiceError):
    status = 400
    type = "task_cancelled_exception"

    def __init__(self, reason: str) -> None:
        super().__init__(f"task cancelled [{reason}]")  # Elasticsearch's wording
        self.cancel_reason = reason  # not ``reason``: that is the error's whole reason, as rendered


class _Field:
    """An integer field of ``Control.state``."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __get__(self, control: Control, owner: Any = None) -> int:
        return control.state[self.index]

    def __set__(self, control: Control, value: int) -> None:
        control.state[self.index] = int(value)


class _Flag(_Field):
    def __get__(self, control: Control, owner: Any = None) -> bool:  # type: ignore[override]
        return bool(control.state[self.index])


class _Phase(_Field):
    def __get__(self, control: Control, owner: Any = None) -> str:  # type: ignore[override]
        return PHASES[control.state[self.index]]

    def __set__(self, control: Control, value: str) -> None:  # type: ignore[override]
        control.state[self.index] = PHASES.index(value)


class Control:
    TARGET_SLICE_SECONDS = 0.02
    pause_s = 0.0  # tests only: a pause per slice, so a query is reliably caught mid-scan

    stop_requested = _Flag(0)
    cancelled = _Flag(_CANCEL)
    cut_short = _Flag(2)  # a stop ended the scan before every row was read
    rows_scanned = _Field(3)
    rows_total = _Field(4)
    phase = _Phase(5)
    preview_wanted = _Field(6)  # the latest preview asked for (counts up)

    def __init__(self, slice_rows: int = 4096, adaptive: bool = True,
                 state: MutableSequence[int] | None = None) -> None:
        self.state: MutableSequence[int] = state if state is not None else [0] * STATE_FIELDS
        self.cancel_reason: str | None = None
        self.on_cancel: Callable[[], None] | None = None  # the runner's hook: enforce the cancel
        self.breaker = Breaker()
        self.slice_rows = slice_rows
        self.adaptive = adaptive
        self._slice_started = 0.0
        self._previewed = 0  # executor side: the preview request last served
        self.preview: tuple[int, list[list[Any]]] | None = None  # watcher side: the latest preview

    def attach(self, shared: MutableSequence[int]) -> None:
        """Move the state into ``shared`` (a worker's array), keeping its values."""
        shared[:] = self.state[:]
        self.state = shared

    def detach(self) -> None:
        """Take the state back into a private copy: the worker's array is reused."""
        self.state = list(self.state)

    # --- from the watcher ---
    def stop(self) -> None:
        self.stop_requested = True

    def cancel(self, reason: str) -> None:
        self.cancel_reason = reason
        self.cancelled = True
        if self.on_cancel is not None:
            self.on_cancel()

    def want_preview(self) -> int:
        """Ask for a preview; the number the answer will carry (or a later one)."""
        self.preview_wanted += 1
        return self.preview_wanted

    def previewed(self, request: int, rows: list[list[Any]]) -> None:
        """A preview arrived (the worker's stream hands it over)."""
        self.preview = (request, rows)

    # --- from the executor ---
    def preview_due(self) -> bool:
        return self.preview_wanted != self._previewed

    def take_preview(self) -> int:
        """Start answering the latest preview request (no longer due, so a blocking step
        the preview runs through answers none of its own); the number to send it with."""
        self._previewed = self.preview_wanted
        return self._previewed

    def send_preview(self, request: int, rows: list[list[Any]]) -> None:
        """Answer the preview request ``request`` with ``rows``."""
        self.publish_preview(request, rows)

    def publish_preview(self, request: int, rows: list[list[Any]]) -> None:
        """In this process the watcher has it at once; a worker's control sends it."""
        self.previewed(request, rows)

    def interrupted(self) -> int:
        """SQLite's progress handler: non-zero aborts the running statement."""
        return self.state[_CANCEL]

    def check(self) -> None:
        if self.cancelled:
            raise Cancelled(self.cancel_reason or "cancelled")

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
