"""The Neutron v2.0 API with its real clients: the openstack CLI and openstacksdk.

Networks, subnets, ports and security groups end to end; who sees what;
segmentation IDs from the configured ranges; quotas; tags; the agents'
reports; and a restart that loses nothing.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import project_user
from tests.api.network_helpers import admin_client, created, neutron_error, user_client
from tests.conftest import NETWORK_SERVICE_PASSWORD


@pytest.fixture(scope="module")
def admin(identity_server, network_server):
    with admin_client(identity_server, network_server) as client:
        yield client


@pytest.fixture(scope="module")
def people(identity_server, network_server):
    from uuid import uuid4

    tag = uuid4().hex[:8]
    alice = project_user(identity_server, f"net-alice-{tag}")
    bob = project_user(identity_server, f"net-bob-{tag}")
    with user_client(network_server, alice) as a, user_client(network_server, bob) as b:
        yield {"alice": alice, "bob": bob, "a": a, "b": b}


def test_version_discovery_and_extensions(network_server, openstack_cli):
    root = httpx.get(network_server.url + "/")
    assert root.status_code == 200
    assert root.json()["versions"][0]["id"] == "v2.0"
    extensions = openstack_cli("extension", "list", "--network", "-f", "json")
    aliases = {e["Alias"] for e in extensions}
    assert {"provider", "external-net", "security-group", "quotas", "binding"} <= aliases
    # Only what is implemented: no subnet pools, QoS or trunks.
    assert not aliases & {"subnet_allocation", "qos", "trunk", "dvr", "l3-ha"}


def test_cli_journey(openstack_cli, unique):
    net = openstack_cli("network", "create", f"net-{unique}", "--tag", "blue", "-f", "json")
    assert net["status"] == "ACTIVE" and net["mtu"] == 1450  # VXLAN: 1500 less 50
    assert net["provider:network_type"] == "vxlan"
    subnet = openstack_cli(
        "subnet", "create", f"sub-{unique}", "--network", net["id"],
        "--subnet-range", "10.20.0.0/24", "--allocation-pool", "start=10.20.0.10,end=10.20.0.20",
        "--dns-nameserver", "192.0.2.53",
        "--host-route", "destination=10.99.0.0/16,gateway=10.20.0.254",
        "-f", "json",
    )  # fmt: skip
    assert subnet["gateway_ip"] == "10.20.0.1"
    assert subnet["allocation_pools"] == [{"start": "10.20.0.10", "end": "10.20.0.20"}]
    assert subnet["host_routes"] == [{"destination": "10.99.0.0/16", "nexthop": "10.20.0.254"}]
    port = openstack_cli(
        "port", "create", f"port-{unique}", "--network", net["id"],
        "--fixed-ip", "subnet=" + subnet["id"] + ",ip-address=10.20.0.15", "-f", "json",
    )  # fmt: skip
    assert port["fixed_ips"] == [{"subnet_id": subnet["id"], "ip_address": "10.20.0.15"}]
    assert port["status"] == "DOWN" and port["mac_address"].startswith("fa:16:3e:")
    # The network's DHCP port took the first address of the pool.
    ports = openstack_cli("port", "list", "--network", net["id"], "--long", "-f", "json")
    owners = {p["Device Owner"]: p for p in ports}
    assert set(owners) == {"network:dhcp", ""}
    assert owners["network:dhcp"]["Fixed IP Addresses"][0]["ip_address"] == "10.20.0.10"
    openstack_cli("port", "set", port["id"], "--name", f"renamed-{unique}", "--no-security-group")
    shown = openstack_cli("port", "show", port["id"], "-f", "json")
    assert shown["name"] == f"renamed-{unique}" and shown["security_group_ids"] == []
    tagged = openstack_cli("network", "list", "--tags", "blue", "-f", "json")
    assert net["id"] in {n["ID"] for n in tagged}
    openstack_cli("port", "delete", port["id"])
    openstack_cli("subnet", "delete", subnet["id"])
    openstack_cli("network", "delete", net["id"])
    # Nothing of it is left, the DHCP port included.
    left = openstack_cli("port", "list", "--long", "-f", "json")
    assert not [p for p in left if p["Fixed IP Addresses"][0]["ip_address"].startswith("10.20.")]


def test_openstacksdk_journey(network_conn, unique):
    net = network_conn.network.create_network(name=f"sdk-{unique}")
    try:
        v4 = network_conn.network.create_subnet(
            network_id=net.id, ip_version=4, cidr="10.21.0.0/28", name="v4"
        )
        v6 = network_conn.network.create_subnet(
            network_id=net.id,
            ip_version=6,
            cidr="fd00:21::/64",
            ipv6_address_mode="dhcpv6-stateful",
            ipv6_ra_mode="dhcpv6-stateful",
        )
        port = network_conn.network.create_port(network_id=net.id, name="two-stacks")
        versions = {ip["subnet_id"] for ip in port.fixed_ips}
        assert versions == {v4.id, v6.id}  # one address of each version
        found = list(network_conn.network.ports(network_id=net.id, device_owner=""))
        assert [p.id for p in found] == [port.id]
        assert network_conn.network.get_network(net.id).subnet_ids == sorted(
            [v4.id, v6.id], key=[v4.id, v6.id].index
        )
        # Pagination as the SDK follows it.
        names = [f"page-{unique}-{i}" for i in range(5)]
        for name in names:
            network_conn.network.create_port(network_id=net.id, name=name)
        paged = list(network_conn.network.ports(network_id=net.id, limit=2))
        assert len(paged) == 7  # five, the first port and the DHCP port
        network_conn.network.delete_port(port.id)
        for p in network_conn.network.ports(network_id=net.id, device_owner=""):
            network_conn.network.delete_port(p.id)
    finally:
        network_conn.network.delete_network(net.id)


def test_attribute_filters_fields_and_sorting(admin, unique):
    ids = []
    for i in range(3):
        body = {"network": {"name": f"flt-{unique}-{i}", "admin_state_up": i != 1}}
        ids.append(created(admin.post("/v2.0/networks", json=body), "network")["id"])
    try:
        down = admin.get("/v2.0/networks", params={"admin_state_up": "false"}).json()["networks"]
        assert ids[1] in {n["id"] for n in down} and ids[0] not in {n["id"] for n in down}
        picked = admin.get(
            "/v2.0/networks", params=[("id", ids[0]), ("id", ids[2]), ("fields", "name")]
        ).json()["networks"]
        assert sorted(n["name"] for n in picked) == [f"flt-{unique}-0", f"flt-{unique}-2"]
        assert all(set(n) == {"name"} for n in picked)
        ordered = admin.get(
            "/v2.0/networks",
            params=[("name", f"flt-{unique}-{i}") for i in range(3)]
            + [("sort_key", "name"), ("sort_dir", "desc")],
        ).json()["networks"]
        assert [n["id"] for n in ordered] == ids[::-1]
    finally:
        for ident in ids:
            admin.delete(f"/v2.0/networks/{ident}")


def test_projects_see_their_own_and_shared_networks(admin, people, unique):
    a, b = people["a"], people["b"]
    private = created(
        a.post("/v2.0/networks", json={"network": {"name": f"p-{unique}"}}), "network"
    )
    shared = created(
        admin.post("/v2.0/networks", json={"network": {"name": f"s-{unique}", "shared": True}}),
        "network",
    )
    created(
        admin.post(
            "/v2.0/subnets",
            json={"subnet": {"network_id": shared["id"], "cidr": "10.22.0.0/24", "ip_version": 4}},
        ),
        "subnet",
    )
    try:
        assert "provider:network_type" not in private  # admin-only attributes
        neutron_error(b.get(f"/v2.0/networks/{private['id']}"), 404, "NetworkNotFound")
        neutron_error(b.delete(f"/v2.0/networks/{private['id']}"), 404)
        listed = {n["id"] for n in b.get("/v2.0/networks").json()["networks"]}
        assert shared["id"] in listed and private["id"] not in listed
        # Bob attaches to the shared network, but not to Alice's.
        port = created(b.post("/v2.0/ports", json={"port": {"network_id": shared["id"]}}), "port")
        assert "binding:host_id" not in port
        neutron_error(b.post("/v2.0/ports", json={"port": {"network_id": private["id"]}}), 404)
        # Choosing an address on someone else's network is its owner's right.
        neutron_error(
            b.post(
                "/v2.0/ports",
                json={
                    "port": {
                        "network_id": shared["id"],
                        "fixed_ips": [{"ip_address": "10.22.0.50"}],
                    }
                },
            ),
            403,
        )
        # Sharing can't be taken back while another project uses the network.
        neutron_error(
            admin.put(f"/v2.0/networks/{shared['id']}", json={"network": {"shared": False}}),
            409,
            "InvalidSharedSetting",
        )
        # Provider attributes, sharing and external networks are the admin's.
        for extra in (
            {"provider:network_type": "vxlan"},
            {"shared": True},
            {"router:external": True},
        ):
            body = {"network": {"name": f"x-{unique}", **extra}}
            neutron_error(a.post("/v2.0/networks", json=body), 403, "PolicyNotAuthorized")
        b.delete(f"/v2.0/ports/{port['id']}")
    finally:
        a.delete(f"/v2.0/networks/{private['id']}")
        admin.delete(f"/v2.0/networks/{shared['id']}")


def test_agent_reports_bind_dhcp_ports_and_set_port_status(
    identity_server, network_server, admin, unique
):
    from tests.api.helpers import auth_headers, password_auth, post_token

    auth = password_auth(
        "network",
        NETWORK_SERVICE_PASSWORD,
        {"project": {"name": "service", "domain": {"id": "default"}}},
    )
    token = post_token(identity_server, auth).headers["X-Subject-Token"]
    agent = httpx.Client(base_url=network_server.url, headers=auth_headers(token), timeout=30)
    net = created(
        admin.post("/v2.0/networks", json={"network": {"name": f"ag-{unique}"}}), "network"
    )
    try:
        created(
            admin.post(
                "/v2.0/subnets",
                json={"subnet": {"network_id": net["id"], "cidr": "10.23.0.0/24", "ip_version": 4}},
            ),
            "subnet",
        )
        dhcp = admin.get(
            "/v2.0/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}
        ).json()["ports"]
        assert len(dhcp) == 1
        host = f"host-{unique}"
        guest = created(
            admin.post(
                "/v2.0/ports",
                json={"port": {"network_id": net["id"], "binding:host_id": host}},
            ),
            "port",
        )
        assert guest["binding:vif_type"] == "bridge"
        assert guest["binding:vif_details"]["bridge_name"] == "brq" + net["id"][:11]
        report = {
            "report": {
                "host": host,
                "configurations": {"tunneling_ip": "192.0.2.10", "tunnel_types": ["vxlan"]},
                "ports_up": [guest["id"]],
            }
        }
        # Only the network service (and admins) report as agents.
        stranger = project_user(identity_server, f"rep-{unique}")
        with user_client(network_server, stranger) as other:
            neutron_error(other.post("/v2.0/stratus-agent-reports", json=report), 403)
        answer = agent.post("/v2.0/stratus-agent-reports", json=report)
        assert answer.status_code == 200, answer.text
        assert answer.json()["agent"]["alive"] is True
        shown = admin.get(f"/v2.0/ports/{guest['id']}").json()["port"]
        assert shown["status"] == "ACTIVE"
        agents = {a["host"]: a for a in agent.get("/v2.0/agents").json()["agents"]}
        assert agents[host]["configurations"]["tunneling_ip"] == "192.0.2.10"
        # The DHCP port found a host: the only live agent (if it had none yet).
        dhcp_port = admin.get(f"/v2.0/ports/{dhcp[0]['id']}").json()["port"]
        assert dhcp_port["binding:host_id"]
        admin.delete(f"/v2.0/ports/{guest['id']}")
    finally:
        admin.delete(f"/v2.0/networks/{net['id']}")
        agent.close()


def test_quotas(admin, people, openstack_cli, unique):
    a = people["a"]
    project = people["alice"]["project_id"]
    quota = admin.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 1}})
    assert quota.status_code == 200 and quota.json()["quota"]["network"] == 1
    neutron_error(a.put(f"/v2.0/quotas/{project}", json={"quota": {"network": 9}}), 403)
    first = created(a.post("/v2.0/networks", json={"network": {"name": f"q-{unique}"}}), "network")
    try:
        neutron_error(
            a.post("/v2.0/networks", json={"network": {"name": f"q2-{unique}"}}), 409, "OverQuota"
        )
        details = a.get(f"/v2.0/quotas/{project}/details").json()["quota"]
        assert details["network"] == {"limit": 1, "used": 1, "reserved": 0}
        shown = openstack_cli("quota", "show", project, "--network", "-f", "json")
        # The CLI shows [{"Resource": "networks", "Limit": 1}, ...] (or a dict, by version).
        rows = (
            shown
            if isinstance(shown, list)
            else [{"Resource": k, "Limit": v} for k, v in shown.items()]
        )
        assert {"Resource": "networks", "Limit": 1} in [
            {"Resource": r["Resource"], "Limit": r["Limit"]} for r in rows
        ], shown
    finally:
        a.delete(f"/v2.0/networks/{first['id']}")
        assert admin.delete(f"/v2.0/quotas/{project}").status_code == 204
    assert a.get(f"/v2.0/quotas/{project}").json()["quota"]["network"] == 100


def test_tags_api(admin, unique):
    net = created(
        admin.post("/v2.0/networks", json={"network": {"name": f"t-{unique}"}}), "network"
    )
    try:
        base = f"/v2.0/networks/{net['id']}/tags"
        assert admin.put(base, json={"tags": ["b", "a"]}).json() == {"tags": ["a", "b"]}
        assert admin.put(f"{base}/c").status_code == 201
        assert admin.get(base).json()["tags"] == ["a", "b", "c"]
        assert admin.get(f"{base}/c").status_code == 204
        neutron_error(admin.get(f"{base}/zz"), 404)
        assert admin.delete(f"{base}/a").status_code == 204
        found = admin.get("/v2.0/networks", params={"tags-any": "c,zz"}).json()["networks"]
        assert net["id"] in {n["id"] for n in found}
        assert admin.delete(base).status_code == 204
        assert admin.get(base).json()["tags"] == []
        neutron_error(admin.put(f"/v2.0/nosuch/{net['id']}/tags", json={"tags": []}), 404)
    finally:
        admin.delete(f"/v2.0/networks/{net['id']}")


def test_a_killed_server_loses_nothing(identity_server, tmp_path):
    from tests.conftest import make_network_server

    server = make_network_server(tmp_path / "net", identity_server, register=False)
    try:
        with admin_client(identity_server, server) as client:
            net = created(
                client.post("/v2.0/networks", json={"network": {"name": "survivor"}}), "network"
            )
            created(
                client.post(
                    "/v2.0/subnets",
                    json={
                        "subnet": {"network_id": net["id"], "cidr": "10.24.0.0/24", "ip_version": 4}
                    },
                ),
                "subnet",
            )
        server.kill()
        server.start()
        with admin_client(identity_server, server) as client:
            shown = client.get(f"/v2.0/networks/{net['id']}").json()["network"]
            assert len(shown["subnets"]) == 1
            client.delete(f"/v2.0/ports?network_id={net['id']}")
            assert client.delete(f"/v2.0/networks/{net['id']}").status_code == 204
    finally:
        server.stop()
