"""Running the collection's modules for real in tests: one playbook on
localhost, under the system ``/usr/bin/python3`` (as Ansible runs them on a
host), its results read back as JSON by step name.

A step is ``{name, <module>: args}`` (a task of the playbook) with optional
``check`` (check mode) and ``python`` (another interpreter for that task);
every module step runs in diff mode and with ``ignore_errors`` so that a
refusal is a result the test reads, not the end of the playbook.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = "/usr/bin/python3"


def module_task(name: str, module: str, args: Any, step: dict[str, Any]) -> dict[str, Any]:
    """The task of a module step (diff mode, errors kept as results)."""
    task: dict[str, Any] = {"name": name, module: args, "ignore_errors": True, "diff": True}
    if step.get("check"):
        task["check_mode"] = True
    if step.get("python"):
        task["vars"] = {"ansible_python_interpreter": step["python"]}
    return task


def start_playbook(path: Path, title: str, tasks: list[dict[str, Any]]) -> subprocess.Popen[str]:
    """Write the tasks as a playbook at ``path`` and start ansible-playbook on it."""
    path.write_text(
        yaml.safe_dump(
            [
                {
                    "name": title,
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {"ansible_python_interpreter": SYSTEM_PYTHON},
                    "tasks": tasks,
                }
            ],
            sort_keys=False,
        )
    )
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_PIPELINING": "1",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        }
    )
    return subprocess.Popen(
        [
            str(Path(sys.executable).with_name("ansible-playbook")),
            "-i",
            "localhost,",
            "-c",
            "local",
            str(path),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def results(run: subprocess.Popen[str], timeout: float = 300) -> dict[str, dict[str, Any]]:
    """The playbook's task results by step name (fails if the playbook failed)."""
    stdout, stderr = run.communicate(timeout=timeout)
    assert run.returncode == 0, f"ansible-playbook failed:\n{stdout}\n{stderr}"
    report = json.loads(stdout)
    return {
        task["task"]["name"]: task["hosts"]["localhost"] for task in report["plays"][0]["tasks"]
    }
