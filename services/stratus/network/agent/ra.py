"""IPv6 router advertisements: radvd in the ``qrouter-`` namespaces.

A router sends advertisements on each of its internal interfaces (``qr-``)
that has an address on an IPv6 subnet whose ``ipv6_ra_mode`` is set, as in
Neutron (a subnet with only ``ipv6_address_mode`` expects a router outside
OpenStack to advertise). The advertisement announces the subnet's prefix,
the interface's MTU and, by mode:

====================  ==================  ================  ===============
``ipv6_ra_mode``      autonomous (SLAAC)  managed (M)       other config (O)
====================  ==================  ================  ===============
``slaac``             on                  off               off
``dhcpv6-stateless``  on                  off               on
``dhcpv6-stateful``   off                 on                on
====================  ==================  ================  ===============

so a guest forms the address the API gave its port (EUI-64 of its MAC for
SLAAC and stateless subnets) or asks DHCPv6 for it (the ``qdhcp-``
dnsmasq answers). A SLAAC subnet's DNS servers go into the advertisement as
RDNSS. The router's link-local address becomes the guests' default route.

One radvd per router, configured by ``<state_dir>/ra/<router id>/radvd.conf``
and started in the router's namespace; a changed configuration is applied
with SIGHUP (radvd reads it again, and sends a fresh advertisement), never
by a restart. Routers that are down or gone, or have nothing to advertise,
have their radvd stopped and their directory removed.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from stratus.network.agent import daemons, l2
from stratus.network.agent.state import (
    HostConfig,
    Snapshot,
    router_interface_name,
    router_namespace,
)

LOG = logging.getLogger(__name__)

RADVD = "/usr/sbin/radvd"
# (autonomous, managed, other config) by ipv6_ra_mode
FLAGS = {
    "slaac": (True, False, False),
    "dhcpv6-stateless": (True, False, True),
    "dhcpv6-stateful": (False, True, True),
}


@dataclass(frozen=True)
class Advertised:
    """One ``qr-`` device's advertisement."""

    device: str
    mtu: int
    prefixes: tuple[tuple[str, bool], ...]  # (prefix, autonomous)
    managed: bool
    other: bool
    dns_servers: tuple[str, ...]


def plan(snapshot: Snapshot, config: HostConfig) -> dict[str, list[Advertised]]:
    """router id -> what its interfaces advertise, for the routers up and built here."""
    result: dict[str, list[Advertised]] = {}
    for router in snapshot.routers_on(config.host):
        if not router.admin_state_up:
            continue
        interfaces = []
        for port in snapshot.router_ports(router.id):
            if port.is_gateway or port.host != config.host:
                continue
            network = snapshot.networks.get(port.network_id)
            if network is None:
                continue
            subnets = [snapshot.subnets.get(f.subnet_id) for f in port.fixed_ips]
            advertised = [s for s in subnets if s is not None and s.ipv6_ra_mode in FLAGS]
            if not advertised:
                continue
            flags = [FLAGS[s.ipv6_ra_mode or ""] for s in advertised]
            dns = [d for s in advertised if s.ipv6_ra_mode == "slaac" for d in s.dns_nameservers]
            interfaces.append(
                Advertised(
                    device=router_interface_name(port.id),
                    mtu=network.mtu,
                    prefixes=tuple(
                        (str(ipaddress.ip_network(s.cidr)), f[0])
                        for s, f in zip(advertised, flags, strict=True)
                    ),
                    managed=any(f[1] for f in flags),
                    other=any(f[2] for f in flags),
                    dns_servers=tuple(dict.fromkeys(dns)),
                )
            )
        if interfaces:
            result[router.id] = sorted(interfaces, key=lambda i: i.device)
    return result


def render(interfaces: list[Advertised]) -> str:
    """radvd.conf for one router."""

    def on(flag: bool) -> str:
        return "on" if flag else "off"

    lines: list[str] = []
    for interface in interfaces:
        lines += [
            f"interface {interface.device}",
            "{",
            "    AdvSendAdvert on;",
            "    MinRtrAdvInterval 30;",
            "    MaxRtrAdvInterval 100;",
            f"    AdvLinkMTU {interface.mtu};",
            f"    AdvManagedFlag {on(interface.managed)};",
            f"    AdvOtherConfigFlag {on(interface.other)};",
        ]
        for prefix, autonomous in interface.prefixes:
            lines += [
                f"    prefix {prefix}",
                "    {",
                "        AdvOnLink on;",
                f"        AdvAutonomous {on(autonomous)};",
                "    };",
            ]
        if interface.dns_servers:
            lines += [f"    RDNSS {' '.join(interface.dns_servers)}", "    {", "    };"]
        lines += ["};", ""]
    return "\n".join(lines)


def directory(config: HostConfig, router_id: str) -> Path:
    return Path(config.state_dir) / "ra" / router_id


def command(config: HostConfig, router_id: str) -> list[str]:
    d = directory(config, router_id)
    return [
        RADVD,
        f"--config={d / 'radvd.conf'}",
        f"--pidfile={d / 'pid'}",
        "--logmethod=logfile",
        f"--logfile={d / 'radvd.log'}",
    ]


def _marker(config: HostConfig, router_id: str) -> str:
    return f"--pidfile={directory(config, router_id) / 'pid'}"


def ensure(config: HostConfig, router_id: str, interfaces: list[Advertised]) -> None:
    d = directory(config, router_id)
    d.mkdir(parents=True, exist_ok=True)
    changed = daemons.write(d / "radvd.conf", render(interfaces))
    argv = command(config, router_id)
    pid = daemons.running_pid("radvd", d / "pid", _marker(config, router_id))
    if pid is not None and daemons.cmdline(pid) == argv:
        if changed:
            LOG.info("radvd of router %s: configuration changed, SIGHUP", router_id)
            os.kill(pid, signal.SIGHUP)
        return
    daemons.stop("radvd", _marker(config, router_id))
    pid = daemons.start(argv, router_namespace(router_id), d / "pid")
    LOG.info("radvd of router %s started (pid %d)", router_id, pid)


def remove(config: HostConfig, router_id: str) -> None:
    daemons.stop("radvd", _marker(config, router_id))
    shutil.rmtree(directory(config, router_id), ignore_errors=True)
    LOG.info("router %s advertises nothing here any more", router_id)


def converge(snapshot: Snapshot, config: HostConfig) -> None:
    """radvd for exactly the routers with something to advertise here."""
    wanted = plan(snapshot, config)
    failures: dict[str, str] = {}
    for router_id, interfaces in sorted(wanted.items()):
        try:
            ensure(config, router_id, interfaces)
        except Exception as exc:  # one router must not stop the others
            LOG.exception("router %s: router advertisements failed", router_id)
            failures[router_id] = str(exc) or type(exc).__name__
    root = Path(config.state_dir) / "ra"
    present = {p.name for p in root.iterdir() if p.is_dir()} if root.is_dir() else set()
    for router_id in sorted(present - set(wanted)):
        remove(config, router_id)
    if failures:
        raise l2.PartialFailure(failures, set())
