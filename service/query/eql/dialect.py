"""EQL's rules for the shared compiler and executor (see ``query/dialect.py``).

Elasticsearch runs an EQL condition as index queries where it can and as a script per
document elsewhere; what a user sees of that is reproduced here:

- A predicate over a multi-valued field holds when any value satisfies it (``any_value``).
  Functions and arithmetic are no exception: Elasticsearch rewrites their script to run
  once per value of each field it reads (``MultiValueAwareScriptQuery``), so here a
  multi-valued argument gives one result per combination of values, which the predicate
  around it then reads under the any-value rule. Null in gives null out, never a warning.
- A literal compared with a field becomes a term of the field's type, as the query
  Elasticsearch builds for it: a string against a date, ip, version, boolean or number
  field is parsed (ISO-8601 in UTC or epoch millis for dates), a number against a date is
  epoch millis, a number against a string field is its text. A literal the field cannot
  read fails the search as the shard's query does.
- Runtime failures of Java arithmetic (integer ``/ by zero``, ``long overflow``) and of
  functions fail the search as Elasticsearch's script does; double arithmetic follows Java
  (``1 / 0.0`` is Infinity).
"""

from __future__ import annotations

import math
import re
from itertools import product
from typing import Any, Callable

from ...errors import IndexNotFound, ServiceError
from ...store.catalog import Catalog, Index
from ...store.dates import parse_iso_nanos
from ...store.java_values import java_double
from ...store.mapping import ValueConversionError, _ip
from ... import patterns
from .. import evaluate
from .. import types as T
from ..dialect import Dialect
from ..evaluate import EvalError, Fn, Scope, VerificationError, Warnings, verify_fail
from ..expr import Call, Expr, Literal, Src
from ..plan import Source
from .functions import compile_call
from .operators import STEPS

MAX_COMBINATIONS = 1_000_000  # Painless's loop limit, which a per-value script would hit first
_LOOP_LIMIT = "The maximum number of statements that can be executed in a loop has been reached."


# --- failures of the search ------------------------------------------------------------------

def search_failure(cause: ServiceError) -> ServiceError:
    """Elasticsearch's answer when every shard failed the same way: a 400
    ``search_phase_execution_exception`` whose cause is the shard's."""
    return ServiceError("all shards failed", status=400, type="search_phase_execution_exception", phase="query",
                        grouped=True, caused_by=cause)


def query_failure(message: str) -> ServiceError:
    """A term the field cannot read (``"abc"`` for a long field): the shard's query fails."""
    return search_failure(ServiceError(f"failed to create query: {message}", type="query_shard_exception"))


def script_failure(java_message: str) -> ServiceError:
    """A Java exception inside the per-document script (``java.lang.ArithmeticException: /
    by zero``): a ``script_exception`` caused by that exception."""
    java_class, _, text = java_message.partition(": ")
    cause = ServiceError(text, type=_exception_type(java_class.rpartition(".")[2]))
    return search_failure(ServiceError("runtime error", type="script_exception", lang="painless", caused_by=cause))


