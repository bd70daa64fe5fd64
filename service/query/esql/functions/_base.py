"""The registry every family adds to, with the tables and helpers they share."""

from __future__ import annotations

from typing import Any, Callable

from ... import signatures
from ... import types as T
from ...evaluate import EvalError, Fn, Scope, guarded
from ...expr import Call


AGGREGATES = {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX", "MEDIAN", "PERCENTILE", "STD_DEV", "VARIANCE",
              "VALUES", "TOP", "MEDIAN_ABSOLUTE_DEVIATION", "WEIGHTED_AVG", "FIRST", "LAST", "PRESENT", "ABSENT"}
CAST_FUNCTIONS = {"integer": "TO_INTEGER", "long": "TO_LONG", "double": "TO_DOUBLE", "unsigned_long": "TO_UNSIGNED_LONG",
                  "keyword": "TO_STRING", "boolean": "TO_BOOLEAN", "date": "TO_DATETIME", "ip": "TO_IP",
                  "version": "TO_VERSION", "date_nanos": "TO_DATE_NANOS"}
ALIASES = {"TO_INT": "TO_INTEGER", "TO_DBL": "TO_DOUBLE", "TO_STR": "TO_STRING", "TO_BOOL": "TO_BOOLEAN",
           "TO_DT": "TO_DATETIME", "TO_VER": "TO_VERSION", "TO_UL": "TO_UNSIGNED_LONG", "TO_ULONG": "TO_UNSIGNED_LONG",
           "TO_TEXT": "TO_STRING", "STD_VAR": "VARIANCE"}


class ConversionError(EvalError):
    """A value that does not parse: Elasticsearch reports these without a source location."""


def _nf(text: Any) -> EvalError:
    return ConversionError(f'java.lang.NumberFormatException: For input string: "{text}"')


# --- the registry -------------------------------------------------------------------------

Resolver = Callable[[Call, list[str], list[Fn], Scope], tuple[Fn, str]]
REGISTRY: dict[str, Resolver] = {}


def register(*names: str) -> Callable[[Resolver], Resolver]:
    def add(resolver: Resolver) -> Resolver:
        for name in names:
            REGISTRY[name] = resolver
        return resolver
    return add


def _arity(expr: Call, lo: int, hi: int | None = None) -> None:
    signatures.arity(expr, lo, lo if hi is None else hi)


_require = signatures.require


def _single(fn: Callable[..., Any], out: str) -> Resolver:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        if "null" in kinds:
            return (lambda row: None), out if out != "same" else kinds[0]
        return guarded(fn, expr.src, scope.warnings, args), kinds[0] if out == "same" else out
    return resolve


NUMERIC = T.NUMERIC
