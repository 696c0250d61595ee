"""One pass of the agent: every module converges its share of the host, in order.

The modules run in this order, each idempotent and each removing what no
longer belongs:

1. ``l2``: bridges and segment devices, guest taps plugged;
2. ``firewall``: security groups, right after the taps are plugged, so a
   guest's port never passes a whole resync interval without its rules;
3. ``dhcp``: ``qdhcp-*`` namespaces and dnsmasq (on the bridges of step 1);
4. ``l3``: ``qrouter-*`` namespaces, SNAT and floating IPs;
5. ``ra``: IPv6 router advertisements (radvd) on the routers of step 4;
6. ``metadata``: the proxies that live in the namespaces of steps 3 and 4.

A module that is not installed (not importable) is skipped. A module that
fails does not stop the others: a ``PartialFailure`` names the networks,
ports or routers that failed (the rest of that module's work stands); any
other exception fails that module as a whole. Both end up in the
``Report``, which also says which of this host's ports are wired up: the
API turns that into the ports' ``status`` (ACTIVE or DOWN).

A module's ``converge(snapshot, config)`` may return the ids of the ports it
wired (``l2`` returns the guest ports it plugged, ``dhcp`` the DHCP ports it
serves, ``l3`` may return its router ports); router ports of a module that
returns nothing are checked in the kernel (their ``qr-``/``qg-`` device in
the router's namespace).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stratus.network.agent import namespaces
from stratus.network.agent.l2 import PartialFailure
from stratus.network.agent.state import (
    HostConfig,
    Port,
    Snapshot,
    router_gateway_name,
    router_interface_name,
    router_namespace,
)

log = logging.getLogger(__name__)

DEFAULT_MODULES = ("l2", "firewall", "dhcp", "l3", "ra", "metadata")

Converge = Callable[[Snapshot, HostConfig], Any]


@dataclass
class Report:
    """The outcome of one pass."""

    host: str
    ports_up: set[str] = field(default_factory=set)
    ports_down: set[str] = field(default_factory=set)
    # "module" (failed as a whole) or "module:<id>" -> reason
    failures: dict[str, str] = field(default_factory=dict)
    modules: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "ports_up": sorted(self.ports_up),
            "ports_down": sorted(self.ports_down),
            "failures": dict(sorted(self.failures.items())),
            "modules": list(self.modules),
        }


def load_modules(names: Iterable[str] = DEFAULT_MODULES) -> list[tuple[str, Converge]]:
    """The ``converge`` functions of the named agent modules that are installed.

    A module that does not exist is skipped; one that exists but fails to
    import is an error (a broken install must not pass for a missing one).
    """
    loaded = []
    for name in names:
        qualified = f"stratus.network.agent.{name}"
        if importlib.util.find_spec(qualified) is None:
            log.debug("agent module %s is not installed; skipped", name)
            continue
        module = importlib.import_module(qualified)
        loaded.append((name, module.converge))
    return loaded


def _affected(module: str, port: Port) -> bool:
    """Whether ``module`` failing as a whole means ``port`` is not wired."""
    if module == "l2":
        return True
    if module == "firewall":
        return port.is_guest
    if module == "dhcp":
        return port.is_dhcp
    if module == "l3":
        return port.is_router
    return False


def _router_port_wired(port: Port) -> bool:
    name = router_gateway_name(port.id) if port.is_gateway else router_interface_name(port.id)
    namespace = router_namespace(port.device_id)
    if not namespaces.exists(namespace):
        return False
    with namespaces.ipr(namespace) as ip:
        return bool(ip.link_lookup(ifname=name))


def converge(
    snapshot: Snapshot,
    config: HostConfig,
    modules: Sequence[tuple[str, Converge]] | None = None,
) -> Report:
    """Run every module over ``snapshot``; never raises for a module's failure."""
    report = Report(host=config.host)
    wired: set[str] = set()
    failed_ids: set[str] = set()
    failed_modules: set[str] = set()
    router_ports_reported = False
    for name, function in load_modules() if modules is None else modules:
        report.modules.append(name)
        result: Any = None
        try:
            result = function(snapshot, config)
        except PartialFailure as exc:
            log.error("%s: %d failures: %s", name, len(exc.failures), exc)
            for key, reason in exc.failures.items():
                report.failures[f"{name}:{key}"] = reason
                failed_ids.add(key)
            result = exc.ports_up
        except Exception as exc:
            log.exception("%s failed", name)
            report.failures[name] = str(exc) or type(exc).__name__
            failed_modules.add(name)
            continue
        if isinstance(result, Iterable) and not isinstance(result, str | bytes):
            ports = set(result)
            wired |= ports
            if name == "l3":
                router_ports_reported = True
    for port in snapshot.ports_on(config.host):
        up = port.id in wired
        if port.is_router and not router_ports_reported and "l3" not in failed_modules:
            try:
                up = _router_port_wired(port)
            except Exception:
                log.exception("port %s: cannot check its router device", port.id)
                up = False
        if {port.id, port.network_id, port.device_id} & failed_ids:
            up = False
        if any(_affected(m, port) for m in failed_modules):
            up = False
        if not port.admin_state_up:
            up = False
        (report.ports_up if up else report.ports_down).add(port.id)
    return report
