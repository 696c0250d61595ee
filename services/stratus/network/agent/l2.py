"""Layer 2: one Linux bridge per network, joined to the wire by its segment device.

Every network this host carries gets a bridge ``brq<net[:11]>`` in the host's
own namespace. What joins the bridge to the other hosts depends on the
network's segment (``provider:network_type``):

- ``flat``: the physical interface the ``physical_network`` is mapped to
  (``HostConfig.physical_interfaces``) is itself a port of the bridge;
- ``vlan``: a VLAN sub-interface ``<phys>.<vid>`` of that interface is;
- ``vxlan``: ``vxlan-<vni>`` (local = the host's tunnel address, no group or
  remote, learning off). Unicast head-end replication: one all-zero FDB entry
  per peer host (``Snapshot.peers_for``) floods broadcast and unknown frames
  to every host that has a port on the network, and one entry per remote
  port's MAC sends its unicast straight to the host it is bound to
  (what Neutron calls l2population);
- ``gre``: one ``gretap`` per peer host (key = segmentation id), each
  ``isolated`` on the bridge: a frame that came in over one tunnel never
  leaves over another, so the full mesh of tunnels cannot loop (split
  horizon), and every host still reaches every other directly;
- ``local``: no segment device; the network stays inside this host.

The bridge and the devices the agent makes get ``network.mtu`` (the API has
already taken the encapsulation overhead off it); a physical interface is
only ever raised to that MTU, never lowered, since other things may use it.

Guest taps ``tap<port[:11]>`` are created by the hypervisor; when one exists
it is plugged into its network's bridge, otherwise the next pass plugs it.

What the agent owns is recognised by name: bridges ``brq*``, ``vxlan-*``,
``gt-*`` and VLAN sub-interfaces ``<phys>.<vid>`` of a mapped interface.
Those of networks this host no longer carries are deleted; nothing else is
ever touched (taps belong to the hypervisor, physical interfaces to the
operator). Every step compares before it changes, so a pass over a host that
is already right sends no netlink change at all.

``ensure_network`` and ``plug`` are what the other modules (DHCP, L3) use to
attach their own devices to a network.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from stratus.network.agent import namespaces
from stratus.network.agent.state import HostConfig, Network, Snapshot, bridge_name, tap_name

log = logging.getLogger(__name__)

IFNAMSIZ = 15
VXLAN_PREFIX = "vxlan-"
GRE_PREFIX = "gt-"
BRIDGE_PREFIX = "brq"
ZERO_MAC = "00:00:00:00:00:00"
# Written on the devices the agent creates, for operators (``ip -d link``).
ALIAS_PREFIX = "stratus network "


class PartialFailure(Exception):
    """Some networks or ports could not be converged; the others were.

    ``failures`` maps what failed (a network or port id) to the reason;
    ``ports_up`` holds the ports that are wired up nonetheless.
    """

    def __init__(self, failures: dict[str, str], ports_up: Iterable[str] = ()):
        self.failures = dict(failures)
        self.ports_up = set(ports_up)
        super().__init__("; ".join(f"{k}: {v}" for k, v in sorted(self.failures.items())))


# --- names and plans (pure) ----------------------------------------------------


def vxlan_name(vni: int) -> str:
    return f"{VXLAN_PREFIX}{vni}"


def vlan_name(physical_interface: str, vlan_id: int) -> str:
    """``<phys>.<vid>``, the interface name shortened to fit 15 characters."""
    suffix = f".{vlan_id}"
    return physical_interface[: IFNAMSIZ - len(suffix)] + suffix


def gre_name(segmentation_id: int, remote_ip: str) -> str:
    """``gt-<segid>-<hash of the peer>``: stable per (network, peer), 15 characters.

    Stable names matter: a peer joining or leaving never renames (and so
    never recreates) the tunnels to the other peers. When the segmentation id
    is too long to leave room for a useful hash, both are hashed together.
    """
    head = f"{GRE_PREFIX}{segmentation_id}-"
    room = IFNAMSIZ - len(head)
    if room >= 4:
        digest = hashlib.sha256(remote_ip.encode()).hexdigest()
        return head + digest[:room]
    digest = hashlib.sha256(f"{segmentation_id}/{remote_ip}".encode()).hexdigest()
    return GRE_PREFIX + digest[: IFNAMSIZ - len(GRE_PREFIX)]


@dataclass(frozen=True)
class SegmentDevice:
    """One device joining a network's bridge to the wire."""

    name: str
    kind: str  # physical, vlan, vxlan, gretap
    physical: str | None = None  # physical, vlan: the host interface
    vlan_id: int | None = None
    vni: int | None = None  # vxlan id or gre key
    local_ip: str | None = None
    remote_ip: str | None = None  # gretap
    port: int | None = None  # vxlan UDP port
    # vxlan: (mac, tunnel ip) entries; ZERO_MAC ones flood.
    fdb: frozenset[tuple[str, str]] = field(default_factory=frozenset)


