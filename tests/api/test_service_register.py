"""``stratus-manage service register``: another service's catalog entry and
service user, beside ``bootstrap`` (tests/api/test_identity_lifecycle.py).

The command is run as the image role runs it, against a real identity server
of this module's own; what it made is then looked at through identity's API
and the ``openstack`` CLI, and used: the service user validates another
user's token, as every other Stratus service does for its callers.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from stratus.common.auth import RemoteValidator, RequestContext, ServiceCredentials
from tests.api.helpers import (
    TIMEOUT,
    authenticate,
    create_project,
    create_user,
    expect,
    grant,
    issue_token,
    project_scope,
    request,
    role_id,
)
from tests.conftest import BIN, IdentityServer, make_identity_server, run_cli, write_config

SERVICE_PASSWORD = "glance-service-password-1"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    """A server of this module's own: registering changes its catalog."""
    server = make_identity_server(tmp_path_factory.mktemp("register"))
    try:
        yield server
    finally:
        server.stop()


def register(
    server: IdentityServer, *args: str, password: str | None = SERVICE_PASSWORD
) -> subprocess.CompletedProcess[str]:
    env = {"STRATUS_SERVICE_PASSWORD": password} if password is not None else {}
    return server.manage(
        "service",
        "register",
        "--type",
        "image",
        "--name",
        "glance",
        "--description",
        "Stratus image service",
        "--user",
        "glance",
        *args,
        env=env,
        check=False,
    )


def changed(result: subprocess.CompletedProcess[str]) -> bool:
    assert result.returncode == 0, result.stderr
    return bool(json.loads(result.stdout)["changed"])


def image_endpoints(server: IdentityServer) -> dict[str, dict[str, str]]:
    services = expect(request(server, "GET", "/services", params={"type": "image"}))["services"]
    assert [s["name"] for s in services] == ["glance"], services
    endpoints = expect(
        request(server, "GET", "/endpoints", params={"service_id": services[0]["id"]})
    )["endpoints"]
    return {e["interface"]: e for e in endpoints}


def test_register_is_idempotent_and_defaults_internal_and_admin_to_public(server):
    url = "http://image.example.net:9292"
    first = register(server, "--public-url", url)
    assert changed(first)
    assert {"user glance", "public endpoint", "internal endpoint", "admin endpoint"} <= set(
        json.loads(first.stdout)["changes"]
    )
    second = register(server, "--public-url", url)
    assert json.loads(second.stdout) == {"changed": False, "changes": []}

    endpoints = image_endpoints(server)
    assert {i: e["url"] for i, e in endpoints.items()} == {
        "public": url,
        "internal": url,
        "admin": url,
    }
    assert {e["region_id"] for e in endpoints.values()} == {"RegionOne"}
    # What a client sees: the openstack CLI finds the image service in the catalog.
    catalog = run_cli(server.cli_env(), "catalog", "list", "-f", "json")
    assert {"Name": "glance", "Type": "image"} in [
        {"Name": c["Name"], "Type": c["Type"]} for c in catalog
    ]


def test_a_changed_url_is_updated_in_place(server):
    public = "http://image.example.net:9292"
    register(server, "--public-url", public)
    before = image_endpoints(server)
    internal = "http://10.0.0.5:9292"
    result = register(server, "--public-url", public, "--internal-url", internal)
    assert changed(result)
    assert json.loads(result.stdout)["changes"] == ["internal endpoint URL"]
    after = image_endpoints(server)
    assert after["internal"]["url"] == internal
    assert after["public"]["url"] == public
    assert {i: e["id"] for i, e in after.items()} == {i: e["id"] for i, e in before.items()}
    assert not changed(register(server, "--public-url", public, "--internal-url", internal))


