"""The libvirt driver's domain XML and its pure parts, without a libvirtd.

The XML of ``domain_xml.build`` is checked element by element, and against
libvirt's own RelaxNG schema with ``virt-xml-validate`` where it and
``xmllint`` are installed (Debian packages libvirt-clients, libxml2-utils);
tests/compute/test_libvirt_driver.py has a real libvirtd define it. The
driver's configuration, power state mapping and the subnets it completes a
config drive with are checked on a driver that never connects.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from stratus.compute import states
from stratus.compute.agent.domain_xml import (
    NAMESPACE,
    Disk,
    DomainSpec,
    DomainSpecError,
    Interface,
    KernelBoot,
    build,
)

SERVER = "0b5e3d3c-6f3e-4c4b-9a55-6d1f2f3a4b5c"
BASE = DomainSpec(
    name=f"instance-{SERVER}",
    uuid=SERVER,
    virt_type="qemu",
    memory_mib=512,
    vcpus=2,
    console_log=f"/srv/instances/{SERVER}/console.log",
    disks=(
        Disk(f"/srv/instances/{SERVER}/disk", "root", boot_order=1),
        Disk(f"/srv/instances/{SERVER}/disk.local", "ephemeral0", "raw", cache="writeback"),
        Disk(f"/srv/instances/{SERVER}/disk.config", "config-2", "raw", "cdrom", True),
    ),
    interfaces=(
        Interface("brq8a1c3f0e-2b", "tap3b9f1f6e-8d", "FA:16:3E:00:00:05", 1450),
        Interface("brqb2c3d4e5-f6", "tap9c8b7a6f-5e", "fa:16:3e:00:00:06"),
    ),
    labels={"name": "web-1", "project": "p1", "flavor": "m1.small", "image": "i1"},
)


def parse(spec: DomainSpec) -> ET.Element:
    return ET.fromstring(build(spec))


def test_the_domain_of_a_server() -> None:
    domain = parse(BASE)
    assert domain.get("type") == "qemu"
    assert domain.findtext("name") == f"instance-{SERVER}"
    assert domain.findtext("uuid") == SERVER
    memory = domain.find("memory")
    assert memory is not None and memory.text == "512" and memory.get("unit") == "MiB"
    assert domain.findtext("vcpu") == "2"
    assert domain.find("os/kernel") is None and domain.findtext("os/type") == "hvm"
    assert domain.find("features/acpi") is not None  # the power button
    assert domain.find("cpu") is None  # QEMU's default model under TCG
    assert domain.findtext("on_poweroff") == "destroy"
    labels = domain.find(f"metadata/{{{NAMESPACE}}}instance")
    assert labels is not None
    assert {child.tag.split("}")[1]: child.text for child in labels} == BASE.labels


def test_disks_are_numbered_per_bus_and_named_by_serial() -> None:
    disks = parse(BASE).findall("devices/disk")
    seen = [
        (
            d.findtext("serial"),
            d.get("device"),
            d.find("target").get("dev"),  # type: ignore[union-attr]
            d.find("target").get("bus"),  # type: ignore[union-attr]
            d.find("driver").get("type"),  # type: ignore[union-attr]
        )
        for d in disks
    ]
    assert seen == [
        ("root", "disk", "vda", "virtio", "qcow2"),
        ("ephemeral0", "disk", "vdb", "virtio", "raw"),
        ("config-2", "cdrom", "hda", "ide", "raw"),
    ]
    root, ephemeral, config = disks
    assert root.find("driver").get("cache") == "none"  # type: ignore[union-attr]
    assert ephemeral.find("driver").get("cache") == "writeback"  # type: ignore[union-attr]
    assert root.find("boot").get("order") == "1"  # type: ignore[union-attr]
    assert ephemeral.find("boot") is None
    assert config.find("readonly") is not None and root.find("readonly") is None
    assert config.find("source").get("file").endswith("/disk.config")  # type: ignore[union-attr]


def test_interfaces_on_bridges_with_their_taps() -> None:
    first, second = parse(BASE).findall("devices/interface")
    assert first.get("type") == "bridge"
    assert first.find("mac").get("address") == "fa:16:3e:00:00:05"  # type: ignore[union-attr]
    assert first.find("source").get("bridge") == "brq8a1c3f0e-2b"  # type: ignore[union-attr]
    assert first.find("target").get("dev") == "tap3b9f1f6e-8d"  # type: ignore[union-attr]
    assert first.find("model").get("type") == "virtio"  # type: ignore[union-attr]
    assert first.find("mtu").get("size") == "1450"  # type: ignore[union-attr]
    assert second.find("mtu") is None


def test_the_console_is_a_pty_logged_to_a_file() -> None:
    serial = parse(BASE).find("devices/serial")
    assert serial is not None and serial.get("type") == "pty"
    log = serial.find("log")
    assert log is not None and log.get("file") == BASE.console_log and log.get("append") == "on"
    assert serial.find("target").get("port") == "0"  # type: ignore[union-attr]


def test_direct_kernel_boot_and_cpu_mode() -> None:
    spec = DomainSpec(
        **{
            **BASE.__dict__,
            "virt_type": "kvm",
            "cpu_mode": "host-model",
            "kernel_boot": KernelBoot("/k/kernel", "/k/ramdisk", "root=/dev/vda console=ttyS0"),
        }
    )
    domain = parse(spec)
    assert domain.get("type") == "kvm"
    assert domain.find("cpu").get("mode") == "host-model"  # type: ignore[union-attr]
    assert domain.findtext("os/kernel") == "/k/kernel"
    assert domain.findtext("os/initrd") == "/k/ramdisk"
    assert domain.findtext("os/cmdline") == "root=/dev/vda console=ttyS0"
    # Direct kernel boot needs no boot order (libvirt refuses both together).
    assert not domain.findall("devices/disk/boot")
    no_ramdisk = DomainSpec(**{**spec.__dict__, "kernel_boot": KernelBoot("/k", None, "x")})
    assert parse(no_ramdisk).find("os/initrd") is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"uuid": "not-a-uuid"}, "not a UUID"),
        ({"virt_type": "xen"}, "virt_type"),
        ({"memory_mib": 0}, "at least 1 MiB"),
        ({"cpu_mode": "custom"}, "cpu_mode"),
        ({"disks": (Disk("relative/disk", "root"),)}, "absolute"),
        ({"disks": (Disk("/d1", "root"), Disk("/d2", "root"))}, "used twice"),
        ({"disks": (Disk("/d1", "a serial with spaces"),)}, "serial"),
        ({"disks": (Disk("/d1", "x" * 21),)}, "serial"),
        ({"disks": (Disk("/d1", "root", device="floppy"),)}, "floppy"),
        ({"interfaces": (Interface("br0", "tap0", "not-a-mac"),)}, "unicast MAC"),
        ({"interfaces": (Interface("br0", "tap0", "01:00:5e:00:00:01"),)}, "unicast MAC"),
        ({"interfaces": (Interface("br0", "t" * 16, "fa:16:3e:00:00:01"),)}, "interface name"),
        ({"interfaces": (Interface("br0", "tap0", "fa:16:3e:00:00:01", 20),)}, "below 68"),
        (
            {
                "interfaces": (
                    Interface("br0", "tap0", "fa:16:3e:00:00:01"),
                    Interface("br1", "tap0", "fa:16:3e:00:00:02"),
                )
            },
            "tap name is used twice",
        ),
    ],
)
def test_refusals(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(DomainSpecError, match=message):
        build(DomainSpec(**{**BASE.__dict__, **changes}))


@pytest.mark.skipif(
    shutil.which("virt-xml-validate") is None or shutil.which("xmllint") is None,
    reason="needs virt-xml-validate (libvirt-clients) and xmllint (libxml2-utils)",
)
@pytest.mark.parametrize("kernel", [False, True])
def test_libvirt_schema_accepts_the_xml(tmp_path: Path, kernel: bool) -> None:
    spec = BASE
    if kernel:
        spec = DomainSpec(**{**BASE.__dict__, "kernel_boot": KernelBoot("/k", "/r", "ro")})
    path = tmp_path / "domain.xml"
    path.write_text(build(spec))
    result = subprocess.run(
        ["virt-xml-validate", str(path), "domain"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the driver's pure parts (it never connects here) ----------------------------------


libvirt = pytest.importorskip("libvirt")


def driver(tmp_path: Path, **kwargs: Any) -> Any:
    from stratus.compute.agent.libvirt_driver import LibvirtDriver

    class NoImages:
        def fetch(self, image_id: str, dest: Path) -> dict[str, Any]:
            raise AssertionError("no fetch expected")

    options: dict[str, Any] = {
        "uri": "qemu:///nowhere",
        "instances_path": tmp_path,
        "virt_type": "qemu",
        "images": NoImages(),
        **kwargs,
    }
    return LibvirtDriver("h1", **options)


def test_cpu_mode_follows_virt_type(tmp_path: Path) -> None:
    assert driver(tmp_path, virt_type="kvm").cpu_mode == "host-model"
    assert driver(tmp_path, virt_type="qemu").cpu_mode is None
    assert driver(tmp_path, virt_type="kvm", cpu_mode="none").cpu_mode is None
    passthrough = driver(tmp_path, virt_type="qemu", cpu_mode="host-passthrough")
    assert passthrough.cpu_mode == "host-passthrough"
    with pytest.raises(ValueError, match="virt_type"):
        driver(tmp_path, virt_type="xen")


def test_from_config(tmp_path: Path) -> None:
    from stratus.common.config import Config
    from stratus.compute.agent import settings
    from stratus.compute.agent.apis import ImageApi, NetworkApi
    from stratus.compute.agent.libvirt_driver import LibvirtDriver

    (tmp_path / "stratus.conf").write_text(
        f"[{settings.SECTION}]\n"
        "libvirt_uri = qemu+ssh://elsewhere/system\n"
        "virt_type = qemu\n"
        f"instances_path = {tmp_path / 'instances'}\n"
        "shutdown_timeout = 5\n"
        "image_api_url = http://images.example:9292\n"
        f"[{settings.AUTHTOKEN_SECTION}]\n"
        "username = compute\npassword = secret\n"
    )
    made = LibvirtDriver.from_config(Config(tmp_path / "stratus.conf"), "h1")
    try:
        assert made.uri == "qemu+ssh://elsewhere/system"
        assert made.virt_type == "qemu" and made.cpu_mode is None
        assert made.shutdown_timeout == 5.0
        assert made.cache.base_dir == tmp_path / "instances" / "_base"
        assert isinstance(made.cache.source, ImageApi)
        assert isinstance(made.subnets, NetworkApi)
        image_client = made.cache.source.client
        assert image_client.api_url == "http://images.example:9292"
        assert made.subnets.client.login is image_client.login  # one token for both
    finally:
        made.cache.source.client.close()


def test_power_states_follow_nova() -> None:
    from stratus.compute.agent.libvirt_driver import POWER

    assert POWER[libvirt.VIR_DOMAIN_RUNNING] == states.RUNNING
    assert POWER[libvirt.VIR_DOMAIN_BLOCKED] == states.RUNNING
    assert POWER[libvirt.VIR_DOMAIN_PAUSED] == states.PAUSED_POWER
    assert POWER[libvirt.VIR_DOMAIN_SHUTOFF] == states.SHUTDOWN
    assert POWER[libvirt.VIR_DOMAIN_CRASHED] == states.CRASHED
    assert POWER[libvirt.VIR_DOMAIN_NOSTATE] == states.NOSTATE


def test_subnets_missing_from_the_details_are_read(tmp_path: Path) -> None:
    from stratus.compute.agent.libvirt_driver import missing_subnets

    known = {"id": "s1", "cidr": "10.0.0.0/24", "gateway_ip": "10.0.0.1", "ip_version": 4}
    asked: list[list[str]] = []

    class Subnets:
        def subnets(self, ids: Any) -> dict[str, dict[str, Any]]:
            asked.append(sorted(ids))
            return {"s2": {"id": "s2", "cidr": "10.0.1.0/24", "ip_version": 4}}

    server = {
        "id": str(uuid.uuid4()),
        "ports": [
            {
                "port_id": "p1",
                "network_id": "n1",
                "mac_address": "fa:16:3e:00:00:01",
                "details": {
                    "fixed_ips": [
                        {"ip_address": "10.0.0.5", "subnet_id": "s1"},
                        {"ip_address": "10.0.1.5", "subnet_id": "s2"},
                    ],
                    "subnets": {"s1": known},
                },
            }
        ],
    }
    assert missing_subnets(server) == ["s2"]
    completed = driver(tmp_path, subnets=Subnets())._with_subnets(server)
    assert asked == [["s2"]]
    assert set(completed["ports"][0]["details"]["subnets"]) == {"s1", "s2"}
    assert "s2" not in server["ports"][0]["details"]["subnets"]  # the caller's is untouched
    assert missing_subnets(completed) == []
    # Complete details: the network API is not asked.
    driver(tmp_path, subnets=Subnets())._with_subnets(completed)
    assert asked == [["s2"]]


def test_a_domain_resized_and_a_nic_to_hot_plug() -> None:
    from stratus.compute.agent.domain_xml import interface, resized

    spec = BASE.__class__(**{**BASE.__dict__, "labels": {"flavor": "m1.small"}})
    xml = build(spec)
    # What libvirt gives back: memory in KiB, currentMemory beside it.
    domain = ET.fromstring(xml)
    memory = domain.find("memory")
    assert memory is not None
    memory.set("unit", "KiB")
    memory.text = str(512 * 1024)
    current = ET.SubElement(domain, "currentMemory", unit="KiB")
    current.text = str(512 * 1024)
    changed = ET.fromstring(resized(ET.tostring(domain, encoding="unicode"), 1024, 4, "m1.big"))
    assert changed.findtext("vcpu") == "4"
    for tag in ("memory", "currentMemory"):
        element = changed.find(tag)
        assert element is not None and element.get("unit") == "MiB" and element.text == "1024"
    assert changed.findtext(f"metadata/{{{NAMESPACE}}}instance/{{{NAMESPACE}}}flavor") == "m1.big"
    assert len(list(changed.iter("disk"))) == len(list(domain.iter("disk")))
    with pytest.raises(DomainSpecError):
        resized(xml, 0, 1)

    nic = ET.fromstring(
        interface(Interface("brq0123456789a", "tap0123456789a", "FA:16:3E:00:00:01", 1450))
    )
    assert nic.tag == "interface" and nic.get("type") == "bridge"
    assert nic.find("mac").get("address") == "fa:16:3e:00:00:01"  # type: ignore[union-attr]
    assert nic.find("target").get("dev") == "tap0123456789a"  # type: ignore[union-attr]
    with pytest.raises(DomainSpecError, match="unicast"):
        interface(Interface("brq0123456789a", "tap0123456789a", "01:16:3e:00:00:01"))


def test_the_fake_driver_s_snapshot_is_a_valid_qcow2(tmp_path: Path) -> None:
    from stratus.compute.agent.fake import empty_qcow2

    path = tmp_path / "empty.qcow2"
    path.write_bytes(empty_qcow2(3 << 30))
    if shutil.which("qemu-img") is None:
        pytest.skip("qemu-img is not installed (Debian package qemu-utils)")
    subprocess.run(["qemu-img", "check", "-f", "qcow2", str(path)], check=True, capture_output=True)
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", "-f", "qcow2", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    import json

    described = json.loads(info.stdout)
    assert described["virtual-size"] == 3 << 30 and "backing-filename" not in described
