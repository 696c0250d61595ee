"""The Molecule scenario molecule/identity-postgresql: the identity rollout
in the datacenter shape, PostgreSQL on a database host of its own.

``molecule test -s identity-postgresql`` creates two lab hosts through
playbooks/lab.yml (molecule-pg-db, 172.31.231.41, group databases;
molecule-pg-ctl, 172.31.231.42, groups controllers and identity), generates
secrets, converges playbooks/site.yml with stratus_database_backend:
postgresql, converges again and fails on any change (idempotence), verifies
both hosts and the cloud with the openstack CLI (token, project create, list
and delete through the controller), and removes the hosts. Needs root and the
lab's tools (systemd-nspawn, debootstrap).
"""

from __future__ import annotations

import pytest

from tests.lab.helpers import run_molecule_scenario


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_molecule_identity_postgresql_scenario() -> None:
    run_molecule_scenario("identity-postgresql", timeout=1750)
