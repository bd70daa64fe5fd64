"""EQL's sixteen functions (spec/eql.md §5), with Elasticsearch's names, arity and type
checks and error wording.

A call arrives as ``Call("STARTSWITH~", args)``: the name upper-cased, ``~`` kept for the
case-insensitive form, which only the five functions with a ``~`` variant accept. Values go
through the dialect's ``single`` (null in, null out; one result per value of a multi-value);
what is left here is each function's own semantics, Java's where Python's differ.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any, Callable

from ...errors import ServiceError
from ...suggest import listed, similar
from ...store.dates import format_millis, format_nanos
from ...store.java_values import java_double
from .. import signatures
from .. import types as T
from ..evaluate import EvalError, Fn, Scope, compile_expr, fold, verify_fail
from ..expr import Binary, Call

Compiled = tuple[Fn, str]
STRING = (T.STRINGS, "string")
INTEGER = (("integer", "long"), "integer")
BOOLEAN = (("boolean",), "boolean")
IP = (("ip",), "ip")


@dataclass(frozen=True)
class Function:
    name: str  # as Elasticsearch registers it (lower case)
    least: int
    most: int | None  # None: variadic
    build: Callable[[Call, Scope, bool], Compiled]
    has_variant: bool = False  # accepts `name~(...)`


def compile_call(expr: Call, scope: Scope) -> Compiled:
    """A function call: unknown names and ``~`` where there is no variant are refused as
    Elasticsearch refuses them, then arity, then argument types."""
    name = expr.name.removesuffix("~")
    insensitive = name != expr.name
    function = FUNCTIONS.get(name)
    if function is None:
        raise verify_fail(expr.src, _unknown(_written(expr, name)))
    if insensitive and not function.has_variant:
        raise _parsing(expr, f"Function [CASE_INSENSITIVE] does not support case-(in)sensitivity {function.name}()")
    n = len(expr.args)
    if n < function.least or (function.most is not None and n > function.most):
        raise _parsing(expr, f"error building [{function.name}]: {_arity(function.least, function.most)}")
    return function.build(expr, scope, insensitive)


def _written(expr: Call, name: str) -> str:
    """The function's name as the query spells it."""
    written = expr.src.text.partition("(")[0].strip().removesuffix("~")
    return written if written.upper() == name else name.lower()


def _unknown(name: str) -> str:
    """``Unknown function [x]``, with the names Elasticsearch finds similar (a similarity of
    at least 0.5, most similar first)."""
    names = similar(name.lower(), [f.name for f in FUNCTIONS.values()], 0.5)
    return f"Unknown function [{name}], did you mean {listed(names)}?" if names else f"Unknown function [{name}]"


def _parsing(expr: Call, message: str) -> ServiceError:
    return ServiceError(f"line {expr.src.line}:{expr.src.col}: {message}", status=400, type="parsing_exception")


_WORDS = ["no", "one", "two", "three", "four"]


def _arity(least: int, most: int | None) -> str:
    if most is None:
        return f"expects at least {_WORDS[least]} argument{'s' if least != 1 else ''}"
    if least == most:
        return f"expects exactly {_WORDS[least]} argument{'s' if least != 1 else ''}"
    return f"expects {_WORDS[least]} or {_WORDS[most]} arguments"


# --- helpers shared by the functions --------------------------------------------------------

def _args(expr: Call, scope: Scope, *accepted: tuple[tuple[str, ...], str] | None) -> list[Compiled]:
    """The compiled arguments, each checked against its accepted types (None: any)."""
    compiled = [compile_expr(arg, scope) for arg in expr.args]
    for i, ((_, kind), allowed) in enumerate(zip(compiled, accepted)):
        if allowed is not None:
            signatures.require(expr, i, kind, *allowed)
    return compiled


def _constant(expr: Call, i: int, scope: Scope) -> Any:
    """Argument ``i``'s value, which Elasticsearch wants foldable."""
    done, value = fold(expr.args[i], scope)
    if not done:
        raise verify_fail(expr.src, f"{_ORDINALS[i]} argument of [{expr.src.text}] must be a constant, received "
                                    f"[{expr.args[i].src.text}]")
    return value


_ORDINALS = ["first", "second", "third", "fourth", "fifth"]


def _single(expr: Call, scope: Scope, fn: Callable[..., Any], compiled: list[Compiled], out: str) -> Compiled:
    return scope.dialect.single(fn, expr.src, scope.warnings, [f for f, _ in compiled]), out


