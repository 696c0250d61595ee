"""The admins' view of the hosts: ``os-hypervisors``, ``os-services`` and
``os-availability-zone``.

A compute host is one hypervisor and one ``nova-compute`` service. It is
``up`` while its agent reports within ``[compute] service_down_time``;
``disabled`` hosts get no new servers. From 2.11 an operator may also
force a host down (``forced_down``), as Nova does for a fenced host. Zones
are those of the enabled hosts (``[compute] default_availability_zone``
for hosts without one).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.db import utcnow
from stratus.common.handlers import ok
from stratus.compute import scheduling
from stratus.compute.api import common
from stratus.compute.model import ComputeHost, Server

RULE = "os_compute_api"
BINARY = "nova-compute"


def _up(req: ApiRequest, host: ComputeHost) -> bool:
    return host.is_up(utcnow(), timedelta(seconds=common.service(req).options.service_down_time))


def _zone(req: ApiRequest, host: ComputeHost) -> str:
    return host.availability_zone or common.service(req).options.default_availability_zone


def _hosts(session: Session) -> list[ComputeHost]:
    return list(session.scalars(select(ComputeHost).order_by(ComputeHost.id)))


# --- hypervisors --------------------------------------------------------------


def _hypervisor(
    req: ApiRequest, session: Session, host: ComputeHost, detail: bool
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": host.id,
        "hypervisor_hostname": host.hypervisor_hostname,
        "state": "up" if _up(req, host) else "down",
        "status": "disabled" if host.disabled else "enabled",
    }
    if not detail:
        return view
    used = scheduling.usage(session, [host.id]).get(host.id, (0, 0, 0))
    running = session.scalar(
        select(func.count()).select_from(Server).where(Server.host == host.host)
    )
    view.update(
        {
            "vcpus": host.vcpus,
            "vcpus_used": used[0],
            "memory_mb": host.memory_mb,
            "memory_mb_used": used[1] + host.reserved_host_memory_mb,
            "free_ram_mb": host.memory_mb - used[1] - host.reserved_host_memory_mb,
            "local_gb": host.local_gb,
            "local_gb_used": used[2],
            "free_disk_gb": host.local_gb - used[2],
            "disk_available_least": host.local_gb - used[2],
            "hypervisor_type": host.hypervisor_type,
            "hypervisor_version": host.hypervisor_version,
            "host_ip": host.host_ip,
            "running_vms": int(running or 0),
            "current_workload": 0,
            "cpu_info": "{}",
            "service": {
                "host": host.host,
                "id": host.id,
                "disabled_reason": host.disabled_reason,
            },
        }
    )
    return view


def _find_hypervisor(session: Session, ident: str) -> ComputeHost:
    host = session.get(ComputeHost, int(ident)) if ident.isdigit() else None
    if host is None:
        raise errors.NotFound(f"Hypervisor with ID {ident} could not be found.")
    return host


@endpoint
def hypervisors(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-hypervisors:list")
    with common.service(req).db.session() as session:
        return ok({"hypervisors": [_hypervisor(req, session, h, False) for h in _hosts(session)]})


@endpoint
def hypervisors_detail(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-hypervisors:list-detail")
    with common.service(req).db.session() as session:
        return ok({"hypervisors": [_hypervisor(req, session, h, True) for h in _hosts(session)]})


@endpoint
def hypervisor_show(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-hypervisors:show")
    with common.service(req).db.session() as session:
        host = _find_hypervisor(session, req.path_params["hypervisor_id"])
        return ok({"hypervisor": _hypervisor(req, session, host, True)})


def _matching(req: ApiRequest, session: Session) -> list[ComputeHost]:
    """The hypervisors whose host name contains the path's pattern (404: none)."""
    pattern = req.path_params["pattern"]
    found = [h for h in _hosts(session) if pattern in h.hypervisor_hostname]
    if not found:
        raise errors.NotFound(f"No hypervisor matching '{pattern}' could be found.")
    return found


