"""Prepare a throwaway network server for Tempest (called by scripts/tempest.sh).

Logs in as the admin, creates the external network ``public`` (flat, on
physical network ``public``, subnet 172.24.4.0/24 without DHCP) that
Tempest's floating IP and router tests use, and prints shell assignments:
``public_network_id`` and ``network_extensions`` (the aliases the server
lists, for ``[network-feature-enabled] api_extensions``).

    python scripts/tempest_network.py IDENTITY_URL ADMIN_PASSWORD NETWORK_URL
"""

from __future__ import annotations

import shlex
import sys

import httpx


def main(identity: str, password: str, network: str) -> None:
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
    headers = {"X-Auth-Token": answer.headers["X-Subject-Token"]}
    with httpx.Client(base_url=network, headers=headers, timeout=60) as api:
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
    main(*sys.argv[1:4])
