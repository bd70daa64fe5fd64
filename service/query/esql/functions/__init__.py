"""The ES|QL scalar function library: name -> (argument check, implementation).

Split by family into sibling modules; each adds its functions to the one registry in
``_base`` when imported, and importing this package imports them all."""

from __future__ import annotations

from ... import signatures
from ...evaluate import Fn, Scope, compile_expr, verify_fail
from ...expr import Call
from . import bucket, conditional, dates, hashing, maths, multivalue, network, strings  # noqa: F401  (they register)
from ._base import AGGREGATES, ALIASES, CAST_FUNCTIONS, REGISTRY  # noqa: F401  (CAST_FUNCTIONS: for the dialect)
from .aggregate import aggregate_constants  # noqa: F401  (for the dialect)
from .conversion import CONVERTERS, _converter


def compile_call(expr: Call, scope: Scope) -> tuple[Fn, str]:
    name = ALIASES.get(expr.name, expr.name)
    if name in AGGREGATES:
        raise verify_fail(expr.src, f"aggregate function [{expr.src.text}] not allowed outside STATS command")
    if name in CONVERTERS:
        return _converter(name, expr, scope)
    resolver = REGISTRY.get(name)
    if resolver is None:
        raise verify_fail(expr.src, f"Unknown function [{expr.name.lower()}]")
    compiled = [compile_expr(a, scope) for a in expr.args]
    kinds = [k for _, k in compiled]
    signatures.check(name, expr, kinds)
    return resolver(expr, kinds, [f for f, _ in compiled], scope)
