"""Groups and their members through the openstack CLI, openstacksdk and plain HTTP."""

from __future__ import annotations

from tests.api.helpers import (
    assert_error,
    create_group,
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
    validate,
)


def test_group_lifecycle_with_the_cli(openstack_cli, unique):
    name = f"grp-{unique}"
    created = openstack_cli(
        "group", "create", "--domain", "default", "--description", "ops", name, "-f", "json"
    )
    assert created["name"] == name
    assert created["domain_id"] == "default"
    assert created["description"] == "ops"

    shown = openstack_cli("group", "show", created["id"], "-f", "json")
    assert shown["id"] == created["id"]
    listed = openstack_cli("group", "list", "--domain", "default", "-f", "json")
    assert name in {g["Name"] for g in listed}

    openstack_cli("group", "set", "--name", f"{name}-renamed", "--description", "x", name)
    renamed = openstack_cli("group", "show", created["id"], "-f", "json")
    assert renamed["name"] == f"{name}-renamed"
    assert renamed["description"] == "x"

    duplicate = openstack_cli(
        "group", "create", "--domain", "default", f"{name}-renamed", check=False
    )
    assert duplicate.returncode != 0

    openstack_cli("group", "delete", created["id"])
    missing = openstack_cli("group", "show", created["id"], check=False)
    assert missing.returncode != 0


def test_membership_with_the_cli(openstack_cli, identity_server, unique):
    group = create_group(identity_server, f"team-{unique}")
    user = create_user(identity_server, f"member-{unique}")
    other = create_user(identity_server, f"outsider-{unique}")

    openstack_cli("group", "add", "user", group["id"], user["id"])
    # Adding twice is harmless.
    openstack_cli("group", "add", "user", group["id"], user["id"])
    contains = openstack_cli("group", "contains", "user", group["id"], user["id"])
    assert "in group" in contains.stdout and "not" not in contains.stdout
    absent = openstack_cli("group", "contains", "user", group["id"], other["id"], check=False)
    assert "not in group" in absent.stdout + absent.stderr

    members = openstack_cli("user", "list", "--group", group["id"], "-f", "json")
    assert [m["ID"] for m in members] == [user["id"]]
    groups = openstack_cli("group", "list", "--user", user["id"], "-f", "json")
    assert [g["ID"] for g in groups] == [group["id"]]

    openstack_cli("group", "remove", "user", group["id"], user["id"])
    assert openstack_cli("user", "list", "--group", group["id"], "-f", "json") == []
    assert (
        request(identity_server, "HEAD", f"/groups/{group['id']}/users/{user['id']}").status_code
        == 404
    )


def test_membership_with_the_sdk(admin_conn, unique):
    identity = admin_conn.identity
    group = identity.create_group(name=f"sdk-{unique}", domain_id="default")
    user = identity.create_user(name=f"sdk-user-{unique}", domain_id="default", password="pw-1")
    identity.add_user_to_group(user, group)
    assert identity.check_user_in_group(user, group)
    assert [u.id for u in identity.group_users(group)] == [user.id]
    assert [g.id for g in identity.user_groups(user)] == [group.id]
    identity.remove_user_from_group(user, group)
    assert not identity.check_user_in_group(user, group)
    found = identity.find_group(f"sdk-{unique}")
    assert found.id == group.id
    identity.delete_group(group)
    assert identity.find_group(f"sdk-{unique}") is None


def test_group_filters_and_shape(identity_server, unique):
    group = create_group(identity_server, f"Filter-{unique}")
    assert set(group) >= {"id", "name", "domain_id", "description", "links"}
    assert group["links"]["self"].endswith(f"/v3/groups/{group['id']}")
    exact = expect(request(identity_server, "GET", "/groups", params={"name": f"Filter-{unique}"}))
    assert [g["id"] for g in exact["groups"]] == [group["id"]]
    fuzzy = expect(
        request(identity_server, "GET", "/groups", params={"name__icontains": f"filter-{unique}"})
    )
    assert [g["id"] for g in fuzzy["groups"]] == [group["id"]]
    assert (
        expect(request(identity_server, "GET", "/groups", params={"domain_id": "nowhere"}))[
            "groups"
        ]
        == []
    )
    assert set(exact["links"]) == {"self", "previous", "next"}


