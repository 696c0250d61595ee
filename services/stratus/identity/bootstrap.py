"""The first admin, the standard roles and identity's own catalog entry.

Idempotent: every object is looked up by its natural key and created only if
missing; a run that finds everything in place reports ``changed: false``. The
admin password is reset only when it differs from the stored one.
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
        user = session.scalar(
            select(model.User).filter_by(name=spec.username, domain_id=DEFAULT_DOMAIN_ID)
        )
        if user is None:
            user = model.User(
                id=model.new_id(),
                name=spec.username,
                domain_id=DEFAULT_DOMAIN_ID,
                enabled=True,
                password_hash=passwords.hash_password(spec.password),
                password_created_at=model.utcnow(),
                default_project_id=project.id,
            )
            session.add(user)
            session.flush()
            changes.append(f"user {spec.username}")
        else:
            if not passwords.verify_password(spec.password, user.password_hash):
                user.password_hash = passwords.hash_password(spec.password)
                user.password_created_at = model.utcnow()
                changes.append(f"password of {spec.username}")
            if not user.enabled:
                user.enabled = True
                changes.append(f"enabled {spec.username}")
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
        for interface, url in urls.items():
            if not url:
                continue
            endpoint = session.scalar(
                select(model.Endpoint).filter_by(
                    service_id=service.id, interface=interface, region_id=spec.region
                )
            )
            if endpoint is None:
                session.add(
                    model.Endpoint(
                        id=model.new_id(),
                        service_id=service.id,
                        interface=interface,
                        region_id=spec.region,
                        url=url,
                        enabled=True,
                    )
                )
                changes.append(f"{interface} endpoint")
            elif endpoint.url != url or not endpoint.enabled:
                endpoint.url = url
                endpoint.enabled = True
                changes.append(f"{interface} endpoint URL")
    return {"changed": bool(changes), "changes": changes}
