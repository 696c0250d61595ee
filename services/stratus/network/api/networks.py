"""``/v2.0/networks``: create (also in bulk), list, show, update, delete.

A network's segment is chosen here: provider attributes (admins only) name
it; otherwise it is the first of ``tenant_network_types`` with a free ID.
The segment row is inserted in the same transaction as the network, so a
failed request leaves neither.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network import segments
from stratus.network.agent.state import ENCAP_OVERHEAD
from stratus.network.api import common, dhcp_ports
from stratus.network.model import FloatingIP, Network, Port, Segment
from stratus.network.settings import NETWORK_TYPES

PROVIDER = ("provider:network_type", "provider:physical_network", "provider:segmentation_id")
CREATE_ATTRIBUTES = {
    "name",
    "description",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "project_id",
    "tenant_id",
    "dns_domain",
    "availability_zone_hints",
    *PROVIDER,
}
UPDATE_ATTRIBUTES = {
    "name",
    "description",
    "admin_state_up",
    "shared",
    "router:external",
    "mtu",
    "port_security_enabled",
    "dns_domain",
    *PROVIDER,
}


def target(network: Network) -> dict[str, Any]:
    return {"project_id": network.project_id, "id": network.id}


def visible(req: ApiRequest) -> Any:
    """Which networks the caller sees: its own, shared and external ones."""
    if common.sees_all(req):
        return None
    project = req.context.project_id
    return or_(Network.project_id == project, Network.shared.is_(True), Network.external.is_(True))


def get_network(req: ApiRequest, session: Session, network_id: str) -> Network:
    query = select(Network).where(Network.id == network_id)
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    network = session.scalar(query)
    if network is None:
        raise common.not_found("Network", network_id)
    return network


def view(
    req: ApiRequest, network: Network, tags: list[str], provider: bool | None = None
) -> dict[str, Any]:
    """The network as the caller may see it (``provider``: whether it sees the
    provider attributes; lists decide that once, not per row)."""
    body: dict[str, Any] = {
        "id": network.id,
        "name": network.name,
        "admin_state_up": network.admin_state_up,
        "status": network.status,
        "shared": network.shared,
        "router:external": network.external,
        "mtu": network.mtu,
        "port_security_enabled": network.port_security_enabled,
        "subnets": [s.id for s in network.subnets],
        "availability_zone_hints": [],
        "availability_zones": ["nova"],
        "ipv4_address_scope": None,
        "ipv6_address_scope": None,
        "l2_adjacency": True,
        "is_default": False,
        "dns_domain": network.dns_domain,
        **common.standard(network, tags),
    }
    if common.sees_all(req) if provider is None else provider:
        body["provider:network_type"] = network.network_type
        body["provider:physical_network"] = network.physical_network
        body["provider:segmentation_id"] = network.segmentation_id
    return body


def max_mtu(req: ApiRequest, network_type: str) -> int:
    return int(common.service(req).options.global_physnet_mtu) - ENCAP_OVERHEAD[network_type]


def _provider(req: ApiRequest, values: dict[str, Any]) -> tuple[str, str | None, int | None]:
    """The requested segment (type, physical network, ID), validated."""
    kind = values.get("provider:network_type")
    physnet = values.get("provider:physical_network")
    seg_id = values.get("provider:segmentation_id")
    if kind not in NETWORK_TYPES:
        raise errors.BadRequest(
            f"Invalid input for operation: network_type value '{kind}' not supported.",
            kind="InvalidInput",
        )
    ranges = common.service(req).ranges
    if seg_id is not None:
        if isinstance(seg_id, str) and seg_id.isdigit():
            seg_id = int(seg_id)
        if not isinstance(seg_id, int) or isinstance(seg_id, bool):
            raise errors.BadRequest(
                f"Invalid input for provider:segmentation_id: {seg_id!r}.", kind="InvalidInput"
            )
    if physnet is not None and not isinstance(physnet, str):
        raise errors.BadRequest("provider:physical_network must be a string.", kind="InvalidInput")
    if kind == "flat":
        if seg_id is not None:
            raise errors.BadRequest(
                "Invalid input for operation: segmentation_id specified for flat provider network.",
                kind="InvalidInput",
            )
        if not physnet:
            raise errors.BadRequest(
                "Invalid input for operation: physical_network required for flat provider network.",
                kind="InvalidInput",
            )
        if "*" not in ranges.flat and physnet not in ranges.flat:
            raise errors.BadRequest(
                f"Invalid input for operation: physical_network '{physnet}' unknown for flat "
                "provider network.",
                kind="InvalidInput",
            )
    elif kind == "vlan":
        if not physnet:
            raise errors.BadRequest(
                "Invalid input for operation: physical_network required for VLAN provider network.",
                kind="InvalidInput",
            )
        if physnet not in ranges.vlan:
            raise errors.BadRequest(
                f"Invalid input for operation: physical_network '{physnet}' unknown for VLAN "
                "provider network.",
                kind="InvalidInput",
            )
        if seg_id is None and not ranges.vlan[physnet]:
            raise errors.BadRequest(
                f"Physical network {physnet} has no VLAN range: give provider:segmentation_id.",
                kind="InvalidInput",
            )
    elif physnet:
        raise errors.BadRequest(
            f"Invalid input for operation: provider:physical_network specified for {kind} network.",
            kind="InvalidInput",
        )
    return kind, physnet, seg_id


def _provisional(req: ApiRequest, network: Network, kind: str, physnet: str | None) -> None:
    """The segment's type on the row before its ID is reserved (the row must exist first)."""
    network.network_type, network.physical_network = kind, physnet
    network.mtu = max_mtu(req, kind)


