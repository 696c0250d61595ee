# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0
"""What the stratus.cloud.libvirt_domain module is made of.

Three layers:

- the wanted definition, as an ElementTree element: ``parse_domain_xml``
  checks full domain XML, ``build_domain_xml`` writes it from the module's
  ``description`` (``description_spec`` is that option's argument spec, its
  defaults the builder's); bad input raises ``DomainInputError`` with a
  message for the operator;
- the comparison, on plain ElementTree elements (no libvirt needed);
- libvirt itself: ``manage_domain`` reads the domain, decides, defines,
  starts, shuts down and undefines it through a ``virConnect``.

Deciding whether a defined domain is already as wanted. libvirt never keeps
the XML it is given: it fills in defaults (a UUID, MAC addresses, PCI
addresses, controllers, input devices, a console for the first serial, a
memory balloon, ``<cpu>`` for TCG guests), expands aliases (machine ``pc``
becomes ``pc-i440fx-7.2``), rewrites units (``256 MiB`` becomes ``262144
KiB``) and orders devices its own way. So a text comparison always differs,
and a field-by-field model of libvirt's defaults would be endless. Two
checks instead, both of which must pass for "unchanged":

1. The fingerprint. Each definition the module makes carries, in its
   ``<metadata>``, a ``<stratus:definition sha256="..."/>`` element
   (namespace ``urn:stratus:libvirt-domain:1``): the SHA-256 of the wanted
   XML in canonical form (C14N 2.0, whitespace stripped), as the user wrote
   it or ``description`` built it. Any change to what is asked, including a
   removed element that libvirt could not tell from one of its defaults,
   changes the fingerprint.
2. The subset match: every element and attribute of the wanted XML must be
   found in the current inactive definition (``VIR_DOMAIN_XML_INACTIVE |
   VIR_DOMAIN_XML_SECURE``), recursively, each wanted child matched to a
   distinct current child (a bipartite matching, so device order does not
   matter). Memory sizes are compared in KiB, numbers by value (``0x03`` is
   ``3``), MAC addresses and UUIDs without regard to case or form, machine
   aliases by the canonical machine libvirt's domain capabilities name.
   What libvirt added is ignored. This finds changes made behind the
   module's back (``virsh edit``) to anything the user asked for.

When either check fails the module defines the wanted XML (keeping the
domain's UUID and, for interfaces without a ``<mac>``, their MAC
addresses, so that a redefinition does not give the guest new NICs) and
then compares libvirt's inactive XML before and after, fingerprint left
aside, in canonical form: only a real difference reports ``changed``, so a
first run over a domain defined by hand, or a cosmetic edit of the wanted
XML, records the fingerprint without reporting a change. Check mode cannot
define, so it reports the result of the two checks: a change that turns out
to be cosmetic is predicted as a change.
"""

from __future__ import annotations

import copy
import hashlib
import re
import time
import traceback
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

LIBVIRT_IMPORT_ERROR: str | None = None
libvirt: Any
try:
    import libvirt
except ImportError:
    LIBVIRT_IMPORT_ERROR = traceback.format_exc()
    libvirt = None

METADATA_NS = "urn:stratus:libvirt-domain:1"
FINGERPRINT = f"{{{METADATA_NS}}}definition"
ET.register_namespace("stratus", METADATA_NS)
ET.register_namespace("qemu", "http://libvirt.org/schemas/domain/qemu/1.0")

STATES = ("present", "running", "shutdown", "stopped", "absent")
VIRT_TYPES = ("kvm", "qemu")
DISK_BUSES = ("virtio", "scsi", "sata", "ide", "usb")
TARGET_PREFIX = {"virtio": "vd", "scsi": "sd", "sata": "sd", "usb": "sd", "ide": "hd"}
MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
SERIAL_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")
TARGET_RE = re.compile(r"^(vd|sd|hd)[a-z]{1,3}$")
# libvirt drops tap names with these prefixes from a definition: it makes them up itself.
RESERVED_TAP_PREFIXES = ("vnet", "vif", "macvtap", "macvlan")
IFNAMSIZ = 16
# Elements that hold a memory size, in KiB unless their unit says otherwise.
MEMORY_TAGS = ("memory", "currentMemory", "maxMemory", "size")
# libvirt's domain states, as virsh names them.
STATE_NAMES = {
    0: "no state",
    1: "running",
    2: "idle",
    3: "paused",
    4: "in shutdown",
    5: "shut off",
    6: "crashed",
    7: "pmsuspended",
}
PAUSED = 3
SHUTDOWN_RESEND = 5.0  # seconds between ACPI power button presses
POLL = 0.2


