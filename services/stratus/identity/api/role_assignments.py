"""Role assignments: grants on projects, domains and the system, and their list.

Grants (``PUT``/``HEAD``/``GET``/``DELETE`` on ``.../roles/{role_id}``, and the
list ``.../roles``) exist for users and groups on projects, domains and the
system, and through OS-INHERIT as *inherited* grants on a domain or a project,
which reach every project below it but not the target itself. Granting twice
is harmless; revoking a grant that does not exist is 404.

Revoking a grant revokes the matching tokens at once: the user's (or every
group member's) tokens on the project, on the projects that inherited it, or
on the domain (which includes the domain's project tokens). System grants need
no event: a token's roles are recomputed at every validation, so a removed
system role leaves system tokens immediately, and a token left with no role
is refused.

``GET /v3/role_assignments`` lists assignments with Keystone's filters. With
``effective`` it answers what tokens would carry: group assignments become
one entry per member (``links.membership``), inherited assignments one entry
per project that inherits them, implied roles are added after the roles that
imply them (``links.prior_role``), and domain-specific roles, which never
reach a token, are left out. ``include_names`` adds names and domains.

A domain admin (or reader) manages (or sees) the grants whose actor and
target are both in their domain, as in Keystone's default policy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model
from stratus.identity.api import common
from stratus.identity.api.groups import member_ids
from stratus.identity.api.roles import NULL_DOMAIN, domain_of
from stratus.identity.api.roles import view as role_view
from stratus.identity.assignments import group_ids, project_ancestors
from stratus.identity.revocation import revoke

USER_TYPES = (model.USER_PROJECT, model.USER_DOMAIN, model.USER_SYSTEM)
GROUP_TYPES = (model.GROUP_PROJECT, model.GROUP_DOMAIN, model.GROUP_SYSTEM)
PROJECT_TYPES = (model.USER_PROJECT, model.GROUP_PROJECT)
DOMAIN_TYPES = (model.USER_DOMAIN, model.GROUP_DOMAIN)
SYSTEM_TYPES = (model.USER_SYSTEM, model.GROUP_SYSTEM)
_TYPES = {
    ("user", "project"): model.USER_PROJECT,
    ("group", "project"): model.GROUP_PROJECT,
    ("user", "domain"): model.USER_DOMAIN,
    ("group", "domain"): model.GROUP_DOMAIN,
    ("user", "system"): model.USER_SYSTEM,
    ("group", "system"): model.GROUP_SYSTEM,
}


# --- shared with roles ---------------------------------------------------------


def subtree_ids(session: Session, project_id: str) -> list[str]:
    """IDs of every project below ``project_id`` (not itself)."""
    found: list[str] = []
    frontier = [project_id]
    while frontier:
        children = list(
            session.scalars(select(model.Project.id).where(model.Project.parent_id.in_(frontier)))
        )
        children = [c for c in children if c not in found and c != project_id]
        found.extend(children)
        frontier = children
    return found


def revoke_assignment(session: Session, assignment: model.Assignment) -> None:
    """Revoke the tokens that an assignment (about to go) may have put roles in."""
    if assignment.type in SYSTEM_TYPES:
        return  # recomputed at validation; see the module's docstring
    if assignment.type in USER_TYPES:
        users = [assignment.actor_id]
    else:
        users = member_ids(session, assignment.actor_id)
    if not users:
        return
    if assignment.type in DOMAIN_TYPES:
        for user_id in users:
            revoke(session, user_id=user_id, domain_id=assignment.target_id)
        return
    projects = (
        subtree_ids(session, assignment.target_id)
        if assignment.inherited
        else [assignment.target_id]
    )
    for user_id in users:
        for project_id in projects:
            revoke(session, user_id=user_id, project_id=project_id)


# --- grants ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    """What a grant route is about: its actor, its target and whether it is inherited."""

    actor: str  # "user" or "group"
    target: str  # "project", "domain" or "system"
    inherited: bool = False

    @property
    def type(self) -> str:
        return _TYPES[(self.actor, self.target)]

    @property
    def name(self) -> str:
        inherited = "_inherited" if self.inherited else ""
        return f"{self.target}_{self.actor}{inherited}"

    def rule(self, action: str) -> str:
        if self.target == "system":
            return {
                "check": "identity:check_system_grant",
                "create": "identity:create_system_grant",
                "revoke": "identity:revoke_system_grant",
                "list": "identity:list_system_grants",
            }[action]
        return {
            "check": "identity:check_grant",
            "create": "identity:create_grant",
            "revoke": "identity:revoke_grant",
            "list": "identity:list_grants",
        }[action]


@dataclass
class Grant:
    kind: Kind
    actor_id: str
    target_id: str
    target_domain_id: str | None
    role: model.Role | None


def _resolve(req: ApiRequest, session: Session, kind: Kind, action: str) -> Grant:
    """The grant's actor, target and role, after the policy check.

    Only a caller allowed to act on any grant learns that something does not
    exist; a domain admin must hold both the actor's and the target's domain.
    """
    params = req.path_params
    rule = kind.rule(action)
    actor_id = params[f"{kind.actor}_id"]
    actor = session.get(model.User if kind.actor == "user" else model.Group, actor_id)
    target_obj: Any = None
    if kind.target == "system":
        target_id = model.SYSTEM_TARGET
    else:
        target_id = params[f"{kind.target}_id"]
        target_obj = session.get(
            model.Project if kind.target == "project" else model.Domain, target_id
        )
    role_id = params.get("role_id")
    role = session.get(model.Role, role_id) if role_id else None

    policy: dict[str, Any] = {f"{kind.actor}_id": actor_id}
    if actor is not None:
        policy[kind.actor] = {"id": actor.id, "domain_id": actor.domain_id}
    if kind.target == "project":
        policy["project_id"] = target_id
        if target_obj is not None:
            policy["project"] = {"id": target_obj.id, "domain_id": target_obj.domain_id}
    elif kind.target == "domain":
        policy["domain"] = {"id": target_id}
    else:
        policy["system"] = "all"
    if role is not None:
        policy["role"] = {"id": role.id, "name": role.name, "domain_id": domain_of(role)}

    missing = None
    if role_id and role is None:
        missing = ("role", role_id)
    elif actor is None:
        missing = (kind.actor, actor_id)
    elif kind.target != "system" and target_obj is None:
        missing = (kind.target, target_id)
    if missing is not None:
        common.enforce(req, rule, {**policy, "domain_id": None})
        raise errors.NotFound(f"Could not find {missing[0]}: {missing[1]}.")

    target_domain: str | None = None
    if kind.target == "project":
        target_domain = target_obj.domain_id
    elif kind.target == "domain":
        target_domain = target_obj.id
    if kind.target == "system":
        common.enforce(req, rule, {**policy, "domain_id": None})
    else:
        for domain_id in dict.fromkeys((target_domain, actor.domain_id)):
            common.enforce(req, rule, {**policy, "domain_id": domain_id})
    return Grant(kind, actor_id, target_id, target_domain, role)


def _where(grant: Grant) -> list[Any]:
    a = model.Assignment
    return [
        a.type == grant.kind.type,
        a.actor_id == grant.actor_id,
        a.target_id == grant.target_id,
        a.inherited.is_(grant.kind.inherited),
    ]


def _find(session: Session, grant: Grant) -> model.Assignment | None:
    assert grant.role is not None
    return session.scalar(
        select(model.Assignment).where(*_where(grant), model.Assignment.role_id == grant.role.id)
    )


def _not_found(grant: Grant) -> errors.NotFound:
    assert grant.role is not None
    return errors.NotFound(
        f"Could not find role assignment with role: {grant.role.id}, user or group: "
        f"{grant.actor_id}, project, domain, or system: {grant.target_id}."
    )


def _check_role_fits(grant: Grant) -> None:
    role = grant.role
    assert role is not None
    role_domain = domain_of(role)
    if role_domain is None:
        return
    if grant.kind.target == "system":
        raise errors.BadRequest(
            f"Role {role.id} is a domain-specific role. Unable to use a "
            "domain-specific role in a system assignment."
        )
    if role_domain != grant.target_domain_id:
        raise errors.Forbidden(
            f"The {grant.kind.target} {grant.target_id} must be in the same domain "
            f"as the role {role.id} being assigned."
        )


def _grant_handlers(kind: Kind) -> dict[str, Any]:
    def check(req: ApiRequest) -> Response:
        with common.service(req).db.session() as session:
            grant = _resolve(req, session, kind, "check")
            if _find(session, grant) is None:
                raise _not_found(grant)
        return common.no_content()

    def create(req: ApiRequest) -> Response:
        with common.service(req).db.session() as session:
            grant = _resolve(req, session, kind, "create")
            _check_role_fits(grant)
            if _find(session, grant) is None:
                assert grant.role is not None
                role_id = grant.role.id
                session.add(
                    model.Assignment(
                        type=kind.type,
                        actor_id=grant.actor_id,
                        target_id=grant.target_id,
                        role_id=role_id,
                        inherited=kind.inherited,
                    )
                )
                try:
                    session.flush()
                except IntegrityError:
                    # Granted by another request at the same moment (done), or
                    # its role went away meanwhile (a conflict).
                    session.rollback()
                    exists = session.scalar(
                        select(model.Assignment.role_id).where(
                            *_where(grant), model.Assignment.role_id == role_id
                        )
                    )
                    if exists is None:
                        raise errors.Conflict(
                            "The grant changed at the same moment; try again."
                        ) from None
        return common.no_content()

    def remove(req: ApiRequest) -> Response:
        with common.service(req).db.session() as session:
            grant = _resolve(req, session, kind, "revoke")
            assignment = _find(session, grant)
            if assignment is None:
                raise _not_found(grant)
            revoke_assignment(session, assignment)
            session.delete(assignment)
        return common.no_content()

    def listing(req: ApiRequest) -> Response:
        with common.service(req).db.session() as session:
            grant = _resolve(req, session, kind, "list")
            roles = session.scalars(
                select(model.Role)
                .join(model.Assignment, model.Assignment.role_id == model.Role.id)
                .where(*_where(grant))
                .order_by(model.Role.name, model.Role.id)
            )
            return common.list_response(req, "roles", [role_view(req, r) for r in roles])

    handlers = {"check": check, "create": create, "revoke": remove, "list": listing}
    for action, handler in handlers.items():
        handler.__name__ = f"{action}_{kind.name}_grant"
    return {action: endpoint(handler) for action, handler in handlers.items()}


def _grant_routes(prefix: str, kind: Kind, suffix: str = "", listing: bool = True) -> list[Route]:
    handlers = _grant_handlers(kind)
    item = f"{prefix}/roles/{{role_id}}{suffix}"
    routes = [
        Route(item, handlers["create"], methods=["PUT"]),
        Route(item, handlers["check"], methods=["GET", "HEAD"]),
        Route(item, handlers["revoke"], methods=["DELETE"]),
    ]
    if listing:
        routes.append(Route(f"{prefix}/roles{suffix}", handlers["list"], methods=["GET"]))
    return routes


# --- GET /v3/role_assignments -----------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One listed assignment, with where it came from when it is indirect."""

    role_id: str
    user_id: str | None = None
    group_id: str | None = None
    project_id: str | None = None
    domain_id: str | None = None
    system: bool = False
    inherited: bool = False
    via_group: str | None = None
    via_domain: str | None = None
    via_project: str | None = None
    via_role: str | None = None  # the role that implied this one
    assigned_role: str | None = None  # the role actually assigned, for implied ones


