"""The agent's pure logic: device names, segment plans, dnsmasq files, reports, the API client.

No kernel here; these pin down what the real tests (test_l2_dhcp.py) cannot
reach on this machine (VLAN and GRE plans) and the edge cases of each piece.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratus.common.auth import ServiceCredentials
from stratus.common.config import Config
from stratus.network.agent import dhcp, l2, ra, reconcile, settings
from stratus.network.agent.client import ApiError, NetworkClient, endpoint_from_catalog
from stratus.network.agent.main import load_snapshot_file, main
from stratus.network.agent.state import HostConfig, Snapshot
from tests.agent import builders as b

H1 = HostConfig(
    host="h1",
    local_ip="192.0.2.1",
    physical_interfaces={"physnet1": "eth1", "long": "enp129s0f1np1"},
    tunnel_types=("vxlan", "gre"),
    state_dir="/var/lib/stratus/network",
)


# --- names ---------------------------------------------------------------------------


def test_gre_names_fit_and_are_stable_per_network_and_peer() -> None:
    names = {l2.gre_name(seg, ip) for seg in (1, 4094, 70000) for ip in ("10.0.0.2", "10.0.0.3")}
    assert len(names) == 6
    assert all(len(n) <= 15 and n.startswith("gt-") for n in names)
    assert l2.gre_name(7, "10.0.0.2") == l2.gre_name(7, "10.0.0.2")
    assert l2.gre_name(7, "10.0.0.2").startswith("gt-7-")
    # A 10-digit key leaves no room for a peer hash: both are hashed together.
    long_a, long_b = l2.gre_name(4294967295, "10.0.0.2"), l2.gre_name(4294967295, "10.0.0.3")
    assert long_a != long_b and len(long_a) == 15


def test_vlan_names_fit_in_ifnamsiz() -> None:
    assert l2.vlan_name("eth1", 100) == "eth1.100"
    assert l2.vlan_name("enp129s0f1np1", 4094) == "enp129s0f1.4094"
    assert len(l2.vlan_name("enp129s0f1np1", 4094)) == 15


# --- segment plans ---------------------------------------------------------------------


def snapshot_with(net: dict[str, Any], *ports: dict[str, Any], **lists: Any) -> Snapshot:
    sub = b.subnet(net, "10.0.0.0/24")
    return Snapshot.from_api(b.docs(networks=[net], subnets=[sub], ports=list(ports), **lists))


def test_flat_and_vlan_plans_use_the_mapped_interface() -> None:
    flat = b.network("flat", physical_network="physnet1")
    snap = snapshot_with(flat)
    (seg,) = l2.segment_plan(snap, H1, snap.networks[flat["id"]])
    assert (seg.kind, seg.name) == ("physical", "eth1")
    vlan = b.network("vlan", segmentation_id=42, physical_network="long")
    snap = snapshot_with(vlan)
    (seg,) = l2.segment_plan(snap, H1, snap.networks[vlan["id"]])
    assert (seg.kind, seg.name, seg.physical, seg.vlan_id) == (
        "vlan",
        "enp129s0f1np1"[:12] + ".42",
        "enp129s0f1np1",
        42,
    )


@pytest.mark.parametrize(
    ("net", "message"),
    [
        (b.network("flat", physical_network="elsewhere"), "not mapped"),
        (b.network("vlan", segmentation_id=5000, physical_network="physnet1"), "1-4094"),
        (b.network("geneve", segmentation_id=5), "unknown network type"),
    ],
)
def test_plans_that_cannot_be_built_here_say_why(net: dict[str, Any], message: str) -> None:
    snap = snapshot_with(net)
    with pytest.raises(ValueError, match=message):
        l2.segment_plan(snap, H1, snap.networks[net["id"]])


def test_tunnels_need_the_type_enabled_and_a_local_ip() -> None:
    net = b.network("gre", segmentation_id=9)
    snap = snapshot_with(net)
    only_vxlan = HostConfig(host="h1", local_ip="192.0.2.1", tunnel_types=("vxlan",))
    with pytest.raises(ValueError, match="not enabled"):
        l2.segment_plan(snap, only_vxlan, snap.networks[net["id"]])
    no_ip = HostConfig(host="h1", tunnel_types=("gre",))
    with pytest.raises(ValueError, match="local_ip"):
        l2.segment_plan(snap, no_ip, snap.networks[net["id"]])


def test_vxlan_plan_floods_to_peers_with_ports_and_points_macs_at_their_host() -> None:
    net = b.network("vxlan", segmentation_id=100)
    sub = b.subnet(net, "10.0.0.0/24")
    here = b.port(net, sub, "10.0.0.5", "h1")
    there = b.port(net, sub, "10.0.0.6", "h2")
    unknown_host = b.port(net, sub, "10.0.0.7", "h9")  # no agent: no tunnel to it
    idle_peer = b.agent("h3", "192.0.2.3")  # an agent without a port on the network
    snap = Snapshot.from_api(
        b.docs(
            networks=[net],
            subnets=[sub],
            ports=[here, there, unknown_host],
            agents=[b.agent("h1", "192.0.2.1"), b.agent("h2", "192.0.2.2"), idle_peer],
        )
    )
    (seg,) = l2.segment_plan(snap, H1, snap.networks[net["id"]])
    assert (seg.name, seg.vni, seg.local_ip, seg.port) == ("vxlan-100", 100, "192.0.2.1", 4789)
    assert seg.fdb == {(l2.ZERO_MAC, "192.0.2.2"), (there["mac_address"], "192.0.2.2")}


def test_gre_plan_is_one_tunnel_per_peer() -> None:
    net = b.network("gre", segmentation_id=300)
    sub = b.subnet(net, "10.0.0.0/24")
    ports = [b.port(net, sub, f"10.0.0.{i}", h) for i, h in enumerate(("h1", "h2", "h3"), 5)]
    agents = [b.agent(h, f"192.0.2.{i}") for i, h in enumerate(("h1", "h2", "h3"), 1)]
    snap = Snapshot.from_api(b.docs(networks=[net], subnets=[sub], ports=ports, agents=agents))
    plan = l2.segment_plan(snap, H1, snap.networks[net["id"]])
    assert [(s.kind, s.remote_ip, s.vni, s.local_ip) for s in plan] == [
        ("gretap", "192.0.2.2", 300, "192.0.2.1"),
        ("gretap", "192.0.2.3", 300, "192.0.2.1"),
    ]
    assert [s.name for s in plan] == [
        l2.gre_name(300, "192.0.2.2"),
        l2.gre_name(300, "192.0.2.3"),
    ]


def test_carried_networks_include_the_gateway_network_of_routers_here() -> None:
    inside = b.network("vxlan", segmentation_id=1)
    external = b.network("flat", physical_network="physnet1", external=True)
    elsewhere = b.network("vxlan", segmentation_id=2)
    sub = b.subnet(inside, "10.0.0.0/24")
    sub_elsewhere = b.subnet(elsewhere, "10.1.0.0/24")
    router = {
        "id": b.uid(),
        "external_gateway_info": {"network_id": external["id"], "enable_snat": True},
    }
    interface = b.port(inside, sub, "10.0.0.1", "h1", device_owner="network:router_interface")
    interface["device_id"] = router["id"]
    other = b.port(elsewhere, sub_elsewhere, "10.1.0.5", "h2")
    snap = Snapshot.from_api(
        b.docs(
            networks=[inside, external, elsewhere],
            subnets=[sub, sub_elsewhere],
            ports=[interface, other],
            routers=[router],
        )
    )
    assert {n.id for n in l2.carried_networks(snap, H1)} == {inside["id"], external["id"]}


# --- dnsmasq's files and command line ----------------------------------------------------


def test_dnsmasq_files_carry_fixed_hosts_options_and_names() -> None:
    net = b.network("vxlan", segmentation_id=5)
    sub = b.subnet(
        net,
        "10.0.0.0/24",
        host_routes=[{"destination": "172.16.0.0/12", "nexthop": "10.0.0.254"}],
    )
    quiet = b.subnet(net, "10.9.0.0/24", gateway_ip=None, dns_nameservers=["9.9.9.9", "1.1.1.1"])
    port = b.dhcp_port(net, sub, "10.0.0.2", "h1")
    port["fixed_ips"].append({"subnet_id": quiet["id"], "ip_address": "10.9.0.2"})
    vm = b.port(net, sub, "10.0.0.10", "h2", dns_name="web")
    vm2 = b.port(net, quiet, "10.9.0.20", "h2")
    down = b.port(net, sub, "10.0.0.11", "h2", admin_state_up=False)
    snap = Snapshot.from_api(
        b.docs(networks=[net], subnets=[sub, quiet], ports=[port, vm, vm2, down])
    )
    files = dhcp.render(snap, snap.networks[net["id"]], snap.ports[port["id"]])
    assert set(files.hosts.splitlines()) == {
        f"{vm['mac_address']},web,10.0.0.10",
        f"{vm2['mac_address']},host-10-9-0-20,10.9.0.20",
    }
    assert "10.0.0.10\tweb.openstacklocal web" in files.addn_hosts.splitlines()
    assert "10.0.0.2\thost-10-0-0-2.openstacklocal host-10-0-0-2" in files.addn_hosts.splitlines()
    assert "10.0.0.11" not in files.addn_hosts  # an admin-down port is not served
    opts = files.opts.splitlines()
    t1, t2 = f"tag:subnet-{sub['id']}", f"tag:subnet-{quiet['id']}"
    assert f"{t1},option:router,10.0.0.1" in opts
    assert f"{t1},option:dns-server,10.0.0.2" in opts
    assert f"{t1},option:mtu,1450" in opts
    # No router on either subnet: metadata is reached through the DHCP port.
    routes = "172.16.0.0/12,10.0.0.254,169.254.169.254/32,10.0.0.2,0.0.0.0/0,10.0.0.1"
    assert f"{t1},option:classless-static-route,{routes}" in opts
    assert f"{t2},option:router" in opts
    assert f"{t2},option:dns-server,9.9.9.9,1.1.1.1" in opts
    assert f"{t2},option:classless-static-route,169.254.169.254/32,10.9.0.2" in opts

    # A router attached to the first subnet serves its metadata from then on.
    router_port = b.port(net, sub, "10.0.0.1", "h1", device_owner="network:router_interface")
    snap = Snapshot.from_api(
        b.docs(networks=[net], subnets=[sub, quiet], ports=[port, vm, vm2, down, router_port])
    )
    opts = dhcp.render(snap, snap.networks[net["id"]], snap.ports[port["id"]]).opts.splitlines()
    routes = "172.16.0.0/12,10.0.0.254,0.0.0.0/0,10.0.0.1"
    assert f"{t1},option:classless-static-route,{routes}" in opts
    assert f"{t2},option:classless-static-route,169.254.169.254/32,10.9.0.2" in opts


def test_ipv6_stateful_subnets_get_addresses_and_slaac_ones_nothing() -> None:
    net = b.network("vxlan", segmentation_id=5)
    stateful = b.subnet(
        net,
        "2001:db8:1::/64",
        ipv6_address_mode="dhcpv6-stateful",
        ipv6_ra_mode="dhcpv6-stateful",
    )
    slaac = b.subnet(net, "2001:db8:2::/64", ipv6_address_mode="slaac", ipv6_ra_mode="slaac")
    port = b.dhcp_port(net, stateful, "2001:db8:1::2", "h1")
    vm = b.port(net, stateful, "2001:db8:1::10", "h1")
    vm["fixed_ips"].append({"subnet_id": slaac["id"], "ip_address": "2001:db8:2::99"})
    snap = Snapshot.from_api(b.docs(networks=[net], subnets=[stateful, slaac], ports=[port, vm]))
    network, dhcp_port = snap.networks[net["id"]], snap.ports[port["id"]]
    files = dhcp.render(snap, network, dhcp_port)
    assert files.hosts.splitlines() == [f"{vm['mac_address']},host-2001-db8-1--10,[2001:db8:1::10]"]
    argv = dhcp.command(snap, H1, network, dhcp_port)
    ranges = [a for a in argv if a.startswith("--dhcp-range")]
    assert ranges == [f"--dhcp-range=set:subnet-{stateful['id']},2001:db8:1::,static,64,86400s"]


def test_dnsmasq_command_line_is_static_and_bound_to_the_port() -> None:
    net = b.network("vxlan", segmentation_id=5)
    sub = b.subnet(net, "10.0.0.0/22")
    port = b.dhcp_port(net, sub, "10.0.0.2", "h1")
    snap = Snapshot.from_api(b.docs(networks=[net], subnets=[sub], ports=[port]))
    argv = dhcp.command(snap, H1, snap.networks[net["id"]], snap.ports[port["id"]])
    d = Path(H1.state_dir) / "dhcp" / net["id"]
    assert argv[0] == dhcp.DNSMASQ
    for expected in (
        "--no-hosts",
        "--no-resolv",
        "--bind-interfaces",
        f"--interface=ns-{port['id'][:11]}",
        f"--dhcp-hostsfile={d / 'host'}",
        f"--dhcp-optsfile={d / 'opts'}",
        f"--dhcp-leasefile={d / 'leases'}",
        f"--pid-file={d / 'pid'}",
        f"--dhcp-range=set:subnet-{sub['id']},10.0.0.0,static,255.255.252.0,86400s",
    ):
        assert expected in argv


LEASES = (
    "1795767928 fa:16:3e:00:00:0a 10.0.0.10 host-10-0-0-10 *\n"
    "1795767929 fa:16:3e:00:00:0b 10.0.0.11 * 01:fa:16:3e:00:00:0b\n"
    "1795767930 fa:16:3e:00:00:0c 10.0.0.12 host-10-0-0-12 *\n"
    "duid 00:01:00:01:32:9a:aa:39:fa:16:3e:45:b0:46\n"
    "1795767931 1056853745 2001:db8::3 * 00:01:00:01:32:9a:aa:3a:fa:16:3e:00:00:0d\n"
    "1795767932 77 2001:db8::4 * 00:02:00:00:ab:11:01:02\n"
    "1795767933 T78 2001:db8::5 * 00:02:00:00:ab:11:01:03\n"
    "not a lease\n"
)


def test_dnsmasq_lease_file_is_read_as_addresses_macs_and_client_ids() -> None:
    leases = dhcp.LeaseFile.parse(LEASES)
    assert leases.server_duid == "00:01:00:01:32:9a:aa:39:fa:16:3e:45:b0:46"
    assert [(x.ip, x.version, x.mac, x.client_id, x.iaid) for x in leases.leases] == [
        ("10.0.0.10", 4, "fa:16:3e:00:00:0a", None, None),
        ("10.0.0.11", 4, "fa:16:3e:00:00:0b", "01:fa:16:3e:00:00:0b", None),
        ("10.0.0.12", 4, "fa:16:3e:00:00:0c", None, None),
        ("2001:db8::3", 6, None, "00:01:00:01:32:9a:aa:3a:fa:16:3e:00:00:0d", "1056853745"),
        ("2001:db8::4", 6, None, "00:02:00:00:ab:11:01:02", "77"),
        ("2001:db8::5", 6, None, "00:02:00:00:ab:11:01:03", "T78"),
    ]
    assert dhcp.LeaseFile.parse("").leases == []
    # DUID-LLT and DUID-LL of Ethernet name a MAC; others (DUID-EN here) do not.
    assert dhcp.duid_mac("00:01:00:01:32:9a:aa:3a:fa:16:3e:00:00:0d") == "fa:16:3e:00:00:0d"
    assert dhcp.duid_mac("00:03:00:01:FA:16:3E:00:00:0E") == "fa:16:3e:00:00:0e"
    assert dhcp.duid_mac("00:02:00:00:ab:11:01:02") is None
    assert dhcp.duid_mac(None) is None and dhcp.duid_mac("zz") is None
    hosts = "fa:16:3e:00:00:0a,host-10-0-0-10,10.0.0.10\nFA:16:3E:00:00:0D,web,[2001:db8::3]\n"
    assert dhcp.host_entries(hosts) == {
        "10.0.0.10": "fa:16:3e:00:00:0a",
        "2001:db8::3": "fa:16:3e:00:00:0d",
    }


def test_leases_no_host_entry_accounts_for_are_stale() -> None:
    leases = dhcp.LeaseFile.parse(LEASES)
    wanted = {
        "10.0.0.10": "fa:16:3e:00:00:0a",  # the same port: kept
        "10.0.0.11": "fa:16:3e:00:00:99",  # the address went to a new port (MAC)
        # 10.0.0.12: the port was deleted, or its address changed
        "2001:db8::3": "fa:16:3e:00:00:0d",  # the DUID's MAC: kept
        "2001:db8::4": "fa:16:3e:00:00:0e",
        "2001:db8::5": "fa:16:3e:00:00:0f",
    }
    stale = dhcp.stale_leases(leases.leases, wanted, previous=wanted)
    assert [x.ip for x in stale] == ["10.0.0.11", "10.0.0.12"]
    # A DUID that names another MAC, or an address the old hosts file gave another MAC.
    moved = {**wanted, "2001:db8::3": "fa:16:3e:00:00:99"}
    previous = {**wanted, "2001:db8::4": "fa:16:3e:00:00:01"}
    stale = dhcp.stale_leases(leases.leases, moved, previous)
    assert [x.ip for x in stale] == ["10.0.0.11", "10.0.0.12", "2001:db8::3", "2001:db8::4"]
    assert dhcp.stale_leases(leases.leases, {}, {}) == leases.leases

    # A running dnsmasq is told by dhcp_release(6) on the DHCP device...
    commands = [dhcp.release_command(x, "ns-1", leases.server_duid) for x in stale]
    assert commands == [
        ["dhcp_release", "ns-1", "10.0.0.11", "fa:16:3e:00:00:0b", "01:fa:16:3e:00:00:0b"],
        ["dhcp_release", "ns-1", "10.0.0.12", "fa:16:3e:00:00:0c"],
        ["dhcp_release6", "--iface", "ns-1", "--ip", "2001:db8::3", "--iaid", "1056853745",
         "--client-id", "00:01:00:01:32:9a:aa:3a:fa:16:3e:00:00:0d",
         "--server-id", "00:01:00:01:32:9a:aa:39:fa:16:3e:45:b0:46"],
        ["dhcp_release6", "--iface", "ns-1", "--ip", "2001:db8::4", "--iaid", "77",
         "--client-id", "00:02:00:00:ab:11:01:02",
         "--server-id", "00:01:00:01:32:9a:aa:39:fa:16:3e:45:b0:46"],
    ]  # fmt: skip
    # ... except for what dhcp_release6 cannot say: then dnsmasq is restarted.
    assert dhcp.release_command(leases.leases[3], "ns-1", None) is None
    assert dhcp.release_command(leases.leases[5], "ns-1", leases.server_duid) is None
    # ...and a dnsmasq about to start reads a lease file without them.
    assert dhcp.LeaseFile.parse(LEASES).without(stale).splitlines() == [
        "duid 00:01:00:01:32:9a:aa:39:fa:16:3e:45:b0:46",
        "1795767928 fa:16:3e:00:00:0a 10.0.0.10 host-10-0-0-10 *",
        "1795767933 T78 2001:db8::5 * 00:02:00:00:ab:11:01:03",
    ]


def test_a_network_without_dhcp_subnets_is_not_served() -> None:
    net = b.network("vxlan", segmentation_id=5)
    sub = b.subnet(net, "10.0.0.0/24", enable_dhcp=False)
    port = b.dhcp_port(net, sub, "10.0.0.2", "h1")
    snap = Snapshot.from_api(b.docs(networks=[net], subnets=[sub], ports=[port]))
    assert dhcp.served(snap, H1) == {}
    sub["enable_dhcp"] = True
    snap = Snapshot.from_api(b.docs(networks=[net], subnets=[sub], ports=[port]))
    assert list(dhcp.served(snap, H1)) == [net["id"]]


# --- reconcile -------------------------------------------------------------------------------


def test_reconcile_reports_ports_and_keeps_going_after_failures() -> None:
    net_ok = b.network("vxlan", segmentation_id=1)
    net_bad = b.network("vxlan", segmentation_id=2)
    s1, s2 = b.subnet(net_ok, "10.0.0.0/24"), b.subnet(net_bad, "10.1.0.0/24")
    vm_ok = b.port(net_ok, s1, "10.0.0.5", "h1")
    vm_bad = b.port(net_bad, s2, "10.1.0.5", "h1")
    dhcp_ok = b.dhcp_port(net_ok, s1, "10.0.0.2", "h1")
    not_here = b.port(net_ok, s1, "10.0.0.6", "h2")
    snap = Snapshot.from_api(
        b.docs(
            networks=[net_ok, net_bad], subnets=[s1, s2], ports=[vm_ok, vm_bad, dhcp_ok, not_here]
        )
    )
    calls: list[str] = []

    def fake_l2(snapshot: Snapshot, config: HostConfig) -> set[str]:
        calls.append("l2")
        raise l2.PartialFailure({net_bad["id"]: "no such interface"}, {vm_ok["id"]})

    def fake_dhcp(snapshot: Snapshot, config: HostConfig) -> set[str]:
        calls.append("dhcp")
        return {dhcp_ok["id"]}

    def fake_metadata(snapshot: Snapshot, config: HostConfig) -> None:
        calls.append("metadata")
        raise RuntimeError("boom")

    report = reconcile.converge(
        snap, H1, [("l2", fake_l2), ("dhcp", fake_dhcp), ("metadata", fake_metadata)]
    )
    assert calls == ["l2", "dhcp", "metadata"]
    assert report.ports_up == {vm_ok["id"], dhcp_ok["id"]}
    assert report.ports_down == {vm_bad["id"]}
    assert report.failures == {f"l2:{net_bad['id']}": "no such interface", "metadata": "boom"}
    assert not report.ok

    def broken_firewall(snapshot: Snapshot, config: HostConfig) -> None:
        raise RuntimeError("nft failed")

    report = reconcile.converge(
        snap, H1, [("l2", lambda s, c: {vm_ok["id"]}), ("firewall", broken_firewall)]
    )
    # An unfiltered guest port is not reported up.
    assert report.ports_up == set() and vm_ok["id"] in report.ports_down


def test_missing_modules_are_skipped_but_present_ones_load() -> None:
    names = [name for name, _ in reconcile.load_modules(("l2", "dhcp", "no_such_module"))]
    assert names == ["l2", "dhcp"]


# --- configuration ----------------------------------------------------------------------------


def test_settings_make_the_host_config(tmp_path: Path) -> None:
    path = tmp_path / "stratus.conf"
    path.write_text(
        "[network_agent]\nhost = compute-7\nlocal_ip = 10.1.2.3\n"
        "physical_interface_mappings = physnet1:eth1, ext:bond0\ntunnel_types = vxlan,gre\n"
        "vxlan_port = 8472\nstate_dir = /srv/agent\n"
    )
    host = settings.host_config(Config(path))
    assert host == HostConfig(
        host="compute-7",
        local_ip="10.1.2.3",
        physical_interfaces={"physnet1": "eth1", "ext": "bond0"},
        tunnel_types=("vxlan", "gre"),
        vxlan_port=8472,
        state_dir="/srv/agent",
    )
    with pytest.raises(ValueError, match="physnet:interface"):
        settings.parse_mappings(["physnet1"])
    path.write_text("[network_agent]\ntunnel_types = geneve\n")
    with pytest.raises(ValueError, match="geneve"):
        settings.host_config(Config(path))


def test_the_metadata_proxy_needs_its_secret(tmp_path: Path) -> None:
    path = tmp_path / "stratus.conf"
    path.write_text("[network_agent]\n")
    assert settings.metadata_proxy(Config(path)) is None
    path.write_text(
        "[network_agent]\nmetadata_url = http://ctl:8775\nmetadata_shared_secret = s3cret\n"
    )
    assert settings.metadata_proxy(Config(path)) == ("http://ctl:8775", "s3cret")
    path.write_text("[network_agent]\nmetadata_url = http://ctl:8775\n")
    with pytest.raises(ValueError, match="metadata_shared_secret is empty"):
        settings.metadata_proxy(Config(path))
    # The agent refuses to start on it, and on a URL that is not one.
    path.write_text("[network_agent]\nmetadata_url = ctl:8775\nmetadata_shared_secret = s\n")
    assert main(["--config-file", str(path), "--snapshot", str(tmp_path / "none.json")]) == 2


def test_snapshot_files_take_the_api_spelling(tmp_path: Path) -> None:
    group = {"id": "sg1", "security_group_rules": []}
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"security-groups": [group], "networks": []}))
    assert list(load_snapshot_file(path).security_groups) == ["sg1"]


# --- the API client -----------------------------------------------------------------------------

CREDENTIALS = ServiceCredentials(
    auth_url="http://identity:5000/v3", username="network-agent", password="secret"
)


class FakeCloud:
    """Identity and the network API, as a httpx transport."""

    def __init__(self, *, reports: bool = True, expire_once: bool = False):
        self.reports = reports
        self.expire_once = expire_once
        self.tokens = 0
        self.posted: list[dict[str, Any]] = []
        self.requests: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(f"{request.method} {request.url}")
        if request.url.path == "/v3/auth/tokens":
            body = json.loads(request.content)
            assert body["auth"]["identity"]["password"]["user"]["name"] == "network-agent"
            self.tokens += 1
            catalog = [
                {
                    "type": "network",
                    "endpoints": [
                        {"interface": "public", "url": "http://public:9696"},
                        {"interface": "internal", "url": "http://net:9696/", "region_id": "r1"},
                    ],
                }
            ]
            return httpx.Response(
                201,
                headers={"X-Subject-Token": f"t{self.tokens}"},
                json={"token": {"expires_at": "2999-01-01T00:00:00Z", "catalog": catalog}},
            )
        assert request.url.host == "net"
        if self.expire_once and request.headers["X-Auth-Token"] == "t1":
            return httpx.Response(401, json={})
        if request.url.path == "/v2.0/networks":
            if request.url.params.get("marker") == "n2":
                return httpx.Response(200, json={"networks": [{"id": "n3"}], "networks_links": []})
            return httpx.Response(
                200,
                json={
                    "networks": [{"id": "n1"}, {"id": "n2"}],
                    "networks_links": [
                        {"rel": "next", "href": "http://net:9696/v2.0/networks?marker=n2"}
                    ],
                },
            )
        if request.url.path == "/v2.0/stratus-agent-reports":
            if not self.reports:
                return httpx.Response(404, json={"NeutronError": {"message": "not found"}})
            self.posted.append(json.loads(request.content))
            return httpx.Response(201, json={})
        key = request.url.path.rsplit("/", 1)[1].replace("-", "_")
        return httpx.Response(200, json={key: []})


def client_for(cloud: FakeCloud) -> NetworkClient:
    return NetworkClient(
        CREDENTIALS, region="r1", http=httpx.Client(transport=httpx.MockTransport(cloud))
    )


def test_client_follows_pages_and_renews_an_expired_token() -> None:
    cloud = FakeCloud(expire_once=True)
    client = client_for(cloud)
    docs = client.documents()
    assert [n["id"] for n in docs["networks"]] == ["n1", "n2", "n3"]
    assert set(docs) == {
        "networks",
        "subnets",
        "ports",
        "routers",
        "floatingips",
        "security_groups",
        "agents",
    }
    assert cloud.tokens == 2
    assert "GET http://net:9696/v2.0/security-groups?limit=1000" in cloud.requests


def test_client_reports_and_survives_an_api_without_reports() -> None:
    report = reconcile.Report(host="h1", ports_up={"b", "a"}, ports_down={"c"})
    cloud = FakeCloud()
    assert client_for(cloud).report(H1, report) is True
    (body,) = cloud.posted
    assert body == {
        "report": {
            "host": "h1",
            "agent_type": "Linux bridge agent",
            "binary": "stratus-network-agent",
            "configurations": {
                "tunneling_ip": "192.0.2.1",
                "tunnel_types": ["vxlan", "gre"],
                "bridge_mappings": {"physnet1": "eth1", "long": "enp129s0f1np1"},
            },
            "ports_up": ["a", "b"],
            "ports_down": ["c"],
        }
    }
    assert client_for(FakeCloud(reports=False)).report(H1, report) is False


def test_catalog_without_a_network_endpoint_is_an_error() -> None:
    with pytest.raises(ApiError, match="no internal network endpoint"):
        endpoint_from_catalog([{"type": "identity", "endpoints": []}])
    catalog = [{"type": "network", "endpoints": [{"interface": "internal", "url": "http://x/"}]}]
    assert endpoint_from_catalog(catalog) == "http://x"


def test_a_failed_fetch_converges_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unreachable API must never look like an empty cloud (which would tear down)."""
    from stratus.network.agent import main

    class Unreachable:
        def snapshot(self) -> Snapshot:
            raise ApiError("identity is unreachable")

        def report(self, host: HostConfig, report: reconcile.Report) -> bool:
            raise AssertionError("nothing to report")

    def converge(*args: Any, **kwargs: Any) -> reconcile.Report:
        raise AssertionError("converged without a snapshot")

    monkeypatch.setattr(reconcile, "converge", converge)
    agent = main.Agent(Config(overrides={}), H1)
    agent._client = Unreachable()
    report = agent.one_pass()
    assert report.failures == {"fetch": "identity is unreachable"}
    assert not report.ok


