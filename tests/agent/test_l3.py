"""Routers on a real kernel: a simulated host (``sim_lab``) runs the agent.

One host carries two tenant networks, an external network and a router
between them; guests are namespaces behind their ports' taps, configured by
hand (static addresses), and the "outside" is a namespace on the external
network's bridge holding the external subnet's gateway address (the
upstream router). Every network is ``local`` (no segment device), so no
underlay is needed; the bridges are the agent's own.

The helpers at the top are shared by ``test_firewall`` and ``test_metadata``.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.agent import builders as b
from tests.agent.conftest import PYTHON, SimHost, SimLab

HOST = "h1"

ECHO_PEER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(16)
print("ready", flush=True)
while True:
    c, a = s.accept()
    c.sendall(a[0].encode())
    c.close()
"""

CONNECT = """
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3]))
    print(s.recv(64).decode())
except OSError as e:
    print("FAIL", e)
"""


# --- shared helpers ----------------------------------------------------------------


def router_doc(
    gateway_net: dict[str, Any] | None, enable_snat: bool = True, **extra: Any
) -> dict[str, Any]:
    return {
        "id": b.uid(),
        "project_id": "p1",
        "name": "r",
        "admin_state_up": True,
        "external_gateway_info": (
            {"network_id": gateway_net["id"], "enable_snat": enable_snat} if gateway_net else None
        ),
        "routes": [],
        **extra,
    }


def router_port(
    router: dict[str, Any], net: dict[str, Any], sub: dict[str, Any], ip: str, gateway: bool
) -> dict[str, Any]:
    owner = "network:router_gateway" if gateway else "network:router_interface"
    port = b.port(net, sub, ip, HOST, device_owner=owner)
    port["device_id"] = router["id"]
    return port


def floatingip_doc(
    router: dict[str, Any], ext: dict[str, Any], address: str, port: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": b.uid(),
        "floating_ip_address": address,
        "floating_network_id": ext["id"],
        "router_id": router["id"],
        "port_id": port["id"],
        "fixed_ip_address": port["fixed_ips"][0]["ip_address"],
        "project_id": "p1",
    }


def static_guest(host: SimHost, port: dict[str, Any], prefixlen: int, gateway: str | None) -> Any:
    guest = host.guest(port["id"], port["mac_address"])
    ip = port["fixed_ips"][0]["ip_address"]
    guest.run(["ip", "addr", "add", f"{ip}/{prefixlen}", "dev", "eth0"])
    if gateway:
        guest.run(["ip", "route", "add", "default", "via", gateway])
    return guest


def pings(host: SimHost, namespace: str, address: str, count: int = 2) -> bool:
    argv = ["ip", "netns", "exec", namespace, "ping", "-c", str(count), "-i", "0.2", "-W", "1"]
    return host.run([*argv, address], check=False).returncode == 0


def connect(host: SimHost, namespace: str, address: str, port: int, timeout: float = 3) -> str:
    """What an ``ECHO_PEER`` server at ``address:port`` answered, or ``FAIL ...``."""
    argv = ["ip", "netns", "exec", namespace, PYTHON, "-c", CONNECT]
    result = host.run([*argv, address, str(port), str(timeout)], timeout=timeout + 20)
    return result.stdout.strip()


