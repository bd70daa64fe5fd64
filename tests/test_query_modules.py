"""The query package's module layout: the shared engine imports no language, span arithmetic
is neutral, ES|QL's function library is one registry."""

import subprocess
import sys

import pytest

from service.query import spans
from service.query.esql import functions
from service.query.evaluate import EvalError


def _loaded(imports: str, watched: tuple[str, ...]) -> list[str]:
    """Which of the ``watched`` modules a fresh interpreter has loaded after ``imports``."""
    code = f"import sys, {imports}; print(sorted(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return eval(out)  # noqa: S307 - our own subprocess prints a list literal


def test_spans_import_neither_the_compiler_nor_the_library():
    assert _loaded("service.query.spans", ("service.query.evaluate", "service.query.esql.functions")) == []


def test_the_shared_engine_imports_no_language():
    core = "service.query.plan, service.query.evaluate, service.query.execute, service.query.dialect"
    assert _loaded(core, ("service.query.esql",)) == []


def test_add_span_and_date_trunc():
    day = spans.SPAN_MS["d"]
    assert spans.add_span(0, (1, "d"), 1, "date") == day
    assert spans.add_span(0, (1, "mo"), 1, "date") == 31 * day  # 1970-02-01
    assert spans.add_span(1, (1, "s"), -1, "date_nanos") == 1 - 1_000_000_000
    assert spans.date_trunc(day + 5, (1, "d")) == day
    assert spans.date_trunc(40 * day, (1, "mo")) == 31 * day
    with pytest.raises(EvalError, match="long overflow"):
        spans.add_span(2**63 - 1, (1, "ms"), 1, "date")
    with pytest.raises(EvalError, match="Zero or negative time interval"):
        spans.date_trunc(0, (0, "d"))


def test_every_family_registers_into_the_one_registry():
    for name in ("ABS", "CONCAT", "COALESCE", "MV_SUM", "DATE_TRUNC", "CIDR_MATCH", "MD5", "BUCKET", "TO_DATEPERIOD"):
        assert name in functions.REGISTRY, name
    assert "TO_INTEGER" in functions.conversion.CONVERTERS
    assert functions.ALIASES["TO_INT"] == "TO_INTEGER" and "COUNT" in functions.AGGREGATES
