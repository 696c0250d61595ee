"""The lab: playbooks/lab.yml boots systemd-nspawn hosts that the collection
deploys onto, and playbooks/lab-destroy.yml removes them without a trace.

Two throwaway hosts (labtest1/labtest2 at .21/.22, apart from aio1 and
lab1..lab3) are created from an inventory made here, checked over SSH, and
destroyed at the end whatever happened.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.timeout(1800)]

REPO = Path(__file__).resolve().parents[2]
LAB_SCRIPT = REPO / "scripts" / "lab.sh"
BASE_DIR = Path("/var/lib/stratus-lab")
RUN_DIR = Path("/run/stratus-lab")
SSH_KEY = BASE_DIR / "ssh" / "id_ed25519"
KNOWN_HOSTS = BASE_DIR / "ssh" / "known_hosts"
BRIDGE = "stratuslab0"
NFT_TABLE = "stratus_lab"
HOSTS = {"labtest1": "172.31.231.21", "labtest2": "172.31.231.22"}

INVENTORY = """\
---
all:
  hosts:
    labtest1:
      stratus_lab_address: 172.31.231.21
    labtest2:
      stratus_lab_address: 172.31.231.22
  children:
    controllers:
      hosts:
        labtest1:
    computes:
      hosts:
        labtest2:
  vars:
    ansible_host: "{{ stratus_lab_address | default(inventory_hostname) }}"
    ansible_user: root
    ansible_ssh_private_key_file: /var/lib/stratus-lab/ssh/id_ed25519
    ansible_ssh_common_args: >-
      -o StrictHostKeyChecking=no -o UserKnownHostsFile=/var/lib/stratus-lab/ssh/known_hosts
    ansible_python_interpreter: /usr/bin/python3
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    for tool in ("systemd-nspawn", "debootstrap", "nft", "ip"):
        if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists():
            return f"{tool} is not installed (scripts/bootstrap.sh installs it)"
    if not (Path(sys.prefix) / "bin" / "ansible-playbook").exists():
        return "ansible-playbook is not in this virtualenv"
    return None


