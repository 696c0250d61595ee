"""The benchmarks (identity, image, compute) run end to end and print their tables.

Only that it runs: the figures themselves are never asserted (a shared CI
machine's timings say nothing about pass or fail). The object storage
benchmark needs a rolled-out cloud, so only its pure helpers are checked;
so does the compute benchmark's real-guest part, which is skipped here.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _object_storage_module() -> Any:
    """benchmarks/object_storage.py, imported (it needs a rolled-out cloud to run)."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_object_storage", SCRIPT.with_name("object_storage.py")
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # its dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(SCRIPT.parent))


def test_object_storage_benchmark_helpers() -> None:
    # Its runs need `make aio` (a Swift proxy and a storage host over ssh), so only
    # its pure helpers are checked here, without a network.
    bench = _object_storage_module()
    assert bench.parse_batches("500x4K, 200x64K") == [(500, 4096), (200, 65536)]
    assert bench.parse_batches("4x64MiB") == [(4, 64 * 1024 * 1024)]
    for bad in ("", "x4K", "4x", "0x4K", "4*4K"):
        with pytest.raises(ValueError):
            bench.parse_batches(bad)
    assert bench.size_label(4096) == "4 KiB"
    assert bench.size_label(64 * 1024 * 1024) == "64 MiB"
    assert bench.size_label(1000) == "1000 B"
    assert bench.segments_of(40, 16) == [(0, 16), (16, 16), (32, 8)]
    assert bench.segments_of(32, 16) == [(0, 16), (16, 16)]
    conf = (
        "[DEFAULT]\ninterval = 5\n\n"
        "[object-replicator]\n# interval = 1\nconcurrency = 1\ninterval = 30\n"
    )
    assert bench.ini_option(conf, "object-replicator", "interval") == "30"
    assert bench.ini_option(conf, "object-auditor", "interval") is None
    times = [3.0, 1.0, 2.0, 4.0]
    assert bench.percentile_times(times, 4, (0.25, 0.5, 1.0)) == [1.0, 2.0, 4.0]
    first, last = bench.percentile_times(times, 5, (0.2, 1.0))
    assert first == 1.0 and last != last  # one of five never came back: nan
    text = (
        "# Refs\n\n- A guest: 0.4 s.\n"
        "- OpenStack Swift all-in-one with 3 replicas:\n  about 5 % of cp.\n"
    )
    assert bench.swift_references(text) == [
        "OpenStack Swift all-in-one with 3 replicas: about 5 % of cp."
    ]
    assert bench.swift_references("# Nothing\n\n- A guest: 0.4 s.\n") == []


@pytest.mark.timeout(300)
def test_compute_benchmark_prints_its_tables() -> None:
    script = SCRIPT.with_name("compute.py")
    result = subprocess.run(
        [
            sys.executable,
            str(script),
            "--servers",
            "6",
            "--hosts",
            "3",
            "--concurrency",
            "2",
            "--skip-real",  # real guests need a rolled-out cloud (`make aio`)
        ],
        capture_output=True,
        text=True,
        timeout=280,
        cwd=script.parent,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "## Boot to ACTIVE: 6 servers, 3 fake hypervisors" in result.stdout
    assert "| in ERROR or never ACTIVE | 0 |" in result.stdout
    assert "| compute API |" in result.stdout
    assert "Not measured: skipped (--skip-real)." in result.stdout


def test_compute_benchmark_says_why_real_guests_were_not_measured(tmp_path: Path) -> None:
    # Without a rolled-out cloud the real-guest table says why, and makes nothing.
    script = SCRIPT.with_name("compute.py")
    missing = tmp_path / "clouds.yaml"
    result = subprocess.run(
        [sys.executable, str(script), "--skip-fake", "--clouds-yaml", str(missing)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=script.parent,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Fake driver: skipped (--skip-fake)." in result.stdout
    assert f"Not measured: no clouds.yaml at {missing} (run `make aio` first)." in result.stdout
    empty = tmp_path / "empty.yaml"
    empty.write_text("clouds: {}\n")
    result = subprocess.run(
        [sys.executable, str(script), "--skip-fake", "--clouds-yaml", str(empty)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=script.parent,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Not measured: no cloud `stratus-admin` in " in result.stdout
