"""Version discovery at ``/`` (all versions, 300) and ``/v3`` (this one)."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stratus.common.app import ApiRequest, endpoint
from stratus.identity.api import common

VERSION_ID = "v3.14"
UPDATED = "2020-04-07T00:00:00Z"


def version(req: ApiRequest) -> dict[str, Any]:
    return {
        "id": VERSION_ID,
        "status": "stable",
        "updated": UPDATED,
        "links": [{"rel": "self", "href": common.url(req, "/v3/")}],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.identity-v3+json",
            }
        ],
    }


@endpoint(public=True)
def root(req: ApiRequest) -> Response:
    return common.ok(
        {"versions": {"values": [version(req)]}}, 300, {"Location": common.url(req, "/v3/")}
    )


@endpoint(public=True)
def v3(req: ApiRequest) -> Response:
    return common.ok({"version": version(req)})


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/v3", v3, methods=["GET"]),
    Route("/v3/", v3, methods=["GET"]),
]
