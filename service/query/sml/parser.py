"""SML text -> :class:`ast.Pipeline` (spec/sml.md §1-§9).

The pipeline is split at its ``|`` s by hand (quotes and subsearch brackets respected);
each command's name picks the start rule its arguments are parsed from (``grammar.lark``,
LALR with a contextual lexer: a bare search value, an index pattern and a field name
are lexed differently). The structural rules of §1 (a generating command first, the
placement rule of ``aggs``/``peval``, no empty command) are checked here; what needs
the data or the function table (unknown functions, arity, types) is for later stages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer_NonRecursive, Tree, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ...errors import ServiceError
from ..expr import Binary, Call, Column, Expr, In, Literal, Logical, Neg, Not, Src
from ..parsing import CommonRules
from . import ast, buckets
from .functions import compile_regex
from .lexical import (COMMAND_NAME, FIELD_NAME, INDEX_PATTERN, Positions, Segment, Shift, default_agg_name, error,
                      fail, number_literal, search_number, split_pipeline, string_end, syntax_error, unquote)

# name -> start rule of its arguments (one line a command: each group of commands is added on its own lines)
COMMANDS = {
    "source": "source_args",
    "search": "search_args",
    "where": "where_args",
    "eval": "eval_args",
    "peval": "eval_args",
    "aggs": "aggs_args",
    "stats": "stats_args",
    "fields": "fields_args",
    "table": "table_args",
    "rename": "rename_args",
    "sort": "sort_args",
    "head": "count_args",
    "tail": "count_args",
    "dedup": "dedup_args",
    # timechart, timeaggs, bin (spec §7.14)
    "timechart": "timechart_args",
    "timeaggs": "timechart_args",
    "bin": "bin_args",

    # top, rare, eventstats, streamstats, rex, makeresults (spec §7.13, §7.15, §7.17)
    "top": "top_args",
    "rare": "top_args",
    "eventstats": "eventstats_args",
    "streamstats": "streamstats_args",
    "rex": "rex_args",

    # join, append, lookup, inputlookup (spec §7.12, §7.16, §7.17)
    "join": "join_args",
    "append": "append_args",
    "lookup": "lookup_args",
    "inputlookup": "inputlookup_args",
    "makeresults": "makeresults_args",

}
# refused with "not supported yet" until they are in COMMANDS
SECONDARY = frozenset((
    "timechart",
    "timeaggs",
    "bin",
    "eventstats",
    "streamstats",
    "top",
    "rare",
    "rex",
    "makeresults",
    "join",
    "append",
    "lookup",
    "inputlookup",
)) - COMMANDS.keys()
GENERATING = frozenset(("source", "inputlookup", "makeresults"))
STORAGE_EXECUTED = frozenset(("source", "search", "peval", "inputlookup"))
PLACED = frozenset(("aggs", "peval", "timeaggs"))  # only after storage-executed commands (§1.1)
DEFAULT_COUNT = 10
# The shared engine walks expressions recursively: refuse what would exhaust its stack.
MAX_DEPTH = 400
TOP_OPTIONS = frozenset(("limit", "countfield", "percentfield", "showcount", "showperc"))
STREAMSTATS_OPTIONS = frozenset(("window", "reset_on_change", "reset_before", "reset_after", "current"))
REX_OPTIONS = frozenset(("field",))


@lru_cache(maxsize=1)
def _parser() -> Lark:
    grammar = resources.files(__package__).joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", lexer="contextual", start=sorted(set(COMMANDS.values())),
                propagate_positions=True, maybe_placeholders=False)


def parse(text: str) -> ast.Pipeline:
    """Parse an SML query; every refusal is a ``parsing_exception`` ``line L:C: ...``
    at the 1-based position of what it refuses."""
    if not text.strip():
        raise error(1, 1, "empty query")
    return ast.Pipeline(_pipeline(text, Positions(text), 0, len(text)), text)


def _pipeline(text: str, positions: Positions, start: int, end: int) -> tuple[ast.Command, ...]:
    """The commands of ``text[start:end]`` (the query, or a subsearch's part of it)."""
    commands: list[ast.Command] = []
    before: list[str] = []
    for segment in split_pipeline(text, positions, start, end):
        name, begin = _command_name(text, segment, positions)
        key = name.lower()
        _check_structure(key, name, before, positions.at(begin))
        before.append(key)
        commands.append(_command(text, positions, segment, key, begin, begin + len(name)))
    return tuple(commands)


def _command_name(text: str, segment: Segment, positions: Positions) -> tuple[str, int]:
    """The command's name as written and where it starts; an empty command, or one that
    does not start with a name, is refused."""
    body = text[segment.start:segment.end]
    start = segment.end - len(body.lstrip())
    after = "" if segment.pipe is None else " after [|]"
    if start == segment.end and text.startswith("|", segment.end):
        raise positions.error(segment.end, f"expected a command{after}, found [|]")
    if start == segment.end:  # a trailing `|`: the text is not blank, so one came before
        raise positions.error(segment.pipe + 1, f"expected a command{after}")
    match = COMMAND_NAME.match(text, start, segment.end)
    if match is None:
        raise positions.error(start, f"expected a command{after}, found [{text[start:segment.end].split()[0]}]")
    return match.group(), start


def _check_structure(key: str, name: str, before: list[str], at: tuple[int, int]) -> None:
    """§1 and §1.1: known command, a generating command first and only first, the
    placement rule; SECONDARY commands are refused honestly until they exist."""
    if key in SECONDARY:
        raise error(*at, f"command [{name}] is not supported yet")
    if key not in COMMANDS:
        raise error(*at, f"unknown command [{name}]")
    if not before and key not in GENERATING:
        raise error(*at, "query must start with a generating command")
    if before and key in GENERATING:
        raise error(*at, f"generating command [{name}] may only start a pipeline")
    if key in PLACED and not all(b in STORAGE_EXECUTED for b in before):
        raise error(*at, f"[{key}] may only follow source, search, peval or inputlookup")


def _command(text: str, positions: Positions, segment: Segment, key: str, start: int, name_end: int) -> ast.Command:
    """One command from its text; its ``src`` is where its name starts, with its text."""
    src = Src(*positions.at(start), text[start:segment.end].rstrip())
    arguments = _blanked(text, name_end, segment.end) if key in SUBSEARCHING else text[name_end:segment.end]
    tree = _parse_arguments(text[start:name_end], COMMANDS[key], arguments,
                            Shift(name_end, *positions.at(name_end)))
    _check_depth(tree)
    try:
        return _Builder(text, key, src).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, ServiceError):
            raise exc.orig_exc from None
        raise


