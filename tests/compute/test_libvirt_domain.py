"""stratus.cloud.libvirt_domain for real, against a private libvirtd.

ansible-playbook runs the module on localhost (tests/module_runner.py) with
this virtualenv's Python, which has libvirt-python, against the private
libvirtd of ``tests/libvirtd.py`` (its own configuration, sockets, state
and network namespace). The guest is the test image (docs/test-image.md),
booted directly from its kernel and initramfs under QEMU's software
emulation (``virt_type: qemu``) in about 4 s; its serial console goes to a
file, where it says ``stratus-test: booted``, its DHCP lease (from a
dnsmasq on a bridge in the daemon's namespace, a fixed address for its MAC)
and, when the module's ``state: shutdown`` presses the ACPI power button,
``stratus-test: power button: powering off``.

Between the playbooks the tests read the truth back from libvirt, from
``ip link`` in the namespace and from the console log. Every domain is
destroyed and undefined after each test (fixture ``libvirt_domains``), the
dnsmasq and the bridge go with the test, and the disks and console logs live
in the daemon's work directory, removed with it at the end of the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.libvirtd import Libvirtd
from tests.module_runner import SYSTEM_PYTHON, module_task, results, start_playbook

MODULE = "stratus.cloud.libvirt_domain"
MAC = "fa:16:3e:00:00:07"
GATEWAY = "10.98.0.1"
GUEST_IP = "10.98.0.7"

Step = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], dict[str, Any]]


def start_steps(daemon: Libvirtd, label: str, steps: list[Step]) -> subprocess.Popen[str]:
    """Start the steps as one playbook. A step is ``(name, module args)`` or
    ``(name, args, {"check": True, "python": ...})``; every step reaches the
    private daemon unless its args say otherwise."""
    tasks = []
    for step in steps:
        name, args = step[0], step[1]
        options = {"python": sys.executable, **(step[2] if len(step) > 2 else {})}  # type: ignore[misc]
        tasks.append(module_task(name, MODULE, {"uri": daemon.uri, **args}, options))
    playbook = daemon.workdir / f"{label}-{uuid.uuid4().hex[:6]}.yml"
    return start_playbook(playbook, f"libvirt_domain: {label}", tasks)


def run_steps(daemon: Libvirtd, label: str, steps: list[Step]) -> dict[str, dict[str, Any]]:
    """Run the steps as one playbook; their results by name."""
    return results(start_steps(daemon, label, steps), timeout=240)


def wait_for(console: Path, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        log = console.read_text(errors="replace") if console.exists() else ""
        if text in log:
            return log
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not on the console within {timeout:.0f} s:\n{log[-3000:]}")


def lines(console: str) -> list[str]:
    return [line.strip() for line in console.splitlines() if line.startswith("stratus-test:")]


def domain_xml(daemon: Libvirtd, name: str) -> str | None:
    import libvirt

    conn = daemon.connect()
    try:
        return str(conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    except libvirt.libvirtError:
        return None
    finally:
        conn.close()


def domain_active(daemon: Libvirtd, name: str) -> bool:
    conn = daemon.connect()
    try:
        return bool(conn.lookupByName(name).isActive())
    finally:
        conn.close()


def memory_kib(xml: str | None) -> int:
    import xml.etree.ElementTree as ET

    assert xml is not None
    return int(ET.fromstring(xml).findtext("memory") or 0)


def config_drive(path: Path, instance: str, name: str) -> Path:
    """A qcow2 config drive (VFAT labelled config-2) that the test image reads
    at boot, so that it does not wait for a metadata service."""
    raw = path.with_suffix(".vfat")
    with raw.open("wb") as handle:
        handle.truncate(4 << 20)
    source = path.with_suffix(".d")
    (source / "openstack" / "latest").mkdir(parents=True)
    meta = {"uuid": instance, "name": name}
    (source / "openstack" / "latest" / "meta_data.json").write_text(json.dumps(meta))
    for argv in (
        ["mkfs.vfat", "-n", "config-2", str(raw)],
        ["mcopy", "-s", "-i", str(raw), str(source / "openstack"), "::"],
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(path)],
    ):
        subprocess.run(argv, capture_output=True, check=True, timeout=60)
    raw.unlink()
    return path


@dataclass
class Network:
    bridge: str
    dnsmasq: subprocess.Popen[str]


@pytest.fixture
def network(libvirt_domains: Libvirtd) -> Iterator[Network]:
    """A bridge in the daemon's namespace and a dnsmasq that gives MAC its address."""
    bridge = f"br-{uuid.uuid4().hex[:8]}"
    with libvirt_domains.dhcp_bridge(bridge, GATEWAY, MAC, GUEST_IP) as dnsmasq:
        yield Network(bridge, dnsmasq)


