"""``/v3/OS-TRUST/trusts``: delegation from a trustor to a trustee.

A trust lets its trustee get tokens scoped to the trust (``OS-TRUST:trust``)
that carry the trust's roles on its project, as long as the trustor still
holds them; with ``impersonation`` the tokens name the trustor as their user.
Only the trustor creates a trust, and only with roles the trustor has on the
project. ``remaining_uses`` counts down with each token issued; an expired,
used-up or deleted trust answers 404. Deleting a trust (soft, ``deleted_at``)
revokes every token made from it. Checks at token time live in
``stratus.identity.authentication``.

Redelegation (creating a trust with a trust-scoped token) is not supported
and is refused with 403; ``allow_redelegation`` and ``redelegation_count``
are recorded and shown as Keystone computes them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model
from stratus.identity.api import common
from stratus.identity.api.application_credentials import ROLE_REF, find_role, refuse_restricted
from stratus.identity.api.roles import view as role_view
from stratus.identity.assignments import effective_roles
from stratus.identity.revocation import revoke

# Keystone's [trust] max_redelegation_count default.
MAX_REDELEGATION_COUNT = 3
USER_ID = {"type": "string", "minLength": 1, "maxLength": 64}
_FIELDS = {
    "trustor_user_id": USER_ID,
    "trustee_user_id": USER_ID,
    "impersonation": common.BOOLEAN,
    "project_id": common.NULLABLE_ID,
    "remaining_uses": {"type": ["integer", "null"], "minimum": 1},
    "expires_at": {"type": ["string", "null"]},
    "allow_redelegation": {"type": ["boolean", "null"]},
    "redelegation_count": {"type": ["integer", "null"], "minimum": 0},
    "roles": {"type": "array", "items": ROLE_REF},
}
CREATE = common.obj_schema(
    _FIELDS, required=["trustor_user_id", "trustee_user_id", "impersonation"]
)


def _isotime(value: Any) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def _roles(session: Session, trust: model.Trust) -> list[model.Role]:
    found = (session.get(model.Role, ref["id"]) for ref in trust.roles or [])
    return [r for r in found if r is not None]


def view(
    req: ApiRequest, session: Session, trust: model.Trust, *, with_roles: bool = True
) -> dict[str, Any]:
    body: dict[str, Any] = {
        **(trust.extra or {}),
        "id": trust.id,
        "trustor_user_id": trust.trustor_user_id,
        "trustee_user_id": trust.trustee_user_id,
        "project_id": trust.project_id,
        "impersonation": trust.impersonation,
        "expires_at": _isotime(trust.expires_at),
        "remaining_uses": trust.remaining_uses,
        "allow_redelegation": trust.allow_redelegation,
        "redelegation_count": trust.redelegation_count,
        "redelegated_trust_id": trust.redelegated_trust_id,
        "links": common.self_links(req, f"/v3/OS-TRUST/trusts/{trust.id}"),
    }
    if with_roles:
        body["roles"] = [role_view(req, r) for r in _roles(session, trust)]
        body["roles_links"] = _roles_links(req, trust)
    return body


def _roles_links(req: ApiRequest, trust: model.Trust) -> dict[str, Any]:
    return {
        "self": common.url(req, f"/v3/OS-TRUST/trusts/{trust.id}/roles"),
        "previous": None,
        "next": None,
    }


def _target(trust: model.Trust) -> dict[str, Any]:
    return {
        "trust": {
            "trustor_user_id": trust.trustor_user_id,
            "trustee_user_id": trust.trustee_user_id,
        }
    }


def _usable(session: Session, trust_id: str) -> model.Trust:
    """The trust, or 404 when it is unknown, deleted, expired or used up."""
    trust = session.get(model.Trust, trust_id)
    if (
        trust is None
        or trust.deleted_at is not None
        or (trust.expires_at is not None and trust.expires_at <= model.utcnow())
        or (trust.remaining_uses is not None and trust.remaining_uses <= 0)
    ):
        raise errors.NotFound(f"Could not find trust: {trust_id}.")
    return trust


def _load(req: ApiRequest, session: Session, rule: str) -> model.Trust:
    # As Keystone: a missing trust is 404 for anyone, before the policy check.
    trust = _usable(session, req.path_params["trust_id"])
    common.enforce(req, rule, _target(trust))
    return trust


def _redelegation(body: dict[str, Any]) -> tuple[bool, int]:
    """(allow_redelegation, redelegation_count) as Keystone settles them."""
    requested = body.get("redelegation_count")
    if not body.get("allow_redelegation") or requested == 0:
        return False, 0
    if requested is not None and requested > MAX_REDELEGATION_COUNT:
        raise errors.Forbidden(
            f"Requested redelegation depth of {requested} is greater than allowed "
            f"{MAX_REDELEGATION_COUNT}."
        )
    if body.get("remaining_uses") is not None:
        raise errors.BadRequest("remaining_uses must not be set if redelegation is allowed.")
    return True, MAX_REDELEGATION_COUNT if requested is None else requested


@endpoint
def create_trust(req: ApiRequest) -> Response:
    body = common.validate(req.json(), CREATE, "trust")
    context = common.enforce(
        req, "identity:create_trust", {"trust": {"trustor_user_id": body["trustor_user_id"]}}
    )
    refuse_restricted(context, "trusts")
    if context.trust_id:
        raise errors.Forbidden("Redelegation of a trust is not supported by this cloud.")
    if body.get("project_id") and not body.get("roles"):
        raise errors.Forbidden("At least one role should be specified.")
    if context.user_id != body["trustor_user_id"]:
        raise errors.Forbidden("The authenticated user should match the trustor.")
    allow_redelegation, redelegation_count = _redelegation(body)
    expires_at = common.parse_expires_at(body.get("expires_at"))
    with common.service(req).db.session() as session:
        trustor = common.get_or_404(session, model.User, body["trustor_user_id"], "user")
        common.get_or_404(session, model.User, body["trustee_user_id"], "user")
        project = None
        if body.get("project_id"):
            project = common.get_or_404(session, model.Project, body["project_id"], "project")
        roles = list(
            {r.id: r for r in (find_role(session, ref) for ref in body.get("roles", []))}.values()
        )
        held = (
            {
                r.id
                for r in effective_roles(
                    session, trustor.id, project=project, strip_domain_roles=False
                )
            }
            if project is not None
            else set()
        )
        for role in roles:
            if role.id not in held:
                raise errors.NotFound(f"Could not find role: {role.id}.")
        remaining = body.get("remaining_uses")
        trust = model.Trust(
            id=model.new_id(),
            trustor_user_id=trustor.id,
            trustee_user_id=body["trustee_user_id"],
            project_id=project.id if project else None,
            impersonation=body["impersonation"],
            expires_at=expires_at,
            remaining_uses=int(remaining) if remaining is not None else None,
            allow_redelegation=allow_redelegation,
            redelegation_count=redelegation_count,
            roles=[{"id": r.id} for r in roles],
            extra=common.extra_fields(body, _FIELDS),
        )
        session.add(trust)
        session.flush()
        return common.ok({"trust": view(req, session, trust)}, 201)


@endpoint
def list_trusts(req: ApiRequest) -> Response:
    trustor = req.query.get("trustor_user_id")
    trustee = req.query.get("trustee_user_id")
    svc = common.service(req)
    if trustor or trustee:
        # Filters narrow each other, so seeing one's own side is enough.
        context = req.context
        allowed = (
            trustor
            and svc.enforcer.check(
                "identity:list_trusts_for_trustor",
                context.creds(),
                {"target": {"trust": {"trustor_user_id": trustor}}},
            )
        ) or (
            trustee
            and svc.enforcer.check(
                "identity:list_trusts_for_trustee",
                context.creds(),
                {"target": {"trust": {"trustee_user_id": trustee}}},
            )
        )
        if not allowed:
            raise errors.Forbidden(
                "You are not authorized to perform the requested action: "
                "identity:list_trusts_for_"
                f"{'trustor' if trustor else 'trustee'}."
            )
    else:
        common.enforce(req, "identity:list_trusts")
    query = select(model.Trust).where(model.Trust.deleted_at.is_(None))
    if trustor:
        query = query.where(model.Trust.trustor_user_id == trustor)
    if trustee:
        query = query.where(model.Trust.trustee_user_id == trustee)
    with svc.db.session() as session:
        return common.list_page(
            req,
            session,
            query,
            model.Trust.id,
            "trusts",
            lambda t: view(req, session, t, with_roles=False),
        )


@endpoint
def get_trust(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        trust = _load(req, session, "identity:get_trust")
        return common.ok({"trust": view(req, session, trust)})


@endpoint
def delete_trust(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        trust = _load(req, session, "identity:delete_trust")
        refuse_restricted(req.context, "trusts")
        trust.deleted_at = model.utcnow()
        revoke(session, trust_id=trust.id)
    return common.no_content()


@endpoint
def list_trust_roles(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        trust = _load(req, session, "identity:list_roles_for_trust")
        return common.ok(
            {
                "roles": [role_view(req, r) for r in _roles(session, trust)],
                "links": _roles_links(req, trust),
            }
        )


@endpoint
def get_trust_role(req: ApiRequest) -> Response:
    role_id = req.path_params["role_id"]
    with common.service(req).db.session() as session:
        trust = _load(req, session, "identity:get_role_for_trust")
        role = next((r for r in _roles(session, trust) if r.id == role_id), None)
        if role is None:
            raise errors.NotFound(f"Could not find role: {role_id}.")
        return common.ok({"role": role_view(req, role)})


ROUTES = [
    Route("/v3/OS-TRUST/trusts", create_trust, methods=["POST"]),
    Route("/v3/OS-TRUST/trusts", list_trusts, methods=["GET"]),
    Route("/v3/OS-TRUST/trusts/{trust_id}", get_trust, methods=["GET"]),
    Route("/v3/OS-TRUST/trusts/{trust_id}", delete_trust, methods=["DELETE"]),
    Route("/v3/OS-TRUST/trusts/{trust_id}/roles", list_trust_roles, methods=["GET"]),
    Route("/v3/OS-TRUST/trusts/{trust_id}/roles/{role_id}", get_trust_role, methods=["GET"]),
]