class DomainInputError(ValueError):
    """The module's input cannot describe a domain."""


class DomainError(RuntimeError):
    """libvirt refused or failed an operation."""


# ------------------------------------------------------------ the description


def description_spec() -> dict[str, Any]:
    """The argument spec of the module's ``description`` option."""
    disk = {
        "path": {"type": "path", "required": True},
        "format": {"type": "str", "default": "raw", "choices": ["raw", "qcow2"]},
        "device": {"type": "str", "default": "disk", "choices": ["disk", "cdrom"]},
        "bus": {"type": "str", "choices": list(DISK_BUSES)},
        "target": {"type": "str"},
        "serial": {"type": "str"},
        "readonly": {"type": "bool", "default": False},
        "cache": {
            "type": "str",
            "choices": ["default", "none", "writethrough", "writeback", "directsync", "unsafe"],
        },
    }
    interface = {
        "type": {"type": "str", "default": "bridge", "choices": ["bridge", "network"]},
        "source": {"type": "str", "required": True},
        "mac": {"type": "str"},
        "model": {
            "type": "str",
            "default": "virtio",
            "choices": ["virtio", "e1000", "e1000e", "rtl8139"],
        },
        "target": {"type": "str"},
        "mtu": {"type": "int"},
    }
    return {
        "memory_mib": {"type": "int", "required": True},
        "vcpus": {"type": "int", "default": 1},
        "virt_type": {"type": "str", "default": "kvm", "choices": list(VIRT_TYPES)},
        "machine": {"type": "str"},
        "cpu_mode": {"type": "str", "choices": ["host-passthrough", "host-model", "maximum"]},
        "uuid": {"type": "str"},
        "kernel": {"type": "path"},
        "initrd": {"type": "path"},
        "cmdline": {"type": "str"},
        "boot": {"type": "list", "elements": "str", "choices": ["hd", "cdrom", "network"]},
        "disks": {"type": "list", "elements": "dict", "default": [], "options": disk},
        "interfaces": {"type": "list", "elements": "dict", "default": [], "options": interface},
        "serial_log": {"type": "path"},
    }


def _with_defaults(given: dict[str, Any], spec: dict[str, Any], where: str) -> dict[str, Any]:
    unknown = sorted(set(given) - set(spec))
    if unknown:
        raise DomainInputError(f"{where}: unknown key(s) {', '.join(unknown)}")
    result = {}
    for key, option in spec.items():
        value = given.get(key)
        if value is None:
            value = copy.deepcopy(option.get("default"))
        if value is None and option.get("required"):
            raise DomainInputError(f"{where}.{key} is required")
        choices = option.get("choices")
        if choices and value is not None:
            for item in value if isinstance(value, list) else [value]:
                if item not in choices:
                    raise DomainInputError(
                        f"{where}.{key} must be one of {', '.join(choices)}, not {item!r}"
                    )
        result[key] = value
    return result


