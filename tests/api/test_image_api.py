"""The image registry through openstacksdk, the ``openstack`` CLI and plain HTTP.

Covers version discovery, create/show/list/update/delete, JSON patch,
filters, sorting and pagination with Glance's ``next`` link, tags,
deactivation, protection, schemas and the import information.
"""

from __future__ import annotations

import hashlib
import os

import httpx
import openstack.exceptions
import pytest

from tests.api.helpers import admin_token, assert_error, auth_headers

PATCH = "application/openstack-images-v2.1-json-patch"


@pytest.fixture(scope="module")
def http(image_server, identity_server):
    headers = auth_headers(admin_token(identity_server))
    with httpx.Client(base_url=image_server.url, headers=headers, timeout=30) as client:
        yield client


def create(http, **body):
    response = http.post(
        "/v2/images", json={"disk_format": "raw", "container_format": "bare", **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


def test_version_discovery(image_server):
    response = httpx.get(image_server.url + "/")
    assert response.status_code == 300
    versions = response.json()["versions"]
    assert versions[0]["status"] == "CURRENT"
    assert versions[0]["links"][0]["href"] == f"{image_server.url}/v2/"
    assert {v["id"] for v in versions} >= {"v2.0", "v2.6", "v2.7"}
    assert httpx.get(image_server.url + "/versions").status_code == 200


def test_create_show_shape(http, unique):
    image = create(
        http, name=f"shape-{unique}", min_ram=64, tags=["a", "b", "a"], hw_disk_bus="scsi"
    )
    assert image["status"] == "queued"
    assert image["visibility"] == "shared"
    assert image["tags"] == ["a", "b"]
    assert image["hw_disk_bus"] == "scsi"
    assert image["size"] is None and image["checksum"] is None
    assert image["self"] == f"/v2/images/{image['id']}"
    assert image["file"] == f"/v2/images/{image['id']}/file"
    assert image["created_at"].endswith("Z")
    shown = http.get(f"/v2/images/{image['id']}").json()
    assert shown == image


def test_create_with_id_and_conflict(http):
    image_id = "8b6c6e9e-8a5f-4d7e-9c2b-2d3f4a5b6c7d"
    create(http, id=image_id, name="fixed-id")
    assert_error(http.post("/v2/images", json={"id": image_id}), 409)
    assert http.delete(f"/v2/images/{image_id}").status_code == 204
    # A deleted image's ID is never reused.
    assert_error(http.post("/v2/images", json={"id": image_id}), 409)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"disk_format": "floppy"}, 400),
        ({"container_format": "zip"}, 400),
        ({"visibility": "everyone"}, 400),
        ({"min_ram": -1}, 400),
        ({"min_disk": "big"}, 400),
        ({"name": "x" * 256}, 400),
        ({"tags": ["x" * 256]}, 400),
        ({"tags": "a,b"}, 400),
        ({"id": "not-a-uuid"}, 400),
        ({"protected": "yes"}, 400),
        ({"custom": 5}, 400),
        ({"status": "active"}, 403),
        ({"size": 5}, 403),
        ({"checksum": "x"}, 403),
        ({"os_hash_value": "x"}, 403),
        ({"locations": []}, 403),
        ({"deleted": True}, 403),
        ({"os_glance_importing_to_stores": "x"}, 403),
    ],
)
def test_create_refuses_bad_attributes(http, body, status):
    before = len(http.get("/v2/images", params={"limit": 1000}).json()["images"])
    assert_error(http.post("/v2/images", json=body), status)
    assert len(http.get("/v2/images", params={"limit": 1000}).json()["images"]) == before