def test_the_service_user_validates_other_users_tokens(server, unique):
    register(server, "--public-url", "http://image.example.net:9292")
    user = create_user(server, f"someone-{unique}", "someone-password")
    project = create_project(server, f"work-{unique}")
    grant(server, f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(server, 'member')}")
    subject, _ = issue_token(server, user["name"], "someone-password", project_scope(project["id"]))
    service_token, body = issue_token(
        server,
        "glance",
        SERVICE_PASSWORD,
        {"project": {"name": "service", "domain": {"id": "default"}}},
    )
    assert "service" in {r["name"] for r in body["roles"]}
    assert body["project"]["name"] == "service"

    validated = httpx.get(
        f"{server.auth_url}/auth/tokens",
        headers={"X-Auth-Token": service_token, "X-Subject-Token": subject},
        timeout=TIMEOUT,
    )
    assert validated.status_code == 200, validated.text
    assert validated.json()["token"]["user"]["id"] == user["id"]

    # What the image service itself does with [image_authtoken].
    validator = RemoteValidator(
        ServiceCredentials(server.url, "glance", SERVICE_PASSWORD, project_name="service"),
        cache_ttl=0,
    )
    context = RequestContext.from_token(validator.validate(subject))
    assert context.user_id == user["id"] and context.project_id == project["id"]
    assert "member" in context.roles

    # The role is what lets it: a plain member may not validate others' tokens.
    other, _ = issue_token(server, user["name"], "someone-password", project_scope(project["id"]))
    refused = httpx.get(
        f"{server.auth_url}/auth/tokens",
        headers={"X-Auth-Token": other, "X-Subject-Token": service_token},
        timeout=TIMEOUT,
    )
    assert refused.status_code == 403, refused.text


def test_a_new_password_is_set_and_only_then(server):
    url = "http://image.example.net:9292"
    register(server, "--public-url", url)
    new = "glance-service-password-2"
    try:
        result = register(server, "--public-url", url, password=new)
        assert json.loads(result.stdout)["changes"] == ["password of glance"]
        assert not changed(register(server, "--public-url", url, password=new))
        assert authenticate(server, "glance", SERVICE_PASSWORD).status_code == 401
        assert authenticate(server, "glance", new).status_code == 201
    finally:
        assert changed(register(server, "--public-url", url))


@pytest.mark.parametrize("password", ["", None])
def test_register_requires_the_password(server, password):
    result = register(server, "--public-url", "http://x:9292", password=password)
    assert result.returncode == 2
    assert "STRATUS_SERVICE_PASSWORD" in result.stderr
    assert result.stdout == ""


def test_register_before_bootstrap_fails_clearly(tmp_path: Path):
    config = tmp_path / "stratus.conf"
    write_config(config, tmp_path, 1)
    manage = [str(BIN / "stratus-manage"), "--config-file", str(config)]
    subprocess.run([*manage, "db", "sync"], check=True, capture_output=True)
    register_args = ["--type", "image", "--name", "glance", "--public-url", "http://x:9292"]
    result = subprocess.run(
        [*manage, "service", "register", *register_args],
        capture_output=True,
        text=True,
        env={"STRATUS_SERVICE_PASSWORD": SERVICE_PASSWORD, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 1
    assert "bootstrap" in result.stderr


def test_more_roles_on_the_service_project(server):
    """``--role member``: what a service needs of another (the image service's
    user owning its project's Swift account) is granted with the rest."""
    url = "http://image.example.net:9292"
    register(server, "--public-url", url)
    result = register(server, "--public-url", url, "--role", "member", "--role", "member")
    assert json.loads(result.stdout)["changes"] == ["member on project service for glance"]
    assert not changed(register(server, "--public-url", url, "--role", "member"))
    users = expect(request(server, "GET", "/users", params={"name": "glance"}))["users"]
    assignments = expect(
        request(server, "GET", "/role_assignments", params={"user.id": users[0]["id"]})
    )["role_assignments"]
    assert {a["role"]["id"] for a in assignments} == {
        role_id(server, "service"),
        role_id(server, "member"),
    }


def test_an_unknown_role_changes_nothing(server):
    result = register(server, "--public-url", "http://other.example.net:9292", "--role", "nope")
    assert result.returncode == 1
    assert "role nope does not exist" in result.stderr
    endpoints = image_endpoints(server)
    assert "other.example.net" not in endpoints["public"]["url"]