@endpoint
def hypervisor_search(req: ApiRequest) -> Response:
    """``GET /os-hypervisors/{pattern}/search`` (Nova's, before 2.53)."""
    common.enforce(req, f"{RULE}:os-hypervisors:search")
    with common.service(req).db.session() as session:
        found = _matching(req, session)
        return ok({"hypervisors": [_hypervisor(req, session, h, False) for h in found]})


@endpoint
def hypervisor_servers(req: ApiRequest) -> Response:
    """``GET /os-hypervisors/{pattern}/servers``: the hypervisors found, each
    with its servers' ``uuid`` and ``name`` (Nova's, before 2.53)."""
    common.enforce(req, f"{RULE}:os-hypervisors:servers")
    views = []
    with common.service(req).db.session() as session:
        for host in _matching(req, session):
            view = _hypervisor(req, session, host, False)
            placed = session.scalars(
                select(Server).where(Server.host == host.host).order_by(Server.created_at)
            )
            servers = [{"uuid": s.id, "name": s.name} for s in placed]
            if servers:
                view["servers"] = servers
            views.append(view)
    return ok({"hypervisors": views})


@endpoint
def hypervisor_statistics(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-hypervisors:statistics")
    keys = (
        "vcpus",
        "vcpus_used",
        "memory_mb",
        "memory_mb_used",
        "free_ram_mb",
        "local_gb",
        "local_gb_used",
        "free_disk_gb",
        "disk_available_least",
        "running_vms",
        "current_workload",
    )
    totals = dict.fromkeys(keys, 0)
    with common.service(req).db.session() as session:
        hosts = _hosts(session)
        for host in hosts:
            view = _hypervisor(req, session, host, True)
            for key in keys:
                totals[key] += view[key]
    return ok({"hypervisor_statistics": {"count": len(hosts), **totals}})


# --- services -----------------------------------------------------------------


def _service(req: ApiRequest, host: ComputeHost) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": host.id,
        "binary": BINARY,
        "host": host.host,
        "zone": _zone(req, host),
        "status": "disabled" if host.disabled else "enabled",
        "state": "up" if _up(req, host) else "down",
        "updated_at": common.timestamp(host.last_seen_at),
        "disabled_reason": host.disabled_reason,
    }
    if common.at_least(req, 2, 11):
        view["forced_down"] = host.forced_down
    return view


