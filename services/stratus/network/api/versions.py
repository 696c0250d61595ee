"""Version discovery (``/``), the v2.0 resource index and ``/v2.0/extensions``.

The extension list names exactly what this service implements, so clients
(openstacksdk, the CLI, Tempest) only use what works.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.common.urls import base_url
from stratus.network.api import common

UPDATED = "2026-11-25T00:00:00-00:00"

EXTENSIONS: dict[str, tuple[str, str]] = {
    "agent": ("agent", "The agents of the hosts: liveness and configuration."),
    "allowed-address-pairs": ("Allowed Address Pairs", "Extra addresses a port may send from."),
    "binding": ("Port Binding", "The host a port is bound to and how it is plugged."),
    "dns-integration": ("DNS Integration", "DNS names of ports, served by the DHCP server."),
    "external-net": ("Neutron external network", "Networks routers use as their gateway."),
    "ext-gw-mode": ("Neutron L3 Configurable external gateway mode", "SNAT on or off."),
    "extraroute": ("Neutron Extra Route", "Static routes on routers."),
    "extraroute-atomic": (
        "Atomically add/remove extra routes",
        "add_extraroutes and remove_extraroutes on routers.",
    ),
    "net-mtu": ("Network MTU", "The MTU a network's ports can use."),
    "pagination": ("Pagination support", "limit and marker on every list."),
    "port-security": ("Port Security", "Security groups and anti-spoofing per port, or none."),
    "project-id": ("project_id field enabled", "project_id beside tenant_id."),
    "provider": ("Provider Network", "The segment a network is carried on."),
    "quota_details": ("Quota details management support", "Used and reserved quota."),
    "quotas": ("Quota management support", "Per project quotas of every resource."),
    "router": ("Neutron L3 Router", "Routers, their interfaces and floating IPs."),
    "security-group": ("security-group", "Stateful firewall rules per port."),
    "sorting": ("Sorting support", "sort_key and sort_dir on every list."),
    "standard-attr-description": ("standard-attr-description", "A description on resources."),
    "standard-attr-revisions": ("Resource revision numbers", "revision_number on resources."),
    "standard-attr-tag": ("Tag support for resources", "Tags on every resource."),
    "standard-attr-timestamp": ("Resource timestamps", "created_at and updated_at."),
    "tag": ("Tag support", "Tags on networks (standard-attr-tag: on every resource)."),
    "stateful-security-group": ("Stateful security group", "The stateful attribute."),
}

RESOURCES = (
    ("network", "networks"),
    ("subnet", "subnets"),
    ("port", "ports"),
    ("router", "routers"),
    ("floatingip", "floatingips"),
    ("security_group", "security-groups"),
    ("security_group_rule", "security-group-rules"),
    ("quota", "quotas"),
    ("agent", "agents"),
)


def _base(req: ApiRequest) -> str:
    public = common.service(req).options.public_endpoint or None
    return base_url(req.request, public)


@endpoint(public=True)
def root(req: ApiRequest) -> Response:
    href = f"{_base(req)}/v2.0/"
    return ok(
        {
            "versions": [
                {"id": "v2.0", "status": "CURRENT", "links": [{"rel": "self", "href": href}]}
            ]
        }
    )


@endpoint(public=True)
def index(req: ApiRequest) -> Response:
    base = _base(req)
    return ok(
        {
            "resources": [
                {
                    "name": name,
                    "collection": collection,
                    "links": [{"rel": "self", "href": f"{base}/v2.0/{collection}"}],
                }
                for name, collection in RESOURCES
            ]
        }
    )


def _extension(alias: str) -> dict[str, Any]:
    name, description = EXTENSIONS[alias]
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": UPDATED,
        "links": [],
    }


@endpoint
def extensions(req: ApiRequest) -> Response:
    return ok({"extensions": [_extension(alias) for alias in sorted(EXTENSIONS)]})


@endpoint
def extension(req: ApiRequest) -> Response:
    alias = req.path_params["alias"]
    if alias not in EXTENSIONS:
        raise common.not_found("Extension", alias)
    return ok({"extension": _extension(alias)})


ROUTES = [
    Route("/", root, methods=["GET"]),
    Route("/v2.0", index, methods=["GET"]),
    Route("/v2.0/", index, methods=["GET"]),
    Route("/v2.0/extensions", extensions, methods=["GET"]),
    Route("/v2.0/extensions/{alias}", extension, methods=["GET"]),
]
