"""Readers for the ES|QL reference material: csv-spec test files and CSV data sets."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TYPE_ALIASES = {"i": "integer", "l": "long", "d": "double", "ul": "unsigned_long", "k": "keyword", "s": "keyword",
                "string": "keyword", "txt": "text", "bool": "boolean", "n": "null", "date": "date", "dt": "date",
                "datetime": "date", "v": "version", "short": "integer", "byte": "integer"}


@dataclass
class SpecTest:
    file: str
    name: str
    query: str
    capabilities: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    warning_regexes: list[str] = field(default_factory=list)
    ignore_order: bool = False
    columns: list[tuple[str, str]] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    skip_below: str | None = None  # ``#[skip:-X]``: upstream skips it up to version X

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


def normalise_type(kind: str) -> str:
    kind = kind.strip().lower()
    return TYPE_ALIASES.get(kind, kind)


def split_cells(line: str) -> list[str]:
    """Split a result row on '|' (no escaping exists in the format)."""
    return [c.strip() for c in line.split("|")]


def parse_spec_file(path: Path) -> list[SpecTest]:
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("//") and not ln.startswith("#")]
    tests: list[SpecTest] = []
    i = 0
    while i < len(lines):
        name, _, marker = lines[i].partition("#")
        i += 1
        test = SpecTest(path.name.removesuffix(".csv-spec"), name.strip(), "")
        skip = re.search(r"skip:-([\d.]+)", marker)
        test.skip_below = skip[1] if skip else None
        query_lines: list[str] = []
        while i < len(lines):
            line = lines[i]
            i += 1
            if not query_lines and line.startswith("required_capability:"):
                test.capabilities.append(line.split(":", 1)[1].strip())
                continue
            if not query_lines and re.match(r"^(approximate|skip_flattened_rewrite|request_stored|schema::)", line):
                continue
            if line.endswith(";") and not line.endswith("\\;"):
                query_lines.append(line[:-1])
                break
            query_lines.append(line)
        test.query = "\n".join(query_lines).replace("\\;", ";")
        header_seen = False
        while i < len(lines):
            line = lines[i]
            i += 1
            if line.startswith(";"):
                break
            if line.startswith("warning:"):
                test.warnings.append(line[len("warning:"):].strip())
            elif line.startswith("warningRegex:"):
                test.warning_regexes.append(line[len("warningRegex:"):].strip())
            elif line.startswith("ignoreOrder:"):
                test.ignore_order = line.split(":", 1)[1].strip().lower() == "true"
            elif not header_seen:
                header_seen = True
                for cell in split_cells(line):
                    col_name, _, kind = cell.rpartition(":")
                    test.columns.append((col_name.strip(), normalise_type(kind)))
            else:
                test.rows.append(split_cells(line))
        tests.append(test)
    return tests


def parse_cell(text: str) -> Any:
    """An expected cell: None, a list of strings, or a string (quotes removed)."""
    if text == "null":
        return None
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1]
        return [unquote(x.strip()) for x in re.split(r"(?<!\\),", inner)] if inner.strip() else []
    return unquote(text)


def unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


def load_csv_dataset(path: Path, mapping: dict[str, Any]) -> list[tuple[str | None, dict[str, Any]]]:
    """Rows of a data file as (id, document), following the upstream loader's rules."""
    lines = [ln.strip() for ln in path.read_text().splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("//")]
    header = [c.strip() for c in _split_csv(lines[0])]
    columns = [(h.split(":")[0].strip(), h.split(":")[1].strip() if ":" in h else "keyword") for h in header]
    props = mapping.get("properties", {})
    docs = []
    for line in lines[1:]:
        cells = _split_csv(line)
        doc: dict[str, Any] = {}
        doc_id = None
        for (name, kind), cell in zip(columns, cells):
            cell = cell.strip()
            if name == "_id":
                doc_id = cell
                continue
            parent = name.split(".")[0]
            if "." in name and "fields" in props.get(parent, {}):
                continue  # a multi-field, derived by the server from its parent
            if cell == "":
                continue
            if cell.startswith("[") and cell.endswith("]"):
                values = [_typed(v.strip().replace("\\,", ","), kind) for v in re.split(r"(?<!\\),", cell[1:-1])]
                doc[name] = values if cell != "[]" else []
            else:
                doc[name] = _typed(cell.replace("\\,", ","), kind)
        docs.append((doc_id, doc))
    return docs


def _split_csv(line: str) -> list[str]:
    """Split on commas outside brackets and quotes; ``\\,`` stays inside a value."""
    out, current, depth, quoted, i = [], [], 0, False, 0
    while i < len(line):
        c = line[i]
        if c == "\\" and i + 1 < len(line):
            current.append(line[i:i + 2])
            i += 2
            continue
        if c == '"':
            quoted = not quoted
        elif c == "[" and not quoted:
            depth += 1
        elif c == "]" and not quoted:
            depth -= 1
        if c == "," and depth == 0 and not quoted:
            out.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    out.append("".join(current))
    return [unquote(x.strip()) for x in out]


def _typed(value: str, kind: str) -> Any:
    kind = kind.lower()
    try:
        if kind in ("integer", "long", "short", "byte", "i", "l"):
            return int(value)
        if kind in ("double", "float", "half_float", "scaled_float", "d"):
            return float(value)
    except ValueError:
        return value
    if kind in ("boolean", "bool"):
        return value.lower() == "true"
    return value
