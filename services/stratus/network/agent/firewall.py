"""Security groups: stateful nftables filtering of every guest port's tap.

Where the rules live, and why
-----------------------------

Guest taps are ports of Linux bridges, so the filter must see *bridged*
frames, and security groups are stateful (replies to allowed traffic pass),
so it needs conntrack. The ``bridge`` family alone cannot do both on every
kernel: ``ct`` in a bridge table needs ``nf_conntrack_bridge``, which many
kernels (this project's test kernel among them) do not have — loading a
bridge-family ``ct state`` rule fails there with EPROTO. ``br_netfilter``
(``net.bridge.bridge-nf-call-iptables``/``-ip6tables``) is everywhere and
passes bridged IPv4/IPv6 through the ``inet`` hooks with conntrack, but in
those hooks ``iifname``/``oifname`` name the *bridge*, not the tap (iptables
has ``physdev`` for that; nftables has no equivalent in ``inet``).

So the agent uses both families, each for what it can do, in one table name
``stratus-sg`` per family, replaced together in one ``nft -f`` transaction:

* ``bridge stratus-sg``, hook ``prerouting`` priority -300 (before
  br_netfilter's own hook): frames entering from a filtered tap jump (one
  verdict-map lookup on ``iifname``) to the port's ``spoof-`` chain, which
  marks the packet with the port's egress mark and enforces anti-spoofing,
  statelessly: the source MAC must be the port's (or an allowed address
  pair's), ARP must carry the port's MAC and one of its IPv4 addresses, IPv4
  and IPv6 sources must be one of the port's fixed IPs or allowed address
  pairs (bound to the pair's MAC), and only IPv4, IPv6 and ARP frames pass
  (no VLAN tags, which would bypass br_netfilter). DHCP discovery from
  0.0.0.0, IPv6 DAD from ``::`` and the port's link-local address pass; a
  guest acting as a DHCP server or sending router advertisements is dropped.
* ``bridge stratus-sg``, hook ``forward`` priority -300: a frame leaving by a
  filtered tap gets the port's ingress mark (one map lookup on ``oifname``).
  Frames to other ports keep whatever they had, which never equals an
  ingress mark.
* ``inet stratus-sg``, hook ``prerouting`` priority -150 (after conntrack):
  ``meta mark`` verdict map -> the port's ``egress-`` chain (the security
  group's egress rules, Neutron semantics: no egress rule, no egress).
* ``inet stratus-sg``, hook ``forward`` priority 0: ``meta mark`` verdict map
  -> the port's ``ingress-`` chain (default deny, the group's ingress rules).

Each port chain starts with ``ct state established,related accept`` and
``ct state invalid drop``; DHCP (client out, server replies in) and the
ICMPv6 neighbour discovery a host needs are always allowed; then one rule per
security group rule (duplicates across the port's groups merged); then
``drop``. ``remote_group_id`` rules match a named set (``rg4-<group>``,
``rg6-<group>``: the fixed IPs and allowed address pairs of every port in the
group, on any host), so a group of any size costs one rule. Protocols may be
names or numbers; for ICMP, ``port_range_min``/``max`` are type and code.

The cost is three chains per port: about ten rules in ``spoof-``, six plus
the groups' rules in each of ``egress-``/``ingress-``; per packet, one map
lookup per hook instead of a walk over every port.

Marks: the agent owns the packet mark (``0x5e00xxxx`` egress, ``0x5e01xxxx``
ingress) of frames bridged from and to filtered taps on this host; it is
cleared when a packet crosses into another namespace (veth), so routers are
not affected.

Conntrack and flooding: br_netfilter attaches one *unconfirmed* conntrack
entry to a frame, and the bridge clones the frame for every port it floods
to; when two clones are accepted the second one to be confirmed is dropped by
the kernel. Two measures keep that from losing traffic: broadcast and
multicast frames from the bridges are not tracked (``raw`` chain:
``notrack``; the port chains then judge them by their rules alone, and DHCP
and neighbour discovery are allowed explicitly), and each filtered port's
MACs are pinned as static FDB entries on its tap (``pin_macs``), so unicast
to a local guest is never flooded. Unknown unicast to a MAC that is not on
this host can still be flooded to several accepting ports (a router's tap
and a tunnel, say); the lost copy is then retransmitted by the sender.
(Observed here: the first broadcast frames to one of several filtered ports
are still occasionally lost; not yet understood.)

A port with ``port_security_enabled`` false has no chains and no mark: no
filtering at all. Ports are filtered only when their tap exists here (the
next pass picks up a tap the hypervisor makes later). Stateless security
groups are treated as stateful. Conntrack is shared by all the bridges of a
host (no per-network zones yet), so two networks with overlapping addresses
on one host share conntrack entries for identical 5-tuples.

``converge`` turns br_netfilter's ``bridge-nf-call-iptables`` and
``-ip6tables`` on in the agent's namespace and renders the two tables; with
no filtered port, both are deleted.
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass

from stratus.network.agent import namespaces
from stratus.network.agent.state import (
    HostConfig,
    Port,
    SecurityGroupRule,
    Snapshot,
    tap_name,
)

LOG = logging.getLogger(__name__)

TABLE = "stratus-sg"
EGRESS_MARK = 0x5E000000
INGRESS_MARK = 0x5E010000
BRIDGE_NF_SYSCTLS = (
    "/proc/sys/net/bridge/bridge-nf-call-iptables",
    "/proc/sys/net/bridge/bridge-nf-call-ip6tables",
)

PROTOCOLS = {
    "icmp": 1,
    "igmp": 2,
    "ipip": 4,
    "tcp": 6,
    "egp": 8,
    "udp": 17,
    "dccp": 33,
    "ipv6-encap": 41,
    "ipv6-route": 43,
    "ipv6-frag": 44,
    "rsvp": 46,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "icmpv6": 58,
    "ipv6-icmp": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ospf": 89,
    "vrrp": 112,
    "pgm": 113,
    "sctp": 132,
    "udplite": 136,
}
# Protocols with ports (where port_range_min/max are ports).
PORTED = {6, 17, 33, 132, 136}

# Always allowed, whatever the groups say (as Neutron does).
EGRESS_BASE = (
    "meta nfproto ipv4 udp sport 68 udp dport 67 accept",
    "meta nfproto ipv6 udp sport 546 udp dport 547 accept",
    "icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert, "
    "mld-listener-report, mld2-listener-report } accept",
)
INGRESS_BASE = (
    "meta nfproto ipv4 udp sport 67 udp dport 68 accept",
    "meta nfproto ipv6 udp sport 547 udp dport 546 accept",
    "icmpv6 type { nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
    "mld-listener-query } accept",
)


class RuleError(ValueError):
    """A security group rule that cannot be rendered (it is skipped and logged)."""


# --- addresses ---------------------------------------------------------------------


def link_local(mac: str) -> str:
    """The EUI-64 IPv6 link-local address a guest derives from ``mac``."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    eui = [*octets[:3], 0xFF, 0xFE, *octets[3:]]
    groups = [f"{eui[i] << 8 | eui[i + 1]:x}" for i in range(0, 8, 2)]
    return str(ipaddress.ip_address("fe80::" + ":".join(groups)))


