"""What the lark-built parsers share: the rules every language's grammar writes the same
way, built by its transformer (which provides ``_src``). A rule a grammar lacks is unused."""

from __future__ import annotations

from typing import Any

from lark import v_args

from .expr import Expr, Literal, Logical, Not, Src


class CommonRules:
    """``null``, ``true``, ``false``, ``not`` and ``and``/``or`` (one ``logical`` rule) as the
    shared expression nodes."""

    def _src(self, meta: Any) -> Src:
        raise NotImplementedError

    @v_args(meta=True)
    def null(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(None, "null", src=self._src(meta))

    @v_args(meta=True)
    def true(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(True, "boolean", src=self._src(meta))

    @v_args(meta=True)
    def false(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(False, "boolean", src=self._src(meta))

    @v_args(meta=True)
    def not_(self, meta: Any, c: list[Any]) -> Expr:
        return Not(c[1], src=self._src(meta))

    @v_args(meta=True)
    def logical(self, meta: Any, c: list[Any]) -> Expr:
        return Logical(c[1].upper(), c[0], c[2], src=self._src(meta))
