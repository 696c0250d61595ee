"""The Molecule scenario molecule/identity: the identity rollout on a real
systemd host.

``molecule test -s identity`` creates a lab host (molecule-identity,
172.31.231.31, through playbooks/lab.yml), generates secrets, converges
playbooks/site.yml, converges again and fails on any change (idempotence),
verifies the host and the cloud with the openstack CLI, and removes the host.
Needs root and the lab's tools (systemd-nspawn, debootstrap); a few minutes
on two cores, more when the lab's cached root is built first.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_molecule_identity_scenario() -> None:
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
        [str(molecule), "test", "-s", "identity"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1750,
        check=False,
    )
    report = result.stdout[-12000:] + "\n" + result.stderr[-6000:]
    assert result.returncode == 0, f"molecule test -s identity failed:\n{report}"
