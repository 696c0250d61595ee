"""Effective roles: what a user may do on a project, a domain or the system.

A user's roles on a project are the union of the roles assigned to the user
and to the user's groups on that project, plus *inherited* assignments on the
project's domain and on its ancestors; then every implied role is added
(``admin`` implies ``member`` implies ``reader``). Validation computes this at
every check, so a removed assignment takes effect at once.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from stratus.identity import model


def group_ids(session: Session, user_id: str) -> list[str]:
    return list(
        session.scalars(
            select(model.GroupMembership.group_id).where(model.GroupMembership.user_id == user_id)
        )
    )


def project_ancestors(session: Session, project: model.Project) -> list[str]:
    """IDs of the project's parents, nearest first (cycles are impossible by API)."""
    ancestors: list[str] = []
    parent_id = project.parent_id
    while parent_id and parent_id not in ancestors:
        ancestors.append(parent_id)
        parent_id = session.scalar(
            select(model.Project.parent_id).where(model.Project.id == parent_id)
        )
    return ancestors


def expand_implied(session: Session, role_ids: Iterable[str]) -> set[str]:
    """Role IDs plus every role they imply, transitively."""
    found = set(role_ids)
    frontier = set(found)
    while frontier:
        implied = set(
            session.scalars(
                select(model.ImpliedRole.implied_role_id).where(
                    model.ImpliedRole.prior_role_id.in_(frontier)
                )
            )
        )
        frontier = implied - found
        found |= implied
    return found


def direct_role_ids(
    session: Session,
    user_id: str,
    *,
    project: model.Project | None = None,
    domain_id: str | None = None,
    system: bool = False,
) -> set[str]:
    """Assigned roles before implication (user's own and its groups')."""
    actors = [user_id, *group_ids(session, user_id)]
    a = model.Assignment
    if system:
        clause = and_(
            a.target_id == model.SYSTEM_TARGET, a.type.in_((model.USER_SYSTEM, model.GROUP_SYSTEM))
        )
    elif project is not None:
        inherited_targets = [project.domain_id, *project_ancestors(session, project)]
        clause = or_(
            and_(
                a.target_id == project.id,
                a.inherited.is_(False),
                a.type.in_((model.USER_PROJECT, model.GROUP_PROJECT)),
            ),
            and_(a.target_id.in_(inherited_targets), a.inherited.is_(True)),
        )
    elif domain_id is not None:
        clause = and_(
            a.target_id == domain_id,
            a.inherited.is_(False),
            a.type.in_((model.USER_DOMAIN, model.GROUP_DOMAIN)),
        )
    else:
        return set()
    return set(session.scalars(select(a.role_id).where(a.actor_id.in_(actors), clause)))


def effective_roles(
    session: Session,
    user_id: str,
    *,
    project: model.Project | None = None,
    domain_id: str | None = None,
    system: bool = False,
    strip_domain_roles: bool = True,
) -> list[model.Role]:
    """Roles a token carries, implied ones included.

    Domain-specific roles only imply others (as in Keystone), so they are left
    out unless ``strip_domain_roles`` is False (trusts need them).
    """
    role_ids = expand_implied(
        session,
        direct_role_ids(session, user_id, project=project, domain_id=domain_id, system=system),
    )
    if not role_ids:
        return []
    query = select(model.Role).where(model.Role.id.in_(role_ids))
    if strip_domain_roles:
        query = query.where(model.Role.domain_id == "<<null>>")
    return list(session.scalars(query.order_by(model.Role.name)))


def role_ref(role: model.Role) -> dict[str, object]:
    ref: dict[str, object] = {"id": role.id, "name": role.name}
    if role.domain_id != "<<null>>":
        ref["domain_id"] = role.domain_id
    return ref
