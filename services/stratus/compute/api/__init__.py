"""The compute service's HTTP API (Nova v2.1): one module per resource."""

from stratus.compute.api import flavors, keypairs, quotas, versions

ROUTES = [
    *versions.ROUTES,
    *flavors.ROUTES,
    *keypairs.ROUTES,
    *quotas.ROUTES,
]
