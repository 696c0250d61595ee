"""The compute agent's libvirt driver against a real (private) libvirtd.

The guests are the test image (docs/test-image.md) under QEMU's software
emulation (``virt_type = qemu``); images come from local files through a
small ``ImageSource`` and the config drive's subnets from a dict, so no
other service runs. Nothing of libvirt is mocked: the driver talks to the
private libvirtd of ``tests/libvirtd.py`` (fixture ``libvirt_domains``,
which removes every domain after each test, failed or not).

That libvirtd runs in a network namespace of its own, where the guests'
taps appear; the test process (the "agent") stays in the machine's. So the
driver's ``ensure_bridge`` is given the production function bound to the
daemon's namespace (``host_network.ensure_bridge(..., netns=...)``): a
compute host runs both in the same namespace and needs no argument.

- ``test_a_server_lives_through_its_power_operations`` boots one guest on a
  bridge where dnsmasq answers (made beforehand, as the network agent
  would), with a config drive, ephemeral and swap disks, and walks it
  through spawn (twice), pause, suspend, soft reboot, power off (the
  guest's own power-button line), power on, hard reboot and destroy, checking
  ``power_states`` and the console after each;
- ``test_ami_and_iso_images`` boots an AMI by direct kernel boot on a
  network whose bridge the driver makes, and defines an ISO server;
- ``test_failed_spawns_leave_nothing`` checks the refusals and that a
  spawn failing at each stage leaves no domain, directory or cache entry;
- ``test_the_host_and_domains_that_are_not_servers``: ``host_info``, and
  domains not named ``instance-*`` are neither reported nor touched;
- ``test_snapshot_rebuild_and_resize_in_place``: a running guest's
  snapshot is a standalone qcow2 that boots, a same-host resize changes
  the domain's vCPUs, memory and disk and is reverted and confirmed, a
  rebuild keeps a preserved ephemeral disk, and a port is hot-plugged and
  unplugged.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import logging
import shutil
import subprocess
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stratus.compute import states
from stratus.compute.agent import host_network
from stratus.compute.agent.driver import DriverError
from stratus.compute.agent.libvirt_driver import LibvirtDriver
from stratus.metadata import config_drive
from stratus.network.agent.state import bridge_name, tap_name
from tests.libvirtd import Libvirtd

GATEWAY = "10.97.0.1"
GUEST_IP = "10.97.0.9"
MAC = "fa:16:3e:00:00:09"
SUBNET_ID = "5e1c0b1e-0000-4000-8000-000000000001"
USER_DATA = "#!/bin/sh\necho hello from the libvirt driver\n"


class LocalImages:
    """An ``ImageSource`` of local files; counts the fetches of each image."""

    def __init__(self) -> None:
        self.images: dict[str, tuple[Path, dict[str, Any]]] = {}
        self.fetches: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, path: Path, disk_format: str, **properties: Any) -> str:
        image_id = str(uuid.uuid4())
        image = {"id": image_id, "status": "active", "disk_format": disk_format, **properties}
        self.images[image_id] = (path, image)
        return image_id

    def fetch(self, image_id: str, dest: Path) -> dict[str, Any]:
        with self._lock:
            self.fetches[image_id] = self.fetches.get(image_id, 0) + 1
        if image_id not in self.images:
            raise DriverError(f"Image {image_id} was not found in the image service.")
        path, image = self.images[image_id]
        shutil.copyfile(path, dest)
        return dict(image)


@dataclass
class Subnets:
    """A ``SubnetSource`` from a dict; remembers what it was asked."""

    known: dict[str, dict[str, Any]]
    asked: list[list[str]] = field(default_factory=list)

    def subnets(self, subnet_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        self.asked.append(sorted(subnet_ids))
        return {i: self.known[i] for i in subnet_ids if i in self.known}


@dataclass
class Host:
    daemon: Libvirtd
    driver: LibvirtDriver
    images: LocalImages
    subnets: Subnets
    instances: Path

    def domain(self, server_id: str) -> Any:
        import libvirt

        conn = self.daemon.connect()
        try:
            return conn.lookupByUUIDString(server_id)
        except libvirt.libvirtError:
            return None
        finally:
            conn.close()

    def xml(self, server_id: str) -> ET.Element:
        domain = self.domain(server_id)
        assert domain is not None
        return ET.fromstring(domain.XMLDesc(0))

    def link(self, name: str) -> dict[str, Any] | None:
        out = self.daemon.netns_run(["ip", "-j", "-d", "addr", "show", "dev", name], check=False)
        return json.loads(out.stdout)[0] if out.returncode == 0 else None

    def console(self, server_id: str) -> str:
        return self.driver.console_tail(server_id, 1 << 20) or ""

    def wait_for(self, server_id: str, text: str, count: int = 1, timeout: float = 90) -> str:
        deadline = time.monotonic() + timeout
        console = ""
        while time.monotonic() < deadline:
            console = self.console(server_id)
            if console.count(text) >= count:
                return console
            time.sleep(0.2)
        raise AssertionError(
            f"{text!r} not {count} times on the console in {timeout:.0f} s:\n{console[-3000:]}"
        )


@pytest.fixture
def host(libvirt_domains: Libvirtd) -> Iterator[Host]:
    daemon = libvirt_domains
    instances = daemon.workdir / f"instances-{uuid.uuid4().hex[:8]}"
    images = LocalImages()
    subnets = Subnets({})
    driver = LibvirtDriver(
        "compute-test",
        uri=daemon.uri,
        instances_path=instances,
        virt_type="qemu",
        images=images,
        subnets=subnets,
        ensure_bridge=functools.partial(host_network.ensure_bridge, netns=daemon.netns),
        shutdown_timeout=30,
    )
    try:
        yield Host(daemon, driver, images, subnets, instances)
    finally:
        driver.close()
        shutil.rmtree(instances, ignore_errors=True)


@pytest.fixture
def dhcp_network(libvirt_domains: Libvirtd) -> Iterator[str]:
    """A network's bridge with dnsmasq in the daemon's namespace (the network
    agent's part): its network ID."""
    network_id = str(uuid.uuid4())
    with libvirt_domains.dhcp_bridge(bridge_name(network_id), GATEWAY, MAC, GUEST_IP):
        yield network_id


def server_document(
    image_id: str,
    *,
    ram: int = 256,
    disk: int = 0,
    ephemeral: int = 0,
    swap: int = 0,
    ports: list[dict[str, Any]] | None = None,
    config: bool = False,
    user_data: str | None = None,
    kernel_id: str = "",
    ramdisk_id: str = "",
) -> dict[str, Any]:
    """A server as the compute API gives it to its host's agent."""
    server_id = str(uuid.uuid4())
    return {
        "id": server_id,
        "instance_name": f"instance-{server_id}",
        "name": "walker",
        "hostname": "walker",
        "project_id": "0123456789abcdef0123456789abcdef",
        "user_id": "fedcba9876543210fedcba9876543210",
        "vm_state": states.BUILDING,
        "task_state": states.SPAWNING,
        "power_state": states.NOSTATE,
        "flavor": {
            "id": "f1",
            "name": "m1.test",
            "ram": ram,
            "vcpus": 1,
            "disk": disk,
            "ephemeral": ephemeral,
            "swap": swap,
            "extra_specs": {},
            "kernel_id": kernel_id,
            "ramdisk_id": ramdisk_id,
        },
        "image_id": image_id,
        "key_name": "k1",
        "key_data": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDriverTestKeyOnly test@stratus",
        "user_data": base64.b64encode(user_data.encode()).decode() if user_data else None,
        "config_drive": config,
        "availability_zone": "nova",
        "launch_index": 0,
        "reservation_id": "r-00000001",
        "metadata": {"role": "test"},
        "ports": ports or [],
    }


def port(network_id: str, mac: str, mtu: int, ip: str | None = None) -> dict[str, Any]:
    fixed = [{"ip_address": ip, "subnet_id": SUBNET_ID}] if ip else []
    return {
        "port_id": str(uuid.uuid4()),
        "network_id": network_id,
        "mac_address": mac,
        "details": {
            "network_name": "net",
            "fixed_ips": fixed,
            "mtu": mtu,
            "binding:vif_type": "bridge",
        },
    }


def disks_by_serial(xml: ET.Element) -> dict[str, ET.Element]:
    return {d.findtext("serial") or "": d for d in xml.iter("disk")}


def qemu_img_info(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        ["qemu-img", "info", "-U", "--output=json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def read_iso(path: Path, name: str) -> bytes:
    import pycdlib

    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, rr_path=name)
        return out.getvalue()
    finally:
        iso.close()


def test_a_server_lives_through_its_power_operations(
    host: Host, guest_image: Path, dhcp_network: str, caplog: pytest.LogCaptureFixture
) -> None:
    driver = host.driver
    image_id = host.images.add(guest_image / "stratus-test.qcow2", "qcow2")
    host.subnets.known[SUBNET_ID] = {
        "id": SUBNET_ID,
        "cidr": "10.97.0.0/24",
        "gateway_ip": GATEWAY,
        "enable_dhcp": True,
        "ip_version": 4,
        "dns_nameservers": [GATEWAY],
        "host_routes": [],
    }
    nic = port(dhcp_network, MAC, 1450, GUEST_IP)
    server = server_document(
        image_id, disk=1, ephemeral=1, swap=64, ports=[nic], config=True, user_data=USER_DATA
    )
    sid = server["id"]
    tap = tap_name(nic["port_id"])

    # Spawn: it boots, takes its lease and reads the config drive.
    driver.spawn(server)
    assert driver.power_states()[sid] == states.RUNNING
    console = host.wait_for(sid, "stratus-test: ready")
    assert "stratus-test: booted" in console
    assert f"stratus-test: instance-id {sid} (from the config drive /dev/sr0)" in console
    assert "stratus-test: user-data: echo hello from the libvirt driver" in console
    assert f"eth0 lease {GUEST_IP}/24" in console

    # What it was made of.
    xml = host.xml(sid)
    assert xml.get("type") == "qemu" and xml.findtext("name") == f"instance-{sid}"
    assert int(xml.findtext("memory") or 0) == 256 * 1024
    disks = disks_by_serial(xml)
    assert set(disks) == {"root", "ephemeral0", "swap", "config-2"}
    directory = host.instances / sid
    root = qemu_img_info(directory / "disk")
    assert root["virtual-size"] == 1 << 30  # grown from the image's 32 MiB
    assert root["backing-filename"] == str(host.instances / "_base" / image_id)
    assert (host.instances / "_base" / f"{image_id}.json").exists()
    assert disks["config-2"].get("device") == "cdrom"
    assert disks["config-2"].find("readonly") is not None
    assert (directory / "disk.local").stat().st_size == 1 << 30
    assert (directory / "disk.swap").stat().st_size == 64 << 20
    network_data = json.loads(
        read_iso(directory / "disk.config", "/openstack/latest/network_data.json")
    )
    assert network_data["links"][0]["id"] == tap
    assert network_data["links"][0]["mtu"] == 1450
    assert network_data["networks"][0]["type"] == "ipv4_dhcp"
    assert host.subnets.asked == [[SUBNET_ID]]  # the details did not have it
    interface = xml.find("devices/interface")
    assert interface is not None
    assert interface.find("target").get("dev") == tap  # type: ignore[union-attr]
    assert interface.find("source").get("bridge") == bridge_name(dhcp_network)  # type: ignore[union-attr]
    assert interface.find("mtu").get("size") == "1450"  # type: ignore[union-attr]
    link = host.link(tap)
    assert link is not None and link["mtu"] == 1450 and link["master"] == bridge_name(dhcp_network)

    # Spawning again is harmless: the same guest runs on, nothing is fetched again.
    driver.spawn(server)
    assert host.console(sid).count("stratus-test: booted") == 1
    assert host.images.fetches[image_id] == 1

    # Pause and unpause (twice each: idempotent).
    driver.pause(sid)
    driver.pause(sid)
    assert driver.power_states()[sid] == states.PAUSED_POWER
    driver.unpause(sid)
    driver.unpause(sid)
    assert driver.power_states()[sid] == states.RUNNING

    # Suspend to the managed save image, and resume from it (not a boot).
    driver.suspend(sid)
    driver.suspend(sid)
    assert driver.power_states()[sid] == states.SUSPENDED_POWER
    assert host.domain(sid).hasManagedSaveImage(0)
    driver.resume(server)
    assert driver.power_states()[sid] == states.RUNNING
    assert not host.domain(sid).hasManagedSaveImage(0)
    assert host.console(sid).count("stratus-test: booted") == 1

    # Soft reboot: the power button, the guest powers off, it starts again.
    with caplog.at_level(logging.INFO, logger="stratus.compute.agent"):
        driver.reboot(server, hard=False)
    assert f"server {sid} rebooted (soft)" in caplog.messages  # no fallback to hard
    console = host.wait_for(sid, "stratus-test: ready", count=2)
    assert console.count("stratus-test: power button: powering off") == 1

    # Power off: the guest hears the button and powers itself off.
    import libvirt

    driver.power_off(sid)
    assert driver.power_states()[sid] == states.SHUTDOWN
    assert host.domain(sid).state()[1] == libvirt.VIR_DOMAIN_SHUTOFF_SHUTDOWN
    assert host.console(sid).count("stratus-test: power button: powering off") == 2
    driver.power_off(sid)
    assert host.link(tap) is None

    # Power on, and a hard reboot (destroy and start: each a new boot).
    driver.power_on(server)
    assert driver.power_states()[sid] == states.RUNNING
    assert host.link(tap) is not None
    host.wait_for(sid, "stratus-test: booted", count=3)
    driver.reboot(server, hard=True)
    assert driver.power_states()[sid] == states.RUNNING
    host.wait_for(sid, "stratus-test: booted", count=4)

    # Destroy: nothing stays.
    driver.destroy(sid)
    assert sid not in driver.power_states()
    assert host.domain(sid) is None
    assert not directory.exists()
    assert host.link(tap) is None
    assert driver.console_tail(sid, 100) is None
    driver.destroy(sid)  # gone is done
    with pytest.raises(DriverError, match="has no domain"):
        driver.power_on(server)
    # The base image stays cached for the next server.
    assert (host.instances / "_base" / image_id).exists()


def test_ami_and_iso_images(host: Host, guest_image: Path, tmp_path: Path) -> None:
    driver = host.driver
    raw = tmp_path / "ami.raw"
    subprocess.run(
        ["qemu-img", "convert", "-f", "qcow2", "-O", "raw",
         str(guest_image / "stratus-test.qcow2"), str(raw)],
        check=True, capture_output=True,
    )  # fmt: skip
    kernel_id = host.images.add(guest_image / "stratus-test-vmlinuz", "aki")
    ramdisk_id = host.images.add(guest_image / "stratus-test-initrd", "ari")
    ami_id = host.images.add(raw, "ami", kernel_id=kernel_id, ramdisk_id=ramdisk_id)
    driver.prune_image_cache(0)  # what the tests before left cached, unused

    # The AMI: direct kernel boot, on a network whose bridge nobody made yet.
    network_id = str(uuid.uuid4())
    bridge = bridge_name(network_id)
    assert host.link(bridge) is None
    nic = port(network_id, "fa:16:3e:00:00:0a", 1400)
    ami = server_document(ami_id, ports=[nic], kernel_id=kernel_id, ramdisk_id=ramdisk_id)
    try:
        driver.spawn(ami)
        made = host.link(bridge)
        assert made is not None and made["mtu"] == 1400 and "UP" in made["flags"]
        assert made["linkinfo"]["info_kind"] == "bridge"
        assert not [a for a in made["addr_info"] if a["family"] == "inet"]
        assert host.link(tap_name(nic["port_id"]))["master"] == bridge  # type: ignore[index]
        console = host.wait_for(ami["id"], "stratus-test: booted")
        assert "stratus-test: booted" in console
        os_ = host.xml(ami["id"]).find("os")
        assert os_ is not None
        directory = host.instances / ami["id"]
        assert os_.findtext("kernel") == str(directory / "kernel")
        assert os_.findtext("initrd") == str(directory / "ramdisk")
        assert os_.findtext("cmdline") == "root=/dev/vda console=ttyS0"
        # A flavor disk of 0 keeps the image's size.
        assert qemu_img_info(directory / "disk")["virtual-size"] == raw.stat().st_size
        # Pruning the cache: the AMI backs the root disk and stays; the
        # kernel and ramdisk were copied, so nothing uses them. Recently
        # used images stay whatever their use.
        assert driver.prune_image_cache(3600) == []
        assert sorted(driver.prune_image_cache(0)) == sorted([kernel_id, ramdisk_id])
        assert driver.cache.lookup(ami_id) is not None
        driver.destroy(ami["id"])
        assert host.link(bridge) is not None  # the network agent's to remove

        # An ISO: a CD-ROM that boots first and a blank root disk.
        iso = config_drive.write_iso(tmp_path / "install.iso", {"README": b"an installer\n"})
        iso_id = host.images.add(iso, "iso")
        installer = server_document(iso_id, disk=1)
        driver.spawn(installer)
        assert driver.power_states()[installer["id"]] == states.RUNNING
        disks = disks_by_serial(host.xml(installer["id"]))
        assert disks["image"].get("device") == "cdrom"
        assert disks["image"].find("boot").get("order") == "1"  # type: ignore[union-attr]
        assert disks["root"].find("boot").get("order") == "2"  # type: ignore[union-attr]
        root = qemu_img_info(host.instances / installer["id"] / "disk")
        assert root["virtual-size"] == 1 << 30 and "backing-filename" not in root
        # The domain boots the ISO from the cache: it stays; the AMI's
        # server is gone, so its base goes.
        assert driver.prune_image_cache(0) == [ami_id]
        driver.destroy(installer["id"])
        assert driver.prune_image_cache(0) == [iso_id]
        assert [p.name for p in (host.instances / "_base").iterdir()] == []
    finally:
        host.daemon.netns_run(["ip", "link", "del", bridge], check=False)


def test_failed_spawns_leave_nothing(host: Host, guest_image: Path, tmp_path: Path) -> None:
    driver = host.driver

    def nothing_left(server: dict[str, Any]) -> None:
        assert host.domain(server["id"]) is None
        assert not (host.instances / server["id"]).exists()
        assert server["id"] not in driver.power_states()

    # An image qemu-img cannot read as what it claims to be.
    junk = tmp_path / "junk.vmdk"
    junk.write_bytes(b"this is not a vmdk\n" * 1000)
    junk_id = host.images.add(junk, "vmdk")
    server = server_document(junk_id)
    with pytest.raises(DriverError, match=f"Image {junk_id}"):
        driver.spawn(server)
    nothing_left(server)
    assert [p.name for p in (host.instances / "_base").iterdir()] == []

    # A qcow2 whose backing file is a file of the host's is refused.
    sneaky = tmp_path / "sneaky.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname",
         str(sneaky)],
        check=True, capture_output=True,
    )  # fmt: skip
    server = server_document(host.images.add(sneaky, "qcow2"))
    with pytest.raises(DriverError, match="backing file"):
        driver.spawn(server)
    nothing_left(server)

    # Unknown images, kernels, AMIs without a kernel.
    server = server_document(str(uuid.uuid4()))
    with pytest.raises(DriverError, match="not found"):
        driver.spawn(server)
    nothing_left(server)
    kernel = server_document(host.images.add(guest_image / "stratus-test-vmlinuz", "aki"))
    with pytest.raises(DriverError, match="not something a server boots from"):
        driver.spawn(kernel)
    nothing_left(kernel)
    ami = server_document(host.images.add(guest_image / "stratus-test.qcow2", "ami"))
    with pytest.raises(DriverError, match="without a kernel_id"):
        driver.spawn(ami)
    nothing_left(ami)

    # A failure after the domain was defined: its bridge cannot be found.
    image_id = host.images.add(guest_image / "stratus-test.qcow2", "qcow2")
    driver.ensure_bridge = lambda _name, _mtu: None  # nobody makes it
    server = server_document(image_id, ports=[port(str(uuid.uuid4()), MAC, 1500)])
    with pytest.raises(DriverError, match="cannot be started"):
        driver.spawn(server)
    nothing_left(server)

    # Operations on a server this host does not have.
    missing = str(uuid.uuid4())
    for operation in (driver.power_off, driver.pause, driver.unpause, driver.suspend):
        with pytest.raises(DriverError, match="has no domain"):
            operation(missing)
    driver.destroy(missing)
    assert driver.console_tail(missing, 10) is None


