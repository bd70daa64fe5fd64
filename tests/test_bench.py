"""scripts/bench.py's query section at a tiny size, so the benchmark does not rot: it runs, starts
both servers, and every answer matches raw SQLite. Timings are not asserted: they mean nothing here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_queries_match_raw_sqlite() -> None:
    done = subprocess.run([sys.executable, "scripts/bench.py", "--docs", "2000", "--runs", "1", "--only", "queries"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MISMATCH" not in done.stdout
    assert "answers: all 10 match raw sqlite3" in done.stdout
    table = [line for line in done.stdout.splitlines() if line.startswith("| ") and "`FROM logs" in line]
    assert len(table) == 5


@pytest.mark.slow
def test_bench_eql_finds_what_the_reference_engine_finds() -> None:
    done = subprocess.run([sys.executable, "scripts/bench.py", "--docs", "20000", "--runs", "1", "--only", "eql"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MISMATCH" not in done.stdout
    assert "(the same as the reference's)" in done.stdout


@pytest.mark.slow
def test_bench_liveness_measures_get_under_load_and_the_graceful_stop() -> None:
    done = subprocess.run([sys.executable, "scripts/bench.py", "--docs", "2000", "--runs", "1", "--only", "liveness"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line.split(" | ")[0] for line in done.stdout.splitlines() if line.startswith("| ")]
    assert rows == ["| GET /", "| idle", "| during an 18 MB _bulk", "| while 4 heavy queries run"]
    assert "- SIGTERM to exit with a heavy query running: " in done.stdout
