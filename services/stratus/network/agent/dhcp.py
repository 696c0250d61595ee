"""DHCP and DNS for a network: dnsmasq in a ``qdhcp-<network>`` namespace.

A network is served here when one of its DHCP ports (``device_owner``
``network:dhcp``) is bound to this host and it has a subnet with DHCP on.
The port becomes a veth pair: ``tap<port[:11]>`` plugged into the network's
bridge, ``ns-<port[:11]>`` inside the namespace with the port's MAC and fixed
IPs (and a default route via the first IPv4 gateway). One dnsmasq per
network runs inside the namespace, bound to that device only.

Addresses are fixed, never pooled: each port of the network has a line
``mac,hostname,ip`` in the hosts file and each subnet a ``static`` range, so
a guest gets exactly the address the API gave its port, at its first
DISCOVER. The per-subnet options (router, DNS servers, classless static
routes with the default route in them, as RFC 3442 clients ignore option 3
when 121 is present, domain, MTU) are in the options file. A subnet no
router is attached to also gets a classless route to the metadata address
``169.254.169.254/32`` via the DHCP port, which holds that address in the
namespace (the ``metadata`` proxy listens there). Both files and
``addn-hosts`` (one DNS name per port, answered at once, not only after a
lease) are re-read on SIGHUP, so a port coming or going is a rewrite and a
signal: dnsmasq keeps running and its leases stay. dnsmasq is restarted only
when its command line must change (a subnet added or removed, a new DHCP
port). Nothing is rewritten or signalled when nothing changed.

Leases that no longer match a host entry are released. dnsmasq keeps a lease
for a day (``LEASE_SECONDS``) and will not give a configured address to one
MAC while another MAC holds a lease on it ("not using configured address ...
because it is leased to ..."), so a port deleted and its address given to a
new port (the IPAM hands out the lowest free address) would leave the new
guest without an address. Each pass therefore reads dnsmasq's lease file and
compares it with the host entries: a lease on an address no entry has, or
held by another MAC than the entry's (for DHCPv6, by a client whose DUID
names another MAC, or on an address the previous hosts file gave another
MAC), is stale. A running dnsmasq is told to drop it, before it is signalled,
with ``dhcp_release`` (``dhcp_release6`` for DHCPv6) of Debian's
``dnsmasq-utils``, run inside the namespace on the DHCP device, as Neutron's
DHCP agent does; a dnsmasq about to be started gets a lease file without
them (it reads that file only when it starts). Nothing depends on what an
earlier agent process saw: a restarted agent finds the same stale leases.
Without ``dhcp_release`` the agent restarts dnsmasq instead.

DNS: dnsmasq answers the names of the network's ports (``dns_name``, else
``host-<ip with dashes>``, in the ``openstacklocal`` domain) and nothing
else (``--no-resolv``, ``--no-hosts``): a guest that needs other names gets
the subnet's ``dns_nameservers`` instead of dnsmasq, as in Neutron. The
host's own resolver is never offered to tenants.

IPv6: ``dhcpv6-stateful`` subnets get a ``static`` DHCPv6 range and their
addresses in the hosts file; ``dhcpv6-stateless`` a range for options only;
SLAAC subnets nothing (router advertisements are the router's job: ``ra``).

Files live in ``<state_dir>/dhcp/<network id>/`` (``pid``, ``host``,
``addn_hosts``, ``opts``, ``leases``). dnsmasq drops to ``nobody`` after it
starts, so the directory is world-readable (never writable).

When a network is no longer served here its dnsmasq is stopped (also one
whose pid file was lost: processes are found by their files' path), and its
veth, namespace and directory are removed.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import shutil
import signal
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from stratus.network.agent import daemons, l2, namespaces
from stratus.network.agent.state import (
    METADATA_IP,
    HostConfig,
    Network,
    Port,
    Snapshot,
    Subnet,
    dhcp_interface_name,
    dhcp_namespace,
    tap_name,
)

log = logging.getLogger(__name__)

DNSMASQ = "/usr/sbin/dnsmasq"
# Debian's dnsmasq-utils: make the dnsmasq of an interface drop a lease.
DHCP_RELEASE = "dhcp_release"
DHCP_RELEASE6 = "dhcp_release6"
# How long a released lease may stay in the lease file (dnsmasq rewrites it
# once it handled the release) before the agent says it is still there.
RELEASE_WAIT_SECONDS = 2.0
LEASE_SECONDS = 86400
DNS_DOMAIN = "openstacklocal"
NAMESPACE_PREFIX = "qdhcp-"


# --- what dnsmasq must be told (pure) ------------------------------------------


def served(snapshot: Snapshot, config: HostConfig) -> dict[str, Port]:
    """network id -> the DHCP port that serves it from this host."""
    result: dict[str, Port] = {}
    for port in snapshot.ports_on(config.host):
        if not port.is_dhcp or port.network_id in result:
            continue
        if port.network_id not in snapshot.networks:
            continue
        if any(s.enable_dhcp for s in snapshot.subnets_of(port.network_id)):
            result[port.network_id] = port
    return result


def dhcp_subnets(snapshot: Snapshot, network_id: str) -> list[Subnet]:
    """Subnets dnsmasq serves: DHCP on, and for IPv6 a DHCPv6 address mode."""
    return [
        s
        for s in snapshot.subnets_of(network_id)
        if s.enable_dhcp
        and (s.ip_version == 4 or s.ipv6_address_mode in ("dhcpv6-stateful", "dhcpv6-stateless"))
    ]


def isolated(snapshot: Snapshot, subnet: Subnet) -> bool:
    """No router is attached to ``subnet``: its guests reach metadata through DHCP."""
    return not any(
        any(f.subnet_id == subnet.id for f in port.fixed_ips)
        for port in snapshot.ports_of(subnet.network_id)
        if port.is_router and not port.is_gateway
    )


def hostname(port: Port, ip: str) -> str:
    if port.dns_name:
        return port.dns_name
    return "host-" + ip.replace(".", "-").replace(":", "-")


def _tag(subnet: Subnet) -> str:
    return f"subnet-{subnet.id}"


@dataclass(frozen=True)
class Files:
    """The contents dnsmasq reads, as text."""

    hosts: str
    addn_hosts: str
    opts: str


def render(snapshot: Snapshot, network: Network, dhcp_port: Port) -> Files:
    subnets = {s.id: s for s in dhcp_subnets(snapshot, network.id)}
    all_subnets = {s.id: s for s in snapshot.subnets_of(network.id)}
    hosts: list[str] = []
    addn: list[str] = []
    for port in snapshot.ports_of(network.id):
        if not port.admin_state_up:
            continue
        for fixed in port.fixed_ips:
            subnet = all_subnets.get(fixed.subnet_id)
            if subnet is None:
                continue
            name = hostname(port, fixed.ip_address)
            addn.append(f"{fixed.ip_address}\t{name}.{DNS_DOMAIN} {name}")
            if fixed.subnet_id not in subnets or port.is_dhcp:
                continue
            if subnet.ip_version == 6:
                if subnet.ipv6_address_mode != "dhcpv6-stateful":
                    continue
                hosts.append(f"{port.mac_address},{name},[{fixed.ip_address}]")
            else:
                hosts.append(f"{port.mac_address},{name},{fixed.ip_address}")
    own = {f.subnet_id: f.ip_address for f in dhcp_port.fixed_ips}
    opts: list[str] = []
    for subnet in subnets.values():
        tag = f"tag:{_tag(subnet)}"
        if subnet.ip_version == 4:
            if subnet.dns_nameservers:
                opts.append(f"{tag},option:dns-server,{','.join(subnet.dns_nameservers)}")
            elif subnet.id in own:
                opts.append(f"{tag},option:dns-server,{own[subnet.id]}")
            opts.append(f"{tag},option:domain-name,{DNS_DOMAIN}")
            opts.append(f"{tag},option:mtu,{network.mtu}")
            if subnet.gateway_ip:
                opts.append(f"{tag},option:router,{subnet.gateway_ip}")
            else:
                opts.append(f"{tag},option:router")  # none: dnsmasq would offer itself
            routes = [(d, n) for d, n in subnet.host_routes if ipaddress.ip_network(d).version == 4]
            if subnet.id in own and isolated(snapshot, subnet):
                metadata = f"{METADATA_IP}/32"
                if not any(d == metadata for d, _ in routes):
                    routes.append((metadata, own[subnet.id]))
            if routes:
                if subnet.gateway_ip and not any(d == "0.0.0.0/0" for d, _ in routes):
                    routes.append(("0.0.0.0/0", subnet.gateway_ip))
                flat = ",".join(f"{d},{n}" for d, n in routes)
                opts.append(f"{tag},option:classless-static-route,{flat}")
        else:
            servers = [f"[{s}]" for s in subnet.dns_nameservers]
            if not servers and subnet.id in own:
                servers = [f"[{own[subnet.id]}]"]
            if servers:
                opts.append(f"{tag},option6:dns-server,{','.join(servers)}")
            opts.append(f"{tag},option6:domain-search,{DNS_DOMAIN}")
    return Files(
        hosts="".join(line + "\n" for line in hosts),
        addn_hosts="".join(line + "\n" for line in addn),
        opts="".join(line + "\n" for line in opts),
    )


def command(snapshot: Snapshot, config: HostConfig, network: Network, dhcp_port: Port) -> list[str]:
    """dnsmasq's command line; a change of it is what makes the agent restart dnsmasq."""
    d = directory(config, network.id)
    argv = [
        DNSMASQ,
        "--conf-file=/dev/null",
        "--no-hosts",
        "--no-resolv",
        f"--pid-file={d / 'pid'}",
        f"--dhcp-hostsfile={d / 'host'}",
        f"--addn-hosts={d / 'addn_hosts'}",
        f"--dhcp-optsfile={d / 'opts'}",
        f"--dhcp-leasefile={d / 'leases'}",
        "--bind-interfaces",
        f"--interface={dhcp_interface_name(dhcp_port.id)}",
        "--except-interface=lo",
        f"--domain={DNS_DOMAIN}",
        "--dhcp-authoritative",
        "--local-service",
    ]
    size = 0
    for subnet in dhcp_subnets(snapshot, network.id):
        net = ipaddress.ip_network(subnet.cidr)
        size += min(net.num_addresses, 1 << 16)
        if subnet.ip_version == 4:
            argv.append(
                f"--dhcp-range=set:{_tag(subnet)},{net.network_address},static,"
                f"{net.netmask},{LEASE_SECONDS}s"
            )
        else:
            argv.append(
                f"--dhcp-range=set:{_tag(subnet)},{net.network_address},static,"
                f"{net.prefixlen},{LEASE_SECONDS}s"
            )
    argv.append(f"--dhcp-lease-max={max(size, 16)}")
    return argv


