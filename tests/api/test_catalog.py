"""Regions, services and endpoints through the openstack CLI, openstacksdk and HTTP.

The catalog in a token is built from these tables, so every change shows in
the next token: a new endpoint appears with ``%(project_id)s`` filled in, a
disabled one or a deleted service disappears.
"""

from __future__ import annotations

import httpx
import pytest
from openstack import exceptions

from tests.api.helpers import (
    ADMIN_SCOPE,
    admin_token,
    assert_error,
    auth_headers,
    create_project,
    create_user,
    grant,
    issue_token,
    project_scope,
    role_id,
)


@pytest.fixture(scope="module")
def admin(identity_server):
    return auth_headers(admin_token(identity_server))


def url(server, path):
    return f"{server.auth_url}{path}"


def test_region_lifecycle_with_the_cli(openstack_cli, unique):
    name = f"region-{unique}"
    created = openstack_cli(
        "region", "create", "--parent-region", "RegionOne", "--description", "rack A",
        name, "-f", "json",
    )  # fmt: skip
    assert created["region"] == name
    assert created["parent_region"] == "RegionOne"
    assert created["description"] == "rack A"
    listed = openstack_cli("region", "list", "--parent-region", "RegionOne", "-f", "json")
    assert name in {r["Region"] for r in listed}
    openstack_cli("region", "set", "--description", "rack B", name)
    assert openstack_cli("region", "show", name, "-f", "json")["description"] == "rack B"
    openstack_cli("region", "delete", name)
    assert openstack_cli("region", "show", name, check=False).returncode != 0


def test_region_ids_parents_and_cycles(identity_server, admin, unique):
    top, child, grandchild = (f"{unique}-{n}" for n in ("top", "child", "grandchild"))
    put = httpx.put(url(identity_server, f"/regions/{top}"), json={"region": {}}, headers=admin)
    assert put.status_code == 201
    body = put.json()["region"]
    assert body == {
        "id": top,
        "description": "",
        "parent_region_id": None,
        "links": {"self": url(identity_server, f"/regions/{top}")},
    }
    # The same ID again, by PUT or POST, is a conflict.
    assert_error(
        httpx.put(url(identity_server, f"/regions/{top}"), json={"region": {}}, headers=admin), 409
    )
    assert_error(
        httpx.post(url(identity_server, "/regions"), json={"region": {"id": top}}, headers=admin),
        409,
    )
    # Path and body disagree on the ID.
    assert_error(
        httpx.put(
            url(identity_server, f"/regions/{unique}-x"),
            json={"region": {"id": "other"}},
            headers=admin,
        ),
        400,
    )
    # POST without an ID makes one; a parent must exist.
    made = httpx.post(url(identity_server, "/regions"), json={"region": {}}, headers=admin)
    assert made.status_code == 201 and len(made.json()["region"]["id"]) == 32
    missing = httpx.post(
        url(identity_server, "/regions"),
        json={"region": {"id": f"{unique}-orphan", "parent_region_id": f"{unique}-none"}},
        headers=admin,
    )
    assert_error(missing, 404)
    for region, parent in ((child, top), (grandchild, child)):
        response = httpx.post(
            url(identity_server, "/regions"),
            json={"region": {"id": region, "parent_region_id": parent}},
            headers=admin,
        )
        assert response.status_code == 201, response.text
    # Making the top a child of its own grandchild (or of itself) is a cycle.
    for parent in (grandchild, top):
        cycle = httpx.patch(
            url(identity_server, f"/regions/{top}"),
            json={"region": {"parent_region_id": parent}},
            headers=admin,
        )
        assert_error(cycle, 400)
    listed = httpx.get(url(identity_server, f"/regions?parent_region_id={child}"), headers=admin)
    assert [r["id"] for r in listed.json()["regions"]] == [grandchild]
    # Deleting the top deletes the whole subtree.
    assert httpx.delete(url(identity_server, f"/regions/{top}"), headers=admin).status_code == 204
    for region in (top, child, grandchild):
        assert_error(httpx.get(url(identity_server, f"/regions/{region}"), headers=admin), 404)


