"""A server as its metadata says it (``stratus.metadata``), from the server
document its agent gets (``api.hosts.server_document``): the same for the
metadata service and for the config drive."""

from __future__ import annotations

import base64
from typing import Any

from stratus.metadata.content import (
    FixedIP,
    InstanceMetadata,
    KeyPair,
    NetworkPort,
    Route,
)


def _fixed_ip(fixed: dict[str, Any], subnet: dict[str, Any] | None) -> FixedIP | None:
    if not subnet or not subnet.get("cidr"):
        return None
    return FixedIP(
        address=fixed["ip_address"],
        cidr=subnet["cidr"],
        gateway=subnet.get("gateway_ip"),
        dhcp=bool(subnet.get("enable_dhcp", True)),
        ipv6_address_mode=subnet.get("ipv6_address_mode")
        if subnet.get("ip_version") == 6
        else None,
        dns_servers=tuple(subnet.get("dns_nameservers") or ()),
        routes=tuple(
            Route(r["destination"], r["nexthop"]) for r in subnet.get("host_routes") or ()
        ),
    )


def _port(port: dict[str, Any]) -> NetworkPort:
    details = port.get("details") or {}
    subnets = details.get("subnets") or {}
    fixed = [_fixed_ip(f, subnets.get(f.get("subnet_id"))) for f in details.get("fixed_ips", [])]
    return NetworkPort(
        id=port["port_id"],
        mac_address=port["mac_address"],
        network_id=port["network_id"],
        fixed_ips=tuple(f for f in fixed if f is not None),
        mtu=details.get("mtu"),
    )


def from_document(server: dict[str, Any]) -> InstanceMetadata:
    flavor = server.get("flavor") or {}
    keys = ()
    if server.get("key_name") and server.get("key_data"):
        key_type = "x509" if "BEGIN CERTIFICATE" in server["key_data"] else "ssh"
        keys = (KeyPair(server["key_name"], server["key_data"], key_type),)
    user_data = base64.b64decode(server["user_data"]) if server.get("user_data") else None
    floating = tuple(
        address
        for port in server.get("ports", [])
        for address in (port.get("details") or {}).get("floating_ips", [])
    )
    return InstanceMetadata(
        uuid=server["id"],
        name=server["name"],
        hostname=server["hostname"],
        project_id=server["project_id"],
        image_id=server.get("image_id") or "",
        flavor_name=flavor.get("name", ""),
        availability_zone=server.get("availability_zone") or "nova",
        launch_index=server.get("launch_index", 0),
        reservation_id=server.get("reservation_id", ""),
        kernel_id=flavor.get("kernel_id") or None,
        ramdisk_id=flavor.get("ramdisk_id") or None,
        public_keys=keys,
        user_data=user_data,
        metadata=dict(server.get("metadata") or {}),
        ports=tuple(_port(p) for p in server.get("ports", [])),
        floating_ips=floating,
        security_groups=tuple(server.get("security_groups") or ()),
    )
