"""Plain-HTTP helpers for identity tests: tokens, users, projects, role grants.

Role assignments go through ``PUT /v3/projects/{p}/users/{u}/roles/{r}`` when
the server has that route, and straight into the database otherwise (the
server's own configuration names it), so these tests do not depend on which
identity APIs exist yet.
"""

from __future__ import annotations

import functools
from typing import Any

import httpx
from sqlalchemy import select


def password_body(name: str, password: str, scope: Any = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": name, "domain": {"id": "default"}, "password": password}
                },
            }
        }
    }
    if scope is not None:
        body["auth"]["scope"] = scope
    return body


def issue(server: Any, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{server.auth_url}/auth/tokens", json=body)


def token_for(server: Any, name: str, password: str, scope: Any = None) -> str:
    response = issue(server, password_body(name, password, scope))
    assert response.status_code == 201, response.text
    return response.headers["X-Subject-Token"]


def admin_token(server: Any) -> str:
    return token_for(
        server,
        "admin",
        server.admin_password,
        {"project": {"name": "admin", "domain": {"id": "default"}}},
    )


def project_scope(project_id: str) -> dict[str, Any]:
    return {"project": {"id": project_id}}


def headers(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def validate(server: Any, subject: str) -> httpx.Response:
    """Validate ``subject`` as the admin (200 with the body, or 404)."""
    return httpx.get(
        f"{server.auth_url}/auth/tokens",
        headers={"X-Auth-Token": admin_token(server), "X-Subject-Token": subject},
    )


def create_user(server: Any, token: str, name: str, password: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.auth_url}/users",
        json={"user": {"name": name, "password": password, "domain_id": "default"}},
        headers=headers(token),
    )
    assert response.status_code == 201, response.text
    return response.json()["user"]


def create_project(server: Any, token: str, name: str) -> dict[str, Any]:
    response = httpx.post(
        f"{server.auth_url}/projects",
        json={"project": {"name": name, "domain_id": "default"}},
        headers=headers(token),
    )
    assert response.status_code == 201, response.text
    return response.json()["project"]


@functools.cache
def _database(config_path: str) -> Any:
    from stratus.common.config import Config
    from stratus.common.db import Database, engine_from_config

    return Database(engine_from_config(Config(config_path)))


def database(server: Any) -> Any:
    return _database(str(server.config_path))


def role_id(server: Any, name: str) -> str:
    from stratus.identity import model

    with database(server).session() as session:
        found = session.scalar(
            select(model.Role.id).where(model.Role.name == name, model.Role.domain_id == "<<null>>")
        )
    assert found, f"no role {name}"
    return found


def _route_missing(response: httpx.Response) -> bool:
    if response.status_code == 405:
        return True
    message = response.json().get("error", {}).get("message", "")
    return response.status_code == 404 and message.startswith("The resource ")


def grant(server: Any, user_id: str, project_id: str, role: str) -> None:
    """Give ``user_id`` the role named ``role`` on ``project_id``."""
    from stratus.identity import model

    rid = role_id(server, role)
    response = httpx.put(
        f"{server.auth_url}/projects/{project_id}/users/{user_id}/roles/{rid}",
        headers=headers(admin_token(server)),
    )
    if response.status_code in (200, 201, 204):
        return
    assert _route_missing(response), response.text
    with database(server).session() as session:
        session.merge(
            model.Assignment(
                type=model.USER_PROJECT,
                actor_id=user_id,
                target_id=project_id,
                role_id=rid,
                inherited=False,
            )
        )


def ungrant(server: Any, user_id: str, project_id: str, role: str) -> None:
    """Take the role back (the route revokes the user's tokens on the project)."""
    from sqlalchemy import delete

    from stratus.identity import model

    rid = role_id(server, role)
    response = httpx.delete(
        f"{server.auth_url}/projects/{project_id}/users/{user_id}/roles/{rid}",
        headers=headers(admin_token(server)),
    )
    if response.status_code == 204:
        return
    assert _route_missing(response), response.text
    with database(server).session() as session:
        session.execute(
            delete(model.Assignment).where(
                model.Assignment.actor_id == user_id,
                model.Assignment.target_id == project_id,
                model.Assignment.role_id == rid,
            )
        )


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an OpenStack identity error with ``status``."""
    assert response.status_code == status, (response.status_code, response.text)
    error = response.json()["error"]
    assert error["code"] == status
    assert error["title"] and error["message"]
    return error
