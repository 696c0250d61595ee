"""The stratus.cloud.swift_ring module.

Two halves:

- the decision logic (plugins/module_utils/swift_ring.py: what to add,
  reweight, drain and remove, and which input is refused), tested on plain
  dicts without Swift;
- the module for real: ansible-playbook runs it on localhost with the system
  ``/usr/bin/python3``, as Ansible runs it on the ring-building host, against
  Swift's own RingBuilder (Debian package python3-swift, which
  scripts/bootstrap.sh installs). The result is read back with Swift's
  ``swift-ring-builder`` and ``swift.common.ring.Ring``. Without python3-swift
  these tests are skipped, saying so.

Rings are tiny (part_power 8) so that every rebalance is instant; one
scenario runs with min_part_hours 0 so that it can finish draining, another
with min_part_hours 1 to show that a change right after a rebalance is saved
and reported pending instead of being forced.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.module_runner import module_task, results, start_playbook

ROOT = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = "/usr/bin/python3"


def _load_utils():  # type: ignore[no-untyped-def]
    path = ROOT / "plugins" / "module_utils" / "swift_ring.py"
    spec = importlib.util.spec_from_file_location("stratus_swift_ring_utils", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sr = _load_utils()


def dev(zone: int, ip: str, device: str, weight: float = 100.0, **extra) -> dict:  # type: ignore[no-untyped-def]
    return {"zone": zone, "ip": ip, "port": 6200, "device": device, "weight": weight, **extra}


def builder_dev(dev_id: int, zone: int, ip: str, device: str, weight: float, parts: int) -> dict:
    return {
        "id": dev_id,
        "region": 1,
        "zone": zone,
        "ip": ip,
        "port": 6200,
        "replication_ip": ip,
        "replication_port": 6200,
        "device": device,
        "weight": weight,
        "meta": "",
        "parts": parts,
    }


# ---------------------------------------------------------------- decisions


def test_ring_names() -> None:
    assert sr.ring_name("account") == "account"
    assert sr.ring_name("object", 0) == "object"
    assert sr.ring_name("object", 2) == "object-2"
    with pytest.raises(sr.RingInputError, match="object ring only"):
        sr.ring_name("container", 1)
    with pytest.raises(sr.RingInputError):
        sr.ring_name("object", -1)


def test_devices_get_swift_defaults() -> None:
    (one,) = sr.normalize_devices([dev(2, "10.0.0.1", "sdb", 50)])
    assert one == {
        "region": 1,
        "zone": 2,
        "ip": "10.0.0.1",
        "port": 6200,
        "device": "sdb",
        "weight": 50.0,
        "replication_ip": "10.0.0.1",
        "replication_port": 6200,
        "meta": None,
    }
    (six,) = sr.normalize_devices([dev(1, "[FD00::0001]", "sdb", replication_port=6300)])
    assert six["ip"] == "fd00::1"
    assert six["replication_port"] == 6300


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ({"ip": "10.0.0.1", "port": 6200, "device": "sdb", "weight": 1}, "zone is required"),
        (dev(1, "10.0.0.1", "sdb", -1), "weight must be 0 or more"),
        (dev(1, "10.0.0.1", "sdb", "heavy"), "weight must be a number"),
        ({**dev(1, "10.0.0.1", "sdb"), "port": 70000}, "port must be 1..65535"),
        (dev(1, "10.0.0.1", "/dev/sdb"), "bare name"),
        ({**dev(1, "10.0.0.1", "sdb"), "size": 4}, "unknown key"),
        ({**dev(1, "10.0.0.1", "sdb"), "ip": ""}, "ip is required"),
    ],
)
def test_bad_devices_are_refused(device: dict, message: str) -> None:
    with pytest.raises(sr.RingInputError, match=message):
        sr.normalize_devices([device])


def test_a_device_listed_twice_is_refused() -> None:
    with pytest.raises(sr.RingInputError, match=r"devices\[1\] repeats devices\[0\]"):
        sr.normalize_devices([dev(1, "10.0.0.1", "sdb"), dev(2, "10.0.0.1", "sdb")])


def test_parameters_on_create_and_change() -> None:
    with pytest.raises(sr.RingInputError, match="part_power is required"):
        sr.check_parameters(None, None, 3, 1)
    assert sr.check_parameters(None, 10, 3, 1) == {}
    current = {"part_power": 10, "replicas": 3.0, "min_part_hours": 1}
    assert sr.check_parameters(current, None, 3, 1) == {}
    assert sr.check_parameters(current, 10, 2, 24) == {
        "replicas": (3.0, 2),
        "min_part_hours": (1, 24),
    }
    with pytest.raises(sr.RingInputError, match=r"part_power is 10 .* cannot change to 12"):
        sr.check_parameters(current, 12, 3, 1)
    with pytest.raises(sr.RingInputError, match="replicas"):
        sr.check_parameters(current, 10, 0.5, 1)
    with pytest.raises(sr.RingInputError, match="min_part_hours"):
        sr.check_parameters(current, 10, 3, -1)


def test_plan_adds_reweights_relocates_and_updates() -> None:
    current = [
        builder_dev(0, 1, "10.0.0.1", "sdb", 100.0, 128),
        None,  # a hole left by an earlier removal
        builder_dev(2, 2, "10.0.0.2", "sdb", 100.0, 128),
        builder_dev(3, 3, "10.0.0.3", "sdb", 100.0, 128),
    ]
    wanted = sr.normalize_devices(
        [
            dev(1, "10.0.0.1", "sdb", 100),  # unchanged
            dev(2, "10.0.0.2", "sdb", 200),  # heavier
            dev(4, "10.0.0.3", "sdb", 100, replication_ip="10.9.0.3", meta="rack c"),
            dev(1, "10.0.0.4", "sdb", 100),  # new
        ]
    )
    plan = sr.plan_devices(current, wanted)
    assert [d["ip"] for d in plan["add"]] == ["10.0.0.4"]
    assert plan["add"][0]["meta"] == ""
    assert plan["reweight"] == [{"id": 2, "old": 100.0, "new": 200.0}]
    assert plan["relocate"] == [{"id": 3, "old": (1, 3), "new": (1, 4)}]
    assert plan["update"] == [
        {"id": 3, "changes": {"replication_ip": "10.9.0.3", "meta": "rack c"}}
    ]
    assert plan["drain"] == plan["draining"] == plan["remove"] == []
    assert sr.plan_needs_rebalance(plan)


def test_plan_of_an_unchanged_ring_is_empty() -> None:
    current = [builder_dev(0, 1, "10.0.0.1", "sdb", 100.0, 768)]
    wanted = sr.normalize_devices([dev(1, "10.0.0.1", "sdb", 100, meta=None)])
    plan = sr.plan_devices(current, wanted)
    assert not sr.plan_changes_devices(plan)
    assert not sr.plan_needs_rebalance(plan)


def test_unlisted_devices_drain_before_removal() -> None:
    current = [
        builder_dev(0, 1, "10.0.0.1", "sdb", 100.0, 200),  # listed
        builder_dev(1, 1, "10.0.0.1", "sdc", 100.0, 128),  # dropped now: drain
        builder_dev(2, 2, "10.0.0.2", "sdb", 0.0, 40),  # draining, not empty yet
        builder_dev(3, 2, "10.0.0.2", "sdc", 0.0, 0),  # drained: remove
        builder_dev(4, 3, "10.0.0.3", "sdb", 100.0, 0),  # never held parts: remove
    ]
    plan = sr.plan_devices(current, sr.normalize_devices([dev(1, "10.0.0.1", "sdb")]))
    assert plan["drain"] == [1]
    assert plan["draining"] == [1, 2]
    assert plan["remove"] == [3, 4]
    assert plan["add"] == plan["reweight"] == []


def test_changing_a_device_address_is_a_new_device() -> None:
    current = [builder_dev(0, 1, "10.0.0.1", "sdb", 100.0, 128)]
    plan = sr.plan_devices(current, sr.normalize_devices([dev(1, "10.0.0.9", "sdb")]))
    assert [d["ip"] for d in plan["add"]] == ["10.0.0.9"]
    assert plan["drain"] == [0]


def test_rebalance_is_kept_by_swift_ring_builder_rules() -> None:
    keep = sr.should_keep_rebalance
    assert not keep(0, 0, True, 0.0, 0.0, 0.0, 0.0)  # nothing could move
    assert keep(0, 1, False, 0.0, 0.0, 0.0, 0.0)  # a device was removed
    assert keep(10, 0, True, 0.0, 0.0, 0.0, 0.0)  # device changes
    assert keep(10, 0, False, None, 0.0, None, 0.0)  # first balance
    assert not keep(3, 0, False, 1.2, 0.9, 0.0, 0.0)  # < 1 % better: cowardly
    assert keep(30, 0, False, 5.0, 0.5, 0.0, 0.0)
    assert keep(30, 0, False, sr.MAX_BALANCE, sr.MAX_BALANCE, 0.0, 0.0)
    assert keep(30, 0, False, 0.5, 0.5, 9.5, 0.0)  # dispersion improved


def test_diff_table_is_readable() -> None:
    text = sr.format_table(
        {"part_power": 8, "replicas": 3.0, "min_part_hours": 1},
        [builder_dev(0, 1, "10.0.0.1", "sdb", 100.0, 768), None],
    )
    assert "part_power: 8\n" in text
    assert "10.0.0.1:6200" in text
    assert text.splitlines()[-1].split() == [
        "0",
        "1",
        "1",
        "10.0.0.1:6200",
        "10.0.0.1:6200",
        "sdb",
        "100.00",
        "768",
    ]


# ------------------------------------------------------------- for real


def _has_swift() -> bool:
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        return False
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import swift.common.ring"], capture_output=True, check=False
    )
    return probe.returncode == 0


needs_swift = pytest.mark.skipif(
    not _has_swift(),
    reason="python3-swift is not installed for /usr/bin/python3 (scripts/bootstrap.sh installs it)",
)


def _devices(*extra: dict) -> list[dict]:
    base = [dev(zone, f"10.0.0.{zone}", name) for zone in (1, 2, 3) for name in ("sdb", "sdc")]
    return base + list(extra)


def _start_steps(workdir: Path, steps: list[dict]) -> subprocess.Popen[str]:
    """Start the steps as tasks of one playbook on localhost (see _results).

    A step is {name, args} plus optional check (check mode), python (another
    interpreter) and stat (record the sha1 of the ring files instead).
    """
    tasks = []
    for step in steps:
        if step.get("stat"):
            tasks.append(
                {
                    "name": step["name"],
                    "ansible.builtin.stat": {"path": step["stat"], "checksum_algorithm": "sha1"},
                }
            )
            continue
        tasks.append(
            module_task(
                step["name"], step.get("module", "stratus.cloud.swift_ring"), step["args"], step
            )
        )
    return start_playbook(workdir / "play.yml", "Swift ring module", tasks)


def _results(run: subprocess.Popen[str]) -> dict[str, dict]:
    """The playbook's task results by step name."""
    return results(run)