def _network(value: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    return ipaddress.ip_network(value, strict=False)


def _text(net: ipaddress.IPv4Network | ipaddress.IPv6Network) -> str:
    full = 32 if net.version == 4 else 128
    return str(net.network_address) if net.prefixlen == full else str(net)


def port_bindings(port: Port) -> list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]]:
    """(mac, address or prefix) pairs the port may send from, sorted."""
    mac = port.mac_address.lower()
    out = {(mac, _network(f.ip_address)) for f in port.fixed_ips}
    for address, pair_mac in port.allowed_address_pairs:
        out.add(((pair_mac or mac).lower(), _network(address)))
    return sorted(out, key=lambda x: (x[1].version, x[0], str(x[1])))


def group_members(snapshot: Snapshot) -> dict[str, tuple[list[str], list[str]]]:
    """Per security group: its ports' (IPv4, IPv6) addresses and prefixes."""
    members: dict[str, tuple[set[str], set[str]]] = {}
    for port in snapshot.ports.values():
        for group in port.security_groups:
            v4, v6 = members.setdefault(group, (set(), set()))
            for _, net in port_bindings(port):
                (v4 if net.version == 4 else v6).add(_text(net))
    return {
        g: (sorted(v4, key=_sort_key), sorted(v6, key=_sort_key)) for g, (v4, v6) in members.items()
    }


