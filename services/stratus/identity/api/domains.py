"""``/v3/domains``: create, list, show, update, delete.

A domain must be disabled before it is deleted (Keystone's safety catch), and
deleting it removes what it contains: projects, users, groups, domain roles
and their assignments.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model
from stratus.identity.api import common
from stratus.identity.revocation import revoke

# Keystone limits domain (and project) names to 64 characters.
_FIELDS = {
    "name": {**common.NAME, "maxLength": 64},
    "description": common.DESCRIPTION,
    "enabled": common.BOOLEAN,
}
CREATE = common.obj_schema(_FIELDS, required=["name"])
UPDATE = common.obj_schema({**_FIELDS, "id": {"type": "string"}}, additional=True)


def view(req: ApiRequest, domain: model.Domain) -> dict[str, Any]:
    return {
        **(domain.extra or {}),
        "id": domain.id,
        "name": domain.name,
        "description": domain.description,
        "enabled": domain.enabled,
        "tags": [],
        "options": {},
        "links": common.self_links(req, f"/v3/domains/{domain.id}"),
    }


@endpoint
def create_domain(req: ApiRequest) -> Response:
    body = common.validate(req.json(), CREATE, "domain")
    common.enforce(req, "identity:create_domain", {"domain": body})
    with common.service(req).db.session() as session:
        if session.scalar(select(model.Domain).where(model.Domain.name == body["name"])):
            raise errors.Conflict(
                f"Conflict occurred attempting to store domain - "
                f"Duplicate entry for name {body['name']}."
            )
        domain = model.Domain(
            id=body.get("explicit_domain_id") or model.new_id(),
            name=body["name"],
            description=body.get("description") or "",
            enabled=body.get("enabled", True),
            extra=common.extra_fields(body, _FIELDS | {"explicit_domain_id": 1}),
        )
        session.add(domain)
        try:
            session.flush()
        except IntegrityError:
            raise errors.Conflict("A domain with this name or ID already exists.") from None
        return common.ok({"domain": view(req, domain)}, 201)


@endpoint
def list_domains(req: ApiRequest) -> Response:
    common.enforce(req, "identity:list_domains")
    query = common.apply_filters(
        req, select(model.Domain), {"name": model.Domain.name, "enabled": model.Domain.enabled}
    )
    with common.service(req).db.session() as session:
        return common.list_page(
            req, session, query, model.Domain.id, "domains", lambda d: view(req, d)
        )


@endpoint
def get_domain(req: ApiRequest) -> Response:
    domain_id = req.path_params["domain_id"]
    common.enforce(req, "identity:get_domain", {"domain_id": domain_id})
    with common.service(req).db.session() as session:
        domain = common.get_or_404(session, model.Domain, domain_id, "domain")
        return common.ok({"domain": view(req, domain)})


@endpoint
def update_domain(req: ApiRequest) -> Response:
    domain_id = req.path_params["domain_id"]
    body = common.validate(req.json(), UPDATE, "domain")
    if body.get("id", domain_id) != domain_id:
        raise errors.BadRequest("The domain ID cannot be changed.")
    common.enforce(req, "identity:update_domain", {"domain_id": domain_id})
    with common.service(req).db.session() as session:
        domain = common.get_or_404(session, model.Domain, domain_id, "domain")
        if "name" in body and body["name"] != domain.name:
            clash = session.scalar(select(model.Domain).where(model.Domain.name == body["name"]))
            if clash:
                raise errors.Conflict(f"A domain named {body['name']} already exists.")
            domain.name = body["name"]
        if "description" in body:
            domain.description = body["description"] or ""
        if "enabled" in body:
            if domain.enabled and not body["enabled"]:
                revoke(session, domain_id=domain.id)
            domain.enabled = body["enabled"]
        extra = common.extra_fields(body, _FIELDS)
        if extra:
            domain.extra = {**(domain.extra or {}), **extra}
        return common.ok({"domain": view(req, domain)})


@endpoint
def delete_domain(req: ApiRequest) -> Response:
    domain_id = req.path_params["domain_id"]
    common.enforce(req, "identity:delete_domain", {"domain_id": domain_id})
    with common.service(req).db.session() as session:
        domain = common.get_or_404(session, model.Domain, domain_id, "domain")
        if domain.enabled:
            raise errors.Forbidden(
                "Cannot delete a domain that is enabled, please disable it first."
            )
        delete_domain_contents(session, domain.id)
        session.delete(domain)
    return common.no_content()


def delete_domain_contents(session: Any, domain_id: str) -> None:
    """Remove a domain's projects, users, groups, roles and their assignments."""
    projects = list(
        session.scalars(select(model.Project.id).where(model.Project.domain_id == domain_id))
    )
    users = list(session.scalars(select(model.User.id).where(model.User.domain_id == domain_id)))
    groups = list(session.scalars(select(model.Group.id).where(model.Group.domain_id == domain_id)))
    roles = list(session.scalars(select(model.Role.id).where(model.Role.domain_id == domain_id)))
    targets = [*projects, domain_id]
    actors = [*users, *groups]
    session.execute(delete(model.Assignment).where(model.Assignment.target_id.in_(targets)))
    session.execute(delete(model.Assignment).where(model.Assignment.actor_id.in_(actors)))
    session.execute(delete(model.Assignment).where(model.Assignment.role_id.in_(roles)))
    session.execute(delete(model.ProjectTag).where(model.ProjectTag.project_id.in_(projects)))
    session.execute(delete(model.GroupMembership).where(model.GroupMembership.group_id.in_(groups)))
    session.execute(delete(model.GroupMembership).where(model.GroupMembership.user_id.in_(users)))
    session.execute(
        delete(model.ApplicationCredential).where(model.ApplicationCredential.user_id.in_(users))
    )
    session.execute(delete(model.ImpliedRole).where(or_roles(roles)))
    session.execute(delete(model.Role).where(model.Role.id.in_(roles)))
    # Children before parents: clear the hierarchy, then remove every project.
    session.execute(
        model.Project.__table__.update()
        .where(model.Project.domain_id == domain_id)
        .values(parent_id=None)
    )
    session.execute(delete(model.Project).where(model.Project.domain_id == domain_id))
    session.execute(delete(model.User).where(model.User.domain_id == domain_id))
    session.execute(delete(model.Group).where(model.Group.domain_id == domain_id))


def or_roles(roles: list[str]) -> Any:
    from sqlalchemy import or_

    return or_(
        model.ImpliedRole.prior_role_id.in_(roles), model.ImpliedRole.implied_role_id.in_(roles)
    )


ROUTES = [
    Route("/v3/domains", create_domain, methods=["POST"]),
    Route("/v3/domains", list_domains, methods=["GET"]),
    Route("/v3/domains/{domain_id}", get_domain, methods=["GET"]),
    Route("/v3/domains/{domain_id}", update_domain, methods=["PATCH"]),
    Route("/v3/domains/{domain_id}", delete_domain, methods=["DELETE"]),
]
