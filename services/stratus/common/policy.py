"""Role-based access control with OpenStack's policy language.

Each service registers default rules next to its handlers; the operator may
override any of them from a YAML or JSON file (``policy_file``) without
touching code. Rules read like oslo.policy's::

    "identity:list_users": "rule:admin_required or (role:reader and domain_id:%(target.domain_id)s)"

Checks on the left of ``:`` name a credential attribute of the caller
(``role``, ``user_id``, ``project_id``, ``domain_id``, ``system_scope``,
``is_admin_project``, ...); on the right a literal or ``%(name)s`` taken from
the target. ``rule:X`` refers to another rule, ``@`` always passes, ``!``
never does; ``and``, ``or``, ``not`` and parentheses combine them.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from stratus.common import errors
from stratus.common.config import ConfigError

LOG = logging.getLogger(__name__)

Check = Callable[[Mapping[str, Any], Mapping[str, Any], "Enforcer"], bool]


class PolicySyntaxError(ConfigError):
    """A rule, or the operator's policy file, cannot be used."""


@dataclass(frozen=True)
class Rule:
    name: str
    check_str: str
    description: str = ""


def _tokens(text: str) -> list[str]:
    """Split on white space, then peel brackets off the ends of each word.

    Brackets inside a word belong to a substitution such as ``%(project_id)s``.
    """
    tokens: list[str] = []
    for word in text.split():
        leading = len(word) - len(word.lstrip("("))
        tokens.extend("(" * leading)
        word = word[leading:]
        core = word.rstrip(")")
        trailing = len(word) - len(core)
        if core.endswith("%(") or (core.count("(") > core.count(")")):
            # ')' that closes a substitution, not a group
            core, trailing = core + ")", trailing - 1
        if core:
            tokens.append(core)
        tokens.extend(")" * trailing)
    return tokens


def _substitute(value: str, target: Mapping[str, Any]) -> Any:
    match = re.fullmatch(r"%\(([^)]+)\)s", value)
    if not match:
        return value
    key = match.group(1)
    if key in target:
        return target[key]
    current: Any = target
    for part in key.split("."):
        if isinstance(current, Mapping) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


_MISSING = object()


def _generic(kind: str, match: str) -> Check:
    def check(creds: Mapping[str, Any], target: Mapping[str, Any], _e: Enforcer) -> bool:
        expected = _substitute(match, target)
        if expected is _MISSING:
            return False
        if kind == "role":
            roles = {r.lower() for r in creds.get("roles", ())}
            return str(expected).lower() in roles
        actual = creds.get(kind)
        if isinstance(actual, bool) or isinstance(expected, bool):
            return str(actual).lower() == str(expected).lower()
        if actual is None:
            return False
        return str(actual) == str(expected)

    return check


def _compile(text: str) -> Check:
    tokens = _tokens(text)
    if not tokens:
        return lambda _c, _t, _e: True
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        token = tokens[pos]
        pos += 1
        return token

    def parse_or() -> Check:
        left = parse_and()
        while peek() == "or":
            take()
            right = parse_and()
            left = (lambda a, b: lambda c, t, e: a(c, t, e) or b(c, t, e))(left, right)
        return left

    def parse_and() -> Check:
        left = parse_not()
        while peek() == "and":
            take()
            right = parse_not()
            left = (lambda a, b: lambda c, t, e: a(c, t, e) and b(c, t, e))(left, right)
        return left

    def parse_not() -> Check:
        if peek() == "not":
            take()
            inner = parse_not()
            return lambda c, t, e: not inner(c, t, e)
        return parse_atom()

    def parse_atom() -> Check:
        word = peek()
        if word is None:
            raise PolicySyntaxError(f"unexpected end of rule {text!r}")
        take()
        if word == "(":
            inner = parse_or()
            if peek() != ")":
                raise PolicySyntaxError(f"missing ')' in {text!r}")
            take()
            return inner
        if word == "@":
            return lambda _c, _t, _e: True
        if word == "!":
            return lambda _c, _t, _e: False
        if ":" not in word:
            raise PolicySyntaxError(f"{word!r} in {text!r} is not a check of the form kind:match")
        kind, match = word.split(":", 1)
        if kind == "rule":
            return lambda c, t, e: e.check(match, c, t)
        return _generic(kind, match)

    result = parse_or()
    if pos != len(tokens):
        raise PolicySyntaxError(f"unexpected {tokens[pos]!r} in {text!r}")
    return result


class Enforcer:
    """Default rules, overridden by the operator's file, compiled once."""

    def __init__(self, defaults: list[Rule], policy_file: str | None = None):
        self.defaults = {rule.name: rule for rule in defaults}
        self.rules: dict[str, str] = {name: rule.check_str for name, rule in self.defaults.items()}
        if policy_file:
            self.rules.update(load_overrides(policy_file))
        self._compiled = {name: _compile(text) for name, text in self.rules.items()}

    def check(self, name: str, creds: Mapping[str, Any], target: Mapping[str, Any]) -> bool:
        compiled = self._compiled.get(name)
        if compiled is None:
            LOG.warning("policy rule %s is not defined; denying", name)
            return False
        return compiled(creds, target, self)

    def enforce(self, name: str, creds: Mapping[str, Any], target: Mapping[str, Any]) -> None:
        if not self.check(name, creds, target):
            raise errors.Forbidden(
                f"You are not authorized to perform the requested action: {name}."
            )


def load_overrides(path: str) -> dict[str, str]:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicySyntaxError(f"policy file {path} cannot be read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise PolicySyntaxError(f"policy file {path} cannot be parsed: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in data.items()
    ):
        raise PolicySyntaxError(f"policy file {path} must map rule names to rule strings")
    for name, rule in data.items():
        try:
            _compile(rule)
        except PolicySyntaxError as exc:
            raise PolicySyntaxError(f"policy file {path}: rule {name}: {exc}") from exc
    return data


# Rules every service shares. ``cloud_admin`` is an admin of the whole cloud:
# the admin role with system scope, or on the admin project (OpenStack's
# long-standing convention, which the openstack CLI's default admin relies on).
BASE_RULES = [
    Rule(
        "cloud_admin",
        "role:admin and (system_scope:all or is_admin_project:True)",
        "An administrator of the whole cloud.",
    ),
    Rule(
        "cloud_reader",
        "(role:reader and system_scope:all) or rule:cloud_admin",
        "May read everything in the cloud: a reader with system scope, or a cloud admin.",
    ),
    Rule("admin_required", "rule:cloud_admin"),
    Rule("service_role", "role:service", "Another Stratus service acting for a user."),
    Rule("project_member", "role:member and project_id:%(project_id)s"),
    Rule("project_reader", "role:reader and project_id:%(project_id)s"),
    Rule("owner", "user_id:%(user_id)s"),
]


def caller_allowed(
    enforcer: Enforcer, req: Any, rule: str, target: Mapping[str, Any] | None = None
) -> bool:
    """Whether the request's caller passes ``rule`` on ``target`` (the
    resource's attributes, reached as ``%(target.<name>)s`` in the rules)."""
    return enforcer.check(rule, req.context.creds(), {"target": dict(target or {})})


def enforce_caller(
    enforcer: Enforcer, req: Any, rule: str, target: Mapping[str, Any] | None = None
) -> Any:
    """The request's caller (its ``RequestContext``) after ``rule`` on
    ``target``: 401 without a valid token, 403 when the rule says no."""
    context = req.context
    enforcer.enforce(rule, context.creds(), {"target": dict(target or {})})
    return context
