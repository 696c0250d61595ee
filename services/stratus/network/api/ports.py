"""``/v2.0/ports``: a network's attachment points, with addresses and bindings.

A port's addresses come from ``ipam`` (never twice); its MAC is unique.
Security groups default to the project's ``default`` group while port
security is on. ``binding:host_id`` (admins and services: compute binds the
ports of its guests) tells the agent of that host to wire the port; the
binding attributes are shown to admins and services only. Ports owned by
routers and floating IPs are removed through those, not here.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network import ipam
from stratus.network.agent.state import bridge_name
from stratus.network.api import common, networks, security_groups
from stratus.network.model import (
    AllowedAddressPair,
    FloatingIP,
    Network,
    Port,
    PortSecurityGroup,
    SecurityGroup,
    Subnet,
)

MAX_ADDRESS_PAIRS = 10
DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$", re.IGNORECASE)
PROTECTED_OWNERS = ("network:router_interface", "network:router_gateway", "network:floatingip")
BINDING = ("binding:host_id", "binding:vnic_type", "binding:profile")
VNIC_TYPES = ("normal",)
CREATE_ATTRIBUTES = {
    "name",
    "description",
    "network_id",
    "admin_state_up",
    "mac_address",
    "fixed_ips",
    "device_id",
    "device_owner",
    "security_groups",
    "allowed_address_pairs",
    "port_security_enabled",
    "dns_name",
    "project_id",
    "tenant_id",
    *BINDING,
}
UPDATE_ATTRIBUTES = CREATE_ATTRIBUTES - {"network_id", "project_id", "tenant_id"}


def target(port: Port, network: Network) -> dict[str, Any]:
    return {"project_id": port.project_id, "network_owner": network.project_id}


def visible(req: ApiRequest) -> Any:
    """Ports of the caller's project, and ports on networks it owns (Neutron's rule)."""
    if common.sees_all(req):
        return None
    project = req.context.project_id
    owned = select(Network.id).where(Network.project_id == project)
    return or_(Port.project_id == project, Port.network_id.in_(owned))


def get_port(req: ApiRequest, session: Session, port_id: str) -> Port:
    query = select(Port).where(Port.id == port_id)
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    port = session.scalar(query)
    if port is None:
        raise common.not_found("Port", port_id)
    return port


def view(
    port: Port, tags: list[str], *, bindings: bool, dns_domain: str = "openstacklocal"
) -> dict[str, Any]:
    fixed = [{"subnet_id": a.subnet_id, "ip_address": a.ip_address} for a in port.fixed_ips]
    body: dict[str, Any] = {
        "id": port.id,
        "name": port.name,
        "network_id": port.network_id,
        "mac_address": port.mac_address,
        "admin_state_up": port.admin_state_up,
        "status": port.status,
        "device_id": port.device_id,
        "device_owner": port.device_owner,
        "fixed_ips": fixed,
        "allowed_address_pairs": [
            {"ip_address": p.ip_address, "mac_address": p.mac_address} for p in port.address_pairs
        ],
        "security_groups": sorted(g.security_group_id for g in port.security_groups),
        "port_security_enabled": port.port_security_enabled,
        "dns_name": port.dns_name,
        "dns_assignment": [
            {
                "hostname": host,
                "ip_address": f["ip_address"],
                "fqdn": f"{host}.{dns_domain.rstrip('.')}.",
            }
            for f in fixed
            for host in [port.dns_name or "host-" + re.sub(r"[.:]", "-", f["ip_address"])]
        ],
        **common.standard(port, tags),
    }
    if bindings:
        bound = bool(port.host)
        body["binding:host_id"] = port.host
        body["binding:vnic_type"] = port.vnic_type
        body["binding:profile"] = {}
        body["binding:vif_type"] = "bridge" if bound else "unbound"
        body["binding:vif_details"] = (
            {
                "port_filter": True,
                "connectivity": "l2",
                "bridge_name": bridge_name(port.network_id),
            }
            if bound
            else {}
        )
    return body


def port_view(req: ApiRequest, session: Session, port: Port) -> dict[str, Any]:
    return view(
        port,
        common.tags_of(session, [port.id])[port.id],
        bindings=common.sees_all(req),
        dns_domain=common.service(req).options.dns_domain,
    )


# --- attribute checks -----------------------------------------------------------


def _requested_ips(
    req: ApiRequest, session: Session, network: Network, value: Any
) -> list[tuple[Subnet, str | None]]:
    """(subnet, address or None) for each entry of ``fixed_ips``."""
    if not isinstance(value, list):
        raise errors.BadRequest("Invalid input for fixed_ips: a list is required.")
    subnets = {
        s.id: s for s in session.scalars(select(Subnet).where(Subnet.network_id == network.id))
    }
    wanted: list[tuple[Subnet, str | None]] = []
    for entry in value:
        if (
            not isinstance(entry, dict)
            or not set(entry) <= {"subnet_id", "ip_address"}
            or not entry
        ):
            raise errors.BadRequest(
                "Invalid input for fixed_ips: each entry takes subnet_id and/or ip_address.",
                kind="InvalidInput",
            )
        address = entry.get("ip_address")
        subnet_id = entry.get("subnet_id")
        if subnet_id is not None:
            subnet = subnets.get(subnet_id)
            if subnet is None:
                raise errors.BadRequest(
                    f"Invalid input for operation: Failed to create port on network "
                    f"{network.id}, because fixed_ips included invalid subnet {subnet_id}.",
                    kind="InvalidInput",
                )
        else:
            parsed = ipam.parse_ip(address, "fixed_ips")
            found = [s for s in subnets.values() if parsed in ipaddress.ip_network(s.cidr)]
            if not found:
                raise errors.BadRequest(
                    f"Invalid input for operation: IP address {address} is not a valid IP for "
                    f"any subnet on network {network.id}.",
                    kind="InvalidIpForNetwork",
                )
            subnet = found[0]
        wanted.append((subnet, address))
    return wanted


def _default_ips(session: Session, network: Network) -> list[tuple[Subnet, str | None]]:
    """An address on every SLAAC subnet, and one of each version from the others."""
    chosen: list[tuple[Subnet, str | None]] = []
    seen: set[int] = set()
    for subnet in session.scalars(
        select(Subnet).where(Subnet.network_id == network.id).order_by(Subnet.created_at)
    ):
        if ipam.is_auto_address(subnet):
            chosen.append((subnet, None))
        elif subnet.ip_version not in seen:
            seen.add(subnet.ip_version)
            chosen.append((subnet, None))
    return chosen


def _allocate_all(session: Session, port: Port, wanted: list[tuple[Subnet, str | None]]) -> None:
    for position, (subnet, address) in enumerate(wanted):
        ipam.allocate(session, subnet, port, address, position)


def _address_pairs(port: Port, value: Any) -> list[AllowedAddressPair]:
    if not isinstance(value, list):
        raise errors.BadRequest("Invalid input for allowed_address_pairs: a list is required.")
    if len(value) > MAX_ADDRESS_PAIRS:
        raise errors.BadRequest(
            f"The number of allowed address pairs exceeds the maximum {MAX_ADDRESS_PAIRS}.",
            kind="AllowedAddressPairExhausted",
        )
    pairs: list[AllowedAddressPair] = []
    seen: set[tuple[str, str]] = set()
    for index, pair in enumerate(value):
        if (
            not isinstance(pair, dict)
            or "ip_address" not in pair
            or not set(pair)
            <= {
                "ip_address",
                "mac_address",
            }
        ):
            raise errors.BadRequest(
                "Invalid input for allowed_address_pairs: each pair needs ip_address.",
                kind="InvalidInput",
            )
        raw = pair["ip_address"]
        if not isinstance(raw, str):
            raise errors.BadRequest("Invalid input for allowed_address_pairs: bad ip_address.")
        if "/" in raw:
            address = str(ipam.parse_cidr(raw, "allowed_address_pairs"))
        else:
            address = str(ipam.parse_ip(raw, "allowed_address_pairs"))
        mac = ipam.check_mac(pair["mac_address"]) if pair.get("mac_address") else port.mac_address
        if (address, mac) in seen:
            raise errors.BadRequest(
                "Request contains duplicate address pair.", kind="DuplicateAddressPairInRequest"
            )
        seen.add((address, mac))
        pairs.append(AllowedAddressPair(position=index, ip_address=address, mac_address=mac))
    return pairs


def _security_groups(
    req: ApiRequest, session: Session, project: str, value: Any
) -> list[PortSecurityGroup]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise errors.BadRequest("Invalid input for security_groups: a list of IDs is required.")
    groups = []
    for group_id in dict.fromkeys(value):
        group = session.get(SecurityGroup, group_id)
        if group is None or (group.project_id != project and not common.sees_all(req)):
            raise errors.NotFound(
                f"Security group {group_id} does not exist", kind="SecurityGroupNotFound"
            )
        groups.append(PortSecurityGroup(security_group_id=group_id))
    return groups


def _dns_name(value: Any) -> str:
    name = common.as_string(value, "dns_name")
    if name and not all(DNS_LABEL.match(label) for label in name.rstrip(".").split(".")):
        raise errors.BadRequest(
            f"Invalid input for dns_name. Reason: '{name}' is not a valid DNS name.",
            kind="InvalidInput",
        )
    return name


def _check_owner_rules(
    req: ApiRequest, port: Port, network: Network, values: dict[str, Any], creating: bool
) -> None:
    tgt = target(port, network)
    if creating and not network.shared and network.project_id != req.context.project_id:
        common.enforce(req, "network:create_port_on_network", tgt)
    owner = values.get("device_owner")
    if isinstance(owner, str) and owner.startswith("network:") and owner != port.device_owner:
        common.enforce(req, "network:set_port_device_owner", tgt)
    if "mac_address" in values and values["mac_address"] != port.mac_address:
        common.enforce(req, "network:set_port_mac_address", tgt)
    if any(k in values for k in BINDING):
        common.enforce(req, "network:set_port_binding", tgt)
    fixed = values.get("fixed_ips")
    explicit = isinstance(fixed, list) and any(
        isinstance(f, dict) and "ip_address" in f for f in fixed
    )
    if explicit and network.project_id != req.context.project_id:
        common.enforce(req, "network:set_port_fixed_ip_address", tgt)


def _apply_simple(port: Port, values: dict[str, Any]) -> None:
    if "name" in values:
        port.name = common.as_string(values["name"], "name")
    if "description" in values:
        port.description = common.as_string(values["description"], "description")
    if "admin_state_up" in values:
        port.admin_state_up = common.as_bool(values["admin_state_up"], "admin_state_up")
    if "device_id" in values:
        port.device_id = common.as_string(values["device_id"], "device_id")
    if "device_owner" in values:
        port.device_owner = common.as_string(values["device_owner"], "device_owner")
    if "binding:host_id" in values:
        port.host = common.as_string(values["binding:host_id"], "binding:host_id")
    if "binding:vnic_type" in values:
        if values["binding:vnic_type"] not in VNIC_TYPES:
            raise errors.BadRequest(
                f"Invalid input for binding:vnic_type: '{values['binding:vnic_type']}' is not "
                f"in {list(VNIC_TYPES)}.",
                kind="InvalidInput",
            )
        port.vnic_type = values["binding:vnic_type"]
    if "binding:profile" in values and values["binding:profile"] not in ({}, None):
        raise errors.BadRequest(
            "binding:profile is not supported by this cloud's agents.", kind="InvalidInput"
        )
    if "dns_name" in values:
        port.dns_name = _dns_name(values["dns_name"])


def _apply_security(
    req: ApiRequest, session: Session, port: Port, values: dict[str, Any], creating: bool
) -> None:
    if "port_security_enabled" in values:
        port.port_security_enabled = common.as_bool(
            values["port_security_enabled"], "port_security_enabled"
        )
    if "allowed_address_pairs" in values:
        port.address_pairs = _address_pairs(port, values["allowed_address_pairs"] or [])
    if "security_groups" in values:
        port.security_groups = _security_groups(
            req, session, port.project_id, values["security_groups"] or []
        )
    elif creating and port.port_security_enabled and not port.device_owner.startswith("network:"):
        default = security_groups.default_group(session, port.project_id)
        port.security_groups = [PortSecurityGroup(security_group_id=default.id)]
    if not port.port_security_enabled:
        if port.security_groups and ("security_groups" in values or not creating):
            raise errors.Conflict(
                f"Port {port.id} has security groups; remove them before disabling port "
                "security, or enable it.",
                kind="PortSecurityPortHasSecurityGroup",
            )
        if port.address_pairs:
            raise errors.Conflict(
                "Port security must be enabled in order to have allowed address pairs on a port.",
                kind="AddressPairAndPortSecurityRequired",
            )


def create_one(req: ApiRequest, session: Session, values: dict[str, Any]) -> Port:
    common.check_attributes(values, CREATE_ATTRIBUTES)
    network_id = values.get("network_id")
    if not isinstance(network_id, str):
        raise errors.BadRequest("Invalid input for network_id: a network ID is required.")
    network = networks.get_network(req, session, network_id)
    project = common.owner_of(req, values)
    port = Port(
        id=str(uuid.uuid4()),
        network_id=network.id,
        project_id=project,
        port_security_enabled=network.port_security_enabled,
        revision_number=0,
        status="DOWN",
    )
    common.enforce(req, "network:create_port", {"project_id": project})
    _check_owner_rules(req, port, network, values, creating=True)
    _apply_simple(port, values)
    mac_given = values.get("mac_address") is not None
    if mac_given:
        port.mac_address = ipam.check_mac(values["mac_address"])
    common.check_quota(req, session, "port", project, Port)
    wanted = (
        _requested_ips(req, session, network, values["fixed_ips"])
        if "fixed_ips" in values
        else _default_ips(session, network)
    )
    if "port_security_enabled" in values:
        port.port_security_enabled = common.as_bool(
            values["port_security_enabled"], "port_security_enabled"
        )
    ipam.insert_port(session, port, common.service(req).options.base_mac, mac_given)
    _allocate_all(session, port, wanted)
    _apply_security(req, session, port, values, creating=True)
    session.flush()
    session.refresh(port)
    return port


@endpoint
def create(req: ApiRequest) -> Response:
    return common.create(
        req,
        "port",
        "ports",
        create_one,
        lambda session, rows: [port_view(req, session, p) for p in rows],
    )


@endpoint
def index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        query = select(Port)
        condition = visible(req)
        if condition is not None:
            query = query.where(condition)
        for key, column in (
            ("network_id", Port.network_id),
            ("device_id", Port.device_id),
            ("device_owner", Port.device_owner),
            ("id", Port.id),
            ("binding:host_id", Port.host),
            ("mac_address", Port.mac_address),
        ):
            wanted = req.query.getlist(key)
            if wanted:
                query = query.where(column.in_(wanted))
        rows = list(session.scalars(query))
        tags = common.tags_of(session, [p.id for p in rows])
        bindings = common.sees_all(req)
        domain = common.service(req).options.dns_domain
        views = [view(p, tags[p.id], bindings=bindings, dns_domain=domain) for p in rows]
    return common.list_response(req, "ports", views)


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        port = get_port(req, session, req.path_params["port_id"])
        result = port_view(req, session, port)
    return common.show(req, "port", result)


def _update_ips(
    req: ApiRequest, session: Session, port: Port, network: Network, value: Any
) -> None:
    wanted = _requested_ips(req, session, network, value)
    keep: set[tuple[str, str]] = set()
    current = {(a.subnet_id, a.ip_address) for a in port.fixed_ips}
    for subnet, address in wanted:
        if address is not None and (subnet.id, str(ipaddress.ip_address(address))) in current:
            keep.add((subnet.id, str(ipaddress.ip_address(address))))
        elif address is None:
            existing = next((c for c in current if c[0] == subnet.id and c not in keep), None)
            if existing:
                keep.add(existing)
    for allocation in list(port.fixed_ips):
        if (allocation.subnet_id, allocation.ip_address) not in keep:
            port.fixed_ips.remove(allocation)
    session.flush()
    position = len(keep)
    for subnet, address in wanted:
        normalized = str(ipaddress.ip_address(address)) if address is not None else None
        if normalized is not None and (subnet.id, normalized) in keep:
            continue
        if normalized is None and any(k[0] == subnet.id for k in keep):
            continue
        ipam.allocate(session, subnet, port, address, position)
        position += 1


@endpoint
def update(req: ApiRequest) -> Response:
    values = common.body(req, "port")
    for fixed in ("network_id", "project_id", "tenant_id"):
        if fixed in values:
            raise errors.BadRequest(f"Cannot update read-only attribute {fixed}")
    common.check_attributes(values, UPDATE_ATTRIBUTES)
    with common.service(req).db.session() as session:
        port = get_port(req, session, req.path_params["port_id"])
        network = session.get(Network, port.network_id)
        assert network is not None
        common.enforce(req, "network:update_port", target(port, network))
        _check_owner_rules(req, port, network, values, creating=False)
        if values.get("mac_address") not in (None, port.mac_address):
            if port.host:
                raise errors.Conflict(
                    f"Port {port.id} is bound to a host; its MAC address cannot change.",
                    kind="PortBound",
                )
            port.mac_address = ipam.check_mac(values["mac_address"])
        _apply_simple(port, values)
        if "fixed_ips" in values:
            _update_ips(req, session, port, network, values["fixed_ips"])
        _apply_security(req, session, port, values, creating=False)
        if "binding:host_id" in values and not port.host:
            port.status = "DOWN"
        common.touch(port)
        session.flush()
        session.refresh(port)
        result = port_view(req, session, port)
    return ok({"port": result})


def delete_port_row(session: Session, port: Port) -> None:
    """Remove a port, its addresses, tags and floating IP associations."""
    for fip in session.scalars(select(FloatingIP).where(FloatingIP.fixed_port_id == port.id)):
        fip.fixed_port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.status = "DOWN"
        common.touch(fip)
    common.drop_tags(session, port.id)
    session.delete(port)
    session.flush()


@endpoint
def remove(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        port = get_port(req, session, req.path_params["port_id"])
        network = session.get(Network, port.network_id)
        assert network is not None
        common.enforce(req, "network:delete_port", target(port, network))
        if port.device_owner in PROTECTED_OWNERS:
            raise errors.Conflict(
                f"Port {port.id} cannot be deleted directly via the port API: has device owner "
                f"{port.device_owner}.",
                kind="ServicePortInUse",
            )
        delete_port_row(session, port)
    return no_content()


ROUTES = [
    Route("/v2.0/ports", index, methods=["GET"]),
    Route("/v2.0/ports", create, methods=["POST"]),
    Route("/v2.0/ports/{port_id}", show, methods=["GET"]),
    Route("/v2.0/ports/{port_id}", update, methods=["PUT"]),
    Route("/v2.0/ports/{port_id}", remove, methods=["DELETE"]),
]
