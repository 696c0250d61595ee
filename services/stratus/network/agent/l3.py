"""Routers: one ``qrouter-<router id>`` namespace per router bound to this host.

A router is built here when one of its ports (``network:router_interface`` or
``network:router_gateway``) has ``binding:host_id`` equal to this host
(``Snapshot.routers_on``). Inside its namespace:

* every internal interface port is a veth pair: the outer end
  ``tap<port[:11]>`` is enslaved to the network's bridge (``l2.ensure_network``
  and ``l2.plug``), the inner end ``qr-<port[:11]>`` carries the port's MAC,
  the network's MTU and the port's fixed IPs with their subnets' prefixes;
* the gateway port is the same with ``qg-<port[:11]>`` on the external
  network's bridge; it also carries every floating IP of the router as a /32,
  and the default route goes via the external subnet's ``gateway_ip``;
* the router's extra routes (``routes``) are routes of protocol ``static``;
  the agent owns every ``static`` route in the namespace's main table, so a
  removed extra route is deleted on the next converge;
* IP forwarding is on (``net.ipv4.ip_forward``, ``net.ipv6.conf.all.forwarding``
  inside the namespace);
* nftables table ``inet stratus-router`` holds the NAT: DNAT floating -> fixed
  in ``prerouting``, SNAT fixed -> floating ahead of the router's general
  SNAT (to the gateway port's IPv4 address, when ``enable_snat``) of traffic
  from the internal subnets leaving by ``qg-``, and the metadata redirect
  (``169.254.169.254:80`` arriving on a ``qr-`` to ``METADATA_PROXY_PORT``, where
  ``metadata.MetadataProxy`` listens); an ``input`` chain keeps the external
  side away from that port. The table is rendered as one script and replaced
  in one ``nft -f`` transaction (add, delete, define), so a converge never
  leaves a half-built ruleset and a second converge yields the same text.

What no longer belongs is removed: ``qr-``/``qg-`` devices of ports gone from
the router (deleting the inner end deletes the pair, so the bridge loses its
``tap``), addresses and ``static`` routes not wanted, and whole ``qrouter-``
namespaces of routers no longer here (their devices are deleted first, because
a socket still open in a namespace keeps it, and its veths, alive).

A router whose ``admin_state_up`` is false keeps its namespace and devices
(its ports are plugged, so Neutron's clients see them ACTIVE) but does not
forward: IP forwarding is off in its namespace.
IPv6 subnets get their addresses and forwarding; their router advertisements
are the ``ra`` module's. NAT is IPv4 only, as in Neutron.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pyroute2 import IPRoute, netns

from stratus.network.agent import l2, namespaces
from stratus.network.agent.state import (
    METADATA_IP,
    HostConfig,
    Network,
    Port,
    Router,
    Snapshot,
    router_gateway_name,
    router_interface_name,
    router_namespace,
    tap_name,
)

LOG = logging.getLogger(__name__)

NFT_TABLE = "stratus-router"
# Where the metadata proxy listens inside every router namespace.
METADATA_PROXY_PORT = 9697
RTPROT_STATIC = 4
RT_TABLE_MAIN = 254
OWNED_DEVICE_PREFIXES = ("qr-", "qg-")

T = TypeVar("T")


# --- running code inside a namespace ------------------------------------------


def in_namespace(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` in a short-lived thread switched into the namespace ``name``.

    ``setns`` moves only the calling thread, and the thread ends right after,
    so the agent's own threads never leave the host namespace. Sockets made by
    ``fn`` stay in ``name`` for their whole life.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            netns.setns(name, flags=0)
            result.append(fn())
        except BaseException as exc:  # handed to the caller
            error.append(exc)

    thread = threading.Thread(target=target, name=f"in-{name}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def _sysctl(path: str, value: str) -> None:
    full = os.path.join("/proc/sys", path.replace(".", "/"))
    with open(full) as current:
        if current.read().strip() == value:
            return
    with open(full, "w") as target:
        target.write(value)


# --- what one router should look like -------------------------------------------


@dataclass
class Interface:
    port: Port
    network: Network
    inner: str  # qr-... or qg-...
    outer: str  # tap...
    addresses: list[tuple[str, int]]  # (address, prefixlen)


@dataclass
class RouterPlan:
    router: Router
    namespace: str
    interfaces: list[Interface] = field(default_factory=list)
    gateway: Interface | None = None
    # (destination, gateway, device or None)
    routes: list[tuple[str, str, str | None]] = field(default_factory=list)
    nft: str = ""


@dataclass(frozen=True)
class FloatingBinding:
    floating_ip: str
    fixed_ip: str


def floating_bindings(snapshot: Snapshot, router_id: str) -> list[FloatingBinding]:
    """The router's floating IPs that are associated with a port (IPv4)."""
    out = []
    for fip in sorted(snapshot.floatingips.values(), key=lambda f: f.floating_ip_address):
        if fip.router_id != router_id or not fip.port_id:
            continue
        fixed = fip.fixed_ip_address
        if not fixed:
            port = snapshot.ports.get(fip.port_id)
            v4 = [f.ip_address for f in port.fixed_ips if ":" not in f.ip_address] if port else []
            fixed = v4[0] if v4 else None
        if fixed and ":" not in fixed:
            out.append(FloatingBinding(fip.floating_ip_address, fixed))
    return out


