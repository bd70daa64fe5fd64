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
from functools import lru_cache
from typing import Any

import re2

from ... import patterns
from .. import types as T
from ..evaluate import Scope, compile_expr, walk
from ..expr import Call, Literal
from . import maths, multivalue  # noqa: F401  (they register their functions)
from .registry import FUNCTIONS, MAX_STRING, Build, Clock, Compiled, Function, error, raw, register, scalar, truth
from .values import TypeMismatch, compare, first, number, numeric, result, text


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
        raise error(expr, f"unknown function [{expr.name}]")
    n = len(expr.args)
    if n < function.least or (function.most is not None and n > function.most):
        raise error(expr, f"function [{expr.name}] expects {_arity(function)}, got {n}")
    if expr.name in _PAIRED and n % 2:
        raise error(expr, f"function [{expr.name}] expects pairs of a condition and a value")
    if expr.name == "mvfilter":
        multivalue.filtered_field(expr)
    if expr.name in _REGEX_ARGUMENT:
        pattern = expr.args[1]
        if isinstance(pattern, Literal) and isinstance(pattern.value, str):
            try:
                compile_regex(pattern.value)
            except TypeMismatch as exc:
                raise error(pattern, f"invalid regular expression [{pattern.value}]: {exc}") from None
    return function


def _arity(function: Function) -> str:
    least, most = function.least, function.most
    plural = "argument" if (most if most is not None else least) == 1 else "arguments"
    if most is None:
        return f"at least {least} {plural}"
    return f"{least} {plural}" if least == most else f"{least} to {most} {plural}"


# --- conditional ------------------------------------------------------------------------------

def _chosen(kinds: Any) -> str:
    """The type of a result chosen among values of ``kinds``: theirs where they agree, a
    null agreeing with any (so a date chosen is still a date), else ``any``."""
    present = set(kinds) - {"null"}
    return present.pop() if len(present) == 1 else T.ANY if present else "null"


