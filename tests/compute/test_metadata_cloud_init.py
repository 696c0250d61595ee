"""cloud-init reads Stratus's metadata: over HTTP through the proxy, and from the config drive.

Debian's cloud-init package (unpacked, tests/compute/cloud_init.py) runs its
own readers, unchanged, against the real parts:

* HTTP: the metadata service runs under uvicorn on a loopback port; in a
  network namespace of the test's own, the network agent's real metadata
  proxy (``MetadataProxy``: its listener made inside the namespace on
  169.254.169.254:80, served from the test's namespace, as the agent does
  for a network without a router) signs each request and forwards it.
  cloud-init runs in that namespace with its defaults: the OpenStack
  reader (``read_metadata_service``, which also reads the EC2 tree), the
  EC2 helpers, and ``convert_net_json`` on network_data.json, whose result
  cloud-init's own network state parser and ENI renderer accept.
* Config drive: the ISO is mounted for real (``mount -o loop,ro``) on a
  stock Debian kernel (this machine's kernel has no iso9660; see
  tests/stock_kernel.py), where blkid shows its label and cloud-init's
  ConfigDrive datasource finds it by label, mounts it and reads it.
"""

from __future__ import annotations

import functools
import json
import selectors
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from stratus.metadata import config_drive
from stratus.metadata.content import InstanceMetadata
from stratus.network.agent import l3
from stratus.network.agent import metadata as proxy_module
from stratus.network.agent.state import METADATA_IP, FixedIP, Port
from tests import metadata_sample
from tests.compute import cloud_init
from tests.metadata_sample import INSTANCE, KEY, PORT_DHCP, PORT_STATIC, USER_DATA
from tests.stock_kernel import run_in_guest, stock_kernel

KNOWN_MACS = {PORT_DHCP.mac_address: "eth0", PORT_STATIC.mac_address: "eth1"}

HTTP_READER = r"""
import json, sys, tempfile
from pathlib import Path
from cloudinit import sources
from cloudinit.net import eni, network_state
from cloudinit.sources import DataSourceOpenStack
from cloudinit.sources.helpers import ec2, openstack

known_macs = json.loads(sys.argv[1])
# What DataSourceOpenStack._crawl_metadata does, at its default address.
result = DataSourceOpenStack.read_metadata_service("http://169.254.169.254", retries=0)
md = result["metadata"]
net = openstack.convert_net_json(result["networkdata"], known_macs=known_macs)
state = network_state.parse_net_config_data(net)
target = Path(tempfile.mkdtemp())
eni.Renderer({"eni_path": "interfaces"}).render_network_state(state, target=str(target))
print(json.dumps({
    "instance_id": md["instance-id"],
    "local_hostname": md["local-hostname"],
    "name": md["name"],
    "project_id": md["project_id"],
    "public_keys": sources.normalize_pubkey_data(md["public_keys"]),
    "random_seed": len(md["random_seed"]),
    "userdata": result["userdata"].decode(),
    "vendordata": sources.convert_vendordata(result["vendordata"]),
    "vendordata2": result["vendordata2"],
    "network_config": net,
    "interfaces": (target / "interfaces").read_text(),
    "ec2": result["ec2-metadata"],
    "ec2_2009": ec2.get_instance_metadata(api_version="2009-04-04", retries=0),
    "ec2_userdata": ec2.get_instance_userdata(retries=0).decode(),
}))
"""

DRIVE_READER = r"""
import json, sys
from cloudinit import sources, util
from cloudinit.sources import DataSourceConfigDrive
from cloudinit.sources.helpers import openstack

# What DataSourceConfigDrive._get_data does with the devices it finds.
devices = DataSourceConfigDrive.find_candidate_devs()
results = util.mount_cb(devices[0], DataSourceConfigDrive.read_config_drive)
md = results["metadata"]
print(json.dumps({
    "devices": devices,
    "instance_id": md["instance-id"],
    "local_hostname": md["local-hostname"],
    "public_keys": sources.normalize_pubkey_data(md["public_keys"]),
    "userdata": results["userdata"].decode(),
    "random_seed": len(md["random_seed"]),
    "ec2_instance_id": results["ec2-metadata"]["instance-id"],
    "network_config": openstack.convert_net_json(
        results["networkdata"], known_macs=json.loads(sys.argv[1])
    ),
}))
"""


@pytest.fixture(scope="module")
def packages() -> Path:
    return cloud_init.dist_packages()


