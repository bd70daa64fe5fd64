"""The output formats module's interface: columns and an iterable of rows in, text out,
in chunks; format and delimiter negotiation; json's columnar layout."""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from aiohttp.test_utils import make_mocked_request

from service.api import formats
from service.api.formats import Column, cell, columnar, render_text, text_chunks, text_response
from service.errors import BadRequest

COLUMNS = [Column("host", "keyword"), Column("n", "long")]
ROWS: list[list[Any]] = [["a,b", 1], [None, 2], [["x", "y"], True], ["tab\there\nnew\\line", 3.5]]


def test_cells_as_elasticsearch_writes_them() -> None:
    assert [cell(v) for v in (None, True, False, 3, 2.5, "s", ["a", None, [1, 2]], [])] == \
        ["", "true", "false", "3", "2.5", "s", "[a, , [1, 2]]", "[]"]


def test_csv_quotes_what_needs_it_and_ends_lines_with_crlf() -> None:
    assert render_text("csv", COLUMNS, ROWS) == \
        'host,n\r\n"a,b",1\r\n,2\r\n"[x, y]",true\r\n"tab\there\nnew\\line",3.5\r\n'
    assert render_text("csv", COLUMNS, ROWS[:1], delimiter=";") == "host;n\r\na,b;1\r\n"


def test_tsv_escapes_backslash_tab_and_newline() -> None:
    assert render_text("tsv", COLUMNS, ROWS) == \
        "host\tn\na,b\t1\n\t2\n[x, y]\ttrue\ntab\\there\\nnew\\\\line\t3.5\n"


def test_txt_is_a_table_of_columns_at_least_15_wide() -> None:
    text = render_text("txt", [Column("h", "keyword"), Column("a_rather_long_name", "long")],
                       [["x" * 20, 1], [None, None]])
    assert text.splitlines() == [
        "         h          |a_rather_long_name",
        "--------------------+------------------",
        "xxxxxxxxxxxxxxxxxxxx|1                 ",
        "                    |                  ",
    ]
    assert text.endswith("\n")


@pytest.mark.parametrize("fmt", ["csv", "tsv", "txt"])
def test_no_rows_is_the_header_alone(fmt: str) -> None:
    assert render_text(fmt, COLUMNS, []) == {"csv": "host,n\r\n", "tsv": "host\tn\n",
                                             "txt": "      host     |       n       \n"
                                                    "---------------+---------------\n"}[fmt]


@pytest.mark.parametrize("fmt", ["csv", "tsv"])
def test_csv_and_tsv_stream_in_batches_reading_rows_as_they_go(fmt: str) -> None:
    read = 0

    def rows() -> Iterator[list[Any]]:
        nonlocal read
        for i in range(2 * formats.BATCH_ROWS + 5):
            read += 1
            yield [f"h{i}", i]

    chunks = text_chunks(fmt, COLUMNS, rows())
    first = next(chunks)
    assert read <= formats.BATCH_ROWS + 1  # the first chunk did not need the whole result
    rest = list(chunks)
    assert len(rest) >= 2 and all(rest)
    whole = first + "".join(rest)
    assert whole == render_text(fmt, COLUMNS, [[f"h{i}", i] for i in range(2 * formats.BATCH_ROWS + 5)])
    assert whole.count("\n") == 2 * formats.BATCH_ROWS + 6


def test_txt_takes_any_iterable_of_rows() -> None:
    assert render_text("txt", COLUMNS, iter(ROWS)) == render_text("txt", COLUMNS, ROWS)


def test_not_a_text_format() -> None:
    with pytest.raises(ValueError):
        render_text("json", COLUMNS, ROWS)


@pytest.mark.parametrize("fmt, content_type", [("csv", "text/csv; charset=utf-8; header=present"),
                                               ("tsv", "text/tab-separated-values; charset=utf-8"),
                                               ("txt", "text/plain; charset=utf-8")])
def test_text_response_content_types(fmt: str, content_type: str) -> None:
    response = text_response(fmt, COLUMNS, ROWS)
    assert response.headers["Content-Type"] == content_type
    assert response.text == render_text(fmt, COLUMNS, ROWS)
    assert formats.media_type(fmt) == content_type.split(";")[0]


def test_columnar_is_one_list_per_column() -> None:
    assert columnar(COLUMNS, [[1, 2], [3, 4], [5, None]]) == [[1, 3, 5], [2, 4, None]]
    assert columnar(COLUMNS, []) == [[], []]
    assert columnar([], []) == []


@pytest.mark.parametrize("query, accept, expected", [
    ("", "", "json"), ("", "text/csv", "csv"), ("", "application/json, text/tab-separated-values", "tsv"),
    ("", "text/plain", "txt"), ("?format=txt", "text/csv", "txt"), ("?format=json", "", "json"),
    ("?format=csv&delimiter=%3B", "", "csv"), ("?delimiter=%3B", "text/plain", "txt"),
])
def test_response_format(query: str, accept: str, expected: str) -> None:
    request = make_mocked_request("POST", f"/_query{query}", headers={"Accept": accept} if accept else {})
    assert formats.response_format(request) == expected


@pytest.mark.parametrize("query, message", [
    ("?format=xml", "Invalid format [xml]; supported formats are json, csv, tsv, txt"),
    ("?format=tsv&delimiter=%3B", "parameter: [delimiter] can only be used with the format [csv] for request "
                                   "[/_query]"),
])
def test_response_format_refused(query: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message.replace("[", r"\[").replace("]", r"\]")):
        formats.response_format(make_mocked_request("POST", f"/_query{query}"))


@pytest.mark.parametrize("raw, expected", [(None, ","), ("%3B", ";"), ("%257C", "|"), ("+", " ")])
def test_csv_delimiter(raw: str | None, expected: str) -> None:
    path = "/_query?format=csv" + (f"&delimiter={raw}" if raw is not None else "")
    assert formats.csv_delimiter(make_mocked_request("POST", path)) == expected


@pytest.mark.parametrize("raw", ["%2C%2C", "%22", "%0A", "%09", ""])
def test_csv_delimiter_refused(raw: str) -> None:
    with pytest.raises(BadRequest):
        formats.csv_delimiter(make_mocked_request("POST", f"/_query?format=csv&delimiter={raw}"))
