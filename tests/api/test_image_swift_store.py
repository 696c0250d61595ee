"""The image service with its data in a real Swift cluster (``[image] store = swift``).

An image server configured with ``store = swift`` (its own service user,
given the ``member`` role on its project so that Swift makes it the owner of
that project's account) runs beside the session's image server; uploads go
through the ``openstack`` CLI and openstacksdk, and what lands in Swift is
checked with direct Swift requests as that user. A 1 MiB segment size makes
a few-MiB image a static large object of several segments. The cluster is
``tests/swift_cluster.py``'s: three devices, three replicas, so an image
survives the loss of one device.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from stratus.common.config import Config, ConfigError
from stratus.image.service import ImageService
from stratus.image.store import StoreError
from stratus.image.swift_store import parse_location
from tests.api.helpers import admin_token, assert_error, auth_headers, expect, request, role_id
from tests.conftest import IMAGE_SERVICE_PASSWORD, make_image_server, run_cli

SEGMENT = 1024 * 1024
OCTET = {"Content-Type": "application/octet-stream"}


def _id_of(identity, collection: str, name: str) -> str:
    found = expect(request(identity, "GET", f"/{collection}", params={"name": name}))[collection]
    assert len(found) == 1, found
    return str(found[0]["id"])


class SwiftAccount:
    """Direct requests to the account the image service stores into."""

    def __init__(self, identity, cluster, project_id: str):
        self.identity = identity
        self.url = cluster.endpoint_for(project_id)

    def _token(self) -> str:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "image",
                            "domain": {"id": "default"},
                            "password": IMAGE_SERVICE_PASSWORD,
                        }
                    },
                },
                "scope": {"project": {"name": "service", "domain": {"id": "default"}}},
            }
        }
        response = httpx.post(f"{self.identity.auth_url}/auth/tokens", json=body, timeout=30)
        assert response.status_code == 201, response.text
        return response.headers["X-Subject-Token"]

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = {"X-Auth-Token": self._token(), **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}/{path}", headers=headers, timeout=60, **kwargs)

    def listing(self, container: str, prefix: str = "") -> list[str]:
        response = self.request("GET", container, params={"format": "json", "prefix": prefix})
        if response.status_code in (204, 404):
            return []
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()]


@pytest.fixture(scope="module")
def swift_setup(identity_server, image_server, swift_cluster):
    """The image service's user may own its project's Swift account (role member)."""
    user = _id_of(identity_server, "users", "image")
    project = _id_of(identity_server, "projects", "service")
    member = role_id(identity_server, "member")
    response = request(identity_server, "PUT", f"/projects/{project}/users/{user}/roles/{member}")
    assert response.status_code == 204, response.text
    try:
        yield SwiftAccount(identity_server, swift_cluster, project)
    finally:
        request(identity_server, "DELETE", f"/projects/{project}/users/{user}/roles/{member}")


@pytest.fixture(scope="module")
def container() -> str:
    return f"images-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def swift_image_server(identity_server, swift_setup, container, tmp_path_factory):
    server = make_image_server(
        tmp_path_factory.mktemp("image-swift"),
        identity_server,
        register=False,
        store="swift",
        swift_store_container=container,
        swift_store_segment_size=SEGMENT,
    )
    try:
        yield server
    finally:
        server.stop()
        for name in (container, f"{container}_segments"):
            for obj in swift_setup.listing(name):
                swift_setup.request("DELETE", f"{name}/{obj}")
            swift_setup.request("DELETE", name)


@pytest.fixture(scope="module")
def http(identity_server, swift_image_server):
    token = admin_token(identity_server)
    with httpx.Client(
        base_url=swift_image_server.url, headers=auth_headers(token), timeout=120
    ) as client:
        yield client


@pytest.fixture
def cli_env(identity_server, swift_image_server) -> dict[str, str]:
    """The admin's CLI environment, talking to the Swift-backed image server."""
    return {
        **identity_server.cli_env(),
        "OS_IMAGE_ENDPOINT_OVERRIDE": swift_image_server.url,
        "OS_IMAGE_API_VERSION": "2",
    }


def spool(server) -> list[Path]:
    path = server.workdir / "staging" / "swift-spool"
    return list(path.iterdir()) if path.exists() else []


