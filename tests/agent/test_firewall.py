"""Security groups on a real kernel: guests behind their taps on one simulated host.

Every check is a real packet: TCP connections to a listener in a guest (a
small Python server that answers with the peer's address) and pings. A
blocked connection is one whose SYN is dropped, so it times out.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent import builders as b
from tests.agent.conftest import SimHost, SimLab
from tests.agent.test_l3 import HOST, Servers, connect, nft_ruleset, pings, static_guest

PORT = 8080


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def rule(direction: str, ethertype: str = "IPv4", **extra: Any) -> dict[str, Any]:
    doc = {
        "id": b.uid(),
        "direction": direction,
        "ethertype": ethertype,
        "protocol": None,
        "port_range_min": None,
        "port_range_max": None,
        "remote_ip_prefix": None,
        "remote_group_id": None,
    }
    doc.update(extra)
    return doc


def group(*rules: dict[str, Any], default_egress: bool = True) -> dict[str, Any]:
    """A security group; with ``default_egress`` the two allow-all egress rules the API adds."""
    egress = [rule("egress", "IPv4"), rule("egress", "IPv6")] if default_egress else []
    return {"id": b.uid(), "project_id": "p1", "security_group_rules": [*egress, *rules]}


def tcp_in(port: int = PORT, **extra: Any) -> dict[str, Any]:
    return rule("ingress", protocol="tcp", port_range_min=port, port_range_max=port, **extra)


class FirewallLab:
    """One network, three guests (a server A and clients B, C), security groups."""

    def __init__(self, sim_lab: SimLab):
        self.host: SimHost = sim_lab.host(HOST)
        self.net = b.network("local")
        self.sub = b.subnet(self.net, "10.0.0.0/24", enable_dhcp=False)
        # A: only what the tests open; no egress at all (replies still flow: stateful)
        self.web = group(default_egress=False)
        self.clients = group()
        self.others = group()
        self.port_a = b.port(
            self.net,
            self.sub,
            "10.0.0.5",
            HOST,
            security_groups=[self.web["id"]],
            port_security_enabled=True,
        )
        self.port_b = b.port(
            self.net,
            self.sub,
            "10.0.0.6",
            HOST,
            security_groups=[self.clients["id"]],
            port_security_enabled=True,
        )
        self.port_c = b.port(
            self.net,
            self.sub,
            "10.0.0.7",
            HOST,
            security_groups=[self.others["id"]],
            port_security_enabled=True,
        )
        self.ports = [self.port_a, self.port_b, self.port_c]
        self.a = static_guest(self.host, self.port_a, 24, None)
        self.b = static_guest(self.host, self.port_b, 24, None)
        self.c = static_guest(self.host, self.port_c, 24, None)

    def docs(self) -> dict[str, Any]:
        return b.docs(
            networks=[self.net],
            subnets=[self.sub],
            ports=self.ports,
            security_groups=[self.web, self.clients, self.others],
        )

    def converge(self) -> None:
        self.host.agent(self.docs())

    def reaches_a(self, guest: Any) -> bool:
        """A connection to A's listener works (3 s: a lost first SYN is retried at 1 s)."""
        answer = connect(self.host, guest.namespace, "10.0.0.5", PORT, timeout=3)
        return not answer.startswith("FAIL")

    def blocked(self, guest: Any) -> bool:
        """A connection to A's listener times out (its SYN was dropped)."""
        answer = connect(self.host, guest.namespace, "10.0.0.5", PORT, timeout=0.8)
        return answer.startswith("FAIL") and "timed out" in answer


