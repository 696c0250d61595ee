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
_PROJECT_MEMBER = "rule:cloud_admin or (role:member and project_id:%(target.project_id)s)"
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
    *[
        Rule(f"{_PREFIX}:servers:{action}", _PROJECT_MEMBER, text)
        for action, text in (
            ("create", "Create servers in the caller's project."),
            ("update", "Rename a server or change its access addresses."),
            ("delete", "Delete a server."),
            ("start", "Start a stopped server."),
            ("stop", "Stop a server."),
            ("reboot", "Reboot a server (soft or hard)."),
            ("rebuild", "Rebuild a server from an image."),
            ("resize", "Resize a server to another flavor."),
            ("confirm_resize", "Confirm a resize."),
            ("revert_resize", "Revert a resize."),
            ("create_image", "Snapshot a server into the image service."),
        )
    ],
    *[
        Rule(f"{_PREFIX}:servers:{action}", _PROJECT_READER, text)
        for action, text in (
            ("index", "List a project's servers."),
            ("detail", "List a project's servers with their details."),
            ("show", "Show a server."),
        )
    ],
    Rule(
        f"{_PREFIX}:servers:index:get_all_tenants",
        "rule:cloud_reader",
        "List every project's servers (all_tenants).",
    ),
    Rule(
        f"{_PREFIX}:servers:detail:get_all_tenants",
        "rule:cloud_reader",
        "List every project's servers with their details (all_tenants).",
    ),
    Rule(
        f"{_PREFIX}:servers:create:forced_host",
        _ADMIN,
        "Put a server on a host of one's choice (availability_zone zone:host).",
    ),
    Rule(
        f"{_PREFIX}:os-extended-server-attributes",
        _ADMIN,
        "See a server's host, instance name and boot attributes.",
    ),
    Rule(f"{_PREFIX}:os-pause-server:pause", _PROJECT_MEMBER, "Pause a server."),
    Rule(f"{_PREFIX}:os-pause-server:unpause", _PROJECT_MEMBER, "Unpause a server."),
    Rule(f"{_PREFIX}:os-suspend-server:suspend", _PROJECT_MEMBER, "Suspend a server."),
    Rule(f"{_PREFIX}:os-suspend-server:resume", _PROJECT_MEMBER, "Resume a server."),
    Rule(f"{_PREFIX}:os-lock-server:lock", _PROJECT_MEMBER, "Lock a server."),
    Rule(f"{_PREFIX}:os-lock-server:unlock", _PROJECT_MEMBER, "Unlock a server."),
    Rule(
        f"{_PREFIX}:os-lock-server:unlock:unlock_override",
        _ADMIN,
        "Unlock a server an admin locked.",
    ),
    Rule(
        f"{_PREFIX}:os-console-output",
        _PROJECT_MEMBER,
        "Read a server's console log.",
    ),
    Rule(f"{_PREFIX}:ips:index", _PROJECT_READER, "List a server's addresses."),
    *[
        Rule(f"{_PREFIX}:os-attach-interfaces:{action}", rule, text)
        for action, rule, text in (
            ("list", _PROJECT_READER, "List a server's interfaces (ports)."),
            ("show", _PROJECT_READER, "Show an interface of a server."),
            ("create", _PROJECT_MEMBER, "Attach a network or port to a server."),
            ("delete", _PROJECT_MEMBER, "Detach a port from a server."),
        )
    ],
    Rule(f"{_PREFIX}:ips:show", _PROJECT_READER, "List a server's addresses on one network."),
    *[
        Rule(f"{_PREFIX}:server-metadata:{action}", rule, f"Server metadata: {action}.")
        for action, rule in (
            ("index", _PROJECT_READER),
            ("show", _PROJECT_READER),
            ("create", _PROJECT_MEMBER),
            ("update", _PROJECT_MEMBER),
            ("update_all", _PROJECT_MEMBER),
            ("delete", _PROJECT_MEMBER),
        )
    ],
    Rule(
        f"{_PREFIX}:os-instance-actions:list",
        _PROJECT_READER,
        "List the actions taken on a server.",
    ),
    Rule(f"{_PREFIX}:os-instance-actions:show", _PROJECT_READER, "Show an action on a server."),
    Rule(
        f"{_PREFIX}:os-instance-actions:events",
        _ADMIN,
        "See the events of an action on a server.",
    ),
    Rule(
        f"{_PREFIX}:os-stratus-hosts:report",
        "rule:cloud_admin or rule:service_role",
        "A compute agent reports its host and what became of its servers' tasks.",
    ),
    *[
        Rule(f"{_PREFIX}:os-hypervisors:{action}", "rule:cloud_reader", text)
        for action, text in (
            ("list", "List the hypervisors."),
            ("list-detail", "List the hypervisors with their capacity and use."),
            ("show", "Show a hypervisor."),
            ("statistics", "Sum the hypervisors' capacity and use."),
            ("search", "Find hypervisors by a part of their host name (up to 2.52)."),
            ("servers", "List the servers of the hypervisors found so (up to 2.52)."),
        )
    ],
    Rule(f"{_PREFIX}:os-services:list", "rule:cloud_reader", "List the compute services."),
    Rule(f"{_PREFIX}:os-services:update", _ADMIN, "Enable or disable a compute host."),
    Rule(f"{_PREFIX}:os-services:delete", _ADMIN, "Forget a compute host without servers."),
    Rule(f"{_PREFIX}:os-server-groups:index", _PROJECT_READER, "List a project's server groups."),
    Rule(
        f"{_PREFIX}:os-server-groups:index:all_projects",
        "rule:cloud_reader",
        "List every project's server groups.",
    ),
    Rule(f"{_PREFIX}:os-server-groups:show", _PROJECT_READER, "Show a server group."),
    Rule(f"{_PREFIX}:os-server-groups:create", _PROJECT_MEMBER, "Create a server group."),
    Rule(f"{_PREFIX}:os-server-groups:delete", _PROJECT_MEMBER, "Delete a server group."),
    Rule(f"{_PREFIX}:os-availability-zone:list", _ANYONE, "List the availability zones."),
    Rule(
        f"{_PREFIX}:os-availability-zone:detail",
        _ADMIN,
        "List the availability zones with their hosts and services.",
    ),
]
