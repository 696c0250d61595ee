"""The Molecule scenario molecule/object-storage: OpenStack Swift rolled out by
roles/object_storage onto one proxy and three storage hosts in two regions,
trusting Stratus identity.

``molecule test -s object-storage`` creates four lab hosts (molecule-swift
172.31.231.61 with identity and the proxy; molecule-sto1..3 .62-.64, one
device each in zones r1z1, r1z2 and r2z1), generates secrets, converges
playbooks/site.yml, converges again and fails on any change (idempotence),
then verifies (verify.yml, resilience.yml):
- every Swift unit a host needs runs and is enabled (the object expirer
  included), the unused ones are stopped and disabled; the role refuses
  another hash path prefix once rings exist;
- /info, 401 without a token, an object stored and read back with the
  openstack CLI (Stratus login, the proxy's keystonemiddleware), a container
  another project cannot list, CORS (ACLs, TempURLs, token revocation and
  large objects: tests/api/test_object_storage.py and Tempest);
- an object's three replicas on the three storage hosts (three zones);
- a wiped device refilled by replication; a corrupted replica quarantined by
  the auditor and replaced; a storage host cut off (black hole routes)
  while an object is written (quorum) and read, then given the object by
  replication once back; an X-Delete-After object hidden when due and its
  replicas removed by the expirers;
- a device added through the role's preflight, install and ring tasks
  (its directory made, rings rebalanced, identical on every host), then
  removed from the inventory: drained by one run of the ring tasks, removed
  from the rings by the next;
- every replica and six reads through the proxy hold the stored bytes;
- Tempest's object storage tests (tests/lab/tempest_object_storage.py).
Then it removes the hosts. Needs root and the lab's tools.
"""

from __future__ import annotations

import pytest

from tests.lab.helpers import run_molecule_scenario


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_molecule_object_storage_scenario() -> None:
    run_molecule_scenario("object-storage", timeout=1750)
