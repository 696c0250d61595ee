# Copyright: Stratus engineers
# SPDX-License-Identifier: Apache-2.0
"""What the stratus.cloud bridge, vlan and tunnel modules share.

Three layers:

- input checks and normalisation (interface names, CIDRs, addresses, ranges)
  that raise ``NetlinkInputError`` with a message for the operator;
- the decision: ``plan_link`` compares the desired state of one link with its
  current state (both plain dicts) and says what to do, and ``predict_link``
  says what the link will look like afterwards (the diff's "after");
- netlink through pyroute2 (Debian's python3-pyroute2, 0.7): entering a
  network namespace, reading a link into a plain dict, applying a plan.

A state dict has ``name``, ``kind``, ``mtu``, ``up``, ``master`` (a name or
None), ``addresses`` (sorted CIDRs, IPv6 link-local ones left out: the kernel
manages those) and the kind's own keys: ``stp``, ``vlan_filtering`` and
``ports`` (bridge), ``link`` and ``vlan_id`` (vlan), ``vni``, ``local``,
``remote``, ``group``, ``dstport``, ``dev``, ``ttl``, ``learning`` (vxlan),
``local``, ``remote``, ``dev``, ``ttl``, ``key`` (gre, gretap).

In a desired dict, None means "leave it as it is", except for the keys the
module lists as exact, where None means "not set" (a tunnel without a remote).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from ansible.module_utils.basic import missing_required_lib

PYROUTE2_IMPORT_ERROR: str | None = None
try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    from pyroute2.netns import setns
except ImportError:
    PYROUTE2_IMPORT_ERROR = traceback.format_exc()
    IPRoute = None
    NetlinkError = OSError
    setns = None

IFNAMSIZ = 16  # the kernel's limit, with the terminating NUL
NETNS_RUN_DIR = "/run/netns"
IFF_UP = 0x1
GRE_KEY = 0x2000  # pyroute2 packs the GRE flags big-endian, as the kernel wants

# Keys every link has, in the order diffs show them.
COMMON_KEYS = ("name", "kind", "mtu", "up", "master", "addresses")
KIND_KEYS = {
    "bridge": ("stp", "vlan_filtering", "ports"),
    "vlan": ("link", "vlan_id"),
    "vxlan": ("vni", "local", "remote", "group", "dstport", "dev", "ttl", "learning"),
    "gre": ("local", "remote", "dev", "ttl", "key"),
    "gretap": ("local", "remote", "dev", "ttl", "key"),
}
# What the kernel needs for each kind, for "Operation not supported" errors.
KERNEL_SUPPORT = {
    "bridge": "bridge support, or VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING) when "
    "vlan_filtering is asked for",
    "vlan": "the 8021q module (802.1Q VLAN support)",
    "vxlan": "the vxlan module",
    "gre": "the ip_gre module",
    "gretap": "the ip_gre module",
}
# Keys kept as sets (compared without order).
SET_KEYS = ("addresses", "ports")


class NetlinkInputError(ValueError):
    """The module's input cannot describe a link."""


# ------------------------------------------------------------------- input


def check_ifname(name: Any, what: str = "name") -> str:
    """An interface name the kernel accepts (dev_valid_name)."""
    if not isinstance(name, str) or not name:
        raise NetlinkInputError(f"{what} must be a non-empty interface name")
    if len(name) >= IFNAMSIZ:
        raise NetlinkInputError(
            f"{what} {name!r} is {len(name)} characters long; Linux interface names "
            f"have at most {IFNAMSIZ - 1}"
        )
    if name in (".", "..") or any(c in name for c in "/:") or any(c.isspace() for c in name):
        raise NetlinkInputError(
            f"{what} {name!r} is not a valid interface name (no '/', ':' or whitespace)"
        )
    return name


