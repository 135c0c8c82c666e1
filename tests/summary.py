"""The last lines of a test run (issue 54): how long each part took (the browser's tests apart from the rest) and what did
not run, how many and why, so a run that skipped the page's tests says so where people look. Both suites' conftests
import the hook."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    stats = terminalreporter.stats
    seconds: Counter[str] = Counter()
    for report in (r for key in ("passed", "failed", "error", "skipped") for r in stats.get(key, [])):
        part = "browser" if "test_browser" in getattr(report, "nodeid", "") else "the rest"
        seconds[part] += getattr(report, "duration", 0.0) or 0.0
    skipped: Counter[str] = Counter()
    for report in stats.get("skipped", []):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        skipped[reason.removeprefix("Skipped: ")] += 1
    deselected = len(stats.get("deselected", []))
    suite = Path(str(config.args[0] if config.args else "tests")).name
    counts = ", ".join(f"{len(stats[k])} {k}" for k in ("passed", "failed", "error") if stats.get(k))
    lines = [f"{suite}: {counts or 'nothing run'} in {sum(seconds.values()):.0f} s of tests ("
             + ", ".join(f"{part} {s:.0f} s" for part, s in sorted(seconds.items())) + ")"]
    lines += [f"{suite}: skipped {n}: {reason}" for reason, n in skipped.most_common()]
    if deselected:
        lines.append(f"{suite}: deselected {deselected} (left out by this run's -m or -k)")
    if not skipped and not deselected:
        lines.append(f"{suite}: nothing skipped or deselected")
    terminalreporter.section("what ran and what did not")
    for line in lines:
        terminalreporter.write_line(line)
    if os.environ.get("TEST_SUMMARY_FILE"):  # `make test` prints both suites' lines last
        with open(os.environ["TEST_SUMMARY_FILE"], "a") as f:
            f.write("\n".join(lines) + "\n")
