"""ES|QL text -> logical plan. The grammar is ``grammar.lark`` (LALR, positions kept)."""

from __future__ import annotations

import math
import sys
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from ...errors import ServiceError
from .. import plan as p
from ..errors import ParsingError
from . import plan as ep
from .. import types as T
from ..expr import Binary, Call, Cast, Column, Expr, In, IsNull, Like, Literal, Logical, Neg, Src, Star
from ..parsing import CommonRules
from ..numeric import span_amount_problem
from ..types import TIME_UNITS

class TooLarge(ValueError):
    """A numeric literal no double can hold."""


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def integer_literal(text: str) -> Literal:
    """An integer literal typed as ES types it: integer, long, unsigned_long, else double
    (a number past every double is refused, as ES refuses it)."""
    digits = text.lstrip("0") or "0"
    if len(digits) > 20:  # past 2^64 whatever the digits: read as a double, not an exact int
        value = float(digits)
        if math.isinf(value):
            raise TooLarge(text)
        return Literal(value, "double")
    value = int(digits)
    if value <= 2**31 - 1:
        return Literal(value, "integer")
    if value <= 2**63 - 1:
        return Literal(value, "long")
    if value <= 2**64 - 1:
        return Literal(value, "unsigned_long")
    return Literal(float(value), "double")


def unquote_string(text: str) -> str:
    if text.startswith('"""'):
        return text[3:-3]
    body, out, i = text[1:-1], [], 0
    escapes = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            out.append(escapes.get(body[i + 1], "\\" + body[i + 1]))
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _ident(token: str) -> str:
    return token[1:-1].replace("``", "`") if token.startswith("`") else str(token)


