"""Tempest's identity v3 API tests against a throwaway Stratus identity server.

Runs scripts/tempest.sh (what ``make tempest`` runs): it installs Tempest into
.venv-tempest if needed, starts and bootstraps its own server, runs
``tempest.api.identity`` minus tests/tempest/exclude-identity.txt and stops
the server. The run takes about 65-90 s on two cores; the timeout leaves room
for a first install of Tempest from PyPI and a slow machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 840


@pytest.mark.lab
@pytest.mark.timeout(TIMEOUT + 60)
def test_tempest_identity_v3(tmp_path: Path) -> None:
    out = tmp_path / "tempest"
    env = {**os.environ, "STRATUS_TEMPEST_OUT": str(out)}
    # A session of its own, so that on a timeout the whole run (the script,
    # tempest and its workers) gets SIGTERM and the script's trap stops the
    # identity server; a plain kill of the script would leave the server.
    process = subprocess.Popen(
        [str(ROOT / "scripts" / "tempest.sh")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        pytest.fail(f"scripts/tempest.sh did not finish in {TIMEOUT} s")
    report = stdout[-6000:] + "\n" + stderr[-3000:]
    summary_path = out / "summary.json"
    assert summary_path.exists(), f"no summary (exit {process.returncode}):\n{report}"
    summary = json.loads(summary_path.read_text())
    failures = "\n".join(f"{name}: {f['reason']}" for name, f in summary["failures"].items())
    assert summary["failed"] == 0, f"{summary['failed']} Tempest failures:\n{failures}\n{report}"
    assert summary["not_run"] == 0, f"tests that did not run: {summary['not_run_tests']}"
    assert summary["passed"] > 0, report
    assert process.returncode == 0, report