def _parse_arguments(name: str, rule: str, arguments: str, shift: Shift) -> Tree:
    """Parse a command's ``arguments`` from ``rule`` on their own (a long pipeline costs
    no more per command than the command's length), then move every position to where
    it is in the query."""
    interactive = _parser().parse_interactive(arguments, start=rule)
    tokens: list[Token] = []
    try:
        for token in interactive.iter_parse():
            tokens.append(token)
        tree = interactive.feed_eof(tokens[-1] if tokens else None)
    except UnexpectedInput as exc:
        raise syntax_error(_parser(), rule, name, arguments, tokens, exc, shift) from None
    shift.tree(tree)
    return tree


def _check_depth(tree: Tree) -> None:
    """Refuse nesting deeper than the engine can walk, measured without recursion."""
    stack = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise error(node.meta.line, node.meta.column, f"expression nested deeper than {MAX_DEPTH} levels")
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


def _token_src(token: Token) -> Src:
    return Src(token.line, token.column, str(token))


def _name(token: Token) -> str:
    """A field name as written: ``'quoted'`` (or, where a name is given, ``"quoted"``) unquoted."""
    return unquote(token) if token.type in ("QFIELD", "STRING") else str(token)


def _exprs(children: list[Any]) -> tuple[Expr, ...]:
    return tuple(c for c in children if isinstance(c, Expr))


def _integer(token: Token, what: str, minimum: int) -> int:
    value = _text(token)
    if not re.fullmatch(r"[0-9]+", value) or int(value) < minimum:
        kind = "a positive integer" if minimum > 0 else "a non-negative integer"
        raise fail(_token_src(token), f"{what} must be {kind}, found [{value}]")
    return int(value)


def _boolean(token: Token, what: str) -> bool:
    value = str(token).lower()
    if value not in ("true", "false"):
        raise fail(_token_src(token), f"[{what}] must be true or false, found [{token}]")
    return value == "true"


