"""``/os-stratus-hosts``: how each host's compute agent and the API talk.

``PUT /v2.1/os-stratus-hosts/{host}`` is an agent's pass: it reports the
host (capacity, hypervisor) and the power state of every domain it has,
and gets back the servers placed on the host, each with the task the
agent is to carry out (``task_state``). ``POST .../events`` reports what
became of those tasks; each event is applied only if the server still has
the task it answers (a compare-and-set), so a late or repeated report
changes nothing. Only compute's own service user (and admins) may call
these routes.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.db import utcnow
from stratus.common.handlers import ok
from stratus.compute import states
from stratus.compute.api import common, server_views
from stratus.compute.model import (
    Allocation,
    ComputeHost,
    ConsoleLog,
    InstanceAction,
    InstanceActionEvent,
    Server,
)

RULE = "os_compute_api:os-stratus-hosts:report"

_CAPACITY = {
    "hypervisor_hostname": str,
    "hypervisor_type": str,
    "hypervisor_version": int,
    "host_ip": str,
    "vcpus": int,
    "memory_mb": int,
    "local_gb": int,
    "cpu_allocation_ratio": float,
    "ram_allocation_ratio": float,
    "disk_allocation_ratio": float,
    "reserved_host_memory_mb": int,
    "availability_zone": str,
}


def server_document(server: Server) -> dict[str, Any]:
    """A server as its host's agent needs it."""
    flavor = json.loads(server.flavor)
    return {
        "id": server.id,
        "instance_name": server_views.instance_name(server),
        "name": server.name,
        "hostname": server.hostname,
        "project_id": server.project_id,
        "user_id": server.user_id,
        "vm_state": server.vm_state,
        "task_state": server.task_state,
        "power_state": server.power_state,
        "revision": server.revision,
        "flavor": flavor,
        "image_id": server.image_id,
        "key_name": server.key_name,
        "key_data": server.key_data,
        "user_data": server.user_data,
        "config_drive": server.config_drive,
        "availability_zone": server.availability_zone,
        "launch_index": server.launch_index,
        "reservation_id": server.reservation_id,
        "metadata": {m.key: m.value for m in server.metadata_items},
        "security_groups": json.loads(server.security_groups or "[]"),
        "ports": [
            {
                "port_id": p.port_id,
                "network_id": p.network_id,
                "mac_address": p.mac_address,
                "details": json.loads(p.details or "{}"),
            }
            for p in server.ports
        ],
    }