@endpoint
def services(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-services:list")
    host_filter, binary = req.query.get("host"), req.query.get("binary")
    with common.service(req).db.session() as session:
        views = [
            _service(req, h)
            for h in _hosts(session)
            if (not host_filter or h.host == host_filter) and binary in (None, BINARY)
        ]
    return ok({"services": views})


def _update_request(req: ApiRequest) -> tuple[dict[str, Any], str]:
    """The body of a service update, and the binary it names."""
    common.enforce(req, f"{RULE}:os-services:update")
    document = req.json()
    if not isinstance(document, dict) or not isinstance(document.get("host"), str):
        raise errors.BadRequest("Give the host (and binary) of the service.")
    return document, document.get("binary", BINARY)


def _find_service(session: Session, host_name: str, binary: str) -> ComputeHost:
    host = session.scalars(select(ComputeHost).where(ComputeHost.host == host_name)).first()
    if host is None or binary != BINARY:
        raise errors.NotFound(f"Host {host_name} has no service {binary}.")
    return host


def _switch(req: ApiRequest, disable: bool, with_reason: bool) -> Response:
    document, binary = _update_request(req)
    reason = document.get("disabled_reason") if with_reason else None
    if with_reason and (not isinstance(reason, str) or not 1 <= len(reason) <= 255):
        raise errors.BadRequest("disabled_reason must be 1 to 255 characters.")
    with common.service(req).db.session() as session:
        host = _find_service(session, document["host"], binary)
        host.disabled = disable
        host.disabled_reason = reason if disable else None
    body = {
        "host": document["host"],
        "binary": binary,
        "status": "disabled" if disable else "enabled",
    }
    if with_reason:
        body["disabled_reason"] = reason
    return ok({"service": body})


def _force_down(req: ApiRequest) -> Response:
    """``PUT os-services/force-down`` (2.11): the operator says the host is
    down (fenced) without waiting for ``service_down_time``. It gets no new
    servers, and servers deleted on it go at once; it counts as up again
    only when forced up and its agent reports."""
    document, binary = _update_request(req)
    if "forced_down" not in document:
        raise errors.BadRequest("Missing forced_down field")
    forced = common.boolean(document["forced_down"], "forced_down")
    with common.service(req).db.session() as session:
        _find_service(session, document["host"], binary).forced_down = forced
    return ok({"service": {"host": document["host"], "binary": binary, "forced_down": forced}})


@endpoint
def service_action(req: ApiRequest) -> Response:
    action = req.path_params["action"]
    if action == "enable":
        return _switch(req, False, False)
    if action == "disable":
        return _switch(req, True, False)
    if action == "disable-log-reason":
        return _switch(req, True, True)
    if action == "force-down" and common.at_least(req, 2, 11):
        return _force_down(req)
    raise errors.NotFound(f"Unknown service action {action}.")


@endpoint
def service_delete(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-services:delete")
    ident = req.path_params["service_id"]
    with common.service(req).db.session() as session:
        host = session.get(ComputeHost, int(ident)) if ident.isdigit() else None
        if host is None:
            raise errors.NotFound(f"Service {ident} not found.")
        placed = session.scalar(
            select(func.count()).select_from(Server).where(Server.host == host.host)
        )
        if placed:
            raise errors.Conflict(
                f"Host {host.host} still has {placed} servers; move or delete them first."
            )
        session.delete(host)
    return Response(status_code=204)


# --- availability zones -------------------------------------------------------


@endpoint
def zones(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-availability-zone:list")
    with common.service(req).db.session() as session:
        names = sorted({_zone(req, h) for h in _hosts(session) if not h.disabled})
    return ok(
        {
            "availabilityZoneInfo": [
                {"zoneName": n, "zoneState": {"available": True}, "hosts": None} for n in names
            ]
        }
    )


@endpoint
def zones_detail(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-availability-zone:detail")
    by_zone: dict[str, dict[str, Any]] = {}
    with common.service(req).db.session() as session:
        for host in _hosts(session):
            by_zone.setdefault(_zone(req, host), {})[host.host] = {
                BINARY: {
                    "available": _up(req, host),
                    "active": not host.disabled,
                    "updated_at": common.timestamp(host.last_seen_at),
                }
            }
    return ok(
        {
            "availabilityZoneInfo": [
                {
                    "zoneName": zone,
                    "zoneState": {
                        "available": any(
                            s[BINARY]["available"] and s[BINARY]["active"] for s in hosts.values()
                        )
                    },
                    "hosts": hosts,
                }
                for zone, hosts in sorted(by_zone.items())
            ]
        }
    )


ROUTES = [
    Route("/v2.1/os-hypervisors", hypervisors, methods=["GET"]),
    Route("/v2.1/os-hypervisors/detail", hypervisors_detail, methods=["GET"]),
    Route("/v2.1/os-hypervisors/statistics", hypervisor_statistics, methods=["GET"]),
    Route("/v2.1/os-hypervisors/{hypervisor_id}", hypervisor_show, methods=["GET"]),
    Route("/v2.1/os-hypervisors/{pattern}/search", hypervisor_search, methods=["GET"]),
    Route("/v2.1/os-hypervisors/{pattern}/servers", hypervisor_servers, methods=["GET"]),
    Route("/v2.1/os-services", services, methods=["GET"]),
    Route("/v2.1/os-services/{action}", service_action, methods=["PUT"]),
    Route("/v2.1/os-services/{service_id}", service_delete, methods=["DELETE"]),
    Route("/v2.1/os-availability-zone", zones, methods=["GET"]),
    Route("/v2.1/os-availability-zone/detail", zones_detail, methods=["GET"]),
]
