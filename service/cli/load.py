"""Load documents from files (or stdin, -) into an index of a running service, by _bulk.

Each input is NDJSON (one JSON object a line), a JSON array of objects, or CSV (a header row
naming the fields, then a document a row; an empty cell is no value); gzipped or not, told by
its first bytes, not its name. --format chooses when the content should not: by default a
first "[" is a JSON array, a first "{" NDJSON, anything else CSV. CSV values are sent as the
strings they are: the index's mapping decides what they become (a long field takes "12" as 12),
as Elasticsearch would.

Documents go by batches of --batch (5000) to POST /<index>/_bulk; the index is refreshed at
the end, so a query sees them at once. With --id-field F, a document's _id is its value of F
(a dotted path reaches into objects): loading the same input again replaces those documents
instead of adding copies, so a re-run is idempotent. Without it, the service gives each an id.

--resume CHECKPOINT makes a load resumable: after each batch the service acknowledged, where
the load stands is written to CHECKPOINT; a load stopped by Ctrl-C, a failure or a crash, run
again with the same --resume, skips what was acknowledged (the inputs are read again up to
there, not sent) and goes on; a finished load removes it. It is a file you name, rather than
one put beside the input, because an input may be stdin or in a directory not yours to write,
and with --id-field a plain re-run is idempotent anyway. A batch in flight when the load
stopped is sent again: without --id-field its documents may then be there twice.

A service too busy for a batch (a 429 or 503 answer, or documents refused with 429, as a disk
past its flood stage refuses them) is asked again after a pause, up to --max-retries times:
the whole batch when the request was refused, only the refused documents otherwise. What is
still refused after the last retry counts as failed.

While it runs, a progress bar on stderr (when stderr is a terminal) shows the bytes read of
the inputs' total (read of the files as they are on disk, compressed or not), the documents
sent and their rate. At the end one line says how many documents were loaded and how many
failed, with the first failures (which input, which line or element, and why). The exit
status is 0 when every document was loaded, 1 when some failed or the load could not go on,
130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import io
import json
import os
import signal
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator, TextIO

import orjson

from ..client import INTERRUPTED, ClientError, ProgressBar, Service, add_service_arguments
from ..query.fieldpath import MISSING, field_value

HELP = "load NDJSON, JSON or CSV documents (gzipped or not) into an index, with a progress bar"
EPILOG = """examples:
  esquire load --index logs events.ndjson.gz more.json
  esquire load --index hosts --id-field host.name hosts.csv
  zcat big.ndjson.gz | esquire load --index logs --id-field event.id --resume big.checkpoint -
  esquire load --index logs --batch 1000 --url http://elastic:secret@127.0.0.1:9200 events.ndjson
"""
FORMATS = ("auto", "ndjson", "json", "csv")
CHUNK = 1 << 20  # bytes, or characters, read at a time
SHOWN_FAILURES = 5  # failures the summary quotes
BUSY = (429, 503)  # answers that ask to be asked again later
BACKOFF_S = 0.5  # the first pause before a retry; doubled after each
MAX_BACKOFF_S = 30.0  # the longest pause, whatever Retry-After asks
MAX_RETRIES = 5  # --max-retries' default


class LoadError(Exception):
    """An input cannot be read on (a broken JSON array, a missing file)."""


def add_arguments(load: argparse.ArgumentParser) -> None:
    load.epilog = EPILOG
    load.add_argument("files", nargs="+", metavar="FILE", help="an input file, or - for stdin")
    load.add_argument("--index", required=True, help="the index to load into (created on the first document if "
                      "it does not exist, its fields mapped as they come)")
    load.add_argument("--id-field", metavar="FIELD", help="each document's _id is its value of FIELD: a re-run "
                      "replaces rather than adds")
    load.add_argument("--batch", type=int, default=5000, metavar="N", help="documents per _bulk request "
                      "(default 5000)")
    load.add_argument("--format", choices=FORMATS, default="auto", help="the inputs' format (default auto: by "
                      "their first character)")
    load.add_argument("--resume", type=Path, metavar="CHECKPOINT", help="keep where the load stands in "
                      "CHECKPOINT, and start after it when it exists")
    load.add_argument("--max-retries", type=int, default=MAX_RETRIES, metavar="N",
                      help="times a batch the service is too busy for (429, 503) is sent again, after pauses of "
                           "0.5 s doubling, or as its Retry-After asks (default 5; 0: never)")
    add_service_arguments(load)
    load.add_argument("--no-progress", action="store_true", help="no progress bar (the default when stderr "
                      "is not a terminal)")


# --- reading --------------------------------------------------------------------------------

class _Counted(io.RawIOBase):
    """A binary stream that counts the bytes read from it: the progress, in the input's own
    (maybe compressed) bytes."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.raw.read(len(buffer))
        buffer[:len(data)] = data
        self.count += len(data)
        return len(data)


