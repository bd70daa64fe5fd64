"""How ``source`` and its storage prefix run (spec/sml.md §7.1).

``Scan`` is the shared ``Source`` with what SML's own runner needs: the events of the
indices in the range, newest first, equal times by ``_index`` then ``_id``. Its runner
first offers the front of the plan to SQL (``pushdown.sml``): a ``stats`` over the leading
searches and ``qsize`` runs there whole; otherwise the ordered scan reads the events, its
SQL narrowed by what the leading searches translate to (the Python ``Search`` steps still
decide). ``Qsize`` is ``qsize``'s Limit, which says when the default one cut the source.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import orjson

from .. import pushdown
from .. import types as T
from ..execute import Context, Relation, run_source, source_columns
from ..plan import Limit, Source, Step
from ..pushdown import sml as sql

# types a field mapped to several of them is read as without loss
_WIDER = {frozenset(("integer", "long")): "long", frozenset(("keyword", "text")): "keyword"}


@dataclass(frozen=True)
class Scan(Source):
    """``source``: ``now_ms`` is the task's creation instant, which the searches' date math
    reads when SQL decides them."""

    now_ms: int = 0


@dataclass(frozen=True)
class Qsize(Limit):
    """``qsize``'s Limit over the events the storage prefix let through; ``default``: the
    query did not set it, so a cut is worth a warning."""

    default: bool = False


def column_type(kinds: set[str]) -> str:
    """The type of a field the indices map to ``kinds`` (§4: values are dynamically typed):
    the one that holds them all (``integer`` and ``long``: ``long``), else ``any``, each
    event's value then decoded by its own index's type, where ES|QL's rule makes it
    ``unsupported`` and null."""
    if len(kinds) == 1:
        return next(iter(kinds))
    if "unsupported" in kinds:
        return "unsupported"
    return _WIDER.get(frozenset(kinds), T.ANY)


def run_scan(step: Scan, rest: list[Step], ctx: Context) -> tuple[Relation, int]:
    indices = ctx.dialect.indices(ctx.catalog, step)
    names, types = source_columns(indices, column_type)
    terms = sql.Terms(ctx.dialect, step.now_ms, dict(zip(names, types)), [], [])
    if not ctx.options.pushdown:
        return run_source(step, rest, ctx)
    pushed = sql.run_stats(step, rest, ctx, indices, terms.kinds, terms)
    if pushed is not None:
        if ctx.profile is None:
            ctx.profile = pushdown.profile(None, rest[pushed[1]:], "SqliteQueryOperator[sml stats by time slices]")
        return pushed
    conditions = sql.searches(rest)
    if not conditions:
        return run_source(step, rest, ctx)
    terms.register(ctx.conn)
    narrow: Callable[[Any], tuple[str, list[Any]] | None] = lambda index: sql.prefilter(conditions, terms, index)
    if ctx.profile is None:  # the storage query the leading searches narrow (the first index's)
        where = narrow(indices[0]) if indices else None
        if where is not None:
            ctx.profile = pushdown.profile(None, rest, f"SqliteQueryOperator[ordered scan where {where[0]} "
                                                       f"{orjson.dumps(where[1], default=str).decode()}]")
    return run_source(step, rest, ctx, where=narrow)


def run_qsize(step: Qsize, rel: Relation, ctx: Context, rest: list[Step]) -> Relation:
    """The first ``count`` rows; past them, with the default qsize, one more row read says
    whether the source was cut (then a warning)."""
    def rows() -> Iterator[list[Any]]:
        upstream = iter(rel.rows)
        yield from itertools.islice(upstream, step.count)
        if step.default and next(upstream, None) is not None:
            ctx.warnings.add(sql.default_qsize_warning(step.count))
    return rel.with_rows(rows())


SOURCES = {Scan: run_scan}
STEPS = {Qsize: run_qsize}
