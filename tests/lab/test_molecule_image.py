"""The Molecule scenario molecule/image: the image and network rollout on a
real systemd host.

``molecule test -s image`` creates a lab host (molecule-image, 172.31.231.51,
through playbooks/lab.yml), generates secrets, converges playbooks/site.yml
(common, database on SQLite, identity, image, network, compute), converges again and fails on
any change (idempotence), then verifies: stratus-image.service runs hardened
as the stratus account with its data and staging directories writable, the
image API answers its version document and 401 without a token from the
deploying machine, the scenario's RBAC override (nobody may publish an image)
is in force, and playbooks/demo.yml and playbooks/smoke.yml run there
(the demo user uploads a qcow2 image made with qemu-img, downloads it with the
same sha256 and deletes it), imports a qcow2 image that the service converts
to raw in its staging directory (the download is the raw disk it was made
from), and finds no data left on the host. The same host carries the network
API and agent (groups network and network_nodes): the smoke journey's router
and floating IP answer ping from a simulated guest, both network units run as
intended (the API hardened, the agent as root with KillMode=process), and a
tenant network's qdhcp- namespace and dnsmasq appear, keep the same dnsmasq
across an agent restart, and go with the network. The host is also the
compute controller and a hypervisor (groups compute and computes; QEMU
without KVM): smoke.yml's compute journey boots the test image with user
data, reads its DHCP lease, instance id and user data in its console log,
pings its floating IP, stops, starts, reboots and snapshots it, deletes
everything and proves nothing was left. Then it removes the host.
Needs root and the lab's tools (systemd-nspawn, debootstrap).
"""

from __future__ import annotations

import pytest

from tests.lab.helpers import run_molecule_scenario


@pytest.mark.lab
@pytest.mark.timeout(1800)
def test_molecule_image_scenario() -> None:
    run_molecule_scenario("image", timeout=1750)
