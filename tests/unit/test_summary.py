"""tests/summary.py: a run's last lines say how long each part took and what did not run, how many and why (issue 54)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_last_lines_give_each_parts_time_and_every_skip_with_its_reason(tmp_path):
    suite = tmp_path / "integration"
    suite.mkdir()
    (suite / "conftest.py").write_text("from tests.summary import pytest_terminal_summary  # noqa: F401\n")
    (suite / "test_browser.py").write_text(textwrap.dedent('''
        import pytest

        def test_page():
            pass

        @pytest.mark.skip(reason="no Chromium here: `make test` fetches it")
        def test_page_again():
            pass
    '''))
    (suite / "test_api.py").write_text("import pytest\n\n@pytest.mark.slow\ndef test_slow():\n    pass\n\ndef test_fast():\n    pass\n")
    summary = tmp_path / "summary.txt"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}", "TEST_SUMMARY_FILE": str(summary)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-m", "not slow", "-c", os.devnull, str(suite)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    lines = summary.read_text().splitlines()
    assert lines[0].startswith("integration: 2 passed in ") and "browser " in lines[0] and "the rest " in lines[0]
    assert "integration: skipped 1: no Chromium here: `make test` fetches it" in lines
    assert "integration: deselected 1 (left out by this run's -m or -k)" in lines
    assert "what ran and what did not" in done.stdout
