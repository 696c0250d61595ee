"""``/os-server-groups``: servers placed together or apart.

Before 2.64 a group names its one policy in a list (``policies``):
``affinity``, ``anti-affinity``, ``soft-affinity`` or ``soft-anti-affinity``
(the soft ones from 2.15). Servers join a group at create, with the
scheduler hint ``group``; the scheduler keeps a hard policy or refuses
the server, and weighs hosts by a soft one (``stratus.compute.scheduling``).
From 2.13 a group shows its ``project_id`` and ``user_id``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.compute import quotas
from stratus.compute.api import common
from stratus.compute.model import Server, ServerGroup

RULE = "os_compute_api:os-server-groups"


def _policies(req: ApiRequest) -> tuple[str, ...]:
    base = ("affinity", "anti-affinity")
    return (*base, "soft-affinity", "soft-anti-affinity") if common.at_least(req, 2, 15) else base


def _view(req: ApiRequest, session: Session, group: ServerGroup) -> dict[str, Any]:
    members = list(session.scalars(select(Server.id).where(Server.server_group_id == group.id)))
    view: dict[str, Any] = {
        "id": group.id,
        "name": group.name,
        "policies": [group.policy],
        "members": members,
        "metadata": {},
    }
    if common.at_least(req, 2, 13):
        view["project_id"] = group.project_id
        view["user_id"] = group.user_id
    return view


def _find(req: ApiRequest, session: Session, rule: str) -> ServerGroup:
    group = session.get(ServerGroup, req.path_params["group_id"])
    if group is None or (
        group.project_id != req.context.project_id and not common.allowed(req, "cloud_reader")
    ):
        raise errors.NotFound(f"Instance group {req.path_params['group_id']} could not be found.")
    common.enforce(req, rule, {"project_id": group.project_id})
    return group


@endpoint
def index(req: ApiRequest) -> Response:
    context = common.enforce(req, f"{RULE}:index", {"project_id": req.context.project_id})
    query = select(ServerGroup).order_by(ServerGroup.created_at)
    everyone = req.query.get("all_projects", "").lower() in ("1", "true", "yes")
    if not (everyone and common.allowed(req, f"{RULE}:index:all_projects")):
        query = query.where(ServerGroup.project_id == context.project_id)
    with common.service(req).db.session() as session:
        return ok({"server_groups": [_view(req, session, g) for g in session.scalars(query)]})


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        return ok({"server_group": _view(req, session, _find(req, session, f"{RULE}:show"))})


@endpoint
def create(req: ApiRequest) -> Response:
    context = common.enforce(req, f"{RULE}:create", {"project_id": req.context.project_id})
    values = common.body(req, "server_group")
    common.reject_unknown(values, {"name", "policies"}, "server_group")
    name = values.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or name != name.strip():
        raise errors.BadRequest(f"Invalid input for field/attribute name. Value: {name!r}.")
    policies = values.get("policies")
    if not isinstance(policies, list) or len(policies) != 1 or policies[0] not in _policies(req):
        raise errors.BadRequest(
            f"Invalid input for field/attribute policies. Value: {policies!r}. Give one of "
            f"{', '.join(_policies(req))}."
        )
    service = common.service(req)
    with service.db.session() as session:
        try:
            quotas.check(
                session, service.options, context.project_id or "", None, {"server_groups": 1}
            )
        except quotas.QuotaExceeded:
            raise errors.Forbidden("Quota exceeded, too many server groups.") from None
        group = ServerGroup(
            id=str(uuid.uuid4()),
            project_id=context.project_id,
            user_id=str(context.user_id),
            name=name,
            policy=policies[0],
        )
        session.add(group)
        session.flush()
        return ok({"server_group": _view(req, session, group)})


@endpoint
def delete(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group = _find(req, session, f"{RULE}:delete")
        session.delete(group)
    return Response(status_code=204)


def check_members(session: Session, options: Any, group_id: str, adding: int) -> None:
    """403 when ``adding`` servers would take the group past its member quota."""
    group = session.get(ServerGroup, group_id)
    if group is None:
        return
    limit = quotas.limits(session, options, group.project_id)["server_group_members"]
    members = session.scalar(
        select(func.count()).select_from(Server).where(Server.server_group_id == group_id)
    )
    if 0 <= limit < (members or 0) + adding:
        raise errors.Forbidden("Quota exceeded, too many servers in group")


ROUTES = [
    Route("/v2.1/os-server-groups", index, methods=["GET"]),
    Route("/v2.1/os-server-groups", create, methods=["POST"]),
    Route("/v2.1/os-server-groups/{group_id}", show, methods=["GET"]),
    Route("/v2.1/os-server-groups/{group_id}", delete, methods=["DELETE"]),
]
