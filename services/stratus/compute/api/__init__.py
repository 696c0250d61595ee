"""The compute service's HTTP API (Nova v2.1): one module per resource."""

from stratus.compute.api import (
    flavors,
    host_views,
    hosts,
    images,
    keypairs,
    quotas,
    server_actions,
    server_details,
    server_groups,
    server_interfaces,
    servers,
    versions,
)

ROUTES = [
    *versions.ROUTES,
    *flavors.ROUTES,
    *images.ROUTES,
    *keypairs.ROUTES,
    *quotas.ROUTES,
    *servers.ROUTES,
    *server_actions.ROUTES,
    *server_details.ROUTES,
    *server_groups.ROUTES,
    *server_interfaces.ROUTES,
    *host_views.ROUTES,
    *hosts.ROUTES,
]
