"""File exports for any API: result rows and their ordered field list as a JSON, CSV or XLSX
file, optionally zipped, sent as an attachment.

The rows come as batches of row objects in their JSON text (as a store keeps them), read and
written batch by batch into a file in a private temporary directory beside the database (never
the whole result in memory, and never a tmpfs ``/tmp`` that would hold it in RAM); the finished
file is then streamed to the client and removed. The whole export, reading the batches
included, runs on a worker thread of its own: the writers, csv and zlib are blocking, CPU-heavy
work that would otherwise stall every other request, and a hop to the event loop per batch
would cost more than the batch.

- json: a JSON array of the row objects, their stored text as it is (never decoded).
- csv: RFC 4180 (comma, CRLF, ``"``-quoting) by the csv module, no BOM; a header row of the
  fields; a missing value is an empty cell, an array or object its compact JSON text.
- xlsx: ``xlsx.SheetWriter`` (rows go to disk batch by batch, strings inline; why not
  XlsxWriter: see there); one sheet ``results``, a header row, numbers as numbers, booleans
  as booleans, everything else as text (ISO dates too, "=1+1" never a formula). Excel's limits hold: a cell's text is cut
  at 32 767 characters, rows past 1 048 575 data rows and columns past 16 384 are dropped, and
  the ``Export`` says how many.
- compressed: a zip holding the one file, ``<name>.<ext>``: JSON and CSV deflated at zlib's
  fastest level as they are written (logs still shrink about 7 times, at 2-3 times the speed
  of the default level), an XLSX stored as it is (it is a deflated zip already).

Cells are read through ``Columns``, the field list compiled once per export, and converted by
one test of the value's class: the per-cell cost is what bounds an export's speed.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import functools
import io
import shutil
import tempfile
import threading
import unicodedata
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Iterable, Sequence
from urllib.parse import quote

import orjson
from aiohttp import web

from ..query.fieldpath import MISSING, Columns
from . import xlsx

XLSX_MAX_ROWS = xlsx.MAX_ROWS - 1  # Excel's 1 048 576 rows, less the header
XLSX_MAX_COLUMNS = xlsx.MAX_COLUMNS
MAX_NAME_CHARS = 200
_CHUNK_BYTES = 256 * 1024  # read from the finished file per write to the client
_ZIP_LEVEL = 1  # zlib's fastest

# Batches of row objects, each the JSON text of one object; iterated on the export's thread.
RowBatches = Iterable[Sequence[bytes]]


@dataclass(frozen=True)
class FileType:
    name: str
    media_type: str


FILE_TYPES = {
    "json": FileType("json", "application/json"),
    "csv": FileType("csv", "text/csv; charset=utf-8"),
    "xlsx": FileType("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
}
ZIP_MEDIA_TYPE = "application/zip"


@dataclass(frozen=True)
class Export:
    """A written export: the file to send and what went into it."""

    directory: Path  # private to this export: removed with ``discard``
    path: Path
    download_name: str
    media_type: str
    rows: int  # rows written
    bytes: int  # size of the file sent
    dropped_rows: int = 0  # past XLSX_MAX_ROWS
    dropped_fields: int = 0  # past XLSX_MAX_COLUMNS
    cut_cells: int = 0  # text cut at Excel's cell limit

    def discard(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# --- names --------------------------------------------------------------------------------

def clean_name(raw: str | None, default: str, extension: str) -> str:
    """A download's base name: path separators, control and other characters removed (Unicode
    letters, digits, ``._-`` and spaces stay), surrounding spaces and dots trimmed, a trailing
    ``.<extension>`` or ``.zip`` the client typed dropped, at most 200 characters; ``default``
    if nothing is left."""
    kept = "".join(c for c in (raw or "") if c.isalnum() or c in "._- ")
    for suffix in (".zip", f".{extension}"):
        if kept.lower().endswith(suffix):
            kept = kept[:-len(suffix)]
    name = kept.strip(" .")[:MAX_NAME_CHARS].strip(" .")
    return name or default


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII ``filename`` (accents stripped, any other non-ASCII, quote,
    backslash or control character as ``_``) for old clients and the exact name as RFC 5987's
    ``filename*`` (UTF-8, percent-encoded): nothing of the name reaches the header raw."""
    decomposed = unicodedata.normalize("NFKD", filename)
    ascii_name = "".join("_" if not (" " <= c <= "~") or c in '"\\' else c
                         for c in decomposed if not unicodedata.combining(c))
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


