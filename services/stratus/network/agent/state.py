"""What one host must carry, parsed from the network API's own documents.

The agent asks the API for ``networks``, ``subnets``, ``ports``, ``routers``,
``floatingips``, ``security_groups`` and ``agents`` (Neutron v2.0 JSON, as
any client sees it) and builds a ``Snapshot``. ``HostConfig`` is the host's
side: its name, its tunnel endpoint and its provider interfaces.

Placement is decided by the API and written on ports: a port whose
``binding:host_id`` is this host is wired here. DHCP ports
(``device_owner`` ``network:dhcp``) mean "run the network's dnsmasq here";
router ports (``network:router_interface``, ``network:router_gateway``) mean
"build the router's namespace here"; other ports (``compute:*``) are guest
taps to attach to the network's bridge, with their security groups.

Device names follow Neutron's Linux bridge agent, so operators find what they
know: bridge ``brq<net[:11]>``, guest tap ``tap<port[:11]>``, namespaces
``qdhcp-<network id>`` and ``qrouter-<router id>``, router devices
``qr-<port[:11]>`` (internal) and ``qg-<port[:11]>`` (gateway), DHCP device
``ns-<port[:11]>``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DHCP_OWNER = "network:dhcp"
ROUTER_INTERFACE_OWNERS = ("network:router_interface", "network:router_interface_distributed")
ROUTER_GATEWAY_OWNER = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"

# Bytes an overlay adds to each frame, IPv4 underlay (what the API subtracts
# from the physical MTU to get a network's ``mtu``).
ENCAP_OVERHEAD = {"flat": 0, "vlan": 0, "vxlan": 50, "gre": 42}

METADATA_IP = "169.254.169.254"


def bridge_name(network_id: str) -> str:
    return f"brq{network_id[:11]}"


def tap_name(port_id: str) -> str:
    return f"tap{port_id[:11]}"


def dhcp_namespace(network_id: str) -> str:
    return f"qdhcp-{network_id}"


def router_namespace(router_id: str) -> str:
    return f"qrouter-{router_id}"


def router_interface_name(port_id: str) -> str:
    return f"qr-{port_id[:11]}"


def router_gateway_name(port_id: str) -> str:
    return f"qg-{port_id[:11]}"


def dhcp_interface_name(port_id: str) -> str:
    return f"ns-{port_id[:11]}"


@dataclass(frozen=True)
class HostConfig:
    """This host's side of the network (the ``[network_agent]`` section)."""

    host: str
    # Tunnel endpoint (VXLAN and GRE): this host's address on the underlay.
    local_ip: str | None = None
    # physical network name -> host interface (or bridge) carrying it.
    physical_interfaces: Mapping[str, str] = field(default_factory=dict)
    tunnel_types: tuple[str, ...] = ("vxlan",)
    vxlan_port: int = 4789
    # Where the agent keeps dnsmasq's files and other state of its own.
    state_dir: str = "/var/lib/stratus-network"


@dataclass(frozen=True)
class FixedIP:
    subnet_id: str
    ip_address: str


@dataclass(frozen=True)
class Network:
    id: str
    project_id: str
    network_type: str  # flat, vlan, vxlan, gre
    physical_network: str | None
    segmentation_id: int | None
    mtu: int
    admin_state_up: bool = True
    external: bool = False


@dataclass(frozen=True)
class Subnet:
    id: str
    network_id: str
    ip_version: int
    cidr: str
    gateway_ip: str | None
    enable_dhcp: bool
    dns_nameservers: tuple[str, ...] = ()
    host_routes: tuple[tuple[str, str], ...] = ()  # (destination, nexthop)
    allocation_pools: tuple[tuple[str, str], ...] = ()  # (start, end)
    ipv6_address_mode: str | None = None
    ipv6_ra_mode: str | None = None

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.cidr).prefixlen


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    project_id: str
    mac_address: str
    fixed_ips: tuple[FixedIP, ...]
    device_owner: str
    device_id: str
    host: str | None
    admin_state_up: bool = True
    port_security_enabled: bool = True
    security_groups: tuple[str, ...] = ()
    allowed_address_pairs: tuple[tuple[str, str | None], ...] = ()  # (ip or cidr, mac)
    dns_name: str = ""

    @property
    def is_dhcp(self) -> bool:
        return self.device_owner == DHCP_OWNER

    @property
    def is_router(self) -> bool:
        return self.device_owner in ROUTER_INTERFACE_OWNERS or self.is_gateway

    @property
    def is_gateway(self) -> bool:
        return self.device_owner == ROUTER_GATEWAY_OWNER

    @property
    def is_guest(self) -> bool:
        return self.device_owner.startswith("compute:") or self.device_owner == ""


