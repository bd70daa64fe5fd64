"""The ES|QL scalar function library: name -> (argument check, implementation)."""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
import socket
from functools import lru_cache
from typing import Any, Callable, Iterator

import re2
import regex

from ..errors import ServiceError
from ..store.dates import DAY_MS, civil_from_days, date_parser, days_from_civil, format_millis
from . import numeric, signatures
from . import types as T
from .evaluate import (
    MV_WARNING, EvalError, Fn, Scope, _checked, compile_expr, guarded, ip_key, sort_key, verify_fail,
)
from .expr import Binary, Call, Column, Expr, Literal
from .spans import SPAN_MS, ZERO_INTERVAL, date_trunc

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
    from ..store.mapping import ValueConversionError, _ip
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


# --- time spans and dates ---------------------------------------------------------------


CHRONO_FIELDS = {
    "year": lambda y, m, d, ms, days: y,
    "month_of_year": lambda y, m, d, ms, days: m,
    "day_of_month": lambda y, m, d, ms, days: d,
    "day_of_week": lambda y, m, d, ms, days: (days + 3) % 7 + 1,
    "day_of_year": lambda y, m, d, ms, days: days - days_from_civil(y, 1, 1) + 1,
    "hour_of_day": lambda y, m, d, ms, days: (ms % DAY_MS) // 3_600_000,
    "minute_of_hour": lambda y, m, d, ms, days: (ms % 3_600_000) // 60_000,
    "second_of_minute": lambda y, m, d, ms, days: (ms % 60_000) // 1000,
    "milli_of_second": lambda y, m, d, ms, days: ms % 1000,
    "epoch_day": lambda y, m, d, ms, days: days,
    "minute_of_day": lambda y, m, d, ms, days: (ms % DAY_MS) // 60_000,
    "second_of_day": lambda y, m, d, ms, days: (ms % DAY_MS) // 1000,
    "aligned_week_of_year": lambda y, m, d, ms, days: (days - days_from_civil(y, 1, 1)) // 7 + 1,
    "aligned_day_of_week_in_month": lambda y, m, d, ms, days: (d - 1) % 7 + 1,
    "aligned_week_of_month": lambda y, m, d, ms, days: (d - 1) // 7 + 1,
    "quarter_of_year": lambda y, m, d, ms, days: (m - 1) // 3 + 1,
}


def date_extract(part: str, ms: int) -> int:
    f = CHRONO_FIELDS.get(part.lower())
    if f is None:
        raise EvalError(f"java.lang.IllegalArgumentException: No enum constant java.time.temporal.ChronoField."
                        f"{part.upper()}")
    days = ms // DAY_MS
    y, m, d = civil_from_days(days)
    return f(y, m, d, ms, days)


_JAVA_FORMAT = re.compile(r"'[^']*'|y+|M+|d+|H+|h+|m+|s+|S+|a|E+|[^A-Za-z']+|[A-Za-z]")
_MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
                "November", "December"]
_DAY_NAMES = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def date_format(ms: int, pattern: str) -> str:
    days, rem = divmod(ms, DAY_MS)
    y, mo, d = civil_from_days(days)
    h, mi, s, milli = rem // 3_600_000, rem // 60_000 % 60, rem // 1000 % 60, rem % 1000
    out = []
    for tok in _JAVA_FORMAT.findall(pattern):
        c, n = tok[0], len(tok)
        if c == "'":
            out.append(tok[1:-1] or "'")
        elif c == "y":
            out.append(f"{y % 100:02d}" if n == 2 else f"{y:0{n}d}")
        elif c == "M":
            out.append(_MONTH_NAMES[mo - 1] if n >= 4 else _MONTH_NAMES[mo - 1][:3] if n == 3 else f"{mo:0{n}d}")
        elif c == "d":
            out.append(f"{d:0{n}d}")
        elif c == "H":
            out.append(f"{h:0{n}d}")
        elif c == "h":
            out.append(f"{(h % 12) or 12:0{n}d}")
        elif c == "m":
            out.append(f"{mi:0{n}d}")
        elif c == "s":
            out.append(f"{s:0{n}d}")
        elif c == "S":
            out.append(f"{milli:03d}"[:n].ljust(n, "0"))
        elif c == "a":
            out.append("AM" if h < 12 else "PM")
        elif c == "E":
            name = _DAY_NAMES[(days + 3) % 7]
            out.append(name if n >= 4 else name[:3])
        elif c == "Z":
            out.append("Z")
        else:
            out.append(tok)
    return "".join(out)


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


def _math1(name: str, fn: Callable[[float], float], out: str = "double") -> None:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        _arity(expr, 1)
        _require(expr, 0, kinds[0], NUMERIC, "numeric")

        def safe(v: Any) -> Any:
            try:
                r = fn(float(v))
            except (ValueError, OverflowError):
                raise EvalError(f"java.lang.ArithmeticException: {name.title()} of negative number"
                                if name in ("SQRT", "LOG10") else "java.lang.ArithmeticException: invalid") from None
            if r != r or math.isinf(r):
                raise EvalError("java.lang.ArithmeticException: invalid")
            return r
        return _single(safe, out)(expr, kinds, args, scope)
    REGISTRY[name] = resolve


