"""Running a Molecule scenario of molecule/ from a lab test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def run_molecule_scenario(scenario: str, timeout: int) -> None:
    """Run ``molecule test -s SCENARIO`` from the checkout and fail with the
    end of its output unless it passes; skip without molecule or root."""
    molecule = BIN / "molecule"
    if not molecule.exists():
        pytest.skip(f"{molecule} is missing; run scripts/bootstrap.sh")
    if os.geteuid() != 0:
        pytest.skip("lab hosts need root")
    subprocess.run([str(ROOT / "scripts" / "link-collection.sh")], cwd=ROOT, check=True)
    env = {
        **os.environ,
        # molecule runs ansible-playbook and ansible-config by name.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "ANSIBLE_FORCE_COLOR": "0",
        "NO_COLOR": "1",
        "PY_COLORS": "0",
    }
    result = subprocess.run(
        [str(molecule), "test", "-s", scenario],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    report = result.stdout[-12000:] + "\n" + result.stderr[-6000:]
    assert result.returncode == 0, f"molecule test -s {scenario} failed:\n{report}"
