"""The common application shell: request IDs, errors, limits, links."""

from __future__ import annotations

import pytest
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from stratus.common import errors
from stratus.common.app import ApiRequest, build_app, endpoint
from stratus.common.pagination import collection_links, page_params
from stratus.common.urls import base_url

ITEMS = [{"id": f"{i:03d}"} for i in range(10)]


@endpoint(public=True)
def ok(req: ApiRequest):
    return JSONResponse({"ok": True})


@endpoint(public=True)
def boom(req: ApiRequest):
    raise RuntimeError("secret internals")


@endpoint(public=True)
def echo(req: ApiRequest):
    return JSONResponse({"got": req.json()})


@endpoint(public=True)
def conflict(req: ApiRequest):
    raise errors.Conflict("already there")


@endpoint(public=True)
def items(req: ApiRequest):
    page = page_params(req.request, max_limit=100)
    rows = [i for i in ITEMS if page.marker is None or i["id"] > page.marker][: page.limit]
    return JSONResponse({"items": rows, **collection_links(req.request, "items", rows, page)})


@endpoint(public=True)
def where(req: ApiRequest):
    return JSONResponse({"base": base_url(req.request)})


APP = build_app(
    [
        Route("/ok", ok),
        Route("/boom", boom),
        Route("/echo", echo, methods=["POST"]),
        Route("/conflict", conflict),
        Route("/items", items),
        Route("/where", where),
    ],
    error_format=errors.compute_format,
    max_body=1024,
)


@pytest.fixture
def client():
    return TestClient(APP, raise_server_exceptions=False)


def test_every_response_has_a_request_id(client):
    ids = set()
    for path in ("/ok", "/missing", "/boom", "/conflict"):
        response = client.get(path)
        ids.add(response.headers["x-openstack-request-id"])
    assert len(ids) == 4 and all(i.startswith("req-") for i in ids)


def test_framework_errors_use_the_service_format(client):
    missing = client.get("/missing")
    assert missing.status_code == 404
    assert missing.json()["itemNotFound"]["code"] == 404
    wrong_method = client.delete("/ok")
    assert wrong_method.status_code == 405
    assert "DELETE" in wrong_method.json()["badMethod"]["message"]
    assert client.get("/conflict").json() == {
        "conflictingRequest": {"code": 409, "message": "already there"}
    }


def test_unexpected_errors_are_500_without_internals(client):
    response = client.get("/boom")
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert response.json()["computeFault"]["code"] == 500


def test_body_limits(client):
    assert client.post("/echo", json={"a": "x" * 100}).json() == {"got": {"a": "x" * 100}}
    too_big = client.post(
        "/echo",
        content=b'{"a": "' + b"x" * 2000 + b'"}',
        headers={"content-type": "application/json"},
    )
    assert too_big.status_code == 413
    assert too_big.json()["overLimit"]["code"] == 413

    def chunks():
        for _ in range(10):
            yield b"x" * 200

    streamed = client.post("/echo", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413


@pytest.mark.parametrize(
    ("body", "ctype", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
        (b"<xml/>", "application/xml", 415),
    ],
)
def test_bad_bodies(client, body, ctype, status):
    response = client.post("/echo", content=body, headers={"content-type": ctype})
    assert response.status_code == status


def test_pagination_links(client):
    first = client.get("/items?limit=4").json()
    assert [i["id"] for i in first["items"]] == ["000", "001", "002", "003"]
    next_href = first["items_links"][0]["href"]
    assert "marker=003" in next_href and "limit=4" in next_href
    second = client.get(next_href.replace("http://testserver", "")).json()
    assert second["items"][0]["id"] == "004"
    last = client.get("/items?limit=4&marker=007").json()
    assert "items_links" not in last
    assert client.get("/items?limit=-1").status_code == 400
    assert client.get("/items?limit=abc").status_code == 400


def test_links_behind_a_proxy(client):
    plain = client.get("/where").json()["base"]
    assert plain == "http://testserver"
    proxied = client.get(
        "/where",
        headers={
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "cloud.example.net",
            "X-Forwarded-Prefix": "/identity",
        },
    ).json()["base"]
    assert proxied == "https://cloud.example.net/identity"
    forwarded = client.get(
        "/where", headers={"Forwarded": 'for=1.2.3.4;proto=https;host="api.example.net"'}
    ).json()["base"]
    assert forwarded == "https://api.example.net"
