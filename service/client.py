"""The command line's side of the wire: ``Service`` (HTTP to a running service, with its
credentials), ``ProgressBar``, and ``run_search``, the one loop every query language goes
through: submit as a background search, draw its progress from the task's status while it
runs, stop it on Ctrl-C (keeping the partial result where the API offers one), then write the
result as a table, csv, tsv, json or xlsx.

Each language is a ``Search``: how it is submitted, polled, drawn, interrupted, read and
forgotten; ``EsqlSearch``, ``EqlSearch`` and ``SmlSearch`` are the three the service speaks.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO

import orjson

from .api.formats import Column, text_chunks
from .api.xlsx import MAX_ROWS, SheetWriter
from .core.searches import decode_id
from .query.fieldpath import Columns, event_fields

FORMATS = ("txt", "csv", "tsv", "json", "xlsx")
DEFAULT_URL = "http://127.0.0.1:9200"
SML_BASE = "/_sme/async_requests"
SML_TERMINAL = ("COMPLETED", "STOPPED", "FAILED")
SML_PAGE = 10_000  # rows per response page of a background task
INTERRUPTED = 130  # the exit status after Ctrl-C, as a shell reports SIGINT


class ClientError(Exception):
    """The service answered with an error, or could not be reached; ``retry_after``, the
    seconds a busy service (429, 503) asked to wait, when it said."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def retry_after(value: str | None) -> float | None:
    """A ``Retry-After`` header's delay in seconds (the HTTP-date form is not used by
    Elasticsearch nor by the proxies in front of it, and is taken as absent)."""
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < float("inf") else None