class _ToPlan(CommonRules, Transformer):
    def __init__(self, text: str, params: list[Any] | dict[str, Any]) -> None:
        super().__init__()
        self.text = text
        self.params = params
        self.next_param = 0
        self.warnings: list[str] = []

    def _src(self, meta: Any) -> Src:
        if getattr(meta, "empty", True):
            return Src()
        return Src(meta.line, meta.column, self.text[meta.start_pos:meta.end_pos])

    # --- commands ---
    @v_args(meta=True)
    def start(self, meta: Any, children: list[Any]) -> p.Plan:
        return p.Plan(tuple(children), self.text, tuple(self.warnings))

    def from_command(self, children: list[Any]) -> p.Source:
        indices = tuple(c for c in children[1:] if isinstance(c, str))
        metadata = next((c for c in children[1:] if isinstance(c, tuple)), ())
        return p.Source(indices, metadata)

    def metadata(self, children: list[Any]) -> tuple[str, ...]:
        return tuple(children[1:])

    def index_pattern(self, children: list[Token]) -> str:
        token = children[0]
        return unquote_string(token) if token.type == "STRING" else str(token)

    def row_command(self, children: list[Any]) -> ep.Row:
        return ep.Row(_pairs(children[1]))

    def show_command(self, children: list[Any]) -> ep.ShowInfo:
        return ep.ShowInfo()

    @v_args(meta=True)
    def where_command(self, meta: Any, children: list[Any]) -> p.Filter:
        return p.Filter(children[1], src=self._src(meta))

    def eval_command(self, children: list[Any]) -> p.Eval:
        return p.Eval(_pairs(children[1]))

    @v_args(meta=True)
    def stats_command(self, meta: Any, children: list[Any]) -> p.Aggregate:
        aggregates: tuple = ()
        groups: tuple = ()
        rest = children[1:]
        if rest and isinstance(rest[0], list):
            aggregates = tuple(rest[0])
            rest = rest[1:]
        if rest and isinstance(rest[0], Token) and rest[0].type == "BY":
            groups = rest[1]
        self._shadowing([(name, src) for name, _, _, src in aggregates] + [(name, src) for name, _, src in groups],
                        winner_from=len(aggregates))
        return p.Aggregate(tuple((name, expr, cond) for name, expr, cond, _ in aggregates),
                       tuple((name, expr) for name, expr, _ in groups), src=self._src(meta))

    def _shadowing(self, outputs: list[tuple[str, Src]], winner_from: int) -> None:
        """ES warns when a STATS output name is given twice: a grouping wins over
        aggregates, otherwise the last one wins."""
        for name in dict.fromkeys(n for n, _ in outputs):
            places = [i for i, (n, _) in enumerate(outputs) if n == name]
            if len(places) < 2:
                continue
            groups = [i for i in places if i >= winner_from]
            winner = outputs[(groups or places)[-1]][1]
            for i in places:
                loser = outputs[i][1]
                if loser is not winner:
                    self.warnings.append(f"Line {loser.line}:{loser.col}: Field '{name}' shadowed by field at line "
                                         f"{winner.line}:{winner.col}")

    def agg_fields(self, children: list[Any]) -> list[Any]:
        return children

    def agg_field(self, children: list[Any]) -> tuple[str, Expr, Expr | None, Src]:
        (name, expr, src), condition = children[0], (children[2] if len(children) > 2 else None)
        return name, expr, condition, src

    def sort_command(self, children: list[Any]) -> p.Sort:
        return p.Sort(tuple(children[1:]))

    def order(self, children: list[Any]) -> p.Order:
        ascending, nulls_first = True, None
        for token in children[1:]:
            if token.type == "ORDERING":
                ascending = token.lower() == "asc"
            elif token.type == "NULLS_ORDER":
                nulls_first = token.lower() == "first"
        return p.Order(children[0], ascending, nulls_first)

    @v_args(meta=True)
    def limit_command(self, meta: Any, children: list[Any]) -> p.Limit:
        """ES takes any constant here and refuses all but a non-negative integer (so a
        count beyond 2^31 - 1 is an error, not a limit)."""
        amount, src = children[1], self._src(meta)
        if isinstance(amount, Literal) and amount.type == "integer" and type(amount.value) is int and amount.value >= 0:
            return p.Limit(amount.value, src=src)
        text = "".join(amount.src.text.split()) if amount.type != "keyword" else amount.src.text
        raise ParsingError(f"line {src.line}:{src.col}: value of [{src.text}] must be a non negative integer, found "
                           f"value [{text}] type [{amount.type}]")

    def keep_command(self, children: list[Any]) -> ep.Keep:
        return ep.Keep(tuple(children[1:]))

    def drop_command(self, children: list[Any]) -> ep.Drop:
        return ep.Drop(tuple(children[1:]))

    def rename_command(self, children: list[Any]) -> ep.Rename:
        return ep.Rename(tuple(children[1:]))

    def rename_as(self, children: list[Any]) -> tuple[str, str]:
        return children[0], children[2]

    def rename_assign(self, children: list[Any]) -> tuple[str, str]:
        return children[1], children[0]

    @v_args(meta=True)
    def dissect_command(self, meta: Any, children: list[Any]) -> ep.Dissect:
        separator = ""
        if len(children) > 3:
            if children[3].lower() != "append_separator":
                raise ParsingError(f"line {meta.line}:{meta.column}: Invalid option for dissect: [{children[3]}]")
            separator = unquote_string(children[4])
        return ep.Dissect(children[1], unquote_string(children[2]), separator, src=self._src(meta))

    @v_args(meta=True)
    def grok_command(self, meta: Any, children: list[Any]) -> ep.Grok:
        return ep.Grok(children[1], tuple(unquote_string(s) for s in children[2:]), src=self._src(meta))

    def mv_expand_command(self, children: list[Any]) -> p.MvExpand:
        return p.MvExpand(children[1].name)

    def fields(self, children: list[Any]) -> tuple[tuple[str, Expr, Src], ...]:
        return tuple(children)

    def named_field(self, children: list[Any]) -> tuple[str, Expr, Src]:
        return children[0].name, children[1], children[0].src

    def unnamed_field(self, children: list[Any]) -> tuple[str, Expr, Src]:
        expr = children[0]
        return expr.src.text, expr, expr.src

    def name_pattern(self, children: list[Token]) -> str:
        return _ident(children[0])

    # --- expressions ---
    @v_args(meta=True)
    def or_(self, meta: Any, c: list[Any]) -> Expr:
        return Logical("OR", c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def and_(self, meta: Any, c: list[Any]) -> Expr:
        return Logical("AND", c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def in_(self, meta: Any, c: list[Any]) -> Expr:
        negated = isinstance(c[1], Token) and c[1].type == "NOT"
        items = [x for x in c[1:] if isinstance(x, Expr)]
        return In(c[0], tuple(items), negated, src=self._src(meta))

    @v_args(meta=True)
    def is_null(self, meta: Any, c: list[Any]) -> Expr:
        negated = any(isinstance(x, Token) and x.type == "NOT" for x in c)
        return IsNull(c[0], negated, src=self._src(meta))

    def _like(self, meta: Any, c: list[Any], regex: bool) -> Expr:
        negated = any(isinstance(x, Token) and x.type == "NOT" for x in c)
        return Like(c[0], c[-1], negated, regex, src=self._src(meta))

    @v_args(meta=True)
    def like(self, meta: Any, c: list[Any]) -> Expr:
        return self._like(meta, c, False)

    @v_args(meta=True)
    def rlike(self, meta: Any, c: list[Any]) -> Expr:
        return self._like(meta, c, True)

    def like_patterns(self, c: list[Expr]) -> tuple[Expr, ...]:
        return tuple(c)

    @v_args(meta=True)
    def comparison(self, meta: Any, c: list[Any]) -> Expr:
        return Binary(str(c[1]), c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def binary(self, meta: Any, c: list[Any]) -> Expr:
        return Binary(str(c[1]), c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def negate(self, meta: Any, c: list[Any]) -> Expr:
        value = c[1]
        if isinstance(value, Literal) and value.type in ("integer", "long", "unsigned_long", "double") and \
                type(value.value) is not list and not value.src.text.startswith("("):
            if value.type == "double":
                return Literal(-value.value, "double", src=self._src(meta))
            if value.value >= 0:  # a literal already negated, -(-2147483648), negates at run time
                return _neg_integer(value.value, self._src(meta))
        return Neg(value, src=self._src(meta))

    def positive(self, c: list[Any]) -> Expr:
        return c[1]

    @v_args(meta=True)
    def cast(self, meta: Any, c: list[Any]) -> Expr:
        return Cast(c[0], c[1].lower(), src=self._src(meta))

    @v_args(meta=True)
    def function_call(self, meta: Any, c: list[Any]) -> Expr:
        args = tuple(Star(src=self._src(meta)) if isinstance(a, Token) and a.type == "STAR" else a for a in c[1:])
        return Call(c[0].upper(), args, src=self._src(meta))

    @v_args(meta=True)
    def qualified_name(self, meta: Any, c: list[str]) -> Expr:
        return Column(".".join(c), src=self._src(meta))

    def identifier(self, c: list[Token]) -> str:
        return _ident(c[0])

    @v_args(meta=True)
    def string(self, meta: Any, c: list[Token]) -> Expr:
        return Literal(unquote_string(c[0]), "keyword", src=self._src(meta))

    @v_args(meta=True)
    def integer(self, meta: Any, c: list[Token]) -> Expr:
        try:
            lit = integer_literal(c[0])
        except TooLarge:
            raise ParsingError(f"line {meta.line}:{meta.column}: Number [{c[0]}] is too large") from None
        return Literal(lit.value, lit.type, src=self._src(meta))

    @v_args(meta=True)
    def decimal(self, meta: Any, c: list[Token]) -> Expr:
        value = float(c[0])
        if math.isinf(value):
            raise ParsingError(f"line {meta.line}:{meta.column}: Number [{c[0]}] is too large")
        return Literal(value, "double", src=self._src(meta))

    @v_args(meta=True)
    def time_span(self, meta: Any, c: list[Any]) -> Expr:
        amount, unit = c
        canonical = TIME_UNITS.get(unit.lower())
        if canonical is None or amount.type not in ("integer", "long", "unsigned_long"):
            raise ParsingError(f"line {meta.line}:{meta.column}: Unexpected temporal unit: '{unit}'")
        if span_amount_problem(amount.value, canonical):
            raise ParsingError(f"line {meta.line}:{meta.column}: Number [{amount.src.text}] outside of "
                               f"[{unit.lower()}] range")
        kind = "date_period" if canonical in ("w", "mo", "q", "y", "d") and canonical != "d" else "time_duration"
        if canonical == "d":
            kind = "date_period"
        return Literal((amount.value, canonical), kind, src=self._src(meta))

    @v_args(meta=True)
    def param(self, meta: Any, c: list[Token]) -> Expr:
        name = str(c[0])[1:]
        src = self._src(meta)
        if isinstance(self.params, dict):
            if name not in self.params:
                raise _verification(src, f"Unknown query parameter [{name}], did you mean any of {sorted(self.params)}?")
            value = self.params[name]
        else:
            if name.isdigit():
                index = int(name) - 1
            elif name == "":
                index = self.next_param
                self.next_param += 1
            else:
                raise _verification(src, f"Unknown query parameter [{name}]")
            if not 0 <= index < len(self.params):
                raise _verification(src, f"No parameter is defined for position {index + 1}, did you specify the "
                                         f"right value?" if self.params else
                                         f"Not enough actual parameters {len(self.params)}")
            value = self.params[index]
        return param_literal(value, src)

    @v_args(meta=True)
    def empty_list(self, meta: Any, c: list[Any]) -> Expr:
        return Literal(None, "null", src=self._src(meta))

    @v_args(meta=True)
    def list_(self, meta: Any, c: list[Literal]) -> Expr:
        types = {x.type for x in c if x.type != "null"}
        numeric = {"integer", "long", "double", "unsigned_long"}
        if types <= numeric and len(types) > 1:
            kind = "double" if "double" in types else "unsigned_long" if "unsigned_long" in types else "long"
            values = [float(x.value) if kind == "double" else x.value for x in c]
        elif len(types) > 1:
            raise _verification(self._src(meta), "multi-valued literals must have the same type")
        else:
            kind = types.pop() if types else "null"
            values = [x.value for x in c]
        values = [v for v in values if v is not None]
        # a one-element list is a single value, as in Elasticsearch
        return Literal(values if len(values) > 1 else values[0] if values else None, kind, src=self._src(meta))


def _pairs(fields: tuple[tuple[str, Expr, Src], ...]) -> tuple[tuple[str, Expr], ...]:
    return tuple((name, expr) for name, expr, _ in fields)


def _neg_integer(value: int, src: Src) -> Literal:
    value = -value
    if value >= -(2**31):
        return Literal(value, "integer", src=src)
    if value >= -(2**63):
        return Literal(value, "long", src=src)
    return Literal(float(value), "double", src=src)


def param_literal(value: Any, src: Src) -> Literal:
    if isinstance(value, dict) and len(value) == 1 and "value" in value:
        value = value["value"]
    if value is None:
        return Literal(None, "null", src=src)
    if isinstance(value, bool):
        return Literal(value, "boolean", src=src)
    if isinstance(value, int):
        lit = integer_literal(str(value)) if value >= 0 else _neg_integer(-value, src)
        return Literal(lit.value, lit.type, src=src)
    if isinstance(value, float):
        return Literal(value, "double", src=src)
    if isinstance(value, str):
        return Literal(value, "keyword", src=src)
    if isinstance(value, list):
        # a multi-value of one type, as a list literal is (numbers widen together)
        items = [param_literal(v, src) for v in value if v is not None]
        if any(isinstance(v, list) for v in value):
            raise ServiceError("Failed to parse params: START_ARRAY is not supported as a parameter", status=400,
                               type="x_content_parse_exception")
        types = {i.type for i in items}
        if types <= {"integer", "long", "unsigned_long", "double"} and len(types) > 1:
            kind = "double" if "double" in types else "unsigned_long" if "unsigned_long" in types else "long"
            return Literal(T.collapse([float(i.value) if kind == "double" else i.value for i in items]), kind,
                           src=src)
        if len(types) > 1:
            raise _verification(src, "multi-valued literals must have the same type")
        return Literal(T.collapse([i.value for i in items]), types.pop() if types else "null", src=src)
    raise ServiceError(f"Failed to parse params: unsupported parameter value [{value}]", status=400,
                       type="x_content_parse_exception")


def _verification(src: Src, message: str) -> ServiceError:
    return ServiceError(f"Found 1 problem\nline {src.line}:{src.col}: {message}", status=400,
                        type="verification_exception")


# ES refuses expressions nested deeper than this, pipelines longer than that, and query
# texts longer than a million characters (its parser would overflow its stack; ours, and
# every tree walk after it, would too).
MAX_EXPRESSION_DEPTH = 400
MAX_QUERY_DEPTH = 500
MAX_LENGTH = 1_000_000
# Compiling, pickling (to a query worker) and evaluating an expression take up to four
# Python frames per level, so a tree as deep as ES allows needs more than CPython's
# default 1000. Set where the server and every query worker (which preload this module)
# import the parser.
sys.setrecursionlimit(max(sys.getrecursionlimit(), 12 * MAX_EXPRESSION_DEPTH))
_COMMAND_DEPTH = 3  # start -> command -> its fields: the levels above an expression


def _check_depth(tree: Tree, text: str) -> None:
    """Refuse a tree deeper than ES allows, measured without recursion."""
    commands = tree.children[1:]
    if len(commands) > MAX_QUERY_DEPTH:
        last = commands[MAX_QUERY_DEPTH]
        prefix = text[:last.meta.end_pos] if not last.meta.empty else text
        raise ParsingError(f"line -1:-1: ESQL statement exceeded the maximum query depth allowed ({MAX_QUERY_DEPTH}): "
                           f"[{''.join(prefix.split())}]")
    stack = [(tree, 0, tree)]
    while stack:
        node, depth, parent = stack.pop()
        if depth > MAX_EXPRESSION_DEPTH + _COMMAND_DEPTH:
            where = text[parent.meta.start_pos:parent.meta.end_pos] if not parent.meta.empty else ""
            raise ParsingError(f"line -1:-1: ESQL statement exceeded the maximum expression depth allowed "
                               f"({MAX_EXPRESSION_DEPTH}): [{''.join(where.split())}]")
        stack.extend((child, depth + 1, node) for child in node.children if isinstance(child, Tree))


def parse(text: str, params: list[Any] | dict[str, Any] | None = None) -> p.Plan:
    """Parse an ES|QL query; syntax errors are ES's ``parsing_exception`` with ``line L:C:``."""
    if len(text) > MAX_LENGTH:
        raise ParsingError(f"line -1:-1: ESQL statement is too large [{len(text)} characters > {MAX_LENGTH}]")
    try:
        tree = _parser().parse(text)
    except UnexpectedCharacters as exc:
        raise ParsingError(f"line {exc.line}:{exc.column}: token recognition error at: "
                           f"'{text.splitlines()[exc.line - 1][exc.column - 1:exc.column]}'") from None
    except UnexpectedToken as exc:
        found = "<EOF>" if exc.token.type == "$END" else str(exc.token)
        expected = ", ".join(sorted(exc.expected))
        line = exc.line if exc.line > 0 else text.count("\n") + 1
        col = exc.column if exc.column > 0 else len(text.splitlines()[-1] if text else "") + 1
        raise ParsingError(f"line {line}:{col}: mismatched input '{found}' expecting {{{expected}}}") from None
    except UnexpectedInput as exc:
        raise ParsingError(f"line {exc.line}:{exc.column}: {exc}") from None
    _check_depth(tree, text)
    try:
        return _ToPlan(text, params if params is not None else []).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ServiceError):
            raise exc.orig_exc from None
        raise
