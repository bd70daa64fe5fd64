"""ES|QL's rules for the shared compiler and executor (see ``query/dialect.py``)."""

from __future__ import annotations

from typing import Any, Callable

from .. import aggregates
from ..dialect import Dialect
from ..evaluate import MV_WARNING, Fn, Scope, compile_expr, guarded, verify_fail
from ..expr import Call, Expr, Literal, Star
from .functions import AGGREGATES, ALIASES, CAST_FUNCTIONS, aggregate_constants, compile_call
from . import operators

# String literals compared with values of these types are cast to the type first.
_IMPLICIT_CASTS = ("date", "ip", "version", "date_nanos", "boolean")


def cast(value: Expr, target: str, scope: Scope) -> tuple[Fn, str]:
    """``value::target``: a call of the conversion function for ``target`` (TO_DATETIME...)."""
    return compile_call(Call(CAST_FUNCTIONS[target], (value,), src=value.src), scope)


def coerce_literal(expr: Expr, target: str, scope: Scope) -> tuple[Fn, str] | None:
    """A string literal compared with a date/ip/version/boolean value is cast implicitly."""
    if isinstance(expr, Literal) and expr.type == "keyword" and target in _IMPLICIT_CASTS:
        return cast(expr, target, scope)
    return None


def is_aggregate(name: str) -> bool:
    return ALIASES.get(name, name) in AGGREGATES


def aggregate(call: Call, scope: Scope, meter: aggregates.Meter) -> tuple[Fn | None, Fn | None, Callable[[], Any], str]:
    """One aggregate function call of STATS: the value it reads, the second input some read
    (WEIGHTED_AVG's weight, TOP's output field), the accumulator factory and the type."""
    name = ALIASES.get(call.name, call.name)
    args = call.args
    if name == "COUNT" and (not args or isinstance(args[0], Star)):
        return None, None, aggregates.CountRows, "long"
    if not args:
        raise verify_fail(call.src, f"error building [{name.lower()}]: expects at least one argument")
    fn, kind = compile_expr(args[0], scope)
    if not aggregates.accepts(name, kind):
        raise verify_fail(call.src, f"argument of [{call.src.text}] must be [numeric except unsigned_long or "
                                    f"counter types], found value [{args[0].src.text}] type [{kind}]")
    second = args[1] if name in aggregates.TWO_INPUTS and len(args) > 1 else \
        args[3] if name == "TOP" and len(args) > 3 else None
    other_fn, other_kind = compile_expr(second, scope) if second is not None else (None, None)
    extra = aggregate_constants(name, call, scope)
    factory, out = aggregates.resolve(name, kind, extra, other_kind, meter)
    return fn, other_fn, factory, out


ESQL = Dialect(
    name="esql",
    call=compile_call,
    cast=cast,
    coerce=coerce_literal,
    single=guarded,
    multi_value_warning=MV_WARNING,
    is_aggregate=is_aggregate,
    canonical=lambda name: ALIASES.get(name, name),
    aggregate=aggregate,
    indices=operators.resolve_indices,
    steps=operators.STEPS,
    sources=operators.SOURCES,
)