class ProgressBar:
    """``label [#####.....] done/total rate/s`` on one terminal line, redrawn in place; with
    ``percent``, the share done instead of the counts; or the caller's own ``text``."""

    def __init__(self, out: TextIO, label: str, width: int = 30, percent: bool = False) -> None:
        self.out = out
        self.label = label
        self.width = width
        self.percent = percent
        self.started = time.perf_counter()
        self.drawn = False
        self.done: float = 0
        self.total: float = 0
        self.text: str | None = None
        self.shown = 0  # the length of the line drawn last, to blank what a shorter one leaves

    def rate(self, done: float) -> float:
        """``done`` per second since the bar was made."""
        return done / max(time.perf_counter() - self.started, 1e-9)

    def draw(self, done: float, total: float, text: str | None = None) -> None:
        self.done, self.total, self.text = done, total, text
        filled = int(self.width * min(done / total, 1)) if total else 0
        if text is None:
            text = (f"{done / total if total else 0:7.1%}" if self.percent
                    else f"{int(done):>11,}/{int(total):,} {self.rate(done):>10,.0f}/s")
        line = f"{self.label:<8} [{'#' * filled}{'.' * (self.width - filled)}] {text}"
        self.out.write(f"\r{line}{' ' * (self.shown - len(line))}")
        self.out.flush()
        self.shown = len(line)
        self.drawn = True

    def note(self, text: str) -> None:
        """A line of its own above the bar, which is drawn again below it."""
        self.out.write(f"\r{text}{' ' * (self.shown - len(text))}\n")
        self.shown = 0
        if self.drawn:
            self.draw(self.done, self.total, self.text)
        else:
            self.out.flush()

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

    @classmethod
    def of(cls, args: argparse.Namespace) -> Service:
        """The service ``add_service_arguments`` named, with the API key of ``$ESQUIRE_API_KEY``."""
        return cls(args.url, api_key=os.environ.get("ESQUIRE_API_KEY"))

    def open(self, method: str, path: str, body: Any = None, *, data: bytes | None = None,
             content_type: str = "application/json", **params: str) -> Any:
        """The response of a successful request, to read (and close) as a stream; a JSON
        ``body``, or raw ``data``. ``ClientError`` otherwise."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        if body is not None:
            data = orjson.dumps(body)
        headers = {"Content-Type": content_type}
        if self.authorization:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(f"{self.url}{path}{query}", data=data, method=method, headers=headers)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)
        except urllib.error.HTTPError as exc:
            raise ClientError(_reason(exc.read()) or f"HTTP {exc.code}", exc.code,
                              retry_after(exc.headers.get("Retry-After"))) from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach {self.url}: {getattr(exc, 'reason', exc)}") from None

    def call(self, method: str, path: str, body: Any = None, **params: str) -> tuple[bytes, Any]:
        """The body and headers of a successful answer; ``ClientError`` otherwise."""
        with self.open(method, path, body, **params) as response:
            try:
                return response.read(), response.headers
            except OSError as exc:
                raise ClientError(f"lost {self.url}: {exc}") from None

    def json(self, method: str, path: str, body: Any = None, **params: str) -> Any:
        return orjson.loads(self.call(method, path, body, **params)[0])


def add_service_arguments(parser: argparse.ArgumentParser) -> None:
    """``--url``, as every command that talks to a running service takes it."""
    parser.add_argument("--url", default=os.environ.get("ESQUIRE_URL", DEFAULT_URL),
                        help=f"the service (default $ESQUIRE_URL or {DEFAULT_URL}); with security on, "
                             "http://user:password@host:port or an API key in $ESQUIRE_API_KEY")


def _reason(body: bytes) -> str:
    try:
        error = orjson.loads(body)["error"]
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return body.decode(errors="replace").strip()
    return error.get("reason") or error.get("type") if isinstance(error, dict) else str(error)


# --- results ----------------------------------------------------------------------------------

@dataclass
class Result:
    """A query's answer: a table (``columns``, ``rows``) for txt, csv, tsv and xlsx, and the
    service's own JSON (``document``) for json; what it warned of; ``error`` when the query
    failed after it started (its partial rows are still shown)."""

    columns: list[str]
    rows: list[list[Any]]
    document: Any
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


def _flat(value: Any) -> Any:
    """A cell value for a sheet: numbers, strings and booleans as they are, arrays and objects
    as their compact JSON text."""
    return orjson.dumps(value).decode() if isinstance(value, (list, dict)) else value


def write_result(result: Result, fmt: str, out: TextIO, output: Path | None) -> list[str]:
    """``result`` in format ``fmt`` on ``out``, or in the file ``output`` (xlsx needs one).
    Returns the warnings of what a format could not hold."""
    if fmt == "xlsx":
        if output is None:
            raise ClientError("xlsx is written to a file: give --output FILE")
        rows = result.rows[:MAX_ROWS - 1]
        with open(output, "wb") as book:
            sheet = SheetWriter(book, "results", output.parent, len(result.columns))
            try:
                sheet.write_rows([result.columns])
                for first in range(0, len(rows), SML_PAGE):
                    sheet.write_rows([[_flat(v) for v in row] for row in rows[first:first + SML_PAGE]])
            except BaseException:
                sheet.discard()  # its rows' temporary file goes with it
                raise
            sheet.close()
        dropped = len(result.rows) - len(rows)
        return [f"{dropped} rows past Excel's last row dropped"] if dropped else []
    with (open(output, "w", encoding="utf-8", newline="") if output else _kept(out)) as text:
        if fmt == "json":
            text.write(orjson.dumps(result.document).decode() + "\n")
        else:
            rows = [[_flat(v) if isinstance(v, dict) else v for v in row] for row in result.rows]
            for chunk in text_chunks(fmt, [Column(name, "") for name in result.columns], rows):
                text.write(chunk)
    return []


class _kept:
    """``out`` as a context manager that leaves it open (stdout is not ours to close)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def __enter__(self) -> TextIO:
        return self.out

    def __exit__(self, *exc: object) -> None:
        self.out.flush()


# --- the three languages --------------------------------------------------------------------

class Search(Protocol):
    """One query on the service, in one language, run in the background."""

    label: str  # the progress bar's
    percent: bool  # its progress is a share (SML), not rows scanned of rows total
    running: bool

    def submit(self) -> None: ...

    def poll(self, wait_s: float) -> None:
        """Wait up to about ``wait_s`` for the query, then read whether it still runs."""

    def draw(self, bar: ProgressBar) -> None: ...

    def interrupt(self) -> str:
        """Ctrl-C: stop (or cancel) the query; what happened, for stderr."""

    def result(self) -> Result | None:
        """The answer, partial after a stop; None when there is none to show."""

    def discard(self) -> str | None:
        """Forget what the service keeps of the query; or say what it keeps, for stderr."""


def _ms(seconds: float) -> str:
    return f"{int(seconds * 1000)}ms"


