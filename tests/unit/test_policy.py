"""The policy language and the operator's overrides."""

from __future__ import annotations

import pytest

from stratus.common import errors
from stratus.common.policy import BASE_RULES, Enforcer, PolicySyntaxError, Rule

ADMIN = {
    "user_id": "u1",
    "roles": ["admin", "member", "reader"],
    "project_id": "p1",
    "is_admin_project": True,
    "system_scope": None,
}
PROJECT_ADMIN = {**ADMIN, "is_admin_project": False}
MEMBER = {
    "user_id": "u2",
    "roles": ["member", "reader"],
    "project_id": "p2",
    "is_admin_project": False,
}
SYSTEM_READER = {"user_id": "u3", "roles": ["reader"], "system_scope": "all"}


def enforcer(*rules, policy_file=None):
    return Enforcer([*BASE_RULES, *rules], policy_file)


def test_cloud_admin_needs_the_admin_project_or_system_scope():
    e = enforcer()
    assert e.check("cloud_admin", ADMIN, {})
    assert not e.check("cloud_admin", PROJECT_ADMIN, {})
    assert not e.check("cloud_admin", MEMBER, {})
    assert e.check("cloud_reader", SYSTEM_READER, {})


def test_target_substitution_and_nesting():
    e = enforcer(
        Rule("own", "rule:cloud_admin or (role:member and project_id:%(target.project_id)s)")
    )
    assert e.check("own", MEMBER, {"target": {"project_id": "p2"}})
    assert not e.check("own", MEMBER, {"target": {"project_id": "p1"}})
    assert not e.check("own", MEMBER, {"target": {}})  # a missing value never matches
    assert e.check("own", ADMIN, {"target": {"project_id": "p9"}})


def test_not_always_and_never():
    e = enforcer(Rule("a", "not role:admin"), Rule("b", "@"), Rule("c", "!"))
    assert e.check("a", MEMBER, {}) and not e.check("a", ADMIN, {})
    assert e.check("b", MEMBER, {}) and not e.check("c", ADMIN, {})


def test_unknown_rule_denies_and_enforce_raises_403():
    e = enforcer()
    assert not e.check("nope", ADMIN, {})
    with pytest.raises(errors.Forbidden):
        e.enforce("nope", ADMIN, {})


@pytest.mark.parametrize("bad", ["(role:admin", "role:admin and", "admin", "role:a )"])
def test_syntax_errors(tmp_path, bad):
    path = tmp_path / "policy.yaml"
    path.write_text(f'"x": "{bad}"\n')
    with pytest.raises(PolicySyntaxError):
        enforcer(policy_file=str(path))


def test_operator_file_overrides_defaults(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text('"identity:list_users": "role:member"\n')
    e = enforcer(Rule("identity:list_users", "rule:cloud_admin"), policy_file=str(path))
    assert e.check("identity:list_users", MEMBER, {})
    json_path = tmp_path / "policy.json"
    json_path.write_text('{"identity:list_users": "!"}')
    e = enforcer(Rule("identity:list_users", "@"), policy_file=str(json_path))
    assert not e.check("identity:list_users", ADMIN, {})
