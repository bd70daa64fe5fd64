"""File exports (spec sme-background-tasks §4.7): each format written and read back with an
independent reader (json, the csv module, zipfile, openpyxl), the download name and its
Content-Disposition, the body of file_download, and memory that stays flat for 100k rows."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import threading
import time
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import unquote

import aiohttp
import openpyxl
import orjson
import pytest
from aiohttp import web
from elasticsearch import AsyncElasticsearch

from conftest import SLOW
from service import keys
from service.api import exports
from service.api.exports import FileResponse, clean_name, content_disposition, write_export
from service.api.sme import DEFAULT_USER
from service.api.sme_export import DownloadRequest
from service.core.background import Limits
from service.errors import BadRequest
from service.query import sml
from service.query.eql import EqlJob
from service.query.eql.request import EqlRequest
from service.query.esql import EsqlJob
from service.query.fieldpath import MISSING, Columns, field_value
from service.query.options import QueryOptions


ROWS: list[dict[str, Any]] = [
    {"@timestamp": "2024-05-01T11:59:58.120Z", "host": {"name": "mail"}, "event.code": 4624, "ok": True,
     "tags": ["a", "b"], "msg": 'say "hi", then\r\nleave'},
    {"@timestamp": "2024-05-01T11:59:41.003Z", "host": {"name": "dc01"}, "event.code": 4625, "ok": False,
     "ratio": 0.25, "user": {"name": "Пётр"}},
    {"@timestamp": "2024-05-01T11:58:00.000Z", "host": {"name": "dc01"}, "event.code": None,
     "big": 2 ** 60, "formula": "=1+1"},
]
FIELDS = ["@timestamp", "host.name", "event.code", "ok", "tags", "msg", "ratio", "user.name", "big", "formula"]


def batches(rows: Sequence[dict[str, Any]], size: int = 2) -> Iterator[list[bytes]]:
    """The rows as a store gives them: batches of their JSON text."""
    for i in range(0, len(rows), size):
        yield [orjson.dumps(row) for row in rows[i:i + size]]


async def export(tmp_path: Path, file_type: str, rows: Sequence[dict[str, Any]] = ROWS,
                 fields: Sequence[str] = FIELDS, **kwargs: Any) -> exports.Export:
    return await write_export(batches(rows), fields, file_type=file_type, name="report", directory=tmp_path,
                              **kwargs)


# --- each format, read back -----------------------------------------------------------------

async def test_json_is_an_array_of_the_rows_as_stored(tmp_path: Path) -> None:
    done = await export(tmp_path, "json")
    assert json.loads(done.path.read_bytes()) == ROWS
    assert (done.rows, done.download_name, done.media_type) == (3, "report.json", "application/json")
    assert done.bytes == done.path.stat().st_size


async def test_json_of_no_rows_is_an_empty_array(tmp_path: Path) -> None:
    done = await export(tmp_path, "json", rows=[])
    assert json.loads(done.path.read_bytes()) == []


async def test_csv_follows_rfc_4180_with_a_header_of_the_fields(tmp_path: Path) -> None:
    done = await export(tmp_path, "csv")
    raw = done.path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf")  # no BOM
    assert raw.startswith(b"@timestamp,host.name,event.code,ok,tags,msg,ratio,user.name,big,formula\r\n")
    lines = list(csv.reader(io.StringIO(raw.decode("utf-8"), newline="")))
    assert lines == [
        FIELDS,
        ["2024-05-01T11:59:58.120Z", "mail", "4624", "true", '["a","b"]', 'say "hi", then\r\nleave', "", "", "", ""],
        ["2024-05-01T11:59:41.003Z", "dc01", "4625", "false", "", "", "0.25", "Пётр", "", ""],
        ["2024-05-01T11:58:00.000Z", "dc01", "", "", "", "", "", "", str(2 ** 60), "=1+1"],
    ]
    assert done.media_type == "text/csv; charset=utf-8"


async def test_csv_cells_of_nested_values_are_compact_json(tmp_path: Path) -> None:
    rows = [{"obj": {"a": 1, "b": [1, 2]}, "arr": [{"x": 1}, {"x": 2}], "lit.key": "literal", "lit": {"key": "no"}}]
    done = await export(tmp_path, "csv", rows=rows, fields=["obj", "arr", "arr.x", "lit.key", "absent"])
    lines = list(csv.reader(io.StringIO(done.path.read_text("utf-8"), newline="")))
    # a literal dotted key wins over the nested path; through an array of objects, each value
    assert lines[1] == ['{"a":1,"b":[1,2]}', '[{"x":1},{"x":2}]', "[1,2]", "literal", ""]


async def test_xlsx_has_one_results_sheet_with_typed_cells(tmp_path: Path) -> None:
    done = await export(tmp_path, "xlsx")
    assert done.download_name == "report.xlsx"
    assert done.media_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    book = openpyxl.load_workbook(done.path)
    assert book.sheetnames == ["results"]
    sheet = book["results"]
    values = [[_unescaped(v) for v in r] for r in sheet.iter_rows(values_only=True)]
    assert values[0] == FIELDS
    assert values[1] == ["2024-05-01T11:59:58.120Z", "mail", 4624, True, '["a","b"]', 'say "hi", then\r\nleave',
                         None, None, None, None]
    assert values[2] == ["2024-05-01T11:59:41.003Z", "dc01", 4625, False, None, None, 0.25, "Пётр", None, None]
    # an integer a double cannot hold stays exact as text; "=1+1" is text, never a formula
    assert values[3] == ["2024-05-01T11:58:00.000Z", "dc01", None, None, None, None, None, None, str(2 ** 60), "=1+1"]
    assert sheet["J4"].data_type == "s"
    assert sheet["C2"].data_type == "n" and sheet["A2"].data_type == "s"


def _unescaped(value: Any) -> Any:
    """A cell's text as Excel shows it: OOXML writes a control character as ``_xHHHH_``
    (ECMA-376 ST_Xstring), which openpyxl leaves as it is in inline strings."""
    return re.sub(r"_x([0-9A-F]{4})_", lambda m: chr(int(m[1], 16)), value) if isinstance(value, str) else value


async def test_xlsx_cuts_cell_text_at_excels_limit(tmp_path: Path) -> None:
    done = await export(tmp_path, "xlsx", rows=[{"long": "x" * 40_000, "short": "y"}], fields=["long", "short"])
    sheet = openpyxl.load_workbook(done.path)["results"]
    assert sheet["A2"].value == "x" * 32_767 and sheet["B2"].value == "y"
    assert done.cut_cells == 1


async def test_xlsx_drops_columns_past_excels_last(tmp_path: Path) -> None:
    fields = [f"f{i}" for i in range(exports.XLSX_MAX_COLUMNS + 3)]
    done = await export(tmp_path, "xlsx", rows=[{f: i for i, f in enumerate(fields)}], fields=fields)
    book = openpyxl.load_workbook(done.path, read_only=True)
    header, row = list(book["results"].iter_rows(values_only=True))
    book.close()
    assert len(header) == exports.XLSX_MAX_COLUMNS and header[-1] == f"f{exports.XLSX_MAX_COLUMNS - 1}"
    assert row[-1] == exports.XLSX_MAX_COLUMNS - 1
    assert done.dropped_fields == 3


async def test_xlsx_drops_rows_past_excels_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Excel's 1 048 575 data rows lowered: writing a million rows is slow, the rule is the same
    monkeypatch.setattr(exports, "XLSX_MAX_ROWS", 4)
    done = await export(tmp_path, "xlsx", rows=[{"n": i} for i in range(7)], fields=["n"])
    values = list(openpyxl.load_workbook(done.path)["results"].iter_rows(values_only=True))
    assert values == [("n",), (0,), (1,), (2,), (3,)]
    assert (done.rows, done.dropped_rows) == (4, 3)


@pytest.mark.parametrize("file_type", ["json", "csv", "xlsx"])
async def test_compressed_is_a_zip_holding_the_one_file(tmp_path: Path, file_type: str) -> None:
    plain = await export(tmp_path, file_type)
    zipped = await export(tmp_path, file_type, compress=True)
    assert (zipped.download_name, zipped.media_type) == ("report.zip", "application/zip")
    with zipfile.ZipFile(zipped.path) as archive:
        assert archive.testzip() is None
        assert archive.namelist() == [f"report.{file_type}"]
        content = archive.read(f"report.{file_type}")
    if file_type == "xlsx":  # the same workbook (its zip members carry their own timestamps)
        read = lambda data: [list(r) for r in openpyxl.load_workbook(io.BytesIO(data)).active.values]  # noqa: E731
        assert read(content) == read(plain.path.read_bytes())
    else:
        assert content == plain.path.read_bytes()


async def test_limit_exports_the_first_rows(tmp_path: Path) -> None:
    done = await export(tmp_path, "json", rows=[{"n": i} for i in range(25)], limit=7)
    assert json.loads(done.path.read_bytes()) == [{"n": i} for i in range(7)]
    assert done.rows == 7


async def test_a_failed_export_leaves_no_file(tmp_path: Path) -> None:
    def broken() -> Iterator[list[bytes]]:
        yield [b'{"n":1}']
        raise OSError("disk gone")

    with pytest.raises(OSError):
        await write_export(broken(), ["n"], file_type="xlsx", name="x", directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("file_type", ["json", "csv", "xlsx"])
async def test_a_cancelled_export_stops_reading_and_leaves_no_file(tmp_path: Path, file_type: str) -> None:
    read: list[int] = []
    first = threading.Event()

    def slow() -> Iterator[list[bytes]]:  # on the export's thread
        for i in range(1000):
            read.append(i)
            first.set()
            yield [b'{"n":%d}' % i]
            time.sleep(0.01)

    export_task = asyncio.create_task(write_export(slow(), ["n"], file_type=file_type, name="x", directory=tmp_path))
    await asyncio.to_thread(first.wait, 10)
    export_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await export_task
    assert list(tmp_path.iterdir()) == []
    stopped_at = len(read)
    await asyncio.sleep(0.1)
    assert len(read) == stopped_at < 1000  # the thread stopped reading, and did before the end


async def test_rows_left_at_the_limit_are_closed_on_the_exports_thread(tmp_path: Path) -> None:
    closed_on: list[str] = []

    def rows() -> Iterator[list[bytes]]:
        try:
            for i in range(10):
                yield [b'{"n":%d}' % i]
        finally:  # where a store's reader closes its connection, which belongs to that thread
            closed_on.append(threading.current_thread().name)

    done = await write_export(rows(), ["n"], file_type="csv", name="x", directory=tmp_path, limit=3)
    assert done.rows == 3
    assert len(closed_on) == 1 and closed_on[0].startswith("export")


def _values_by_field_value(row: dict[str, Any], fields: Sequence[str]) -> list[Any]:
    return [None if (v := field_value(row, f)) is MISSING else v for f in fields]


@pytest.mark.parametrize("row", [
    {"host": {"name": "mail"}, "host.name": "literal"},  # a literal dotted key wins
    {"host": {"name": "mail"}, "host.name": None},  # even holding a null
    {"host": {"name": None}},
    {"host": "flat"},  # a scalar where an object was expected
    {"host": [{"name": "a"}, {"name": ["b", "c"]}, {"other": 1}]},  # through an array of objects
    {"a": {"b.c": 1, "b": {"c": 2}}},  # a literal dotted key inside the nested object
    {"a": {"b": {"c": 3}}, "a.b": {"c": 4}},
    {"a.b": {"c": 5}},
    {"a": {}, "a.b": {"c": 6}},  # the first object lacks the rest: another split finds it
    {"x": 1},
])
def test_columns_find_what_field_value_finds(row: dict[str, Any]) -> None:
    fields = ["host.name", "host", "a.b.c", "a.b", "x", "absent", "absent.too"]
    assert Columns(fields).values(row) == _values_by_field_value(row, fields)


async def test_csv_converts_only_the_rows_that_need_it(tmp_path: Path) -> None:
    rows = [{"s": "a", "i": 3, "n": None}, {"s": "b", "i": True, "n": 0.5}, {"s": "c", "i": -7}, {"i": [1, {"k": None}]}]
    done = await export(tmp_path, "csv", rows=rows, fields=["s", "i", "n"])
    lines = list(csv.reader(io.StringIO(done.path.read_text("utf-8"), newline="")))
    assert lines == [["s", "i", "n"], ["a", "3", ""], ["b", "true", "0.5"], ["c", "-7", ""], ["", '[1,{"k":null}]', ""]]


# --- names and Content-Disposition ------------------------------------------------------------

@pytest.mark.parametrize("raw, expected", [
    ("report", "report"),
    ("../../etc/passwd", "etcpasswd"),
    ("a\\b/c:d*e?f\"g<h>i|j", "abcdefghij"),
    ("line\r\nbreak\x00\x1f", "linebreak"),
    ("  отчёт за май 2024  ", "отчёт за май 2024"),
    ("report.csv", "report"),
    ("report.CSV.zip", "report"),
    ("...", "TASK"),
    ("", "TASK"),
    (None, "TASK"),
    ("😀", "TASK"),
    ("n" * 300, "n" * 200),
])
def test_file_name_cleaning(raw: str | None, expected: str) -> None:
    assert clean_name(raw, "TASK", "csv") == expected


@pytest.mark.parametrize("name", ["отчёт за май.csv", 'say "hi".csv', "evil\r\nSet-Cookie: x=1.csv",
                                  "back\\slash;semi.json", "日本語.xlsx", "café.zip", "plain.csv"])
def test_content_disposition_keeps_the_header_ascii_and_the_name_exact(name: str) -> None:
    header = content_disposition(name)
    assert header.isascii() and "\r" not in header and "\n" not in header
    assert header.startswith('attachment; filename="')
    fallback, _, encoded = header.removeprefix('attachment; filename="').partition('"; filename*=UTF-8\'\'')
    assert '"' not in fallback and "\\" not in fallback and ";" not in encoded and " " not in encoded
    assert unquote(encoded, encoding="utf-8") == name
    assert len(fallback) >= len(name.split(".")[0]) // 2 and fallback.endswith(name.rsplit(".", 1)[1])


def test_content_disposition_fallback_strips_accents() -> None:
    assert content_disposition("café.csv").startswith('attachment; filename="cafe.csv";')


async def test_the_file_is_sent_as_an_attachment_and_then_removed(aiohttp_client: Any, tmp_path: Path) -> None:
    done = await write_export(batches(ROWS), FIELDS, file_type="csv", name="отчёт", directory=tmp_path)

    async def handler(request: web.Request) -> web.StreamResponse:
        return FileResponse(done)

    app = web.Application()
    app.router.add_post("/download", handler)
    client = await aiohttp_client(app)
    resp = await client.post("/download")
    assert resp.status == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert resp.headers["Content-Length"] == str(done.bytes)
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"_____.csv\"; filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82.csv")
    body = await resp.read()
    assert list(csv.reader(io.StringIO(body.decode(), newline="")))[0] == FIELDS
    assert list(tmp_path.iterdir()) == []


# --- the file_download body ----------------------------------------------------------------------

def test_download_request_defaults() -> None:
    assert DownloadRequest.parse({}, "TASK") == DownloadRequest("TASK", "json", False, 10_000)


def test_download_request_values() -> None:
    body = {"file_name": "май/отчёт", "file_type": "XLSX", "compress_results": True, "download_results_size": 5,
            "unknown": 1}
    assert DownloadRequest.parse(body, "T") == DownloadRequest("майотчёт", "xlsx", True, 5)
    assert DownloadRequest.parse({"download_all_results": "true", "download_results_size": 3}, "T").limit is None
    assert DownloadRequest.parse({"compress_results": "false", "download_results_size": "12"}, "T") == \
        DownloadRequest("T", "json", False, 12)


@pytest.mark.parametrize("body, reason", [
    ({"file_type": "pdf"}, "[file_type] must be one of [json, csv, xlsx], got [pdf]"),
    ({"file_type": 3}, "[file_type] must be one of [json, csv, xlsx], got [3]"),
    ({"file_name": ["a"]}, "[file_name] must be a string, got [['a']]"),
    ({"compress_results": "yes"}, "[compress_results] must be a boolean, got [yes]"),
    ({"download_all_results": 1}, "[download_all_results] must be a boolean, got [1]"),
    ({"download_results_size": 0}, "[download_results_size] must be an integer of at least 1, got [0]"),
    ({"download_results_size": True}, "[download_results_size] must be an integer of at least 1, got [true]"),
    ({"download_results_size": 2.5}, "[download_results_size] must be an integer of at least 1, got [2.5]"),
    ({"download_results_size": None}, "[download_results_size] must be an integer of at least 1, got [null]"),
    ({"download_results_size": "²"}, "[download_results_size] must be an integer of at least 1, got [²]"),
])
def test_download_request_errors(body: dict[str, Any], reason: str) -> None:
    with pytest.raises(BadRequest) as caught:
        DownloadRequest.parse(body, "T")
    assert caught.value.reason == reason
    assert (caught.value.status, caught.value.type) == (400, "illegal_argument_exception")


# --- memory stays flat ---------------------------------------------------------------------------

def _row(i: int) -> dict[str, Any]:
    return {"@timestamp": f"2024-05-01T12:{i // 60000 % 60:02d}:{i // 1000 % 60:02d}.{i % 1000:03d}Z",
            "host": {"name": f"host-{i % 50}"}, "bytes": i * 7, "ok": i % 2 == 0,
            "message": f"event number {i} from the generator", "tags": ["x", str(i % 3)]}


def _generated(count: int) -> Iterator[list[bytes]]:
    # The store's batch size, rows made as they are read; exact-size texts, as SQLite returns
    # them (orjson's own bytes keep a 4 KiB buffer each, which would measure the generator).
    for start in range(0, count, 1000):
        yield [json.dumps(_row(i), separators=(",", ":")).encode() for i in range(start, min(start + 1000, count))]


async def _peak_bytes(tmp_path: Path, file_type: str, count: int) -> tuple[int, exports.Export]:
    tracemalloc.start()
    try:
        done = await write_export(_generated(count), ["@timestamp", "host.name", "bytes", "ok", "message", "tags"],
                                  file_type=file_type, name="big", directory=tmp_path, limit=None,
                                  compress=file_type == "csv")
        return tracemalloc.get_traced_memory()[1], done
    finally:
        tracemalloc.stop()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("file_type", ["json", "csv", "xlsx"])
async def test_memory_stays_flat_for_100k_rows(tmp_path: Path, file_type: str) -> None:
    small, _ = await _peak_bytes(tmp_path, file_type, 10_000)
    peak, done = await _peak_bytes(tmp_path, file_type, 100_000)
    size = done.bytes
    if file_type != "json":  # zips (the CSV compressed, an XLSX is one): the size of what is inside
        with zipfile.ZipFile(done.path) as archive:
            size = sum(member.file_size for member in archive.infolist())
    print(f"{file_type}: peak {peak / 1e6:.2f} MB for 100k rows, {small / 1e6:.2f} MB for 10k; "
          f"file {size / 1e6:.1f} MB")
    assert done.rows == 100_000
    assert peak < 4_000_000  # a few batches' worth
    assert peak < small * 1.5 + 1_000_000  # ten times the rows, about the same memory
    assert peak < size / 2  # never the whole file


# --- POST /_sme/async_requests/file_download/{id}, over real HTTP ---------------------------------
# The lifecycle is language-neutral: real EQL jobs (rows of hit objects) run through it here;
# the tests marked ``needs_sml`` export SML tasks created through ``POST request``.

BASE = "/_sme/async_requests"
LIMITS = Limits(keep_alive_ms=5 * 86_400_000, max_running=3, max_tasks=100)
needs_sml = pytest.mark.skipif(not hasattr(sml, "SmlJob"), reason="SmlJob (branch i13/smlplan) is not merged yet")
EVENTS = 25


@pytest.fixture
async def events(es: AsyncElasticsearch) -> AsyncElasticsearch:
    ops: list[dict[str, Any]] = []
    for i in range(EVENTS):
        ops += [{"index": {"_id": f"e{i:02d}"}},
                {"@timestamp": f"2024-05-01T10:{i:02d}:00.000Z", "event": {"category": "process", "code": 4624 + i % 2},
                 "host": {"name": f"h{i % 3}"}, "user": {"name": "Пётр" if i % 2 else "bob, \"the\" builder"}}]
    await es.bulk(index="events", operations=ops, refresh=True)
    return es


async def finished_task(http: Any, query: str = "process where true") -> str:
    """A finished background task running the EQL ``query`` over ``events``; its id."""
    app = http.app
    request = EqlRequest.parse("events", {"query": query, "size": 100})
    job = EqlJob.compile(request, app[keys.CATALOG], QueryOptions.of(app[keys.SETTINGS]))
    view = await app[keys.BACKGROUND].create(job, DEFAULT_USER, {}, LIMITS, {"query": query}, [])
    await until(http, view.record.id, "COMPLETED")
    return view.record.id


async def until(http: Any, task_id: str, *states: str) -> dict[str, Any]:
    for _ in range(600):
        resp = await http.get(f"{BASE}/status/{task_id}")
        status = await resp.json()
        if status["status"] in states:
            return status
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} never reached {states}: {status}")


async def download(http: Any, task_id: str, body: Any = None, status: int = 200) -> aiohttp.ClientResponse:
    resp = await http.post(f"{BASE}/file_download/{task_id}", json=body)
    assert resp.status == status, await resp.text()
    return resp


async def stored_events(http: Any, task_id: str) -> list[Any]:
    return (await (await http.get(f"{BASE}/response/{task_id}")).json())["events"]


def leftovers(http: Any) -> list[Path]:
    return list(http.app[keys.SETTINGS].data_dir.glob(".export-*"))


async def test_download_defaults_to_json_named_after_the_task(events: AsyncElasticsearch, http: Any) -> None:
    task_id = await finished_task(http)
    resp = await download(http, task_id)
    assert resp.headers["Content-Type"] == "application/json"
    assert resp.headers["Content-Disposition"] == (f"attachment; filename=\"{task_id}.json\"; "
                                                   f"filename*=UTF-8''{task_id}.json")
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    rows = json.loads(await resp.read())
    assert rows == await stored_events(http, task_id) and len(rows) == EVENTS
    assert leftovers(http) == []


async def test_download_results_size_and_all_results(events: AsyncElasticsearch, http: Any) -> None:
    task_id = await finished_task(http)
    everything = await stored_events(http, task_id)
    first = json.loads(await (await download(http, task_id, {"download_results_size": 7})).read())
    assert first == everything[:7]
    whole = json.loads(await (await download(http, task_id, {"download_results_size": 7,
                                                              "download_all_results": True})).read())
    assert whole == everything


async def test_stored_rows_are_read_in_pages_up_to_the_count(events: AsyncElasticsearch, http: Any) -> None:
    task_id = await finished_task(http)
    store = http.app[keys.BACKGROUND].searches.store
    stored = [orjson.dumps(row) for row in await store.rows(task_id, 0, EVENTS)]
    pages = list(store.read_rows(task_id, 10, batch=4))
    assert [len(p) for p in pages] == [4, 4, 2] and [r for p in pages for r in p] == stored[:10]
    assert [r for p in store.read_rows(task_id, 100, batch=7) for r in p] == stored  # fewer stored: all of them
    assert list(store.read_rows("nosuchtask", 5)) == []


async def test_download_compressed_with_a_unicode_name(events: AsyncElasticsearch, http: Any) -> None:
    task_id = await finished_task(http)
    resp = await download(http, task_id, {"file_name": 'отчёт "май"\r\n', "compress_results": True})
    assert resp.headers["Content-Type"] == "application/zip"
    assert resp.headers["Content-Disposition"] == (
        "attachment; filename=\"_____ ___.zip\"; "
        "filename*=UTF-8''%D0%BE%D1%82%D1%87%D1%91%D1%82%20%D0%BC%D0%B0%D0%B9.zip")
    with zipfile.ZipFile(io.BytesIO(await resp.read())) as archive:
        assert archive.namelist() == ["отчёт май.json"]
        assert json.loads(archive.read("отчёт май.json")) == await stored_events(http, task_id)


async def test_each_download_is_in_the_task_log(events: AsyncElasticsearch, http: Any) -> None:
    task_id = await finished_task(http)
    body = await (await download(http, task_id, {"file_name": "r", "download_results_size": 3})).read()
    logs = (await (await http.get(f"{BASE}/logs/{task_id}")).json())["logs"]
    assert logs[-1]["level"] == "INFO"
    assert logs[-1]["message"] == f"export r.json: json, 3 rows, {len(body)} bytes"


@pytest.mark.parametrize("body, reason", [
    ({"file_type": "pdf"}, "[file_type] must be one of [json, csv, xlsx], got [pdf]"),
    ({"download_results_size": 0}, "[download_results_size] must be an integer of at least 1, got [0]"),
    ({"compress_results": "zip"}, "[compress_results] must be a boolean, got [zip]"),
])
async def test_download_refuses_bad_bodies(events: AsyncElasticsearch, http: Any, body: Any, reason: str) -> None:
    task_id = await finished_task(http)
    error = await (await download(http, task_id, body, status=400)).json()
    assert error["error"]["type"] == "illegal_argument_exception" and error["error"]["reason"] == reason
    assert leftovers(http) == []


async def test_download_of_an_unknown_task_is_404(http: Any) -> None:
    error = await (await download(http, "nosuchtask", status=404)).json()
    assert error["error"]["type"] == "resource_not_found_exception"


async def test_download_of_a_running_task_is_409(logs: AsyncElasticsearch, http: Any, slow: None) -> None:
    app = http.app
    job = EsqlJob.compile(SLOW, None, None, app[keys.CATALOG], QueryOptions.of(app[keys.SETTINGS]))
    view = await app[keys.BACKGROUND].create(job, DEFAULT_USER, {}, LIMITS, {"query": SLOW}, [])
    await until(http, view.record.id, "RUNNING")
    error = await (await download(http, view.record.id, status=409)).json()
    assert error["error"]["type"] == "status_exception"
    assert error["error"]["reason"] == (f"background task [{view.record.id}] has not finished yet: RUNNING; "
                                        "only a finished task can be downloaded")


# SML end to end (needs SmlJob)
AUTH = [("2024-05-01T10:00:00.000Z", "mail", "alice", 4624), ("2024-05-01T10:05:00.000Z", "mail", "Пётр", 4625),
        ("2024-05-01T10:10:00.000Z", "dc01", "alice", 4624)]
RANGE = {"dtStart": "2024-05-01T00:00:00Z", "dtEnd": "2024-05-02T00:00:00Z"}


async def sml_task(http: Any, es: AsyncElasticsearch, query: str) -> str:
    ops: list[dict[str, Any]] = []
    for i, (ts, host, user, code) in enumerate(AUTH, 1):
        ops += [{"index": {"_id": f"e{i}"}},
                {"@timestamp": ts, "host": {"name": host}, "user": {"name": user}, "event": {"code": code}}]
    await es.bulk(index="auth", operations=ops, refresh=True)
    resp = await http.post(f"{BASE}/request", json={"query": query, **RANGE})
    assert resp.status == 200, await resp.text()
    task_id = (await resp.json())["id"]
    await until(http, task_id, "COMPLETED")
    return task_id


@needs_sml
async def test_sml_task_to_csv_and_xlsx(es: AsyncElasticsearch, http: Any) -> None:
    task_id = await sml_task(http, es, "source auth | table @timestamp, host.name, user.name, event.code")
    csv_body = await (await download(http, task_id, {"file_type": "csv"})).read()
    assert list(csv.reader(io.StringIO(csv_body.decode(), newline=""))) == [
        ["@timestamp", "host.name", "user.name", "event.code"],
        *[[ts, host, user, str(code)] for ts, host, user, code in reversed(AUTH)]]  # newest first
    xlsx_body = await (await download(http, task_id, {"file_type": "xlsx"})).read()
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx_body))["results"]
    assert [list(r) for r in sheet.iter_rows(values_only=True)] == [
        ["@timestamp", "host.name", "user.name", "event.code"], *[list(a) for a in reversed(AUTH)]]
    assert leftovers(http) == []
