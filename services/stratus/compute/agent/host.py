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
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from stratus.compute import states
from stratus.compute.agent.driver import Driver, DriverError

log = logging.getLogger("stratus.compute.agent")

CONSOLE_LIMIT = 64 * 1024


class ComputeApi(Protocol):
    def report(self, host: str, body: dict[str, Any]) -> list[dict[str, Any]]: ...

    def events(self, host: str, events: list[dict[str, Any]]) -> None: ...


@dataclass
class Capacity:
    """The operator's say over what the scheduler may place here."""

    availability_zone: str | None = None
    cpu_allocation_ratio: float = 4.0
    ram_allocation_ratio: float = 1.0
    disk_allocation_ratio: float = 1.0
    reserved_host_memory_mb: int = 512


# task -> (what the driver does, the event that reports it done)
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
    states.DELETING: (lambda d, s: d.destroy(s["id"]), "deleted"),
}


def _call(driver: Driver, task: str, server: dict[str, Any]) -> str:
    """Carry out ``task`` for ``server``; the event that reports it done."""
    if task not in _TASKS:
        raise DriverError(f"The task {task} is not something this host can do.")
    action, event = _TASKS[task]
    action(driver, server)
    return event


class HostAgent:
    def __init__(
        self,
        host: str,
        driver: Driver,
        api: ComputeApi,
        capacity: Capacity | None = None,
        workers: int = 4,
        executor: ThreadPoolExecutor | None = None,
    ):
        self.host = host
        self.driver = driver
        self.api = api
        self.capacity = capacity or Capacity()
        self._executor = executor or ThreadPoolExecutor(workers, thread_name_prefix=host)
        self._running: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        self._consoles: dict[str, int] = {}

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
        return started

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

    def _do(self, server: dict[str, Any]) -> None:
        task = server["task_state"]
        event: dict[str, Any] = {"server_id": server["id"], "task_state": task}
        try:
            event["event"] = _call(self.driver, task, server)
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
