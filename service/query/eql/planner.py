"""From a parsed EQL query and its request to the shared plan, verified against the mapping.

Every query is one scan of the target indices: in time order (the timestamp field, then
the tiebreaker, then insertion order) for event and sequence queries, in insertion order
for samples; its predicate is "some stage's filter holds", so the scan hands on only the
documents a stage can use. An event query whose kept events are the last ones reads the
indices from the end, and stops once it has them.

Verification happens here, before anything runs, with Elasticsearch's messages: optional
fields mapped nowhere become null, aliases are read through their target, unknown fields
and non-boolean conditions are errors.
"""

from __future__ import annotations

from typing import Any

from ...store.catalog import Catalog, Index
from ...errors import ServiceError
from ..evaluate import Scope, VerificationError, Warnings, compile_expr, verify_fail, walk
from ..execute import source_columns
from ..expr import Binary, Column, Expr, In, IsNull, Literal, Logical, Src
from ..plan import Plan, ScanOrder, Source, Step
from . import ast
from . import plan as ep
from .dialect import EQL
from .request import EqlRequest

NANOS_PER_MILLI = 1_000_000
COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")


class _Mapping:
    """The fields of the target indices, as EQL names them."""

    def __init__(self, indices: list[Index]) -> None:
        self.names, self.types = source_columns(indices)
        self.aliases = {path: f.target for index in indices for path, f in index.fields.items()
                        if f.target is not None}

    def kind(self, name: str) -> str | None:
        name = self.aliases.get(name, name)
        return self.types[self.names.index(name)] if name in self.names else None

    def resolved(self, node: Any) -> Any:
        """``node`` with aliases read through their target and optional fields mapped nowhere
        replaced by null (spec/eql.md §4.3)."""
        if isinstance(node, ast.Optional):
            name = self.aliases.get(node.name, node.name)
            return Column(name, src=node.src) if name in self.names else Literal(None, "null", src=node.src)
        if isinstance(node, Column):
            return Column(self.aliases[node.name], src=node.src) if node.name in self.aliases else node
        if isinstance(node, tuple):
            return tuple(self.resolved(n) for n in node)
        if isinstance(node, Expr):
            node = type(node)(**{f: self.resolved(getattr(node, f)) for f in node.__dataclass_fields__})
            return _null_test(node) if isinstance(node, Binary) else node
        return node

    def column(self, name: str, what: str) -> str:
        """A request's field (the timestamp, the tiebreaker...), which must be mapped."""
        resolved = self.aliases.get(name, name)
        if resolved not in self.names:
            raise verify_fail(Src(-1, -1, name), f"Unknown {what} [{name}]" if what else f"Unknown column [{name}]")
        return resolved


def _null_test(node: Binary) -> Expr:
    """``x == null`` is "x is null" (and ``!=`` "is not null"), also once an optional field
    mapped nowhere has become the null literal: ``?x == ?y`` is true (spec/eql.md §4.2)."""
    if node.op not in ("==", "!="):
        return node
    for side, other in ((node.left, node.right), (node.right, node.left)):
        if isinstance(side, Literal) and side.value is None:
            return IsNull(other, negated=node.op == "!=", src=node.src)
    return node


def _field_comparisons(condition: Expr) -> None:
    """Elasticsearch compares a field with constants only (each predicate becomes a query
    on one field): a comparison whose both sides read fields, or a field among IN's items,
    is refused with its messages (the first from its query translator, a server error)."""
    for node in walk(condition):
        if isinstance(node, Binary) and node.op in COMPARISONS and _reads_field(node.left) \
                and _reads_field(node.right):
            raise ServiceError(f"Line {node.right.src.line}:{node.right.src.col}: Comparisons against fields are not "
                               f"(currently) supported; offender [{node.right.src.text}] in [{node.op}]",
                               status=500, type="ql_illegal_argument_exception")
        if isinstance(node, In):
            for item in node.items:
                if _reads_field(item):
                    raise verify_fail(node.src, f"Comparisons against fields are not (currently) supported; "
                                                f"offender [{item.src.text}] in [{node.src.text}]")


