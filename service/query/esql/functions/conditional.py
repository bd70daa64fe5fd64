"""Conditionals: COALESCE, CASE, GREATEST, LEAST."""

from __future__ import annotations

from typing import Any

from ... import types as T
from ...evaluate import Fn, MV_WARNING, Scope, sort_key, verify_fail
from ...expr import Binary, Call, Literal
from ._base import register


# conditionals

def _common_type(expr: Call, kinds: list[str]) -> str:
    known = [k for k in kinds if k != "null"]
    if not known:
        return "null"
    if all(T.is_numeric(k) for k in known):
        out = known[0]
        for k in known[1:]:
            out = T.widen(out, k)
        return out
    if all(T.is_string(k) for k in known):
        return "keyword" if len(set(known)) > 1 else known[0]
    if len(set(known)) > 1:
        raise verify_fail(expr.src, f"second argument of [{expr.src.text}] must be [{known[0]}], found value "
                                    f"[{expr.args[kinds.index(known[1])].src.text}] type [{known[1]}]")
    return known[0]


def _widen_value(v: Any, kind: str) -> Any:
    if kind == "double" and v is not None and not isinstance(v, float):
        return [float(x) for x in v] if isinstance(v, list) else float(v)
    return v


@register("COALESCE")
def _coalesce(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    kind = _common_type(expr, kinds)

    def run(row: list[Any]) -> Any:
        for f in args:
            v = f(row)
            if v is not None:
                return _widen_value(v, kind)
        return None
    return run, kind


@register("CASE")
def _case(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    if len(args) < 2:
        raise verify_fail(expr.src, f"error building [case]: expects at least two arguments")
    conditions = [args[i] for i in range(0, len(args) - 1, 2)]
    for i in range(0, len(args) - 1, 2):
        if kinds[i] not in ("boolean", "null"):
            raise verify_fail(expr.src, f"{['first', 'second', 'third'][min(i, 2)] if i < 3 else str(i + 1) + 'th'} "
                                        f"argument of [{expr.src.text}] must be [boolean], found value "
                                        f"[{expr.args[i].src.text}] type [{kinds[i]}]")
    values = [args[i] for i in range(1, len(args), 2)]
    value_kinds = [kinds[i] for i in range(1, len(args), 2)]
    default = args[-1] if len(args) % 2 == 1 else None
    if default is not None:
        value_kinds.append(kinds[-1])
    kind = _common_type(expr, value_kinds)
    warnings, src = scope.warnings, expr.src
    for value_expr in expr.args[1::2] + ((expr.args[-1],) if default is not None else ()):
        if isinstance(value_expr, Binary) and any(isinstance(side, Literal) and side.type == "null"
                                                  for side in (value_expr.left, value_expr.right)):
            s = value_expr.src
            warnings.add(f"Line {s.line}:{s.col}: Expression [{s.text}] always evaluates to NULL.")

    def run(row: list[Any]) -> Any:
        for cond, value in zip(conditions, values):
            c = cond(row)
            if type(c) is list:
                warnings.failure(src, MV_WARNING, result="false")
                continue
            if c is True:
                return _widen_value(value(row), kind)
        return _widen_value(default(row), kind) if default is not None else None
    return run, kind


@register("GREATEST", "LEAST")
def _greatest(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    kind = _common_type(expr, kinds)
    pick = max if expr.name == "GREATEST" else min
    key = sort_key(kind)

    def run(row: list[Any]) -> Any:
        values = []
        for f in args:
            v = f(row)
            if v is None:
                return None
            values.extend(v if type(v) is list else [v])
        return _widen_value(pick(values, key=key) if key else pick(values), kind)
    return run, kind