def check_range(value: Any, low: int, high: int, what: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise NetlinkInputError(f"{what} must be an integer in {low}..{high}, not {value!r}")
    return value


def normalize_cidr(value: Any, what: str = "addresses") -> str:
    """``10.0.0.1/24`` or ``fd00::1/64`` in canonical form; the prefix is required."""
    text = str(value).strip()
    if "/" not in text:
        raise NetlinkInputError(
            f"{what}: {value!r} is not in CIDR notation (address/prefix, as 10.0.0.1/24)"
        )
    try:
        interface = ipaddress.ip_interface(text)
    except ValueError as exc:
        raise NetlinkInputError(f"{what}: {value!r} is not a valid CIDR address ({exc})") from exc
    return interface.with_prefixlen


def normalize_addresses(values: Iterable[Any] | None) -> list[str] | None:
    if values is None:
        return None
    result = sorted({normalize_cidr(v) for v in values}, key=_address_key)
    return result


def normalize_ip(value: Any, what: str, version: int | None = None) -> str | None:
    if value is None or value == "":
        return None
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError as exc:
        raise NetlinkInputError(f"{what}: {value!r} is not an IP address") from exc
    if version and address.version != version:
        raise NetlinkInputError(f"{what}: {value!r} is not an IPv{version} address")
    return str(address)


def _address_key(cidr: str) -> tuple[int, int, int]:
    interface = ipaddress.ip_interface(cidr)
    return (interface.version, int(interface.ip), interface.network.prefixlen)


# ---------------------------------------------------------------- decision


def _same(key: str, current: Any, desired: Any) -> bool:
    if key in SET_KEYS:
        return sorted(current or []) == sorted(desired or [])
    # "" asks for "none" (master: "" detaches a link from its bridge).
    return (None if current == "" else current) == (None if desired == "" else desired)


def plan_link(
    current: dict | None,
    desired: dict,
    exact: Iterable[str] = (),
    immutable: Iterable[str] = (),
) -> dict:
    """What it takes to turn ``current`` (None: no such link) into ``desired``.

    Returns ``action`` (create, recreate, update or none), ``recreate_for``
    (the immutable keys that differ), ``set`` (key: new value, for the
    mutable scalar keys), ``add_addresses``/``del_addresses``,
    ``add_ports``/``del_ports`` and ``changes`` (every key that differs).
    """
    exact = set(exact)
    immutable = set(immutable) | {"kind"}
    wanted = {k: v for k, v in desired.items() if v is not None or k in exact}
    plan: dict[str, Any] = {
        "action": "none",
        "recreate_for": [],
        "set": {},
        "add_addresses": [],
        "del_addresses": [],
        "add_ports": [],
        "del_ports": [],
        "changes": [],
    }
    if current is None:
        plan["action"] = "create"
        base: dict[str, Any] = {}
    else:
        base = current
        plan["changes"] = [
            k for k, v in wanted.items() if k != "name" and not _same(k, current.get(k), v)
        ]
        plan["recreate_for"] = [k for k in plan["changes"] if k in immutable]
        if plan["recreate_for"]:
            plan["action"] = "recreate"
            base = {}
        elif plan["changes"]:
            plan["action"] = "update"
    if current is None:
        plan["changes"] = sorted(k for k, v in wanted.items() if k != "name" and v is not None)
    for key, value in wanted.items():
        if key in ("name", "kind") or key in immutable or key in SET_KEYS:
            continue
        if value is not None and (not base or not _same(key, base.get(key), value)):
            plan["set"][key] = value
        elif value is None and base and base.get(key) is not None:
            plan["set"][key] = None
    for key, add_key, del_key in (
        ("addresses", "add_addresses", "del_addresses"),
        ("ports", "add_ports", "del_ports"),
    ):
        if wanted.get(key) is None:
            continue
        have = set((base or {}).get(key) or [])
        want = set(wanted[key])
        # A recreated bridge loses its ports' enslavement with it; a link's
        # addresses go with the link.
        order = _address_key if key == "addresses" else None
        plan[add_key] = sorted(want - have, key=order)
        plan[del_key] = sorted(have - want, key=order)
    return plan


def predict_link(
    current: dict | None, desired: dict, plan: dict, exact: Iterable[str] = ()
) -> dict:
    """The state after the plan (the diff's "after"), in the form of read_link."""
    exact = set(exact)
    if plan["action"] in ("create", "recreate"):
        # A new link starts from the kernel's defaults: what the desired
        # state leaves open (mtu: None) is not predicted, and a recreated
        # link loses its old addresses, master and ports.
        after: dict[str, Any] = {"name": desired["name"], "kind": desired["kind"]}
        after["addresses"] = []
        if desired["kind"] == "bridge":
            after["ports"] = []
    else:
        after = dict(current or {})
    for key, value in desired.items():
        if value is not None or key in exact:
            after[key] = sorted(value) if key in SET_KEYS and key != "addresses" else value
    if "addresses" in after and after["addresses"] is not None:
        after["addresses"] = sorted(after["addresses"], key=_address_key)
    if after.get("master") == "":
        after["master"] = None
    return public_state(after)


def public_state(state: dict | None) -> dict:
    """The keys of a state dict that modules return and diff, in a stable order."""
    if not state:
        return {}
    keys = list(COMMON_KEYS) + list(KIND_KEYS.get(state.get("kind") or "", ()))
    return {k: state.get(k) for k in keys}


# ----------------------------------------------------------------- netlink


def enter_netns(netns: str | None) -> None:
    """Move this process into the network namespace ``netns`` (a name under
    /run/netns, as ``ip netns`` makes them, or a path); None stays put."""
    if not netns:
        return
    path = netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns)
    if not os.path.exists(path):
        raise NetlinkInputError(f"network namespace {netns!r} does not exist ({path})")
    fd = os.open(path, os.O_RDONLY)
    try:
        setns(fd, flags=0)
    finally:
        os.close(fd)


