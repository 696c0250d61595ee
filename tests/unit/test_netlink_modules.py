"""The stratus.cloud.bridge, vlan and tunnel modules.

Two halves:

- the decision logic (plugins/module_utils/netlink.py: input checks, the
  comparison of the desired state with the current one, the predicted
  result), tested on plain dicts without netlink;
- the modules for real: ansible-playbook runs them on localhost with the
  system ``/usr/bin/python3`` (as on the hosts, with Debian's
  python3-pyroute2), each scenario in network namespaces of its own
  (``stratus-t-<random>``, through the modules' ``netns`` option), and the
  result is read back with ``ip -d -j addr show`` inside the namespace
  between the steps. A VXLAN overlay between two namespaces joined by a veth
  pair carries a real ping.

This machine's kernel has no VLAN (8021q) and no GRE (ip_gre): a probe
creates one in a throwaway namespace, and the tests that need the device skip
with the probe's error. Their check mode and input checks run anyway, and a
real run proves the module names the missing kernel module.

Every namespace is deleted at the end, failure or not; every link the tests
make lives inside one, so it goes with it. The scenarios run side by side as
one playbook each; nearly all of their time is Ansible's cost per task
(about half a second of CPU), some 40 s on this shared two-CPU machine.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.module_runner import module_task, results, start_playbook

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def _load_utils():  # type: ignore[no-untyped-def]
    path = ROOT / "plugins" / "module_utils" / "netlink.py"
    spec = importlib.util.spec_from_file_location("stratus_netlink_utils", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


nl = _load_utils()

VXLAN_EXACT = ("vni", "local", "remote", "group", "dstport", "dev", "learning")
VXLAN_OWN = (*VXLAN_EXACT, "ttl")


def bridge(**extra) -> dict:  # type: ignore[no-untyped-def]
    state = {
        "name": "br0",
        "kind": "bridge",
        "index": 7,
        "mtu": 1500,
        "up": True,
        "master": None,
        "addresses": ["10.0.0.1/24"],
        "stp": False,
        "vlan_filtering": False,
        "ports": ["eth1"],
    }
    state.update(extra)
    return state


def want_bridge(**extra) -> dict:  # type: ignore[no-untyped-def]
    desired = {
        "name": "br0",
        "kind": "bridge",
        "mtu": None,
        "up": True,
        "master": None,
        "addresses": None,
        "stp": None,
        "vlan_filtering": None,
        "ports": None,
    }
    desired.update(extra)
    return desired


def vxlan(**extra) -> dict:  # type: ignore[no-untyped-def]
    state = {
        "name": "vx0",
        "kind": "vxlan",
        "index": 9,
        "mtu": 1450,
        "up": True,
        "master": "br0",
        "addresses": [],
        "vni": 100,
        "local": "192.0.2.1",
        "remote": "192.0.2.2",
        "group": None,
        "dstport": 4789,
        "dev": "eth0",
        "ttl": 0,
        "learning": True,
    }
    state.update(extra)
    return state


def want_vxlan(**extra) -> dict:  # type: ignore[no-untyped-def]
    desired = {k: v for k, v in vxlan().items() if k != "index"}
    desired.update({"mtu": None, "master": None, "addresses": None, "ttl": None})
    desired.update(extra)
    return desired


# ------------------------------------------------------------------- input


def test_interface_names() -> None:
    assert nl.check_ifname("br-provider0123") == "br-provider0123"  # 15: the limit
    with pytest.raises(nl.NetlinkInputError, match=r"16 characters long.*at most 15"):
        nl.check_ifname("br-provider01234")
    for bad in ("", "a/b", "a b", "a:1", ".", ".."):
        with pytest.raises(nl.NetlinkInputError, match="interface name"):
            nl.check_ifname(bad)


def test_addresses_must_be_cidrs() -> None:
    assert nl.normalize_cidr("10.0.0.1/24") == "10.0.0.1/24"
    assert nl.normalize_cidr(" FD00::0001/64 ") == "fd00::1/64"
    with pytest.raises(nl.NetlinkInputError, match="not in CIDR notation"):
        nl.normalize_cidr("10.0.0.1")
    with pytest.raises(nl.NetlinkInputError, match="not a valid CIDR"):
        nl.normalize_cidr("10.0.0.300/24")
    with pytest.raises(nl.NetlinkInputError, match="not a valid CIDR"):
        nl.normalize_cidr("10.0.0.1/33")
    # Sorted by family then address, duplicates merged.
    assert nl.normalize_addresses(["fd00::1/64", "10.0.0.9/24", "10.0.0.10/24", "10.0.0.9/24"]) == [
        "10.0.0.9/24",
        "10.0.0.10/24",
        "fd00::1/64",
    ]
    assert nl.normalize_addresses(None) is None


def test_ranges_and_ips() -> None:
    assert nl.check_range(4094, 1, 4094, "vlan_id") == 4094
    assert nl.check_range(None, 1, 4094, "vlan_id") is None
    for bad in (0, 4095, True, "7"):
        with pytest.raises(nl.NetlinkInputError, match=r"vlan_id must be an integer in 1\.\.4094"):
            nl.check_range(bad, 1, 4094, "vlan_id")
    assert nl.normalize_ip("fd00:0::1", "local") == "fd00::1"
    assert nl.normalize_ip("", "local") is None
    with pytest.raises(nl.NetlinkInputError, match="not an IPv4 address"):
        nl.normalize_ip("fd00::1", "local", version=4)
    with pytest.raises(nl.NetlinkInputError, match="not an IP address"):
        nl.normalize_ip("host.example", "remote")


def test_common_desired_checks_the_shared_options() -> None:
    params = {"name": "br0", "mtu": 9000, "up": True, "master": None, "addresses": ["10.0.0.1/8"]}
    assert nl.common_desired(params, "bridge") == {
        "name": "br0",
        "kind": "bridge",
        "mtu": 9000,
        "up": True,
        "master": None,
        "addresses": ["10.0.0.1/8"],
    }
    with pytest.raises(nl.NetlinkInputError, match="mtu"):
        nl.common_desired({**params, "mtu": 20}, "bridge")
    with pytest.raises(nl.NetlinkInputError, match="master cannot be the link itself"):
        nl.common_desired({**params, "master": "br0"}, "bridge")


def _load_tunnel_module():  # type: ignore[no-untyped-def]
    """plugins/modules/tunnel.py, imported as Ansible would (through the
    collection link that scripts/link-collection.sh makes)."""
    subprocess.run([str(ROOT / "scripts" / "link-collection.sh")], check=True, cwd=ROOT)
    collections = str(ROOT / "collections")
    if collections not in sys.path:
        sys.path.insert(0, collections)
    return importlib.import_module("ansible_collections.stratus.cloud.plugins.modules.tunnel")


def tunnel_params(**extra) -> dict:  # type: ignore[no-untyped-def]
    params = dict.fromkeys(
        ("vni", "local", "remote", "group", "dstport", "dev", "ttl", "key", "learning")
    )
    params.update(extra)
    return params


def test_vxlan_parameters_get_defaults_and_canonical_addresses() -> None:
    tunnel = _load_tunnel_module()
    assert tunnel.tunnel_desired(
        tunnel_params(kind="vxlan", vni=7, local="FD00::1", remote="fd00:0::2")
    ) == {
        "vni": 7,
        "local": "fd00::1",
        "remote": "fd00::2",
        "group": None,
        "dstport": 4789,
        "dev": None,
        "ttl": None,
        "learning": True,
    }
    gre = tunnel.tunnel_desired(tunnel_params(kind="gretap", remote="192.0.2.2", key=0, ttl=64))
    assert gre == {"local": None, "remote": "192.0.2.2", "dev": None, "ttl": 64, "key": 0}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"kind": "vxlan"}, r"vni is required for a vxlan tunnel"),
        ({"kind": "vxlan", "vni": -1}, r"vni must be an integer in 0\.\.16777215, not -1"),
        ({"kind": "vxlan", "vni": 2**24}, r"vni must be an integer in 0\.\.16777215"),
        ({"kind": "vxlan", "vni": 1, "dstport": 0}, r"dstport must be an integer in 1\.\.65535"),
        ({"kind": "vxlan", "vni": 1, "ttl": 256}, r"ttl must be an integer in 0\.\.255"),
        (
            {"kind": "vxlan", "vni": 1, "remote": "192.0.2.2", "group": "239.1.1.1", "dev": "e"},
            r"remote and group are mutually exclusive",
        ),
        ({"kind": "vxlan", "vni": 1, "remote": "239.1.1.1"}, r"multicast address; use group"),
        ({"kind": "vxlan", "vni": 1, "group": "192.0.2.9", "dev": "e"}, r"not a multicast"),
        ({"kind": "vxlan", "vni": 1, "group": "239.1.1.1"}, r"group needs dev"),
        (
            {"kind": "vxlan", "vni": 1, "local": "192.0.2.1", "remote": "fd00::2"},
            r"local, remote and group must be of one IP version",
        ),
        ({"kind": "vxlan", "vni": 1, "key": 5}, r"key: not an option of a vxlan tunnel"),
        ({"kind": "vxlan", "vni": 1, "dev": "a-very-long-name"}, r"dev .* at most 15"),
        ({"kind": "gre", "vni": 5, "learning": True}, r"vni, learning: not an option of a gre"),
        ({"kind": "gretap", "local": "fd00::1"}, r"local: 'fd00::1' is not an IPv4 address"),
        ({"kind": "gretap", "remote": "peer.example"}, r"remote: 'peer.example' is not an IP"),
        ({"kind": "gre", "key": 2**32}, r"key must be an integer in 0\.\.4294967295"),
    ],
)
def test_bad_tunnel_parameters_are_refused(params: dict, message: str) -> None:
    tunnel = _load_tunnel_module()
    with pytest.raises(tunnel.NetlinkInputError, match=message):
        tunnel.tunnel_desired(tunnel_params(**params))


# ---------------------------------------------------------------- decision


def test_a_missing_link_is_created_with_everything_asked() -> None:
    desired = want_bridge(mtu=9000, addresses=["10.0.0.1/24"], ports=["eth1", "eth2"], stp=True)
    plan = nl.plan_link(None, desired)
    assert plan["action"] == "create"
    assert plan["set"] == {"mtu": 9000, "up": True, "stp": True}
    assert plan["add_addresses"] == ["10.0.0.1/24"]
    assert plan["add_ports"] == ["eth1", "eth2"]
    assert plan["del_addresses"] == plan["del_ports"] == []
    assert set(plan["changes"]) == {"kind", "mtu", "up", "addresses", "ports", "stp"}
    after = nl.predict_link(None, desired, plan)
    assert after["ports"] == ["eth1", "eth2"]
    assert after["vlan_filtering"] is None  # the kernel's default, not predicted


def test_an_unchanged_link_needs_nothing() -> None:
    current = bridge()
    desired = want_bridge(mtu=1500, addresses=["10.0.0.1/24"], ports=["eth1"], stp=False)
    plan = nl.plan_link(current, desired)
    assert plan["action"] == "none"
    assert plan["changes"] == []
    assert plan["set"] == {}
    assert nl.predict_link(current, desired, plan) == nl.public_state(current)


def test_options_left_out_are_left_alone() -> None:
    current = bridge(mtu=1400, stp=True, ports=["eth1", "eth9"], addresses=["10.9.9.9/8"])
    plan = nl.plan_link(current, want_bridge())
    assert plan["action"] == "none"


def test_mtu_addresses_and_ports_change_in_place() -> None:
    current = bridge(addresses=["10.0.0.1/24", "fd00::1/64"], ports=["eth1", "eth2"])
    desired = want_bridge(
        mtu=9000, addresses=["10.0.0.1/24", "10.0.1.1/24"], ports=["eth2", "eth3"], stp=True
    )
    plan = nl.plan_link(current, desired)
    assert plan["action"] == "update"
    assert plan["recreate_for"] == []
    assert plan["set"] == {"mtu": 9000, "stp": True}
    assert plan["add_addresses"] == ["10.0.1.1/24"]
    assert plan["del_addresses"] == ["fd00::1/64"]
    assert plan["add_ports"] == ["eth3"]
    assert plan["del_ports"] == ["eth1"]
    assert sorted(plan["changes"]) == ["addresses", "mtu", "ports", "stp"]
    after = nl.predict_link(current, desired, plan)
    assert after["addresses"] == ["10.0.0.1/24", "10.0.1.1/24"]
    assert after["ports"] == ["eth2", "eth3"]
    assert after["mtu"] == 9000


def test_empty_lists_remove_all_and_empty_master_detaches() -> None:
    current = vxlan()
    plan = nl.plan_link(
        current, want_vxlan(master="", addresses=[]), exact=VXLAN_EXACT, immutable=VXLAN_OWN
    )
    assert plan["action"] == "update"
    assert plan["set"] == {"master": ""}
    assert (
        nl.predict_link(current, want_vxlan(master=""), plan, exact=VXLAN_EXACT)["master"] is None
    )
    empty = nl.plan_link(bridge(), want_bridge(ports=[], addresses=[]))
    assert empty["del_ports"] == ["eth1"]
    assert empty["del_addresses"] == ["10.0.0.1/24"]
    # Detaching what is not attached is nothing to do.
    assert nl.plan_link(vxlan(master=None), want_vxlan(master=""))["action"] == "none"


def test_an_immutable_change_recreates() -> None:
    current = vxlan(addresses=["10.5.0.1/24"])
    desired = want_vxlan(vni=200, mtu=1450, master="br0", addresses=["10.5.0.1/24"])
    plan = nl.plan_link(current, desired, exact=VXLAN_EXACT, immutable=VXLAN_OWN)
    assert plan["action"] == "recreate"
    assert plan["recreate_for"] == ["vni"]
    # The new link gets every setting again, the old one's included.
    assert plan["set"] == {"mtu": 1450, "up": True, "master": "br0"}
    assert plan["add_addresses"] == ["10.5.0.1/24"]
    after = nl.predict_link(current, desired, plan, exact=VXLAN_EXACT)
    assert after["vni"] == 200
    assert after["addresses"] == ["10.5.0.1/24"]
    # A recreated link does not keep what the options leave open.
    bare = nl.predict_link(current, want_vxlan(vni=200), plan, exact=VXLAN_EXACT)
    assert bare["addresses"] == []
    assert bare["master"] is None


def test_exact_keys_compare_none_and_optional_ones_do_not() -> None:
    current = vxlan(ttl=5)
    # ttl left out: not compared.
    assert nl.plan_link(current, want_vxlan(), VXLAN_EXACT, VXLAN_OWN)["action"] == "none"
    assert nl.plan_link(current, want_vxlan(ttl=6), VXLAN_EXACT, VXLAN_OWN)["recreate_for"] == [
        "ttl"
    ]
    # remote left out on an exact key: the tunnel must have none.
    plan = nl.plan_link(current, want_vxlan(remote=None), VXLAN_EXACT, VXLAN_OWN)
    assert plan["action"] == "recreate"
    assert plan["recreate_for"] == ["remote"]


def test_a_kind_change_recreates() -> None:
    current = vxlan()
    desired = {
        "name": "vx0",
        "kind": "gretap",
        "mtu": None,
        "up": True,
        "master": None,
        "addresses": None,
        "local": "192.0.2.1",
        "remote": "192.0.2.2",
        "dev": "eth0",
        "ttl": None,
        "key": None,
    }
    own = ("local", "remote", "dev", "key", "ttl")
    plan = nl.plan_link(current, desired, exact=own[:-1], immutable=own)
    assert plan["action"] == "recreate"
    assert plan["recreate_for"] == ["kind"]
    after = nl.predict_link(current, desired, plan, exact=own[:-1])
    assert "vni" not in after
    assert after["kind"] == "gretap"


def test_public_state_orders_keys_for_diffs() -> None:
    assert list(nl.public_state(bridge())) == [
        "name",
        "kind",
        "mtu",
        "up",
        "master",
        "addresses",
        "stp",
        "vlan_filtering",
        "ports",
    ]
    assert nl.public_state(None) == {}


# ------------------------------------------------------------- for real


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if check:
        assert run.returncode == 0, f"{' '.join(argv)}: {run.stdout}{run.stderr}"
    return run


def _new_ns_name() -> str:
    return f"stratus-t-{secrets.token_hex(4)}"


@functools.cache
def _real_prerequisites() -> str | None:
    """Why the modules cannot run for real here, or None."""
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return f"{SYSTEM_PYTHON} is missing"
    probe = _run(SYSTEM_PYTHON, "-c", "import pyroute2", check=False)
    if probe.returncode != 0:
        return "python3-pyroute2 is not installed for /usr/bin/python3 (scripts/bootstrap.sh)"
    name = _new_ns_name()
    made = _run("ip", "netns", "add", name, check=False)
    if made.returncode != 0:
        return f"cannot create a network namespace: {made.stderr.strip()}"
    _run("ip", "netns", "del", name, check=False)
    return None


# What each probe creates: `ip link add` arguments, after a veth pv0/pv1.
PROBES = {
    "vlan": "link pv0 name pv0.5 type vlan id 5",
    "gre": "name pg0 type gre local 192.0.2.1 remote 192.0.2.2",
    "gretap": "name pt0 type gretap local 192.0.2.1 remote 192.0.2.2",
    "vlan_filtering": "name pb0 type bridge vlan_filtering 1",
}


@functools.cache
def _kernel_lacks(feature: str) -> str | None:
    """Make what the feature needs in a throwaway namespace: the kernel's
    error when it refuses, None when it can."""
    name = _new_ns_name()
    _run("ip", "netns", "add", name)
    try:
        _run("ip", "-n", name, "link", "add", "pv0", "type", "veth", "peer", "name", "pv1")
        made = _run("ip", "-n", name, "link", "add", *PROBES[feature].split(), check=False)
        if made.returncode == 0:
            return None
        return (
            f"this kernel has no {feature} (probe `ip link add {PROBES[feature]}` in a "
            f"throwaway namespace: {made.stderr.strip()})"
        )
    finally:
        _run("ip", "netns", "del", name, check=False)


needs_netns = pytest.mark.skipif(
    _real_prerequisites() is not None, reason=str(_real_prerequisites())
)


def _probe(ns: str, name: str) -> dict:
    return {"name": name, "probe": ns}


def _links(result: dict) -> dict[str, dict]:
    """`ip -d -j addr show` output of a probe step, by interface name."""
    return {link["ifname"]: link for link in json.loads(result["stdout"])}


def _addresses(link: dict) -> list[str]:
    return sorted(
        f"{a['local']}/{a['prefixlen']}"
        for a in link.get("addr_info", [])
        if not (a["family"] == "inet6" and a.get("scope") == "link")
    )


def _data(link: dict) -> dict:
    return link.get("linkinfo", {}).get("info_data", {})


def _start(workdir: Path, label: str, steps: list[dict]) -> subprocess.Popen[str]:
    """Start the steps as tasks of one playbook on localhost.

    A step is {name, module, args} with optional check (check mode) and
    python (another interpreter), or {name, probe: namespace}:
    `ip -d -j addr show` in that namespace.
    """
    tasks = []
    for step in steps:
        if "probe" in step:
            tasks.append(
                {
                    "name": step["name"],
                    "ansible.builtin.command": {
                        "argv": ["ip", "-n", step["probe"], "-d", "-j", "addr", "show"]
                    },
                    "changed_when": False,
                }
            )
            continue
        tasks.append(
            module_task(step["name"], f"stratus.cloud.{step['module']}", step["args"], step)
        )
    return start_playbook(workdir / f"{label}.yml", f"Netlink modules: {label}", tasks)


def _results(run: subprocess.Popen[str]) -> dict[str, dict]:
    return results(run)


# Scenarios: each builds its namespaces' wiring with `ip`, then lists steps.


def _bridge_scenario(ns: str) -> list[dict]:
    for a, b in (("p0", "q0"), ("p1", "q1")):
        _run("ip", "-n", ns, "link", "add", a, "type", "veth", "peer", "name", b)
    base = {"name": "br-t", "netns": ns}
    first = {
        **base,
        "mtu": 1400,
        "addresses": ["10.1.0.1/24", "fd00:1::1/64"],
        "ports": ["p0"],
        "stp": True,
    }
    second = {
        **base,
        "mtu": 1300,
        "addresses": ["10.1.1.1/24", "10.1.0.1/24"],
        "ports": ["p1"],
    }
    return [
        {"name": "check create", "module": "bridge", "args": first, "check": True},
        _probe(ns, "after check create"),
        {"name": "create", "module": "bridge", "args": first},
        _probe(ns, "after create"),
        {"name": "create again", "module": "bridge", "args": first},
        {"name": "check change", "module": "bridge", "args": second, "check": True},
        _probe(ns, "after check change"),
        {"name": "change", "module": "bridge", "args": second},
        _probe(ns, "after change"),
        {"name": "change again", "module": "bridge", "args": second},
        {"name": "left out", "module": "bridge", "args": base},
        {"name": "down", "module": "bridge", "args": {**base, "up": False, "stp": False}},
        _probe(ns, "after down"),
        {
            "name": "check absent",
            "module": "bridge",
            "args": {**base, "state": "absent"},
            "check": True,
        },
        _probe(ns, "after check absent"),
        {"name": "absent", "module": "bridge", "args": {**base, "state": "absent"}},
        _probe(ns, "after absent"),
        {"name": "absent again", "module": "bridge", "args": {**base, "state": "absent"}},
    ]


def _vxlan_scenario(ns: str) -> list[dict]:
    _run("ip", "-n", ns, "link", "add", "u0", "type", "veth", "peer", "name", "u1")
    _run("ip", "-n", ns, "addr", "add", "192.168.50.1/24", "dev", "u0")
    _run("ip", "-n", ns, "link", "set", "u0", "up")
    base = {
        "name": "vx-t",
        "kind": "vxlan",
        "netns": ns,
        "vni": 100,
        "local": "192.168.50.1",
        "remote": "192.168.50.2",
        "dev": "u0",
        "learning": False,
        "mtu": 1450,
        "addresses": ["10.50.0.1/24"],
    }
    six = {
        "name": "vx-six",
        "kind": "vxlan",
        "netns": ns,
        "vni": 9,
        "local": "FD00:50::1",
        "group": "ff05::9",
        "dev": "u0",
        "ttl": 4,
    }
    return [
        {"name": "create", "module": "tunnel", "args": base},
        _probe(ns, "after create"),
        {"name": "create again", "module": "tunnel", "args": base},
        {"name": "mtu", "module": "tunnel", "args": {**base, "mtu": 1400}},
        _probe(ns, "after mtu"),
        {"name": "check vni", "module": "tunnel", "args": {**base, "vni": 200}, "check": True},
        _probe(ns, "after check vni"),
        {"name": "vni", "module": "tunnel", "args": {**base, "vni": 200}},
        _probe(ns, "after vni"),
        {"name": "vni again", "module": "tunnel", "args": {**base, "vni": 200}},
        {"name": "dstport", "module": "tunnel", "args": {**base, "vni": 200, "dstport": 8472}},
        _probe(ns, "after dstport"),
        {"name": "absent", "module": "tunnel", "args": {**base, "state": "absent"}},
        _probe(ns, "after absent"),
        {"name": "ipv6 group", "module": "tunnel", "args": six},
        {"name": "ipv6 group again", "module": "tunnel", "args": six},
        _probe(ns, "after ipv6 group"),
    ]


def _overlay_scenario(ns1: str, ns2: str) -> list[dict]:
    """Two "hosts" joined by a veth pair; a VXLAN in a bridge on each."""
    _run("ip", "-n", ns1, "link", "add", "e1", "type", "veth", "peer", "name", "e2", "netns", ns2)
    steps = []
    for ns, dev, me, peer in ((ns1, "e1", 1, 2), (ns2, "e2", 2, 1)):
        _run("ip", "-n", ns, "addr", "add", f"192.168.60.{me}/24", "dev", dev)
        _run("ip", "-n", ns, "link", "set", dev, "up")
        steps += [
            {
                "name": f"bridge {me}",
                "module": "bridge",
                "args": {"name": "br-ov", "netns": ns, "addresses": [f"10.60.0.{me}/24"]},
            },
            {
                "name": f"vxlan {me}",
                "module": "tunnel",
                "args": {
                    "name": "vx-ov",
                    "kind": "vxlan",
                    "netns": ns,
                    "vni": 4242,
                    "local": f"192.168.60.{me}",
                    "remote": f"192.168.60.{peer}",
                    "dev": dev,
                    "master": "br-ov",
                },
            },
            _probe(ns, f"after {me}"),
        ]
    return steps


NO_SITE_PYTHON = "python3-without-site-packages"


def _refusals_scenario(ns: str, work: Path) -> list[dict]:
    """Bad input, and check mode of the kinds this kernel may lack."""
    # An interpreter without pyroute2: the system one without its site
    # packages (Debian's python3-pyroute2 lives in dist-packages).
    no_site = work / NO_SITE_PYTHON
    no_site.write_text('#!/bin/sh\nexec /usr/bin/python3 -S "$@"\n')
    no_site.chmod(0o755)
    _run("ip", "-n", ns, "link", "add", "w0", "type", "veth", "peer", "name", "w1")

    def step(label: str, module: str, check: bool = False, **args) -> dict:  # type: ignore[no-untyped-def]
        return {"name": label, "module": module, "args": {"netns": ns, **args}, "check": check}

    vx = {"kind": "vxlan", "name": "vx-bad", "vni": 5}
    return [
        step("long name", "bridge", name="br-much-too-long0"),
        step("not cidr", "bridge", name="br-bad", addresses=["10.0.0.1"]),
        step("unknown port", "bridge", name="br-bad", ports=["nosuch0"]),
        step("vlan id 4095", "vlan", link="w0", vlan_id=4095),
        step("unknown parent", "vlan", link="nosuch0", vlan_id=10),
        step("long default name", "vlan", link="w0-fifteen-ch", vlan_id=100),
        step("vni too big", "tunnel", **{**vx, "vni": 16777216}),
        step("unknown underlay", "tunnel", **vx, dev="nosuch0"),
        step("gre with vni", "tunnel", kind="gre", name="gre-bad", vni=5),
        step("another kind", "bridge", name="w0"),
        step("another kind absent", "tunnel", kind="vxlan", name="w1", state="absent"),
        {
            "name": "unknown netns",
            "module": "bridge",
            "args": {"name": "br-bad", "netns": f"{ns}-nosuch"},
        },
        step("check vlan", "vlan", check=True, link="w0", vlan_id=10, addresses=["10.70.0.1/24"]),
        step(
            "check gretap",
            "tunnel",
            check=True,
            kind="gretap",
            name="gt-t",
            local="192.0.2.1",
            remote="192.0.2.2",
            key=7,
            master="br-later",
        ),
        step("check gre", "tunnel", check=True, kind="gre", name="gre-t", remote="192.0.2.2"),
        {
            "name": "without pyroute2",
            "module": "bridge",
            "args": {"name": "br-bad", "netns": ns},
            "python": str(no_site),
        },
        step("vlan filtering for real", "bridge", name="br-vf", vlan_filtering=True),
        _probe(ns, "after vlan filtering"),
        step("vlan for real", "vlan", link="w0", vlan_id=10),
        step("gretap for real", "tunnel", kind="gretap", name="gt-t", remote="192.0.2.2"),
        _probe(ns, "after refusals"),
    ]


def _vlan_scenario(ns: str) -> list[dict]:
    _run("ip", "-n", ns, "link", "add", "l0", "type", "veth", "peer", "name", "l1")
    _run("ip", "-n", ns, "link", "add", "br-v", "type", "bridge")
    base = {"netns": ns, "link": "l0", "vlan_id": 10, "name": "vl-t"}
    return [
        {"name": "create", "module": "vlan", "args": {**base, "addresses": ["10.80.0.1/24"]}},
        _probe(ns, "after create"),
        {"name": "create again", "module": "vlan", "args": {**base, "addresses": ["10.80.0.1/24"]}},
        {"name": "new id", "module": "vlan", "args": {**base, "vlan_id": 11, "master": "br-v"}},
        _probe(ns, "after new id"),
        {"name": "absent", "module": "vlan", "args": {**base, "state": "absent"}},
        _probe(ns, "after absent"),
    ]


def _gre_scenario(ns: str) -> list[dict]:
    gretap = {
        "netns": ns,
        "kind": "gretap",
        "name": "gt-t",
        "local": "192.0.2.1",
        "remote": "192.0.2.2",
        "key": 7,
    }
    gre = {"netns": ns, "kind": "gre", "name": "gre-t", "local": "192.0.2.1", "remote": "192.0.2.3"}
    return [
        {"name": "gretap", "module": "tunnel", "args": gretap},
        {"name": "gretap again", "module": "tunnel", "args": gretap},
        _probe(ns, "after gretap"),
        {"name": "gretap key", "module": "tunnel", "args": {**gretap, "key": 8}},
        _probe(ns, "after gretap key"),
        {"name": "gre", "module": "tunnel", "args": {**gre, "addresses": ["10.90.0.1/30"]}},
        {"name": "gre again", "module": "tunnel", "args": {**gre, "addresses": ["10.90.0.1/30"]}},
        _probe(ns, "after gre"),
        {"name": "absent", "module": "tunnel", "args": {**gre, "state": "absent"}},
        _probe(ns, "after absent"),
    ]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict]]:
    """Every scenario in its own namespaces, run side by side; the namespaces
    (and with them every link made) are deleted afterwards, whatever happens."""
    if _real_prerequisites() is not None:
        pytest.skip(str(_real_prerequisites()))
    subprocess.run([str(ROOT / "scripts" / "link-collection.sh")], check=True, cwd=ROOT)
    made: list[str] = []
    started: dict[str, subprocess.Popen[str]] = {}

    def namespace() -> str:
        name = _new_ns_name()
        _run("ip", "netns", "add", name)
        made.append(name)
        return name

    try:
        work = tmp_path_factory.mktemp("netlink")
        plans = {
            "bridge": lambda: _bridge_scenario(namespace()),
            "vxlan": lambda: _vxlan_scenario(namespace()),
            "refusals": lambda: _refusals_scenario(namespace(), work),
        }
        overlay_ns: list[str] = []

        def overlay() -> list[dict]:
            overlay_ns.extend((namespace(), namespace()))
            return _overlay_scenario(*overlay_ns)

        plans["overlay"] = overlay
        if _kernel_lacks("vlan") is None:
            plans["vlan"] = lambda: _vlan_scenario(namespace())
        if _kernel_lacks("gre") is None and _kernel_lacks("gretap") is None:
            plans["gre"] = lambda: _gre_scenario(namespace())
        # The stock-kernel guest (tests/lab/test_stock_kernel.py) runs only the
        # scenarios this machine's kernel cannot: each playbook is slow there.
        only = os.environ.get("STRATUS_NETLINK_SCENARIOS")
        if only:
            plans = {label: plan for label, plan in plans.items() if label in only.split(",")}
        for label, plan in plans.items():
            started[label] = _start(work, label, plan())
        results = {}
        for label, run in started.items():
            results[label] = _results(run)
        if "overlay" in results:
            results["overlay"]["_ns"] = tuple(overlay_ns)  # type: ignore[assignment]
        yield results
    finally:
        for run in started.values():
            if run.poll() is None:
                run.kill()
                run.communicate()
        for name in made:
            _run("ip", "netns", "del", name, check=False)
        left = _run("ip", "netns", "list").stdout
        assert not any(name in left for name in made), f"namespaces left behind: {left}"


@needs_netns
def test_bridge_check_mode_predicts_and_changes_nothing(runs: dict) -> None:
    r = runs["bridge"]
    check = r["check create"]
    assert check["changed"] is True
    assert check["link"]["mtu"] == 1400
    assert check["link"]["ports"] == ["p0"]
    assert check["diff"]["before"] == {}
    assert check["diff"]["after"]["addresses"] == ["10.1.0.1/24", "fd00:1::1/64"]
    assert "br-t" not in _links(r["after check create"])


@needs_netns
def test_bridge_is_created_as_asked(runs: dict) -> None:
    r = runs["bridge"]
    create = r["create"]
    assert create["changed"] is True
    assert create["diff"]["before"] == {}
    link = _links(r["after create"])["br-t"]
    assert link["linkinfo"]["info_kind"] == "bridge"
    assert link["mtu"] == 1400
    assert "UP" in link["flags"]
    assert _data(link)["stp_state"] == 1
    assert _addresses(link) == ["10.1.0.1/24", "fd00:1::1/64"]
    assert _links(r["after create"])["p0"].get("master") == "br-t"
    assert _links(r["after create"])["p1"].get("master") is None
    # What the module reports is what the kernel has.
    assert create["link"] == {
        "name": "br-t",
        "kind": "bridge",
        "mtu": 1400,
        "up": True,
        "master": None,
        "addresses": ["10.1.0.1/24", "fd00:1::1/64"],
        "stp": True,
        "vlan_filtering": False,
        "ports": ["p0"],
    }


@needs_netns
def test_bridge_is_idempotent(runs: dict) -> None:
    r = runs["bridge"]
    for step in ("create again", "change again", "left out", "absent again"):
        assert r[step].get("failed") is not True, r[step]
        assert r[step]["changed"] is False, step
    assert r["left out"]["link"]["ports"] == ["p1"]  # ports left out: kept


@needs_netns
def test_bridge_changes_in_place(runs: dict) -> None:
    r = runs["bridge"]
    check = r["check change"]
    assert check["changed"] is True
    unchanged = _links(r["after check change"])["br-t"]
    assert unchanged["mtu"] == 1400
    assert _addresses(unchanged) == ["10.1.0.1/24", "fd00:1::1/64"]

    change = r["change"]
    assert change["changed"] is True
    assert change["recreated"] is False
    assert sorted(change["changes"]) == ["addresses", "mtu", "ports"]
    assert change["diff"]["before"]["mtu"] == 1400
    assert change["diff"]["after"]["mtu"] == 1300
    assert change["diff"]["after"]["addresses"] == ["10.1.0.1/24", "10.1.1.1/24"]
    assert change["diff"]["after"] == check["diff"]["after"]  # check mode predicted it
    links = _links(r["after change"])
    bridge_link = links["br-t"]
    assert bridge_link["ifindex"] == _links(r["after create"])["br-t"]["ifindex"]
    assert bridge_link["mtu"] == 1300
    assert _addresses(bridge_link) == ["10.1.0.1/24", "10.1.1.1/24"]
    assert links["p0"].get("master") is None
    assert links["p1"].get("master") == "br-t"

    down = r["down"]
    assert down["changed"] is True
    assert sorted(down["changes"]) == ["stp", "up"]
    link = _links(r["after down"])["br-t"]
    assert "UP" not in link["flags"]
    assert _data(link)["stp_state"] == 0


@needs_netns
def test_bridge_absent_removes_it_and_keeps_the_ports(runs: dict) -> None:
    r = runs["bridge"]
    assert r["check absent"]["changed"] is True
    assert "br-t" in _links(r["after check absent"])
    absent = r["absent"]
    assert absent["changed"] is True
    assert absent["diff"]["after"] == {}
    assert absent["diff"]["before"]["name"] == "br-t"
    links = _links(r["after absent"])
    assert "br-t" not in links
    assert "p1" in links
    assert links["p1"].get("master") is None


@needs_netns
def test_vxlan_create_and_idempotence(runs: dict) -> None:
    r = runs["vxlan"]
    assert r["create"]["changed"] is True
    link = _links(r["after create"])["vx-t"]
    data = _data(link)
    assert link["linkinfo"]["info_kind"] == "vxlan"
    assert (data["id"], data["local"], data["remote"], data["port"]) == (
        100,
        "192.168.50.1",
        "192.168.50.2",
        4789,
    )
    assert data["link"] == "u0"
    assert data["learning"] is False
    assert link["mtu"] == 1450
    assert _addresses(link) == ["10.50.0.1/24"]
    assert r["create again"]["changed"] is False
    assert r["vni again"]["changed"] is False


@needs_netns
def test_vxlan_mtu_changes_in_place(runs: dict) -> None:
    r = runs["vxlan"]
    assert r["mtu"]["changed"] is True
    assert r["mtu"]["recreated"] is False
    assert r["mtu"]["changes"] == ["mtu"]
    link = _links(r["after mtu"])["vx-t"]
    assert link["mtu"] == 1400
    assert link["ifindex"] == _links(r["after create"])["vx-t"]["ifindex"]


@needs_netns
def test_vxlan_immutable_change_recreates(runs: dict) -> None:
    r = runs["vxlan"]
    check = r["check vni"]
    assert check["changed"] is True
    assert check["recreated"] is True
    assert "deleted and created again: vni" in check["diff"]["after_header"]
    assert _data(_links(r["after check vni"])["vx-t"])["id"] == 100

    vni = r["vni"]
    assert vni["recreated"] is True
    assert sorted(vni["changes"]) == ["mtu", "vni"]  # mtu: back from 1400 to 1450
    assert vni["diff"]["before"]["vni"] == 100
    assert vni["diff"]["after"]["vni"] == 200
    link = _links(r["after vni"])["vx-t"]
    assert _data(link)["id"] == 200
    assert link["ifindex"] != _links(r["after mtu"])["vx-t"]["ifindex"]
    # The new link got the settings back.
    assert link["mtu"] == 1450
    assert _addresses(link) == ["10.50.0.1/24"]
    assert "UP" in link["flags"]

    assert r["dstport"]["recreated"] is True
    assert _data(_links(r["after dstport"])["vx-t"])["port"] == 8472


@needs_netns
def test_vxlan_absent(runs: dict) -> None:
    r = runs["vxlan"]
    assert r["absent"]["changed"] is True
    links = _links(r["after absent"])
    assert "vx-t" not in links
    assert "u0" in links


@needs_netns
def test_vxlan_over_ipv6_multicast(runs: dict) -> None:
    r = runs["vxlan"]
    assert r["ipv6 group"]["changed"] is True
    assert r["ipv6 group again"]["changed"] is False
    data = _data(_links(r["after ipv6 group"])["vx-six"])
    assert (data["id"], data["local6"], data["group6"], data["ttl"]) == (
        9,
        "fd00:50::1",
        "ff05::9",
        4,
    )
    assert r["ipv6 group"]["link"]["group"] == "ff05::9"
    assert r["ipv6 group"]["link"]["remote"] is None


@needs_netns
def test_vxlan_overlay_carries_a_ping(runs: dict) -> None:
    if not shutil.which("ping"):
        pytest.skip("ping is not installed (Debian package iputils-ping; scripts/bootstrap.sh)")
    r = runs["overlay"]
    ns1, ns2 = r["_ns"]
    for me in (1, 2):
        assert r[f"bridge {me}"]["changed"] is True, r[f"bridge {me}"]
        assert r[f"vxlan {me}"]["changed"] is True, r[f"vxlan {me}"]
        links = _links(r[f"after {me}"])
        assert links["vx-ov"]["master"] == "br-ov"
        assert _data(links["vx-ov"])["id"] == 4242
        assert _addresses(links["br-ov"]) == [f"10.60.0.{me}/24"]
    ping = _run("ip", "netns", "exec", ns1, "ping", "-c", "2", "-W", "2", "10.60.0.2", check=False)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    back = _run("ip", "netns", "exec", ns2, "ping", "-c", "1", "-W", "2", "10.60.0.1", check=False)
    assert back.returncode == 0, back.stdout + back.stderr
    # The overlay, not some other path, carried it: without the tunnel no reply.
    _run("ip", "-n", ns2, "link", "set", "vx-ov", "down")
    _run("ip", "-n", ns1, "neigh", "flush", "dev", "br-ov")
    cut = _run("ip", "netns", "exec", ns1, "ping", "-c", "1", "-W", "1", "10.60.0.2", check=False)
    assert cut.returncode != 0, cut.stdout


@needs_netns
@pytest.mark.parametrize(
    ("step", "message"),
    [
        ("long name", r"'br-much-too-long0' is 17 characters long; .* at most 15"),
        ("not cidr", r"'10.0.0.1' is not in CIDR notation"),
        ("unknown port", r"ports: there is no link named 'nosuch0'"),
        ("vlan id 4095", r"vlan_id must be an integer in 1\.\.4094, not 4095"),
        ("unknown parent", r"link: there is no link named 'nosuch0'"),
        ("long default name", r"'w0-fifteen-ch.100' is 17 characters long"),
        ("vni too big", r"vni must be an integer in 0\.\.16777215, not 16777216"),
        ("unknown underlay", r"dev: there is no link named 'nosuch0'"),
        ("gre with vni", r"vni: not an option of a gre tunnel"),
        ("another kind", r"w0 exists as a link of kind veth, not bridge; .* not replace it"),
        ("another kind absent", r"w1 exists as a link of kind veth, not vxlan or gre or gretap"),
        ("unknown netns", r"network namespace 'stratus-t-[0-9a-f]+-nosuch' does not exist"),
    ],
)
def test_bad_input_is_refused_and_leaves_nothing(runs: dict, step: str, message: str) -> None:
    import re

    result = runs["refusals"][step]
    assert result.get("failed") is True, result
    assert re.search(message, result["msg"]), result["msg"]
    assert result.get("changed", False) is False
    links = set(_links(runs["refusals"]["after refusals"]))
    assert {"w0", "w1"} <= links
    assert links <= {"lo", "w0", "w1", "w0.10", "gt-t", "br-vf"}, links


@needs_netns
def test_a_python_without_pyroute2_is_told_what_to_install(runs: dict) -> None:
    result = runs["refusals"]["without pyroute2"]
    assert result.get("failed") is True, result
    assert "pyroute2" in result["msg"]
    assert "python3-pyroute2" in result["msg"]
    assert "/usr/bin/python3" in result["msg"]  # missing_required_lib names the interpreter


@needs_netns
def test_vlan_and_gre_check_mode_work_without_the_kernel_feature(runs: dict) -> None:
    r = runs["refusals"]
    vlan = r["check vlan"]
    assert vlan.get("failed") is not True, vlan
    assert vlan["changed"] is True
    assert vlan["name"] == "w0.10"  # <link>.<vlan_id>
    assert vlan["link"]["kind"] == "vlan"
    assert (vlan["link"]["link"], vlan["link"]["vlan_id"]) == ("w0", 10)
    assert vlan["diff"]["after"]["addresses"] == ["10.70.0.1/24"]
    gretap = r["check gretap"]
    assert gretap["changed"] is True
    assert gretap["link"]["key"] == 7
    assert gretap["link"]["master"] == "br-later"
    assert any("br-later" in w for w in gretap.get("warnings", [])), gretap
    assert r["check gre"]["changed"] is True
    assert r["check gre"]["link"]["kind"] == "gre"
    links = _links(r["after refusals"])
    if _kernel_lacks("vlan") is not None:
        assert "w0.10" not in links
    if _kernel_lacks("gretap") is not None:
        assert "gt-t" not in links


@needs_netns
def test_missing_kernel_support_is_named(runs: dict) -> None:
    """A real run on a kernel without the module fails, naming it."""
    r = runs["refusals"]
    lacks = {"vlan": _kernel_lacks("vlan"), "gretap": _kernel_lacks("gretap")}
    if lacks["vlan"] is None and lacks["gretap"] is None:
        pytest.skip("this kernel has 8021q and ip_gre; the error path cannot be shown here")
    if lacks["vlan"] is not None:
        assert r["vlan for real"].get("failed") is True
        assert r["vlan for real"]["changed"] is False
        assert "lacks the 8021q module" in r["vlan for real"]["msg"], r["vlan for real"]["msg"]
    if lacks["gretap"] is not None:
        assert r["gretap for real"].get("failed") is True
        assert r["gretap for real"]["changed"] is False
        assert "lacks the ip_gre module" in r["gretap for real"]["msg"], r["gretap for real"]["msg"]


@needs_netns
def test_bridge_vlan_filtering(runs: dict) -> None:
    """Applied where the kernel has it; refused, naming the kernel option, where not."""
    r = runs["refusals"]
    result = r["vlan filtering for real"]
    links = _links(r["after vlan filtering"])
    if _kernel_lacks("vlan_filtering") is None:
        assert result["changed"] is True
        assert _data(links["br-vf"])["vlan_filtering"] == 1
    else:
        assert result.get("failed") is True
        assert "CONFIG_BRIDGE_VLAN_FILTERING" in result["msg"], result["msg"]
        assert "br-vf" not in links


def _skip_without(kind: str) -> None:
    reason = _kernel_lacks(kind)
    if reason is not None:
        pytest.skip(reason)


@needs_netns
def test_vlan_for_real(runs: dict) -> None:
    _skip_without("vlan")
    r = runs["vlan"]
    assert r["create"]["changed"] is True
    link = _links(r["after create"])["vl-t"]
    assert _data(link)["id"] == 10
    assert link["link"] == "l0"
    assert _addresses(link) == ["10.80.0.1/24"]
    assert r["create again"]["changed"] is False
    new = r["new id"]
    assert new["recreated"] is True
    assert "vlan_id" in new["diff"]["after_header"]
    link = _links(r["after new id"])["vl-t"]
    assert _data(link)["id"] == 11
    assert link["master"] == "br-v"
    assert r["absent"]["changed"] is True
    assert "vl-t" not in _links(r["after absent"])


@needs_netns
def test_gre_and_gretap_for_real(runs: dict) -> None:
    _skip_without("gre")
    _skip_without("gretap")
    r = runs["gre"]
    assert r["gretap"]["changed"] is True
    assert r["gretap again"]["changed"] is False
    link = _links(r["after gretap"])["gt-t"]
    assert link["linkinfo"]["info_kind"] == "gretap"
    assert (_data(link)["local"], _data(link)["remote"]) == ("192.0.2.1", "192.0.2.2")
    assert r["gretap key"]["recreated"] is True
    assert r["gretap key"]["link"]["key"] == 8
    assert r["gre"]["changed"] is True
    assert r["gre again"]["changed"] is False
    assert _addresses(_links(r["after gre"])["gre-t"]) == ["10.90.0.1/30"]
    assert "gre-t" not in _links(r["after absent"])