def test_a_described_guest_boots_and_powers_off_by_acpi(
    libvirt_domains: Libvirtd, guest_image: Path, network: Network
) -> None:
    daemon = libvirt_domains
    name = f"stratus-t-{uuid.uuid4().hex[:8]}"
    tap = f"tap-{name[-8:]}"
    console = daemon.workdir / f"{name}.console"
    instance = str(uuid.uuid4())
    disk = config_drive(daemon.workdir / f"{name}-config.qcow2", instance, name)
    description = {
        "uuid": instance,
        "memory_mib": 256,
        "virt_type": "qemu",
        "kernel": str(guest_image / "stratus-test-vmlinuz"),
        "initrd": str(guest_image / "stratus-test-initrd"),
        "cmdline": "console=ttyS0",
        "disks": [{"path": str(disk), "format": "qcow2", "serial": "config-7"}],
        "interfaces": [{"source": network.bridge, "mac": MAC, "target": tap}],
        "serial_log": str(console),
    }
    bigger = {**description, "memory_mib": 320}
    check = {"check": True}
    present = {"name": name, "description": description}
    running = {**present, "state": "running"}

    up = run_steps(
        daemon,
        "up",
        [
            ("define (check)", present, check),
            ("define", present),
            ("define again", present),
            ("start (check)", running, check),
            ("start", running),
            ("start again", running),
            ("resize (check)", {"name": name, "description": bigger}, check),
        ],
    )
    assert up["define (check)"]["changed"] and up["define (check)"]["actions"] == ["defined"]
    assert up["define (check)"]["diff"]["before"] == ""
    assert '<memory unit="MiB">256</memory>' in up["define (check)"]["diff"]["after"]
    # Nothing was defined in check mode: the real run defines it.
    assert up["define"]["changed"] and up["define"]["actions"] == ["defined"]
    assert up["define"]["state"] == "shut off" and not up["define"]["active"]
    assert up["define again"]["changed"] is False, up["define again"]
    assert up["define again"]["differences"] == []
    assert up["start (check)"]["changed"] and up["start (check)"]["state"] == "running"
    assert up["start"]["actions"] == ["started"] and up["start"]["state"] == "running"
    assert up["start again"]["changed"] is False, up["start again"]
    assert up["define"]["uuid"] == up["start"]["uuid"] == instance
    resize = up["resize (check)"]
    assert resize["changed"] and resize["actions"] == ["redefined"]
    assert resize["differences"] == ['<memory unit="KiB">327680</memory>']
    assert resize["needs_restart"] is True

    log = wait_for(console, "stratus-test: ready")
    import shutil

    shutil.copy(console, "/tmp/lvdebug.console")
    said = lines(log)
    assert said[0].startswith("stratus-test: booted ")
    assert any(f"eth0 lease {GUEST_IP}/24" in line for line in said), said
    # The qcow2 disk is there: the guest read its metadata from it.
    assert f"stratus-test: instance-id {instance} (from the config drive /dev/vda)" in said
    assert f"stratus-test: name {name}" in said
    link = json.loads(daemon.netns_run(["ip", "-j", "link", "show", "dev", tap]).stdout)
    assert link[0]["master"] == network.bridge
    xml = domain_xml(daemon, name)
    assert memory_kib(xml) == 256 * 1024  # check mode changed nothing
    assert xml is not None and "<serial>config-7</serial>" in xml and MAC in xml

    down = run_steps(
        daemon,
        "down",
        [
            ("shut down (check)", {"name": name, "state": "shutdown"}, check),
            ("shut down", {"name": name, "state": "shutdown", "shutdown_timeout": 60}),
            ("shut down again", {"name": name, "state": "shutdown"}),
            ("resize", {"name": name, "description": bigger}),
            ("resize again", {"name": name, "description": bigger}),
            ("remove (check)", {"name": name, "state": "absent"}, check),
            ("remove", {"name": name, "state": "absent"}),
            ("remove again", {"name": name, "state": "absent"}),
        ],
    )
    assert down["shut down (check)"]["changed"] and down["shut down (check)"]["state"] == "shut off"
    # Still running after the check: the real run presses the button.
    assert down["shut down"]["actions"] == ["shutdown"], down["shut down"]
    assert down["shut down"]["state"] == "shut off"
    assert "# state: running" in down["shut down"]["diff"]["before"]
    assert "# state: shut off" in down["shut down"]["diff"]["after"]
    assert down["shut down again"]["changed"] is False
    assert "stratus-test: power button: powering off" in console.read_text(errors="replace")

    resized = down["resize"]
    assert resized["actions"] == ["redefined"] and resized["needs_restart"] is False
    assert '<memory unit="KiB">262144</memory>' in resized["diff"]["before"]
    assert '<memory unit="KiB">327680</memory>' in resized["diff"]["after"]
    assert resized["uuid"] == instance
    assert MAC in resized["xml"]
    assert down["resize again"]["changed"] is False, down["resize again"]

    assert down["remove (check)"]["changed"] and down["remove (check)"]["state"] == "absent"
    assert down["remove"]["actions"] == ["undefined"] and down["remove"]["state"] == "absent"
    assert down["remove"]["diff"]["after"] == ""
    assert down["remove again"]["changed"] is False
    assert domain_xml(daemon, name) is None
    assert disk.exists()  # the module leaves disks alone


