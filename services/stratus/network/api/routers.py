"""``/v2.0/routers``: routers, their external gateway, interfaces and extra routes.

A router is placed on a network host when it is made (``placement``); each of
its ports (``network:router_gateway`` on the external network,
``network:router_interface`` on a project subnet) is bound to that host, so
the agent there builds the router's namespace. The gateway port belongs to
no project (as in Neutron); an interface port made from a subnet takes the
subnet's gateway address. Interfaces and gateways that floating IPs or extra
routes depend on cannot be taken away, and a router with interfaces cannot
be deleted. Every request runs in one transaction: a failure leaves nothing.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network import ipam, placement
from stratus.network.api import common, networks, ports, subnets
from stratus.network.model import (
    FloatingIP,
    IPAllocation,
    Network,
    Port,
    Router,
    RouterRoute,
    Subnet,
)

INTERFACE_OWNER = "network:router_interface"
GATEWAY_OWNER = "network:router_gateway"
ROUTER_OWNERS = (INTERFACE_OWNER, GATEWAY_OWNER)
MAX_ROUTES = 30
CREATE_ATTRIBUTES = {
    "name",
    "description",
    "admin_state_up",
    "external_gateway_info",
    "routes",
    "project_id",
    "tenant_id",
    "distributed",
    "ha",
    "availability_zone_hints",
    "flavor_id",
}
UPDATE_ATTRIBUTES = {
    "name",
    "description",
    "admin_state_up",
    "external_gateway_info",
    "routes",
    "distributed",
    "ha",
}
GATEWAY_ATTRIBUTES = {"network_id", "enable_snat", "external_fixed_ips"}


def target(router: Router) -> dict[str, Any]:
    return {"project_id": router.project_id, "id": router.id}


def visible(req: ApiRequest) -> Any:
    if common.sees_all(req):
        return None
    return Router.project_id == req.context.project_id


def get_router(req: ApiRequest, session: Session, router_id: str) -> Router:
    query = select(Router).where(Router.id == router_id)
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    router = session.scalar(query)
    if router is None:
        raise common.not_found("Router", router_id)
    return router


def router_ports(
    session: Session, router: Router, owners: Iterable[str] = ROUTER_OWNERS
) -> list[Port]:
    return list(
        session.scalars(
            select(Port)
            .where(Port.device_id == router.id, Port.device_owner.in_(tuple(owners)))
            .order_by(Port.created_at, Port.id)
        )
    )


def gateway_port(session: Session, router: Router) -> Port | None:
    return session.get(Port, router.gw_port_id) if router.gw_port_id else None


def view(session: Session, router: Router, tags: list[str]) -> dict[str, Any]:
    gateway: dict[str, Any] | None = None
    port = gateway_port(session, router)
    if port is not None:
        gateway = {
            "network_id": port.network_id,
            "enable_snat": router.enable_snat,
            "external_fixed_ips": [
                {"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips
            ],
        }
    return {
        "id": router.id,
        "name": router.name,
        "admin_state_up": router.admin_state_up,
        "status": router.status,
        "external_gateway_info": gateway,
        "routes": [{"destination": r.destination, "nexthop": r.nexthop} for r in router.routes],
        "distributed": False,
        "ha": False,
        "availability_zone_hints": [],
        "availability_zones": [],
        "flavor_id": None,
        **common.standard(router, tags),
    }


def router_view(session: Session, router: Router) -> dict[str, Any]:
    return view(session, router, common.tags_of(session, [router.id])[router.id])


# --- attributes -------------------------------------------------------------------


def _apply_simple(router: Router, values: dict[str, Any]) -> None:
    if "name" in values:
        router.name = common.as_string(values["name"], "name")
    if "description" in values:
        router.description = common.as_string(values["description"], "description")
    if "admin_state_up" in values:
        router.admin_state_up = common.as_bool(values["admin_state_up"], "admin_state_up")
    for flag in ("distributed", "ha"):
        if flag in values and values[flag] is not None and common.as_bool(values[flag], flag):
            raise errors.BadRequest(
                f"Invalid input for {flag}: this cloud's routers are neither distributed nor HA.",
                kind="InvalidInput",
            )
    hints = values.get("availability_zone_hints")
    if hints is not None and (not isinstance(hints, list) or any(h != "nova" for h in hints)):
        raise errors.BadRequest(
            f"Invalid input for availability_zone_hints: {hints!r}; the only zone is nova.",
            kind="InvalidInput",
        )
    if values.get("flavor_id") is not None:
        raise errors.BadRequest("Router flavors are not supported.", kind="InvalidInput")


def _subnets_of(session: Session, ports_: Iterable[Port]) -> dict[str, Subnet]:
    ids = {a.subnet_id for p in ports_ for a in p.fixed_ips}
    if not ids:
        return {}
    return {s.id: s for s in session.scalars(select(Subnet).where(Subnet.id.in_(ids)))}


def _parse_routes(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.BadRequest(
            "Invalid input for routes: a list is required.", kind="InvalidInput"
        )
    if len(value) > MAX_ROUTES:
        raise errors.BadRequest(
            f"Unable to complete operation for routes. The number of routes exceeds the "
            f"maximum {MAX_ROUTES}.",
            kind="RoutesExhausted",
        )
    routes: list[tuple[str, str]] = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"destination", "nexthop"}:
            raise errors.BadRequest(
                "Invalid input for routes: each route takes destination and nexthop.",
                kind="InvalidInput",
            )
        destination = ipam.parse_cidr(entry["destination"], "routes")
        nexthop = ipam.parse_ip(entry["nexthop"], "routes")
        if destination.version != nexthop.version:
            raise errors.BadRequest(
                f"Invalid format for routes: {entry}, the nexthop is not of the destination's "
                "IP version.",
                kind="InvalidRoutes",
            )
        route = (str(destination), str(nexthop))
        if route in routes:
            raise errors.BadRequest(f"Duplicate route in request: {entry}.", kind="InvalidInput")
        routes.append(route)
    return routes


def _check_routes(
    routes: Iterable[tuple[str, str]], ports_: list[Port], subnets_: dict[str, Subnet]
) -> None:
    """Every nexthop in a subnet the router has a port on, and not the router itself."""
    own = {a.ip_address for p in ports_ for a in p.fixed_ips}
    cidrs = [ipaddress.ip_network(s.cidr) for s in subnets_.values()]
    for destination, nexthop in routes:
        route = {"destination": destination, "nexthop": nexthop}
        address = ipaddress.ip_address(nexthop)
        if nexthop in own:
            raise errors.BadRequest(
                f"Invalid format for routes: {route}, the nexthop is used by router.",
                kind="InvalidRoutes",
            )
        if not any(address in cidr for cidr in cidrs):
            raise errors.BadRequest(
                f"Invalid format for routes: {route}, the nexthop is not connected with router.",
                kind="InvalidRoutes",
            )


def _set_routes(session: Session, router: Router, value: Any) -> None:
    routes = _parse_routes(value)
    ports_ = router_ports(session, router)
    _check_routes(routes, ports_, _subnets_of(session, ports_))
    router.routes = [
        RouterRoute(position=i, destination=d, nexthop=n) for i, (d, n) in enumerate(routes)
    ]
    session.flush()


def _routes_still_reachable(session: Session, router: Router, without: set[str]) -> None:
    """409 when taking the subnets ``without`` away would strand an extra route."""
    ports_ = router_ports(session, router)
    remaining = [
        ipaddress.ip_network(s.cidr)
        for s in _subnets_of(session, ports_).values()
        if s.id not in without
    ]
    for route in router.routes:
        if not any(ipaddress.ip_address(route.nexthop) in cidr for cidr in remaining):
            raise errors.Conflict(
                f"Router interface for subnet(s) {', '.join(sorted(without))} on router "
                f"{router.id} cannot be deleted, as it is required by one or more routes.",
                kind="RouterInterfaceInUseByRoute",
            )


# --- the external gateway ---------------------------------------------------------


def external_network(req: ApiRequest, session: Session, network_id: Any) -> Network:
    if not isinstance(network_id, str) or not network_id:
        raise errors.BadRequest(
            "Invalid input for external_gateway_info: network_id is required.",
            kind="InvalidInput",
        )
    network = networks.get_network(req, session, network_id)
    if not network.external:
        raise errors.BadRequest(
            f"Bad router request: Network {network_id} is not a valid external network.",
            kind="BadRequest",
        )
    return network


def _fips_through(session: Session, router: Router, network_id: str) -> bool:
    found = session.scalar(
        select(FloatingIP.id).where(
            FloatingIP.router_id == router.id,
            FloatingIP.floating_network_id == network_id,
            FloatingIP.fixed_port_id.is_not(None),
        )
    )
    return found is not None


def _drop_gateway(session: Session, router: Router) -> None:
    port = gateway_port(session, router)
    if port is None:
        return
    if _fips_through(session, router, port.network_id):
        raise errors.Conflict(
            f"Gateway cannot be updated for router {router.id}, since a gateway to external "
            f"network {port.network_id} is required by one or more floating IPs.",
            kind="RouterExternalGatewayInUseByFloatingIp",
        )
    _routes_still_reachable(session, router, {a.subnet_id for a in port.fixed_ips})
    router.gw_port_id = None
    session.flush()
    ports.delete_port_row(session, port)


def _gateway_ips(
    req: ApiRequest, session: Session, network: Network, info: dict[str, Any]
) -> list[tuple[Subnet, str | None]]:
    fixed = info.get("external_fixed_ips")
    if fixed:
        if any(isinstance(f, dict) and "ip_address" in f for f in fixed):
            common.enforce(
                req,
                "network:set_port_fixed_ip_address",
                {"project_id": network.project_id, "network_owner": network.project_id},
            )
        return ports._requested_ips(req, session, network, fixed)
    wanted = ports._default_ips(session, network)
    if not wanted:
        raise errors.BadRequest(
            f"Bad router request: external network {network.id} has no subnet to give the "
            "router an address.",
            kind="BadRequest",
        )
    return wanted


def _make_gateway(
    req: ApiRequest, session: Session, router: Router, network: Network, info: dict[str, Any]
) -> None:
    wanted = _gateway_ips(req, session, network, info)
    port = Port(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id="",
        device_owner=GATEWAY_OWNER,
        device_id=router.id,
        host=router.host,
        port_security_enabled=False,
        admin_state_up=True,
        status="DOWN",
        revision_number=0,
    )
    ipam.insert_port(session, port, common.service(req).options.base_mac, mac_given=False)
    for position, (subnet, address) in enumerate(wanted):
        ipam.allocate(session, subnet, port, address, position)
    session.flush()
    session.expire(port, ["fixed_ips"])
    router.gw_port_id = port.id
    session.flush()


def set_gateway(req: ApiRequest, session: Session, router: Router, info: Any) -> None:
    """Set, change or (``None``/``{}``) clear the router's external gateway."""
    if info is None or info == {}:
        _drop_gateway(session, router)
        return
    if not isinstance(info, dict):
        raise errors.BadRequest(
            "Invalid input for external_gateway_info: an object is required.", kind="InvalidInput"
        )
    common.check_attributes(info, GATEWAY_ATTRIBUTES)
    if "external_fixed_ips" in info and not isinstance(info["external_fixed_ips"], list | None):
        raise errors.BadRequest(
            "Invalid input for external_fixed_ips: a list is required.", kind="InvalidInput"
        )
    network = external_network(req, session, info.get("network_id"))
    if "enable_snat" in info and info["enable_snat"] is not None:
        snat = common.as_bool(info["enable_snat"], "enable_snat")
        if not snat:
            common.enforce(req, "network:set_router_gateway_snat", target(router))
        router.enable_snat = snat
    else:
        router.enable_snat = True
    current = gateway_port(session, router)
    if current is not None and current.network_id == network.id:
        fixed = info.get("external_fixed_ips")
        if fixed:
            if any(isinstance(f, dict) and "ip_address" in f for f in fixed):
                common.enforce(
                    req,
                    "network:set_port_fixed_ip_address",
                    {"project_id": network.project_id, "network_owner": network.project_id},
                )
            ports._update_ips(req, session, current, network, fixed)
            _routes_still_reachable(session, router, set())
            common.touch(current)
        return
    _drop_gateway(session, router)
    _make_gateway(req, session, router, network, info)


