"""A server's metadata, addresses (``ips``) and history (``os-instance-actions``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.compute import quotas
from stratus.compute.api import common, server_views, servers
from stratus.compute.model import InstanceAction, ServerMetadata

RULE = "os_compute_api"


# --- metadata -----------------------------------------------------------------


def _items(server: Any) -> dict[str, str]:
    return {m.key: m.value for m in server.metadata_items}


def _write(req: ApiRequest, rule: str, change: Any) -> dict[str, str]:
    """Apply ``change(current) -> new`` to the server's metadata, within its quota."""
    service = common.service(req)
    with service.db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], rule)
        servers.check_unlocked(req, server)
        limit = quotas.limits(session, service.options, server.project_id)["metadata_items"]
        wanted = servers.check_metadata(change(_items(server)), limit)
        server.metadata_items = [ServerMetadata(key=k, value=v) for k, v in wanted.items()]
        server.revision += 1
        return wanted


def _document(req: ApiRequest, key: str) -> Any:
    document = req.json()
    if not isinstance(document, dict) or set(document) != {key}:
        raise errors.BadRequest(f"The request body must be an object with only the key '{key}'.")
    return document[key]


@endpoint
def metadata_index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        server = servers.find(
            req, session, req.path_params["server_id"], f"{RULE}:server-metadata:index"
        )
        return ok({"metadata": _items(server)})


@endpoint
def metadata_merge(req: ApiRequest) -> Response:
    given = _document(req, "metadata")
    if not isinstance(given, dict):
        raise errors.BadRequest("metadata must be an object.")
    result = _write(req, f"{RULE}:server-metadata:create", lambda current: {**current, **given})
    return ok({"metadata": result})


@endpoint
def metadata_replace(req: ApiRequest) -> Response:
    given = _document(req, "metadata")
    result = _write(req, f"{RULE}:server-metadata:update_all", lambda _current: given)
    return ok({"metadata": result})


@endpoint
def metadata_show(req: ApiRequest) -> Response:
    key = req.path_params["key"]
    with common.service(req).db.session() as session:
        server = servers.find(
            req, session, req.path_params["server_id"], f"{RULE}:server-metadata:show"
        )
        items = _items(server)
    if key not in items:
        raise errors.NotFound("Metadata item was not found")
    return ok({"meta": {key: items[key]}})


@endpoint
def metadata_set(req: ApiRequest) -> Response:
    key = req.path_params["key"]
    meta = _document(req, "meta")
    if not isinstance(meta, dict) or len(meta) != 1:
        raise errors.BadRequest("Request body may contain only one item")
    if key not in meta:
        raise errors.BadRequest("Request body and URI mismatch")
    _write(req, f"{RULE}:server-metadata:update", lambda current: {**current, **meta})
    return ok({"meta": meta})


@endpoint
def metadata_delete(req: ApiRequest) -> Response:
    key = req.path_params["key"]

    def without(current: dict[str, str]) -> dict[str, str]:
        if key not in current:
            raise errors.NotFound("Metadata item was not found")
        return {k: v for k, v in current.items() if k != key}

    _write(req, f"{RULE}:server-metadata:delete", without)
    return Response(status_code=204)


# --- addresses ----------------------------------------------------------------


def _plain(addresses: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {
        network: [{"version": a["version"], "addr": a["addr"]} for a in entries]
        for network, entries in addresses.items()
    }


@endpoint
def ips_index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:ips:index")
        return ok({"addresses": _plain(server_views.addresses(server))})


@endpoint
def ips_show(req: ApiRequest) -> Response:
    label = req.path_params["network"]
    with common.service(req).db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:ips:show")
        addresses = _plain(server_views.addresses(server))
    if label not in addresses:
        raise errors.NotFound(f"Instance is not a member of specified network {label}.")
    return ok({label: addresses[label]})


# --- instance actions ---------------------------------------------------------


def _action_view(action: InstanceAction, events: bool | None, tracebacks: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "action": action.action,
        "instance_uuid": action.server_id,
        "message": action.message,
        "project_id": action.project_id,
        "request_id": action.request_id,
        "start_time": common.timestamp(action.start_time),
        "user_id": action.user_id,
    }
    if events:
        view["events"] = [
            {
                "event": e.event,
                "start_time": common.timestamp(e.start_time),
                "finish_time": common.timestamp(e.finish_time),
                "result": e.result,
                **({"traceback": e.traceback} if tracebacks else {}),
            }
            for e in action.events
        ]
    return view


@endpoint
def actions_index(req: ApiRequest) -> Response:
    server_id = req.path_params["server_id"]
    with common.service(req).db.session() as session:
        server = session.get(servers.Server, server_id)
        project = server.project_id if server is not None else None
        rows = list(
            session.scalars(
                select(InstanceAction)
                .where(InstanceAction.server_id == server_id)
                .order_by(InstanceAction.id.desc())
            )
        )
        if server is None and not rows:
            raise errors.NotFound(f"Instance {server_id} could not be found.")
        project = project or rows[0].project_id
        if project != req.context.project_id and not common.allowed(req, "cloud_reader"):
            raise errors.NotFound(f"Instance {server_id} could not be found.")
        common.enforce(req, f"{RULE}:os-instance-actions:list", {"project_id": project})
        views = [_action_view(r, events=False, tracebacks=False) for r in rows]
    return ok({"instanceActions": views})


@endpoint
def actions_show(req: ApiRequest) -> Response:
    server_id, request_id = req.path_params["server_id"], req.path_params["request_id"]
    with common.service(req).db.session() as session:
        action = session.scalars(
            select(InstanceAction).where(
                InstanceAction.server_id == server_id, InstanceAction.request_id == request_id
            )
        ).first()
        if action is None or (
            action.project_id != req.context.project_id and not common.allowed(req, "cloud_reader")
        ):
            raise errors.NotFound(
                f"Action for request_id {request_id} on instance {server_id} not found"
            )
        common.enforce(req, f"{RULE}:os-instance-actions:show", {"project_id": action.project_id})
        events = common.allowed(
            req, f"{RULE}:os-instance-actions:events", {"project_id": action.project_id}
        )
        return ok({"instanceAction": _action_view(action, events=events, tracebacks=events)})


ROUTES = [
    Route("/v2.1/servers/{server_id}/metadata", metadata_index, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/metadata", metadata_merge, methods=["POST"]),
    Route("/v2.1/servers/{server_id}/metadata", metadata_replace, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}/metadata/{key}", metadata_show, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/metadata/{key}", metadata_set, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}/metadata/{key}", metadata_delete, methods=["DELETE"]),
    Route("/v2.1/servers/{server_id}/ips", ips_index, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/ips/{network}", ips_show, methods=["GET"]),
    Route("/v2.1/servers/{server_id}/os-instance-actions", actions_index, methods=["GET"]),
    Route(
        "/v2.1/servers/{server_id}/os-instance-actions/{request_id}",
        actions_show,
        methods=["GET"],
    ),
]
