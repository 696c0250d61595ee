"""``/os-quota-sets`` and ``/limits``: a project's limits and what it uses.

Up to 2.35 a quota set also shows the networking resources' quotas and up
to 2.56 the injected files' (kept at Nova's defaults, see
``stratus.compute.quotas``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete as sql_delete
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.compute import quotas
from stratus.compute.api import common
from stratus.compute.model import Quota

RULE = "os_compute_api:os-quota-sets"


def _shown(req: ApiRequest) -> tuple[str, ...]:
    """The resources a quota set has at this request's microversion."""
    hidden: set[str] = set()
    if common.at_least(req, 2, 36):
        hidden.update(quotas.NETWORK_LEGACY)
    if common.at_least(req, 2, 57):
        hidden.update(quotas.FILES_LEGACY)
    return tuple(r for r in quotas.RESOURCES if r not in hidden)


def _target(req: ApiRequest) -> str:
    return str(req.path_params["project_id"])


@endpoint
def show(req: ApiRequest) -> Response:
    project_id = _target(req)
    common.enforce(req, f"{RULE}:show", {"project_id": project_id})
    service = common.service(req)
    with service.db.session() as session:
        values = quotas.limits(session, service.options, project_id)
    return ok({"quota_set": {"id": project_id, **{r: values[r] for r in _shown(req)}}})


@endpoint
def detail(req: ApiRequest) -> Response:
    project_id = _target(req)
    common.enforce(req, f"{RULE}:detail", {"project_id": project_id})
    service = common.service(req)
    user_id = req.query.get("user_id") or req.context.user_id
    with service.db.session() as session:
        values = quotas.limits(session, service.options, project_id)
        used = quotas.usage(session, project_id, user_id)
    body = {r: {"limit": values[r], "in_use": used.get(r, 0), "reserved": 0} for r in _shown(req)}
    return ok({"quota_set": {"id": project_id, **body}})


@endpoint
def defaults(req: ApiRequest) -> Response:
    project_id = _target(req)
    common.enforce(req, f"{RULE}:defaults", {"project_id": project_id})
    values = quotas.defaults(common.service(req).options)
    return ok({"quota_set": {"id": project_id, **{r: values[r] for r in _shown(req)}}})


def _parse(req: ApiRequest) -> tuple[dict[str, int], bool]:
    values = dict(common.body(req, "quota_set"))
    force = common.boolean(values.pop("force", False), "force")
    common.reject_unknown(values, set(_shown(req)), "quota_set")
    parsed: dict[str, int] = {}
    for resource, raw in values.items():
        value = int(raw) if isinstance(raw, str) and raw.lstrip("-").isdigit() else raw
        if not isinstance(value, int) or isinstance(value, bool) or not -1 <= value <= 2**31 - 1:
            raise errors.BadRequest(
                f"Invalid input for field/attribute {resource}. Value: {raw!r}. "
                "It must be an integer of -1 (unlimited) or more."
            )
        parsed[resource] = value
    return parsed, force


@endpoint
def update(req: ApiRequest) -> Response:
    project_id = _target(req)
    common.enforce(req, f"{RULE}:update", {"project_id": project_id})
    if req.query.get("user_id"):
        raise errors.BadRequest("Quotas of single users are not supported; set the project's.")
    values, force = _parse(req)
    service = common.service(req)
    with service.db.session() as session:
        used = quotas.usage(session, project_id, req.context.user_id)
        if not force:
            for resource, limit in values.items():
                in_use = used.get(resource, 0)
                if resource != "key_pairs" and 0 <= limit < in_use:
                    raise errors.BadRequest(
                        f"Quota limit {limit} for {resource} must be greater than or equal to "
                        f"already used and reserved {in_use}."
                    )
        quotas.set_limits(session, project_id, values)
        result = quotas.limits(session, service.options, project_id)
    return ok({"quota_set": {r: result[r] for r in _shown(req)}})


@endpoint
def reset(req: ApiRequest) -> Response:
    project_id = _target(req)
    common.enforce(req, f"{RULE}:delete", {"project_id": project_id})
    with common.service(req).db.session() as session:
        session.execute(sql_delete(Quota).where(Quota.project_id == project_id))
    return Response(status_code=202)


# --- limits -------------------------------------------------------------------

# Nova's absolute limit name -> quota resource, and the usage names.
_MAXIMA = {
    "maxTotalInstances": "instances",
    "maxTotalCores": "cores",
    "maxTotalRAMSize": "ram",
    "maxTotalKeypairs": "key_pairs",
    "maxServerMeta": "metadata_items",
    "maxServerGroups": "server_groups",
    "maxServerGroupMembers": "server_group_members",
    "maxPersonality": "injected_files",
    "maxPersonalitySize": "injected_file_content_bytes",
    "maxTotalFloatingIps": "floating_ips",
    "maxSecurityGroups": "security_groups",
    "maxSecurityGroupRules": "security_group_rules",
}
_TOTALS = {
    "totalInstancesUsed": "instances",
    "totalCoresUsed": "cores",
    "totalRAMUsed": "ram",
    "totalServerGroupsUsed": "server_groups",
    "totalFloatingIpsUsed": "floating_ips",
    "totalSecurityGroupsUsed": "security_groups",
}
_IMAGE_META = 128


@endpoint
def limits(req: ApiRequest) -> Response:
    context = common.enforce(req, "os_compute_api:limits")
    project_id = context.project_id or ""
    requested = req.query.get("tenant_id")
    if requested and requested != project_id:
        common.enforce(req, "os_compute_api:limits:other_project", {"project_id": requested})
        project_id = requested
    service = common.service(req)
    shown = set(_shown(req))
    with service.db.session() as session:
        values = quotas.limits(session, service.options, project_id)
        used = quotas.usage(session, project_id, context.user_id)
    absolute: dict[str, Any] = {
        name: values[resource] for name, resource in _MAXIMA.items() if resource in shown
    }
    absolute.update(
        {name: used.get(resource, 0) for name, resource in _TOTALS.items() if resource in shown}
    )
    if not common.at_least(req, 2, 39):
        absolute["maxImageMeta"] = _IMAGE_META
    return ok({"limits": {"rate": [], "absolute": absolute}})


ROUTES = [
    Route("/v2.1/limits", limits, methods=["GET"]),
    Route("/v2.1/os-quota-sets/{project_id}", show, methods=["GET"]),
    Route("/v2.1/os-quota-sets/{project_id}", update, methods=["PUT"]),
    Route("/v2.1/os-quota-sets/{project_id}", reset, methods=["DELETE"]),
    Route("/v2.1/os-quota-sets/{project_id}/detail", detail, methods=["GET"]),
    Route("/v2.1/os-quota-sets/{project_id}/defaults", defaults, methods=["GET"]),
]
