"""A streaming writer of one-sheet XLSX workbooks (ECMA-376 SpreadsheetML), for exports.

Why not XlsxWriter, which wrote them before: an export is a million rows of plain cells, and
XlsxWriter spends about 10 us on each cell (argument checks, a cell object, then its XML
through regular expressions): 27 700 rows of 10 cells per CPU second at best, half of what
an export must do. Here a row is one string built from its cells' XML, and a batch of rows
is one write: several times faster on the same cells (``scripts/bench --only export`` shows
both), with the same file a reader sees (openpyxl reads them back in the tests, beside
XlsxWriter's for the same rows).

What is written: the five parts a workbook needs (content types, the package and workbook
relationships, the workbook, a minimal style sheet) and the sheet. The sheet's rows go to a
temporary file beside the output as they come (memory stays flat), after a ``dimension``
left blank to the widest it can be and filled in at the end (it must precede the rows);
``close`` then deflates the whole into the zip at level 1, the fastest (the rows are
repetitive XML: a bigger file by a quarter, written in a third of the time of the default).

Cells: a number is ``<v>``; a boolean ``t="b"``; a string an inline string (no shared-string
table, which would hold every distinct string in memory), escaped as ST_Xstring says: ``&<>``
as entities, a control character (``\\r`` too, which XML would turn into ``\\n``) or a
non-character as ``_xHHHH_``, a literal ``_xHHHH_`` with its underscore escaped so it reads
back as itself, ``xml:space="preserve"`` when spaces lead or trail. A cell's text is cut at
Excel's 32 767 characters; an integer past 2**53 is its digits as text; a None is no cell.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from pathlib import Path
from typing import IO, Any, Sequence

MAX_ROWS = 1_048_576
MAX_COLUMNS = 16_384
MAX_TEXT = 32_767  # characters in a cell
EXACT_INT = 2 ** 53  # the largest integer up to which a double (an Excel number) holds every one
ZIP_LEVEL = 1

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
_SHEET_PATH = "xl/worksheets/sheet1.xml"
_DIMENSION = '<dimension ref="{}"/>'
_DIMENSION_WIDTH = len(_DIMENSION.format("A1:XFD1048576"))

# Characters XML 1.0 cannot hold (and \r, which a parser normalises away), written as _xHHHH_,
# and a literal _xHHHH_ (its underscore is escaped, so that it reads back as itself).
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\ufffe\uffff]|_(?=x[0-9A-Fa-f]{4}_)")
_LONG_NUMBER = re.compile(r"<v>-?\d{16}").search  # 16 digits: maybe past EXACT_INT (2**53 has 16)
_NEEDS_WORK = re.compile(r"[&<>\x00-\x08\x0b-\x1f\ufffe\uffff]|_x[0-9A-Fa-f]{4}_|^\s|\s$").search


def _code(match: re.Match[str]) -> str:
    return f"_x{ord(match[0]):04X}_"


def column_letters(index: int) -> str:
    """0 -> A, 25 -> Z, 26 -> AA ... 16 383 -> XFD."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def string_cell(ref: str, text: str) -> tuple[str, bool]:
    """An inline-string cell's XML and whether its text was cut at Excel's limit."""
    cut = len(text) > MAX_TEXT
    if cut:
        text = text[:MAX_TEXT]
    if not _NEEDS_WORK(text):
        return f'<c r="{ref}" t="inlineStr"><is><t>{text}</t></is></c>', cut
    text = _UNSAFE.sub(_code, text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))
    space = ' xml:space="preserve"' if text[:1].isspace() or text[-1:].isspace() else ""
    return f'<c r="{ref}" t="inlineStr"><is><t{space}>{text}</t></is></c>', cut


