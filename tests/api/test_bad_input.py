"""Every identity route meets bad input with a clear OpenStack error, never a 500.

The routes are read from the application itself, so a route added later is
covered without touching this file. For each route and method: no token,
a garbage token, unknown IDs, malformed JSON, JSON of the wrong shape and an
oversized body each get the status OpenStack clients expect and an
``{"error": {"code", "title", "message"}}`` body.
"""

from __future__ import annotations

import httpx
import pytest

from stratus.identity.api import ROUTES
from tests.api.helpers import (
    admin_token,
    assert_error,
    auth_headers,
    fill_path,
    grant,
    password_auth,
    post_token,
    project_scope,
    role_id,
    route_cases,
)

# Routes anyone may call without a token.
PUBLIC = {
    ("/", "GET"),
    ("/v3", "GET"),
    ("/v3/", "GET"),
    ("/v3/auth/tokens", "POST"),
    ("/v3/users/{user_id}/password", "POST"),
}
BODY_METHODS = {"POST", "PUT", "PATCH"}
UNKNOWN = "0" * 32


def cases():
    return route_cases(ROUTES)


def fill(path: str) -> str:
    return fill_path(path, UNKNOWN)


@pytest.fixture(scope="module")
def admin(identity_server):
    return auth_headers(admin_token(identity_server))


@pytest.fixture(scope="module")
def client(identity_server):
    with httpx.Client(base_url=identity_server.url, timeout=30) as c:
        yield c


@pytest.mark.parametrize(("path", "method"), [c for c in cases() if tuple(c.values) not in PUBLIC])
def test_without_a_token(client, path, method):
    response = client.request(method, fill(path), json={} if method in BODY_METHODS else None)
    assert_error(response, 401)
    bad = client.request(
        method,
        fill(path),
        headers={"X-Auth-Token": "not-a-token"},
        json={} if method in BODY_METHODS else None,
    )
    assert_error(bad, 401)


@pytest.mark.parametrize(("path", "method"), [c for c in cases() if "{" in c.values[0]])
def test_unknown_ids(client, admin, path, method):
    headers = dict(admin)
    if path.startswith("/v3/auth/"):
        headers["X-Subject-Token"] = "gAAAAABunknown"
    response = client.request(
        method, fill(path), headers=headers, json={} if method in BODY_METHODS else None
    )
    # An empty body may be refused before the lookup; anything else is 404.
    allowed = (400, 404) if method in BODY_METHODS else (404,)
    assert_error(response, *allowed)


@pytest.mark.parametrize(("path", "method"), [c for c in cases() if c.values[1] in BODY_METHODS])
@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"x": 1}', b'"string"', b"null"])
def test_malformed_bodies(client, admin, path, method, body):
    response = client.request(
        method,
        fill(path),
        content=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    if response.status_code < 300:
        # Some routes take no body at all (PUT of a grant or a tag): ignoring
        # one is right, and the ID is unknown, so it can never succeed here.
        pytest.fail(f"{method} {path} accepted {body!r}")
    assert_error(response, 400, 404)


@pytest.mark.parametrize(("path", "method"), [c for c in cases() if c.values[1] in BODY_METHODS])
def test_oversized_bodies(client, admin, path, method):
    body = b'{"pad": "' + b"x" * (200 * 1024) + b'"}'
    response = client.request(
        method,
        fill(path),
        content=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    assert_error(response, 413)


def test_wrong_types_in_known_bodies(client, admin):
    for path, body in [
        ("/v3/projects", {"project": {"name": 5}}),
        ("/v3/projects", {"project": {"name": "x", "enabled": "yes"}}),
        ("/v3/projects", {"project": {"name": "x", "tags": "not-a-list"}}),
        ("/v3/users", {"user": {"name": ["x"]}}),
        ("/v3/users", {"user": {}}),
        ("/v3/domains", {"domain": {"name": ""}}),
        ("/v3/domains", {"domain": {"name": "x", "enabled": 1}}),
        ("/v3/auth/tokens", {"auth": {"identity": {"methods": "password"}}}),
        ("/v3/auth/tokens", {"auth": {"identity": {"methods": ["password"], "password": 5}}}),
        (
            "/v3/auth/tokens",
            {
                "auth": {
                    "identity": {"methods": ["password"], "password": {"user": {"name": "admin"}}}
                }
            },
        ),
    ]:
        assert_error(client.post(path, json=body, headers=admin), 400)


def test_unsupported_content_type(client, admin):
    response = client.post(
        "/v3/domains",
        content=b"name=x",
        headers={**admin, "Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_error(response, 415)


def test_unknown_route_and_method(client):
    assert_error(client.get("/v3/no-such-thing"), 404)
    assert_error(client.put("/v3"), 405)


def test_forbidden_for_a_member(client, admin, identity_server, unique):
    project = client.post(
        "/v3/projects", headers=admin, json={"project": {"name": f"bad-{unique}"}}
    ).json()["project"]
    user = client.post(
        "/v3/users",
        headers=admin,
        json={
            "user": {"name": f"bad-{unique}", "password": "pw", "default_project_id": project["id"]}
        },
    ).json()["user"]
    member = role_id(identity_server, "member")
    grant(identity_server, f"/projects/{project['id']}/users/{user['id']}/roles/{member}")
    auth = password_auth(user["id"], "pw", project_scope(project["id"]), by_id=True)
    member_headers = auth_headers(post_token(identity_server, auth).headers["X-Subject-Token"])
    for method, path in [
        ("GET", "/v3/users"),
        ("POST", "/v3/domains"),
        ("GET", "/v3/domains"),
        ("DELETE", f"/v3/projects/{project['id']}"),
        ("POST", "/v3/projects"),
        ("GET", "/v3/services"),
    ]:
        body = (
            {"domain": {"name": "x"}}
            if path == "/v3/domains"
            else ({"project": {"name": "x"}} if method == "POST" else None)
        )
        assert_error(client.request(method, path, headers=member_headers, json=body), 403)
    # But the member sees its own project and itself.
    assert client.get(f"/v3/projects/{project['id']}", headers=member_headers).status_code == 200
    assert client.get(f"/v3/users/{user['id']}", headers=member_headers).status_code == 200