def _options(options: list[_Option], command: str | None = None, allowed: frozenset[str] = frozenset()) -> dict[str, Token]:
    """Named parameters by lower-case name; one of them given twice is refused. With a
    ``command``, a name not in ``allowed`` is refused too (the generic ``OPTION`` terminal
    lexes any ``name=``)."""
    seen: dict[str, Token] = {}
    for option in options:
        key = str(option.name).lower()
        if command is not None and key not in allowed:
            raise fail(_token_src(option.name), f"unknown parameter [{option.name}] for [{command}], "
                                                f"expected one of [{', '.join(sorted(allowed))}]")
        if key in seen:
            raise fail(_token_src(option.name), f"duplicate parameter [{key}]")
        seen[key] = option.value
    return seen


class _Builder(CommonRules, Transformer_NonRecursive):
    """Builds one command bottom-up (without recursion)."""

    def __init__(self, text: str, command: str, src: Src) -> None:
        super().__init__()
        self.query = text
        self.command = command
        self.command_src = src

    def _src(self, meta: Any) -> Src:
        if getattr(meta, "empty", True):
            return Src()
        return Src(meta.line, meta.column, self.query[meta.start_pos:meta.end_pos])

    # --- source ---
    def source_args(self, c: list[Any]) -> ast.Source:
        indices = next(x for x in c if isinstance(x, tuple))
        options = _options([x for x in c if isinstance(x, _Option)])
        qsize = options.get("qsize")
        return ast.Source(indices, _integer(qsize, "[qsize]", 1) if qsize else None,
                          _value(options.get("earliest")), _value(options.get("latest")), src=self.command_src)

    def source_list(self, c: list[Token]) -> tuple[str, ...]:
        names = [t for t in c if t.type == "BARE"]
        for name in names:
            if not INDEX_PATTERN.fullmatch(name):
                raise fail(_token_src(name), f"invalid index name or pattern [{name}]")
        return tuple(str(t) for t in names)

    def source_param(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    # --- search ---
    @v_args(meta=True)
    def s_or(self, meta: Any, c: list[Any]) -> Expr:
        return Logical("OR", c[0], c[-1], src=self._src(meta))

    @v_args(meta=True)
    def s_and(self, meta: Any, c: list[Any]) -> Expr:
        return Logical("AND", c[0], c[-1], src=self._src(meta))

    @v_args(meta=True)
    def s_not(self, meta: Any, c: list[Any]) -> Expr:
        return Not(c[1], src=self._src(meta))

    @v_args(meta=True)
    def s_group(self, meta: Any, c: list[Any]) -> Expr:
        return replace(c[1], src=self._src(meta))

    @v_args(meta=True)
    def term(self, meta: Any, c: list[Any]) -> Expr:
        return ast.Term(_search_field(c[0]), c[1], _search_value(c[2]), src=self._src(meta))

    def s_op(self, c: list[Token]) -> str:
        return str(c[0])

    @v_args(meta=True)
    def term_in(self, meta: Any, c: list[Any]) -> Expr:
        field = _search_field(c[0])
        items = [t for t in c[3:] if t.type in ("BARE", "STRING")]
        terms = [ast.Term(field, "=", _search_value(t), src=_token_src(t)) for t in items]
        return _chain("OR", terms, self._src(meta))

    def s_item(self, c: list[Token]) -> Token:
        return c[0]

    @v_args(meta=True)
    def text(self, meta: Any, c: list[Token]) -> Expr:
        token = c[0]
        return ast.Text(unquote(token) if token.type == "STRING" else str(token), src=self._src(meta))

    def search_args(self, c: list[Expr]) -> ast.Search:
        return ast.Search(c[0], src=self.command_src)

    # --- where, eval, peval ---
    def where_args(self, c: list[Expr]) -> ast.Where:
        return ast.Where(c[0], src=self.command_src)

    def eval_args(self, c: list[Any]) -> ast.Eval:
        assignments = tuple(x for x in c if isinstance(x, tuple))
        return ast.Eval(assignments, self.command == "peval", src=self.command_src)

    def assignment(self, c: list[Any]) -> tuple[str, Expr]:
        return _name(c[0]), c[2]

    @v_args(meta=True)
    def comparison(self, meta: Any, c: list[Any]) -> Expr:
        op = "==" if c[1] == "=" else c[1]
        return Binary(op, c[0], c[2], src=self._src(meta))

    def e_op(self, c: list[Token]) -> str:
        return str(c[0])

    @v_args(meta=True)
    def in_(self, meta: Any, c: list[Any]) -> Expr:
        return In(c[0], c[3], src=self._src(meta))

    @v_args(meta=True)
    def arithmetic(self, meta: Any, c: list[Any]) -> Expr:
        return Binary(str(c[1]), c[0], c[2], src=self._src(meta))

    @v_args(meta=True)
    def negate(self, meta: Any, c: list[Any]) -> Expr:
        """``-`` before a number is part of the number (§2: ``-1``), so ``-2147483648``
        is an integer; before anything else it is a negation."""
        value, src = c[1], self._src(meta)
        if isinstance(value, Literal) and value.src.text[:1].isdigit():
            return number_literal("-" + value.src.text, src)
        return Neg(value, src=src)

    @v_args(meta=True)
    def number(self, meta: Any, c: list[Token]) -> Expr:
        return number_literal(str(c[0]), self._src(meta))

    @v_args(meta=True)
    def string(self, meta: Any, c: list[Token]) -> Expr:
        return Literal(unquote(c[0]), "keyword", src=self._src(meta))

    @v_args(meta=True)
    def name(self, meta: Any, c: list[Token]) -> Expr:
        """A bare name is a field, except the constants ``true``, ``false`` and ``null``."""
        src, word = self._src(meta), str(c[0]).lower()
        if word == "null":
            return Literal(None, "null", src=src)
        if word in ("true", "false"):
            return Literal(word == "true", "boolean", src=src)
        return Column(str(c[0]), src=src)

    @v_args(meta=True)
    def quoted_field(self, meta: Any, c: list[Token]) -> Expr:
        return Column(unquote(c[0]), src=self._src(meta))

    @v_args(meta=True)
    def call(self, meta: Any, c: list[Any]) -> Expr:
        args = next((x for x in c if isinstance(x, tuple)), ())
        return Call(str(c[0]).lower(), args, src=self._src(meta))

    @v_args(meta=True)
    def e_group(self, meta: Any, c: list[Any]) -> Expr:
        return replace(c[1], src=self._src(meta))

    def e_list(self, c: list[Any]) -> tuple[Expr, ...]:
        return _exprs(c)

    # --- stats, aggs ---
    def stats_args(self, c: list[Any]) -> ast.Stats:
        return ast.Stats(c[0], c[1] if len(c) > 1 else (), self.command == "aggs", src=self.command_src)

    def aggs_args(self, c: list[Any]) -> ast.Stats:
        options = _options([x for x in c if isinstance(x, _Option)])
        if "composite" in options:  # accepted, no effect: every group is always returned (§7.5)
            _boolean(options["composite"], "composite")
        return self.stats_args([x for x in c if not isinstance(x, _Option)])

    def aggs_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    def agg_list(self, c: list[Any]) -> tuple[ast.Agg, ...]:
        return tuple(x for x in c if isinstance(x, ast.Agg))

    @v_args(meta=True)
    def agg(self, meta: Any, c: list[Any]) -> ast.Agg:
        function, args = c[0], next((x for x in c if isinstance(x, tuple)), ())
        closing = next((t for t in c if isinstance(t, Token) and t.type == "RPAR"), function)
        alias = c[-1] if len(c) > 2 and isinstance(c[-2], Token) and c[-2].type == "AS" else None
        name = _name(alias) if alias else default_agg_name(self.query[meta.start_pos:closing.end_pos])
        return ast.Agg(str(function).lower(), args, name, src=self._src(meta))

    def by_clause(self, c: list[Any]) -> tuple[str, ...]:
        return tuple(x for x in c if isinstance(x, str) and not isinstance(x, Token))

    def by_field(self, c: list[Token]) -> str:
        return _name(c[0])

    # --- fields, table, rename ---
    def fields_args(self, c: list[Any]) -> ast.Fields:
        exclude = isinstance(c[0], Token) and c[0].type == "MINUS"
        return ast.Fields(exclude, _strings(c), src=self.command_src)

    def fields_pattern(self, c: list[Token]) -> str:
        return _name(c[0])

    def table_args(self, c: list[Any]) -> ast.Table:
        return ast.Table(_strings(c), src=self.command_src)

    def table_pattern(self, c: list[Token]) -> str:
        return _name(c[0])

    def rename_args(self, c: list[Any]) -> ast.Rename:
        return ast.Rename(tuple(x for x in c if isinstance(x, tuple)), src=self.command_src)

    def rename_pair(self, c: list[Token]) -> tuple[str, str]:
        old, new = _name(c[0]), _name(c[2])
        if old.count("*") != new.count("*"):  # each * of the new name is what one of the old's matched
            raise fail(_token_src(c[0]), f"[rename] pattern [{new}] must hold as many [*] as [{old}]")
        return old, new

    # --- sort, head, tail, dedup ---
    def sort_args(self, c: list[Any]) -> ast.Sort:
        limit = None
        count = next((x for x in c if isinstance(x, Token) and x.type == "NUMBER"), None)
        if count is not None:  # `sort N` or SPL's `sort limit=N`; SPL's `sort 0`: no limit
            limit = _integer(count, "[sort] limit", 0) or None
        return ast.Sort(tuple(x for x in c if isinstance(x, tuple)), limit, src=self.command_src)

    def sort_key(self, c: list[Token]) -> tuple[str, bool]:
        sign = c[0] if c[0].type in ("PLUS", "MINUS") else None
        field = c[1] if sign else c[0]
        order = c[-1] if c[-1].type in ("ASC", "DESC") else None
        descending = (sign is not None and sign.type == "MINUS") or (order is not None and order.type == "DESC")
        if sign is not None and order is not None and (sign.type == "MINUS") != (order.type == "DESC"):
            raise fail(_token_src(order), f"[{order}] contradicts the sign [{sign}] of [{_name(field)}]")
        return _name(field), descending

    def count_args(self, c: list[Token]) -> ast.Command:
        count = _integer(c[-1], f"[{self.command}] count", 0) if c else DEFAULT_COUNT
        kind = ast.Head if self.command == "head" else ast.Tail
        return kind(count, src=self.command_src)

    def dedup_args(self, c: list[Any]) -> ast.Dedup:
        keep = 1
        if isinstance(c[0], Token) and c[0].type == "NUMBER":
            keep = _integer(c[0], "[dedup] count", 1)
        options = _options([x for x in c if isinstance(x, _Option)])
        keepempty = _boolean(options["keepempty"], "keepempty") if "keepempty" in options else False
        consecutive = _boolean(options["consecutive"], "consecutive") if "consecutive" in options else False
        sort = next((x for x in c if isinstance(x, _SortBy)), _SortBy()).keys
        return ast.Dedup(_strings(c), keep, keepempty, consecutive, sort, src=self.command_src)

    def dedup_sortby(self, c: list[Any]) -> _SortBy:
        return _SortBy(tuple(x for x in c if isinstance(x, tuple)))

    def dedup_field(self, c: list[Token]) -> str:
        return _name(c[0])

    def dedup_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    # --- timechart, timeaggs, bin ---
    TIMECHART_OPTIONS = frozenset(("timefield", "limit", "span", "bins", "useother"))
    TIMEAGGS_OPTIONS = frozenset(("composite", "span", "timefield", "limit", "useother"))
    BIN_OPTIONS = frozenset(("bins", "span"))
    DEFAULT_LIMIT = 10  # by values with a column of their own (spec §7.14)
    TIME_FIELD = "@timestamp"  # the time-aware commands' default time field (spec §3)

    def timechart_args(self, c: list[Any]) -> ast.Timechart:
        """Options before the aggregates or after them; ``useother=false`` gives every
        ``by`` value a column, as ``limit=0`` does; ``composite`` (timeaggs, only with
        ``by``) is accepted and changes nothing (every bucket is always returned)."""
        allowed = self.TIMEAGGS_OPTIONS if self.command == "timeaggs" else self.TIMECHART_OPTIONS
        options = _options([x for x in c if isinstance(x, _Option)], self.command, allowed)
        aggs = next(x for x in c if isinstance(x, tuple))
        by = next((x for x in c if isinstance(x, str) and not isinstance(x, Token)), None)
        if "composite" in options and _boolean(options["composite"], "composite") and by is None:
            raise fail(_token_src(options["composite"]), f"[composite] of [{self.command}] needs a [by] field")
        limit = _integer(options["limit"], "[limit]", 0) if "limit" in options else self.DEFAULT_LIMIT
        if "useother" in options and not _boolean(options["useother"], "useother"):
            limit = 0
        timefield = _value(options.get("timefield")) or self.TIME_FIELD
        span = self._span(options)
        if span is not None and not span.is_time:
            raise fail(_token_src(options["span"]), f"[span] of [{self.command}] needs a time unit, "
                                                    f"found [{_text(options['span'])}]")
        return ast.Timechart(aggs, by, span, self._bins(options), limit or None,
                             timefield, self.command == "timeaggs", src=self.command_src)

    def timechart_by(self, c: list[Token]) -> str:
        return _name(c[1])

    def timechart_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    def bin_args(self, c: list[Any]) -> ast.Bin:
        options = _options([x for x in c if isinstance(x, _Option)], "bin", self.BIN_OPTIONS)
        names = [t for t in c if isinstance(t, Token) and t.type in ("NAME", "QFIELD")]
        field = _name(names[0])
        target = _name(names[1]) if len(names) > 1 else field
        span_src = _token_src(options["span"]) if "span" in options else self.command_src
        return ast.Bin(field, target, self._span(options), self._bins(options), span_src, src=self.command_src)

    def bin_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    @staticmethod
    def _span(options: dict[str, Token]) -> buckets.Span | None:
        token = options.get("span")
        if token is None:
            return None
        try:
            return buckets.parse_span(_text(token))
        except ValueError as exc:
            raise fail(_token_src(token), str(exc)) from None

    @staticmethod
    def _bins(options: dict[str, Token]) -> int:
        return _integer(options["bins"], "[bins]", 1) if "bins" in options else buckets.DEFAULT_BINS

    # --- top, rare, eventstats, streamstats, rex, makeresults ---
    def top_args(self, c: list[Any]) -> ast.Top:
        options = _options([x for x in c if isinstance(x, _Option)], self.command, TOP_OPTIONS)
        limit = DEFAULT_COUNT
        if isinstance(c[0], Token) and c[0].type == "NUMBER":
            if "limit" in options:
                raise fail(_token_src(options["limit"]), f"[{self.command}] count given twice")
            limit = _integer(c[0], f"[{self.command}] count", 0)
        elif "limit" in options:
            limit = _integer(options["limit"], "[limit]", 0)
        count: str | None = _value(options.get("countfield")) or "count"
        if "showcount" in options and not _boolean(options["showcount"], "showcount"):
            count = None  # Splunk's option: the rows are still ranked by their counts
        percent = _value(options.get("percentfield")) or "percent"
        if "showperc" in options and not _boolean(options["showperc"], "showperc"):
            percent = None
        return ast.Top(_strings(c), _single_by(c), limit, self.command == "rare", count, percent,
                       src=self.command_src)

    def top_by(self, c: list[Any]) -> _By:
        return _By(_strings(c), _token_src(c[0]))

    def top_field(self, c: list[Token]) -> str:
        return _name(c[0])

    def top_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    def eventstats_args(self, c: list[Any]) -> ast.EventStats:
        return ast.EventStats(c[0], c[1] if len(c) > 1 else (), src=self.command_src)

    def streamstats_args(self, c: list[Any]) -> ast.StreamStats:
        options = _options([x for x in c if isinstance(x, _Option)], self.command, STREAMSTATS_OPTIONS)
        window = _integer(_word(options["window"], "window"), "[window]", 0) if "window" in options else 0
        change = "reset_on_change" in options and \
            _boolean(_word(options["reset_on_change"], "reset_on_change"), "reset_on_change")
        # Splunk's current (default true; §7.15 is silent): false leaves the row itself out
        current = "current" not in options or _boolean(_word(options["current"], "current"), "current")
        return ast.StreamStats(tuple(x for x in c if isinstance(x, ast.Agg)), _single_by(c), window, change,
                               _condition(options.get("reset_before"), "reset_before"),
                               _condition(options.get("reset_after"), "reset_after"), current,
                               src=self.command_src)

    def streamstats_by(self, c: list[Any]) -> _By:
        return _By(_strings(c), _token_src(c[0]))

    def streamstats_field(self, c: list[Token]) -> str:
        return _name(c[0])

    def streamstats_option(self, c: list[Any]) -> _Option:
        return _Option(c[0], c[3] if len(c) > 3 else c[2])

    def rex_args(self, c: list[Any]) -> ast.Rex:
        options = _options([x for x in c if isinstance(x, _Option)], self.command, REX_OPTIONS)
        if "field" not in options:
            raise fail(self.command_src, "[rex] needs the field to read: field=<name>")
        written = next(t for t in c if isinstance(t, Token) and t.type == "STRING")
        pattern = unquote(written)
        try:
            compiled = compile_regex(pattern)
        except ValueError as exc:
            raise fail(_token_src(written), f"invalid regular expression [{pattern}]: {exc}") from None
        groups = tuple(sorted(compiled.groupindex, key=compiled.groupindex.__getitem__))
        if not groups:
            raise fail(_token_src(written), f"regular expression [{pattern}] names no group to extract: (?<name>...)")
        return ast.Rex(_name(options["field"]), pattern, groups, src=self.command_src)

    def rex_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])


    # --- join, append, lookup, inputlookup, makeresults ---
    def join_args(self, c: list[Any]) -> ast.Join:
        options = _options([x for x in c if isinstance(x, _Option)], "join", JOIN_OPTIONS)
        kind = _choice(options.get("type"), "type", ("inner", "left", "outer")) or "inner"
        kind = "left" if kind == "outer" else kind  # SPL's other name of left
        most = _integer(options["max"], "[max]", 0) if "max" in options else 1
        return ast.Join(_strings(c), _subsearch(self.query, c[-1]), kind, most, src=self.command_src)

    def join_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    def join_field(self, c: list[Token]) -> str:
        return _name(c[0])

    def append_args(self, c: list[Token]) -> ast.Append:
        return ast.Append(_subsearch(self.query, c[0]), src=self.command_src)

    def makeresults_args(self, c: list[_Option]) -> ast.MakeResults:
        options = _options(c, "makeresults", frozenset({"count"}))
        count = _integer(options["count"], "[count]", 1) if "count" in options else 1
        return ast.MakeResults(count, src=self.command_src)

    def makeresults_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    def inputlookup_args(self, c: list[Token]) -> ast.InputLookup:
        return ast.InputLookup(_lookup_name(c[0]), src=self.command_src)

    def lookup_args(self, c: list[Any]) -> ast.Lookup:
        """``type``, ``packsize`` and ``system`` are checked and have no effect (one store);
        neither has ``dedup``: the first matching lookup row is the one used (§7.16)."""
        options = _options([x for x in c if isinstance(x, _Option)], "lookup", LOOKUP_OPTIONS)
        for flag in ("dedup", "system"):
            if flag in options:
                _boolean(options[flag], flag)
        _choice(options.get("type"), "type", ("default", "fast", "elk"))
        if "packsize" in options:
            _integer(options["packsize"], "[packsize]", 1)
        name = next(x for x in c if isinstance(x, Token) and x.type in ("BARE", "STRING"))
        output = next((x for x in c if isinstance(x, _Output)), None)
        return ast.Lookup(_lookup_name(name), tuple(x for x in c if isinstance(x, tuple)),
                          output.pairs if output else None, bool(output and output.new_only), src=self.command_src)

    def lookup_option(self, c: list[Token]) -> _Option:
        return _Option(c[0], c[2])

    def lookup_pair(self, c: list[Token]) -> tuple[str, str]:
        return _name(c[0]), _name(c[-1])

    def lookup_output(self, c: list[Any]) -> _Output:
        return _Output(c[0].type == "OUTPUTNEW", tuple(x for x in c if isinstance(x, tuple)))