@dataclass
class Input:
    """One input: its name, its size on disk (None for stdin or a pipe), and once opened its
    bytes, decompressed when they start as gzip does."""

    name: str
    size: int | None
    counted: _Counted | None = None

    @classmethod
    def of(cls, name: str) -> Input:
        if name == "-":
            return cls("-", None)
        try:
            stat = os.stat(name)
        except OSError as exc:
            raise LoadError(f"{name}: {exc.strerror}") from None
        return cls(name, stat.st_size if Path(name).is_file() else None)

    def open(self) -> IO[bytes]:
        raw = sys.stdin.buffer if self.name == "-" else open(self.name, "rb")
        self.counted = _Counted(raw)
        stream: IO[bytes] = io.BufferedReader(self.counted, CHUNK)
        if stream.peek(2)[:2] == b"\x1f\x8b":
            stream = io.BufferedReader(gzip.GzipFile(fileobj=stream, mode="rb"), CHUNK)  # type: ignore[arg-type]
        return stream

    @property
    def read_bytes(self) -> int:
        return self.counted.count if self.counted else 0


# A document, or why what stood in its place is not one; and where it is in its input.
Item = tuple[str, "dict[str, Any] | str"]


def documents(stream: IO[bytes], name: str, fmt: str) -> Iterator[Item]:
    """The input's documents in order, each with where it is (``name:line`` or
    ``name:element``); a line or element that is no JSON object is a failure in its place."""
    if fmt == "auto":
        head = stream.peek(CHUNK).lstrip()  # type: ignore[attr-defined]
        fmt = "json" if head[:1] == b"[" else "ndjson" if head[:1] in (b"{", b"") else "csv"
    if fmt == "ndjson":
        return _ndjson(stream, name)
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    return _array(text, name) if fmt == "json" else _csv(text, name)


def _ndjson(stream: IO[bytes], name: str) -> Iterator[Item]:
    for number, line in enumerate(stream, 1):
        if not line.strip():
            continue
        try:
            doc = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield f"{name}:{number}", f"not JSON: {exc}"
            continue
        yield f"{name}:{number}", doc if isinstance(doc, dict) else "not a JSON object"


def _csv(text: TextIO, name: str) -> Iterator[Item]:
    reader = csv.DictReader(text)
    for row in reader:
        yield f"{name}:{reader.line_num}", {k: v for k, v in row.items() if k and isinstance(v, str) and v != ""}


def _array(text: TextIO, name: str) -> Iterator[Item]:
    """The elements of a JSON array, decoded one at a time from a window of the text, so a
    file larger than memory streams. A broken array cannot be read past: ``LoadError``."""
    decoder = json.JSONDecoder()
    buffer, pos, eof, number = "", 0, False, 0

    def fill() -> bool:
        nonlocal buffer, pos, eof
        more = "" if eof else text.read(CHUNK)
        eof = not more
        buffer, pos = buffer[pos:] + more, 0
        return bool(more)

    def next_char() -> str:
        nonlocal pos
        while True:
            while pos < len(buffer) and buffer[pos] in " \t\r\n":
                pos += 1
            if pos < len(buffer) or not fill():
                return buffer[pos] if pos < len(buffer) else ""

    if next_char() != "[":
        raise LoadError(f"{name}: not a JSON array")
    pos += 1
    while (char := next_char()) != "]":
        if number:
            if char != ",":
                raise LoadError(f"{name}: element {number}: expected , or ] after it")
            pos += 1
            next_char()
        while True:
            try:
                value, end = decoder.raw_decode(buffer, pos)
            except json.JSONDecodeError as exc:
                if fill():  # maybe cut by the window's end: read on and decode again
                    continue
                raise LoadError(f"{name}: element {number + 1}: {exc.msg}") from None
            if end < len(buffer) or eof or not fill():  # a number at the window's end may go on
                break
        pos = end
        number += 1
        yield f"{name}:{number}", value if isinstance(value, dict) else "not a JSON object"
    pos += 1
    if next_char():
        raise LoadError(f"{name}: text after the array's end")


# --- the checkpoint -------------------------------------------------------------------------