def lab(command: str, inventory: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """scripts/lab.sh COMMAND INVENTORY, output kept for the assertions."""
    env = dict(os.environ, STRATUS_VENV=sys.prefix, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(
        [str(LAB_SCRIPT), command, str(inventory), *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
        check=False,
    )
    report = f"{proc.stdout[-6000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"lab.sh {command} failed ({proc.returncode}):\n{report}"
    return proc


def recap_changed(output: str) -> int:
    match = re.search(r"localhost\s*:\s*ok=\d+\s+changed=(\d+)", output)
    assert match, f"no PLAY RECAP in:\n{output[-3000:]}"
    return int(match.group(1))


def ssh(address: str, command: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "ssh",
            "-i",
            str(SSH_KEY),
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            f"UserKnownHostsFile={KNOWN_HOSTS}",
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=10",
            f"root@{address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def nspawn_pids(root: Path | None = None) -> list[int]:
    """PIDs of systemd-nspawn leaders (of one root, or of any)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state == "Z" or not argv or Path(argv[0].decode()).name != "systemd-nspawn":
            continue
        if root is None or str(root).encode() in argv:
            pids.append(int(entry.name))
    return pids


def other_lab_hosts() -> list[str]:
    """Lab hosts on this machine that are not this test's (aio1, lab1, ...)."""
    names = set()
    if BASE_DIR.is_dir():
        names |= {p.name for p in BASE_DIR.iterdir() if p.is_dir() and p.name != "ssh"}
    if RUN_DIR.is_dir():
        names |= {p.stem for p in RUN_DIR.glob("*.pid")}
    return sorted(names - set(HOSTS))


def bridge_exists() -> bool:
    cmd = ["ip", "link", "show", "dev", BRIDGE]
    return subprocess.run(cmd, capture_output=True).returncode == 0


def nft_table_exists() -> bool:
    cmd = ["nft", "list", "table", "inet", NFT_TABLE]
    return subprocess.run(cmd, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path_factory.mktemp("lab-inventory") / "hosts.yml"
    path.write_text(INVENTORY)
    return path


@pytest.fixture(scope="module")
def lab_hosts(inventory):
    """The two hosts, booted; destroyed at the end even when a test failed."""
    try:
        started = time.monotonic()
        up = lab("up", inventory)
        elapsed = time.monotonic() - started
        boots = re.findall(r"(labtest\d) booted; SSH answered after ([\d.]+) s", up.stdout)
        build = re.search(r"took\s+([\d.]+) s", up.stdout)
        print(
            f"\nlab up: {elapsed:.1f} s"
            + (f", debootstrap {build.group(1)} s" if build else ", cached root reused")
            + "".join(f", {name} SSH after {seconds} s" for name, seconds in boots)
        )
        yield HOSTS
    finally:
        subprocess.run(
            [str(LAB_SCRIPT), "down", str(inventory)],
            cwd=REPO,
            env=dict(os.environ, STRATUS_VENV=sys.prefix),
            capture_output=True,
            timeout=600,
            check=False,
        )


def test_systemd_is_pid1_and_the_system_is_up(lab_hosts):
    for name, address in lab_hosts.items():
        proc = ssh(address, "cat /proc/1/comm; hostname; systemctl is-system-running --wait")
        lines = proc.stdout.split()
        assert lines[:2] == ["systemd", name], proc.stdout + proc.stderr
        assert lines[2] in ("running", "degraded"), proc.stdout + proc.stderr


def test_hosts_reach_each_other(lab_hosts):
    (_one, one_address), (two, two_address) = lab_hosts.items()
    for source, target in ((one_address, two_address), (two_address, one_address)):
        proc = ssh(source, f"ping -c 2 -W 2 {target}")
        assert proc.returncode == 0, proc.stdout + proc.stderr
    # /etc/hosts of each host names every lab host.
    proc = ssh(one_address, f"getent hosts {two}")
    assert proc.stdout.split()[0] == two_address, proc.stdout + proc.stderr


def test_apt_works_inside_through_the_nat(lab_hosts):
    address = lab_hosts["labtest1"]
    proc = ssh(address, "apt-get update -q", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Err:" not in proc.stdout, proc.stdout
    proc = ssh(address, "apt-cache policy python3 | grep -q 'Candidate: [0-9]'")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_ansible_reaches_the_hosts(lab_hosts, inventory):
    ansible = Path(sys.prefix) / "bin" / "ansible"
    proc = subprocess.run(
        [str(ansible), "-i", str(inventory), "all", "-m", "ansible.builtin.ping"],
        cwd=REPO,
        env=dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg")),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("SUCCESS") == len(lab_hosts), proc.stdout


def test_second_run_changes_nothing(lab_hosts, inventory):
    assert recap_changed(lab("up", inventory).stdout) == 0


def test_destroy_leaves_nothing_behind(lab_hosts, inventory):
    lab("down", inventory)
    for name in lab_hosts:
        assert not (BASE_DIR / name).exists()
        assert not (RUN_DIR / f"{name}.pid").exists()
        assert nspawn_pids(BASE_DIR / name) == []
    known = KNOWN_HOSTS.read_text() if KNOWN_HOSTS.exists() else ""
    assert not any(address in known for address in lab_hosts.values())
    # Destroying again changes nothing.
    assert recap_changed(lab("down", inventory).stdout) == 0
    others = other_lab_hosts()
    if others:
        # Not the last lab user: the bridge and the NAT stay for the others.
        print(f"\nother lab hosts remain ({', '.join(others)}): the lab network stays")
        assert bridge_exists()
        return
    assert not bridge_exists()
    assert not nft_table_exists()
    assert nspawn_pids() == []
