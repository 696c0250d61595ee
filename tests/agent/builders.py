"""Neutron API documents for the agent's tests, as the network API lists them."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any


def uid() -> str:
    return str(uuid.uuid4())


def network(
    network_type: str = "vxlan",
    segmentation_id: int | None = None,
    physical_network: str | None = None,
    mtu: int | None = None,
    external: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    overhead = {"vxlan": 50, "gre": 42}.get(network_type, 0)
    return {
        "id": uid(),
        "project_id": "p1",
        "name": "net",
        "provider:network_type": network_type,
        "provider:physical_network": physical_network,
        "provider:segmentation_id": segmentation_id,
        "mtu": mtu or 1500 - overhead,
        "admin_state_up": True,
        "router:external": external,
        **extra,
    }


def subnet(net: dict[str, Any], cidr: str, **extra: Any) -> dict[str, Any]:
    net_ = ipaddress.ip_network(cidr)
    first, last = net_.network_address + 1, net_.broadcast_address - (net_.version == 4)
    return {
        "id": uid(),
        "network_id": net["id"],
        "ip_version": net_.version,
        "cidr": cidr,
        "gateway_ip": str(first),
        "enable_dhcp": True,
        "dns_nameservers": [],
        "host_routes": [],
        "allocation_pools": [{"start": str(first + 1), "end": str(last)}],
        **extra,
    }


def port(
    net: dict[str, Any],
    sub: dict[str, Any],
    ip: str,
    host: str,
    device_owner: str = "compute:nova",
    mac: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": uid(),
        "network_id": net["id"],
        "project_id": "p1",
        "mac_address": mac or "fa:16:3e:" + ":".join(f"{x:02x}" for x in uuid.uuid4().bytes[:3]),
        "fixed_ips": [{"subnet_id": sub["id"], "ip_address": ip}],
        "device_owner": device_owner,
        "device_id": uid() if device_owner != "network:dhcp" else f"dhcp-{host}",
        "binding:host_id": host,
        "admin_state_up": True,
        "dns_name": "",
        # Unfiltered by default: these documents test wiring, not security groups.
        "port_security_enabled": False,
        "security_groups": [],
        **extra,
    }


def dhcp_port(net: dict[str, Any], sub: dict[str, Any], ip: str, host: str) -> dict[str, Any]:
    return port(net, sub, ip, host, device_owner="network:dhcp")


def agent(host: str, tunneling_ip: str) -> dict[str, Any]:
    return {
        "id": uid(),
        "host": host,
        "agent_type": "Linux bridge agent",
        "alive": True,
        "configurations": {"tunneling_ip": tunneling_ip},
    }


def docs(**lists: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    keys = ("networks", "subnets", "ports", "routers", "floatingips", "security_groups", "agents")
    return {k: list(lists.get(k, [])) for k in keys}
