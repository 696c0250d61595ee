#!/usr/bin/python
# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: libvirt_domain
short_description: Define, start, shut down and undefine libvirt domains (KVM or QEMU guests)
version_added: 0.5.0
description:
  - Keeps a libvirt domain defined as given, either by full domain XML
    (O(xml)) or by a short O(description) that the module turns into domain
    XML, and brings it to the wanted power state.
  - "Idempotent despite libvirt's rewriting of every definition (defaults,
    expanded aliases, units, PCI and MAC addresses): a definition made by the
    module carries a fingerprint of the wanted XML in its C(<metadata>), and
    every element and attribute of the wanted XML must be found in the
    current definition (memory compared in KiB, numbers by value, machine
    aliases by their canonical name). When either check fails, the module
    defines the wanted XML, keeping the domain's UUID and the MAC addresses
    of interfaces that give none, and reports a change only when libvirt's
    definition really differs afterwards."
  - A running domain whose definition changes keeps running as it is; the
    new definition applies at its next start (RV(needs_restart)).
  - O(state=shutdown) presses the ACPI power button (again every 5 seconds,
    for a guest that was not listening yet) and waits O(shutdown_timeout)
    seconds for the guest to power off, then destroys it.
  - O(state=absent) destroys a running domain and undefines it, with its
    managed save image, snapshot and checkpoint metadata and its NVRAM
    file; its disks stay.
author:
  - Stratus engineers (@stratus)
