#!/usr/bin/python
# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0

from __future__ import annotations

DOCUMENTATION = r"""
---
module: swift_ring
short_description: Build an OpenStack Swift ring (account, container, object) from a device list
version_added: 0.2.0
description:
  - Keeps one Swift ring builder file (C(<ring>.builder)) and its ring file
    (C(<ring>.ring.gz)) in O(builder_dir) in line with a list of devices, as
    C(swift-ring-builder) would after C(create), C(add), C(set_weight),
    C(remove) and C(rebalance).
  - Creates the builder when it is missing, adds the devices it lacks,
    updates weights, regions, zones, replication addresses and meta of the
    devices it has, and changes O(replicas) and O(min_part_hours).
  - Devices that the builder has but O(devices) does not list are drained
    first, their weight set to 0 so that rebalances move their partitions
    away at the pace O(min_part_hours) allows; they are removed from the
    builder only on a later run, once they hold no partition. Swift's own
    C(remove) would move all their partitions at once.
  - Rebalances when devices or replicas changed, when the builder holds
    changes not yet rebalanced, when draining devices still hold partitions,
    or when the ring's balance is 1% or worse and min_part_hours has passed
    since the last rebalance. A rebalance that moves
    nothing because partitions moved less than O(min_part_hours) ago is not
    an error; the device changes are saved in the builder and the module
    reports RV(rebalance_pending), so that a run after O(min_part_hours)
    finishes it. A rebalance that changes neither balance nor dispersion by
    1% is not saved (the rule of C(swift-ring-builder rebalance)); its random
    seed comes from the builder's state, so that a second run repeats the
    same verdict. The module never pretends that O(min_part_hours) has passed.
  - Writes the ring file first and the builder second, each through a
    temporary file in O(builder_dir) renamed over the old one, and copies the
    previous builder and ring into C(<builder_dir>/backups/) (prefixed with
    the Unix time) before replacing them.
  - The ring file always holds what the saved builder describes
    (C(swift-ring-builder <ring>.builder write_ring)); it is written only
    when its content changes, and a missing or stale ring file is rewritten.
  - With O(min_part_hours=0) nothing asks to wait between rebalances, so the
    module rebalances again in the same run while Swift finds it worth
    saving (Swift moves at most one replica of a partition per rebalance).
  - Runs on the host that builds the rings, with Swift's Python library
    (Debian package C(python3-swift)). Distributing the ring files to the
    storage and proxy hosts is left to the caller.
author:
  - Stratus engineers (@stratus)
options:
  builder_dir:
    description:
      - Directory holding the builder and ring files; created when missing.
    type: path
    default: /etc/swift
  ring:
    description:
      - Which ring. With O(policy_index) above 0, the object ring of that
        storage policy (C(object-N.builder), C(object-N.ring.gz)).
    type: str
    required: true
    choices: [account, container, object]
  policy_index:
    description:
      - "Storage policy index of an object ring: 0 is the default policy, whose
        files are C(object.builder) and C(object.ring.gz). Only valid with
        O(ring=object)."
    type: int
    default: 0
  part_power:
    description:
      - Partition power; the ring has 2^part_power partitions. Required when
        the builder does not exist yet. It cannot change afterwards; a
        different value fails (Swift raises it only through its partition
        power increase procedure). Leave it out to accept the builder's.
    type: int
  replicas:
    description:
      - Number of replicas of each partition; may be fractional, as in Swift.
      - There must be at least this many devices of non-zero weight.
    type: float
    default: 3
  min_part_hours:
    description:
      - Hours during which a partition that was moved may not be moved again.
    type: int
    default: 1
  devices:
    description:
      - The devices the ring should have. A device is identified by O(devices[].ip),
        O(devices[].port) and O(devices[].device); changing one of them
        drains the old device and adds a new one.
      - Devices the builder has but this list lacks are drained and later
        removed (see the description).
      - Required with O(state=present); an empty list drains every device.
    type: list
    elements: dict
    suboptions:
      region:
        description: Region number.
        type: int
        default: 1
      zone:
        description: Zone number within the region.
        type: int
        required: true
      ip:
        description: Address the storage server listens on for this device.
        type: str
        required: true
      port:
        description: Port of the account, container or object server.
        type: int
        required: true
      device:
        description:
          - Name of the device under the servers' C(devices) directory, for
            example C(sdb1).
        type: str
        required: true
      weight:
        description:
          - Relative weight (usually the size in GiB or TiB); 0 keeps the
            device in the ring while it is emptied.
        type: float
        required: true
      replication_ip:
        description: Address for replication traffic; defaults to O(devices[].ip).
        type: str
      replication_port:
        description: Port for replication traffic; defaults to O(devices[].port).
        type: int
      meta:
        description:
          - Free text stored with the device. When left out, an existing
            device keeps its meta and a new one gets none.
        type: str
  state:
    description:
      - V(present) builds the ring; V(absent) removes the builder and ring
        files (the backups stay).
    type: str
    choices: [present, absent]
    default: present
attributes:
  check_mode:
    description: Can run in check_mode and predict changes without modifying the target.
    support: full
    details: Computes the whole outcome, rebalance included, in memory and writes nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode).
    support: full
    details: Parameters and device tables before and after, as text.
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: posix
requirements:
  - python3-swift (Swift's C(swift.common.ring) library) on the host that builds the rings
notes:
  - The RV(devices) result lists the partitions each device holds; a device
    with RV(devices[].draining=true) is on its way out.
seealso:
  - name: Swift ring builder documentation
    description: How rings, weights, zones and min_part_hours work.
    link: https://docs.openstack.org/swift/latest/overview_ring.html
"""