class SheetWriter:
    """A workbook of one sheet named ``sheet`` written to ``out`` (a binary file the caller
    owns), its rows kept in a temporary file in ``tmpdir`` until ``close``. Values are
    ``str``, ``int``, ``float``, ``bool`` or None (no cell); an integer a double cannot hold
    is written as its digits, as text."""

    def __init__(self, out: IO[bytes], sheet: str, tmpdir: Path, columns: int) -> None:
        if not 0 <= columns <= MAX_COLUMNS:
            raise ValueError(f"a sheet has at most {MAX_COLUMNS} columns")
        self.out, self.sheet = out, sheet
        self.letters = [column_letters(i) for i in range(columns)]
        self.rows = 0
        self.cut_cells = 0
        self.templates: dict[tuple[type, ...], tuple[str, int, int]] = {}
        self.path = Path(tmpdir) / f".sheet-{id(self):x}.xml"
        self.data = open(self.path, "wb")
        self.data.write(f'{_HEAD}<worksheet xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}">'.encode())
        self.dimension_at = self.data.tell()
        self.data.write(b" " * _DIMENSION_WIDTH + b"<sheetData>")

    def write_rows(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows after those written (at most ``MAX_ROWS`` in all), each a value per column.

        A batch is first written the quick way: each row by one ``str.format`` of a template
        for its classes, the values as they are. Whether that is exactly what the careful way
        (``_careful``, cell by cell) writes is then told by C-speed tests over the whole text:
        its templates hold no ``&``, ``_x``, non-printable character, space beside a text
        or long number, and a known count of ``<`` and ``>``, so a batch with none of those
        extra has no value that needed escaping, cutting or writing as text. Else (rarely)
        the batch is written again the careful way."""
        if self.rows + len(rows) > MAX_ROWS:
            raise ValueError(f"a sheet has at most {MAX_ROWS} rows")
        text = self._quick(rows)
        if text is None:
            text = self._careful(rows)
        self.data.write(text.encode())
        self.rows += len(rows)

    def _quick(self, rows: Sequence[Sequence[Any]]) -> str | None:
        templates, template = self.templates, self._template
        parts, opens, closes = [], 0, 0
        number = self.rows
        for values in rows:
            number += 1
            shape = tuple(map(type, values))
            found = templates.get(shape) or template(shape)
            if found is None:
                return None
            parts.append(found[0].format(number, *values))
            opens += found[1]
            closes += found[2]
        text = "".join(parts)
        if (not text.isprintable() or "&" in text or "_x" in text or "<t> " in text or " </t>" in text
                or text.count("<") != opens or text.count(">") != closes or _LONG_NUMBER(text) is not None
                or (parts and max(map(len, parts)) > MAX_TEXT)):
            return None
        return text

    def _template(self, shape: tuple[type, ...]) -> tuple[str, int, int] | None:
        """A row's XML as a format string (``{0}`` the row's number, ``{i}`` its i-th value) for
        values of these classes, with its counts of ``<`` and ``>``; None for another class."""
        parts = ['<row r="{0}">']
        for i, (letter, kind) in enumerate(zip(self.letters, shape), 1):
            if kind is str:
                parts.append(f'<c r="{letter}{{0}}" t="inlineStr"><is><t>{{{i}}}</t></is></c>')
            elif kind is int or kind is float:
                parts.append(f'<c r="{letter}{{0}}"><v>{{{i}!r}}</v></c>')
            elif kind is bool:
                parts.append(f'<c r="{letter}{{0}}" t="b"><v>{{{i}:d}}</v></c>')
            elif kind is not type(None):
                return None
        parts.append("</row>")
        text = "".join(parts)
        self.templates[shape] = found = (text, text.count("<"), text.count(">"))
        return found

    def _careful(self, rows: Sequence[Sequence[Any]]) -> str:
        letters, parts, cut = self.letters, [], 0
        number = self.rows
        for values in rows:
            number += 1
            n = str(number)
            cells = []
            for letter, value in zip(letters, values):
                kind = value.__class__
                if kind is str:
                    xml, was_cut = string_cell(letter + n, value)
                    cells.append(xml)
                    cut += was_cut
                elif kind is float or (kind is int and -EXACT_INT <= value <= EXACT_INT):
                    cells.append(f'<c r="{letter}{n}"><v>{value!r}</v></c>')
                elif kind is int:  # exact as its digits: a double (an Excel number) cannot hold it
                    cells.append(string_cell(letter + n, str(value))[0])
                elif kind is bool:
                    cells.append(f'<c r="{letter}{n}" t="b"><v>{int(value)}</v></c>')
                elif value is not None:
                    raise TypeError(f"a cell holds str, int, float or bool, not {kind.__name__}")
            parts.append(f'<row r="{n}">{"".join(cells)}</row>')
        self.cut_cells += cut
        return "".join(parts)

    def close(self) -> None:
        """The workbook written to ``out``; the temporary file removed (on failure too)."""
        try:
            self.data.write(b"</sheetData></worksheet>")
            last = f"{self.letters[-1]}{max(self.rows, 1)}" if self.letters and self.rows else ""
            self.data.seek(self.dimension_at)
            self.data.write(_DIMENSION.format(f"A1:{last}" if last and last != "A1" else "A1").encode())
            self.data.close()
            with zipfile.ZipFile(self.out, "w", zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL) as book:
                for name, text in self._parts():
                    book.writestr(name, text)
                with open(self.path, "rb") as data, book.open(_SHEET_PATH, "w", force_zip64=True) as sheet:
                    shutil.copyfileobj(data, sheet, 1 << 20)
        finally:
            self.data.close()
            self.path.unlink(missing_ok=True)

    def discard(self) -> None:
        """Give the workbook up: the temporary file removed, nothing written to ``out``."""
        self.data.close()
        self.path.unlink(missing_ok=True)

    def _parts(self) -> list[tuple[str, str]]:
        name = self.sheet.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
        sheet_type = "application/vnd.openxmlformats-officedocument.spreadsheetml"
        office = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
        return [
            ("[Content_Types].xml", f'{_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
             'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
             'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
             f'<Override PartName="/xl/workbook.xml" ContentType="{sheet_type}.sheet.main+xml"/>'
             f'<Override PartName="/{_SHEET_PATH}" ContentType="{sheet_type}.worksheet+xml"/>'
             f'<Override PartName="/xl/styles.xml" ContentType="{sheet_type}.styles+xml"/></Types>'),
            ("_rels/.rels", f'{_HEAD}<Relationships xmlns="{PACKAGE_RELATIONSHIPS}"><Relationship Id="rId1" '
             f'Type="{office}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
            ("xl/workbook.xml", f'{_HEAD}<workbook xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}"><sheets>'
             f'<sheet name="{name}" sheetId="1" r:id="rId1"/></sheets></workbook>'),
            ("xl/_rels/workbook.xml.rels", f'{_HEAD}<Relationships xmlns="{PACKAGE_RELATIONSHIPS}">'
             f'<Relationship Id="rId1" Type="{office}/worksheet" Target="worksheets/sheet1.xml"/>'
             f'<Relationship Id="rId2" Type="{office}/styles" Target="styles.xml"/></Relationships>'),
            ("xl/styles.xml", f'{_HEAD}<styleSheet xmlns="{MAIN}"><fonts count="1"><font><sz val="11"/>'
             '<name val="Calibri"/><family val="2"/></font></fonts><fills count="2"><fill><patternFill '
             'patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
             '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
             '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
             '<cellXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/></cellXfs>'
             '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
             '</styleSheet>'),
        ]