def _exception_type(simple_class: str) -> str:
    """Elasticsearch's error type of a Java exception class: ``ArithmeticException`` is
    ``arithmetic_exception``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", simple_class).lower()


# --- single-value operations ------------------------------------------------------------------

def per_value(fn: Callable[..., Any], src: Src, warnings: Warnings, args: list[Fn]) -> Fn:
    """A function or arithmetic operation: null in, null out; over multi-values, one result
    per combination of values (nulls dropped), a boolean function true when any is; an
    evaluation error fails the search."""
    def run(row: list[Any]) -> Any:
        values = [f(row) for f in args]
        if any(v is None for v in values):
            return None
        if not any(type(v) is list for v in values):
            return _call(fn, values)
        if math.prod(len(v) for v in values if type(v) is list) > MAX_COMBINATIONS:
            raise search_failure(ServiceError("runtime error", type="script_exception", lang="painless",
                                              caused_by=ServiceError(_LOOP_LIMIT, type="painless_error")))
        results = [r for combo in product(*(v if type(v) is list else (v,) for v in values))
                   if (r := _call(fn, combo)) is not None]
        if not results:
            return None
        if all(type(r) is bool for r in results):
            return any(results)
        return results[0] if len(results) == 1 else results
    return run


def _call(fn: Callable[..., Any], values: Any) -> Any:
    try:
        return fn(*values)
    except EvalError as exc:
        raise script_failure(exc.java_message) from None


# --- arithmetic ------------------------------------------------------------------------------

def arithmetic(op: str, kind: str) -> Callable[[Any, Any], Any]:
    """Java's: integers overflow (``Math.addExact``...) and divide by zero with an exception
    (the shared rules) except that ``MIN / -1`` wraps to ``MIN`` as Java's ``/`` does;
    doubles give Infinity or NaN instead."""
    if kind != "double":
        if op == "/":
            lo = T.INT_RANGE[kind][0]
            return lambda a, b: lo if (a, b) == (lo, -1) else evaluate._java_div(a, b)
        return evaluate.arithmetic(op, kind)
    return {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _double_div,
            "%": _double_mod}[op]


def _double_div(a: float, b: float) -> float:
    if b == 0:
        return math.nan if a == 0 or a != a else math.copysign(math.inf, a) * math.copysign(1, b)
    try:
        return a / b
    except OverflowError:
        return math.copysign(math.inf, a) * math.copysign(1, b)


def _double_mod(a: float, b: float) -> float:
    if b == 0 or math.isinf(a) or a != a or b != b:
        return math.nan
    return math.fmod(a, b)


# --- literals compared with fields --------------------------------------------------------

DATE_FORMAT = "strict_date_optional_time||epoch_millis"


def coerce(expr: Expr, target: str, scope: Scope) -> tuple[Fn, str] | None:
    """A literal compared with (or listed in IN against) a value of type ``target``, as the
    term of a query on a field of that type; None to compare it as it is."""
    if not isinstance(expr, Literal) or expr.value is None or expr.type == target:
        return None
    value = _term(expr.value, expr.type, target)
    if value is None:
        return None
    converted, kind = value
    return (lambda row: converted), kind


def _term(value: Any, kind: str, target: str) -> tuple[Any, str] | None:
    text = value if kind == "keyword" else _text(value, kind)
    if target in ("date", "date_nanos") and kind in ("keyword", "integer", "long", "double"):
        return _date(value, kind, target), target
    if target == "ip" and text is not None:
        try:
            return _ip(text), "ip"
        except ValueConversionError as exc:
            raise query_failure(str(exc)) from None
    if target == "version" and text is not None:
        return text, "version"
    if target == "boolean" and text is not None:
        if text not in ("true", "false"):
            raise query_failure(f"Can't parse boolean value [{text}], expected [true] or [false]")
        return text == "true", "boolean"
    if T.is_numeric(target) and kind == "keyword":
        return _number(value)
    if T.is_string(target) and text is not None and kind != "keyword":
        return text, "keyword"
    return None


def _text(value: Any, kind: str) -> str | None:
    """A number or boolean literal as the text a query on a string field reads."""
    if kind == "boolean":
        return "true" if value else "false"
    if kind in ("integer", "long"):
        return str(value)
    if kind == "double":
        return java_double(value)
    return None


def _date(value: Any, kind: str, target: str) -> int:
    """A date term: ISO-8601 (UTC unless it says otherwise) or epoch millis, in the field's
    unit (ms for date, ns for date_nanos). As in ``strict_date_optional_time||epoch_millis``
    the ISO form is tried first, so four digits are a year and longer digit runs millis."""
    scale = 1_000_000 if target == "date_nanos" else 1
    if kind != "keyword":
        return int(value * scale)
    if re.fullmatch(r"-?\d{5,}", value):
        return int(value) * scale
    try:
        nanos = parse_iso_nanos(value)
    except ValueError:
        raise query_failure(f"failed to parse date field [{value}] with format [{DATE_FORMAT}]") from None
    return nanos if target == "date_nanos" else nanos // 1_000_000


_JAVA_LONG = re.compile(r"[+-]?\d+")
_JAVA_DOUBLE = re.compile(r"[+-]?(NaN|Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?[fFdD]?)")


def _number(text: str) -> tuple[Any, str]:
    """A string term for a numeric field, read as Java reads numbers."""
    if _JAVA_LONG.fullmatch(text) and T.INT_RANGE["long"][0] <= int(text) <= T.INT_RANGE["long"][1]:
        return int(text), "long"
    if _JAVA_DOUBLE.fullmatch(text.strip()):
        return float(text.strip().rstrip("fFdD")), "double"
    raise query_failure(f'For input string: "{text}"')


# --- the rest of the dialect ------------------------------------------------------------

def cast(value: Expr, target: str, scope: Scope) -> tuple[Fn, str]:
    """EQL has no casts; its parser never produces one."""
    raise verify_fail(value.src, f"Unsupported conversion to type [{target.upper()}]")


def aggregate(call: Call, scope: Scope, meter: Any) -> Any:
    """EQL has no aggregates; its plans never ask for one."""
    raise verify_fail(call.src, f"Unknown function [{call.name.lower()}]")


def resolve_indices(catalog: Catalog, step: Source) -> list[Index]:
    """The indices of an EQL search: missing concrete names are skipped while others match
    (``ignore_unavailable`` and ``allow_no_indices`` default to true); when nothing matches,
    Elasticsearch's 404 whose root cause is the verifier's ``Unknown index``."""
    expression = ",".join(step.indices)
    indices = catalog.resolve(expression, ignore_unavailable=True)
    if not indices:
        error = IndexNotFound(expression)
        error.caused_by = VerificationError([(Src(-1, -1), f"Unknown index [{expression}]")])
        raise error
    return indices


def _wildcard(pattern: str) -> patterns.Matcher:
    """EQL's wildcards: ``*`` and ``?``; a backslash is an ordinary character (Elasticsearch
    escapes nothing when it turns the pattern into a LIKE)."""
    return patterns.like(pattern.replace("\\", "\\\\"))


EQL = Dialect(
    name="eql",
    call=compile_call,
    cast=cast,
    coerce=coerce,
    single=per_value,
    multi_value_warning="",  # never shown: the any-value rule reads multi-values
    is_aggregate=lambda name: False,
    canonical=lambda name: name,
    aggregate=aggregate,
    indices=resolve_indices,
    any_value=True,
    pushdown=False,
    wildcard=_wildcard,
    arithmetic=arithmetic,
    steps=STEPS,
)
