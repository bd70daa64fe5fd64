"""The XLSX writer (``service/api/xlsx.py``) read back by an independent reader (openpyxl),
beside XlsxWriter writing the same cells: the same values, types and sheet come back, for
text that XML cannot hold as it is, text that looks like an escape, formulas or links,
numbers at a double's edge, and every column letter."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import xlsxwriter
from hypothesis import given, settings
from hypothesis import strategies as st

from service.api import xlsx

TRICKY: list[list[Any]] = [
    ["plain", 1, 2.5, True, None, "=1+1", "https://example.com", " lead", "trail ", "\ttab"],
    ["a & b < c > d", "ctl\x01\x1f", "crlf\r\nx", "_x0041_", "__x00Ff_", "Пётр 日本", "\U0001F600", "", "'q'", '"d"'],
    [2 ** 53, -2 ** 53, 2 ** 53 + 1, -(2 ** 60), 1e300, -0.0, 1e-7, 0, False, "x" * 40_000],
    ["\ufffe\uffff", "x\x00y", " ", "-", "1", "0x1F", "TRUE", "#N/A", "a\nb", "\x7f\x85\u2028"],
]


def _unescaped(value: Any) -> Any:
    """A cell's text as Excel shows it: ST_Xstring's ``_xHHHH_`` decoded (openpyxl leaves it)."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), value) if isinstance(value, str) else value


def _expected(value: Any) -> Any:
    if isinstance(value, str):
        return value[:xlsx.MAX_TEXT]
    if type(value) is int and abs(value) > xlsx.EXACT_INT:
        return str(value)
    return value


def _ours(path: Path, rows: list[list[Any]], columns: int) -> Path:
    with open(path, "wb") as out:
        sheet = xlsx.SheetWriter(out, "results", path.parent, columns)
        sheet.write_rows(rows[:2])
        sheet.write_rows(rows[2:])
        sheet.close()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # nothing left beside it
    return path


def _theirs(path: Path, rows: list[list[Any]]) -> Path:
    book = xlsxwriter.Workbook(str(path), {"constant_memory": True})
    sheet = book.add_worksheet("results")
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            value = _expected(value)
            if isinstance(value, str):
                sheet.write_string(r, c, value)
            elif isinstance(value, bool):
                sheet.write_boolean(r, c, value)
            elif value is not None:
                sheet.write_number(r, c, value)
    book.close()
    return path