@dataclass
class Checkpoint:
    """Where a load stands: in which input (``file``), how many of its items (``items``) were
    acknowledged, and the counts so far. Written whole to a temporary file then renamed over
    the old, so a crash leaves the old one or the new one, never half of one."""

    path: Path | None
    index: str
    inputs: list[dict[str, Any]]
    file: int = 0
    items: int = 0
    loaded: int = 0
    failed: int = 0

    @classmethod
    def start(cls, path: Path | None, index: str, inputs: list[Input]) -> Checkpoint:
        names = [{"name": i.name, "size": i.size} for i in inputs]
        fresh = cls(path, index, names)
        if path is None or not path.exists():
            return fresh
        try:
            saved = orjson.loads(path.read_bytes())
            found = cls(path, saved["index"], saved["inputs"], saved["file"], saved["items"], saved["loaded"],
                        saved["failed"])
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise LoadError(f"{path}: not a checkpoint of esquire load: {exc}") from None
        if (found.index, found.inputs) != (index, names):
            raise LoadError(f"{path}: the checkpoint of another load (index {found.index}, inputs "
                            f"{', '.join(i['name'] for i in found.inputs)}); remove it to start again")
        return found

    def save(self) -> None:
        if self.path is None:
            return
        state = {"index": self.index, "inputs": self.inputs, "file": self.file, "items": self.items,
                 "loaded": self.loaded, "failed": self.failed}
        temporary = self.path.with_name(f".{self.path.name}.tmp")
        temporary.write_bytes(orjson.dumps(state))
        os.replace(temporary, self.path)

    def remove(self) -> None:
        if self.path is not None:
            self.path.unlink(missing_ok=True)


# --- the load -------------------------------------------------------------------------------