# --- join, append, lookup, inputlookup, makeresults ---

SUBSEARCHING = frozenset(("join", "append"))  # commands whose arguments end with a subsearch
JOIN_OPTIONS = frozenset(("type", "max"))
LOOKUP_OPTIONS = frozenset(("dedup", "type", "packsize", "system"))


@dataclass(frozen=True, slots=True)
class _Output:
    """A lookup's ``OUTPUT``/``OUTPUTNEW`` clause."""

    new_only: bool
    pairs: tuple[tuple[str, str], ...]


def _blanked(text: str, start: int, end: int) -> str:
    """``text[start:end]`` with the inside of each subsearch ``[ ... ]`` blanked (newlines
    kept), so the command's own arguments are parsed with positions where they are."""
    out, depth, i, positions = list(text[start:end]), 0, start, Positions(text)
    while i < end:
        c = text[i]
        if c == '"':
            j = string_end(text, i, positions)
            if depth:
                out[i - start:j - start] = [" "] * (j - i)
            i = j
            continue
        if c == "]" and depth:
            depth -= 1
        if depth and c != "\n":
            out[i - start] = " "
        if c == "[":
            depth += 1
        i += 1
    return "".join(out)


def _subsearch(text: str, token: Token) -> ast.Pipeline:
    """The pipeline inside the brackets of a ``SUBSEARCH`` token, its positions in the query."""
    start, end = token.start_pos + 1, token.end_pos - 1
    if not text[start:end].strip():
        raise fail(_token_src(token), "empty subsearch")
    return ast.Pipeline(_pipeline(text, Positions(text), start, end), text[start:end].strip())