def test_firewall_ingress_rules_open_and_close(sim_lab: SimLab, servers: Servers) -> None:
    lab = FirewallLab(sim_lab)
    lab.converge()
    servers.echo_peer(lab.host, lab.a.namespace, PORT)
    ruleset = nft_ruleset(lab.host)
    assert "table bridge stratus-sg" in ruleset and "table inet stratus-sg" in ruleset

    # default deny ingress (TCP and ICMP)
    assert lab.blocked(lab.b)
    assert not pings(lab.host, lab.b.namespace, "10.0.0.5", count=1)
    # B denies ICMP in as well
    assert not pings(lab.host, lab.c.namespace, "10.0.0.6", count=1)

    # ingress rules open what they name: TCP to the port, ICMP echo requests by type
    # and code; "clients" lets any ICMP in
    lab.web["security_group_rules"] += [
        tcp_in(),
        rule("ingress", protocol="icmp", port_range_min=8, port_range_max=0),
    ]
    lab.clients["security_group_rules"].append(rule("ingress", protocol="icmp"))
    lab.converge()
    assert connect(lab.host, lab.b.namespace, "10.0.0.5", PORT) == "10.0.0.6"
    assert lab.reaches_a(lab.c)
    assert pings(lab.host, lab.b.namespace, "10.0.0.5")
    assert pings(lab.host, lab.c.namespace, "10.0.0.6")
    # A has no egress rule: it cannot start anything, though replies flow (stateful)
    assert not pings(lab.host, lab.a.namespace, "10.0.0.6", count=1)

    # removing the rule closes the port again
    lab.web["security_group_rules"] = [
        r for r in lab.web["security_group_rules"] if r["protocol"] != "tcp"
    ]
    lab.converge()
    assert lab.blocked(lab.b)

    # remote_ip_prefix: only B's address
    lab.web["security_group_rules"].append(tcp_in(remote_ip_prefix="10.0.0.6/32"))
    lab.converge()
    assert lab.reaches_a(lab.b)
    assert lab.blocked(lab.c)

    # remote_group_id: members of "clients" only; C joins the group, then reaches A
    lab.web["security_group_rules"][-1] = tcp_in(remote_group_id=lab.clients["id"])
    lab.converge()
    assert "@rg4-" + lab.clients["id"] in nft_ruleset(lab.host)
    assert lab.reaches_a(lab.b)
    assert lab.blocked(lab.c)
    lab.port_c["security_groups"] = [lab.others["id"], lab.clients["id"]]
    lab.converge()
    assert lab.reaches_a(lab.c)

    # a group without egress rules: no egress (C keeps "clients", which has them)
    lab.port_b["security_groups"] = [lab.web["id"]]
    lab.converge()
    assert lab.blocked(lab.b)


def test_firewall_anti_spoofing_and_port_security_off(sim_lab: SimLab, servers: Servers) -> None:
    lab = FirewallLab(sim_lab)
    lab.web["security_group_rules"].append(tcp_in())
    lab.converge()
    servers.echo_peer(lab.host, lab.a.namespace, PORT)
    assert lab.reaches_a(lab.b)

    # B takes another address: dropped
    lab.b.run(["ip", "addr", "flush", "dev", "eth0"])
    lab.b.run(["ip", "addr", "add", "10.0.0.66/24", "dev", "eth0"])
    assert lab.blocked(lab.b)
    # ...unless it is an allowed address pair of B's port
    lab.port_b["allowed_address_pairs"] = [{"ip_address": "10.0.0.64/28"}]
    lab.converge()
    # (B's ARP from the spoofed address was dropped too: forget the failed entry)
    lab.b.run(["ip", "neigh", "flush", "all"])
    assert connect(lab.host, lab.b.namespace, "10.0.0.5", PORT) == "10.0.0.66"
    lab.b.run(["ip", "addr", "flush", "dev", "eth0"])
    lab.b.run(["ip", "addr", "add", "10.0.0.6/24", "dev", "eth0"])
    assert lab.reaches_a(lab.b)

    # B takes another MAC: dropped
    lab.b.run(["ip", "link", "set", "eth0", "address", "fa:16:3e:99:99:99"])
    lab.host.run(["ip", "netns", "exec", lab.a.namespace, "ip", "neigh", "flush", "all"])
    assert lab.blocked(lab.b)
    lab.b.run(["ip", "link", "set", "eth0", "address", lab.port_b["mac_address"]])
    assert lab.reaches_a(lab.b)

    # port security off on A: every port open, no anti-spoofing on A
    assert not pings(lab.host, lab.b.namespace, "10.0.0.5", count=1)
    lab.port_a["port_security_enabled"] = False
    lab.converge()
    assert pings(lab.host, lab.b.namespace, "10.0.0.5")
    assert f"tap{lab.port_a['id'][:11]}" not in nft_ruleset(lab.host)
    lab.a.run(["ip", "addr", "add", "10.0.0.55/24", "dev", "eth0"])
    # C lets in ICMP from anywhere; A's spoofed source is not filtered any more
    lab.others["security_group_rules"].append(rule("ingress", protocol="icmp"))
    lab.converge()
    result = lab.host.run(
        ["ip", "netns", "exec", lab.a.namespace, "ping", "-c", "2", "-i", "0.2", "-W", "1", "-I",
         "10.0.0.55", "10.0.0.7"],
        check=False,
    )  # fmt: skip
    assert result.returncode == 0


def test_firewall_reconcile_is_stable_and_cleans_up(sim_lab: SimLab) -> None:
    lab = FirewallLab(sim_lab)
    lab.web["security_group_rules"].append(tcp_in(remote_group_id=lab.clients["id"]))
    lab.converge()
    first = nft_ruleset(lab.host)
    lab.converge()
    assert nft_ruleset(lab.host) == first
    per_port = [line for line in first.splitlines() if lab.port_b["id"][:11] in line]
    assert per_port  # B's chains are there
    # B's port goes away: its chains go with it
    lab.ports.remove(lab.port_b)
    lab.converge()
    assert lab.port_b["id"][:11] not in nft_ruleset(lab.host)
    # no guest port left: no table left
    lab.ports.clear()
    lab.converge()
    assert "stratus-sg" not in nft_ruleset(lab.host)
