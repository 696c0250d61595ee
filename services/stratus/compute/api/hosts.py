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

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.db import utcnow
from stratus.common.handlers import ok
from stratus.compute import actions, scheduling, states
from stratus.compute.api import common, server_views
from stratus.compute.model import (
    Allocation,
    ComputeHost,
    ConsoleLog,
    Migration,
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

# Tasks that the source host of a resize carries out, wherever the server is.
SOURCE_TASKS = (states.RESIZE_MIGRATING, states.RESIZE_CONFIRMING, states.RESIZE_REVERTING)


def active_migration(session: Session, server_id: str) -> Migration | None:
    return session.scalars(
        select(Migration)
        .where(Migration.server_id == server_id, Migration.status.in_(Migration.ACTIVE_STATUSES))
        .order_by(Migration.id.desc())
    ).first()


def migration_document(migration: Migration) -> dict[str, Any]:
    return {
        "id": migration.uuid,
        "source_host": migration.source_host,
        "dest_host": migration.dest_host,
        "old_flavor": json.loads(migration.old_flavor),
        "new_flavor": json.loads(migration.new_flavor),
        "old_vm_state": migration.old_vm_state,
        "status": migration.status,
    }


def task_for(server: Server, migration: Migration | None, host: str) -> str | None:
    """The task ``host`` is to carry out for the server (None: nothing).

    During a resize the server may concern two hosts: the source host
    migrates it, and confirms or reverts the resize; the destination (the
    server's host once migrated) finishes it."""
    task = server.task_state
    if migration is not None and task in SOURCE_TASKS:
        return task if host == migration.source_host else None
    return task if server.host == host else None


def server_document(
    server: Server, migration: Migration | None = None, host: str | None = None
) -> dict[str, Any]:
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
        "task_state": server.task_state if host is None else task_for(server, migration, host),
        "task_args": json.loads(server.task_args or "{}"),
        "migration": migration_document(migration) if migration is not None else None,
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
                "owned": p.owned,
                "details": json.loads(p.details or "{}"),
            }
            for p in server.ports
        ],
    }


def _capacity(values: dict[str, Any]) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    if "resize_across_hosts" in values:
        if not isinstance(values["resize_across_hosts"], bool):
            raise errors.BadRequest("Invalid input for field/attribute resize_across_hosts.")
        parsed["resize_across_hosts"] = values["resize_across_hosts"]
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
    if not capacity.get("host_ip") and req.request.client is not None:
        # A host that does not name its address (the fake driver's) is known
        # by the one its agent reports from: hypervisors always show one.
        capacity["host_ip"] = req.request.client.host
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
        # The servers placed here, and those being resized away from here
        # (the host keeps their old domain until the resize is confirmed).
        leaving = select(Migration.server_id).where(
            Migration.source_host == host_name,
            Migration.status.in_(Migration.ACTIVE_STATUSES),
        )
        servers = list(
            session.scalars(
                select(Server).where(or_(Server.host == host_name, Server.id.in_(leaving)))
            )
        )
        consoles = values.get("consoles", {})
        if not isinstance(consoles, dict):
            raise errors.BadRequest("consoles must map server IDs to console log tails.")
        migrations = {
            m.server_id: m
            for m in session.scalars(
                select(Migration)
                .where(
                    or_(Migration.source_host == host_name, Migration.dest_host == host_name),
                    Migration.status.in_(Migration.ACTIVE_STATUSES),
                )
                .order_by(Migration.id)
            )
        }
        documents = []
        for server in servers:
            here = server.host == host_name
            if here and server.id in powers:
                _sync_power(session, server, powers[server.id])
            if here and isinstance(consoles.get(server.id), str):
                _store_console(session, server.id, consoles[server.id])
            documents.append(server_document(server, migrations.get(server.id), host_name))
        body = {"servers": documents}
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
    actions.finish(session, server_id, event, error)


