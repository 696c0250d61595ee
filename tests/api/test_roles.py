"""Roles, domain-specific roles and implied roles through the CLI, the SDK and HTTP."""

from __future__ import annotations

import httpx

from tests.api.helpers import (
    admin_token,
    assert_error,
    auth_headers,
    create_domain,
    create_project,
    create_role,
    create_user,
    expect,
    grant,
    issue_token,
    password_auth,
    post_token,
    project_scope,
    request,
    role_id,
    role_names,
    validate,
)


def test_role_lifecycle_with_the_cli(openstack_cli, unique):
    name = f"role-{unique}"
    created = openstack_cli("role", "create", "--description", "ops", name, "-f", "json")
    assert created["name"] == name
    assert created["domain_id"] is None
    assert created["description"] == "ops"
    assert openstack_cli("role", "show", name, "-f", "json")["id"] == created["id"]
    assert name in {r["Name"] for r in openstack_cli("role", "list", "-f", "json")}

    openstack_cli("role", "set", "--name", f"{name}-2", created["id"])
    assert openstack_cli("role", "show", created["id"], "-f", "json")["name"] == f"{name}-2"
    assert openstack_cli("role", "create", f"{name}-2", check=False).returncode != 0

    openstack_cli("role", "delete", created["id"])
    assert openstack_cli("role", "show", created["id"], check=False).returncode != 0


def test_domain_specific_roles(openstack_cli, identity_server, unique):
    domain = create_domain(identity_server, f"dom-{unique}")
    name = f"dom-role-{unique}"
    created = openstack_cli("role", "create", "--domain", domain["id"], name, "-f", "json")
    assert created["domain_id"] == domain["id"]
    # Hidden from a plain list; shown when the domain is asked for.
    assert name not in {r["Name"] for r in openstack_cli("role", "list", "-f", "json")}
    in_domain = openstack_cli("role", "list", "--domain", domain["id"], "-f", "json")
    assert [r["Name"] for r in in_domain] == [name]
    # The same name may exist globally and in another domain, not twice in one domain.
    create_role(identity_server, name)
    other = create_domain(identity_server, f"dom2-{unique}")
    create_role(identity_server, name, other["id"])
    duplicate = request(
        identity_server, "POST", "/roles", json={"role": {"name": name, "domain_id": domain["id"]}}
    )
    assert_error(duplicate, 409)
    # Its domain cannot change.
    assert_error(
        request(
            identity_server,
            "PATCH",
            f"/roles/{created['id']}",
            json={"role": {"domain_id": other["id"]}},
        ),
        400,
    )
    openstack_cli("role", "delete", "--domain", domain["id"], name)
    assert (
        expect(request(identity_server, "GET", "/roles", params={"domain_id": domain["id"]}))[
            "roles"
        ]
        == []
    )


def test_role_with_the_sdk(admin_conn, unique):
    identity = admin_conn.identity
    role = identity.create_role(name=f"sdk-role-{unique}", description="d")
    assert identity.get_role(role.id).name == f"sdk-role-{unique}"
    assert identity.find_role(f"sdk-role-{unique}").id == role.id
    updated = identity.update_role(role, name=f"sdk-role2-{unique}")
    assert updated.name == f"sdk-role2-{unique}"
    assert [r.id for r in identity.roles(name=f"sdk-role2-{unique}")] == [role.id]
    identity.delete_role(role)
    assert identity.find_role(f"sdk-role2-{unique}") is None


def test_role_shape_and_filters(identity_server, unique):
    role = create_role(identity_server, f"Shape-{unique}")
    assert set(role) >= {"id", "name", "domain_id", "description", "options", "links"}
    assert role["options"] == {}
    assert role["links"]["self"].endswith(f"/v3/roles/{role['id']}")
    fuzzy = expect(
        request(identity_server, "GET", "/roles", params={"name__icontains": f"shape-{unique}"})
    )
    assert [r["id"] for r in fuzzy["roles"]] == [role["id"]]


def test_role_bad_input(identity_server, unique):
    missing = "0" * 32
    assert_error(request(identity_server, "GET", f"/roles/{missing}"), 404)
    assert_error(request(identity_server, "DELETE", f"/roles/{missing}"), 404)
    assert_error(
        request(identity_server, "PATCH", f"/roles/{missing}", json={"role": {"name": "x"}}), 404
    )
    assert_error(request(identity_server, "POST", "/roles", json={"role": {}}), 400)
    assert_error(request(identity_server, "POST", "/roles", json={"role": {"name": ""}}), 400)
    assert_error(request(identity_server, "POST", "/roles", json={"role": {"name": "  "}}), 400)
    assert_error(request(identity_server, "POST", "/roles", json=["role"]), 400)
    assert_error(
        request(
            identity_server, "POST", "/roles", json={"role": {"name": "x", "options": {"y": 1}}}
        ),
        400,
    )
    assert_error(
        request(
            identity_server, "POST", "/roles", json={"role": {"name": "x", "domain_id": missing}}
        ),
        404,
    )
    response = httpx.post(
        f"{identity_server.auth_url}/roles",
        content=b"{not json",
        headers={**auth_headers(admin_token(identity_server)), "Content-Type": "application/json"},
    )
    assert_error(response, 400)
    assert_error(request(identity_server, "POST", "/roles", json={"role": {"name": "admin"}}), 409)


