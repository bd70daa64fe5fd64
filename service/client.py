"""``esquire query``: run an ES|QL query on a running service, showing its progress.

The query is submitted to the async API; while it runs, the task's progress (rows scanned
of rows total) is drawn as a bar on stderr, and the result is printed on stdout in the
chosen format. Ctrl-C stops the query and prints what it found so far.
"""

from __future__ import annotations

import base64
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, TextIO

import orjson

from .core.searches import decode_id

FORMATS = ("txt", "csv", "tsv", "json")


class ClientError(Exception):
    """The service answered with an error, or could not be reached."""


class ProgressBar:
    """``label [#####.....] done/total rate/s`` on one terminal line, redrawn in place."""

    def __init__(self, out: TextIO, label: str, width: int = 30) -> None:
        self.out = out
        self.label = label
        self.width = width
        self.started = time.perf_counter()
        self.drawn = False
        self.total = 0

    def draw(self, done: int, total: int) -> None:
        self.total = total
        filled = int(self.width * done / total) if total else 0
        rate = done / max(time.perf_counter() - self.started, 1e-9)
        self.out.write(f"\r{self.label:<8} [{'#' * filled}{'.' * (self.width - filled)}] "
                       f"{done:>11,}/{total:,} {rate:>10,.0f}/s")
        self.out.flush()
        self.drawn = True

    def close(self, complete: bool = False) -> None:
        """End the line; ``complete`` first draws the bar full."""
        if complete and self.drawn:
            self.draw(self.total, self.total)
        if self.drawn:
            self.out.write("\n")
            self.out.flush()


class Service:
    """A running service. Credentials, for one with security on: ``user:password@`` in the URL
    (sent as Basic, the URL itself kept without them), or an encoded API key."""

    def __init__(self, url: str, timeout_s: float = 60.0, api_key: str | None = None) -> None:
        parts = urllib.parse.urlsplit(url)
        self.authorization = f"ApiKey {api_key}" if api_key else None
        if parts.username is not None:
            userinfo = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(userinfo.encode()).decode("ascii")
            parts = parts._replace(netloc=parts.netloc.rpartition("@")[2])
        self.url = urllib.parse.urlunsplit(parts).rstrip("/")
        self.timeout_s = timeout_s

    def call(self, method: str, path: str, body: dict[str, Any] | None = None,
             **params: str) -> tuple[bytes, Any]:
        """The body and headers of a successful answer; ``ClientError`` otherwise."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(f"{self.url}{path}{query}", data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return response.read(), response.headers
        except urllib.error.HTTPError as exc:
            raise ClientError(_reason(exc.read()) or f"HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None


def _reason(body: bytes) -> str:
    try:
        error = orjson.loads(body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body.decode(errors="replace").strip()
    return error.get("reason") or error.get("type") if isinstance(error, dict) else str(error)


def run_query(service: Service, text: str, fmt: str, out: TextIO, err: TextIO, *, progress: bool,
              poll_s: float = 0.25) -> int:
    """Run ``text``; print the result on ``out``, warnings and progress on ``err``. Returns
    the exit status: 0, or 130 when stopped by Ctrl-C (the partial result is printed)."""
    body, headers = service.call("POST", "/_query/async", {"query": text, "wait_for_completion_timeout": "100ms",
                                                          "keep_alive": "1h"}, format=fmt)
    search_id = headers.get("X-Elasticsearch-Async-Id")
    task_id = decode_id(search_id)[1] if search_id else None
    bar = ProgressBar(err, "query") if progress else None
    status = 0
    try:
        while headers.get("X-Elasticsearch-Async-Is-Running") == "?1":
            if bar is not None:
                _draw(service, bar, task_id)
            body, headers = service.call("GET", f"/_query/async/{search_id}", format=fmt,
                                         wait_for_completion_timeout=f"{int(poll_s * 1000)}ms")
    except KeyboardInterrupt:
        body, headers = service.call("POST", f"/_query/async/{search_id}/stop", format=fmt)
        status = 130
    finally:
        if bar is not None:
            bar.close(complete=status == 0)
    if search_id:
        service.call("DELETE", f"/_query/async/{search_id}")
    for warning in headers.get_all("Warning") or ():
        text = re.match(r'^299 \S+ "(.*)"$', warning)
        err.write(f"warning: {text[1] if text else warning}\n")
    if status:
        err.write("stopped: the result covers the rows read so far\n")
    out.write(body.decode())
    if fmt == "json":
        out.write("\n")
    return status


def _draw(service: Service, bar: ProgressBar, task_id: str | None) -> None:
    try:
        body, _ = service.call("GET", f"/_tasks/{task_id}")
    except ClientError:  # finished between two polls
        return
    status = orjson.loads(body)["task"].get("status", {})
    bar.draw(status.get("rows_scanned", 0), status.get("rows_total", 0))
