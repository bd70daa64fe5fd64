"""JSON encoding for what the store writes itself (merged update sources, mappings).

orjson refuses to encode values nested deeper than 254 levels, and Python's own encoder
recurses; Elasticsearch accepts documents nested up to 1000 levels. ``dumps`` uses orjson and
falls back, for the rare deep value, to an encoder with an explicit stack that writes the
same compact JSON.
"""

from __future__ import annotations

from typing import Any

import orjson


class _Raw(bytes):
    """Punctuation already encoded, pushed on the stack between values."""


def dumps(value: Any) -> bytes:
    """``orjson.dumps(value)``, at any nesting depth."""
    try:
        return orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        if "Recursion limit" not in str(exc):
            raise
    parts: list[bytes] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if type(item) is _Raw:
            parts.append(item)
        elif isinstance(item, dict):
            stack.append(_Raw(b"}"))
            for i, (key, child) in enumerate(reversed(list(item.items()))):
                stack.append(child)
                stack.append(_Raw(orjson.dumps(str(key)) + b":"))
                if i < len(item) - 1:
                    stack.append(_Raw(b","))
            stack.append(_Raw(b"{"))
        elif isinstance(item, (list, tuple)):
            stack.append(_Raw(b"]"))
            for i, child in enumerate(reversed(item)):
                stack.append(child)
                if i < len(item) - 1:
                    stack.append(_Raw(b","))
            stack.append(_Raw(b"["))
        else:
            parts.append(orjson.dumps(item))
    return b"".join(parts)
