"""The first admin, the standard roles and identity's own catalog entry;
then each other service's catalog entry and service user.

Idempotent: every object is looked up by its natural key and created only if
missing; a run that finds everything in place reports ``changed: false``. The
admin's and the service users' passwords are reset only when they differ from
the stored ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stratus.common.db import Database
from stratus.identity import model, passwords

DEFAULT_DOMAIN_ID = "default"
STANDARD_ROLES = ("admin", "member", "reader", "service")
IMPLICATIONS = (("admin", "member"), ("member", "reader"))


@dataclass
class BootstrapSpec:
    username: str
    password: str
    project: str = "admin"
    region: str = "RegionOne"
    public_url: str = "http://localhost:5000/v3"
    internal_url: str | None = None
    admin_url: str | None = None
    service_name: str = "keystone"


@dataclass
class ServiceSpec:
    """A service of the catalog (image, compute, ...) and the user it acts as."""

    type: str
    name: str
    user: str
    password: str
    public_url: str
    internal_url: str | None = None
    admin_url: str | None = None
    description: str = ""
    region: str = "RegionOne"
    project: str = "service"
    # More roles (which must exist, e.g. member) for the user on the project,
    # beyond ``service``: what another service's policy asks of it.
    roles: tuple[str, ...] = ()


class NotBootstrapped(Exception):
    """Identity's own objects are missing: ``stratus-manage bootstrap`` has not run."""


class UnknownRole(Exception):
    """A role asked for by name does not exist (nothing was changed)."""


def _ensure(
    session: Session,
    model_cls: type[Any],
    changes: list[str],
    label: str,
    where: dict[str, Any],
    **values: Any,
) -> Any:
    query = select(model_cls).filter_by(**where)
    found = session.scalar(query)
    if found is None:
        found = model_cls(**where, **values)
        session.add(found)
        session.flush()
        changes.append(label)
    return found


def bootstrap(db: Database, spec: BootstrapSpec) -> dict[str, Any]:
    changes: list[str] = []
    with db.session() as session:
        _ensure(
            session,
            model.Domain,
            changes,
            "domain Default",
            {"id": DEFAULT_DOMAIN_ID},
            name="Default",
            description="The default domain",
            enabled=True,
        )
        roles = {
            name: _ensure(
                session,
                model.Role,
                changes,
                f"role {name}",
                {"name": name, "domain_id": "<<null>>"},
                id=model.new_id(),
            )
            for name in STANDARD_ROLES
        }
        for prior, implied in IMPLICATIONS:
            _ensure(
                session,
                model.ImpliedRole,
                changes,
                f"{prior} implies {implied}",
                {"prior_role_id": roles[prior].id, "implied_role_id": roles[implied].id},
            )
        project = _ensure(
            session,
            model.Project,
            changes,
            f"project {spec.project}",
            {"name": spec.project, "domain_id": DEFAULT_DOMAIN_ID},
            id=model.new_id(),
            description="Bootstrap project for the cloud administrators",
            enabled=True,
        )
        _ensure(
            session,
            model.Project,
            changes,
            "project service",
            {"name": "service", "domain_id": DEFAULT_DOMAIN_ID},
            id=model.new_id(),
            description="Project of the service users",
            enabled=True,
        )
        user = _ensure_user(session, changes, spec.username, spec.password, project.id)
        _ensure(
            session,
            model.Assignment,
            changes,
            "admin on the admin project",
            {
                "type": model.USER_PROJECT,
                "actor_id": user.id,
                "target_id": project.id,
                "role_id": roles["admin"].id,
                "inherited": False,
            },
        )
        _ensure(
            session,
            model.Assignment,
            changes,
            "admin on the system",
            {
                "type": model.USER_SYSTEM,
                "actor_id": user.id,
                "target_id": model.SYSTEM_TARGET,
                "role_id": roles["admin"].id,
                "inherited": False,
            },
        )
        _ensure(
            session,
            model.Region,
            changes,
            f"region {spec.region}",
            {"id": spec.region},
            description="",
        )
        service = _ensure(
            session,
            model.Service,
            changes,
            "identity service",
            {"type": "identity"},
            id=model.new_id(),
            name=spec.service_name,
            enabled=True,
        )
        urls = {"public": spec.public_url, "internal": spec.internal_url, "admin": spec.admin_url}
        _ensure_endpoints(session, changes, service, spec.region, urls)
    return {"changed": bool(changes), "changes": changes}


