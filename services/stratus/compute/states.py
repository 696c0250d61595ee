"""Server states: what the API shows for each (vm_state, task_state), and
Nova's power state numbers."""

from __future__ import annotations

# vm_state values
BUILDING = "building"
ACTIVE = "active"
STOPPED = "stopped"
PAUSED = "paused"
SUSPENDED = "suspended"
RESIZED = "resized"
ERROR = "error"
DELETED = "deleted"

# task_state values
SCHEDULING = "scheduling"
NETWORKING = "networking"
SPAWNING = "spawning"
POWERING_OFF = "powering-off"
POWERING_ON = "powering-on"
REBOOTING = "rebooting"
REBOOTING_HARD = "rebooting_hard"
PAUSING = "pausing"
UNPAUSING = "unpausing"
SUSPENDING = "suspending"
RESUMING = "resuming"
REBUILDING = "rebuilding"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_UPLOADING = "image_uploading"
DELETING = "deleting"

# The tasks a host's agent carries out (the scheduler has scheduling and
# networking).
AGENT_TASKS = frozenset(
    {
        SPAWNING,
        POWERING_OFF,
        POWERING_ON,
        REBOOTING,
        REBOOTING_HARD,
        PAUSING,
        UNPAUSING,
        SUSPENDING,
        RESUMING,
        DELETING,
    }
)

# power_state values (libvirt's, as Nova numbers them)
NOSTATE = 0
RUNNING = 1
PAUSED_POWER = 3
SHUTDOWN = 4
CRASHED = 6
SUSPENDED_POWER = 7

_DEFAULT = "default"
_STATUS: dict[str, dict[str | None, str]] = {
    BUILDING: {_DEFAULT: "BUILD"},
    ACTIVE: {
        _DEFAULT: "ACTIVE",
        REBOOTING: "REBOOT",
        REBOOTING_HARD: "HARD_REBOOT",
        REBUILDING: "REBUILD",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        RESIZE_FINISH: "RESIZE",
    },
    STOPPED: {
        _DEFAULT: "SHUTOFF",
        REBUILDING: "REBUILD",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        RESIZE_FINISH: "RESIZE",
    },
    PAUSED: {_DEFAULT: "PAUSED"},
    SUSPENDED: {_DEFAULT: "SUSPENDED"},
    RESIZED: {_DEFAULT: "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    ERROR: {_DEFAULT: "ERROR", REBUILDING: "REBUILD"},
    DELETED: {_DEFAULT: "DELETED"},
}

# Statuses whose servers show a "progress".
PROGRESS_STATUSES = ("ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING")


def status(vm_state: str, task_state: str | None) -> str:
    by_task = _STATUS.get(vm_state, {_DEFAULT: "UNKNOWN"})
    return by_task.get(task_state, by_task[_DEFAULT])


def vm_states_for(api_status: str) -> list[tuple[str, str | None]]:
    """The (vm_state, task_state or None for 'any other') pairs a status
    filter matches."""
    matches: list[tuple[str, str | None]] = []
    for vm_state, by_task in _STATUS.items():
        for task, shown in by_task.items():
            if shown == api_status:
                matches.append((vm_state, None if task == _DEFAULT else task))
    return matches
