"""The image service's HTTP API (Glance v2): one module per resource."""

from stratus.image.api import data, images, info, members, schemas, tags, versions

ROUTES = [
    *versions.ROUTES,
    *images.ROUTES,
    *data.ROUTES,
    *members.ROUTES,
    *tags.ROUTES,
    *schemas.ROUTES,
    *info.ROUTES,
]
