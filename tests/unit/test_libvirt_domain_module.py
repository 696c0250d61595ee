"""The stratus.cloud.libvirt_domain module's XML logic, without libvirt.

plugins/module_utils/libvirt_domain.py builds domain XML from the module's
``description``, checks full XML, and decides whether a defined domain is
already as wanted (the fingerprint in its metadata and the subset match of
the wanted XML in libvirt's rewritten definition). These tests run that
logic on plain XML: ``LIBVIRT_XML`` is what libvirt 9.0 (Debian 12) stored
for ``DESCRIPTION``, read back with ``virsh dumpxml --inactive``. The module
itself, against a real libvirtd, is tested in
tests/compute/test_libvirt_domain.py.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load_utils():  # type: ignore[no-untyped-def]
    path = ROOT / "plugins" / "module_utils" / "libvirt_domain.py"
    spec = importlib.util.spec_from_file_location("stratus_libvirt_domain_utils", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ld = _load_utils()

DESCRIPTION: dict[str, Any] = {
    "memory_mib": 256,
    "virt_type": "qemu",
    "kernel": "/images/vmlinuz",
    "initrd": "/images/initrd",
    "cmdline": "console=ttyS0",
    "disks": [{"path": "/disks/config.qcow2", "format": "qcow2", "serial": "config-7"}],
    "interfaces": [{"source": "br-test", "mac": "FA:16:3E:00:00:07", "target": "tap-test"}],
    "serial_log": "/logs/t1.console",
}

LIBVIRT_XML = """\
<domain type='qemu'>
  <name>t1</name>
  <uuid>5f1e80b8-c43d-4f63-ba74-ce1275046351</uuid>
  <memory unit='KiB'>262144</memory>
  <currentMemory unit='KiB'>262144</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-7.2'>hvm</type>
    <kernel>/images/vmlinuz</kernel>
    <initrd>/images/initrd</initrd>
    <cmdline>console=ttyS0</cmdline>
    <boot dev='hd'/>
  </os>
  <features>
    <acpi/>
    <apic/>
  </features>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
  </cpu>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/disks/config.qcow2'/>
      <target dev='vda' bus='virtio'/>
      <serial>config-7</serial>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <controller type='usb' index='0' model='piix3-uhci'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x01' function='0x2'/>
    </controller>
    <controller type='pci' index='0' model='pci-root'/>
    <interface type='bridge'>
      <mac address='fa:16:3e:00:00:07'/>
      <source bridge='br-test'/>
      <target dev='tap-test'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </interface>
    <serial type='file'>
      <source path='/logs/t1.console'/>
      <target type='isa-serial' port='0'>
        <model name='isa-serial'/>
      </target>
    </serial>
    <console type='file'>
      <source path='/logs/t1.console'/>
      <target type='serial' port='0'/>
    </console>
    <input type='mouse' bus='ps2'/>
    <input type='keyboard' bus='ps2'/>
    <audio id='1' type='none'/>
    <memballoon model='virtio'>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x03' function='0x0'/>
    </memballoon>
  </devices>