def _entry(a: model.Assignment) -> Entry:
    actor = {"user_id": a.actor_id} if a.type in USER_TYPES else {"group_id": a.actor_id}
    scope: dict[str, Any]
    if a.type in PROJECT_TYPES:
        scope = {"project_id": a.target_id}
    elif a.type in DOMAIN_TYPES:
        scope = {"domain_id": a.target_id}
    else:
        scope = {"system": True}
    return Entry(role_id=a.role_id, inherited=a.inherited, **actor, **scope)


@dataclass
class _Query:
    user_id: str | None
    group_id: str | None
    role_id: str | None
    project_id: str | None
    domain_id: str | None
    system: bool
    inherited: bool | None
    effective: bool
    include_names: bool
    include_subtree: bool


def _flag(req: ApiRequest, name: str) -> bool:
    return name in req.query and common.parse_bool(req.query[name], name)


def _parse(req: ApiRequest) -> _Query:
    q = req.query
    inherited_to = q.get("scope.OS-INHERIT:inherited_to")
    return _Query(
        user_id=q.get("user.id") or None,
        group_id=q.get("group.id") or None,
        role_id=q.get("role.id") or None,
        project_id=q.get("scope.project.id") or None,
        domain_id=q.get("scope.domain.id") or None,
        system=q.get("scope.system") == "all",
        inherited=None if inherited_to is None else inherited_to == "projects",
        effective=_flag(req, "effective"),
        include_names=_flag(req, "include_names"),
        include_subtree=_flag(req, "include_subtree"),
    )


