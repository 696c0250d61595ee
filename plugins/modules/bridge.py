#!/usr/bin/python
# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: bridge
short_description: Manage a Linux bridge (provider bridges, overlay bridges) through netlink
version_added: 0.3.0
description:
  - Creates, updates and deletes a Linux bridge with pyroute2, as
    C(ip link add type bridge) would, and keeps its MTU, addresses,
    administrative state, STP, VLAN filtering and ports in line with the
    options.
  - Compares the desired state with the link's current state and changes
    only what differs, in place; a bridge has no attribute that needs it to
    be deleted and created again.
  - Options left out are left as they are on an existing bridge (a new
    bridge starts from the kernel's defaults).
  - O(state=absent) deletes the bridge; its ports stay, detached.
author:
  - Stratus engineers (@stratus)
extends_documentation_fragment:
  - stratus.cloud.netlink
options:
  name:
    description:
      - Name of the bridge, at most 15 characters.
    type: str
    required: true
  ports:
    description:
      - Interfaces enslaved to the bridge. When given, the bridge has
        exactly these ports; ports it has beyond them are detached (not
        deleted), and V([]) detaches them all. When omitted, the ports are
        left as they are, so that other tasks (M(stratus.cloud.vlan),
        M(stratus.cloud.tunnel) with their O(master) option) may add their
        own.
      - Every port must exist.
    type: list
    elements: str
  stp:
    description:
      - Spanning tree protocol on (V(true)) or off (V(false)); left as it is
        when omitted (a new bridge has it off).
    type: bool
  vlan_filtering:
    description:
      - VLAN filtering on the bridge; left as it is when omitted (off on a
        new bridge).
      - Needs a kernel built with C(CONFIG_BRIDGE_VLAN_FILTERING); without it
        the module fails, saying so.
    type: bool
attributes:
  check_mode:
    description: Can run in check_mode and predict changes without modifying the target.
    support: full
    details:
      - Reads the link and reports the change it would make.
      - A port that does not exist yet gives a warning.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode).
    support: full
    details: The bridge's attributes before and after, as dicts.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - Linux, and root or the CAP_NET_ADMIN capability on the host
  - pyroute2 0.7 or later for the Python that runs the module (Debian package C(python3-pyroute2))
notes:
  - The bridge's MTU follows its ports' smallest MTU until O(mtu) sets one.
seealso:
  - module: stratus.cloud.vlan
  - module: stratus.cloud.tunnel
"""

EXAMPLES = r"""
- name: Provider bridge on the physical interface, with the host's address
  stratus.cloud.bridge:
    name: br-provider
    ports: [eno2]
    mtu: 9000
    addresses: [192.0.2.10/24, "2001:db8::10/64"]

- name: A bridge inside a network namespace, down for now
  stratus.cloud.bridge:
    name: br-int
    netns: qrouter-demo
    up: false

- name: Remove the bridge (its ports stay)
  stratus.cloud.bridge:
    name: br-old
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the bridge was (in check mode, would be) created, changed or deleted.
  returned: always
  type: bool
name:
  description: Name of the bridge.
  returned: always
  type: str
  sample: br-provider
changes:
  description:
    - The attributes that differed from the desired state (all the given
      ones on creation; V(removed) on deletion).
  returned: always
  type: list
  elements: str
  sample: [mtu, addresses]
recreated:
  description: Always false for a bridge (nothing needs it to be recreated).
  returned: always
  type: bool
link:
  description:
    - The bridge after the run, read back from the kernel (in check mode,
      as predicted); empty after deletion.
  returned: always
  type: dict
  sample:
    name: br-provider
    kind: bridge
    mtu: 9000
    up: true
    master: null
    addresses: [192.0.2.10/24, "2001:db8::10/64"]
    stp: false
    vlan_filtering: false
    ports: [eno2]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratus.cloud.plugins.module_utils.netlink import (
    NetlinkInputError,
    check_ifname,
    common_argument_spec,
    common_desired,
    run_module,
)


def _create_args(ipr, desired: dict) -> dict:  # type: ignore[no-untyped-def]
    args = {}
    if desired.get("stp") is not None:
        args["br_stp_state"] = int(desired["stp"])
    if desired.get("vlan_filtering") is not None:
        args["br_vlan_filtering"] = int(desired["vlan_filtering"])
    return args


def _update_args(changes: dict) -> dict:
    args = {}
    if "stp" in changes:
        args["br_stp_state"] = int(changes["stp"])
    if "vlan_filtering" in changes:
        args["br_vlan_filtering"] = int(changes["vlan_filtering"])
    return args


def main() -> None:
    spec = common_argument_spec()
    del spec["master"]  # Linux does not enslave a bridge to a bridge
    spec.update(
        {
            "ports": {"type": "list", "elements": "str"},
            "stp": {"type": "bool"},
            "vlan_filtering": {"type": "bool"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        desired = common_desired(p, "bridge")
        ports = None
        if p["ports"] is not None:
            ports = sorted({check_ifname(port, "ports") for port in p["ports"]})
            if p["name"] in ports:
                raise NetlinkInputError("ports: a bridge cannot be its own port")
        desired.update({"stp": p["stp"], "vlan_filtering": p["vlan_filtering"], "ports": ports})
    except NetlinkInputError as exc:
        module.fail_json(msg=str(exc))
    run_module(
        module,
        ("bridge",),
        desired,
        {"ports": ports},
        _create_args,
        _update_args,
    )


if __name__ == "__main__":
    main()
