"""The agent against the real network API: its documents in, its report back.

A network, subnet and guest port are made through the API (with the default
security group, port security on); the agent's own client reads every
collection from the API and the agent converges a simulated host from those
documents (the host has its own network namespace, so the pass runs from the
documents the client fetched, ``--snapshot``); a guest on the host gets its
address from the network's dnsmasq and reaches the DHCP port; the report
goes back through the client and the API shows the ports ACTIVE. Deleting
them in the API and passing again leaves nothing on the host.
"""

from __future__ import annotations

import json
import time

import pytest

from stratus.common.auth import ServiceCredentials
from stratus.network.agent.client import NetworkClient
from stratus.network.agent.reconcile import Report
from stratus.network.agent.state import HostConfig
from tests.agent.conftest import SimLab
from tests.api.network_helpers import admin_client, created
from tests.conftest import NETWORK_SERVICE_PASSWORD


@pytest.fixture
def agent_client(identity_server, network_server):
    client = NetworkClient(
        ServiceCredentials(
            auth_url=identity_server.url, username="network", password=NETWORK_SERVICE_PASSWORD
        ),
        api_url=network_server.url,
    )
    try:
        yield client
    finally:
        client.close()


def test_agent_converges_a_host_from_the_api_and_reports_back(
    identity_server, network_server, agent_client, sim_lab: SimLab, unique
):
    underlay = sim_lab.underlay()
    name = f"api-{unique}"
    host = sim_lab.host(name, underlay=underlay, local_ip="192.0.2.71")
    config = HostConfig(host=name, local_ip="192.0.2.71")
    # The host's agent says it is alive, as it does after every pass.
    assert agent_client.report(config, Report(host=name))

    with admin_client(identity_server, network_server) as api:
        net = created(api.post("/v2.0/networks", json={"network": {"name": name}}), "network")
        try:
            created(
                api.post(
                    "/v2.0/subnets",
                    json={
                        "subnet": {
                            "network_id": net["id"],
                            "cidr": "10.77.0.0/24",
                            "ip_version": 4,
                            "dns_nameservers": ["192.0.2.53"],
                        }
                    },
                ),
                "subnet",
            )
            dhcp = api.get(
                "/v2.0/ports", params={"network_id": net["id"], "device_owner": "network:dhcp"}
            ).json()["ports"][0]
            # Other tests' agents may be alive too: put the DHCP server here.
            moved = api.put(f"/v2.0/ports/{dhcp['id']}", json={"port": {"binding:host_id": name}})
            assert moved.status_code == 200, moved.text
            guest_port = created(
                api.post(
                    "/v2.0/ports",
                    json={"port": {"network_id": net["id"], "binding:host_id": name}},
                ),
                "port",
            )
            assert guest_port["security_groups"]  # the project's default group

            docs = agent_client.documents()
            guest = host.guest(guest_port["id"], guest_port["mac_address"])
            result = host.agent(docs)
            report = json.loads(result.stdout)
            assert set(report["ports_up"]) == {dhcp["id"], guest_port["id"]}, report

            offer = guest.dhcp()
            assert offer["ip"] == guest_port["fixed_ips"][0]["ip_address"]
            assert offer["routers"] == "10.77.0.1"
            assert offer["dns"] == "192.0.2.53"
            guest.ping(dhcp["fixed_ips"][0]["ip_address"])

            done = Report(
                host=name,
                ports_up=set(report["ports_up"]),
                ports_down=set(report["ports_down"]),
            )
            assert agent_client.report(config, done)
            for port_id in (dhcp["id"], guest_port["id"]):
                shown = api.get(f"/v2.0/ports/{port_id}").json()["port"]
                assert shown["status"] == "ACTIVE", shown
            agents = api.get("/v2.0/agents", params={"host": name}).json()["agents"]
            assert agents and agents[0]["alive"]
            assert agents[0]["configurations"]["tunneling_ip"] == "192.0.2.71"

            # Gone from the API, gone from the host.
            assert api.delete(f"/v2.0/ports/{guest_port['id']}").status_code == 204
            assert api.delete(f"/v2.0/networks/{net['id']}").status_code == 204
            host.agent(agent_client.documents())
            deadline = time.monotonic() + 5
            bridge, namespace = f"brq{net['id'][:11]}", f"qdhcp-{net['id']}"
            while time.monotonic() < deadline and namespace in host.namespaces():
                time.sleep(0.2)
            assert bridge not in host.link_names()
            assert namespace not in host.namespaces()
        finally:
            for port in api.get("/v2.0/ports", params={"network_id": net["id"]}).json()["ports"]:
                api.delete(f"/v2.0/ports/{port['id']}")
            api.delete(f"/v2.0/networks/{net['id']}")