def test_immutable_roles(identity_server, unique):
    role = expect(
        request(
            identity_server,
            "POST",
            "/roles",
            json={"role": {"name": f"fixed-{unique}", "options": {"immutable": True}}},
        ),
        201,
    )["role"]
    assert role["options"] == {"immutable": True}
    assert_error(request(identity_server, "DELETE", f"/roles/{role['id']}"), 403)
    rename = {"role": {"name": f"fixed2-{unique}"}}
    assert_error(request(identity_server, "PATCH", f"/roles/{role['id']}", json=rename), 403)
    cleared = {"role": {"options": {"immutable": False}}}
    assert expect(request(identity_server, "PATCH", f"/roles/{role['id']}", json=cleared))["role"][
        "options"
    ] == {"immutable": False}
    expect(request(identity_server, "DELETE", f"/roles/{role['id']}"), 204)


def test_non_admin_cannot_manage_roles(identity_server, unique):
    project = create_project(identity_server, f"ro-{unique}")
    user = create_user(identity_server, f"ro-{unique}", "pw-ro-1")
    grant(
        identity_server,
        f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(identity_server, 'reader')}",
    )
    token, _ = issue_token(identity_server, user["name"], "pw-ro-1", project_scope(project["id"]))
    assert_error(
        request(identity_server, "POST", "/roles", token=token, json={"role": {"name": unique}}),
        403,
    )
    member = role_id(identity_server, "member")
    assert_error(request(identity_server, "DELETE", f"/roles/{member}", token=token), 403)
    # A reader may read the roles, but not the inference rules.
    shown = expect(request(identity_server, "GET", f"/roles/{member}", token=token))
    assert shown["role"]["name"] == "member"
    assert_error(request(identity_server, "GET", "/role_inferences", token=token), 403)
    assert_error(
        request(identity_server, "PUT", f"/roles/{member}/implies/{member}", token=token), 403
    )


# --- implied roles ------------------------------------------------------------------------


def test_standard_roles_imply_each_other(openstack_cli, identity_server):
    listed = openstack_cli("implied", "role", "list", "-f", "json")
    pairs = {(r["Prior Role Name"], r["Implied Role Name"]) for r in listed}
    assert {("admin", "member"), ("member", "reader")} <= pairs
    admin = role_id(identity_server, "admin")
    body = expect(request(identity_server, "GET", f"/roles/{admin}/implies"))
    assert body["role_inference"]["prior_role"]["name"] == "admin"
    assert [r["name"] for r in body["role_inference"]["implies"]] == ["member"]
    assert body["links"]["self"].endswith(f"/v3/roles/{admin}/implies")


def test_implied_role_lifecycle(openstack_cli, identity_server, unique):
    prior = create_role(identity_server, f"prior-{unique}")
    implied = create_role(identity_server, f"implied-{unique}")
    created = openstack_cli(
        "implied", "role", "create", prior["name"], "--implied-role", implied["name"], "-f", "json"
    )
    assert created == {"implies": implied["id"], "prior_role": prior["id"]}
    path = f"/roles/{prior['id']}/implies/{implied['id']}"
    shown = expect(request(identity_server, "GET", path))
    assert shown["role_inference"]["prior_role"]["id"] == prior["id"]
    assert shown["role_inference"]["implies"]["id"] == implied["id"]
    assert shown["role_inference"]["implies"]["links"]["self"].endswith(
        f"/v3/roles/{implied['id']}"
    )
    assert shown["links"]["self"].endswith(f"/v3{path}")
    assert request(identity_server, "HEAD", path).status_code == 204
    inferences = expect(request(identity_server, "GET", "/role_inferences"))["role_inferences"]
    mine = [i for i in inferences if i["prior_role"]["id"] == prior["id"]]
    assert [[r["id"] for r in i["implies"]] for i in mine] == [[implied["id"]]]
    assert_error(request(identity_server, "PUT", path), 409)

    openstack_cli("implied", "role", "delete", prior["name"], "--implied-role", implied["name"])
    assert_error(request(identity_server, "GET", path), 404)
    assert request(identity_server, "HEAD", path).status_code == 404
    assert_error(request(identity_server, "DELETE", path), 404)