def test_region_with_endpoints_in_its_subtree_cannot_be_deleted(admin_conn, unique):
    parent = admin_conn.identity.create_region(id=f"{unique}-p")
    child = admin_conn.identity.create_region(id=f"{unique}-c", parent_region_id=parent.id)
    service = admin_conn.identity.create_service(type=f"svc-{unique}", name=unique)
    endpoint = admin_conn.identity.create_endpoint(
        service_id=service.id, interface="public", url="http://x.test/", region_id=child.id
    )
    with pytest.raises(exceptions.ForbiddenException):
        admin_conn.identity.delete_region(parent)
    admin_conn.identity.delete_endpoint(endpoint)
    admin_conn.identity.delete_region(parent)
    with pytest.raises(exceptions.NotFoundException):
        admin_conn.identity.get_region(child.id)
    admin_conn.identity.delete_service(service)


def test_service_lifecycle_with_the_cli(openstack_cli, admin_conn, unique):
    kind = f"type-{unique}"
    created = openstack_cli(
        "service", "create", "--name", f"name-{unique}", "--description", "a test", kind,
        "-f", "json",
    )  # fmt: skip
    assert created["type"] == kind and created["enabled"] is True
    assert created["name"] == f"name-{unique}" and created["description"] == "a test"
    listed = openstack_cli("service", "list", "--long", "-f", "json")
    assert kind in {s["Type"] for s in listed}
    openstack_cli("service", "set", "--disable", "--name", f"renamed-{unique}", created["id"])
    shown = openstack_cli("service", "show", created["id"], "-f", "json")
    assert shown["enabled"] is False and shown["name"] == f"renamed-{unique}"
    # Filtering by type, as openstacksdk does.
    assert [s.id for s in admin_conn.identity.services(type=kind)] == [created["id"]]
    openstack_cli("service", "delete", created["id"])
    assert openstack_cli("service", "show", created["id"], check=False).returncode != 0


def test_endpoint_lifecycle_with_the_cli(openstack_cli, admin_conn, unique):
    kind = f"type-{unique}"
    service = openstack_cli("service", "create", "--name", unique, kind, "-f", "json")
    created = openstack_cli(
        "endpoint", "create", "--region", "RegionOne", service["id"], "public",
        "http://svc.test:8080/v1/%(project_id)s", "-f", "json",
    )  # fmt: skip
    assert created["interface"] == "public"
    assert created["region"] == "RegionOne"
    assert created["service_id"] == service["id"]
    assert created["url"] == "http://svc.test:8080/v1/%(project_id)s"
    internal = openstack_cli(
        "endpoint", "create", service["id"], "internal", "http://10.0.0.1:8080/", "-f", "json"
    )
    listed = openstack_cli(
        "endpoint", "list", "--service", service["id"], "--interface", "public",
        "--region", "RegionOne", "-f", "json",
    )  # fmt: skip
    assert [e["ID"] for e in listed] == [created["id"]]
    openstack_cli("endpoint", "set", "--url", "http://svc.test:9090/", "--disable", created["id"])
    shown = openstack_cli("endpoint", "show", created["id"], "-f", "json")
    assert shown["url"] == "http://svc.test:9090/" and shown["enabled"] is False
    # The filters openstacksdk sends.
    by_sdk = admin_conn.identity.endpoints(service_id=service["id"], interface="internal")
    assert [e.id for e in by_sdk] == [internal["id"]]
    in_region = {e.id for e in admin_conn.identity.endpoints(region_id="RegionOne")}
    assert created["id"] in in_region and internal["id"] not in in_region
    # Deleting the service deletes its endpoints.
    openstack_cli("service", "delete", service["id"])
    assert openstack_cli("endpoint", "show", internal["id"], check=False).returncode != 0