</domain>
"""


def libvirt_xml(**replace: str) -> ET.Element:
    text = LIBVIRT_XML
    for old, new in replace.items():
        assert old in text
        text = text.replace(old, new)
    return ld.parse_libvirt_xml(text)


def xml_of(element: ET.Element) -> str:
    return ET.tostring(element, encoding="unicode")


# ---------------------------------------------------------------- building


def test_a_description_becomes_domain_xml() -> None:
    domain = ld.build_domain_xml("t1", DESCRIPTION)
    assert domain.get("type") == "qemu"
    assert domain.findtext("name") == "t1"
    assert domain.find("uuid") is None  # libvirt makes one up
    memory = domain.find("memory")
    assert memory is not None and (memory.text, memory.get("unit")) == ("256", "MiB")
    assert domain.findtext("vcpu") == "1"
    assert [e.tag for e in domain.find("os")] == ["type", "kernel", "initrd", "cmdline"]
    assert domain.find("os/type").get("machine") is None
    assert domain.find("features/acpi") is not None  # the power button
    assert domain.find("cpu") is None  # TCG: libvirt's default model
    (disk,) = domain.findall("devices/disk")
    assert xml_of(disk) == (
        '<disk type="file" device="disk"><driver name="qemu" type="qcow2" />'
        '<source file="/disks/config.qcow2" /><target dev="vda" bus="virtio" />'
        "<serial>config-7</serial></disk>"
    )
    (nic,) = domain.findall("devices/interface")
    assert xml_of(nic) == (
        '<interface type="bridge"><mac address="fa:16:3e:00:00:07" />'
        '<source bridge="br-test" /><target dev="tap-test" /><model type="virtio" /></interface>'
    )
    (serial,) = domain.findall("devices/serial")
    assert xml_of(serial) == (
        '<serial type="file"><source path="/logs/t1.console" /><target port="0" /></serial>'
    )


def test_kvm_defaults_and_the_other_options() -> None:
    domain = ld.build_domain_xml(
        "db",
        {
            "memory_mib": 4096,
            "vcpus": 4,
            "machine": "q35",
            "uuid": "5F1E80B8C43D4F63BA74CE1275046351",
            "boot": ["cdrom", "hd"],
            "disks": [
                {"path": "/dev/vg0/db-root", "cache": "none"},
                {"path": "/isos/install.iso", "device": "cdrom"},
                {"path": "/disks/swap.raw", "bus": "scsi", "readonly": True},
                {"path": "/disks/data.raw", "target": "vdc"},
                {"path": "/disks/more.raw"},
            ],
            "interfaces": [
                {"type": "network", "source": "default", "model": "e1000e", "mtu": 9000}
            ],
        },
    )
    assert domain.get("type") == "kvm"
    assert domain.find("cpu").get("mode") == "host-passthrough"
    assert domain.findtext("uuid") == "5f1e80b8-c43d-4f63-ba74-ce1275046351"
    assert domain.find("os/type").get("machine") == "q35"
    assert [b.get("dev") for b in domain.findall("os/boot")] == ["cdrom", "hd"]
    disks = domain.findall("devices/disk")
    targets = [(d.find("target").get("dev"), d.find("target").get("bus")) for d in disks]
    # vdc is taken: the other virtio disks get vda and vdb; the q35 cdrom goes on sata.
    assert targets == [
        ("vda", "virtio"), ("sda", "sata"), ("sdb", "scsi"), ("vdc", "virtio"), ("vdb", "virtio"),
    ]  # fmt: skip
    root = disks[0]
    assert root.get("type") == "block" and root.find("source").get("dev") == "/dev/vg0/db-root"
    assert root.find("driver").attrib == {"name": "qemu", "type": "raw", "cache": "none"}
    assert disks[1].get("device") == "cdrom" and disks[1].find("readonly") is not None
    assert disks[2].find("readonly") is not None and disks[3].find("readonly") is None
    nic = domain.find("devices/interface")
    assert nic.get("type") == "network" and nic.find("source").get("network") == "default"
    assert nic.find("mac") is None and nic.find("mtu").get("size") == "9000"
    assert nic.find("model").get("type") == "e1000e"
    assert domain.find("devices/serial").get("type") == "pty"


def test_disk_letters_go_past_z() -> None:
    assert [ld._letters(i) for i in (0, 25, 26, 27, 701, 702)] == [
        "a", "z", "aa", "ab", "zz", "aaa",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"memory_mib": 0}, "memory_mib must be a positive integer"),
        ({"vcpus": -1}, "vcpus must be a positive integer"),
        ({"virt_type": "xen"}, "virt_type must be one of kvm, qemu"),
        ({"uuid": "not-a-uuid"}, "is not a UUID"),
        ({"kernel": None, "cmdline": "quiet"}, "initrd and cmdline need description.kernel"),
        ({"kernel": "vmlinuz"}, "kernel must be an absolute path"),
        ({"boot": ["floppy"]}, "boot must be one of hd, cdrom, network"),
        ({"disks": [{"path": "disk.raw"}]}, r"disks\[0\].path must be an absolute path"),
        ({"disks": [{}]}, r"disks\[0\].path is required"),
        ({"disks": [{"path": "/a", "size": 1}]}, r"disks\[0\]: unknown key\(s\) size"),
        ({"disks": [{"path": "/a.iso", "device": "cdrom", "bus": "virtio"}]}, "virtio bus"),
        ({"disks": [{"path": "/a", "target": "sda"}]}, "does not fit bus virtio"),
        ({"disks": [{"path": "/a", "target": "xvda"}]}, "is not a disk name"),
        (
            {"disks": [{"path": "/a", "target": "vda"}, {"path": "/b", "target": "vda"}]},
            "'vda' is used twice",
        ),
        ({"disks": [{"path": "/a", "serial": "has space"}]}, "letters, digits"),
        ({"interfaces": [{"source": "br0", "mac": "fa:16:3e:00:00"}]}, "is not a MAC address"),
        ({"interfaces": [{"source": "br0", "mac": "01:00:5e:00:00:01"}]}, "multicast"),
        ({"interfaces": [{"source": "br0", "target": "vnet7"}]}, "libvirt reserves names"),
        ({"interfaces": [{"source": "br0", "target": "tap-much-too-long"}]}, "not a valid"),
        ({"interfaces": [{"source": ""}]}, "must name a bridge or a libvirt network"),
        (
            {"interfaces": [{"source": "a", "mac": "fa:16:3e:0:0:1"}] * 2},
            "is not a MAC address",
        ),
        (
            {"interfaces": [{"source": "a", "mac": "fa:16:3e:00:00:01"}] * 2},
            "MAC address is used twice",
        ),
        ({"interfaces": [{"source": "a", "target": "tap1"}] * 2}, "target name is used twice"),
        ({"serial_log": "console.log"}, "serial_log must be an absolute path"),
        ({"flavor": "m1.small"}, r"unknown key\(s\) flavor"),
    ],
)
def test_bad_descriptions_are_refused(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ld.DomainInputError, match=message):
        ld.build_domain_xml("t1", {**DESCRIPTION, **change})


def test_full_xml_is_checked_and_named() -> None:
    domain = ld.parse_domain_xml("<domain type='kvm'><memory>1024</memory></domain>", "vm1")
    assert domain[0].tag == "name" and domain.findtext("name") == "vm1"
    same = ld.parse_domain_xml("<domain type='kvm'><name> vm1 </name></domain>", "vm1")
    assert same.findtext("name") == " vm1 "
    for text, message in [
        ("<domain type='kvm'><name>", "not well-formed XML"),
        ("<network/>", "the root element is <network>, not <domain>"),
        ("<domain><name>vm1</name></domain>", "no type attribute"),
        ("<domain type='kvm'><name>vm2</name></domain>", "its <name> is 'vm2', not 'vm1'"),
        ("<domain type='kvm'><name>a</name><name>b</name></domain>", "more than one <name>"),
    ]:
        with pytest.raises(ld.DomainInputError, match=message):
            ld.parse_domain_xml(text, "vm1")


# -------------------------------------------------------------- comparison


@pytest.mark.parametrize(
    ("value", "unit", "kib"),
    [
        ("262144", None, 262144),
        ("256", "MiB", 262144),
        ("256", "M", 262144),
        ("1", "G", 1048576),
        ("1", "GiB", 1048576),
        ("1", "GB", 976563),  # 10^9 bytes, rounded up as libvirt does
        ("1000", "KB", 977),
        ("2048", "bytes", 2),
        ("1", "b", 1),
        ("1", "TiB", 1 << 30),
        ("x", "KiB", None),
        ("1", "parsecs", None),
    ],
)
def test_memory_sizes_in_kib(value: str, unit: str | None, kib: int | None) -> None:
    assert ld.to_kib(value, unit) == kib


def test_what_libvirt_stored_matches_the_description() -> None:
    wanted = ld.build_domain_xml("t1", DESCRIPTION)
    assert ld.differences(wanted, libvirt_xml()) == []


def test_changes_are_found_one_line_each() -> None:
    wanted = ld.build_domain_xml("t1", {**DESCRIPTION, "memory_mib": 512, "vcpus": 2})
    assert ld.differences(wanted, libvirt_xml()) == [
        '<memory unit="KiB">524288</memory>',
        "<vcpu>2</vcpu>",
    ]
    other_bridge = {
        **DESCRIPTION,
        "interfaces": [{"source": "br-other", "mac": "fa:16:3e:00:00:07"}],
    }
    (line,) = ld.differences(ld.build_domain_xml("t1", other_bridge), libvirt_xml())
    assert line.startswith('devices: <interface type="bridge">') and "br-other" in line
    qemu = ld.build_domain_xml("t1", {**DESCRIPTION, "virt_type": "kvm", "cpu_mode": "maximum"})
    assert ld.differences(qemu, libvirt_xml()) == [
        "<domain type='kvm'> (current: 'qemu')",
        '<cpu mode="maximum" />',
    ]


def test_a_device_changed_behind_the_modules_back_is_found() -> None:
    wanted = ld.build_domain_xml("t1", DESCRIPTION)
    gone = libvirt_xml(**{"<serial>config-7</serial>": ""})
    (line,) = ld.differences(wanted, gone)
    assert line.startswith("devices: <disk") and "config-7" in line
    no_disks = ld.parse_libvirt_xml(LIBVIRT_XML)
    devices = no_disks.find("devices")
    devices.remove(devices.find("disk"))
    assert len(ld.differences(wanted, no_disks)) == 1


def test_two_alike_devices_need_two_matches() -> None:
    two = {**DESCRIPTION, "interfaces": [{"source": "br-test"}, {"source": "br-test"}]}
    wanted = ld.build_domain_xml("t1", two)
    (line,) = ld.differences(wanted, libvirt_xml())  # one of the two is missing
    assert "br-test" in line


def test_aliases_numbers_macs_and_uuids_compare_by_value() -> None:
    wanted = ld.parse_domain_xml(
        """<domain type='qemu'>
             <uuid>5F1E80B8C43D4F63BA74CE1275046351</uuid>
             <memory unit='M'>256</memory>
             <os><type machine='pc'>hvm</type></os>
             <devices>
               <interface type='bridge'><mac address='FA:16:3E:00:00:07'/></interface>
               <memballoon model='virtio'>
                 <address type='pci' domain='0' bus='0' slot='3' function='0x0'/>
               </memballoon>
             </devices>
           </domain>""",
        "t1",
    )
    machines = {"pc": "pc-i440fx-7.2", "q35": "pc-q35-7.2"}.get
    assert ld.differences(wanted, libvirt_xml(), lambda m: machines(m, m)) == []
    (line,) = ld.differences(wanted, libvirt_xml())  # without the aliases
    assert 'machine="pc"' in line
    q35 = ld.parse_domain_xml(
        "<domain type='qemu'><os><type machine='q35'>hvm</type></os></domain>", "t1"
    )
    assert len(ld.differences(q35, libvirt_xml(), lambda m: machines(m, m))) == 1


def test_the_fingerprint_ignores_form_and_itself() -> None:
    one = ld.parse_domain_xml(
        "<domain type='qemu'><name>t1</name><vcpu a='1' b='2'>1</vcpu></domain>", "t1"
    )
    two = ld.parse_domain_xml(
        '<domain type="qemu">\n  <name>t1</name>\n  <vcpu b="2" a="1"> 1 </vcpu>\n</domain>', "t1"
    )
    assert ld.fingerprint(one) == ld.fingerprint(two)
    marked = ld.with_fingerprint(one, ld.fingerprint(one))
    assert ld.stored_fingerprint(marked) == ld.fingerprint(one) == ld.fingerprint(marked)
    assert ld.stored_fingerprint(one) is None
    other = ld.parse_domain_xml("<domain type='qemu'><name>t1</name><vcpu>2</vcpu></domain>", "t1")
    assert ld.fingerprint(other) != ld.fingerprint(one)


def test_the_fingerprint_lives_beside_the_users_metadata() -> None:
    text = (
        "<domain type='qemu'><name>t1</name><metadata>"
        "<app:owner xmlns:app='urn:example:app'>ops</app:owner></metadata></domain>"
    )
    wanted = ld.parse_domain_xml(text, "t1")
    marked = ld.with_fingerprint(wanted, "abc")
    assert len(marked.find("metadata")) == 2 and ld.stored_fingerprint(marked) == "abc"
    # From a pasted ``virsh dumpxml``: the old fingerprint is not part of what is wanted.
    pasted = ld.parse_domain_xml(xml_of(ld.with_fingerprint(wanted, "old")), "t1")
    assert ld.stored_fingerprint(pasted) is None
    assert ld.fingerprint(pasted) == ld.fingerprint(wanted)
    bare = ld.parse_domain_xml(xml_of(ld.with_fingerprint(ld.parse_domain_xml(
        "<domain type='qemu'/>", "t1"), "x")), "t1")  # fmt: skip
    assert bare.find("metadata") is None


def test_same_definition_sets_the_fingerprint_aside() -> None:
    current = libvirt_xml()
    assert ld.same_definition(current, ld.with_fingerprint(current, "abc"))
    assert not ld.same_definition(current, libvirt_xml(**{">262144</memory>": ">524288</memory>"}))


def test_carry_over_keeps_the_uuid_and_the_made_up_macs() -> None:
    current = libvirt_xml(
        **{"<mac address='fa:16:3e:00:00:07'/>": "<mac address='52:54:00:ab:cd:ef'/>"}
    )
    two_nics = {
        **DESCRIPTION,
        "interfaces": [{"source": "br-new"}, {"source": "br-test", "target": "tap-test"}],
    }
    kept = ld.carry_over(ld.build_domain_xml("t1", two_nics), current)
    assert kept.findtext("uuid") == "5f1e80b8-c43d-4f63-ba74-ce1275046351"
    assert [e.tag for e in kept][:2] == ["name", "uuid"]
    nics = kept.findall("devices/interface")
    # The matching interface keeps its MAC; the new one gets none (libvirt makes one up).
    assert nics[0].find("mac") is None
    assert nics[1].find("mac").get("address") == "52:54:00:ab:cd:ef"
    moved = ld.carry_over(
        ld.build_domain_xml("t1", {**DESCRIPTION, "interfaces": [{"source": "br-moved"}]}), current
    )
    # Same place among the interfaces: the NIC keeps its MAC on another bridge.
    assert moved.find("devices/interface/mac").get("address") == "52:54:00:ab:cd:ef"
    given = ld.carry_over(ld.build_domain_xml("t1", DESCRIPTION), current)
    assert given.find("devices/interface/mac").get("address") == "fa:16:3e:00:00:07"
    assert ld.carry_over(ld.build_domain_xml("t1", DESCRIPTION), None).find("uuid") is None


def test_to_text_is_indented_and_unmarked() -> None:
    text = ld.to_text(ld.with_fingerprint(ld.build_domain_xml("t1", DESCRIPTION), "abc"))
    assert text.startswith('<domain type="qemu">\n  <name>t1</name>\n')
    assert "sha256" not in text and "metadata" not in text


# -------------------------------------------------------- the documentation


def _documentation() -> dict[str, Any]:
    source = (ROOT / "plugins" / "modules" / "libvirt_domain.py").read_text()
    text = source.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0]
    return yaml.safe_load(text)


def _compare(documented: dict[str, Any], spec: dict[str, Any], where: str) -> list[str]:
    problems = []
    if set(documented) != set(spec):
        problems.append(f"{where}: documented {sorted(documented)} but spec {sorted(spec)}")
    for key in set(documented) & set(spec):
        doc, option = documented[key], spec[key]
        for field in ("type", "elements", "choices", "required"):
            want = option.get(field, False if field == "required" else None)
            have = doc.get(field, False if field == "required" else None)
            if want != have:
                problems.append(f"{where}.{key}: {field} {have!r} documented, {want!r} in spec")
        if option.get("default") != doc.get("default"):
            problems.append(f"{where}.{key}: default differs")
        if "options" in option:
            problems += _compare(doc.get("suboptions", {}), option["options"], f"{where}.{key}")
    return problems


def test_the_documentation_matches_the_description_spec() -> None:
    documented = _documentation()["options"]["description"]["suboptions"]
    assert _compare(documented, ld.description_spec(), "description") == []


def test_ansible_doc_reads_the_module() -> None:
    link = ROOT / "scripts" / "link-collection.sh"
    if link.exists():
        subprocess.run([str(link)], check=True, cwd=ROOT, capture_output=True)
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections")}
    ansible_doc = str(Path(sys.executable).with_name("ansible-doc"))
    run = subprocess.run(
        [ansible_doc, "--json", "stratus.cloud.libvirt_domain"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)["stratus.cloud.libvirt_domain"]
    assert set(doc["doc"]["options"]) == {
        "name", "state", "xml", "description", "autostart", "uri", "shutdown_timeout", "force",
    }  # fmt: skip
    assert {"state", "xml", "uuid", "actions", "needs_restart"} <= set(doc["return"])
    assert doc["examples"].strip()
