"""A driver without a hypervisor, for the scheduler and the API at scale.

Its domains are entries in a JSON file (so an agent restart finds them, as
libvirt would) and its host is as large as configured. It keeps the power
state a real domain would have after each call and writes a console log
line per event, so everything above it runs as it would on a real host.

A snapshot is a real, empty qcow2 of the root disk's size (``empty_qcow2``),
so the image service takes it as it takes a libvirt host's. A resize may
move a server to another fake host: the source keeps its stopped domain
until the resize is confirmed (then it goes) or reverted (then it runs
again, and the destination's goes as an orphan). Metadata ``fake:fail_<task>``
(``spawn``, ``snapshot``, ``rebuild``, ``resize``, ``attach``) makes that
task fail, for tests of the failure paths.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stratus.compute import states
from stratus.compute.agent.driver import DriverError, HostInfo

_CLUSTER_BITS = 16
_CLUSTER = 1 << _CLUSTER_BITS


def empty_qcow2(size: int) -> bytes:
    """A valid qcow2 (version 2) of ``size`` bytes with nothing written:
    header, refcount table and block, and an L1 table of empty entries."""
    l1_size = max(1, -(-size // (_CLUSTER * (_CLUSTER // 8))))
    if l1_size * 8 > _CLUSTER:
        raise ValueError(f"{size} bytes is too large for a one-cluster L1 table")
    header = struct.pack(
        ">4sIQIIQIIQQIIQ",
        b"QFI\xfb", 2, 0, 0, _CLUSTER_BITS, size, 0, l1_size,
        3 * _CLUSTER,  # the L1 table
        1 * _CLUSTER,  # the refcount table, one cluster
        1,
        0, 0,  # no snapshots
    )  # fmt: skip
    data = bytearray(4 * _CLUSTER)
    data[: len(header)] = header
    data[_CLUSTER : _CLUSTER + 8] = struct.pack(">Q", 2 * _CLUSTER)
    data[2 * _CLUSTER : 2 * _CLUSTER + 8] = struct.pack(">4H", 1, 1, 1, 1)  # 4 clusters used
    return bytes(data)


def _fail(server: dict[str, Any], task: str) -> None:
    if (server.get("metadata") or {}).get(f"fake:fail_{task}"):
        raise DriverError(f"The fake driver was asked to fail this {task}.")


class FakeDriver:
    # It moves resized servers between the hosts it plays.
    resize_across_hosts = True

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
            self._domains[server["id"]] = self._describe(
                server, states.RUNNING, f"fake: {server['name']} booted on {self.host}\n"
            )
            self._save()

    @staticmethod
    def _describe(server: dict[str, Any], power: int, console: str) -> dict[str, Any]:
        flavor = server.get("flavor") or {}
        return {
            "power": power,
            "console": console,
            "image": server.get("image_id"),
            "flavor": flavor.get("id"),
            "vcpus": flavor.get("vcpus"),
            "ram": flavor.get("ram"),
            "nics": [p["port_id"] for p in server.get("ports") or []],
        }

    def _update(self, server_id: str, line: str, **values: Any) -> None:
        with self._lock:
            domain = self._domains.get(server_id)
            if domain is None:
                raise DriverError(f"Domain of server {server_id} not found on {self.host}.")
            domain.update(values)
            domain["console"] += f"{line}\n"
            self._save()

    def snapshot(self, server: dict[str, Any], dest: Path) -> None:
        _fail(server, "snapshot")
        with self._lock:
            self._load()
            if server["id"] not in self._domains:
                raise DriverError(f"Domain of server {server['id']} not found on {self.host}.")
        size = int((server.get("flavor") or {}).get("disk") or 1) << 30
        dest.write_bytes(empty_qcow2(size))
        self._update(server["id"], "fake: snapshot taken")

    def rebuild(self, server: dict[str, Any], step: Callable[[str], None]) -> None:
        _fail(server, "rebuild")
        step(states.REBUILD_SPAWNING)
        power = states.SHUTDOWN if server.get("vm_state") == states.STOPPED else states.RUNNING
        self._redescribe(
            server, power, f"fake: {server['name']} rebuilt from {server.get('image_id')}"
        )

    def _redescribe(self, server: dict[str, Any], power: int, line: str) -> None:
        """The server's domain described anew (rebuilt, resized), its console kept plus `line`."""
        with self._lock:
            self._load()
            old = self._domains.get(server["id"], {})
            self._domains[server["id"]] = self._describe(
                server, power, str(old.get("console", "")) + line + "\n"
            )
            self._save()

    @staticmethod
    def _migration(server: dict[str, Any]) -> dict[str, Any]:
        migration = server.get("migration")
        if not migration:
            raise DriverError(f"Server {server['id']} is not being resized.")
        return migration  # type: ignore[no-any-return]

    def migrate_disk_and_power_off(self, server: dict[str, Any]) -> None:
        self._migration(server)
        _fail(server, "resize")
        self._update(server["id"], "fake: powered off to be resized", power=states.SHUTDOWN)

    def finish_migration(self, server: dict[str, Any]) -> None:
        migration = self._migration(server)
        power = states.RUNNING if migration["old_vm_state"] == states.ACTIVE else states.SHUTDOWN
        self._redescribe(
            server, power, f"fake: resized to flavor {server['flavor'].get('id')} on {self.host}"
        )

    def confirm_migration(self, server: dict[str, Any]) -> None:
        migration = self._migration(server)
        if migration["dest_host"] != self.host:
            self.destroy(server["id"])  # the old domain; the new one is elsewhere

    def finish_revert_migration(self, server: dict[str, Any]) -> None:
        migration = self._migration(server)
        power = states.RUNNING if migration["old_vm_state"] == states.ACTIVE else states.SHUTDOWN
        flavor = migration["old_flavor"]
        with self._lock:
            self._load()
            old = self._domains.get(server["id"], {})
            self._domains[server["id"]] = self._describe(
                {**server, "flavor": flavor},
                power,
                str(old.get("console", ""))
                + f"fake: resize reverted to flavor {flavor.get('id')}\n",
            )
            self._save()

    def attach_interface(self, server: dict[str, Any], port: dict[str, Any]) -> None:
        _fail(server, "attach")
        with self._lock:
            self._load()
            domain = self._domains.get(server["id"])
            if domain is None:
                raise DriverError(f"Domain of server {server['id']} not found on {self.host}.")
            nics = domain.setdefault("nics", [])
            if port["port_id"] not in nics:
                nics.append(port["port_id"])
                domain["console"] += f"fake: plugged {port['port_id']}\n"
            self._save()

    def detach_interface(self, server: dict[str, Any], port: dict[str, Any]) -> None:
        with self._lock:
            self._load()
            domain = self._domains.get(server["id"])
            if domain is None:
                return  # nothing plugged anywhere
            nics = domain.setdefault("nics", [])
            if port["port_id"] in nics:
                nics.remove(port["port_id"])
                domain["console"] += f"fake: unplugged {port['port_id']}\n"
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