def test_the_host_and_domains_that_are_not_servers(host: Host) -> None:
    info = host.driver.host_info()
    assert info.hypervisor_type == "QEMU" and info.hypervisor_hostname == "compute-test"
    assert info.hypervisor_version >= 7_000_000  # QEMU 7.x as libvirt numbers it
    assert info.vcpus >= 1 and info.memory_mb > 256 and info.local_gb > 0
    other = str(uuid.uuid4())
    conn = host.daemon.connect()
    try:
        conn.defineXML(
            f"<domain type='qemu'><name>lab-guest</name><uuid>{other}</uuid>"
            "<memory unit='MiB'>64</memory><os><type>hvm</type></os></domain>"
        )
    finally:
        conn.close()
    assert other not in host.driver.power_states()  # not an instance-*: not the agent's
    with pytest.raises(DriverError, match="not a server's"):
        host.driver.destroy(other)
    assert host.domain(other) is not None


def _resize(server: dict[str, Any], host: str, new: dict[str, Any], dest: str = "") -> None:
    """``server`` as the API gives it to its agent during a resize to ``new``."""
    server["migration"] = {
        "id": str(uuid.uuid4()),
        "source_host": host,
        "dest_host": dest or host,
        "old_flavor": dict(server["flavor"]),
        "new_flavor": new,
        "old_vm_state": states.ACTIVE,
        "status": "migrating",
    }