for _name, _fn in {"SQRT": math.sqrt, "EXP": math.exp, "SIN": math.sin, "COS": math.cos, "TAN": math.tan,
                   "ASIN": math.asin, "ACOS": math.acos, "ATAN": math.atan, "SINH": math.sinh, "COSH": math.cosh,
                   "TANH": math.tanh, "CBRT": lambda x: math.copysign(abs(x) ** (1 / 3), x)}.items():
    _math1(_name, _fn)


def _log10(x: float) -> float:
    if x <= 0:
        raise ValueError
    return math.log10(x)


_math1("LOG10", _log10)


@register("PI", "E", "TAU")
def _constants(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    value = {"PI": math.pi, "E": math.e, "TAU": math.tau}[expr.name]
    return (lambda row: value), "double"


@register("ABS")
def _abs(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    if kinds[0] == "double":
        return _single(abs, "same")(expr, kinds, args, scope)
    check = _checked(kinds[0]) if kinds[0] != "null" else (lambda v: v)
    return _single(lambda v: check(abs(v)), "same")(expr, kinds, args, scope)


@register("CEIL", "FLOOR")
def _ceil_floor(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    if kinds[0] != "double":
        return args[0], kinds[0]
    fn = math.ceil if expr.name == "CEIL" else math.floor
    return _single(lambda v: float(fn(v)), "double")(expr, kinds, args, scope)


@register("SIGNUM")
def _signum(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    return _single(lambda v: float((v > 0) - (v < 0)), "double")(expr, kinds, args, scope)


@register("ROUND")
def _round(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    """ES's ``Maths.round``: half away from zero, in bounded time whatever the digits
    (``ROUND(123, -99999999)`` is 0 at once, as every long is below 10^19)."""
    _arity(expr, 1, 2)
    _require(expr, 0, kinds[0], NUMERIC, "numeric")
    if len(args) == 2:
        _require(expr, 1, kinds[1], ("integer", "long"), "integer")
    return _single(_ROUNDERS.get(kinds[0], _round_integer), "same")(expr, kinds, args, scope)


def _round_integer(v: int, digits: int = 0) -> int:
    # ES rounds an integer as a long and keeps the low 32 bits (Java's intValue()), so an
    # integer that rounds past 2^31 wraps rather than failing
    r = _round_long_value(v, digits)
    return (r + 2**31) % 2**32 - 2**31


def _round_long_value(v: int, digits: int = 0) -> int:
    try:
        return numeric.round_long(v, digits)
    except numeric.ArithmeticOverflow:
        raise EvalError("java.lang.ArithmeticException: long overflow") from None


def _round_unsigned(v: int, digits: int = 0) -> int:
    r = numeric.round_unsigned_long(v, digits)
    if r > T.INT_RANGE["unsigned_long"][1]:
        raise EvalError(f"org.elasticsearch.xpack.esql.core.InvalidArgumentException: [{r}] out of [unsigned_long] "
                        f"range")
    return r


_ROUNDERS: dict[str, Callable[..., Any]] = {
    "double": lambda v, digits=0: numeric.round_double(v, digits), "long": _round_long_value,
    "unsigned_long": _round_unsigned,
}


@register("POW")
def _pow(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    for i in range(2):
        _require(expr, i, kinds[i], NUMERIC, "numeric")

    def fn(b: Any, e: Any) -> float:
        try:
            r = math.pow(float(b), float(e))
        except (ValueError, OverflowError):
            raise EvalError("java.lang.ArithmeticException: invalid result when computing pow") from None
        if r != r or math.isinf(r):
            raise EvalError("java.lang.ArithmeticException: invalid result when computing pow")
        return r
    return _single(fn, "double")(expr, kinds, args, scope)


@register("LOG")
def _log(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1, 2)

    def fn(*vs: Any) -> float:
        try:
            r = math.log(float(vs[-1])) / (math.log(float(vs[0])) if len(vs) == 2 else 1.0)
        except (ValueError, ZeroDivisionError):
            raise EvalError("java.lang.ArithmeticException: Log of non-positive number") from None
        return r
    return _single(fn, "double")(expr, kinds, args, scope)


@register("ATAN2", "HYPOT")
def _two_doubles(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    fn = math.atan2 if expr.name == "ATAN2" else math.hypot
    return _single(lambda a, b: fn(float(a), float(b)), "double")(expr, kinds, args, scope)


# strings

STRING = ("keyword", "text")


def _string_fn(name: str, arity: tuple[int, int], fn: Callable[..., Any], out: str,
               arg_types: tuple[tuple[str, ...], ...] = ()) -> None:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        _arity(expr, *arity)
        for i, kind in enumerate(kinds):
            allowed = arg_types[i] if i < len(arg_types) else STRING
            _require(expr, i, kind, allowed, "string" if allowed == STRING else "integer")
        return _single(fn, out)(expr, kinds, args, scope)
    REGISTRY[name] = resolve


_INTS = ("integer", "long")
_string_fn("LENGTH", (1, 1), lambda s: len(s), "integer")
_string_fn("BYTE_LENGTH", (1, 1), lambda s: len(s.encode()), "integer")
_string_fn("BIT_LENGTH", (1, 1), lambda s: 8 * len(s.encode()), "integer")
_string_fn("TO_UPPER", (1, 1), str.upper, "keyword")
_string_fn("TO_LOWER", (1, 1), str.lower, "keyword")
_string_fn("TRIM", (1, 1), lambda s: s.strip(" \t\n\r\x0b\x0c"), "keyword")
_string_fn("LTRIM", (1, 1), lambda s: s.lstrip(" \t\n\r\x0b\x0c"), "keyword")
_string_fn("RTRIM", (1, 1), lambda s: s.rstrip(" \t\n\r\x0b\x0c"), "keyword")
_string_fn("REVERSE", (1, 1), lambda s: s[::-1], "keyword")
_string_fn("STARTS_WITH", (2, 2), lambda s, p: s.startswith(p), "boolean")
_string_fn("ENDS_WITH", (2, 2), lambda s, p: s.endswith(p), "boolean")
_string_fn("CONTAINS", (2, 2), lambda s, p: p in s, "boolean")
_string_fn("LEFT", (2, 2), lambda s, n: s[:max(n, 0)], "keyword", (STRING, _INTS))
_string_fn("RIGHT", (2, 2), lambda s, n: s[len(s) - n:] if 0 < n <= len(s) else (s if n > 0 else ""), "keyword",
           (STRING, _INTS))

# Elasticsearch refuses to build a string of more than 1 MB (ScalarFunction's
# MAX_BYTES_REF_RESULT_SIZE); each function words the refusal its own way.
MAX_STRING_BYTES = 1024 * 1024


def _utf8_length(s: str) -> int:
    return len(s) if s.isascii() else len(s.encode())


def _repeat(s: str, n: int) -> str:
    if n < 0:
        raise EvalError(f"java.lang.IllegalArgumentException: Number parameter cannot be negative, found [{n}]")
    if _utf8_length(s) * n > MAX_STRING_BYTES:
        raise EvalError(f"java.lang.IllegalArgumentException: Creating repeated strings with more than "
                        f"[{MAX_STRING_BYTES}] bytes is not supported")
    return s * n


_string_fn("REPEAT", (2, 2), _repeat, "keyword", (STRING, _INTS))


def _space_check(n: int) -> str | None:
    """Why ``SPACE(n)`` is refused, or None."""
    if n < 0:
        return f"Number parameter cannot be negative, found [{n}]"
    if n > MAX_STRING_BYTES:
        return f"Creating strings longer than [{MAX_STRING_BYTES}] bytes is not supported"
    return None


def _space(n: int) -> str:
    problem = _space_check(n)
    if problem:
        raise EvalError(f"java.lang.IllegalArgumentException: {problem}")
    return " " * n


@register("SPACE")
def _space_fn(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    """A constant count is checked while planning, so a bad one fails the query (400), as
    ES's evaluator factory does; a computed one gives null and a warning per row."""
    _arity(expr, 1)
    _require(expr, 0, kinds[0], _INTS, "integer")
    from .evaluate import fold
    constant, value = fold(expr.args[0], scope)
    if constant and isinstance(value, int) and _space_check(value):
        raise ServiceError(_space_check(value), status=400, type="illegal_argument_exception")
    return _single(_space, "keyword")(expr, kinds, args, scope)


def _substring(s: str, start: int, length: int | None = None) -> str:
    n = len(s)
    if start < 0:
        start = max(n + start, 0)
    else:
        start = max(start - 1, 0)
    end = n if length is None else min(start + max(length, 0), n)
    return s[start:end]


_string_fn("SUBSTRING", (2, 3), _substring, "keyword", (STRING, _INTS, _INTS))


def _locate(s: str, sub: str, start: int | None = None) -> int:
    begin = 0 if start is None or start <= 0 else start - 1
    return s.find(sub, begin) + 1


_string_fn("LOCATE", (2, 3), _locate, "integer", (STRING, STRING, _INTS))


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
# How long one REPLACE may search with a backtracking engine: the bound ES|QL's GROK
# watchdog uses (esql.grok.watchdog.max_execution_time).
MAX_REGEX_MS = 1000


@lru_cache(maxsize=256)
def _java_regex(pattern: str) -> Callable[[str], Iterator[Any]]:
    """The matches of a REPLACE pattern in a text, in order. RE2 (linear in the input) runs
    every pattern it accepts; the ``regex`` module runs what only a backtracking engine has
    (back-references, lookaround), each search then bounded by ``MAX_REGEX_MS``."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS).finditer
    except re2.error:
        pass
    try:
        compiled = regex.compile(pattern)
    except regex.error as exc:
        raise EvalError(f"java.util.regex.PatternSyntaxException: {exc}") from None
    return lambda text: compiled.finditer(text, timeout=MAX_REGEX_MS / 1000)


def _replace(s: str, pattern: str, repl: str) -> str:
    """Java's ``replaceAll`` (``$1`` group references), refusing, before it is built, a
    result of more than 1 MB."""
    matches = _java_regex(pattern)(s)
    template = re.sub(r"\$(\d)", r"\\\1", repl)
    pieces, size, pos = [], 0, 0
    try:
        for match in matches:
            piece = s[pos:match.start()] + match.expand(template)
            size += len(piece)
            if size + len(s) - match.end() > MAX_STRING_BYTES:
                raise EvalError(f"java.lang.IllegalArgumentException: Creating strings with more than "
                                f"[{MAX_STRING_BYTES}] bytes is not supported")
            pieces.append(piece)
            pos = match.end()
    except (re.error, re2.error, regex.error, IndexError) as exc:  # a bad group reference in the replacement
        raise EvalError(f"java.lang.IndexOutOfBoundsException: {exc}") from None
    except TimeoutError:
        raise EvalError(f"java.lang.IllegalArgumentException: REPLACE pattern matching was interrupted after "
                        f"[{MAX_REGEX_MS}] ms") from None
    pieces.append(s[pos:])
    return "".join(pieces)


_string_fn("REPLACE", (3, 3), _replace, "keyword")


@register("CONCAT")
def _concat(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    for i, kind in enumerate(kinds):
        _require(expr, i, kind, STRING, "string")
    return guarded(_concat_values, expr.src, scope.warnings, args), "keyword"


def _concat_values(*values: str) -> str:
    if sum(_utf8_length(v) for v in values) > MAX_STRING_BYTES:
        # not a warning: ES fails the whole query (EsqlClientException, 400)
        raise ServiceError(f"concatenating more than [{MAX_STRING_BYTES}] bytes is not supported", status=400,
                           type="esql_client_exception")
    return "".join(values)


@register("SPLIT")
def _split(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)

    def fn(s: str, delim: str) -> Any:
        parts = s.split(delim) if delim else list(s)
        return T.collapse(parts)
    return _single(fn, "keyword")(expr, kinds, args, scope)


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


# multi-value functions (take the whole list)

def _mv(name: str, fn: Callable[[list[Any], str], Any], out: str | None = None) -> None:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        kind = kinds[0]
        arg = args[0]
        extra = args[1:]
        out_kind = out or kind
        if out == "double_or_same":
            out_kind = "double" if kind == "double" else kind
        warnings, src = scope.warnings, expr.src

        def run(row: list[Any]) -> Any:
            v = arg(row)
            if v is None:
                return None
            values = v if type(v) is list else [v]
            options = [e(row) for e in extra]
            if any(o is None for o in options):
                return None
            if any(type(o) is list for o in options):  # the other arguments are single values
                warnings.failure(src, MV_WARNING)
                return None
            try:
                return fn(values, kind, *options)
            except EvalError as exc:
                warnings.failure(src, exc.java_message)
                return None
        return run, out_kind
    REGISTRY[name] = resolve


def _keyed(kind: str) -> Callable[[Any], Any] | None:
    return sort_key(kind)


def _mv_sum(values: list[Any], kind: str) -> Any:
    if kind == "double":
        return float(sum(values))
    return _checked(kind)(sum(values))


def _median(values: list[Any], kind: str) -> Any:
    s = sorted(values)
    n = len(s)
    if kind == "double":
        return float(s[n // 2]) if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) // 2


def _mv_slice(values: list[Any], kind: str, start: int, end: int | None = None) -> Any:
    n = len(values)
    end = start if end is None else end
    if start < 0:
        start += n
    if end < 0:
        end += n
    out = values[max(start, 0):end + 1]
    return T.collapse(out)


_mv("MV_COUNT", lambda v, k: len(v), "integer")
_mv("MV_FIRST", lambda v, k: v[0])
_mv("MV_LAST", lambda v, k: v[-1])
_mv("MV_MIN", lambda v, k: min(v, key=_keyed(k)) if _keyed(k) else min(v))
_mv("MV_MAX", lambda v, k: max(v, key=_keyed(k)) if _keyed(k) else max(v))
_mv("MV_SUM", _mv_sum)
_mv("MV_AVG", lambda v, k: float(sum(v)) / len(v), "double")
_mv("MV_MEDIAN", _median)
_mv("MV_DEDUPE", lambda v, k: T.collapse(list(dict.fromkeys(v))))
_mv("MV_SORT", lambda v, k, order="ASC": T.collapse(sorted(v, key=_keyed(k), reverse=str(order).upper() == "DESC")))
_mv("MV_CONCAT", lambda v, k, delim: delim.join(v), "keyword")
_mv("MV_SLICE", _mv_slice)


@register("MV_APPEND")
def _mv_append(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    a, b = args

    def run(row: list[Any]) -> Any:
        x, y = a(row), b(row)
        if x is None or y is None:
            return x if y is None else y
        return (x if type(x) is list else [x]) + (y if type(y) is list else [y])
    return run, _common_type(expr, kinds)


# dates

DATES = ("date", "date_nanos")


@register("NOW")
def _now(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    import time
    value = int(time.time() * 1000)
    return (lambda row: value), "date"


def check_interval(expr: Expr, scope: Scope) -> None:
    """A constant time span must be positive: ES refuses any other while planning (400)."""
    from .evaluate import fold
    constant, span = fold(expr, scope)
    if constant and isinstance(span, tuple) and span[0] <= 0:
        raise ServiceError(ZERO_INTERVAL, status=400, type="illegal_argument_exception")


@register("DATE_TRUNC")
def _date_trunc(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    _require(expr, 1, kinds[1], DATES, "date_nanos or datetime")
    check_interval(expr.args[0], scope)
    return _single(lambda span, d: date_trunc(d, span), kinds[1])(expr, kinds, args, scope)


@register("DATE_EXTRACT")
def _date_extract(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    return _single(lambda part, d: date_extract(part, d), "long")(expr, kinds, args, scope)


@register("DATE_FORMAT")
def _date_format(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1, 2)
    if len(args) == 2:
        _require(expr, 0, kinds[0], STRING, "string")
    _require(expr, len(args) - 1, kinds[-1], DATES, "datetime or date_nanos")
    if len(args) == 1:
        return _single(format_millis, "keyword")(expr, kinds, args, scope)
    return _single(lambda p, d: date_format(d, p), "keyword")(expr, kinds, args, scope)


@register("DATE_PARSE")
def _date_parse(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1, 2)

    def fn(*vs: Any) -> int:
        fmt = vs[0] if len(vs) == 2 else "strict_date_optional_time"
        try:
            return date_parser(fmt)(vs[-1]) // 1_000_000
        except ValueError:
            raise EvalError(f'java.lang.IllegalArgumentException: failed to parse date field [{vs[-1]}] with format '
                            f'[{fmt}]') from None
    return _single(fn, "date")(expr, kinds, args, scope)


DIFF_UNITS = {"year": "y", "years": "y", "yy": "y", "yyyy": "y", "quarter": "q", "quarters": "q", "qq": "q", "q": "q",
              "month": "mo", "months": "mo", "mm": "mo", "m": "mo", "week": "w", "weeks": "w", "wk": "w", "ww": "w",
              "day": "d", "days": "d", "dd": "d", "d": "d", "hour": "h", "hours": "h", "hh": "h",
              "minute": "mi", "minutes": "mi", "mi": "mi", "n": "mi", "second": "s", "seconds": "s", "ss": "s",
              "s": "s", "millisecond": "ms", "milliseconds": "ms", "ms": "ms"}


def _date_diff_value(unit: str, a: int, b: int) -> int:
    u = DIFF_UNITS.get(unit.lower())
    if u is None:
        raise EvalError(f"java.lang.IllegalArgumentException: A value of [YEAR, QUARTER, MONTH, DAYOFYEAR, DAY, WEEK, "
                        f"WEEKDAY, HOUR, MINUTE, SECOND, MILLISECOND, MICROSECOND, NANOSECOND] or their aliases is "
                        f"required; received [{unit}]")
    fixed = {"w": 7 * DAY_MS, "d": DAY_MS, "h": 3_600_000, "mi": 60_000, "s": 1000, "ms": 1}
    if u in fixed:
        diff = b - a
        q = abs(diff) // fixed[u]
        r = q if diff >= 0 else -q
    else:
        ya, ma, da = civil_from_days(a // DAY_MS)
        yb, mb, db = civil_from_days(b // DAY_MS)
        months = (yb - ya) * 12 + (mb - ma)
        if months > 0 and (db, b % DAY_MS) < (da, a % DAY_MS):
            months -= 1
        elif months < 0 and (db, b % DAY_MS) > (da, a % DAY_MS):
            months += 1
        r = months // {"mo": 1, "q": 3, "y": 12}[u] if months >= 0 else -((-months) // {"mo": 1, "q": 3, "y": 12}[u])
    if not -(2**31) <= r < 2**31:
        raise EvalError("org.elasticsearch.xpack.esql.core.InvalidArgumentException: [" + str(r) + "] out of [integer] range")
    return r


@register("DATE_DIFF")
def _date_diff(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 3)
    return _single(_date_diff_value, "integer")(expr, kinds, args, scope)


@register("CIDR_MATCH")
def _cidr_match(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    ip_arg, blocks = args[0], args[1:]

    def run(row: list[Any]) -> Any:
        v = ip_arg(row)
        if v is None:
            return None
        if type(v) is list:
            scope.warnings.failure(expr.src, MV_WARNING)
            return None
        addr = _ip_bytes(v)
        for b in blocks:
            for block in (lambda x: x if type(x) is list else [x])(b(row)):
                if block is not None and _in_range(addr, *_cidr_range(block)):
                    return True
        return False
    return run, "boolean"


_IPV4_MAPPED = b"\x00" * 10 + b"\xff\xff"


def _ip_bytes(text: str) -> bytes:
    try:
        return ipaddress.ip_address(text).packed
    except ValueError:
        raise _bad_cidr(f"'{text}' is not an IP string literal.") from None


def _bad_cidr(message: str) -> ServiceError:
    # ES's CIDR_MATCH does not turn a bad block into a warning: the query fails
    return ServiceError(message, status=400, type="illegal_argument_exception")


def _cidr_range(block: str) -> tuple[bytes, bytes]:
    """The lowest and highest address of ``block`` (``ip/prefix``, or one address)."""
    if "/" not in block:
        one = _ip_bytes(block)
        return one, one
    fields = block.split("/")
    while fields and not fields[-1]:  # Java's split drops trailing empty strings
        fields.pop()
    if len(fields) != 2:
        raise _bad_cidr(f"Expected [ip/prefix] but was [{block}]")
    address = _ip_bytes(fields[0])
    try:
        prefix = int(fields[1])
    except ValueError:
        raise _bad_cidr(f'For input string: "{fields[1]}"') from None
    bits = 8 * len(address)
    if not 0 <= prefix <= bits:
        raise _bad_cidr(f"illegal prefixLength '{prefix}'. Must be 0-32 for IPv4 ranges, 0-128 for IPv6 ranges")
    value, host = int.from_bytes(address, "big"), (1 << (bits - prefix)) - 1
    return (value & ~host).to_bytes(len(address), "big"), (value | host).to_bytes(len(address), "big")


def _in_range(addr: bytes, lower: bytes, upper: bytes) -> bool:
    if len(addr) != len(lower):  # compare IPv4 and IPv6 as IPv4-mapped IPv6, as ES does
        addr, lower, upper = (b if len(b) == 16 else _IPV4_MAPPED + b for b in (addr, lower, upper))
    return lower <= addr <= upper


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


# --- later additions: clamps, hashes, names, ip prefixes, multi-value statistics ----------

@register("CLAMP", "CLAMP_MIN", "CLAMP_MAX")
def _clamp(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 3 if expr.name == "CLAMP" else 2)
    kind = _common_type(expr, kinds)
    key = sort_key(kind) or (lambda v: v)

    def lower(v: Any, lo: Any) -> Any:
        return lo if key(v) < key(lo) else v

    def upper(v: Any, hi: Any) -> Any:
        return hi if key(v) > key(hi) else v

    fn = {"CLAMP": lambda v, lo, hi: upper(lower(v, lo), hi), "CLAMP_MIN": lower, "CLAMP_MAX": upper}[expr.name]
    return _single(lambda *vs: _widen_value(fn(*vs), kind), kind)(expr, kinds, args, scope)


@register("COPY_SIGN")
def _copy_sign(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2)
    for i in range(2):
        _require(expr, i, kinds[i], NUMERIC, "numeric")
    kind = kinds[0]
    if kind == "double":
        return _single(lambda m, s: math.copysign(m, float(s)), "double")(expr, kinds, args, scope)
    check = _checked(kind) if kind in T.INT_RANGE else (lambda v: v)
    return _single(lambda m, s: check(-abs(m) if s < 0 or (s == 0 and math.copysign(1, s) < 0) else abs(m)),
                   kind)(expr, kinds, args, scope)


@register("ROUND_TO")
def _round_to(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    field = kinds[0]
    family = DATES if field in DATES else NUMERIC
    if field not in DATES and field != "null":
        _require(expr, 0, field, NUMERIC, "numeric or date")
    for i, kind in enumerate(kinds[1:], 1):  # the points are of the field's kind
        _require(expr, i, kind, family, "date" if family is DATES else "numeric")
    kind = _common_type(expr, kinds) if field not in DATES else field

    def fn(v: Any, *points: Any) -> Any:
        below = [p for p in points if p <= v]
        return _widen_value(max(below) if below else min(points), kind)
    return _single(fn, kind)(expr, kinds, args, scope)


def _hasher(algorithm: str) -> Callable[[str], str]:
    import hashlib
    return lambda s: hashlib.new(algorithm, s.encode()).hexdigest()


for _name, _alg in {"MD5": "md5", "SHA1": "sha1", "SHA256": "sha256"}.items():
    _string_fn(_name, (1, 1), _hasher(_alg), "keyword")


def _hash(algorithm: str, s: str) -> str:
    import hashlib
    try:
        return hashlib.new(algorithm.replace("-", "").lower(), s.encode()).hexdigest()
    except ValueError:
        raise EvalError(f"java.security.NoSuchAlgorithmException: {algorithm} MessageDigest not available") from None


_string_fn("HASH", (2, 2), _hash, "keyword")


@register("DAY_NAME", "MONTH_NAME")
def _names(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 1)
    _require(expr, 0, kinds[0], DATES, "datetime or date_nanos")
    scale = 1_000_000 if kinds[0] == "date_nanos" else 1
    if expr.name == "DAY_NAME":
        return _single(lambda d: _DAY_NAMES[(d // scale // DAY_MS + 3) % 7], "keyword")(expr, kinds, args, scope)
    return _single(lambda d: _MONTH_NAMES[civil_from_days(d // scale // DAY_MS)[1] - 1], "keyword")(
        expr, kinds, args, scope)


def _angles(name: str, fn: Callable[[float], float]) -> None:
    def resolve(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
        _arity(expr, 1)
        _require(expr, 0, kinds[0], NUMERIC, "numeric")
        arg = args[0]

        def run(row: list[Any]) -> Any:  # element-wise, like the other conversions
            v = arg(row)
            if v is None:
                return None
            return [fn(float(x)) for x in v] if type(v) is list else fn(float(v))
        return run, "double"
    REGISTRY[name] = resolve


_angles("TO_DEGREES", math.degrees)
_angles("TO_RADIANS", math.radians)


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


@register("IP_PREFIX")
def _ip_prefix(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    import ipaddress
    _arity(expr, 3)

    def fn(ip: str, v4: int, v6: int) -> str:
        addr = ipaddress.ip_address(ip)
        bits = v4 if addr.version == 4 else v6
        limit = 32 if addr.version == 4 else 128
        if not 0 <= bits <= limit:
            raise EvalError(f"java.lang.IllegalArgumentException: Prefix length v{addr.version} must be in range "
                            f"[0, {limit}], found {bits}")
        return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False).network_address)
    return _single(fn, "ip")(expr, kinds, args, scope)


@register("MV_ZIP")
def _mv_zip(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    _arity(expr, 2, 3)
    left, right = args[0], args[1]
    delim = args[2] if len(args) == 3 else (lambda row: ",")

    def run(row: list[Any]) -> Any:
        a, b, d = left(row), right(row), delim(row)
        if d is None or (a is None and b is None):
            return None
        if type(d) is list:
            scope.warnings.failure(expr.src, MV_WARNING)
            return None
        xs = [] if a is None else a if type(a) is list else [a]
        ys = [] if b is None else b if type(b) is list else [b]
        out = [d.join(p for p in pair if p is not None) for pair in itertools.zip_longest(xs, ys)]
        return T.collapse(out)
    return run, "keyword"


def _mv_percentile(values: list[Any], kind: str, p: Any) -> Any:
    if not 0 <= p <= 100:
        raise EvalError(f"java.lang.IllegalArgumentException: Percentile parameter must be a number between 0 and "
                        f"100, found [{float(p)}]")
    s = sorted(values)
    rank = p / 100 * (len(s) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(s) - 1)
    if kind == "double":
        return s[lo] + (s[hi] - s[lo]) * (rank - lo)
    return s[lo] + int((s[hi] - s[lo]) * (rank - lo))


def _mv_mad(values: list[Any], kind: str) -> Any:
    median = _median(values, kind)
    return _median([abs(v - median) for v in values], kind)


def _pseries(values: list[Any], kind: str, p: Any) -> float:
    # weights are Java doubles: a huge p makes a weight infinite (a term of 0), a hugely
    # negative one makes it 0 (an infinite term), never a huge exact power
    total = 0.0
    for i, v in enumerate(sorted(values, reverse=True)):
        weight = numeric.java_pow(i + 1.0, float(p))
        term = v / weight if weight else math.nan
        if not math.isfinite(term):
            raise EvalError("java.lang.ArithmeticException: double overflow")
        total += term
    if not math.isfinite(total):
        raise EvalError("java.lang.ArithmeticException: double overflow")
    return total


_mv("MV_PERCENTILE", _mv_percentile)
_mv("MV_MEDIAN_ABSOLUTE_DEVIATION", _mv_mad)
_mv("MV_PSERIES_WEIGHTED_SUM", _pseries, "double")


# --- BUCKET ------------------------------------------------------------------------------

# Elasticsearch's "human" date roundings for BUCKET(date, n, from, to), coarsest first
# after the year; the finest one that still gives at most n buckets is chosen.
_HUMAN_DATE_ROUNDINGS = [(1, "mo"), (1, "w"), (1, "d"), (12, "h"), (3, "h"), (1, "h"), (30, "m"), (10, "m"), (5, "m"),
                         (1, "m"), (30, "s"), (10, "s"), (5, "s"), (1, "s"), (100, "ms"), (50, "ms"), (10, "ms"),
                         (1, "ms")]


def _steps_to_reach(span: tuple[int, str], start: int, end: int) -> int:
    """How many roundings after the one holding ``start`` it takes to reach ``end``: counted,
    not stepped through, so a huge bucket count over a huge range costs nothing."""
    first = date_trunc(start, span)
    if end <= first:
        return 0
    amount, unit = span
    if unit in SPAN_MS:
        return -((first - end) // (amount * SPAN_MS[unit]))  # ceiling division
    y0, m0, _ = civil_from_days(first // DAY_MS)  # monthly: ``first`` is the 1st, at midnight
    y1, m1, d1 = civil_from_days(end // DAY_MS)
    months = (y1 * 12 + m1) - (y0 * 12 + m0)
    return months if (d1, end % DAY_MS) == (1, 0) else months + 1


def _rounding_fits(span: tuple[int, str], buckets: int, start: int, end: int) -> bool:
    steps = _steps_to_reach(span, start, end)
    return steps == 0 or steps + 1 <= buckets


def pick_date_rounding(buckets: int, start: int, end: int) -> tuple[int, str]:
    chosen = (1, "y")
    for span in _HUMAN_DATE_ROUNDINGS:
        if not _rounding_fits(span, buckets, start, end):
            break
        chosen = span
    return chosen


def _java_ceil(x: float) -> float:
    return float(math.ceil(x)) if math.isfinite(x) else x


def pick_numeric_rounding(buckets: int, start: float, end: float) -> float:
    """ES's bucket width for ``buckets`` over ``[start, end]``, in Java doubles: a count of
    zero or an empty range gives an infinite, zero or NaN width, which then fails per row."""
    span = end - start
    precise = span / buckets if buckets else (math.copysign(math.inf, span) if span else math.nan)
    next_power = numeric.java_pow(10.0, _java_ceil(numeric.java_log10(precise)))
    half = next_power / 2
    return half if precise < half else next_power


def _bucket_number(step: float) -> Callable[[Any], float]:
    """``floor(v / step) * step`` as ES evaluates it (a Div, a Floor, a Mul), each step's
    non-finite result a warning and null."""
    def bucket(v: Any) -> float:
        quotient = v / step if step else math.nan
        if not math.isfinite(quotient):
            raise EvalError("java.lang.ArithmeticException: / by zero")
        out = float(math.floor(quotient)) * step
        if not math.isfinite(out):
            raise EvalError("java.lang.ArithmeticException: not a finite double number: " + _java_double(out))
        return out
    return bucket


def _constant_arg(expr: Call, i: int, scope: Scope) -> Any:
    from .evaluate import fold
    constant, value = fold(expr.args[i], scope)
    if not constant or value is None:
        raise verify_fail(expr.args[i].src, f"{['first', 'second', 'third', 'fourth'][i]} argument of "
                                            f"[{expr.src.text}] must be a constant, received [{expr.args[i].src.text}]")
    return value


def _date_bound(expr: Call, i: int, kind: str, scope: Scope) -> int:
    _require(expr, i, kind, (*DATES, *STRING), "datetime, date_nanos or string")
    bound = _constant_arg(expr, i, scope)
    if type(bound) is list:
        raise verify_fail(expr.args[i].src, MV_WARNING)
    if not isinstance(bound, str):
        return bound // 1_000_000 if kind == "date_nanos" else bound
    try:
        return _to_date_value(bound, "keyword")
    except EvalError as exc:  # ES parses the bounds while planning: the query fails
        raise ServiceError(exc.java_message.removeprefix("java.lang.IllegalArgumentException: "), status=400,
                           type="illegal_argument_exception") from None


def _numeric_arg(expr: Call, i: int, kind: str, scope: Scope) -> float:
    _require(expr, i, kind, NUMERIC, "numeric")
    value = _constant_arg(expr, i, scope)
    if type(value) is list:
        raise verify_fail(expr.args[i].src, MV_WARNING)
    return float(value)


@register("BUCKET")
def _bucket(expr: Call, kinds: list[str], args: list[Fn], scope: Scope) -> tuple[Fn, str]:
    if len(args) not in (2, 4):
        raise verify_fail(expr.src, f"error building [bucket]: expects exactly two or four arguments")
    kind = kinds[0]
    if kind not in DATES and not T.is_numeric(kind):
        _require(expr, 0, kind, (), "datetime or numeric")
    if kind in DATES:
        span = _date_span(expr, kinds, scope)
        scale = 1_000_000 if kind == "date_nanos" else 1
        return _single(lambda d: date_trunc(d // scale, span) * scale, kind)(expr, kinds[:1], args[:1], scope)
    if len(args) == 4:
        _require(expr, 1, kinds[1], _INTS, "integer")
        step = pick_numeric_rounding(int(_numeric_arg(expr, 1, kinds[1], scope)),
                                     _numeric_arg(expr, 2, kinds[2], scope), _numeric_arg(expr, 3, kinds[3], scope))
    else:
        step = _numeric_arg(expr, 1, kinds[1], scope)
    return _single(_bucket_number(step), "double")(expr, kinds[:1], args[:1], scope)


def _date_span(expr: Call, kinds: list[str], scope: Scope) -> tuple[int, str]:
    if len(expr.args) == 4:
        _require(expr, 1, kinds[1], _INTS, "integer")
        buckets = _constant_arg(expr, 1, scope)
        start, end = (_date_bound(expr, i, kinds[i], scope) for i in (2, 3))
        return pick_date_rounding(int(buckets), start, end)
    if kinds[1] not in ("date_period", "time_duration"):
        raise verify_fail(expr.args[1].src, f"second argument of [{expr.src.text}] must be [date_period or "
                                            f"time_duration] when the first is a date, found value "
                                            f"[{expr.args[1].src.text}] type [{kinds[1]}]")
    check_interval(expr.args[1], scope)
    return _constant_arg(expr, 1, scope)


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
    from .evaluate import fold, walk
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