def test_endpoint_shape_and_legacy_region(identity_server, admin, unique):
    service = httpx.post(
        url(identity_server, "/services"), json={"service": {"type": unique}}, headers=admin
    ).json()["service"]
    legacy = f"legacy-{unique}"
    response = httpx.post(
        url(identity_server, "/endpoints"),
        json={
            "endpoint": {
                "service_id": service["id"],
                "interface": "admin",
                "url": "https://admin.test/",
                "region": legacy,
                "name": "extra attribute",
            }
        },
        headers=admin,
    )
    assert response.status_code == 201, response.text
    endpoint = response.json()["endpoint"]
    assert endpoint["region"] == endpoint["region_id"] == legacy
    assert endpoint["name"] == "extra attribute"
    assert endpoint["links"]["self"] == url(identity_server, f"/endpoints/{endpoint['id']}")
    # The legacy attribute created the region.
    assert httpx.get(url(identity_server, f"/regions/{legacy}"), headers=admin).status_code == 200
    moved = httpx.patch(
        url(identity_server, f"/endpoints/{endpoint['id']}"),
        json={"endpoint": {"region_id": None}},
        headers=admin,
    )
    assert moved.json()["endpoint"]["region_id"] is None
    httpx.delete(url(identity_server, f"/services/{service['id']}"), headers=admin)


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"interface": "everywhere"}, 400),
        ({"url": "not a url"}, 400),
        ({"url": 42}, 400),
        ({"url": "http://x.test/%(secret_key)s"}, 400),
        ({"url": "http://x.test/%(project_id)d"}, 400),
        ({"service_id": "0" * 32}, 400),
        ({"region_id": "no-such-region"}, 400),
        ({"enabled": "yes"}, 400),
    ],
)
def test_endpoint_bad_input(identity_server, admin, unique, change, status):
    service = httpx.post(
        url(identity_server, "/services"), json={"service": {"type": unique}}, headers=admin
    ).json()["service"]
    body = {"service_id": service["id"], "interface": "public", "url": "http://x.test/", **change}
    response = httpx.post(
        url(identity_server, "/endpoints"), json={"endpoint": body}, headers=admin
    )
    assert_error(response, status)
    # Nothing half-made was left behind.
    listed = httpx.get(
        url(identity_server, f"/endpoints?service_id={service['id']}"), headers=admin
    ).json()
    assert listed["endpoints"] == []
    httpx.delete(url(identity_server, f"/services/{service['id']}"), headers=admin)


def test_malformed_and_unknown(identity_server, admin):
    for path, body in (
        ("/services", {"service": {}}),
        ("/services", {"service": {"type": ""}}),
        ("/services", {"nothing": {}}),
        ("/regions", {"region": {"parent_region_id": 5}}),
        ("/endpoints", {"endpoint": {"interface": "public"}}),
    ):
        assert_error(httpx.post(url(identity_server, path), json=body, headers=admin), 400)
    assert_error(
        httpx.post(
            url(identity_server, "/services"),
            content=b"{not json",
            headers={**admin, "Content-Type": "application/json"},
        ),
        400,
    )
    assert_error(
        httpx.patch(url(identity_server, "/regions/RegionOne"), json={"region": {}}, headers=admin),
        400,
    )
    assert_error(httpx.get(url(identity_server, "/endpoints?interface=bogus"), headers=admin), 400)
    for kind in ("regions", "services", "endpoints"):
        missing = f"/{kind}/{'f' * 32}"
        assert_error(httpx.get(url(identity_server, missing), headers=admin), 404)
        assert_error(httpx.delete(url(identity_server, missing), headers=admin), 404)
    assert_error(
        httpx.patch(
            url(identity_server, f"/services/{'f' * 32}"),
            json={"service": {"name": "x"}},
            headers=admin,
        ),
        404,
    )


def test_non_admin_may_read_regions_but_not_change_the_catalog(identity_server, unique):
    project = create_project(identity_server, f"p-{unique}")
    user = create_user(identity_server, f"u-{unique}", "pw-" + unique)
    member = role_id(identity_server, "member")
    grant(identity_server, f"/projects/{project['id']}/users/{user['id']}/roles/{member}")
    token, _ = issue_token(
        identity_server, user["name"], "pw-" + unique, project_scope(project["id"])
    )
    mine = auth_headers(token)
    assert httpx.get(url(identity_server, "/regions"), headers=mine).status_code == 200
    assert httpx.get(url(identity_server, "/regions/RegionOne"), headers=mine).status_code == 200
    for path in ("/services", "/endpoints"):
        assert_error(httpx.get(url(identity_server, path), headers=mine), 403)
    for path, body in (
        ("/regions", {"region": {}}),
        ("/services", {"service": {"type": "x"}}),
        (
            "/endpoints",
            {"endpoint": {"service_id": "x", "interface": "public", "url": "http://x/"}},
        ),
    ):
        assert_error(httpx.post(url(identity_server, path), json=body, headers=mine), 403)
    assert_error(httpx.delete(url(identity_server, "/regions/RegionOne"), headers=mine), 403)
    assert_error(
        httpx.put(url(identity_server, f"/regions/{unique}"), json={"region": {}}, headers=mine),
        403,
    )
    assert_error(httpx.get(url(identity_server, "/regions")), 401)


