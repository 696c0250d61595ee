"""The compute service's default RBAC rules, under Nova's rule names.

- the *cloud admin* manages flavors, quotas and hosts, and may act on any
  project's and any user's resources;
- a *project member* uses its project's flavors and manages its own key
  pairs; a *project reader* reads its project's quotas and limits.

Targets carry ``project_id`` (the resource's project) and, for key pairs,
``user_id`` (their owner).
"""

from stratus.common.policy import BASE_RULES, Rule

_ADMIN = "rule:cloud_admin"
_ANYONE = "@"
_PROJECT_READER = "rule:cloud_reader or (role:reader and project_id:%(target.project_id)s)"
_OWNER = "rule:cloud_admin or user_id:%(target.user_id)s"

_PREFIX = "os_compute_api"

RULES: list[Rule] = [
    *BASE_RULES,
    Rule(f"{_PREFIX}:flavors:list", _ANYONE, "List and show the flavors a project may use."),
    Rule(f"{_PREFIX}:os-flavor-manage:create", _ADMIN, "Create a flavor."),
    Rule(f"{_PREFIX}:os-flavor-manage:update", _ADMIN, "Change a flavor's description."),
    Rule(f"{_PREFIX}:os-flavor-manage:delete", _ADMIN, "Delete a flavor."),
    Rule(
        f"{_PREFIX}:os-flavor-access",
        _ADMIN,
        "List the projects that may use a private flavor.",
    ),
    Rule(
        f"{_PREFIX}:os-flavor-access:add_tenant_access",
        _ADMIN,
        "Let a project use a private flavor.",
    ),
    Rule(
        f"{_PREFIX}:os-flavor-access:remove_tenant_access",
        _ADMIN,
        "Take a private flavor away from a project.",
    ),
    Rule(
        f"{_PREFIX}:os-flavor-extra-specs:index",
        _ANYONE,
        "Read the extra specs of a flavor the caller may see.",
    ),
    Rule(f"{_PREFIX}:os-flavor-extra-specs:create", _ADMIN, "Add extra specs to a flavor."),
    Rule(f"{_PREFIX}:os-flavor-extra-specs:update", _ADMIN, "Change a flavor's extra spec."),
    Rule(f"{_PREFIX}:os-flavor-extra-specs:delete", _ADMIN, "Remove a flavor's extra spec."),
    Rule(f"{_PREFIX}:os-keypairs:index", _OWNER, "List a user's key pairs."),
    Rule(f"{_PREFIX}:os-keypairs:show", _OWNER, "Show a user's key pair."),
    Rule(f"{_PREFIX}:os-keypairs:create", _OWNER, "Import or generate a key pair."),
    Rule(f"{_PREFIX}:os-keypairs:delete", _OWNER, "Delete a key pair."),
    Rule(f"{_PREFIX}:os-quota-sets:show", _PROJECT_READER, "Show a project's quotas."),
    Rule(f"{_PREFIX}:os-quota-sets:detail", _PROJECT_READER, "Show quotas with their usage."),
    Rule(f"{_PREFIX}:os-quota-sets:defaults", _ANYONE, "Show the default quotas."),
    Rule(f"{_PREFIX}:os-quota-sets:update", _ADMIN, "Change a project's or user's quotas."),
    Rule(f"{_PREFIX}:os-quota-sets:delete", _ADMIN, "Reset a project's quotas to the defaults."),
    Rule(f"{_PREFIX}:limits", _ANYONE, "Show the caller's project's limits and usage."),
    Rule(
        f"{_PREFIX}:limits:other_project",
        _ADMIN,
        "Show the limits and usage of another project (tenant_id).",
    ),
    Rule(f"{_PREFIX}:os-availability-zone:list", _ANYONE, "List the availability zones."),
    Rule(
        f"{_PREFIX}:os-availability-zone:detail",
        _ADMIN,
        "List the availability zones with their hosts and services.",
    ),
]
