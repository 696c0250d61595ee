"""``/v3/groups``: groups of users, and who belongs to them.

A group belongs to a domain; its members may come from any domain. Roles
granted to a group reach every member (see ``role_assignments``). Removing a
user from a group revokes the user's tokens, and deleting a group removes its
memberships and its role assignments and revokes its members' tokens, as
Keystone does.

A domain admin manages the groups of their domain; adding or removing a
member also needs the member's domain to be theirs (Keystone's rule that the
user and the group both be in the caller's domain).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model
from stratus.identity.api import common
from stratus.identity.api.users import load_user
from stratus.identity.api.users import view as user_view
from stratus.identity.revocation import revoke

_FIELDS = {"name": common.NAME, "description": common.DESCRIPTION, "domain_id": common.ID_STRING}
CREATE = common.obj_schema(_FIELDS, required=["name"])
UPDATE = {
    **common.obj_schema(
        {
            "name": common.NAME,
            "description": common.DESCRIPTION,
            "domain_id": common.ID_STRING,
            "id": common.ID_STRING,
        }
    ),
    "minProperties": 1,
}
GROUP_TYPES = (model.GROUP_PROJECT, model.GROUP_DOMAIN, model.GROUP_SYSTEM)


def view(req: ApiRequest, group: model.Group) -> dict[str, Any]:
    return {
        **(group.extra or {}),
        "id": group.id,
        "name": group.name,
        "domain_id": group.domain_id,
        "description": group.description,
        "links": common.self_links(req, f"/v3/groups/{group.id}"),
    }


def target(group: model.Group) -> dict[str, Any]:
    return {
        "group_id": group.id,
        "domain_id": group.domain_id,
        "group": {"id": group.id, "domain_id": group.domain_id},
    }


def member_ids(session: Session, group_id: str) -> list[str]:
    return list(
        session.scalars(
            select(model.GroupMembership.user_id).where(model.GroupMembership.group_id == group_id)
        )
    )


def load_group(req: ApiRequest, session: Session, rule: str) -> model.Group:
    """The group of the path, after the policy check; 404 only to those allowed to know."""
    group_id = req.path_params["group_id"]
    group = session.get(model.Group, group_id)
    if group is None:
        common.enforce(req, rule, {"group_id": group_id, "domain_id": None})
        raise errors.NotFound(f"Could not find group: {group_id}.")
    common.enforce(req, rule, target(group))
    return group


def _duplicate(session: Session, domain_id: str, name: str) -> bool:
    return bool(
        session.scalar(
            select(model.Group.id).where(
                model.Group.domain_id == domain_id, model.Group.name == name
            )
        )
    )


def _flush(session: Session, name: str, domain_id: str) -> None:
    """Write now; a name taken at the same moment by another request is a 409."""
    try:
        session.flush()
    except IntegrityError:
        raise errors.Conflict(
            f"Conflict occurred attempting to store group - Duplicate entry: "
            f"a group named {name} exists in domain {domain_id}."
        ) from None


@endpoint
def create_group(req: ApiRequest) -> Response:
    body = common.validate(req.json(), CREATE, "group")
    context = req.context
    domain_id = body.get("domain_id") or context.domain_id or context.project_domain_id or "default"
    common.enforce(
        req, "identity:create_group", {"group": body, "group_id": None, "domain_id": domain_id}
    )
    name = body["name"].strip()
    with common.service(req).db.session() as session:
        if session.get(model.Domain, domain_id) is None:
            raise errors.NotFound(f"Could not find domain: {domain_id}.")
        if _duplicate(session, domain_id, name):
            raise errors.Conflict(
                f"Conflict occurred attempting to store group - Duplicate entry: "
                f"a group named {name} exists in domain {domain_id}."
            )
        group = model.Group(
            id=model.new_id(),
            name=name,
            domain_id=domain_id,
            description=body.get("description") or "",
            extra=common.extra_fields(body, _FIELDS),
        )
        session.add(group)
        _flush(session, name, domain_id)
        return common.ok({"group": view(req, group)}, 201)


@endpoint
def list_groups(req: ApiRequest) -> Response:
    common.enforce(req, "identity:list_groups", {"domain_id": req.query.get("domain_id")})
    query = common.apply_filters(
        req,
        select(model.Group),
        {"name": model.Group.name, "domain_id": model.Group.domain_id},
        booleans=(),
    )
    with common.service(req).db.session() as session:
        return common.list_page(
            req, session, query, model.Group.id, "groups", lambda g: view(req, g)
        )


@endpoint
def get_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        return common.ok({"group": view(req, load_group(req, session, "identity:get_group"))})


@endpoint
def update_group(req: ApiRequest) -> Response:
    body = common.validate(req.json(), UPDATE, "group")
    with common.service(req).db.session() as session:
        group = load_group(req, session, "identity:update_group")
        if body.get("id", group.id) != group.id:
            raise errors.BadRequest("The group's ID cannot be changed.")
        if body.get("domain_id", group.domain_id) != group.domain_id:
            raise errors.BadRequest("Cannot change the domain_id of a group.")
        if "name" in body:
            name = body["name"].strip()
            if name != group.name and _duplicate(session, group.domain_id, name):
                raise errors.Conflict(
                    f"Conflict occurred attempting to store group - Duplicate entry: "
                    f"a group named {name} exists in domain {group.domain_id}."
                )
            group.name = name
        if "description" in body:
            group.description = body["description"] or ""
        extra = common.extra_fields(body, _FIELDS)
        if extra:
            group.extra = {**(group.extra or {}), **extra}
        _flush(session, group.name, group.domain_id)
        return common.ok({"group": view(req, group)})


@endpoint
def delete_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group = load_group(req, session, "identity:delete_group")
        members = member_ids(session, group.id)
        removed = session.execute(
            delete(model.Assignment).where(
                model.Assignment.actor_id == group.id, model.Assignment.type.in_(GROUP_TYPES)
            )
        )
        # Members lose what the group gave them; without assignments there is
        # nothing to take away (Keystone's rule).
        if removed.rowcount:  # type: ignore[attr-defined]
            for user_id in members:
                revoke(session, user_id=user_id)
        session.execute(
            delete(model.GroupMembership).where(model.GroupMembership.group_id == group.id)
        )
        session.delete(group)
    return common.no_content()


# --- membership ----------------------------------------------------------------------


@endpoint
def list_users_in_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group = load_group(req, session, "identity:list_users_in_group")
        query = common.apply_filters(
            req,
            select(model.User)
            .join(model.GroupMembership, model.GroupMembership.user_id == model.User.id)
            .where(model.GroupMembership.group_id == group.id),
            {
                "name": model.User.name,
                "enabled": model.User.enabled,
                "domain_id": model.User.domain_id,
            },
        )
        return common.list_page(
            req, session, query, model.User.id, "users", lambda u: user_view(req, u)
        )


def _membership(req: ApiRequest, session: Session, rule: str) -> tuple[model.Group, model.User]:
    """Group and user of the path; the caller must be allowed on both their domains."""
    group_id = req.path_params["group_id"]
    user_id = req.path_params["user_id"]
    group = session.get(model.Group, group_id)
    user = session.get(model.User, user_id)
    base = {"group_id": group_id, "user_id": user_id}
    if group is None or user is None:
        common.enforce(req, rule, {**base, "domain_id": None})
        if group is None:
            raise errors.NotFound(f"Could not find group: {group_id}.")
        raise errors.NotFound(f"Could not find user: {user_id}.")
    base["group"] = {"id": group.id, "domain_id": group.domain_id}
    base["user"] = {"id": user.id, "domain_id": user.domain_id}
    for domain_id in dict.fromkeys((group.domain_id, user.domain_id)):
        common.enforce(req, rule, {**base, "domain_id": domain_id})
    return group, user


def _is_member(session: Session, group_id: str, user_id: str) -> bool:
    return session.get(model.GroupMembership, (group_id, user_id)) is not None


@endpoint
def add_user_to_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group, user = _membership(req, session, "identity:add_user_to_group")
        if not _is_member(session, group.id, user.id):
            session.add(model.GroupMembership(group_id=group.id, user_id=user.id))
            group_id, user_id = group.id, user.id
            try:
                session.flush()
            except IntegrityError:
                # Added by another request at the same moment (done), or the
                # user or group went away meanwhile (a conflict).
                session.rollback()
                if not _is_member(session, group_id, user_id):
                    raise errors.Conflict(
                        "The group or the user changed at the same moment; try again."
                    ) from None
    return common.no_content()


@endpoint
def check_user_in_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group, user = _membership(req, session, "identity:check_user_in_group")
        if not _is_member(session, group.id, user.id):
            raise errors.NotFound(f"User {user.id} is not a member of group {group.id}.")
    return common.no_content()


@endpoint
def remove_user_from_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group, user = _membership(req, session, "identity:remove_user_from_group")
        if not _is_member(session, group.id, user.id):
            raise errors.NotFound(f"User {user.id} is not a member of group {group.id}.")
        session.execute(
            delete(model.GroupMembership).where(
                model.GroupMembership.group_id == group.id,
                model.GroupMembership.user_id == user.id,
            )
        )
        revoke(session, user_id=user.id)
    return common.no_content()


@endpoint
def list_groups_for_user(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        user = load_user(req, session, "identity:list_groups_for_user")
        query = common.apply_filters(
            req,
            select(model.Group)
            .join(model.GroupMembership, model.GroupMembership.group_id == model.Group.id)
            .where(model.GroupMembership.user_id == user.id),
            {"name": model.Group.name, "domain_id": model.Group.domain_id},
            booleans=(),
        )
        return common.list_page(
            req, session, query, model.Group.id, "groups", lambda g: view(req, g)
        )


ROUTES = [
    Route("/v3/groups", create_group, methods=["POST"]),
    Route("/v3/groups", list_groups, methods=["GET"]),
    Route("/v3/groups/{group_id}", get_group, methods=["GET"]),
    Route("/v3/groups/{group_id}", update_group, methods=["PATCH"]),
    Route("/v3/groups/{group_id}", delete_group, methods=["DELETE"]),
    Route("/v3/groups/{group_id}/users", list_users_in_group, methods=["GET"]),
    Route("/v3/groups/{group_id}/users/{user_id}", add_user_to_group, methods=["PUT"]),
    Route("/v3/groups/{group_id}/users/{user_id}", check_user_in_group, methods=["GET", "HEAD"]),
    Route("/v3/groups/{group_id}/users/{user_id}", remove_user_from_group, methods=["DELETE"]),
    Route("/v3/users/{user_id}/groups", list_groups_for_user, methods=["GET"]),
]
