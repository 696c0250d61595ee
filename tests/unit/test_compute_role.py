"""The compute role writes every option the compute services declare, in a
form they accept, and its preflight refuses a rollout that could not work.

- roles/compute/templates/compute.conf.j2 must name each option of
  ``[compute]`` (services/stratus/compute/settings.py) and
  ``[compute_authtoken]``, metadata.conf.j2 each of ``[metadata]``
  (services/stratus/compute/metadata_api.py) and compute-agent.conf.j2 each
  of ``[compute_agent]`` (services/stratus/compute/agent/settings.py) and
  ``[compute_agent_authtoken]``, and no other: an option added to a service
  without a role variable, or a misspelt one, fails here rather than in a
  datacenter.
- meta/argument_specs.yml types every default of defaults/main.yml with the
  same default, and declares the secrets, which have none.
- ansible-playbook runs the role's preflight on localhost (one playbook per
  scenario, side by side) as a host that is both a compute controller and a
  hypervisor: with a complete inventory it passes, the role's own argument
  spec validates every default, and the rendered fragments are read back
  with the services' own configuration loader (types, minimums, choices) and
  the units name programs the services package installs. Without the
  service password, without the metadata secret, with a proxy holding
  another secret, or with KVM on a host without /dev/kvm, it stops with a
  message that names what to set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from stratus.common.config import OPTIONS, Config
from stratus.common.server import COMPONENTS
from stratus.compute import metadata_api, settings
from stratus.compute.agent import settings as agent_settings
from tests.unit.role_templates import written_options

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "compute"
TEMPLATES = ROLE / "templates"

PASSWORD = "compute-password-0123"
SECRET = "metadata-secret-0123456789"

FRAGMENTS = {
    "compute.conf.j2": "60-compute.conf",
    "metadata.conf.j2": "61-metadata.conf",
    "compute-agent.conf.j2": "65-compute-agent.conf",
}
UNITS = {
    "stratus-compute.service.j2": ("stratus-api", "compute"),
    "stratus-compute-scheduler.service.j2": ("stratus-compute-scheduler", None),
    "stratus-metadata.service.j2": ("stratus-api", "metadata"),
    "stratus-compute-agent.service.j2": ("stratus-compute-agent", None),
}
SECTIONS = [
    ("compute.conf.j2", settings.SECTION),
    ("compute.conf.j2", settings.AUTHTOKEN_SECTION),
    ("metadata.conf.j2", metadata_api.SECTION),
    ("compute-agent.conf.j2", agent_settings.SECTION),
    ("compute-agent.conf.j2", agent_settings.AUTHTOKEN_SECTION),
]


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.mark.parametrize(("template", "section"), SECTIONS)
def test_every_option_has_a_line_in_the_template(template: str, section: str) -> None:
    written = written_options(TEMPLATES / template).get(section, set())
    declared = set(OPTIONS[section])
    assert declared - written == set(), f"[{section}] options the role does not write"
    assert written - declared == set(), f"[{section}] options the service does not know"


def test_each_template_writes_only_its_sections() -> None:
    for template in FRAGMENTS:
        expected = {section for name, section in SECTIONS if name == template}
        assert set(written_options(TEMPLATES / template)) == expected, template


# --- argument specs -------------------------------------------------------------

SPEC_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "path": (str,),
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "list": (list,),
    "dict": (dict,),
}


def _specs() -> dict[str, dict[str, Any]]:
    return _load(ROLE / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]


def test_argument_specs_cover_every_default_with_its_value_and_type() -> None:
    defaults = _load(ROLE / "defaults" / "main.yml")
    specs = _specs()
    problems = []
    for name, value in defaults.items():
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{name}: not in meta/argument_specs.yml")
            continue
        templated = isinstance(value, str) and "{{" in value
        if templated or value is None:
            assert "default" not in spec, f"{name}: a templated or null default has no spec default"
            continue
        if spec.get("default") != value:
            problems.append(f"{name}: spec default {spec.get('default')!r} != {value!r}")
        allowed = SPEC_TYPES[spec["type"]]
        if not isinstance(value, allowed) or (spec["type"] != "bool" and isinstance(value, bool)):
            problems.append(f"{name}: {value!r} is not of type {spec['type']}")
        if "choices" in spec and value not in spec["choices"]:
            problems.append(f"{name}: {value!r} is not one of {spec['choices']}")
    assert not problems, "\n".join(problems)


def test_secrets_are_specified_without_defaults() -> None:
    defaults = _load(ROLE / "defaults" / "main.yml")
    text = (ROLE / "defaults" / "main.yml").read_text(encoding="utf-8")
    specs = _specs()
    secrets = {name for name, spec in specs.items() if spec.get("no_log")}
    assert secrets == {
        "stratus_compute_service_password",
        "stratus_compute_metadata_shared_secret",
    }
    for name in secrets:
        assert name not in defaults, f"{name} must have no default"
        assert "default" not in specs[name]
        assert f"# {name}:" in text, f"{name} is not documented in defaults/main.yml"
    undocumented = set(specs) - set(defaults) - secrets
    assert undocumented == set(), "specified but not in defaults/main.yml"


def test_secrets_playbook_generates_the_service_password() -> None:
    play = _load(ROOT / "playbooks" / "secrets.yml")[0]
    names = play["vars"]["_stratus_secrets_names"]
    assert "stratus_compute_service_password" in names
    # The metadata service shares the network agents' secret, not one of its own.
    assert "stratus_network_metadata_shared_secret" in names
    assert "stratus_compute_metadata_shared_secret" not in names


# --- the preflight and the rendered files, by ansible-playbook -------------------


def _inventory(**overrides: Any) -> dict[str, Any]:
    """ctl: a compute controller and hypervisor; net1: a metadata proxy only."""
    ctl: dict[str, Any] = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "stratus_compute_service_password": PASSWORD,
        "stratus_network_metadata_shared_secret": SECRET,
        # A character device stands in for /dev/kvm (tests may run where
        # there is none).
        "_stratus_compute_kvm_device": "/dev/null",
        "stratus_compute_libvirt_cgroup_controllers": [],
    }
    net1: dict[str, Any] = {
        "stratus_network_metadata_url": "http://ctl:8775",
        "stratus_network_metadata_shared_secret": SECRET,
    }
    for key, value in overrides.items():
        host, _, name = key.partition("__")
        target = ctl if host == "ctl" else net1
        if value is None:
            target.pop(name, None)
        else:
            target[name] = value
    return {
        "all": {
            "hosts": {"ctl": ctl, "net1": net1},
            "children": {
                "compute": {"hosts": {"ctl": None}},
                "computes": {"hosts": {"ctl": None}},
                "controllers": {"hosts": {"ctl": None}},
                "identity": {"hosts": {"ctl": None}},
            },
        }
    }


def _playbook(out: Path) -> list[dict[str, Any]]:
    templates = [*FRAGMENTS, *UNITS]
    return [
        {
            "name": "Compute role preflight",
            "hosts": "ctl",
            "gather_facts": True,
            "gather_subset": ["!all", "min"],
            "tasks": [
                {
                    "name": "preflight",
                    "ansible.builtin.include_role": {
                        "name": str(ROLE),
                        "tasks_from": "preflight.yml",
                        "public": True,
                    },
                },
                {
                    "name": "argument spec",
                    "ansible.builtin.validate_argument_spec": {
                        "argument_spec": "{{ (lookup('ansible.builtin.file', '"
                        + str(ROLE / "meta" / "argument_specs.yml")
                        + "') | from_yaml)['argument_specs']['main']['options'] }}"
                    },
                },
                {
                    "name": "render",
                    "ansible.builtin.template": {
                        "src": f"{TEMPLATES}/{{{{ item }}}}",
                        "dest": f"{out}/{{{{ item }}}}",
                        "mode": "0600",
                    },
                    "loop": templates,
                },
                {
                    "name": "cgroup line off",
                    "ansible.builtin.debug": {
                        "msg": "{{ _stratus_compute_cgroup_controllers_line }}"
                    },
                },
                {
                    "name": "cgroup line set",
                    "ansible.builtin.debug": {
                        "msg": "{{ _stratus_compute_cgroup_controllers_line }}"
                    },
                    "vars": {"stratus_compute_libvirt_cgroup_controllers": ["cpu", "memory"]},
                },
                {
                    "name": "catalog",
                    "ansible.builtin.debug": {
                        "msg": "{{ [_stratus_compute_public_url, _stratus_compute_auth_url] }}"
                    },
                },
            ],
        }
    ]


SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    # name: (inventory overrides, extra vars)
    "valid": ({"ctl__stratus_compute_virt_type": "kvm"}, {}),
    "no_password": ({"ctl__stratus_compute_service_password": None}, {}),
    "short_password": ({"ctl__stratus_compute_service_password": "short"}, {}),
    "no_metadata_secret": (
        {"ctl__stratus_network_metadata_shared_secret": None},
        {},
    ),
    "other_compute_secret": (
        {"ctl__stratus_compute_metadata_shared_secret": "another-secret-0123456789"},
        {},
    ),
    "proxy_with_other_secret": (
        {"net1__stratus_network_metadata_shared_secret": "another-secret-0123456789"},
        {},
    ),
    "kvm_without_device": (
        {"ctl__stratus_compute_virt_type": "kvm"},
        {"_stratus_compute_kvm_device": "/nonexistent/kvm"},
    ),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """Each scenario's playbook run: returncode, results by task name, output dir."""
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    started = {}
    for name, (overrides, extra) in SCENARIOS.items():
        work = tmp_path_factory.mktemp(f"compute-{name}")
        out = work / "out"
        out.mkdir()
        (work / "hosts.yml").write_text(yaml.safe_dump(_inventory(**overrides)))
        (work / "play.yml").write_text(yaml.safe_dump(_playbook(out), sort_keys=False))
        command = [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            str(work / "hosts.yml"),
            str(work / "play.yml"),
        ]
        if extra:
            command += ["-e", json.dumps(extra)]
        started[name] = (
            out,
            subprocess.Popen(
                command,
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            ),
        )
    runs = {}
    for name, (out, process) in started.items():
        stdout, stderr = process.communicate(timeout=600)
        try:
            report = json.loads(stdout)
        except json.JSONDecodeError:
            pytest.fail(f"{name}: ansible-playbook wrote no report:\n{stdout}\n{stderr}")
        tasks = {}
        for play in report["plays"]:
            for task in play["tasks"]:
                tasks[task["task"]["name"]] = task["hosts"].get("ctl", {})
        failed = [
            result
            for result in tasks.values()
            if result.get("failed") and not result.get("skipped")
        ]
        runs[name] = {
            "rc": process.returncode,
            "tasks": tasks,
            "failure": failed[-1].get("msg", "") if failed else "",
            "out": out,
            "output": f"{stdout}\n{stderr}",
        }
    return runs


