# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0
"""Decision logic of the stratus.cloud.swift_ring module, kept free of Swift.

Everything here works on plain dicts shaped like the device dicts of Swift's
``RingBuilder`` (``id``, ``region``, ``zone``, ``ip``, ``port``,
``replication_ip``, ``replication_port``, ``device``, ``weight``, ``meta``,
``parts``), so that it can be tested without ``python3-swift``. The module
applies the resulting plan to a real builder.

A device is identified by ``ip``, ``port`` and ``device`` name: changing any
of them is a different device (the old one drains, the new one fills).
"""

from __future__ import annotations

import ipaddress

RINGS = ("account", "container", "object")

# swift.common.ring.builder.MAX_BALANCE: the balance Swift reports while a
# device of weight 0 still holds partitions.
MAX_BALANCE = 999.99

DEVICE_KEYS = (
    "region",
    "zone",
    "ip",
    "port",
    "device",
    "weight",
    "replication_ip",
    "replication_port",
    "meta",
)


class RingInputError(ValueError):
    """The module's input cannot describe a ring."""


def ring_name(ring: str, policy_index: int = 0) -> str:
    """The file stem Swift expects: account, container, object, object-N."""
    if ring not in RINGS:
        raise RingInputError(f"ring must be one of {', '.join(RINGS)}, not {ring!r}")
    if policy_index < 0:
        raise RingInputError(f"policy_index must be 0 or more, not {policy_index}")
    if policy_index and ring != "object":
        raise RingInputError("policy_index applies to the object ring only")
    return f"object-{policy_index}" if policy_index else ring


def normalize_ip(value: str) -> str:
    """An address as Swift stores it (compact IPv6, no brackets); names lower-cased."""
    text = str(value).strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.lower()


def device_key(dev: dict) -> tuple:
    return (normalize_ip(dev["ip"]), int(dev["port"]), dev["device"])


def device_label(dev: dict) -> str:
    ip = normalize_ip(dev["ip"])
    if ":" in ip:
        ip = f"[{ip}]"
    return f"r{dev['region']}z{dev['zone']}-{ip}:{dev['port']}/{dev['device']}"