def test_snapshot_rebuild_and_resize_in_place(
    host: Host, guest_image: Path, dhcp_network: str, tmp_path: Path
) -> None:
    """A running guest's snapshot is a standalone qcow2 that boots; the
    guest runs on without a reboot. A same-host resize grows the root disk
    and changes the domain's vCPUs and memory; a revert brings back the
    disk and the size from before, a confirm drops the copy. A rebuild
    makes a new root disk and keeps a preserved ephemeral disk. A port is
    hot-plugged into the running guest and unplugged again."""
    import libvirt

    driver = host.driver
    image_id = host.images.add(guest_image / "stratus-test.qcow2", "qcow2")
    server = server_document(image_id, disk=1, ephemeral=1, config=True)
    sid = server["id"]
    directory = host.instances / sid
    driver.spawn(server)
    host.wait_for(sid, "stratus-test: ready")

    # Snapshot, running: saved and restored, not rebooted.
    snapshot = tmp_path / "snapshot.qcow2"
    driver.snapshot(server, snapshot)
    info = qemu_img_info(snapshot)
    assert info["format"] == "qcow2" and "backing-filename" not in info
    assert info["virtual-size"] == 1 << 30
    assert driver.power_states()[sid] == states.RUNNING
    assert host.console(sid).count("stratus-test: booted") == 1
    assert not host.domain(sid).hasManagedSaveImage(0)
    # It boots.
    child = server_document(host.images.add(snapshot, "qcow2"), disk=1, config=True)
    driver.spawn(child)
    console = host.wait_for(child["id"], "stratus-test: ready")
    assert f"instance-id {child['id']}" in console
    driver.destroy(child["id"])

    # Resize in place: 1 -> 2 vCPUs, 256 -> 384 MiB, disk 1 -> 2 GiB.
    bigger = {
        **server["flavor"],
        "id": "f2",
        "name": "m1.bigger",
        "vcpus": 2,
        "ram": 384,
        "disk": 2,
    }
    _resize(server, "compute-test", bigger)
    with pytest.raises(DriverError, match="own host only"):
        driver.migrate_disk_and_power_off({**server, "migration": {
            **server["migration"], "dest_host": "elsewhere"}})  # fmt: skip
    driver.migrate_disk_and_power_off(server)
    assert driver.power_states()[sid] == states.SHUTDOWN
    assert (directory / "disk.resize-backup").exists()
    resized = {**server, "flavor": bigger}
    driver.finish_migration(resized)
    assert driver.power_states()[sid] == states.RUNNING
    xml = host.xml(sid)
    assert xml.findtext("vcpu") == "2" and int(xml.findtext("memory") or 0) == 384 * 1024
    assert host.domain(sid).info()[3] == 2  # the running guest's vCPUs
    assert qemu_img_info(directory / "disk")["virtual-size"] == 2 << 30
    host.wait_for(sid, "stratus-test: ready", count=2)

    # Revert: the disk and size from before.
    driver.finish_revert_migration(resized)
    xml = host.xml(sid)
    assert xml.findtext("vcpu") == "1" and int(xml.findtext("memory") or 0) == 256 * 1024
    assert qemu_img_info(directory / "disk")["virtual-size"] == 1 << 30
    assert not (directory / "disk.resize-backup").exists()
    assert driver.power_states()[sid] == states.RUNNING
    host.wait_for(sid, "stratus-test: ready", count=3)

    # Again, and confirmed.
    driver.migrate_disk_and_power_off(server)
    driver.finish_migration(resized)
    driver.confirm_migration(resized)
    assert not (directory / "disk.resize-backup").exists()
    assert host.xml(sid).findtext("vcpu") == "2"
    host.wait_for(sid, "stratus-test: ready", count=4)
    server = {**resized, "migration": None}

    # Rebuild from the snapshot, the ephemeral disk kept.
    ephemeral = directory / "disk.local"
    stamp = ephemeral.stat().st_ino, ephemeral.stat().st_mtime_ns
    steps: list[str] = []
    server.update(image_id=child["image_id"], task_args={"preserve_ephemeral": True})
    driver.rebuild(server, steps.append)
    assert steps == [states.REBUILD_SPAWNING]
    assert (ephemeral.stat().st_ino, ephemeral.stat().st_mtime_ns) == stamp
    root = qemu_img_info(directory / "disk")
    assert root["backing-filename"] == str(host.instances / "_base" / child["image_id"])
    assert root["virtual-size"] == 2 << 30
    assert driver.power_states()[sid] == states.RUNNING
    console = host.wait_for(sid, "stratus-test: ready", count=5)
    assert console.count("stratus-test: power button: powering off") >= 2

    # A port hot-plugged into the running guest, and out again.
    nic = port(dhcp_network, MAC, 1450, GUEST_IP)
    tap = tap_name(nic["port_id"])
    driver.attach_interface(server, nic)
    driver.attach_interface(server, nic)  # once only
    live = [i for i in host.xml(sid).iter("interface")]
    assert [i.find("target").get("dev") for i in live] == [tap]  # type: ignore[union-attr]
    inactive = ET.fromstring(host.domain(sid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert len(list(inactive.iter("interface"))) == 1
    assert host.link(tap) is not None
    driver.detach_interface(server, nic)
    assert list(host.xml(sid).iter("interface")) == []
    inactive = ET.fromstring(host.domain(sid).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert list(inactive.iter("interface")) == []
    assert host.link(tap) is None
    driver.destroy(sid)
    assert not directory.exists()
