"""Identity's default RBAC rules.

Three personas, as in Keystone's secure defaults:

- the *cloud admin* (admin role with system scope, or on the admin project)
  and the *cloud reader* may do or see everything;
- a *domain admin/reader* (admin or reader role on a domain) manages or sees
  the projects, users, groups and assignments of that domain;
- a *project member/reader* sees its own project; every user may read and
  manage what is theirs (their tokens, password, application credentials,
  trusts).

Targets are passed to the rules as ``target.<kind>.<attribute>``; the
operator overrides any rule from ``policy_file``.
"""

from stratus.common.policy import BASE_RULES, Rule

_DOMAIN_READER = "(role:reader and domain_id:%(target.domain_id)s)"
_DOMAIN_ADMIN = "(role:admin and domain_id:%(target.domain_id)s)"
_READ = f"rule:cloud_reader or {_DOMAIN_READER}"
_ADMIN = f"rule:cloud_admin or {_DOMAIN_ADMIN}"
_OWNER = "user_id:%(target.user_id)s"

RULES: list[Rule] = [
    *BASE_RULES,
    # Tokens and the caller's own view.
    Rule(
        "identity:validate_token",
        "rule:service_role or rule:cloud_reader or user_id:%(target.token.user_id)s",
    ),
    Rule("identity:revoke_token", "rule:cloud_admin or user_id:%(target.token.user_id)s"),
    # Domains.
    Rule(
        "identity:get_domain",
        "rule:cloud_reader or domain_id:%(target.domain_id)s "
        "or project_domain_id:%(target.domain_id)s",
    ),
    Rule("identity:list_domains", "rule:cloud_reader"),
    Rule("identity:create_domain", "rule:cloud_admin"),
    Rule("identity:update_domain", "rule:cloud_admin"),
    Rule("identity:delete_domain", "rule:cloud_admin"),
    # Projects.
    Rule("identity:get_project", f"{_READ} or project_id:%(target.project_id)s"),
    Rule("identity:list_projects", _READ),
    Rule("identity:list_user_projects", f"{_READ} or {_OWNER}"),
    Rule("identity:create_project", _ADMIN),
    Rule("identity:update_project", _ADMIN),
    Rule("identity:delete_project", _ADMIN),
    Rule("identity:get_project_tag", f"{_READ} or project_id:%(target.project_id)s"),
    Rule("identity:update_project_tags", _ADMIN),
    # Users.
    Rule("identity:get_user", f"{_READ} or {_OWNER}"),
    Rule("identity:list_users", _READ),
    Rule("identity:create_user", _ADMIN),
    Rule("identity:update_user", _ADMIN),
    Rule("identity:delete_user", _ADMIN),
    Rule("identity:change_password", _OWNER),
    # Groups and membership.
    Rule("identity:get_group", _READ),
    Rule("identity:list_groups", _READ),
    Rule("identity:list_groups_for_user", f"{_READ} or {_OWNER}"),
    Rule("identity:create_group", _ADMIN),
    Rule("identity:update_group", _ADMIN),
    Rule("identity:delete_group", _ADMIN),
    Rule("identity:list_users_in_group", _READ),
    Rule("identity:add_user_to_group", _ADMIN),
    Rule("identity:remove_user_from_group", _ADMIN),
    Rule("identity:check_user_in_group", _READ),
    # Roles and implied roles.
    Rule("identity:get_role", "rule:cloud_reader or role:reader"),
    Rule("identity:list_roles", "rule:cloud_reader or role:reader"),
    Rule("identity:create_role", "rule:cloud_admin"),
    Rule("identity:update_role", "rule:cloud_admin"),
    Rule("identity:delete_role", "rule:cloud_admin"),
    Rule("identity:get_domain_role", _READ),
    Rule("identity:list_domain_roles", _READ),
    Rule("identity:create_domain_role", "rule:cloud_admin"),
    Rule("identity:update_domain_role", "rule:cloud_admin"),
    Rule("identity:delete_domain_role", "rule:cloud_admin"),
    Rule("identity:list_implied_roles", "rule:cloud_reader"),
    Rule("identity:get_implied_role", "rule:cloud_reader"),
    Rule("identity:check_implied_role", "rule:cloud_reader"),
    Rule("identity:list_role_inference_rules", "rule:cloud_reader"),
    Rule("identity:create_implied_role", "rule:cloud_admin"),
    Rule("identity:delete_implied_role", "rule:cloud_admin"),
    # Role assignments.
    Rule("identity:list_role_assignments", _READ),
    Rule(
        "identity:list_role_assignments_for_tree",
        f"{_READ} or (role:admin and project_id:%(target.project_id)s)",
    ),
    Rule("identity:check_grant", _READ),
    Rule("identity:list_grants", _READ),
    Rule("identity:create_grant", _ADMIN),
    Rule("identity:revoke_grant", _ADMIN),
    Rule("identity:check_system_grant", "rule:cloud_reader"),
    Rule("identity:list_system_grants", f"rule:cloud_reader or {_OWNER}"),
    Rule("identity:create_system_grant", "rule:cloud_admin"),
    Rule("identity:revoke_system_grant", "rule:cloud_admin"),
    # Catalog.
    Rule("identity:get_region", "@"),
    Rule("identity:list_regions", "@"),
    Rule("identity:create_region", "rule:cloud_admin"),
    Rule("identity:update_region", "rule:cloud_admin"),
    Rule("identity:delete_region", "rule:cloud_admin"),
    Rule("identity:get_service", "rule:cloud_reader"),
    Rule("identity:list_services", "rule:cloud_reader"),
    Rule("identity:create_service", "rule:cloud_admin"),
    Rule("identity:update_service", "rule:cloud_admin"),
    Rule("identity:delete_service", "rule:cloud_admin"),
    Rule("identity:get_endpoint", "rule:cloud_reader"),
    Rule("identity:list_endpoints", "rule:cloud_reader"),
    Rule("identity:create_endpoint", "rule:cloud_admin"),
    Rule("identity:update_endpoint", "rule:cloud_admin"),
    Rule("identity:delete_endpoint", "rule:cloud_admin"),
    # Application credentials: a user's own.
    Rule("identity:get_application_credential", f"rule:cloud_reader or {_OWNER}"),
    Rule("identity:list_application_credentials", f"rule:cloud_reader or {_OWNER}"),
    Rule("identity:create_application_credential", _OWNER),
    Rule("identity:delete_application_credential", f"rule:cloud_admin or {_OWNER}"),
    # Trusts: the trustor and the trustee.
    Rule("identity:create_trust", "user_id:%(target.trust.trustor_user_id)s"),
    Rule("identity:list_trusts", "rule:cloud_reader"),
    Rule(
        "identity:list_trusts_for_trustor",
        "rule:cloud_reader or user_id:%(target.trust.trustor_user_id)s",
    ),
    Rule(
        "identity:list_trusts_for_trustee",
        "rule:cloud_reader or user_id:%(target.trust.trustee_user_id)s",
    ),
    Rule(
        "identity:get_trust",
        "rule:cloud_reader or user_id:%(target.trust.trustor_user_id)s "
        "or user_id:%(target.trust.trustee_user_id)s",
    ),
    Rule("identity:delete_trust", "rule:cloud_admin or user_id:%(target.trust.trustor_user_id)s"),
    Rule(
        "identity:list_roles_for_trust",
        "rule:cloud_reader or user_id:%(target.trust.trustor_user_id)s "
        "or user_id:%(target.trust.trustee_user_id)s",
    ),
    Rule(
        "identity:get_role_for_trust",
        "rule:cloud_reader or user_id:%(target.trust.trustor_user_id)s "
        "or user_id:%(target.trust.trustee_user_id)s",
    ),
]
