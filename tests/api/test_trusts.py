"""Trusts: a trustor delegates roles on a project to a trustee, through the real clients.

A trust-scoped token (the trustee's password plus the ``OS-TRUST:trust``
scope, or the CLI's ``OS_TRUST_ID``) carries the trust's roles and project;
with impersonation it names the trustor. Deleting the trust kills its
tokens, ``remaining_uses`` counts down, and an expired trust is refused.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.api.helpers import (
    admin_token,
    application_credential_auth,
    assert_error,
    auth_headers,
    create_project,
    create_user,
    expect,
    grant,
    issue_token,
    password_auth,
    post_token,
    project_scope,
    request,
    role_id,
    token_auth,
    validate,
)
from tests.conftest import run_cli


class Parties:
    """A trustor who is a member of a project, a trustee with no role, a bystander."""

    def __init__(self, server, unique):
        self.server = server
        self.password = "pw-" + unique
        self.project = create_project(server, f"trusted-{unique}")
        self.trustor = create_user(server, f"trustor-{unique}", self.password)
        self.trustee = create_user(server, f"trustee-{unique}", self.password)
        self.bystander = create_user(server, f"bystander-{unique}", self.password)
        member = role_id(server, "member")
        for user in (self.trustor, self.bystander):
            grant(server, f"/projects/{self.project['id']}/users/{user['id']}/roles/{member}")

    def token(self, user, scope="project"):
        if scope == "project":
            scope = project_scope(self.project["id"])
        return issue_token(self.server, user["name"], self.password, scope)[0]

    def url(self, suffix=""):
        return f"{self.server.auth_url}/OS-TRUST/trusts{suffix}"

    def create(self, token=None, **fields):
        body = {
            "trustor_user_id": self.trustor["id"],
            "trustee_user_id": self.trustee["id"],
            "project_id": self.project["id"],
            "impersonation": False,
            "roles": [{"name": "member"}],
            **fields,
        }
        body = {k: v for k, v in body.items() if v is not ...}
        return httpx.post(
            self.url(),
            json={"trust": body},
            headers=auth_headers(token or self.token(self.trustor)),
        )

    def trust(self, **fields):
        response = self.create(**fields)
        assert response.status_code == 201, response.text
        return response.json()["trust"]

    def trust_auth(self, trust_id, user=None):
        user = user or self.trustee
        return post_token(
            self.server,
            password_auth(user["name"], self.password, {"OS-TRUST:trust": {"id": trust_id}}),
        )

    def cli_env(self, user, project=True):
        return self.server.cli_env(
            user["name"], self.password, self.project["name"] if project else None
        )


@pytest.fixture
def parties(identity_server, unique):
    return Parties(identity_server, unique)


def test_cli_lifecycle_and_an_impersonating_trust_token(identity_server, parties):
    trustor = parties.cli_env(parties.trustor)
    created = run_cli(
        trustor, "trust", "create", "--project", parties.project["id"], "--role", "member",
        "--impersonate", parties.trustor["id"], parties.trustee["id"], "-f", "json",
    )  # fmt: skip
    assert created["is_impersonation"] is True
    assert created["project_id"] == parties.project["id"]
    assert created["trustor_user_id"] == parties.trustor["id"]
    assert created["trustee_user_id"] == parties.trustee["id"]
    assert [r["name"] for r in created["roles"]] == ["member"]

    # The trustee gets a token through the trust with the CLI.
    trustee = parties.cli_env(parties.trustee, project=False)
    trustee["OS_TRUST_ID"] = created["id"]
    token = run_cli(trustee, "token", "issue", "-f", "json")
    assert token["project_id"] == parties.project["id"]
    # Impersonation: the token speaks for the trustor.
    assert token["user_id"] == parties.trustor["id"]
    body = validate(identity_server, token["id"]).json()["token"]
    assert [r["name"] for r in body["roles"]] == ["member"]
    assert body["OS-TRUST:trust"] == {
        "id": created["id"],
        "impersonation": True,
        "trustee_user": {"id": parties.trustee["id"]},
        "trustor_user": {"id": parties.trustor["id"]},
    }

    listed = run_cli(trustor, "trust", "list", "--auth-user", "-f", "json")
    assert [t["ID"] for t in listed] == [created["id"]]
    as_trustee = run_cli(parties.cli_env(parties.trustee, project=False), "trust", "list",
                         "--auth-user", "-f", "json")  # fmt: skip
    assert [t["ID"] for t in as_trustee] == [created["id"]]
    shown = run_cli(trustor, "trust", "show", created["id"], "-f", "json")
    assert shown["id"] == created["id"] and shown["remaining_uses"] is None

    # Deleting the trust kills the token made from it.
    run_cli(trustor, "trust", "delete", created["id"])
    assert validate(identity_server, token["id"]).status_code == 404
    assert run_cli(trustee, "token", "issue", "-f", "json", check=False).returncode != 0
    assert run_cli(trustor, "trust", "show", created["id"], check=False).returncode != 0


def test_trust_token_without_impersonation_names_the_trustee(identity_server, parties):
    trust = parties.trust()
    response = parties.trust_auth(trust["id"])
    assert response.status_code == 201, response.text
    body = response.json()["token"]
    assert body["user"]["id"] == parties.trustee["id"]
    assert body["project"]["id"] == parties.project["id"]
    # Only the delegated role: the trustor's implied reader role is not in it.
    assert [r["name"] for r in body["roles"]] == ["member"]
    assert body["OS-TRUST:trust"]["impersonation"] is False
    # The token works against the API, as the trustee, on the trust's project.
    subject = response.headers["X-Subject-Token"]
    project = httpx.get(
        f"{identity_server.auth_url}/projects/{parties.project['id']}",
        headers=auth_headers(subject),
    )
    assert project.status_code == 200
    # Nobody else can use the trust.
    assert_error(parties.trust_auth(trust["id"], user=parties.bystander), 403)
    # A trust-scoped token cannot be rescoped.
    rescope = token_auth(subject, project_scope(parties.project["id"]))
    assert_error(post_token(identity_server, rescope), 403)


def test_response_shape(identity_server, parties):
    expires = datetime.now(UTC) + timedelta(days=2)
    trust = parties.trust(expires_at=expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    member = role_id(identity_server, "member")
    assert trust == {
        "id": trust["id"],
        "trustor_user_id": parties.trustor["id"],
        "trustee_user_id": parties.trustee["id"],
        "project_id": parties.project["id"],
        "impersonation": False,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "remaining_uses": None,
        "allow_redelegation": False,
        "redelegation_count": 0,
        "redelegated_trust_id": None,
        "roles": [trust["roles"][0]],
        "roles_links": {
            "self": parties.url(f"/{trust['id']}/roles"),
            "previous": None,
            "next": None,
        },
        "links": {"self": parties.url(f"/{trust['id']}")},
    }
    role = trust["roles"][0]
    assert role["id"] == member and role["name"] == "member"
    assert role["links"]["self"] == f"{identity_server.auth_url}/roles/{member}"

    trustee = auth_headers(parties.token(parties.trustee, scope="unscoped"))
    roles = httpx.get(parties.url(f"/{trust['id']}/roles"), headers=trustee)
    assert roles.status_code == 200
    assert [r["id"] for r in roles.json()["roles"]] == [member]
    assert roles.json()["links"]["self"] == parties.url(f"/{trust['id']}/roles")
    one = httpx.get(parties.url(f"/{trust['id']}/roles/{member}"), headers=trustee)
    assert one.status_code == 200 and one.json()["role"]["name"] == "member"
    head = httpx.head(parties.url(f"/{trust['id']}/roles/{member}"), headers=trustee)
    assert head.status_code == 200 and head.content == b""
    reader = role_id(identity_server, "reader")
    assert_error(httpx.get(parties.url(f"/{trust['id']}/roles/{reader}"), headers=trustee), 404)
    assert (
        httpx.head(parties.url(f"/{trust['id']}/roles/{reader}"), headers=trustee).status_code
        == 404
    )

    # Lists carry no roles, as Keystone's do.
    listed = httpx.get(
        parties.url(f"?trustee_user_id={parties.trustee['id']}"), headers=trustee
    ).json()
    assert [t["id"] for t in listed["trusts"]] == [trust["id"]]
    assert "roles" not in listed["trusts"][0]


def test_remaining_uses_count_down(identity_server, parties):
    trust = parties.trust(remaining_uses=2)
    trustor = auth_headers(parties.token(parties.trustor))
    first = parties.trust_auth(trust["id"])
    assert first.status_code == 201
    assert (
        httpx.get(parties.url(f"/{trust['id']}"), headers=trustor).json()["trust"]["remaining_uses"]
        == 1
    )
    assert parties.trust_auth(trust["id"]).status_code == 201
    assert_error(parties.trust_auth(trust["id"]), 401)
    # A used-up trust is gone, but the tokens it gave still work until they expire.
    assert_error(httpx.get(parties.url(f"/{trust['id']}"), headers=trustor), 404)
    assert validate(identity_server, first.headers["X-Subject-Token"]).status_code == 200


def test_a_last_use_is_given_once_under_concurrency(parties):
    from concurrent.futures import ThreadPoolExecutor

    trust = parties.trust(remaining_uses=1)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: parties.trust_auth(trust["id"]).status_code, range(8)))
    assert sorted(statuses) == [201] + [401] * 7


def test_expired_trust_is_refused(identity_server, parties):
    expires = datetime.now(UTC) + timedelta(seconds=3)
    trust = parties.trust(expires_at=expires.isoformat())
    issued = parties.trust_auth(trust["id"])
    assert issued.status_code == 201
    assert datetime.fromisoformat(issued.json()["token"]["expires_at"]) <= expires
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.5)
    assert_error(parties.trust_auth(trust["id"]), 401)
    assert validate(identity_server, issued.headers["X-Subject-Token"]).status_code == 404
    trustor = auth_headers(parties.token(parties.trustor))
    assert_error(httpx.get(parties.url(f"/{trust['id']}"), headers=trustor), 404)


def test_trust_token_dies_when_the_trustor_loses_the_role(identity_server, parties):
    trust = parties.trust()
    issued = parties.trust_auth(trust["id"])
    subject = issued.headers["X-Subject-Token"]
    assert validate(identity_server, subject).status_code == 200
    member = role_id(identity_server, "member")
    path = f"/projects/{parties.project['id']}/users/{parties.trustor['id']}/roles/{member}"
    expect(request(identity_server, "DELETE", path), 204)
    assert validate(identity_server, subject).status_code == 404
    assert_error(parties.trust_auth(trust["id"]), 401)


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"impersonation": ...}, 400),
        ({"impersonation": "yes"}, 400),
        ({"remaining_uses": 0}, 400),
        ({"remaining_uses": "many"}, 400),
        ({"expires_at": "soon"}, 400),
        ({"expires_at": "2001-01-01T00:00:00Z"}, 400),
        ({"roles": [{"id": "x", "name": "y"}]}, 400),
        ({"allow_redelegation": True, "remaining_uses": 3}, 400),
        ({"allow_redelegation": True, "redelegation_count": 10}, 403),
        ({"roles": []}, 403),
        ({"roles": ...}, 403),
        ({"trustee_user_id": "f" * 32}, 404),
        ({"project_id": "f" * 32}, 404),
        ({"roles": [{"name": "no-such-role"}]}, 404),
        ({"roles": [{"id": "f" * 32}]}, 404),
        ({"roles": [{"name": "admin"}]}, 404),
    ],
)
def test_bad_input(parties, fields, status):
    assert_error(parties.create(**fields), status)
    trustor = auth_headers(parties.token(parties.trustor))
    listed = httpx.get(
        parties.url(f"?trustor_user_id={parties.trustor['id']}"), headers=trustor
    ).json()
    assert listed["trusts"] == []


def test_who_may_create_see_and_delete(identity_server, parties):
    admin = auth_headers(admin_token(identity_server))
    # Only the trustor creates a trust for itself.
    assert_error(parties.create(token=parties.token(parties.bystander)), 403)
    assert_error(parties.create(token=admin_token(identity_server)), 403)
    trust = parties.trust(redelegation_count=None, allow_redelegation=True)
    assert trust["allow_redelegation"] is True and trust["redelegation_count"] == 3
    one = parties.url(f"/{trust['id']}")
    trustee = auth_headers(parties.token(parties.trustee, scope="unscoped"))
    bystander = auth_headers(parties.token(parties.bystander))
    assert httpx.get(one, headers=trustee).status_code == 200
    assert httpx.get(one, headers=admin).status_code == 200
    assert_error(httpx.get(one, headers=bystander), 403)
    assert_error(httpx.get(parties.url(f"/{trust['id']}/roles"), headers=bystander), 403)
    # Listing: everyone may see their own side; only readers of the cloud see all.
    assert_error(httpx.get(parties.url(), headers=bystander), 403)
    assert_error(
        httpx.get(parties.url(f"?trustor_user_id={parties.trustor['id']}"), headers=bystander), 403
    )
    assert_error(
        httpx.get(parties.url(f"?trustee_user_id={parties.trustee['id']}"), headers=bystander), 403
    )
    assert trust["id"] in {
        t["id"] for t in httpx.get(parties.url(), headers=admin).json()["trusts"]
    }
    # The trustee cannot delete it; unknown trusts are 404 for everyone.
    assert_error(httpx.delete(one, headers=trustee), 403)
    assert_error(httpx.get(parties.url("/" + "f" * 32), headers=bystander), 404)
    assert_error(httpx.delete(parties.url("/" + "f" * 32), headers=admin), 404)
    # The cloud admin may delete it; then it is gone.
    assert httpx.delete(one, headers=admin).status_code == 204
    assert_error(httpx.get(one, headers=admin), 404)
    assert_error(httpx.delete(one, headers=admin), 404)


def test_delegated_tokens_cannot_make_trusts(identity_server, parties):
    trust = parties.trust(impersonation=True)
    subject = parties.trust_auth(trust["id"]).headers["X-Subject-Token"]
    # Redelegation is not supported.
    assert_error(parties.create(token=subject), 403)
    # A token from a restricted application credential cannot manage trusts.
    trustor = parties.token(parties.trustor)
    cred = httpx.post(
        f"{identity_server.auth_url}/users/{parties.trustor['id']}/application_credentials",
        json={"application_credential": {"name": "for-trusts"}},
        headers=auth_headers(trustor),
    ).json()["application_credential"]
    app_token = post_token(
        identity_server, application_credential_auth(cred["id"], cred["secret"])
    ).headers["X-Subject-Token"]
    assert_error(parties.create(token=app_token), 403)
    assert_error(httpx.delete(parties.url(f"/{trust['id']}"), headers=auth_headers(app_token)), 403)
    assert (
        httpx.delete(parties.url(f"/{trust['id']}"), headers=auth_headers(trustor)).status_code
        == 204
    )


def test_sdk_lists_and_reads_trusts(identity_server, parties):
    import openstack

    trust = parties.trust()
    conn = openstack.connect(
        auth=identity_server.auth(
            parties.trustor["name"], parties.password, parties.project["name"]
        ),
        region_name="RegionOne",
        identity_api_version="3",
    )
    try:
        fetched = conn.identity.get_trust(trust["id"])
        assert fetched.trustee_user_id == parties.trustee["id"]
        assert fetched.is_impersonation is False
        mine = list(conn.identity.trusts(trustor_user_id=parties.trustor["id"]))
        assert [t.id for t in mine] == [trust["id"]]
        conn.identity.delete_trust(trust["id"])
        assert list(conn.identity.trusts(trustor_user_id=parties.trustor["id"])) == []
    finally:
        conn.close()
