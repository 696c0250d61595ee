# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0
"""Options that stratus.cloud.bridge, vlan and tunnel share (module_utils/netlink.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  state:
    description:
      - V(present) creates or updates the link; V(absent) deletes it.
    type: str
    choices: [present, absent]
    default: present
  mtu:
    description:
      - MTU of the link, changed in place. Left as it is when omitted.
    type: int
  up:
    description:
      - Administrative state; V(true) brings the link up, V(false) down.
    type: bool
    default: true
  addresses:
    description:
      - IPv4 and IPv6 addresses of the link in CIDR notation (V(10.0.0.1/24),
        V(fd00::1/64)). The link gets exactly these, the others are removed;
        IPv6 link-local addresses (which the kernel manages) are left alone.
        An empty list removes every address; left as they are when omitted.
    type: list
    elements: str
  netns:
    description:
      - Network namespace to work in, by name (as C(ip netns add) makes it,
        under C(/run/netns)) or by path. The namespace must exist. The
        default is the namespace of the module's process (the host's).
    type: str
"""

    # The bridge a VLAN or tunnel link is a port of (a bridge has no master).
    MASTER = r"""
options:
  master:
    description:
      - Bridge to enslave the link to. An empty string detaches the link
        from its bridge; left as it is when omitted.
    type: str
"""