def _sort_key(text: str) -> tuple[int, int, int]:
    net = _network(text)
    return (net.version, int(net.network_address), net.prefixlen)


# --- rules ------------------------------------------------------------------------------


def render_rule(rule: SecurityGroupRule) -> str:
    """One security group rule as an nft rule (without the leading chain)."""
    family = "ipv4" if rule.ethertype.lower() == "ipv4" else "ipv6"
    ip = "ip" if family == "ipv4" else "ip6"
    parts = [f"meta nfproto {family}"]
    peer = "saddr" if rule.direction == "ingress" else "daddr"
    if rule.remote_ip_prefix:
        net = _network(rule.remote_ip_prefix)
        if (net.version == 4) != (family == "ipv4"):
            raise RuleError(f"remote_ip_prefix {net} does not match ethertype {rule.ethertype}")
        if net.prefixlen:
            parts.append(f"{ip} {peer} {_text(net)}")
    elif rule.remote_group_id:
        parts.append(f"{ip} {peer} @rg{family[-1]}-{rule.remote_group_id}")
    if rule.protocol is not None:
        text = rule.protocol.lower()
        if text.isdigit():
            number = int(text)
        elif text in PROTOCOLS:
            number = PROTOCOLS[text]
        else:
            raise RuleError(f"unknown protocol {rule.protocol!r}")
        if number == 1 and family == "ipv6":
            number = 58  # Neutron: "icmp" with IPv6 means ICMPv6
        if number in (1, 58):
            icmp = "icmp" if number == 1 else "icmpv6"
            parts.append(f"meta l4proto {icmp}")
            if rule.port_range_min is not None:
                parts.append(f"{icmp} type {int(rule.port_range_min)}")
                if rule.port_range_max is not None:
                    parts.append(f"{icmp} code {int(rule.port_range_max)}")
        else:
            parts.append(f"meta l4proto {number}")
            low, high = rule.port_range_min, rule.port_range_max
            if number in PORTED and (low is not None or high is not None):
                low = int(low if low is not None else 1)
                high = int(high if high is not None else 65535)
                if not (1 <= low <= high <= 65535):
                    raise RuleError(f"bad port range {low}-{high}")
                if (low, high) != (1, 65535):
                    parts.append(f"th dport {low}" if low == high else f"th dport {low}-{high}")
    parts.append("accept")
    return " ".join(parts)


@dataclass
class PortPlan:
    port: Port
    tap: str
    index: int
    spoof: list[str]
    egress: list[str]
    ingress: list[str]

    @property
    def chain_suffix(self) -> str:
        return self.port.id[:11]


def _set_text(items: Iterable[str]) -> str:
    return "{ " + ", ".join(items) + " }"


def spoof_rules(port: Port, mark: int) -> list[str]:
    bindings = port_bindings(port)
    mac = port.mac_address.lower()
    macs = sorted({mac, *(m for m, _ in bindings)})
    v4 = [(m, _text(n)) for m, n in bindings if n.version == 4]
    v6 = [(m, _text(n)) for m, n in bindings if n.version == 6]
    v6 += [(m, link_local(m)) for m in macs]
    rules = [
        f"meta mark set {mark:#010x}",
        "ether type != { ip, ip6, arp } drop",
        f"ether saddr != {_set_text(macs)} drop",
        # a guest is never a DHCP server nor an IPv6 router
        "ether type ip udp sport 67 udp dport 68 drop",
        "ether type ip6 udp sport 547 udp dport 546 drop",
        "ether type ip6 icmpv6 type nd-router-advert drop",
        f"ether type arp arp saddr ether != {_set_text(macs)} drop",
    ]
    arp_ips = sorted({ip for _, ip in v4} | {"0.0.0.0"}, key=_sort_key)
    rules.append(f"ether type arp arp saddr ip != {_set_text(arp_ips)} drop")
    rules.append("ether type ip ip saddr 0.0.0.0 udp sport 68 udp dport 67 return")
    if v4:
        pairs = _set_text(f"{m} . {ip}" for m, ip in v4)
        rules.append(f"ether type ip ether saddr . ip saddr != {pairs} drop")
    else:
        rules.append("ether type ip drop")
    rules.append(
        "ether type ip6 ip6 saddr :: icmpv6 type { nd-neighbor-solicit, mld2-listener-report } "
        "return"
    )
    pairs6 = _set_text(f"{m} . {ip}" for m, ip in sorted(set(v6)))
    rules.append(f"ether type ip6 ether saddr . ip6 saddr != {pairs6} drop")
    return rules


