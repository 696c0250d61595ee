"""The service catalog in a token: enabled services with their endpoints.

Endpoint URLs may carry ``$(project_id)s``, ``%(project_id)s`` or
``%(tenant_id)s``; they are filled in from the token's project, and left out
of tokens without one (the client could not use them).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stratus.identity import model

_PLACEHOLDER = re.compile(r"[$%]\((project_id|tenant_id|user_id)\)s")


def substitute(url: str, values: dict[str, str | None]) -> str | None:
    missing = False

    def fill(match: re.Match[str]) -> str:
        nonlocal missing
        key = "project_id" if match.group(1) == "tenant_id" else match.group(1)
        value = values.get(key)
        if value is None:
            missing = True
            return ""
        return value

    result = _PLACEHOLDER.sub(fill, url)
    return None if missing else result


def build_catalog(session: Session, user_id: str, project_id: str | None) -> list[dict[str, Any]]:
    services = session.scalars(
        select(model.Service).where(model.Service.enabled.is_(True)).order_by(model.Service.type)
    ).all()
    endpoints = session.scalars(
        select(model.Endpoint).where(model.Endpoint.enabled.is_(True))
    ).all()
    by_service: dict[str, list[dict[str, Any]]] = {}
    values = {"project_id": project_id, "user_id": user_id}
    for endpoint in endpoints:
        url = substitute(endpoint.url, values)
        if url is None:
            continue
        by_service.setdefault(endpoint.service_id, []).append(
            {
                "id": endpoint.id,
                "interface": endpoint.interface,
                "region": endpoint.region_id,
                "region_id": endpoint.region_id,
                "url": url,
            }
        )
    return [
        {
            "id": svc.id,
            "type": svc.type,
            "name": svc.name,
            "endpoints": by_service.get(svc.id, []),
        }
        for svc in services
    ]
