#!/usr/bin/python
# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: vlan
short_description: Manage an 802.1Q VLAN sub-interface through netlink
version_added: 0.3.0
description:
  - Creates, updates and deletes a VLAN sub-interface of a parent link with
    pyroute2, as C(ip link add link <link> name <name> type vlan id <id>)
    would, and keeps its MTU, addresses, administrative state and bridge in
    line with the options.
  - The parent link and the VLAN id are fixed when the kernel creates the
    device. Changing either on an existing device deletes it and creates it
    again (its addresses and bridge membership are set again from the
    options); the result says so in RV(recreated) and the diff's header
    names the attributes that forced it.
  - Needs the kernel's 8021q support (module C(8021q)).
author:
  - Stratus engineers (@stratus)
extends_documentation_fragment:
  - stratus.cloud.netlink
  - stratus.cloud.netlink.master
options:
  name:
    description:
      - Name of the VLAN device, at most 15 characters. Defaults to
        C(<link>.<vlan_id>); a long parent name may need an explicit one.
    type: str
  link:
    description:
      - The parent link that carries the tagged frames (for example C(eno2)
        or a bond). It must exist.
    type: str
    required: true
  vlan_id:
    description:
      - The 802.1Q VLAN id, 1 to 4094.
    type: int
    required: true
attributes:
  check_mode:
    description: Can run in check_mode and predict changes without modifying the target.
    support: full
    details:
      - Reads the link and reports the change it would make.
      - A parent or master that does not exist yet gives a warning.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode).
    support: full
    details: The device's attributes before and after, as dicts.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - Linux with 802.1Q VLAN support, and root or the CAP_NET_ADMIN capability on the host
  - pyroute2 0.7 or later for the Python that runs the module (Debian package C(python3-pyroute2))
notes:
  - The MTU of a VLAN device cannot exceed its parent's.
seealso:
  - module: stratus.cloud.bridge
  - module: stratus.cloud.tunnel
"""

EXAMPLES = r"""
- name: VLAN 101 on the provider interface, in the provider bridge of physnet1
  stratus.cloud.vlan:
    link: eno2
    vlan_id: 101
    master: br-vlan101

- name: Storage VLAN with an address
  stratus.cloud.vlan:
    name: storage
    link: bond0
    vlan_id: 20
    mtu: 9000
    addresses: [10.20.0.11/24]

- name: Remove it
  stratus.cloud.vlan:
    link: eno2
    vlan_id: 101
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the device was (in check mode, would be) created, changed or deleted.
  returned: always
  type: bool
name:
  description: Name of the VLAN device.
  returned: always
  type: str
  sample: eno2.101
changes:
  description:
    - The attributes that differed from the desired state (all the given
      ones on creation; V(removed) on deletion).
  returned: always
  type: list
  elements: str
  sample: [vlan_id]
recreated:
  description: Whether the device was (would be) deleted and created again for a new parent or id.
  returned: always
  type: bool
link:
  description:
    - The device after the run, read back from the kernel (in check mode,
      as predicted); empty after deletion.
  returned: always
  type: dict
  sample:
    name: eno2.101
    kind: vlan
    mtu: 1500
    up: true
    master: br-vlan101
    addresses: []
    link: eno2
    vlan_id: 101
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratus.cloud.plugins.module_utils.netlink import (
    NetlinkInputError,
    check_ifname,
    check_range,
    common_argument_spec,
    common_desired,
    index_of,
    run_module,
)


def _create_args(ipr, desired: dict) -> dict:  # type: ignore[no-untyped-def]
    return {"link": index_of(ipr, desired["link"]), "vlan_id": desired["vlan_id"]}


def main() -> None:
    spec = common_argument_spec()
    spec["name"] = {"type": "str"}
    spec.update(
        {
            "link": {"type": "str", "required": True},
            "vlan_id": {"type": "int", "required": True},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        check_ifname(p["link"], "link")
        check_range(p["vlan_id"], 1, 4094, "vlan_id")
        p["name"] = p["name"] or f"{p['link']}.{p['vlan_id']}"
        desired = common_desired(p, "vlan")
        if p["name"] == p["link"]:
            raise NetlinkInputError("name: a VLAN device cannot be named like its parent link")
        desired.update({"link": p["link"], "vlan_id": p["vlan_id"]})
    except NetlinkInputError as exc:
        module.fail_json(msg=str(exc))
    run_module(
        module,
        ("vlan",),
        desired,
        {"link": p["link"], "master": p["master"]},
        _create_args,
        exact=("link", "vlan_id"),
        immutable=("link", "vlan_id"),
    )


if __name__ == "__main__":
    main()
