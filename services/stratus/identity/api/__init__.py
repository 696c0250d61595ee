"""Identity's HTTP API: one module per resource, each with its ROUTES."""

from stratus.identity.api import auth, domains, projects, users, versions

ROUTES = [
    *versions.ROUTES,
    *auth.ROUTES,
    *domains.ROUTES,
    *projects.ROUTES,
    *users.ROUTES,
]