def _choice(token: Token | None, what: str, allowed: tuple[str, ...]) -> str | None:
    """A parameter that takes one of ``allowed`` (case-insensitive), lower case; None if not given."""
    if token is None:
        return None
    value = _text(token).lower()
    if value not in allowed:
        raise fail(_token_src(token), f"[{what}] must be one of [{', '.join(allowed)}], found [{_text(token)}]")
    return value


def _lookup_name(token: Token) -> str:
    name = _text(token)
    if not INDEX_PATTERN.fullmatch(name) or "*" in name:
        raise fail(_token_src(token), f"invalid lookup name [{name}]")
    return name


@dataclass(frozen=True, slots=True)
class _Option:
    """``name=value`` as written."""

    name: Token
    value: Token


# --- top, rare, eventstats, streamstats, rex, makeresults ---

@dataclass(frozen=True, slots=True)
class _SortBy:
    """``dedup``'s ``sortby`` keys: (field, descending)."""

    keys: tuple[tuple[str, bool], ...] = ()


@dataclass(frozen=True, slots=True)
class _By:
    """A ``by`` clause of a command whose options may come around it: its names, where it starts."""

    names: tuple[str, ...]
    src: Src


def _single_by(children: list[Any]) -> tuple[str, ...]:
    """The names of the one ``by`` clause among ``children`` (none: no names); a second is refused."""
    clauses = [x for x in children if isinstance(x, _By)]
    if len(clauses) > 1:
        raise fail(clauses[1].src, "only one [by] clause is allowed")
    return clauses[0].names if clauses else ()