def carried_networks(snapshot: Snapshot, config: HostConfig) -> list[Network]:
    """Networks this host needs a bridge for.

    Those of the ports bound here, plus the external networks of the routers
    built here (whose gateway port may not be bound yet).
    """
    ids = {n.id for n in snapshot.networks_on(config.host)}
    for router in snapshot.routers_on(config.host):
        if router.gateway_network_id in snapshot.networks:
            ids.add(router.gateway_network_id)
    return [snapshot.networks[i] for i in sorted(ids)]


def segment_plan(snapshot: Snapshot, config: HostConfig, network: Network) -> list[SegmentDevice]:
    """The segment devices ``network``'s bridge must have on this host."""
    kind = network.network_type
    if kind == "local":
        return []
    if kind in ("flat", "vlan"):
        physnet = network.physical_network or ""
        physical = config.physical_interfaces.get(physnet)
        if not physical:
            raise ValueError(
                f"network {network.id}: physical network {physnet!r} is not mapped to an "
                "interface on this host (physical_interface_mappings)"
            )
        if kind == "flat":
            return [SegmentDevice(name=physical, kind="physical", physical=physical)]
        vid = network.segmentation_id
        if vid is None or not 1 <= vid <= 4094:
            raise ValueError(f"network {network.id}: VLAN id {vid!r} is not in 1-4094")
        return [
            SegmentDevice(
                name=vlan_name(physical, vid), kind="vlan", physical=physical, vlan_id=vid
            )
        ]
    if kind in ("vxlan", "gre"):
        if kind not in config.tunnel_types:
            raise ValueError(f"network {network.id}: tunnel type {kind} is not enabled here")
        if not config.local_ip:
            raise ValueError(f"network {network.id}: {kind} needs local_ip on this host")
        if network.segmentation_id is None:
            raise ValueError(f"network {network.id}: {kind} without a segmentation id")
        peers = [p for p in snapshot.peers_for(network.id, config.host)]
        if kind == "vxlan":
            by_host = {p.host: p.tunneling_ip for p in peers}
            fdb = {(ZERO_MAC, ip) for ip in by_host.values()}
            for port in snapshot.ports_of(network.id):
                if port.host in by_host:
                    fdb.add((port.mac_address.lower(), by_host[port.host]))
            return [
                SegmentDevice(
                    name=vxlan_name(network.segmentation_id),
                    kind="vxlan",
                    vni=network.segmentation_id,
                    local_ip=config.local_ip,
                    port=config.vxlan_port,
                    fdb=frozenset(fdb),
                )
            ]
        return [
            SegmentDevice(
                name=gre_name(network.segmentation_id, ip),
                kind="gretap",
                vni=network.segmentation_id,
                local_ip=config.local_ip,
                remote_ip=ip,
            )
            for ip in sorted({p.tunneling_ip for p in peers})
        ]
    raise ValueError(f"network {network.id}: unknown network type {kind!r}")


# --- netlink helpers -------------------------------------------------------------


def _link(ip: IPRoute, name: str) -> Any | None:
    try:
        found = ip.link("get", ifname=name)
    except NetlinkError as exc:
        if exc.code == 19:  # ENODEV
            return None
        raise
    return found[0] if found else None


def _index(ip: IPRoute, name: str) -> int:
    link = _link(ip, name)
    if link is None:
        raise LookupError(f"device {name} does not exist")
    return int(link["index"])