def test_segmented_upload_through_the_cli_and_download(
    cli_env, http, swift_image_server, swift_setup, container, tmp_path, unique
):
    data = os.urandom(3 * SEGMENT + 12345)
    source = tmp_path / "disk.raw"
    source.write_bytes(data)
    image = run_cli(
        cli_env,
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--file",
        str(source),
        f"swift-cli-{unique}",
        "-f",
        "json",
    )
    shown = run_cli(cli_env, "image", "show", image["id"], "-f", "json")
    assert shown["status"] == "active"
    assert shown["size"] == len(data)
    assert shown["checksum"] == hashlib.md5(data).hexdigest()
    record = http.get(f"/v2/images/{image['id']}").json()
    assert record["os_hash_value"] == hashlib.sha512(data).hexdigest()

    saved = tmp_path / "saved.raw"
    run_cli(cli_env, "image", "save", "--file", str(saved), image["id"])
    assert hashlib.sha256(saved.read_bytes()).hexdigest() == hashlib.sha256(data).hexdigest()

    # In Swift: a manifest in the container, four segments beside it.
    head = swift_setup.request("HEAD", f"{container}/{image['id']}")
    assert head.status_code == 200
    assert head.headers.get("X-Static-Large-Object") == "True"
    assert int(head.headers["Content-Length"]) == len(data)
    segments = swift_setup.listing(f"{container}_segments", prefix=f"{image['id']}/")
    assert len(segments) == 4, segments

    # A range across a segment boundary, and a resumed download.
    url = f"/v2/images/{image['id']}/file"
    part = http.get(url, headers={"Range": f"bytes={SEGMENT - 10}-{SEGMENT + 9}"})
    assert part.status_code == 206 and part.content == data[SEGMENT - 10 : SEGMENT + 10]
    assert http.get(url, headers={"Range": "bytes=-7"}).content == data[-7:]
    rest = http.get(url, headers={"Range": f"bytes={2 * SEGMENT + 1}-"})
    assert data[: 2 * SEGMENT + 1] + rest.content == data
    assert spool(swift_image_server) == []


def test_small_image_is_one_object_through_the_sdk(
    identity_server, swift_image_server, swift_setup, container, unique
):
    import openstack

    conn = openstack.connect(
        auth=identity_server.auth(),
        region_name="RegionOne",
        identity_api_version="3",
        image_endpoint_override=swift_image_server.url,
    )
    try:
        data = os.urandom(300_000)
        image = conn.image.create_image(
            name=f"swift-sdk-{unique}",
            disk_format="raw",
            container_format="bare",
            data=data,
            validate_checksum=False,
        )
        image = conn.image.wait_for_status(image, "active", wait=60)
        assert image.checksum == hashlib.md5(data).hexdigest()
        downloaded = conn.image.download_image(image)
        body = downloaded.content if hasattr(downloaded, "content") else downloaded
        assert hashlib.sha256(body).hexdigest() == hashlib.sha256(data).hexdigest()
        head = swift_setup.request("HEAD", f"{container}/{image.id}")
        assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
        assert "X-Static-Large-Object" not in head.headers
        assert swift_setup.listing(f"{container}_segments", prefix=f"{image.id}/") == []
        conn.image.delete_image(image)
        assert swift_setup.request("HEAD", f"{container}/{image.id}").status_code == 404
    finally:
        conn.close()


def test_delete_removes_the_manifest_and_its_segments(http, swift_setup, container, unique):
    data = os.urandom(2 * SEGMENT + 1)
    image = http.post(
        "/v2/images",
        json={"name": f"swift-del-{unique}", "disk_format": "raw", "container_format": "bare"},
    ).json()
    url = f"/v2/images/{image['id']}"
    assert http.put(f"{url}/file", content=data, headers=OCTET).status_code == 204
    assert len(swift_setup.listing(f"{container}_segments", prefix=f"{image['id']}/")) == 3
    assert http.delete(url).status_code == 204
    assert swift_setup.request("HEAD", f"{container}/{image['id']}").status_code == 404
    assert swift_setup.listing(f"{container}_segments", prefix=f"{image['id']}/") == []
    assert image["id"] not in swift_setup.listing(container)


def test_refused_upload_leaves_nothing_in_swift(
    http, swift_image_server, swift_setup, container, unique
):
    image = http.post(
        "/v2/images",
        json={"name": f"swift-bad-{unique}", "disk_format": "qcow2", "container_format": "bare"},
    ).json()
    url = f"/v2/images/{image['id']}"
    response = http.put(f"{url}/file", content=os.urandom(2 * SEGMENT), headers=OCTET)
    assert "refused" in assert_error(response, 400)["message"]
    assert http.get(url).json()["status"] == "queued"
    assert swift_setup.listing(container, prefix=image["id"]) == []
    assert swift_setup.listing(f"{container}_segments", prefix=f"{image['id']}/") == []
    assert spool(swift_image_server) == []
    # The image takes a good upload afterwards.
    qcow2 = swift_image_server.workdir / "good.qcow2"
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(qcow2), "4M"], check=True, capture_output=True
    )
    good = qcow2.read_bytes()
    qcow2.unlink()
    assert http.put(f"{url}/file", content=good, headers=OCTET).status_code == 204
    assert http.get(f"{url}/file").content == good