def _draw_async(service: Service, bar: ProgressBar, search_id: str | None) -> None:
    """Rows scanned of rows total, from the task of an async search (``GET /_tasks/<id>``, the
    task id read from the search's id, as Elasticsearch encodes it)."""
    if search_id is None:
        return
    try:
        task = service.json("GET", f"/_tasks/{decode_id(search_id)[1]}")["task"]
    except ClientError:  # finished between two polls
        return
    status = task.get("status", {})
    bar.draw(status.get("rows_scanned", 0), status.get("rows_total", 0))


class EsqlSearch:
    """ES|QL through ``/_query/async``; Ctrl-C is ``/stop``: the rows read so far."""

    label, percent = "query", False

    def __init__(self, service: Service, text: str) -> None:
        self.service, self.text, self.running = service, text, True
        self.id: str | None = None

    def _answer(self, call: tuple[bytes, Any]) -> None:
        self.body, self.headers = call
        self.id = self.headers.get("X-Elasticsearch-Async-Id") or self.id
        self.running = self.headers.get("X-Elasticsearch-Async-Is-Running") == "?1"

    def submit(self) -> None:
        self._answer(self.service.call("POST", "/_query/async", {"query": self.text, "keep_alive": "1h",
                                                                 "wait_for_completion_timeout": "100ms"}))

    def poll(self, wait_s: float) -> None:
        self._answer(self.service.call("GET", f"/_query/async/{self.id}", wait_for_completion_timeout=_ms(wait_s)))

    def draw(self, bar: ProgressBar) -> None:
        _draw_async(self.service, bar, self.id)

    def interrupt(self) -> str:
        self._answer(self.service.call("POST", f"/_query/async/{self.id}/stop"))
        return "stopped: the result covers the rows read so far"

    def result(self) -> Result:
        document = orjson.loads(self.body)
        warnings = []
        for warning in self.headers.get_all("Warning") or ():
            text = re.match(r'^299 \S+ "(.*)"$', warning)
            warnings.append(text[1] if text else warning)
        return Result([c["name"] for c in document["columns"]], document["values"], document, warnings)

    def discard(self) -> str | None:
        if self.id:
            self.service.call("DELETE", f"/_query/async/{self.id}")
        return None


class EqlSearch:
    """EQL through the async ``/<index>/_eql/search`` (kept on completion, read back by id).
    EQL has no stop with partial results, in Elasticsearch or here: Ctrl-C deletes the search,
    which cancels it, as ``DELETE /_eql/search/<id>`` does there."""

    label, percent = "eql", False

    def __init__(self, service: Service, index: str, text: str, size: int | None = None) -> None:
        self.service, self.index, self.text, self.size, self.running = service, index, text, size, True
        self.id: str | None = None

    def _answer(self, document: dict[str, Any]) -> None:
        self.document = document
        self.id = document.get("id") or self.id
        self.running = bool(document.get("is_running"))

    def submit(self) -> None:
        body: dict[str, Any] = {"query": self.text}
        if self.size is not None:
            body["size"] = self.size
        self._answer(self.service.json("POST", f"/{urllib.parse.quote(self.index, safe=',*')}/_eql/search", body,
                                       wait_for_completion_timeout="100ms", keep_on_completion="true",
                                       keep_alive="1h"))

    def poll(self, wait_s: float) -> None:
        self._answer(self.service.json("GET", f"/_eql/search/{self.id}", wait_for_completion_timeout=_ms(wait_s)))

    def draw(self, bar: ProgressBar) -> None:
        _draw_async(self.service, bar, self.id)

    def interrupt(self) -> str:
        self.discard()
        self.id = None
        self.document = None
        return "cancelled: an EQL search has no stop with partial results (as in Elasticsearch); it was deleted"

    def result(self) -> Result | None:
        if self.document is None:
            return None
        columns, rows = eql_table(self.document.get("hits", {}))
        return Result(columns, rows, self.document)

    def discard(self) -> str | None:
        if self.id:
            self.service.call("DELETE", f"/_eql/search/{self.id}")
        return None