def _check_combinations(req: ApiRequest, query: _Query) -> None:
    q = req.query
    if q.get("scope.domain.id") and q.get("scope.project.id"):
        raise errors.BadRequest("Specify a domain or project, not both")
    if q.get("scope.domain.id") and q.get("scope.system"):
        raise errors.BadRequest("Specify system or domain, not both")
    if q.get("scope.project.id") and q.get("scope.system"):
        raise errors.BadRequest("Specify system or project, not both")
    if q.get("user.id") and q.get("group.id"):
        raise errors.BadRequest("Specify a user or group, not both")
    if query.effective:
        if q.get("group.id"):
            raise errors.BadRequest(
                "Combining effective and group filter will always result in an empty list."
            )
        if query.inherited and q.get("scope.domain.id"):
            raise errors.BadRequest(
                "Combining effective, domain and inherited filters will always "
                "result in an empty list."
            )


def _direct(session: Session, query: _Query, projects: set[str] | None) -> list[Entry]:
    a = model.Assignment
    stmt = select(a)
    if query.user_id:
        stmt = stmt.where(a.actor_id == query.user_id, a.type.in_(USER_TYPES))
    if query.group_id:
        stmt = stmt.where(a.actor_id == query.group_id, a.type.in_(GROUP_TYPES))
    if query.role_id:
        stmt = stmt.where(a.role_id == query.role_id)
    if projects is not None:
        stmt = stmt.where(a.type.in_(PROJECT_TYPES), a.target_id.in_(projects))
    elif query.domain_id:
        stmt = stmt.where(a.type.in_(DOMAIN_TYPES), a.target_id == query.domain_id)
    elif query.system:
        stmt = stmt.where(a.type.in_(SYSTEM_TYPES))
    if query.inherited is not None:
        stmt = stmt.where(a.inherited.is_(query.inherited))
    stmt = stmt.order_by(a.type, a.actor_id, a.target_id, a.role_id)
    return [_entry(row) for row in session.scalars(stmt)]