def _port_addresses(snapshot: Snapshot, port: Port) -> list[tuple[str, int]]:
    out = []
    for fixed in port.fixed_ips:
        subnet = snapshot.subnets.get(fixed.subnet_id)
        if subnet is not None:
            out.append((fixed.ip_address, subnet.prefixlen))
    return out


def plan_router(snapshot: Snapshot, config: HostConfig, router: Router) -> RouterPlan:
    plan = RouterPlan(router=router, namespace=router_namespace(router.id))
    for port in snapshot.router_ports(router.id):
        if port.host != config.host or port.network_id not in snapshot.networks:
            continue
        network = snapshot.networks[port.network_id]
        if port.is_gateway:
            if plan.gateway is not None or router.gateway_network_id != port.network_id:
                continue
            plan.gateway = Interface(
                port, network, router_gateway_name(port.id), tap_name(port.id), []
            )
            plan.gateway.addresses = _port_addresses(snapshot, port)
        else:
            plan.interfaces.append(
                Interface(
                    port,
                    network,
                    router_interface_name(port.id),
                    tap_name(port.id),
                    _port_addresses(snapshot, port),
                )
            )
    fips = floating_bindings(snapshot, router.id) if plan.gateway else []
    if plan.gateway is not None:
        have = {a for a, _ in plan.gateway.addresses}
        plan.gateway.addresses += [(f.floating_ip, 32) for f in fips if f.floating_ip not in have]
        for fixed in plan.gateway.port.fixed_ips:
            subnet = snapshot.subnets.get(fixed.subnet_id)
            if subnet is not None and subnet.gateway_ip:
                default = "0.0.0.0/0" if subnet.ip_version == 4 else "::/0"
                if not any(r[0] == default for r in plan.routes):
                    plan.routes.append((default, subnet.gateway_ip, plan.gateway.inner))
    for destination, nexthop in router.routes:
        plan.routes.append((str(ipaddress.ip_network(destination, strict=False)), nexthop, None))
    plan.nft = render_nft(snapshot, plan, fips)
    return plan


def render_nft(snapshot: Snapshot, plan: RouterPlan, fips: list[FloatingBinding]) -> str:
    """The router's whole ``inet stratus-router`` table as one atomic script."""
    pre = [f'iifname "qr-*" ip daddr {METADATA_IP} tcp dport 80 redirect to :{METADATA_PROXY_PORT}']
    post: list[str] = []
    inp = [f'iifname != "qr-*" tcp dport {METADATA_PROXY_PORT} drop']
    gateway = plan.gateway
    if gateway is not None:
        qg = gateway.inner
        for fip in fips:
            pre.append(f"ip daddr {fip.floating_ip} dnat ip to {fip.fixed_ip}")
        for fip in fips:
            post.append(f'oifname "{qg}" ip saddr {fip.fixed_ip} snat ip to {fip.floating_ip}')
        gateway_v4 = [a for a, _ in gateway.addresses if ":" not in a]
        internal = sorted(
            {
                snapshot.subnets[f.subnet_id].cidr
                for i in plan.interfaces
                for f in i.port.fixed_ips
                if f.subnet_id in snapshot.subnets and snapshot.subnets[f.subnet_id].ip_version == 4
            }
        )
        if plan.router.enable_snat and gateway_v4 and internal:
            post.append(
                f'oifname "{qg}" ip saddr {{ {", ".join(internal)} }} snat ip to {gateway_v4[0]}'
            )

    def chain(name: str, hook: str, priority: str, rules: list[str]) -> str:
        body = "".join(f"\t\t{r}\n" for r in rules)
        kind = "filter" if hook == "input" else "nat"
        return (
            f"\tchain {name} {{\n\t\ttype {kind} hook {hook} priority {priority}; "
            f"policy accept;\n{body}\t}}\n"
        )

    return (
        f"table inet {NFT_TABLE} {{}}\n"
        f"delete table inet {NFT_TABLE}\n"
        f"table inet {NFT_TABLE} {{\n"
        + chain("prerouting", "prerouting", "dstnat", pre)
        + chain("postrouting", "postrouting", "srcnat", post)
        + chain("input", "input", "filter", inp)
        + "}\n"
    )


