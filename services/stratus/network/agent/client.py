"""The agent's side of the network API: read the documents, report the ports.

The agent logs in to identity as its own service user (keystone v3
password auth, project scope, the ``[network_agent_authtoken]`` section's
``ServiceCredentials``), takes the ``network`` endpoint from the token's
catalog (or ``[network_agent] api_url``) and lists what a Neutron client
would: networks, subnets, ports, routers, floating IPs, security groups and
agents, following each list's ``<collection>_links`` ``next`` link.

A 401 renews the token once. Any failure to read raises ``ApiError``: the
agent then converges nothing (an empty answer must never be mistaken for an
empty cloud). The report (``POST /v2.0/stratus-agent-reports``) says which of
this host's ports are wired; the API may not have that route yet, so a 404
is logged and forgotten.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urljoin

from stratus.common import service_client
from stratus.common.service_client import ApiError, ServiceClient
from stratus.network.agent import settings
from stratus.network.agent.reconcile import Report
from stratus.network.agent.state import HostConfig, Snapshot

log = logging.getLogger(__name__)

AGENT_TYPE = "Linux bridge agent"
BINARY = "stratus-network-agent"
REPORT_PATH = "/v2.0/stratus-agent-reports"
PAGE_LIMIT = 1000

# Snapshot key -> (URL path, collection key in the answer)
COLLECTIONS = {
    "networks": ("/v2.0/networks", "networks"),
    "subnets": ("/v2.0/subnets", "subnets"),
    "ports": ("/v2.0/ports", "ports"),
    "routers": ("/v2.0/routers", "routers"),
    "floatingips": ("/v2.0/floatingips", "floatingips"),
    "security_groups": ("/v2.0/security-groups", "security_groups"),
    "agents": ("/v2.0/agents", "agents"),
}


def endpoint_from_catalog(
    catalog: list[dict[str, Any]], interface: str = "internal", region: str = ""
) -> str:
    """The ``network`` endpoint of a keystone v3 catalog."""
    return service_client.endpoint_from_catalog(
        catalog, interface, region, "network", f"[{settings.SECTION}]"
    )


class NetworkClient(ServiceClient):
    """Authenticated HTTP to the network API, the token renewed when needed."""

    service_type = "network"
    section = settings.SECTION

    # --- reading ----------------------------------------------------------------

    def list_all(self, path: str, key: str) -> list[dict[str, Any]]:
        """Every item of a collection, following ``<key>_links`` ``next``."""
        items: list[dict[str, Any]] = []
        url: str | None = path
        params: dict[str, Any] | None = {"limit": PAGE_LIMIT}
        seen: set[str] = set()
        while url:
            response = self.request("GET", url, params=params)
            if response.status_code != 200:
                raise ApiError(f"GET {url}: {response.status_code} {response.text[:200]}")
            body = response.json()
            items.extend(body.get(key) or [])
            url = None
            params = None  # the next link carries its own query
            for link in body.get(f"{key}_links") or []:
                if link.get("rel") == "next" and link.get("href"):
                    href = urljoin(str(response.url), link["href"])
                    if href not in seen:  # a server repeating itself must not loop us
                        seen.add(href)
                        url = href
        return items

    def documents(self) -> dict[str, list[dict[str, Any]]]:
        return {name: self.list_all(path, key) for name, (path, key) in COLLECTIONS.items()}

    def snapshot(self) -> Snapshot:
        return Snapshot.from_api(self.documents())

    # --- reporting -----------------------------------------------------------------

    @staticmethod
    def report_body(host: HostConfig, report: Report) -> dict[str, Any]:
        return {
            "report": {
                "host": host.host,
                "agent_type": AGENT_TYPE,
                "binary": BINARY,
                "configurations": {
                    "tunneling_ip": host.local_ip,
                    "tunnel_types": list(host.tunnel_types),
                    "bridge_mappings": dict(host.physical_interfaces),
                },
                "ports_up": sorted(report.ports_up),
                "ports_down": sorted(report.ports_down),
            }
        }

    def report(self, host: HostConfig, report: Report) -> bool:
        """Post the pass's report; False (logged) if the API does not take reports yet."""
        response = self.request("POST", REPORT_PATH, json=self.report_body(host, report))
        if response.status_code == 404:
            log.warning("the network API has no %s route; report not sent", REPORT_PATH)
            return False
        if response.status_code >= 400:
            raise ApiError(f"POST {REPORT_PATH}: {response.status_code} {response.text[:200]}")
        return True
