"""``/v2.0/quotas``: per project limits of every resource, with usage details.

A project without its own row for a resource has the ``[network] quota_*``
default; ``PUT`` sets rows (cloud admins), ``DELETE`` drops them (back to the
defaults). ``-1`` means unlimited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network.api import common
from stratus.network.model import (
    FloatingIP,
    Network,
    Port,
    Quota,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)

MODELS: dict[str, Any] = {
    "network": Network,
    "subnet": Subnet,
    "port": Port,
    "router": Router,
    "floatingip": FloatingIP,
    "security_group": SecurityGroup,
    "security_group_rule": SecurityGroupRule,
}


def _limits(req: ApiRequest, session: Session, project_id: str) -> dict[str, int]:
    svc = common.service(req)
    return {r: common.quota_limit(session, svc, project_id, r) for r in common.QUOTA_RESOURCES}


def _used(session: Session, project_id: str, resource: str) -> int:
    model = MODELS[resource]
    query = select(func.count()).select_from(model).where(model.project_id == project_id)
    return int(session.scalar(query) or 0)


def _check_read(req: ApiRequest, project_id: str) -> None:
    common.enforce(req, "network:get_quota", {"project_id": project_id})


@endpoint
def index(req: ApiRequest) -> Response:
    common.enforce(req, "network:update_quota")
    with common.service(req).db.session() as session:
        projects = sorted(set(session.scalars(select(Quota.project_id))))
        body = [{**_limits(req, session, p), "project_id": p, "tenant_id": p} for p in projects]
    return ok({"quotas": body})


@endpoint
def show(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    _check_read(req, project_id)
    with common.service(req).db.session() as session:
        return ok({"quota": _limits(req, session, project_id)})


@endpoint
def defaults(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    _check_read(req, project_id)
    options = common.service(req).options
    return ok({"quota": {r: int(getattr(options, f"quota_{r}")) for r in common.QUOTA_RESOURCES}})


@endpoint
def details(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    _check_read(req, project_id)
    with common.service(req).db.session() as session:
        limits = _limits(req, session, project_id)
        body = {
            r: {"limit": limit, "used": _used(session, project_id, r), "reserved": 0}
            for r, limit in limits.items()
        }
    return ok({"quota": body})


@endpoint
def update(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    common.enforce(req, "network:update_quota", {"project_id": project_id})
    values = common.body(req, "quota")
    common.check_attributes(values, common.QUOTA_RESOURCES)
    parsed: dict[str, int] = {}
    for resource, value in values.items():
        if isinstance(value, str) and value.lstrip("-").isdigit():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < -1:
            raise errors.BadRequest(
                f"Invalid input for {resource}. Reason: '{value}' is not an integer of -1 or more.",
                kind="InvalidInput",
            )
        parsed[resource] = value
    with common.service(req).db.session() as session:
        for resource, limit in parsed.items():
            row = session.get(Quota, (project_id, resource))
            if row is None:
                session.add(Quota(project_id=project_id, resource=resource, limit=limit))
            else:
                row.limit = limit
        session.flush()
        result = _limits(req, session, project_id)
    return ok({"quota": result})


@endpoint
def reset(req: ApiRequest) -> Response:
    project_id = req.path_params["project_id"]
    common.enforce(req, "network:update_quota", {"project_id": project_id})
    with common.service(req).db.session() as session:
        session.execute(delete(Quota).where(Quota.project_id == project_id))
    return no_content()


ROUTES = [
    Route("/v2.0/quotas", index, methods=["GET"]),
    Route("/v2.0/quotas/{project_id}", show, methods=["GET"]),
    Route("/v2.0/quotas/{project_id}", update, methods=["PUT"]),
    Route("/v2.0/quotas/{project_id}", reset, methods=["DELETE"]),
    Route("/v2.0/quotas/{project_id}/default", defaults, methods=["GET"]),
    Route("/v2.0/quotas/{project_id}/details", details, methods=["GET"]),
]