@dataclass(frozen=True)
class Router:
    id: str
    project_id: str
    admin_state_up: bool
    # The external network and whether SNAT is on (None: no gateway).
    gateway_network_id: str | None
    enable_snat: bool
    routes: tuple[tuple[str, str], ...] = ()  # extra routes (destination, nexthop)


@dataclass(frozen=True)
class FloatingIP:
    id: str
    floating_ip_address: str
    floating_network_id: str
    router_id: str | None
    port_id: str | None
    fixed_ip_address: str | None


@dataclass(frozen=True)
class SecurityGroupRule:
    id: str
    security_group_id: str
    direction: str  # ingress, egress
    ethertype: str  # IPv4, IPv6
    protocol: str | None  # None: any; a name (tcp, udp, icmp, ...) or a number as text
    port_range_min: int | None
    port_range_max: int | None
    remote_ip_prefix: str | None
    remote_group_id: str | None


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    project_id: str
    rules: tuple[SecurityGroupRule, ...]
    stateful: bool = True


@dataclass(frozen=True)
class Peer:
    """Another agent's host, for tunnels: ``agents`` with a tunneling IP."""

    host: str
    tunneling_ip: str


@dataclass
class Snapshot:
    networks: dict[str, Network] = field(default_factory=dict)
    subnets: dict[str, Subnet] = field(default_factory=dict)
    ports: dict[str, Port] = field(default_factory=dict)
    routers: dict[str, Router] = field(default_factory=dict)
    floatingips: dict[str, FloatingIP] = field(default_factory=dict)
    security_groups: dict[str, SecurityGroup] = field(default_factory=dict)
    peers: dict[str, Peer] = field(default_factory=dict)

    # --- what one host carries ------------------------------------------------

    def ports_on(self, host: str) -> list[Port]:
        return sorted((p for p in self.ports.values() if p.host == host), key=lambda p: p.id)

    def networks_on(self, host: str) -> list[Network]:
        """Networks that need a bridge here: those of a port bound here."""
        ids = {p.network_id for p in self.ports_on(host)}
        return [self.networks[i] for i in sorted(ids) if i in self.networks]

    def subnets_of(self, network_id: str) -> list[Subnet]:
        return sorted(
            (s for s in self.subnets.values() if s.network_id == network_id), key=lambda s: s.id
        )

    def ports_of(self, network_id: str) -> list[Port]:
        return sorted(
            (p for p in self.ports.values() if p.network_id == network_id), key=lambda p: p.id
        )

    def router_ports(self, router_id: str) -> list[Port]:
        return sorted(
            (p for p in self.ports.values() if p.is_router and p.device_id == router_id),
            key=lambda p: p.id,
        )

    def routers_on(self, host: str) -> list[Router]:
        ids = {p.device_id for p in self.ports_on(host) if p.is_router}
        return [self.routers[i] for i in sorted(ids) if i in self.routers]

    def peers_for(self, network_id: str, host: str) -> list[Peer]:
        """Tunnel peers for an overlay network: other hosts with a port on it."""
        hosts = {p.host for p in self.ports_of(network_id) if p.host and p.host != host}
        return [self.peers[h] for h in sorted(hosts) if h in self.peers]

    # --- parsing the API's documents -------------------------------------------

    @classmethod
    def from_api(cls, docs: Mapping[str, Iterable[Mapping[str, Any]]]) -> Snapshot:
        """Build from ``{"networks": [...], "subnets": [...], ...}`` as the API lists them."""
        snap = cls()
        for n in docs.get("networks", ()):
            snap.networks[n["id"]] = Network(
                id=n["id"],
                project_id=n.get("project_id") or n.get("tenant_id") or "",
                network_type=n.get("provider:network_type") or "vxlan",
                physical_network=n.get("provider:physical_network"),
                segmentation_id=n.get("provider:segmentation_id"),
                mtu=int(n.get("mtu") or 1500),
                admin_state_up=bool(n.get("admin_state_up", True)),
                external=bool(n.get("router:external", False)),
            )
        for s in docs.get("subnets", ()):
            snap.subnets[s["id"]] = Subnet(
                id=s["id"],
                network_id=s["network_id"],
                ip_version=int(s.get("ip_version", 4)),
                cidr=s["cidr"],
                gateway_ip=s.get("gateway_ip"),
                enable_dhcp=bool(s.get("enable_dhcp", True)),
                dns_nameservers=tuple(s.get("dns_nameservers") or ()),
                host_routes=tuple(
                    (r["destination"], r["nexthop"]) for r in s.get("host_routes") or ()
                ),
                allocation_pools=tuple(
                    (p["start"], p["end"]) for p in s.get("allocation_pools") or ()
                ),
                ipv6_address_mode=s.get("ipv6_address_mode"),
                ipv6_ra_mode=s.get("ipv6_ra_mode"),
            )
        for p in docs.get("ports", ()):
            snap.ports[p["id"]] = Port(
                id=p["id"],
                network_id=p["network_id"],
                project_id=p.get("project_id") or p.get("tenant_id") or "",
                mac_address=p["mac_address"],
                fixed_ips=tuple(
                    FixedIP(f["subnet_id"], f["ip_address"]) for f in p.get("fixed_ips") or ()
                ),
                device_owner=p.get("device_owner") or "",
                device_id=p.get("device_id") or "",
                host=p.get("binding:host_id") or None,
                admin_state_up=bool(p.get("admin_state_up", True)),
                port_security_enabled=bool(p.get("port_security_enabled", True)),
                security_groups=tuple(p.get("security_groups") or ()),
                allowed_address_pairs=tuple(
                    (a["ip_address"], a.get("mac_address"))
                    for a in p.get("allowed_address_pairs") or ()
                ),
                dns_name=p.get("dns_name") or "",
            )
        for r in docs.get("routers", ()):
            gateway = r.get("external_gateway_info") or {}
            snap.routers[r["id"]] = Router(
                id=r["id"],
                project_id=r.get("project_id") or r.get("tenant_id") or "",
                admin_state_up=bool(r.get("admin_state_up", True)),
                gateway_network_id=gateway.get("network_id"),
                enable_snat=bool(gateway.get("enable_snat", True)),
                routes=tuple((x["destination"], x["nexthop"]) for x in r.get("routes") or ()),
            )
        for f in docs.get("floatingips", ()):
            snap.floatingips[f["id"]] = FloatingIP(
                id=f["id"],
                floating_ip_address=f["floating_ip_address"],
                floating_network_id=f["floating_network_id"],
                router_id=f.get("router_id"),
                port_id=f.get("port_id"),
                fixed_ip_address=f.get("fixed_ip_address"),
            )
        for g in docs.get("security_groups", ()):
            rules = tuple(
                SecurityGroupRule(
                    id=r["id"],
                    security_group_id=g["id"],
                    direction=r["direction"],
                    ethertype=r.get("ethertype", "IPv4"),
                    protocol=None if r.get("protocol") in (None, "any") else str(r["protocol"]),
                    port_range_min=r.get("port_range_min"),
                    port_range_max=r.get("port_range_max"),
                    remote_ip_prefix=r.get("remote_ip_prefix"),
                    remote_group_id=r.get("remote_group_id"),
                )
                for r in g.get("security_group_rules") or ()
            )
            snap.security_groups[g["id"]] = SecurityGroup(
                id=g["id"],
                project_id=g.get("project_id") or g.get("tenant_id") or "",
                rules=rules,
                stateful=bool(g.get("stateful", True)),
            )
        for a in docs.get("agents", ()):
            ip = (a.get("configurations") or {}).get("tunneling_ip")
            if ip and a.get("alive", True):
                snap.peers[a["host"]] = Peer(host=a["host"], tunneling_ip=ip)
        return snap