# --- converging ------------------------------------------------------------------


def converge(snapshot: Snapshot, config: HostConfig) -> set[str]:
    """Build every router bound here; remove routers, devices, rules no longer wanted.

    Returns the ids of the router ports wired here. A router that fails is
    logged and the others still converge; ``l2.PartialFailure`` then names it.
    """
    wanted: dict[str, RouterPlan] = {}
    # An administratively down router keeps its namespace and devices (its
    # ports are plugged, as Neutron shows them ACTIVE) but forwards nothing.
    for router in snapshot.routers_on(config.host):
        plan = plan_router(snapshot, config, router)
        wanted[plan.namespace] = plan
    for name in namespaces.owned():
        if name.startswith("qrouter-") and name not in wanted:
            remove_router(name)
    wired: set[str] = set()
    failures: dict[str, str] = {}
    for plan in wanted.values():
        try:
            converge_router(snapshot, config, plan)
        except Exception as exc:  # one router must not stop the others
            LOG.exception("router %s: converge failed", plan.router.id)
            failures[plan.router.id] = str(exc) or type(exc).__name__
            continue
        wired |= {i.port.id for i in plan.interfaces}
        if plan.gateway is not None:
            wired.add(plan.gateway.port.id)
    if failures:
        raise l2.PartialFailure(failures, wired)
    return wired


def remove_router(name: str) -> None:
    """Delete a router namespace with its veths (the bridges lose their taps)."""
    LOG.info("removing router namespace %s", name)
    with namespaces.ipr(name) as ip:
        for link in ip.get_links():
            if link.get("ifname", "").startswith(OWNED_DEVICE_PREFIXES):
                ip.link("del", index=link["index"])
    namespaces.remove(name)


def _peer_index(link: Any) -> int | None:
    value = link.get("link")
    return int(value) if value else None


def _ensure_veth(namespace: str, outer: str, inner: str, mac: str, mtu: int) -> None:
    """A veth pair ``outer`` (host) <-> ``inner`` (namespace); recreated if broken."""
    with IPRoute() as host, namespaces.ipr(namespace) as ns:
        outer_links = host.get_links(ifname=outer) if host.link_lookup(ifname=outer) else []
        inner_links = ns.get_links(ifname=inner) if ns.link_lookup(ifname=inner) else []
        if outer_links and inner_links:
            o, i = outer_links[0], inner_links[0]
            kind = o.get(("linkinfo", "kind"))
            if kind == "veth" and _peer_index(o) == i["index"] and _peer_index(i) == o["index"]:
                return
        for link in outer_links:
            host.link("del", index=link["index"])
        for link in inner_links:
            ns.link("del", index=link["index"])
        fd = os.open(os.path.join(namespaces.RUN_DIR, namespace), os.O_RDONLY)
        try:
            host.link(
                "add",
                ifname=outer,
                kind="veth",
                peer={"ifname": inner, "net_ns_fd": fd, "address": mac, "mtu": mtu},
            )
        finally:
            os.close(fd)


def _converge_interface(
    snapshot: Snapshot, config: HostConfig, namespace: str, iface: Interface
) -> list[str]:
    """Wire one router port; return the addresses newly added to it."""
    mtu = iface.network.mtu
    mac = iface.port.mac_address.lower()
    _ensure_veth(namespace, iface.outer, iface.inner, mac, mtu)
    bridge = l2.ensure_network(snapshot, config, iface.network)
    l2.plug(bridge, iface.outer, mtu)
    with namespaces.ipr(namespace) as ns:
        link = ns.get_links(ifname=iface.inner)[0]
        index = link["index"]
        changes: dict[str, Any] = {}
        if (link.get("address") or "").lower() != mac:
            changes["address"] = mac
        if link.get("mtu") != mtu:
            changes["mtu"] = mtu
        if link.get("state") != "up" or not link["flags"] & 1:
            changes["state"] = "up"
        if changes:
            ns.link("set", index=index, **changes)
        return _converge_addresses(ns, index, iface.addresses)


