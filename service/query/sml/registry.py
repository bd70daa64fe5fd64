"""The table of SML's eval functions and how a function is declared in it (see ``functions``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import ParsingError
from ..evaluate import Fn, Scope
from ..expr import Call, Expr
from .values import first

Compiled = tuple[Fn, str]
Clock = Callable[[], int]
# (the call, its scope, its compiled arguments, the task's clock) -> the compiled call
Build = Callable[[Call, Scope, list[Compiled], Clock], Compiled]
MAX_STRING = 1 << 20  # characters a string function may build (replace, printf): more is null


@dataclass(frozen=True)
class Function:
    """A function: how many arguments it takes and how a call of it is compiled."""

    least: int
    most: int | None  # None: any number
    build: Build


FUNCTIONS: dict[str, Function] = {}


def error(expr: Expr, message: str) -> ParsingError:
    """A call SML refuses when the task is created: 400 ``parsing_exception``, ``line L:C: ...``."""
    return ParsingError(f"line {expr.src.line}:{expr.src.col}: {message}")


def register(names: str, least: int, most: int | None, build: Build) -> None:
    """Declare the functions ``names`` (space-separated aliases) with their arity."""
    for name in names.split():
        FUNCTIONS[name] = Function(least, most, build)


def scalar(names: str, least: int, most: int | None, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A function of one value per argument, through the dialect's single-value rule."""
    def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
        def build(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
            return scope.dialect.single(fn, expr.src, scope.warnings, [f for f, _ in args]), kind
        register(names, least, most, build)
        return fn
    return declare


def raw(names: str, least: int, most: int | None, kind: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A function of the arguments' values as they are (null, multi-values): ``fn(*values)``."""
    def declare(fn: Callable[..., Any]) -> Callable[..., Any]:
        def build(expr: Call, scope: Scope, args: list[Compiled], clock: Clock) -> Compiled:
            fns = [f for f, _ in args]
            return (lambda row: fn(*[f(row) for f in fns])), kind
        register(names, least, most, build)
        return fn
    return declare


def truth(v: Any) -> bool:
    """Whether a condition holds: exactly true (a multi-value: its first value)."""
    return first(v) is True