def directory(config: HostConfig, network_id: str) -> Path:
    return Path(config.state_dir) / "dhcp" / network_id


# --- leases (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Lease:
    """A line of dnsmasq's lease file.

    IPv4: ``<expiry> <MAC> <address> <hostname|*> <client id|*>``; IPv6:
    ``<expiry> <IAID, T-prefixed for a temporary address> <address>
    <hostname|*> <client DUID|*>``. ``mac`` is None for IPv6 leases, which
    name their client by DUID only.
    """

    line: str
    ip: str
    version: int
    mac: str | None
    client_id: str | None
    iaid: str | None


@dataclass(frozen=True)
class LeaseFile:
    """dnsmasq's lease file: its DHCPv6 server DUID (``duid`` line), leases, other lines."""

    server_duid: str | None
    leases: list[Lease]

    @classmethod
    def parse(cls, text: str) -> LeaseFile:
        server_duid: str | None = None
        leases: list[Lease] = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "duid":
                server_duid = server_duid or parts[1]
                continue
            if len(parts) != 5:
                continue
            try:
                address = ipaddress.ip_address(parts[2].strip("[]"))
            except ValueError:
                continue
            client_id = None if parts[4] == "*" else parts[4].lower()
            if address.version == 4:
                leases.append(Lease(line, address.compressed, 4, parts[1].lower(), client_id, None))
            else:
                leases.append(Lease(line, address.compressed, 6, None, client_id, parts[1]))
        return cls(server_duid, leases)

    def without(self, stale: Iterable[Lease]) -> str:
        """The file's text less the ``stale`` leases (what dnsmasq would write after releases)."""
        drop = {lease.line for lease in stale}
        kept = []
        if self.server_duid:
            kept.append(f"duid {self.server_duid}")
        kept += [lease.line for lease in self.leases if lease.line not in drop]
        return "".join(line + "\n" for line in kept)


