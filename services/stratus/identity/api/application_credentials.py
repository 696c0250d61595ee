"""``/v3/users/{user_id}/application_credentials``: a user's own credentials.

An application credential lets a program authenticate as its user on one
project, with a subset of the roles the user had there when it was made. It
is created with a project-scoped token of that user: its project is the
token's, and its roles must be roles of the token (all of them by default).
The secret is generated when not given, shown once in the creation response,
and stored only as an Argon2 hash. A token made from a *restricted*
credential (the default) can neither create nor delete credentials, so a
leaked credential cannot mint others. Deleting a credential revokes every
token made from it.

Access rules are refused (400): Stratus does not enforce them yet, and
storing rules that nothing checks would promise a restriction that does not
exist.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.auth import RequestContext
from stratus.identity import model, passwords
from stratus.identity.api import common
from stratus.identity.assignments import effective_roles
from stratus.identity.revocation import revoke

ROLE_REF = {
    "type": "object",
    "properties": {"id": common.ID_STRING, "name": common.NAME},
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
}
ACCESS_RULE = {
    "type": "object",
    "properties": {
        "path": {"type": "string", "maxLength": 225, "pattern": r"^/.*"},
        "method": {"type": "string", "pattern": r"^(POST|GET|HEAD|PATCH|PUT|DELETE)$"},
        "service": common.ID_STRING,
        "id": common.ID_STRING,
    },
    "additionalProperties": False,
}
_FIELDS = {
    "name": common.NAME,
    "description": common.DESCRIPTION,
    "secret": {"type": ["string", "null"], "maxLength": passwords.MAX_PASSWORD_LENGTH},
    "expires_at": {"type": ["string", "null"]},
    "roles": {"type": "array", "items": ROLE_REF},
    "unrestricted": common.BOOLEAN,
    "access_rules": {"type": "array", "items": ACCESS_RULE},
}
CREATE = common.obj_schema(_FIELDS, required=["name"])


def _isotime(value: Any) -> str | None:
    # The api-ref's form for application credentials: microseconds, no zone
    # designator (the value is UTC).
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value is not None else None


def view(
    req: ApiRequest, cred: model.ApplicationCredential, secret: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cred.id,
        "name": cred.name,
        "description": cred.description or None,
        "project_id": cred.project_id,
        "expires_at": _isotime(cred.expires_at),
        "unrestricted": cred.unrestricted,
        "roles": [
            {"id": r["id"], "name": r.get("name"), "domain_id": r.get("domain_id")}
            for r in cred.roles or []
        ],
        "access_rules": list(cred.access_rules or []),
        "links": common.self_links(
            req, f"/v3/users/{cred.user_id}/application_credentials/{cred.id}"
        ),
    }
    if secret is not None:
        body["secret"] = secret
    return body


def generate_secret() -> str:
    """64 random bytes, URL-safe base64 without padding (as Keystone makes them)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(64)).rstrip(b"=").decode()


def refuse_restricted(context: RequestContext, managing: str) -> None:
    """403 for a token made from a restricted application credential."""
    cred = context.token.get("application_credential") or {}
    if "application_credential" in context.methods and cred.get("restricted", True):
        raise errors.Forbidden(
            f"Using method 'application_credential' is not allowed for managing {managing}."
        )


def find_role(session: Session, ref: dict[str, str]) -> model.Role:
    """A role by ``{"id": ...}`` or by the unique global ``{"name": ...}`` (404)."""
    if "id" in ref:
        role = session.get(model.Role, ref["id"])
    else:
        role = session.scalar(
            select(model.Role).where(
                model.Role.name == ref["name"], model.Role.domain_id == "<<null>>"
            )
        )
    if role is None:
        raise errors.NotFound(f"Could not find role: {ref.get('id') or ref.get('name')}.")
    return role


def _role_ref(role: model.Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "name": role.name,
        "domain_id": None if role.domain_id == "<<null>>" else role.domain_id,
    }


def _granted_roles(
    session: Session, context: RequestContext, user_id: str, project: model.Project, body: Any
) -> list[model.Role]:
    """The credential's roles: requested ones the token has, or all the token's."""
    token_roles = [r["id"] for r in context.token.get("roles", [])]
    requested = body.get("roles")
    if requested:
        roles = []
        for ref in requested:
            # As Keystone: a role named by ID only has to be one of the token's.
            role = session.get(model.Role, ref["id"]) if "id" in ref else find_role(session, ref)
            if role is None or role.id not in token_roles:
                raise errors.BadRequest(
                    "Invalid application credential: Cannot create an application "
                    f"credential with unassigned role {ref.get('name') or ref.get('id')}."
                )
            if role not in roles:
                roles.append(role)
    else:
        roles = [r for r in (session.get(model.Role, rid) for rid in token_roles) if r]
    held = {r.id for r in effective_roles(session, user_id, project=project)}
    for role in roles:
        if role.id not in held:
            raise errors.BadRequest(
                f"Invalid application credential: the user has no role {role.name} "
                f"on project {project.id}."
            )
    if not roles:
        raise errors.BadRequest("Invalid application credential: it would have no role.")
    return roles