@pytest.mark.timeout(600)
def test_a_complete_inventory_passes_the_preflight(runs: dict[str, dict[str, Any]]) -> None:
    run = runs["valid"]
    assert run["rc"] == 0, run["output"]
    assert run["tasks"]["argument spec"].get("failed") is not True


@pytest.mark.timeout(600)
def test_the_rendered_fragments_are_what_the_services_accept(
    runs: dict[str, dict[str, Any]], tmp_path: Path
) -> None:
    run = runs["valid"]
    assert run["rc"] == 0, run["output"]
    fragments = tmp_path / "stratus.conf.d"
    fragments.mkdir()
    for template, fragment in FRAGMENTS.items():
        (fragments / fragment).write_text((run["out"] / template).read_text())
    (tmp_path / "stratus.conf").write_text("")
    config = Config(tmp_path / "stratus.conf")
    # Every declared option parses and passes its minimum and choices.
    values = {
        section: {name: config.get(section, name) for name in OPTIONS[section]}
        for _, section in SECTIONS
    }
    assert values["compute"]["bind_port"] == 8774
    assert values["metadata"]["bind_port"] == 8775
    assert values["metadata"]["shared_secret"] == SECRET
    assert values["compute_authtoken"]["username"] == "nova"
    assert values["compute_authtoken"]["password"] == PASSWORD
    assert values["compute_agent_authtoken"]["password"] == PASSWORD
    assert values["compute_authtoken"]["auth_url"] == "http://ctl:5000"
    assert values["compute_agent"]["driver"] == "libvirt"
    assert values["compute_agent"]["virt_type"] == "kvm"
    assert values["compute_agent"]["instances_path"] == "/var/lib/stratus-compute/instances"
    assert values["compute_agent"]["cpu_allocation_ratio"] == 4.0
    assert values["compute_agent"]["reserved_host_memory_mb"] == 512
    assert values["compute"]["policy_file"] == ""


