"""``/v2.0/subnets``: address ranges on a network, with pools, DNS and routes.

A subnet's CIDR may not overlap another subnet of its network; its pools lie
inside it and hold neither the gateway nor (IPv4) the network and broadcast
addresses. With ``enable_dhcp`` the network's DHCP port takes an address on
it (see ``dhcp_ports``). A subnet with addresses in use cannot be deleted.
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network import ipam
from stratus.network.api import common, dhcp_ports, networks
from stratus.network.model import (
    AllocationPool,
    DnsNameserver,
    HostRoute,
    IPAllocation,
    Network,
    Port,
    Subnet,
)

MAX_DNS_NAMESERVERS = 5
MAX_HOST_ROUTES = 20
IPV6_MODES = ("slaac", "dhcpv6-stateful", "dhcpv6-stateless")
CREATE_ATTRIBUTES = {
    "name",
    "description",
    "network_id",
    "ip_version",
    "cidr",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "ipv6_ra_mode",
    "ipv6_address_mode",
    "project_id",
    "tenant_id",
    "subnetpool_id",
    "use_default_subnetpool",
    "service_types",
    "segment_id",
}
UPDATE_ATTRIBUTES = {
    "name",
    "description",
    "gateway_ip",
    "allocation_pools",
    "dns_nameservers",
    "host_routes",
    "enable_dhcp",
    "service_types",
}


def target(subnet: Subnet, network: Network) -> dict[str, Any]:
    return {"project_id": subnet.project_id, "network_owner": network.project_id}


def visible(req: ApiRequest) -> Any:
    if common.sees_all(req):
        return None
    project = req.context.project_id
    # Subnets of shared networks, not of external ones (Neutron's rule: a
    # project uses an external network through routers and floating IPs).
    shared = select(Network.id).where(Network.shared.is_(True))
    return or_(Subnet.project_id == project, Subnet.network_id.in_(shared))


def get_subnet(req: ApiRequest, session: Session, subnet_id: str) -> Subnet:
    query = select(Subnet).where(Subnet.id == subnet_id)
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    subnet = session.scalar(query)
    if subnet is None:
        raise common.not_found("Subnet", subnet_id)
    return subnet


def view(subnet: Subnet, tags: list[str]) -> dict[str, Any]:
    return {
        "id": subnet.id,
        "name": subnet.name,
        "network_id": subnet.network_id,
        "ip_version": subnet.ip_version,
        "cidr": subnet.cidr,
        "gateway_ip": subnet.gateway_ip,
        "allocation_pools": [{"start": p.first_ip, "end": p.last_ip} for p in subnet.pools],
        "dns_nameservers": [d.address for d in subnet.dns_nameservers],
        "host_routes": [
            {"destination": r.destination, "nexthop": r.nexthop} for r in subnet.host_routes
        ],
        "enable_dhcp": subnet.enable_dhcp,
        "ipv6_ra_mode": subnet.ipv6_ra_mode,
        "ipv6_address_mode": subnet.ipv6_address_mode,
        "subnetpool_id": None,
        "service_types": [],
        "segment_id": None,
        **common.standard(subnet, tags),
    }


def _version_check(
    address: ipaddress._BaseAddress | ipaddress._BaseNetwork, cidr: Any, what: str
) -> None:
    if address.version != cidr.version:
        raise errors.BadRequest(
            f"Invalid input for operation: {what} {address} does not match the IP version of "
            f"the subnet ({cidr.version}).",
            kind="InvalidInput",
        )


def _dns(cidr: Any, value: Any) -> list[str]:
    if not isinstance(value, list):
        raise errors.BadRequest("Invalid input for dns_nameservers: a list is required.")
    if len(value) > MAX_DNS_NAMESERVERS:
        raise errors.BadRequest(
            f"Unable to complete operation for subnet. The number of DNS nameservers exceeds "
            f"the limit {MAX_DNS_NAMESERVERS}.",
            kind="DNSNameServersExhausted",
        )
    addresses = [str(ipam.parse_ip(v, "dns_nameservers")) for v in value]
    if len(set(addresses)) != len(addresses):
        raise errors.BadRequest(
            "Invalid input for dns_nameservers: duplicate nameserver.", kind="InvalidInput"
        )
    return addresses


def _routes(cidr: Any, value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise errors.BadRequest("Invalid input for host_routes: a list is required.")
    if len(value) > MAX_HOST_ROUTES:
        raise errors.BadRequest(
            f"Unable to complete operation for subnet. The number of host routes exceeds the "
            f"limit {MAX_HOST_ROUTES}.",
            kind="HostRoutesExhausted",
        )
    routes = []
    for route in value:
        if not isinstance(route, dict) or set(route) != {"destination", "nexthop"}:
            raise errors.BadRequest(
                "Invalid input for host_routes: each route needs destination and nexthop.",
                kind="InvalidInput",
            )
        destination = ipam.parse_cidr(route["destination"], "host_routes")
        nexthop = ipam.parse_ip(route["nexthop"], "host_routes")
        _version_check(destination, cidr, "host route destination")
        _version_check(nexthop, cidr, "host route nexthop")
        routes.append((str(destination), str(nexthop)))
    if len(set(routes)) != len(routes):
        raise errors.BadRequest("Invalid input for host_routes: duplicate route.")
    return routes


def _pools(cidr: Any, value: Any) -> list[tuple[Any, Any]]:
    if not isinstance(value, list):
        raise errors.BadRequest("Invalid input for allocation_pools: a list is required.")
    pools = []
    for pool in value:
        if not isinstance(pool, dict) or set(pool) != {"start", "end"}:
            raise errors.BadRequest(
                "Invalid input for allocation_pools: each pool needs start and end.",
                kind="InvalidInput",
            )
        pools.append(
            (
                ipam.parse_ip(pool["start"], "allocation_pools"),
                ipam.parse_ip(pool["end"], "allocation_pools"),
            )
        )
    return pools


def _gateway(cidr: Any, value: Any) -> Any:
    if value is None:
        return None
    gateway = ipam.parse_ip(value, "gateway_ip")
    _version_check(gateway, cidr, "gateway_ip")
    if gateway not in cidr:
        raise errors.BadRequest(
            f"Invalid input for operation: Gateway IP {gateway} is not in subnet {cidr}.",
            kind="InvalidInput",
        )
    if (
        cidr.version == 4
        and cidr.prefixlen < 31
        and gateway
        in (
            cidr.network_address,
            cidr.broadcast_address,
        )
    ):
        raise errors.BadRequest(
            f"Gateway is not valid on subnet: {gateway} is the network or broadcast address.",
            kind="GatewayNotValidOnSubnet",
        )
    return gateway


def _check_ipv6_modes(values: dict[str, Any], version: int) -> tuple[str | None, str | None]:
    ra, address = values.get("ipv6_ra_mode"), values.get("ipv6_address_mode")
    for name, mode in (("ipv6_ra_mode", ra), ("ipv6_address_mode", address)):
        if mode is None:
            continue
        if version != 4 and mode in IPV6_MODES:
            continue
        reason = "not valid for IPv4 subnets" if version == 4 else f"not one of {IPV6_MODES}"
        raise errors.BadRequest(
            f"Invalid input for {name}: '{mode}' is {reason}.", kind="InvalidInput"
        )
    if ra and address and ra != address:
        raise errors.BadRequest(
            f"Invalid input for operation: ipv6_ra_mode set to '{ra}' with ipv6_address_mode "
            f"set to '{address}' is not valid.",
            kind="InvalidInput",
        )
    return ra, address


def _set_children(
    subnet: Subnet,
    pools: list[tuple[Any, Any]] | None,
    dns: list[str] | None,
    routes: list[tuple[str, str]] | None,
) -> None:
    if pools is not None:
        subnet.pools = [
            AllocationPool(position=i, first_ip=str(a), last_ip=str(b))
            for i, (a, b) in enumerate(sorted(pools))
        ]
    if dns is not None:
        subnet.dns_nameservers = [DnsNameserver(position=i, address=a) for i, a in enumerate(dns)]
    if routes is not None:
        subnet.host_routes = [
            HostRoute(position=i, destination=d, nexthop=n) for i, (d, n) in enumerate(routes)
        ]


def create_one(req: ApiRequest, session: Session, values: dict[str, Any]) -> Subnet:
    common.check_attributes(values, CREATE_ATTRIBUTES)
    for unsupported in ("subnetpool_id", "segment_id"):
        if values.get(unsupported) is not None:
            raise errors.BadRequest(
                f"{unsupported} is not supported by this cloud.", kind="InvalidInput"
            )
    if values.get("use_default_subnetpool"):
        raise errors.BadRequest("Subnet pools are not supported by this cloud.")
    network_id = values.get("network_id")
    if not isinstance(network_id, str):
        raise errors.BadRequest("Invalid input for network_id: a network ID is required.")
    network = networks.get_network(req, session, network_id)
    project = common.owner_of(req, values)
    if "cidr" not in values:
        raise errors.BadRequest(
            "Bad subnets request: a cidr must be specified in the absence of a subnet pool.",
            kind="BadRequest",
        )
    cidr = ipam.parse_cidr(values["cidr"])
    if str(cidr) != values["cidr"].lower() and cidr.compressed != values["cidr"]:
        raise errors.BadRequest(
            f"Invalid input for cidr. Reason: '{values['cidr']}' isn't a recognized IP subnet "
            f"cidr, '{cidr}' is recommended.",
            kind="InvalidInput",
        )
    version = values.get("ip_version", cidr.version)
    if version not in (4, 6):
        raise errors.BadRequest(
            f"Invalid input for ip_version. Reason: '{version}' is not in [4, 6].",
            kind="InvalidInput",
        )
    if version != cidr.version:
        raise errors.BadRequest(
            f"Invalid input for operation: cidr {cidr} is not an IPv{version} subnet.",
            kind="InvalidInput",
        )
    if (cidr.version == 4 and cidr.prefixlen > 30) or (cidr.version == 6 and cidr.prefixlen > 126):
        raise errors.BadRequest(
            f"Invalid input for operation: cidr {cidr} is too small for a subnet.",
            kind="InvalidInput",
        )
    target_ = {"project_id": project, "network_owner": network.project_id}
    common.enforce(req, "network:create_subnet", target_)
    if network.project_id != project or (network.project_id != req.context.project_id):
        common.enforce(req, "network:create_subnet_on_network", target_)
    ra_mode, address_mode = _check_ipv6_modes(values, version)
    gateway = _gateway(cidr, values["gateway_ip"]) if "gateway_ip" in values else cidr[1]
    pools = (
        _pools(cidr, values["allocation_pools"])
        if values.get("allocation_pools")
        else ipam.default_pools(cidr, gateway)
    )
    ipam.check_pools(cidr, pools, gateway)
    dns = _dns(cidr, values.get("dns_nameservers") or [])
    routes = _routes(cidr, values.get("host_routes") or [])
    for other in session.scalars(select(Subnet).where(Subnet.network_id == network.id)):
        if ipaddress.ip_network(other.cidr).overlaps(cidr):
            raise errors.BadRequest(
                f"Invalid input for operation: Requested subnet with cidr: {cidr} for network: "
                f"{network.id} overlaps with another subnet.",
                kind="InvalidInput",
            )
    common.check_quota(req, session, "subnet", project, Subnet)
    subnet = Subnet(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id=project,
        name=common.as_string(values.get("name"), "name"),
        description=common.as_string(values.get("description"), "description"),
        ip_version=version,
        cidr=str(cidr),
        gateway_ip=str(gateway) if gateway is not None else None,
        enable_dhcp=common.as_bool(values.get("enable_dhcp", True), "enable_dhcp"),
        ipv6_ra_mode=ra_mode,
        ipv6_address_mode=address_mode,
        revision_number=0,
    )
    _set_children(subnet, pools, dns, routes)
    session.add(subnet)
    session.flush()
    dhcp_ports.sync(session, common.service(req), network)
    common.touch(network)
    session.flush()
    return subnet


@endpoint
def create(req: ApiRequest) -> Response:
    return common.create(
        req, "subnet", "subnets", create_one, lambda _session, rows: [view(s, []) for s in rows]
    )


@endpoint
def index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        query = select(Subnet)
        condition = visible(req)
        if condition is not None:
            query = query.where(condition)
        for key, column in (("network_id", Subnet.network_id), ("id", Subnet.id)):
            wanted = req.query.getlist(key)
            if wanted:
                query = query.where(column.in_(wanted))
        rows = list(session.scalars(query))
        tags = common.tags_of(session, [s.id for s in rows])
        views = [view(s, tags[s.id]) for s in rows]
    return common.list_response(req, "subnets", views)


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        subnet = get_subnet(req, session, req.path_params["subnet_id"])
        result = view(subnet, common.tags_of(session, [subnet.id])[subnet.id])
    return common.show(req, "subnet", result)


def _in_use(session: Session, subnet: Subnet) -> bool:
    """Addresses that hold the subnet: all but the DHCP port's and, on SLAAC
    subnets, the ones guests derive themselves (those go with the subnet)."""
    query = (
        select(func.count())
        .select_from(IPAllocation)
        .join(Port, Port.id == IPAllocation.port_id)
        .where(IPAllocation.subnet_id == subnet.id, Port.device_owner != dhcp_ports.OWNER)
    )
    if ipam.is_auto_address(subnet):
        query = query.where(Port.device_owner.like("network:router%"))
    return bool(session.scalar(query))


@endpoint
def update(req: ApiRequest) -> Response:
    values = common.body(req, "subnet")
    immutable = sorted(
        set(values) & {"cidr", "ip_version", "network_id", "project_id", "tenant_id"}
    )
    if immutable:
        raise errors.BadRequest(
            f"Cannot update read-only attribute {immutable[0]}", kind="HTTPBadRequest"
        )
    common.check_attributes(values, UPDATE_ATTRIBUTES)
    with common.service(req).db.session() as session:
        subnet = get_subnet(req, session, req.path_params["subnet_id"])
        network = session.get(Network, subnet.network_id)
        assert network is not None
        common.enforce(req, "network:update_subnet", target(subnet, network))
        cidr = ipaddress.ip_network(subnet.cidr)
        if "name" in values:
            subnet.name = common.as_string(values["name"], "name")
        if "description" in values:
            subnet.description = common.as_string(values["description"], "description")
        gateway = ipaddress.ip_address(subnet.gateway_ip) if subnet.gateway_ip else None
        if "gateway_ip" in values:
            gateway = _gateway(cidr, values["gateway_ip"])
        pools = _pools(cidr, values["allocation_pools"]) if "allocation_pools" in values else None
        ipam.check_pools(cidr, pools if pools is not None else ipam.pools_of(subnet), gateway)
        subnet.gateway_ip = str(gateway) if gateway is not None else None
        dns = _dns(cidr, values["dns_nameservers"]) if "dns_nameservers" in values else None
        routes = _routes(cidr, values["host_routes"]) if "host_routes" in values else None
        _set_children(subnet, pools, dns, routes)
        if "enable_dhcp" in values:
            subnet.enable_dhcp = common.as_bool(values["enable_dhcp"], "enable_dhcp")
        common.touch(subnet)
        session.flush()
        dhcp_ports.sync(session, common.service(req), network)
        session.refresh(subnet)
        result = view(subnet, common.tags_of(session, [subnet.id])[subnet.id])
    return ok({"subnet": result})


@endpoint
def remove(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        subnet = get_subnet(req, session, req.path_params["subnet_id"])
        network = session.get(Network, subnet.network_id)
        assert network is not None
        common.enforce(req, "network:delete_subnet", target(subnet, network))
        if _in_use(session, subnet):
            raise errors.Conflict(
                f"Unable to complete operation on subnet {subnet.id}: One or more ports have an "
                "IP allocation from this subnet.",
                kind="SubnetInUse",
            )
        subnet.enable_dhcp = False
        session.flush()
        dhcp_ports.sync(session, common.service(req), network)
        session.execute(IPAllocation.__table__.delete().where(IPAllocation.subnet_id == subnet.id))
        common.drop_tags(session, subnet.id)
        session.delete(subnet)
        common.touch(network)
    return no_content()


ROUTES = [
    Route("/v2.0/subnets", index, methods=["GET"]),
    Route("/v2.0/subnets", create, methods=["POST"]),
    Route("/v2.0/subnets/{subnet_id}", show, methods=["GET"]),
    Route("/v2.0/subnets/{subnet_id}", update, methods=["PUT"]),
    Route("/v2.0/subnets/{subnet_id}", remove, methods=["DELETE"]),
]