def _info(link: Any) -> tuple[str | None, Any]:
    linkinfo = link.get("IFLA_LINKINFO")
    if linkinfo is None:
        return None, None
    return linkinfo.get("IFLA_INFO_KIND"), linkinfo.get("IFLA_INFO_DATA")


def _is_up(link: Any) -> bool:
    return bool(link["flags"] & 1)  # IFF_UP


def _set(ip: IPRoute, link: Any, **changes: Any) -> None:
    """Apply only the ``changes`` that differ from ``link``."""
    wanted: dict[str, Any] = {}
    if "master" in changes and link.get("IFLA_MASTER") != changes["master"]:
        wanted["master"] = changes["master"]
    if "mtu" in changes and link.get("IFLA_MTU") != changes["mtu"]:
        wanted["mtu"] = changes["mtu"]
    if "ifalias" in changes and link.get("IFLA_IFALIAS") != changes["ifalias"]:
        wanted["ifalias"] = changes["ifalias"]
    if wanted:
        ip.link("set", index=link["index"], **wanted)
    if changes.get("state") == "up" and not _is_up(link):
        ip.link("set", index=link["index"], state="up")
    if changes.get("state") == "down" and _is_up(link):
        ip.link("set", index=link["index"], state="down")


def plug(bridge: str, device: str, mtu: int) -> None:
    """Enslave the existing ``device`` to ``bridge``, give it ``mtu`` and bring it up.

    Idempotent; changes nothing that is already right. Raises ``LookupError``
    when either device is missing.
    """
    with namespaces.ipr() as ip:
        _plug(ip, bridge, device, mtu)


def _plug(ip: IPRoute, bridge: str, device: str, mtu: int) -> None:
    bridge_index = _index(ip, bridge)
    link = _link(ip, device)
    if link is None:
        raise LookupError(f"device {device} does not exist")
    _set(ip, link, master=bridge_index, mtu=mtu, state="up")


def _vxlan_matches(data: Any, seg: SegmentDevice) -> bool:
    return (
        data is not None
        and data.get("IFLA_VXLAN_ID") == seg.vni
        and data.get("IFLA_VXLAN_LOCAL") == seg.local_ip
        and data.get("IFLA_VXLAN_PORT") == seg.port
        and not data.get("IFLA_VXLAN_LEARNING")
        and data.get("IFLA_VXLAN_GROUP") in (None, "0.0.0.0")
    )


def _gre_matches(data: Any, seg: SegmentDevice) -> bool:
    return (
        data is not None
        and data.get("IFLA_GRE_IKEY") == seg.vni
        and data.get("IFLA_GRE_OKEY") == seg.vni
        and data.get("IFLA_GRE_LOCAL") == seg.local_ip
        and data.get("IFLA_GRE_REMOTE") == seg.remote_ip
    )


def _create(ip: IPRoute, seg: SegmentDevice, network: Network) -> None:
    alias = f"{ALIAS_PREFIX}{network.id}"
    if seg.kind == "vlan":
        assert seg.physical is not None
        ip.link(
            "add",
            ifname=seg.name,
            kind="vlan",
            link=_index(ip, seg.physical),
            vlan_id=seg.vlan_id,
        )
    elif seg.kind == "vxlan":
        ip.link(
            "add",
            ifname=seg.name,
            kind="vxlan",
            vxlan_id=seg.vni,
            vxlan_local=seg.local_ip,
            vxlan_port=seg.port,
            vxlan_learning=0,
        )
    elif seg.kind == "gretap":
        # iproute2 rather than pyroute2 here: the GRE key flags are easy to get
        # wrong by hand, and ``ip link`` is what operators reproduce this with.
        assert seg.vni is not None and seg.local_ip and seg.remote_ip
        argv = ["ip", "link", "add", seg.name, "type", "gretap", "local", seg.local_ip]
        namespaces.run([*argv, "remote", seg.remote_ip, "key", str(seg.vni)])
    else:
        raise ValueError(f"cannot create a {seg.kind} device")
    ip.link("set", index=_index(ip, seg.name), ifalias=alias)


