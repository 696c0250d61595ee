"""Plain-HTTP helpers for the group, role and role-assignment tests.

The tests drive the service with the ``openstack`` CLI and openstacksdk; these
helpers make the fixtures (users with passwords, projects, grants) and read
tokens and errors over plain HTTP, where a test needs the exact wire shape.
"""

from __future__ import annotations

from typing import Any

import httpx

_ADMIN_TOKENS: dict[str, str] = {}


def admin_token(server: Any) -> str:
    """A project-scoped token of the bootstrap admin, cached per server."""
    cached = _ADMIN_TOKENS.get(server.url)
    if cached and validate(server, cached, as_token=cached).status_code == 200:
        return cached
    token, _ = issue(
        server,
        "admin",
        server.admin_password,
        {"project": {"name": "admin", "domain": {"id": "default"}}},
    )
    _ADMIN_TOKENS[server.url] = token
    return token


def call(
    server: Any,
    method: str,
    path: str,
    token: str | None = None,
    json: Any = None,
    params: Any = None,
) -> httpx.Response:
    """``method`` on ``/v3{path}`` with the admin's token unless one is given."""
    headers = {"X-Auth-Token": token or admin_token(server)}
    return httpx.request(
        method, f"{server.auth_url}{path}", headers=headers, json=json, params=params, timeout=30
    )


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def assert_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """The OpenStack error body: ``{"error": {"code", "title", "message"}}``."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    error = response.json()["error"]
    assert error["code"] == status
    assert error["title"] and error["message"]
    assert "Traceback" not in error["message"]
    return error


def issue(
    server: Any, name: str, password: str, scope: Any = None, domain: str = "default"
) -> tuple[str, dict[str, Any]]:
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": name, "domain": {"id": domain}, "password": password}
                },
            }
        }
    }
    if scope is not None:
        body["auth"]["scope"] = scope
    response = httpx.post(f"{server.auth_url}/auth/tokens", json=body, timeout=30)
    assert response.status_code == 201, f"{response.status_code}: {response.text}"
    return response.headers["X-Subject-Token"], response.json()["token"]


def try_issue(server: Any, name: str, password: str, scope: Any, domain: str = "default") -> int:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": name, "domain": {"id": domain}, "password": password}
                },
            },
            "scope": scope,
        }
    }
    return httpx.post(f"{server.auth_url}/auth/tokens", json=body, timeout=30).status_code


def validate(server: Any, subject: str, as_token: str | None = None) -> httpx.Response:
    headers = {"X-Auth-Token": as_token or admin_token(server), "X-Subject-Token": subject}
    return httpx.get(f"{server.auth_url}/auth/tokens?nocatalog", headers=headers, timeout=30)


def role_names(token_body: dict[str, Any]) -> set[str]:
    return {r["name"] for r in token_body.get("roles", [])}


def make_user(server: Any, name: str, password: str = "pw-secret-1", domain_id: str = "default"):
    body = {"user": {"name": name, "password": password, "domain_id": domain_id}}
    return ok(call(server, "POST", "/users", json=body), 201)["user"]


def make_project(
    server: Any, name: str, domain_id: str = "default", parent_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "domain_id": domain_id}
    if parent_id:
        body["parent_id"] = parent_id
    return ok(call(server, "POST", "/projects", json={"project": body}), 201)["project"]


def make_domain(server: Any, name: str) -> dict[str, Any]:
    return ok(call(server, "POST", "/domains", json={"domain": {"name": name}}), 201)["domain"]


def make_role(server: Any, name: str, domain_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if domain_id:
        body["domain_id"] = domain_id
    return ok(call(server, "POST", "/roles", json={"role": body}), 201)["role"]


def make_group(server: Any, name: str, domain_id: str = "default") -> dict[str, Any]:
    body = {"group": {"name": name, "domain_id": domain_id}}
    return ok(call(server, "POST", "/groups", json=body), 201)["group"]


def role_id(server: Any, name: str) -> str:
    roles = ok(call(server, "GET", "/roles", params={"name": name}))["roles"]
    assert len(roles) == 1, roles
    return str(roles[0]["id"])


def grant(server: Any, path: str, token: str | None = None) -> None:
    """PUT a grant (``/projects/{p}/users/{u}/roles/{r}`` and the like)."""
    ok(call(server, "PUT", path, token=token), 204)