def host_entries(hosts: str) -> dict[str, str]:
    """address -> MAC of a hosts file's lines (``mac,name,ip`` or ``mac,name,[ipv6]``)."""
    entries: dict[str, str] = {}
    for line in hosts.splitlines():
        fields = line.strip().split(",")
        if len(fields) < 3:
            continue
        try:
            address = ipaddress.ip_address(fields[-1].strip().strip("[]"))
        except ValueError:
            continue
        entries[address.compressed] = fields[0].strip().lower()
    return entries


def duid_mac(duid: str | None) -> str | None:
    """The Ethernet MAC in a DUID-LLT or DUID-LL (``00:01:00:01:...``), else None."""
    if not duid:
        return None
    try:
        raw = bytes.fromhex(duid.replace(":", ""))
    except ValueError:
        return None
    kind, hardware = int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big")
    if hardware != 1:
        return None
    if kind == 1 and len(raw) == 14:
        mac = raw[8:]
    elif kind == 3 and len(raw) == 10:
        mac = raw[4:]
    else:
        return None
    return ":".join(f"{b:02x}" for b in mac)


def stale_leases(
    leases: Iterable[Lease], wanted: Mapping[str, str], previous: Mapping[str, str]
) -> list[Lease]:
    """The leases no host entry of ``wanted`` (address -> MAC) accounts for.

    IPv4: the lease's (address, MAC) must be an entry. IPv6 leases carry no
    MAC: the address must be an entry, the client's DUID must not name
    another MAC, and ``previous`` (the hosts file dnsmasq had until now)
    must not have given the address to another MAC.
    """
    stale = []
    for lease in leases:
        mac = wanted.get(lease.ip)
        if mac is None:
            stale.append(lease)
        elif lease.version == 4:
            if lease.mac != mac:
                stale.append(lease)
        elif duid_mac(lease.client_id) not in (None, mac) or previous.get(lease.ip) not in (
            None,
            mac,
        ):
            stale.append(lease)
    return stale


