"""How a server is shown, at each microversion.

Nova's shape: ``status`` from (vm_state, task_state); the extended status,
availability zone and usage attributes (``OS-EXT-STS:*``,
``OS-EXT-AZ:availability_zone``, ``OS-SRV-USG:*``); the host attributes
(``OS-EXT-SRV-ATTR:*``) for admins only, with more of them from 2.3;
``locked`` from 2.9; the fault of a server in ERROR.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from stratus.common.app import ApiRequest
from stratus.compute import states
from stratus.compute.api import common
from stratus.compute.model import Server

EXTENDED_RULE = "os_compute_api:os-extended-server-attributes"


def instance_name(server: Server) -> str:
    """The libvirt domain's name: the server's ID, so it is never reused."""
    return f"instance-{server.id}"


def host_id(server: Server) -> str:
    """Nova's ``hostId``: a host's name hashed with the project, so that a
    project can tell its servers apart by host without learning hosts."""
    if not server.host:
        return ""
    return hashlib.sha224((server.project_id + server.host).encode()).hexdigest()


def addresses(server: Server) -> dict[str, list[dict[str, Any]]]:
    shown: dict[str, list[dict[str, Any]]] = {}
    for port in server.ports:
        details = json.loads(port.details or "{}")
        name = details.get("network_name") or port.network_id
        entries = shown.setdefault(name, [])
        for fixed in details.get("fixed_ips", []):
            entries.append(_address(fixed["ip_address"], "fixed", port.mac_address))
        for floating in details.get("floating_ips", []):
            entries.append(_address(floating, "floating", port.mac_address))
    return shown


def _address(address: str, kind: str, mac: str) -> dict[str, Any]:
    return {
        "version": 6 if ":" in address else 4,
        "addr": address,
        "OS-EXT-IPS:type": kind,
        "OS-EXT-IPS-MAC:mac_addr": mac,
    }


def summary(req: ApiRequest, server: Server) -> dict[str, Any]:
    return {
        "id": server.id,
        "name": server.name,
        "links": common.links(req, "servers", server.id),
    }


def _timestamp(moment: Any) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


# What Nova's update and rebuild answer of a server: its show view without
# the extended attributes (availability zone, config drive, key name, usage
# times, power and task states, volumes, security groups, host attributes).
BASIC_KEYS = frozenset(
    {
        "id",
        "name",
        "links",
        "status",
        "tenant_id",
        "user_id",
        "metadata",
        "hostId",
        "image",
        "flavor",
        "created",
        "updated",
        "addresses",
        "accessIPv4",
        "accessIPv6",
        "OS-DCF:diskConfig",
        "progress",
        "locked",
        "fault",
    }
)


def basic(req: ApiRequest, server: Server) -> dict[str, Any]:
    """The server as ``PUT /servers/{id}`` and rebuild answer it: addresses
    too without their extended attributes (type, MAC)."""
    view = {k: v for k, v in detail(req, server).items() if k in BASIC_KEYS}
    view["addresses"] = {
        network: [{"version": a["version"], "addr": a["addr"]} for a in entries]
        for network, entries in view["addresses"].items()
    }
    return view


def detail(req: ApiRequest, server: Server, admin: bool | None = None) -> dict[str, Any]:
    flavor = json.loads(server.flavor)
    status = states.status(server.vm_state, server.task_state)
    root = common.base(req)
    view: dict[str, Any] = {
        **summary(req, server),
        "status": status,
        "tenant_id": server.project_id,
        "user_id": server.user_id,
        "metadata": {m.key: m.value for m in server.metadata_items},
        "hostId": host_id(server),
        "image": (
            {
                "id": server.image_id,
                "links": [{"rel": "bookmark", "href": f"{root}/images/{server.image_id}"}],
            }
            if server.image_id
            else ""
        ),
        "flavor": {
            "id": flavor["id"],
            "links": [{"rel": "bookmark", "href": f"{root}/flavors/{flavor['id']}"}],
        },
        "created": _timestamp(server.created_at),
        "updated": _timestamp(server.updated_at),
        "addresses": addresses(server),
        "accessIPv4": server.access_ipv4,
        "accessIPv6": server.access_ipv6,
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": server.availability_zone or "",
        "config_drive": "True" if server.config_drive else "",
        "key_name": server.key_name,
        "OS-SRV-USG:launched_at": common.timestamp(server.launched_at),
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": server.task_state,
        "OS-EXT-STS:vm_state": server.vm_state,
        "OS-EXT-STS:power_state": server.power_state,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": n} for n in json.loads(server.security_groups or "[]")],
    }
    if status in states.PROGRESS_STATUSES:
        view["progress"] = server.progress
    if admin is None:
        admin = common.allowed(req, EXTENDED_RULE, {"project_id": server.project_id})
    if admin:
        view["OS-EXT-SRV-ATTR:host"] = server.host
        view["OS-EXT-SRV-ATTR:hypervisor_hostname"] = server.host
        view["OS-EXT-SRV-ATTR:instance_name"] = instance_name(server)
        if common.at_least(req, 2, 3):
            view.update(
                {
                    "OS-EXT-SRV-ATTR:reservation_id": server.reservation_id,
                    "OS-EXT-SRV-ATTR:launch_index": server.launch_index,
                    "OS-EXT-SRV-ATTR:hostname": server.hostname,
                    "OS-EXT-SRV-ATTR:kernel_id": flavor.get("kernel_id", ""),
                    "OS-EXT-SRV-ATTR:ramdisk_id": flavor.get("ramdisk_id", ""),
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                    "OS-EXT-SRV-ATTR:user_data": server.user_data,
                }
            )
    if common.at_least(req, 2, 9):
        view["locked"] = server.locked
    if server.fault and server.vm_state in (states.ERROR, states.DELETED):
        fault = json.loads(server.fault)
        if not admin:
            fault.pop("details", None)
        view["fault"] = fault
    return view