# --- values ---------------------------------------------------------------------------------

def _json_text(value: Any) -> str:
    return orjson.dumps(value).decode()


def csv_cell(value: Any) -> str:
    """A value as CSV text: missing and null empty, strings as they are, everything else (numbers,
    booleans, arrays, objects) as its compact JSON text."""
    if value is None or value is MISSING:
        return ""
    return value if isinstance(value, str) else _json_text(value)


# --- writers (blocking; run on the export's thread) -------------------------------------------

class _Writer:
    """What a writer counts: rows written, and what a format's limits dropped or cut."""

    rows = dropped_rows = dropped_fields = cut_cells = 0

    def close(self) -> None:
        """Finish the file (the stream it writes to is the caller's to close)."""

    def discard(self) -> None:
        """Give the file up after a failure: what the writer holds beside it removed."""


class _JsonWriter(_Writer):
    def __init__(self, out: IO[bytes], fields: Sequence[str]) -> None:
        self.out = out
        out.write(b"[")

    def write(self, texts: Sequence[bytes]) -> None:
        if texts:  # the batch joined into one buffer, not one write per row
            self.out.write((b"," if self.rows else b"") + b",".join(texts))
            self.rows += len(texts)

    def close(self) -> None:
        self.out.write(b"]")


_CSV_AS_IS = frozenset({str, int, type(None)})


class _CsvWriter(_Writer):
    def __init__(self, out: IO[bytes], fields: Sequence[str]) -> None:
        self.text = io.TextIOWrapper(out, encoding="utf-8", newline="")
        self.csv = csv.writer(self.text, lineterminator="\r\n")
        self.columns = Columns(fields)
        self.csv.writerow(self.columns.fields)

    def write(self, texts: Sequence[bytes]) -> None:
        values, loads = self.columns.values, orjson.loads
        plain = _CSV_AS_IS.issuperset
        rows = [values(loads(text)) for text in texts]
        # csv writes a string as it is, an int (never a bool) as its JSON digits and None as
        # an empty cell: a row of only those goes as it is, found by one C-speed test of its
        # classes; only the others need ``csv_cell``, cell by cell.
        self.csv.writerows(row if plain(map(type, row)) else [csv_cell(v) for v in row] for row in rows)
        self.rows += len(texts)

    def close(self) -> None:
        self.text.flush()
        self.text.detach()  # the stream stays open for the caller


class _XlsxFile(_Writer):
    def __init__(self, out: IO[bytes], fields: Sequence[str]) -> None:
        # ``out`` is the export's own file (an XLSX is never written into a zip entry): the
        # sheet's rows wait beside it.
        self.columns = Columns(list(fields)[:XLSX_MAX_COLUMNS])
        self.dropped_fields = len(fields) - len(self.columns.fields)
        self.sheet = xlsx.SheetWriter(out, "results", Path(out.name).parent, len(self.columns.fields))
        self.sheet.write_rows([self.columns.fields])

    def write(self, texts: Sequence[bytes]) -> None:
        room = XLSX_MAX_ROWS - self.rows
        self.dropped_rows += max(len(texts) - room, 0)
        values, loads = self.columns.values, orjson.loads
        rows = [values(loads(text)) for text in texts[:room]]
        as_is = _XLSX_AS_IS.issuperset
        for row in rows:
            # numbers, strings, booleans and nulls as they are (one C-speed test of the row's
            # classes); arrays and objects as their JSON text
            if not as_is(map(type, row)):
                row[:] = [v if v.__class__ in _XLSX_AS_IS else _json_text(v) for v in row]
        self.sheet.write_rows(rows)
        self.rows += len(rows)

    @property  # type: ignore[override]
    def cut_cells(self) -> int:
        return self.sheet.cut_cells

    def close(self) -> None:
        self.sheet.close()

    def discard(self) -> None:
        self.sheet.discard()


_XLSX_AS_IS = frozenset({str, int, float, bool, type(None)})


_WRITERS = {"json": _JsonWriter, "csv": _CsvWriter, "xlsx": _XlsxFile}


# --- the export -------------------------------------------------------------------------------

class _Stopped(Exception):
    """The export was given up (its request cancelled) between two batches."""


