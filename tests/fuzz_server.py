"""The fuzz suite's server: a real ``serve`` process, killed with its workers when it hangs,
and raw HTTP/1.1 to it."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from multidict import CIMultiDict

from conftest import ROOT, free_port
from fuzz_values import MAX_BODY_BYTES

State = dict[str, tuple[Any, int]]  # index name -> (mapping, document count)


# The server dies with the test process (PR_SET_PDEATHSIG on Linux), so an interrupted run
# leaves no server behind; its process group lets a hung one be killed with its workers.
_BOOT = ("import signal, sys\n"
         "if sys.platform == 'linux':\n"
         "    import ctypes; ctypes.CDLL(None).prctl(1, signal.SIGKILL)\n"
         "from service.__main__ import main; sys.exit(main(sys.argv[1:]))")


class FuzzServer:
    """A ``python -m service serve`` process in a process group of its own, so a hung one
    is killed with its query workers."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log = root / "server.log"
        self.baseline: State | None = None  # every index's state once built, the same on every start

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, fresh: bool = False) -> None:
        self.stop()
        if fresh:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        self.port = free_port()
        env = {**os.environ, "ESQUIRE_MAX_BODY_BYTES": str(MAX_BODY_BYTES), "ESQUIRE_SQLITE_SYNCHRONOUS": "normal",
               "ESQUIRE_LOG_LEVEL": "warning"}
        args = ["-c", _BOOT, "serve", "--port", str(self.port), "--data-dir", str(self.data_dir),
                "--log-format", "json"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=log, stderr=log, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + 30
        while not self._listening():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"fuzz server did not start: {self.log.read_text()[-3000:]}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def log_offset(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int, limit: int = 4000) -> str:
        """The warnings and errors the server logged since ``offset``, tracebacks included."""
        with open(self.log, "rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
        kept = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                kept.append(line)
                continue
            if event.get("level") in ("warning", "error", "critical"):
                fields = {k: v for k, v in event.items() if k not in ("event", "exception", "timestamp", "level")}
                kept.append(f"{event.get('event')} {fields} {event.get('exception', '')}".strip())
        text = "\n".join(kept)
        return text if len(text) <= limit else "..." + text[-limit:]


async def http_exchange(port: int, method: str, target: str, headers: tuple[tuple[str, str | None], ...],
                        body: bytes) -> tuple[int, CIMultiDict[str], bytes]:
    """One HTTP/1.1 request, written byte for byte on a connection of its own (``Connection:
    close``), and its answer (status, headers, body). No HTTP client here: one would check
    or add headers, and aiohttp's resends an idempotent request once when the connection
    drops, which would hide what the first one did."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers if value is not None]
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        writer.write("\r\n".join(lines).encode() + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    if not raw:
        raise ConnectionError("the server closed the connection without an answer")
    head, _, rest = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer_headers: CIMultiDict[str] = CIMultiDict(line.split(": ", 1) for line in header_lines if ": " in line)
    if answer_headers.get("Transfer-Encoding") == "chunked":
        rest = _dechunk(rest)
    elif "Content-Length" in answer_headers and method != "HEAD":
        rest = rest[:int(answer_headers["Content-Length"])]
    return int(status_line.split()[1]), answer_headers, rest


def _dechunk(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while True:
        size_end = data.index(b"\r\n", pos)
        size = int(data[pos:size_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out)
        out += data[size_end + 2:size_end + 2 + size]
        pos = size_end + 2 + size + 2