def _converge_addresses(ns: Any, index: int, wanted: list[tuple[str, int]]) -> list[str]:
    """Make the device's global addresses exactly ``wanted``; return those added."""
    want = {(ipaddress.ip_address(a).compressed, p) for a, p in wanted}
    have = set()
    for addr in ns.get_addr(index=index):
        address = addr.get("address")
        if address is None:
            continue
        ip = ipaddress.ip_address(address)
        if ip.is_link_local and ip.version == 6:
            continue
        have.add((ip.compressed, addr["prefixlen"]))
    for address, prefixlen in sorted(have - want):
        ns.addr("del", index=index, address=address, prefixlen=prefixlen)
    added = []
    for address, prefixlen in sorted(want - have):
        ns.addr("add", index=index, address=address, prefixlen=prefixlen)
        added.append(address)
    return added


def _route_key(dst: str, gateway: str) -> tuple[str, str]:
    return (str(ipaddress.ip_network(dst)), ipaddress.ip_address(gateway).compressed)


def _converge_routes(ns: Any, routes: list[tuple[str, str, str | None]]) -> None:
    want: dict[tuple[str, str], str | None] = {}
    for dst, gateway, device in routes:
        want.setdefault(_route_key(dst, gateway), device)
    have: dict[tuple[str, str], Any] = {}
    for family in (socket.AF_INET, socket.AF_INET6):
        for route in ns.get_routes(family=family, table=RT_TABLE_MAIN):
            if route["proto"] != RTPROT_STATIC:
                continue
            gateway = route.get("gateway")
            dst = route.get("dst")
            prefix = route["dst_len"]
            if dst is None:
                dst = "0.0.0.0" if family == socket.AF_INET else "::"
            key = _route_key(f"{dst}/{prefix}", gateway) if gateway else (f"{dst}/{prefix}", "")
            have[key] = route
    for key, route in have.items():
        if key not in want:
            ns.route("del", **_route_spec(route))
    for (dst, gateway), device in want.items():
        if (dst, gateway) in have:
            continue
        spec: dict[str, Any] = {"dst": dst, "gateway": gateway, "proto": RTPROT_STATIC}
        if device:
            found = ns.link_lookup(ifname=device)
            if found:
                spec["oif"] = found[0]
        try:
            ns.route("replace", **spec)
        except Exception as exc:  # e.g. a nexthop not on any connected subnet
            LOG.warning("route %s via %s: %s", dst, gateway, exc)


def _route_spec(route: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "family": route["family"],
        "dst_len": route["dst_len"],
        "table": RT_TABLE_MAIN,
        "proto": RTPROT_STATIC,
    }
    for key in ("dst", "gateway", "oif"):
        if route.get(key) is not None:
            spec[key] = route.get(key)
    return spec


def _gratuitous_arp(namespace: str, device: str, mac: str, addresses: list[str]) -> None:
    """Announce newly added IPv4 addresses (``arping`` may not be installed)."""
    v4 = [a for a in addresses if ":" not in a]
    if not v4:
        return
    hw = bytes.fromhex(mac.replace(":", ""))

    def send() -> None:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
            sock.bind((device, 0))
            for address in v4:
                ip = socket.inet_aton(address)
                arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, hw, ip, b"\0" * 6, ip)
                sock.send(b"\xff" * 6 + hw + b"\x08\x06" + arp)

    try:
        in_namespace(namespace, send)
    except OSError as exc:
        LOG.warning("gratuitous ARP on %s in %s: %s", device, namespace, exc)


def converge_router(snapshot: Snapshot, config: HostConfig, plan: RouterPlan) -> None:
    name = plan.namespace
    namespaces.ensure(name)
    in_namespace(name, _forwarding_on if plan.router.admin_state_up else _forwarding_off)
    interfaces = [*plan.interfaces, *([plan.gateway] if plan.gateway else [])]
    wanted_devices = {i.inner for i in interfaces}
    with namespaces.ipr(name) as ns:
        for link in ns.get_links():
            ifname = link.get("ifname", "")
            if ifname.startswith(OWNED_DEVICE_PREFIXES) and ifname not in wanted_devices:
                LOG.info("%s: removing %s", name, ifname)
                ns.link("del", index=link["index"])
    for iface in plan.interfaces:
        _converge_interface(snapshot, config, name, iface)
    if plan.gateway is not None:
        gw = plan.gateway
        added = _converge_interface(snapshot, config, name, gw)
        if added:
            _gratuitous_arp(name, gw.inner, gw.port.mac_address.lower(), added)
    with namespaces.ipr(name) as ns:
        _converge_routes(ns, plan.routes)
    namespaces.nft(plan.nft, name)


def _forwarding_on() -> None:
    _sysctl("net.ipv4.ip_forward", "1")
    _sysctl("net.ipv6.conf.all.forwarding", "1")


def _forwarding_off() -> None:
    _sysctl("net.ipv4.ip_forward", "0")
    _sysctl("net.ipv6.conf.all.forwarding", "0")