def release_command(lease: Lease, interface: str, server_duid: str | None) -> list[str] | None:
    """The ``dhcp_release``/``dhcp_release6`` command that drops ``lease``; None if none can."""
    if lease.version == 4:
        argv = [DHCP_RELEASE, interface, lease.ip, lease.mac or ""]
        if lease.client_id:
            argv.append(lease.client_id)
        return argv
    if not (server_duid and lease.client_id and lease.iaid and lease.iaid.isdigit()):
        return None  # no server DUID yet, an unknown client, or a temporary address
    return [
        DHCP_RELEASE6,
        "--iface", interface,
        "--ip", lease.ip,
        "--iaid", lease.iaid,
        "--client-id", lease.client_id,
        "--server-id", server_duid,
    ]  # fmt: skip


# --- dnsmasq processes -----------------------------------------------------------


def _pid_marker(directory_path: Path) -> str:
    """What names the network's dnsmasq among the host's processes."""
    return f"--pid-file={directory_path / 'pid'}"


def running_pid(config: HostConfig, network_id: str) -> int | None:
    """The pid of the network's dnsmasq, from its pid file, if it is alive and ours."""
    d = directory(config, network_id)
    return daemons.running_pid("dnsmasq", d / "pid", _pid_marker(d))


def _stop(directory_path: Path) -> None:
    """Stop every dnsmasq using files under ``directory_path`` (also with its pid file lost)."""
    daemons.stop("dnsmasq", _pid_marker(directory_path))


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


def _release(network_id: str, leases_path: Path, commands: dict[str, list[str]]) -> None:
    """Run the release ``commands`` (lease line -> argv); warn about leases still there."""
    namespace = dhcp_namespace(network_id)
    for line, argv in commands.items():
        log.info("network %s: releasing the stale lease %r", network_id, line)
        result = namespaces.run(argv, namespace, check=False)
        if result.returncode != 0:
            log.warning(
                "network %s: %s failed (%d): %s",
                network_id,
                argv[0],
                result.returncode,
                result.stderr.strip(),
            )
    # dnsmasq handles the releases as packets, then rewrites its lease file.
    deadline = time.monotonic() + RELEASE_WAIT_SECONDS
    while True:
        left = set(commands) & {x.line for x in LeaseFile.parse(_read(leases_path)).leases}
        if not left or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    if left:
        log.warning(
            "network %s: leases still there after their release (the next pass retries): %s",
            network_id,
            sorted(left),
        )