# --- handlers -----------------------------------------------------------------------


def create_one(req: ApiRequest, session: Session, values: dict[str, Any]) -> Router:
    common.check_attributes(values, CREATE_ATTRIBUTES)
    project = common.owner_of(req, values)
    common.enforce(req, "network:create_router", {"project_id": project})
    common.check_quota(req, session, "router", project, Router)
    router = Router(
        id=str(uuid.uuid4()),
        project_id=project,
        status="ACTIVE",
        enable_snat=True,
        revision_number=0,
        host=placement.pick_host(session, common.service(req).options),
    )
    _apply_simple(router, values)
    session.add(router)
    session.flush()
    if values.get("external_gateway_info"):
        set_gateway(req, session, router, values["external_gateway_info"])
    if values.get("routes"):
        _set_routes(session, router, values["routes"])
    session.flush()
    return router


@endpoint
def create(req: ApiRequest) -> Response:
    return common.create(
        req,
        "router",
        "routers",
        create_one,
        lambda session, rows: [view(session, r, []) for r in rows],
    )


@endpoint
def index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        query = select(Router)
        condition = visible(req)
        if condition is not None:
            query = query.where(condition)
        for key, column in (("id", Router.id), ("name", Router.name)):
            wanted = req.query.getlist(key)
            if wanted:
                query = query.where(column.in_(wanted))
        rows = list(session.scalars(query))
        tags = common.tags_of(session, [r.id for r in rows])
        views = [view(session, r, tags[r.id]) for r in rows]
    return common.list_response(req, "routers", views)


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        router = get_router(req, session, req.path_params["router_id"])
        common.enforce(req, "network:get_router", target(router))
        result = router_view(session, router)
    return common.show(req, "router", result)


