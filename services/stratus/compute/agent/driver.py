"""What the agent asks of a hypervisor: the virt driver's contract.

A driver knows domains by server ID. Every call is idempotent where it can
be (destroying what is gone, starting what runs: nothing to do), and raises
``DriverError`` with a message for the server's fault when it cannot do
what it was asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol


class DriverError(Exception):
    """The hypervisor could not do it; the message says why, for the user."""


@dataclass(frozen=True)
class HostInfo:
    hypervisor_hostname: str
    hypervisor_type: str
    hypervisor_version: int
    vcpus: int
    memory_mb: int
    local_gb: int
    host_ip: str = ""


class Driver(Protocol):
    def host_info(self) -> HostInfo: ...

    def power_states(self) -> dict[str, int]:
        """server ID -> power state, for every domain this driver made."""
        ...

    def spawn(self, server: dict[str, Any]) -> None:
        """Build the server (disks, domain, plugs) and start it."""
        ...

    def destroy(self, server_id: str) -> None:
        """Stop the domain and remove it with everything made for it."""
        ...

    def power_off(self, server_id: str) -> None: ...

    def power_on(self, server: dict[str, Any]) -> None: ...

    def reboot(self, server: dict[str, Any], hard: bool) -> None: ...

    def pause(self, server_id: str) -> None: ...

    def unpause(self, server_id: str) -> None: ...

    def suspend(self, server_id: str) -> None: ...

    def resume(self, server: dict[str, Any]) -> None: ...

    def snapshot(self, server: dict[str, Any], dest: Path) -> None:
        """Write the server's root disk to ``dest`` as a standalone qcow2
        (no backing file), leaving the server as it was."""
        ...

    def rebuild(self, server: dict[str, Any], step: Callable[[str], None]) -> None:
        """Make the server again from ``server["image_id"]`` (its new image):
        a new root disk, the ephemeral disk kept if ``task_args`` says
        ``preserve_ephemeral``; it runs afterwards unless it was stopped.
        ``step(rebuild_spawning)`` once the old disk is gone."""
        ...

    # A resize: ``server["migration"]`` says the hosts, the flavors and the
    # vm_state before; ``server["flavor"]`` is the new flavor.

    def migrate_disk_and_power_off(self, server: dict[str, Any]) -> None:
        """On the source host: stop the server and keep what a revert needs."""
        ...

    def finish_migration(self, server: dict[str, Any]) -> None:
        """On the destination: the server with its new flavor, running if it ran."""
        ...

    def confirm_migration(self, server: dict[str, Any]) -> None:
        """On the source host: drop what was kept for a revert."""
        ...

    def finish_revert_migration(self, server: dict[str, Any]) -> None:
        """On the source host: the server as it was before, with its old flavor."""
        ...

    def attach_interface(self, server: dict[str, Any], port: dict[str, Any]) -> None:
        """Plug a port (``server["ports"]``'s shape) into the server: hot-plugged
        if it runs, and in its definition for the next boot."""
        ...

    def detach_interface(self, server: dict[str, Any], port: dict[str, Any]) -> None: ...

    def console_tail(self, server_id: str, limit: int) -> str | None:
        """The end of the server's console log, or None without one."""
        ...