def _ensure_user(
    session: Session, changes: list[str], name: str, password: str, project_id: str
) -> Any:
    """A user of the Default domain with this password, enabled."""
    user = session.scalar(select(model.User).filter_by(name=name, domain_id=DEFAULT_DOMAIN_ID))
    if user is None:
        user = model.User(
            id=model.new_id(),
            name=name,
            domain_id=DEFAULT_DOMAIN_ID,
            enabled=True,
            password_hash=passwords.hash_password(password),
            password_created_at=model.utcnow(),
            default_project_id=project_id,
        )
        session.add(user)
        session.flush()
        changes.append(f"user {name}")
        return user
    if not passwords.verify_password(password, user.password_hash):
        user.password_hash = passwords.hash_password(password)
        user.password_created_at = model.utcnow()
        changes.append(f"password of {name}")
    if not user.enabled:
        user.enabled = True
        changes.append(f"enabled {name}")
    return user


def _ensure_endpoints(
    session: Session,
    changes: list[str],
    service: Any,
    region: str,
    urls: dict[str, str | None],
) -> None:
    """One enabled endpoint per interface with a URL, in ``region``; a changed
    URL is updated in place (the endpoint keeps its ID)."""
    for interface, url in urls.items():
        if not url:
            continue
        endpoint = session.scalar(
            select(model.Endpoint).filter_by(
                service_id=service.id, interface=interface, region_id=region
            )
        )
        if endpoint is None:
            session.add(
                model.Endpoint(
                    id=model.new_id(),
                    service_id=service.id,
                    interface=interface,
                    region_id=region,
                    url=url,
                    enabled=True,
                )
            )
            changes.append(f"{interface} endpoint")
        elif endpoint.url != url or not endpoint.enabled:
            endpoint.url = url
            endpoint.enabled = True
            changes.append(f"{interface} endpoint URL")


def register_service(db: Database, spec: ServiceSpec) -> dict[str, Any]:
    """The catalog entry of a service (its endpoints in one region) and its
    service user, with the ``service`` role on the service project, so that it
    can validate its callers' tokens, and the extra ``spec.roles`` there.
    Needs ``bootstrap`` to have run."""
    changes: list[str] = []
    urls = {
        "public": spec.public_url,
        "internal": spec.internal_url or spec.public_url,
        "admin": spec.admin_url or spec.public_url,
    }
    with db.session() as session:
        if session.get(model.Domain, DEFAULT_DOMAIN_ID) is None:
            raise NotBootstrapped(
                "the Default domain does not exist: run `stratus-manage bootstrap` first"
            )
        role = _ensure(
            session,
            model.Role,
            changes,
            "role service",
            {"name": "service", "domain_id": "<<null>>"},
            id=model.new_id(),
        )
        _ensure(
            session,
            model.Region,
            changes,
            f"region {spec.region}",
            {"id": spec.region},
            description="",
        )
        service = _ensure(
            session,
            model.Service,
            changes,
            f"{spec.type} service {spec.name}",
            {"type": spec.type, "name": spec.name},
            id=model.new_id(),
            description=spec.description,
            enabled=True,
        )
        if service.description != spec.description:
            service.description = spec.description
            changes.append(f"description of the {spec.type} service")
        if not service.enabled:
            service.enabled = True
            changes.append(f"enabled the {spec.type} service")
        _ensure_endpoints(session, changes, service, spec.region, urls)
        project = _ensure(
            session,
            model.Project,
            changes,
            f"project {spec.project}",
            {"name": spec.project, "domain_id": DEFAULT_DOMAIN_ID},
            id=model.new_id(),
            description="Project of the service users",
            enabled=True,
        )
        if not project.enabled:
            project.enabled = True
            changes.append(f"enabled project {spec.project}")
        user = _ensure_user(session, changes, spec.user, spec.password, project.id)
        granted = [role]
        for name in dict.fromkeys(spec.roles):
            extra = session.scalar(select(model.Role).filter_by(name=name, domain_id="<<null>>"))
            if extra is None:
                raise UnknownRole(f"role {name} does not exist")
            granted.append(extra)
        for grant in dict.fromkeys(granted):
            _ensure(
                session,
                model.Assignment,
                changes,
                f"{grant.name} on project {spec.project} for {spec.user}",
                {
                    "type": model.USER_PROJECT,
                    "actor_id": user.id,
                    "target_id": project.id,
                    "role_id": grant.id,
                    "inherited": False,
                },
            )
    return {"changed": bool(changes), "changes": changes}
