"""``/v2.0/security-groups`` and ``/v2.0/security-group-rules``.

Every project has one ``default`` group, made on first need (a port created
without groups, or the project listing its groups) and made once: the
``network_default_security_groups`` key holds one row per project. It lets
every egress and accepts ingress from its own members; a new group lets every
egress only. The agent turns the rules into stateful nftables rules per port.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network import ipam
from stratus.network.api import common
from stratus.network.model import (
    DefaultSecurityGroup,
    PortSecurityGroup,
    SecurityGroup,
    SecurityGroupRule,
)

PROTOCOL_NUMBERS = {
    "ah": 51,
    "dccp": 33,
    "egp": 8,
    "esp": 50,
    "gre": 47,
    "icmp": 1,
    "icmpv6": 58,
    "igmp": 2,
    "ipip": 4,
    "ipv6-encap": 41,
    "ipv6-frag": 44,
    "ipv6-icmp": 58,
    "ipv6-nonxt": 59,
    "ipv6-opts": 60,
    "ipv6-route": 43,
    "ospf": 89,
    "pgm": 113,
    "rsvp": 46,
    "sctp": 132,
    "tcp": 6,
    "udp": 17,
    "udplite": 136,
    "vrrp": 112,
}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP_PROTOCOLS = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}
GROUP_ATTRIBUTES = {"name", "description", "project_id", "tenant_id", "stateful"}
RULE_ATTRIBUTES = {
    "security_group_id",
    "direction",
    "ethertype",
    "protocol",
    "port_range_min",
    "port_range_max",
    "remote_ip_prefix",
    "remote_group_id",
    "remote_address_group_id",
    "description",
    "project_id",
    "tenant_id",
}


# --- views --------------------------------------------------------------------


def rule_view(rule: SecurityGroupRule, default_ids: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    return {
        "id": rule.id,
        "security_group_id": rule.security_group_id,
        "direction": rule.direction,
        "ethertype": rule.ethertype,
        "protocol": rule.protocol,
        "port_range_min": rule.port_range_min,
        "port_range_max": rule.port_range_max,
        "remote_ip_prefix": rule.remote_ip_prefix,
        "remote_group_id": rule.remote_group_id,
        "remote_address_group_id": None,
        "normalized_cidr": rule.remote_ip_prefix,
        "belongs_to_default_sg": rule.security_group_id in default_ids,
        **common.standard(rule),
    }


def group_view(
    group: SecurityGroup,
    tags: list[str],
    default_ids: set[str] = frozenset(),  # type: ignore[assignment]
) -> dict[str, Any]:
    return {
        "id": group.id,
        "name": group.name,
        "stateful": group.stateful,
        "shared": False,
        "security_group_rules": [rule_view(r, default_ids) for r in group.rules],
        **common.standard(group, tags),
    }


def default_ids(session: Session) -> set[str]:
    return set(session.scalars(select(DefaultSecurityGroup.security_group_id)))


# --- the default group ----------------------------------------------------------


def _egress_rules(group: SecurityGroup) -> list[SecurityGroupRule]:
    return [
        SecurityGroupRule(
            id=str(uuid.uuid4()),
            security_group_id=group.id,
            project_id=group.project_id,
            direction="egress",
            ethertype=ethertype,
            revision_number=0,
        )
        for ethertype in ("IPv4", "IPv6")
    ]


def default_group(session: Session, project_id: str) -> SecurityGroup:
    """The project's ``default`` group, made now if it has none (exactly once)."""
    row = session.get(DefaultSecurityGroup, project_id)
    if row is not None:
        group = session.get(SecurityGroup, row.security_group_id)
        assert group is not None
        return group
    group = SecurityGroup(
        id=str(uuid.uuid4()),
        project_id=project_id,
        name="default",
        description="Default security group",
        revision_number=0,
    )
    rules = _egress_rules(group) + [
        SecurityGroupRule(
            id=str(uuid.uuid4()),
            security_group_id=group.id,
            project_id=project_id,
            direction="ingress",
            ethertype=ethertype,
            remote_group_id=group.id,
            revision_number=0,
        )
        for ethertype in ("IPv4", "IPv6")
    ]
    try:
        with session.begin_nested():
            session.add(group)
            session.flush()
            session.add(DefaultSecurityGroup(project_id=project_id, security_group_id=group.id))
            session.add_all(rules)
            session.flush()
    except IntegrityError:
        # Another request made it first: use theirs.
        row = session.get(DefaultSecurityGroup, project_id)
        assert row is not None
        found = session.get(SecurityGroup, row.security_group_id)
        assert found is not None
        return found
    session.refresh(group)
    return group


