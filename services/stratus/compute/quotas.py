"""Quotas: each project's limits, what it uses, and the check before it uses more.

A limit is the project's own row in ``compute_quotas`` or else the
``[compute] quota_*`` default; ``-1`` means unlimited. Usage is counted from
the tables that hold the resources (``USAGE``), so there is no counter to
drift. ``key_pairs`` counts the keys of one user, as in Nova.

Nova's API still shows, up to microversion 2.35, the quotas of the
networking resources and, up to 2.56, those of injected files; Stratus keeps
them at Nova's defaults, stores what an admin sets, and does not enforce
them (networking enforces its own quotas).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stratus.common import errors
from stratus.compute.model import KeyPair, Quota, Server, ServerGroup
from stratus.compute.settings import QUOTA_DEFAULTS

# Shown by the API at the microversions that have them, never enforced here.
LEGACY_DEFAULTS = {
    "fixed_ips": -1,
    "floating_ips": 10,
    "security_groups": 10,
    "security_group_rules": 20,
    "injected_files": 5,
    "injected_file_content_bytes": 10240,
    "injected_file_path_bytes": 255,
}
NETWORK_LEGACY = ("fixed_ips", "floating_ips", "security_groups", "security_group_rules")
FILES_LEGACY = ("injected_files", "injected_file_content_bytes", "injected_file_path_bytes")
RESOURCES = (*QUOTA_DEFAULTS, *LEGACY_DEFAULTS)

# resource -> usage(session, project_id, user_id)
Usage = Callable[[Session, str, str | None], int]


def _key_pairs(session: Session, project_id: str, user_id: str | None) -> int:
    if user_id is None:
        return 0
    query = select(func.count()).select_from(KeyPair).where(KeyPair.user_id == user_id)
    return int(session.scalar(query) or 0)


def _servers(column: Any) -> Usage:
    def count(session: Session, project_id: str, user_id: str | None) -> int:
        query = select(column).where(Server.project_id == project_id)
        return int(session.scalar(query) or 0)

    return count


def _server_groups(session: Session, project_id: str, user_id: str | None) -> int:
    query = select(func.count()).select_from(ServerGroup)
    return int(session.scalar(query.where(ServerGroup.project_id == project_id)) or 0)


USAGE: dict[str, Usage] = {
    "key_pairs": _key_pairs,
    "instances": _servers(func.count(Server.id)),
    "cores": _servers(func.sum(Server.vcpus)),
    "ram": _servers(func.sum(Server.memory_mb)),
    "server_groups": _server_groups,
}


def defaults(options: Any) -> dict[str, int]:
    values = {name: int(getattr(options, f"quota_{name}")) for name in QUOTA_DEFAULTS}
    return {**values, **LEGACY_DEFAULTS}


def limits(session: Session, options: Any, project_id: str) -> dict[str, int]:
    values = defaults(options)
    for row in session.scalars(select(Quota).where(Quota.project_id == project_id)):
        if row.resource in values:
            values[row.resource] = row.limit
    return values


def usage(session: Session, project_id: str, user_id: str | None) -> dict[str, int]:
    return {name: count(session, project_id, user_id) for name, count in USAGE.items()}


def check(
    session: Session,
    options: Any,
    project_id: str,
    user_id: str | None,
    wanted: dict[str, int],
) -> None:
    """Raise ``QuotaExceeded`` when adding ``wanted`` (resource -> amount)
    would take the project past any of its limits."""
    allowed = limits(session, options, project_id)
    over = []
    for resource, amount in wanted.items():
        limit = allowed[resource]
        if limit < 0 or amount <= 0:
            continue
        used = USAGE[resource](session, project_id, user_id)
        if used + amount > limit:
            over.append((resource, limit, used, amount))
    if over:
        raise QuotaExceeded(over)


class QuotaExceeded(errors.Forbidden):
    """Nova answers 403 when a quota would be exceeded."""

    def __init__(self, over: list[tuple[str, int, int, int]]):
        self.over = over
        names = ", ".join(resource for resource, *_ in over)
        details = "; ".join(
            f"{resource}: limit {limit}, in use {used}, requested {amount}"
            for resource, limit, used, amount in over
        )
        super().__init__(f"Quota exceeded for {names}: {details}.")


def set_limits(session: Session, project_id: str, values: dict[str, int]) -> None:
    for resource, limit in values.items():
        row = session.get(Quota, (project_id, resource))
        if row is None:
            session.add(Quota(project_id=project_id, resource=resource, limit=limit))
        else:
            row.limit = limit
    session.flush()
