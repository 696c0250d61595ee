"""The collection passes ansible-lint's production profile, and its roles
follow the house rules for variables (STYLE.md, Ansible roles):

- every variable in ``defaults/main.yml`` carries the role's prefix
  (``stratus_<role>_``; internal ones ``_stratus_<role>_``) and every public
  one is typed and described in ``meta/argument_specs.yml``, with the same
  default where the default is a plain value;
- ``vars/*.yml``, registered results and facts are internal (``_stratus_<role>_``).

ansible-lint's own prefix check (``var-naming[no-role-prefix]``) wants
``<role>_`` and is skipped in .ansible-lint in favour of this one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ROLES = sorted(p for p in (ROOT / "roles").iterdir() if (p / "tasks").is_dir())

# Roles whose prefix is not stratus_<directory name>_.
PREFIXES = {"lab_host": "stratus_lab_"}


def prefix_of(role: Path) -> str:
    return PREFIXES.get(role.name, f"stratus_{role.name}_")


def _load(path: Path):  # type: ignore[no-untyped-def]
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def _ansible_lint() -> str:
    candidate = Path(sys.executable).with_name("ansible-lint")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("ansible-lint")
    if not found:
        pytest.skip("ansible-lint is not installed")
    return found


@pytest.mark.timeout(600)
def test_ansible_lint_production_profile() -> None:
    link = ROOT / "scripts" / "link-collection.sh"
    if link.exists():
        subprocess.run([str(link)], check=True, cwd=ROOT, capture_output=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["NO_COLOR"] = "1"
    run = subprocess.run(
        [_ansible_lint(), "--profile", "production", "--nocolor", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, f"ansible-lint failed:\n{run.stdout}\n{run.stderr}"


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_defaults_are_prefixed_and_specified(role: Path) -> None:
    prefix = prefix_of(role)
    defaults = _load(role / "defaults" / "main.yml") or {}
    specs_file = role / "meta" / "argument_specs.yml"
    assert specs_file.exists(), f"{role.name}: meta/argument_specs.yml is missing"
    specs = (_load(specs_file) or {}).get("argument_specs", {})
    assert "main" in specs, f"{role.name}: argument_specs has no 'main' entry point"
    options = specs["main"].get("options", {})

    problems = []
    for name, value in defaults.items():
        if name.startswith("_"):
            if not name.startswith(f"_{prefix}"):
                problems.append(f"internal default {name} lacks the prefix _{prefix}")
            continue
        if not name.startswith(prefix):
            problems.append(f"{name} lacks the prefix {prefix}")
        if name not in options:
            problems.append(f"{name} is not declared in meta/argument_specs.yml (main)")
            continue
        spec = options[name]
        templated = isinstance(value, str) and "{{" in value
        if "default" in spec and not templated and spec["default"] != value:
            problems.append(
                f"{name}: argument_specs default {spec['default']!r} "
                f"differs from defaults/main.yml {value!r}"
            )
    for entry, entry_spec in specs.items():
        for name, spec in (entry_spec.get("options") or {}).items():
            where = f"argument_specs {entry}.{name}"
            if not name.startswith(prefix):
                problems.append(f"{where} lacks the prefix {prefix}")
            if "type" not in spec:
                problems.append(f"{where} has no type")
            if not spec.get("description"):
                problems.append(f"{where} has no description")
    assert not problems, f"{role.name}:\n  " + "\n  ".join(problems)


def _task_files(role: Path) -> list[Path]:
    files: list[Path] = []
    for sub in ("tasks", "handlers"):
        directory = role / sub
        if directory.is_dir():
            files.extend(sorted(directory.glob("*.yml")))
    return files


def _walk_tasks(tasks):  # type: ignore[no-untyped-def]
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from _walk_tasks(task.get(key))


@pytest.mark.parametrize("role", ROLES, ids=[r.name for r in ROLES])
def test_role_internal_names_are_prefixed(role: Path) -> None:
    internal = f"_{prefix_of(role)}"
    problems = []
    vars_dir = role / "vars"
    if vars_dir.is_dir():
        for path in sorted(vars_dir.glob("*.yml")):
            for name in _load(path) or {}:
                if not name.startswith(internal):
                    problems.append(f"vars/{path.name}: {name} lacks the prefix {internal}")
    for path in _task_files(role):
        for task in _walk_tasks(_load(path)):
            registered = task.get("register")
            if registered and not str(registered).startswith(internal):
                problems.append(f"{path.relative_to(role)}: register {registered}")
            for module in ("ansible.builtin.set_fact", "set_fact"):
                for name in task.get(module) or {}:
                    if name != "cacheable" and not name.startswith(internal):
                        problems.append(f"{path.relative_to(role)}: set_fact {name}")
    assert not problems, f"{role.name}: names without the prefix {internal}:\n  " + "\n  ".join(
        problems
    )