@dataclass
class Servers:
    """Background processes started in a host; all killed at the end of the test."""

    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, host: SimHost, namespace: str | None, argv: list[str]) -> Any:
        prefix = ["ip", "netns", "exec", namespace] if namespace else []
        process = subprocess.Popen(
            ["nsenter", "-t", str(host.pid), "-m", "-n", *prefix, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.processes.append(process)
        assert process.stdout is not None
        line = process.stdout.readline()
        if "ready" not in line:
            process.kill()
            raise AssertionError(f"{argv} did not start: {line} {process.stderr.read()}")
        return process

    def echo_peer(self, host: SimHost, namespace: str, port: int) -> Any:
        return self.start(host, namespace, [PYTHON, "-c", ECHO_PEER, str(port)])

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def outside_endpoint(host: SimHost, ext: dict[str, Any], address: str, prefixlen: int) -> str:
    """A namespace on the external network's bridge holding ``address`` (the upstream)."""
    host.run(["ip", "netns", "add", "outside"])
    host.run(["ip", "link", "add", "out0", "type", "veth", "peer", "name", "eth0",
              "netns", "outside"])  # fmt: skip
    host.run(["ip", "link", "set", "out0", "master", f"brq{ext['id'][:11]}", "up"])
    host.sh(
        "ip netns exec outside sh -c 'ip link set lo up && ip link set eth0 up && "
        f"ip addr add {address}/{prefixlen} dev eth0'"
    )
    return "outside"


def nft_ruleset(host: SimHost, namespace: str | None = None) -> str:
    prefix = ["ip", "netns", "exec", namespace] if namespace else []
    return host.run([*prefix, "nft", "list", "ruleset"]).stdout


@dataclass
class RouterLab:
    """Two tenant networks and an external one joined by a router, on one host."""

    host: SimHost
    net_a: dict[str, Any]
    sub_a: dict[str, Any]
    net_b: dict[str, Any]
    sub_b: dict[str, Any]
    ext: dict[str, Any]
    sub_ext: dict[str, Any]
    router: dict[str, Any]
    router_ports: list[dict[str, Any]]
    guest_ports: list[dict[str, Any]]
    floatingips: list[dict[str, Any]] = field(default_factory=list)
    security_groups: list[dict[str, Any]] = field(default_factory=list)

    @property
    def namespace(self) -> str:
        return f"qrouter-{self.router['id']}"

    def docs(self, with_router: bool = True) -> dict[str, Any]:
        return b.docs(
            networks=[self.net_a, self.net_b, self.ext],
            subnets=[self.sub_a, self.sub_b, self.sub_ext],
            ports=self.guest_ports + (self.router_ports if with_router else []),
            routers=[self.router] if with_router else [],
            floatingips=self.floatingips if with_router else [],
            security_groups=self.security_groups,
        )

    def converge(self, with_router: bool = True) -> None:
        self.host.agent(self.docs(with_router))


def router_lab(sim_lab: SimLab, port_security: bool = False) -> RouterLab:
    host = sim_lab.host(HOST)
    net_a, net_b = b.network("local"), b.network("local")
    ext = b.network("local", external=True)
    sub_a, sub_b = b.subnet(net_a, "10.1.0.0/24"), b.subnet(net_b, "10.2.0.0/24")
    sub_ext = b.subnet(ext, "203.0.113.0/24", enable_dhcp=False)
    router = router_doc(ext)
    rports = [
        router_port(router, net_a, sub_a, "10.1.0.1", gateway=False),
        router_port(router, net_b, sub_b, "10.2.0.1", gateway=False),
        router_port(router, ext, sub_ext, "203.0.113.10", gateway=True),
    ]
    router["external_gateway_info"]["external_fixed_ips"] = [
        {"subnet_id": sub_ext["id"], "ip_address": "203.0.113.10"}
    ]
    guests = [
        b.port(net_a, sub_a, "10.1.0.5", HOST, port_security_enabled=port_security),
        b.port(net_b, sub_b, "10.2.0.5", HOST, port_security_enabled=port_security),
    ]
    return RouterLab(host, net_a, sub_a, net_b, sub_b, ext, sub_ext, router, rports, guests)


# --- tests -------------------------------------------------------------------------


def test_l3_router_joins_subnets_snat_and_floating_ip(sim_lab: SimLab, servers: Servers) -> None:
    lab = router_lab(sim_lab)
    host = lab.host
    guest_a = static_guest(host, lab.guest_ports[0], 24, "10.1.0.1")
    guest_b = static_guest(host, lab.guest_ports[1], 24, "10.2.0.1")
    lab.converge()
    outside = outside_endpoint(host, lab.ext, "203.0.113.1", 24)

    ns = lab.namespace
    assert ns in host.namespaces()
    inner = host.link_names(ns)
    qr_a, qr_b = (f"qr-{p['id'][:11]}" for p in lab.router_ports[:2])
    qg = f"qg-{lab.router_ports[2]['id'][:11]}"
    assert {qr_a, qr_b, qg} <= inner
    links = {link["ifname"]: link for link in host.links_json(ns)}
    assert links[qr_a]["address"] == lab.router_ports[0]["mac_address"]
    assert links[qr_a]["mtu"] == lab.net_a["mtu"]
    outer = {link["ifname"]: link for link in host.links_json()}
    for rport in lab.router_ports:
        tap = f"tap{rport['id'][:11]}"
        assert outer[tap]["master"] == f"brq{rport['network_id'][:11]}"
    forwarding = host.run(["ip", "netns", "exec", ns, "sysctl", "-n", "net.ipv4.ip_forward"])
    assert forwarding.stdout.strip() == "1"
    routes = host.run(["ip", "netns", "exec", ns, "ip", "route", "show", "default"]).stdout
    assert "via 203.0.113.1" in routes and qg in routes

    # (1) across the router: A <-> B
    assert pings(host, guest_a.namespace, "10.2.0.5", count=2)
    assert pings(host, guest_b.namespace, "10.1.0.5")

    # (2) SNAT: the outside sees the router's gateway address
    servers.echo_peer(host, outside, 8000)
    assert connect(host, guest_a.namespace, "203.0.113.1", 8000) == "203.0.113.10"
    assert pings(host, guest_b.namespace, "203.0.113.1")

    # (3) a floating IP for guest A: reachable from outside, and A's source outside
    lab.floatingips.append(floatingip_doc(lab.router, lab.ext, "203.0.113.20", lab.guest_ports[0]))
    lab.converge()
    qg_addresses = host.run(["ip", "netns", "exec", ns, "ip", "-4", "-o", "addr", "show", qg])
    assert "203.0.113.20/32" in qg_addresses.stdout
    servers.echo_peer(host, guest_a.namespace, 8080)
    assert pings(host, outside, "203.0.113.20")
    assert connect(host, outside, "203.0.113.20", 8080) == "203.0.113.1"
    assert connect(host, guest_a.namespace, "203.0.113.1", 8000) == "203.0.113.20"
    # guest B has no floating IP: still the router's address
    assert connect(host, guest_b.namespace, "203.0.113.1", 8000) == "203.0.113.10"

    # ...and removing it from the snapshot stops it
    lab.floatingips.clear()
    lab.converge()
    assert "203.0.113.20" not in nft_ruleset(host, ns)
    qg_addresses = host.run(["ip", "netns", "exec", ns, "ip", "-4", "-o", "addr", "show", qg])
    assert "203.0.113.20" not in qg_addresses.stdout
    assert not pings(host, outside, "203.0.113.20", count=1)
    assert connect(host, outside, "203.0.113.20", 8080, timeout=1).startswith("FAIL")
    assert connect(host, guest_a.namespace, "203.0.113.1", 8000) == "203.0.113.10"


def test_l3_a_router_that_is_down_is_plugged_but_does_not_forward(sim_lab: SimLab) -> None:
    lab = router_lab(sim_lab)
    host = lab.host
    lab.router["admin_state_up"] = False
    guest_a = static_guest(host, lab.guest_ports[0], 24, "10.1.0.1")
    static_guest(host, lab.guest_ports[1], 24, "10.2.0.1")
    report = json.loads(host.agent(lab.docs()).stdout)
    # Its ports are plugged (ACTIVE, as Neutron shows them) ...
    assert {p["id"] for p in lab.router_ports} <= set(report["ports_up"])
    forwarding = host.run(
        ["ip", "netns", "exec", lab.namespace, "sysctl", "-n", "net.ipv4.ip_forward"]
    )
    assert forwarding.stdout.strip() == "0"
    # ... the router answers on its own address, but routes nothing ...
    assert pings(host, guest_a.namespace, "10.1.0.1")
    assert not pings(host, guest_a.namespace, "10.2.0.5", count=1)
    # ... until it is up.
    lab.router["admin_state_up"] = True
    lab.converge()
    assert pings(host, guest_a.namespace, "10.2.0.5")


def test_l3_no_snat_and_extra_routes(sim_lab: SimLab, servers: Servers) -> None:
    lab = router_lab(sim_lab)
    host = lab.host
    lab.router["external_gateway_info"]["enable_snat"] = False
    lab.router["routes"] = [{"destination": "198.51.100.0/24", "nexthop": "10.2.0.5"}]
    guest_a = static_guest(host, lab.guest_ports[0], 24, "10.1.0.1")
    guest_b = static_guest(host, lab.guest_ports[1], 24, "10.2.0.1")
    guest_b.run(["ip", "addr", "add", "198.51.100.7/32", "dev", "lo"])
    lab.converge()
    outside = outside_endpoint(host, lab.ext, "203.0.113.1", 24)
    host.run(["ip", "netns", "exec", outside, "ip", "route", "add", "10.1.0.0/16",
              "via", "203.0.113.10"])  # fmt: skip
    servers.echo_peer(host, outside, 8000)
    # without SNAT the outside sees the guest's own address
    assert connect(host, guest_a.namespace, "203.0.113.1", 8000) == "10.1.0.5"
    # the extra route sends 198.51.100.0/24 to guest B
    assert pings(host, guest_a.namespace, "198.51.100.7")
    # removing the extra route removes the route from the namespace
    lab.router["routes"] = []
    lab.converge()
    routes = host.run(["ip", "netns", "exec", lab.namespace, "ip", "route"]).stdout
    assert "198.51.100.0/24" not in routes
    assert not pings(host, guest_a.namespace, "198.51.100.7", count=1)


def test_l3_reconcile_is_stable_and_removal_leaves_nothing(sim_lab: SimLab) -> None:
    lab = router_lab(sim_lab)
    host = lab.host
    static_guest(host, lab.guest_ports[0], 24, "10.1.0.1")
    lab.floatingips.append(floatingip_doc(lab.router, lab.ext, "203.0.113.20", lab.guest_ports[0]))
    lab.converge()
    ns = lab.namespace
    rules = nft_ruleset(host, ns)
    assert "stratus-router" in rules and "dnat ip to 10.1.0.5" in rules
    links = {(link["ifname"], link["ifindex"]) for link in host.links_json(ns)}
    outer = {(link["ifname"], link["ifindex"]) for link in host.links_json()}
    addresses = host.run(["ip", "netns", "exec", ns, "ip", "-4", "-o", "addr"]).stdout
    routes = host.run(["ip", "netns", "exec", ns, "ip", "route"]).stdout

    lab.converge()
    assert nft_ruleset(host, ns) == rules
    assert {(link["ifname"], link["ifindex"]) for link in host.links_json(ns)} == links
    assert {(link["ifname"], link["ifindex"]) for link in host.links_json()} == outer
    assert host.run(["ip", "netns", "exec", ns, "ip", "-4", "-o", "addr"]).stdout == addresses
    assert host.run(["ip", "netns", "exec", ns, "ip", "route"]).stdout == routes

    # a hand-made change heals: a deleted qr- device comes back
    qr_a = f"qr-{lab.router_ports[0]['id'][:11]}"
    host.run(["ip", "netns", "exec", ns, "ip", "link", "del", qr_a])
    lab.converge()
    assert qr_a in host.link_names(ns)

    # the router leaves the snapshot: nothing of it is left
    lab.converge(with_router=False)
    assert not any(n.startswith("qrouter-") for n in host.namespaces())
    names = host.link_names()
    for rport in lab.router_ports:
        assert f"tap{rport['id'][:11]}" not in names
    assert "stratus-router" not in nft_ruleset(host)


def _eui64(prefix: str, mac: str) -> str:
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    interface = bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]])
    network = ipaddress.ip_network(prefix)
    return str(network.network_address + int.from_bytes(interface, "big"))