def _segment(req: ApiRequest, session: Session, network: Network, values: dict[str, Any]) -> None:
    svc = common.service(req)
    if any(values.get(k) is not None for k in PROVIDER):
        common.enforce(req, "network:set_provider", target(network))
        kind, physnet, seg_id = _provider(req, values)
        _provisional(req, network, kind, physnet)
        session.flush()
        if kind == "flat":
            # One flat network per physical network: its segment is ID 0.
            if not segments.reserve(session, "flat", physnet or "", 0, network.id):
                raise errors.Conflict(
                    f"Unable to create the flat network. Physical network {physnet} is in use.",
                    kind="FlatNetworkInUse",
                )
        else:
            seg_id = segments.allocate(session, svc.ranges, network.id, kind, physnet, seg_id)
        network.network_type, network.physical_network = kind, physnet
        network.segmentation_id = seg_id
        return
    last_error: errors.ApiError | None = None
    for kind in svc.options.tenant_network_types:
        physnets = [None] if kind != "vlan" else [p for p, r in svc.ranges.vlan.items() if r]
        for physnet in physnets:
            _provisional(req, network, kind, physnet)
            session.flush()
            try:
                seg_id = segments.allocate(session, svc.ranges, network.id, kind, physnet, None)
            except errors.ServiceUnavailable as exc:
                last_error = exc
                continue
            network.network_type, network.physical_network = kind, physnet
            network.segmentation_id = seg_id
            return
    raise last_error or errors.ServiceUnavailable(
        "Unable to create the network. No tenant network is available for allocation.",
        kind="NoNetworkAvailable",
    )


def _apply(req: ApiRequest, network: Network, values: dict[str, Any], creating: bool) -> None:
    if "name" in values:
        network.name = common.as_string(values["name"], "name")
    if "description" in values:
        network.description = common.as_string(values["description"], "description")
    if "admin_state_up" in values:
        network.admin_state_up = common.as_bool(values["admin_state_up"], "admin_state_up")
    if "port_security_enabled" in values:
        network.port_security_enabled = common.as_bool(
            values["port_security_enabled"], "port_security_enabled"
        )
    if "dns_domain" in values:
        network.dns_domain = common.as_string(values["dns_domain"], "dns_domain")
    if "shared" in values:
        shared = common.as_bool(values["shared"], "shared")
        if shared != network.shared or (creating and shared):
            common.enforce(req, "network:set_shared", target(network))
        network.shared = shared
    if "router:external" in values:
        external = common.as_bool(values["router:external"], "router:external")
        if external != network.external or (creating and external):
            common.enforce(req, "network:set_external", target(network))
        network.external = external


def _mtu(req: ApiRequest, network: Network, values: dict[str, Any]) -> None:
    largest = max_mtu(req, network.network_type)
    mtu = values.get("mtu")
    if mtu is None:
        return
    if not isinstance(mtu, int) or isinstance(mtu, bool) or not 68 <= mtu <= largest:
        raise errors.BadRequest(
            f"Invalid input for mtu: {mtu!r}; this network can carry at most {largest}.",
            kind="InvalidInput",
        )
    network.mtu = mtu


def create_one(req: ApiRequest, session: Session, values: dict[str, Any]) -> Network:
    common.check_attributes(values, CREATE_ATTRIBUTES)
    project = common.owner_of(req, values)
    common.enforce(req, "network:create_network", {"project_id": project})
    common.check_quota(req, session, "network", project, Network)
    network = Network(id=str(uuid.uuid4()), project_id=project, revision_number=0)
    _apply(req, network, values, creating=True)
    session.add(network)
    _segment(req, session, network, values)
    _mtu(req, network, values)
    session.flush()
    return network


