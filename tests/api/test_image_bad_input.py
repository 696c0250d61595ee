"""Every image route meets bad input with a clear OpenStack error, never a 500.

The routes are read from the application, so routes added later are covered
too: no token or a garbage token (401), unknown image IDs (404), malformed
bodies (400/415) and oversized JSON bodies (413), each with the
``{"error": {...}}`` body.
"""

from __future__ import annotations

import re

import httpx
import pytest

from stratus.image.api import ROUTES
from tests.api.helpers import admin_token, assert_error, auth_headers, fill_path, route_cases

PUBLIC = {("/", "GET"), ("/versions", "GET")}
BODY_METHODS = {"POST", "PUT", "PATCH"}
UNKNOWN = "00000000-0000-0000-0000-000000000000"
DATA_ROUTES = {"/v2/images/{image_id}/file", "/v2/images/{image_id}/stage"}


def cases():
    return route_cases(ROUTES)


def fill(path: str) -> str:
    return fill_path(path, UNKNOWN)


@pytest.fixture(scope="module")
def admin(identity_server):
    return auth_headers(admin_token(identity_server))


@pytest.fixture(scope="module")
def client(image_server):
    with httpx.Client(base_url=image_server.url, timeout=30) as c:
        yield c


@pytest.mark.parametrize(("path", "method"), [c for c in cases() if tuple(c.values) not in PUBLIC])
def test_without_a_token(client, path, method):
    assert_error(client.request(method, fill(path)), 401)
    assert_error(client.request(method, fill(path), headers={"X-Auth-Token": "garbage"}), 401)


@pytest.mark.parametrize(("path", "method"), [c for c in cases() if "{image_id}" in c.values[0]])
def test_unknown_images(client, admin, path, method):
    headers = dict(admin)
    if path in DATA_ROUTES:
        headers["Content-Type"] = "application/octet-stream"
    elif method == "PATCH":
        headers["Content-Type"] = "application/openstack-images-v2.1-json-patch"
    body = None
    if method in BODY_METHODS:
        body = b"x" if path in DATA_ROUTES else b"[]" if method == "PATCH" else b"{}"
    response = client.request(method, fill(path), headers=headers, content=body)
    allowed = (400, 404) if method in BODY_METHODS and path not in DATA_ROUTES else (404,)
    assert_error(response, *allowed)


JSON_ROUTES = [c for c in cases() if c.values[1] in BODY_METHODS and c.values[0] not in DATA_ROUTES]


@pytest.mark.parametrize(("path", "method"), JSON_ROUTES)
@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"x": 1}', b'"string"', b"null"])
def test_malformed_bodies(client, admin, image_server, path, method, body):
    # Against a real image, so the body is what gets refused.
    created = client.post(
        "/v2/images", headers=admin, json={"disk_format": "raw", "container_format": "bare"}
    ).json()
    target = re.sub(r"\{image_id\}", created["id"], path)
    target = re.sub(r"\{[^}]+\}", "someone", target)
    media = (
        "application/openstack-images-v2.1-json-patch" if method == "PATCH" else "application/json"
    )
    response = client.request(
        method, target, content=body, headers={**admin, "Content-Type": media}
    )
    if (
        path.endswith("/tags/{tag}")
        or path.endswith("/actions/deactivate")
        or path.endswith("/actions/reactivate")
    ):
        # These take no body; ignoring one is right.
        assert response.status_code < 500
    elif method == "PATCH" and body == b"[]":
        assert response.status_code == 200  # an empty patch changes nothing
    else:
        assert_error(response, 400, 403, 404, 409)
    client.delete(f"/v2/images/{created['id']}", headers=admin)


@pytest.mark.parametrize(("path", "method"), JSON_ROUTES)
def test_oversized_json(client, admin, path, method):
    body = b'{"pad": "' + b"x" * (100 * 1024) + b'"}'
    response = client.request(
        method, fill(path), content=body, headers={**admin, "Content-Type": "application/json"}
    )
    assert_error(response, 413)


def test_wrong_media_types(client, admin):
    created = client.post(
        "/v2/images", headers=admin, json={"disk_format": "raw", "container_format": "bare"}
    ).json()
    url = f"/v2/images/{created['id']}"
    assert_error(
        client.post("/v2/images", headers={**admin, "Content-Type": "text/plain"}, content=b"{}"),
        415,
    )
    assert_error(
        client.put(
            f"{url}/file", headers={**admin, "Content-Type": "application/json"}, content=b"{}"
        ),
        415,
    )
    assert_error(
        client.patch(url, headers={**admin, "Content-Type": "application/json"}, content=b"[]"), 415
    )


def test_unknown_route_and_method(client, admin):
    assert_error(client.get("/v2/nothing", headers=admin), 404)
    assert_error(client.put("/versions"), 405)
