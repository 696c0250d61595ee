"""API errors: one exception type per status, rendered in the service's style.

Handlers and the data layer raise these; the application turns them into an
OpenStack-style JSON body with the right status code in exactly one place
(``stratus.common.app``). Each service chooses its body shape with an
``ErrorFormat`` because OpenStack services differ: identity answers
``{"error": {"code", "title", "message"}}``, compute ``{"itemNotFound": ...}``,
networking ``{"NeutronError": ...}``.
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

ErrorFormat = Callable[["ApiError"], dict[str, Any]]


class ApiError(Exception):
    """An error with an HTTP status, safe to show to the client."""

    status = 500
    headers: dict[str, str]

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ):
        self.message = message or self.default_message()
        self.headers = headers or {}
        # A name for the error's cause, where the API reports one (Neutron's
        # ``type``: NetworkNotFound, IpAddressInUse, ...).
        self.kind = kind
        super().__init__(self.message)

    @property
    def title(self) -> str:
        return HTTPStatus(self.status).phrase

    def default_message(self) -> str:
        return HTTPStatus(self.status).description or HTTPStatus(self.status).phrase


class BadRequest(ApiError):
    status = 400


class Unauthorized(ApiError):
    status = 401

    def default_message(self) -> str:
        return "The request you have made requires authentication."


class Forbidden(ApiError):
    status = 403

    def default_message(self) -> str:
        return "You are not authorized to perform the requested action."


class NotFound(ApiError):
    status = 404

    def default_message(self) -> str:
        return "The resource could not be found."


class MethodNotAllowed(ApiError):
    status = 405


class NotAcceptable(ApiError):
    status = 406


class Conflict(ApiError):
    status = 409


class Gone(ApiError):
    status = 410


class RequestEntityTooLarge(ApiError):
    status = 413

    def default_message(self) -> str:
        return "The request body is larger than the server accepts."


class UnsupportedMediaType(ApiError):
    status = 415


class TooManyRequests(ApiError):
    status = 429


class InternalError(ApiError):
    status = 500

    def default_message(self) -> str:
        return "An unexpected error prevented the server from fulfilling your request."


class ServiceUnavailable(ApiError):
    status = 503


_BY_STATUS = {cls.status: cls for cls in ApiError.__subclasses__()}


def for_status(status: int, message: str | None = None) -> ApiError:
    """The ApiError matching an HTTP status (used for framework errors)."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        error = ApiError(message or HTTPStatus(status).phrase)
        error.status = status
        return error
    return cls(message)


def keystone_format(error: ApiError) -> dict[str, Any]:
    """Identity's error body, as keystoneauth and Tempest parse it."""
    return {"error": {"code": error.status, "title": error.title, "message": error.message}}


_NOVA_NAMES = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    429: "overLimit",
    503: "serviceUnavailable",
}


def compute_format(error: ApiError) -> dict[str, Any]:
    """Nova's style: ``{"itemNotFound": {"code": 404, "message": ...}}``."""
    name = _NOVA_NAMES.get(error.status, "computeFault")
    return {name: {"code": error.status, "message": error.message}}


_NEUTRON_KINDS = {
    400: "BadRequest",
    401: "HTTPUnauthorized",
    403: "PolicyNotAuthorized",
    404: "HTTPNotFound",
    405: "HTTPMethodNotAllowed",
    409: "Conflict",
    413: "RequestEntityTooLarge",
    415: "HTTPUnsupportedMediaType",
    503: "ServiceUnavailable",
}


def neutron_format(error: ApiError) -> dict[str, Any]:
    """Networking's style: ``{"NeutronError": {"type", "message", "detail"}}``."""
    kind = error.kind or _NEUTRON_KINDS.get(error.status, "NeutronException")
    return {"NeutronError": {"type": kind, "message": error.message, "detail": ""}}