def _reads_field(expr: Expr) -> bool:
    return any(isinstance(e, Column) for e in walk(expr))


def _condition(event: ast.EventFilter, category_field: str, mapping: _Mapping, scope: Scope) -> Expr:
    """The filter of a stage as one boolean expression: the category test, then the condition."""
    condition = mapping.resolved(event.condition)
    _field_comparisons(condition)
    _, kind = compile_expr(condition, scope)
    if kind not in ("boolean", "null"):
        raise verify_fail(event.condition.src, f"Condition expression needs to be boolean, found [{kind.upper()}]")
    if event.category is None:
        return condition
    category = Binary("==", Column(category_field), Literal(event.category, "keyword"), src=event.src)
    return Logical("AND", category, condition, src=event.src)


def _stage(term: ast.Term, category_field: str, mapping: _Mapping, scope: Scope) -> ep.Stage:
    keys = tuple(mapping.resolved(k) for k in term.keys)
    for key in keys:
        compile_expr(key, scope)  # unknown fields are errors
    return ep.Stage(_condition(term.filter, category_field, mapping, scope), keys,
                    tuple(isinstance(k, ast.Optional) for k in term.keys), term.missing)


def _any_of(conditions: list[Expr]) -> Expr:
    out = conditions[0]
    for condition in conditions[1:]:
        out = Logical("OR", out, condition, src=condition.src)
    return out


def _window(request: EqlRequest, pipes: tuple[ast.Pipe, ...]) -> ep.Window:
    return ep.Window(request.size, request.result_position, tuple((p.kind, p.count) for p in pipes))


def plan(query: ast.Query, request: EqlRequest, catalog: Catalog) -> Plan:
    """The shared plan of ``query`` over ``request``'s indices; errors are raised now."""
    probe = Source(request.indices)
    mapping = _Mapping(EQL.indices(catalog, probe))
    scope = Scope(mapping.names, mapping.types, Warnings(), EQL)
    category = mapping.aliases.get(request.event_category_field, request.event_category_field)
    terms = query.terms if not isinstance(query, ast.EventQuery) else ()
    stages = [_stage(t, category, mapping, scope) for t in terms]
    until = _stage(query.until, category, mapping, scope) \
        if isinstance(query, ast.SequenceQuery) and query.until is not None else None
    common = {"fields": request.fields}
    step: Step
    order: ScanOrder | None = None
    if isinstance(query, ast.SampleQuery):
        conditions = [s.condition for s in stages]
        step = ep.Samples(timestamp=None, stages=tuple(stages), size=request.size,
                          max_samples_per_key=request.max_samples_per_key, **common)
    else:
        timestamp = mapping.column(request.timestamp_field, "")
        tiebreaker = mapping.column(request.tiebreaker_field, "") if request.tiebreaker_field else None
        if isinstance(query, ast.EventQuery):
            window = _window(request, query.pipes)
            conditions = [_condition(query.filter, category, mapping, scope)]
            step = ep.Events(timestamp=timestamp, window=window, **common)
            order = ScanOrder(timestamp, window.first[0] == "tail", tiebreaker)
        else:
            conditions = [s.condition for s in stages] + ([until.condition] if until else [])
            unit = NANOS_PER_MILLI if mapping.kind(timestamp) == "date_nanos" else 1
            maxspan = query.maxspan_ms * unit if query.maxspan_ms is not None else None
            step = ep.Sequences(timestamp=timestamp, stages=tuple(stages), until=until, maxspan=maxspan,
                                window=_window(request, query.pipes), **common)
        order = order or ScanOrder(timestamp, False, tiebreaker)
    source = Source(request.indices, metadata=("_id", "_index"), with_source=True, order=order,
                    predicate=_any_of(conditions))
    return Plan((source, step), request.query)


__all__ = ["plan", "VerificationError"]
