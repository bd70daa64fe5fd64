"""Constant arguments of aggregates."""

from __future__ import annotations

from typing import Any

from ... import signatures
from ...evaluate import Scope, compile_expr, verify_fail
from ...expr import Call, Column, Literal
from ._base import _require
from .strings import STRING


# --- constant arguments of aggregates ------------------------------------------------------

def aggregate_constants(name: str, call: Call, scope: Scope) -> list[Any]:
    """The arguments after the first of aggregate ``name``, checked as ES checks them while
    planning (arity, constness, type, TOP's limit and order); a percentile outside 0..100
    is kept, as ES keeps it, and gives null."""
    if name == "PERCENTILE":
        signatures.arity(call, 2, 2, name="PERCENTILE")
        return [_aggregate_constant(call, 1, scope, ("integer", "long", "double"), "numeric except unsigned_long")]
    if name == "TOP":
        signatures.arity(call, 3, 4, name="TOP")
        limit = _aggregate_constant(call, 1, scope, ("integer",), "integer")
        order = _aggregate_constant(call, 2, scope, STRING, "string")
        if limit <= 0:
            raise verify_fail(call.src, f"Limit must be greater than 0 in [{call.src.text}], found [{limit}]")
        if order.lower() not in ("asc", "desc"):
            raise verify_fail(call.src, f"Invalid order value in [{call.src.text}], expected [ASC, DESC] but got "
                                        f"[{order}]")
        return [limit, order]
    if name == "WEIGHTED_AVG" and len(call.args) > 1:
        _, weight = compile_expr(call.args[1], scope)
        _require(call, 1, weight, ("integer", "long", "double"), "numeric except unsigned_long or counter types")
    return [a.value for a in call.args[1:] if isinstance(a, Literal)]


def _aggregate_constant(call: Call, i: int, scope: Scope, allowed: tuple[str, ...], what: str) -> Any:
    from ...evaluate import fold, walk
    arg, ordinal = call.args[i], ["first", "second", "third", "fourth"][i]
    _, kind = compile_expr(arg, scope)
    # ES checks these while verifying, before it propagates constants: a column is never one
    constant, value = fold(arg, scope) if not any(isinstance(e, Column) for e in walk(arg)) else (False, None)
    if not constant:
        raise verify_fail(call.src, f"{ordinal} argument of [{call.src.text}] must be a constant, received "
                                    f"[{arg.src.text}]")
    if value is None:
        raise verify_fail(call.src, f"{ordinal} argument of [{call.src.text}] cannot be null, received "
                                    f"[{arg.src.text}]")
    if kind not in allowed or type(value) is list:
        raise verify_fail(call.src, f"{ordinal} argument of [{call.src.text}] must be [{what}], found value "
                                    f"[{arg.src.text}] type [{kind}]")
    return value
