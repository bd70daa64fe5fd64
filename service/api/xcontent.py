"""What Elasticsearch's JSON parser (Jackson) says about a value, for error messages.

ES names JSON tokens (``START_OBJECT``, ``VALUE_STRING``) and prefixes parse errors with the
``[line:column]`` where the parser stood, and reads a number's text as written. orjson parses much
faster but keeps neither, so for these few cases the raw bytes are scanned for a key or value.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from ..store.document_parser import MAX_NESTING_DEPTH
from ..store.mapping_parser import json_depth



def token(value: Any) -> str:
    """The token a JSON value starts with, as ES names it."""
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, str):
        return "VALUE_STRING"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_NUMBER"


_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def text(value: Any, raw: bytes, path: list[str]) -> str:
    """A scalar as the parser's ``text()`` gives it: numbers exactly as written (orjson has
    already turned ``1e3`` into ``1000.0`` and a huge integer into a float)."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    match = _NUMBER.match(raw, _offset(raw, path))
    return match[0].decode() if match else repr(value)


def too_deep(exc: orjson.JSONDecodeError) -> bool:
    """Whether orjson stopped because the input nests deeper than it reads (1024 levels)."""
    return "depth" in str(exc)


def nesting_depth_exceeded(value: Any) -> bool:
    """Whether a parsed value nests deeper than ES's parser reads (1000 levels, the root is 1)."""
    return json_depth(value, MAX_NESTING_DEPTH) > MAX_NESTING_DEPTH


def locate(raw: bytes, path: list[str], *, key: bool = False) -> str:
    """``line:column`` (1-based, in bytes, as Jackson counts for byte input) of the value at
    ``path`` in the JSON object ``raw``, or of its key when ``key``; ``1:1`` if not found."""
    offset = _offset(raw, path, key=key)
    line = raw.count(b"\n", 0, offset) + 1
    column = offset - (raw.rfind(b"\n", 0, offset) + 1) + 1
    return f"{line}:{column}"


def _offset(raw: bytes, path: list[str], *, key: bool = False) -> int:
    """The byte offset of the value at ``path`` (or of its key), 0 if not found; a scan with
    a stack of open brackets, not a parse, so any nesting is fine."""
    containers: list[int] = []  # the open brackets, innermost last
    matched = 0  # how many keys of ``path`` lead to the innermost open object
    expecting_key = False
    pos = 0
    while pos < len(raw):
        c = raw[pos]
        if c in b"{[":
            containers.append(c)
            expecting_key = c == 0x7B
        elif c in b"}]":
            if containers:
                containers.pop()
            matched = min(matched, len(containers))
        elif c == 0x2C:  # a comma: a key follows inside an object
            expecting_key = bool(containers) and containers[-1] == 0x7B
        elif c == 0x22:  # a string: a key, or a value to skip
            end = _string_end(raw, pos)
            if expecting_key and len(containers) == matched + 1 and orjson.loads(raw[pos:end]) == path[matched]:
                if matched == len(path) - 1:
                    return pos if key else _value_start(raw, end)
                matched += 1
            expecting_key = False
            pos = end
            continue
        pos += 1
    return 0


def _string_end(raw: bytes, pos: int) -> int:
    pos += 1
    while pos < len(raw):
        c = raw[pos]
        if c == 0x5C:
            pos += 2
        elif c == 0x22:
            return pos + 1
        else:
            pos += 1
    return pos


def _value_start(raw: bytes, pos: int) -> int:
    while pos < len(raw) and raw[pos] in b" \t\r\n:":
        pos += 1
    return pos
