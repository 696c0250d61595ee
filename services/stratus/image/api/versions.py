"""Version discovery: ``/`` (300 Multiple Choices) and ``/versions`` (200).

Glance's minor versions mark features, not request-by-request behaviour;
this lists those whose features the service implements, the newest CURRENT:
2.6 interoperable import, 2.7 hidden images and the multihash.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.common.urls import base_url
from stratus.image.api import common

VERSIONS = ("2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0")


def _document(req: ApiRequest) -> dict[str, Any]:
    public = common.service(req).options.public_endpoint or None
    href = f"{base_url(req.request, public)}/v2/"
    return {
        "versions": [
            {
                "id": f"v{version}",
                "status": "CURRENT" if i == 0 else "SUPPORTED",
                "links": [{"rel": "self", "href": href}],
            }
            for i, version in enumerate(VERSIONS)
        ]
    }


@endpoint(public=True)
def root(req: ApiRequest) -> Response:
    return ok(_document(req), 300)


@endpoint(public=True)
def versions(req: ApiRequest) -> Response:
    return ok(_document(req))


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/versions", versions, methods=["GET"]),
]