@endpoint
def update(req: ApiRequest) -> Response:
    values = common.body(req, "router")
    for fixed in ("project_id", "tenant_id"):
        if fixed in values:
            raise errors.BadRequest(f"Cannot update read-only attribute {fixed}")
    common.check_attributes(values, UPDATE_ATTRIBUTES)
    with common.service(req).db.session() as session:
        router = get_router(req, session, req.path_params["router_id"])
        common.enforce(req, "network:update_router", target(router))
        _apply_simple(router, values)
        if "external_gateway_info" in values:
            set_gateway(req, session, router, values["external_gateway_info"])
        if "routes" in values:
            _set_routes(session, router, values["routes"])
        common.touch(router)
        session.flush()
        session.refresh(router)
        result = router_view(session, router)
    return ok({"router": result})


@endpoint
def remove(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        router = get_router(req, session, req.path_params["router_id"])
        common.enforce(req, "network:delete_router", target(router))
        if router_ports(session, router, (INTERFACE_OWNER,)):
            raise errors.Conflict(f"Router {router.id} still has ports", kind="RouterInUse")
        _drop_gateway(session, router)
        for fip in session.scalars(select(FloatingIP).where(FloatingIP.router_id == router.id)):
            fip.router_id = None
        session.flush()
        common.drop_tags(session, router.id)
        session.delete(router)
    return no_content()


# --- interfaces ---------------------------------------------------------------------


def _interface_body(req: ApiRequest) -> dict[str, Any]:
    values = req.json()
    if not isinstance(values, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    common.check_attributes(values, {"subnet_id", "port_id"})
    for key in ("subnet_id", "port_id"):
        if key in values and not isinstance(values[key], str):
            raise errors.BadRequest(
                f"Invalid input for {key}: an ID is required.", kind="InvalidInput"
            )
    return values


def _interface_info(router: Router, port: Port, subnet_ids: list[str]) -> dict[str, Any]:
    return {
        "id": router.id,
        "tenant_id": port.project_id or router.project_id,
        "project_id": port.project_id or router.project_id,
        "port_id": port.id,
        "network_id": port.network_id,
        "subnet_id": subnet_ids[0] if subnet_ids else None,
        "subnet_ids": subnet_ids,
    }


def _overlap(first: ipam.IPNetwork, second: ipam.IPNetwork) -> bool:
    return int(first.network_address) <= int(second.broadcast_address) and int(
        second.network_address
    ) <= int(first.broadcast_address)


def _check_new_subnets(session: Session, router: Router, new: list[Subnet]) -> None:
    """No subnet twice on a router, none overlapping another, none external."""
    attached = _subnets_of(session, router_ports(session, router, (INTERFACE_OWNER,)))
    for subnet in new:
        network = session.get(Network, subnet.network_id)
        if network is not None and network.external:
            raise errors.BadRequest(
                f"Bad router request: subnet {subnet.id} is on external network "
                f"{network.id}; set it as the router's gateway instead.",
                kind="BadRequest",
            )
        if subnet.id in attached:
            raise errors.BadRequest(
                f"Bad router request: Router already has a port on subnet {subnet.id}.",
                kind="BadRequest",
            )
        cidr = ipaddress.ip_network(subnet.cidr)
        for other in attached.values():
            other_cidr = ipaddress.ip_network(other.cidr)
            if cidr.version == other_cidr.version and _overlap(cidr, other_cidr):
                raise errors.BadRequest(
                    f"Bad router request: Cidr {subnet.cidr} of subnet {subnet.id} overlaps "
                    f"with cidr {other.cidr} of subnet {other.id}.",
                    kind="BadRequest",
                )


def _add_by_port(req: ApiRequest, session: Session, router: Router, port_id: str) -> Port:
    port = ports.get_port(req, session, port_id)
    if not common.sees_all(req) and port.project_id != router.project_id:
        raise common.not_found("Port", port_id)
    if port.device_id or port.device_owner:
        raise errors.Conflict(
            f"Unable to complete operation on port {port.id} for network {port.network_id}. "
            f"Port already has an attached device {port.device_id or port.device_owner}.",
            kind="PortInUse",
        )
    if not port.fixed_ips:
        raise errors.BadRequest(
            f"Bad router request: Router port {port.id} must have at least one fixed IP.",
            kind="BadRequest",
        )
    new = list(_subnets_of(session, [port]).values())
    _check_new_subnets(session, router, new)
    port.device_id = router.id
    port.device_owner = INTERFACE_OWNER
    port.host = router.host
    common.touch(port)
    session.flush()
    return port


def _add_by_subnet(req: ApiRequest, session: Session, router: Router, subnet_id: str) -> Port:
    subnet = subnets.get_subnet(req, session, subnet_id)
    network = session.get(Network, subnet.network_id)
    assert network is not None
    _check_new_subnets(session, router, [subnet])
    if not subnet.gateway_ip:
        raise errors.BadRequest(
            f"Bad router request: Subnet {subnet.id} has no gateway IP.", kind="BadRequest"
        )
    port = Port(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id=subnet.project_id,
        device_owner=INTERFACE_OWNER,
        device_id=router.id,
        host=router.host,
        port_security_enabled=network.port_security_enabled,
        admin_state_up=True,
        status="DOWN",
        revision_number=0,
    )
    ipam.insert_port(session, port, common.service(req).options.base_mac, mac_given=False)
    ipam.allocate(session, subnet, port, subnet.gateway_ip, 0)
    session.flush()
    session.expire(port, ["fixed_ips"])
    return port


@endpoint
def add_interface(req: ApiRequest) -> Response:
    values = _interface_body(req)
    if "subnet_id" in values and "port_id" in values:
        raise errors.BadRequest(
            "Bad router request: Cannot specify both subnet-id and port-id.", kind="BadRequest"
        )
    if not values:
        raise errors.BadRequest(
            "Bad router request: Either subnet_id or port_id must be specified.",
            kind="BadRequest",
        )
    with common.service(req).db.session() as session:
        router = get_router(req, session, req.path_params["router_id"])
        common.enforce(req, "network:add_router_interface", target(router))
        if "port_id" in values:
            port = _add_by_port(req, session, router, values["port_id"])
        else:
            port = _add_by_subnet(req, session, router, values["subnet_id"])
        common.touch(router)
        session.flush()
        session.refresh(port)
        result = _interface_info(router, port, [a.subnet_id for a in port.fixed_ips])
    return ok(result)


def _fips_on_subnets(session: Session, router: Router, subnet_ids: set[str]) -> bool:
    found = session.scalar(
        select(FloatingIP.id)
        .join(
            IPAllocation,
            (IPAllocation.port_id == FloatingIP.fixed_port_id)
            & (IPAllocation.ip_address == FloatingIP.fixed_ip_address),
        )
        .where(FloatingIP.router_id == router.id, IPAllocation.subnet_id.in_(subnet_ids))
    )
    return found is not None


@endpoint
def remove_interface(req: ApiRequest) -> Response:
    values = _interface_body(req)
    if not values:
        raise errors.BadRequest(
            "Bad router request: Either subnet_id or port_id must be specified.",
            kind="BadRequest",
        )
    with common.service(req).db.session() as session:
        router = get_router(req, session, req.path_params["router_id"])
        common.enforce(req, "network:remove_router_interface", target(router))
        interfaces = router_ports(session, router, (INTERFACE_OWNER,))
        subnet_id = values.get("subnet_id")
        if "port_id" in values:
            port = next((p for p in interfaces if p.id == values["port_id"]), None)
            if port is None:
                raise errors.NotFound(
                    f"Router {router.id} does not have an interface with id {values['port_id']}",
                    kind="RouterInterfaceNotFound",
                )
            on_port = [a.subnet_id for a in port.fixed_ips]
            if subnet_id is not None and subnet_id not in on_port:
                raise errors.BadRequest(
                    f"Subnet {subnet_id} could not be found on port {port.id}.",
                    kind="SubnetMismatchForPort",
                )
            removing = set(on_port)
        else:
            assert isinstance(subnet_id, str)
            port = next(
                (p for p in interfaces if any(a.subnet_id == subnet_id for a in p.fixed_ips)),
                None,
            )
            if port is None:
                raise errors.NotFound(
                    f"Router {router.id} has no interface on subnet {subnet_id}",
                    kind="RouterInterfaceNotFoundForSubnet",
                )
            removing = {subnet_id}
        if _fips_on_subnets(session, router, removing):
            raise errors.Conflict(
                f"Router interface for subnet {', '.join(sorted(removing))} on router "
                f"{router.id} cannot be deleted, as it is required by one or more floating IPs.",
                kind="RouterInterfaceInUseByFloatingIP",
            )
        _routes_still_reachable(session, router, removing)
        result = _interface_info(router, port, sorted(removing))
        remaining = [a for a in port.fixed_ips if a.subnet_id not in removing]
        if remaining:
            for allocation in list(port.fixed_ips):
                if allocation.subnet_id in removing:
                    port.fixed_ips.remove(allocation)
            common.touch(port)
        else:
            ports.delete_port_row(session, port)
        common.touch(router)
        session.flush()
    return ok(result)


def _extraroutes(req: ApiRequest, adding: bool) -> Response:
    """``add_extraroutes``/``remove_extraroutes`` (extraroute-atomic): a change to the list."""
    values = common.body(req, "router")
    common.check_attributes(values, {"routes"})
    change = _parse_routes(values.get("routes"))
    with common.service(req).db.session() as session:
        router = get_router(req, session, req.path_params["router_id"])
        common.enforce(req, "network:update_router", target(router))
        current = [(r.destination, r.nexthop) for r in router.routes]
        if adding:
            wanted = current + [r for r in change if r not in current]
        else:
            wanted = [r for r in current if r not in change]
        _set_routes(session, router, [{"destination": d, "nexthop": n} for d, n in wanted])
        common.touch(router)
        session.flush()
        session.refresh(router)
        result = router_view(session, router)
    return ok({"router": result})


@endpoint
def add_extraroutes(req: ApiRequest) -> Response:
    return _extraroutes(req, adding=True)


@endpoint
def remove_extraroutes(req: ApiRequest) -> Response:
    return _extraroutes(req, adding=False)


ROUTES = [
    Route("/v2.0/routers", index, methods=["GET"]),
    Route("/v2.0/routers", create, methods=["POST"]),
    Route("/v2.0/routers/{router_id}", show, methods=["GET"]),
    Route("/v2.0/routers/{router_id}", update, methods=["PUT"]),
    Route("/v2.0/routers/{router_id}", remove, methods=["DELETE"]),
    Route("/v2.0/routers/{router_id}/add_router_interface", add_interface, methods=["PUT"]),
    Route("/v2.0/routers/{router_id}/remove_router_interface", remove_interface, methods=["PUT"]),
    Route("/v2.0/routers/{router_id}/add_extraroutes", add_extraroutes, methods=["PUT"]),
    Route("/v2.0/routers/{router_id}/remove_extraroutes", remove_extraroutes, methods=["PUT"]),
]
