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

import pytest

from tests.lab.helpers import run_molecule_scenario


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_molecule_identity_scenario() -> None:
    run_molecule_scenario("identity", timeout=1750)
