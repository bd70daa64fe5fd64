"""TO_* conversions (element-wise over multi-values) and TO_DATEPERIOD/TO_TIMEDURATION."""

from __future__ import annotations

import math
import re
from typing import Any, Callable

from ....store.dates import date_parser, format_millis
from ... import numeric, signatures
from ... import types as T
from ...evaluate import EvalError, Fn, Scope, compile_expr, verify_fail
from ...expr import Call, Literal
from ._base import ConversionError, _arity, _nf, register


# --- conversions (element-wise over multi-values) ------------------------------------

def _to_long_value(v: Any, kind: str, target: str) -> int:
    lo, hi = T.INT_RANGE[target]
    if kind == "boolean":
        return int(v)
    if kind in T.STRINGS:
        try:
            out = int(v)
        except ValueError:
            try:
                f = float(v)
            except ValueError:
                raise _nf(v) from None
            if not math.isfinite(f):
                raise _nf(v)
            out = numeric.java_round_half_up(f)
    elif kind == "double":
        if not math.isfinite(v) or not lo <= v <= hi:
            raise EvalError(f"org.elasticsearch.xpack.esql.core.InvalidArgumentException: [{_java_double(v)}] out of "
                            f"[{target}] range")
        out = numeric.java_round_half_up(v)
    else:
        out = int(v)
    if not lo <= out <= hi:
        raise EvalError(f"org.elasticsearch.xpack.esql.core.InvalidArgumentException: [{v}] out of [{target}] range")
    return out


def _to_double_value(v: Any, kind: str) -> float:
    if kind in T.STRINGS:
        try:
            return float(v)
        except ValueError:
            raise _nf(v) from None
    return float(v)


def _to_bool_value(v: Any, kind: str) -> bool:
    if kind in T.STRINGS:
        return v.lower() == "true"
    return bool(v)


def _java_double(v: float) -> str:
    if v != v:
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == int(v) and abs(v) < 1e7:
        return f"{v:.1f}"
    r = repr(v)
    if "e" in r:
        mant, exp = r.split("e")
        if "." not in mant:
            mant += ".0"
        return f"{mant}E{int(exp)}"
    if abs(v) >= 1e7:
        exp = int(math.floor(math.log10(abs(v))))
        mant = repr(v / 10 ** exp)
        return f"{mant}E{exp}"
    if abs(v) < 1e-3:
        exp = int(math.floor(math.log10(abs(v))))
        return f"{repr(v / 10 ** exp)}E{exp}"
    return r


def to_string_value(v: Any, kind: str) -> str:
    if kind == "boolean":
        return "true" if v else "false"
    if kind == "date":
        return format_millis(v)
    if kind == "double":
        return _java_double(v)
    return str(v)


def _to_date_value(v: Any, kind: str) -> int:
    if kind in T.STRINGS:
        try:
            return date_parser("strict_date_optional_time")(v) // 1_000_000
        except ValueError:
            raise EvalError(f'java.lang.IllegalArgumentException: failed to parse date field [{v}] with format '
                            f'[strict_date_optional_time]') from None
    if kind == "double":
        return int(v)
    return int(v)


def _to_ip_value(v: Any, kind: str) -> str:
    from ....store.mapping import ValueConversionError, _ip
    try:
        return _ip(v)
    except ValueConversionError:
        raise EvalError(f"java.lang.IllegalArgumentException: '{v}' is not an IP string literal.") from None


def _to_version_value(v: Any, kind: str) -> str:
    return str(v)


CONVERTERS: dict[str, tuple[str, Callable[[Any, str], Any], tuple[str, ...]]] = {
    "TO_INTEGER": ("integer", lambda v, k: _to_long_value(v, k, "integer"),
                   ("integer", "long", "unsigned_long", "double", "keyword", "text", "boolean", "date")),
    "TO_LONG": ("long", lambda v, k: _to_long_value(v, k, "long"),
                ("integer", "long", "unsigned_long", "double", "keyword", "text", "boolean", "date", "date_nanos")),
    "TO_UNSIGNED_LONG": ("unsigned_long", lambda v, k: _to_long_value(v, k, "unsigned_long"),
                         ("integer", "long", "unsigned_long", "double", "keyword", "text", "boolean", "date")),
    "TO_DOUBLE": ("double", _to_double_value,
                  ("integer", "long", "unsigned_long", "double", "keyword", "text", "boolean", "date")),
    "TO_BOOLEAN": ("boolean", _to_bool_value, ("integer", "long", "unsigned_long", "double", "keyword", "text",
                                               "boolean")),
    "TO_STRING": ("keyword", to_string_value, ("integer", "long", "unsigned_long", "double", "keyword", "text",
                                               "boolean", "date", "ip", "version", "date_nanos")),
    "TO_DATETIME": ("date", _to_date_value, ("integer", "long", "unsigned_long", "double", "keyword", "text", "date",
                                             "date_nanos")),
    "TO_IP": ("ip", _to_ip_value, ("keyword", "text", "ip")),
    "TO_VERSION": ("version", _to_version_value, ("keyword", "text", "version")),
}


def _converter(name: str, expr: Call, scope: Scope) -> tuple[Fn, str]:
    target, convert, accepted = CONVERTERS[name]
    signatures.arity(expr, 1, 1, name=name)
    fn, kind = compile_expr(expr.args[0], scope)
    if kind == "null":
        return (lambda row: None), target
    if kind not in accepted:
        raise verify_fail(expr.src, f"argument of [{expr.src.text}] must be [{' or '.join(accepted)}], found value "
                                    f"[{expr.args[0].src.text}] type [{kind}]")
    if kind == target and target != "keyword":
        return fn, target
    warnings, src = scope.warnings, expr.src

    def one(v: Any) -> Any:
        try:
            return convert(v, kind)
        except EvalError as exc:
            warnings.failure(src, exc.java_message, located=not isinstance(exc, ConversionError))
            return None

    def run(row: list[Any]) -> Any:
        v = fn(row)
        if v is None:
            return None
        if type(v) is list:
            out = [c for c in (one(x) for x in v) if c is not None]
            return T.collapse(out)
        return one(v)
    return run, target


@register("TO_DATEPERIOD", "TO_TIMEDURATION")
def _to_span(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    arg = expr.args[0]
    if not isinstance(arg, Literal) or type(arg.value) is list:
        raise verify_fail(expr.src, f"argument of [{expr.src.text}] must be a constant, received [{arg.src.text}]")
    kind = "date_period" if expr.name == "TO_DATEPERIOD" else "time_duration"
    value = arg.value
    if arg.type in ("keyword", "text"):
        m = re.fullmatch(r"\s*(\d+)\s*([a-zA-Z]+)\s*", value)
        unit = T.TIME_UNITS.get(m.group(2).lower()) if m else None
        if unit is None or (unit in ("w", "mo", "q", "y", "d")) != (kind == "date_period"):
            raise verify_fail(expr.src, f"Cannot convert string [{value}] to [{kind.upper()}], error [Unexpected "
                                        f"temporal unit: '{m.group(2) if m else value}']")
        problem = numeric.span_amount_problem(int(m.group(1)), unit)
        if problem:
            raise verify_fail(expr.src, f"Cannot convert string [{value}] to [{kind.upper()}], error [{problem}]")
        value = (int(m.group(1)), unit)
    elif arg.type != kind:
        raise verify_fail(expr.src, f"argument of [{expr.src.text}] must be [{kind} or string], found value "
                                    f"[{arg.src.text}] type [{arg.type}]")
    return (lambda row: value), kind
