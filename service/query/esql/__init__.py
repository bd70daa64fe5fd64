"""ES|QL: parse to the shared plan, run it, and render values the way Elasticsearch prints them."""

from __future__ import annotations

from typing import Any

from ...store.dates import format_millis, format_nanos
from ..evaluate import Warnings
from ..execute import Result, run_plan
from .parser import parse

__all__ = ["Result", "execute", "render_value"]


async def execute(text: str, params: list[Any] | dict[str, Any] | None, catalog: Any, reader: Any) -> Result:
    plan = parse(text, params)
    return await run_plan(plan, catalog, reader, Warnings())


def _one(value: Any, kind: str) -> Any:
    if kind == "date":
        return format_millis(value)
    if kind == "date_nanos":
        return format_nanos(value)
    if kind in ("time_duration", "date_period"):
        return f"{value[0]}{value[1]}"
    return value


def render_value(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if type(value) is list:
        return [_one(v, kind) for v in value]
    return _one(value, kind)