@endpoint
def create_application_credential(req: ApiRequest) -> Response:
    user_id = req.path_params["user_id"]
    body = common.validate(req.json(), CREATE, "application_credential")
    context = common.enforce(req, "identity:create_application_credential", {"user_id": user_id})
    refuse_restricted(context, "additional application credentials")
    if context.user_id != user_id:
        raise errors.Forbidden("Cannot create an application credential for another user.")
    if context.trust_id:
        raise errors.Forbidden("A trust-scoped token cannot create application credentials.")
    if not context.project_id:
        raise errors.Forbidden(
            "An application credential is created with a project-scoped token; "
            "it is bound to that project."
        )
    if body.get("access_rules"):
        raise errors.BadRequest(
            "Access rules are not supported by this cloud: they would not be enforced. "
            "Create the application credential without access_rules."
        )
    expires_at = common.parse_expires_at(body.get("expires_at"))
    secret = body.get("secret") or generate_secret()
    hashed = passwords.hash_password(secret)
    with common.service(req).db.session() as session:
        user = common.get_or_404(session, model.User, user_id, "user")
        project = common.get_or_404(session, model.Project, context.project_id, "project")
        roles = _granted_roles(session, context, user.id, project, body)
        if session.scalar(
            select(model.ApplicationCredential.id).where(
                model.ApplicationCredential.user_id == user.id,
                model.ApplicationCredential.name == body["name"],
            )
        ):
            raise errors.Conflict(
                "Conflict occurred attempting to store application_credential - "
                f"Duplicate entry: the user already has an application credential "
                f"named {body['name']}."
            )
        cred = model.ApplicationCredential(
            id=model.new_id(),
            name=body["name"],
            user_id=user.id,
            project_id=project.id,
            secret_hash=hashed,
            description=body.get("description") or "",
            expires_at=expires_at,
            unrestricted=body.get("unrestricted", False),
            roles=[_role_ref(r) for r in roles],
            access_rules=[],
        )
        session.add(cred)
        session.flush()
        return common.ok({"application_credential": view(req, cred, secret)}, 201)


@endpoint
def list_application_credentials(req: ApiRequest) -> Response:
    user_id = req.path_params["user_id"]
    common.enforce(req, "identity:list_application_credentials", {"user_id": user_id})
    cred = model.ApplicationCredential
    query = common.apply_filters(
        req, select(cred).where(cred.user_id == user_id), {"name": cred.name}
    )
    with common.service(req).db.session() as session:
        common.get_or_404(session, model.User, user_id, "user")
        return common.list_page(
            req, session, query, cred.id, "application_credentials", lambda c: view(req, c)
        )


def _load(session: Session, user_id: str, cred_id: str) -> model.ApplicationCredential:
    cred = session.get(model.ApplicationCredential, cred_id)
    if cred is None or cred.user_id != user_id:
        raise errors.NotFound(f"Could not find application credential: {cred_id}.")
    return cred


@endpoint
def get_application_credential(req: ApiRequest) -> Response:
    user_id = req.path_params["user_id"]
    common.enforce(req, "identity:get_application_credential", {"user_id": user_id})
    with common.service(req).db.session() as session:
        cred = _load(session, user_id, req.path_params["application_credential_id"])
        return common.ok({"application_credential": view(req, cred)})


@endpoint
def delete_application_credential(req: ApiRequest) -> Response:
    user_id = req.path_params["user_id"]
    context = common.enforce(req, "identity:delete_application_credential", {"user_id": user_id})
    refuse_restricted(context, "application credentials")
    with common.service(req).db.session() as session:
        cred = _load(session, user_id, req.path_params["application_credential_id"])
        revoke(session, application_credential_id=cred.id)
        session.delete(cred)
    return common.no_content()


_COLLECTION = "/v3/users/{user_id}/application_credentials"
ROUTES = [
    Route(_COLLECTION, create_application_credential, methods=["POST"]),
    Route(_COLLECTION, list_application_credentials, methods=["GET"]),
    Route(
        _COLLECTION + "/{application_credential_id}",
        get_application_credential,
        methods=["GET"],
    ),
    Route(
        _COLLECTION + "/{application_credential_id}",
        delete_application_credential,
        methods=["DELETE"],
    ),
]
