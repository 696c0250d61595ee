"""Identity's HTTP API: one module per resource, each with its ROUTES."""

from stratus.identity.api import (
    application_credentials,
    auth,
    catalog,
    domains,
    groups,
    projects,
    role_assignments,
    roles,
    trusts,
    users,
    versions,
)

ROUTES = [
    *versions.ROUTES,
    *auth.ROUTES,
    *domains.ROUTES,
    *projects.ROUTES,
    *users.ROUTES,
    *groups.ROUTES,
    *roles.ROUTES,
    *role_assignments.ROUTES,
    *catalog.ROUTES,
    *application_credentials.ROUTES,
    *trusts.ROUTES,
]