def _effective(
    session: Session, query: _Query, project: model.Project | None, projects: set[str] | None
) -> list[Entry]:
    a = model.Assignment
    inherited = False if query.domain_id else query.inherited
    stmt = select(a)
    if query.user_id:
        stmt = stmt.where(
            or_(
                and_(a.actor_id == query.user_id, a.type.in_(USER_TYPES)),
                and_(a.actor_id.in_(group_ids(session, query.user_id)), a.type.in_(GROUP_TYPES)),
            )
        )
    if project is not None and projects is not None:
        # What may reach these projects: their own assignments, and inherited
        # ones from their domain, their ancestors or inside the subtree.
        sources = set(project_ancestors(session, project)) | projects
        stmt = stmt.where(
            or_(
                and_(a.type.in_(PROJECT_TYPES), a.target_id.in_(projects), a.inherited.is_(False)),
                and_(
                    a.type.in_(DOMAIN_TYPES),
                    a.target_id == project.domain_id,
                    a.inherited.is_(True),
                ),
                and_(a.type.in_(PROJECT_TYPES), a.target_id.in_(sources), a.inherited.is_(True)),
            )
        )
    elif query.domain_id:
        stmt = stmt.where(a.type.in_(DOMAIN_TYPES), a.target_id == query.domain_id)
    elif query.system:
        stmt = stmt.where(a.type.in_(SYSTEM_TYPES))
    if inherited is not None:
        stmt = stmt.where(a.inherited.is_(inherited))
    stmt = stmt.order_by(a.type, a.actor_id, a.target_id, a.role_id)

    members: dict[str, list[str]] = {}
    inheritors: dict[tuple[str, str], list[str]] = {}
    entries: list[Entry] = []
    for row in session.scalars(stmt):
        if row.type in USER_TYPES:
            actors: list[tuple[str, str | None]] = [(row.actor_id, None)]
        elif query.user_id:
            actors = [(query.user_id, row.actor_id)]
        else:
            if row.actor_id not in members:
                members[row.actor_id] = member_ids(session, row.actor_id)
            actors = [(m, row.actor_id) for m in members[row.actor_id]]
        if row.inherited:
            key = (row.type, row.target_id)
            if key not in inheritors:
                if row.type in DOMAIN_TYPES:
                    inheritors[key] = list(
                        session.scalars(
                            select(model.Project.id)
                            .where(model.Project.domain_id == row.target_id)
                            .order_by(model.Project.id)
                        )
                    )
                else:
                    inheritors[key] = subtree_ids(session, row.target_id)
            via = (
                {"via_domain": row.target_id}
                if row.type in DOMAIN_TYPES
                else {"via_project": row.target_id}
            )
            for project_id in inheritors[key]:
                if projects is not None and project_id not in projects:
                    continue
                for user_id, group_id in actors:
                    entries.append(
                        Entry(
                            role_id=row.role_id,
                            user_id=user_id,
                            project_id=project_id,
                            via_group=group_id,
                            **via,
                        )
                    )
        else:
            base = _entry(row)
            for user_id, group_id in actors:
                entries.append(replace(base, user_id=user_id, group_id=None, via_group=group_id))
    entries = _add_implied(session, entries)
    global_roles = set(
        session.scalars(select(model.Role.id).where(model.Role.domain_id == NULL_DOMAIN))
    )
    entries = [e for e in entries if e.role_id in global_roles]
    if query.role_id:
        entries = [e for e in entries if e.role_id == query.role_id]
    return list(dict.fromkeys(entries))