@pytest.fixture(scope="module")
def metadata_url() -> Iterator[str]:
    """The metadata service under uvicorn on a free loopback port (in this process)."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(
        uvicorn.Config(metadata_sample.create_app(), log_config=None, access_log=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _proxy_in(
    namespace: str, upstream: str, instance: InstanceMetadata
) -> proxy_module.MetadataProxy:
    """The agent's proxy, listening in ``namespace`` on 169.254.169.254:80 for ``instance``.

    What ``MetadataProxy.sync`` does for a network's DHCP namespace, with
    the tables made here: a request from 169.254.169.254 (the namespace's
    own address, where cloud-init runs) is the instance's port.
    """
    proxy = proxy_module.MetadataProxy(upstream, metadata_sample.SECRET)
    network = instance.ports[0].network_id
    port = Port(
        id=instance.ports[0].id,
        network_id=network,
        project_id=instance.project_id,
        mac_address=instance.ports[0].mac_address,
        fixed_ips=(FixedIP("subnet", METADATA_IP),),
        device_owner="compute:zone-a",
        device_id=instance.uuid,
        host="test",
    )
    proxy.tables = proxy_module.Tables(
        {(namespace, METADATA_IP): network}, {(network, METADATA_IP): port}
    )
    sock = l3.in_namespace(namespace, functools.partial(proxy_module._listen, (METADATA_IP, 80)))
    proxy.listeners[namespace] = proxy_module.Listener(namespace, 0, sock)
    proxy._selector.register(sock, selectors.EVENT_READ, namespace)
    proxy.start()
    return proxy


@pytest.fixture(scope="module")
def guest_namespace(metadata_url: str) -> Iterator[str]:
    """A namespace where 169.254.169.254 is the metadata proxy, as a guest sees it."""
    namespace = f"mdci-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    proxy = None
    try:
        for command in ("ip link set lo up", f"ip addr add {METADATA_IP}/32 dev lo"):
            subprocess.run(["ip", "netns", "exec", namespace, *command.split()], check=True)
        proxy = _proxy_in(namespace, metadata_url, INSTANCE)
        yield namespace
    finally:
        if proxy is not None:
            proxy.stop()
        subprocess.run(["ip", "netns", "del", namespace], check=False)


def test_cloud_init_reads_the_metadata_service_through_the_proxy(
    packages: Path, guest_namespace: str
) -> None:
    got = cloud_init.run(
        HTTP_READER, [json.dumps(KNOWN_MACS)], prefix=["ip", "netns", "exec", guest_namespace]
    )
    assert got["instance_id"] == INSTANCE.uuid
    assert got["local_hostname"] == "web-1" and got["name"] == "web-1"
    assert got["project_id"] == INSTANCE.project_id
    assert got["public_keys"] == [KEY]
    assert got["random_seed"] == 512
    assert got["userdata"] == USER_DATA.decode()
    assert got["vendordata"] == INSTANCE.vendor_data["cloud-init"]
    assert got["vendordata2"] == {"static": dict(INSTANCE.vendor_data)}

    config = {c.get("name", c["type"]): c for c in got["network_config"]["config"]}
    eth0, eth1 = config["eth0"], config["eth1"]
    assert (eth0["mac_address"], eth0["mtu"]) == ("fa:16:3e:00:00:05", 1450)
    assert [s["type"] for s in eth0["subnets"]] == ["dhcp4", "ipv6_slaac"]
    static4, static6 = eth1["subnets"]
    assert static4["type"] == "static" and static4["address"] == "192.168.50.7"
    assert static4["netmask"] == "255.255.255.0"
    assert static4["routes"] == [
        {"network": "172.16.0.0", "netmask": "255.255.0.0", "gateway": "192.168.50.1"}
    ]
    assert static6["type"] == "static6" and static6["address"] == "2001:db8:2::7"
    assert config["nameserver"]["address"] in ("10.0.0.2", "192.168.50.2")
    interfaces = got["interfaces"]
    for line in (
        "dns-nameservers 10.0.0.2 192.168.50.2",
        "iface eth0 inet dhcp",
        "mtu 1450",
        "iface eth0 inet6 auto",
        "route add -A inet6 default gw 2001:db8:1::1",
        "iface eth1 inet static",
        "address 192.168.50.7/24",
        "route add -net 172.16.0.0/16 gw 192.168.50.1",
        "iface eth1 inet6 static",
        "address 2001:db8:2::7/64",
        "route add -A inet6 default gw 2001:db8:2::1",
    ):
        assert line in interfaces, interfaces

    # The EC2 tree, as read_v2 reads it (latest) and as the EC2 datasource
    # asks for it (2009-04-04), and its user data.
    for ec2 in (got["ec2"], got["ec2_2009"]):
        assert ec2["instance-id"] == f"i-{INSTANCE.uuid[:8]}"
        assert ec2["local-hostname"] == "web-1"
        assert ec2["local-ipv4"] == "10.0.0.5" and ec2["public-ipv4"] == "203.0.113.10"
        assert ec2["public-keys"] == {"mykey": KEY}
        assert ec2["placement"] == {"availability-zone": "zone-a"}
        assert ec2["instance-type"] == "m1.tiny"
        assert ec2["security-groups"] == ["default", "web"]
        assert ec2["block-device-mapping"] == {
            "ami": "vda",
            "root": "/dev/vda",
            "ephemeral0": "/dev/vdb",
        }
    assert got["ec2_userdata"] == USER_DATA.decode()


def test_unsigned_requests_get_nothing(metadata_url: str) -> None:
    """Straight to the running service, past the proxy: 403, whatever the headers claim."""
    request = urllib.request.Request(
        f"{metadata_url}/openstack/latest/user_data",
        headers={
            "X-Instance-ID": INSTANCE.uuid,
            "X-Tenant-ID": INSTANCE.project_id,
            "X-Instance-ID-Signature": "0" * 64,
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert refused.value.read() == b"403 Forbidden\n\nInvalid proxy request signature.\n"


def test_cloud_init_reads_the_config_drive_mounted_on_a_stock_kernel(
    packages: Path, tmp_path: Path
) -> None:
    iso = config_drive.build(INSTANCE, tmp_path / "disk.config")
    results = tmp_path / "guest"
    results.mkdir()
    mnt = results / "mnt"
    # cloud-init's PYTHONPATH comes with the guest's environment (below).
    reader = shlex.join([sys.executable, "-c", DRIVE_READER, json.dumps(KNOWN_MACS)])
    command = f"""
