"""Free space on the data directory's disk, and Elasticsearch's flood-stage block.

Elasticsearch puts a ``read_only_allow_delete`` block on every index of a node whose disk
passes the flood-stage watermark (``cluster.routing.allocation.disk.watermark.flood_stage``:
95% used by default, asking at most 100gb free) and lifts it by itself once usage is back
below the high watermark (90%, at most 150gb free). Esquire does the same for its one data
directory: while blocked, writes that grow the database answer 429 ``cluster_block_exception``;
reads, searches and deletes go on. (Elasticsearch refuses document deletes too, since they
grow a Lucene index; in SQLite a delete frees pages for reuse, so Esquire lets them through.)

Free space is the filesystem's available bytes plus SQLite's free pages: a dropped table's
pages stay in the file (no auto-vacuum), but SQLite reuses them before it grows the file, so
deleting an index does lift the block.

A reserve file (``disk_reserve_bytes``) holds a little space back for the moment the disk is
truly full: a delete in WAL mode must still append its frames to the WAL. It is given up when
SQLite meets a full disk, or before a write that must go through while blocked once the
filesystem has less room left than the reserve holds; it is made again once there is room. While it is missing it counts as used space, so the space it gave
back is never what lets growing writes resume.
"""

from __future__ import annotations

import asyncio
import errno
import math
import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import structlog

from ..errors import ServiceError

log = structlog.get_logger(__name__)

BLOCK = "TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, index has read-only-allow-delete block"
RESERVE_FILE = "space.reserve"
_SHMSIZE = getattr(sqlite3, "SQLITE_IOERR_SHMSIZE", 4874)  # the shared-memory file cannot grow
_UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?b?)\s*$", re.IGNORECASE)
_MAX_HEADROOM = {"flood_stage": 100 << 30, "high": 150 << 30}  # ES's defaults for its default watermarks
_DEFAULTS = {"flood_stage": "95%", "high": "90%"}


class FloodStageBlock(ServiceError):
    """Elasticsearch's answer to a write on an index under the flood-stage block."""

    status = 429
    type = "cluster_block_exception"

    def __init__(self, indices: Iterable[str] = ()) -> None:
        names = dict.fromkeys(indices)
        reason = "".join(f"index [{name}] blocked by: [{BLOCK}];" for name in names) or f"blocked by: [{BLOCK}];"
        super().__init__(reason)


class NoSpaceError(OSError):
    """The database cannot be opened or brought up to date for lack of disk space."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether SQLite failed because the disk is full (SQLITE_FULL, or the -shm file cannot grow)."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.Error) and code is not None and (code & 0xFF == sqlite3.SQLITE_FULL
                                                                     or code == _SHMSIZE)


def parse_size(text: str) -> int:
    """A byte size as Elasticsearch writes it (``500mb``, ``1.5gb``, ``0b``); ValueError otherwise."""
    match = _SIZE.match(text)
    if not match or (not match[2] and match[1] != "0"):
        raise ValueError(f"not a byte size: {text!r}")
    return int(float(match[1]) * _UNITS[match[2][:1].lower() or "b"])


@dataclass(frozen=True)
class Watermark:
    """A share of the disk used (``95%``, ``0.95``) or an amount of space left free (``500mb``)."""

    used_ratio: float | None = None
    free_bytes: int | None = None
    max_headroom: int | None = None  # caps the free space a ratio asks for (ES's max_headroom)

    @classmethod
    def parse(cls, text: str, name: str) -> Watermark:
        """ES's forms: ``95%``, ``0.95`` or ``500mb``; ValueError naming the setting ``name``."""
        value = text.strip()
        try:
            try:
                ratio = float(value[:-1]) / 100 if value.endswith("%") else float(value)
            except ValueError:
                return cls(free_bytes=parse_size(value))
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(value)
        except ValueError:
            raise ValueError(f"{name} must be a percentage (95%), a ratio (0.95) or a byte size (500mb), "
                             f"got {text!r}") from None
        return cls(used_ratio=ratio)

    def free_needed(self, total: int) -> int:
        """The free bytes below which a disk of ``total`` bytes is past this watermark."""
        if self.free_bytes is not None:
            return self.free_bytes
        needed = int(total * (1.0 - (self.used_ratio or 0.0)))
        return needed if self.max_headroom is None else min(needed, self.max_headroom)


@dataclass(frozen=True)
class DiskPolicy:
    """When writes are blocked and lifted again, how much space is held in reserve, how often to look."""

    flood_stage: Watermark = Watermark(free_bytes=0)
    high: Watermark = Watermark(free_bytes=0)
    reserve_bytes: int = 0
    check_interval_s: float = 1.0

    @classmethod
    def parse(cls, flood_stage: str, high: str, reserve_bytes: int, check_interval_ms: int) -> DiskPolicy:
        """The policy from settings; ValueError with a one-line message when they make no sense.

        ``high`` may be empty: ES's default 90% when the flood stage is a percentage, else the
        flood stage itself. As in ES, both watermarks are percentages or both are byte sizes,
        and the 100gb / 150gb max headrooms apply only while both are at their defaults.
        """
        flood = Watermark.parse(flood_stage, "disk_watermark_flood_stage")
        high = high or (_DEFAULTS["high"] if flood.used_ratio is not None else flood_stage)
        upper = Watermark.parse(high, "disk_watermark_high")
        if (flood.used_ratio is None) != (upper.used_ratio is None):
            raise ValueError(f"disk_watermark_flood_stage and disk_watermark_high must both be percentages or both "
                             f"byte sizes, got {flood_stage!r} and {high!r}")
        if (upper.used_ratio or 0.0) > (flood.used_ratio or 0.0) or (upper.free_bytes or 0) < (flood.free_bytes or 0):
            raise ValueError(f"disk_watermark_high ({high!r}) must ask for more free space than "
                             f"disk_watermark_flood_stage ({flood_stage!r})")
        if flood_stage.strip() == _DEFAULTS["flood_stage"] and high.strip() == _DEFAULTS["high"]:
            flood = Watermark(flood.used_ratio, max_headroom=_MAX_HEADROOM["flood_stage"])
            upper = Watermark(upper.used_ratio, max_headroom=_MAX_HEADROOM["high"])
        if reserve_bytes < 0 or check_interval_ms < 0:
            raise ValueError("disk_reserve_bytes and disk_check_interval_ms must not be negative")
        return cls(flood, upper, reserve_bytes, check_interval_ms / 1000)