def _add_implied(session: Session, entries: list[Entry]) -> list[Entry]:
    """Each entry, then one entry per role it implies (transitively), as Keystone lists them."""
    rules: dict[str, list[str]] = {}
    for prior_id, implied_id in session.execute(
        select(model.ImpliedRole.prior_role_id, model.ImpliedRole.implied_role_id).order_by(
            model.ImpliedRole.prior_role_id, model.ImpliedRole.implied_role_id
        )
    ):
        rules.setdefault(prior_id, []).append(implied_id)
    results = list(entries)
    seen = set(entries)
    pending = list(entries)
    while pending:
        entry = pending.pop(0)
        for implied_id in rules.get(entry.role_id, ()):
            derived = replace(
                entry,
                role_id=implied_id,
                via_role=entry.role_id,
                assigned_role=entry.assigned_role or entry.role_id,
            )
            if derived in seen:
                continue  # a cycle
            seen.add(derived)
            results.append(derived)
            pending.append(derived)
    return results


@dataclass
class _Names:
    users: dict[str, tuple[str, str]]
    groups: dict[str, tuple[str, str]]
    projects: dict[str, tuple[str, str]]
    domains: dict[str, str]
    roles: dict[str, tuple[str, str | None]]


def _load_names(session: Session, entries: Iterable[Entry]) -> _Names:
    entries = list(entries)

    def ids(attr: str) -> set[str]:
        return {getattr(e, attr) for e in entries if getattr(e, attr)}

    users = {
        u.id: (u.name, u.domain_id)
        for u in session.scalars(select(model.User).where(model.User.id.in_(ids("user_id"))))
    }
    groups = {
        g.id: (g.name, g.domain_id)
        for g in session.scalars(select(model.Group).where(model.Group.id.in_(ids("group_id"))))
    }
    projects = {
        p.id: (p.name, p.domain_id)
        for p in session.scalars(
            select(model.Project).where(model.Project.id.in_(ids("project_id")))
        )
    }
    roles = {
        r.id: (r.name, domain_of(r))
        for r in session.scalars(select(model.Role).where(model.Role.id.in_(ids("role_id"))))
    }
    domain_ids = (
        ids("domain_id")
        | {d for _, d in users.values()}
        | {d for _, d in groups.values()}
        | {d for _, d in projects.values()}
        | {d for _, d in roles.values() if d}
    )
    domains = {
        d.id: d.name
        for d in session.scalars(select(model.Domain).where(model.Domain.id.in_(domain_ids)))
    }
    return _Names(users, groups, projects, domains, roles)


