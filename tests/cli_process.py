"""The ``esquire`` command line as a user runs it, for the CLI tests: a subprocess
(``python -m service``), plain or with its stderr on a pseudo-terminal (so it draws its
progress bar, whose frames are read back as the terminal got them); and an index of events
every language can query. Blocking: a test calls these through ``asyncio.to_thread`` so its
server keeps answering."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from elasticsearch import AsyncElasticsearch

from conftest import ROOT

EVENTS_MAPPING = {"properties": {"@timestamp": {"type": "date"}, "event": {"properties": {
    "category": {"type": "keyword"}}}, "host": {"properties": {"name": {"type": "keyword"}}}, "bytes": {"type": "long"}}}
DAY = ("--from", "2024-05-01T00:00:00Z", "--to", "2024-05-02T00:00:00Z")  # every event of ``load_events``


def event(i: int) -> dict[str, Any]:
    """The i-th event: one a second from 2024-05-01T00:00:00Z, on five hosts."""
    return {"@timestamp": 1714521600000 + i * 1000, "event": {"category": "process"}, "host": {"name": f"h{i % 5}"},
            "bytes": i}


async def load_events(es: AsyncElasticsearch, n: int = 20000, index: str = "events") -> None:
    await es.indices.create(index=index, mappings=EVENTS_MAPPING)
    for first in range(0, n, 5000):  # bodies the client sends without a warning of their size
        ops: list[Any] = []
        for i in range(first, min(first + 5000, n)):
            ops += [{"index": {}}, event(i)]
        resp = await es.bulk(index=index, operations=ops, refresh=True)
        assert not resp["errors"]


# This tree's package wherever the command runs (an export writes into its current directory).
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


def esquire(*args: str, stdin: bytes | None = None, cwd: Path = ROOT,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``esquire ARGS`` run to its end: its status, stdout and stderr as text."""
    feed: dict[str, Any] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    done = subprocess.run([sys.executable, "-m", "service", *args], cwd=cwd, env=ENV, capture_output=True,
                          timeout=timeout, **feed)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def _interruptible() -> None:
    """In the command's process, before it starts: SIGINT at its default, as a terminal's
    command has it. A suite started in the background by a non-interactive shell (``cmd &``,
    as CI may) inherits SIGINT ignored, and Python keeps an ignored SIGINT ignored, so the
    Ctrl-C the tests send would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class InTerminal:
    """``esquire ARGS`` with its stderr on a pseudo-terminal and stdout on a pipe, both read
    as they come by threads of their own."""

    def __init__(self, *args: str, cwd: Path = ROOT) -> None:
        master, slave = pty.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "service", *args], cwd=cwd, env=ENV,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                                     preexec_fn=_interruptible)
        os.close(slave)
        self.master = master
        self.tty = bytearray()
        self.out = b""
        self.readers = [threading.Thread(target=self._read_tty, daemon=True),
                        threading.Thread(target=self._read_out, daemon=True)]
        for reader in self.readers:
            reader.start()

    def _read_tty(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the process is gone and the terminal with it
                return
            if not chunk:
                return
            self.tty += chunk

    def _read_out(self) -> None:
        assert self.proc.stdout is not None
        self.out = self.proc.stdout.read()

    @property
    def frames(self) -> list[str]:
        """What the terminal got, cut at each carriage return (a redraw); the terminal's
        ``\\r\\n`` line ends read as ``\\n``."""
        return bytes(self.tty).decode(errors="replace").replace("\r\n", "\n").split("\r")

    def wait_for(self, seen: Callable[[list[str]], bool], timeout: float = 60) -> None:
        """Until ``seen(frames)``; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        while not seen(self.frames):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never seen (status {self.proc.poll()}): {self.frames!r}")
            time.sleep(0.02)

    def interrupt(self) -> None:
        """Ctrl-C, as the terminal sends it: SIGINT."""
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """The status, stdout, and the terminal's text (line ends as ``\\n``)."""
        status = self.proc.wait(timeout)
        for reader in self.readers:
            reader.join(10)
        os.close(self.master)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        return status, self.out.decode(), "\r".join(self.frames)
