"""Prepare a throwaway network server for Tempest (called by scripts/tempest.sh).

Logs in as the admin, creates the external network ``public`` (flat, on
physical network ``public``, subnet 172.24.4.0/24 without DHCP) that
Tempest's floating IP and router tests use, and prints shell assignments:
``public_network_id`` and ``network_extensions`` (the aliases the server
lists, for ``[network-feature-enabled] api_extensions``).

    python scripts/tempest_network.py IDENTITY_URL ADMIN_PASSWORD NETWORK_URL [AGENT_HOST]

With AGENT_HOST it first waits (up to a minute) for that host's agent to
report itself alive, so that DHCP ports and routers are placed on it.
"""

from __future__ import annotations

import shlex
import sys
import time

import httpx


def wait_for_agent(api: httpx.Client, host: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        agents = api.get("/v2.0/agents", params={"host": host}).json().get("agents", [])
        if any(a["alive"] for a in agents):
            return
        time.sleep(0.5)
    sys.exit(f"tempest_network.py: the agent of {host} did not report within {timeout:.0f} s")


def admin_token(identity: str, password: str) -> str:
    """A token of the bootstrap admin, scoped to the admin project."""
    login = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "password": password, "domain": {"id": "default"}}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}},
        }
    }
    answer = httpx.post(f"{identity}/v3/auth/tokens", json=login, timeout=60)
    answer.raise_for_status()
    return answer.headers["X-Subject-Token"]


def main(identity: str, password: str, network: str, agent_host: str | None = None) -> None:
    headers = {"X-Auth-Token": admin_token(identity, password)}
    with httpx.Client(base_url=network, headers=headers, timeout=60) as api:
        if agent_host:
            wait_for_agent(api, agent_host)
        body = {
            "network": {
                "name": "public",
                "router:external": True,
                "provider:network_type": "flat",
                "provider:physical_network": "public",
            }
        }
        created = api.post("/v2.0/networks", json=body)
        created.raise_for_status()
        net = created.json()["network"]
        subnet = {
            "subnet": {
                "network_id": net["id"],
                "cidr": "172.24.4.0/24",
                "ip_version": 4,
                "enable_dhcp": False,
                "allocation_pools": [{"start": "172.24.4.10", "end": "172.24.4.250"}],
            }
        }
        api.post("/v2.0/subnets", json=subnet).raise_for_status()
        extensions = api.get("/v2.0/extensions").json()["extensions"]
    aliases = ", ".join(sorted(e["alias"] for e in extensions))
    print(f"public_network_id={shlex.quote(net['id'])}")
    print(f"network_extensions={shlex.quote(aliases)}")


if __name__ == "__main__":
    main(*sys.argv[1:5])
