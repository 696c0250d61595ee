"""The Molecule scenario molecule/identity-postgresql: the identity rollout
in the datacenter shape, PostgreSQL on a database host of its own.

``molecule test -s identity-postgresql`` creates three lab hosts through
playbooks/lab.yml (molecule-pg-db, 172.31.231.41, group databases;
molecule-pg-ctl, 172.31.231.42, and molecule-pg-ctl2, 172.31.231.43, groups
controllers and identity), generates secrets, converges playbooks/site.yml
with stratus_database_backend: postgresql, converges again and fails on any
change (idempotence), verifies the hosts and the cloud with the openstack CLI
(token, project create, list and delete through the controller), checks that a
token issued by either controller validates on the other, rotates the token
keys (playbooks/rotate-token-keys.yml) and checks that the tokens issued before
and after still validate across the controllers and that both key
repositories are identical, and removes the hosts. Needs root and the lab's
tools (systemd-nspawn, debootstrap).
"""

from __future__ import annotations

import pytest

from tests.lab.helpers import run_molecule_scenario


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_molecule_identity_postgresql_scenario() -> None:
    run_molecule_scenario("identity-postgresql", timeout=1750)