def test_json_patch(http, unique):
    image = create(http, name=f"patch-{unique}", extra="1")
    url = f"/v2/images/{image['id']}"
    ops = [
        {"op": "replace", "path": "/name", "value": f"renamed-{unique}"},
        {"op": "add", "path": "/os_distro", "value": "debian"},
        {"op": "replace", "path": "/extra", "value": "2"},
        {"op": "add", "path": "/tags", "value": ["x"]},
        {"op": "replace", "path": "/min_disk", "value": 3},
        {"op": "add", "path": "/a~1b", "value": "slash"},
    ]
    patched = http.patch(url, json=ops, headers={"Content-Type": PATCH})
    assert patched.status_code == 200, patched.text
    body = patched.json()
    assert body["name"] == f"renamed-{unique}"
    assert body["os_distro"] == "debian" and body["extra"] == "2" and body["a/b"] == "slash"
    assert body["tags"] == ["x"] and body["min_disk"] == 3
    removed = http.patch(
        url, json=[{"op": "remove", "path": "/extra"}], headers={"Content-Type": PATCH}
    )
    assert "extra" not in removed.json()


@pytest.mark.parametrize(
    ("ops", "status"),
    [
        ([{"op": "remove", "path": "/missing"}], 409),
        ([{"op": "replace", "path": "/missing", "value": "x"}], 409),
        ([{"op": "replace", "path": "/status", "value": "active"}], 403),
        ([{"op": "replace", "path": "/id", "value": "x"}], 403),
        ([{"op": "remove", "path": "/name"}], 403),
        ([{"op": "move", "path": "/name", "from": "/x"}], 400),
        ([{"op": "replace", "path": "name", "value": "x"}], 400),
        ([{"op": "replace", "path": "/a/b", "value": "x"}], 400),
        ([{"op": "replace", "path": "/name"}], 400),
        ([{"op": "replace", "path": "/visibility", "value": "nobody"}], 400),
        ([{"op": "replace", "path": "/min_ram", "value": "lots"}], 400),
        ({"op": "replace"}, 400),
        (["x"], 400),
    ],
)
def test_bad_json_patches_change_nothing(http, unique, ops, status):
    image = create(http, name=f"badpatch-{unique}")
    url = f"/v2/images/{image['id']}"
    assert_error(http.patch(url, json=ops, headers={"Content-Type": PATCH}), status)
    assert http.get(url).json() == image


def test_patch_needs_the_patch_media_type(http, unique):
    image = create(http, name=f"media-{unique}")
    ops = [{"op": "replace", "path": "/name", "value": "x"}]
    assert_error(http.patch(f"/v2/images/{image['id']}", json=ops), 415)
    bad = http.patch(f"/v2/images/{image['id']}", content=b"{no", headers={"Content-Type": PATCH})
    assert_error(bad, 400)


def test_list_filters_sorting_and_pagination(http, unique):
    made = []
    for i, (fmt, size_prop) in enumerate(
        [("raw", "s"), ("qcow2", "m"), ("raw", "l"), ("iso", "m")]
    ):
        made.append(
            create(
                http,
                name=f"list-{unique}-{i}",
                disk_format=fmt,
                tags=[unique, size_prop],
                flavor=size_prop,
            )
        )
    ids = {m["id"] for m in made}

    def listed(**params):
        return [
            i["id"]
            for i in http.get("/v2/images", params=params).json()["images"]
            if i["id"] in ids
        ]

    assert len(listed(tag=unique)) == 4
    assert len(listed(tag=unique, disk_format="raw")) == 2
    assert len(listed(tag=unique, flavor="m")) == 2
    assert listed(name=f"list-{unique}-2") == [made[2]["id"]]
    assert len(listed(name=f"in:list-{unique}-1,list-{unique}-3")) == 2
    assert listed(tag=unique, sort="name:asc") == [m["id"] for m in made]
    assert listed(tag=unique, sort_key="name", sort_dir="desc") == [m["id"] for m in reversed(made)]
    # Pagination: pages of 1, following Glance's relative ``next`` link.
    seen, url, params = [], "/v2/images", {"tag": unique, "limit": 1, "sort": "name:asc"}
    while url:
        body = http.get(url, params=params).json()
        assert len(body["images"]) <= 1
        seen += [i["id"] for i in body["images"]]
        url, params = body.get("next"), None
    assert seen == [m["id"] for m in made]
    for params in (
        {"sort_key": "nonsense"},
        {"sort_dir": "up"},
        {"limit": -1},
        {"limit": "x"},
        {"marker": "00000000-0000-0000-0000-000000000000"},
        {"visibility": "everyone"},
        {"member_status": "maybe"},
        {"size_min": "big"},
        {"created_at": "gt:yesterday"},
        {"protected": "perhaps"},
    ):
        assert_error(http.get("/v2/images", params=params), 400)


