"""Grants and ``/v3/role_assignments`` through the CLI, the SDK and plain HTTP.

Each test builds its own users, projects and groups with unique names, so the
tests share one server without seeing each other's assignments.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.api.helpers import (
    assert_error,
    authenticate,
    create_domain,
    create_group,
    create_project,
    create_role,
    create_user,
    expect,
    grant,
    issue_token,
    project_scope,
    request,
    role_id,
    role_names,
    validate,
)

PASSWORD = "pw-assign-1"


@pytest.fixture
def world(identity_server, unique):
    """A project with a child, a user and a group (with the user in it)."""
    project = create_project(identity_server, f"proj-{unique}")
    child = create_project(identity_server, f"child-{unique}", parent_id=project["id"])
    user = create_user(identity_server, f"user-{unique}", PASSWORD)
    group = create_group(identity_server, f"group-{unique}")
    expect(request(identity_server, "PUT", f"/groups/{group['id']}/users/{user['id']}"), 204)
    return {"project": project, "child": child, "user": user, "group": group}


def _assignments(server, **params):
    return expect(request(server, "GET", "/role_assignments", params=params))["role_assignments"]


# --- grants through the CLI ---------------------------------------------------------------


def test_role_add_list_remove_with_the_cli(openstack_cli, identity_server, world):
    user, project = world["user"], world["project"]
    openstack_cli("role", "add", "--user", user["id"], "--project", project["id"], "member")
    # Granting twice is harmless.
    openstack_cli("role", "add", "--user", user["id"], "--project", project["id"], "member")
    listed = openstack_cli(
        "role", "assignment", "list", "--user", user["id"], "--project", project["id"],
        "--names", "-f", "json",
    )  # fmt: skip
    assert listed == [
        {
            "Role": "member",
            "User": f"{user['name']}@Default",
            "Group": "",
            "Project": f"{project['name']}@Default",
            "Domain": "",
            "System": "",
            "Inherited": False,
        }
    ]
    token, body = issue_token(identity_server, user["name"], PASSWORD, project_scope(project["id"]))
    assert role_names(body) == {"member", "reader"}

    openstack_cli("role", "remove", "--user", user["id"], "--project", project["id"], "member")
    # The token dies at once, and no new one can be had on the project.
    assert validate(identity_server, token).status_code == 404
    assert request(identity_server, "GET", f"/users/{user['id']}", token=token).status_code == 401
    refused = authenticate(identity_server, user["name"], PASSWORD, project_scope(project["id"]))
    assert refused.status_code == 401
    # Revoking it again is 404 (the CLI, through openstacksdk, ignores that).
    member = role_id(identity_server, "member")
    again = request(
        identity_server, "DELETE", f"/projects/{project['id']}/users/{user['id']}/roles/{member}"
    )
    assert_error(again, 404)


def test_effective_assignments_through_a_group_with_names(openstack_cli, identity_server, world):
    user, group, project = world["user"], world["group"], world["project"]
    openstack_cli("role", "add", "--group", group["id"], "--project", project["id"], "member")
    direct = openstack_cli("role", "assignment", "list", "--group", group["id"], "-f", "json")
    assert [(a["Role"], a["Group"], a["Project"]) for a in direct] == [
        (role_id(identity_server, "member"), group["id"], project["id"])
    ]
    assert openstack_cli("role", "assignment", "list", "--user", user["id"], "-f", "json") == []
    effective = openstack_cli(
        "role", "assignment", "list", "--user", user["id"], "--project", project["id"],
        "--effective", "--names", "-f", "json",
    )  # fmt: skip
    assert sorted((a["Role"], a["User"], a["Project"], a["Group"]) for a in effective) == [
        ("member", f"{user['name']}@Default", f"{project['name']}@Default", ""),
        ("reader", f"{user['name']}@Default", f"{project['name']}@Default", ""),
    ]
    # The wire shape: a membership link, and the implied role names its prior role.
    raw = _assignments(
        identity_server, **{"user.id": user["id"], "scope.project.id": project["id"]},
        effective="true",
    )  # fmt: skip
    by_role = {a["role"]["id"]: a for a in raw}
    member = by_role[role_id(identity_server, "member")]
    reader = by_role[role_id(identity_server, "reader")]
    base = identity_server.auth_url
    assert member == {
        "role": {"id": role_id(identity_server, "member")},
        "user": {"id": user["id"]},
        "scope": {"project": {"id": project["id"]}},
        "links": {
            "assignment": f"{base}/projects/{project['id']}/groups/{group['id']}/roles/"
            f"{member['role']['id']}",
            "membership": f"{base}/groups/{group['id']}/users/{user['id']}",
        },
    }
    assert reader["links"]["assignment"] == member["links"]["assignment"]
    assert reader["links"]["prior_role"] == (
        f"{base}/roles/{member['role']['id']}/implies/{reader['role']['id']}"
    )
    _, body = issue_token(identity_server, user["name"], PASSWORD, project_scope(project["id"]))
    assert role_names(body) == {"member", "reader"}


def test_admin_implies_member_and_reader_in_lists_and_tokens(openstack_cli, identity_server, world):
    user, project = world["user"], world["project"]
    openstack_cli("role", "add", "--user", user["id"], "--project", project["id"], "admin")
    plain = openstack_cli(
        "role", "assignment", "list", "--user", user["id"], "--names", "-f", "json"
    )
    assert [a["Role"] for a in plain] == ["admin"]
    effective = openstack_cli(
        "role", "assignment", "list", "--user", user["id"], "--effective", "--names", "-f", "json"
    )
    assert sorted(a["Role"] for a in effective) == ["admin", "member", "reader"]
    _, body = issue_token(identity_server, user["name"], PASSWORD, project_scope(project["id"]))
    assert role_names(body) == {"admin", "member", "reader"}
    # Filtering on an implied role finds the entries it came from.
    only_reader = _assignments(
        identity_server, **{"user.id": user["id"], "role.id": role_id(identity_server, "reader")},
        effective="",
    )  # fmt: skip
    assert [a["role"]["id"] for a in only_reader] == [role_id(identity_server, "reader")]


def test_inherited_domain_roles_reach_projects(openstack_cli, identity_server, unique):
    domain = create_domain(identity_server, f"inh-{unique}")
    parent = create_project(identity_server, f"inh-{unique}", domain_id=domain["id"])
    child = create_project(identity_server, f"inh-child-{unique}", domain["id"], parent["id"])
    user = create_user(identity_server, f"inh-{unique}", PASSWORD)
    openstack_cli(
        "role", "add", "--user", user["id"], "--domain", domain["id"], "--inherited", "member"
    )
    listed = openstack_cli(
        "role", "assignment", "list", "--user", user["id"], "--inherited", "-f", "json"
    )
    assert [(a["Domain"], a["Inherited"]) for a in listed] == [(domain["id"], True)]
    # Not on the domain itself...
    refused = authenticate(
        identity_server, user["name"], PASSWORD, {"domain": {"id": domain["id"]}}
    )
    assert refused.status_code == 401
    # ...but on every project of it.
    for project in (parent, child):
        _, body = issue_token(identity_server, user["name"], PASSWORD, project_scope(project["id"]))
        assert role_names(body) == {"member", "reader"}
    effective = openstack_cli(
        "role", "assignment", "list", "--user", user["id"], "--effective", "-f", "json"
    )
    assert sorted((a["Project"], a["Role"], a["Inherited"]) for a in effective) == sorted(
        (p["id"], role_id(identity_server, r), True)
        for p in (parent, child)
        for r in ("member", "reader")
    )
    raw = _assignments(
        identity_server, **{"user.id": user["id"], "scope.project.id": child["id"]}, effective="1"
    )
    member = next(a for a in raw if a["role"]["id"] == role_id(identity_server, "member"))
    assert member["scope"] == {
        "project": {"id": child["id"]},
        "OS-INHERIT:inherited_to": "projects",
    }
    assert member["links"]["assignment"] == (
        f"{identity_server.auth_url}/OS-INHERIT/domains/{domain['id']}/users/{user['id']}"
        f"/roles/{member['role']['id']}/inherited_to_projects"
    )
    inherited = expect(
        request(
            identity_server,
            "GET",
            f"/OS-INHERIT/domains/{domain['id']}/users/{user['id']}/roles/inherited_to_projects",
        )
    )
    assert [r["name"] for r in inherited["roles"]] == ["member"]
    # The plain domain grant list does not show inherited grants.
    plain = expect(
        request(identity_server, "GET", f"/domains/{domain['id']}/users/{user['id']}/roles")
    )
    assert plain["roles"] == []

    openstack_cli(
        "role", "remove", "--user", user["id"], "--domain", domain["id"], "--inherited", "member"
    )
    refused = authenticate(identity_server, user["name"], PASSWORD, project_scope(child["id"]))
    assert refused.status_code == 401


def test_project_inheritance_reaches_the_subtree(identity_server, world):
    user, group, project, child = world["user"], world["group"], world["project"], world["child"]
    reader = role_id(identity_server, "reader")
    path = (
        f"/OS-INHERIT/projects/{project['id']}/groups/{group['id']}/roles/{reader}"
        "/inherited_to_projects"
    )
    expect(request(identity_server, "PUT", path), 204)
    assert request(identity_server, "HEAD", path).status_code == 204
    assert request(identity_server, "GET", path).status_code == 204
    refused = authenticate(identity_server, user["name"], PASSWORD, project_scope(project["id"]))
    assert refused.status_code == 401
    token, body = issue_token(identity_server, user["name"], PASSWORD, project_scope(child["id"]))
    assert role_names(body) == {"reader"}
    tree = _assignments(
        identity_server, **{"scope.project.id": project["id"]}, include_subtree="true"
    )
    assert [(a["group"]["id"], a["scope"]["OS-INHERIT:inherited_to"]) for a in tree] == [
        (group["id"], "projects")
    ]
    expect(request(identity_server, "DELETE", path), 204)
    assert validate(identity_server, token).status_code == 404


def test_domain_and_system_grants(openstack_cli, identity_server, unique):
    domain = create_domain(identity_server, f"dsg-{unique}")
    user = create_user(identity_server, f"dsg-{unique}", PASSWORD)
    openstack_cli("role", "add", "--user", user["id"], "--domain", domain["id"], "reader")
    _, body = issue_token(identity_server, user["name"], PASSWORD, {"domain": {"id": domain["id"]}})
    assert body["domain"]["id"] == domain["id"]
    assert role_names(body) == {"reader"}
    roles = expect(
        request(identity_server, "GET", f"/domains/{domain['id']}/users/{user['id']}/roles")
    )
    assert [r["name"] for r in roles["roles"]] == ["reader"]

    openstack_cli("role", "add", "--user", user["id"], "--system", "all", "reader")
    system = openstack_cli(
        "role", "assignment", "list", "--user", user["id"], "--system", "all", "--names",
        "-f", "json",
    )  # fmt: skip
    assert [(a["Role"], a["System"]) for a in system] == [("reader", "all")]
    raw = _assignments(identity_server, **{"user.id": user["id"], "scope.system": "all"})
    assert raw[0]["scope"] == {"system": {"all": True}}
    assert raw[0]["links"]["assignment"].endswith(
        f"/v3/system/users/{user['id']}/roles/{role_id(identity_server, 'reader')}"
    )
    token, body = issue_token(identity_server, user["name"], PASSWORD, {"system": {"all": True}})
    assert role_names(body) == {"reader"}
    # A user may list their own system roles.
    own = expect(request(identity_server, "GET", f"/system/users/{user['id']}/roles", token=token))
    assert [r["name"] for r in own["roles"]] == ["reader"]
    openstack_cli("role", "remove", "--user", user["id"], "--system", "all", "reader")
    assert validate(identity_server, token).status_code == 404
    assert_error(
        request(
            identity_server,
            "GET",
            f"/system/users/{user['id']}/roles/{role_id(identity_server, 'reader')}",
        ),
        404,
    )


def test_grants_with_the_sdk(admin_conn, world):
    identity = admin_conn.identity
    user, group, project = world["user"], world["group"], world["project"]
    member = identity.find_role("member")
    identity.assign_project_role_to_user(project["id"], user["id"], member)
    assert identity.validate_user_has_project_role(project["id"], user["id"], member)
    identity.assign_project_role_to_group(project["id"], group["id"], member)
    assert identity.validate_group_has_project_role(project["id"], group["id"], member)
    found = list(identity.role_assignments(scope_project_id=project["id"]))
    assert {(a.user or a.group)["id"] for a in found} == {user["id"], group["id"]}
    identity.unassign_project_role_from_group(project["id"], group["id"], member)
    identity.unassign_project_role_from_user(project["id"], user["id"], member)
    assert not identity.validate_user_has_project_role(project["id"], user["id"], member)
    assert list(identity.role_assignments(scope_project_id=project["id"])) == []


# --- edge cases over plain HTTP ---------------------------------------------------------------


def test_grant_errors(identity_server, world, unique):
    user, group, project = world["user"], world["group"], world["project"]
    member = role_id(identity_server, "member")
    missing = "0" * 32
    for path in (
        f"/projects/{missing}/users/{user['id']}/roles/{member}",
        f"/projects/{project['id']}/users/{missing}/roles/{member}",
        f"/projects/{project['id']}/users/{user['id']}/roles/{missing}",
        f"/projects/{project['id']}/groups/{missing}/roles/{member}",
        f"/domains/{missing}/users/{user['id']}/roles/{member}",
        f"/system/users/{missing}/roles/{member}",
        f"/OS-INHERIT/domains/{missing}/groups/{group['id']}/roles/{member}/inherited_to_projects",
    ):
        error = assert_error(request(identity_server, "PUT", path), 404)
        assert missing in error["message"]
    assert_error(
        request(identity_server, "GET", f"/projects/{missing}/users/{user['id']}/roles"), 404
    )
    # Checking or revoking a grant that does not exist.
    item = f"/projects/{project['id']}/users/{user['id']}/roles/{member}"
    assert_error(request(identity_server, "GET", item), 404)
    assert request(identity_server, "HEAD", item).status_code == 404
    assert_error(request(identity_server, "DELETE", item), 404)
    # Domain-specific roles: never on the system, only on their own domain's projects.
    domain = create_domain(identity_server, f"ge-{unique}")
    local = create_role(identity_server, f"ge-{unique}", domain["id"])
    assert_error(
        request(identity_server, "PUT", f"/system/users/{user['id']}/roles/{local['id']}"), 400
    )
    assert_error(
        request(
            identity_server,
            "PUT",
            f"/projects/{project['id']}/users/{user['id']}/roles/{local['id']}",
        ),
        403,
    )
    in_domain = create_project(identity_server, f"ge-{unique}", domain_id=domain["id"])
    grant(identity_server, f"/projects/{in_domain['id']}/users/{user['id']}/roles/{local['id']}")
    # Unknown methods answer 405 in the same error shape.
    assert_error(request(identity_server, "POST", item), 405)


def test_role_assignment_filters_are_checked(identity_server, world):
    user, group, project = world["user"], world["group"], world["project"]
    for params in (
        {"user.id": user["id"], "group.id": group["id"]},
        {"scope.project.id": project["id"], "scope.domain.id": "default"},
        {"scope.project.id": project["id"], "scope.system": "all"},
        {"scope.domain.id": "default", "scope.system": "all"},
        {"group.id": group["id"], "effective": "true"},
        {"scope.domain.id": "default", "scope.OS-INHERIT:inherited_to": "projects",
         "effective": "true"},
        {"include_subtree": "true"},
        {"effective": "maybe"},
    ):  # fmt: skip
        assert_error(request(identity_server, "GET", "/role_assignments", params=params), 400)
    assert_error(
        request(
            identity_server,
            "GET",
            "/role_assignments",
            params={"scope.project.id": "0" * 32, "include_subtree": "true"},
        ),
        404,
    )


def test_include_names_shape(identity_server, world):
    user, project = world["user"], world["project"]
    grant(
        identity_server,
        f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(identity_server, 'reader')}",
    )
    [entry] = _assignments(identity_server, **{"user.id": user["id"]}, include_names="True")
    assert entry["user"] == {
        "id": user["id"],
        "name": user["name"],
        "domain": {"id": "default", "name": "Default"},
    }
    assert entry["scope"]["project"] == {
        "id": project["id"],
        "name": project["name"],
        "domain": {"id": "default", "name": "Default"},
    }
    assert entry["role"] == {"id": role_id(identity_server, "reader"), "name": "reader"}


def test_non_admin_is_forbidden(identity_server, world):
    user, project = world["user"], world["project"]
    grant(
        identity_server,
        f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(identity_server, 'member')}",
    )
    token, _ = issue_token(identity_server, user["name"], PASSWORD, project_scope(project["id"]))
    admin = role_id(identity_server, "admin")
    own = f"/projects/{project['id']}/users/{user['id']}/roles/{admin}"
    assert_error(request(identity_server, "PUT", own, token=token), 403)
    assert_error(
        request(identity_server, "PUT", f"/system/users/{user['id']}/roles/{admin}", token=token),
        403,
    )
    assert_error(request(identity_server, "GET", "/role_assignments", token=token), 403)
    # Not even whether something exists.
    assert_error(
        request(
            identity_server,
            "PUT",
            f"/projects/{'0' * 32}/users/{user['id']}/roles/{admin}",
            token=token,
        ),
        403,
    )


def test_domain_admin_manages_only_their_domain(identity_server, unique):
    domain = create_domain(identity_server, f"da-{unique}")
    boss = create_user(identity_server, f"da-boss-{unique}", PASSWORD, domain["id"])
    grant(
        identity_server,
        f"/domains/{domain['id']}/users/{boss['id']}/roles/{role_id(identity_server, 'admin')}",
    )
    token, _ = issue_token(
        identity_server, boss["name"], PASSWORD, {"domain": {"id": domain["id"]}}, domain["id"]
    )
    project = create_project(identity_server, f"da-{unique}", domain_id=domain["id"])
    worker = create_user(identity_server, f"da-worker-{unique}", PASSWORD, domain["id"])
    outsider = create_user(identity_server, f"da-outsider-{unique}", PASSWORD)
    member = role_id(identity_server, "member")
    grant(identity_server, f"/projects/{project['id']}/users/{worker['id']}/roles/{member}", token)
    listed = expect(request(identity_server, "GET", "/role_assignments", token=token))[
        "role_assignments"
    ]
    assert {(a["user"]["id"], a["scope"].get("project", {}).get("id")) for a in listed} == {
        (worker["id"], project["id"]),
        (boss["id"], None),
    }
    # Not for a user of another domain, nor on another domain's project.
    assert_error(
        request(
            identity_server,
            "PUT",
            f"/projects/{project['id']}/users/{outsider['id']}/roles/{member}",
            token=token,
        ),
        403,
    )
    admin_project = expect(request(identity_server, "GET", "/projects", params={"name": "admin"}))[
        "projects"
    ][0]
    assert_error(
        request(
            identity_server,
            "PUT",
            f"/projects/{admin_project['id']}/users/{worker['id']}/roles/{member}",
            token=token,
        ),
        403,
    )


def test_concurrent_identical_grants_all_succeed(identity_server, world):
    user, group, project = world["user"], world["group"], world["project"]
    reader = role_id(identity_server, "reader")
    paths = [f"/projects/{project['id']}/users/{user['id']}/roles/{reader}"] * 8
    joiner = create_user(identity_server, f"{user['name']}-x")
    paths += [f"/groups/{group['id']}/users/{joiner['id']}"] * 8
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda p: request(identity_server, "PUT", p).status_code, paths))
    assert statuses == [204] * 16
    listed = _assignments(identity_server, **{"user.id": user["id"]})
    assert len(listed) == 1