def _ensure_segment(ip: IPRoute, seg: SegmentDevice, network: Network, bridge_index: int) -> None:
    link = _link(ip, seg.name)
    if seg.kind == "physical":
        if link is None:
            raise LookupError(f"physical interface {seg.name} does not exist on this host")
        mtu = max(int(link.get("IFLA_MTU") or 0), network.mtu)
        _set(ip, link, master=bridge_index, mtu=mtu, state="up")
        return
    physical_index = None
    if seg.kind == "vlan":
        physical = _link(ip, seg.physical or "")
        if physical is None:
            raise LookupError(f"physical interface {seg.physical} does not exist on this host")
        if int(physical.get("IFLA_MTU") or 0) < network.mtu:
            ip.link("set", index=physical["index"], mtu=network.mtu)
        _set(ip, physical, state="up")
        physical_index = physical["index"]
    if link is not None:
        kind, data = _info(link)
        fine = (
            (
                seg.kind == "vlan"
                and kind == "vlan"
                and data.get("IFLA_VLAN_ID") == seg.vlan_id
                and link.get("IFLA_LINK") == physical_index
            )
            or (seg.kind == "vxlan" and kind == "vxlan" and _vxlan_matches(data, seg))
            or (seg.kind == "gretap" and kind == "gretap" and _gre_matches(data, seg))
        )
        if not fine:
            log.info("recreating %s: its parameters changed", seg.name)
            ip.link("del", index=link["index"])
            link = None
    if link is None:
        log.info("creating %s %s for network %s", seg.kind, seg.name, network.id)
        _create(ip, seg, network)
        link = _link(ip, seg.name)
        assert link is not None
    _set(ip, link, master=bridge_index, mtu=network.mtu, state="up")
    if seg.kind == "gretap":
        isolate(ip, seg.name)
    if seg.kind == "vxlan":
        _sync_fdb(ip, int(link["index"]), seg.fdb)


def is_isolated(link: Any) -> bool:
    """Whether a bridge port is ``isolated`` (from its ``IFLA_INFO_SLAVE_DATA``)."""
    linkinfo = link.get("IFLA_LINKINFO")
    data = linkinfo.get("IFLA_INFO_SLAVE_DATA") if linkinfo is not None else None
    return bool(data is not None and data.get("IFLA_BRPORT_ISOLATED"))


def isolate(ip: IPRoute, device: str) -> None:
    """Split horizon for tunnels: isolated bridge ports don't forward to each other."""
    link = _link(ip, device)
    if link is None:
        raise LookupError(f"device {device} does not exist")
    if not is_isolated(link):
        ip.brport("set", index=link["index"], isolated=1)


def vxlan_fdb(ip: IPRoute, index: int) -> set[tuple[str, str]]:
    """The (mac, tunnel ip) entries of a VXLAN device's own forwarding table."""
    entries = set()
    for entry in ip.fdb("dump", ifindex=index):
        dst = entry.get("NDA_DST")
        if entry["ifindex"] == index and dst and not entry.get("NDA_MASTER"):
            entries.add((str(entry.get("NDA_LLADDR")).lower(), dst))
    return entries


def _sync_fdb(ip: IPRoute, index: int, wanted: frozenset[tuple[str, str]]) -> None:
    present = vxlan_fdb(ip, index)
    for mac, dst in sorted(present - wanted):
        log.info("removing fdb entry %s dst %s", mac, dst)
        ip.fdb("del", ifindex=index, lladdr=mac, dst=dst)
    # Stale entries went first, so a MAC that moved to another host is free
    # to be added again; flooding entries are appended (one per peer).
    for mac, dst in sorted(wanted - present):
        ip.fdb("append" if mac == ZERO_MAC else "add", ifindex=index, lladdr=mac, dst=dst)


# --- the public steps -----------------------------------------------------------


