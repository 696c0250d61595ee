"""The network service's HTTP API (Neutron v2.0): one module per resource."""

from stratus.network.api import networks, ports, security_groups, subnets, versions

ROUTES = [
    *versions.ROUTES,
    *networks.ROUTES,
    *subnets.ROUTES,
    *ports.ROUTES,
    *security_groups.ROUTES,
]
