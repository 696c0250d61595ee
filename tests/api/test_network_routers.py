"""Routers and floating IPs through the real ``openstack`` CLI and openstacksdk.

The network service is the session's ``network_server``. One external flat
network (physnet1 carries one flat network in the whole server) is made,
or found, once for the module and shared by the tests; every other resource
is the test's own. Requests that must fail are checked for their status and
for leaving nothing behind (routers' and floating IPs' ports especially).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import openstack.exceptions as sdk_exc
import pytest

MEMBER_PASSWORD = "pw-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def external(network_conn: Any, openstack_cli: Any) -> dict[str, Any]:
    """The external network and its IPv4 subnet (made once; reused if there already)."""
    net = network_conn.network
    found = [
        n
        for n in net.networks()
        if n.provider_network_type == "flat" and n.provider_physical_network == "physnet1"
    ]
    if found:
        network = found[0]
        if not network.is_router_external:
            network = net.update_network(network, is_router_external=True)
        network_id = network.id
    else:
        network_id = openstack_cli(
            "network",
            "create",
            "ext-routers",
            "--external",
            "--provider-network-type",
            "flat",
            "--provider-physical-network",
            "physnet1",
            "-f",
            "json",
        )["id"]
    subnets = [s for s in net.subnets(network_id=network_id) if s.ip_version == 4]
    if subnets:
        subnet_id = subnets[0].id
    else:
        subnet_id = openstack_cli(
            "subnet",
            "create",
            "ext-routers-v4",
            "--network",
            network_id,
            "--subnet-range",
            "203.0.113.0/24",
            "--no-dhcp",
            "-f",
            "json",
        )["id"]
    return {"network_id": network_id, "subnet_id": subnet_id}


@pytest.fixture
def make_subnet(network_conn: Any, unique: str) -> Iterator[Callable[..., Any]]:
    """``make_subnet(cidr, gateway="auto")``: a new network with one subnet, removed after."""
    net = network_conn.network
    made: list[Any] = []

    def make(cidr: str, gateway: str | None = "auto", project_id: str | None = None) -> Any:
        extra = {"project_id": project_id} if project_id else {}
        network = net.create_network(name=f"rt-{unique}-{len(made)}", **extra)
        made.append(network)
        args: dict[str, Any] = {"network_id": network.id, "ip_version": 4, "cidr": cidr}
        if gateway != "auto":
            args["gateway_ip"] = gateway
        return net.create_subnet(name=f"rt-{unique}-{len(made)}", **args, **extra)

    yield make
    for network in made:
        for port in net.ports(network_id=network.id):
            if port.device_owner in ("", "compute:nova"):
                net.delete_port(port)
        try:
            for subnet in net.subnets(network_id=network.id):
                net.delete_subnet(subnet)
            net.delete_network(network)
        except sdk_exc.SDKException:
            pass  # left to the session server's end when a test failed midway


def router_ports(conn: Any, router_id: str) -> list[Any]:
    return list(conn.network.ports(device_id=router_id))


def fip_ports(conn: Any) -> set[str]:
    return {p.id for p in conn.network.ports(device_owner="network:floatingip")}


def status_of(call: Callable[[], Any], kind: str | None = None) -> int:
    """The status of the error ``call`` must raise (and its Neutron ``type``: ``kind``)."""
    with pytest.raises(sdk_exc.HttpException) as info:
        call()
    if kind is not None:
        assert info.value.response is not None
        assert info.value.response.json()["NeutronError"]["type"] == kind
    return int(info.value.status_code)


# --- routers -------------------------------------------------------------------------------


def test_router_lifecycle_with_cli(
    openstack_cli: Any, network_conn: Any, external: dict[str, Any], make_subnet: Any, unique: str
) -> None:
    subnet = make_subnet("10.71.0.0/24")
    router = openstack_cli("router", "create", f"r-{unique}", "--description", "d", "-f", "json")
    rid = router["id"]
    assert router["status"] == "ACTIVE"
    assert router["admin_state_up"] in (True, "UP")
    shown = network_conn.network.get_router(rid)
    assert shown.external_gateway_info is None
    assert shown.routes == []
    assert shown.is_distributed is False and shown.is_ha is False
    assert shown.description == "d"

    openstack_cli("router", "set", rid, "--external-gateway", external["network_id"])
    gateway = network_conn.network.get_router(rid).external_gateway_info
    assert gateway["network_id"] == external["network_id"]
    assert gateway["enable_snat"] is True
    (fixed,) = gateway["external_fixed_ips"]
    assert fixed["subnet_id"] == external["subnet_id"]
    (gw_port,) = router_ports(network_conn, rid)
    assert gw_port.device_owner == "network:router_gateway"
    assert gw_port.project_id == ""
    assert gw_port.is_port_security_enabled is False
    assert gw_port.security_group_ids == []
    assert gw_port.fixed_ips == [fixed]

    openstack_cli("router", "add", "subnet", rid, subnet.id)
    ports = {p.device_owner: p for p in router_ports(network_conn, rid)}
    interface = ports["network:router_interface"]
    assert interface.fixed_ips == [{"subnet_id": subnet.id, "ip_address": "10.71.0.1"}]
    # Both ports are bound where the router was placed (no agent here: unbound).
    assert interface.binding_host_id == gw_port.binding_host_id
    listed = openstack_cli("router", "list", "-f", "json")
    assert rid in {r["ID"] for r in listed}

    openstack_cli("router", "set", rid, "--route", "destination=192.168.77.0/24,gateway=10.71.0.20")
    assert network_conn.network.get_router(rid).routes == [
        {"destination": "192.168.77.0/24", "nexthop": "10.71.0.20"}
    ]
    bad = openstack_cli(
        "router",
        "set",
        rid,
        "--route",
        "destination=192.168.78.0/24,gateway=172.31.9.9",
        check=False,
    )
    assert bad.returncode != 0
    assert "InvalidRoutes" in bad.stderr or "not connected" in bad.stderr
    # The route's interface cannot go while the route needs it.
    assert (
        status_of(lambda: network_conn.network.remove_interface_from_router(rid, subnet=subnet.id))
        == 409
    )
    openstack_cli("router", "set", rid, "--no-route")
    assert network_conn.network.get_router(rid).routes == []
    # extraroute-atomic: add and remove single routes.
    openstack_cli(
        "router", "add", "route", rid, "--route", "destination=192.168.79.0/24,gateway=10.71.0.21"
    )
    assert network_conn.network.get_router(rid).routes == [
        {"destination": "192.168.79.0/24", "nexthop": "10.71.0.21"}
    ]
    openstack_cli(
        "router",
        "remove",
        "route",
        rid,
        "--route",
        "destination=192.168.79.0/24,gateway=10.71.0.21",
    )
    assert network_conn.network.get_router(rid).routes == []

    openstack_cli("router", "remove", "subnet", rid, subnet.id)
    assert [p.device_owner for p in router_ports(network_conn, rid)] == ["network:router_gateway"]
    openstack_cli("router", "unset", rid, "--external-gateway")
    assert network_conn.network.get_router(rid).external_gateway_info is None
    assert router_ports(network_conn, rid) == []
    openstack_cli("router", "delete", rid)
    with pytest.raises(sdk_exc.NotFoundException):
        network_conn.network.get_router(rid)


def test_router_create_with_gateway_and_port_interface(
    network_conn: Any, external: dict[str, Any], make_subnet: Any, unique: str
) -> None:
    net = network_conn.network
    subnet = make_subnet("10.72.0.0/24")
    router = net.create_router(
        name=f"r-{unique}", external_gateway_info={"network_id": external["network_id"]}
    )
    assert router.external_gateway_info["network_id"] == external["network_id"]
    port = net.create_port(network_id=subnet.network_id, fixed_ips=[{"subnet_id": subnet.id}])
    info = net.add_interface_to_router(router, port=port.id)
    assert info["port_id"] == port.id and info["subnet_id"] == subnet.id
    assert info["subnet_ids"] == [subnet.id] and info["network_id"] == subnet.network_id
    assert net.get_port(port.id).device_owner == "network:router_interface"
    # A port with a device is someone's already.
    other = make_subnet("10.73.0.0/24")
    busy = net.create_port(network_id=other.network_id, device_id="some-server")
    assert status_of(lambda: net.add_interface_to_router(router, port=busy.id), "PortInUse") == 409
    assert net.get_port(busy.id).device_owner == ""
    # Removal by port deletes the port; unknown interfaces are 404.
    net.remove_interface_from_router(router, port=port.id)
    with pytest.raises(sdk_exc.NotFoundException):
        net.get_port(port.id)
    assert (
        status_of(
            lambda: net.remove_interface_from_router(router, port=busy.id),
            "RouterInterfaceNotFound",
        )
        == 404
    )
    assert (
        status_of(
            lambda: net.remove_interface_from_router(router, subnet=other.id),
            "RouterInterfaceNotFoundForSubnet",
        )
        == 404
    )
    net.delete_router(router)
    assert router_ports(network_conn, router.id) == []


def test_router_bad_input_leaves_nothing(
    network_conn: Any, external: dict[str, Any], make_subnet: Any, unique: str
) -> None:
    net = network_conn.network
    inner = make_subnet("10.74.0.0/24")
    router = net.create_router(name=f"r-{unique}")
    # A gateway on a network that is not external.
    code = status_of(
        lambda: net.update_router(router, external_gateway_info={"network_id": inner.network_id})
    )
    assert code == 400
    assert net.get_router(router.id).external_gateway_info is None
    assert router_ports(network_conn, router.id) == []
    code = status_of(
        lambda: net.create_router(
            name=f"r2-{unique}", external_gateway_info={"network_id": inner.network_id}
        )
    )
    assert code == 400
    assert not list(net.routers(name=f"r2-{unique}"))
    # A subnet without a gateway.
    no_gateway = make_subnet("10.75.0.0/24", gateway=None)
    assert status_of(lambda: net.add_interface_to_router(router, subnet=no_gateway.id)) == 400
    # The subnet's gateway address taken by another port.
    taken = make_subnet("10.76.0.0/24")
    squatter = net.create_port(
        network_id=taken.network_id, fixed_ips=[{"subnet_id": taken.id, "ip_address": "10.76.0.1"}]
    )
    assert (
        status_of(
            lambda: net.add_interface_to_router(router, subnet=taken.id),
            "IpAddressAlreadyAllocated",
        )
        == 409
    )
    net.delete_port(squatter)
    # The external network's subnet is no interface.
    code = status_of(lambda: net.add_interface_to_router(router, subnet=external["subnet_id"]))
    assert code == 400
    assert router_ports(network_conn, router.id) == []
    # Overlapping subnets on one router; and the same subnet twice.
    net.add_interface_to_router(router, subnet=inner.id)
    overlapping = make_subnet("10.74.0.0/25")
    assert status_of(lambda: net.add_interface_to_router(router, subnet=overlapping.id)) == 400
    assert status_of(lambda: net.add_interface_to_router(router, subnet=inner.id)) == 400
    assert len(router_ports(network_conn, router.id)) == 1
    # Interface ports are the router's, not the port API's.
    (interface,) = router_ports(network_conn, router.id)
    assert status_of(lambda: net.delete_port(interface, ignore_missing=False)) == 409
    # A router in use is not deleted.
    assert status_of(lambda: net.delete_router(router, ignore_missing=False), "RouterInUse") == 409
    assert net.get_router(router.id).id == router.id
    net.remove_interface_from_router(router, subnet=inner.id)
    net.delete_router(router)
    assert router_ports(network_conn, router.id) == []


def test_enable_snat_false_by_admin(network_conn: Any, external: dict[str, Any]) -> None:
    net = network_conn.network
    router = net.create_router(
        external_gateway_info={"network_id": external["network_id"], "enable_snat": False}
    )
    assert router.external_gateway_info["enable_snat"] is False
    router = net.update_router(
        router, external_gateway_info={"network_id": external["network_id"], "enable_snat": True}
    )
    assert router.external_gateway_info["enable_snat"] is True
    assert len(router_ports(network_conn, router.id)) == 1
    net.delete_router(router)
    assert router_ports(network_conn, router.id) == []


# --- floating IPs ---------------------------------------------------------------------------


@pytest.fixture
def routed(network_conn: Any, external: dict[str, Any], make_subnet: Any, unique: str) -> Any:
    """A subnet behind a router with a gateway on the external network, and a port on it."""
    net = network_conn.network
    subnet = make_subnet("10.81.0.0/24")
    router = net.create_router(
        name=f"r-{unique}", external_gateway_info={"network_id": external["network_id"]}
    )
    net.add_interface_to_router(router, subnet=subnet.id)
    port = net.create_port(network_id=subnet.network_id, name=f"vm-{unique}")
    yield {"subnet": subnet, "router": router, "port": port}
    for fip in net.ips(router_id=router.id):
        net.delete_ip(fip)
    for interface in net.ports(device_id=router.id, device_owner="network:router_interface"):
        net.remove_interface_from_router(router, port=interface.id)
    net.delete_router(router)


def test_floating_ip_lifecycle_with_cli(
    openstack_cli: Any, network_conn: Any, external: dict[str, Any], routed: Any
) -> None:
    before = fip_ports(network_conn)
    fip = openstack_cli("floating", "ip", "create", external["network_id"], "-f", "json")
    assert fip["status"] == "DOWN"
    assert fip["port_id"] is None and fip["router_id"] is None
    (new_port,) = fip_ports(network_conn) - before
    assert network_conn.network.get_port(new_port).device_id == fip["id"]

    port = routed["port"]
    openstack_cli("floating", "ip", "set", "--port", port.id, fip["id"])
    shown = network_conn.network.get_ip(fip["id"])
    assert shown.port_id == port.id
    assert shown.fixed_ip_address == port.fixed_ips[0]["ip_address"]
    assert shown.router_id == routed["router"].id
    assert shown.status == "ACTIVE"
    assert shown.port_details["device_owner"] == port.device_owner
    listed = openstack_cli("floating", "ip", "list", "--port", port.id, "-f", "json")
    assert [f["ID"] for f in listed] == [fip["id"]]

    openstack_cli("floating", "ip", "unset", "--port", fip["id"])
    shown = network_conn.network.get_ip(fip["id"])
    assert shown.port_id is None and shown.router_id is None and shown.status == "DOWN"
    assert shown.port_details is None

    openstack_cli("floating", "ip", "delete", fip["id"])
    with pytest.raises(sdk_exc.NotFoundException):
        network_conn.network.get_ip(fip["id"])
    assert fip_ports(network_conn) == before


def test_floating_ip_conflicts(
    network_conn: Any, external: dict[str, Any], routed: Any, make_subnet: Any
) -> None:
    net = network_conn.network
    port, router, subnet = routed["port"], routed["router"], routed["subnet"]
    before = fip_ports(network_conn)
    fip = net.create_ip(floating_network_id=external["network_id"], port_id=port.id)
    assert fip.port_id == port.id and fip.router_id == router.id

    # A second floating IP for the same fixed address: refused, and nothing left.
    fips_before = {f.id for f in net.ips()}
    code = status_of(
        lambda: net.create_ip(floating_network_id=external["network_id"], port_id=port.id)
    )
    assert code == 409
    assert {f.id for f in net.ips()} == fips_before
    spare = net.create_ip(floating_network_id=external["network_id"])
    assert (
        status_of(lambda: net.update_ip(spare, port_id=port.id), "FloatingIPPortAlreadyAssociated")
        == 409
    )
    assert net.get_ip(spare.id).port_id is None

    # A port no router connects to the external network.
    lonely = make_subnet("10.82.0.0/24")
    stranger = net.create_port(network_id=lonely.network_id)
    assert (
        status_of(
            lambda: net.update_ip(spare, port_id=stranger.id),
            "ExternalGatewayForFloatingIPNotFound",
        )
        == 404
    )
    code = status_of(
        lambda: net.create_ip(floating_network_id=external["network_id"], port_id=stranger.id)
    )
    assert code == 404
    assert {f.id for f in net.ips()} == fips_before | {spare.id}

    # A floating IP on a network that is not external.
    assert status_of(lambda: net.create_ip(floating_network_id=subnet.network_id)) == 400

    # The interface and the gateway the floating IP needs stay.
    code = status_of(
        lambda: net.remove_interface_from_router(router, subnet=subnet.id),
        "RouterInterfaceInUseByFloatingIP",
    )
    assert code == 409
    assert (
        status_of(
            lambda: net.update_router(router, external_gateway_info={}),
            "RouterExternalGatewayInUseByFloatingIp",
        )
        == 409
    )
    assert len(router_ports(network_conn, router.id)) == 2
    assert net.get_router(router.id).external_gateway_info is not None

    # Floating IP ports belong to their floating IP.
    (fip_port,) = [
        p for p in fip_ports(network_conn) - before if net.get_port(p).device_id == fip.id
    ]
    assert status_of(lambda: net.delete_port(fip_port, ignore_missing=False)) == 409

    # Deleting the fixed port drops the association.
    net.delete_port(port)
    assert net.get_ip(fip.id).port_id is None
    net.delete_ip(fip)
    net.delete_ip(spare)
    assert fip_ports(network_conn) == before
    net.remove_interface_from_router(router, subnet=subnet.id)
    net.update_router(router, external_gateway_info={})
    assert router_ports(network_conn, router.id) == []


# --- other projects -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def member(openstack_cli: Any, identity_server: Any, network_server: Any) -> dict[str, Any]:
    """A project with a member user, made with the CLI as the admin; its token too."""
    name = "rt-member-" + uuid.uuid4().hex[:8]
    project = openstack_cli("project", "create", name, "-f", "json")
    openstack_cli(
        "user", "create", name, "--password", MEMBER_PASSWORD, "--project", name, "-f", "json"
    )
    openstack_cli("role", "add", "--project", name, "--user", name, "member")
    response = httpx.post(
        f"{identity_server.auth_url}/auth/tokens",
        json={
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": name,
                            "domain": {"id": "default"},
                            "password": MEMBER_PASSWORD,
                        }
                    },
                },
                "scope": {"project": {"id": project["id"]}},
            }
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return {
        "name": name,
        "project_id": project["id"],
        "headers": {"X-Auth-Token": response.headers["X-Subject-Token"]},
        "url": network_server.url,
    }


def test_other_projects_routers_are_hidden(
    openstack_cli: Any, network_conn: Any, member: dict[str, Any], unique: str
) -> None:
    router = network_conn.network.create_router(name=f"admin-r-{unique}")
    try:
        url = f"{member['url']}/v2.0/routers"
        response = httpx.get(f"{url}/{router.id}", headers=member["headers"], timeout=30)
        assert response.status_code == 404
        assert response.json()["NeutronError"]["type"] == "RouterNotFound"
        listed = httpx.get(url, headers=member["headers"], timeout=30).json()["routers"]
        assert router.id not in {r["id"] for r in listed}
        shown = openstack_cli(
            "router",
            "show",
            router.id,
            user=member["name"],
            password=MEMBER_PASSWORD,
            project=member["name"],
            check=False,
        )
        assert shown.returncode != 0
        response = httpx.put(
            f"{url}/{router.id}",
            json={"router": {"name": "mine"}},
            headers=member["headers"],
            timeout=30,
        )
        assert response.status_code == 404
    finally:
        network_conn.network.delete_router(router)


def test_member_routers_and_snat(
    openstack_cli: Any, network_conn: Any, member: dict[str, Any], external: dict[str, Any]
) -> None:
    as_member = {"user": member["name"], "password": MEMBER_PASSWORD, "project": member["name"]}
    router = openstack_cli("router", "create", "mine", "-f", "json", **as_member)
    assert router["project_id"] == member["project_id"]
    url = f"{member['url']}/v2.0/routers/{router['id']}"
    gateway = {"network_id": external["network_id"], "enable_snat": False}
    response = httpx.put(
        url,
        json={"router": {"external_gateway_info": gateway}},
        headers=member["headers"],
        timeout=30,
    )
    assert response.status_code == 403
    assert router_ports(network_conn, router["id"]) == []
    refused = openstack_cli(
        "router",
        "set",
        router["id"],
        "--external-gateway",
        external["network_id"],
        "--disable-snat",
        check=False,
        **as_member,
    )
    assert refused.returncode != 0
    # With SNAT on (the default), the member may set the gateway.
    openstack_cli(
        "router", "set", router["id"], "--external-gateway", external["network_id"], **as_member
    )
    shown = httpx.get(url, headers=member["headers"], timeout=30).json()["router"]
    assert shown["external_gateway_info"]["enable_snat"] is True
    # A member's floating IPs: any free address, not one it picks.
    fips_url = f"{member['url']}/v2.0/floatingips"
    body = {"floatingip": {"floating_network_id": external["network_id"]}}
    response = httpx.post(fips_url, json=body, headers=member["headers"], timeout=30)
    assert response.status_code == 201, response.text
    mine = response.json()["floatingip"]
    assert mine["project_id"] == member["project_id"] and mine["status"] == "DOWN"
    body["floatingip"]["floating_ip_address"] = "203.0.113.250"
    response = httpx.post(fips_url, json=body, headers=member["headers"], timeout=30)
    assert response.status_code == 403
    listed = httpx.get(fips_url, headers=member["headers"], timeout=30).json()["floatingips"]
    assert [f["id"] for f in listed] == [mine["id"]]
    response = httpx.delete(f"{fips_url}/{mine['id']}", headers=member["headers"], timeout=30)
    assert response.status_code == 204
    # A member sees its floating IPs; another project's are 404 to it.
    admin_fip = network_conn.network.create_ip(floating_network_id=external["network_id"])
    try:
        response = httpx.get(
            f"{member['url']}/v2.0/floatingips/{admin_fip.id}",
            headers=member["headers"],
            timeout=30,
        )
        assert response.status_code == 404
    finally:
        network_conn.network.delete_ip(admin_fip)
    openstack_cli("router", "delete", router["id"], **as_member)
    assert router_ports(network_conn, router["id"]) == []