@dataclass(frozen=True)
class DiskUsage:
    total: int
    available: int  # the filesystem's, for this (unprivileged) process
    free_pages: int  # SQLite's free pages, in bytes
    missing_reserve: int  # the reserve not held right now: counted as used, so it is never spent on growth

    @property
    def free(self) -> int:
        return self.available + self.free_pages - self.missing_reserve

    def fields(self) -> dict[str, int]:
        return {"available_bytes": self.available, "sqlite_free_bytes": self.free_pages,
                "reserve_missing_bytes": self.missing_reserve, "total_bytes": self.total}


class DiskMonitor:
    """The block state of one data directory, refreshed at most every ``check_interval_s``.

    Checking costs one ``statvfs`` and one ``PRAGMA freelist_count``; callers ask before
    every write, the monitor looks again only once its last look is older than the interval.
    """

    def __init__(self, directory: Path, policy: DiskPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self.policy = policy
        self.clock = clock
        self.reserve = directory / RESERVE_FILE
        self.blocked = False
        self.usage: DiskUsage | None = None
        self._checked = -math.inf
        self._restoring = False

    def stale(self) -> bool:
        return self.clock() - self._checked >= self.policy.check_interval_s

    async def update(self, free_pages: int) -> None:
        """Look at the disk again: block past the flood stage, lift at the high watermark."""
        st = os.statvfs(self.directory)
        missing = 0 if self.reserve.exists() else self.policy.reserve_bytes
        usage = self.usage = DiskUsage(st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize, free_pages, missing)
        self._checked = self.clock()
        if not self.blocked and usage.free < self.policy.flood_stage.free_needed(usage.total):
            self.blocked = True
            log.warning("disk_flood_stage_exceeded", data_dir=str(self.directory), **usage.fields())
        elif self.blocked and usage.free > self.policy.high.free_needed(usage.total):
            self.blocked = False
            log.info("disk_flood_stage_released", data_dir=str(self.directory), **usage.fields())
        if not self.blocked:
            await self._restore_reserve(usage)

    def ran_out(self, exc: BaseException) -> None:
        """SQLite met a full disk: block at once, and give up the reserve so deletes have room."""
        if not self.blocked:
            log.warning("disk_full", data_dir=str(self.directory), error=str(exc))
        self.blocked = True
        self._checked = self.clock()
        self.release_reserve()

    def make_room(self) -> None:
        """Before a write that must go through while blocked (a delete): give up the reserve
        when the filesystem itself has less room left than the reserve would give."""
        want = self.policy.reserve_bytes
        if want and self.reserve.exists():
            st = os.statvfs(self.directory)
            if st.f_bavail * st.f_frsize < want:
                self.release_reserve()

    def release_reserve(self) -> bool:
        """Delete the reserve file; True if there was one to give up."""
        try:
            size = self.reserve.stat().st_size
            self.reserve.unlink()
        except FileNotFoundError:
            return False
        log.warning("disk_reserve_released", data_dir=str(self.directory), bytes=size)
        return size > 0

    async def _restore_reserve(self, usage: DiskUsage) -> None:
        """Make the reserve file again when it is missing and the filesystem has the room (it
        is already counted as used, so making it changes no decision)."""
        want = usage.missing_reserve
        if want == 0 or usage.available < want or self._restoring:
            return
        self._restoring = True
        try:
            await asyncio.to_thread(_allocate, self.reserve, want)
        except OSError as exc:
            log.warning("disk_reserve_not_made", data_dir=str(self.directory), error=str(exc))
        finally:
            self._restoring = False

    def no_space(self) -> NoSpaceError:
        """The one line start-up ends with when the database cannot be opened for lack of space."""
        try:
            st = os.statvfs(self.directory)
            free = f"{st.f_bavail * st.f_frsize} bytes free"
        except OSError:
            free = "unknown free space"
        return NoSpaceError(f"the disk of {self.directory} is full ({free}): free some space on it or use another "
                            "data directory")


def _allocate(path: Path, size: int) -> None:
    """Write ``size`` bytes of real blocks to ``path`` (a sparse file would reserve nothing)."""
    partial = path.with_suffix(".partial")
    try:
        with open(partial, "wb") as f:
            try:
                os.posix_fallocate(f.fileno(), 0, size)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # no fallocate here: write zeros
                    raise
                chunk = b"\0" * (1 << 20)
                for start in range(0, size, len(chunk)):
                    f.write(chunk[:size - start])
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def block_writes(ops: Iterable[Any]) -> None:
    """Fail each bulk action that would grow an index with the block (deletes go through),
    as Elasticsearch fails the items of a blocked index one by one."""
    for op in ops:
        if op.action != "delete" and op.error is None:
            op.error = FloodStageBlock([op.index or ""])