def test_tags_endpoints(http, unique):
    image = create(http, name=f"tags-{unique}")
    url = f"/v2/images/{image['id']}/tags"
    assert http.put(f"{url}/one").status_code == 204
    assert http.put(f"{url}/one").status_code == 204  # idempotent
    assert http.get(f"/v2/images/{image['id']}").json()["tags"] == ["one"]
    assert http.delete(f"{url}/one").status_code == 204
    assert_error(http.delete(f"{url}/one"), 404)
    assert_error(http.put(f"{url}/{'x' * 256}"), 400)


def test_protected_images_are_not_deleted(http, unique):
    image = create(http, name=f"protected-{unique}", protected=True)
    assert_error(http.delete(f"/v2/images/{image['id']}"), 403)
    ops = [{"op": "replace", "path": "/protected", "value": False}]
    http.patch(f"/v2/images/{image['id']}", json=ops, headers={"Content-Type": PATCH})
    assert http.delete(f"/v2/images/{image['id']}").status_code == 204
    assert_error(http.get(f"/v2/images/{image['id']}"), 404)
    assert_error(http.delete(f"/v2/images/{image['id']}"), 404)


def test_deactivate_and_reactivate(http, unique):
    image = create(http, name=f"deact-{unique}")
    url = f"/v2/images/{image['id']}"
    assert_error(http.post(f"{url}/actions/deactivate"), 403)  # queued: nothing to deactivate
    data = os.urandom(1024)
    put = http.put(
        f"{url}/file", content=data, headers={"Content-Type": "application/octet-stream"}
    )
    assert put.status_code == 204, put.text
    assert http.post(f"{url}/actions/deactivate").status_code == 204
    assert http.get(url).json()["status"] == "deactivated"
    assert http.get(f"{url}/file").content == data  # the admin still may
    assert http.post(f"{url}/actions/reactivate").status_code == 204
    assert http.get(url).json()["status"] == "active"
    # Formats are fixed once data is there.
    ops = [{"op": "replace", "path": "/disk_format", "value": "qcow2"}]
    assert_error(http.patch(url, json=ops, headers={"Content-Type": PATCH}), 403)


def test_schemas_and_info(http):
    image = http.get("/v2/schemas/image").json()
    assert image["name"] == "image"
    assert "qcow2" in image["properties"]["disk_format"]["enum"]
    assert http.get("/v2/schemas/images").json()["name"] == "images"
    assert http.get("/v2/schemas/members").json()["name"] == "members"
    assert http.get("/v2/schemas/member").json()["properties"]["status"]["enum"] == [
        "pending",
        "accepted",
        "rejected",
    ]
    methods = http.get("/v2/info/import").json()["import-methods"]["value"]
    assert methods == ["glance-direct"]
    usage = http.get("/v2/info/usage").json()["usage"]
    assert usage["image_count_total"]["usage"] >= 1