def _positive(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DomainInputError(f"{where} must be a positive integer, not {value!r}")
    return value


def _absolute(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise DomainInputError(f"{where} must be an absolute path, not {value!r}")
    return value


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text
    return element


def _letters(index: int) -> str:
    """0 -> a, 25 -> z, 26 -> aa: the suffix of disk target names."""
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(ord("a") + rest) + name
    return name


def _disk_targets(disks: list[dict[str, Any]], machine: str | None) -> list[tuple[str, str]]:
    """(bus, target dev) of each disk: explicit ones kept, the others numbered per prefix."""
    buses = []
    for i, disk in enumerate(disks):
        bus = disk["bus"]
        if bus is None:
            if disk["device"] == "cdrom":
                bus = "sata" if machine and "q35" in machine else "ide"
            else:
                bus = "virtio"
        if disk["device"] == "cdrom" and bus == "virtio":
            raise DomainInputError(
                f"description.disks[{i}]: a cdrom cannot be on the virtio bus "
                "(use sata, scsi, ide or usb)"
            )
        buses.append(bus)
    taken: set[str] = set()
    for i, disk in enumerate(disks):
        target = disk["target"]
        if target is None:
            continue
        if not TARGET_RE.match(target):
            raise DomainInputError(
                f"description.disks[{i}].target {target!r} is not a disk name (vda, sdb, hdc...)"
            )
        if not target.startswith(TARGET_PREFIX[buses[i]]):
            raise DomainInputError(
                f"description.disks[{i}].target {target!r} does not fit bus {buses[i]} "
                f"(its disks are named {TARGET_PREFIX[buses[i]]}a, {TARGET_PREFIX[buses[i]]}b...)"
            )
        if target in taken:
            raise DomainInputError(f"description.disks[{i}].target {target!r} is used twice")
        taken.add(target)
    result = []
    for i, disk in enumerate(disks):
        target = disk["target"]
        if target is None:
            prefix = TARGET_PREFIX[buses[i]]
            n = 0
            while f"{prefix}{_letters(n)}" in taken:
                n += 1
            target = f"{prefix}{_letters(n)}"
            taken.add(target)
        result.append((buses[i], target))
    return result


def _add_disk(devices: ET.Element, disk: dict[str, Any], bus: str, target: str) -> None:
    block = disk["path"].startswith("/dev/")
    element = _sub(devices, "disk", type="block" if block else "file", device=disk["device"])
    driver = {"name": "qemu", "type": disk["format"]}
    if disk["cache"]:
        driver["cache"] = disk["cache"]
    _sub(element, "driver", **driver)
    _sub(element, "source", **({"dev": disk["path"]} if block else {"file": disk["path"]}))
    _sub(element, "target", dev=target, bus=bus)
    if disk["readonly"] or disk["device"] == "cdrom":
        _sub(element, "readonly")
    if disk["serial"] is not None:
        _sub(element, "serial", disk["serial"])


def _add_interface(devices: ET.Element, nic: dict[str, Any], where: str) -> None:
    element = _sub(devices, "interface", type=nic["type"])
    if nic["mac"] is not None:
        if not MAC_RE.match(nic["mac"]):
            raise DomainInputError(f"{where}.mac {nic['mac']!r} is not a MAC address")
        if int(nic["mac"][:2], 16) & 1:
            raise DomainInputError(f"{where}.mac {nic['mac']!r} is a multicast address")
        _sub(element, "mac", address=nic["mac"].lower())
    if not nic["source"]:
        raise DomainInputError(f"{where}.source must name a bridge or a libvirt network")
    _sub(element, "source", **{nic["type"]: nic["source"]})
    if nic["target"] is not None:
        tap = nic["target"]
        if not tap or len(tap) >= IFNAMSIZ or any(c in tap for c in "/: \t"):
            raise DomainInputError(f"{where}.target {tap!r} is not a valid interface name")
        if tap.startswith(RESERVED_TAP_PREFIXES):
            raise DomainInputError(
                f"{where}.target {tap!r}: libvirt reserves names starting with "
                f"{', '.join(RESERVED_TAP_PREFIXES)} for the ones it makes up"
            )
        _sub(element, "target", dev=tap)
    _sub(element, "model", type=nic["model"])
    if nic["mtu"] is not None:
        _sub(element, "mtu", size=str(_positive(nic["mtu"], f"{where}.mtu")))


def build_domain_xml(name: str, description: dict[str, Any]) -> ET.Element:
    """The domain XML that ``description`` (the module option) stands for."""
    spec = description_spec()
    d = _with_defaults(description, spec, "description")
    disks = [
        _with_defaults(disk, spec["disks"]["options"], f"description.disks[{i}]")
        for i, disk in enumerate(d["disks"])
    ]
    nics = [
        _with_defaults(nic, spec["interfaces"]["options"], f"description.interfaces[{i}]")
        for i, nic in enumerate(d["interfaces"])
    ]
    domain = ET.Element("domain", type=d["virt_type"])
    _sub(domain, "name", name)
    if d["uuid"] is not None:
        try:
            _sub(domain, "uuid", str(uuidlib.UUID(d["uuid"])))
        except ValueError as exc:
            raise DomainInputError(f"description.uuid {d['uuid']!r} is not a UUID") from exc
    _sub(domain, "memory", str(_positive(d["memory_mib"], "description.memory_mib")), unit="MiB")
    _sub(domain, "vcpu", str(_positive(d["vcpus"], "description.vcpus")))

    os_ = _sub(domain, "os")
    _sub(os_, "type", "hvm", **({"machine": d["machine"]} if d["machine"] else {}))
    if d["kernel"] is not None:
        _sub(os_, "kernel", _absolute(d["kernel"], "description.kernel"))
        if d["initrd"] is not None:
            _sub(os_, "initrd", _absolute(d["initrd"], "description.initrd"))
        if d["cmdline"] is not None:
            _sub(os_, "cmdline", d["cmdline"])
    elif d["initrd"] is not None or d["cmdline"] is not None:
        raise DomainInputError("description.initrd and cmdline need description.kernel")
    for dev in d["boot"] or []:
        _sub(os_, "boot", dev=dev)

    features = _sub(domain, "features")
    _sub(features, "acpi")  # the power button: state shutdown presses it
    _sub(features, "apic")
    cpu_mode = d["cpu_mode"] or ("host-passthrough" if d["virt_type"] == "kvm" else None)
    if cpu_mode:
        _sub(domain, "cpu", mode=cpu_mode)
    _sub(domain, "clock", offset="utc")

    devices = _sub(domain, "devices")
    for i, (disk, (bus, target)) in enumerate(
        zip(disks, _disk_targets(disks, d["machine"]), strict=True)
    ):
        _absolute(disk["path"], f"description.disks[{i}].path")
        if disk["serial"] is not None and not SERIAL_RE.match(disk["serial"]):
            raise DomainInputError(
                f"description.disks[{i}].serial {disk['serial']!r}: use letters, digits "
                "and _ . + - only"
            )
        _add_disk(devices, disk, bus, target)
    for i, nic in enumerate(nics):
        _add_interface(devices, nic, f"description.interfaces[{i}]")
    macs = [nic["mac"].lower() for nic in nics if nic["mac"]]
    if len(macs) != len(set(macs)):
        raise DomainInputError("description.interfaces: a MAC address is used twice")
    taps = [nic["target"] for nic in nics if nic["target"]]
    if len(taps) != len(set(taps)):
        raise DomainInputError("description.interfaces: a target name is used twice")
    if d["serial_log"] is not None:
        serial = _sub(devices, "serial", type="file")
        _sub(serial, "source", path=_absolute(d["serial_log"], "description.serial_log"))
    else:
        serial = _sub(devices, "serial", type="pty")
    _sub(serial, "target", port="0")
    return domain


# ------------------------------------------------------------------- the XML


def parse_domain_xml(text: str, name: str) -> ET.Element:
    """Full domain XML from the user, checked; ``<name>`` added when missing."""
    try:
        # The operator's own definition, parsed by Python's expat (which
        # refuses entity expansion attacks) as libvirt itself would.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError as exc:
        raise DomainInputError(f"xml: not well-formed XML ({exc})") from exc
    if root.tag != "domain":
        raise DomainInputError(f"xml: the root element is <{root.tag}>, not <domain>")
    if not root.get("type"):
        raise DomainInputError("xml: <domain> has no type attribute (kvm or qemu)")
    names = root.findall("name")
    if len(names) > 1:
        raise DomainInputError("xml: more than one <name>")
    if not names:
        element = ET.Element("name")
        element.text = name
        root.insert(0, element)
    elif (names[0].text or "").strip() != name:
        raise DomainInputError(
            f"xml: its <name> is {(names[0].text or '').strip()!r}, not {name!r} (option name)"
        )
    _drop_fingerprint(root)
    return root


def parse_libvirt_xml(text: str) -> ET.Element:
    """XML that libvirt gave (XMLDesc)."""
    return ET.fromstring(text)  # noqa: S314 - libvirt's own output


def to_text(element: ET.Element) -> str:
    """Indented XML, the fingerprint left out: for diffs and check mode."""
    element = copy.deepcopy(element)
    _drop_fingerprint(element)
    for node in element.iter():
        if node.text is not None and not node.text.strip():
            node.text = None
        node.tail = None
    ET.indent(element, "  ")
    return ET.tostring(element, encoding="unicode") + "\n"


def _drop_fingerprint(domain: ET.Element) -> None:
    metadata = domain.find("metadata")
    if metadata is None:
        return
    ours = metadata.findall(FINGERPRINT)
    for element in ours:
        metadata.remove(element)
    if ours and len(metadata) == 0 and not (metadata.text or "").strip():
        domain.remove(metadata)


def fingerprint(wanted: ET.Element) -> str:
    """SHA-256 of the wanted XML in canonical form (see the module's docstring)."""
    element = copy.deepcopy(wanted)
    _drop_fingerprint(element)
    canonical = ET.canonicalize(ET.tostring(element, encoding="unicode"), strip_text=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def stored_fingerprint(current: ET.Element) -> str | None:
    element = current.find(f"metadata/{FINGERPRINT}")
    return None if element is None else element.get("sha256")


def with_fingerprint(wanted: ET.Element, digest: str) -> ET.Element:
    element = copy.deepcopy(wanted)
    _drop_fingerprint(element)
    metadata = element.find("metadata")
    if metadata is None:
        metadata = ET.SubElement(element, "metadata")
    ET.SubElement(metadata, FINGERPRINT, sha256=digest)
    return element


def same_definition(before: ET.Element, after: ET.Element) -> bool:
    """Whether libvirt's two inactive definitions are the same, fingerprints aside."""
    return _canonical(before) == _canonical(after)


def _canonical(element: ET.Element) -> str:
    element = copy.deepcopy(element)
    _drop_fingerprint(element)
    return ET.canonicalize(ET.tostring(element, encoding="unicode"), strip_text=True)


# ------------------------------------------------------------- comparison


def to_kib(text: str, unit: str | None) -> int | None:
    """A size as libvirt reads it (virScaleInteger), in KiB rounded up; None if not one."""
    try:
        value = int(text.strip())
    except ValueError:
        return None
    u = (unit or "KiB").strip().lower()
    if u in ("b", "byte", "bytes"):
        factor = 1
    else:
        power = "bkmgtpe".find(u[:1]) if u else -1
        rest = u[1:]
        if power < 0 or rest not in ("", "ib", "b"):
            return None
        factor = (1000 if rest == "b" else 1024) ** power
    return -(-value * factor // 1024)


def normalise(domain: ET.Element) -> ET.Element:
    """A copy for comparison: fingerprint out, text stripped, memory sizes in KiB."""
    domain = copy.deepcopy(domain)
    _drop_fingerprint(domain)
    for node in domain.iter():
        if node.text is not None:
            node.text = node.text.strip() or None
        node.tail = None
        if node.tag in MEMORY_TAGS and node.text is not None:
            kib = to_kib(node.text, node.get("unit"))
            if kib is not None:
                node.text = str(kib)
                node.set("unit", "KiB")
    return domain


def _as_int(value: str) -> int | None:
    text = value.strip().lower()
    try:
        return int(text, 16) if text.startswith("0x") else int(text, 10)
    except ValueError:
        return None


def _as_uuid(value: str) -> str | None:
    try:
        return str(uuidlib.UUID(value.strip()))
    except ValueError:
        return None


def brief(element: ET.Element, limit: int = 200) -> str:
    """One line of XML for messages."""
    element = copy.deepcopy(element)
    for node in element.iter():
        node.tail = None
        if node.text is not None and not node.text.strip():
            node.text = None
    text = ET.tostring(element, encoding="unicode")
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Matcher:
    """Whether a wanted element is found in a current one (see the module's docstring).

    ``machine`` maps a machine type to its canonical name (``pc`` to
    ``pc-i440fx-7.2``); both elements are expected normalised.
    """

    def __init__(self, machine: Callable[[str], str] | None = None) -> None:
        self.machine = machine or (lambda name: name)

    def same_value(self, tag: str, attr: str, wanted: str, current: str) -> bool:
        if wanted == current:
            return True
        if tag == "type" and attr == "machine":
            return self.machine(wanted) == self.machine(current)
        if tag == "mac" and attr == "address":
            return wanted.lower() == current.lower()
        number = _as_int(wanted)
        return number is not None and number == _as_int(current)

    def same_text(self, tag: str, wanted: str, current: str) -> bool:
        if wanted == current:
            return True
        if tag == "uuid":
            return _as_uuid(wanted) is not None and _as_uuid(wanted) == _as_uuid(current)
        number = _as_int(wanted)
        return number is not None and number == _as_int(current)

    def element(self, wanted: ET.Element, current: ET.Element) -> bool:
        if wanted.tag != current.tag:
            return False
        for attr, value in wanted.attrib.items():
            found = current.get(attr)
            if found is None or not self.same_value(wanted.tag, attr, value, found):
                return False
        if wanted.text and not self.same_text(wanted.tag, wanted.text, current.text or ""):
            return False
        return not self.unmatched(list(wanted), list(current))

    def pairs(self, wanted: list[ET.Element], current: list[ET.Element]) -> dict[int, int]:
        """A maximum matching of wanted children to distinct current ones (wanted -> current)."""
        candidates = [[j for j, c in enumerate(current) if self.element(w, c)] for w in wanted]
        owner: dict[int, int] = {}

        def assign(i: int, seen: set[int]) -> bool:
            for j in candidates[i]:
                if j in seen:
                    continue
                seen.add(j)
                if j not in owner or assign(owner[j], seen):
                    owner[j] = i
                    return True
            return False

        for i in range(len(wanted)):
            assign(i, set())
        return {i: j for j, i in owner.items()}

    def unmatched(self, wanted: list[ET.Element], current: list[ET.Element]) -> list[int]:
        matched = self.pairs(wanted, current)
        return [i for i in range(len(wanted)) if i not in matched]


def differences(
    wanted: ET.Element, current: ET.Element, machine: Callable[[str], str] | None = None
) -> list[str]:
    """What of the wanted definition the current one lacks, one line each ([] if nothing)."""
    w, c = normalise(wanted), normalise(current)
    matcher = Matcher(machine)
    found = []
    for attr, value in w.attrib.items():
        if c.get(attr) is None or not matcher.same_value("domain", attr, value, c.get(attr, "")):
            found.append(f"<domain {attr}='{value}'> (current: {c.get(attr)!r})")
    top_w = [e for e in w if e.tag != "devices"]
    top_c = [e for e in c if e.tag != "devices"]
    found += [brief(top_w[i]) for i in matcher.unmatched(top_w, top_c)]
    devices_w, devices_c = w.find("devices"), c.find("devices")
    if devices_w is not None:
        listed_w = list(devices_w)
        listed_c = list(devices_c) if devices_c is not None else []
        found += [f"devices: {brief(listed_w[i])}" for i in matcher.unmatched(listed_w, listed_c)]
    return found


def carry_over(wanted: ET.Element, current: ET.Element | None) -> ET.Element:
    """The wanted XML with what libvirt made up for the current domain kept: its
    UUID, and the MAC addresses of the interfaces that give none."""
    result = copy.deepcopy(wanted)
    if current is None:
        return result
    uuid = current.findtext("uuid")
    if result.find("uuid") is None and uuid:
        element = ET.Element("uuid")
        element.text = uuid.strip()
        names = [i for i, e in enumerate(result) if e.tag == "name"]
        result.insert(names[0] + 1 if names else 0, element)
    devices, current_devices = result.find("devices"), current.find("devices")
    if devices is None or current_devices is None:
        return result
    want = [e for e in devices.findall("interface") if e.find("mac") is None]
    used = {_mac(e) for e in devices.findall("interface")}
    have = [e for e in current_devices.findall("interface") if _mac(e) not in used | {""}]
    pairs = Matcher().pairs([normalise(e) for e in want], [normalise(e) for e in have])
    rest = [j for j in range(len(have)) if j not in pairs.values()]
    for i, nic in enumerate(want):
        j = pairs.get(i)
        if j is None and rest:
            j = rest.pop(0)  # the same place among the interfaces
        if j is not None:
            nic.insert(0, ET.Element("mac", address=_mac(have[j])))
    return result


def _mac(interface: ET.Element) -> str:
    element = interface.find("mac")
    return (element.get("address") or "").lower() if element is not None else ""


# ------------------------------------------------------------------ libvirt


def connect(uri: str) -> Any:
    """A read-write connection; DomainError saying which URI failed."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)  # no copies on stderr
    try:
        return libvirt.open(uri)
    except libvirt.libvirtError as exc:
        raise DomainError(f"cannot connect to libvirt at {uri}: {_message(exc)}") from exc


def _message(exc: Exception) -> str:
    getter = getattr(exc, "get_error_message", None)
    return (getter() if getter else None) or str(exc)


def _lookup(conn: Any, name: str) -> Any:
    try:
        return conn.lookupByName(name)
    except libvirt.libvirtError as exc:
        if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise DomainError(f"cannot look up domain {name!r}: {_message(exc)}") from exc


def _machine_resolver(conn: Any, current: ET.Element) -> Callable[[str], str]:
    """Canonical machine names from libvirt's domain capabilities, cached."""
    known: dict[str, str] = {}
    os_type = current.find("os/type")
    arch = os_type.get("arch") if os_type is not None else None
    virt_type = current.get("type")

    def resolve(name: str) -> str:
        if name not in known:
            try:
                caps = ET.fromstring(  # noqa: S314 - libvirt's own output
                    conn.getDomainCapabilities(None, arch, name, virt_type)
                )
                known[name] = (caps.findtext("machine") or name).strip()
            except libvirt.libvirtError:
                known[name] = name
        return known[name]

    return resolve


class _Domain:
    """One domain's calls, with errors turned into DomainError naming the step."""

    def __init__(self, conn: Any, name: str) -> None:
        self.conn = conn
        self.name = name
        self.dom = _lookup(conn, name)

    def call(self, what: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self.dom, method)(*args)
        except libvirt.libvirtError as exc:
            raise DomainError(f"cannot {what} domain {self.name!r}: {_message(exc)}") from exc

    def xml(self, secure: bool = False) -> str:
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE
        if secure:
            flags |= libvirt.VIR_DOMAIN_XML_SECURE
        return str(self.call("read", "XMLDesc", flags))

    def state(self) -> int:
        return int(self.call("read the state of", "state")[0])

    def active(self) -> bool:
        return bool(self.call("read the state of", "isActive"))

    def define(self, element: ET.Element) -> None:
        try:
            self.dom = self.conn.defineXML(ET.tostring(element, encoding="unicode"))
        except libvirt.libvirtError as exc:
            raise DomainError(f"cannot define domain {self.name!r}: {_message(exc)}") from exc

    def snapshot(self) -> dict[str, Any]:
        if self.dom is None:
            return {"state": "absent", "active": False, "autostart": False, "xml": "", "uuid": None}
        return {
            "state": STATE_NAMES.get(self.state(), "unknown"),
            "active": self.active(),
            "autostart": bool(self.call("read autostart of", "autostart")),
            "xml": self.xml(),
            "uuid": self.call("read the UUID of", "UUIDString"),
        }

    def acpi_shutdown(self, timeout: float) -> bool:
        """Press the power button (again every few seconds) until the guest is
        off; False if it is still running after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        press = 0.0
        while True:
            if not self.active():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= press:
                try:
                    self.dom.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
                except libvirt.libvirtError as exc:
                    if self.active():
                        raise DomainError(
                            f"cannot shut down domain {self.name!r}: {_message(exc)}"
                        ) from exc
                press = now + SHUTDOWN_RESEND
            time.sleep(POLL)

    def destroy(self) -> None:
        try:
            self.dom.destroy()
        except libvirt.libvirtError as exc:
            if self.active():
                raise DomainError(f"cannot destroy domain {self.name!r}: {_message(exc)}") from exc

    def undefine(self) -> None:
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        self.call("undefine", "undefineFlags", flags)


def _header(snapshot: dict[str, Any]) -> str:
    if snapshot["state"] == "absent":
        return ""
    autostart = "true" if snapshot["autostart"] else "false"
    return f"# state: {snapshot['state']}\n# autostart: {autostart}\n"


def _diff_text(snapshot: dict[str, Any]) -> str:
    if snapshot["state"] == "absent":
        return ""
    return _header(snapshot) + to_text(parse_libvirt_xml(snapshot["xml"]))


def manage_domain(
    conn: Any, params: dict[str, Any], wanted: ET.Element | None, check_mode: bool
) -> dict[str, Any]:
    """Bring domain ``params["name"]`` to the wanted definition and state.

    ``params`` are the module's (``state``, ``autostart``,
    ``shutdown_timeout``, ``force``); ``wanted`` is the parsed or built XML,
    or None when neither xml nor description was given. Returns the module's
    result (``diff`` included); raises DomainError.
    """
    name, state = params["name"], params["state"]
    domain = _Domain(conn, name)
    before = domain.snapshot()
    actions: list[str] = []
    warnings: list[str] = []
    found: list[str] = []
    needs_restart = False
    predicted: ET.Element | None = None  # check mode: the definition it would make

    if state == "absent":
        if domain.dom is not None:
            persistent = bool(domain.call("read", "isPersistent"))
            if before["active"]:
                actions.append("destroyed")
                if not check_mode:
                    domain.destroy()
            if persistent:
                actions.append("undefined")
                if not check_mode:
                    domain.undefine()
            if not check_mode:
                domain.dom = None
    else:
        if wanted is None and domain.dom is None:
            raise DomainError(
                f"domain {name!r} is not defined: give xml or description to define it"
            )
        if wanted is not None:
            digest = fingerprint(wanted)
            persistent = domain.dom is not None and bool(domain.call("read", "isPersistent"))
            if not persistent:
                actions.append("defined")
                current = parse_libvirt_xml(domain.xml(True)) if domain.dom else None
                definition = with_fingerprint(carry_over(wanted, current), digest)
                if check_mode:
                    predicted = definition
                else:
                    domain.define(definition)
            else:
                current = parse_libvirt_xml(domain.xml(True))
                found = differences(wanted, current, _machine_resolver(conn, current))
                if found or stored_fingerprint(current) != digest:
                    definition = with_fingerprint(carry_over(wanted, current), digest)
                    if check_mode:
                        actions.append("redefined")
                        predicted = definition
                    else:
                        domain.define(definition)
                        if not same_definition(current, parse_libvirt_xml(domain.xml(True))):
                            actions.append("redefined")
                    if "redefined" in actions and before["active"]:
                        needs_restart = True
                        warnings.append(
                            f"domain {name!r} is running: its new definition takes effect "
                            "when it is next started (state shutdown, then running)"
                        )

        exists = domain.dom is not None
        if params.get("autostart") is not None:
            current_autostart = bool(domain.call("read", "autostart")) if exists else False
            if current_autostart != params["autostart"]:
                actions.append("autostart")
                if not check_mode:
                    domain.call("set autostart of", "setAutostart", int(params["autostart"]))

        active = domain.active() if exists else False
        if state == "running":
            if not active:
                actions.append("started")
                if not check_mode:
                    domain.call("start", "create")
            elif domain.state() == PAUSED:
                actions.append("resumed")
                if not check_mode:
                    domain.call("resume", "resume")
        elif state in ("shutdown", "stopped") and active:
            if params.get("force"):
                actions.append("destroyed")
                if not check_mode:
                    domain.destroy()
            else:
                actions.append("shutdown")
                if not check_mode:
                    if domain.state() == PAUSED:
                        domain.call("resume", "resume")  # a paused guest cannot hear ACPI
                    timeout = float(params.get("shutdown_timeout") or 0)
                    if not domain.acpi_shutdown(timeout):
                        domain.destroy()
                        actions.append("destroyed")
                        warnings.append(
                            f"domain {name!r} did not power off within {timeout:g} s of "
                            "the ACPI power button: destroyed"
                        )

    after = domain.snapshot() if not check_mode else _predict(before, predicted, actions, params)
    result: dict[str, Any] = {
        "changed": bool(actions),
        "name": name,
        "state": after["state"],
        "active": after["active"],
        "autostart": after["autostart"],
        "uuid": after["uuid"],
        "xml": after["xml"],
        "actions": actions,
        "differences": found,
        "needs_restart": needs_restart,
        "warnings": warnings,
    }
    result["diff"] = {
        "before_header": f"libvirt domain {name}",
        "after_header": f"libvirt domain {name}",
        "before": _diff_text(before),
        "after": _diff_text(after),
    }
    return result


def _predict(
    before: dict[str, Any],
    predicted: ET.Element | None,
    actions: list[str],
    params: dict[str, Any],
) -> dict[str, Any]:
    """What check mode expects the domain to look like afterwards."""
    if params["state"] == "absent" or (before["state"] == "absent" and predicted is None):
        return {"state": "absent", "active": False, "autostart": False, "xml": "", "uuid": None}
    after = dict(before)
    if predicted is not None:
        after["xml"] = to_text(predicted)
        if after["uuid"] is None:
            after["uuid"] = predicted.findtext("uuid")
    if "autostart" in actions:
        after["autostart"] = bool(params["autostart"])
    if "started" in actions or "resumed" in actions:
        after.update(state="running", active=True)
    elif {"shutdown", "destroyed"} & set(actions) or after["state"] == "absent":
        after.update(state="shut off", active=False)
    return after
