"""``/v2.0/floatingips``: addresses of an external network, mapped to a port's.

A floating IP holds a ``network:floatingip`` port on its external network
(of no project, as in Neutron) for its address. Associating it with a port
(``port_id``, and ``fixed_ip_address`` when the port has several IPv4
addresses) needs a router with a gateway on that external network and an
interface on the port's subnet: that router does the NAT (``router_id``).
A fixed address has at most one floating IP (a unique key in the database).
"""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network import ipam
from stratus.network.api import common, networks, ports, routers
from stratus.network.model import FloatingIP, IPAllocation, Network, Port, Router, Subnet

OWNER = "network:floatingip"
CREATE_ATTRIBUTES = {
    "floating_network_id",
    "floating_ip_address",
    "subnet_id",
    "port_id",
    "fixed_ip_address",
    "description",
    "project_id",
    "tenant_id",
    "dns_domain",
    "dns_name",
    "qos_policy_id",
}
UPDATE_ATTRIBUTES = {"port_id", "fixed_ip_address", "description", "qos_policy_id"}


def target(fip: FloatingIP) -> dict[str, Any]:
    return {"project_id": fip.project_id, "id": fip.id}


def visible(req: ApiRequest) -> Any:
    if common.sees_all(req):
        return None
    return FloatingIP.project_id == req.context.project_id


def get_fip(req: ApiRequest, session: Session, fip_id: str) -> FloatingIP:
    query = select(FloatingIP).where(FloatingIP.id == fip_id)
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    fip = session.scalar(query)
    if fip is None:
        raise common.not_found("FloatingIP", fip_id)
    return fip


def view(session: Session, fip: FloatingIP, tags: list[str]) -> dict[str, Any]:
    details: dict[str, Any] | None = None
    if fip.fixed_port_id:
        port = session.get(Port, fip.fixed_port_id)
        if port is not None:
            details = {
                "name": port.name,
                "network_id": port.network_id,
                "mac_address": port.mac_address,
                "admin_state_up": port.admin_state_up,
                "status": port.status,
                "device_id": port.device_id,
                "device_owner": port.device_owner,
            }
    return {
        "id": fip.id,
        "floating_ip_address": fip.floating_ip_address,
        "floating_network_id": fip.floating_network_id,
        "router_id": fip.router_id,
        "port_id": fip.fixed_port_id,
        "fixed_ip_address": fip.fixed_ip_address,
        "status": fip.status,
        "port_details": details,
        "dns_domain": "",
        "dns_name": "",
        "qos_policy_id": None,
        "port_forwardings": [],
        **common.standard(fip, tags),
    }


def fip_view(session: Session, fip: FloatingIP) -> dict[str, Any]:
    return view(session, fip, common.tags_of(session, [fip.id])[fip.id])


def _unsupported(values: dict[str, Any]) -> None:
    for key in ("dns_domain", "dns_name"):
        if values.get(key):
            raise errors.BadRequest(
                f"Invalid input for {key}: DNS names of floating IPs are not supported.",
                kind="InvalidInput",
            )
    if values.get("qos_policy_id") is not None:
        raise errors.BadRequest("QoS policies are not supported.", kind="InvalidInput")


# --- association --------------------------------------------------------------------


def _router_for(session: Session, fip: FloatingIP, subnet_id: str) -> Router | None:
    """The router with an interface on ``subnet_id`` and its gateway on the FIP's network."""
    interfaces = (
        select(Port.device_id)
        .join(IPAllocation, IPAllocation.port_id == Port.id)
        .where(IPAllocation.subnet_id == subnet_id, Port.device_owner == routers.INTERFACE_OWNER)
    )
    gateways = select(Port.id).where(
        Port.network_id == fip.floating_network_id, Port.device_owner == routers.GATEWAY_OWNER
    )
    return session.scalar(
        select(Router)
        .where(Router.id.in_(interfaces), Router.gw_port_id.in_(gateways))
        .order_by(Router.created_at, Router.id)
    )


def disassociate(fip: FloatingIP) -> None:
    fip.fixed_port_id = None
    fip.fixed_ip_address = None
    fip.router_id = None
    fip.status = "DOWN"