def _names(ipr: Any) -> dict[int, str]:
    return {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}


def index_of(ipr: Any, name: str) -> int | None:
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def _addresses(ipr: Any, index: int) -> list[str]:
    result = []
    for msg in ipr.get_addr(index=index):
        address = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if address is None:
            continue
        cidr = ipaddress.ip_interface(f"{address}/{msg['prefixlen']}")
        if cidr.version == 6 and cidr.ip.is_link_local:
            continue
        result.append(cidr.with_prefixlen)
    return sorted(set(result), key=_address_key)


def read_link(ipr: Any, name: str) -> dict | None:
    """The link's state as a plain dict, or None when there is no such link."""
    index = index_of(ipr, name)
    if index is None:
        return None
    (link,) = ipr.get_links(index)
    names = _names(ipr)
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    data = info.get_attr("IFLA_INFO_DATA") if info else None

    def attr(key: str) -> Any:
        if data is None or isinstance(data, str | bytes):
            return None
        return data.get_attr(key)

    master = link.get_attr("IFLA_MASTER")
    state: dict[str, Any] = {
        "name": name,
        "kind": kind,
        "index": index,
        "mtu": link.get_attr("IFLA_MTU"),
        "up": bool(link["flags"] & IFF_UP),
        "master": names.get(master) if master else None,
        "addresses": _addresses(ipr, index),
    }
    if kind == "bridge":
        state["stp"] = bool(attr("IFLA_BR_STP_STATE"))
        state["vlan_filtering"] = bool(attr("IFLA_BR_VLAN_FILTERING"))
        state["ports"] = sorted(
            other.get_attr("IFLA_IFNAME")
            for other in ipr.get_links()
            if other.get_attr("IFLA_MASTER") == index
        )
    elif kind == "vlan":
        parent = link.get_attr("IFLA_LINK")
        state["link"] = names.get(parent) if parent else None
        state["vlan_id"] = attr("IFLA_VLAN_ID")
    elif kind == "vxlan":
        group = attr("IFLA_VXLAN_GROUP") or attr("IFLA_VXLAN_GROUP6")
        group = normalize_ip(group, "group") if group else None
        multicast = group is not None and ipaddress.ip_address(group).is_multicast
        dev = attr("IFLA_VXLAN_LINK")
        state.update(
            {
                "vni": attr("IFLA_VXLAN_ID"),
                "local": normalize_ip(
                    attr("IFLA_VXLAN_LOCAL") or attr("IFLA_VXLAN_LOCAL6"), "local"
                ),
                "remote": None if multicast else group,
                "group": group if multicast else None,
                "dstport": attr("IFLA_VXLAN_PORT"),
                "dev": names.get(dev) if dev else None,
                "ttl": attr("IFLA_VXLAN_TTL"),
                "learning": bool(attr("IFLA_VXLAN_LEARNING")),
            }
        )
    elif kind in ("gre", "gretap"):
        dev = attr("IFLA_GRE_LINK")
        ikey = attr("IFLA_GRE_IKEY")
        state.update(
            {
                "local": _no_any(attr("IFLA_GRE_LOCAL")),
                "remote": _no_any(attr("IFLA_GRE_REMOTE")),
                "dev": names.get(dev) if dev else None,
                "ttl": attr("IFLA_GRE_TTL"),
                "key": ikey if (attr("IFLA_GRE_IFLAGS") or 0) & GRE_KEY else None,
            }
        )
    return state