@endpoint
def create(req: ApiRequest) -> Response:
    return common.create(
        req,
        "network",
        "networks",
        create_one,
        lambda _session, rows: [view(req, n, []) for n in rows],
    )


@endpoint
def index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        query = select(Network)
        condition = visible(req)
        if condition is not None:
            query = query.where(condition)
        names = req.query.getlist("name")
        if names:
            query = query.where(Network.name.in_(names))
        rows = list(session.scalars(query))
        tags = common.tags_of(session, [n.id for n in rows])
        provider = common.sees_all(req)
        views = [view(req, n, tags[n.id], provider) for n in rows]
    return common.list_response(req, "networks", views)


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        network = get_network(req, session, req.path_params["network_id"])
        common.enforce(req, "network:get_network", _read_target(req, network))
        result = view(req, network, common.tags_of(session, [network.id])[network.id])
    return common.show(req, "network", result)


def _read_target(req: ApiRequest, network: Network) -> dict[str, Any]:
    # Shared and external networks are readable by every project.
    if network.shared or network.external:
        return {"project_id": req.context.project_id}
    return target(network)


def _foreign_ports(session: Session, network: Network) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(Port)
            .where(
                Port.network_id == network.id,
                Port.project_id != network.project_id,
                Port.device_owner != "network:dhcp",
            )
        )
        or 0
    )


@endpoint
def update(req: ApiRequest) -> Response:
    values = common.body(req, "network")
    common.check_attributes(values, UPDATE_ATTRIBUTES)
    with common.service(req).db.session() as session:
        network = get_network(req, session, req.path_params["network_id"])
        common.enforce(req, "network:update_network", target(network))
        for key in PROVIDER:
            if key in values and values[key] != getattr(
                network,
                {
                    "provider:network_type": "network_type",
                    "provider:physical_network": "physical_network",
                    "provider:segmentation_id": "segmentation_id",
                }[key],
            ):
                raise errors.BadRequest(
                    "Invalid input for operation: Plugin does not support updating provider "
                    "attributes.",
                    kind="InvalidInput",
                )
        if values.get("shared") is False and network.shared and _foreign_ports(session, network):
            raise errors.Conflict(
                f"Unable to reconfigure sharing settings for network {network.id}. Multiple "
                "tenants are using it.",
                kind="InvalidSharedSetting",
            )
        if "router:external" in values and not common.as_bool(
            values["router:external"], "router:external"
        ):
            in_use = session.scalar(
                select(func.count())
                .select_from(Port)
                .where(
                    Port.network_id == network.id,
                    Port.device_owner.in_(("network:router_gateway", "network:floatingip")),
                )
            )
            if in_use:
                raise errors.Conflict(
                    f"Network {network.id} is used by routers or floating IPs; it must stay "
                    "external.",
                    kind="ExternalNetworkInUse",
                )
        _apply(req, network, values, creating=False)
        _mtu(req, network, values)
        common.touch(network)
        session.flush()
        result = view(req, network, common.tags_of(session, [network.id])[network.id])
    return ok({"network": result})


@endpoint
def remove(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        network = get_network(req, session, req.path_params["network_id"])
        common.enforce(req, "network:delete_network", target(network))
        # The network's own DHCP port and its floating IPs go with it (Neutron
        # deletes unassociated floating IPs of an external network); any
        # other port, a router's gateway included, holds it.
        busy = session.scalar(
            select(func.count())
            .select_from(Port)
            .where(
                Port.network_id == network.id,
                Port.device_owner.not_in(("network:dhcp", "network:floatingip")),
            )
        )
        if busy:
            raise errors.Conflict(
                f"Unable to complete operation on network {network.id}. There are one or more "
                "ports still in use on the network.",
                kind="NetworkInUse",
            )
        dhcp_ports.remove_all(session, network.id)
        for fip in session.scalars(
            select(FloatingIP).where(FloatingIP.floating_network_id == network.id)
        ):
            port = session.get(Port, fip.floating_port_id)
            common.drop_tags(session, fip.id)
            session.delete(fip)
            session.flush()
            if port is not None:
                session.delete(port)
        session.flush()
        for subnet in list(network.subnets):
            common.drop_tags(session, subnet.id)
            session.delete(subnet)
        session.execute(Segment.__table__.delete().where(Segment.network_id == network.id))
        common.drop_tags(session, network.id)
        session.delete(network)
    return no_content()


ROUTES = [
    Route("/v2.0/networks", index, methods=["GET"]),
    Route("/v2.0/networks", create, methods=["POST"]),
    Route("/v2.0/networks/{network_id}", show, methods=["GET"]),
    Route("/v2.0/networks/{network_id}", update, methods=["PUT"]),
    Route("/v2.0/networks/{network_id}", remove, methods=["DELETE"]),
]