def java_string(value: Any, kind: str) -> str:
    """Java's ``toString`` of a value: ``true``, ``42.5``, ``1.0E20``; dates as
    Elasticsearch prints them."""
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is float:
        return java_double(value)
    if kind == "date":
        return format_millis(value)
    if kind == "date_nanos":
        return format_nanos(value)
    return str(value)


def _lower(insensitive: bool) -> Callable[[str], str]:
    """Java's ``toLowerCase(Locale.ROOT)`` for a ``~`` variant (``str.lower``, not
    ``casefold``), else the identity."""
    return str.lower if insensitive else (lambda s: s)


# --- arithmetic -----------------------------------------------------------------------------

def _operator(op: str) -> Callable[[Call, Scope, bool], Compiled]:
    """``add(a, b)`` is ``a + b``, with the operator's types and errors."""
    def build(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
        return compile_expr(Binary(op, expr.args[0], expr.args[1], src=expr.src), scope)
    return build


# --- string functions -----------------------------------------------------------------------

def _between(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """The text between the first ``left`` and the next (greedy: the last) ``right``;
    Elasticsearch's port of Endgame's ``between``: an empty argument returns the source."""
    compiled = _args(expr, scope, STRING, STRING, STRING, BOOLEAN)
    greedy = len(expr.args) > 3 and _constant(expr, 3, scope) is True
    lower = _lower(insensitive)

    def between(source: str, left: str, right: str) -> str:
        if not source or not left or not right:
            return source
        text = lower(source)
        found = text.find(lower(left))
        if found < 0:
            return ""
        start = found + len(left)
        end = text.rfind(lower(right)) if greedy else text.find(lower(right), start)
        return source[start:end] if end >= start else ""
    return _single(expr, scope, between, compiled[:3], "keyword")


def _cidr_match(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """Whether the address is in any of the blocks (IPv4 and IPv6 alike, host bits allowed;
    an IPv4 address also matches its IPv4-mapped IPv6 block)."""
    compiled = _args(expr, scope, IP, *([STRING] * (len(expr.args) - 1)))
    blocks = [_constant(expr, i, scope) for i in range(1, len(expr.args))]
    if any(b is None for b in blocks):
        return (lambda row: None), "boolean"
    networks = [_network(block) for block in blocks]

    def cidr_match(address: str) -> bool:
        value = _address_bits(ipaddress.ip_address(address))
        return any(value >> (128 - prefix) == bits for bits, prefix in networks)
    return _single(expr, scope, cidr_match, compiled[:1], "boolean")


def _address_bits(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    """The 128 bits Elasticsearch indexes an address as (IPv4 as IPv4-mapped IPv6)."""
    return int(address) | (0xFFFF << 32) if address.version == 4 else int(address)


def _network(block: str) -> tuple[int, int]:
    """A block's network bits (of the 128) and its prefix length; a block the ip field
    cannot read fails the search as the shard's terms query does."""
    from .dialect import query_failure  # here: the dialect imports this module
    try:
        network = ipaddress.ip_network(block, strict=False)
    except ValueError:
        raise query_failure(f"'{block}' is not an IP string literal.") from None
    prefix = network.prefixlen + (96 if network.version == 4 else 0)
    return _address_bits(network.network_address) >> (128 - prefix), prefix


def _concat(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """Every value as ``string()`` gives it, joined; null when any is null."""
    compiled = _args(expr, scope)
    kinds = [kind for _, kind in compiled]
    return _single(expr, scope, lambda *values: "".join(java_string(v, k) for v, k in zip(values, kinds)),
                   compiled, "keyword")


def _affix(test: Callable[[str, str], bool]) -> Callable[[Call, Scope, bool], Compiled]:
    """``startsWith`` / ``endsWith``: a test of the source against a piece of text."""
    def build(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
        compiled = _args(expr, scope, STRING, STRING)
        lower = _lower(insensitive)
        return _single(expr, scope, lambda s, sub: test(lower(s), lower(sub)), compiled, "boolean")
    return build


def _string_contains(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """Whether ``sub`` occurs in the source; false when either is empty (Elasticsearch's
    ``StringUtils.stringContains``, unlike Java's ``contains``)."""
    compiled = _args(expr, scope, STRING, STRING)
    lower = _lower(insensitive)
    return _single(expr, scope, lambda s, sub: bool(s) and bool(sub) and lower(sub) in lower(s), compiled, "boolean")


def _index_of(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """The first position of ``sub`` at or after ``start`` (negative: 0), or null when
    there is none or ``start`` is past the end."""
    compiled = _args(expr, scope, STRING, STRING, INTEGER)
    lower = _lower(insensitive)

    def index_of(source: str, sub: str, start: int = 0) -> int | None:
        if start > len(source):
            return None
        found = lower(source).find(lower(sub), max(start, 0))
        return found if found >= 0 else None
    return _single(expr, scope, index_of, compiled, "integer")


def _length(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """Java's ``String.length()``: UTF-16 code units."""
    compiled = _args(expr, scope, STRING)
    return _single(expr, scope, lambda s: len(s.encode("utf-16-le")) // 2, compiled, "integer")


def _substring(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """A Python slice: negative offsets count from the end, out-of-range ones are clamped."""
    compiled = _args(expr, scope, STRING, INTEGER, INTEGER)
    return _single(expr, scope, lambda s, start, end=None: s[start:end], compiled, "keyword")


def _string(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    compiled = _args(expr, scope)
    kind = compiled[0][1]
    return _single(expr, scope, lambda v: java_string(v, kind), compiled, "keyword")


# --- number() -------------------------------------------------------------------------------

_DOUBLE = re.compile(r"[+-]?(NaN|Infinity|([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[fFdD]?)")
_UNCONVERTIBLE = ("org.elasticsearch.xpack.eql.EqlIllegalArgumentException: "
                  "Unable to convert [{}] to number of base [{}]")


def _number(expr: Call, scope: Scope, insensitive: bool) -> Compiled:
    """``number(s[, base])`` as Elasticsearch's ``ToNumberFunctionProcessor``: a ``0x``
    prefix means base 16 when the base is null or 16; base 10 reads a long, else a double
    (``Double.valueOf``, which trims whitespace); other bases read a long."""
    compiled = _args(expr, scope, STRING, INTEGER)
    base = _constant(expr, 1, scope) if len(expr.args) > 1 else None

    def number(text: str) -> int | float:
        hexadecimal = text.startswith("0x")
        radix = base if base is not None else 16 if hexadecimal else 10
        digits = text[2:] if hexadecimal and radix == 16 else text
        value = _parse_long(digits, radix)
        if value is None and radix == 10:
            value = _parse_double(digits)
        if value is None:
            raise EvalError(_UNCONVERTIBLE.format(digits, radix))
        return value
    return _single(expr, scope, number, compiled[:1], "double")


def _parse_long(text: str, radix: int) -> int | None:
    """``Long.parseLong``: an optional sign and digits of the radix, within a long."""
    if not 2 <= radix <= 36 or not re.fullmatch(r"[+-]?[0-9a-zA-Z]+", text):
        return None
    try:
        value = int(text, radix)
    except ValueError:
        return None
    lo, hi = T.INT_RANGE["long"]
    return value if lo <= value <= hi else None


def _parse_double(text: str) -> float | None:
    """``Double.valueOf`` of decimal text (surrounding whitespace and control characters
    ignored, an ``f``/``d`` suffix allowed)."""
    stripped = text.strip("".join(chr(c) for c in range(33)))
    if not _DOUBLE.fullmatch(stripped):
        return None
    return float(stripped.rstrip("fFdD"))


FUNCTIONS: dict[str, Function] = {f.name.upper(): f for f in (
    Function("add", 2, 2, _operator("+")),
    Function("between", 3, 4, _between, has_variant=True),
    Function("cidrmatch", 2, None, _cidr_match),
    Function("concat", 1, None, _concat),
    Function("divide", 2, 2, _operator("/")),
    Function("endswith", 2, 2, _affix(str.endswith), has_variant=True),
    Function("indexof", 2, 3, _index_of, has_variant=True),
    Function("length", 1, 1, _length),
    Function("modulo", 2, 2, _operator("%")),
    Function("multiply", 2, 2, _operator("*")),
    Function("number", 1, 2, _number),
    Function("startswith", 2, 2, _affix(str.startswith), has_variant=True),
    Function("string", 1, 1, _string),
    Function("stringcontains", 2, 2, _string_contains, has_variant=True),
    Function("substring", 2, 3, _substring),
    Function("subtract", 2, 2, _operator("-")),
)}
