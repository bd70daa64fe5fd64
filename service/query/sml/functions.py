"""SML's eval functions (spec/sml.md §6.1), with the dynamic rules of ``values``.

A call arrives as ``Call(name_lower, args)``. An unknown name or a wrong number of
arguments is a 400 ``parsing_exception`` (``line L:C: ...``) when the task is created
(``verify``, which the planner runs over every expression), and again if compiled.
Most functions read one value per argument through the dialect's ``single``: a
multi-value gives its first element, null gives null, a value of the wrong type gives
null. The conditional, type and multivalue functions read the values as they are.
Regular expressions run on RE2, linear in their input: a pattern RE2 refuses (a
back-reference, a lookaround) is refused at creation when it is a constant, null at run
time when it is computed.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from functools import lru_cache
from typing import Any, Callable

import re2

from ... import patterns
from .. import types as T
from ..errors import ParsingError
from ..evaluate import Fn, Scope, compile_expr, walk
from ..expr import Call, Expr, Literal
from .values import TypeMismatch, compare, first, leaves, number, numeric, order_key, identity, result, text

Compiled = tuple[Fn, str]
Clock = Callable[[], int]
Build = Callable[[Call, Scope, list[Compiled], Clock], Compiled]
MAX_STRING = 1 << 20  # characters a string function may build (replace, printf): more is null


@dataclass(frozen=True)
class Function:
    least: int
    most: int | None  # None: any number
    build: Build


FUNCTIONS: dict[str, Function] = {}


def compile_call(expr: Call, scope: Scope, clock: Clock) -> Compiled:
    """A function call, checked as ``verify`` checks it, then compiled."""
    function = _checked(expr)
    return function.build(expr, scope, [compile_expr(arg, scope) for arg in expr.args], clock)


def verify(node: Any) -> None:
    """Refuse (400 ``parsing_exception``) every call in ``node`` (an expression, a plan step
    or tuples of them) to an unknown function or with a wrong number of arguments, and
    literal regular expressions RE2 cannot run."""
    for expr in walk(node):
        if isinstance(expr, Call):
            _checked(expr)


def _checked(expr: Call) -> Function:
    function = FUNCTIONS.get(expr.name)
    if function is None:
        raise _error(expr, f"unknown function [{expr.name}]")
    n = len(expr.args)
    if n < function.least or (function.most is not None and n > function.most):
        raise _error(expr, f"function [{expr.name}] expects {_arity(function)}, got {n}")
    if expr.name in _REGEX_ARGUMENT:
        pattern = expr.args[1]
        if isinstance(pattern, Literal) and isinstance(pattern.value, str):
            try:
                _regex(pattern.value)
            except TypeMismatch as exc:
                raise _error(pattern, f"invalid regular expression [{pattern.value}]: {exc}") from None
    return function


def _error(expr: Expr, message: str) -> ParsingError:
    return ParsingError(f"line {expr.src.line}:{expr.src.col}: {message}")


def _arity(function: Function) -> str:
    least, most = function.least, function.most
    plural = "argument" if (most if most is not None else least) == 1 else "arguments"
    if most is None:
        return f"at least {least} {plural}"
    return f"{least} {plural}" if least == most else f"{least} to {most} {plural}"


# --- how functions are declared ---------------------------------------------------------------

def _register(names: str, least: int, most: int | None, build: Build) -> None:
    for name in names.split():
        FUNCTIONS[name] = Function(least, most, build)


def scalar(names: str, least: int, most: int | None, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A function of one value per argument, through the dialect's single-value rule."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        def build(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
            return scope.dialect.single(fn, expr.src, scope.warnings, [f for f, _ in args]), kind
        _register(names, least, most, build)
        return fn
    return register


def raw(names: str, least: int, most: int | None, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A function of the arguments' values as they are (null, multi-values): ``fn(*values)``."""
    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        def build(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
            fns = [f for f, _ in args]
            return (lambda row: fn(*[f(row) for f in fns])), kind
        _register(names, least, most, build)
        return fn
    return register


def _truth(v: Any) -> bool:
    return first(v) is True


# --- conditional ------------------------------------------------------------------------------

def _if(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``if(c, a, b)``: ``a`` when ``c`` is true, else ``b`` (null and non-booleans too);
    only the branch taken is evaluated."""
    (cond, _), (then, a), (other, b) = args
    return (lambda row: then(row) if _truth(cond(row)) else other(row)), a if a == b else T.ANY


def _case(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``case(c1, v1, c2, v2, ...)``: the first ``vi`` whose ``ci`` is true, else null."""
    if len(args) % 2:
        raise _error(expr, "function [case] expects pairs of a condition and a value")
    pairs = [(args[i][0], args[i + 1][0]) for i in range(0, len(args), 2)]
    kinds = {kind for _, kind in args[1::2]}

    def run(row: list[Any]) -> Any:
        for cond, value in pairs:
            if _truth(cond(row)):
                return value(row)
        return None
    return run, kinds.pop() if len(kinds) == 1 else T.ANY


def _validate(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``validate(c1, s1, ...)``: the first ``si`` whose ``ci`` is not true (false or
    null), else null."""
    if len(args) % 2:
        raise _error(expr, "function [validate] expects pairs of a condition and a value")
    pairs = [(args[i][0], args[i + 1][0]) for i in range(0, len(args), 2)]

    def run(row: list[Any]) -> Any:
        for cond, value in pairs:
            if not _truth(cond(row)):
                return value(row)
        return None
    return run, T.ANY


_register("if", 3, 3, _if)
_register("case", 2, None, _case)
_register("validate", 2, None, _validate)


@raw("coalesce", 1, None, T.ANY)
def _coalesce(*values: Any) -> Any:
    """The first argument that is not null (an empty multi-value is null)."""
    return next((v for v in values if v is not None and v != []), None)


@raw("nullif", 2, 2, T.ANY)
def _nullif(a: Any, b: Any) -> Any:
    """Null when ``a == b`` (SML's equality), else ``a``."""
    return None if compare("==", a, b) else a


@lru_cache(maxsize=256)
def _sql_like(pattern: str) -> patterns.Match:
    """SQL LIKE (``%`` any run, ``_`` one character, case-sensitive) as the shared wildcard
    matcher's pattern, its own special characters escaped."""
    translated = "".join("*" if c == "%" else "?" if c == "_" else "\\" + c if c in "*?\\" else c for c in pattern)
    return patterns.like(translated).match


@scalar("like", 2, 2, "boolean")
def _like(s: Any, pattern: Any) -> bool:
    return _sql_like(text(pattern))(text(s))


@lru_cache(maxsize=256)
def _network(cidr: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(cidr.strip(), strict=False)


@scalar("cidrmatch", 2, 2, "boolean")
def _cidrmatch(cidr: Any, ip: Any) -> bool:
    """Whether ``ip`` lies in ``cidr``; an invalid address is false, an invalid range null."""
    network = _network(text(cidr))
    try:
        address = ipaddress.ip_address(text(ip).strip())
    except ValueError:
        return False
    return address.version == network.version and address in network


# --- regular expressions ----------------------------------------------------------------------

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_REGEX_ARGUMENT = {"match", "replace"}  # the second argument is a regular expression


@lru_cache(maxsize=256)
def _regex(pattern: str) -> Any:
    """The compiled pattern; a pattern RE2 refuses is a type error (null)."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise TypeMismatch(exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)) from None


@scalar("match", 2, 2, "boolean")
def _match(s: Any, pattern: Any) -> bool:
    """Whether the regular expression matches somewhere in ``s`` (unanchored)."""
    return _regex(text(pattern)).search(text(s)) is not None


@scalar("replace", 3, 3, "keyword")
def _replace(s: Any, pattern: Any, replacement: Any) -> str:
    """Every match of the regular expression replaced, ``\\1`` naming a group."""
    s, template = text(s), text(replacement)
    pieces, size, pos = [], 0, 0
    for match in _regex(text(pattern)).finditer(s):
        piece = s[pos:match.start()] + match.expand(template)
        size += len(piece)
        if size > MAX_STRING:
            raise TypeMismatch(s)
        pieces.append(piece)
        pos = match.end()
    pieces.append(s[pos:])
    return "".join(pieces)


# --- mathematical -----------------------------------------------------------------------------

@scalar("abs", 1, 1, T.ANY)
def _abs(x: Any) -> Any:
    return result(abs(numeric(x)))


@scalar("ceil ceiling", 1, 1, "long")
def _ceil(x: Any) -> int:
    return result(math.ceil(numeric(x)))


@scalar("floor", 1, 1, "long")
def _floor(x: Any) -> int:
    return result(math.floor(numeric(x)))


_DECIMAL = Context(prec=1000, rounding=ROUND_HALF_UP)
_MAX_DIGITS = 400  # past this, every double rounds to itself (or to zero)


@scalar("round", 1, 2, T.ANY)
def _round(x: Any, digits: Any = 0) -> Any:
    """``x`` rounded half away from zero to ``digits`` decimals (negative: tens, hundreds...);
    an integer with no fractional digits asked stays as it is, ``digits <= 0`` gives an
    integer."""
    value, n = numeric(x), int(numeric(digits))
    if type(value) is int and n >= 0:
        return value
    n = max(-_MAX_DIGITS, min(_MAX_DIGITS, n))
    exact = Decimal(repr(value)) if type(value) is float else Decimal(value)
    rounded = exact.quantize(Decimal(1).scaleb(-n), context=_DECIMAL)
    return result(int(rounded)) if n <= 0 else result(float(rounded))


@scalar("exact sigfig", 1, 1, T.ANY)
def _unchanged(x: Any) -> Any:
    """``exact`` marks a precise computation and ``sigfig`` rounds to the operands'
    significant figures in SPL; here both return the number unchanged (spec §6.1)."""
    return numeric(x)


@scalar("exp", 1, 1, "double")
def _exp(x: Any) -> float:
    return result(math.exp(numeric(x)))


@scalar("ln", 1, 1, "double")
def _ln(x: Any) -> float:
    return math.log(numeric(x))


@scalar("log", 1, 2, "double")
def _log(x: Any, base: Any = 10) -> float:
    return math.log(numeric(x), numeric(base))


@scalar("sqrt", 1, 1, "double")
def _sqrt(x: Any) -> float:
    return math.sqrt(numeric(x))


@scalar("pow", 2, 2, T.ANY)
def _pow(x: Any, y: Any) -> Any:
    """``x`` to the ``y``: exact for integers while the result fits a long, else a double
    (a complex or infinite result is null)."""
    base, exponent = numeric(x), numeric(y)
    if type(base) is int and type(exponent) is int and exponent >= 0 and \
            (abs(base) <= 1 or exponent * math.log2(abs(base)) < 64):
        return result(base ** exponent)
    return result(math.pow(base, exponent))


def _pi(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    return (lambda row: math.pi), "double"


_register("pi", 0, 0, _pi)


# --- time ------------------------------------------------------------------------------------

def _now(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """The task's creation instant, epoch ms (one value for the whole task)."""
    now = clock()
    return (lambda row: now), "date"


_register("now", 0, 0, _now)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_SUBSECONDS = re.compile(r"%(\d?)N|%s|%%")


def _millis(t: Any) -> int:
    """A time argument: epoch ms, or an ISO-8601 string."""
    n = number(t)
    if n is not None:
        return int(n)
    if type(t) is str:
        from ...store.dates import parse_iso_nanos
        return parse_iso_nanos(t) // 1_000_000
    raise TypeMismatch(t)


@scalar("strftime", 2, 2, "keyword")
def _strftime(t: Any, fmt: Any) -> str:
    """``t`` (epoch ms) in UTC by a C ``strftime`` format; also ``%s`` (epoch seconds) and
    SPL's subseconds ``%3N`` (ms), ``%6N`` (µs), ``%N``/``%9N`` (ns)."""
    ms = _millis(t)
    moment = _EPOCH + timedelta(milliseconds=ms)

    def own(m: re.Match[str]) -> str:
        if m.group(0) == "%%":
            return "%%"
        if m.group(0) == "%s":
            return str(ms // 1000)
        width = int(m.group(1) or 9)
        return f"{ms % 1000:03d}{'0' * 6}"[:width]
    return moment.strftime(_SUBSECONDS.sub(own, text(fmt)))


_PARSE_SUBSECONDS = re.compile(r"%\d?N")


@scalar("strptime", 2, 2, "date")
def _strptime(s: Any, fmt: Any) -> int:
    """``s`` read by a C ``strptime`` format (``%3N``... read fractions), as epoch ms; UTC
    unless the format reads an offset (``%z``)."""
    parsed = datetime.strptime(text(s), _PARSE_SUBSECONDS.sub("%f", text(fmt)))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)


# --- type identification --------------------------------------------------------------------

def _empty(v: Any) -> bool:
    return v is None or v == []


raw("isnull", 1, 1, "boolean")(_empty)
raw("isnotnull", 1, 1, "boolean")(lambda v: not _empty(v))
raw("isbool", 1, 1, "boolean")(lambda v: type(first(v)) is bool)
raw("isint", 1, 1, "boolean")(lambda v: type(first(v)) is int)
raw("isnum", 1, 1, "boolean")(lambda v: type(first(v)) in (int, float))
raw("isstr", 1, 1, "boolean")(lambda v: type(first(v)) is str)
_TYPE_NAMES = {str: "String", int: "Number", float: "Number", bool: "Boolean", dict: "Object"}


@raw("typeof", 1, 1, "keyword")
def _typeof(v: Any) -> str:
    """``String``, ``Number``, ``Boolean``, ``Null``, ``Multivalue`` (``Object`` for an object)."""
    if _empty(v):
        return "Null"
    if type(v) is list:
        return "Multivalue"
    return _TYPE_NAMES.get(type(v), "Object")


# --- conversion -------------------------------------------------------------------------------

_DIGITS = re.compile(r"[+-]?(?:0[xX])?[0-9A-Za-z]+")


@scalar("tonumber", 1, 2, T.ANY)
def _tonumber(v: Any, base: Any = None) -> Any:
    """A number, or the number a string spells (surrounding blanks ignored); with ``base``
    (2-36) the integer a string of that base's digits spells (``0x`` allowed in base 16)."""
    if type(v) is bool:
        raise TypeMismatch(v)
    if base is None:
        return result(numeric(v.strip() if type(v) is str else v))
    radix = numeric(base)
    digits = text(v).strip()
    if not (type(radix) is int and 2 <= radix <= 36) or not _DIGITS.fullmatch(digits):
        raise TypeMismatch(v)
    return result(int(digits, radix))


@scalar("tostring", 1, 2, "keyword")
def _tostring(v: Any, style: Any = None) -> str:
    """The value as text; ``tostring(n, "hex")``, ``"commas"`` (thousands separated, two
    decimals for a fraction) and ``"duration"`` (seconds as ``[D+]HH:MM:SS``) as in SPL."""
    if style is None:
        return text(v)
    n = numeric(v)
    if style == "hex":
        return hex(int(n))
    if style == "commas":
        return f"{n:,}" if type(n) is int else f"{round(n, 2):,}"
    if style == "duration":
        days, rest = divmod(int(n), 86_400)
        clock = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
        return f"{days}+{clock}" if days else clock
    raise TypeMismatch(style)


@scalar("tobool", 1, 1, "boolean")
def _tobool(v: Any) -> bool:
    """A boolean; a number is true unless zero; ``"true"``/``"false"`` in any case."""
    if type(v) is bool:
        return v
    n = number(v)
    if n is not None:
        return n != 0
    lowered = text(v).strip().lower() if type(v) is str else None
    if lowered in ("true", "false"):
        return lowered == "true"
    raise TypeMismatch(v)


_SPEC = re.compile(r"%([-+ 0#]*)(\d*)(?:\.(\d+))?([diouxXeEfFgGsc%])")
_MAX_WIDTH = 1000


@scalar("printf", 1, None, "keyword")
def _printf(fmt: Any, *args: Any) -> str:
    """C's ``printf``: ``%d %i %o %u %x %X %e %f %g %s %c %%`` with flags, width and
    precision; an argument of the wrong type or a missing one is null."""
    values = list(args)

    def convert(m: re.Match[str]) -> str:
        flags, width, precision, conv = m.groups()
        if conv == "%":
            return "%"
        if not values or int(width or 0) > _MAX_WIDTH or int(precision or 0) > _MAX_WIDTH:
            raise TypeMismatch(fmt)
        arg = values.pop(0)
        spec = f"%{flags}{width}{'.' + precision if precision is not None else ''}"
        if conv in "diouxXc":
            return (spec + ("d" if conv in "iu" else conv)) % int(numeric(arg))
        if conv in "eEfFgG":
            return (spec + conv) % float(numeric(arg))
        return (spec + "s") % text(arg)
    out = _SPEC.sub(convert, text(fmt))
    if len(out) > MAX_STRING:
        raise TypeMismatch(fmt)
    return out


# --- statistical ------------------------------------------------------------------------------

@raw("max", 1, None, T.ANY)
def _max(*values: Any) -> Any:
    """The largest value of the arguments (every value of a multi-value): strings are
    larger than numbers; nulls ignored."""
    present = [v for arg in values for v in leaves(arg)]
    return max(present, key=order_key) if present else None


@raw("min", 1, None, T.ANY)
def _min(*values: Any) -> Any:
    present = [v for arg in values for v in leaves(arg)]
    return min(present, key=order_key) if present else None


# --- text -------------------------------------------------------------------------------------

scalar("len", 1, 1, "long")(lambda s: len(text(s)))
scalar("lower", 1, 1, "keyword")(lambda s: text(s).lower())
scalar("upper", 1, 1, "keyword")(lambda s: text(s).upper())
scalar("ltrim", 1, 2, "keyword")(lambda s, chars=None: text(s).lstrip(None if chars is None else text(chars)))
scalar("rtrim", 1, 2, "keyword")(lambda s, chars=None: text(s).rstrip(None if chars is None else text(chars)))
scalar("trim", 1, 2, "keyword")(lambda s, chars=None: text(s).strip(None if chars is None else text(chars)))


@scalar("substr", 2, 3, "keyword")
def _substr(s: Any, start: Any, length: Any = None) -> str:
    """``length`` characters from the 1-based ``start`` (negative: from the end; 0 is 1);
    without ``length``, the rest."""
    value, at = text(s), int(numeric(start))
    begin = at - 1 if at > 0 else max(len(value) + at, 0) if at < 0 else 0
    if length is None:
        return value[begin:]
    count = int(numeric(length))
    if count < 0:
        raise TypeMismatch(length)
    return value[begin:begin + count]


def _constant(value: bool) -> Build:
    return lambda expr, scope, args, clock: ((lambda row: value), "boolean")


_register("true", 0, 0, _constant(True))
_register("false", 0, 0, _constant(False))


# --- multivalue -------------------------------------------------------------------------------

def _elements(v: Any) -> list[Any]:
    """A value's elements: a multi-value's (nulls dropped), a single value alone, null none."""
    if v is None:
        return []
    return [x for x in v if x is not None] if type(v) is list else [v]


@raw("split", 2, 2, T.ANY)
def _split(s: Any, delimiter: Any) -> Any:
    """The pieces of ``s`` between occurrences of ``delimiter`` (``""``: every character)."""
    s, delimiter = first(s), first(delimiter)
    if s is None or delimiter is None:
        return None
    value, sep = text(s), text(delimiter)
    return T.collapse(value.split(sep) if sep else list(value))


@raw("mvcount", 1, 1, "long")
def _mvcount(v: Any) -> int | None:
    """How many values: null for none."""
    return len(_elements(v)) or None


@raw("mvindex", 2, 3, T.ANY)
def _mvindex(v: Any, start: Any, end: Any = None) -> Any:
    """The value at the 0-based ``start``, or the values from ``start`` to ``end`` included;
    negative positions count from the end; out of range is null."""
    values = _elements(v)
    i, j = number(first(start)), number(first(end)) if end is not None else None
    if type(i) is not int or (end is not None and type(j) is not int):
        return None
    i = i + len(values) if i < 0 else i
    j = i if j is None else j + len(values) if j < 0 else min(j, len(values) - 1)
    if not 0 <= i < len(values) or j < i:
        return None
    return T.collapse(values[i:j + 1])


@raw("mvjoin", 2, 2, "keyword")
def _mvjoin(v: Any, delimiter: Any) -> str | None:
    values, sep = _elements(v), first(delimiter)
    if not values or sep is None:
        return None
    return text(sep).join(map(text, values))


@raw("mvappend", 1, None, T.ANY)
def _mvappend(*args: Any) -> Any:
    """Every value of every argument, in order; nulls left out."""
    return T.collapse([x for arg in args for x in _elements(arg)])


@raw("mvdedup", 1, 1, T.ANY)
def _mvdedup(v: Any) -> Any:
    """The values with repeats removed, first occurrences kept in order."""
    seen: set[tuple] = set()
    out = []
    for x in _elements(v):
        key = identity(x)
        if key not in seen:
            seen.add(key)
            out.append(x)
    return T.collapse(out)