EXAMPLES = r"""
- name: Build the object ring from three zones of two disks
  stratus.cloud.swift_ring:
    ring: object
    part_power: 10
    replicas: 3
    min_part_hours: 1
    devices:
      - {zone: 1, ip: 10.0.1.11, port: 6200, device: sdb, weight: 100}
      - {zone: 1, ip: 10.0.1.11, port: 6200, device: sdc, weight: 100}
      - {zone: 2, ip: 10.0.1.12, port: 6200, device: sdb, weight: 100}
      - {zone: 2, ip: 10.0.1.12, port: 6200, device: sdc, weight: 100}
      - {zone: 3, ip: 10.0.1.13, port: 6200, device: sdb, weight: 100}
      - {zone: 3, ip: 10.0.1.13, port: 6200, device: sdc, weight: 100}
  register: object_ring

- name: Build the ring of storage policy 1 with its own replication network
  stratus.cloud.swift_ring:
    ring: object
    policy_index: 1
    part_power: 10
    replicas: 2
    devices:
      - zone: 1
        ip: 10.0.1.11
        port: 6200
        replication_ip: 10.0.9.11
        replication_port: 6300
        device: sdd
        weight: 4000
        meta: "rack a1"
      - {zone: 2, ip: 10.0.1.12, port: 6200, device: sdd, weight: 4000}

- name: Report a rebalance that has to wait for min_part_hours
  ansible.builtin.debug:
    msg: "Run the rollout again in {{ object_ring.min_part_hours }} hours to finish the rebalance"
  when: object_ring.rebalance_pending

- name: Remove the account ring's files
  stratus.cloud.swift_ring:
    ring: account
    state: absent
"""

