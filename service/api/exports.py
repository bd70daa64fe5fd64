"""File exports for any API: result rows (JSON objects) and their ordered field list as a JSON,
CSV or XLSX file, optionally zipped, sent as an attachment.

The rows come as an async iterable of batches and are written batch by batch into a file in a
private temporary directory beside the database (never the whole result in memory, and never a
tmpfs ``/tmp`` that would hold it in RAM); the finished file is then streamed to the client and
removed. Writing happens on a worker thread, one batch per hop: XlsxWriter and zipfile are
blocking, CPU-heavy work that would otherwise stall every other request.

- json: a JSON array of the row objects, as they are stored.
- csv: RFC 4180 (comma, CRLF, ``"``-quoting) by the csv module, no BOM; a header row of the
  fields; a missing value is an empty cell, an array or object its compact JSON text.
- xlsx: XlsxWriter in ``constant_memory`` mode (each row goes to disk once the next begins,
  strings inline); one sheet ``results``, a header row, numbers as numbers, booleans as
  booleans, everything else as text (ISO dates too). Excel's limits hold: a cell's text is cut
  at 32 767 characters, rows past 1 048 575 data rows and columns past 16 384 are dropped, and
  the ``Export`` says how many.
- compressed: a zip holding the one file, ``<name>.<ext>``.
"""

from __future__ import annotations

import asyncio
import csv
import shutil
import tempfile
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, AsyncIterable, Sequence
from urllib.parse import quote

import orjson
import xlsxwriter
from aiohttp import web

from ..query.fieldpath import MISSING, field_value

XLSX_MAX_ROWS = 1_048_575  # Excel's 1 048 576 rows, less the header
XLSX_MAX_COLUMNS = 16_384
MAX_NAME_CHARS = 200
_CHUNK_BYTES = 256 * 1024  # read from the finished file per write to the client


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


# --- writers (blocking; run on a worker thread) ---------------------------------------------

class _Writer:
    """What a writer counts: rows written, and what a format's limits dropped or cut."""

    rows = dropped_rows = dropped_fields = cut_cells = 0


class _JsonWriter(_Writer):
    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        self.file = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.file.write(b"[")

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:  # the batch as one array, brackets dropped: one buffer, not one per row
            self.file.write((b"," if self.rows else b"") + orjson.dumps(list(rows))[1:-1])
            self.rows += len(rows)

    def close(self) -> None:
        self.file.write(b"]")
        self.file.close()


class _CsvWriter(_Writer):
    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        self.file = open(path, "w", encoding="utf-8", newline="")  # noqa: SIM115 - closed by close()
        self.csv = csv.writer(self.file, lineterminator="\r\n")
        self.fields = list(fields)
        self.csv.writerow(self.fields)

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        self.csv.writerows([csv_cell(field_value(r, f)) for f in self.fields] for r in rows)
        self.rows += len(rows)

    def close(self) -> None:
        self.file.close()


class _XlsxWriter(_Writer):
    def __init__(self, path: Path, fields: Sequence[str]) -> None:
        # Typed writes only (never ``write``, which would turn "=..." into a formula and
        # "http..." into a link): the cell holds exactly the row's value.
        self.book = xlsxwriter.Workbook(str(path), {"constant_memory": True, "tmpdir": str(path.parent)})
        self.sheet = self.book.add_worksheet("results")
        self.fields = list(fields)[:XLSX_MAX_COLUMNS]
        self.dropped_fields = len(fields) - len(self.fields)
        for col, name in enumerate(self.fields):
            self.cut_cells += self.sheet.write_string(0, col, name) == -2

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        room = XLSX_MAX_ROWS - self.rows
        self.dropped_rows += max(len(rows) - room, 0)
        for row in rows[:room]:
            self.rows += 1
            for col, field in enumerate(self.fields):
                self._cell(self.rows, col, field_value(row, field))

    def _cell(self, row: int, col: int, value: Any) -> None:
        if value is None or value is MISSING:
            return
        if isinstance(value, bool):
            self.sheet.write_boolean(row, col, value)
        elif isinstance(value, float) or (isinstance(value, int) and abs(value) <= 2 ** 53):
            self.sheet.write_number(row, col, value)
        else:  # text; and an integer a double cannot hold exactly stays exact as its digits
            text = value if isinstance(value, str) else _json_text(value)
            self.cut_cells += self.sheet.write_string(row, col, text) == -2

    def close(self) -> None:
        self.book.close()


_WRITERS = {"json": _JsonWriter, "csv": _CsvWriter, "xlsx": _XlsxWriter}


def _zip(path: Path, entry: str) -> Path:
    target = path.with_name(path.name + ".zip")
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, arcname=entry)  # copied in chunks, never read whole
    path.unlink()
    return target


# --- the export -------------------------------------------------------------------------------

async def write_export(batches: AsyncIterable[Sequence[dict[str, Any]]], fields: Sequence[str], *, file_type: str,
                       name: str, directory: Path, limit: int | None = None, compress: bool = False) -> Export:
    """Write the rows (at most ``limit``) as ``file_type`` into a new temporary directory under
    ``directory``, zipped when ``compress``; ``name`` is the clean base name (``clean_name``).
    The caller sends the result (``FileResponse``), which removes it; on failure nothing is
    left behind."""
    kind = FILE_TYPES[file_type]
    workdir = Path(tempfile.mkdtemp(prefix=".export-", dir=directory))
    try:
        path = workdir / f"data.{kind.name}"
        writer = await asyncio.to_thread(_WRITERS[kind.name], path, fields)
        try:
            await _feed(writer, batches, limit)
        finally:
            await asyncio.to_thread(writer.close)
        media, download = kind.media_type, f"{name}.{kind.name}"
        if compress:
            path = await asyncio.to_thread(_zip, path, download)
            media, download = ZIP_MEDIA_TYPE, f"{name}.zip"
        return Export(workdir, path, download, media, writer.rows, path.stat().st_size, writer.dropped_rows,
                      writer.dropped_fields, writer.cut_cells)
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


async def _feed(writer: _Writer, batches: AsyncIterable[Sequence[dict[str, Any]]], limit: int | None) -> None:
    left = limit
    async for batch in batches:
        if left is not None:
            batch = batch[:left]
            left -= len(batch)
        await asyncio.to_thread(writer.write, batch)
        if left == 0:
            return


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