options:
  name:
    description:
      - Name of the domain. With O(xml), its C(<name>) must be this name
        (or missing, and the module adds it).
    type: str
    required: true
  state:
    description:
      - V(present) defines the domain (or updates its definition) and leaves
        it running or not, as it is.
      - V(running) defines it if needed and starts it (resumes it when paused).
      - V(shutdown) (or its synonym V(stopped)) defines it if needed and
        powers it off by ACPI, or by destroying it with O(force=true).
      - V(absent) destroys it if it runs and undefines it.
      - Without O(xml) or O(description), V(present), V(running) and
        V(shutdown) act on an existing domain and fail when there is none.
    type: str
    choices: [present, running, shutdown, stopped, absent]
    default: present
  xml:
    description:
      - The full domain XML (C(<domain type="kvm">...</domain>)), as
        C(virsh define) takes it; for anything O(description) does not cover.
      - Mutually exclusive with O(description).
    type: str
  description:
    description:
      - The domain in a few keys; the module writes the domain XML (x86_64,
        ACPI and APIC, the clock in UTC, a serial console).
      - Mutually exclusive with O(xml).
    type: dict
    suboptions:
      memory_mib:
        description: Memory of the guest, in MiB.
        type: int
        required: true
      vcpus:
        description: Number of virtual CPUs.
        type: int
        default: 1
      virt_type:
        description:
          - V(kvm) for hardware virtualization (datacenter hosts), V(qemu)
            for QEMU's software emulation (TCG) where KVM cannot run.
        type: str
        choices: [kvm, qemu]
        default: kvm
      machine:
        description:
          - QEMU machine type (V(pc), V(q35), or a versioned one); libvirt's
            default (V(pc)) when omitted. An alias matches the versioned
            machine libvirt stores for it.
        type: str
      cpu_mode:
        description:
          - The guest CPU model. Omitted, V(host-passthrough) with
            O(description.virt_type=kvm) and libvirt's default (qemu64) with
            O(description.virt_type=qemu).
        type: str
        choices: [host-passthrough, host-model, maximum]
      uuid:
        description:
          - UUID of the domain (for example the instance's); libvirt makes
            one up when omitted, and the module keeps it afterwards.
        type: str
      kernel:
        description: Kernel for direct kernel boot (a path on the host).
        type: path
      initrd:
        description: Initial ramdisk for direct kernel boot; needs O(description.kernel).
        type: path
      cmdline:
        description:
          - Kernel command line for direct kernel boot; needs
            O(description.kernel). Add C(console=ttyS0) to see the kernel on
            the serial console.
        type: str
      boot:
        description:
          - Boot devices in order, when not booting a kernel directly;
            libvirt's default (V(hd)) when omitted.
        type: list
        elements: str
        choices: [hd, cdrom, network]
      disks:
        description: Disks and CD-ROMs, in order.
        type: list
        elements: dict
        default: []
        suboptions:
          path:
            description:
              - Image file, or block device (a path under C(/dev/)).
            type: path
            required: true
          format:
            description: Format of the image.
            type: str
            choices: [raw, qcow2]
            default: raw
          device:
            description: A V(disk) or a V(cdrom) (read-only).
            type: str
            choices: [disk, cdrom]
            default: disk
          bus:
            description:
              - Bus of the disk. Omitted, V(virtio) for disks, V(ide) for
                CD-ROMs (V(sata) on a q35 machine). A CD-ROM cannot be on
                V(virtio).
            type: str
            choices: [virtio, scsi, sata, ide, usb]
          target:
            description:
              - Target name (V(vda), V(sdb), V(hdc)...), numbered in order per
                bus prefix when omitted. Guests may name disks in the order
                they see them instead, so use O(description.disks[].serial) to
                find a disk.
            type: str
          serial:
            description:
              - Serial number the guest sees (letters, digits, C(_ . + -));
                a virtio disk shows its first 20 characters in
                C(/dev/disk/by-id).
            type: str
          readonly:
            description: Read-only disk (CD-ROMs always are).
            type: bool
            default: false
          cache:
            description: QEMU's cache mode for the disk; libvirt's default when omitted.
            type: str
            choices: [default, none, writethrough, writeback, directsync, unsafe]
      interfaces:
        description: Network interfaces, in order.
        type: list
        elements: dict
        default: []
        suboptions:
          type:
            description:
              - V(bridge) plugs the tap into a Linux bridge, V(network) into a
                libvirt network.
            type: str
            choices: [bridge, network]
            default: bridge
          source:
            description: Name of the bridge or of the libvirt network.
            type: str
            required: true
          mac:
            description:
              - MAC address; libvirt makes one up when omitted, and the
                module keeps it on later redefinitions.
            type: str
          model:
            description: NIC model the guest sees.
            type: str
            choices: [virtio, e1000, e1000e, rtl8139]
            default: virtio
          target:
            description:
              - Name of the tap device on the host (at most 15 characters;
                not starting with C(vnet), C(vif), C(macvtap) or C(macvlan),
                which libvirt keeps for the names it makes up).
            type: str
          mtu:
            description: MTU of the tap and the guest's NIC.
            type: int
      serial_log:
        description:
          - File on the host that receives the first serial port's output
            (the guest's console log). A pseudo-terminal serial port
            (C(virsh console)) when omitted. The file is rewritten at each start.
        type: path
  autostart:
    description:
      - Start the domain when libvirtd starts. Left as it is when omitted.
    type: bool
  uri:
    description:
      - libvirt connection URI, such as V(qemu:///system) or
        V(qemu:///system?socket=/run/libvirt/libvirt-sock).
    type: str
    default: qemu:///system
  shutdown_timeout:
    description:
      - Seconds to wait for the guest to power off after the ACPI power
        button before destroying it (O(state=shutdown)). V(0) destroys at once.
    type: int
    default: 60
  force:
    description:
      - With O(state=shutdown), destroy the domain (pull the plug) instead
        of pressing the power button.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check_mode and predict changes without modifying the target.
    support: full
    details:
      - Reports the predicted actions; a redefinition it predicts may turn out
        to be cosmetic (unchanged) in a real run.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode).
    support: full
    details:
      - The domain's state, autostart and inactive XML before and after (in
        check mode, the XML the module would define).
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - libvirt's Python binding for the Python that runs the module (Debian
    package C(python3-libvirt); on PyPI C(libvirt-python))
  - a libvirtd (or virtqemud) the module can reach at O(uri), as root or a
    member of its C(libvirt) group for V(qemu:///system)
notes:
  - The module leaves disks, their files and the serial log file in place,
    also with O(state=absent).
  - Elements that libvirt adds on its own (controllers, input devices, a
    memory balloon, PCI addresses) are not compared; when the wanted XML
    changes, the whole definition is replaced by it.
seealso:
  - name: libvirt domain XML format
    description: Every element O(xml) may hold.
    link: https://libvirt.org/formatdomain.html
"""

EXAMPLES = r"""
- name: A small guest on the provider bridge, from its qcow2 disk
  stratus.cloud.libvirt_domain:
    name: web-1
    state: running
    autostart: true
    description:
      memory_mib: 2048
      vcpus: 2
      disks:
        - path: /var/lib/stratus/instances/web-1/disk.qcow2
          format: qcow2
          serial: web-1-root
      interfaces:
        - source: br-provider
          mac: "fa:16:3e:00:00:05"
          target: tap-web-1
      serial_log: /var/lib/stratus/instances/web-1/console.log

- name: Direct kernel boot under software emulation, where KVM cannot run
  stratus.cloud.libvirt_domain:
    name: test-guest
    state: running
    description:
      memory_mib: 256
      virt_type: qemu
      kernel: /var/cache/stratus-lab/test-image/stratus-test-vmlinuz
      initrd: /var/cache/stratus-lab/test-image/stratus-test-initrd
      cmdline: console=ttyS0
      serial_log: /var/log/stratus/test-guest.log

- name: A domain from full domain XML
  stratus.cloud.libvirt_domain:
    name: appliance
    state: present
    xml: "{{ lookup('ansible.builtin.file', 'appliance.xml') }}"

- name: Power it off by ACPI, destroying it after two minutes
  stratus.cloud.libvirt_domain:
    name: web-1
    state: shutdown
    shutdown_timeout: 120

- name: Remove it (its disks stay)
  stratus.cloud.libvirt_domain:
    name: web-1
    state: absent
"""

RETURN = r"""
changed:
  description:
    - Whether the domain was (in check mode, would be) defined, changed,
      started, stopped or removed.
  returned: always
  type: bool
name:
  description: Name of the domain.
  returned: always
  type: str
  sample: web-1
state:
  description:
    - The domain's state after the run (in check mode, as predicted), as
      C(virsh domstate) names it, or V(absent).
  returned: always
  type: str
  sample: running
active:
  description: Whether the domain runs (or is paused) after the run.
  returned: always
  type: bool
autostart:
  description: Whether libvirtd starts the domain when it starts.
  returned: always
  type: bool
uuid:
  description: UUID of the domain; null when it is absent (or, in check mode, not yet made up).
  returned: always
  type: str
  sample: 3f1c2a8e-5d0b-4c1e-9a57-7f0f3b6d2c11
xml:
  description:
    - The domain's inactive XML after the run, as libvirt stores it (in check
      mode, the XML the module would define); empty when the domain is absent.
  returned: always
  type: str
actions:
  description: What the module did (in check mode, would do), in order.
  returned: always
  type: list
  elements: str
  sample: [defined, started]
differences:
  description:
    - The elements of the wanted XML that the current definition lacked or
      had otherwise, one line of XML each (empty when it had them all, or
      when the domain was new).
  returned: always
  type: list
  elements: str
  sample: ["<memory unit=\"KiB\">524288</memory>"]
needs_restart:
  description:
    - Whether the definition of a running domain changed, so that the
      guest runs on the old one until it is shut down and started again.
  returned: always
  type: bool
"""

import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.stratus.cloud.plugins.module_utils.libvirt_domain import (
    LIBVIRT_IMPORT_ERROR,
    STATES,
    DomainError,
    DomainInputError,
    build_domain_xml,
    connect,
    description_spec,
    manage_domain,
    parse_domain_xml,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "state": {"type": "str", "default": "present", "choices": list(STATES)},
            "xml": {"type": "str"},
            "description": {"type": "dict", "options": description_spec()},
            "autostart": {"type": "bool"},
            "uri": {"type": "str", "default": "qemu:///system"},
            "shutdown_timeout": {"type": "int", "default": 60},
            "force": {"type": "bool", "default": False},
        },
        mutually_exclusive=[("xml", "description")],
        supports_check_mode=True,
    )
    p = module.params
    name = p["name"]
    if not name or "/" in name:
        module.fail_json(msg=f"name {name!r} is not a valid domain name (non-empty, no '/')")
    if p["shutdown_timeout"] < 0:
        module.fail_json(msg="shutdown_timeout must be 0 or more seconds")
    wanted = None
    try:
        if p["xml"] is not None:
            wanted = parse_domain_xml(p["xml"], name)
        elif p["description"] is not None:
            wanted = build_domain_xml(name, p["description"])
    except DomainInputError as exc:
        module.fail_json(msg=str(exc))
    if LIBVIRT_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib(
                "libvirt-python (the libvirt binding: Debian package python3-libvirt)"
            ),
            exception=LIBVIRT_IMPORT_ERROR,
        )
    try:
        conn = connect(p["uri"])
    except DomainError as exc:
        module.fail_json(msg=str(exc))
    try:
        result = manage_domain(conn, p, wanted, module.check_mode)
    except DomainError as exc:
        module.fail_json(msg=str(exc), exception=traceback.format_exc())
    finally:
        conn.close()
    diff = result.pop("diff")
    warnings = result.pop("warnings")
    for warning in warnings:
        module.warn(warning)
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
