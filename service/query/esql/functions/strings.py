"""String functions."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any, Callable, Iterator

import re2
import regex

from ....errors import ServiceError
from ... import types as T
from ...evaluate import EvalError, Fn, Scope, guarded
from ...expr import Call
from ._base import REGISTRY, _arity, _require, _single, register


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
    from ...evaluate import fold
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
