"""Bad input to the network API: the right NeutronError, and nothing half-made.

Each case sends one wrong request and checks the status and error type; the
module then checks that no network, subnet or port beyond the fixtures' own
exists. Address allocation is also driven by concurrent requests on two API
workers, where no address may ever be handed out twice.
"""

from __future__ import annotations

import concurrent.futures

import httpx
import pytest

from tests.api.network_helpers import admin_client, created, neutron_error
from tests.conftest import make_network_server


@pytest.fixture(scope="module")
def server(identity_server, network_server, tmp_path_factory):
    """A private server with two workers: its tables hold only this module's rows.

    It shares identity's database, and ``network_server`` made its user.
    """
    server = make_network_server(
        tmp_path_factory.mktemp("netbad"),
        identity_server,
        register=False,
        workers=2,
        flat_networks="*",
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def api(identity_server, server):
    with admin_client(identity_server, server) as client:
        yield client


@pytest.fixture(scope="module")
def base(api):
    """A network with a small subnet (10.30.0.0/29: five addresses in its pool)."""
    net = created(api.post("/v2.0/networks", json={"network": {"name": "base"}}), "network")
    subnet = created(
        api.post(
            "/v2.0/subnets",
            json={
                "subnet": {
                    "network_id": net["id"],
                    "cidr": "10.30.0.0/29",
                    "ip_version": 4,
                    "enable_dhcp": False,
                }
            },
        ),
        "subnet",
    )
    return {"network": net, "subnet": subnet}


def _counts(api: httpx.Client) -> tuple[int, int, int]:
    return (
        len(api.get("/v2.0/networks").json()["networks"]),
        len(api.get("/v2.0/subnets").json()["subnets"]),
        len(api.get("/v2.0/ports").json()["ports"]),
    )


def _subnet(net: str, cidr: str, **extra) -> dict:
    return {"subnet": {"network_id": net, "cidr": cidr, "ip_version": 4, **extra}}


CASES = [
    # (label, method, path, body, status, type)
    ("not json", "POST", "/v2.0/networks", b"{nope", 400, None),
    ("unknown attribute", "POST", "/v2.0/networks", {"network": {"colour": "red"}}, 400, None),
    (
        "bad boolean",
        "POST",
        "/v2.0/networks",
        {"network": {"shared": "maybe"}},
        400,
        "InvalidInput",
    ),
    (
        "unknown type",
        "POST",
        "/v2.0/networks",
        {"network": {"provider:network_type": "ppp"}},
        400,
        "InvalidInput",
    ),
    (
        "vlan 4095",
        "POST",
        "/v2.0/networks",
        {
            "network": {
                "provider:network_type": "vlan",
                "provider:physical_network": "physnet1",
                "provider:segmentation_id": 4095,
            }
        },
        400,
        "InvalidInput",
    ),
    (
        "vlan unknown physnet",
        "POST",
        "/v2.0/networks",
        {"network": {"provider:network_type": "vlan", "provider:physical_network": "nowhere"}},
        400,
        "InvalidInput",
    ),
    (
        "vxlan with physnet",
        "POST",
        "/v2.0/networks",
        {"network": {"provider:network_type": "vxlan", "provider:physical_network": "physnet1"}},
        400,
        "InvalidInput",
    ),
    (
        "flat with id",
        "POST",
        "/v2.0/networks",
        {
            "network": {
                "provider:network_type": "flat",
                "provider:physical_network": "physnet9",
                "provider:segmentation_id": 5,
            }
        },
        400,
        "InvalidInput",
    ),
    ("mtu too big", "POST", "/v2.0/networks", {"network": {"mtu": 9000}}, 400, "InvalidInput"),
    (
        "invalid cidr",
        "POST",
        "/v2.0/subnets",
        _subnet("{net}", "10.300.0.0/24"),
        400,
        "InvalidInput",
    ),
    (
        "host bits set",
        "POST",
        "/v2.0/subnets",
        _subnet("{net}", "10.31.0.5/24"),
        400,
        "InvalidInput",
    ),
    (
        "overlapping cidr",
        "POST",
        "/v2.0/subnets",
        _subnet("{net}", "10.30.0.0/24"),
        400,
        "InvalidInput",
    ),
    (
        "version mismatch",
        "POST",
        "/v2.0/subnets",
        {"subnet": {"network_id": "{net}", "cidr": "fd00::/64", "ip_version": 4}},
        400,
        "InvalidInput",
    ),
    (
        "pool outside",
        "POST",
        "/v2.0/subnets",
        _subnet(
            "{net}", "10.32.0.0/24", allocation_pools=[{"start": "10.32.0.10", "end": "10.33.0.1"}]
        ),
        400,
        "OutOfBoundsAllocationPool",
    ),
    (
        "pools overlap",
        "POST",
        "/v2.0/subnets",
        _subnet(
            "{net}",
            "10.32.0.0/24",
            allocation_pools=[
                {"start": "10.32.0.10", "end": "10.32.0.20"},
                {"start": "10.32.0.15", "end": "10.32.0.30"},
            ],
        ),
        400,
        "OverlappingAllocationPools",
    ),
    (
        "gateway in pool",
        "POST",
        "/v2.0/subnets",
        _subnet(
            "{net}",
            "10.32.0.0/24",
            gateway_ip="10.32.0.15",
            allocation_pools=[{"start": "10.32.0.10", "end": "10.32.0.20"}],
        ),
        409,
        "GatewayConflictWithAllocationPools",
    ),
    (
        "gateway outside",
        "POST",
        "/v2.0/subnets",
        _subnet("{net}", "10.32.0.0/24", gateway_ip="10.99.0.1"),
        400,
        "InvalidInput",
    ),
    (
        "too many dns",
        "POST",
        "/v2.0/subnets",
        _subnet("{net}", "10.32.0.0/24", dns_nameservers=[f"192.0.2.{i}" for i in range(6)]),
        400,
        "DNSNameServersExhausted",
    ),
    (
        "bad host route",
        "POST",
        "/v2.0/subnets",
        _subnet("{net}", "10.32.0.0/24", host_routes=[{"destination": "10.0.0.0/8"}]),
        400,
        "InvalidInput",
    ),
    (
        "ipv6 mode on v4",
        "POST",
        "/v2.0/subnets",
        _subnet("{net}", "10.32.0.0/24", ipv6_ra_mode="slaac"),
        400,
        "InvalidInput",
    ),
    (
        "unknown network",
        "POST",
        "/v2.0/subnets",
        _subnet("00000000-0000-0000-0000-000000000000", "10.32.0.0/24"),
        404,
        "NetworkNotFound",
    ),
    (
        "ip outside subnet",
        "POST",
        "/v2.0/ports",
        {
            "port": {
                "network_id": "{net}",
                "fixed_ips": [{"subnet_id": "{sub}", "ip_address": "10.40.0.5"}],
            }
        },
        400,
        "InvalidIpForSubnet",
    ),
    (
        "ip on no subnet",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "10.40.0.5"}]}},
        400,
        "InvalidIpForNetwork",
    ),
    (
        "broadcast ip",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": "{net}", "fixed_ips": [{"ip_address": "10.30.0.7"}]}},
        400,
        "InvalidIpForSubnet",
    ),
    (
        "bad mac",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": "{net}", "mac_address": "zz:16:3e:00:00:01"}},
        400,
        "InvalidInput",
    ),
    (
        "multicast mac",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": "{net}", "mac_address": "01:00:5e:00:00:01"}},
        400,
        "InvalidInput",
    ),
    (
        "unknown group",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": "{net}", "security_groups": ["nosuch"]}},
        404,
        "SecurityGroupNotFound",
    ),
    (
        "pairs without security",
        "POST",
        "/v2.0/ports",
        {
            "port": {
                "network_id": "{net}",
                "port_security_enabled": False,
                "allowed_address_pairs": [{"ip_address": "10.30.0.6"}],
            }
        },
        409,
        "AddressPairAndPortSecurityRequired",
    ),
    (
        "vnic type",
        "POST",
        "/v2.0/ports",
        {"port": {"network_id": "{net}", "binding:vnic_type": "direct"}},
        400,
        "InvalidInput",
    ),
    (
        "bad protocol",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "protocol": "tcpx",
            }
        },
        400,
        "SecurityGroupRuleInvalidProtocol",
    ),
    (
        "port range order",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_min": 90,
                "port_range_max": 80,
            }
        },
        400,
        "SecurityGroupInvalidPortRange",
    ),
    (
        "port 70000",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "protocol": "udp",
                "port_range_min": 70000,
                "port_range_max": 70000,
            }
        },
        400,
        "SecurityGroupInvalidPortValue",
    ),
    (
        "ports without protocol",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "port_range_min": 22,
                "port_range_max": 22,
            }
        },
        400,
        "SecurityGroupProtocolRequiredWithPorts",
    ),
    (
        "tcp max without min",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "protocol": "tcp",
                "port_range_max": 22,
            }
        },
        400,
        "SecurityGroupInvalidPortRange",
    ),
    (
        "icmp code without type",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "protocol": "icmp",
                "port_range_max": 6,
            }
        },
        400,
        "SecurityGroupMissingIcmpType",
    ),
    (
        "bad direction",
        "POST",
        "/v2.0/security-group-rules",
        {"security_group_rule": {"security_group_id": "{sg}", "direction": "sideways"}},
        400,
        "InvalidInput",
    ),
    (
        "prefix and group",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "remote_ip_prefix": "10.0.0.0/8",
                "remote_group_id": "{sg}",
            }
        },
        400,
        "SecurityGroupRemoteGroupAndRemoteIpPrefix",
    ),
    (
        "prefix version",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "ethertype": "IPv6",
                "remote_ip_prefix": "10.0.0.0/8",
            }
        },
        400,
        "SecurityGroupRuleParameterConflict",
    ),
    (
        "icmp type 300",
        "POST",
        "/v2.0/security-group-rules",
        {
            "security_group_rule": {
                "security_group_id": "{sg}",
                "direction": "ingress",
                "protocol": "icmp",
                "port_range_min": 300,
            }
        },
        400,
        "SecurityGroupInvalidIcmpValue",
    ),
    (
        "second default group",
        "POST",
        "/v2.0/security-groups",
        {"security_group": {"name": "default"}},
        409,
        "SecurityGroupDefaultAlreadyExists",
    ),
    (
        "provider update",
        "PUT",
        "/v2.0/networks/{net}",
        {"network": {"provider:segmentation_id": 1999}},
        400,
        "InvalidInput",
    ),
    (
        "subnet cidr update",
        "PUT",
        "/v2.0/subnets/{sub}",
        {"subnet": {"cidr": "10.30.0.0/28"}},
        400,
        None,
    ),
    ("unknown port", "GET", "/v2.0/ports/nosuch", None, 404, "PortNotFound"),
    ("bad limit", "GET", "/v2.0/ports?limit=many", None, 400, None),
    ("unknown marker", "GET", "/v2.0/ports?marker=nosuch", None, 404, "MarkerNotFound"),
    ("bad sort dir", "GET", "/v2.0/ports?sort_key=name&sort_dir=up", None, 400, None),
]


