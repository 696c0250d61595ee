"""``POST /servers/{id}/action``: start, stop, reboot, pause, suspend, lock,
and reading the console log (createImage, rebuild and resize are
``server_lifecycle``'s).

An action checks that the server's state allows it (409 naming the state
otherwise, as Nova words it), sets the task its host's agent is to carry
out, and answers 202; the agent reports the outcome (``api/hosts.py``).
A locked server refuses every action but unlock to everyone but admins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.compute import states
from stratus.compute.api import common, server_lifecycle, servers
from stratus.compute.model import ConsoleLog, Server

RULE = "os_compute_api"

# body key -> (policy rule, instance action, vm_states allowed, new task)
TASKS: dict[str, tuple[str, str, tuple[str, ...], str]] = {
    "os-start": (f"{RULE}:servers:start", "start", (states.STOPPED,), states.POWERING_ON),
    "os-stop": (
        f"{RULE}:servers:stop",
        "stop",
        (states.ACTIVE, states.ERROR),
        states.POWERING_OFF,
    ),
    "pause": (f"{RULE}:os-pause-server:pause", "pause", (states.ACTIVE,), states.PAUSING),
    "unpause": (f"{RULE}:os-pause-server:unpause", "unpause", (states.PAUSED,), states.UNPAUSING),
    "suspend": (
        f"{RULE}:os-suspend-server:suspend",
        "suspend",
        (states.ACTIVE, states.PAUSED),
        states.SUSPENDING,
    ),
    "resume": (
        f"{RULE}:os-suspend-server:resume",
        "resume",
        (states.SUSPENDED,),
        states.RESUMING,
    ),
}

_HARD_REBOOT_STATES = (
    states.ACTIVE,
    states.STOPPED,
    states.PAUSED,
    states.SUSPENDED,
    states.ERROR,
)


def _conflict(server: Server, action: str) -> errors.Conflict:
    return errors.Conflict(
        f"Cannot '{action}' instance {server.id} while it is in "
        + (
            f"task_state {server.task_state}"
            if server.task_state
            else f"vm_state {server.vm_state}"
        )
    )


def _set_task(
    req: ApiRequest, rule: str, action: str, allowed: tuple[str, ...], task: str
) -> Response:
    with common.service(req).db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], rule)
        servers.check_unlocked(req, server)
        if server.task_state is not None or server.vm_state not in allowed or not server.host:
            raise _conflict(server, action)
        server.task_state = task
        server.revision += 1
        servers.record_action(session, req, server, action)
    return Response(status_code=202)


def _reboot(req: ApiRequest, argument: Any) -> Response:
    if not isinstance(argument, dict) or not isinstance(argument.get("type"), str):
        raise errors.BadRequest("Invalid input for field/attribute reboot: give a type.")
    kind = argument["type"].upper()
    if kind not in ("SOFT", "HARD") or set(argument) != {"type"}:
        raise errors.BadRequest(f"Invalid reboot type {argument['type']!r}: SOFT or HARD.")
    if kind == "SOFT":
        return _set_task(
            req, f"{RULE}:servers:reboot", "reboot", (states.ACTIVE,), states.REBOOTING
        )
    return _set_task(
        req, f"{RULE}:servers:reboot", "reboot", _HARD_REBOOT_STATES, states.REBOOTING_HARD
    )


def _lock(req: ApiRequest, argument: Any) -> Response:
    if argument is not None and not (isinstance(argument, dict) and not argument):
        raise errors.BadRequest("lock takes no arguments at this microversion.")
    with common.service(req).db.session() as session:
        server = servers.find(
            req, session, req.path_params["server_id"], f"{RULE}:os-lock-server:lock"
        )
        if not server.locked:
            server.locked = True
            server.locked_by = "admin" if common.is_admin(req) else "owner"
            server.revision += 1
            servers.record_action(session, req, server, "lock")
    return Response(status_code=202)


def _unlock(req: ApiRequest, argument: Any) -> Response:
    with common.service(req).db.session() as session:
        server = servers.find(
            req, session, req.path_params["server_id"], f"{RULE}:os-lock-server:unlock"
        )
        if server.locked and server.locked_by == "admin":
            common.enforce(
                req,
                f"{RULE}:os-lock-server:unlock:unlock_override",
                {"project_id": server.project_id},
            )
        if server.locked:
            server.locked = False
            server.locked_by = None
            server.revision += 1
            servers.record_action(session, req, server, "unlock")
    return Response(status_code=202)


MAX_CONSOLE_LINES = 10000


def _console(req: ApiRequest, argument: Any) -> Response:
    if argument is None:
        argument = {}
    if not isinstance(argument, dict) or not set(argument) <= {"length"}:
        raise errors.BadRequest("Invalid input for os-getConsoleOutput: only 'length'.")
    length = argument.get("length")
    if isinstance(length, str) and length.lstrip("-").isdigit():
        length = int(length)
    if length is not None and (
        not isinstance(length, int) or isinstance(length, bool) or length < -1
    ):
        raise errors.BadRequest(f"Invalid input for field/attribute length: {length!r}.")
    with common.service(req).db.session() as session:
        server = servers.find(
            req, session, req.path_params["server_id"], f"{RULE}:os-console-output"
        )
        if server.vm_state == states.BUILDING and not server.host:
            raise errors.Conflict(f"Instance {server.id} has no console yet: it is still building.")
        log = session.get(ConsoleLog, server.id)
        text = log.text if log is not None else ""
    if length not in (None, -1):
        lines = text.splitlines(keepends=True)
        text = "".join(lines[-length:]) if length else ""
    return ok({"output": text})


def _no_console(req: ApiRequest, argument: Any) -> Response:
    """Graphical and serial consoles need a console proxy, which Stratus has
    not (the console log is there): refused as Nova refuses a console type
    that is not enabled."""
    with common.service(req).db.session() as session:
        servers.find(req, session, req.path_params["server_id"], f"{RULE}:os-console-output")
    kind = argument.get("type") if isinstance(argument, dict) else None
    raise errors.BadRequest(f"Unavailable console type {kind or 'requested'}.")


HANDLERS: dict[str, Callable[[ApiRequest, Any], Response]] = {
    "os-getVNCConsole": _no_console,
    "os-getSPICEConsole": _no_console,
    "os-getSerialConsole": _no_console,
    "os-getRDPConsole": _no_console,
    "reboot": _reboot,
    "lock": _lock,
    "unlock": _unlock,
    "os-getConsoleOutput": _console,
    **server_lifecycle.HANDLERS,
}


@endpoint
def action(req: ApiRequest) -> Response:
    document = req.json()
    if not isinstance(document, dict) or len(document) != 1:
        raise errors.BadRequest("The request body must name exactly one action.")
    ((name, argument),) = document.items()
    if name in TASKS:
        if argument not in (None, {}):
            raise errors.BadRequest(f"The action {name} takes no arguments.")
        return _set_task(req, *TASKS[name])
    handler = HANDLERS.get(name)
    if handler is None:
        raise errors.BadRequest(f"There is no such action: {name}")
    return handler(req, argument)


@endpoint
def remote_console(req: ApiRequest) -> Response:
    document = req.json()
    console = document.get("remote_console") if isinstance(document, dict) else None
    if not isinstance(console, dict):
        raise errors.BadRequest("The request body must be an object with 'remote_console'.")
    return _no_console(req, console)


ROUTES = [
    Route("/v2.1/servers/{server_id}/action", action, methods=["POST"]),
    Route("/v2.1/servers/{server_id}/remote-consoles", remote_console, methods=["POST"]),
]