def _capacity(values: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for name, kind in _CAPACITY.items():
        if name not in values or values[name] is None:
            continue
        value = values[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise errors.BadRequest(f"Invalid input for field/attribute {name}: {value!r}.")
        parsed[name] = value
    return parsed


@endpoint
def report(req: ApiRequest) -> Response:
    common.enforce(req, RULE)
    host_name = req.path_params["host"]
    values = common.body(req, "host")
    capacity = _capacity(values)
    powers = values.get("power_states", {})
    if not isinstance(powers, dict):
        raise errors.BadRequest("power_states must map server IDs to power states.")
    with common.service(req).db.session() as session:
        host = session.scalars(select(ComputeHost).where(ComputeHost.host == host_name)).first()
        if host is None:
            host = ComputeHost(
                uuid=str(uuid.uuid4()),
                host=host_name,
                hypervisor_hostname=capacity.get("hypervisor_hostname", host_name),
            )
            session.add(host)
        for name, value in capacity.items():
            setattr(host, name, value)
        host.last_seen_at = utcnow()
        session.flush()
        servers = list(session.scalars(select(Server).where(Server.host == host_name)))
        consoles = values.get("consoles", {})
        if not isinstance(consoles, dict):
            raise errors.BadRequest("consoles must map server IDs to console log tails.")
        for server in servers:
            if server.id in powers:
                _sync_power(session, server, powers[server.id])
            if isinstance(consoles.get(server.id), str):
                _store_console(session, server.id, consoles[server.id])
        body = {"servers": [server_document(s) for s in servers]}
    return ok(body)


# The most of a console log the API keeps (its end).
CONSOLE_KEEP = 256 * 1024


def _store_console(session: Session, server_id: str, text: str) -> None:
    text = text[-CONSOLE_KEEP:]
    log = session.get(ConsoleLog, server_id)
    if log is None:
        session.add(ConsoleLog(server_id=server_id, text=text, size=len(text)))
    elif log.text != text:
        log.text, log.size = text, len(text)


def _sync_power(session: Session, server: Server, power: Any) -> None:
    """A domain's power state, outside any task: a server whose domain
    stopped on its own (shut down inside, crashed, killed) is SHUTOFF."""
    if not isinstance(power, int) or server.task_state is not None:
        return
    if server.power_state != power:
        server.power_state = power
        server.revision += 1
    if server.vm_state == states.ACTIVE and power in (
        states.SHUTDOWN,
        states.CRASHED,
        states.NOSTATE,
    ):
        server.vm_state = states.STOPPED
        server.revision += 1


# event -> (the tasks it answers, vm_state after, power_state after, action event name)
EVENTS: dict[str, tuple[tuple[str | None, ...], str | None, int | None, str]] = {
    "spawned": (
        (states.SPAWNING,),
        states.ACTIVE,
        states.RUNNING,
        "compute__do_build_and_run_instance",
    ),
    "stopped": ((states.POWERING_OFF,), states.STOPPED, states.SHUTDOWN, "compute_stop_instance"),
    "started": ((states.POWERING_ON,), states.ACTIVE, states.RUNNING, "compute_start_instance"),
    "rebooted": (
        (states.REBOOTING, states.REBOOTING_HARD),
        states.ACTIVE,
        states.RUNNING,
        "compute_reboot_instance",
    ),
    "paused": ((states.PAUSING,), states.PAUSED, states.PAUSED_POWER, "compute_pause_instance"),
    "unpaused": ((states.UNPAUSING,), states.ACTIVE, states.RUNNING, "compute_unpause_instance"),
    "suspended": (
        (states.SUSPENDING,),
        states.SUSPENDED,
        states.SUSPENDED_POWER,
        "compute_suspend_instance",
    ),
    "resumed": ((states.RESUMING,), states.ACTIVE, states.RUNNING, "compute_resume_instance"),
}


def _finish_action(session: Session, server_id: str, event: str, error: str | None) -> None:
    action = session.scalars(
        select(InstanceAction)
        .where(InstanceAction.server_id == server_id)
        .order_by(InstanceAction.id.desc())
    ).first()
    if action is None:
        return
    now = utcnow()
    action.finish_time = now
    if error:
        action.message = "Error"
    action.events.append(
        InstanceActionEvent(
            event=event,
            result="Error" if error else "Success",
            traceback=error,
            start_time=action.start_time,
            finish_time=now,
        )
    )


def apply_event(session: Session, host: str, item: dict[str, Any]) -> bool:
    """Apply one agent event; False when the server no longer has the task."""
    server_id = item.get("server_id")
    kind = item.get("event")
    server = session.get(Server, server_id) if isinstance(server_id, str) else None
    if server is None or server.host != host:
        return False
    expected = item.get("task_state")
    if server.task_state != expected or expected not in states.AGENT_TASKS:
        return False
    fault = item.get("fault")
    if kind == "deleted":
        if expected != states.DELETING:
            return False
        session.execute(delete(Allocation).where(Allocation.server_id == server.id))
        server.host = None
        server.power_state = states.NOSTATE
    elif kind == "failed":
        # The task could not be done: the server keeps its state, the action
        # says why; a build that failed leaves the server in ERROR.
        message = (fault or {}).get("message", "The task failed on the host.")
        if expected == states.SPAWNING:
            server.vm_state = states.ERROR
            server.fault = json.dumps(
                {
                    "code": 500,
                    "message": message,
                    "details": (fault or {}).get("details", ""),
                    "created": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
        server.task_state = None
        _finish_action(session, server.id, f"compute_{expected}", message)
    elif kind in EVENTS:
        tasks, vm_state, power, event_name = EVENTS[kind]
        if expected not in tasks:
            return False
        server.vm_state = vm_state or server.vm_state
        server.power_state = power if power is not None else server.power_state
        server.task_state = None
        if kind == "spawned":
            server.launched_at = utcnow()
            server.progress = 100
        _finish_action(session, server.id, event_name, None)
    else:
        raise errors.BadRequest(f"Unknown event {kind!r}.")
    server.revision += 1
    return True


@endpoint
def events(req: ApiRequest) -> Response:
    common.enforce(req, RULE)
    host = req.path_params["host"]
    document = req.json()
    items = document.get("events") if isinstance(document, dict) else None
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise errors.BadRequest('The request body must be {"events": [...]}.')
    results = []
    with common.service(req).db.session() as session:
        for item in items:
            results.append(
                {"server_id": item.get("server_id"), "applied": apply_event(session, host, item)}
            )
    return ok({"events": results})


ROUTES = [
    Route("/v2.1/os-stratus-hosts/{host}", report, methods=["PUT"]),
    Route("/v2.1/os-stratus-hosts/{host}/events", events, methods=["POST"]),
]
