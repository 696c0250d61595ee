"""The metadata HTTP service: who it trusts, what it answers, in what shape.

The real ASGI application (``stratus.metadata.app.create_app``) in process,
with the sample instances behind its lookup; requests are signed with the
network agent's own ``sign``, as its proxy signs them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from stratus.metadata.app import create_app
from stratus.metadata.content import InstanceMetadata
from stratus.metadata.service import MetadataService
from stratus.network.agent.metadata import sign
from tests import metadata_sample
from tests.metadata_sample import BARE, INSTANCE, KEY, PROJECT, SECRET, USER_DATA


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(metadata_sample.lookup, SECRET)) as client:
        yield client


def signed(instance_id: str = INSTANCE.uuid, project_id: str = PROJECT) -> dict[str, str]:
    return {
        "X-Instance-ID": instance_id,
        "X-Tenant-ID": project_id,
        "X-Instance-ID-Signature": sign(SECRET, instance_id),
        "X-Forwarded-For": "10.0.0.5",
    }


def test_the_ec2_versions_are_public(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/plain"
    assert response.text.split("\n")[0] == "1.0" and response.text.endswith("2009-04-04\nlatest")
    assert response.headers["x-openstack-request-id"].startswith("req-")


@pytest.mark.parametrize(
    ("drop", "status", "message"),
    [
        ("X-Instance-ID", 400, "X-Instance-ID header is missing from request."),
        ("X-Tenant-ID", 400, "X-Tenant-ID header is missing from request."),
        ("X-Instance-ID-Signature", 403, "X-Instance-ID-Signature header is missing from request."),
    ],
)
def test_missing_headers(client: TestClient, drop: str, status: int, message: str) -> None:
    headers = {k: v for k, v in signed().items() if k != drop}
    response = client.get("/openstack/latest/meta_data.json", headers=headers)
    assert response.status_code == status
    assert response.headers["content-type"] == "text/plain"
    phrase = "Bad Request" if status == 400 else "Forbidden"
    assert response.text == f"{status} {phrase}\n\n{message}\n"


@pytest.mark.parametrize(
    "signature",
    [
        "0" * 64,
        sign(SECRET, BARE.uuid),  # another instance's
        sign("another secret", INSTANCE.uuid),
        sign(SECRET, INSTANCE.uuid).upper(),
        "é".encode("latin-1"),  # not even ASCII
    ],
)
def test_a_wrong_signature_is_forbidden(client: TestClient, signature: str | bytes) -> None:
    headers: dict[str, str | bytes] = {**signed(), "X-Instance-ID-Signature": signature}
    response = client.get("/openstack/latest/user_data", headers=headers)
    assert response.status_code == 403
    assert response.text == "403 Forbidden\n\nInvalid proxy request signature.\n"


def test_repeated_identity_headers_are_refused(client: TestClient) -> None:
    headers = [(k, v) for k, v in signed().items()] + [("X-Instance-ID", BARE.uuid)]
    response = client.get("/openstack/latest/meta_data.json", headers=headers)
    assert response.status_code == 400
    assert "Multiple X-Instance-ID headers" in response.text


def test_unknown_instance_and_other_project_are_not_found(client: TestClient) -> None:
    for headers in (signed("00000000-0000-4000-8000-000000000000"), signed(project_id="other")):
        response = client.get("/openstack/latest/meta_data.json", headers=headers)
        assert response.status_code == 404
        assert response.text.startswith("404 Not Found\n\n")


def test_openstack_tree(client: TestClient) -> None:
    versions = client.get("/openstack", headers=signed())
    assert versions.text.split("\n")[-3:] == ["2020-10-14", "2025-04-04", "latest"]
    assert client.get("/openstack/", headers=signed()).text == versions.text
    listing = client.get("/openstack/latest/", headers=signed())
    assert listing.text == (
        "meta_data.json\nuser_data\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
    )
    meta = client.get("/openstack/latest/meta_data.json", headers=signed())
    assert meta.headers["content-type"] == "application/json"
    doc = meta.json()
    assert doc["uuid"] == INSTANCE.uuid and doc["public_keys"] == {"mykey": KEY}
    # Fresh entropy with every answer, as Nova.
    again = client.get("/openstack/latest/meta_data.json", headers=signed()).json()
    assert len(doc["random_seed"]) == len(again["random_seed"]) == 684
    assert doc["random_seed"] != again["random_seed"]
    network = client.get("/openstack/2018-08-27/network_data.json", headers=signed())
    assert [link["ethernet_mac_address"] for link in network.json()["links"]] == [
        "fa:16:3e:00:00:05",
        "fa:16:3e:00:00:06",
    ]
    user = client.get("/openstack/latest/user_data", headers=signed())
    assert user.content == USER_DATA and user.headers["content-type"] == "text/plain"
    vendor2 = client.get("/openstack/latest/vendor_data2.json", headers=signed())
    assert vendor2.json() == {"static": dict(INSTANCE.vendor_data)}


@pytest.mark.parametrize(
    "path",
    [
        "/openstack/latest/password",
        "/openstack/2012-08-10/network_data.json",
        "/openstack/2099-01-01/meta_data.json",
        "/latest/meta-data/nothing",
        "/nothing",
    ],
)
def test_paths_that_do_not_exist(client: TestClient, path: str) -> None:
    assert client.get(path, headers=signed()).status_code == 404


def test_no_user_data_is_404(client: TestClient) -> None:
    headers = signed(BARE.uuid)
    assert client.get("/openstack/latest/user_data", headers=headers).status_code == 404
    assert client.get("/latest/user-data", headers=headers).status_code == 404
    assert client.get("/latest", headers=headers).text == "meta-data/"


def test_ec2_tree(client: TestClient) -> None:
    listing = client.get("/latest/meta-data/", headers=signed()).text.split("\n")
    assert "public-keys/" in listing and "instance-id" in listing and "placement/" in listing
    assert client.get("/latest/meta-data/public-keys/", headers=signed()).text == "0=mykey"
    key = client.get("/2009-04-04/meta-data/public-keys/0/openssh-key", headers=signed())
    assert key.text == KEY
    instance_id = client.get("/ec2/latest/meta-data/instance-id", headers=signed()).text
    assert instance_id == f"i-{INSTANCE.uuid[:8]}"
    assert client.get("/latest/user-data", headers=signed()).content == USER_DATA
    # Nova normalises the path: dot segments and doubled slashes.
    again = client.get("/openstack/../latest//meta-data/instance-id", headers=signed())
    assert again.text == instance_id


def test_head_and_other_methods(client: TestClient) -> None:
    head = client.head("/openstack/latest/user_data", headers=signed())
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == str(len(USER_DATA))
    post = client.post("/openstack/latest/password", headers=signed(), content=b"secret")
    assert post.status_code == 405 and post.headers["allow"] == "GET, HEAD"
    assert post.text.startswith("405 Method Not Allowed\n\n")


def test_a_failing_lookup_is_a_plain_500() -> None:
    def broken(instance_id: str, project_id: str) -> InstanceMetadata | None:
        raise RuntimeError("database gone")

    with TestClient(create_app(broken, SECRET), raise_server_exceptions=False) as client:
        response = client.get("/openstack/latest/meta_data.json", headers=signed())
    assert response.status_code == 500
    assert response.text == (
        "500 Internal Server Error\n\n"
        "An unknown error has occurred. Please try your request again.\n"
    )
    assert "database gone" not in response.text


def test_the_proxy_and_the_service_sign_alike() -> None:
    service = MetadataService(metadata_sample.lookup, SECRET)
    assert service.sign(INSTANCE.uuid) == sign(SECRET, INSTANCE.uuid)
    with pytest.raises(ValueError, match="shared secret"):
        MetadataService(metadata_sample.lookup, "")


def test_documents_are_json(client: TestClient) -> None:
    for name in ("meta_data.json", "network_data.json", "vendor_data.json", "vendor_data2.json"):
        response = client.get(f"/openstack/latest/{name}", headers=signed())
        assert response.headers["content-type"] == "application/json"
        json.loads(response.content)
