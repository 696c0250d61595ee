"""``/servers/{id}/os-interface``: a server's interfaces (its ports),
attached and detached while it exists.

Listing and showing read the ports from the network service with the
caller's token, as Nova does. Attaching checks the server (ACTIVE, PAUSED
or SHUTOFF, no task, not locked) and the network or port as the caller
sees them, then, with the caller's token, makes the port on the network
(or takes the port given: it must be free) for the server, records it,
and sets the task ``interface_attaching``: the host's agent binds the port
to its host and plugs it into the guest (hot-plugged if it runs). The
answer, at once, is the port. Detaching sets ``interface_detaching``: the
agent unplugs the port and deletes it (made for the server) or frees it
(the user's); then the server forgets it. The server's addresses follow.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from sqlalchemy import func, select
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.compute import states
from stratus.compute.api import common, servers
from stratus.compute.api.server_lifecycle import _claim_task, conflict
from stratus.compute.model import Server, ServerPort
from stratus.compute.remote import Neighbours
from stratus.compute.scheduler import port_details

RULE = "os_compute_api:os-attach-interfaces"
ATTACH_STATES = (states.ACTIVE, states.PAUSED, states.STOPPED)


def _view(port: dict[str, Any]) -> dict[str, Any]:
    return {
        "port_state": port.get("status"),
        "fixed_ips": [
            {"subnet_id": f.get("subnet_id"), "ip_address": f.get("ip_address")}
            for f in port.get("fixed_ips", [])
        ],
        "port_id": port["id"],
        "net_id": port.get("network_id"),
        "mac_addr": port.get("mac_address"),
    }


def _server(req: ApiRequest, rule: str) -> Server:
    with common.service(req).db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:{rule}")
        session.expunge(server)
        return server


@endpoint
def index(req: ApiRequest) -> Response:
    server = _server(req, "list")
    ports = servers.neighbours(req).list_ports(device_id=server.id)
    return ok({"interfaceAttachments": [_view(p) for p in ports]})


def _attached(apis: Neighbours, server_id: str, port_id: str) -> dict[str, Any]:
    try:
        port = apis.get_port(port_id)
    except errors.NotFound:
        port = None
    if port is None or port.get("device_id") != server_id:
        raise errors.NotFound(f"Instance {server_id} does not have a port with id {port_id}")
    return port


@endpoint
def show(req: ApiRequest) -> Response:
    server = _server(req, "show")
    port = _attached(servers.neighbours(req), server.id, req.path_params["port_id"])
    return ok({"interfaceAttachment": _view(port)})


def _request(req: ApiRequest) -> tuple[str | None, str | None, str | None]:
    """(network, port, fixed IP) asked for; all None: the project's one network."""
    document = req.json()
    if document in ({}, None):
        return None, None, None
    if not isinstance(document, dict) or not isinstance(document.get("interfaceAttachment"), dict):
        raise errors.BadRequest(
            "The request body must be an object with the key 'interfaceAttachment'."
        )
    common.reject_unknown(document, {"interfaceAttachment"}, "body")
    values = document["interfaceAttachment"]
    common.reject_unknown(values, {"net_id", "port_id", "fixed_ips"}, "interfaceAttachment")
    network_id, port_id = values.get("net_id"), values.get("port_id")
    for name, value in (("net_id", network_id), ("port_id", port_id)):
        if value is not None and (not isinstance(value, str) or not servers._UUID.match(value)):
            raise errors.BadRequest(f"Invalid input for field/attribute {name}: {value!r}.")
    fixed_ip = None
    if "fixed_ips" in values:
        raw = values["fixed_ips"]
        if (
            not isinstance(raw, list)
            or len(raw) != 1
            or not isinstance(raw[0], dict)
            or set(raw[0]) != {"ip_address"}
        ):
            raise errors.BadRequest(
                'Invalid input for field/attribute fixed_ips: [{"ip_address": ...}], one.'
            )
        try:
            fixed_ip = str(ipaddress.ip_address(raw[0]["ip_address"]))
        except (ValueError, TypeError):
            raise errors.BadRequest(
                f"Invalid input for field/attribute ip_address: {raw[0]['ip_address']!r}."
            ) from None
    if network_id and port_id:
        raise errors.BadRequest("Must not input both network_id and port_id")
    if fixed_ip and not network_id:
        raise errors.BadRequest("Must input network_id when request IP address")
    return network_id, port_id, fixed_ip