def _no_any(address: str | None) -> str | None:
    return None if address in (None, "0.0.0.0") else address


def apply_plan(
    ipr: Any,
    current: dict | None,
    desired: dict,
    plan: dict,
    create_args: Callable[[dict], dict],
    update_args: Callable[[dict], dict] | None = None,
) -> None:
    """Carry the plan out. ``create_args`` turns the desired dict into the
    keyword arguments of ``link("add")`` beyond ifname and kind;
    ``update_args`` turns the kind's own changed keys into those of
    ``link("set")`` (None: the kind has no mutable keys of its own)."""
    name = desired["name"]
    if plan["action"] == "recreate" and current is not None:
        ipr.link("del", index=current["index"])
    if plan["action"] in ("create", "recreate"):
        ipr.link("add", ifname=name, kind=desired["kind"], **create_args(desired))
    index = index_of(ipr, name)
    if index is None:
        raise NetlinkInputError(f"{name} vanished while it was being configured")
    changes = dict(plan["set"])
    up = changes.pop("up", None)
    if "mtu" in changes and changes["mtu"] is not None:
        ipr.link("set", index=index, mtu=changes.pop("mtu"))
    if "master" in changes:
        master = changes.pop("master")
        master_index = _require(ipr, master, "master") if master else 0
        ipr.link("set", index=index, master=master_index)
    own = {k: v for k, v in changes.items() if v is not None}
    if own and update_args is not None:
        ipr.link("set", index=index, kind=desired["kind"], **update_args(own))
    for port in plan["del_ports"]:
        port_index = index_of(ipr, port)
        if port_index is not None:
            ipr.link("set", index=port_index, master=0)
    for port in plan["add_ports"]:
        ipr.link("set", index=_require(ipr, port, "ports"), master=index)
    for command, key in (("del", "del_addresses"), ("add", "add_addresses")):
        for cidr in plan[key]:
            interface = ipaddress.ip_interface(cidr)
            ipr.addr(
                command,
                index=index,
                address=str(interface.ip),
                prefixlen=interface.network.prefixlen,
            )
    if up is not None:
        ipr.link("set", index=index, state="up" if up else "down")


def _require(ipr: Any, name: str, what: str) -> int:
    found = index_of(ipr, name)
    if found is None:
        raise NetlinkInputError(f"{what}: there is no link named {name!r}")
    return found


def missing_links(ipr: Any, names: dict[str, str | list[str] | None]) -> list[str]:
    """Messages for the links named by ``names`` (option: name or names) that
    do not exist."""
    messages = []
    for option, value in names.items():
        for name in [value] if isinstance(value, str) else value or []:
            if name and index_of(ipr, name) is None:
                messages.append(f"{option}: there is no link named {name!r}")
    return messages


