"""A compute control plane with hosts: the API, the scheduler and an agent.

``ComputeStack`` runs ``stratus-api compute``, ``stratus-compute-scheduler``
and ``stratus-compute-agent`` as processes of their own, sharing identity's
database and one configuration file, as on a controller and its hosts. The
agent uses the fake driver (``fake_hosts`` hosts in one process) unless a
test gives it other ``[compute_agent]`` options. Every process is stopped at
the end, also on failure; ``kill``/``restart`` of each one is a crash test's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import BIN, ApiServer, IdentityServer, make_compute_server


@dataclass
class Process:
    argv: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        out = open(self.log, "ab")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            self.argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, sig)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    def restart(self) -> None:
        self.stop()
        self.start()

    def tail(self, lines: int = 30) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ComputeStack:
    api: ApiServer
    scheduler: Process
    agent: Process
    workdir: Path

    def stop(self) -> None:
        for process in (self.agent, self.scheduler):
            process.stop()
        self.api.stop()

    def logs(self) -> str:
        return (
            f"--- api\n{self.api.log_tail()}\n--- scheduler\n{self.scheduler.tail()}\n"
            f"--- agent\n{self.agent.tail()}"
        )


def make_compute_stack(
    workdir: Path,
    identity: IdentityServer,
    agent: dict[str, Any] | None = None,
    **compute: Any,
) -> ComputeStack:
    from tests.conftest import COMPUTE_SERVICE_PASSWORD

    api = make_compute_server(
        workdir,
        identity,
        service_down_time=compute.pop("service_down_time", 10),
        scheduler_interval=compute.pop("scheduler_interval", 0.1),
        **compute,
    )
    options = {
        "host": "fake",
        "driver": "fake",
        "fake_hosts": 2,
        "resync_interval": 0.3,
        "instances_path": workdir / "instances",
        "api_url": f"{api.url}/v2.1",
        "reserved_host_memory_mb": 0,
        **(agent or {}),
    }
    lines = [
        "",
        "[compute_agent]",
        *[f"{k} = {v}" for k, v in options.items()],
        "",
        "[compute_agent_authtoken]",
        f"auth_url = {identity.url}",
        "username = compute",
        f"password = {COMPUTE_SERVICE_PASSWORD}",
        "",
    ]
    with api.config_path.open("a") as config:
        config.write("\n".join(lines))
    config_file = str(api.config_path)
    scheduler = Process(
        [str(BIN / "stratus-compute-scheduler"), "--config-file", config_file],
        workdir / "scheduler.log",
    )
    agent_process = Process(
        [str(BIN / "stratus-compute-agent"), "--config-file", config_file],
        workdir / "agent.log",
    )
    stack = ComputeStack(api=api, scheduler=scheduler, agent=agent_process, workdir=workdir)
    try:
        scheduler.start()
        agent_process.start()
    except Exception:
        stack.stop()
        raise
    return stack


def wait_for(predicate: Any, timeout: float = 30, what: str = "", stack: Any = None) -> Any:
    """Poll ``predicate`` until it returns something true; its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    logs = f"\n{stack.logs()}" if stack is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{logs}")
