"""``/v3/users``: users, their passwords, and the projects they can use.

Changing a password (by the user or an administrator), disabling a user or
deleting one revokes every token the user holds. A password never appears in
a response or a log line.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model, passwords
from stratus.identity.api import common
from stratus.identity.assignments import effective_roles
from stratus.identity.revocation import end_trusts, revoke

PASSWORD = {"type": ["string", "null"], "maxLength": passwords.MAX_PASSWORD_LENGTH}
_FIELDS = {
    "name": common.NAME,
    "domain_id": common.ID_STRING,
    "password": PASSWORD,
    "enabled": common.BOOLEAN,
    "default_project_id": common.NULLABLE_ID,
    "description": common.DESCRIPTION,
    "options": {"type": "object"},
    "federated": {"type": "array"},
}
CREATE = common.obj_schema(_FIELDS, required=["name"])
UPDATE = common.obj_schema({k: v for k, v in _FIELDS.items() if k != "domain_id"})
CHANGE_PASSWORD = common.obj_schema(
    {
        "password": {"type": "string", "minLength": 1, "maxLength": passwords.MAX_PASSWORD_LENGTH},
        "original_password": {"type": "string", "maxLength": passwords.MAX_PASSWORD_LENGTH},
    },
    required=["password", "original_password"],
)


def view(req: ApiRequest, user: model.User) -> dict[str, Any]:
    body: dict[str, Any] = {
        **(user.extra or {}),
        "id": user.id,
        "name": user.name,
        "domain_id": user.domain_id,
        "enabled": user.enabled,
        "password_expires_at": None,
        "options": {},
        "links": common.self_links(req, f"/v3/users/{user.id}"),
    }
    if user.description:
        body["description"] = user.description
    if user.default_project_id:
        body["default_project_id"] = user.default_project_id
    return body


def _target(user: model.User) -> dict[str, Any]:
    return {"user_id": user.id, "domain_id": user.domain_id}


def _check_default_project(session: Session, project_id: str | None, domain_id: str) -> None:
    if project_id is None:
        return
    project = session.get(model.Project, project_id)
    if project is None:
        raise errors.NotFound(f"Could not find project: {project_id}.")


@endpoint
def create_user(req: ApiRequest) -> Response:
    body = common.validate(req.json(), CREATE, "user")
    context = req.context
    domain_id = body.get("domain_id") or context.domain_id or context.project_domain_id or "default"
    common.enforce(req, "identity:create_user", {"user_id": None, "domain_id": domain_id})
    password = body.get("password")
    hashed = passwords.hash_password(password) if password else None
    with common.service(req).db.session() as session:
        if session.get(model.Domain, domain_id) is None:
            raise errors.NotFound(f"Could not find domain: {domain_id}.")
        _check_default_project(session, body.get("default_project_id"), domain_id)
        if session.scalar(
            select(model.User.id).where(
                model.User.domain_id == domain_id, model.User.name == body["name"]
            )
        ):
            raise errors.Conflict(
                f"Conflict occurred attempting to store user - Duplicate "
                f"entry: a user named {body['name']} exists in domain "
                f"{domain_id}."
            )
        now = model.utcnow()
        user = model.User(
            id=model.new_id(),
            name=body["name"],
            domain_id=domain_id,
            enabled=body.get("enabled", True),
            password_hash=hashed,
            password_created_at=now if hashed else None,
            default_project_id=body.get("default_project_id"),
            description=body.get("description") or "",
            extra=common.extra_fields(body, _FIELDS),
            created_at=now,
        )
        session.add(user)
        session.flush()
        return common.ok({"user": view(req, user)}, 201)


@endpoint
def list_users(req: ApiRequest) -> Response:
    domain_filter = req.query.get("domain_id")
    common.enforce(req, "identity:list_users", {"domain_id": domain_filter})
    query = common.apply_filters(
        req,
        select(model.User),
        {
            "name": model.User.name,
            "enabled": model.User.enabled,
            "domain_id": model.User.domain_id,
        },
    )
    with common.service(req).db.session() as session:
        return common.list_page(req, session, query, model.User.id, "users", lambda u: view(req, u))


def load_user(
    req: ApiRequest, session: Session, rule: str, extra_target: dict[str, Any] | None = None
) -> model.User:
    user_id = req.path_params["user_id"]
    user = session.get(model.User, user_id)
    if user is None:
        common.enforce(req, rule, {"user_id": user_id, "domain_id": None, **(extra_target or {})})
        raise errors.NotFound(f"Could not find user: {user_id}.")
    common.enforce(req, rule, {**_target(user), **(extra_target or {})})
    return user


@endpoint
def get_user(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        return common.ok({"user": view(req, load_user(req, session, "identity:get_user"))})


@endpoint
def update_user(req: ApiRequest) -> Response:
    raw = req.json()
    if isinstance(raw, dict) and isinstance(raw.get("user"), dict):
        if "domain_id" in raw["user"]:
            raise errors.BadRequest("A user's domain_id cannot be changed.")
        if raw["user"].get("id") not in (None, req.path_params["user_id"]):
            raise errors.BadRequest("A user's ID cannot be changed.")
        raw["user"].pop("id", None)
    body = common.validate(raw, UPDATE, "user")
    with common.service(req).db.session() as session:
        user = load_user(req, session, "identity:update_user")
        if "name" in body and body["name"] != user.name:
            if session.scalar(
                select(model.User.id).where(
                    model.User.domain_id == user.domain_id, model.User.name == body["name"]
                )
            ):
                raise errors.Conflict(f"A user named {body['name']} already exists.")
            user.name = body["name"]
        if "password" in body:
            user.password_hash = (
                passwords.hash_password(body["password"]) if body["password"] else None
            )
            user.password_created_at = model.utcnow()
            revoke(session, user_id=user.id)
        if "enabled" in body:
            if user.enabled and not body["enabled"]:
                revoke(session, user_id=user.id)
            user.enabled = body["enabled"]
        if "default_project_id" in body:
            _check_default_project(session, body["default_project_id"], user.domain_id)
            user.default_project_id = body["default_project_id"]
        if "description" in body:
            user.description = body["description"] or ""
        extra = common.extra_fields(body, _FIELDS)
        if extra:
            user.extra = {**(user.extra or {}), **extra}
        return common.ok({"user": view(req, user)})


@endpoint
def delete_user(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        user = load_user(req, session, "identity:delete_user")
        session.execute(delete(model.Assignment).where(model.Assignment.actor_id == user.id))
        session.execute(
            delete(model.GroupMembership).where(model.GroupMembership.user_id == user.id)
        )
        session.execute(
            delete(model.ApplicationCredential).where(
                model.ApplicationCredential.user_id == user.id
            )
        )
        end_trusts(
            session,
            (model.Trust.trustor_user_id == user.id) | (model.Trust.trustee_user_id == user.id),
        )
        revoke(session, user_id=user.id)
        session.delete(user)
    return common.no_content()


@endpoint(public=True)
def change_password(req: ApiRequest) -> Response:
    body = common.validate(req.json(), CHANGE_PASSWORD, "user")
    user_id = req.path_params["user_id"]
    with common.service(req).db.session() as session:
        user = session.get(model.User, user_id)
        # Keystone lets a user change their own password with the old one,
        # even with an expired password, so no token is required here.
        if (
            user is None
            or not user.enabled
            or not passwords.verify_password(body["original_password"], user.password_hash)
        ):
            raise errors.Unauthorized(
                "The original password is wrong or the user cannot change it."
            )
        user.password_hash = passwords.hash_password(body["password"])
        user.password_created_at = model.utcnow()
        user.failed_auth_count = 0
        revoke(session, user_id=user.id)
    return common.no_content()


@endpoint
def list_user_projects(req: ApiRequest) -> Response:
    from stratus.identity.api.projects import view as project_view

    with common.service(req).db.session() as session:
        user = load_user(req, session, "identity:list_user_projects")
        query = common.apply_filters(
            req,
            select(model.Project),
            {
                "name": model.Project.name,
                "enabled": model.Project.enabled,
                "domain_id": model.Project.domain_id,
            },
        )
        projects = [
            p
            for p in session.scalars(query.order_by(model.Project.id))
            if effective_roles(session, user.id, project=p)
        ]
        return common.list_response(
            req, "projects", [project_view(req, session, p) for p in projects]
        )


ROUTES = [
    Route("/v3/users", create_user, methods=["POST"]),
    Route("/v3/users", list_users, methods=["GET"]),
    Route("/v3/users/{user_id}", get_user, methods=["GET"]),
    Route("/v3/users/{user_id}", update_user, methods=["PATCH"]),
    Route("/v3/users/{user_id}", delete_user, methods=["DELETE"]),
    Route("/v3/users/{user_id}/password", change_password, methods=["POST"]),
    Route("/v3/users/{user_id}/projects", list_user_projects, methods=["GET"]),
]