def _word(value: Any, what: str) -> Token:
    """An option's value that must be a word or a number, not ``(expression)``."""
    if not isinstance(value, Token):
        raise fail(value.src, f"[{what}] takes a value, not an expression")
    return value


def _condition(value: Any, what: str) -> Expr | None:
    """An option's ``(eval expression)``."""
    if value is None:
        return None
    if not isinstance(value, Expr):
        raise fail(_token_src(value), f"[{what}] takes an eval expression in parentheses, found [{value}]")
    return value


def _text(token: Token) -> str:
    """A parameter's value as written, a quoted one unquoted."""
    return unquote(token) if token.type == "STRING" else str(token)


def _value(token: Token | None) -> str | None:
    return None if token is None else _text(token)


def _strings(children: list[Any]) -> tuple[str, ...]:
    """The names a rule's children built (tokens are strings too, so they are left out)."""
    return tuple(x for x in children if isinstance(x, str) and not isinstance(x, Token))


def _search_field(token: Token) -> str:
    if token.type == "QFIELD":
        return unquote(token)
    if not FIELD_NAME.fullmatch(token):
        raise fail(_token_src(token), f"invalid field name [{token}], quote it: ['{token}']")
    return str(token)


def _search_value(token: Token) -> Any:
    """A quoted value is a string; a bare one a number when it reads as one."""
    if token.type == "STRING":
        return unquote(token)
    number = search_number(token)
    return str(token) if number is None else number


def _chain(op: str, items: list[Expr], src: Src) -> Expr:
    """``a OR b OR c ...`` as a balanced tree of ``Logical`` nodes (a long ``IN`` list
    stays shallow for the engine's recursive walks); one item stands alone."""
    if len(items) == 1:
        return items[0]
    middle = (len(items) + 1) // 2
    return Logical(op, _chain(op, items[:middle], src), _chain(op, items[middle:], src), src=src)
