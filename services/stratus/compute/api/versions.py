"""Version discovery: ``/`` lists the API versions, ``/v2.1`` describes v2.1
with the microversion range this service implements."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.compute.api import common

UPDATED = "2013-07-23T11:33:21Z"


def _v21(req: ApiRequest) -> dict[str, Any]:
    href = f"{common.base(req)}{common.API_PREFIX}/"
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": str(common.MAX_VERSION),
        "min_version": str(common.MIN_VERSION),
        "updated": UPDATED,
        "links": [{"rel": "self", "href": href}],
    }


@endpoint(public=True)
def root(req: ApiRequest) -> Response:
    return ok({"versions": [_v21(req)]})


@endpoint(public=True)
def v21(req: ApiRequest) -> Response:
    document = _v21(req)
    document["links"].append(
        {
            "rel": "describedby",
            "type": "text/html",
            "href": "https://docs.openstack.org/api-ref/compute/",
        }
    )
    document["media-types"] = [
        {"base": "application/json", "type": "application/vnd.openstack.compute+json;version=2.1"}
    ]
    return ok({"version": document})


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/v2.1", v21, methods=["GET"]),
    Route("/v2.1/", v21, methods=["GET"]),
]
