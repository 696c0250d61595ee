"""The compute agent's one touch of the host's network: a guest's bridge.

libvirt plugs a guest's tap (``tap<port[:11]>``) into the bridge its
``<interface type='bridge'>`` names, and refuses to start the guest when
that bridge does not exist. The network agent makes ``brq<net[:11]>`` for
every network with a port bound to its host, but it may not have had its
pass yet when the first guest of a network starts here. So the compute
agent makes a missing bridge itself, bare: no address, STP off, no forward
delay (as the network agent makes them), up, and with the network's MTU.
The network agent adopts it on its next pass (it recognises its bridges by
name), adds the segment device and filters the tap. A bridge that exists
is never touched: it is the network agent's.

Bridges must be made in the network namespace where libvirtd runs (its
taps appear there). On a compute host that is the agent's own; tests run a
private libvirtd in a namespace of its own and pass ``netns``.
"""

from __future__ import annotations

import logging

from pyroute2 import IPRoute, NetNS
from pyroute2.netlink.exceptions import NetlinkError

from stratus.compute.agent.driver import DriverError

log = logging.getLogger("stratus.compute.agent")

ENODEV = 19
EEXIST = 17


def ensure_bridge(name: str, mtu: int | None = None, netns: str | None = None) -> bool:
    """Make the bridge ``name`` (up, with ``mtu``) unless it exists; True if made."""
    ip: IPRoute = NetNS(netns) if netns else IPRoute()
    try:
        try:
            if ip.link("get", ifname=name):
                return False
        except NetlinkError as exc:
            if exc.code != ENODEV:
                raise
        log.info("creating bridge %s for a guest", name)
        try:
            ip.link("add", ifname=name, kind="bridge", br_stp_state=0, br_forward_delay=0)
        except NetlinkError as exc:
            if exc.code == EEXIST:  # the network agent was quicker
                return False
            raise
        (index,) = ip.link_lookup(ifname=name)
        if mtu:
            ip.link("set", index=index, mtu=mtu)
        ip.link("set", index=index, state="up")
        return True
    except NetlinkError as exc:
        raise DriverError(f"The bridge {name} cannot be made: {exc}") from None
    finally:
        ip.close()