def eql_table(hits: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """EQL hits as a table: a row per event (``_index``, ``_id``, then the fields of the
    events' ``_source`` in order of first appearance); for sequences and samples, each event
    after its group's number and join keys."""
    grouped = "events" not in hits
    groups = [(n, g.get("join_keys"), g.get("events", [])) for n, g in enumerate(hits.get("sequences", []))] \
        if grouped else [(None, None, hits.get("events", []))]
    fields = event_fields(e.get("_source") or {} for _, _, events in groups for e in events)
    values = Columns(fields).values
    rows = [[*((n, keys) if grouped else ()), e.get("_index"), e.get("_id"), *values(e.get("_source") or {})]
            for n, keys, events in groups for e in events]
    return [*(("sequence", "join_keys") if grouped else ()), "_index", "_id", *fields], rows


class SmlSearch:
    """SML as a background task (``/_sme/async_requests``): progress from its status, Ctrl-C
    is ``break/``, which stores the result over the data read so far."""

    label, percent = "sml", True

    def __init__(self, service: Service, text: str, start: str | None = None, end: str | None = None,
                 time_field: str | None = None, keep: bool = False) -> None:
        self.service, self.keep, self.running = service, keep, True
        self.body = {"query": text, **{k: v for k, v in (("dtStart", start), ("dtEnd", end),
                                                          ("dtFieldName", time_field)) if v is not None}}
        self.id: str | None = None
        self.status: dict[str, Any] = {}

    def submit(self) -> None:
        created = self.service.json("POST", f"{SML_BASE}/request", self.body)
        self.id = created["id"]
        self.running = created["status"] not in SML_TERMINAL

    def poll(self, wait_s: float) -> None:
        time.sleep(wait_s)  # the status has no wait of its own
        self.status = self.service.json("GET", f"{SML_BASE}/status/{self.id}")
        self.running = self.status["status"] not in SML_TERMINAL

    def draw(self, bar: ProgressBar) -> None:
        bar.draw(self.status.get("progress", 0), 1)

    def interrupt(self) -> str:
        try:
            self.service.call("POST", f"{SML_BASE}/break/{self.id}")
        except ClientError as exc:
            if exc.status != 409:  # 409: it finished meanwhile
                raise
        return "stopped: the result covers the events read so far"

    def result(self) -> Result:
        """Every stored row, page by page."""
        page = self.service.json("GET", f"{SML_BASE}/response/{self.id}", **{"from": "0", "to": str(SML_PAGE)})
        events = page["events"]
        while not page.get("preview") and len(events) < page["total"] and page["events"]:
            page = self.service.json("GET", f"{SML_BASE}/response/{self.id}",
                                     **{"from": str(len(events)), "to": str(len(events) + SML_PAGE)})
            events += page["events"]
        document = {**page, "from": 0, "to": len(events), "events": events}
        values = Columns(page["fields"]).values
        error = page.get("error")
        return Result(list(page["fields"]), [values(e) for e in events], document, list(page.get("warnings", [])),
                      error and (error.get("reason") or error.get("type")))

    def discard(self) -> str | None:
        if self.keep:
            return f"kept: background task {self.id} (esquire export {self.id} --format csv)"
        self.service.call("DELETE", f"{SML_BASE}/delete/{self.id}")
        return None


def run_search(search: Search, fmt: str, out: TextIO, err: TextIO, *, progress: bool, output: Path | None = None,
               poll_s: float = 0.25) -> int:
    """Run ``search``; write the result on ``out`` (or ``output``), warnings and progress on
    ``err``. Returns the exit status: 0; 1 when the query failed once started (what it stored
    is written); ``INTERRUPTED`` after Ctrl-C (the partial result written, where there is one)."""
    search.submit()
    bar = ProgressBar(err, search.label, percent=search.percent) if progress else None
    status, note = 0, None
    try:
        while search.running:
            if bar is not None:
                search.draw(bar)
            search.poll(poll_s)
    except KeyboardInterrupt:
        status = INTERRUPTED
        note = search.interrupt()
    finally:
        if bar is not None:
            bar.close(complete=status == 0)
    try:
        result = search.result()
    finally:
        kept = search.discard()
    for line in [*(f"warning: {w}" for w in (result.warnings if result else ())), note, kept]:
        if line:
            err.write(f"{line}\n")
    if result is None:
        return status
    for warning in write_result(result, fmt, out, output):
        err.write(f"warning: {warning}\n")
    if result.error:
        err.write(f"esquire: the query failed: {result.error}\n")
        return status or 1
    return status