def _read(path: Path) -> tuple[list[list[Any]], list[list[str]], str]:
    sheet = openpyxl.load_workbook(path)["results"]
    values = [[_unescaped(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    types = [[cell.data_type for cell in row] for row in sheet.iter_rows()]
    return values, types, sheet.calculate_dimension()


def test_tricky_cells_read_back_as_xlsxwriters_do(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    ours = _read(_ours(tmp_path / "a" / "ours.xlsx", TRICKY, 10))
    theirs = _read(_theirs(tmp_path / "theirs.xlsx", TRICKY))
    assert ours == theirs
    values, types, dimension = ours
    assert values == [[_expected(v) for v in row] for row in TRICKY]
    assert dimension == "A1:J4"
    assert types[0][:6] == ["s", "n", "n", "b", "n", "s"]  # "=1+1" is text, never a formula
    assert types[2][2] == "s" and types[2][0] == "n"  # 2**53 + 1 as its digits


def test_the_package_is_a_plain_one_sheet_workbook(tmp_path: Path) -> None:
    path = _ours(tmp_path / "book.xlsx", [["a", 1]], 2)
    with zipfile.ZipFile(path) as book:
        assert book.testzip() is None
        assert sorted(book.namelist()) == ["[Content_Types].xml", "_rels/.rels",
                                           "xl/_rels/workbook.xml.rels", "xl/styles.xml", "xl/workbook.xml",
                                           "xl/worksheets/sheet1.xml"]
    assert openpyxl.load_workbook(path).sheetnames == ["results"]


@pytest.mark.parametrize(("columns", "rows", "dimension"), [(0, 0, "A1"), (1, 1, "A1"), (3, 1, "A1:C1"),
                                                           (27, 5, "A1:AA5"), (xlsx.MAX_COLUMNS, 1, "A1:XFD1")])
def test_dimension_and_column_letters(tmp_path: Path, columns: int, rows: int, dimension: str) -> None:
    data = [[f"{r}.{c}" for c in range(columns)] for r in range(rows)]
    path = _ours(tmp_path / "d.xlsx", data, columns)
    with zipfile.ZipFile(path) as book:
        head = book.read("xl/worksheets/sheet1.xml")[:400].decode()
    assert re.search(r'<dimension ref="([^"]+)"/>', head)[1] == dimension  # type: ignore[index]
    book = openpyxl.load_workbook(path, read_only=True)
    assert [list(r) for r in book["results"].iter_rows(values_only=True)] == data
    book.close()


def test_column_letters() -> None:
    assert [xlsx.column_letters(i) for i in (0, 25, 26, 51, 52, 701, 702, 16_383)] == \
        ["A", "Z", "AA", "AZ", "BA", "ZZ", "AAA", "XFD"]


def test_limits_are_refused_and_a_discard_leaves_nothing(tmp_path: Path) -> None:
    with open(tmp_path / "w.xlsx", "wb") as out, pytest.raises(ValueError):
        xlsx.SheetWriter(out, "results", tmp_path, xlsx.MAX_COLUMNS + 1)
    with open(tmp_path / "x.xlsx", "wb") as out:
        sheet = xlsx.SheetWriter(out, "results", tmp_path, 1)
        with pytest.raises(TypeError):
            sheet.write_rows([[[1, 2]]])
        sheet.discard()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.xlsx", "x.xlsx"]
    assert (tmp_path / "x.xlsx").stat().st_size == 0


TEXT = st.text(st.characters(codec="utf-8"), max_size=40) | st.from_regex(r"_x[0-9A-Fa-f]{4}_", fullmatch=True)
VALUES = st.one_of(TEXT, st.integers(-2 ** 64, 2 ** 64), st.floats(allow_nan=False, allow_infinity=False),
                   st.booleans(), st.none())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(VALUES, min_size=3, max_size=3), min_size=1, max_size=6))
def test_any_cells_read_back_as_written(tmp_path_factory: pytest.TempPathFactory, rows: list[list[Any]]) -> None:
    directory = tmp_path_factory.mktemp("x")
    values, _, _ = _read(_ours(directory / "any.xlsx", rows, 3))
    values += [[]] * (len(rows) - len(values))  # openpyxl reads up to the last cell
    assert [row + [None] * (3 - len(row)) for row in values] == [[_expected(v) for v in row] for row in rows]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(VALUES, min_size=3, max_size=3), min_size=1, max_size=6))
def test_the_quick_way_writes_what_the_careful_way_does_or_gives_way(
        tmp_path_factory: pytest.TempPathFactory, rows: list[list[Any]]) -> None:
    """A batch is written by one template per row when C-speed tests over the text show
    nothing needed care; whenever it is, it is byte for byte what the cell-by-cell way writes."""
    directory = tmp_path_factory.mktemp("q")
    with open(directory / "q.xlsx", "wb") as out:
        sheet = xlsx.SheetWriter(out, "results", directory, 3)
        quick = sheet._quick(rows)
        assert quick is None or quick == sheet._careful(rows)
        sheet.discard()


def test_plain_batches_take_the_quick_way(tmp_path: Path) -> None:
    rows = [["2024-05-01T00:00:00.331Z", "host-08", 4625, 0.5, True, None, "GET /a?b=c HTTP/1.1", 2 ** 49]]
    with open(tmp_path / "q.xlsx", "wb") as out:
        sheet = xlsx.SheetWriter(out, "results", tmp_path, 8)
        assert sheet._quick(rows) == sheet._careful(rows)
        for tricky in TRICKY:
            assert sheet._quick([tricky]) is None
        sheet.discard()
