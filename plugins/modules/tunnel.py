#!/usr/bin/python
# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tunnel
short_description: Manage a VXLAN, GRE or GRETAP tunnel endpoint through netlink
version_added: 0.3.0
description:
  - Creates, updates and deletes a tunnel link with pyroute2, as
    C(ip link add <name> type vxlan|gre|gretap ...) would, and keeps its
    MTU, addresses, administrative state and bridge in line with the options.
  - The tunnel's own attributes (O(kind), O(vni), O(local), O(remote),
    O(group), O(dstport), O(dev), O(ttl), O(key), O(learning)) are fixed
    when the kernel creates the link. Changing any of them on an existing
    link deletes it and creates it again (its addresses and bridge
    membership are set again from the options); the result says so in
    RV(recreated) and the diff's header names the attributes that forced it.
    MTU, addresses, O(up) and O(master) change in place.
  - For VXLAN, O(vni), O(local), O(remote), O(group), O(dstport), O(dev) and
    O(learning) describe the whole tunnel (one left out means "not set", so
    a tunnel with a remote loses it when O(remote) is left out); O(ttl) is
    compared only when given. The same holds for GRE's O(local), O(remote),
    O(dev) and O(key).
  - VXLAN needs the kernel's C(vxlan) module; GRE and GRETAP need C(ip_gre).
author:
  - Stratus engineers (@stratus)
extends_documentation_fragment:
  - stratus.cloud.netlink
  - stratus.cloud.netlink.master
options:
  name:
    description:
      - Name of the tunnel link, at most 15 characters.
    type: str
    required: true
  kind:
    description:
      - V(vxlan) (Ethernet over UDP), V(gretap) (Ethernet over GRE, for a
        bridge) or V(gre) (IP over GRE, a layer 3 point-to-point link).
    type: str
    required: true
    choices: [vxlan, gre, gretap]
  vni:
    description:
      - VXLAN network identifier, 0 to 16777215. Required for V(vxlan), not
        allowed otherwise.
    type: int
  local:
    description:
      - Local tunnel endpoint address (IPv4 or IPv6 for VXLAN, IPv4 for GRE).
    type: str
  remote:
    description:
      - Remote endpoint (a unicast address). For VXLAN, leave it out to use
        O(group) or forwarding entries added by something else (an agent).
    type: str
  group:
    description:
      - For VXLAN only, the multicast group that floods unknown destinations. Not
        with O(remote); needs O(dev).
    type: str
  dstport:
    description:
      - For VXLAN only, the UDP destination port; 4789 (the IANA port) when left out.
    type: int
  dev:
    description:
      - Underlay link the encapsulated packets leave by. It must exist.
    type: str
  ttl:
    description:
      - TTL of the outer packets, 1 to 255, or 0 to inherit it; the
        kernel's default when left out (and then not compared).
    type: int
  key:
    description:
      - For GRE and GRETAP only, the GRE key (0 to 4294967295), used in both
        directions.
    type: int
  learning:
    description:
      - For VXLAN only, learn the remote MAC addresses from the traffic; V(true)
        when left out.
    type: bool
attributes:
  check_mode:
    description: Can run in check_mode and predict changes without modifying the target.
    support: full
    details:
      - Reads the link and reports the change it would make.
      - An underlay or master that does not exist yet gives a warning.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode).
    support: full
    details:
      - The tunnel's attributes before and after, as dicts.
      - A recreation is named in the after header.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - Linux with vxlan (VXLAN) or ip_gre (GRE, GRETAP) support, and root or CAP_NET_ADMIN
  - pyroute2 0.7 or later for the Python that runs the module (Debian package C(python3-pyroute2))
notes:
  - Encapsulation takes room; VXLAN over IPv4 needs 50 bytes, GRETAP 38
    and GRE 24 under the underlay's MTU. Set O(mtu) (or the bridge's)
    accordingly.
seealso:
  - module: stratus.cloud.bridge
  - module: stratus.cloud.vlan
"""

EXAMPLES = r"""
- name: VXLAN tunnel endpoint of tenant network 1001, in its bridge
  stratus.cloud.tunnel:
    name: vxlan-1001
    kind: vxlan
    vni: 1001
    local: 10.0.0.11
    dev: eno1
    learning: false
    master: brq-1001
    mtu: 1450

- name: Multicast VXLAN
  stratus.cloud.tunnel:
    name: vxlan-7
    kind: vxlan
    vni: 7
    group: 239.1.1.7
    dev: eno1

- name: GRETAP to the other site
  stratus.cloud.tunnel:
    name: gretap-site2
    kind: gretap
    local: 192.0.2.1
    remote: 198.51.100.1
    key: 42
    ttl: 64
    master: br-site

- name: Remove it
  stratus.cloud.tunnel:
    name: gretap-site2
    kind: gretap
    state: absent
"""

RETURN = r"""
changed:
  description: Whether the tunnel was (in check mode, would be) created, changed or deleted.
  returned: always
  type: bool
name:
  description: Name of the tunnel link.
  returned: always
  type: str
  sample: vxlan-1001
changes:
  description:
    - The attributes that differed from the desired state (all the given
      ones on creation; V(removed) on deletion).
  returned: always
  type: list
  elements: str
  sample: [vni]
recreated:
  description: Whether the link was (would be) deleted and created again for a tunnel attribute.
  returned: always
  type: bool