def _int(dev: dict, key: str, where: str, minimum: int, maximum: int | None = None) -> int:
    value = dev.get(key)
    if value is None or isinstance(value, bool):
        raise RingInputError(f"{where}: {key} is required and must be an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise RingInputError(f"{where}: {key} must be an integer, not {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        bounds = f"{minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise RingInputError(f"{where}: {key} must be {bounds}, not {number}")
    return number


def normalize_devices(devices: list[dict] | None) -> list[dict]:
    """Validate the wanted device list and fill in Swift's defaults.

    Raises RingInputError naming the offending entry.
    """
    result: list[dict] = []
    seen: dict[tuple, int] = {}
    for index, raw in enumerate(devices or []):
        where = f"devices[{index}]"
        if not isinstance(raw, dict):
            raise RingInputError(f"{where} must be a dict")
        unknown = sorted(set(raw) - set(DEVICE_KEYS))
        if unknown:
            raise RingInputError(f"{where}: unknown key(s) {', '.join(unknown)}")
        dev: dict = {}
        region = raw.get("region")
        dev["region"] = _int({"region": 1 if region is None else region}, "region", where, 0)
        dev["zone"] = _int(raw, "zone", where, 0)
        for key in ("ip", "device"):
            value = raw.get(key)
            if not isinstance(value, str) or not value.strip():
                raise RingInputError(f"{where}: {key} is required and must be a string")
            if key == "device" and ("/" in value or value != value.strip()):
                raise RingInputError(f"{where}: device must be a bare name like sdb1")
        dev["ip"] = normalize_ip(raw["ip"])
        dev["device"] = raw["device"]
        dev["port"] = _int(raw, "port", where, 1, 65535)
        weight = raw.get("weight")
        if weight is None or isinstance(weight, bool):
            raise RingInputError(f"{where}: weight is required and must be a number")
        try:
            dev["weight"] = float(weight)
        except (TypeError, ValueError):
            raise RingInputError(f"{where}: weight must be a number, not {weight!r}") from None
        if dev["weight"] < 0:
            raise RingInputError(f"{where}: weight must be 0 or more, not {weight}")
        rip = raw.get("replication_ip")
        dev["replication_ip"] = normalize_ip(rip) if rip else dev["ip"]
        rport = raw.get("replication_port")
        dev["replication_port"] = (
            _int(raw, "replication_port", where, 1, 65535) if rport is not None else dev["port"]
        )
        meta = raw.get("meta")
        dev["meta"] = None if meta is None else str(meta)
        key = device_key(dev)
        if key in seen:
            raise RingInputError(
                f"{where} repeats devices[{seen[key]}] ({dev['ip']}:{dev['port']}/{dev['device']})"
            )
        seen[key] = index
        result.append(dev)
    return result


def check_parameters(
    current: dict | None, part_power: int | None, replicas: float, min_part_hours: int
) -> dict:
    """Compare the builder's parameters with the wanted ones.

    ``current`` is None when there is no builder yet. Returns the parameters
    that must change, as {name: (old, new)}; raises RingInputError for what
    cannot be done.
    """
    if replicas is None or replicas < 1:
        raise RingInputError(f"replicas must be at least 1, not {replicas}")
    if min_part_hours is None or min_part_hours < 0:
        raise RingInputError(f"min_part_hours must be 0 or more, not {min_part_hours}")
    if part_power is not None and not 1 <= part_power <= 32:
        raise RingInputError(f"part_power must be 1..32, not {part_power}")
    if current is None:
        if part_power is None:
            raise RingInputError("part_power is required to create a ring builder")
        return {}
    if part_power is not None and part_power != current["part_power"]:
        raise RingInputError(
            f"part_power is {current['part_power']} in the existing builder and cannot "
            f"change to {part_power} (Swift only increases it with its own "
            "partition power increase procedure)"
        )
    changes = {}
    if float(replicas) != float(current["replicas"]):
        changes["replicas"] = (current["replicas"], replicas)
    if int(min_part_hours) != int(current["min_part_hours"]):
        changes["min_part_hours"] = (current["min_part_hours"], int(min_part_hours))
    return changes


def plan_devices(current: list[dict | None], wanted: list[dict]) -> dict:
    """What to do to the builder's devices so that they become ``wanted``.

    ``current`` is the builder's ``devs`` (holes as None; devices already
    marked for removal must be left out by the caller); ``wanted`` comes
    from normalize_devices. Returns a dict of lists:

    - ``add``: wanted devices the builder lacks;
    - ``reweight``: {id, old, new} for listed devices whose weight differs;
    - ``relocate``: {id, old: (region, zone), new: (region, zone)};
    - ``update``: {id, changes: {key: new}} for replication_ip/port and meta;
    - ``drain``: ids of unlisted devices still weighted (weight goes to 0);
    - ``draining``: ids of unlisted devices that still hold partitions
      (they stay, at weight 0, until a rebalance empties them);
    - ``remove``: ids of unlisted devices that hold no partitions.
    """
    by_key = {device_key(d): d for d in current if d is not None}
    plan: dict = {
        "add": [],
        "reweight": [],
        "relocate": [],
        "update": [],
        "drain": [],
        "draining": [],
        "remove": [],
    }
    wanted_keys = set()
    for dev in wanted:
        key = device_key(dev)
        wanted_keys.add(key)
        have = by_key.get(key)
        if have is None:
            new = dict(dev)
            if new["meta"] is None:
                new["meta"] = ""
            plan["add"].append(new)
            continue
        if float(have["weight"]) != dev["weight"]:
            plan["reweight"].append(
                {"id": have["id"], "old": float(have["weight"]), "new": dev["weight"]}
            )
        if (have["region"], have["zone"]) != (dev["region"], dev["zone"]):
            plan["relocate"].append(
                {
                    "id": have["id"],
                    "old": (have["region"], have["zone"]),
                    "new": (dev["region"], dev["zone"]),
                }
            )
        changes = {}
        if normalize_ip(have.get("replication_ip") or have["ip"]) != dev["replication_ip"]:
            changes["replication_ip"] = dev["replication_ip"]
        if int(have.get("replication_port") or have["port"]) != dev["replication_port"]:
            changes["replication_port"] = dev["replication_port"]
        if dev["meta"] is not None and (have.get("meta") or "") != dev["meta"]:
            changes["meta"] = dev["meta"]
        if changes:
            plan["update"].append({"id": have["id"], "changes": changes})
    for key, have in sorted(by_key.items(), key=lambda item: item[1]["id"]):
        if key in wanted_keys:
            continue
        if int(have.get("parts") or 0) == 0:
            plan["remove"].append(have["id"])
            continue
        if float(have["weight"]) > 0:
            plan["drain"].append(have["id"])
        plan["draining"].append(have["id"])
    return plan


def plan_changes_devices(plan: dict) -> bool:
    """True when the plan changes the builder's devices at all."""
    return any(plan[key] for key in ("add", "reweight", "relocate", "update", "drain", "remove"))


def plan_needs_rebalance(plan: dict) -> bool:
    """True when the plan changes where partitions belong."""
    return any(plan[key] for key in ("add", "reweight", "relocate", "drain", "remove"))


def should_keep_rebalance(
    parts_moved: int,
    removed_devs: int,
    devs_changed: bool,
    last_balance: float | None,
    balance: float,
    last_dispersion: float | None,
    dispersion: float,
) -> bool:
    """Whether a rebalance is worth saving: the rule of `swift-ring-builder rebalance`.

    Nothing moved and nothing removed: no. Device changes: yes. Otherwise
    only when balance or dispersion moved by at least 1 (percent), so that
    re-running on a settled ring changes nothing.
    """
    if not (parts_moved or removed_devs):
        return False
    if devs_changed or removed_devs or last_balance is None:
        return True
    if abs(last_balance - balance) >= 1:
        return True
    if last_balance == MAX_BALANCE and balance == MAX_BALANCE:
        return True
    return last_dispersion is None or abs(last_dispersion - dispersion) >= 1


def format_table(params: dict, devices: list[dict | None]) -> str:
    """A readable text picture of a builder, for diff mode."""
    lines = [f"{name}: {params[name]}" for name in sorted(params)]
    header = (
        "id",
        "region",
        "zone",
        "ip:port",
        "replication",
        "device",
        "weight",
        "parts",
        "meta",
    )
    rows = [header]
    for dev in sorted((d for d in devices if d is not None), key=lambda d: d["id"]):
        ip = dev["ip"] if ":" not in dev["ip"] else f"[{dev['ip']}]"
        rip = dev.get("replication_ip") or dev["ip"]
        rip = rip if ":" not in rip else f"[{rip}]"
        rows.append(
            (
                str(dev["id"]),
                str(dev["region"]),
                str(dev["zone"]),
                f"{ip}:{dev['port']}",
                f"{rip}:{dev.get('replication_port') or dev['port']}",
                dev["device"],
                f"{float(dev['weight']):.2f}",
                str(dev.get("parts", 0)),
                dev.get("meta") or "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines.append("devices:")
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines) + "\n"


def public_device(dev: dict, draining: bool = False) -> dict:
    """A builder device as the module returns it."""
    return {
        "id": dev["id"],
        "region": dev["region"],
        "zone": dev["zone"],
        "ip": dev["ip"],
        "port": dev["port"],
        "replication_ip": dev.get("replication_ip") or dev["ip"],
        "replication_port": dev.get("replication_port") or dev["port"],
        "device": dev["device"],
        "weight": float(dev["weight"]),
        "parts": int(dev.get("parts") or 0),
        "meta": dev.get("meta") or "",
        "draining": draining,
    }
