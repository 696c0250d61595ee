"""Running scripts/tempest.sh (``make tempest``) for one suite from a lab test."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_tempest_suite(
    suite: str, out: Path, timeout: int, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Run ``STRATUS_TEMPEST_SUITE=SUITE scripts/tempest.sh`` and check its summary.

    ENV adds to (or overrides) the environment, for example
    ``STRATUS_TEMPEST_CLOUD`` and ``OS_CLIENT_CONFIG_FILE`` for the
    object_storage suite. Fails with the end of its output on any Tempest
    failure, on tests that did not run, or when nothing passed; returns
    summary.json otherwise.
    """
    environment = {
        **os.environ,
        **(env or {}),
        "STRATUS_TEMPEST_OUT": str(out),
        "STRATUS_TEMPEST_SUITE": suite,
    }
    environment.pop("STRATUS_TEMPEST_REGEX", None)
    # A session of its own, so that on a timeout the whole run (the script,
    # tempest and its workers) gets SIGTERM and the script's trap stops the
    # servers; a plain kill of the script would leave them running.
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "tempest.sh")],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        pytest.fail(f"scripts/tempest.sh ({suite}) did not finish in {timeout} s")
    report = stdout[-6000:] + "\n" + stderr[-3000:]
    summary_path = out / "summary.json"
    assert summary_path.exists(), f"no summary (exit {process.returncode}):\n{report}"
    summary: dict[str, Any] = json.loads(summary_path.read_text())
    failures = "\n".join(f"{name}: {f['reason']}" for name, f in summary["failures"].items())
    assert summary["failed"] == 0, f"{summary['failed']} Tempest failures:\n{failures}\n{report}"
    assert summary["not_run"] == 0, f"tests that did not run: {summary['not_run_tests']}"
    assert summary["passed"] > 0, report
    assert process.returncode == 0, report
    return summary


def assert_only_expected_skips(
    summary: Mapping[str, Any], expected: Callable[[str, str], bool]
) -> None:
    """Every skip (test, reason) is one ``expected`` accepts: any other means
    tempest.conf hides a feature Stratus has."""
    unexpected = {
        test: reason for test, reason in summary["skips"].items() if not expected(test, reason)
    }
    assert not unexpected, f"tests skipped: {unexpected}"
