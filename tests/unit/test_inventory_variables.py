"""Every Stratus setting the shipped inventories and Molecule scenarios set is one a role knows.

Ansible takes any variable an inventory sets, so a misspelt setting
(``stratus_compute_libvirt_cgroup_controlers``) is silently ignored and the
role's default applies. The roles' ``meta/argument_specs.yml`` list every
public variable; what an inventory (hosts.yml, group_vars) or a scenario's
host_vars set under the ``stratus_`` prefix must be among them. The one
exception is ``stratus_lab_address``, a host's own address on the lab
bridge, which marks it as a lab host for the lab playbooks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# Host variables that belong to no role's entry point.
HOST_MARKERS = frozenset({"stratus_lab_address"})


def role_options() -> set[str]:
    names: set[str] = set()
    for spec in ROOT.glob("roles/*/meta/argument_specs.yml"):
        for entry in yaml.safe_load(spec.read_text())["argument_specs"].values():
            names |= set((entry.get("options") or {}).keys())
    return names


def group_settings(group: dict[str, Any]) -> dict[str, set[str]]:
    """The variables a group of an inventory file sets, by where they are set."""
    found: dict[str, set[str]] = {}
    for host, values in (group.get("hosts") or {}).items():
        if values:
            found[f"host {host}"] = set(values)
    if group.get("vars"):
        found["group vars"] = set(group["vars"])
    for name, child in (group.get("children") or {}).items():
        for where, names in group_settings(child or {}).items():
            found[f"{name}: {where}"] = names
    return found


def inventory_settings(inventory: Path) -> dict[str, set[str]]:
    found = group_settings(yaml.safe_load((inventory / "hosts.yml").read_text())["all"])
    for path in sorted(inventory.glob("group_vars/**/*.yml")):
        found[str(path.relative_to(inventory))] = set(yaml.safe_load(path.read_text()) or {})
    return found


def scenario_settings(scenario: Path) -> dict[str, set[str]]:
    provisioner = yaml.safe_load(scenario.read_text())["provisioner"]
    host_vars = (provisioner.get("inventory") or {}).get("host_vars") or {}
    return {f"host_vars of {host}": set(values) for host, values in host_vars.items()}


SOURCES = [
    *(("inventory", path) for path in sorted(ROOT.glob("inventories/*")) if path.is_dir()),
    *(("scenario", path) for path in sorted(ROOT.glob("molecule/*/molecule.yml"))),
]


@pytest.mark.parametrize(
    ("kind", "path"), SOURCES, ids=[str(path.relative_to(ROOT)) for _, path in SOURCES]
)
def test_settings_are_known_to_a_role(kind: str, path: Path) -> None:
    known = role_options() | HOST_MARKERS
    settings = inventory_settings(path) if kind == "inventory" else scenario_settings(path)
    unknown = {
        where: sorted(n for n in names if n.startswith("stratus_") and n not in known)
        for where, names in settings.items()
    }
    assert {where: names for where, names in unknown.items() if names} == {}


def test_the_check_sees_a_misspelt_setting(tmp_path: Path) -> None:
    """The check reads where inventories set things: a typo in group_vars is found."""
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n      stratus_lab_address: 1\n")
    (tmp_path / "group_vars" / "all" / "x.yml").write_text(
        "stratus_compute_libvirt_cgroup_controlers: []\n"
    )
    settings = inventory_settings(tmp_path)
    names = set().union(*settings.values())
    assert names - role_options() - HOST_MARKERS == {"stratus_compute_libvirt_cgroup_controlers"}
