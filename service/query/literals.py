"""What the lark-built parsers share: the constant literals, built the same way by each
language's transformer (which provides ``_src``)."""

from __future__ import annotations

from typing import Any

from lark import v_args

from .expr import Expr, Literal, Src


class ConstantLiterals:
    """``null``, ``true`` and ``false`` as the shared expression nodes."""

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