def _if(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``if(c, a, b)``: ``a`` when ``c`` is true, else ``b`` (null and non-booleans too);
    only the branch taken is evaluated."""
    (cond, _), (then, a), (other, b) = args
    return (lambda row: then(row) if truth(cond(row)) else other(row)), _chosen((a, b))


def _case(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``case(c1, v1, c2, v2, ...)``: the first ``vi`` whose ``ci`` is true, else null."""
    pairs = [(args[i][0], args[i + 1][0]) for i in range(0, len(args), 2)]

    def run(row: list[Any]) -> Any:
        for cond, value in pairs:
            if truth(cond(row)):
                return value(row)
        return None
    return run, _chosen(kind for _, kind in args[1::2])


def _validate(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """``validate(c1, s1, ...)``: the first ``si`` whose ``ci`` is not true (false or
    null), else null."""
    pairs = [(args[i][0], args[i + 1][0]) for i in range(0, len(args), 2)]

    def run(row: list[Any]) -> Any:
        for cond, value in pairs:
            if not truth(cond(row)):
                return value(row)
        return None
    return run, T.ANY


_PAIRED = {"case", "validate"}  # (condition, value) pairs, checked with the arity
register("if", 3, 3, _if)
register("case", 2, None, _case)
register("validate", 2, None, _validate)


def _coalesce(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """The first argument that is not null (an empty multi-value is null)."""
    fns = [fn for fn, _ in args]

    def run(row: list[Any]) -> Any:
        return next((v for v in (fn(row) for fn in fns) if v is not None and v != []), None)
    return run, _chosen(kind for _, kind in args)


def _nullif(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
    """Null when ``a == b`` (SML's equality), else ``a``."""
    (a, kind), (b, _) = args
    return (lambda row: None if compare("==", value := a(row), b(row)) else value), _chosen((kind,))


register("coalesce", 1, None, _coalesce)
register("nullif", 2, 2, _nullif)


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
_REGEX_ARGUMENT = {"match", "replace", "mvfind"}  # the second argument is a regular expression


@lru_cache(maxsize=256)
def compile_regex(pattern: str) -> Any:
    """The compiled pattern; a pattern RE2 refuses is a type error (null)."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS)
    except re2.error as exc:
        raise TypeMismatch(exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)) from None


@scalar("match", 2, 2, "boolean")
def _match(s: Any, pattern: Any) -> bool:
    """Whether the regular expression matches somewhere in ``s`` (unanchored)."""
    return compile_regex(text(pattern)).search(text(s)) is not None


@raw("mvfind", 2, 2, "long")
def _mvfind(v: Any, pattern: Any) -> int | None:
    """The 0-based position of the first value the regular expression matches, else null."""
    values, pattern = ([x for x in v if x is not None] if type(v) is list else [v]), first(pattern)
    if pattern is None or v is None:
        return None
    try:
        regex = compile_regex(text(pattern))
    except TypeMismatch:
        return None
    return next((i for i, x in enumerate(values) if regex.search(text(x)) is not None), None)


@scalar("replace", 3, 3, "keyword")
def _replace(s: Any, pattern: Any, replacement: Any) -> str:
    """Every match of the regular expression replaced, ``\\1`` naming a group."""
    s, template = text(s), text(replacement)
    pieces, size, pos = [], 0, 0
    for match in compile_regex(text(pattern)).finditer(s):
        piece = s[pos:match.start()] + match.expand(template)
        size += len(piece)
        if size > MAX_STRING:
            raise TypeMismatch(s)
        pieces.append(piece)
        pos = match.end()
    pieces.append(s[pos:])
    return "".join(pieces)


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
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@scalar("tonumber", 1, 2, T.ANY)
def _tonumber(v: Any, base: Any = None) -> Any:
    """A number, or the number a string spells (surrounding blanks ignored; also ``.5`` and
    ``5.``, as SPL reads them); with ``base`` (2-36) the integer a string of that base's
    digits spells (``0x`` allowed in base 16)."""
    if type(v) is bool:
        raise TypeMismatch(v)
    if base is None:
        if type(v) is str:
            v = v.strip()
            if number(v) is None and _DECIMAL.fullmatch(v):
                return result(float(v))
        return result(numeric(v))
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
        days, rest = divmod(abs(int(n)), 86_400)
        clock = f"{rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
        return ("-" if int(n) < 0 else "") + (f"{days}+{clock}" if days else clock)
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


_SPEC = re.compile(r"%([-+ 0#']*)(\d*|\*)(?:\.(\d*|\*))?(?:hh|h|ll|l|L|q|j|z|t)?([diouxXeEfFgGaAsc%])")
_MAX_WIDTH = 1000
_DIGIT_RUN = re.compile(r"\d+")


@scalar("printf", 1, None, "keyword")
def _printf(fmt: Any, *args: Any) -> str:
    """C's ``printf``: ``%d %i %o %u %x %X %e %f %g %a %s %c %%`` with flags, width and
    precision (``*``: the next argument), length modifiers read and ignored (``%ld``), and
    the ``'`` flag grouping a decimal's thousands with commas (``%'d``, as SPL's and
    glibc's); an argument of the wrong type or a missing one is null."""
    values = list(args)

    def convert(m: re.Match[str]) -> str:
        flags, width, precision, conv = m.groups()
        if conv == "%":
            return "%"
        width, precision = _star(width, values, fmt), _star(precision, values, fmt)
        if width.startswith("-"):  # a negative * width left-justifies, as in C
            flags, width = flags + "-", width[1:]
        if precision is not None and precision.startswith("-"):  # a negative * precision is taken as omitted
            precision = None
        if not values or int(width or 0) > _MAX_WIDTH or int(precision or 0) > _MAX_WIDTH:
            raise TypeMismatch(fmt)
        grouped, flags = "'" in flags and conv in "diufFgG", flags.replace("'", "")
        arg = values.pop(0)
        if conv in "aA":
            out = _hex_float(float(numeric(arg)), precision, flags)
            out = out.upper() if conv == "A" else out
        else:
            out = _convert(f"%{flags}{'' if grouped else width}{'.' + precision if precision is not None else ''}",
                           conv, arg)
        if grouped:
            out = _DIGIT_RUN.sub(lambda digits: f"{int(digits[0]):,}", out, count=1)
        elif conv == "o" and "#" in flags:
            out = out.replace("0o", "0", 1)  # C's alternate octal is 010, Python's 0o10
        return out.ljust(int(width or 0)) if "-" in flags else out.rjust(int(width or 0))
    out = _SPEC.sub(convert, text(fmt))
    if len(out) > MAX_STRING:
        raise TypeMismatch(fmt)
    return out


def _star(written: str | None, values: list[Any], fmt: Any) -> Any:
    """A width or precision as written, or for ``*`` the next argument (an integer)."""
    if written != "*":
        return written
    n = numeric(values.pop(0)) if values else None
    if type(n) is not int:
        raise TypeMismatch(fmt)
    return str(n)


def _convert(spec: str, conv: str, arg: Any) -> str:
    """One ``printf`` conversion of ``arg`` by ``spec`` (``%`` with flags, width, precision);
    ``%c`` of a text that is no number is its first character (SPL: ``A,F`` for 65, "Foo")."""
    if conv == "c" and number(first(arg)) is None:
        return (spec + "s") % text(arg)[:1]
    if conv in "diouxXc":
        return (spec + ("d" if conv in "iu" else conv)) % int(numeric(arg))
    if conv in "eEfFgG":
        return (spec + conv) % float(numeric(arg))
    return (spec + "s") % text(arg)


def _hex_float(x: float, precision: str | None, flags: str) -> str:
    """C's ``%a``: ``[-]0x1.<hex digits>p<exponent>``, the digits rounded half to even to
    ``precision`` when given, else as few as are exact (``0x1p+0``)."""
    sign = "-" if math.copysign(1.0, x) < 0 else "+" if "+" in flags else " " if " " in flags else ""
    lead, fraction, exponent = 0, 0, 0
    if x:
        mantissa, power = math.frexp(abs(x))  # abs(x) = mantissa * 2**power, 0.5 <= mantissa < 1
        lead, fraction, exponent = 1, int(mantissa * (1 << 53)) - (1 << 52), power - 1
    if precision is None:
        digits = f"{fraction:013x}".rstrip("0")
    elif (places := int(precision or 0)) >= 13:
        digits = f"{fraction:013x}" + "0" * (places - 13)
    else:
        shift = 4 * (13 - places)
        kept, rest = divmod(fraction, 1 << shift)
        if rest > 1 << (shift - 1) or (rest == 1 << (shift - 1) and kept & 1):
            kept += 1
        if kept >> (4 * places):  # rounded up past the digits: 0x1.f8 to one place is 0x2.0
            lead, kept = lead + 1, 0
        digits = f"{kept:0{places}x}" if places else ""
    return f"{sign}0x{lead}{'.' + digits if digits else ''}p{exponent:+d}"


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


def _constant(value: bool | None, kind: str) -> Build:
    return lambda expr, scope, args, clock: ((lambda row: value), kind)


register("true", 0, 0, _constant(True, "boolean"))
register("false", 0, 0, _constant(False, "boolean"))
register("null", 0, 0, _constant(None, "null"))  # SPL's null(), beside the literal null