def plan_ports(snapshot: Snapshot, config: HostConfig, taps: set[str]) -> list[PortPlan]:
    plans = []
    for port in snapshot.ports_on(config.host):
        if not port.is_guest or not port.port_security_enabled:
            continue
        tap = tap_name(port.id)
        if tap not in taps:
            continue
        index = len(plans) + 1
        egress: list[str] = []
        ingress: list[str] = []
        for group_id in sorted(set(port.security_groups)):
            group = snapshot.security_groups.get(group_id)
            if group is None:
                LOG.warning("port %s: security group %s unknown", port.id, group_id)
                continue
            for rule in sorted(group.rules, key=lambda r: r.id):
                try:
                    text = render_rule(rule)
                except (RuleError, ValueError) as exc:
                    LOG.warning("security group rule %s skipped: %s", rule.id, exc)
                    continue
                target = ingress if rule.direction == "ingress" else egress
                if text not in target:
                    target.append(text)
        plans.append(
            PortPlan(
                port=port,
                tap=tap,
                index=index,
                spoof=spoof_rules(port, EGRESS_MARK | index),
                egress=egress,
                ingress=ingress,
            )
        )
    return plans


def render(snapshot: Snapshot, plans: list[PortPlan]) -> str:
    """Both ``stratus-sg`` tables, replaced in one transaction."""
    script = [
        f"table bridge {TABLE} {{}}",
        f"delete table bridge {TABLE}",
        f"table inet {TABLE} {{}}",
        f"delete table inet {TABLE}",
    ]
    if not plans:
        return "\n".join(script) + "\n"

    def chain(name: str, rules: Iterable[str], head: str | None = None) -> list[str]:
        lines = [f"\tchain {name} {{"]
        if head:
            lines.append(f"\t\t{head}")
        lines += [f"\t\t{r}" for r in rules]
        lines.append("\t}")
        return lines

    spoof_map = _set_text(f'"{p.tap}" : jump spoof-{p.chain_suffix}' for p in plans)
    out_map = _set_text(f'"{p.tap}" : {INGRESS_MARK | p.index:#010x}' for p in plans)
    bridge = [f"table bridge {TABLE} {{"]
    bridge += chain(
        "prerouting",
        [f"iifname vmap {spoof_map}"],
        "type filter hook prerouting priority -300; policy accept;",
    )
    bridge += chain(
        "forward",
        [f"meta mark set oifname map {out_map}"],
        "type filter hook forward priority -300; policy accept;",
    )
    for p in plans:
        bridge += chain(f"spoof-{p.chain_suffix}", p.spoof)
    bridge.append("}")

    egress_map = _set_text(
        f"{EGRESS_MARK | p.index:#010x} : jump egress-{p.chain_suffix}" for p in plans
    )
    ingress_map = _set_text(
        f"{INGRESS_MARK | p.index:#010x} : jump ingress-{p.chain_suffix}" for p in plans
    )
    inet = [f"table inet {TABLE} {{"]
    used_groups = sorted(
        {
            rule.split("@rg", 1)[1].split()[0]
            for p in plans
            for rule in (*p.egress, *p.ingress)
            if "@rg" in rule
        }
    )
    members = group_members(snapshot)
    for name in used_groups:
        version, group_id = name[0], name[2:]
        addresses = members.get(group_id, ([], []))[0 if version == "4" else 1]
        kind = "ipv4_addr" if version == "4" else "ipv6_addr"
        inet.append(f"\tset rg{name} {{")
        inet.append(f"\t\ttype {kind}; flags interval; auto-merge;")
        if addresses:
            inet.append(f"\t\telements = {_set_text(addresses)}")
        inet.append("\t}")
    inet += chain(
        "raw",
        ['iifname "brq*" meta pkttype { broadcast, multicast } notrack'],
        "type filter hook prerouting priority raw; policy accept;",
    )
    inet += chain(
        "prerouting",
        [f"meta mark vmap {egress_map}"],
        "type filter hook prerouting priority -150; policy accept;",
    )
    inet += chain(
        "forward",
        [f"meta mark vmap {ingress_map}"],
        "type filter hook forward priority 0; policy accept;",
    )
    state = ["ct state established,related accept", "ct state invalid drop"]
    for p in plans:
        inet += chain(f"egress-{p.chain_suffix}", [*state, *EGRESS_BASE, *p.egress, "drop"])
        inet += chain(f"ingress-{p.chain_suffix}", [*state, *INGRESS_BASE, *p.ingress, "drop"])
    inet.append("}")
    return "\n".join(script + bridge + inet) + "\n"


