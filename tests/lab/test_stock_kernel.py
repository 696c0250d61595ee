"""VLAN and GRE for real: the tests this machine's kernel must skip, on a stock Debian kernel.

The test machines' kernel has neither 8021q nor ip_gre, so these tests skip
here, saying so:

- the network agent's VLAN provider network between two hosts and its GRE
  (gretap) mesh of three hosts (tests/agent/test_l2_dhcp.py): guests get
  their leases from dnsmasq across the segment and ping each other;
- ``stratus.cloud.vlan`` and ``stratus.cloud.tunnel`` (gre, gretap) run for
  real by ansible-playbook inside network namespaces, check mode, diff and
  idempotence included (tests/unit/test_netlink_modules.py).

This test boots Debian's ``linux-image-amd64`` under QEMU with this machine's
root filesystem (tests/stock_kernel.py) and runs exactly those tests in it
with pytest. It passes only if every one of them passed there: a skip in
the guest (the module did not load) is a failure here.
"""

from __future__ import annotations

import shlex
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.stock_kernel import run_in_guest, stock_kernel

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 1200
IN_GUEST = (
    "tests/agent/test_l2_dhcp.py::test_vlan_network_between_two_hosts",
    "tests/agent/test_l2_dhcp.py::test_gre_mesh_of_three_hosts",
    "tests/unit/test_netlink_modules.py::test_vlan_for_real",
    "tests/unit/test_netlink_modules.py::test_gre_and_gretap_for_real",
)


@pytest.mark.lab
@pytest.mark.timeout(TIMEOUT + 120)
def test_vlan_and_gre_pass_on_a_stock_debian_kernel(tmp_path: Path) -> None:
    kernel = stock_kernel()
    results = tmp_path / "guest"
    junit = results / "junit.xml"
    pytest_argv = [
        sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs",
        "--basetemp=/var/tmp/stock-kernel-pytest", f"--junitxml={junit}", *IN_GUEST,
    ]  # fmt: skip
    command = f"uname -r > {results}/uname && {shlex.join(pytest_argv)}"
    guest = run_in_guest(
        kernel,
        command,
        results,
        cwd=ROOT,
        # Only the netlink modules' VLAN and GRE playbooks: the others pass on this machine.
        env={"STRATUS_NETLINK_SCENARIOS": "vlan,gre"},
        timeout=TIMEOUT,
    )
    report = (
        f"guest ({guest.accel}, {guest.seconds:.0f} s) exit {guest.returncode}\n"
        f"--- pytest in the guest ---\n{guest.output[-8000:]}\n"
        f"--- console ---\n{guest.console[-3000:]}"
    )
    assert guest.returncode == 0, report
    assert (results / "uname").read_text().strip() == kernel.version, report
    outcomes = {}
    for case in ET.parse(junit).iter("testcase"):
        test = f"{case.get('classname', '').replace('.', '/')}.py::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("skipped", "failure", "error")]
        outcomes[test] = kinds[0] if kinds else "passed"
    assert outcomes == dict.fromkeys(IN_GUEST, "passed"), report
