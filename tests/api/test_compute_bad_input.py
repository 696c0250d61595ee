"""Every compute route meets bad input with a Nova-style error, never a 500.

The routes are read from the application, so routes added later are
covered too: no token or a garbage token (401), unknown IDs (404, or 400
where the body is checked first), malformed bodies (400, or 403/404/409)
and oversized bodies (413), each with Nova's ``{"<kind>": {"code",
"message"}}`` body.
"""

from __future__ import annotations

import httpx
import pytest

from stratus.compute.api import ROUTES
from tests.api.compute_helpers import compute_error
from tests.api.helpers import admin_token, auth_headers, fill_path, route_cases

PUBLIC = {("/", "GET"), ("/v2.1", "GET"), ("/v2.1/", "GET")}
BODY_METHODS = {"POST", "PUT"}
UNKNOWN = "00000000-0000-0000-0000-000000000000"
CASES = [c for c in route_cases(ROUTES) if tuple(c.values) not in PUBLIC]
BODY_CASES = [c for c in CASES if c.values[1] in BODY_METHODS]


@pytest.fixture(scope="module")
def admin(identity_server):
    return auth_headers(admin_token(identity_server))


@pytest.fixture(scope="module")
def client(compute_server):
    with httpx.Client(base_url=compute_server.url, timeout=30) as c:
        yield c


@pytest.mark.parametrize(("path", "method"), CASES)
def test_without_a_token(client, path, method):
    compute_error(client.request(method, fill_path(path, UNKNOWN)), 401)
    garbage = {"X-Auth-Token": "garbage"}
    compute_error(client.request(method, fill_path(path, UNKNOWN), headers=garbage), 401)


@pytest.mark.parametrize(
    ("path", "method"), [c for c in CASES if "{" in c.values[0] and "project_id" not in c.values[0]]
)
def test_unknown_ids(client, admin, path, method):
    body = b"{}" if method in BODY_METHODS else None
    headers = {**admin, "Content-Type": "application/json"}
    response = client.request(method, fill_path(path, UNKNOWN), content=body, headers=headers)
    compute_error(response, *((400, 404) if body else (404,)))


@pytest.mark.parametrize(("path", "method"), BODY_CASES)
@pytest.mark.parametrize("body", [b"{not json", b"[]", b'{"x": 1}', b'"string"', b"null", b""])
def test_malformed_bodies(client, admin, path, method, body):
    response = client.request(
        method,
        fill_path(path, UNKNOWN),
        content=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    compute_error(response, 400, 404)


@pytest.mark.parametrize(("path", "method"), BODY_CASES)
def test_oversized_bodies(client, admin, path, method):
    body = b'{"pad": "' + b"x" * (1100 * 1024) + b'"}'
    response = client.request(
        method,
        fill_path(path, UNKNOWN),
        content=body,
        headers={**admin, "Content-Type": "application/json"},
    )
    compute_error(response, 413)


@pytest.mark.parametrize(
    "body",
    [
        {"createImage": None},
        {"createImage": []},
        {"createImage": {"name": 5}},
        {"rebuild": "x"},
        {"rebuild": {"imageRef": 5}},
        {"resize": {"flavorRef": None}},
        {"resize": []},
        {"confirmResize": {"x": 1}},
        {"revertResize": [1]},
    ],
    ids=lambda body: next(iter(body)),
)
def test_server_actions_with_bad_arguments(client, admin, body):
    """The actions of server_lifecycle on a server that does not exist:
    their arguments are checked first (400) or the server is missed (404)."""
    response = client.post(f"/v2.1/servers/{UNKNOWN}/action", json=body, headers=admin)
    compute_error(response, 400, 404)


def test_wrong_media_type(client, admin):
    response = client.post(
        "/v2.1/flavors", content=b"{}", headers={**admin, "Content-Type": "text/plain"}
    )
    compute_error(response, 415)
