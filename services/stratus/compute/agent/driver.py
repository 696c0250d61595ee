"""What the agent asks of a hypervisor: the virt driver's contract.

A driver knows domains by server ID. Every call is idempotent where it can
be (destroying what is gone, starting what runs: nothing to do), and raises
``DriverError`` with a message for the server's fault when it cannot do
what it was asked.
"""

from __future__ import annotations

from dataclasses import dataclass
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

    def console_tail(self, server_id: str, limit: int) -> str | None:
        """The end of the server's console log, or None without one."""
        ...
