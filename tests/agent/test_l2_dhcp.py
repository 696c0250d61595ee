"""The agent's layer 2 and DHCP on simulated hosts: real bridges, VXLAN, dnsmasq, dhclient.

Each test starts its hosts (``sim_lab``, see conftest), runs the agent in
them as operators would (``--once --snapshot``) and checks the result the
way a guest sees it: the address DHCP offers, the routes, DNS answers,
pings across hosts; and the way an operator sees it: devices, namespaces,
processes and files, all gone once a network leaves the host.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.agent import builders as b
from tests.agent.conftest import PYTHON, Guest, SimHost, SimLab, kernel_can, routes_121


def report_of(result: Any) -> dict[str, Any]:
    return json.loads(result.stdout)


def dnsmasq_pids(host: SimHost) -> list[int]:
    return host.pids_of("dnsmasq")


def flat_setup(sim_lab: SimLab) -> tuple[SimHost, dict[str, Any], dict[str, Any]]:
    provider = sim_lab.underlay()
    h1 = sim_lab.host("h1", physical_interfaces={"physnet1": "eth1"})
    h1.connect(provider, "eth1")
    net = b.network("flat", physical_network="physnet1")
    sub = b.subnet(
        net,
        "10.10.0.0/24",
        host_routes=[{"destination": "10.20.0.0/16", "nexthop": "10.10.0.254"}],
    )
    return h1, net, sub


def test_flat_network_guest_gets_its_fixed_ip(sim_lab: SimLab) -> None:
    h1, net, sub = flat_setup(sim_lab)
    dhcp = b.dhcp_port(net, sub, "10.10.0.2", "h1")
    vm = b.port(net, sub, "10.10.0.37", "h1")
    named = b.port(net, sub, "10.10.0.40", "h1", dns_name="db1")
    guest = h1.guest(vm["id"], vm["mac_address"])
    report = report_of(h1.agent(b.docs(networks=[net], subnets=[sub], ports=[dhcp, vm, named])))

    # No tap for ``named`` yet: it is down until the hypervisor makes it.
    assert set(report["ports_up"]) == {dhcp["id"], vm["id"]}
    assert report["ports_down"] == [named["id"]]
    links = {link["ifname"]: link for link in h1.links_json()}
    bridge = f"brq{net['id'][:11]}"
    assert links["eth1"]["master"] == bridge
    assert links[f"tap{vm['id'][:11]}"]["master"] == bridge
    assert links[f"tap{dhcp['id'][:11]}"]["master"] == bridge

    namespace = f"qdhcp-{net['id']}"
    inner = {link["ifname"]: link for link in h1.links_json(namespace)}[f"ns-{dhcp['id'][:11]}"]
    assert inner["address"] == dhcp["mac_address"]
    route = h1.run(["ip", "-n", namespace, "route", "show", "default"]).stdout
    assert route.startswith("default via 10.10.0.1 ")

    offer = guest.dhcp()
    assert offer["ip"] == "10.10.0.37"
    assert offer["mask"] == "255.255.255.0"
    assert offer["routers"] == "10.10.0.1"
    assert offer["dns"] == "10.10.0.2"
    assert offer["host_name"] == "host-10-10-0-37"
    assert offer["mtu"] == "1500"
    # No router on the subnet: metadata is reached through the DHCP port.
    assert routes_121(offer["classless_routes"]) == [
        ("10.20.0.0/16", "10.10.0.254"),
        ("169.254.169.254/32", "10.10.0.2"),
        ("0.0.0.0/0", "10.10.0.1"),
    ]
    assert "169.254.169.254/32" in h1.run(["ip", "-n", namespace, "-4", "addr"]).stdout
    guest.ping("10.10.0.2")
    # dnsmasq answers every port's name, leased or not.
    assert guest.resolve("db1.openstacklocal", "10.10.0.2") == ["10.10.0.40"]
    assert guest.resolve("host-10-10-0-37.openstacklocal", "10.10.0.2") == ["10.10.0.37"]


def test_vxlan_across_two_hosts(sim_lab: SimLab) -> None:
    underlay = sim_lab.underlay()
    h1 = sim_lab.host("h1", underlay=underlay, local_ip="192.0.2.1")
    h2 = sim_lab.host("h2", underlay=underlay, local_ip="192.0.2.2")
    net = b.network("vxlan", segmentation_id=1001)
    sub = b.subnet(net, "10.30.0.0/24")
    dhcp = b.dhcp_port(net, sub, "10.30.0.2", "h2")
    vm1 = b.port(net, sub, "10.30.0.11", "h1")
    vm2 = b.port(net, sub, "10.30.0.12", "h2")
    docs = b.docs(
        networks=[net],
        subnets=[sub],
        ports=[dhcp, vm1, vm2],
        agents=[b.agent("h1", "192.0.2.1"), b.agent("h2", "192.0.2.2")],
    )
    guest1 = h1.guest(vm1["id"], vm1["mac_address"])
    guest2 = h2.guest(vm2["id"], vm2["mac_address"])
    assert set(report_of(h1.agent(docs))["ports_up"]) == {vm1["id"]}
    assert set(report_of(h2.agent(docs))["ports_up"]) == {vm2["id"], dhcp["id"]}

    vxlan = {link["ifname"]: link for link in h1.links_json()}["vxlan-1001"]
    data = vxlan["linkinfo"]["info_data"]
    assert data["id"] == 1001 and data["local"] == "192.0.2.1" and data["port"] == 4789
    assert not data.get("learning", True)
    assert vxlan["mtu"] == 1450
    fdb = h1.run(["bridge", "fdb", "show", "dev", "vxlan-1001"]).stdout
    assert "00:00:00:00:00:00 dst 192.0.2.2 self permanent" in fdb
    assert f"{vm2['mac_address']} dst 192.0.2.2 self permanent" in fdb
    assert f"{dhcp['mac_address']} dst 192.0.2.2 self permanent" in fdb

    # The guest on h1 gets its address from dnsmasq on h2, over the tunnel.
    offer = guest1.dhcp()
    assert offer["ip"] == "10.30.0.11" and offer["mtu"] == "1450"
    assert guest2.dhcp()["ip"] == "10.30.0.12"
    guest1.ping("10.30.0.12")
    guest2.ping("10.30.0.11")
    # A full-size frame of the network's MTU crosses the tunnel unfragmented.
    guest1.run(["ping", "-c", "1", "-W", "2", "-M", "do", "-s", str(1450 - 28), "10.30.0.12"])

    # h2 leaves the network: h1 drops the tunnel entries that pointed at it.
    docs["ports"] = [vm1]
    h1.agent(docs)
    assert "192.0.2.2" not in h1.run(["bridge", "fdb", "show", "dev", "vxlan-1001"]).stdout


def test_reconcile_restores_and_then_removes_everything(sim_lab: SimLab) -> None:
    h1, net, sub = flat_setup(sim_lab)
    dhcp = b.dhcp_port(net, sub, "10.10.0.2", "h1")
    vm = b.port(net, sub, "10.10.0.37", "h1")
    docs = b.docs(networks=[net], subnets=[sub], ports=[dhcp, vm])
    guest = h1.guest(vm["id"], vm["mac_address"])
    h1.agent(docs)
    bridge = f"brq{net['id'][:11]}"
    namespace = f"qdhcp-{net['id']}"
    (pid,) = dnsmasq_pids(h1)

    # Hand-made damage: the bridge and dnsmasq gone.
    h1.run(["ip", "link", "del", bridge])
    h1.run(["kill", "-9", str(pid)])
    assert not dnsmasq_pids(h1)
    report = report_of(h1.agent(docs))
    assert set(report["ports_up"]) == {dhcp["id"], vm["id"]}
    links = {link["ifname"]: link for link in h1.links_json()}
    assert links["eth1"]["master"] == bridge
    assert links[f"tap{vm['id'][:11]}"]["master"] == bridge
    assert links[f"tap{dhcp['id'][:11]}"]["master"] == bridge
    assert len(dnsmasq_pids(h1)) == 1
    assert guest.dhcp()["ip"] == "10.10.0.37"

    # The network leaves the host: nothing of it remains.
    empty = b.docs()
    report = report_of(h1.agent(empty))
    assert report == {
        "host": "h1",
        "ports_up": [],
        "ports_down": [],
        "failures": {},
        "modules": report["modules"],
    }
    names = h1.link_names()
    assert bridge not in names
    assert f"tap{dhcp['id'][:11]}" not in names
    assert "eth1" in names  # the operator's interface stays
    assert f"tap{vm['id'][:11]}" in names  # the hypervisor's tap stays, unplugged
    assert namespace not in h1.namespaces()
    assert not dnsmasq_pids(h1)
    assert not (h1.state_path / "dhcp" / net["id"]).exists()
    # A pass over a host that carries nothing is a no-op, not an error.
    assert report_of(h1.agent(empty))["failures"] == {}


LEARNT_NEIGHBOUR = re.compile(r"\b(REACHABLE|STALE|DELAY|PROBE|FAILED|INCOMPLETE)\s*$")


class Monitor:
    """``ip monitor`` inside a host (and one namespace of it): every netlink change."""

    def __init__(self, host: SimHost, namespace: str):
        base = ["nsenter", "-t", str(host.pid), "-m", "-n"]
        self.processes = [
            subprocess.Popen(
                [*base, *prefix, "ip", "-o", "monitor", "link", "address", "route", "neigh"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for prefix in ([], ["ip", "netns", "exec", namespace])
        ]
        time.sleep(0.3)

    def stop(self) -> str:
        """What changed, less what the kernel does on its own.

        That is IPv6 link-local autoconfiguration (DAD finishes a second or two
        after a device comes up) and the neighbour cache's aging of learnt
        entries (REACHABLE, STALE, DELAY, PROBE...), which follows the guests'
        traffic. Entries someone set (PERMANENT, NOARP) stay in.
        """
        time.sleep(0.3)
        output = ""
        for process in self.processes:
            process.terminate()
            output += process.communicate(timeout=5)[0]
        return "".join(
            line
            for line in output.splitlines(True)
            if "fe80:" not in line and not LEARNT_NEIGHBOUR.search(line)
        )


def test_second_pass_changes_nothing_and_updates_go_by_sighup(sim_lab: SimLab) -> None:
    h1, net, sub = flat_setup(sim_lab)
    dhcp = b.dhcp_port(net, sub, "10.10.0.2", "h1")
    vm = b.port(net, sub, "10.10.0.37", "h1")
    docs = b.docs(networks=[net], subnets=[sub], ports=[dhcp, vm])
    guest = h1.guest(vm["id"], vm["mac_address"])
    h1.agent(docs)
    assert guest.dhcp()["ip"] == "10.10.0.37"
    (pid,) = dnsmasq_pids(h1)
    files = h1.state_path / "dhcp" / net["id"]
    before = {p.name: p.stat().st_mtime_ns for p in files.iterdir()}
    assert vm["mac_address"] in (files / "leases").read_text()

    monitor = Monitor(h1, f"qdhcp-{net['id']}")
    try:
        h1.agent(docs)
    finally:
        changes = monitor.stop()
    assert changes == ""
    assert dnsmasq_pids(h1) == [pid]
    assert {p.name: p.stat().st_mtime_ns for p in files.iterdir()} == before

    # A new port and a changed address: files rewritten, dnsmasq signalled, not restarted.
    vm2 = b.port(net, sub, "10.10.0.50", "h1")
    vm["fixed_ips"] = [{"subnet_id": sub["id"], "ip_address": "10.10.0.38"}]
    docs["ports"] = [dhcp, vm, vm2]
    guest2 = h1.guest(vm2["id"], vm2["mac_address"])
    monitor = Monitor(h1, f"qdhcp-{net['id']}")
    try:
        h1.agent(docs)
    finally:
        changes = monitor.stop()
    assert f"tap{vm2['id'][:11]}" in changes  # the monitor does see the agent's changes
    assert dnsmasq_pids(h1) == [pid]
    assert f"{vm2['mac_address']},host-10-10-0-50,10.10.0.50" in (files / "host").read_text()
    # The lease on the old address was released (another port may get it now);
    # dnsmasq was signalled, not restarted.
    assert "10.10.0.37" not in (files / "leases").read_text()
    assert guest2.dhcp()["ip"] == "10.10.0.50"
    # The guest asks for its old address again; dnsmasq (authoritative) says no
    # and hands out the new one.
    assert guest.dhcp()["ip"] == "10.10.0.38"

    # A new subnet changes dnsmasq's command line: then, and only then, a restart.
    sub2 = b.subnet(net, "10.11.0.0/24")
    dhcp["fixed_ips"].append({"subnet_id": sub2["id"], "ip_address": "10.11.0.2"})
    docs["subnets"].append(sub2)
    h1.agent(docs)
    (new_pid,) = dnsmasq_pids(h1)
    assert new_pid != pid
    addresses = h1.run(
        ["ip", "netns", "exec", f"qdhcp-{net['id']}", "ip", "-4", "-br", "addr"]
    ).stdout
    assert "10.10.0.2/24" in addresses and "10.11.0.2/24" in addresses


def test_agent_cli_failure_exit_code_and_partial_progress(sim_lab: SimLab) -> None:
    """A network that cannot be wired fails the pass (exit 1) but not its neighbours."""
    h1, net, sub = flat_setup(sim_lab)
    unmapped = b.network("flat", physical_network="nowhere")
    sub2 = b.subnet(unmapped, "10.40.0.0/24")
    vm = b.port(net, sub, "10.10.0.37", "h1")
    lost = b.port(unmapped, sub2, "10.40.0.5", "h1")
    h1.guest(vm["id"], vm["mac_address"])
    h1.guest(lost["id"], lost["mac_address"], name="lost")
    docs = b.docs(networks=[net, unmapped], subnets=[sub, sub2], ports=[vm, lost])
    result = h1.agent(docs, check=False)
    assert result.returncode == 1
    report = report_of(result)
    assert report["ports_up"] == [vm["id"]]
    assert report["ports_down"] == [lost["id"]]
    assert "nowhere" in report["failures"][f"l2:{unmapped['id']}"]


def test_agent_stops_on_sigterm_and_leaves_the_data_plane(sim_lab: SimLab) -> None:
    h1, net, sub = flat_setup(sim_lab)
    dhcp = b.dhcp_port(net, sub, "10.10.0.2", "h1")
    snapshot = h1.workdir / "snapshot.json"
    snapshot.write_text(json.dumps(b.docs(networks=[net], subnets=[sub], ports=[dhcp])))
    h1.write_config(resync_interval="0.2")
    agent = subprocess.Popen(
        ["nsenter", "-t", str(h1.pid), "-m", "-n", PYTHON, "-m", "stratus.network.agent.main",
         "--config-file", str(h1.config_path), "--snapshot", str(snapshot)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # dnsmasq forks into the background: until its parent has exited
        # there are two of them.
        deadline = time.monotonic() + 30
        while len(dnsmasq_pids(h1)) != 1 and time.monotonic() < deadline:
            time.sleep(0.1)
        (pid,) = dnsmasq_pids(h1)
        agent.terminate()
        assert agent.wait(15) == 0
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert dnsmasq_pids(h1) == [pid]
    assert f"brq{net['id'][:11]}" in h1.link_names()


# --- VLAN and GRE: real kernels only -----------------------------------------------


def _require(kind_args: list[str], reason: str) -> None:
    error = kernel_can(kind_args)
    if error is not None:
        pytest.skip(f"{reason} ({error})")


def test_vlan_network_between_two_hosts(sim_lab: SimLab) -> None:
    _require(["link", "tl0", "type", "vlan", "id", "5"], "this kernel has no 8021q module")
    provider = sim_lab.underlay()
    hosts = []
    for name in ("h1", "h2"):
        host = sim_lab.host(name, physical_interfaces={"physnet1": "eth1"})
        host.connect(provider, "eth1")
        hosts.append(host)
    net = b.network("vlan", segmentation_id=120, physical_network="physnet1")
    sub = b.subnet(net, "10.50.0.0/24")
    dhcp = b.dhcp_port(net, sub, "10.50.0.2", "h2")
    vm1 = b.port(net, sub, "10.50.0.11", "h1")
    vm2 = b.port(net, sub, "10.50.0.12", "h2")
    docs = b.docs(networks=[net], subnets=[sub], ports=[dhcp, vm1, vm2])
    guest1 = hosts[0].guest(vm1["id"], vm1["mac_address"])
    guest2 = hosts[1].guest(vm2["id"], vm2["mac_address"])
    for host in hosts:
        host.agent(docs)
    vlan = {link["ifname"]: link for link in hosts[0].links_json()}["eth1.120"]
    assert vlan["linkinfo"]["info_data"]["id"] == 120
    assert vlan["master"] == f"brq{net['id'][:11]}"
    assert guest1.dhcp()["ip"] == "10.50.0.11"
    assert guest2.dhcp()["ip"] == "10.50.0.12"
    guest1.ping("10.50.0.12")
    hosts[0].agent(b.docs())
    assert "eth1.120" not in hosts[0].link_names()
    assert "eth1" in hosts[0].link_names()


def test_gre_mesh_of_three_hosts(sim_lab: SimLab) -> None:
    _require(
        ["type", "gretap", "local", "192.0.2.1", "remote", "192.0.2.2", "key", "5"],
        "this kernel has no ip_gre/gretap",
    )
    underlay = sim_lab.underlay()
    names = ("h1", "h2", "h3")
    hosts = [
        sim_lab.host(n, underlay=underlay, local_ip=f"192.0.2.{i + 1}") for i, n in enumerate(names)
    ]
    net = b.network("gre", segmentation_id=3003)
    sub = b.subnet(net, "10.60.0.0/24")
    dhcp = b.dhcp_port(net, sub, "10.60.0.2", "h3")
    vms = [b.port(net, sub, f"10.60.0.{11 + i}", n) for i, n in enumerate(names)]
    docs = b.docs(
        networks=[net],
        subnets=[sub],
        ports=[dhcp, *vms],
        agents=[b.agent(n, f"192.0.2.{i + 1}") for i, n in enumerate(names)],
    )
    guests = [h.guest(vm["id"], vm["mac_address"]) for h, vm in zip(hosts, vms, strict=True)]
    for host in hosts:
        host.agent(docs)
    tunnels = [link for link in hosts[0].links_json() if link["ifname"].startswith("gt-")]
    assert sorted(t["linkinfo"]["info_data"]["remote"] for t in tunnels) == [
        "192.0.2.2",
        "192.0.2.3",
    ]
    for tunnel in tunnels:
        assert tunnel["master"] == f"brq{net['id'][:11]}"
        (port,) = json.loads(
            hosts[0].run(["bridge", "-d", "-j", "link", "show", "dev", tunnel["ifname"]]).stdout
        )
        assert port["isolated"] is True
    for guest, vm in zip(guests, vms, strict=True):
        assert guest.dhcp()["ip"] == vm["fixed_ips"][0]["ip_address"]
    guests[0].ping("10.60.0.12")
    guests[0].ping("10.60.0.13")
    guests[1].ping("10.60.0.13")


def test_dhcpv6_stateful_guest_gets_its_fixed_ipv6(sim_lab: SimLab) -> None:
    h1, net, _ = flat_setup(sim_lab)
    sub6 = b.subnet(
        net,
        "2001:db8:7::/64",
        ipv6_address_mode="dhcpv6-stateful",
        ipv6_ra_mode="dhcpv6-stateful",
        dns_nameservers=["2001:db8:7::53"],
    )
    dhcp = b.dhcp_port(net, sub6, "2001:db8:7::2", "h1")
    vm = b.port(net, sub6, "2001:db8:7::42", "h1")
    guest = h1.guest(vm["id"], vm["mac_address"])
    h1.agent(b.docs(networks=[net], subnets=[sub6], ports=[dhcp, vm]))
    offer = guest.dhcp6()
    assert offer["ip"] == "2001:db8:7::42"
    assert offer["dns"] == "2001:db8:7::53"


def test_split_horizon_isolates_a_bridge_port(sim_lab: SimLab) -> None:
    """What GRE tunnels get (tested on a veth: this kernel may have no gretap)."""
    h1 = sim_lab.host("h1")
    h1.sh("ip link add br0 type bridge && ip link add v0 type veth peer name v1")
    h1.run(["ip", "link", "set", "v0", "master", "br0"])
    snippet = (
        "from stratus.network.agent import l2, namespaces\n"
        "with namespaces.ipr() as ip:\n"
        "    l2.isolate(ip, 'v0')\n"
        "    l2.isolate(ip, 'v0')\n"
    )
    h1.run([PYTHON, "-c", snippet])
    (port,) = json.loads(h1.run(["bridge", "-d", "-j", "link", "show", "dev", "v0"]).stdout)
    assert port["isolated"] is True


def test_a_changed_segment_replaces_the_old_one(sim_lab: SimLab) -> None:
    underlay = sim_lab.underlay()
    h1 = sim_lab.host(
        "h1", underlay=underlay, local_ip="192.0.2.1", physical_interfaces={"physnet1": "eth1"}
    )
    h1.connect(underlay, "eth1")
    net = b.network("flat", physical_network="physnet1")
    sub = b.subnet(net, "10.10.0.0/24")
    vm = b.port(net, sub, "10.10.0.5", "h1")
    h1.guest(vm["id"], vm["mac_address"])
    docs = b.docs(networks=[net], subnets=[sub], ports=[vm])
    bridge = f"brq{net['id'][:11]}"
    h1.agent(docs)
    assert {link["ifname"]: link for link in h1.links_json()}["eth1"]["master"] == bridge

    net.update({"provider:network_type": "vxlan", "provider:segmentation_id": 5, "mtu": 1450})
    h1.agent(docs)
    links = {link["ifname"]: link for link in h1.links_json()}
    assert "master" not in links["eth1"]  # released, not deleted
    assert links["vxlan-5"]["master"] == bridge
    assert links[f"tap{vm['id'][:11]}"]["mtu"] == 1450

    net["provider:segmentation_id"] = 6
    h1.agent(docs)
    names = h1.link_names()
    assert "vxlan-6" in names and "vxlan-5" not in names


# --- an address that changes hands -----------------------------------------------------


def _hand_over(sim_lab: SimLab) -> tuple[SimHost, dict[str, Any], Guest, str, str, Path]:
    """Port A's guest leases 10.10.0.3; then A is deleted and port B gets 10.10.0.3.

    Returns the host, the documents with B (not yet applied), B's guest,
    A's and B's MACs and dnsmasq's lease file. A's guest is gone (its tap
    deleted) but its lease is in dnsmasq for another day, as after a deleted
    VM. A bystander C (10.10.0.4) keeps its port and lease.
    """
    h1, net, sub = flat_setup(sim_lab)
    dhcp = b.dhcp_port(net, sub, "10.10.0.2", "h1")
    old = b.port(net, sub, "10.10.0.3", "h1")
    bystander = b.port(net, sub, "10.10.0.4", "h1")
    docs = b.docs(networks=[net], subnets=[sub], ports=[dhcp, old, bystander])
    guest_a = h1.guest(old["id"], old["mac_address"])
    guest_c = h1.guest(bystander["id"], bystander["mac_address"])
    h1.agent(docs)
    assert guest_a.dhcp()["ip"] == "10.10.0.3"
    assert guest_c.dhcp()["ip"] == "10.10.0.4"
    leases = h1.state_path / "dhcp" / net["id"] / "leases"
    assert f" {old['mac_address']} 10.10.0.3 " in leases.read_text()
    h1.run(["ip", "link", "del", f"tap{old['id'][:11]}"])  # the VM is gone

    new = b.port(net, sub, "10.10.0.3", "h1")
    docs["ports"] = [dhcp, new, bystander]
    guest_b = h1.guest(new["id"], new["mac_address"])
    return h1, docs, guest_b, old["mac_address"], new["mac_address"], leases


def _bystander_kept(leases: Path) -> bool:
    return " 10.10.0.4 host-10-10-0-4 " in leases.read_text()


def test_an_address_given_to_a_new_port_is_released_from_the_old_lease(sim_lab: SimLab) -> None:
    h1, docs, guest_b, old_mac, new_mac, leases = _hand_over(sim_lab)
    (pid,) = dnsmasq_pids(h1)
    h1.agent(docs)
    assert dnsmasq_pids(h1) == [pid]  # a SIGHUP, not a restart: other leases stay
    assert guest_b.dhcp(timeout=8)["ip"] == "10.10.0.3"
    assert old_mac not in leases.read_text()
    assert _bystander_kept(leases)
    assert f" {new_mac} 10.10.0.3 " in leases.read_text()


def test_stale_leases_are_released_by_an_agent_that_did_not_see_the_change(
    sim_lab: SimLab,
) -> None:
    """The hosts file already says B, as an agent without lease release left it."""
    h1, docs, guest_b, old_mac, new_mac, leases = _hand_over(sim_lab)
    hosts = leases.with_name("host")
    hosts.write_text(f"{new_mac},host-10-10-0-3,10.10.0.3\n")
    (pid,) = dnsmasq_pids(h1)
    h1.run(["kill", "-HUP", str(pid)])
    assert old_mac in leases.read_text()

    h1.agent(docs)  # a new agent process: all it knows is the lease file and the API
    assert dnsmasq_pids(h1) == [pid]
    assert guest_b.dhcp(timeout=8)["ip"] == "10.10.0.3"
    assert old_mac not in leases.read_text()
    assert _bystander_kept(leases)


def test_stale_leases_are_dropped_before_dnsmasq_starts(sim_lab: SimLab) -> None:
    """dnsmasq died (a reboot, a crash) holding A's lease; it reads the lease file at start."""
    h1, docs, guest_b, old_mac, _, leases = _hand_over(sim_lab)
    (pid,) = dnsmasq_pids(h1)
    h1.run(["kill", "-9", str(pid)])
    assert old_mac in leases.read_text()

    h1.agent(docs)
    assert dnsmasq_pids(h1) not in ([], [pid])
    assert guest_b.dhcp(timeout=8)["ip"] == "10.10.0.3"
    assert old_mac not in leases.read_text()
    assert _bystander_kept(leases)