def test_router_advertisements_follow_the_subnets_ra_mode() -> None:
    net = b.network("vxlan", segmentation_id=5)
    mode = "dhcpv6-stateless"
    stateless = b.subnet(net, "2001:db8:1::/64", ipv6_ra_mode=mode, ipv6_address_mode=mode)
    # Only an address mode: a router outside the cloud advertises, not ours.
    outside = b.subnet(net, "2001:db8:2::/64", ipv6_address_mode="slaac")
    net2 = b.network("vxlan", segmentation_id=6)
    v4 = b.subnet(net2, "10.0.0.0/24")
    router = {"id": b.uid(), "project_id": "p1", "admin_state_up": True,
              "external_gateway_info": None, "routes": []}  # fmt: skip
    ports = []
    for n, s, ip in ((net, stateless, "2001:db8:1::1"), (net, outside, "2001:db8:2::1"),
                     (net2, v4, "10.0.0.1")):  # fmt: skip
        port = b.port(n, s, ip, "h1", device_owner="network:router_interface")
        port["device_id"] = router["id"]
        ports.append(port)
    docs = b.docs(networks=[net, net2], subnets=[stateless, outside, v4], ports=ports,
                  routers=[router])  # fmt: skip
    planned = ra.plan(Snapshot.from_api(docs), H1)
    (interface,) = planned[router["id"]]
    assert interface.device == f"qr-{ports[0]['id'][:11]}"
    assert interface.prefixes == (("2001:db8:1::/64", True),)
    assert (interface.managed, interface.other) == (False, True)
    text = ra.render(planned[router["id"]])
    assert "AdvOtherConfigFlag on;" in text and "2001:db8:2::" not in text
    router["admin_state_up"] = False  # a router that is down advertises nothing
    assert ra.plan(Snapshot.from_api(docs), H1) == {}