def _catalog_entry(server, token_body, kind):
    entries = [s for s in token_body["catalog"] if s["type"] == kind]
    return entries[0] if entries else None


def test_token_catalog_follows_endpoint_changes(identity_server, admin, unique):
    kind = f"compute-{unique}"
    service = httpx.post(
        url(identity_server, "/services"),
        json={"service": {"type": kind, "name": f"nova-{unique}"}},
        headers=admin,
    ).json()["service"]
    public = httpx.post(
        url(identity_server, "/endpoints"),
        json={
            "endpoint": {
                "service_id": service["id"],
                "interface": "public",
                "region_id": "RegionOne",
                "url": "http://compute.test/v2.1/%(project_id)s",
            }
        },
        headers=admin,
    ).json()["endpoint"]
    internal = httpx.post(
        url(identity_server, "/endpoints"),
        json={
            "endpoint": {
                "service_id": service["id"],
                "interface": "internal",
                "region_id": "RegionOne",
                "url": "http://10.0.0.5/v1/AUTH_$(tenant_id)s",
            }
        },
        headers=admin,
    ).json()["endpoint"]

    def token_catalog(scope):
        return issue_token(identity_server, "admin", identity_server.admin_password, scope)[1]

    scope = ADMIN_SCOPE
    token = token_catalog(scope)
    project_id = token["project"]["id"]
    entry = _catalog_entry(identity_server, token, kind)
    assert entry["name"] == f"nova-{unique}" and entry["id"] == service["id"]
    urls = {e["interface"]: e for e in entry["endpoints"]}
    assert urls["public"]["url"] == f"http://compute.test/v2.1/{project_id}"
    assert urls["public"]["region"] == urls["public"]["region_id"] == "RegionOne"
    assert urls["internal"]["url"] == f"http://10.0.0.5/v1/AUTH_{project_id}"
    # A system-scoped token has no project: those endpoints are left out.
    system = token_catalog({"system": {"all": True}})
    assert _catalog_entry(identity_server, system, kind)["endpoints"] == []

    httpx.patch(
        url(identity_server, f"/endpoints/{public['id']}"),
        json={"endpoint": {"url": "http://compute2.test/"}},
        headers=admin,
    )
    httpx.patch(
        url(identity_server, f"/endpoints/{internal['id']}"),
        json={"endpoint": {"enabled": False}},
        headers=admin,
    )
    entry = _catalog_entry(identity_server, token_catalog(scope), kind)
    assert [(e["interface"], e["url"]) for e in entry["endpoints"]] == [
        ("public", "http://compute2.test/")
    ]
    # The catalog is rebuilt at validation too, and by /v3/auth/catalog.
    catalog = httpx.get(url(identity_server, "/auth/catalog"), headers=admin).json()["catalog"]
    assert any(s["type"] == kind for s in catalog)
    httpx.patch(
        url(identity_server, f"/services/{service['id']}"),
        json={"service": {"enabled": False}},
        headers=admin,
    )
    assert _catalog_entry(identity_server, token_catalog(scope), kind) is None
    httpx.delete(url(identity_server, f"/services/{service['id']}"), headers=admin)
    assert _catalog_entry(identity_server, token_catalog(scope), kind) is None


def test_sdk_sees_the_catalog_it_uses(admin_conn):
    endpoints = list(admin_conn.identity.endpoints(interface="public"))
    identity = [s for s in admin_conn.identity.services(type="identity")]
    assert len(identity) == 1
    assert any(e.service_id == identity[0].id for e in endpoints)
    region = admin_conn.identity.get_region("RegionOne")
    assert region.parent_region_id is None
