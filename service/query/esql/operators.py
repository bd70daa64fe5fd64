"""How ES|QL's own steps run (``plan.py`` here), over the shared executor's relations."""

from __future__ import annotations

from typing import Any, Callable

from ...errors import IndexNotFound, ServiceError
from ...node import ES_VERSION
from ...patterns import PatternError, dissect
from ...store.catalog import Catalog, Index
from .. import types as T
from ..evaluate import VerificationError, compile_expr, verify_fail
from ..execute import Context, Relation, extract, picker
from ..expr import Src
from ..grok import GrokError, compile_grok, first_match
from ..plan import Source, Step
from . import plan as ep
from .plan import matching

_FIRST = Src(1, 1, "")  # where ES|QL reports a problem of a command without a position of its own


def resolve_indices(catalog: Catalog, step: Source) -> list[Index]:
    """FROM's indices; names that match nothing are ES|QL's verification errors."""
    missing = [n for n in step.indices if "*" not in n and not n.startswith("-") and n not in catalog.indices]
    if missing and len(missing) == len([n for n in step.indices if not n.startswith("-")]):
        raise VerificationError([(step.src if step.src.line else Src(1, 6, ""),
                                  f"Unknown index [{','.join(step.indices)}]")])
    if missing:
        raise IndexNotFound(missing[0])
    indices = catalog.resolve(",".join(step.indices))
    if not indices:
        raise VerificationError([(Src(1, 6, ""), f"Unknown index [{','.join(step.indices)}]")])
    return indices


# --- sources ----------------------------------------------------------------------------

def run_row(step: ep.Row, rest: list[Step], ctx: Context) -> tuple[Relation, int]:
    """ROW's fields are independent constants; a repeated name keeps every column, as in ES."""
    empty = ctx.scope(Relation([], []))
    compiled = [compile_expr(expr, empty) for _, expr in step.fields]
    values = [fn([]) for fn, _ in compiled]
    return Relation([name for name, _ in step.fields], [kind for _, kind in compiled], [values],
                    dict(zip((name for name, _ in step.fields), values))), 0


def show_info(step: ep.ShowInfo, rest: list[Step], ctx: Context) -> tuple[Relation, int]:
    return Relation(["version", "date", "hash"], ["keyword"] * 3,
                    [[ES_VERSION, "2025-10-21T10:06:21.288Z", "esquire"]]), 0


# --- steps ------------------------------------------------------------------------------

def run_keep(step: ep.Keep, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    order: list[str] = []
    exact = {pat for pat in step.patterns if "*" not in pat}
    for pattern, matched in zip(step.patterns, matching(step.patterns, rel.names)):
        if not matched and "*" not in pattern:
            raise verify_fail(_FIRST, f"Unknown column [{pattern}]")
        for name in matched:
            if name in order:
                if "*" in pattern and name in exact:
                    continue
                order.remove(name)
            order.append(name)
    idx = [rel.names.index(n) for n in order]
    return Relation(order, [rel.types[i] for i in idx], map(picker(idx), rel.rows))


def run_drop(step: ep.Drop, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    dropped: set[str] = set()
    for pattern, matched in zip(step.patterns, matching(step.patterns, rel.names)):
        if not matched and "*" not in pattern:
            raise verify_fail(_FIRST, f"Unknown column [{pattern}]")
        dropped.update(matched)
    idx = [i for i, n in enumerate(rel.names) if n not in dropped]
    return Relation([rel.names[i] for i in idx], [rel.types[i] for i in idx], map(picker(idx), rel.rows))


def run_rename(step: ep.Rename, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    names, types, rows = list(rel.names), list(rel.types), rel.rows
    for old, new in step.pairs:
        if old not in names:
            raise verify_fail(_FIRST, f"Unknown column [{old}]")
        i = names.index(old)
        if new in names and new != old:
            j = names.index(new)
            del names[j], types[j]
            rows = map(picker([k for k in range(len(names) + 1) if k != j]), rows)
            i = names.index(old)
        names[i] = new
    return Relation(names, types, rows)


def _text_input(step: ep.Dissect | ep.Grok, rel: Relation, ctx: Context, command: str) -> Callable[..., Any]:
    fn, kind = compile_expr(step.input, ctx.scope(rel))
    if not T.is_string(kind) and kind != "null":
        raise verify_fail(step.input.src, f"{command} only supports KEYWORD or TEXT values, found expression "
                                          f"[{step.input.src.text}] type [{kind}]")
    return fn


def _parsing_error(step: Step, message: str) -> ServiceError:
    return ServiceError(f"line {step.src.line}:{step.src.col}: {message}", status=400, type="parsing_exception")


def run_dissect(step: ep.Dissect, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    fn = _text_input(step, rel, ctx, "Dissect")
    try:
        parser = dissect(step.pattern, step.append_separator)
    except PatternError:
        raise _parsing_error(step, f"Invalid pattern for dissect: [{step.pattern}]") from None
    if parser.references:
        raise _parsing_error(step, f"Reference keys not supported in dissect patterns: [%{{*{parser.references[0]}}}]")
    out_names: list[str] = []
    for key in parser.keys:
        if not key.skip and key.name not in out_names:
            out_names.append(key.name)
    return extract(rel, fn, [(n, "keyword") for n in out_names], parser.parse)


def run_grok(step: ep.Grok, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    fn = _text_input(step, rel, ctx, "Grok")
    try:
        groks = [compile_grok(pattern) for pattern in step.patterns]
    except GrokError as exc:
        raise verify_fail(step.src, str(exc)) from None
    out: dict[str, str] = {}
    for g in groks:
        for name, kind in g.fields:
            if out.setdefault(name, kind) != kind:
                raise verify_fail(step.src, f"Invalid GROK patterns: conflicting types for [{name}]")
    return extract(rel, fn, list(out.items()), first_match(groks))


SOURCES = {ep.Row: run_row, ep.ShowInfo: show_info}
STEPS = {ep.Keep: run_keep, ep.Drop: run_drop, ep.Rename: run_rename, ep.Dissect: run_dissect, ep.Grok: run_grok}