def test_xml_domains_drift_force_and_refusals(libvirt_domains: Libvirtd) -> None:
    daemon = libvirt_domains
    name = f"stratus-x-{uuid.uuid4().hex[:8]}"
    console = daemon.workdir / f"{name}.console"

    # No disk, no kernel: the firmware finds nothing to boot and waits,
    # nearly idle, leaving the CPU to Ansible.
    def domain(vcpus: int) -> str:
        return f"""
        <domain type='qemu'>
          <name>{name}</name>
          <memory unit='MiB'>192</memory>
          <vcpu>{vcpus}</vcpu>
          <os>
            <type arch='x86_64' machine='pc'>hvm</type>
            <boot dev='hd'/>
          </os>
          <features><acpi/></features>
          <devices>
            <serial type='file'><source path='{console}'/><target port='0'/></serial>
          </devices>
        </domain>"""

    one, two = domain(1), domain(2)
    described = {"memory_mib": 64, "virt_type": "qemu"}
    cdrom = {"path": "/x.iso", "device": "cdrom", "bus": "virtio"}
    cdrom_on_virtio = {**described, "disks": [cdrom]}
    missing = f"stratus-none-{uuid.uuid4().hex[:6]}"
    system_has_libvirt = (
        subprocess.run([SYSTEM_PYTHON, "-c", "import libvirt"], capture_output=True).returncode == 0
    )
    # The refusals run beside the domain's own steps (Ansible's cost per task dominates).
    refusals = start_steps(
        daemon,
        "refusals",
        [
            ("both", {"name": name, "xml": one, "description": described}),
            ("not xml", {"name": name, "xml": "<domain type='qemu'><name>"}),
            ("another name", {"name": name, "xml": one.replace(name, "other", 1)}),
            ("refused by libvirt", {"name": missing, "xml": "<domain type='qemu'/>"}),
            ("not defined", {"name": missing, "state": "running"}),
            ("no such socket", {"name": name, "uri": "qemu:///system?socket=/nonexistent/sock"}),
            ("cdrom on virtio", {"name": missing, "description": cdrom_on_virtio}),
            ("no binding", {"name": name}, {"python": SYSTEM_PYTHON}),
        ],
    )
    try:
        first = run_steps(
            daemon,
            "xml",
            [
                ("define and start", {"name": name, "xml": one, "state": "running"}),
                ("again", {"name": name, "xml": one, "state": "running", "autostart": False}),
                ("two vcpus while running", {"name": name, "xml": two}),
                ("pull the plug", {"name": name, "state": "shutdown", "force": True}),
            ],
        )
    except BaseException:
        refusals.kill()
        refusals.communicate()
        raise
    refused_steps = results(refusals, timeout=240)
    started = first["define and start"]
    assert started["actions"] == ["defined", "started"] and started["state"] == "running"
    assert "machine='pc-i440fx-" in started["xml"]
    assert first["again"]["changed"] is False, first["again"]
    assert first["again"]["differences"] == []  # machine 'pc' is libvirt's pc-i440fx-7.2
    assert first["again"]["autostart"] is False
    change = first["two vcpus while running"]
    assert change["actions"] == ["redefined"] and change["needs_restart"] is True
    assert any("takes effect when it is next started" in w for w in change.get("warnings", []))
    assert change["differences"] == ["<vcpu>2</vcpu>"]
    assert change["state"] == "running"
    plug = first["pull the plug"]
    assert plug["actions"] == ["destroyed"] and plug["state"] == "shut off"

    def refused(step: str) -> str:
        assert refused_steps[step].get("failed"), refused_steps[step]
        return str(refused_steps[step]["msg"])

    assert "mutually exclusive: xml|description" in refused("both")
    assert "xml: not well-formed XML" in refused("not xml")
    assert f"its <name> is 'other', not '{name}'" in refused("another name")
    assert f"cannot define domain '{missing}'" in refused("refused by libvirt")
    assert f"domain '{missing}' is not defined: give xml or description" in refused("not defined")
    assert "cannot connect to libvirt at qemu:///system?socket=/nonexistent/sock" in refused(
        "no such socket"
    )
    assert "a cdrom cannot be on the virtio bus" in refused("cdrom on virtio")
    if not system_has_libvirt:
        assert "python3-libvirt" in refused("no binding")

    # Behind the module's back: less memory, and an autostart.
    import libvirt

    conn = daemon.connect()
    try:
        current = conn.lookupByName(name).XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        conn.defineXML(current.replace(">196608</memory>", ">131072</memory>", 1))
    finally:
        conn.close()
    assert memory_kib(domain_xml(daemon, name)) == 131072

    second = run_steps(
        daemon,
        "drift",
        [
            ("drift (check)", {"name": name, "xml": two}, {"check": True}),
            ("restore", {"name": name, "xml": two, "autostart": True}),
            ("restored", {"name": name, "xml": two, "autostart": True}),
            ("remove", {"name": name, "state": "absent"}),
        ],
    )
    assert second["drift (check)"]["differences"] == ['<memory unit="KiB">196608</memory>']
    assert second["drift (check)"]["changed"]
    restore = second["restore"]
    assert restore["actions"] == ["redefined", "autostart"] and restore["autostart"] is True
    assert second["restored"]["changed"] is False, second["restored"]
    assert second["remove"]["actions"] == ["undefined"]
    assert domain_xml(daemon, name) is None