@pytest.mark.timeout(600)
def test_the_units_run_what_the_services_package_installs(
    runs: dict[str, dict[str, Any]],
) -> None:
    run = runs["valid"]
    assert run["rc"] == 0, run["output"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for template, (program, component) in UNITS.items():
        lines = (run["out"] / template).read_text().splitlines()
        exec_start = [line for line in lines if line.startswith("ExecStart=")]
        assert len(exec_start) == 1, template
        argv = exec_start[0].removeprefix("ExecStart=").split()
        assert argv[0] == f"/opt/stratus/venv/bin/{program}"
        assert program in scripts
        if component is not None:
            assert argv[1] == component and component in COMPONENTS
        assert argv[-2:] == ["--config-file", "/etc/stratus/stratus.conf"]
    agent = (run["out"] / "stratus-compute-agent.service.j2").read_text()
    assert "User=root" in agent
    assert "Wants=libvirtd.socket" in agent


@pytest.mark.timeout(600)
def test_catalog_url_and_qemu_conf_line(runs: dict[str, dict[str, Any]]) -> None:
    tasks = runs["valid"]["tasks"]
    assert tasks["catalog"]["msg"] == ["http://ctl:8774/v2.1", "http://ctl:5000"]
    assert tasks["cgroup line off"]["msg"] == "cgroup_controllers = [ ]"
    assert tasks["cgroup line set"]["msg"] == 'cgroup_controllers = [ "cpu", "memory" ]'


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    ("scenario", "expected"),
    [
        ("no_password", "stratus_compute_service_password is not set"),
        ("short_password", "stratus_compute_service_password is not set"),
        ("no_metadata_secret", "The metadata service has no shared secret"),
        ("other_compute_secret", "its shared secret (stratus_compute_metadata_shared_secret)"),
        ("proxy_with_other_secret", "the metadata proxies of net1 sign with"),
        ("kvm_without_device", "stratus_compute_virt_type is kvm but ctl has no /nonexistent/kvm"),
    ],
)
def test_the_preflight_refuses_with_a_clear_message(
    runs: dict[str, dict[str, Any]], scenario: str, expected: str
) -> None:
    run = runs[scenario]
    assert run["rc"] != 0, run["output"]
    assert expected in " ".join(run["failure"].split()), run["failure"]
    # Nothing was rendered: the preflight stopped the host first.
    assert list(run["out"].iterdir()) == []