def test_implied_role_rules_follow_keystone(identity_server, unique):
    a = create_role(identity_server, f"a-{unique}")
    b = create_role(identity_server, f"b-{unique}")
    c = create_role(identity_server, f"c-{unique}")
    expect(request(identity_server, "PUT", f"/roles/{a['id']}/implies/{b['id']}"), 201)
    expect(request(identity_server, "PUT", f"/roles/{b['id']}/implies/{c['id']}"), 201)
    # A cycle, direct or through others, is refused.
    assert_error(request(identity_server, "PUT", f"/roles/{c['id']}/implies/{a['id']}"), 403)
    assert_error(request(identity_server, "PUT", f"/roles/{a['id']}/implies/{a['id']}"), 403)
    # Nothing may imply admin.
    admin = role_id(identity_server, "admin")
    assert_error(request(identity_server, "PUT", f"/roles/{a['id']}/implies/{admin}"), 403)
    # A global role may not imply a domain-specific one; the reverse is the point of them.
    domain = create_domain(identity_server, f"imp-{unique}")
    local = create_role(identity_server, f"local-{unique}", domain["id"])
    assert_error(request(identity_server, "PUT", f"/roles/{a['id']}/implies/{local['id']}"), 403)
    expect(request(identity_server, "PUT", f"/roles/{local['id']}/implies/{a['id']}"), 201)
    missing = "0" * 32
    assert_error(request(identity_server, "PUT", f"/roles/{missing}/implies/{a['id']}"), 404)
    assert_error(request(identity_server, "PUT", f"/roles/{a['id']}/implies/{missing}"), 404)
    assert_error(request(identity_server, "GET", f"/roles/{missing}/implies"), 404)
    # Deleting a role removes its rules on both sides.
    expect(request(identity_server, "DELETE", f"/roles/{b['id']}"), 204)
    assert (
        expect(request(identity_server, "GET", f"/roles/{a['id']}/implies"))["role_inference"][
            "implies"
        ]
        == []
    )


def test_implied_roles_reach_tokens(identity_server, unique):
    prior = create_role(identity_server, f"operator-{unique}")
    expect(
        request(
            identity_server,
            "PUT",
            f"/roles/{prior['id']}/implies/{role_id(identity_server, 'member')}",
        ),
        201,
    )
    project = create_project(identity_server, f"imp-{unique}")
    user = create_user(identity_server, f"imp-{unique}", "pw-imp-1")
    grant(identity_server, f"/projects/{project['id']}/users/{user['id']}/roles/{prior['id']}")
    _, body = issue_token(identity_server, user["name"], "pw-imp-1", project_scope(project["id"]))
    assert role_names(body) == {prior["name"], "member", "reader"}


def test_domain_specific_roles_only_imply(identity_server, unique):
    domain = create_domain(identity_server, f"dsr-{unique}")
    local = create_role(identity_server, f"local-{unique}", domain["id"])
    project = create_project(identity_server, f"dsr-{unique}", domain_id=domain["id"])
    user = create_user(identity_server, f"dsr-{unique}", "pw-dsr-1")
    grant(identity_server, f"/projects/{project['id']}/users/{user['id']}/roles/{local['id']}")
    body = password_auth(user["id"], "pw-dsr-1", project_scope(project["id"]), by_id=True)
    # On its own a domain-specific role puts nothing in a token.
    assert post_token(identity_server, body).status_code == 401
    expect(
        request(
            identity_server,
            "PUT",
            f"/roles/{local['id']}/implies/{role_id(identity_server, 'member')}",
        ),
        201,
    )
    _, token = issue_token(identity_server, user["name"], "pw-dsr-1", project_scope(project["id"]))
    assert role_names(token) == {"member", "reader"}


def test_deleting_a_role_removes_assignments_and_revokes_tokens(
    openstack_cli, identity_server, unique
):
    role = create_role(identity_server, f"temp-{unique}")
    project = create_project(identity_server, f"temp-{unique}")
    user = create_user(identity_server, f"temp-{unique}", "pw-temp-1")
    grant(identity_server, f"/projects/{project['id']}/users/{user['id']}/roles/{role['id']}")
    grant(
        identity_server,
        f"/projects/{project['id']}/users/{user['id']}/roles/{role_id(identity_server, 'reader')}",
    )
    token, body = issue_token(
        identity_server, user["name"], "pw-temp-1", project_scope(project["id"])
    )
    assert role["name"] in role_names(body)

    openstack_cli("role", "delete", role["id"])
    assert validate(identity_server, token).status_code == 404
    listed = expect(
        request(identity_server, "GET", "/role_assignments", params={"role.id": role["id"]})
    )
    assert listed["role_assignments"] == []
    _, fresh = issue_token(identity_server, user["name"], "pw-temp-1", project_scope(project["id"]))
    assert role_names(fresh) == {"reader"}