link:
  description:
    - The tunnel after the run, read back from the kernel (in check mode,
      as predicted); empty after deletion.
  returned: always
  type: dict
  sample:
    name: vxlan-1001
    kind: vxlan
    mtu: 1450
    up: true
    master: brq-1001
    addresses: []
    vni: 1001
    local: 10.0.0.11
    remote: null
    group: null
    dstport: 4789
    dev: eno1
    ttl: 0
    learning: false
"""

import ipaddress

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratus.cloud.plugins.module_utils.netlink import (
    GRE_KEY,
    NetlinkInputError,
    check_ifname,
    check_range,
    common_argument_spec,
    common_desired,
    index_of,
    normalize_ip,
    run_module,
)

VXLAN_ONLY = ("vni", "group", "dstport", "learning")
GRE_ONLY = ("key",)
DEFAULT_DSTPORT = 4789


def tunnel_desired(p: dict) -> dict:
    """The tunnel's own desired attributes, checked; raises NetlinkInputError."""
    kind = p["kind"]
    wrong = [k for k in (VXLAN_ONLY if kind != "vxlan" else GRE_ONLY) if p.get(k) is not None]
    if wrong:
        raise NetlinkInputError(f"{', '.join(wrong)}: not an option of a {kind} tunnel")
    if p.get("dev") is not None:
        check_ifname(p["dev"], "dev")
    ttl = check_range(p.get("ttl"), 0, 255, "ttl")
    if kind == "vxlan":
        if p.get("vni") is None:
            raise NetlinkInputError("vni is required for a vxlan tunnel")
        vni = check_range(p["vni"], 0, 16777215, "vni")
        local = normalize_ip(p.get("local"), "local")
        remote = normalize_ip(p.get("remote"), "remote")
        group = normalize_ip(p.get("group"), "group")
        if remote and group:
            raise NetlinkInputError("remote and group are mutually exclusive")
        if remote and ipaddress.ip_address(remote).is_multicast:
            raise NetlinkInputError(f"remote: {remote} is a multicast address; use group")
        if group and not ipaddress.ip_address(group).is_multicast:
            raise NetlinkInputError(f"group: {group} is not a multicast address")
        if group and not p.get("dev"):
            raise NetlinkInputError("group needs dev (the link that joins the group)")
        versions = {ipaddress.ip_address(a).version for a in (local, remote, group) if a}
        if len(versions) > 1:
            raise NetlinkInputError("local, remote and group must be of one IP version")
        dstport = p.get("dstport")
        dstport = DEFAULT_DSTPORT if dstport is None else check_range(dstport, 1, 65535, "dstport")
        learning = True if p.get("learning") is None else p["learning"]
        return {
            "vni": vni,
            "local": local,
            "remote": remote,
            "group": group,
            "dstport": dstport,
            "dev": p.get("dev"),
            "ttl": ttl,
            "learning": learning,
        }
    return {
        "local": normalize_ip(p.get("local"), "local", version=4),
        "remote": normalize_ip(p.get("remote"), "remote", version=4),
        "dev": p.get("dev"),
        "ttl": ttl,
        "key": check_range(p.get("key"), 0, 4294967295, "key"),
    }


def _create_args(ipr, desired: dict) -> dict:  # type: ignore[no-untyped-def]
    dev = index_of(ipr, desired["dev"]) if desired.get("dev") else None
    args: dict = {}
    if desired["kind"] == "vxlan":
        args["vxlan_id"] = desired["vni"]
        args["vxlan_port"] = desired["dstport"]
        args["vxlan_learning"] = int(desired["learning"])
        for key in ("local", "remote", "group"):
            if desired.get(key):
                six = ipaddress.ip_address(desired[key]).version == 6
                attr = "vxlan_local" if key == "local" else "vxlan_group"
                args[attr + ("6" if six else "")] = desired[key]
        if dev:
            args["vxlan_link"] = dev
        if desired.get("ttl") is not None:
            args["vxlan_ttl"] = desired["ttl"]
        return args
    for key in ("local", "remote"):
        if desired.get(key):
            args[f"gre_{key}"] = desired[key]
    if dev:
        args["gre_link"] = dev
    if desired.get("ttl") is not None:
        args["gre_ttl"] = desired["ttl"]
    if desired.get("key") is not None:
        args.update(
            {
                "gre_ikey": desired["key"],
                "gre_okey": desired["key"],
                "gre_iflags": GRE_KEY,
                "gre_oflags": GRE_KEY,
            }
        )
    return args


def main() -> None:
    spec = common_argument_spec()
    spec.update(
        {
            "kind": {"type": "str", "required": True, "choices": ["vxlan", "gre", "gretap"]},
            "vni": {"type": "int"},
            "local": {"type": "str"},
            "remote": {"type": "str"},
            "group": {"type": "str"},
            "dstport": {"type": "int"},
            "dev": {"type": "str"},
            "ttl": {"type": "int"},
            "key": {"type": "int", "no_log": False},
            "learning": {"type": "bool"},
        }
    )
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    p = module.params
    try:
        desired = common_desired(p, p["kind"])
        if p["state"] == "present":
            desired.update(tunnel_desired(p))
    except NetlinkInputError as exc:
        module.fail_json(msg=str(exc))
    own = [k for k in desired if k not in ("name", "kind", "mtu", "up", "master", "addresses")]
    run_module(
        module,
        ("vxlan", "gre", "gretap"),
        desired,
        {"dev": p["dev"], "master": p["master"]},
        _create_args,
        exact=[k for k in own if k != "ttl"],
        immutable=own,
    )


if __name__ == "__main__":
    main()