def ensure_network(snapshot: Snapshot, config: HostConfig, network: Network) -> str:
    """Make ``network``'s bridge and segment devices right; return the bridge's name.

    Callable for any network (the L3 agent uses it for external networks);
    idempotent. Tunnels to peers that left are removed from the bridge.
    """
    plan = segment_plan(snapshot, config, network)
    name = bridge_name(network.id)
    with namespaces.ipr() as ip:
        bridge = _link(ip, name)
        if bridge is not None and _info(bridge)[0] != "bridge":
            raise RuntimeError(f"{name} exists and is not a bridge")
        if bridge is None:
            log.info("creating bridge %s for network %s", name, network.id)
            ip.link("add", ifname=name, kind="bridge", br_stp_state=0, br_forward_delay=0)
            bridge = _link(ip, name)
            assert bridge is not None
        _set(ip, bridge, mtu=network.mtu, ifalias=f"{ALIAS_PREFIX}{network.id}", state="up")
        bridge_index = int(bridge["index"])
        wanted = {seg.name for seg in plan}
        # Segment devices of ours on this bridge that the plan no longer has
        # (a departed GRE peer, a changed segmentation id).
        for link in ip.get_links():
            ifname = link.get("IFLA_IFNAME")
            stale = link.get("IFLA_MASTER") == bridge_index and ifname not in wanted
            if stale and _owned_segment(link, config):
                log.info("removing %s from network %s", ifname, network.id)
                ip.link("del", index=link["index"])
            elif stale and ifname in config.physical_interfaces.values():
                # Was this network's flat segment: release it, never delete it.
                log.info("releasing %s from network %s", ifname, network.id)
                ip.link("set", index=link["index"], master=0)
        for seg in plan:
            _ensure_segment(ip, seg, network, bridge_index)
    return name


def _owned_segment(link: Any, config: HostConfig) -> bool:
    """A segment device the agent made (never a tap, a physical or foreign device)."""
    name = link.get("IFLA_IFNAME") or ""
    kind, data = _info(link)
    if name.startswith(VXLAN_PREFIX) and kind == "vxlan":
        return True
    if name.startswith(GRE_PREFIX) and kind == "gretap":
        return True
    if kind == "vlan" and data is not None:
        vid = data.get("IFLA_VLAN_ID")
        return any(name == vlan_name(phys, vid) for phys in config.physical_interfaces.values())
    return False


def plug_guests(snapshot: Snapshot, config: HostConfig, network: Network, bridge: str) -> set[str]:
    """Plug the taps of the guest ports bound here; return the ports that are plugged."""
    plugged = set()
    with namespaces.ipr() as ip:
        for port in snapshot.ports_of(network.id):
            if port.host != config.host or not port.is_guest:
                continue
            tap = tap_name(port.id)
            link = _link(ip, tap)
            if link is None:
                continue  # the hypervisor has not made it yet: a later pass plugs it
            if not port.admin_state_up:
                _set(ip, link, state="down")
                continue
            _plug(ip, bridge, tap, network.mtu)
            plugged.add(port.id)
    return plugged


def remove_stale(snapshot: Snapshot, config: HostConfig, keep: Iterable[str]) -> list[str]:
    """Delete our bridges and segment devices of networks not in ``keep``; return their names."""
    keep_bridges = {bridge_name(i) for i in keep}
    removed = []
    with namespaces.ipr() as ip:
        links = list(ip.get_links())
        by_index = {link["index"]: link for link in links}
        for link in links:
            name = link.get("IFLA_IFNAME") or ""
            kind, _ = _info(link)
            stale = False
            if name.startswith(BRIDGE_PREFIX) and kind == "bridge":
                stale = name not in keep_bridges
            elif _owned_segment(link, config):
                master = by_index.get(link.get("IFLA_MASTER"))
                master_name = master.get("IFLA_IFNAME") if master is not None else None
                stale = master_name not in keep_bridges
            if stale:
                log.info("removing %s (its network is no longer carried here)", name)
                try:
                    ip.link("del", index=link["index"])
                except NetlinkError as exc:
                    if exc.code != 19:
                        raise
                removed.append(name)
    return removed


def converge(snapshot: Snapshot, config: HostConfig) -> set[str]:
    """Bridges, segments and guest taps of every carried network; return plugged ports.

    A network that fails is logged and skipped (and reported through
    ``PartialFailure`` at the end); its bridge is left as it was.
    """
    failures: dict[str, str] = {}
    plugged: set[str] = set()
    carried = carried_networks(snapshot, config)
    for network in carried:
        try:
            bridge = ensure_network(snapshot, config, network)
            plugged |= plug_guests(snapshot, config, network, bridge)
        except Exception as exc:  # one network must not stop the others
            log.exception("network %s: layer 2 failed", network.id)
            failures[network.id] = str(exc) or type(exc).__name__
    remove_stale(snapshot, config, [n.id for n in carried])
    if failures:
        raise PartialFailure(failures, plugged)
    return plugged
