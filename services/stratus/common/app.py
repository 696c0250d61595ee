"""The ASGI application every Stratus service is built from.

``build_app`` wraps a service's routes with what every OpenStack API owes its
clients: a request ID on every response (``x-openstack-request-id``), a
structured access log, a cap on request body size (413), and errors rendered
as the service's OpenStack-style JSON — including the framework's own 404 and
405 and anything unexpected, which becomes a 500 without a traceback in the
body (the traceback goes to the log, under the request ID).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.common import errors
from stratus.common.logs import request_id_var

LOG = logging.getLogger("stratus.api")
ACCESS_LOG = logging.getLogger("stratus.access")

REQUEST_ID_HEADER = "x-openstack-request-id"

# (method, path) -> the body cap of that route, or None for the service's
# ``max_body``; routes that stream data (image uploads) have their own cap.
BodyLimit = Callable[[str, str], int | None]


def error_response(error: errors.ApiError, error_format: errors.ErrorFormat) -> JSONResponse:
    return JSONResponse(error_format(error), status_code=error.status, headers=error.headers)


class RequestContextMiddleware:
    """Request ID, body size limit and access log, as plain ASGI (no buffering)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        error_format: errors.ErrorFormat,
        body_limit: BodyLimit | None = None,
    ):
        self.app = app
        self.max_body = max_body
        self.error_format = error_format
        self.body_limit = body_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = f"req-{uuid.uuid4()}"
        token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.monotonic()
        status_holder: dict[str, int] = {"status": 0}
        header = (REQUEST_ID_HEADER.encode(), request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
                status_holder["status"] = message["status"]
            await send(message)

        try:
            limit = self.max_body
            if self.body_limit is not None:
                limit = self.body_limit(scope.get("method", ""), scope.get("path", "")) or limit
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                response = error_response(errors.RequestEntityTooLarge(), self.error_format)
                await response(scope, receive, send_with_id)
                return
            await self.app(scope, self._limited(receive, limit), send_with_id)
        finally:
            elapsed = time.monotonic() - started
            ACCESS_LOG.info(
                "%s %s %s %.3f",
                scope.get("method"),
                scope.get("path"),
                status_holder["status"],
                elapsed,
                extra={
                    "method": scope.get("method"),
                    "path": scope.get("path"),
                    "status": status_holder["status"],
                    "duration": round(elapsed, 6),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            request_id_var.reset(token)

    def _limited(self, receive: Receive, limit: int) -> Receive:
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Raised inside the application, so its error handler
                    # answers 413 in the service's own format.
                    raise errors.RequestEntityTooLarge()
            return message

        return limited_receive


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def build_app(
    routes: Sequence[BaseRoute],
    *,
    error_format: errors.ErrorFormat,
    max_body: int = 112 * 1024,
    lifespan: Callable[[Starlette], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    state: dict[str, Any] | None = None,
    body_limit: BodyLimit | None = None,
    redirect_slashes: bool = True,
    wrap: Callable[[ASGIApp], ASGIApp] | None = None,
) -> ASGIApp:
    """A service's ASGI application with the common conventions applied.

    ``redirect_slashes=False`` answers 404 for a path with a trailing slash
    that is only a route without it, instead of redirecting there. ``wrap``
    puts a middleware of the service's own (microversions) around the
    routes, inside the request ID and body limit.
    """

    async def api_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, errors.ApiError)
        return error_response(exc, error_format)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        error = errors.for_status(exc.status_code)
        if exc.status_code == 405:
            error.message = f"The method {request.method} is not supported for this resource."
        elif exc.status_code == 404:
            error.message = f"The resource {request.url.path} could not be found."
        if exc.headers:
            error.headers = dict(exc.headers)
        return error_response(error, error_format)

    async def unexpected(request: Request, exc: Exception) -> Response:
        LOG.exception("unhandled error in %s %s", request.method, request.url.path)
        return error_response(errors.InternalError(), error_format)

    app = Starlette(
        routes=list(routes),
        exception_handlers={
            errors.ApiError: api_error,
            HTTPException: http_error,
            Exception: unexpected,
        },
        lifespan=lifespan,
    )
    app.router.redirect_slashes = redirect_slashes
    for key, value in (state or {}).items():
        setattr(app.state, key, value)
    return RequestContextMiddleware(
        wrap(app) if wrap else app,
        max_body=max_body,
        error_format=error_format,
        body_limit=body_limit,
    )


class ApiRequest:
    """What a synchronous handler gets: the request, its body and its caller."""

    def __init__(self, request: Request, body: bytes):
        self.request = request
        self.raw_body = body
        self.path_params: dict[str, Any] = request.path_params
        self.query = request.query_params
        self.headers = request.headers
        self.method = request.method

    @property
    def app_state(self) -> Any:
        return self.request.app.state

    @property
    def context(self) -> Any:
        from stratus.common.auth import context_of

        return context_of(self.request)

    def json(self) -> Any:
        if not self.raw_body:
            raise errors.BadRequest("The request body is empty; a JSON document is required.")
        media = self.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media and media != "application/json" and not media.endswith("+json"):
            raise errors.UnsupportedMediaType(
                f"Content type {media!r} is not supported; send application/json."
            )
        try:
            return json.loads(self.raw_body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.BadRequest(f"The request body is not valid JSON: {exc}") from exc


def endpoint(
    handler: Callable[[ApiRequest], Response] | None = None, *, public: bool = False
) -> Any:
    """Run a synchronous handler (database work, hashing) off the event loop.

    The caller is authenticated before the handler runs (401 first, before any
    validation of the body), unless the route is declared ``public``.
    """
    from starlette.concurrency import run_in_threadpool

    def decorate(func: Callable[[ApiRequest], Response]) -> Callable[[Request], Any]:
        def run(api_request: ApiRequest) -> Response:
            if not public:
                api_request.context  # noqa: B018 - authenticates or raises 401
            return func(api_request)

        async def wrapped(request: Request) -> Response:
            body = await request.body() if request.method in ("POST", "PUT", "PATCH") else b""
            return await run_in_threadpool(run, ApiRequest(request, body))

        wrapped.__name__ = func.__name__
        wrapped.__doc__ = func.__doc__
        return wrapped

    return decorate(handler) if handler is not None else decorate


def streaming_endpoint(handler: Callable[[ApiRequest], Awaitable[Response]]) -> Any:
    """An async handler that reads or writes data as a stream (image data).

    The body is not read beforehand: the handler consumes
    ``req.request.stream()`` itself. The caller is authenticated first, off
    the event loop (validation may ask identity).
    """
    from starlette.concurrency import run_in_threadpool

    def authenticate(api_request: ApiRequest) -> None:
        api_request.context  # noqa: B018 - authenticates or raises 401

    async def wrapped(request: Request) -> Response:
        api_request = ApiRequest(request, b"")
        await run_in_threadpool(authenticate, api_request)
        return await handler(api_request)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped
