"""The libvirt domain XML of a server, from a plain description of it.

``DomainSpec`` says what the guest has (memory, vCPUs, disks, NICs, how it
boots, where its console goes) in the compute agent's terms; ``build``
turns it into the XML libvirt defines (https://libvirt.org/formatdomain.html).
Nothing here talks to libvirt or touches a file, so the XML is tested on
its own (tests/unit/test_libvirt_driver_xml.py).

What every server gets:

- ``<domain type=virt_type>``: ``kvm`` on datacenter hosts, ``qemu``
  (software emulation) where KVM cannot run: a setting, the same XML;
- name ``instance-<uuid>`` and the server's UUID, so that libvirt and the
  agent agree on who is who; a ``<metadata>`` block in Stratus's namespace
  with the server's name, project, flavor and image, for operators who
  ``virsh dumpxml``;
- ACPI (the power button that stop and soft reboot press), APIC, a UTC
  clock with the timer policies guests keep good time with;
- disks on virtio (``vda``, ``vdb``...), CD-ROMs on IDE (``hda``...), every
  one with a ``<serial>`` naming its role (``root``, ``ephemeral0``,
  ``swap``, ``config-2``, ``image``): guests number disks in the order they
  find them, not by libvirt's target names, so the serial is what tells
  them apart (``/dev/disk/by-id/virtio-root``);
- NICs on Linux bridges, with the tap name the network agent looks for,
  the port's MAC and MTU, model virtio;
- the first serial port as a pty (``virsh console``) whose output is also
  appended to the console log file (``openstack console log show``); the
  kernel's ``console=ttyS0`` writes there;
- a virtio RNG fed from the host's ``/dev/urandom`` (guests that wait for
  entropy at boot, cloud-init's SSH keys, do not stall).

Shared with ``plugins/module_utils/libvirt_domain.py`` in spirit only: the
Ansible module runs with the host's Python and cannot import the services'
package, and the agent must not import from plugins/. Should more of this
be needed there, a small module both could vendor would be the way.
"""

from __future__ import annotations

import re
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass, field

NAMESPACE = "urn:stratus:compute:1"
ET.register_namespace("stratus", NAMESPACE)

VIRT_TYPES = ("kvm", "qemu")
CPU_MODES = ("host-model", "host-passthrough")
IFNAMSIZ = 16  # with the NUL: names have up to 15 characters
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
SERIAL_RE = re.compile(r"^[A-Za-z0-9_.+-]{1,20}$")  # virtio-blk keeps 20 characters


class DomainSpecError(ValueError):
    """The description cannot be a domain (a bug above, or bad data from the API)."""


@dataclass(frozen=True)
class Disk:
    """A disk or CD-ROM: an image file, its format and its role (``serial``)."""

    path: str
    serial: str
    format: str = "qcow2"
    device: str = "disk"  # or "cdrom"
    readonly: bool = False
    cache: str = "none"
    boot_order: int | None = None


@dataclass(frozen=True)
class Interface:
    """A NIC on a Linux bridge: ``tap`` is the host side's name."""

    bridge: str
    tap: str
    mac: str
    mtu: int | None = None
    model: str = "virtio"


@dataclass(frozen=True)
class KernelBoot:
    """Direct kernel boot (an AMI's AKI kernel and ARI ramdisk)."""

    kernel: str
    initrd: str | None
    cmdline: str


@dataclass(frozen=True)
class DomainSpec:
    """Everything the XML says about one server."""

    name: str
    uuid: str
    virt_type: str
    memory_mib: int
    vcpus: int
    console_log: str
    disks: tuple[Disk, ...] = ()
    interfaces: tuple[Interface, ...] = ()
    kernel_boot: KernelBoot | None = None
    cpu_mode: str | None = None  # None: the hypervisor's default model
    labels: Mapping[str, str] = field(default_factory=dict)  # metadata for operators


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa: the suffix of a disk's target name."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("a") + rest) + name
    return name


def _check_interface(nic: Interface) -> None:
    if not MAC_RE.match(nic.mac) or int(nic.mac[:2], 16) & 1:
        raise DomainSpecError(f"{nic.mac!r} is not a unicast MAC address")
    for name in (nic.tap, nic.bridge):
        if not name or len(name) >= IFNAMSIZ or any(c in name for c in "/: \t"):
            raise DomainSpecError(f"{name!r} is not an interface name")
    if nic.mtu is not None and nic.mtu < 68:
        raise DomainSpecError(f"MTU {nic.mtu} of {nic.tap} is below 68")


def _check(spec: DomainSpec) -> None:
    if spec.virt_type not in VIRT_TYPES:
        raise DomainSpecError(f"virt_type {spec.virt_type!r} is not one of {VIRT_TYPES}")
    try:
        uuidlib.UUID(spec.uuid)
    except ValueError:
        raise DomainSpecError(f"{spec.uuid!r} is not a UUID") from None
    if spec.memory_mib < 1 or spec.vcpus < 1:
        raise DomainSpecError("a guest needs at least 1 MiB of memory and 1 vCPU")
    if spec.cpu_mode is not None and spec.cpu_mode not in CPU_MODES:
        raise DomainSpecError(f"cpu_mode {spec.cpu_mode!r} is not one of {CPU_MODES}")
    for disk in spec.disks:
        if not disk.path.startswith("/"):
            raise DomainSpecError(f"disk {disk.serial}: {disk.path!r} is not an absolute path")
        if not SERIAL_RE.match(disk.serial):
            raise DomainSpecError(f"disk serial {disk.serial!r}: 1-20 of A-Z a-z 0-9 _ . + -")
        if disk.device not in ("disk", "cdrom"):
            raise DomainSpecError(f"disk {disk.serial}: device {disk.device!r}")
    serials = [d.serial for d in spec.disks]
    if len(serials) != len(set(serials)):
        raise DomainSpecError(f"a disk serial is used twice: {serials}")
    for nic in spec.interfaces:
        _check_interface(nic)
    taps = [nic.tap for nic in spec.interfaces]
    if len(taps) != len(set(taps)):
        raise DomainSpecError(f"a tap name is used twice: {taps}")


