"""Application credentials: made by a user, used by programs, through the real clients.

A token issued from an application credential (the CLI's
``v3applicationcredential`` auth type) carries only the credential's roles on
its project; deleting the credential kills that token, and an expired one is
refused.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.api.helpers import (
    ADMIN_SCOPE,
    admin_token,
    application_credential_auth,
    assert_error,
    auth_headers,
    create_project,
    create_user,
    grant,
    issue_token,
    post_token,
    project_scope,
    role_id,
    validate,
)
from tests.conftest import run_cli


class Owner:
    """A user with the member role on a project of their own."""

    def __init__(self, server, unique):
        self.server = server
        self.password = "pw-" + unique
        self.project = create_project(server, f"apps-{unique}")
        self.user = create_user(server, f"owner-{unique}", self.password)
        member = role_id(server, "member")
        grant(server, f"/projects/{self.project['id']}/users/{self.user['id']}/roles/{member}")

    @property
    def id(self):
        return self.user["id"]

    def token(self, scope="project"):
        if scope == "project":
            scope = project_scope(self.project["id"])
        return issue_token(self.server, self.user["name"], self.password, scope)[0]

    def url(self, suffix="", user_id=None):
        return f"{self.server.auth_url}/users/{user_id or self.id}/application_credentials{suffix}"

    def create(self, token=None, **fields):
        return httpx.post(
            self.url(),
            json={"application_credential": fields},
            headers=auth_headers(token or self.token()),
        )


@pytest.fixture
def owner(identity_server, unique):
    return Owner(identity_server, unique)


def app_cred_env(server, cred_id, secret):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(
        OS_AUTH_URL=server.auth_url,
        OS_AUTH_TYPE="v3applicationcredential",
        OS_APPLICATION_CREDENTIAL_ID=cred_id,
        OS_APPLICATION_CREDENTIAL_SECRET=secret,
        OS_IDENTITY_API_VERSION="3",
        OS_REGION_NAME="RegionOne",
    )
    return env


def test_cli_lifecycle_and_a_token_with_only_the_credentials_roles(
    identity_server, openstack_cli, owner, unique
):
    as_owner = {
        "user": owner.user["name"],
        "password": owner.password,
        "project": owner.project["name"],
    }
    name = f"backup-{unique}"
    created = openstack_cli(
        "application", "credential", "create", "--role", "reader", "--description",
        "nightly backups", name, "-f", "json", **as_owner,
    )  # fmt: skip
    assert created["Name"] == name
    assert created["Project ID"] == owner.project["id"]
    assert [r["name"] for r in created["Roles"]] == ["reader"]
    assert created["Unrestricted"] is False
    assert len(created["Secret"]) >= 64

    # The CLI authenticates with the credential alone.
    env = app_cred_env(identity_server, created["ID"], created["Secret"])
    token = run_cli(env, "token", "issue", "-f", "json")
    assert token["project_id"] == owner.project["id"]
    assert token["user_id"] == owner.id
    body = validate(identity_server, token["id"]).json()["token"]
    # The owner is a member (and so a reader); the token carries reader only.
    assert [r["name"] for r in body["roles"]] == ["reader"]
    assert body["methods"] == ["application_credential"]
    assert body["application_credential"] == {
        "id": created["ID"],
        "name": name,
        "restricted": True,
    }

    listed = openstack_cli("application", "credential", "list", "-f", "json", **as_owner)
    assert [c["Name"] for c in listed] == [name]
    shown = openstack_cli("application", "credential", "show", name, "-f", "json", **as_owner)
    assert shown["ID"] == created["ID"] and shown["Description"] == "nightly backups"
    assert "Secret" not in shown

    # Deleting the credential kills the token made from it, and the secret.
    openstack_cli("application", "credential", "delete", name, **as_owner)
    assert validate(identity_server, token["id"]).status_code == 404
    assert run_cli(env, "token", "issue", "-f", "json", check=False).returncode != 0
    assert_error(
        post_token(identity_server, application_credential_auth(created["ID"], created["Secret"])),
        401,
    )


def test_response_shape_and_hashed_secret(identity_server, owner, unique):
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(tzinfo=None)
    response = owner.create(
        name=f"shape-{unique}",
        secret="my-own-secret",
        expires_at=expires.isoformat(),
        roles=[{"name": "member"}],
    )
    assert response.status_code == 201, response.text
    cred = response.json()["application_credential"]
    member = next(r for r in cred["roles"] if r["name"] == "member")
    assert cred == {
        "id": cred["id"],
        "name": f"shape-{unique}",
        "description": None,
        "project_id": owner.project["id"],
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%f"),
        "unrestricted": False,
        "roles": [{"id": member["id"], "name": "member", "domain_id": None}],
        "access_rules": [],
        "secret": "my-own-secret",
        "links": {"self": owner.url(f"/{cred['id']}")},
    }
    got = httpx.get(owner.url(f"/{cred['id']}"), headers=auth_headers(owner.token()))
    assert got.status_code == 200
    assert "secret" not in got.json()["application_credential"]
    listed = httpx.get(owner.url(), headers=auth_headers(owner.token())).json()
    assert [c["id"] for c in listed["application_credentials"]] == [cred["id"]]
    assert "secret" not in listed["application_credentials"][0]
    filtered = httpx.get(owner.url("?name=nothing"), headers=auth_headers(owner.token())).json()
    assert filtered["application_credentials"] == []
    # Only a hash is stored: read the row the server wrote.
    from stratus.common.config import Config
    from stratus.common.db import Database, engine_from_config
    from stratus.identity import model

    engine = engine_from_config(Config(str(identity_server.config_path)))
    try:
        with Database(engine).session() as session:
            stored = session.get(model.ApplicationCredential, cred["id"])
            assert stored.secret_hash.startswith("$argon2id$")
            assert "my-own-secret" not in stored.secret_hash
    finally:
        engine.dispose()
    # Without roles, the credential takes every role of the token.
    every = owner.create(name=f"every-{unique}").json()["application_credential"]
    assert {r["name"] for r in every["roles"]} == {"member", "reader"}


def test_expired_credential_is_refused(identity_server, owner, unique):
    expires = datetime.now(UTC) + timedelta(seconds=3)
    response = owner.create(
        name=f"brief-{unique}", expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    )
    assert response.status_code == 201, response.text
    cred = response.json()["application_credential"]
    issued = post_token(identity_server, application_credential_auth(cred["id"], cred["secret"]))
    assert issued.status_code == 201
    token_expiry = datetime.fromisoformat(issued.json()["token"]["expires_at"])
    assert token_expiry <= expires
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    assert_error(
        post_token(identity_server, application_credential_auth(cred["id"], cred["secret"])), 401
    )
    assert validate(identity_server, issued.headers["X-Subject-Token"]).status_code == 404
    # An expiry in the past is refused at creation.
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert_error(owner.create(name=f"past-{unique}", expires_at=past), 400)


def test_wrong_secret_is_refused(identity_server, owner, unique):
    cred = owner.create(name=f"s-{unique}").json()["application_credential"]
    assert_error(
        post_token(identity_server, application_credential_auth(cred["id"], cred["secret"] + "x")),
        401,
    )
    by_name = {
        "auth": {
            "identity": {
                "methods": ["application_credential"],
                "application_credential": {
                    "name": cred["name"],
                    "user": {"id": owner.id},
                    "secret": cred["secret"],
                },
            }
        }
    }
    assert post_token(identity_server, by_name).status_code == 201


def test_restricted_credential_cannot_manage_credentials(identity_server, owner, unique):
    restricted = owner.create(name=f"r-{unique}").json()["application_credential"]
    token = post_token(
        identity_server, application_credential_auth(restricted["id"], restricted["secret"])
    )
    token = token.headers["X-Subject-Token"]
    assert_error(owner.create(token=token, name=f"child-{unique}"), 403)
    assert_error(httpx.delete(owner.url(f"/{restricted['id']}"), headers=auth_headers(token)), 403)
    # Reading is allowed.
    assert httpx.get(owner.url(), headers=auth_headers(token)).status_code == 200

    unrestricted = owner.create(name=f"u-{unique}", unrestricted=True)
    unrestricted = unrestricted.json()["application_credential"]
    token = post_token(
        identity_server, application_credential_auth(unrestricted["id"], unrestricted["secret"])
    )
    token = token.headers["X-Subject-Token"]
    child = owner.create(token=token, name=f"child-{unique}")
    assert child.status_code == 201, child.text
    deleted = httpx.delete(owner.url(f"/{restricted['id']}"), headers=auth_headers(token))
    assert deleted.status_code == 204


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({}, 400),
        ({"name": ""}, 400),
        ({"name": "x", "roles": "member"}, 400),
        ({"name": "x", "roles": [{"id": "a", "name": "b"}]}, 400),
        ({"name": "x", "unrestricted": "yes"}, 400),
        ({"name": "x", "expires_at": "next tuesday"}, 400),
        ({"name": "x", "roles": [{"name": "admin"}]}, 400),
        ({"name": "x", "roles": [{"id": "f" * 32}]}, 400),
        ({"name": "x", "roles": [{"name": "no-such-role"}]}, 404),
        (
            {"name": "x", "access_rules": [{"service": "compute", "method": "GET", "path": "/"}]},
            400,
        ),
    ],
)
def test_bad_input(owner, fields, status):
    assert_error(owner.create(**fields), status)
    listed = httpx.get(owner.url(), headers=auth_headers(owner.token())).json()
    assert listed["application_credentials"] == []


def test_duplicates_scopes_and_other_users(identity_server, owner, unique):
    assert owner.create(name=f"d-{unique}").status_code == 201
    assert_error(owner.create(name=f"d-{unique}"), 409)
    # Only a project-scoped token of the owner can create one.
    assert_error(owner.create(token=owner.token(scope="unscoped"), name=f"n-{unique}"), 403)
    admin = auth_headers(admin_token(identity_server))
    assert_error(
        httpx.post(owner.url(), json={"application_credential": {"name": "x"}}, headers=admin),
        403,
    )
    other = Owner(identity_server, unique + "o")
    mine = owner.create(name=f"m-{unique}").json()["application_credential"]
    # Another user can neither list nor read nor delete them...
    for call in (
        lambda h: httpx.get(owner.url(), headers=h),
        lambda h: httpx.get(owner.url(f"/{mine['id']}"), headers=h),
        lambda h: httpx.delete(owner.url(f"/{mine['id']}"), headers=h),
        lambda h: httpx.post(
            owner.url(), json={"application_credential": {"name": "x"}}, headers=h
        ),
    ):
        assert_error(call(auth_headers(other.token())), 403)
    # ...nor reach them through their own path.
    theirs = other.url(f"/{mine['id']}")
    assert_error(httpx.get(theirs, headers=auth_headers(other.token())), 404)
    assert_error(httpx.get(owner.url("/" + "f" * 32), headers=auth_headers(owner.token())), 404)
    # The cloud admin may read and delete any user's credentials.
    assert httpx.get(owner.url(), headers=admin).status_code == 200
    assert httpx.delete(owner.url(f"/{mine['id']}"), headers=admin).status_code == 204
    assert_error(httpx.get(owner.url(user_id="f" * 32), headers=admin), 404)


def test_token_is_bound_to_the_credentials_project(identity_server, owner, unique):
    cred = owner.create(name=f"b-{unique}").json()["application_credential"]
    body = application_credential_auth(cred["id"], cred["secret"])
    body["auth"]["scope"] = ADMIN_SCOPE
    assert_error(post_token(identity_server, body), 401)
    body["auth"]["scope"] = project_scope(owner.project["id"])
    assert post_token(identity_server, body).status_code == 201