RETURN = r"""
changed:
  description:
    - Whether the builder or ring file was (in check mode, would be)
      written or removed.
  returned: always
  type: bool
builder_file:
  description: Path of the builder file.
  returned: always
  type: str
  sample: /etc/swift/object.builder
ring_file:
  description: Path of the ring file.
  returned: always
  type: str
  sample: /etc/swift/object.ring.gz
part_power:
  description: Partition power of the builder.
  returned: when state is present
  type: int
  sample: 10
replicas:
  description: Replica count of the builder.
  returned: when state is present
  type: float
  sample: 3.0
min_part_hours:
  description: min_part_hours of the builder.
  returned: when state is present
  type: int
  sample: 1
devices:
  description: The builder's device table after the run, ordered by id.
  returned: when state is present
  type: list
  elements: dict
  contains:
    id:
      description: Device id in the builder.
      type: int
    region:
      description: Region.
      type: int
    zone:
      description: Zone.
      type: int
    ip:
      description: Address of the storage server.
      type: str
    port:
      description: Port of the storage server.
      type: int
    replication_ip:
      description: Replication address.
      type: str
    replication_port:
      description: Replication port.
      type: int
    device:
      description: Device name.
      type: str
    weight:
      description: Weight.
      type: float
    parts:
      description: Partition replicas the device holds in the ring.
      type: int
    meta:
      description: Meta text.
      type: str
    draining:
      description: Not in O(devices) any more; removed once it holds no partition.
      type: bool
  sample:
    - {id: 0, region: 1, zone: 1, ip: 10.0.1.11, port: 6200, replication_ip: 10.0.1.11,
       replication_port: 6200, device: sdb, weight: 100.0, parts: 512, meta: "", draining: false}
added:
  description: Devices added in this run (same keys as RV(devices)).
  returned: when state is present
  type: list
  elements: dict
reweighted:
  description: Devices whose weight changed, as C(id), C(device) (label), C(old) and C(new) weight.
  returned: when state is present
  type: list
  elements: dict
  sample:
    - {id: 3, device: "r1z2-10.0.1.12:6200/sdc", old: 100.0, new: 200.0}
relocated:
  description:
    - Devices whose region or zone changed, as C(id), C(device), C(old)
      and C(new) (each [region, zone]).
  returned: when state is present
  type: list
  elements: dict
updated:
  description:
    - Devices whose replication address or meta changed, as C(id),
      C(device) and C(changes).
  returned: when state is present
  type: list
  elements: dict
draining:
  description:
    - Devices not in O(devices) that still hold partitions after this run
      (same keys as RV(devices)); a later run removes them once empty.
  returned: when state is present
  type: list
  elements: dict
removed:
  description: Devices removed from the builder in this run (same keys as RV(devices)).
  returned: when state is present
  type: list
  elements: dict
rebalanced:
  description: Whether a rebalance was done and saved in this run.
  returned: when state is present
  type: bool
rebalance_pending:
  description:
    - The ring still waits for a rebalance that min_part_hours holds back;
      run again after RV(min_part_seconds_left). True when the builder holds
      device or replica changes that are not in the ring yet, when draining
      devices still hold partitions, or when the balance is above 5% (and
      above the overload) while min_part_hours (above 0) has not passed since
      the last rebalance, the case in which C(swift-ring-builder) advises to
      wait and rebalance again (the run after it tries to improve the
      balance, and reports false if Swift can do no better, as with zones of
      unequal weight).
  returned: when state is present
  type: bool
min_part_seconds_left:
  description: Seconds until partitions moved by the last rebalance may move again.
  returned: when state is present
  type: int
balance:
  description:
    - Swift's balance of the ring after the run, in percent (0 is perfect;
      999.99 while a device of weight 0 still holds partitions); null when
      the ring has never been balanced.
  returned: when state is present
  type: float
  sample: 0.39
dispersion:
  description: Swift's dispersion of the ring after the run, in percent; null when never balanced.
  returned: when state is present
  type: float
parts_moved:
  description: Partition replicas the rebalance of this run moved (0 without rebalance).
  returned: when state is present
  type: int
  sample: 109
backups:
  description: Copies of the previous builder and ring files made in this run.
  returned: when state is present
  type: list
  elements: str
  sample: [/etc/swift/backups/1764086400.object.builder]
"""

import copy
import gzip
import io
import os
import shutil
import tempfile
import time
import traceback
import zlib

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stratus.cloud.plugins.module_utils.swift_ring import (
    RingInputError,
    check_parameters,
    device_label,
    format_table,
    normalize_devices,
    plan_devices,
    plan_needs_rebalance,
    public_device,
    ring_name,
    should_keep_rebalance,
)

SWIFT_IMPORT_ERROR = None
try:
    from swift.common import exceptions as swift_exceptions
    from swift.common.ring import RingBuilder
except ImportError:
    SWIFT_IMPORT_ERROR = traceback.format_exc()

# Balance at or above which an unchanged ring is rebalanced again (percent).
BALANCE_TOLERANCE = 1.0
# Balance above which a ring within min_part_hours is reported pending.
PENDING_BALANCE = 5.0
RING_MTIME = 1300507380.0  # the fixed gzip mtime RingData.save uses


def _params(builder) -> dict:
    return {
        "part_power": builder.part_power,
        "replicas": builder.replicas,
        "min_part_hours": builder.min_part_hours,
    }


def _serialized(ring_data) -> bytes:
    """The ring's uncompressed bytes, as RingData.save would compress them."""
    buffer = io.BytesIO()
    ring_data.serialize_v1(buffer)
    return buffer.getvalue()


