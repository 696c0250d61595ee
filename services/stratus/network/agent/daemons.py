"""Daemons the agent starts in namespaces (dnsmasq, radvd) and finds again by their files.

A daemon is started with ``ip netns exec`` in a session of its own, with its
stderr in a temporary file (never a pipe it could keep open), so that the
agent can stop, restart or be upgraded without taking DHCP or router
advertisements down. It is found again by its command line: the program's
name and its pid-file argument, which names a path under the agent's state
directory. That also finds a daemon whose pid file was lost.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from stratus.network.agent import namespaces


def cmdline(pid: int) -> list[str]:
    """``/proc/<pid>/cmdline`` as a list; empty when the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is(argv: list[str], program: str, marker: str) -> bool:
    return bool(argv) and os.path.basename(argv[0]) == program and marker in argv


def running_pid(program: str, pidfile: Path, marker: str) -> int | None:
    """The pid in ``pidfile``, if that process is alive and is ``program`` with ``marker``."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if _is(cmdline(pid), program, marker) else None


def processes(program: str, marker: str) -> list[int]:
    """Every ``program`` process whose command line holds ``marker``."""
    return [
        int(entry)
        for entry in os.listdir("/proc")
        if entry.isdigit() and _is(cmdline(int(entry)), program, marker)
    ]


def stop(program: str, marker: str) -> None:
    """SIGTERM every such process; SIGKILL those still there after 5 s."""
    pids = processes(program, marker)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if Path(f"/proc/{p}").exists() and cmdline(p)]
        time.sleep(0.02)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start(argv: Sequence[str], namespace: str, pidfile: Path) -> int:
    """Run a daemonising ``argv`` in ``namespace``; its pid, once it wrote ``pidfile``."""
    program = os.path.basename(argv[0])
    pidfile.unlink(missing_ok=True)
    with tempfile.TemporaryFile("w+") as errors:
        result = subprocess.run(
            ["ip", "netns", "exec", namespace, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,
            check=False,
            timeout=30,
        )
        errors.seek(0)
        message = errors.read().strip()
    if result.returncode != 0:
        raise namespaces.CommandError(f"{program} failed to start ({result.returncode}): {message}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            return int(pidfile.read_text().strip())
        time.sleep(0.02)
    raise namespaces.CommandError(f"{program} started but wrote no pid file")


def write(path: Path, text: str) -> bool:
    """Write ``path`` atomically (mode 0644) if its text differs; True if it changed."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    temporary.chmod(0o644)
    os.replace(temporary, path)
    return True
