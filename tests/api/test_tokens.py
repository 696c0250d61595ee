"""Tokens through the real clients: issue, validate, revoke, scopes, failures."""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import ADMIN_SCOPE, authenticate, password_auth, post_token, token_auth


def test_cli_issues_a_project_token(openstack_cli):
    token = openstack_cli("token", "issue", "-f", "json")
    assert token["project_id"]
    assert token["user_id"]
    assert len(token["id"]) < 255


def test_token_in_header_and_body(identity_server):
    scope = {"project": {"name": "admin", "domain": {"name": "Default"}}}
    response = authenticate(identity_server, "admin", identity_server.admin_password, scope)
    assert response.status_code == 201
    assert response.headers["X-Subject-Token"]
    assert response.headers["x-openstack-request-id"].startswith("req-")
    token = response.json()["token"]
    assert token["project"]["name"] == "admin"
    assert {r["name"] for r in token["roles"]} >= {"admin", "member", "reader"}
    # Other tests' services may be in the catalog too (in any order).
    (identity,) = [s for s in token["catalog"] if s["type"] == "identity"]
    assert identity["endpoints"][0]["url"].startswith(identity_server.url)
    assert token["expires_at"].endswith("Z")


def test_unscoped_system_and_domain_scopes(identity_server):
    password = identity_server.admin_password
    unscoped = authenticate(identity_server, "admin", password, "unscoped")
    assert unscoped.status_code == 201
    body = unscoped.json()["token"]
    assert "project" not in body and "roles" not in body
    system = authenticate(identity_server, "admin", password, {"system": {"all": True}})
    assert system.status_code == 201
    assert system.json()["token"]["system"] == {"all": True}
    domain = authenticate(identity_server, "admin", password, {"domain": {"id": "default"}})
    # The bootstrap admin has no role on the domain itself.
    assert domain.status_code == 401


def test_validate_check_and_revoke(identity_server):
    password = identity_server.admin_password
    admin = authenticate(identity_server, "admin", password).headers["X-Subject-Token"]
    subject = authenticate(identity_server, "admin", password).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": admin, "X-Subject-Token": subject}
    url = f"{identity_server.auth_url}/auth/tokens"
    got = httpx.get(url, headers=headers)
    assert got.status_code == 200
    assert got.headers["X-Subject-Token"] == subject
    assert "catalog" not in httpx.get(url + "?nocatalog", headers=headers).json()["token"]
    assert httpx.head(url, headers=headers).status_code == 200
    assert httpx.delete(url, headers=headers).status_code == 204
    assert httpx.get(url, headers=headers).status_code == 404
    assert httpx.head(url, headers=headers).status_code == 404
    # The revoked token no longer authenticates anything.
    assert (
        httpx.get(
            f"{identity_server.auth_url}/users", headers={"X-Auth-Token": subject}
        ).status_code
        == 401
    )


def test_rescope_with_token_method_keeps_expiry(identity_server):
    password = identity_server.admin_password
    first = authenticate(identity_server, "admin", password, "unscoped")
    token = first.headers["X-Subject-Token"]
    second = post_token(identity_server, token_auth(token, ADMIN_SCOPE))
    assert second.status_code == 201
    rescoped = second.json()["token"]
    assert rescoped["expires_at"] == first.json()["token"]["expires_at"]
    assert rescoped["audit_ids"][1] == first.json()["token"]["audit_ids"][0]


@pytest.mark.parametrize(
    "mutate",
    [
        lambda b: b["auth"]["identity"]["password"]["user"].update(password="wrong"),
        lambda b: b["auth"]["identity"]["password"]["user"].update(name="nobody"),
        lambda b: b["auth"].update(scope={"project": {"id": "0" * 32}}),
        lambda b: b["auth"]["identity"].update(methods=["totp"]),
    ],
)
def test_bad_credentials_get_401(identity_server, mutate):
    body = password_auth("admin", identity_server.admin_password)
    mutate(body)
    response = post_token(identity_server, body)
    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == 401 and error["title"] == "Unauthorized"


def test_garbage_tokens_are_refused(identity_server):
    url = f"{identity_server.auth_url}/users"
    for token in ("garbage", "gAAAAA" + "x" * 150, "a" * 5000):
        response = httpx.get(url, headers={"X-Auth-Token": token})
        assert response.status_code == 401, token


def test_sdk_session_and_catalog(admin_conn):
    projects = {p.name for p in admin_conn.identity.projects()}
    assert {"admin", "service"} <= projects


def test_the_callers_own_view(identity_server):
    password = identity_server.admin_password
    token = authenticate(identity_server, "admin", password).headers["X-Subject-Token"]
    headers = {"X-Auth-Token": token}
    base = identity_server.auth_url
    catalog = httpx.get(f"{base}/auth/catalog", headers=headers).json()["catalog"]
    assert catalog[0]["endpoints"][0]["interface"] == "public"
    projects = httpx.get(f"{base}/auth/projects", headers=headers).json()["projects"]
    assert "admin" in {p["name"] for p in projects}
    assert httpx.get(f"{base}/auth/domains", headers=headers).json()["domains"] == []
    assert httpx.get(f"{base}/auth/system", headers=headers).json()["system"] == [{"all": True}]
    unscoped = authenticate(identity_server, "admin", password, "unscoped")
    headers = {"X-Auth-Token": unscoped.headers["X-Subject-Token"]}
    assert httpx.get(f"{base}/auth/catalog", headers=headers).status_code == 403


def test_version_documents(identity_server):
    root = httpx.get(identity_server.url + "/")
    assert root.status_code == 300
    (version,) = root.json()["versions"]["values"]
    assert version["id"].startswith("v3.") and version["status"] == "stable"
    assert version["links"][0]["href"] == f"{identity_server.url}/v3/"
    proxied = httpx.get(
        identity_server.url + "/v3",
        headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "keystone.example.net"},
    )
    assert proxied.json()["version"]["links"][0]["href"] == "https://keystone.example.net/v3/"