def test_slaac_guest_takes_its_address_and_route_from_the_router(sim_lab: SimLab) -> None:
    """radvd in the router namespace; the guest's kernel forms the API's EUI-64 address."""
    host = sim_lab.host(HOST)
    net = b.network("local")
    sub = b.subnet(
        net,
        "2001:db8:5::/64",
        ipv6_ra_mode="slaac",
        ipv6_address_mode="slaac",
        dns_nameservers=["2001:db8:53::53"],
    )
    router = router_doc(None)
    rport = router_port(router, net, sub, "2001:db8:5::1", gateway=False)
    # Port security on, egress allowed (the default group's egress rules): the
    # advertisement must pass the guest's firewall.
    egress = {"direction": "egress", "ethertype": "IPv6", "protocol": None}
    group = {
        "id": b.uid(),
        "project_id": "p1",
        "security_group_rules": [
            {"id": b.uid(), **egress, "port_range_min": None, "port_range_max": None,
             "remote_ip_prefix": None, "remote_group_id": None},
        ],
    }  # fmt: skip
    vm = b.port(net, sub, "::", HOST, security_groups=[group["id"]])
    vm["fixed_ips"][0]["ip_address"] = _eui64(sub["cidr"], vm["mac_address"])
    docs = b.docs(
        networks=[net], subnets=[sub], ports=[rport, vm], routers=[router], security_groups=[group]
    )
    guest = host.guest(vm["id"], vm["mac_address"])
    guest.run(["ip", "link", "set", "eth0", "down"])
    guest.run(["sysctl", "-q", "-w", "net.ipv6.conf.eth0.accept_ra=2"])
    host.agent(docs)
    namespace = f"qrouter-{router['id']}"
    config = host.state_path / "ra" / router["id"] / "radvd.conf"
    text = config.read_text()
    assert f"interface qr-{rport['id'][:11]}" in text
    assert "prefix 2001:db8:5::/64" in text and "AdvAutonomous on;" in text
    assert "AdvManagedFlag off;" in text and "RDNSS 2001:db8:53::53" in text
    assert namespace in host.namespaces()
    pids = radvd_pids(host)  # radvd and its privileged helper
    assert int((config.parent / "pid").read_text()) in pids

    # The guest's interface comes up after the router's: its solicitation is answered.
    guest.run(["ip", "link", "set", "eth0", "up"])
    expected = vm["fixed_ips"][0]["ip_address"]
    deadline = time.monotonic() + 20
    addresses = routes = ""
    while time.monotonic() < deadline:
        addresses = guest.run(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "global"]).stdout
        routes = guest.run(["ip", "-6", "route", "show", "default"]).stdout
        if expected in addresses and "fe80::" in routes and "tentative" not in addresses:
            break
        time.sleep(0.5)
    assert expected in addresses, addresses
    assert "via fe80::" in routes, routes
    assert pings(host, guest.namespace, "2001:db8:5::1")

    # Nothing changed: nothing rewritten, radvd not restarted.
    before = config.stat().st_mtime_ns
    host.agent(docs)
    assert config.stat().st_mtime_ns == before
    assert radvd_pids(host) == pids

    # A stateful subnet: reloaded (SIGHUP), the managed flag on.
    sub["ipv6_ra_mode"] = sub["ipv6_address_mode"] = "dhcpv6-stateful"
    host.agent(docs)
    assert "AdvManagedFlag on;" in config.read_text()
    assert radvd_pids(host) == pids

    # The router leaves: radvd and its files go with it.
    host.agent(b.docs(networks=[net], subnets=[sub], ports=[vm]))
    assert radvd_pids(host) == []
    assert not config.parent.exists()


def radvd_pids(host: SimHost) -> list[int]:
    return host.pids_of("radvd")