def _named(
    ident: str, known: dict[str, tuple[str, str]], domains: dict[str, str]
) -> dict[str, Any]:
    name, domain_id = known.get(ident, ("", ""))
    return {
        "id": ident,
        "name": name,
        "domain": {"id": domain_id, "name": domains.get(domain_id, "")},
    }


def _format(req: ApiRequest, entry: Entry, names: _Names | None) -> dict[str, Any]:
    """Keystone's shape, with ``links.assignment`` naming the grant behind the entry."""
    body: dict[str, Any] = {}
    links: dict[str, str] = {}
    inherited = entry.inherited
    scope: dict[str, Any]
    if entry.project_id:
        project = (
            _named(entry.project_id, names.projects, names.domains)
            if names
            else {"id": entry.project_id}
        )
        scope = {"project": project}
        if entry.via_domain:
            inherited = True
            path = f"/domains/{entry.via_domain}"
        elif entry.via_project:
            inherited = True
            path = f"/projects/{entry.via_project}"
        else:
            path = f"/projects/{entry.project_id}"
    elif entry.domain_id:
        domain: dict[str, Any] = {"id": entry.domain_id}
        if names:
            domain["name"] = names.domains.get(entry.domain_id, "")
        scope = {"domain": domain}
        path = f"/domains/{entry.domain_id}"
    else:
        scope = {"system": {"all": True}}
        path = "/system"
    body["scope"] = scope
    if entry.user_id:
        body["user"] = (
            _named(entry.user_id, names.users, names.domains) if names else {"id": entry.user_id}
        )
        if entry.via_group:
            links["membership"] = common.url(
                req, f"/v3/groups/{entry.via_group}/users/{entry.user_id}"
            )
            path += f"/groups/{entry.via_group}"
        else:
            path += f"/users/{entry.user_id}"
    else:
        assert entry.group_id is not None
        body["group"] = (
            _named(entry.group_id, names.groups, names.domains) if names else {"id": entry.group_id}
        )
        path += f"/groups/{entry.group_id}"
    role: dict[str, Any] = {"id": entry.role_id}
    if names:
        role_name, role_domain = names.roles.get(entry.role_id, ("", None))
        role["name"] = role_name
        if role_domain:
            role["domain"] = {"id": role_domain, "name": names.domains.get(role_domain, "")}
    body["role"] = role
    path += f"/roles/{entry.assigned_role or entry.role_id}"
    if inherited:
        scope["OS-INHERIT:inherited_to"] = "projects"
        path = f"/OS-INHERIT{path}/inherited_to_projects"
    links["assignment"] = common.url(req, f"/v3{path}")
    if entry.via_role:
        links["prior_role"] = common.url(req, f"/v3/roles/{entry.via_role}/implies/{entry.role_id}")
    body["links"] = links
    return body