def test_group_bad_input(identity_server, unique):
    group = create_group(identity_server, f"bad-{unique}")
    user = create_user(identity_server, f"bad-user-{unique}")
    missing = "0" * 32
    assert_error(request(identity_server, "GET", f"/groups/{missing}"), 404)
    assert_error(request(identity_server, "DELETE", f"/groups/{missing}"), 404)
    assert_error(request(identity_server, "PUT", f"/groups/{missing}/users/{user['id']}"), 404)
    assert_error(request(identity_server, "PUT", f"/groups/{group['id']}/users/{missing}"), 404)
    assert_error(
        request(identity_server, "DELETE", f"/groups/{group['id']}/users/{user['id']}"), 404
    )
    assert_error(request(identity_server, "GET", f"/users/{missing}/groups"), 404)
    assert_error(request(identity_server, "POST", "/groups", json={"group": {}}), 400)
    assert_error(request(identity_server, "POST", "/groups", json={"group": {"name": 5}}), 400)
    assert_error(request(identity_server, "POST", "/groups", json={"name": "x"}), 400)
    assert_error(
        request(
            identity_server, "POST", "/groups", json={"group": {"name": "x", "domain_id": missing}}
        ),
        404,
    )
    assert_error(
        request(identity_server, "POST", "/groups", json={"group": {"name": f"bad-{unique}"}}), 409
    )
    assert_error(
        request(
            identity_server,
            "PATCH",
            f"/groups/{group['id']}",
            json={"group": {"domain_id": "other"}},
        ),
        400,
    )
    assert_error(
        request(identity_server, "PATCH", f"/groups/{group['id']}", json={"group": {}}), 400
    )


def test_non_admin_is_forbidden(identity_server, unique):
    project = create_project(identity_server, f"plain-{unique}")
    user = create_user(identity_server, f"plain-{unique}", "pw-plain-1")
    grant(
        identity_server,
        f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(identity_server, 'member')}",
    )
    token, _ = issue_token(
        identity_server, user["name"], "pw-plain-1", project_scope(project["id"])
    )
    assert_error(
        request(
            identity_server,
            "POST",
            "/groups",
            token=token,
            json={"group": {"name": f"nope-{unique}"}},
        ),
        403,
    )
    assert_error(request(identity_server, "GET", "/groups", token=token), 403)
    group = create_group(identity_server, f"guarded-{unique}")
    assert_error(
        request(identity_server, "PUT", f"/groups/{group['id']}/users/{user['id']}", token=token),
        403,
    )
    # A user may list their own groups.
    mine = expect(request(identity_server, "GET", f"/users/{user['id']}/groups", token=token))
    assert mine["groups"] == []


def test_leaving_a_group_revokes_the_users_tokens(identity_server, unique):
    project = create_project(identity_server, f"via-group-{unique}")
    group = create_group(identity_server, f"via-group-{unique}")
    user = create_user(identity_server, f"via-group-{unique}", "pw-group-1")
    grant(
        identity_server,
        f"/projects/{project['id']}/groups/{group['id']}/roles/"
        f"{role_id(identity_server, 'member')}",
    )
    expect(request(identity_server, "PUT", f"/groups/{group['id']}/users/{user['id']}"), 204)
    token, body = issue_token(
        identity_server, user["name"], "pw-group-1", project_scope(project["id"])
    )
    assert {"member", "reader"} <= {r["name"] for r in body["roles"]}
    assert validate(identity_server, token).status_code == 200

    expect(request(identity_server, "DELETE", f"/groups/{group['id']}/users/{user['id']}"), 204)
    assert validate(identity_server, token).status_code == 404
    assert (
        request(identity_server, "GET", f"/users/{user['id']}/groups", token=token).status_code
        == 401
    )


def test_deleting_a_group_removes_its_memberships_and_assignments(identity_server, unique):
    project = create_project(identity_server, f"doomed-{unique}")
    group = create_group(identity_server, f"doomed-{unique}")
    user = create_user(identity_server, f"doomed-{unique}", "pw-doomed-1")
    grant(
        identity_server,
        f"/projects/{project['id']}/groups/{group['id']}/roles/"
        f"{role_id(identity_server, 'reader')}",
    )
    expect(request(identity_server, "PUT", f"/groups/{group['id']}/users/{user['id']}"), 204)
    token, _ = issue_token(
        identity_server, user["name"], "pw-doomed-1", project_scope(project["id"])
    )

    expect(request(identity_server, "DELETE", f"/groups/{group['id']}"), 204)
    assert validate(identity_server, token).status_code == 404
    listed = expect(
        request(identity_server, "GET", "/role_assignments", params={"group.id": group["id"]})
    )
    assert listed["role_assignments"] == []
    assert expect(request(identity_server, "GET", f"/users/{user['id']}/groups"))["groups"] == []
    body = password_auth(user["id"], "pw-doomed-1", project_scope(project["id"]), by_id=True)
    assert post_token(identity_server, body).status_code == 401