def _fill(value, names):
    if isinstance(value, str):
        for key, replacement in names.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [_fill(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, names) for k, v in value.items()}
    return value


@pytest.mark.parametrize(
    ("label", "method", "path", "body", "status", "kind"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input(api, base, label, method, path, body, status, kind):
    groups = api.get("/v2.0/security-groups").json()["security_groups"]
    names = {
        "net": base["network"]["id"],
        "sub": base["subnet"]["id"],
        "sg": next(g["id"] for g in groups if g["name"] == "default"),
    }
    before = _counts(api)
    rules_before = len(api.get("/v2.0/security-group-rules").json()["security_group_rules"])
    path = _fill(path, names)
    if isinstance(body, bytes):
        response = api.request(
            method, path, content=body, headers={"Content-Type": "application/json"}
        )
    else:
        response = api.request(method, path, json=_fill(body, names))
    neutron_error(response, status, kind)
    assert _counts(api) == before
    rules = len(api.get("/v2.0/security-group-rules").json()["security_group_rules"])
    assert rules == rules_before


def test_segmentation_ids_are_never_used_twice(api):
    made = []
    try:
        vlan = {"provider:network_type": "vlan", "provider:physical_network": "physnet1"}
        for _ in range(2):
            made.append(created(api.post("/v2.0/networks", json={"network": vlan}), "network"))
        ids = {n["provider:segmentation_id"] for n in made}
        assert len(ids) == 2 and all(100 <= i <= 199 for i in ids)
        taken = {**vlan, "provider:segmentation_id": made[0]["provider:segmentation_id"]}
        neutron_error(api.post("/v2.0/networks", json={"network": taken}), 409, "VlanIdInUse")
        flat = {"provider:network_type": "flat", "provider:physical_network": "physnet7"}
        made.append(created(api.post("/v2.0/networks", json={"network": flat}), "network"))
        neutron_error(api.post("/v2.0/networks", json={"network": flat}), 409, "FlatNetworkInUse")
        # A freed ID is used again.
        freed = made.pop(0)
        assert api.delete(f"/v2.0/networks/{freed['id']}").status_code == 204
        again = {**vlan, "provider:segmentation_id": freed["provider:segmentation_id"]}
        made.append(created(api.post("/v2.0/networks", json={"network": again}), "network"))
    finally:
        for net in made:
            api.delete(f"/v2.0/networks/{net['id']}")


def test_exhausted_pool_and_deletes_in_use(api, base):
    net, subnet = base["network"]["id"], base["subnet"]["id"]
    ports = []
    try:
        # 10.30.0.0/29: .1 is the gateway, .2 to .6 the pool.
        for _ in range(5):
            ports.append(
                created(api.post("/v2.0/ports", json={"port": {"network_id": net}}), "port")
            )
        addresses = sorted(p["fixed_ips"][0]["ip_address"] for p in ports)
        assert addresses == [f"10.30.0.{i}" for i in range(2, 7)]
        before = _counts(api)
        neutron_error(
            api.post("/v2.0/ports", json={"port": {"network_id": net}}),
            409,
            "IpAddressGenerationFailure",
        )
        taken = {"network_id": net, "fixed_ips": [{"ip_address": "10.30.0.2"}]}
        neutron_error(
            api.post("/v2.0/ports", json={"port": taken}), 409, "IpAddressAlreadyAllocated"
        )
        assert _counts(api) == before
        neutron_error(api.delete(f"/v2.0/networks/{net}"), 409, "NetworkInUse")
        neutron_error(api.delete(f"/v2.0/subnets/{subnet}"), 409, "SubnetInUse")
        mac = {"network_id": net, "mac_address": ports[0]["mac_address"], "fixed_ips": []}
        neutron_error(api.post("/v2.0/ports", json={"port": mac}), 409, "MacAddressInUse")
    finally:
        for port in ports:
            api.delete(f"/v2.0/ports/{port['id']}")


def test_concurrent_allocation_never_hands_out_an_address_twice(api, identity_server, server):
    net = created(api.post("/v2.0/networks", json={"network": {"name": "race"}}), "network")
    created(
        api.post("/v2.0/subnets", json=_subnet(net["id"], "10.35.0.0/27", enable_dhcp=False)),
        "subnet",
    )
    # 29 addresses (.2 to .30) for 40 requests from 8 threads on two workers.
    headers = dict(api.headers)

    def create(_: int) -> httpx.Response:
        with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
            return client.post("/v2.0/ports", json={"port": {"network_id": net["id"]}})

    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(create, range(40)))
        made = [r.json()["port"] for r in answers if r.status_code == 201]
        refused = [r for r in answers if r.status_code != 201]
        for response in refused:
            neutron_error(response, 409, "IpAddressGenerationFailure")
        addresses = [p["fixed_ips"][0]["ip_address"] for p in made]
        assert len(addresses) == len(set(addresses)) == 29
        listed = api.get("/v2.0/ports", params={"network_id": net["id"]}).json()["ports"]
        assert len(listed) == 29
        macs = {p["mac_address"] for p in listed}
        assert len(macs) == 29
    finally:
        for port in api.get("/v2.0/ports", params={"network_id": net["id"]}).json()["ports"]:
            api.delete(f"/v2.0/ports/{port['id']}")
        api.delete(f"/v2.0/networks/{net['id']}")


def test_slaac_addresses_come_from_the_mac(api):
    net = created(api.post("/v2.0/networks", json={"network": {"name": "slaac"}}), "network")
    try:
        body = {"network_id": net["id"], "cidr": "fd00:40::/64", "ip_version": 6}
        slaac = created(
            api.post(
                "/v2.0/subnets",
                json={"subnet": {**body, "ipv6_address_mode": "slaac", "ipv6_ra_mode": "slaac"}},
            ),
            "subnet",
        )
        mac = "fa:16:3e:12:34:56"
        port = created(
            api.post("/v2.0/ports", json={"port": {"network_id": net["id"], "mac_address": mac}}),
            "port",
        )
        # EUI-64: the MAC with its U/L bit flipped and ff:fe in the middle.
        assert port["fixed_ips"] == [
            {"subnet_id": slaac["id"], "ip_address": "fd00:40::f816:3eff:fe12:3456"}
        ]
        chosen = {"network_id": net["id"], "fixed_ips": [{"ip_address": "fd00:40::5"}]}
        neutron_error(api.post("/v2.0/ports", json={"port": chosen}), 400, "InvalidInput")
        # Addresses guests make themselves do not hold the subnet.
        assert api.delete(f"/v2.0/subnets/{slaac['id']}").status_code == 204
        assert api.get(f"/v2.0/ports/{port['id']}").json()["port"]["fixed_ips"] == []
        api.delete(f"/v2.0/ports/{port['id']}")
    finally:
        api.delete(f"/v2.0/networks/{net['id']}")
