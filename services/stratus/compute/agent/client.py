"""The agent's side of the compute API: its pass's report and its events."""

from __future__ import annotations

from typing import Any

from stratus.common.service_client import ApiError, ServiceClient
from stratus.compute.agent import settings


class ComputeClient(ServiceClient):
    service_type = "compute"
    section = settings.SECTION

    def report(self, host: str, body: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.request("PUT", f"/os-stratus-hosts/{host}", json={"host": body})
        if response.status_code != 200:
            raise ApiError(f"report of {host}: {response.status_code} {response.text[:200]}")
        return response.json()["servers"]  # type: ignore[no-any-return]

    def events(self, host: str, events: list[dict[str, Any]]) -> None:
        response = self.request("POST", f"/os-stratus-hosts/{host}/events", json={"events": events})
        if response.status_code != 200:
            raise ApiError(f"events of {host}: {response.status_code} {response.text[:200]}")