# --- groups -------------------------------------------------------------------


def target(group: SecurityGroup) -> dict[str, Any]:
    return {"project_id": group.project_id}


def get_group(req: ApiRequest, session: Session, group_id: str) -> SecurityGroup:
    group = session.get(SecurityGroup, group_id)
    if group is None or (not common.sees_all(req) and group.project_id != req.context.project_id):
        raise errors.NotFound(
            f"Security group {group_id} does not exist", kind="SecurityGroupNotFound"
        )
    return group


@endpoint
def create_group(req: ApiRequest) -> Response:
    items, bulk = common.bodies(req, "security_group", "security_groups")
    views = []
    with common.service(req).db.session() as session:
        for values in items:
            common.check_attributes(values, GROUP_ATTRIBUTES)
            project = common.owner_of(req, values)
            common.enforce(req, "network:create_security_group", {"project_id": project})
            name = common.as_string(values.get("name"), "name")
            if name == "default":
                raise errors.Conflict(
                    "Default security group already exists.",
                    kind="SecurityGroupDefaultAlreadyExists",
                )
            default_group(session, project)
            common.check_quota(req, session, "security_group", project, SecurityGroup)
            group = SecurityGroup(
                id=str(uuid.uuid4()),
                project_id=project,
                name=name,
                description=common.as_string(values.get("description"), "description"),
                stateful=common.as_bool(values.get("stateful", True), "stateful"),
                revision_number=0,
            )
            session.add(group)
            session.flush()
            session.add_all(_egress_rules(group))
            session.flush()
            session.refresh(group)
            views.append(group_view(group, []))
    if bulk:
        return ok({"security_groups": views}, 201)
    return ok({"security_group": views[0]}, 201)


