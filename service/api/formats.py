"""Output formats for every API: Elasticsearch's text formats (csv, tsv, txt), chosen by
``format`` or ``Accept``, their ``Content-Type``s, and json's ``columnar`` layout.

The interface knows no query language: a result is its columns (a name and a type each) and an
iterable of rows, each a list of values already rendered for the wire (``None``, booleans,
numbers, strings, lists of them). Text comes out as chunks (``text_chunks``) so a large result
can be written as it is read; only txt has to see every row before its first line (its column
widths).
"""

from __future__ import annotations

import csv
import io
from itertools import islice
from typing import Any, Iterable, Iterator, NamedTuple, Sequence
from urllib.parse import unquote_plus

from aiohttp import web

from ..errors import BadRequest

TEXT_FORMATS = {"csv": "text/csv; charset=utf-8; header=present", "tsv": "text/tab-separated-values; charset=utf-8",
                "txt": "text/plain; charset=utf-8"}
FORMATS = ("json", *TEXT_FORMATS)
_ACCEPTED = (("csv", "text/csv"), ("tsv", "text/tab-separated-values"), ("txt", "text/plain"))
BATCH_ROWS = 1000  # rows per chunk of csv or tsv


class Column(NamedTuple):
    name: str
    type: str


def response_format(request: web.Request) -> str:
    """The format a request asks for: ``format``, else the first text media type named in
    ``Accept``, else json. ``delimiter`` belongs to csv alone."""
    fmt = request.query.get("format")
    if fmt is None:
        accept = request.headers.get("Accept", "")
        for name, media in _ACCEPTED:
            if media in accept:
                return name
        return "json"
    if fmt not in FORMATS:
        raise BadRequest(f"Invalid format [{fmt}]; supported formats are json, csv, tsv, txt")
    delimiter = request.query.get("delimiter")
    if delimiter is not None and fmt != "csv":
        raise BadRequest(f"parameter: [delimiter] can only be used with the format [csv] for request [{request.path}]")
    return fmt


def csv_delimiter(request: web.Request) -> str:
    """The ``delimiter`` parameter as ES's CSV format takes it: URL-decoded once more, one
    character, not a quote, line break or tab."""
    raw = request.query.get("delimiter")
    if raw is None:
        return ","
    delimiter = unquote_plus(raw)
    if len(delimiter) != 1:
        raise BadRequest(f"invalid {'multi-character' if delimiter else 'empty'} delimiter [{delimiter}]")
    if delimiter in '"\n\r':
        raise BadRequest(f"illegal reserved character specified as delimiter [{delimiter}]")
    if delimiter == "\t":
        raise BadRequest("illegal delimiter [TAB] specified as delimiter for the [csv] format; choose the [tsv] "
                         "format instead")
    return delimiter


def media_type(fmt: str) -> str:
    """A text format's media type without its parameters."""
    return TEXT_FORMATS[fmt].split(";")[0]


def cell(value: Any) -> str:
    """One value as a text cell: null is empty, booleans are ``true``/``false``, a
    multi-value is ``[a, b]``."""
    if value is None:
        return ""
    if isinstance(value, list):
        return "[" + ", ".join(cell(x) for x in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def text_lines(fmt: str, rows: Sequence[Sequence[Any]], widths: Sequence[int] = (), delimiter: str = ",", *,
               header: bool = False) -> str:
    """Lines of text format ``fmt``: ``rows`` of values, or with ``header`` the column names
    (``rows`` is then ``[names]``; txt adds the separator line). txt pads to ``widths``
    (``txt_widths``)."""
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(
            rows if header else [[cell(v) for v in r] for r in rows])
        return out.getvalue()
    if fmt == "tsv":
        return "".join("\t".join(_tsv_escape(v if header else cell(v)) for v in line) + "\n" for line in rows)
    if fmt != "txt":
        raise ValueError(f"not a text format: {fmt}")
    if header:
        return "|".join(n.center(w) for n, w in zip(rows[0], widths)) + "\n" + "+".join("-" * w for w in widths) + "\n"
    return "".join("|".join(cell(v).ljust(w) for v, w in zip(r, widths)) + "\n" for r in rows)


def txt_widths(names: Sequence[str], rows: Iterable[Sequence[Any]],
               widths: Sequence[int] | None = None) -> list[int]:
    """txt's column widths: the longest cell or name, at least 15; ``widths`` carries on
    from earlier rows, for a result read batch by batch."""
    widths = [max(len(n), 15) for n in names] if widths is None else list(widths)
    for r in rows:
        widths = [max(w, len(cell(v))) for w, v in zip(widths, r)]
    return widths


def text_chunks(fmt: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]],
                delimiter: str = ",") -> Iterator[str]:
    """The result in text format ``fmt``, header first, as chunks to write in turn, a batch of
    rows at a time (txt reads every row first, for its column widths)."""
    names = [c.name for c in columns]
    widths: list[int] = []
    if fmt == "txt":
        rows = list(rows)
        widths = txt_widths(names, rows)
    yield text_lines(fmt, [names], widths, delimiter, header=True)
    it = iter(rows)
    while batch := list(islice(it, BATCH_ROWS)):
        yield text_lines(fmt, batch, widths, delimiter)


def render_text(fmt: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]], delimiter: str = ",") -> str:
    return "".join(text_chunks(fmt, columns, rows, delimiter))


def text_response(fmt: str, columns: Sequence[Column], rows: Iterable[Sequence[Any]],
                  delimiter: str = ",") -> web.Response:
    """A whole result in text format ``fmt``, with its ``Content-Type``."""
    response = web.Response(text=render_text(fmt, columns, rows, delimiter))
    response.headers["Content-Type"] = TEXT_FORMATS[fmt]
    return response


def columnar(columns: Sequence[Column], rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """json's ``columnar`` values: one list per column (an empty one each when no rows)."""
    return [list(c) for c in zip(*rows)] if rows else [[] for _ in columns]


def _tsv_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")