def run_module(
    module: Any,
    kinds: tuple[str, ...],
    desired: dict,
    references: dict[str, str | list[str] | None],
    create_args: Callable[[Any, dict], dict],
    update_args: Callable[[dict], dict] | None = None,
    exact: Iterable[str] = (),
    immutable: Iterable[str] = (),
) -> None:
    """The common flow of the three modules: read, plan, diff, apply, report.

    ``references`` names the other links the desired state needs (parent,
    underlay, master, ports): a real run refuses to go on without them; check
    mode warns, since an earlier task of the same run may be what makes them.
    ``create_args(ipr, desired)`` gives the keyword arguments of link("add").
    """
    if PYROUTE2_IMPORT_ERROR:
        module.fail_json(
            msg=missing_required_lib(
                "pyroute2", reason="to manage links (Debian package python3-pyroute2)"
            ),
            exception=PYROUTE2_IMPORT_ERROR,
        )
    name = desired["name"]
    try:
        enter_netns(module.params.get("netns"))
    except (NetlinkInputError, OSError) as exc:
        module.fail_json(msg=f"Cannot enter the network namespace: {exc}")
    with IPRoute() as ipr:
        current = read_link(ipr, name)
        if current is not None and current["kind"] not in kinds:
            module.fail_json(
                msg=f"{name} exists as a link of kind {current['kind'] or 'device'}, "
                f"not {' or '.join(kinds)}; this module will not replace it",
                link=public_state(current),
            )
        result: dict[str, Any] = {"changed": False, "name": name, "recreated": False}
        if module.params["state"] == "absent":
            result["changed"] = current is not None
            result["changes"] = ["removed"] if current is not None else []
            result["link"] = {}
            if module._diff:
                result["diff"] = {
                    "before": public_state(current),
                    "after": {},
                    "before_header": name,
                    "after_header": name,
                }
            if current is not None and not module.check_mode:
                try:
                    ipr.link("del", index=current["index"])
                except NetlinkError as exc:
                    module.fail_json(msg=f"Cannot remove {name}: {exc}", **result)
            module.exit_json(**result)

        missing = missing_links(ipr, references)
        if missing and not module.check_mode:
            module.fail_json(msg="; ".join(missing), name=name)
        for message in missing:
            module.warn(f"{message} (yet; check mode assumes an earlier task makes it)")

        plan = plan_link(current, desired, exact=exact, immutable=immutable)
        after = predict_link(current, desired, plan, exact=exact)
        result["changed"] = plan["action"] != "none"
        result["recreated"] = plan["action"] == "recreate"
        result["changes"] = plan["changes"]
        if module._diff:
            header = name
            if plan["action"] == "recreate":
                header = f"{name} (deleted and created again: {', '.join(plan['recreate_for'])})"
            result["diff"] = {
                "before": public_state(current),
                "after": after,
                "before_header": name,
                "after_header": header,
            }
        if not result["changed"]:
            result["link"] = public_state(current)
            module.exit_json(**result)
        if module.check_mode:
            result["link"] = after
            module.exit_json(**result)
        try:
            apply_plan(
                ipr,
                current,
                desired,
                plan,
                lambda wanted: create_args(ipr, wanted),
                update_args,
            )
        except (NetlinkError, NetlinkInputError, OSError) as exc:
            result["link"] = public_state(read_link(ipr, name))
            # Changed only if the failure came after a part of the change.
            result["changed"] = result["link"] != public_state(current)
            message = f"Cannot configure {name}: {exc}"
            if getattr(exc, "code", None) == errno.EOPNOTSUPP:
                message += f"; this kernel lacks {KERNEL_SUPPORT[desired['kind']]}"
            module.fail_json(msg=message, **result)
        result["link"] = public_state(read_link(ipr, name))
    module.exit_json(**result)


def common_argument_spec() -> dict:
    return {
        "name": {"type": "str", "required": True},
        "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
        "mtu": {"type": "int"},
        "up": {"type": "bool", "default": True},
        "master": {"type": "str"},
        "addresses": {"type": "list", "elements": "str"},
        "netns": {"type": "str"},
    }


def common_desired(params: dict, kind: str) -> dict:
    """The desired keys every link has, checked; raises NetlinkInputError."""
    check_ifname(params["name"], "name")
    if params.get("master"):
        check_ifname(params["master"], "master")
        if params["master"] == params["name"]:
            raise NetlinkInputError("master cannot be the link itself")
    return {
        "name": params["name"],
        "kind": kind,
        "mtu": check_range(params.get("mtu"), 68, 65535, "mtu"),
        "up": params.get("up"),
        "master": params.get("master"),
        "addresses": normalize_addresses(params.get("addresses")),
    }
