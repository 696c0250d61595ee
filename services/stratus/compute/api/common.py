"""What every compute handler uses: the service, microversions, policy, links.

Every request under ``/v2.1`` is answered at a microversion: the one the
client asked for with ``OpenStack-API-Version: compute X.Y`` (or Nova's
legacy ``X-OpenStack-Nova-API-Version``), else 2.1. ``MicroversionMiddleware``
negotiates it before any handler runs (406 above ``MAX_VERSION``, 400 when
malformed) and says on every response which version answered.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common import errors, policy
from stratus.common.app import ApiRequest, error_response
from stratus.common.auth import RequestContext
from stratus.common.microversion import Version, VersionRange
from stratus.common.urls import base_url
from stratus.compute.service import ComputeService

MIN_VERSION = Version(2, 1)
# The newest microversion whose every change is implemented (docs/compute.md).
MAX_VERSION = Version(2, 15)
VERSIONS = VersionRange(
    "compute", MIN_VERSION, MAX_VERSION, legacy_header="X-OpenStack-Nova-API-Version"
)
API_PREFIX = "/v2.1"
REQUEST_ID_HEADER = b"x-compute-request-id"


class MicroversionMiddleware:
    """Negotiate the microversion of each ``/v2.1`` request (see the module)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Nova names the request ID in x-compute-request-id as well as in
        # x-openstack-request-id; clients read it there to find the instance
        # action of a request.
        request_id = scope.get("state", {}).get("request_id", "")
        extra = [(REQUEST_ID_HEADER, request_id.encode())] if request_id else []
        path = scope.get("path", "")
        if path == API_PREFIX or path.startswith("/v2.1/"):
            try:
                version = VERSIONS.negotiate(Request(scope))
            except errors.ApiError as error:
                if request_id:
                    error.headers = {**error.headers, REQUEST_ID_HEADER.decode(): request_id}
                await error_response(error, errors.compute_format)(scope, receive, send)
                return
            scope.setdefault("state", {})["compute_version"] = version
            headers = VERSIONS.response_headers(version)
            extra += [(k.encode(), v.encode()) for k, v in headers.items()]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def service(req: ApiRequest) -> ComputeService:
    return req.app_state.compute  # type: ignore[no-any-return]


def version(req: ApiRequest) -> Version:
    """The microversion this request is answered at."""
    return getattr(req.request.state, "compute_version", MIN_VERSION)  # type: ignore[no-any-return]


def at_least(req: ApiRequest, major: int, minor: int) -> bool:
    return version(req) >= Version(major, minor)


def allowed(req: ApiRequest, rule: str, target: Mapping[str, Any] | None = None) -> bool:
    return policy.caller_allowed(service(req).enforcer, req, rule, target)


def enforce(req: ApiRequest, rule: str, target: Mapping[str, Any] | None = None) -> RequestContext:
    """The caller, after checking ``rule`` against ``target`` (403 otherwise)."""
    return policy.enforce_caller(service(req).enforcer, req, rule, target)  # type: ignore[no-any-return]


def is_admin(req: ApiRequest) -> bool:
    return allowed(req, "cloud_admin")


def body(req: ApiRequest, key: str) -> dict[str, Any]:
    """The object under ``key`` of the request body (400 otherwise)."""
    document = req.json()
    if not isinstance(document, dict) or not isinstance(document.get(key), dict):
        raise errors.BadRequest(f"The request body must be an object with the key '{key}'.")
    return document[key]  # type: ignore[no-any-return]


_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no")


def boolean(value: Any, name: str) -> bool:
    """A boolean attribute of a request body, as Nova's schemas take it:
    ``true`` or ``false``, or one of their spellings as strings (400 otherwise)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in (*_TRUE, *_FALSE):
        return value.lower() in _TRUE
    raise errors.BadRequest(
        f"Invalid input for field/attribute {name}. Value: {value!r}. It must be a boolean."
    )


def base(req: ApiRequest) -> str:
    return base_url(req.request, service(req).options.public_endpoint or None)


def links(req: ApiRequest, collection: str, ident: str) -> list[dict[str, str]]:
    """Nova's ``self`` (versioned) and ``bookmark`` (unversioned) links."""
    root = base(req)
    return [
        {"rel": "self", "href": f"{root}{API_PREFIX}/{collection}/{ident}"},
        {"rel": "bookmark", "href": f"{root}/{collection}/{ident}"},
    ]


def timestamp(moment: datetime | None) -> str | None:
    """Nova's ISO 8601 form of a time, in UTC."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") if moment else None


def query_int(req: ApiRequest, name: str, minimum: int = 0) -> int | None:
    raw = req.query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"Invalid input for query parameter {name}: {raw!r}.") from None
    if value < minimum:
        raise errors.BadRequest(f"Invalid input for query parameter {name}: below {minimum}.")
    return value


def reject_unknown(values: Mapping[str, Any], known: set[str], where: str) -> None:
    """400 for attributes the schema does not allow (Nova's additionalProperties)."""
    unknown = sorted(set(values) - known)
    if unknown:
        raise errors.BadRequest(
            f"Invalid input for field/attribute {where}. Value: {json.dumps(dict(values))}. "
            f"Additional properties are not allowed ({', '.join(repr(u) for u in unknown)} "
            f"{'was' if len(unknown) == 1 else 'were'} unexpected)"
        )