@contextlib.contextmanager
def _uninterrupted() -> Iterator[None]:
    """Ctrl-C held back until the block is done (it is delivered at its end)."""
    held = {signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


@dataclass
class Load:
    """A load under way: the batch being gathered, the counts, the first failures."""

    service: Service
    index: str
    id_field: str | None
    checkpoint: Checkpoint
    bar: ProgressBar | None
    inputs: list[Input]
    ops: list[bytes] = field(default_factory=list)
    wheres: list[str] = field(default_factory=list)  # the batch's documents' places, for their failures
    refused: list[tuple[str, str]] = field(default_factory=list)  # the batch's items that are no documents
    failures: list[str] = field(default_factory=list)
    pending: int = 0  # items of the current input in the batch (refused ones included)
    earlier: int = 0  # documents loaded before a resumed load
    max_retries: int = MAX_RETRIES

    def add(self, where: str, doc: dict[str, Any] | str) -> None:
        """One item of the current input: a document into the batch, or a failure counted."""
        self.pending += 1
        action: dict[str, Any] = {}
        if isinstance(doc, dict) and self.id_field is not None:
            value = field_value(doc, self.id_field)
            if isinstance(value, str) or (isinstance(value, (int, float)) and not isinstance(value, bool)):
                action["_id"] = str(value)
            else:
                doc = f"no {self.id_field} to take its _id from" if value is MISSING else \
                    f"{self.id_field} is not a string or number: {orjson.dumps(value).decode()}"
        if isinstance(doc, str):  # counted with its batch: only an acknowledged batch is in the checkpoint
            self.refused.append((where, doc))
            return
        self.ops += [orjson.dumps({"index": action}), orjson.dumps(doc)]
        self.wheres.append(where)

    def _failed(self, where: str, why: str) -> None:
        self.checkpoint.failed += 1
        if len(self.failures) < SHOWN_FAILURES:
            self.failures.append(f"{where}: {why}")

    def flush(self) -> None:
        """Send the batch; once acknowledged, count its items and save the checkpoint."""
        results = self._send()
        with _uninterrupted():  # the counts in memory (the summary) and on disk (the resume) agree
            for where, why in self.refused:
                self._failed(where, why)
            for where, result in zip(self.wheres, results):
                error = result.get("error")
                if error is None:
                    self.checkpoint.loaded += 1
                else:
                    self._failed(where, f"{error.get('type')}: {error.get('reason')}" if isinstance(error, dict)
                                 else str(error))
            self.checkpoint.items += self.pending
            self.checkpoint.save()
        self.ops, self.wheres, self.refused, self.pending = [], [], [], 0
        self.draw()

    def _send(self) -> list[dict[str, Any]]:
        """Each document's bulk result, in order. A busy service (a 429 or 503 answer, or
        items refused with 429, such as a disk past its flood stage) is asked again after a
        pause, doubling from ``BACKOFF_S`` or as long as its ``Retry-After`` says (capped),
        up to ``max_retries`` times: the whole batch for a refused request, only the refused
        items otherwise, as Elasticsearch's own bulk helpers do."""
        results: list[dict[str, Any]] = [{} for _ in self.wheres]
        waiting = list(range(len(self.wheres)))
        if not waiting:  # a batch of refused items only: nothing to send
            return results
        path = f"/{urllib.parse.quote(self.index, safe='')}/_bulk"
        for attempt in range(self.max_retries + 1):
            last = attempt == self.max_retries
            body = b"".join(self.ops[2 * i] + b"\n" + self.ops[2 * i + 1] + b"\n" for i in waiting)
            try:
                with self.service.open("POST", path, data=body, content_type="application/x-ndjson") as response:
                    items = orjson.loads(response.read())["items"]
            except ClientError as exc:
                if exc.status not in BUSY or last:
                    raise
                self._pause(attempt, exc.retry_after, f"the service answered {exc.status}: {exc}",
                            f"the batch of {len(waiting):,}")
                continue
            refused = []
            for i, item in zip(waiting, items):
                results[i] = next(iter(item.values()))
                if results[i].get("status") == 429 and not last:
                    refused.append(i)
            if not refused:
                break
            error = results[refused[0]].get("error")
            why = error.get("type") if isinstance(error, dict) else error
            self._pause(attempt, None, f"{len(refused):,} of {len(waiting):,} documents refused with 429 ({why})",
                        "those")
            waiting = refused
        return results

    def _pause(self, attempt: int, asked_s: float | None, why: str, what: str) -> None:
        wait_s = min(asked_s if asked_s is not None else BACKOFF_S * 2 ** attempt, MAX_BACKOFF_S)
        line = f"esquire load: {why}; {what} sent again in {wait_s:.1f} s (retry {attempt + 1} of {self.max_retries})"
        if self.bar is not None:
            self.bar.note(line)
        else:
            print(line, file=sys.stderr)
        time.sleep(wait_s)

    def draw(self) -> None:
        if self.bar is None:
            return
        done = sum(i.read_bytes for i in self.inputs)
        sizes = [i.size for i in self.inputs]
        total = sum(s for s in sizes if s is not None) if None not in sizes else 0
        sent = self.checkpoint.loaded + self.checkpoint.failed
        of = f"/{total / 1e6:,.1f}" if total else ""
        self.bar.draw(done, total, f"{done / 1e6:,.1f}{of} MB {sent:>11,} docs {self.bar.rate(sent):>9,.0f} docs/s")


def run_load(load: Load, fmt: str, batch: int) -> None:
    """Every input after the checkpoint's place, batch by batch."""
    checkpoint = load.checkpoint
    for number, source in enumerate(load.inputs):
        if number < checkpoint.file:
            continue
        if number > checkpoint.file:
            checkpoint.file, checkpoint.items = number, 0
        skip = checkpoint.items
        with source.open() as stream:
            for where, doc in documents(stream, source.name, fmt):
                if skip:  # acknowledged before: read past, not sent
                    skip -= 1
                    continue
                load.add(where, doc)
                if len(load.wheres) >= batch:
                    load.flush()
            load.flush()


def _summary(load: Load, seconds: float) -> str:
    c = load.checkpoint
    now = c.loaded - load.earlier
    line = (f"loaded {c.loaded:,} documents into {load.index}"
            f"{f' ({load.earlier:,} before this run)' if load.earlier else ''} in {seconds:.1f} s "
            f"({now / max(seconds, 1e-9):,.0f} docs/s)")
    if c.failed:
        line += f"; {c.failed:,} failed" + "".join(f"\n  {failure}" for failure in load.failures)
    return line


def run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        print("esquire load: --batch must be at least 1", file=sys.stderr)
        return 2
    if args.max_retries < 0:
        print("esquire load: --max-retries must be at least 0", file=sys.stderr)
        return 2
    if args.files.count("-") > 1:
        print("esquire load: stdin (-) can be read once", file=sys.stderr)
        return 2
    started = time.perf_counter()
    try:
        inputs = [Input.of(name) for name in args.files]
        checkpoint = Checkpoint.start(args.resume, args.index, inputs)
    except LoadError as exc:
        print(f"esquire load: {exc}", file=sys.stderr)
        return 1
    bar = ProgressBar(sys.stderr, "load") if not args.no_progress and sys.stderr.isatty() else None
    load = Load(Service.of(args), args.index, args.id_field, checkpoint, bar, inputs, earlier=checkpoint.loaded,
                max_retries=args.max_retries)
    status, stopped = 0, None
    try:
        run_load(load, args.format, args.batch)
        load.service.call("POST", f"/{urllib.parse.quote(args.index, safe='')}/_refresh")
    except KeyboardInterrupt:
        status, stopped = INTERRUPTED, "interrupted"
    except (ClientError, LoadError, OSError, UnicodeDecodeError, csv.Error) as exc:
        status, stopped = 1, str(exc)
    finally:
        if bar is not None:
            bar.close()
    print(_summary(load, time.perf_counter() - started), file=sys.stderr)
    if stopped is None:
        checkpoint.remove()
        return 1 if checkpoint.failed else 0
    where = f"{inputs[checkpoint.file].name} after item {checkpoint.items:,}"
    again = (f"run again with --resume {args.resume} to go on" if args.resume
             else "run again with --resume CHECKPOINT to be able to go on from where a load stops")
    print(f"esquire load: {stopped}: stopped in {where}; {again}", file=sys.stderr)
    return status