def _ring_file_is_current(ring_file: str, builder) -> bool:
    try:
        with gzip.open(ring_file, "rb") as handle:
            on_disk = handle.read()
    except (OSError, EOFError):
        return False
    return on_disk == _serialized(builder.get_ring())


def _balance(builder):
    if not builder.ever_rebalanced or not any(d for d in builder.devs if d):
        return None
    try:
        return float(builder.get_balance())
    except (ZeroDivisionError, swift_exceptions.RingBuilderError):
        return None


def _seed(builder) -> int:
    """A rebalance seed fixed by the builder's state.

    Swift shuffles partitions at random; seeding from the state makes a run
    on an unchanged builder repeat the same trial, so that a rebalance Swift
    judged not worth saving stays unsaved on the next run (idempotence).
    """
    seed = zlib.crc32(str((builder.version, builder.replicas)).encode())
    for part2dev in builder._replica2part2dev or []:
        seed = zlib.crc32(part2dev.tobytes(), seed)
    return seed


def _settle(builder, rounds: int = 10):
    """With min_part_hours 0, rebalance again while Swift finds it worth saving.

    Swift moves at most one replica of a partition per rebalance, so a large
    change takes several; with min_part_hours 0 nothing asks to wait between
    them, and doing them now keeps the next run from changing anything.
    Returns the settled builder and the partitions the extra rounds moved.
    """
    moved = 0
    for _ in range(rounds):
        trial = copy.deepcopy(builder)
        try:
            parts, balance, removed = trial.rebalance(seed=_seed(builder))
            trial.validate()
        except (ValueError, swift_exceptions.RingBuilderError):
            break
        if not should_keep_rebalance(
            parts,
            removed,
            False,
            _balance(builder),
            balance,
            builder.dispersion,
            trial.dispersion,
        ):
            break
        builder = trial
        moved += int(parts)
    return builder, moved


def _pending(builder, draining_ids: set) -> bool:
    """Whether the ring still waits for a rebalance that min_part_hours holds back."""
    if builder.devs_changed:
        return True
    if any(builder.devs[i] and builder.devs[i]["parts"] for i in draining_ids):
        return True
    # Swift's own advice after a rebalance ("push this ring, wait at least
    # min_part_hours, and rebalance/repush") uses this threshold.
    balance = _balance(builder)
    return (
        balance is not None
        and balance > PENDING_BALANCE
        and balance / 100.0 > builder.overload
        and builder.min_part_hours > 0
        and builder.min_part_seconds_left > 0
    )