@endpoint
def list_groups(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        project = req.context.project_id
        if project:
            default_group(session, project)
        query = select(SecurityGroup)
        if not common.sees_all(req):
            query = query.where(SecurityGroup.project_id == project)
        rows = list(session.scalars(query))
        tags = common.tags_of(session, [g.id for g in rows])
        defaults = default_ids(session)
        views = [group_view(g, tags[g.id], defaults) for g in rows]
    return common.list_response(req, "security_groups", views)


@endpoint
def show_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group = get_group(req, session, req.path_params["group_id"])
        result = group_view(
            group, common.tags_of(session, [group.id])[group.id], default_ids(session)
        )
    return common.show(req, "security_group", result)


@endpoint
def update_group(req: ApiRequest) -> Response:
    values = common.body(req, "security_group")
    common.check_attributes(values, {"name", "description", "stateful"})
    with common.service(req).db.session() as session:
        group = get_group(req, session, req.path_params["group_id"])
        common.enforce(req, "network:update_security_group", target(group))
        is_default = group.id in default_ids(session)
        if "name" in values:
            name = common.as_string(values["name"], "name")
            if is_default and name != "default":
                raise errors.Conflict(
                    "Updating default security group not allowed.",
                    kind="SecurityGroupCannotUpdateDefault",
                )
            if not is_default and name == "default":
                raise errors.Conflict(
                    "Default security group already exists.",
                    kind="SecurityGroupDefaultAlreadyExists",
                )
            group.name = name
        if "description" in values:
            group.description = common.as_string(values["description"], "description")
        if "stateful" in values:
            stateful = common.as_bool(values["stateful"], "stateful")
            if stateful != group.stateful and _in_use(session, group.id):
                raise errors.Conflict(
                    f"Security group {group.id} is in use; its statefulness cannot change.",
                    kind="SecurityGroupInUse",
                )
            group.stateful = stateful
        common.touch(group)
        session.flush()
        result = group_view(
            group, common.tags_of(session, [group.id])[group.id], default_ids(session)
        )
    return ok({"security_group": result})


def _in_use(session: Session, group_id: str) -> bool:
    return bool(
        session.scalar(
            select(func.count())
            .select_from(PortSecurityGroup)
            .where(PortSecurityGroup.security_group_id == group_id)
        )
    )


@endpoint
def delete_group(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        group = get_group(req, session, req.path_params["group_id"])
        common.enforce(req, "network:delete_security_group", target(group))
        if group.id in default_ids(session) and not common.is_admin(req):
            raise errors.Conflict(
                "Insufficient rights for removing default security group.",
                kind="SecurityGroupCannotRemoveDefault",
            )
        if _in_use(session, group.id):
            raise errors.Conflict(f"Security Group {group.id} in use.", kind="SecurityGroupInUse")
        session.execute(
            DefaultSecurityGroup.__table__.delete().where(
                DefaultSecurityGroup.security_group_id == group.id
            )
        )
        common.drop_tags(session, group.id)
        session.delete(group)
    return no_content()


# --- rules --------------------------------------------------------------------


def _protocol(value: Any) -> str | None:
    if value in (None, "", "any"):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise errors.BadRequest(f"Security group rule protocol {value!r} not supported.")
    lowered = value.lower()
    if lowered in PROTOCOL_NUMBERS:
        return lowered
    if lowered.isdigit() and 0 <= int(lowered) <= 255:
        return str(int(lowered))
    raise errors.BadRequest(
        f"Security group rule protocol {value} not supported. Only protocol values "
        f"{sorted(PROTOCOL_NUMBERS)} and integer representations [0 to 255] are supported.",
        kind="SecurityGroupRuleInvalidProtocol",
    )


def _port(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise errors.BadRequest(f"Invalid input for {name}: {value!r}.", kind="InvalidInput")
    return value


def _check_ports(protocol: str | None, low: int | None, high: int | None) -> None:
    if (low is not None or high is not None) and protocol is None:
        raise errors.BadRequest(
            "Must also specify protocol if port range is given.",
            kind="SecurityGroupProtocolRequiredWithPorts",
        )
    if protocol in PORT_PROTOCOLS:
        for value in (low, high):
            if value is not None and not 1 <= value <= 65535:
                raise errors.BadRequest(
                    f"Invalid value for port {value}.", kind="SecurityGroupInvalidPortValue"
                )
        # Both ends or neither (Neutron's rule): a single port is min = max.
        if (low is not None or high is not None) and (low is None or high is None or low > high):
            raise errors.BadRequest(
                "For TCP/UDP protocols, port_range_min must be <= port_range_max.",
                kind="SecurityGroupInvalidPortRange",
            )
    elif protocol in ICMP_PROTOCOLS:
        for value, what in ((low, "type (port_range_min)"), (high, "code (port_range_max)")):
            if value is not None and not 0 <= value <= 255:
                raise errors.BadRequest(
                    f"Invalid value for ICMP {what}: {value}.",
                    kind="SecurityGroupInvalidIcmpValue",
                )
        if high is not None and low is None:
            raise errors.BadRequest(
                f"ICMP code (port-range-max) {high} is provided but ICMP type (port-range-min) "
                "is missing.",
                kind="SecurityGroupMissingIcmpType",
            )
    elif low is not None or high is not None:
        raise errors.BadRequest(
            f"Port ranges are not supported for protocol {protocol}.",
            kind="SecurityGroupInvalidProtocolForPort",
        )


def _same(rule: SecurityGroupRule, other: SecurityGroupRule) -> bool:
    keys = (
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
    )
    return all(getattr(rule, k) == getattr(other, k) for k in keys)


def create_rule_one(req: ApiRequest, session: Session, values: dict[str, Any]) -> SecurityGroupRule:
    common.check_attributes(values, RULE_ATTRIBUTES)
    if values.get("remote_address_group_id") is not None:
        raise errors.BadRequest("Address groups are not supported by this cloud.")
    group_id = values.get("security_group_id")
    if not isinstance(group_id, str):
        raise errors.BadRequest("Invalid input for security_group_id: a group ID is required.")
    group = get_group(req, session, group_id)
    project = common.owner_of(
        req, {**values, "project_id": values.get("project_id") or group.project_id}
    )
    common.enforce(req, "network:create_security_group_rule", {"project_id": group.project_id})
    direction = values.get("direction")
    if direction not in ("ingress", "egress"):
        raise errors.BadRequest(
            f"Invalid input for direction. Reason: '{direction}' is not in ['ingress', 'egress'].",
            kind="InvalidInput",
        )
    ethertype = values.get("ethertype") or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise errors.BadRequest(
            f"Invalid input for ethertype. Reason: '{ethertype}' is not in ['IPv4', 'IPv6'].",
            kind="InvalidInput",
        )
    protocol = _protocol(values.get("protocol"))
    if protocol == "icmp" and ethertype == "IPv6":
        protocol = "ipv6-icmp"
    low = _port(values.get("port_range_min"), "port_range_min")
    high = _port(values.get("port_range_max"), "port_range_max")
    _check_ports(protocol, low, high)
    prefix = values.get("remote_ip_prefix")
    remote_group = values.get("remote_group_id")
    if prefix is not None and remote_group is not None:
        raise errors.BadRequest(
            "Only remote_ip_prefix or remote_group_id may be provided.",
            kind="SecurityGroupRemoteGroupAndRemoteIpPrefix",
        )
    if prefix is not None:
        network = ipam.parse_cidr(
            prefix if "/" in str(prefix) else f"{prefix}/{32 if ':' not in str(prefix) else 128}",
            "remote_ip_prefix",
        )
        if (network.version == 4) != (ethertype == "IPv4"):
            raise errors.BadRequest(
                f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                kind="SecurityGroupRuleParameterConflict",
            )
        prefix = str(network)
        if network.prefixlen == 0:
            prefix = None  # the whole address space: same as no prefix
    if remote_group is not None:
        get_group(req, session, remote_group)
    rule = SecurityGroupRule(
        id=str(uuid.uuid4()),
        security_group_id=group.id,
        project_id=project,
        direction=direction,
        ethertype=ethertype,
        protocol=protocol,
        port_range_min=low,
        port_range_max=high,
        remote_ip_prefix=prefix,
        remote_group_id=remote_group,
        description=common.as_string(values.get("description"), "description"),
        revision_number=0,
    )
    for existing in group.rules:
        if _same(rule, existing):
            raise errors.Conflict(
                f"Security group rule already exists. Rule id is {existing.id}.",
                kind="SecurityGroupRuleExists",
            )
    common.check_quota(req, session, "security_group_rule", group.project_id, SecurityGroupRule)
    session.add(rule)
    common.touch(group)
    session.flush()
    session.refresh(group)
    return rule


def _rule_views(session: Session, rules: list[SecurityGroupRule]) -> list[dict[str, Any]]:
    defaults = default_ids(session)
    return [rule_view(r, defaults) for r in rules]


@endpoint
def create_rule(req: ApiRequest) -> Response:
    return common.create(
        req, "security_group_rule", "security_group_rules", create_rule_one, _rule_views
    )


def _get_rule(req: ApiRequest, session: Session, rule_id: str) -> SecurityGroupRule:
    rule = session.get(SecurityGroupRule, rule_id)
    if rule is None:
        raise errors.NotFound(
            f"Security group rule {rule_id} does not exist", kind="SecurityGroupRuleNotFound"
        )
    group = session.get(SecurityGroup, rule.security_group_id)
    if group is None or (not common.sees_all(req) and group.project_id != req.context.project_id):
        raise errors.NotFound(
            f"Security group rule {rule_id} does not exist", kind="SecurityGroupRuleNotFound"
        )
    return rule


@endpoint
def list_rules(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        query = select(SecurityGroupRule).join(
            SecurityGroup, SecurityGroup.id == SecurityGroupRule.security_group_id
        )
        if not common.sees_all(req):
            query = query.where(SecurityGroup.project_id == req.context.project_id)
        wanted = req.query.getlist("security_group_id")
        if wanted:
            query = query.where(SecurityGroupRule.security_group_id.in_(wanted))
        defaults = default_ids(session)
        views = [rule_view(r, defaults) for r in session.scalars(query)]
    return common.list_response(req, "security_group_rules", views)


@endpoint
def show_rule(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        rule = _get_rule(req, session, req.path_params["rule_id"])
        result = rule_view(rule, default_ids(session))
    return common.show(req, "security_group_rule", result)


@endpoint
def delete_rule(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        rule = _get_rule(req, session, req.path_params["rule_id"])
        group = session.get(SecurityGroup, rule.security_group_id)
        assert group is not None
        common.enforce(req, "network:delete_security_group_rule", target(group))
        session.delete(rule)
        common.touch(group)
    return no_content()


ROUTES = [
    Route("/v2.0/security-groups", list_groups, methods=["GET"]),
    Route("/v2.0/security-groups", create_group, methods=["POST"]),
    Route("/v2.0/security-groups/{group_id}", show_group, methods=["GET"]),
    Route("/v2.0/security-groups/{group_id}", update_group, methods=["PUT"]),
    Route("/v2.0/security-groups/{group_id}", delete_group, methods=["DELETE"]),
    Route("/v2.0/security-group-rules", list_rules, methods=["GET"]),
    Route("/v2.0/security-group-rules", create_rule, methods=["POST"]),
    Route("/v2.0/security-group-rules/{rule_id}", show_rule, methods=["GET"]),
    Route("/v2.0/security-group-rules/{rule_id}", delete_rule, methods=["DELETE"]),
]