def _in_domain(session: Session, entries: list[Entry], domain_id: str) -> list[Entry]:
    """Entries on the domain or on its projects (what a domain-scoped caller may see)."""
    project_ids = {e.project_id for e in entries if e.project_id}
    in_domain = set(
        session.scalars(
            select(model.Project.id).where(
                model.Project.id.in_(project_ids), model.Project.domain_id == domain_id
            )
        )
    )
    return [e for e in entries if e.domain_id == domain_id or e.project_id in in_domain]


@endpoint
def list_role_assignments(req: ApiRequest) -> Response:
    query = _parse(req)
    context = req.context
    with common.service(req).db.session() as session:
        project: model.Project | None = None
        if query.include_subtree:
            rule = "identity:list_role_assignments_for_tree"
            if query.project_id:
                project = session.get(model.Project, query.project_id)
                if project is None:
                    common.enforce(req, rule, {"project_id": query.project_id, "domain_id": None})
                    raise errors.NotFound(f"Could not find project: {query.project_id}.")
                common.enforce(
                    req,
                    rule,
                    {
                        "project_id": project.id,
                        "domain_id": project.domain_id,
                        "project": {"id": project.id, "domain_id": project.domain_id},
                    },
                )
            else:
                common.enforce(req, rule, {"domain_id": None})
                raise errors.BadRequest(
                    "scope.project.id must be specified if include_subtree is also specified"
                )
        else:
            # As Keystone: a domain-scoped caller is checked against its own
            # domain and sees only the assignments of that domain.
            common.enforce(req, "identity:list_role_assignments", {"domain_id": context.domain_id})
        _check_combinations(req, query)
        projects: set[str] | None = None
        if query.project_id:
            projects = {query.project_id}
            if project is None:
                project = session.get(model.Project, query.project_id)
            if query.include_subtree and project is not None:
                projects |= set(subtree_ids(session, project.id))
        if query.effective:
            if query.project_id and project is None:
                raise errors.NotFound(f"Could not find project: {query.project_id}.")
            entries = _effective(session, query, project, projects)
        else:
            entries = _direct(session, query, projects)
        if context.domain_id and not query.include_subtree:
            entries = _in_domain(session, entries, context.domain_id)
        names = _load_names(session, entries) if query.include_names else None
        return common.list_response(
            req, "role_assignments", [_format(req, e, names) for e in entries]
        )


_INHERIT = "/inherited_to_projects"

ROUTES = [
    *_grant_routes("/v3/projects/{project_id}/users/{user_id}", Kind("user", "project")),
    *_grant_routes("/v3/projects/{project_id}/groups/{group_id}", Kind("group", "project")),
    *_grant_routes("/v3/domains/{domain_id}/users/{user_id}", Kind("user", "domain")),
    *_grant_routes("/v3/domains/{domain_id}/groups/{group_id}", Kind("group", "domain")),
    *_grant_routes("/v3/system/users/{user_id}", Kind("user", "system")),
    *_grant_routes("/v3/system/groups/{group_id}", Kind("group", "system")),
    *_grant_routes(
        "/v3/OS-INHERIT/domains/{domain_id}/users/{user_id}",
        Kind("user", "domain", inherited=True),
        _INHERIT,
    ),
    *_grant_routes(
        "/v3/OS-INHERIT/domains/{domain_id}/groups/{group_id}",
        Kind("group", "domain", inherited=True),
        _INHERIT,
    ),
    *_grant_routes(
        "/v3/OS-INHERIT/projects/{project_id}/users/{user_id}",
        Kind("user", "project", inherited=True),
        _INHERIT,
        listing=False,
    ),
    *_grant_routes(
        "/v3/OS-INHERIT/projects/{project_id}/groups/{group_id}",
        Kind("group", "project", inherited=True),
        _INHERIT,
        listing=False,
    ),
    Route("/v3/role_assignments", list_role_assignments, methods=["GET"]),
]
