"""What the compute API tests share: clients, Nova error checks, microversions."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import admin_token, auth_headers


def compute_error(response: httpx.Response, *statuses: int) -> str:
    """The response is a Nova-style error with one of ``statuses``; its message."""
    assert response.status_code in statuses, (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"(wanted {statuses}): {response.text[:500]}"
    )
    body = response.json()
    assert len(body) == 1, body
    (error,) = body.values()
    assert error["code"] == response.status_code and error["message"], body
    assert "Traceback" not in response.text
    return str(error["message"])


def version_header(version: str) -> dict[str, str]:
    return {"OpenStack-API-Version": f"compute {version}"}


def compute_client(compute: Any, headers: dict[str, str]) -> httpx.Client:
    return httpx.Client(base_url=f"{compute.url}/v2.1", headers=headers, timeout=60)


def admin_compute_client(identity: Any, compute: Any) -> httpx.Client:
    return compute_client(compute, auth_headers(admin_token(identity)))
