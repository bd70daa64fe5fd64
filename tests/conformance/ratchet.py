"""What every reference-suite runner shares: counting each file's outcomes, printing the
figures, and the known-failures ratchet (a new failure fails the suite, and so does a
listed test that now passes, so the list only shrinks)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Tally:
    per_file: dict[str, Counter[str]] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    passed: set[str] = field(default_factory=set)

    def skipped(self, file: str) -> None:
        self.per_file.setdefault(file, Counter())["skipped"] += 1

    def record(self, file: str, test_id: str, problem: str | None) -> None:
        """One test's outcome: ``problem`` is why it failed, None when it passed."""
        counts = self.per_file.setdefault(file, Counter())
        if problem is None:
            counts["passed"] += 1
            self.passed.add(test_id)
        else:
            counts["failed"] += 1
            self.failures[test_id] = problem

    def print_figures(self, title: str, capsys: pytest.CaptureFixture[str]) -> None:
        """Passed / failed (/ skipped, when any was) per file and in total."""
        total: Counter[str] = Counter()
        for counts in self.per_file.values():
            total.update(counts)
        width = max(map(len, [*self.per_file, "total"])) + 1
        lines = [_line(name, counts, width, bool(total["skipped"]), "0") for name, counts in self.per_file.items()]
        lines.append(_line("total", total, width, bool(total["skipped"]), "1"))
        with capsys.disabled():
            print(f"\n{title}\n" + "\n".join(lines))

    def check(self, known: Path, *, update: bool, path: str) -> None:
        """The ratchet against ``known`` (a test id, a tab and its problem per line);
        ``update`` rewrites the file from this run first."""
        if update:
            known.write_text("".join(f"{tid}\t{' '.join(self.failures[tid].split())[:200]}\n"
                                     for tid in sorted(self.failures)))
        listed = {line.split("\t")[0] for line in known.read_text().splitlines() if line.strip()} \
            if known.exists() else set()
        new_failures = {tid: why for tid, why in self.failures.items() if tid not in listed}
        fixed = sorted(listed & self.passed)
        assert not new_failures, f"tests failing {path} that are not in {known.name}:\n" + "\n".join(
            f"{tid}: {why}" for tid, why in sorted(new_failures.items())[:50])
        assert not fixed, f"tests now passing {path}, remove them from {known.name} (if they pass both " \
                          "ways):\n" + "\n".join(fixed)


def _line(name: str, counts: Counter[str], width: int, skips: bool, decimals: str) -> str:
    runnable = counts["passed"] + counts["failed"]
    share = 100 * counts["passed"] / runnable if runnable else 100
    skipped = f"skipped {counts['skipped']:>4}  " if skips else ""
    return f"{name:<{width}}passed {counts['passed']:>4}  failed {counts['failed']:>4}  {skipped}({share:.{decimals}f}%)"
