"""A driver without a hypervisor, for the scheduler and the API at scale.

Its domains are entries in a JSON file (so an agent restart finds them, as
libvirt would) and its host is as large as configured. It keeps the power
state a real domain would have after each call and writes a console log
line per event, so everything above it runs as it would on a real host.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

from stratus.compute import states
from stratus.compute.agent.driver import DriverError, HostInfo


class FakeDriver:
    def __init__(
        self,
        state_file: Path,
        host: str,
        vcpus: int = 16,
        memory_mb: int = 65536,
        local_gb: int = 1000,
        spawn_seconds: float = 0.0,
    ):
        self.state_file = state_file
        self.host = host
        self.vcpus, self.memory_mb, self.local_gb = vcpus, memory_mb, local_gb
        self.spawn_seconds = spawn_seconds
        self._lock = threading.Lock()
        self._domains: dict[str, dict[str, Any]] = {}
        self._stamp: int | None = None
        self._load()

    def _load(self) -> None:
        """Read the file again if someone else changed it (a test playing
        the hypervisor: a domain that dies, one that vanishes)."""
        try:
            stamp = self.state_file.stat().st_mtime_ns
        except FileNotFoundError:
            return
        if stamp != self._stamp:
            self._domains = json.loads(self.state_file.read_text())
            self._stamp = stamp

    def _save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._domains))
        os.replace(tmp, self.state_file)
        self._stamp = self.state_file.stat().st_mtime_ns

    def _set(self, server_id: str, power: int, line: str) -> None:
        with self._lock:
            domain = self._domains.get(server_id)
            if domain is None:
                raise DriverError(f"Domain of server {server_id} not found on {self.host}.")
            domain["power"] = power
            domain["console"] += f"{line}\n"
            self._save()

    def host_info(self) -> HostInfo:
        return HostInfo(
            hypervisor_hostname=self.host,
            hypervisor_type="fake",
            hypervisor_version=1,
            vcpus=self.vcpus,
            memory_mb=self.memory_mb,
            local_gb=self.local_gb,
        )

    def power_states(self) -> dict[str, int]:
        with self._lock:
            self._load()
            return {i: d["power"] for i, d in self._domains.items()}

    def spawn(self, server: dict[str, Any]) -> None:
        if self.spawn_seconds:
            time.sleep(self.spawn_seconds)
        if server.get("metadata", {}).get("fake:fail_spawn"):
            raise DriverError("The fake driver was asked to fail this build.")
        with self._lock:
            self._domains[server["id"]] = {
                "power": states.RUNNING,
                "console": f"fake: {server['name']} booted on {self.host}\n",
            }
            self._save()

    def destroy(self, server_id: str) -> None:
        with self._lock:
            if self._domains.pop(server_id, None) is not None:
                self._save()

    def power_off(self, server_id: str) -> None:
        self._set(server_id, states.SHUTDOWN, "fake: powered off")

    def power_on(self, server: dict[str, Any]) -> None:
        self._set(server["id"], states.RUNNING, "fake: powered on")

    def reboot(self, server: dict[str, Any], hard: bool) -> None:
        self._set(server["id"], states.RUNNING, f"fake: {'hard' if hard else 'soft'} reboot")

    def pause(self, server_id: str) -> None:
        self._set(server_id, states.PAUSED_POWER, "fake: paused")

    def unpause(self, server_id: str) -> None:
        self._set(server_id, states.RUNNING, "fake: unpaused")

    def suspend(self, server_id: str) -> None:
        self._set(server_id, states.SUSPENDED_POWER, "fake: suspended")

    def resume(self, server: dict[str, Any]) -> None:
        self._set(server["id"], states.RUNNING, "fake: resumed")

    def console_tail(self, server_id: str, limit: int) -> str | None:
        with self._lock:
            domain = self._domains.get(server_id)
            return None if domain is None else str(domain["console"])[-limit:]