def build_element(spec: DomainSpec) -> ET.Element:
    """The ``<domain>`` element of ``spec`` (``DomainSpecError`` if it cannot be one)."""
    _check(spec)
    domain = ET.Element("domain", type=spec.virt_type)
    _sub(domain, "name", spec.name)
    _sub(domain, "uuid", str(uuidlib.UUID(spec.uuid)))
    if spec.labels:
        metadata = _sub(domain, "metadata")
        instance = _sub(metadata, f"{{{NAMESPACE}}}instance")
        for key, value in sorted(spec.labels.items()):
            _sub(instance, f"{{{NAMESPACE}}}{key}", value)
    _sub(domain, "memory", str(spec.memory_mib), unit="MiB")
    _sub(domain, "vcpu", str(spec.vcpus))

    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm")
    if spec.kernel_boot is not None:
        _sub(os_, "kernel", spec.kernel_boot.kernel)
        if spec.kernel_boot.initrd:
            _sub(os_, "initrd", spec.kernel_boot.initrd)
        _sub(os_, "cmdline", spec.kernel_boot.cmdline)

    features = _sub(domain, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if spec.cpu_mode is not None:
        _sub(domain, "cpu", mode=spec.cpu_mode)
    clock = _sub(domain, "clock", offset="utc")
    _sub(clock, "timer", name="pit", tickpolicy="delay")
    _sub(clock, "timer", name="rtc", tickpolicy="catchup")
    _sub(clock, "timer", name="hpet", present="no")
    _sub(domain, "on_poweroff", "destroy")
    _sub(domain, "on_reboot", "restart")
    _sub(domain, "on_crash", "destroy")

    devices = _sub(domain, "devices")
    counts = {"vd": 0, "hd": 0}
    for disk in spec.disks:
        cdrom = disk.device == "cdrom"
        prefix, bus = ("hd", "ide") if cdrom else ("vd", "virtio")
        target = f"{prefix}{_letters(counts[prefix])}"
        counts[prefix] += 1
        element = _sub(devices, "disk", type="file", device=disk.device)
        driver = {"name": "qemu", "type": disk.format}
        if not cdrom:
            driver["cache"] = disk.cache
            driver["discard"] = "unmap"
        _sub(element, "driver", **driver)
        _sub(element, "source", file=disk.path)
        _sub(element, "target", dev=target, bus=bus)
        if disk.readonly or cdrom:
            _sub(element, "readonly")
        _sub(element, "serial", disk.serial)
        if disk.boot_order is not None and spec.kernel_boot is None:
            _sub(element, "boot", order=str(disk.boot_order))
    for nic in spec.interfaces:
        _interface(devices, nic)
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "log", file=spec.console_log, append="on")
    _sub(serial, "target", port="0")
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")
    _sub(devices, "memballoon", model="virtio")
    return domain


def _interface(parent: ET.Element, nic: Interface) -> ET.Element:
    element = _sub(parent, "interface", type="bridge")
    _sub(element, "mac", address=nic.mac.lower())
    _sub(element, "source", bridge=nic.bridge)
    _sub(element, "target", dev=nic.tap)
    _sub(element, "model", type=nic.model)
    if nic.mtu:
        _sub(element, "mtu", size=str(nic.mtu))
    return element


def interface(nic: Interface) -> str:
    """The ``<interface>`` of one NIC, for hot-plugging it (``attachDeviceFlags``)."""
    _check_interface(nic)
    holder = ET.Element("devices")
    return ET.tostring(_interface(holder, nic), encoding="unicode")


def resized(xml: str, memory_mib: int, vcpus: int, flavor: str | None = None) -> str:
    """A domain's XML (``XMLDesc``) with another size: memory, vCPUs and the
    flavor named in the metadata."""
    if memory_mib < 1 or vcpus < 1:
        raise DomainSpecError("a guest needs at least 1 MiB of memory and 1 vCPU")
    domain = ET.fromstring(xml)  # noqa: S314 - libvirt's own output
    for tag in ("memory", "currentMemory"):
        element = domain.find(tag)
        if element is not None:
            element.text = str(memory_mib)
            element.attrib.clear()
            element.set("unit", "MiB")
    vcpu = domain.find("vcpu")
    if vcpu is None:
        vcpu = _sub(domain, "vcpu")
    vcpu.text = str(vcpus)
    vcpu.attrib.pop("current", None)
    if flavor is not None:
        label = domain.find(f"metadata/{{{NAMESPACE}}}instance/{{{NAMESPACE}}}flavor")
        if label is not None:
            label.text = flavor
    return ET.tostring(domain, encoding="unicode")


def build(spec: DomainSpec) -> str:
    """The domain XML of ``spec``, as text for ``virConnect.defineXML``."""
    return ET.tostring(build_element(spec), encoding="unicode")
