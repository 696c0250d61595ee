"""The metadata service's ASGI application.

One route takes every path: GET and HEAD are answered by
``MetadataService.answer`` (off the event loop, since the instance lookup
reads a database); any other method is 405 with ``Allow: GET, HEAD``. Every
answer, errors included, is plain text or the document's own JSON, as
Nova's metadata API: guests' tools (cloud-init, curl in a boot script)
print what they get. The common application (``build_app``) adds the
request ID and the access log; its JSON errors are left only for what
never reaches the route (a body over ``max_body``, a crash in the
framework).

The compute service builds it with its instance lookup and the secret it
shares with the network agents' metadata proxies::

    app = create_app(lookup=compute.instance_metadata, shared_secret=secret)
"""

from __future__ import annotations

import logging

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from stratus.common import errors
from stratus.common.app import build_app
from stratus.metadata.service import Answer, InstanceLookup, MetadataService, error

LOG = logging.getLogger(__name__)

METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]


def create_app(lookup: InstanceLookup, shared_secret: str) -> ASGIApp:
    """The metadata service over ``lookup``, trusting requests signed with ``shared_secret``."""
    service = MetadataService(lookup, shared_secret)

    async def serve(request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            answer = error(
                405,
                f"The method {request.method} is not supported for this resource.",
                Allow="GET, HEAD",
            )
        else:
            try:
                answer = await run_in_threadpool(service.answer, request.url.path, request.headers)
            except Exception:
                LOG.exception("metadata: %s failed", request.url.path)
                answer = error(500, "An unknown error has occurred. Please try your request again.")
        return _response(answer)

    return build_app(
        [Route("/{path:path}", serve, methods=METHODS)],
        error_format=errors.compute_format,
        max_body=64 * 1024,
        redirect_slashes=False,
        state={"metadata": service},
    )


def _response(answer: Answer) -> Response:
    # The media type is set as a header so that Starlette adds no charset:
    # user data is bytes, not necessarily UTF-8 text.
    headers = {"Content-Type": answer.content_type, **(answer.headers or {})}
    return Response(answer.body, status_code=answer.status, headers=headers)