def _ensure_device(
    snapshot: Snapshot, config: HostConfig, network: Network, port: Port, bridge: str
) -> None:
    namespace = dhcp_namespace(network.id)
    outer, inner = tap_name(port.id), dhcp_interface_name(port.id)
    namespaces.ensure(namespace)
    with namespaces.ipr(namespace) as nsip:
        # DHCP devices of an earlier DHCP port of this network.
        for link in nsip.get_links():
            name = link.get("IFLA_IFNAME") or ""
            if name.startswith("ns-") and name != inner:
                log.info("removing stale %s from %s", name, namespace)
                nsip.link("del", index=link["index"])
        have_inner = bool(nsip.link_lookup(ifname=inner))
    with namespaces.ipr() as ip:
        have_outer = bool(ip.link_lookup(ifname=outer))
        if have_outer != have_inner or not have_outer:
            if have_outer:
                ip.link("del", index=ip.link_lookup(ifname=outer)[0])
            if have_inner:
                with namespaces.ipr(namespace) as nsip:
                    nsip.link("del", index=nsip.link_lookup(ifname=inner)[0])
            log.info("creating %s/%s for network %s", outer, inner, network.id)
            ip.link("add", ifname=outer, kind="veth", peer=inner)
            ip.link("set", index=ip.link_lookup(ifname=inner)[0], net_ns_fd=namespace)
    l2.plug(bridge, outer, network.mtu)
    subnets = {s.id: s for s in snapshot.subnets_of(network.id)}
    wanted: set[tuple[str, int]] = set()
    for fixed in port.fixed_ips:
        subnet = subnets.get(fixed.subnet_id)
        if subnet is not None:
            wanted.add((ipaddress.ip_address(fixed.ip_address).compressed, subnet.prefixlen))
    with namespaces.ipr(namespace) as nsip:
        index = nsip.link_lookup(ifname=inner)[0]
        link = nsip.link("get", index=index)[0]
        changes: dict[str, Any] = {}
        if str(link.get("IFLA_ADDRESS")).lower() != port.mac_address.lower():
            changes["address"] = port.mac_address
        if link.get("IFLA_MTU") != network.mtu:
            changes["mtu"] = network.mtu
        if changes:
            nsip.link("set", index=index, **changes)
        if not link["flags"] & 1:
            nsip.link("set", index=index, state="up")
        present: set[tuple[str, int]] = set()
        for addr in nsip.get_addr(index=index):
            value = ipaddress.ip_address(addr.get("IFA_ADDRESS"))
            if value.is_link_local:
                continue  # fe80:: and 169.254/16 (metadata) are not ours to manage
            present.add((value.compressed, addr["prefixlen"]))
        for address, prefixlen in sorted(present - wanted):
            nsip.addr("del", index=index, address=address, prefixlen=prefixlen)
        for address, prefixlen in sorted(wanted - present):
            nsip.addr("add", index=index, address=address, prefixlen=prefixlen, nodad=True)
        if not nsip.get_addr(index=index, address=METADATA_IP):
            # Where guests of subnets without a router find the metadata proxy.
            nsip.addr("add", index=index, address=METADATA_IP, prefixlen=32)
        gateway = next(
            (
                s.gateway_ip
                for s in snapshot.subnets_of(network.id)
                if s.ip_version == 4
                and s.gateway_ip
                and s.id in {f.subnet_id for f in port.fixed_ips}
            ),
            None,
        )
        routes = nsip.route("dump", family=2, dst_len=0, table=254)
        current = next((r.get("RTA_GATEWAY") for r in routes if r["dst_len"] == 0), None)
        if gateway and current != gateway:
            nsip.route("replace", dst="0.0.0.0/0", gateway=gateway, oif=index)
        elif not gateway and current:
            nsip.route("del", dst="0.0.0.0/0", table=254)


# --- the public steps ----------------------------------------------------------------


