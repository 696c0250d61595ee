"""What the network API tests share: clients and Neutron error checks."""

from __future__ import annotations

from typing import Any

import httpx

from tests.api.helpers import admin_token, auth_headers


def neutron_error(response: httpx.Response, status: int, kind: str | None = None) -> str:
    """The response is a NeutronError with ``status`` (and ``kind``); its message."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"(wanted {status}): {response.text[:500]}"
    )
    error = response.json()["NeutronError"]
    assert error["message"] and "Traceback" not in response.text
    if kind is not None:
        assert error["type"] == kind, error
    return str(error["message"])


def admin_client(identity: Any, network: Any) -> httpx.Client:
    return httpx.Client(
        base_url=network.url, headers=auth_headers(admin_token(identity)), timeout=60
    )


def user_client(network: Any, who: dict[str, Any]) -> httpx.Client:
    return httpx.Client(base_url=network.url, headers=who["headers"], timeout=60)


def created(response: httpx.Response, singular: str) -> dict[str, Any]:
    assert response.status_code == 201, f"{response.status_code}: {response.text[:500]}"
    return response.json()[singular]  # type: ignore[no-any-return]