def _fault(server: Server, message: str, details: str = "") -> None:
    server.fault = json.dumps(
        {
            "code": 500,
            "message": message,
            "details": details,
            "created": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


def _size(server: Server, flavor: dict[str, Any]) -> None:
    """The server's flavor and the size columns that quotas and claims sum."""
    server.flavor = json.dumps(flavor)
    server.vcpus = int(flavor["vcpus"])
    server.memory_mb = int(flavor["ram"])
    server.disk_gb = scheduling.flavor_disk_gb(flavor)


def _power_for(vm_state: str) -> int:
    return states.SHUTDOWN if vm_state == states.STOPPED else states.RUNNING


def _resize_event(
    session: Session, server: Server, migration: Migration, kind: str, host: str
) -> str | None:
    """A step of a resize done (see ``api/server_resize.py``); its action event."""
    if kind == "migrated":  # the source host let go: the destination finishes
        server.host = migration.dest_host
        server.task_state = states.RESIZE_FINISH
        migration.status = "post-migrating"
        flavor = json.loads(migration.new_flavor)
        server.flavor = json.dumps(flavor)
        return "compute_resize_instance"
    if kind == "resized":
        server.vm_state = states.RESIZED
        server.power_state = _power_for(migration.old_vm_state)
        migration.status = "finished"
        return "compute_finish_resize"
    if kind == "confirmed":
        session.execute(delete(Allocation).where(Allocation.server_id == migration.uuid))
        _size(server, json.loads(migration.new_flavor))
        server.vm_state = migration.old_vm_state
        migration.status = "confirmed"
        return "compute_confirm_resize"
    # reverted: back on the source host with the old flavor and its claim
    session.execute(delete(Allocation).where(Allocation.server_id == server.id))
    session.flush()
    session.execute(
        update(Allocation).where(Allocation.server_id == migration.uuid).values(server_id=server.id)
    )
    _size(server, json.loads(migration.old_flavor))
    server.host = migration.source_host
    server.vm_state = migration.old_vm_state
    server.power_state = _power_for(migration.old_vm_state)
    migration.status = "reverted"
    return "compute_finish_revert_resize"


def _resize_failed(
    session: Session, server: Server, migration: Migration | None, task: str, message: str
) -> None:
    """A resize step that failed. Before the server left its source host the
    resize is undone (the server keeps its flavor, host and claim); after,
    the server is in ERROR where it is, as Nova leaves it."""
    if migration is None:
        return
    if task == states.RESIZE_CONFIRMING:
        return  # still VERIFY_RESIZE: the confirm may be asked again
    migration.status = "error"
    if task == states.RESIZE_MIGRATING:
        session.execute(delete(Allocation).where(Allocation.server_id == server.id))
        session.flush()
        session.execute(
            update(Allocation)
            .where(Allocation.server_id == migration.uuid)
            .values(server_id=server.id)
        )
        _size(server, json.loads(migration.old_flavor))
        server.host = migration.source_host
        return
    session.execute(delete(Allocation).where(Allocation.server_id == migration.uuid))
    _size(server, json.loads(migration.new_flavor))
    server.vm_state = states.ERROR
    _fault(server, message)


# (event, the tasks it answers) -> instance action event name, for the tasks
# that end with the server as it was (vm_state kept)
PLAIN_DONE = {
    "snapshotted": (states.SNAPSHOT_TASKS, "compute_snapshot_instance"),
    "interface_attached": ((states.INTERFACE_ATTACHING,), "compute_attach_interface"),
    "interface_detached": ((states.INTERFACE_DETACHING,), "compute_detach_interface"),
}
RESIZE_DONE = {
    "migrated": states.RESIZE_MIGRATING,
    "resized": states.RESIZE_FINISH,
    "confirmed": states.RESIZE_CONFIRMING,
    "reverted": states.RESIZE_REVERTING,
}
FAILED_EVENT = {
    **{task: "compute_snapshot_instance" for task in states.SNAPSHOT_TASKS},
    **{task: "compute_rebuild_instance" for task in states.REBUILD_TASKS},
    states.RESIZE_MIGRATING: "compute_resize_instance",
    states.RESIZE_FINISH: "compute_finish_resize",
    states.RESIZE_CONFIRMING: "compute_confirm_resize",
    states.RESIZE_REVERTING: "compute_finish_revert_resize",
    states.INTERFACE_ATTACHING: "compute_attach_interface",
    states.INTERFACE_DETACHING: "compute_detach_interface",
}


def _progress_allowed(current: str, following: Any) -> bool:
    return any(
        current in family and following in family and following != current
        for family in (states.SNAPSHOT_TASKS, states.REBUILD_TASKS)
    )


def apply_event(session: Session, host: str, item: dict[str, Any]) -> bool:
    """Apply one agent event; False when the server no longer has the task."""
    server_id = item.get("server_id")
    kind = item.get("event")
    server = session.get(Server, server_id) if isinstance(server_id, str) else None
    if server is None:
        return False
    expected = item.get("task_state")
    if server.task_state != expected or expected not in states.AGENT_TASKS:
        return False
    migration = active_migration(session, server.id)
    if task_for(server, migration, host) != expected:
        return False  # not this host's to report
    fault = item.get("fault")
    if kind == "progress":
        following = item.get("next_task_state")
        if not _progress_allowed(expected, following):
            raise errors.BadRequest(f"A task cannot move from {expected} to {following!r}.")
        server.task_state = following
    elif kind == "deleted":
        if expected != states.DELETING:
            return False
        scheduling.drop_claims(session, server.id)
        server.host = None
        server.power_state = states.NOSTATE
    elif kind == "failed":
        # The task could not be done: the server keeps its state, the action
        # says why; a build or rebuild that failed leaves the server in ERROR.
        message = (fault or {}).get("message", "The task failed on the host.")
        if expected == states.SPAWNING or expected in states.REBUILD_TASKS:
            server.vm_state = states.ERROR
            _fault(server, message, (fault or {}).get("details", ""))
        elif expected == states.INTERFACE_ATTACHING:
            port_id = json.loads(server.task_args or "{}").get("port_id")
            server.ports = [p for p in server.ports if p.port_id != port_id]
        elif expected in RESIZE_DONE.values():
            _resize_failed(session, server, migration, expected, message)
        server.task_state = None
        server.task_args = None
        _finish_action(
            session, server.id, FAILED_EVENT.get(expected, f"compute_{expected}"), message
        )
    elif kind in RESIZE_DONE:
        if expected != RESIZE_DONE[kind] or migration is None:
            return False
        event_name = _resize_event(session, server, migration, kind, host)
        if kind != "migrated":
            server.task_state = None
            server.task_args = None
        _finish_action(session, server.id, event_name or kind, None)
    elif kind == "rebuilt":
        if expected not in states.REBUILD_TASKS:
            return False
        server.vm_state = states.STOPPED if server.vm_state == states.STOPPED else states.ACTIVE
        server.power_state = _power_for(server.vm_state)
        server.launched_at = utcnow()
        server.progress = 100
        server.fault = None
        server.task_state = None
        server.task_args = None
        _finish_action(session, server.id, "compute_rebuild_instance", None)
    elif kind in PLAIN_DONE:
        tasks, event_name = PLAIN_DONE[kind]
        if expected not in tasks:
            return False
        if kind == "interface_detached":
            port_id = json.loads(server.task_args or "{}").get("port_id")
            server.ports = [p for p in server.ports if p.port_id != port_id]
        server.task_state = None
        server.task_args = None
        _finish_action(session, server.id, event_name, None)
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