set -e
modprobe loop  # (the stock kernel's on-demand loading does not reach them here)
modprobe isofs
mkdir -p {mnt}
mount -o loop,ro {iso} {mnt}
trap 'umount {mnt}' EXIT
blkid -o export "$(findmnt -n -o SOURCE {mnt})" > {results}/blkid
(cd {mnt} && find . | sort) > {results}/files
{reader} > {results}/cloud-init.json
"""
    guest = run_in_guest(
        stock_kernel(),
        command,
        results,
        env={"PYTHONPATH": str(packages), "PYTHONDONTWRITEBYTECODE": "1"},
        timeout=240,
        memory_mb=768,
        cpus=1,
    )
    report = (
        f"exit {guest.returncode} ({guest.seconds:.0f} s)\n"
        f"{guest.output[-4000:]}\n{guest.console[-2000:]}"
    )
    assert guest.returncode == 0, report

    blkid = dict(
        line.split("=", 1) for line in (results / "blkid").read_text().splitlines() if "=" in line
    )
    assert blkid["LABEL"] == "config-2" and blkid["TYPE"] == "iso9660", blkid
    files = (results / "files").read_text().split()
    for name in (
        "./openstack/latest/meta_data.json",
        "./openstack/latest/network_data.json",
        "./openstack/latest/vendor_data.json",
        "./openstack/latest/vendor_data2.json",
        "./openstack/latest/user_data",
        "./openstack/2012-08-10/meta_data.json",
        "./openstack/2018-08-27/vendor_data2.json",
        "./ec2/latest/meta-data.json",
        "./ec2/2009-04-04/user-data",
    ):
        assert name in files, files

    got = json.loads((results / "cloud-init.json").read_text())
    assert got["devices"][0].startswith("/dev/loop"), got["devices"]
    assert got["instance_id"] == INSTANCE.uuid
    assert got["local_hostname"] == "web-1"
    assert got["public_keys"] == [KEY]
    assert got["userdata"] == USER_DATA.decode()
    assert got["random_seed"] == 512
    assert got["ec2_instance_id"] == f"i-{INSTANCE.uuid[:8]}"
    names = [c.get("name") for c in got["network_config"]["config"]]
    assert names[:2] == ["eth0", "eth1"]