def _ring_builder_cli(builder_file: Path) -> str:
    """`swift-ring-builder <file>`; the same entry point through python3 when the
    swift package (which ships the command) is not installed."""
    command = ["swift-ring-builder", str(builder_file)]
    if not Path("/usr/bin/swift-ring-builder").exists():
        command = [
            SYSTEM_PYTHON,
            "-c",
            "import sys; from swift.cli.ringbuilder import main; sys.exit(main())",
            str(builder_file),
        ]
    run = subprocess.run(command, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


def _quick_steps(swift_dir: Path) -> list[dict]:
    """A ring with min_part_hours 0 taken through its whole life."""
    ring = {"builder_dir": str(swift_dir), "ring": "object", "min_part_hours": 0}
    create = {**ring, "part_power": 8, "devices": _devices()}
    # A fourth zone; then zone 3's weight moves between its disks (the zones
    # stay equal, so the ring can balance fully); then the fourth zone goes.
    new_dev = dev(4, "10.0.0.4", "sdb")
    reweighted = [
        *_devices()[:-2],
        dev(3, "10.0.0.3", "sdb", 50),
        dev(3, "10.0.0.3", "sdc", 150),
        new_dev,
    ]
    without_new = reweighted[:-1]
    builder = str(swift_dir / "object.builder")
    ring_gz = str(swift_dir / "object.ring.gz")
    steps = [
        {"name": "create", "args": create},
        {"name": "stat builder 1", "stat": builder},
        {"name": "stat ring 1", "stat": ring_gz},
        {"name": "again", "args": create},
        {"name": "check add", "args": {**ring, "devices": _devices(new_dev)}, "check": True},
        {"name": "stat builder 2", "stat": builder},
        {"name": "stat ring 2", "stat": ring_gz},
        {"name": "add", "args": {**ring, "devices": _devices(new_dev)}},
        {"name": "reweight", "args": {**ring, "devices": reweighted}},
        {"name": "drop", "args": {**ring, "devices": without_new}},
        {"name": "drop again", "args": {**ring, "devices": without_new}},
        {"name": "drop settled", "args": {**ring, "devices": without_new}},
        {"name": "part_power", "args": {**ring, "part_power": 9, "devices": without_new}},
        {"name": "stat builder 3", "stat": builder},
    ]
    return steps


def _slow_steps(swift_dir: Path) -> list[dict]:
    """A ring with min_part_hours 1: changes right after a rebalance wait."""
    ring = {"builder_dir": str(swift_dir), "ring": "object", "policy_index": 1}
    create = {**ring, "part_power": 8, "min_part_hours": 1, "devices": _devices()}
    added = {**ring, "devices": _devices(dev(1, "10.0.0.4", "sdb"))}
    account = {"builder_dir": str(swift_dir), "ring": "account", "min_part_hours": 0}
    relabelled = _devices()
    relabelled[0] = {**relabelled[0], "replication_ip": "10.9.0.1", "meta": "rack a1"}
    lost = {"path": str(swift_dir / "account.ring.gz"), "state": "absent"}
    steps = [
        {"name": "create check", "args": create, "check": True},
        {"name": "stat dir", "stat": str(swift_dir)},
        {"name": "create", "args": create},
        {"name": "add", "args": added},
        {"name": "add again", "args": added},
        {"name": "venv python", "args": added, "python": sys.executable},
        # The account ring beside it: refused input, metadata, a lost ring file.
        {"name": "too few", "args": {**account, "part_power": 6, "devices": _devices()[:2]}},
        {"name": "account", "args": {**account, "part_power": 6, "devices": _devices()}},
        {"name": "meta", "args": {**account, "devices": relabelled}},
        {"name": "lose ring", "module": "ansible.builtin.file", "args": lost},
        {"name": "ring back", "args": {**account, "devices": relabelled}},
        {"name": "absent check", "args": {**ring, "state": "absent"}, "check": True},
        {"name": "stat builder", "stat": str(swift_dir / "object-1.builder")},
        {"name": "absent", "args": {**ring, "state": "absent"}},
        {"name": "absent again", "args": {**ring, "state": "absent"}},
    ]
    return steps


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Both scenarios, run side by side (each step starts Swift: ~0.6 s)."""
    if not _has_swift():
        pytest.skip("python3-swift is not installed for /usr/bin/python3")
    subprocess.run([str(ROOT / "scripts" / "link-collection.sh")], check=True, cwd=ROOT)
    started = {}
    for name, steps_of in (("quick", _quick_steps), ("slow", _slow_steps)):
        work = tmp_path_factory.mktemp(f"swift-{name}")
        started[name] = (work / "swift", _start_steps(work, steps_of(work / "swift")))
    results = {}
    for name, (swift_dir, run) in started.items():
        results[name] = _results(run)
        results[name]["_dir"] = swift_dir  # type: ignore[assignment]
    return results


@pytest.fixture(scope="module")
def quick(scenarios: dict[str, dict]) -> dict:
    return scenarios["quick"]


@pytest.fixture(scope="module")
def slow(scenarios: dict[str, dict]) -> dict:
    return scenarios["slow"]


@needs_swift
def test_create_builds_a_balanced_ring(quick: dict) -> None:
    result = quick["create"]
    assert result["changed"] and result["rebalanced"]
    assert not result["rebalance_pending"]
    assert result["parts_moved"] == 3 * 256
    assert result["balance"] == 0.0
    assert len(result["added"]) == 6 and len(result["devices"]) == 6
    assert {d["parts"] for d in result["devices"]} == {128}
    assert result["ring_file"].endswith("/object.ring.gz")
    assert "10.0.0.3:6200" in result["diff"]["after"]
    assert result["diff"]["before"] == ""


@needs_swift
def test_second_run_changes_nothing(quick: dict) -> None:
    result = quick["again"]
    assert result["changed"] is False
    assert not result["rebalanced"] and not result["rebalance_pending"]
    assert result["added"] == result["reweighted"] == result["draining"] == []


@needs_swift
def test_check_mode_reports_and_writes_nothing(quick: dict) -> None:
    result = quick["check add"]
    assert result["changed"] and result["rebalanced"]
    assert [d["ip"] for d in result["added"]] == ["10.0.0.4"]
    assert "10.0.0.4" in result["diff"]["after"] and "10.0.0.4" not in result["diff"]["before"]
    for kind in ("builder", "ring"):
        assert (
            quick[f"stat {kind} 1"]["stat"]["checksum"]
            == (quick[f"stat {kind} 2"]["stat"]["checksum"])
        )
    assert result["backups"] == []


@needs_swift
def test_check_mode_creates_nothing(slow: dict) -> None:
    result = slow["create check"]
    assert result["changed"] and result["rebalanced"]
    assert result["parts_moved"] == 3 * 256 and len(result["devices"]) == 6
    assert result["diff"]["before"] == "" and "10.0.0.3:6200" in result["diff"]["after"]
    assert slow["stat dir"]["stat"]["exists"] is False


@needs_swift
def test_adding_a_device_rebalances(quick: dict) -> None:
    result = quick["add"]
    assert result["changed"] and result["rebalanced"]
    assert result["parts_moved"] > 0
    (added,) = result["added"]
    assert added["ip"] == "10.0.0.4" and added["parts"] > 0
    assert any(path.endswith(".object.builder") for path in result["backups"])


@needs_swift
def test_changing_a_weight_rebalances(quick: dict) -> None:
    result = quick["reweight"]
    assert result["changed"] and result["rebalanced"]
    assert [(c["device"], c["old"], c["new"]) for c in result["reweighted"]] == [
        ("r1z3-10.0.0.3:6200/sdb", 100.0, 50.0),
        ("r1z3-10.0.0.3:6200/sdc", 100.0, 150.0),
    ]
    parts = {(d["ip"], d["device"]): d["parts"] for d in result["devices"]}
    assert parts[("10.0.0.3", "sdc")] > 2 * parts[("10.0.0.3", "sdb")]


@needs_swift
def test_a_dropped_device_drains_then_goes(quick: dict) -> None:
    drop = quick["drop"]
    assert drop["changed"] and drop["rebalanced"]
    (draining,) = drop["draining"]
    assert (draining["ip"], draining["device"], draining["weight"]) == ("10.0.0.4", "sdb", 0.0)
    assert drop["removed"] == []
    assert any(d["draining"] and d["ip"] == "10.0.0.4" for d in drop["devices"])
    assert "10.0.0.4" in drop["diff"]["after"]

    gone = quick["drop again"]
    assert gone["changed"] and gone["rebalanced"]
    assert [(d["ip"], d["device"]) for d in gone["removed"]] == [("10.0.0.4", "sdb")]
    assert gone["draining"] == []
    assert "10.0.0.4" not in {d["ip"] for d in gone["devices"]}
    assert "10.0.0.4" not in gone["diff"]["after"]
    assert not gone["rebalance_pending"]

    settled = quick["drop settled"]
    assert settled["changed"] is False and not settled["rebalance_pending"]


@needs_swift
def test_part_power_cannot_change(quick: dict) -> None:
    result = quick["part_power"]
    assert result["failed"]
    assert "part_power is 8" in result["msg"] and "cannot change to 9" in result["msg"]
    # The failed run did not touch the builder.
    assert quick["stat builder 3"]["stat"]["exists"]


@needs_swift
def test_swift_reads_the_result(quick: dict) -> None:
    swift_dir = quick["_dir"]
    report = _ring_builder_cli(swift_dir / "object.builder")
    # Ring() insists on the cluster's hash settings, as every Swift server does.
    conf = swift_dir.parent / "swift.conf"
    conf.write_text("[swift-hash]\nswift_hash_path_suffix = stratus-test\n")
    assert "256 partitions, 3.000000 replicas" in report
    assert "10.0.0.3:6200" in report and "10.0.0.4:6200" not in report
    load = subprocess.run(
        [
            SYSTEM_PYTHON,
            "-c",
            "import json, sys\n"
            "from swift.common import utils\n"
            "utils.SWIFT_CONF_FILE = sys.argv[2]\n"
            "from swift.common.ring import Ring\n"
            "ring = Ring(sys.argv[1], ring_name='object')\n"
            "part, nodes = ring.get_nodes('AUTH_test', 'c', 'o')\n"
            "print(json.dumps({'parts': ring.partition_count, 'replicas': ring.replica_count,"
            " 'zones': sorted(n['zone'] for n in nodes),"
            " 'devs': sorted((d['ip'], d['device']) for d in ring.devs if d)}))",
            str(swift_dir),
            str(conf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert load.returncode == 0, load.stderr
    ring = json.loads(load.stdout)
    assert ring["parts"] == 256 and ring["replicas"] == 3
    assert ring["zones"] == [1, 2, 3]
    assert len(ring["devs"]) == 6 and ["10.0.0.3", "sdc"] in ring["devs"]
    # Nothing half-written is left behind.
    leftovers = [p.name for p in swift_dir.iterdir() if p.name.startswith(".") or "tmp" in p.name]
    assert leftovers == []
    assert (swift_dir / "backups").is_dir()


@needs_swift
def test_change_within_min_part_hours_is_pending_not_forced(slow: dict) -> None:
    create = slow["create"]
    assert create["rebalanced"] and create["builder_file"].endswith("/object-1.builder")
    assert create["min_part_seconds_left"] > 3500

    add = slow["add"]
    assert add["changed"] is True  # the device is saved in the builder
    assert add["rebalanced"] is False and add["parts_moved"] == 0
    assert add["rebalance_pending"] is True
    assert [d["parts"] for d in add["added"]] == [0]

    again = slow["add again"]
    assert again["changed"] is False
    assert again["rebalance_pending"] is True
    assert again["added"] == []


@needs_swift
def test_without_swift_the_module_says_what_to_install(slow: dict) -> None:
    result = slow["venv python"]
    assert result["failed"]
    assert "install python3-swift on the host that builds the rings" in result["msg"]


@needs_swift
def test_absent_removes_the_files(slow: dict) -> None:
    assert slow["absent check"]["changed"] is True
    assert slow["stat builder"]["stat"]["exists"] is True
    assert slow["absent"]["changed"] is True
    assert slow["absent again"]["changed"] is False
    swift_dir = slow["_dir"]
    assert not (swift_dir / "object-1.builder").exists()
    assert not (swift_dir / "object-1.ring.gz").exists()
    assert list((swift_dir / "backups").iterdir())  # the backups stay


@needs_swift
def test_too_few_devices_fail_clearly(slow: dict) -> None:
    result = slow["too few"]
    assert result["failed"]
    assert "requires more than 2 devices" in result["msg"]


@needs_swift
def test_replication_address_and_meta_rewrite_the_ring_only(slow: dict) -> None:
    result = slow["meta"]
    assert result["changed"] and not result["rebalanced"]
    assert result["updated"] == [
        {
            "id": 0,
            "device": "r1z1-10.0.0.1:6200/sdb",
            "changes": {"replication_ip": "10.9.0.1", "meta": "rack a1"},
        }
    ]
    (first,) = [d for d in result["devices"] if d["id"] == 0]
    assert (first["replication_ip"], first["meta"]) == ("10.9.0.1", "rack a1")
    assert any(path.endswith(".account.ring.gz") for path in result["backups"])


@needs_swift
def test_a_lost_ring_file_is_written_again(slow: dict) -> None:
    result = slow["ring back"]
    assert result["changed"] and not result["rebalanced"]
    assert result["added"] == result["updated"] == []
    assert (slow["_dir"] / "account.ring.gz").exists()