def test_without_dhcp_release_dnsmasq_restarts_without_the_stale_leases(sim_lab: SimLab) -> None:
    """A host without dnsmasq-utils: dnsmasq is restarted with the stale leases dropped."""
    h1, docs, guest_b, old_mac, _, leases = _hand_over(sim_lab)
    (pid,) = dnsmasq_pids(h1)
    snapshot = h1.workdir / "snapshot.json"
    snapshot.write_text(json.dumps(docs))
    # dhcp_release is in /usr/bin; ip, nft and dnsmasq in /usr/sbin.
    result = h1.run(
        ["env", "PATH=/usr/sbin", PYTHON, "-m", "stratus.network.agent.main",
         "--config-file", str(h1.config_path), "--once", "--snapshot", str(snapshot)],
    )  # fmt: skip
    assert "restarting dnsmasq to drop stale leases" in result.stderr
    assert dnsmasq_pids(h1) not in ([], [pid])
    assert guest_b.dhcp(timeout=8)["ip"] == "10.10.0.3"
    assert old_mac not in leases.read_text()
    assert _bystander_kept(leases)


def test_a_dhcpv6_address_given_to_a_new_port_is_released_from_the_old_lease(
    sim_lab: SimLab,
) -> None:
    h1, net, _ = flat_setup(sim_lab)
    sub6 = b.subnet(
        net,
        "2001:db8:7::/64",
        ipv6_address_mode="dhcpv6-stateful",
        ipv6_ra_mode="dhcpv6-stateful",
    )
    dhcp = b.dhcp_port(net, sub6, "2001:db8:7::2", "h1")
    old = b.port(net, sub6, "2001:db8:7::3", "h1")
    docs = b.docs(networks=[net], subnets=[sub6], ports=[dhcp, old])
    guest_a = h1.guest(old["id"], old["mac_address"])
    h1.agent(docs)
    assert guest_a.dhcp6()["ip"] == "2001:db8:7::3"
    leases = h1.state_path / "dhcp" / net["id"] / "leases"
    assert " 2001:db8:7::3 " in leases.read_text()
    h1.run(["ip", "link", "del", f"tap{old['id'][:11]}"])  # the VM is gone

    new = b.port(net, sub6, "2001:db8:7::3", "h1")
    docs["ports"] = [dhcp, new]
    guest_b = h1.guest(new["id"], new["mac_address"])
    (pid,) = dnsmasq_pids(h1)
    h1.agent(docs)
    assert dnsmasq_pids(h1) == [pid]
    assert guest_b.dhcp6(timeout=8)["ip"] == "2001:db8:7::3"
