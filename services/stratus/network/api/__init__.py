"""The network service's HTTP API (Neutron v2.0): one module per resource."""

from stratus.network.api import (
    agents,
    floatingips,
    networks,
    ports,
    quotas,
    routers,
    security_groups,
    subnets,
    tags,
    versions,
)

ROUTES = [
    *versions.ROUTES,
    *networks.ROUTES,
    *subnets.ROUTES,
    *ports.ROUTES,
    *security_groups.ROUTES,
    *quotas.ROUTES,
    *agents.ROUTES,
    *routers.ROUTES,
    *floatingips.ROUTES,
    # Last: its /v2.0/{collection}/... pattern must not shadow the others.
    *tags.ROUTES,
]
