"""The Nova v2.1 API's foundation with its real clients: version discovery and
microversions, flavors with access lists and extra specs, key pairs, quotas
and limits, through the openstack CLI, openstacksdk and plain HTTP."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.compute_helpers import (
    admin_compute_client,
    compute_client,
    compute_error,
    version_header,
)
from tests.api.helpers import project_user

PASSWORD = "pw-secret-1"


@pytest.fixture(scope="module")
def admin(identity_server, compute_server):
    with admin_compute_client(identity_server, compute_server) as client:
        yield client


@pytest.fixture(scope="module")
def people(identity_server, compute_server):
    from uuid import uuid4

    tag = uuid4().hex[:8]
    alice = project_user(identity_server, f"cmp-alice-{tag}")
    bob = project_user(identity_server, f"cmp-bob-{tag}")
    with (
        compute_client(compute_server, alice["headers"]) as a,
        compute_client(compute_server, bob["headers"]) as b,
    ):
        yield {"alice": alice, "bob": bob, "a": a, "b": b}


def cli_as(openstack_cli, who):
    def call(*args, check=True):
        return openstack_cli(
            *args, user=who["name"], password=PASSWORD, project=who["name"], check=check
        )

    return call


# --- versions and microversions ---------------------------------------------------------


def test_version_documents(compute_server):
    root = httpx.get(compute_server.url + "/")
    assert root.status_code == 200
    (v21,) = root.json()["versions"]
    assert v21["id"] == "v2.1" and v21["status"] == "CURRENT"
    assert v21["min_version"] == "2.1" and v21["version"] == "2.15"
    assert v21["links"][0]["href"] == f"{compute_server.url}/v2.1/"
    document = httpx.get(compute_server.url + "/v2.1").json()["version"]
    assert document["version"] == "2.15"
    assert document["media-types"][0]["type"].startswith("application/vnd.openstack.compute+json")


def test_microversion_negotiation(admin):
    answer = admin.get("/flavors")
    assert answer.headers["OpenStack-API-Version"] == "compute 2.1"
    assert answer.headers["X-OpenStack-Nova-API-Version"] == "2.1"
    assert "OpenStack-API-Version" in answer.headers["Vary"]
    assert admin.get("/flavors", headers=version_header("2.7")).headers[
        "OpenStack-API-Version"
    ] == ("compute 2.7")
    latest = admin.get("/flavors", headers=version_header("latest"))
    assert latest.headers["OpenStack-API-Version"] == "compute 2.15"
    legacy = admin.get("/flavors", headers={"X-OpenStack-Nova-API-Version": "2.3"})
    assert legacy.headers["OpenStack-API-Version"] == "compute 2.3"
    message = compute_error(admin.get("/flavors", headers=version_header("2.16")), 406)
    assert "2.15" in message
    compute_error(admin.get("/flavors", headers=version_header("3.0")), 406)
    compute_error(admin.get("/flavors", headers=version_header("two")), 400)
    # The version documents themselves are not versioned.
    assert httpx.get(str(admin.base_url).rsplit("/v2.1", 1)[0] + "/").status_code == 200


def test_unauthenticated_and_unknown_routes(compute_server, admin):
    body = httpx.get(compute_server.url + "/v2.1/flavors")
    assert compute_error(body, 401)
    compute_error(admin.get("/no-such-thing"), 404)
    compute_error(admin.put("/flavors"), 405)


# --- flavors ------------------------------------------------------------------------


def test_flavor_lifecycle_with_the_cli(openstack_cli, people, unique):
    name = f"m1.tiny-{unique}"
    flavor = openstack_cli(
        "flavor",
        "create",
        "--ram",
        "128",
        "--disk",
        "1",
        "--vcpus",
        "1",
        "--ephemeral",
        "2",
        "--swap",
        "64",
        "--property",
        "hw:cpu_policy=shared",
        "--property",
        "quota:disk_read_bytes_sec=10240000",
        name,
        "-f",
        "json",
    )
    assert flavor["name"] == name and flavor["ram"] == 128 and flavor["vcpus"] == 1
    assert flavor["disk"] == 1 and flavor["OS-FLV-EXT-DATA:ephemeral"] == 2
    assert flavor["swap"] == 64 and flavor["os-flavor-access:is_public"] is True
    shown = openstack_cli("flavor", "show", flavor["id"], "-f", "json")
    assert shown["properties"] == {
        "hw:cpu_policy": "shared",
        "quota:disk_read_bytes_sec": "10240000",
    }
    alice = cli_as(openstack_cli, people["alice"])
    assert name in {f["Name"] for f in alice("flavor", "list", "-f", "json")}
    openstack_cli("flavor", "set", "--property", "hw:mem_page_size=small", flavor["id"])
    openstack_cli("flavor", "unset", "--property", "hw:cpu_policy", flavor["id"])
    shown = openstack_cli("flavor", "show", name, "-f", "json")
    assert shown["properties"] == {
        "hw:mem_page_size": "small",
        "quota:disk_read_bytes_sec": "10240000",
    }
    denied = alice("flavor", "delete", flavor["id"], check=False)
    assert denied.returncode != 0 and "403" in denied.stderr
    openstack_cli("flavor", "delete", flavor["id"])
    gone = openstack_cli("flavor", "show", flavor["id"], check=False)
    assert gone.returncode != 0


def test_private_flavor_access(openstack_cli, people, admin, unique):
    name = f"private-{unique}"
    flavor = openstack_cli(
        "flavor", "create", "--ram", "64", "--vcpus", "1", "--private", name, "-f", "json"
    )
    alice, bob = people["alice"], people["bob"]
    as_alice = cli_as(openstack_cli, alice)
    assert name not in {f["Name"] for f in as_alice("flavor", "list", "-f", "json")}
    compute_error(people["a"].get(f"/flavors/{flavor['id']}"), 404)
    openstack_cli("flavor", "set", "--project", alice["project_id"], flavor["id"])
    assert name in {f["Name"] for f in as_alice("flavor", "list", "-f", "json")}
    assert people["a"].get(f"/flavors/{flavor['id']}").status_code == 200
    compute_error(people["b"].get(f"/flavors/{flavor['id']}"), 404)
    access = admin.get(f"/flavors/{flavor['id']}/os-flavor-access").json()["flavor_access"]
    assert access == [{"flavor_id": flavor["id"], "tenant_id": alice["project_id"]}]
    again = admin.post(
        f"/flavors/{flavor['id']}/action",
        json={"addTenantAccess": {"tenant": alice["project_id"]}},
    )
    compute_error(again, 409)
    # Admins list private flavors with is_public=false or none, not by default.
    listed = {
        f["name"] for f in admin.get("/flavors", params={"is_public": "false"}).json()["flavors"]
    }
    assert name in listed
    assert name not in {f["name"] for f in admin.get("/flavors").json()["flavors"]}
    # Any of oslo's boolean strings, as Nova reads them (Tempest sends f, t).
    for private in ("f", "n", "False", "0"):
        found = admin.get("/flavors", params={"is_public": private}).json()["flavors"]
        assert name in {f["name"] for f in found}, private
    for public in ("t", "y", "TRUE", "1"):
        found = admin.get("/flavors", params={"is_public": public}).json()["flavors"]
        assert name not in {f["name"] for f in found}, public
    compute_error(admin.get("/flavors", params={"is_public": "maybe"}), 400)
    openstack_cli("flavor", "unset", "--project", alice["project_id"], flavor["id"])
    compute_error(people["a"].get(f"/flavors/{flavor['id']}"), 404)
    removed = admin.post(
        f"/flavors/{flavor['id']}/action",
        json={"removeTenantAccess": {"tenant": bob["project_id"]}},
    )
    compute_error(removed, 404)
    denied = people["a"].post(
        f"/flavors/{flavor['id']}/action", json={"addTenantAccess": {"tenant": "x"}}
    )
    compute_error(denied, 403)
    openstack_cli("flavor", "delete", flavor["id"])


def test_flavor_list_filters_sorting_and_pages(admin, unique):
    made = []
    for index, (ram, disk) in enumerate([(256, 1), (512, 5), (1024, 10), (2048, 20)]):
        answer = admin.post(
            "/flavors",
            json={
                "flavor": {
                    "name": f"page-{unique}-{index}",
                    "id": f"page-{unique}-{index}",
                    "ram": ram,
                    "vcpus": 1,
                    "disk": disk,
                }
            },
        )
        assert answer.status_code == 200, answer.text
        made.append(answer.json()["flavor"]["id"])
    try:
        details = admin.get("/flavors/detail", params={"minRam": 512, "minDisk": 10})
        ours = [f["id"] for f in details.json()["flavors"] if f["id"] in made]
        assert ours == made[2:]
        by_ram = admin.get("/flavors/detail", params={"sort_key": "memory_mb", "sort_dir": "desc"})
        rams = [f["ram"] for f in by_ram.json()["flavors"]]
        assert rams == sorted(rams, reverse=True)
        first = admin.get("/flavors", params={"limit": 1}).json()
        assert len(first["flavors"]) == 1 and first["flavors_links"][0]["rel"] == "next"
        seen, url = [], "/flavors?limit=2"
        while url:
            page = admin.get(url).json()
            seen += [f["id"] for f in page["flavors"]]
            links = page.get("flavors_links")
            url = links[0]["href"] if links else None
        assert set(made) <= set(seen) and len(seen) == len(set(seen))
        compute_error(admin.get("/flavors", params={"marker": "no-such-flavor"}), 400)
        compute_error(admin.get("/flavors", params={"sort_key": "colour"}), 400)
        compute_error(admin.get("/flavors", params={"minRam": "lots"}), 400)
    finally:
        for ident in made:
            assert admin.delete(f"/flavors/{ident}").status_code == 202


@pytest.mark.parametrize(
    ("flavor", "status"),
    [
        ({"ram": 64, "vcpus": 1, "disk": 0}, 400),  # no name
        ({"name": "x", "ram": 0, "vcpus": 1, "disk": 0}, 400),
        ({"name": "x", "ram": 64, "vcpus": 0, "disk": 0}, 400),
        ({"name": "x", "ram": 64, "vcpus": 1, "disk": -1}, 400),
        ({"name": "x", "ram": "lots", "vcpus": 1, "disk": 0}, 400),
        ({"name": "x", "ram": 64, "vcpus": 1, "disk": 0, "swap": True}, 400),
        ({"name": "x", "ram": 64, "vcpus": 1, "disk": 0, "rxtx_factor": 0}, 400),
        ({"name": " x", "ram": 64, "vcpus": 1, "disk": 0}, 400),
        ({"name": "x", "id": "a/b", "ram": 64, "vcpus": 1, "disk": 0}, 400),
        ({"name": "x", "ram": 64, "vcpus": 1, "disk": 0, "colour": "red"}, 400),
        ({"name": "x", "ram": 2**31, "vcpus": 1, "disk": 0}, 400),
        ({"name": "x", "ram": 64, "vcpus": 1, "disk": 0, "os-flavor-access:is_public": 3}, 400),
    ],
)
def test_bad_flavors_are_refused(admin, flavor, status):
    before = admin.get("/flavors", params={"is_public": "none"}).json()["flavors"]
    compute_error(admin.post("/flavors", json={"flavor": flavor}), status)
    assert admin.get("/flavors", params={"is_public": "none"}).json()["flavors"] == before


def test_flavor_id_may_be_a_json_number(admin, unique):
    # Nova takes a number for the ID and keeps its text (Tempest's admin
    # flavor tests send random integers); a boolean is no number.
    number = int(unique, 16) % 10**9
    answer = admin.post(
        "/flavors",
        json={"flavor": {"name": f"num-{unique}", "id": number, "ram": 64, "vcpus": 1, "disk": 0}},
    )
    assert answer.status_code == 200, answer.text
    try:
        assert answer.json()["flavor"]["id"] == str(number)
        assert admin.get(f"/flavors/{number}").json()["flavor"]["name"] == f"num-{unique}"
    finally:
        assert admin.delete(f"/flavors/{number}").status_code == 202
    refused = {"flavor": {"name": f"bool-{unique}", "id": True, "ram": 64, "vcpus": 1, "disk": 0}}
    compute_error(admin.post("/flavors", json=refused), 400)


def test_flavor_conflicts_and_extra_spec_errors(admin, people, unique):
    body = {
        "flavor": {"name": f"dup-{unique}", "id": f"dup-{unique}", "ram": 64, "vcpus": 1, "disk": 0}
    }
    assert admin.post("/flavors", json=body).status_code == 200
    try:
        assert "already exists" in compute_error(admin.post("/flavors", json=body), 409)
        other_id = {"flavor": {**body["flavor"], "name": f"dup2-{unique}"}}
        compute_error(admin.post("/flavors", json=other_id), 409)
        specs = f"/flavors/dup-{unique}/os-extra_specs"
        compute_error(admin.post(specs, json={"extra_specs": {"bad/key": "1"}}), 400)
        compute_error(admin.post(specs, json={"extra_specs": {"k": "v" * 256}}), 400)
        compute_error(admin.post(specs, json={"extra_specs": {}}), 400)
        compute_error(admin.post(specs, json={"specs": {"a": "b"}}), 400)
        assert admin.post(specs, json={"extra_specs": {"a": 1, "b": "two"}}).json() == {
            "extra_specs": {"a": "1", "b": "two"}
        }
        assert admin.get(f"{specs}/a").json() == {"a": "1"}
        compute_error(admin.put(f"{specs}/a", json={"b": "x"}), 400)
        assert admin.put(f"{specs}/a", json={"a": "3"}).json() == {"a": "3"}
        compute_error(admin.get(f"{specs}/missing"), 404)
        # Members read the specs of flavors they may use, never change them.
        assert people["a"].get(specs).json() == {"extra_specs": {"a": "3", "b": "two"}}
        compute_error(people["a"].post(specs, json={"extra_specs": {"c": "d"}}), 403)
        compute_error(people["a"].delete(f"{specs}/a"), 403)
        assert admin.delete(f"{specs}/a").status_code == 200
        compute_error(admin.delete(f"{specs}/a"), 404)
        compute_error(admin.get(f"/flavors/dup-{unique}/os-flavor-access"), 404)
        public = admin.post(
            f"/flavors/dup-{unique}/action", json={"addTenantAccess": {"tenant": "p"}}
        )
        compute_error(public, 409)
        compute_error(admin.post(f"/flavors/dup-{unique}/action", json={"resize": {}}), 400)
    finally:
        assert admin.delete(f"/flavors/dup-{unique}").status_code == 202
    compute_error(admin.delete(f"/flavors/dup-{unique}"), 404)
    compute_error(admin.get(f"/flavors/dup-{unique}/os-extra_specs"), 404)


def test_flavors_with_openstacksdk(identity_server, compute_server, unique):
    import openstack

    conn = openstack.connect(
        auth=identity_server.auth(), region_name="RegionOne", identity_api_version="3"
    )
    try:
        flavor = conn.compute.create_flavor(
            name=f"sdk-{unique}", ram=96, vcpus=2, disk=3, is_public=True
        )
        assert flavor.ram == 96 and flavor.vcpus == 2 and flavor.disk == 3
        conn.compute.create_flavor_extra_specs(flavor, {"hw:numa_nodes": "1"})
        fetched = conn.compute.get_flavor(flavor.id)
        assert fetched.name == f"sdk-{unique}"
        assert conn.compute.fetch_flavor_extra_specs(fetched).extra_specs == {"hw:numa_nodes": "1"}
        assert flavor.id in {f.id for f in conn.compute.flavors(details=True)}
        conn.compute.delete_flavor(flavor)
        assert flavor.id not in {f.id for f in conn.compute.flavors()}
    finally:
        conn.close()


# --- key pairs ----------------------------------------------------------------------


def test_keypairs_with_the_cli(openstack_cli, people, tmp_path: Path, unique):
    alice = cli_as(openstack_cli, people["alice"])
    # The CLI makes the pair itself and imports its public half.
    generated = alice("keypair", "create", f"gen-{unique}")
    assert "PRIVATE KEY-----" in generated.stdout
    key_file = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)], check=True)
    fingerprint = (
        subprocess.run(
            ["ssh-keygen", "-l", "-E", "md5", "-f", str(key_file) + ".pub"],
            capture_output=True,
            text=True,
            check=True,
        )
        .stdout.split()[1]
        .removeprefix("MD5:")
    )
    imported = alice(
        "keypair",
        "create",
        "--public-key",
        str(key_file) + ".pub",
        f"imp-{unique}",
        "-f",
        "json",
    )
    assert imported["fingerprint"] == fingerprint
    listed = {k["Name"]: k for k in alice("keypair", "list", "-f", "json")}
    assert set(listed) == {f"gen-{unique}", f"imp-{unique}"}
    shown = alice("keypair", "show", f"imp-{unique}", "-f", "json")
    assert shown["user_id"] == people["alice"]["user_id"]
    assert alice("keypair", "show", "--public-key", f"imp-{unique}").stdout.strip() == (
        (key_file.with_suffix(".pub")).read_text().strip()
    )
    # Bob cannot see or delete Alice's keys.
    compute_error(people["b"].get(f"/os-keypairs/imp-{unique}"), 404)
    compute_error(people["b"].delete(f"/os-keypairs/imp-{unique}"), 404)
    duplicate = alice("keypair", "create", f"gen-{unique}", check=False)
    assert duplicate.returncode != 0 and "409" in duplicate.stderr
    alice("keypair", "delete", f"gen-{unique}", f"imp-{unique}")
    assert alice("keypair", "list", "-f", "json") == []


def test_keypair_microversions_and_bad_input(people, identity_server, unique):
    client = people["a"]
    base = client.get("/os-keypairs")
    assert base.status_code == 200
    made = client.post("/os-keypairs", json={"keypair": {"name": f"v21-{unique}"}})
    assert made.status_code == 200 and "type" not in made.json()["keypair"]
    generated = made.json()["keypair"]
    assert generated["public_key"].startswith("ssh-rsa ")
    assert generated["private_key"].startswith("-----BEGIN RSA PRIVATE KEY-----")
    assert generated["user_id"] == people["alice"]["user_id"]
    assert client.delete(f"/os-keypairs/v21-{unique}").status_code == 202
    v22 = version_header("2.2")
    x509 = client.post(
        "/os-keypairs", json={"keypair": {"name": f"x-{unique}", "type": "x509"}}, headers=v22
    )
    assert x509.status_code == 201, x509.text
    pair = x509.json()["keypair"]
    assert pair["type"] == "x509" and "BEGIN CERTIFICATE" in pair["public_key"]
    assert "PRIVATE KEY" in pair["private_key"]
    listed = client.get("/os-keypairs", headers=v22).json()["keypairs"]
    assert listed == [
        {
            "keypair": {
                "name": f"x-{unique}",
                "public_key": pair["public_key"],
                "fingerprint": pair["fingerprint"],
                "type": "x509",
            }
        }
    ]
    assert client.delete(f"/os-keypairs/x-{unique}", headers=v22).status_code == 204
    for bad in (
        {"name": ""},
        {"name": "a/b"},
        {"name": " padded"},
        {"name": "x" * 256},
        {"name": "ok", "public_key": "ssh-rsa not-base64!"},
        {"name": "ok", "public_key": "hello"},
        {"name": "ok", "public_key": ""},
        {"name": "ok", "type": "x509"},  # type is 2.2
        {"name": "ok", "colour": "red"},
    ):
        compute_error(client.post("/os-keypairs", json={"keypair": bad}), 400)
    compute_error(
        client.post("/os-keypairs", json={"keypair": {"name": "ok", "type": "gpg"}}, headers=v22),
        400,
    )
    compute_error(client.post("/os-keypairs", json={"name": "ok"}), 400)
    assert client.get("/os-keypairs").json()["keypairs"] == []
    # user_id (2.10) is for admins only.
    other = people["bob"]["user_id"]
    compute_error(
        client.get("/os-keypairs", params={"user_id": other}, headers=version_header("2.10")),
        403,
    )


def test_admin_manages_another_users_keypairs(admin, people, unique):
    v210 = version_header("2.10")
    bob = people["bob"]["user_id"]
    made = admin.post(
        "/os-keypairs",
        json={"keypair": {"name": f"for-bob-{unique}", "user_id": bob}},
        headers=v210,
    )
    assert made.status_code == 201 and made.json()["keypair"]["user_id"] == bob
    assert people["b"].get(f"/os-keypairs/for-bob-{unique}").status_code == 200
    listed = admin.get("/os-keypairs", params={"user_id": bob}, headers=v210).json()
    assert [k["keypair"]["name"] for k in listed["keypairs"]] == [f"for-bob-{unique}"]
    deleted = admin.delete(f"/os-keypairs/for-bob-{unique}", params={"user_id": bob}, headers=v210)
    assert deleted.status_code == 204
    compute_error(people["b"].get(f"/os-keypairs/for-bob-{unique}"), 404)


# --- quotas and limits --------------------------------------------------------------


def test_quotas_and_limits(openstack_cli, admin, people, unique):
    alice = people["alice"]
    project = alice["project_id"]
    openstack_cli("quota", "set", "--instances", "7", "--cores", "9", "--key-pairs", "1", project)
    shown = admin.get(f"/os-quota-sets/{project}").json()["quota_set"]
    assert shown["id"] == project and shown["instances"] == 7 and shown["cores"] == 9
    assert shown["key_pairs"] == 1 and shown["ram"] == 51200
    assert shown["floating_ips"] == 10  # 2.1 still shows the networking quotas
    newer = admin.get(f"/os-quota-sets/{project}", headers=version_header("2.10")).json()
    assert "floating_ips" in newer["quota_set"]
    cli = openstack_cli("quota", "show", "--compute", project, "-f", "json")
    values = {row["Resource"]: row["Limit"] for row in cli} if isinstance(cli, list) else cli
    assert values["instances"] == 7 and values["cores"] == 9
    # The key pair quota counts the keys of each user.
    assert (
        people["a"].post("/os-keypairs", json={"keypair": {"name": f"q1-{unique}"}}).status_code
        == 200
    )
    over = people["a"].post("/os-keypairs", json={"keypair": {"name": f"q2-{unique}"}})
    assert "Quota exceeded" in compute_error(over, 403)
    detail = people["a"].get(f"/os-quota-sets/{project}/detail").json()["quota_set"]
    assert detail["key_pairs"] == {"limit": 1, "in_use": 1, "reserved": 0}
    limits = people["a"].get("/limits").json()["limits"]
    assert limits["rate"] == []
    assert limits["absolute"]["maxTotalInstances"] == 7
    assert limits["absolute"]["maxTotalKeypairs"] == 1
    assert limits["absolute"]["totalInstancesUsed"] == 0
    cli_limits = cli_as(openstack_cli, alice)("limits", "show", "--absolute", "-f", "json")
    assert {"Name": "total_cores", "Value": 9} in cli_limits  # named as the SDK names it
    # Members read their own project's quotas only, and change none.
    compute_error(people["a"].get(f"/os-quota-sets/{people['bob']['project_id']}"), 403)
    compute_error(
        people["a"].put(f"/os-quota-sets/{project}", json={"quota_set": {"cores": 99}}), 403
    )
    compute_error(
        people["a"].get("/limits", params={"tenant_id": people["bob"]["project_id"]}), 403
    )
    other = admin.get("/limits", params={"tenant_id": project}).json()["limits"]["absolute"]
    assert other["maxTotalCores"] == 9
    for bad in ({"cores": -2}, {"cores": "many"}, {"colour": 1}, {"cores": True}):
        compute_error(admin.put(f"/os-quota-sets/{project}", json={"quota_set": bad}), 400)
    compute_error(
        admin.put(
            f"/os-quota-sets/{project}", params={"user_id": "x"}, json={"quota_set": {"cores": 1}}
        ),
        400,
    )
    assert admin.delete(f"/os-quota-sets/{project}").status_code == 202
    reset = admin.get(f"/os-quota-sets/{project}").json()["quota_set"]
    assert reset["instances"] == 10 and reset["key_pairs"] == 100
    defaults = people["a"].get(f"/os-quota-sets/{project}/defaults").json()["quota_set"]
    assert defaults["cores"] == 20
    people["a"].delete(f"/os-keypairs/q1-{unique}")


def test_restart_loses_nothing(compute_server, admin, unique):
    body = {"flavor": {"name": f"keep-{unique}", "ram": 64, "vcpus": 1, "disk": 0}}
    flavor = admin.post("/flavors", json=body).json()["flavor"]
    compute_server.restart()
    assert admin.get(f"/flavors/{flavor['id']}").json()["flavor"]["name"] == f"keep-{unique}"
    admin.delete(f"/flavors/{flavor['id']}")