def associate(
    req: ApiRequest, session: Session, fip: FloatingIP, port_id: Any, fixed_ip: Any
) -> None:
    if port_id is None:
        if fixed_ip is not None:
            raise errors.BadRequest(
                "fixed_ip_address cannot be specified without a port_id.", kind="BadRequest"
            )
        disassociate(fip)
        return
    if not isinstance(port_id, str):
        raise errors.BadRequest(
            "Invalid input for port_id: an ID is required.", kind="InvalidInput"
        )
    port = session.get(Port, port_id)
    if port is None or (port.project_id != fip.project_id and not common.is_admin(req)):
        raise common.not_found("Port", port_id)
    if port.device_owner.startswith("network:"):
        raise errors.BadRequest(
            f"Bad floatingip request: Port {port.id} has owner {port.device_owner} and "
            "therefore cannot be assigned to a floating IP.",
            kind="BadRequest",
        )
    v4 = [a for a in port.fixed_ips if ipaddress.ip_address(a.ip_address).version == 4]
    if fixed_ip is not None:
        address = str(ipam.parse_ip(fixed_ip, "fixed_ip_address"))
        chosen = next((a for a in v4 if a.ip_address == address), None)
        if chosen is None:
            raise errors.BadRequest(
                f"Bad floatingip request: Port {port.id} does not have fixed ip {fixed_ip}.",
                kind="BadRequest",
            )
    elif not v4:
        raise errors.BadRequest(
            f"Bad floatingip request: Port {port.id} does not have any IPv4 address; a "
            "floating IP needs one.",
            kind="BadRequest",
        )
    elif len(v4) > 1:
        raise errors.BadRequest(
            f"Bad floatingip request: Port {port.id} has multiple fixed IPv4 addresses. Must "
            "provide a specific IPv4 address when assigning a floating IP.",
            kind="BadRequest",
        )
    else:
        chosen = v4[0]
    router = _router_for(session, fip, chosen.subnet_id)
    if router is None:
        raise errors.NotFound(
            f"External network {fip.floating_network_id} is not reachable from subnet "
            f"{chosen.subnet_id}.  Therefore, cannot associate Port {port.id} with a Floating IP.",
            kind="ExternalGatewayForFloatingIPNotFound",
        )
    if fip.fixed_port_id == port.id and fip.fixed_ip_address == chosen.ip_address:
        return
    taken = session.scalar(
        select(FloatingIP.id).where(
            FloatingIP.fixed_port_id == port.id,
            FloatingIP.fixed_ip_address == chosen.ip_address,
            FloatingIP.id != fip.id,
        )
    )

    def conflict() -> errors.Conflict:
        return errors.Conflict(
            f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with port "
            f"{port.id} using fixed IP {chosen.ip_address}, as that fixed IP already has a "
            f"floating IP on external network {fip.floating_network_id}.",
            kind="FloatingIPPortAlreadyAssociated",
        )

    if taken is not None:
        raise conflict()
    try:
        with session.begin_nested():
            fip.fixed_port_id = port.id
            fip.fixed_ip_address = chosen.ip_address
            fip.router_id = router.id
            fip.status = "ACTIVE"
            session.flush()
    except IntegrityError:
        raise conflict() from None


# --- handlers -----------------------------------------------------------------------


def _floating_subnets(
    req: ApiRequest, session: Session, network: Network, values: dict[str, Any]
) -> list[tuple[Subnet, str | None]]:
    """Where the address may come from: the requested subnet/address, or any IPv4 subnet."""
    address = values.get("floating_ip_address")
    subnet_id = values.get("subnet_id")
    if address is not None:
        common.enforce(
            req,
            "network:set_port_fixed_ip_address",
            {"project_id": network.project_id, "network_owner": network.project_id},
        )
    if subnet_id is not None or address is not None:
        entry: dict[str, Any] = {}
        if subnet_id is not None:
            entry["subnet_id"] = subnet_id
        if address is not None:
            entry["ip_address"] = address
        wanted = ports._requested_ips(req, session, network, [entry])
        if wanted[0][0].ip_version != 4:
            raise errors.BadRequest(
                f"Bad floatingip request: subnet {wanted[0][0].id} is not an IPv4 subnet.",
                kind="BadRequest",
            )
        return wanted
    found: list[tuple[Subnet, str | None]] = [
        (s, None)
        for s in session.scalars(
            select(Subnet)
            .where(Subnet.network_id == network.id, Subnet.ip_version == 4)
            .order_by(Subnet.created_at, Subnet.id)
        )
    ]
    if not found:
        raise errors.BadRequest(
            f"Bad floatingip request: Network {network.id} does not contain any IPv4 subnet.",
            kind="BadRequest",
        )
    return found


