"""The Molecule scenario molecule/object-storage: OpenStack Swift rolled out by
roles/object_storage on a real systemd host, trusting Stratus identity.

``molecule test -s object-storage`` creates a lab host (molecule-swift,
172.31.231.61, through playbooks/lab.yml), generates secrets, converges
identity as playbooks/site.yml rolls it out (common, database on SQLite,
identity) and then the object storage role (proxy and storage together,
three directory "devices" in three zones, replicas 3), converges again and
fails on any change (idempotence), then verifies: every Swift unit the host
needs runs and is enabled, the unused ones (reconstructor, sharder,
container-sync) are stopped and disabled; /info lists SLO, TempURL, bulk
and the other middleware; without a token the proxy answers 401; the demo
user creates a container with the openstack CLI, uploads an object, lists
it and downloads it with the same sha256; the admin of another project gets
403 listing that container; the object has three replicas, one on each
device. Then it removes the host. Needs root and the lab's tools.
"""

from __future__ import annotations

import pytest

from tests.lab.helpers import run_molecule_scenario


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_molecule_object_storage_scenario() -> None:
    run_molecule_scenario("object-storage", timeout=1750)