def test_swift_quota_is_a_full_store_and_leaves_no_segments(
    http, swift_image_server, swift_setup, container, unique
):
    """A segment refused by a container quota (413): 413 to the client, nothing kept.

    The proxy checks the quota against the container's usage as it last
    cached it, so the quota leaves room for less than one segment.
    """
    segments = f"{container}_segments"
    used = int(swift_setup.request("HEAD", segments).headers["X-Container-Bytes-Used"])
    quota = {"X-Container-Meta-Quota-Bytes": str(used + SEGMENT // 2)}
    assert swift_setup.request("POST", segments, headers=quota).status_code == 204
    try:
        image = http.post(
            "/v2/images",
            json={
                "name": f"swift-quota-{unique}",
                "disk_format": "raw",
                "container_format": "bare",
            },
        ).json()
        url = f"/v2/images/{image['id']}"
        response = http.put(f"{url}/file", content=os.urandom(3 * SEGMENT), headers=OCTET)
        assert "full" in assert_error(response, 413)["message"]
        assert http.get(url).json()["status"] == "queued"
        assert swift_setup.listing(segments, prefix=f"{image['id']}/") == []
        assert swift_setup.request("HEAD", f"{container}/{image['id']}").status_code == 404
        assert spool(swift_image_server) == []
    finally:
        removed = {"X-Remove-Container-Meta-Quota-Bytes": "x"}
        assert swift_setup.request("POST", segments, headers=removed).status_code == 204
    # Segments accepted, the manifest refused: the segments sent go again.
    used = int(swift_setup.request("HEAD", container).headers["X-Container-Bytes-Used"])
    quota = {"X-Container-Meta-Quota-Bytes": str(used + 10)}
    assert swift_setup.request("POST", container, headers=quota).status_code == 204
    try:
        response = http.put(f"{url}/file", content=os.urandom(3 * SEGMENT), headers=OCTET)
        assert "full" in assert_error(response, 413)["message"]
        assert http.get(url).json()["status"] == "queued"
        assert swift_setup.listing(segments, prefix=f"{image['id']}/") == []
        assert swift_setup.request("HEAD", f"{container}/{image['id']}").status_code == 404
    finally:
        removed = {"X-Remove-Container-Meta-Quota-Bytes": "x"}
        assert swift_setup.request("POST", container, headers=removed).status_code == 204
    data = os.urandom(3 * SEGMENT)
    assert http.put(f"{url}/file", content=data, headers=OCTET).status_code == 204
    assert http.get(f"{url}/file").content == data


def test_image_survives_the_loss_of_a_device(http, swift_cluster, swift_setup, container, unique):
    data = os.urandom(2 * SEGMENT + 4321)
    image = http.post(
        "/v2/images",
        json={"name": f"swift-loss-{unique}", "disk_format": "raw", "container_format": "bare"},
    ).json()
    url = f"/v2/images/{image['id']}"
    assert http.put(f"{url}/file", content=data, headers=OCTET).status_code == 204
    lost = swift_cluster.devices[0]
    data_files = list(lost.rglob("*.data"))
    assert data_files, "three replicas on three devices: d1 must hold a copy"
    for child in lost.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    assert list(lost.rglob("*.data")) == []
    response = http.get(f"{url}/file")
    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(data).hexdigest()
    assert response.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    part = http.get(f"{url}/file", headers={"Range": f"bytes={SEGMENT}-{SEGMENT + 99}"})
    assert part.content == data[SEGMENT : SEGMENT + 100]

    # One pass of each replicator puts the lost copies back on d1 (through the
    # role's rsync modules), the account and container databases too, so the
    # cluster this session shares is whole again.
    for daemon in ("object-replicator", "container-replicator", "account-replicator"):
        swift_cluster.run_once(daemon, timeout=120)
    refilled = list(lost.rglob("*.data"))
    assert len(refilled) >= len(data_files), (len(refilled), len(data_files))


def test_crash_mid_commit_is_recovered(tmp_path, identity_server, swift_setup, container):
    """Segments sent before a crash, with no manifest yet, go when recovery runs."""
    from sqlalchemy import select

    from stratus.common import db as dbmod
    from stratus.image import recovery
    from stratus.image.model import Image

    dbmod.sync(dbmod.make_engine(f"sqlite:///{tmp_path / 'stratus.db'}"))
    svc = _service(
        tmp_path, identity_server, swift_store_container=container, swift_store_segment_size=SEGMENT
    )
    image_id = str(uuid.uuid4())
    with svc.db.session() as session:
        session.add(
            Image(
                id=image_id,
                status="saving",
                disk_format="raw",
                container_format="bare",
                owner="p",
                upload_host=svc.host,
            )
        )
    writer = svc.store.writer(image_id)
    writer.write(os.urandom(3 * SEGMENT))
    writer.flush()
    # What commit had sent when the process died: two segments, no manifest.
    for index in range(2):
        svc.store._put(
            f"{container}_segments/{image_id}/{index:08d}",
            writer.local_path,
            index * SEGMENT,
            SEGMENT,
        )
    assert len(swift_setup.listing(f"{container}_segments", prefix=f"{image_id}/")) == 2
    assert [p.name for _, p in svc.store.partials()] == [f"{image_id}.partial"]

    assert recovery.reconcile(svc)["requeued"] == 1
    with svc.db.session() as session:
        assert session.scalar(select(Image.status).where(Image.id == image_id)) == "queued"
    assert swift_setup.listing(f"{container}_segments", prefix=f"{image_id}/") == []
    assert svc.store.partials() == []
    writer.abort()


# --- configuration errors, against the real identity and Swift ---------------------------


def _service(tmp_path: Path, identity, **image: object) -> ImageService:
    options = {
        "filesystem_store_datadir": tmp_path / "images",
        "staging_dir": tmp_path / "staging",
        "store": "swift",
        **image,
    }
    database = tmp_path / "stratus.db"
    text = (
        f"[database]\nconnection = sqlite:///{database}\n\n[image]\n"
        + "".join(f"{k} = {v}\n" for k, v in options.items())
        + f"\n[image_authtoken]\nauth_url = {identity.url}\nusername = image\n"
        f"password = {IMAGE_SERVICE_PASSWORD}\n"
    )
    (tmp_path / "stratus.conf").write_text(text)
    return ImageService.from_config(Config(tmp_path / "stratus.conf"))


def test_wrong_swift_password_stops_the_service_naming_the_option(
    tmp_path, identity_server, swift_setup
):
    with pytest.raises(ConfigError, match=r"\[image\].*swift_store_password"):
        _service(tmp_path, identity_server, swift_store_password="not-the-password")


def test_swift_user_without_an_operator_role_is_told_to_get_one(
    tmp_path, identity_server, swift_setup, unique
):
    from tests.api.helpers import create_user

    create_user(identity_server, f"noswift-{unique}", password="pw-secret-1")
    project = _id_of(identity_server, "projects", "service")
    user = _id_of(identity_server, "users", f"noswift-{unique}")
    reader = role_id(identity_server, "reader")
    expect(request(identity_server, "PUT", f"/projects/{project}/users/{user}/roles/{reader}"), 204)
    with pytest.raises(ConfigError, match="member"):
        _service(
            tmp_path,
            identity_server,
            swift_store_user=f"noswift-{unique}",
            swift_store_password="pw-secret-1",
        )


def test_unusable_container_name_and_segment_size(tmp_path, identity_server, swift_setup):
    with pytest.raises(ConfigError, match="swift_store_container"):
        _service(tmp_path, identity_server, swift_store_container="a/b")
    with pytest.raises(ConfigError, match="swift_store_segment_size"):
        _service(tmp_path, identity_server, swift_store_segment_size=6 * 1024**3)
    with pytest.raises(ConfigError, match=r"\[image\] store"):
        _service(tmp_path, identity_server, store="ceph")


def test_unreachable_identity_is_reported(tmp_path, identity_server):
    from tests.conftest import free_port

    with pytest.raises(ConfigError, match="unreachable"):
        _service(
            tmp_path,
            identity_server,
            swift_store_auth_url=f"http://127.0.0.1:{free_port()}",
            swift_store_timeout=2,
        )


@pytest.mark.parametrize(
    "location", ["file:///x", "swift://", "swift://container", "swift:///object", "s3://a/b"]
)
def test_foreign_locations_are_refused(location):
    with pytest.raises(StoreError):
        parse_location(location)


def test_location_parts():
    assert parse_location("swift://c/0f0e-11") == ("c", "0f0e-11")
