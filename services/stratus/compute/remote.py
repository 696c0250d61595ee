"""The other services compute talks to: image and network, over their APIs.

``Neighbours`` calls them either as the user (their token, so that the user
only reaches the images, networks and ports they may see: what a request is
checked against) or as compute's own service user (``ServiceLogin``: to make
and bind ports for a project, in the scheduler). Endpoints come from the
token's catalog, ``internal`` first and then ``public``.

Failures are ``errors.ApiError``: 404 from a neighbour stays a
``NotFound`` for the caller to word; anything else unexpected becomes 503,
since the server cannot be built or checked while a neighbour is down.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import httpx

from stratus.common import errors
from stratus.common.auth import ServiceLogin, catalog_url
from stratus.common.service_client import error_message

INTERFACES = ("internal", "public")


def endpoint(token_body: Mapping[str, Any], service_type: str) -> str:
    for interface in INTERFACES:
        url = catalog_url(token_body, service_type, interface)
        if url:
            return url
    raise errors.ServiceUnavailable(f"The catalog has no {service_type} endpoint.")


class Neighbour:
    """One service's API, reached with one token."""

    def __init__(self, http: httpx.Client, base: str, token: str, what: str):
        self.http = http
        self.base = base.rstrip("/")
        self.token = token
        self.what = what

    def call(self, method: str, path: str, json: Any = None, **params: Any) -> Any:
        try:
            response = self.http.request(
                method,
                f"{self.base}{path}",
                json=json,
                params={k: v for k, v in params.items() if v is not None} or None,
                headers={"X-Auth-Token": self.token},
            )
        except httpx.HTTPError as exc:
            raise errors.ServiceUnavailable(
                f"The {self.what} service is unreachable: {exc}"
            ) from None
        if response.status_code == 404:
            raise errors.NotFound(f"{self.what} {path} not found")
        if response.status_code == 409:
            raise errors.Conflict(error_message(response))
        if response.status_code == 413:  # a quota of theirs: Nova answers 403
            raise errors.Forbidden(error_message(response))
        if response.status_code in (400, 403):
            error = errors.BadRequest(error_message(response))
            error.status = response.status_code
            raise error
        if response.status_code >= 300:
            raise errors.ServiceUnavailable(
                f"The {self.what} service answered {response.status_code} to {method} {path}."
            )
        return response.json() if response.content else None


class Neighbours:
    """The image and network APIs as one caller (a user or the service)."""

    def __init__(self, http: httpx.Client, token: str, token_body: Mapping[str, Any]):
        self.image = Neighbour(http, endpoint(token_body, "image"), token, "image")
        self.network = Neighbour(http, endpoint(token_body, "network"), token, "network")

    @classmethod
    def as_service(cls, http: httpx.Client, login: ServiceLogin) -> Neighbours:
        token, body = login.token()
        return cls(http, token, body)

    # --- image ---------------------------------------------------------------

    def get_image(self, image_id: str) -> dict[str, Any]:
        return self.image.call("GET", f"/v2/images/{image_id}")  # type: ignore[no-any-return]

    def create_image(self, values: dict[str, Any]) -> dict[str, Any]:
        return self.image.call("POST", "/v2/images", json=values)  # type: ignore[no-any-return]

    def delete_image(self, image_id: str) -> None:
        with contextlib.suppress(errors.NotFound):
            self.image.call("DELETE", f"/v2/images/{image_id}")

    def image_url(self, image_id: str) -> str:
        """Where the image is, as Nova's ``Location`` of a snapshot says it."""
        return f"{self.image.base}/v2/images/{image_id}"

    # --- network -------------------------------------------------------------

    def get_network(self, network_id: str) -> dict[str, Any]:
        return self.network.call("GET", f"/v2.0/networks/{network_id}")["network"]  # type: ignore[no-any-return]

    def list_networks(self, **filters: Any) -> list[dict[str, Any]]:
        return self.network.call("GET", "/v2.0/networks", **filters)["networks"]  # type: ignore[no-any-return]

    def get_port(self, port_id: str) -> dict[str, Any]:
        return self.network.call("GET", f"/v2.0/ports/{port_id}")["port"]  # type: ignore[no-any-return]

    def list_ports(self, **filters: Any) -> list[dict[str, Any]]:
        return self.network.call("GET", "/v2.0/ports", **filters)["ports"]  # type: ignore[no-any-return]

    def create_port(self, values: dict[str, Any]) -> dict[str, Any]:
        return self.network.call("POST", "/v2.0/ports", json={"port": values})["port"]  # type: ignore[no-any-return]

    def update_port(self, port_id: str, values: dict[str, Any]) -> dict[str, Any]:
        answer = self.network.call("PUT", f"/v2.0/ports/{port_id}", json={"port": values})
        return answer["port"]  # type: ignore[no-any-return]

    def delete_port(self, port_id: str) -> None:
        with contextlib.suppress(errors.NotFound):  # already gone: what we wanted
            self.network.call("DELETE", f"/v2.0/ports/{port_id}")

    def list_security_groups(self, **filters: Any) -> list[dict[str, Any]]:
        answer = self.network.call("GET", "/v2.0/security-groups", **filters)
        return answer["security_groups"]  # type: ignore[no-any-return]

    def list_subnets(self, **filters: Any) -> list[dict[str, Any]]:
        return self.network.call("GET", "/v2.0/subnets", **filters)["subnets"]  # type: ignore[no-any-return]

    def list_floating_ips(self, **filters: Any) -> list[dict[str, Any]]:
        return self.network.call("GET", "/v2.0/floatingips", **filters)["floatingips"]  # type: ignore[no-any-return]
