"""The benchmarks (identity, image) run end to end and print their tables.

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


IMAGE_SCRIPT = SCRIPT.with_name("image.py")


@pytest.mark.timeout(300)
def test_image_benchmark_prints_its_table() -> None:
    # 64 MiB only, and a size no disk here has room for, which must be skipped
    # with a note rather than attempted. The page cache is left alone: other
    # tests run on the same machine.
    result = subprocess.run(
        [
            sys.executable,
            str(IMAGE_SCRIPT),
            "--sizes",
            "64M,100T",
            "--repeat",
            "1",
            "--no-drop-caches",
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "### Image data throughput (median)" in out
    assert "| operation | size | seconds | MiB/s | ÷ cp | ÷ dd |" in out
    assert "Page cache: not dropped (--no-drop-caches)" in out
    assert "100 TiB: skipped" in out
    rows = {
        line.split("|")[1].strip(): line.split("|")
        for line in out.splitlines()
        if line.startswith("| ")
    }
    for label in ("Stratus upload", "Stratus download", "`cp`", "`dd bs=4M`", "md5 + sha512"):
        row = next(cells for name, cells in rows.items() if name.startswith(label))
        assert row[2].strip() == "64 MiB"
        assert row[3].strip() not in ("", "—")  # seconds
    # Stratus rows carry the service's memory during the operation.
    upload = next(cells for name, cells in rows.items() if name.startswith("Stratus upload"))
    assert upload[8].strip() not in ("", "—")
