"""The identity benchmark runs end to end and prints its tables.

Only that it runs: the figures themselves are never asserted (a shared CI
machine's timings say nothing about pass or fail).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "identity.py"


@pytest.mark.timeout(300)
def test_identity_benchmark_prints_its_tables() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--duration",
            "0.5",
            "--concurrency",
            "1",
            "--backends",
            "sqlite",
            "--no-reference",
            "--hash-runs",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for heading in ("Token issue", "Token validation", "Project list", "Password hash alone"):
        assert heading in out
    assert "| clients | Stratus SQLite req/s |" in out
    assert "published reference (not measured here)" in out
    # A row for one client, with a figure in the Stratus column.
    assert any(
        line.startswith("| 1 | ") and "—" not in line.split("|")[2] for line in out.splitlines()
    )