def create_one(req: ApiRequest, session: Session, values: dict[str, Any]) -> FloatingIP:
    common.check_attributes(values, CREATE_ATTRIBUTES)
    _unsupported(values)
    project = common.owner_of(req, values)
    common.enforce(req, "network:create_floatingip", {"project_id": project})
    network_id = values.get("floating_network_id")
    if not isinstance(network_id, str) or not network_id:
        raise errors.BadRequest(
            "Invalid input for floating_network_id: a network ID is required.",
            kind="InvalidInput",
        )
    network = networks.get_network(req, session, network_id)
    if not network.external:
        raise errors.BadRequest(
            f"Bad floatingip request: Network {network.id} is not a valid external network.",
            kind="BadRequest",
        )
    common.check_quota(req, session, "floatingip", project, FloatingIP)
    candidates = _floating_subnets(req, session, network, values)
    fip_id = str(uuid.uuid4())
    port = Port(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id="",
        device_owner=OWNER,
        device_id=fip_id,
        port_security_enabled=False,
        admin_state_up=True,
        status="N/A",
        revision_number=0,
    )
    ipam.insert_port(session, port, common.service(req).options.base_mac, mac_given=False)
    address: str | None = None
    last: errors.ApiError | None = None
    for subnet, requested in candidates:
        try:
            address = ipam.allocate(session, subnet, port, requested, 0)
            break
        except errors.Conflict as exc:
            if requested is not None:
                raise
            last = exc
    if address is None:
        raise last or errors.Conflict(
            f"No more IP addresses available on network {network.id}.",
            kind="IpAddressGenerationFailure",
        )
    fip = FloatingIP(
        id=fip_id,
        project_id=project,
        floating_network_id=network.id,
        floating_port_id=port.id,
        floating_ip_address=address,
        description=common.as_string(values.get("description"), "description"),
        status="DOWN",
        revision_number=0,
    )
    session.add(fip)
    session.flush()
    if values.get("port_id") is not None:
        associate(req, session, fip, values["port_id"], values.get("fixed_ip_address"))
    elif values.get("fixed_ip_address") is not None:
        raise errors.BadRequest(
            "fixed_ip_address cannot be specified without a port_id.", kind="BadRequest"
        )
    session.flush()
    return fip


@endpoint
def create(req: ApiRequest) -> Response:
    return common.create(
        req,
        "floatingip",
        "floatingips",
        create_one,
        lambda session, rows: [view(session, f, []) for f in rows],
    )


@endpoint
def index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        query = select(FloatingIP)
        condition = visible(req)
        if condition is not None:
            query = query.where(condition)
        for key, column in (
            ("id", FloatingIP.id),
            ("floating_ip_address", FloatingIP.floating_ip_address),
            ("port_id", FloatingIP.fixed_port_id),
            ("router_id", FloatingIP.router_id),
        ):
            wanted = req.query.getlist(key)
            if wanted and all(wanted):
                query = query.where(column.in_(wanted))
        rows = list(session.scalars(query))
        tags = common.tags_of(session, [f.id for f in rows])
        views = [view(session, f, tags[f.id]) for f in rows]
    return common.list_response(req, "floatingips", views)


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        fip = get_fip(req, session, req.path_params["floatingip_id"])
        common.enforce(req, "network:get_floatingip", target(fip))
        result = fip_view(session, fip)
    return common.show(req, "floatingip", result)


@endpoint
def update(req: ApiRequest) -> Response:
    values = common.body(req, "floatingip")
    for fixed in ("floating_network_id", "floating_ip_address", "project_id", "tenant_id"):
        if fixed in values:
            raise errors.BadRequest(f"Cannot update read-only attribute {fixed}")
    common.check_attributes(values, UPDATE_ATTRIBUTES)
    _unsupported(values)
    with common.service(req).db.session() as session:
        fip = get_fip(req, session, req.path_params["floatingip_id"])
        common.enforce(req, "network:update_floatingip", target(fip))
        if "description" in values:
            fip.description = common.as_string(values["description"], "description")
        if "port_id" in values:
            associate(req, session, fip, values["port_id"], values.get("fixed_ip_address"))
        elif values.get("fixed_ip_address") is not None:
            associate(req, session, fip, fip.fixed_port_id, values["fixed_ip_address"])
        common.touch(fip)
        session.flush()
        session.refresh(fip)
        result = fip_view(session, fip)
    return ok({"floatingip": result})


def delete_fip_row(session: Session, fip: FloatingIP) -> None:
    """Remove a floating IP, its port and its address."""
    port = session.get(Port, fip.floating_port_id)
    common.drop_tags(session, fip.id)
    session.delete(fip)
    session.flush()
    if port is not None:
        ports.delete_port_row(session, port)


@endpoint
def remove(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        fip = get_fip(req, session, req.path_params["floatingip_id"])
        common.enforce(req, "network:delete_floatingip", target(fip))
        delete_fip_row(session, fip)
    return no_content()


ROUTES = [
    Route("/v2.0/floatingips", index, methods=["GET"]),
    Route("/v2.0/floatingips", create, methods=["POST"]),
    Route("/v2.0/floatingips/{floatingip_id}", show, methods=["GET"]),
    Route("/v2.0/floatingips/{floatingip_id}", update, methods=["PUT"]),
    Route("/v2.0/floatingips/{floatingip_id}", remove, methods=["DELETE"]),
]
