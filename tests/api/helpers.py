"""Plain-HTTP helpers for the identity API tests: tokens, requests, errors, test data.

Everything goes over HTTP to ``server.auth_url`` (the ``/v3`` root), the way a
client sees the service: tokens are issued and validated through
``/v3/auth/tokens``, users, projects, domains, roles and groups are made
through their routes, and role assignments through the grant routes.
Requests that need no particular caller are made as the bootstrap admin.
"""

from __future__ import annotations

from typing import Any

import httpx

TIMEOUT = 30

# The bootstrap admin's project, by name.
ADMIN_SCOPE: dict[str, Any] = {"project": {"name": "admin", "domain": {"id": "default"}}}


# --- tokens ------------------------------------------------------------------------------


def password_auth(
    user: str, password: str, scope: Any = None, domain: str = "default", *, by_id: bool = False
) -> dict[str, Any]:
    """The body of a password authentication.

    ``user`` is a user's name in ``domain``, or with ``by_id`` the user's ID;
    ``scope`` is put in as given (a dict, or ``"unscoped"``) unless it is None.
    """
    who = {"id": user} if by_id else {"name": user, "domain": {"id": domain}}
    body: dict[str, Any] = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {**who, "password": password}},
            }
        }
    }
    if scope is not None:
        body["auth"]["scope"] = scope
    return body


def token_auth(token: str, scope: Any = None) -> dict[str, Any]:
    """The body of an authentication with an existing token (a rescope)."""
    body: dict[str, Any] = {"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}
    if scope is not None:
        body["auth"]["scope"] = scope
    return body


def application_credential_auth(cred_id: str, secret: str) -> dict[str, Any]:
    """The body of an authentication with an application credential, by its ID."""
    return {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {"id": cred_id, "secret": secret},
            }
        }
    }


def post_token(server: Any, body: dict[str, Any]) -> httpx.Response:
    """``POST /v3/auth/tokens`` with any authentication body."""
    return httpx.post(f"{server.auth_url}/auth/tokens", json=body, timeout=TIMEOUT)


def authenticate(
    server: Any, name: str, password: str, scope: Any = None, domain: str = "default"
) -> httpx.Response:
    """Try a password authentication by user name; the response, whatever it is."""
    return post_token(server, password_auth(name, password, scope, domain))


def issue_token(
    server: Any, name: str, password: str, scope: Any = None, domain: str = "default"
) -> tuple[str, dict[str, Any]]:
    """A password authentication that must succeed: the token's ID and body."""
    response = authenticate(server, name, password, scope, domain)
    assert response.status_code == 201, f"{response.status_code}: {response.text}"
    return response.headers["X-Subject-Token"], response.json()["token"]


def admin_token(server: Any) -> str:
    """A new token of the bootstrap admin, scoped to the admin project."""
    return issue_token(server, "admin", server.admin_password, ADMIN_SCOPE)[0]


def project_scope(project_id: str) -> dict[str, Any]:
    return {"project": {"id": project_id}}


def auth_headers(token: str) -> dict[str, str]:
    return {"X-Auth-Token": token}


def validate(server: Any, subject: str, as_token: str | None = None) -> httpx.Response:
    """``GET /v3/auth/tokens`` on ``subject`` (200 with its body, or 404), as the admin
    unless ``as_token`` is given."""
    headers = {"X-Auth-Token": as_token or admin_token(server), "X-Subject-Token": subject}
    return httpx.get(f"{server.auth_url}/auth/tokens", headers=headers, timeout=TIMEOUT)


def revoke_token(server: Any, subject: str) -> None:
    """``DELETE /v3/auth/tokens`` on ``subject`` as the admin."""
    headers = {"X-Auth-Token": admin_token(server), "X-Subject-Token": subject}
    response = httpx.delete(f"{server.auth_url}/auth/tokens", headers=headers, timeout=TIMEOUT)
    assert response.status_code == 204, f"{response.status_code}: {response.text}"


def role_names(token_body: dict[str, Any]) -> set[str]:
    return {r["name"] for r in token_body.get("roles", [])}


# --- requests and responses --------------------------------------------------------------


