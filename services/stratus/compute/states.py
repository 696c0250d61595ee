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
REBUILD_SPAWNING = "rebuild_spawning"
RESIZE_PREP = "resize_prep"
RESIZE_MIGRATING = "resize_migrating"
RESIZE_MIGRATED = "resize_migrated"
RESIZE_FINISH = "resize_finish"
RESIZE_REVERTING = "resize_reverting"
RESIZE_CONFIRMING = "resize_confirming"
IMAGE_SNAPSHOT_PENDING = "image_snapshot_pending"
IMAGE_SNAPSHOT = "image_snapshot"
IMAGE_PENDING_UPLOAD = "image_pending_upload"
IMAGE_UPLOADING = "image_uploading"
INTERFACE_ATTACHING = "interface_attaching"
INTERFACE_DETACHING = "interface_detaching"
DELETING = "deleting"

# The steps of a snapshot and of a rebuild, in order: the agent reports each
# step it reaches (a "progress" event), and a task found at any step after
# a restart is carried out again from the start.
SNAPSHOT_TASKS = (IMAGE_SNAPSHOT_PENDING, IMAGE_SNAPSHOT, IMAGE_PENDING_UPLOAD, IMAGE_UPLOADING)
REBUILD_TASKS = (REBUILDING, REBUILD_SPAWNING)

# The tasks a host's agent carries out (the scheduler has scheduling,
# networking and resize_prep). resize_migrating is the source host's,
# resize_finish the destination's; resize_confirming and resize_reverting are
# the source host's (the destination's domain goes as an orphan once the
# server is back on its source).
AGENT_TASKS = frozenset(
    {
        *SNAPSHOT_TASKS,
        *REBUILD_TASKS,
        RESIZE_MIGRATING,
        RESIZE_FINISH,
        RESIZE_CONFIRMING,
        RESIZE_REVERTING,
        INTERFACE_ATTACHING,
        INTERFACE_DETACHING,
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
        REBUILD_SPAWNING: "REBUILD",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        RESIZE_MIGRATED: "RESIZE",
        RESIZE_FINISH: "RESIZE",
    },
    STOPPED: {
        _DEFAULT: "SHUTOFF",
        REBUILDING: "REBUILD",
        REBUILD_SPAWNING: "REBUILD",
        RESIZE_PREP: "RESIZE",
        RESIZE_MIGRATING: "RESIZE",
        RESIZE_MIGRATED: "RESIZE",
        RESIZE_FINISH: "RESIZE",
    },
    PAUSED: {_DEFAULT: "PAUSED"},
    SUSPENDED: {_DEFAULT: "SUSPENDED"},
    RESIZED: {_DEFAULT: "VERIFY_RESIZE", RESIZE_REVERTING: "REVERT_RESIZE"},
    ERROR: {_DEFAULT: "ERROR", REBUILDING: "REBUILD", REBUILD_SPAWNING: "REBUILD"},
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