async def write_export(batches: RowBatches, fields: Sequence[str], *, file_type: str, name: str,
                       directory: Path, limit: int | None = None, compress: bool = False) -> Export:
    """Write the rows (at most ``limit``) as ``file_type`` into a new temporary directory under
    ``directory``, zipped when ``compress``; ``name`` is the clean base name (``clean_name``).
    ``batches`` is iterated on the export's worker thread. The caller sends the result
    (``FileResponse``), which removes it; on failure nothing is left behind, and a cancelled
    export stops at its next batch and is removed once its thread has let go of the files."""
    kind = FILE_TYPES[file_type]
    workdir = Path(tempfile.mkdtemp(prefix=".export-", dir=directory))
    stop = threading.Event()
    # A thread of its own: an export holds its thread for seconds, which in the loop's shared
    # executor would keep every short blocking call (the file reads that send it) waiting.
    thread = ThreadPoolExecutor(1, thread_name_prefix="export")
    work = asyncio.get_running_loop().run_in_executor(
        thread, functools.partial(_export, kind, batches, fields, workdir, name, limit, compress, stop))
    thread.shutdown(wait=False)  # the thread ends with the export
    try:
        return await asyncio.shield(work)
    except BaseException:
        stop.set()
        with contextlib.suppress(BaseException):
            await work  # the thread still writes into workdir until it sees ``stop``
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def _export(kind: FileType, batches: RowBatches, fields: Sequence[str], workdir: Path, name: str,
            limit: int | None, compress: bool, stop: threading.Event) -> Export:
    """The export on its thread: the file written, then zipped or not."""
    entry = f"{name}.{kind.name}"
    path = workdir / f"data.{kind.name}"
    if compress and kind.name != "xlsx":  # deflated as it is written: the plain file never exists
        path = path.with_name("data.zip")
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=_ZIP_LEVEL) as archive:
            with archive.open(entry, "w", force_zip64=True) as out:
                writer = _write(kind, out, batches, fields, limit, stop)
    else:
        with open(path, "wb") as out:
            writer = _write(kind, out, batches, fields, limit, stop)
        if compress:
            path = _stored_in_zip(path, entry)
    media, download = (ZIP_MEDIA_TYPE, f"{name}.zip") if compress else (kind.media_type, entry)
    return Export(workdir, path, download, media, writer.rows, path.stat().st_size, writer.dropped_rows,
                  writer.dropped_fields, writer.cut_cells)


def _write(kind: FileType, out: IO[bytes], batches: RowBatches, fields: Sequence[str], limit: int | None,
           stop: threading.Event) -> _Writer:
    writer = _WRITERS[kind.name](out, fields)
    rows = iter(batches)
    try:
        left = limit
        for batch in rows:
            if stop.is_set():
                raise _Stopped
            if left is not None:
                batch = batch[:left]
                left -= len(batch)
            writer.write(batch)
            if left == 0:
                break
    except BaseException:
        writer.discard()
        raise
    else:
        writer.close()
    finally:
        if hasattr(rows, "close"):  # a generator left at the limit: closed on its own thread,
            rows.close()  # where what it holds (a reader's connection) belongs
    return writer


def _stored_in_zip(path: Path, entry: str) -> Path:
    target = path.with_name("data.zip")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:
        archive.write(path, arcname=entry)  # copied in chunks, never read whole
    path.unlink()
    return target


class FileResponse(web.StreamResponse):
    """An export sent as an attachment, read from its file a chunk at a time. The file is
    removed as soon as it is open (POSIX keeps an open file readable), before a byte is sent:
    nothing is left behind whether the send completes, fails or the process dies mid-way."""

    def __init__(self, export: Export) -> None:
        super().__init__(headers={"Content-Type": export.media_type,
                                  "Content-Disposition": content_disposition(export.download_name)})
        self.content_length = export.bytes
        self.export = export

    async def prepare(self, request: web.BaseRequest) -> Any:
        if self.prepared:
            return await super().prepare(request)
        try:
            file = open(self.export.path, "rb")  # noqa: SIM115 - closed below
        finally:
            self.export.discard()
        with file:
            writer = await super().prepare(request)
            while chunk := await asyncio.to_thread(file.read, _CHUNK_BYTES):
                await self.write(chunk)
        return writer