def request(
    server: Any,
    method: str,
    path: str,
    token: str | None = None,
    json: Any = None,
    params: Any = None,
) -> httpx.Response:
    """``method`` on ``/v3{path}`` with the admin's token unless one is given."""
    return httpx.request(
        method,
        f"{server.auth_url}{path}",
        headers=auth_headers(token or admin_token(server)),
        json=json,
        params=params,
        timeout=TIMEOUT,
    )


def expect(response: httpx.Response, status: int = 200) -> Any:
    """The response has ``status``; its JSON body (None when it has none)."""
    assert response.status_code == status, f"{response.status_code}: {response.text}"
    return response.json() if response.content else None


def assert_error(response: httpx.Response, *statuses: int) -> dict[str, Any]:
    """The response has one of ``statuses`` and the OpenStack error body,
    ``{"error": {"code", "title", "message"}}`` (a HEAD response has no body)."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"(wanted {statuses}): {response.text[:500]}"
    )
    if response.request.method == "HEAD":
        return {}
    error = response.json()["error"]
    assert error["code"] == response.status_code
    assert error["title"] and error["message"]
    assert "Traceback" not in response.text
    return error


# --- things to test with, made by the admin -----------------------------------------------


def create_user(
    server: Any, name: str, password: str = "pw-secret-1", domain_id: str = "default"
) -> dict[str, Any]:
    body = {"user": {"name": name, "password": password, "domain_id": domain_id}}
    return expect(request(server, "POST", "/users", json=body), 201)["user"]


def create_project(
    server: Any, name: str, domain_id: str = "default", parent_id: str | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "domain_id": domain_id}
    if parent_id:
        body["parent_id"] = parent_id
    return expect(request(server, "POST", "/projects", json={"project": body}), 201)["project"]


def create_domain(server: Any, name: str) -> dict[str, Any]:
    body = {"domain": {"name": name}}
    return expect(request(server, "POST", "/domains", json=body), 201)["domain"]


def create_role(server: Any, name: str, domain_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name}
    if domain_id:
        body["domain_id"] = domain_id
    return expect(request(server, "POST", "/roles", json={"role": body}), 201)["role"]


def create_group(server: Any, name: str, domain_id: str = "default") -> dict[str, Any]:
    body = {"group": {"name": name, "domain_id": domain_id}}
    return expect(request(server, "POST", "/groups", json=body), 201)["group"]


def role_id(server: Any, name: str) -> str:
    """The ID of the global role called ``name``."""
    roles = expect(request(server, "GET", "/roles", params={"name": name}))["roles"]
    assert len(roles) == 1, roles
    return str(roles[0]["id"])


def grant(server: Any, path: str, token: str | None = None) -> None:
    """PUT a grant (``/projects/{p}/users/{u}/roles/{r}`` and the like), as the admin
    unless ``token`` is given."""
    expect(request(server, "PUT", path, token=token), 204)


def project_user(server: Any, name: str, role: str = "member") -> dict[str, Any]:
    """A new project with a user holding ``role`` on it: its IDs, token and headers."""
    project = create_project(server, name)
    user = create_user(server, name)
    grant(server, f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(server, role)}")
    auth = password_auth(user["id"], "pw-secret-1", project_scope(project["id"]), by_id=True)
    token = post_token(server, auth).headers["X-Subject-Token"]
    return {
        "project_id": project["id"],
        "user_id": user["id"],
        "name": name,
        "token": token,
        "headers": auth_headers(token),
    }


# --- the route table, for tests that go through every route --------------------------


def route_cases(routes: Any) -> list[Any]:
    """One pytest param ``(path, method)`` per route and method (HEAD of a GET left out)."""
    import pytest

    return [
        pytest.param(route.path, method, id=f"{method} {route.path}")
        for route in routes
        for method in sorted(route.methods or ())
        if not (method == "HEAD" and "GET" in (route.methods or ()))
    ]


def fill_path(path: str, value: str) -> str:
    """The route's path with every ``{parameter}`` set to ``value``."""
    import re

    return re.sub(r"\{[^}]+\}", value, path)
