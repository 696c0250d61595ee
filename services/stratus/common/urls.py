"""The base URL clients see, also behind a TLS-terminating proxy.

A configured public endpoint wins; otherwise the URL is derived from the
request, honouring ``X-Forwarded-Proto``, ``X-Forwarded-Host`` and
``X-Forwarded-Prefix`` (and the standard ``Forwarded`` header) so that the
links in version documents and pagination point where the client can follow.
"""

from __future__ import annotations

from starlette.requests import Request


def _forwarded(request: Request) -> dict[str, str]:
    header = request.headers.get("forwarded")
    if not header:
        return {}
    first = header.split(",", 1)[0]
    values = {}
    for part in first.split(";"):
        if "=" in part:
            key, _, value = part.partition("=")
            values[key.strip().lower()] = value.strip().strip('"')
    return values


def base_url(request: Request, public_endpoint: str | None = None) -> str:
    """Scheme, host and path prefix of the service, without a trailing slash."""
    if public_endpoint:
        return public_endpoint.rstrip("/")
    forwarded = _forwarded(request)
    headers = request.headers
    scheme = (
        headers.get("x-forwarded-proto", "").split(",")[0].strip()
        or forwarded.get("proto")
        or request.url.scheme
    )
    host = (
        headers.get("x-forwarded-host", "").split(",")[0].strip()
        or forwarded.get("host")
        or headers.get("host")
        or request.url.netloc
    )
    prefix = headers.get("x-forwarded-prefix", "").strip().rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    root = request.scope.get("root_path", "").rstrip("/")
    return f"{scheme}://{host}{prefix}{root}"