def _check_state(req: ApiRequest, server: Server, action: str) -> None:
    servers.check_unlocked(req, server)
    if server.task_state is not None or server.vm_state not in ATTACH_STATES or not server.host:
        raise conflict(server, action, ATTACH_STATES)


@endpoint
def create(req: ApiRequest) -> Response:
    network_id, port_id, fixed_ip = _request(req)
    server = _server(req, "create")
    _check_state(req, server, "attach_interface")
    apis = servers.neighbours(req)
    if port_id is not None:
        try:
            port = apis.get_port(port_id)
        except errors.NotFound:
            raise errors.NotFound(f"Port {port_id} could not be found.") from None
        if port.get("device_id"):
            raise errors.Conflict(f"Port {port_id} is still in use.")
        network_id = port["network_id"]
    elif network_id is not None:
        try:
            apis.get_network(network_id)
        except errors.NotFound:
            raise errors.NotFound(f"Network {network_id} could not be found.") from None
    else:
        try:
            chosen = servers._networks(req, apis, None)
        except errors.Conflict as exc:
            raise errors.BadRequest(exc.message) from None
        if not chosen:
            raise errors.BadRequest("No network is available to attach the interface to.")
        network_id = chosen[0]["network_id"]
    binding = {
        "device_id": server.id,
        "device_owner": f"compute:{server.availability_zone or 'nova'}",
    }
    if port_id is not None:
        port = apis.update_port(port_id, binding)
    else:
        values: dict[str, Any] = {**binding, "network_id": network_id}
        if fixed_ip:
            values["fixed_ips"] = [{"ip_address": fixed_ip}]
        port = apis.create_port(values)
    owned = port_id is None
    try:
        network = apis.get_network(port["network_id"])
        subnet_ids = sorted({f["subnet_id"] for f in port.get("fixed_ips", [])})
        subnets = {s["id"]: s for s in apis.list_subnets(id=subnet_ids)} if subnet_ids else {}
        with common.service(req).db.session() as session:
            current = session.get(Server, server.id)
            if current is None:
                raise errors.NotFound(f"Instance {server.id} could not be found.")
            if not _claim_task(session, current, ATTACH_STATES, states.INTERFACE_ATTACHING):
                session.refresh(current)
                raise conflict(current, "attach_interface", ATTACH_STATES)
            session.refresh(current)
            position = session.scalar(
                select(func.coalesce(func.max(ServerPort.position), -1)).where(
                    ServerPort.server_id == current.id
                )
            )
            current.ports.append(
                ServerPort(
                    port_id=port["id"],
                    position=int(position) + 1,
                    network_id=port["network_id"],
                    mac_address=port["mac_address"],
                    owned=owned,
                    details=json.dumps(port_details(port, network, subnets)),
                )
            )
            current.task_args = json.dumps({"port_id": port["id"]})
            servers.record_action(session, req, current, "attach_interface")
    except BaseException:
        # Nothing half-made: the port goes (or is free again).
        if owned:
            apis.delete_port(port["id"])
        else:
            apis.update_port(port["id"], {"device_id": "", "device_owner": ""})
        raise
    return ok({"interfaceAttachment": _view(port)})


@endpoint
def delete(req: ApiRequest) -> Response:
    port_id = req.path_params["port_id"]
    with common.service(req).db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:delete")
        if port_id not in {p.port_id for p in server.ports}:
            raise errors.NotFound(f"Port {port_id} is not attached to instance {server.id}.")
        _check_state(req, server, "detach_interface")
        if not _claim_task(session, server, ATTACH_STATES, states.INTERFACE_DETACHING):
            session.refresh(server)
            raise conflict(server, "detach_interface", ATTACH_STATES)
        session.refresh(server)
        server.task_args = json.dumps({"port_id": port_id})
        servers.record_action(session, req, server, "detach_interface")
    return Response(status_code=202)


ROUTES = [
    Route("/v2.1/servers/{server_id}/os-interface", index, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/os-interface", create, methods=["POST"]),
    Route("/v2.1/servers/{server_id}/os-interface/{port_id}", show, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/os-interface/{port_id}", delete, methods=["DELETE"]),
]