def _save_builder(builder, path: str) -> None:
    directory = os.path.dirname(path)
    handle, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    os.close(handle)
    try:
        builder.save(tmp)
        with open(tmp, "rb") as written:
            os.fsync(written.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save_ring(builder, path: str) -> None:
    # RingData.save writes a temporary file next to an absolute path, fsyncs
    # it and renames it over the ring file.
    builder.get_ring().save(os.path.abspath(path), mtime=RING_MTIME)


def _backup(paths: list[str], builder_dir: str) -> list[str]:
    backup_dir = os.path.join(builder_dir, "backups")
    stamp = int(time.time())
    made = []
    for path in paths:
        if os.path.exists(path):
            os.makedirs(backup_dir, exist_ok=True)
            target = os.path.join(backup_dir, f"{stamp}.{os.path.basename(path)}")
            shutil.copy2(path, target)
            made.append(target)
    return made


def _absent(module, builder_file: str, ring_file: str) -> None:
    present = [p for p in (builder_file, ring_file) if os.path.exists(p)]
    result = {
        "changed": bool(present),
        "builder_file": builder_file,
        "ring_file": ring_file,
    }
    if module._diff:
        result["diff"] = {
            "before": "".join(f"{p}\n" for p in present),
            "after": "",
            "before_header": module.params["builder_dir"],
            "after_header": module.params["builder_dir"],
        }
    if present and not module.check_mode:
        for path in present:
            os.unlink(path)
    module.exit_json(**result)


def _apply(builder, plan: dict, param_changes: dict) -> list[int]:
    """Apply the plan to the builder; returns the ids of the added devices."""
    if "replicas" in param_changes:
        builder.set_replicas(param_changes["replicas"][1])
    if "min_part_hours" in param_changes:
        builder.change_min_part_hours(param_changes["min_part_hours"][1])
    added = [builder.add_dev(dict(dev)) for dev in plan["add"]]
    for change in plan["reweight"]:
        builder.set_dev_weight(change["id"], change["new"])
    for change in plan["relocate"]:
        region, zone = change["new"]
        if region != change["old"][0]:
            builder.set_dev_region(change["id"], region)
        if zone != change["old"][1]:
            builder.set_dev_zone(change["id"], zone)
    for change in plan["update"]:
        # What `swift-ring-builder set_info` does: edit the dict in place.
        builder.devs[change["id"]].update(change["changes"])
        builder.version += 1
    for dev_id in plan["drain"]:
        builder.set_dev_weight(dev_id, 0.0)
    for dev_id in plan["remove"]:
        builder.remove_dev(dev_id)
    return added


def _present(module, builder_dir: str, builder_file: str, ring_file: str) -> None:
    p = module.params
    if SWIFT_IMPORT_ERROR:
        module.fail_json(
            msg="The Swift ring library is missing: install python3-swift on the host "
            "that builds the rings (swift.common.ring could not be imported).",
            exception=SWIFT_IMPORT_ERROR,
        )
    if p["devices"] is None:
        module.fail_json(msg="devices is required with state=present")

    exists = os.path.exists(builder_file)
    try:
        wanted = normalize_devices(p["devices"])
        if exists:
            try:
                builder = RingBuilder.load(builder_file)
            except (swift_exceptions.SwiftException, OSError) as exc:
                module.fail_json(msg=f"Cannot load {builder_file}: {exc}")
            param_changes = check_parameters(
                _params(builder), p["part_power"], p["replicas"], p["min_part_hours"]
            )
        else:
            param_changes = check_parameters(
                None, p["part_power"], p["replicas"], p["min_part_hours"]
            )
            builder = RingBuilder(p["part_power"], p["replicas"], p["min_part_hours"])
    except RingInputError as exc:
        module.fail_json(msg=str(exc))

    if builder.next_part_power is not None:
        module.fail_json(
            msg=f"{builder_file} is in the middle of a partition power increase "
            f"(to {builder.next_part_power}); finish or cancel it with swift-ring-builder first"
        )

    before_text = format_table(_params(builder), builder.devs) if exists else ""
    last_balance = _balance(builder)
    last_dispersion = builder.dispersion if builder.ever_rebalanced else None
    pending_in_file = bool(builder.devs_changed)

    removing = {dev["id"] for dev in builder._remove_devs}
    current = [d for d in builder.devs if d is not None and d["id"] not in removing]
    plan = plan_devices(current, wanted)
    labels = {d["id"]: device_label(d) for d in current}
    removed_devs = [public_device(builder.devs[i]) for i in plan["remove"]]

    try:
        added_ids = _apply(builder, plan, param_changes)
    except (ValueError, swift_exceptions.RingBuilderError) as exc:
        module.fail_json(msg=f"Swift refused the change: {exc}")

    has_devices = any(d for d in builder.devs if d)
    draining_ids = set(plan["draining"])
    must_rebalance = (
        plan_needs_rebalance(plan)
        or bool(removing)
        or builder.devs_changed
        or pending_in_file
        or (has_devices and not builder.ever_rebalanced)
        or any(builder.devs[i]["parts"] for i in draining_ids)
    )
    may_improve = (
        has_devices
        and last_balance is not None
        and last_balance >= BALANCE_TOLERANCE
        and builder.min_part_seconds_left == 0
    )

    final = builder
    rebalanced = False
    parts_moved = 0
    if has_devices and (must_rebalance or may_improve):
        trial = copy.deepcopy(builder)
        try:
            parts, balance, removed_count = trial.rebalance(seed=_seed(builder))
            trial.validate()
        except (ValueError, swift_exceptions.RingBuilderError) as exc:
            module.fail_json(
                msg=f"Swift cannot balance the {os.path.basename(builder_file)} ring: {exc}. "
                "Rings need at least as many devices of non-zero weight as replicas, "
                "in as many zones as possible.",
                devices=[public_device(d) for d in builder.devs if d],
            )
        if should_keep_rebalance(
            parts,
            removed_count,
            builder.devs_changed,
            last_balance,
            balance,
            last_dispersion,
            trial.dispersion,
        ):
            final = trial
            rebalanced = True
            parts_moved = int(parts)
            if final.min_part_hours == 0:
                final, more = _settle(final)
                parts_moved += more
        # Otherwise nothing could move (min_part_hours) or nothing was worth
        # saving: the changes stay in the builder for a later rebalance.

    builder_changed = (
        not exists
        or bool(param_changes)
        or any(plan[key] for key in ("add", "reweight", "relocate", "update", "drain", "remove"))
        or rebalanced
    )
    write_ring = final.ever_rebalanced and not _ring_file_is_current(ring_file, final)
    changed = builder_changed or write_ring

    still_draining = [
        public_device(final.devs[i], draining=True)
        for i in plan["draining"]
        if final.devs[i] is not None
    ]
    result = {
        "changed": changed,
        "builder_file": builder_file,
        "ring_file": ring_file,
        "part_power": final.part_power,
        "replicas": float(final.replicas),
        "min_part_hours": final.min_part_hours,
        "devices": [
            public_device(d, draining=d["id"] in draining_ids) for d in final.devs if d is not None
        ],
        "added": [public_device(final.devs[i]) for i in added_ids],
        "reweighted": [
            {"id": c["id"], "device": labels[c["id"]], "old": c["old"], "new": c["new"]}
            for c in plan["reweight"]
        ],
        "relocated": [
            {"id": c["id"], "device": labels[c["id"]], "old": list(c["old"]), "new": list(c["new"])}
            for c in plan["relocate"]
        ],
        "updated": [
            {"id": c["id"], "device": labels[c["id"]], "changes": c["changes"]}
            for c in plan["update"]
        ],
        "draining": still_draining,
        "removed": removed_devs,
        "rebalanced": rebalanced,
        "rebalance_pending": has_devices and _pending(final, draining_ids),
        "min_part_seconds_left": int(final.min_part_seconds_left),
        "balance": _balance(final),
        "dispersion": float(final.dispersion) if final.ever_rebalanced else None,
        "parts_moved": parts_moved,
        "backups": [],
    }
    if module._diff:
        after_text = format_table(_params(final), final.devs)
        if write_ring and not builder_changed:
            after_text += f"{ring_file}: rewritten from the builder\n"
        result["diff"] = {
            "before": before_text,
            "after": after_text,
            "before_header": builder_file,
            "after_header": builder_file,
        }

    if changed and not module.check_mode:
        try:
            os.makedirs(builder_dir, exist_ok=True)
            result["backups"] = _backup(
                [
                    path
                    for path, write in ((builder_file, builder_changed), (ring_file, write_ring))
                    if write
                ],
                builder_dir,
            )
            if write_ring:
                _save_ring(final, ring_file)
            if builder_changed:
                _save_builder(final, builder_file)
        except OSError as exc:
            module.fail_json(msg=f"Cannot write the ring files in {builder_dir}: {exc}", **result)
    module.exit_json(**result)


def main() -> None:
    device_spec = {
        "region": {"type": "int", "default": 1},
        "zone": {"type": "int", "required": True},
        "ip": {"type": "str", "required": True},
        "port": {"type": "int", "required": True},
        "device": {"type": "str", "required": True},
        "weight": {"type": "float", "required": True},
        "replication_ip": {"type": "str"},
        "replication_port": {"type": "int"},
        "meta": {"type": "str"},
    }
    module = AnsibleModule(
        argument_spec={
            "builder_dir": {"type": "path", "default": "/etc/swift"},
            "ring": {
                "type": "str",
                "required": True,
                "choices": ["account", "container", "object"],
            },
            "policy_index": {"type": "int", "default": 0},
            "part_power": {"type": "int"},
            "replicas": {"type": "float", "default": 3},
            "min_part_hours": {"type": "int", "default": 1},
            "devices": {"type": "list", "elements": "dict", "options": device_spec},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        },
        required_if=[("state", "present", ["devices"])],
        supports_check_mode=True,
    )
    try:
        name = ring_name(module.params["ring"], module.params["policy_index"])
    except RingInputError as exc:
        module.fail_json(msg=str(exc))
    builder_dir = os.path.abspath(module.params["builder_dir"])
    builder_file = os.path.join(builder_dir, f"{name}.builder")
    ring_file = os.path.join(builder_dir, f"{name}.ring.gz")
    if module.params["state"] == "absent":
        _absent(module, builder_file, ring_file)
    _present(module, builder_dir, builder_file, ring_file)


if __name__ == "__main__":
    main()
