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
    end of its output unless it passes; skip without molecule or root.

    The whole output, with each task's time (ansible.posix's profile_tasks),
    is kept in ``.lab/molecule/SCENARIO.log``."""
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
        "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
    }
    log = ROOT / ".lab" / "molecule" / f"{scenario}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = subprocess.run(
            [str(molecule), "test", "-s", scenario],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.stdout) + "\n--- stderr ---\n" + _text(exc.stderr)
        log.write_text(out)
        pytest.fail(f"molecule test -s {scenario} ran over {timeout} s:\n{out[-12000:]}")
    log.write_text(result.stdout + "\n--- stderr ---\n" + result.stderr)
    report = result.stdout[-12000:] + "\n" + result.stderr[-6000:]
    assert result.returncode == 0, f"molecule test -s {scenario} failed:\n{report}"


def _text(output: str | bytes | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