def ensure(snapshot: Snapshot, config: HostConfig, network: Network, port: Port) -> None:
    """Serve ``network`` from this host through ``port``: device, files, dnsmasq."""
    bridge = l2.ensure_network(snapshot, config, network)
    _ensure_device(snapshot, config, network, port, bridge)
    d = directory(config, network.id)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o755)
    files = render(snapshot, network, port)
    argv = command(snapshot, config, network, port)
    pid = running_pid(config, network.id)
    if pid is not None and daemons.cmdline(pid) != argv:
        log.info("dnsmasq of network %s: command line changed, restarting", network.id)
        pid = None
    # Leases of addresses that went or changed hands: see the module's docstring.
    wanted, previous = host_entries(files.hosts), host_entries(_read(d / "host"))
    leases = LeaseFile.parse(_read(d / "leases"))
    outdated = stale_leases(leases.leases, wanted, previous)
    if pid is not None and outdated:
        interface = dhcp_interface_name(port.id)
        commands = {x.line: release_command(x, interface, leases.server_duid) for x in outdated}
        if all(c and shutil.which(c[0]) for c in commands.values()):
            _release(network.id, d / "leases", {k: c for k, c in commands.items() if c})
        else:
            log.warning(
                "network %s: restarting dnsmasq to drop stale leases it cannot be told to "
                "release (no DHCPv6 server DUID yet, or no %s of package dnsmasq-utils)",
                network.id,
                DHCP_RELEASE,
            )
            pid = None
    changed = False
    for name, text in (
        ("host", files.hosts),
        ("addn_hosts", files.addn_hosts),
        ("opts", files.opts),
    ):
        changed |= daemons.write(d / name, text)
    if pid is not None:
        if changed:
            log.info("dnsmasq of network %s: files changed, SIGHUP", network.id)
            os.kill(pid, signal.SIGHUP)
        return
    _stop(d)
    # dnsmasq reads its lease file only when it starts: stale leases must be gone by then.
    leases = LeaseFile.parse(_read(d / "leases"))  # as the stopped dnsmasq left it
    outdated = stale_leases(leases.leases, wanted, previous)
    if outdated:
        lines = sorted(x.line for x in outdated)
        log.info("network %s: dropping stale leases %s", network.id, lines)
        daemons.write(d / "leases", leases.without(outdated))
    pid = daemons.start(argv, dhcp_namespace(network.id), d / "pid")
    log.info("dnsmasq of network %s started (pid %d)", network.id, pid)


def remove(config: HostConfig, network_id: str) -> None:
    """Stop the network's dnsmasq; delete its veth, namespace and files."""
    d = directory(config, network_id)
    _stop(d)
    namespace = dhcp_namespace(network_id)
    if namespaces.exists(namespace):
        with namespaces.ipr(namespace) as nsip:
            peers = [
                link.get("IFLA_IFNAME")
                for link in nsip.get_links()
                if (link.get("IFLA_IFNAME") or "").startswith("ns-")
            ]
        with namespaces.ipr() as ip:
            for inner in peers:
                outer = "tap" + inner[3:]
                index = ip.link_lookup(ifname=outer)
                if index:
                    with contextlib.suppress(NetlinkError):
                        ip.link("del", index=index[0])
        namespaces.remove(namespace)
    shutil.rmtree(d, ignore_errors=True)
    log.info("network %s is no longer served here", network_id)


def stale(config: HostConfig, keep: Iterable[str]) -> set[str]:
    """Networks with a namespace or files here that are not in ``keep``."""
    keep = set(keep)
    found = {
        n[len(NAMESPACE_PREFIX) :] for n in namespaces.listed() if n.startswith(NAMESPACE_PREFIX)
    }
    root = Path(config.state_dir) / "dhcp"
    if root.is_dir():
        found |= {p.name for p in root.iterdir() if p.is_dir()}
    return found - keep


def converge(snapshot: Snapshot, config: HostConfig) -> set[str]:
    """Serve every network with a DHCP port here; stop the others. Return served ports."""
    wanted = served(snapshot, config)
    failures: dict[str, str] = {}
    up: set[str] = set()
    for network_id, port in sorted(wanted.items()):
        try:
            ensure(snapshot, config, snapshot.networks[network_id], port)
            up.add(port.id)
        except Exception as exc:
            log.exception("network %s: DHCP failed", network_id)
            failures[network_id] = str(exc) or type(exc).__name__
    for network_id in sorted(stale(config, wanted)):
        try:
            remove(config, network_id)
        except Exception as exc:
            log.exception("network %s: DHCP cleanup failed", network_id)
            failures[network_id] = str(exc) or type(exc).__name__
    if failures:
        raise l2.PartialFailure(failures, up)
    return up
