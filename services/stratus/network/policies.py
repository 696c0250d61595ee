"""The network service's default RBAC rules (Neutron's secure defaults).

- the *cloud admin* may do everything and sees everything;
- a *project member* creates and changes its project's resources, and
  attaches ports to networks shared with it;
- a *project reader* sees its project's resources.

Provider attributes, ``shared``, ``router:external``, port bindings and
placement are the cloud admin's. Which rows a project *may see* (its own,
shared and external networks) is decided by the handlers' queries; these
rules decide what it may *do*. Targets carry ``project_id`` (the resource's
owner) and, for ports and subnets, ``network_owner``.
"""

from stratus.common.policy import BASE_RULES, Rule

_ADMIN = "rule:cloud_admin"
_MEMBER = "rule:cloud_admin or (role:member and project_id:%(target.project_id)s)"
_READER = "rule:cloud_reader or (role:reader and project_id:%(target.project_id)s)"
_NET_OWNER_MEMBER = "rule:cloud_admin or (role:member and project_id:%(target.network_owner)s)"

_RESOURCES = ("network", "subnet", "port", "router", "floatingip", "security_group")


def _crud(resource: str) -> list[Rule]:
    return [
        Rule(f"network:create_{resource}", _MEMBER, f"Create a {resource}."),
        Rule(f"network:get_{resource}", _READER, f"Show or list {resource}s."),
        Rule(f"network:update_{resource}", _MEMBER, f"Update a {resource}."),
        Rule(f"network:delete_{resource}", _MEMBER, f"Delete a {resource}."),
    ]


# Compute's service user makes, binds and removes its servers' ports in
# their projects (and reads the networks and security groups it checks).
_SERVICE = " or rule:service_role"


def _with_service(rule: Rule) -> Rule:
    return Rule(rule.name, rule.check_str + _SERVICE, rule.description)


RULES: list[Rule] = [
    *BASE_RULES,
    *[
        _with_service(rule) if resource == "port" else rule
        for resource in _RESOURCES
        for rule in _crud(resource)
    ],
    Rule(
        "network:create_security_group_rule", _MEMBER, "Add a rule to a project's security group."
    ),
    Rule("network:get_security_group_rule", _READER, "Show or list security group rules."),
    Rule("network:delete_security_group_rule", _MEMBER, "Remove a security group rule."),
    Rule("network:set_shared", _ADMIN, "Share a network with every project."),
    Rule("network:set_external", _ADMIN, "Make a network external (router:external)."),
    Rule("network:set_provider", _ADMIN, "Set or see a network's provider attributes."),
    Rule(
        "network:set_owner",
        "rule:cloud_admin or rule:service_role",
        "Create a resource for another project (admins, and compute for its servers' ports).",
    ),
    Rule(
        "network:create_port_on_network",
        _NET_OWNER_MEMBER + _SERVICE,
        "Create a port on a network that is not shared (its owner, an admin or compute).",
    ),
    Rule(
        "network:set_port_device_owner",
        _NET_OWNER_MEMBER,
        "Give a port a network:* device_owner (router, DHCP).",
    ),
    Rule(
        "network:set_port_fixed_ip_address",
        _NET_OWNER_MEMBER + _SERVICE,
        "Choose a port's IP address on a shared network (the owner, an admin or compute).",
    ),
    Rule("network:set_port_mac_address", _NET_OWNER_MEMBER, "Choose a port's MAC address."),
    Rule(
        "network:set_port_binding",
        "rule:cloud_admin or rule:service_role",
        "Bind a port to a host (admins, and compute for its guests' ports).",
    ),
    Rule("network:set_port_security", _MEMBER, "Turn port security off or on (project member)."),
    Rule(
        "network:create_subnet_on_network",
        _NET_OWNER_MEMBER,
        "Create a subnet on a network (its owner or an admin).",
    ),
    Rule("network:add_router_interface", _MEMBER, "Attach a subnet or port to a router."),
    Rule("network:remove_router_interface", _MEMBER, "Detach a subnet or port from a router."),
    Rule(
        "network:set_router_gateway_snat", _ADMIN, "Turn SNAT off on a router's external gateway."
    ),
    Rule("network:get_quota", _READER, "Show a project's quotas."),
    Rule("network:update_quota", _ADMIN, "Change or reset a project's quotas."),
    Rule(
        "network:get_agent",
        "rule:cloud_reader or rule:service_role",
        "List and show network agents (agents read their peers' tunnel endpoints).",
    ),
    Rule("network:update_agent", _ADMIN, "Enable, disable or describe an agent."),
    Rule("network:delete_agent", _ADMIN, "Forget an agent."),
    Rule(
        "network:report_agent",
        "rule:cloud_admin or rule:service_role",
        "An agent reports its host and the ports it wired (the network service's user).",
    ),
    Rule(
        "network:see_all",
        "rule:cloud_reader or rule:service_role",
        "See every project's resources, with their bindings (admins, readers, agents).",
    ),
]