def test_openstacksdk_lifecycle(image_conn, unique):
    data = os.urandom(2 * 1024 * 1024 + 3)
    image = image_conn.image.create_image(
        name=f"sdk-{unique}", disk_format="raw", container_format="bare", data=data, tags=["sdk"]
    )
    shown = image_conn.image.get_image(image.id)
    assert shown.status == "active"
    assert shown.size == len(data)
    assert shown.checksum == hashlib.md5(data).hexdigest()
    assert shown.hash_algo == "sha512"
    assert shown.hash_value == hashlib.sha512(data).hexdigest()
    assert image_conn.image.download_image(shown).content == data
    image_conn.image.update_image(shown, name=f"sdk2-{unique}", os_distro="debian")
    assert image_conn.image.get_image(image.id).name == f"sdk2-{unique}"
    assert f"sdk2-{unique}" in [i.name for i in image_conn.image.images(tag="sdk")]
    image_conn.image.delete_image(image.id)
    with pytest.raises(openstack.exceptions.NotFoundException):
        image_conn.image.get_image(image.id)


def test_openstack_cli_journey(openstack_cli, image_server, tmp_path, unique):
    source = tmp_path / "disk.qcow2"
    raw = tmp_path / "disk.raw"
    raw.write_bytes(os.urandom(1024 * 1024))
    import subprocess

    subprocess.run(
        ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(source)], check=True
    )
    name = f"cli-{unique}"
    created = openstack_cli(
        "image",
        "create",
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--file",
        str(source),
        "--property",
        "os_distro=debian",
        name,
        "-f",
        "json",
    )
    assert created["status"] == "active"
    shown = openstack_cli("image", "show", name, "-f", "json")
    assert shown["virtual_size"] == 1024 * 1024
    assert shown["checksum"] == hashlib.md5(source.read_bytes()).hexdigest()
    names = [i["Name"] for i in openstack_cli("image", "list", "-f", "json")]
    assert name in names
    target = tmp_path / "downloaded"
    openstack_cli("image", "save", "--file", str(target), name)
    assert (
        hashlib.sha256(target.read_bytes()).digest() == hashlib.sha256(source.read_bytes()).digest()
    )
    openstack_cli("image", "set", "--tag", "cli", "--min-ram", "128", name)
    assert openstack_cli("image", "show", name, "-f", "json")["min_ram"] == 128
    openstack_cli("image", "delete", name)
    missing = openstack_cli("image", "show", name, check=False)
    assert missing.returncode != 0


def test_filters_on_sizes_and_hashes_and_no_trailing_slash(http, unique):
    image = create(http, name=f"sized-{unique}", min_ram=77)
    url = f"/v2/images/{image['id']}"
    data = os.urandom(4321)
    http.put(f"{url}/file", content=data, headers={"Content-Type": "application/octet-stream"})

    def listed(**params):
        return [i["id"] for i in http.get("/v2/images", params=params).json()["images"]]

    assert image["id"] in listed(size=4321)
    assert image["id"] not in listed(size=4322)
    assert image["id"] in listed(min_ram=77, checksum=hashlib.md5(data).hexdigest())
    assert image["id"] in listed(os_hash_value=hashlib.sha512(data).hexdigest())
    # Glance does not redirect /v2/images/ to /v2/images.
    assert_error(http.get("/v2/images/"), 404)


def test_openstack_cli_interoperable_import(openstack_cli, image_server, tmp_path, unique):
    """``openstack image create --import``: stage, then glance-direct import."""
    import subprocess
    import time

    source = tmp_path / "disk.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(source), "5M"], check=True, capture_output=True
    )
    name = f"import-{unique}"
    openstack_cli(
        "image",
        "create",
        "--import",
        "--disk-format",
        "qcow2",
        "--container-format",
        "bare",
        "--file",
        str(source),
        name,
        "-f",
        "json",
    )
    deadline = time.monotonic() + 30
    while (shown := openstack_cli("image", "show", name, "-f", "json"))["status"] != "active":
        assert shown["status"] in ("uploading", "importing"), shown
        assert time.monotonic() < deadline, shown
        time.sleep(0.2)
    assert shown["virtual_size"] == 5 * 1024 * 1024
    assert shown["checksum"] == hashlib.md5(source.read_bytes()).hexdigest()
    openstack_cli("image", "delete", name)
