"""Process-wide runtime shared by the server and its query workers: GC tuning, dying with
the parent process, and the data directory's lock."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import gc
import os
import signal
import sys
import time
from pathlib import Path

import orjson

_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
LOCK_FILE = "esquire.lock"
FORKSERVER_PARENT_ENV = "ESQUIRE_FORKSERVER_PARENT"  # the server's pid, for its forkserver to check


def tune_gc() -> None:
    """Bulk indexing and query pipelines allocate many short-lived containers; with the
    default thresholds the collector rescans long-lived start-up objects again and again.
    Freeze those, and let the youngest generation grow before collecting."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def die_with_parent(parent_pid: int) -> None:
    """End this process when ``parent_pid``, the process that started it, exits: in every
    state, stopped or deep in a C call included, since the kernel delivers the SIGKILL
    (Linux's ``PR_SET_PDEATHSIG``; elsewhere the callers' pipe EOF checks are all there is).
    A parent that exited before the call has handed this process to another already: exit
    at once. Note the signal follows the parent *thread*: start children from a thread that
    lives as long as the parent process does."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        os._exit(1)


class DataDirInUse(Exception):
    """Another live process holds the data directory's lock; the message names it."""


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/esquire.lock``, held from ``acquire`` to
    ``release`` (or the process's end: the kernel drops it with the process, so a
    ``kill -9`` leaves no stale lock). The file says who holds it: pid, start time and
    the address it serves."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self, address: str) -> None:
        """Take the lock, or raise ``DataDirInUse`` at once naming the holder."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            raise DataDirInUse(f"data directory {self.data_dir} is in use by {self._holder()}") from None
        holder = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                  "address": address}
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, orjson.dumps(holder) + b"\n", 0)
        except OSError as exc:  # the lock holds without its note; a full disk is reported by the store
            if exc.errno != errno.ENOSPC:
                os.close(fd)
                raise
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops the lock; the file stays, so no one races its re-creation
            self._fd = None

    def _holder(self) -> str:
        try:
            holder = orjson.loads(self.path.read_bytes())
            return f"process {holder['pid']} (serving {holder['address']}, since {holder['started']})"
        except (OSError, ValueError, KeyError, TypeError):  # the holder is writing it right now
            return "another process"
