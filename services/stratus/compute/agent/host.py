"""One host's agent: report, receive the host's servers, carry out their tasks.

A pass reports the host (capacity, the power state of every domain, the
console logs that changed) and gets back the servers placed here. Each
server with a task gets it done by the driver, in a worker thread (a task
already running is not started twice), and the outcome goes back as an
event at once. Domains of servers that are no longer placed here are
destroyed: what the API does not know must not run (an orphan after a
delete that crashed halfway, or a server deleted while its host was down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stratus.compute import states
from stratus.compute.agent.driver import Driver, DriverError

log = logging.getLogger("stratus.compute.agent")

CONSOLE_LIMIT = 64 * 1024


class ComputeApi(Protocol):
    def report(self, host: str, body: dict[str, Any]) -> list[dict[str, Any]]: ...

    def events(self, host: str, events: list[dict[str, Any]]) -> None: ...


class ImageStore(Protocol):
    """Where snapshots go: the image API as the agent's service user."""

    def status(self, image_id: str) -> str: ...

    def upload(self, image_id: str, path: Path) -> None: ...

    def delete(self, image_id: str) -> None: ...


class PortBinder(Protocol):
    """The ports of interfaces attached and detached, on the network API."""

    def bind(self, port_id: str, host: str) -> None: ...

    def release(self, port_id: str, owned: bool) -> None: ...


@dataclass
class Capacity:
    """The operator's say over what the scheduler may place here."""

    availability_zone: str | None = None
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512


Step = Callable[[str], None]

# task -> (what the driver does, the event that reports it done); snapshots,
# rebuilds, interfaces and deletes are ``HostAgent._call``'s, which need the
# image or network API too. A task is carried out again from the start when
# the agent finds it after a restart, so every one of them is idempotent.
_TASKS: dict[str, tuple[Callable[[Driver, dict[str, Any]], None], str]] = {
    states.SPAWNING: (lambda d, s: d.spawn(s), "spawned"),
    states.POWERING_OFF: (lambda d, s: d.power_off(s["id"]), "stopped"),
    states.POWERING_ON: (lambda d, s: d.power_on(s), "started"),
    states.REBOOTING: (lambda d, s: d.reboot(s, hard=False), "rebooted"),
    states.REBOOTING_HARD: (lambda d, s: d.reboot(s, hard=True), "rebooted"),
    states.PAUSING: (lambda d, s: d.pause(s["id"]), "paused"),
    states.UNPAUSING: (lambda d, s: d.unpause(s["id"]), "unpaused"),
    states.SUSPENDING: (lambda d, s: d.suspend(s["id"]), "suspended"),
    states.RESUMING: (lambda d, s: d.resume(s), "resumed"),
    states.RESIZE_MIGRATING: (lambda d, s: d.migrate_disk_and_power_off(s), "migrated"),
    states.RESIZE_FINISH: (lambda d, s: d.finish_migration(s), "resized"),
    states.RESIZE_CONFIRMING: (lambda d, s: d.confirm_migration(s), "confirmed"),
    states.RESIZE_REVERTING: (lambda d, s: d.finish_revert_migration(s), "reverted"),
}


@dataclass(frozen=True)
class ImageCachePruning:
    """How often the agent prunes its host's image cache (0: never), and how
    long an unused image is kept after its last use."""

    interval: float
    min_age: float