# --- converging -----------------------------------------------------------------------


def enable_bridge_netfilter() -> None:
    """Bridged IPv4/IPv6 through the ``inet`` hooks (br_netfilter), in this namespace."""
    for path in BRIDGE_NF_SYSCTLS:
        if not os.path.exists(path):
            namespaces.run(["modprobe", "br_netfilter"], check=False)
        try:
            with open(path) as current:
                if current.read().strip() == "1":
                    continue
            with open(path, "w") as target:
                target.write("1")
        except OSError as exc:
            raise RuntimeError(
                f"{path}: {exc}; security groups need br_netfilter (modprobe br_netfilter)"
            ) from exc


def host_taps() -> set[str]:
    with namespaces.ipr() as ip:
        return {
            link.get("ifname")
            for link in ip.get_links()
            if (link.get("ifname") or "").startswith("tap")
        }


NUD_NOARP = 0x40  # what ``bridge fdb ... static`` makes
NTF_MASTER = 0x04


def pin_macs(plans: list[PortPlan]) -> None:
    """Static bridge FDB entries: each filtered port's MACs on its own tap.

    Frames to a guest are then never flooded (see the module's docstring);
    static entries of ours that no port wants any more are removed from every
    ``tap*`` (the kernel drops the rest with the tap).
    """
    wanted = {
        (p.tap, mac)
        for p in plans
        for mac in {p.port.mac_address.lower(), *(m for m, _ in port_bindings(p.port))}
    }
    with namespaces.ipr() as ip:
        links = list(ip.get_links())
        names = {link["index"]: link.get("ifname") or "" for link in links}
        enslaved = {link.get("ifname") for link in links if link.get("master")}
        present = set()
        for entry in ip.fdb("dump"):
            name = names.get(entry["ifindex"], "")
            if not name.startswith("tap") or not entry.get("NDA_MASTER"):
                continue
            if not entry["state"] & NUD_NOARP:
                continue
            key = (name, str(entry.get("NDA_LLADDR")).lower())
            if key in wanted:
                present.add(key)
            else:
                ip.fdb("del", ifindex=entry["ifindex"], lladdr=key[1], flags=NTF_MASTER)
        indexes = {name: index for index, name in names.items()}
        for tap, mac in sorted(wanted - present):
            if tap not in enslaved:
                continue  # not on its bridge yet: the next pass pins it
            ip.fdb("replace", ifindex=indexes[tap], lladdr=mac, state=NUD_NOARP, flags=NTF_MASTER)


def converge(snapshot: Snapshot, config: HostConfig) -> None:
    """Filter every guest port bound here whose tap exists; drop what is stale."""
    plans = plan_ports(snapshot, config, host_taps())
    if plans:
        enable_bridge_netfilter()
    namespaces.nft(render(snapshot, plans))
    pin_macs(plans)
