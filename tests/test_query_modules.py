"""The query package's module layout: span arithmetic is neutral, the function library is one registry."""

import subprocess
import sys

import pytest

from service.query import functions, spans
from service.query.evaluate import EvalError


def test_spans_import_neither_the_compiler_nor_the_library():
    code = ("import sys, service.query.spans; "
            "print(sorted(m for m in ('service.query.evaluate', 'service.query.functions') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


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