class HostAgent:
    def __init__(
        self,
        host: str,
        driver: Driver,
        api: ComputeApi,
        capacity: Capacity | None = None,
        workers: int = 4,
        executor: ThreadPoolExecutor | None = None,
        images: ImageStore | None = None,
        network: PortBinder | None = None,
        workdir: Path | None = None,
        image_cache: ImageCachePruning | None = None,
    ):
        self.host = host
        self.driver = driver
        self.api = api
        # The image API (snapshots go there) and the network API (ports of
        # interfaces attached and detached), as the agent's service user.
        self.images = images
        self.network = network
        self.workdir = workdir
        self.capacity = capacity or Capacity()
        self._executor = executor or ThreadPoolExecutor(workers, thread_name_prefix=host)
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._consoles: dict[str, int] = {}
        self.image_cache = image_cache or ImageCachePruning(0, 0)
        self._next_prune = 0.0

    def report_body(self, powers: dict[str, int]) -> dict[str, Any]:
        info = self.driver.host_info()
        consoles = {}
        for server_id in powers:
            tail = self.driver.console_tail(server_id, CONSOLE_LIMIT)
            if tail is not None and self._consoles.get(server_id) != hash(tail):
                consoles[server_id] = tail
        body: dict[str, Any] = {
            "hypervisor_hostname": info.hypervisor_hostname,
            "hypervisor_type": info.hypervisor_type,
            "hypervisor_version": info.hypervisor_version,
            "host_ip": info.host_ip,
            "vcpus": info.vcpus,
            "memory_mb": info.memory_mb,
            "local_gb": info.local_gb,
            "cpu_allocation_ratio": self.capacity.cpu_allocation_ratio,
            "ram_allocation_ratio": self.capacity.ram_allocation_ratio,
            "disk_allocation_ratio": self.capacity.disk_allocation_ratio,
            "reserved_host_memory_mb": self.capacity.reserved_host_memory_mb,
            "resize_across_hosts": bool(getattr(self.driver, "resize_across_hosts", False)),
            "power_states": powers,
            "consoles": consoles,
        }
        if self.capacity.availability_zone:
            body["availability_zone"] = self.capacity.availability_zone
        return body

    def run_once(self) -> int:
        """One pass; the number of tasks it started."""
        powers = self.driver.power_states()
        with self._lock:
            busy = set(self._running)
        # A domain a task is changing is reported by the task, not the pass.
        body = self.report_body({k: v for k, v in powers.items() if k not in busy})
        servers = self.api.report(self.host, body)
        for server_id, tail in body["consoles"].items():
            self._consoles[server_id] = hash(tail)
        placed = {s["id"] for s in servers}
        started = 0
        for server in servers:
            if server["task_state"] in states.AGENT_TASKS and self._start(server):
                started += 1
        for server_id in set(powers) - placed - busy:
            log.warning("destroying domain of server %s: not placed on %s", server_id, self.host)
            try:
                self.driver.destroy(server_id)
            except DriverError as exc:
                log.error("could not destroy orphan %s: %s", server_id, exc)
            self._consoles.pop(server_id, None)
        self._prune_image_cache()
        return started

    def _prune_image_cache(self) -> None:
        """Every ``image_cache.interval`` seconds, the driver's pruning of
        the images its disks no longer use (drivers without a cache: none)."""
        prune = getattr(self.driver, "prune_image_cache", None)
        if prune is None or not self.image_cache.interval or time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self.image_cache.interval
        try:
            removed = prune(self.image_cache.min_age)
        except DriverError as exc:
            log.error("%s: the image cache was not pruned: %s", self.host, exc)
            return
        if removed:
            log.info("%s: removed unused cached images %s", self.host, ", ".join(removed))

    def _start(self, server: dict[str, Any]) -> bool:
        with self._lock:
            if server["id"] in self._running:
                return False
            future = self._executor.submit(self._do, server)
            self._running[server["id"]] = future
        future.add_done_callback(lambda _f, i=server["id"]: self._done(i))
        return True

    def _done(self, server_id: str) -> None:
        with self._lock:
            self._running.pop(server_id, None)

    def _call(self, task: str, server: dict[str, Any], step: Step) -> str:
        """Carry out ``task`` for ``server``; the event that reports it done."""
        if task in states.SNAPSHOT_TASKS:
            self._snapshot(server, step)
            return "snapshotted"
        if task in states.REBUILD_TASKS:
            self.driver.rebuild(server, step)
            return "rebuilt"
        if task == states.INTERFACE_ATTACHING:
            self._attach(server)
            return "interface_attached"
        if task == states.INTERFACE_DETACHING:
            self._detach(server)
            return "interface_detached"
        if task == states.DELETING:
            self.driver.destroy(server["id"])
            self._drop_unfinished_snapshot(server)
            return "deleted"
        if task not in _TASKS:
            raise DriverError(f"The task {task} is not something this host can do.")
        action, event = _TASKS[task]
        action(self.driver, server)
        return event

    def _snapshot(self, server: dict[str, Any], step: Step) -> None:
        """The server's root disk as a standalone qcow2, uploaded into the
        image the compute API made for it. A snapshot that fails deletes
        that image (as Nova does): no queued image is left behind."""
        image_id = str((server.get("task_args") or {}).get("image_id") or "")
        if not image_id:
            raise DriverError("The snapshot has no image to upload to.")
        if self.images is None or self.workdir is None:
            raise DriverError(f"Host {self.host} cannot reach the image service.")
        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / f"snapshot-{server['id']}-{image_id}.qcow2"
        try:
            if self.images.status(image_id) != "active":  # not uploaded before a restart
                step(states.IMAGE_SNAPSHOT)
                path.unlink(missing_ok=True)
                self.driver.snapshot(server, path)
                step(states.IMAGE_UPLOADING)
                self.images.upload(image_id, path)
        except BaseException:
            try:
                self.images.delete(image_id)
            except Exception as exc:
                log.error("server %s: could not delete image %s: %s", server["id"], image_id, exc)
            raise
        finally:
            path.unlink(missing_ok=True)

    def _drop_unfinished_snapshot(self, server: dict[str, Any]) -> None:
        """A server deleted before its snapshot was uploaded: the image made
        for it would stay queued for ever; it goes (as in Nova)."""
        image_id = (server.get("task_args") or {}).get("image_id")
        if not image_id or self.images is None:
            return
        try:
            if self.images.status(str(image_id)) == "queued":
                self.images.delete(str(image_id))
        except DriverError as exc:
            log.warning("server %s: snapshot image %s left: %s", server["id"], image_id, exc)

    def _attach(self, server: dict[str, Any]) -> None:
        """Bind the port to this host and plug it into the guest."""
        port_id = str((server.get("task_args") or {}).get("port_id") or "")
        port = next((p for p in server.get("ports") or [] if p["port_id"] == port_id), None)
        if port is None:
            raise DriverError(f"Port {port_id} is not one of the server's.")
        if self.network is None:
            raise DriverError(f"Host {self.host} cannot reach the network service.")
        try:
            self.network.bind(port_id, self.host)
            self.driver.attach_interface(server, port)
        except BaseException:
            # The server forgets the port when the failure is reported: it
            # goes (made for the server) or is free again (the user's).
            try:
                self.driver.detach_interface(server, port)
                self.network.release(port_id, owned=bool(port.get("owned")))
            except Exception as exc:
                log.error("server %s: could not release port %s: %s", server["id"], port_id, exc)
            raise

    def _detach(self, server: dict[str, Any]) -> None:
        """Unplug the port from the guest; then it is deleted (made for the
        server) or unbound (the user's)."""
        args = server.get("task_args") or {}
        port_id = str(args.get("port_id") or "")
        port = next((p for p in server.get("ports") or [] if p["port_id"] == port_id), None)
        if self.network is None:
            raise DriverError(f"Host {self.host} cannot reach the network service.")
        if port is not None:
            self.driver.detach_interface(server, port)
        self.network.release(port_id, owned=bool(port["owned"]) if port else False)

    def _do(self, server: dict[str, Any]) -> None:
        task = server["task_state"]
        event: dict[str, Any] = {"server_id": server["id"], "task_state": task}

        def step(next_task: str) -> None:
            """Say that the task reached ``next_task`` (a step the user sees)."""
            if next_task == event["task_state"]:
                return
            try:
                self.api.events(
                    self.host,
                    [{**event, "event": "progress", "next_task_state": next_task}],
                )
            except Exception as exc:  # only the shown step is late
                log.warning("server %s: could not report %s: %s", server["id"], next_task, exc)
                return
            event["task_state"] = next_task

        try:
            event["event"] = self._call(task, server, step)
        except DriverError as exc:
            log.error("server %s: %s failed: %s", server["id"], task, exc)
            event.update(event="failed", fault={"message": str(exc)})
        except Exception as exc:  # a driver bug must not kill the agent
            log.exception("server %s: %s failed", server["id"], task)
            event.update(event="failed", fault={"message": f"{type(exc).__name__}: {exc}"})
        try:
            self.api.events(self.host, [event])
        except Exception:
            # The next pass sees the task still set and does it again; every
            # task is idempotent.
            log.exception("server %s: could not report %s", server["id"], event["event"])

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the tasks in flight (tests, shutdown)."""
        with self._lock:
            futures = list(self._running.values())
        for future in futures:
            future.result(timeout)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
