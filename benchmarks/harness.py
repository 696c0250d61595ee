"""What the benchmarks share: their own processes on loopback, and cleaning up.

Every server a benchmark starts runs in a session of its own, so that
``stop_group`` stops it and every worker it forked; ``spawn`` registers that
on an ``ExitStack`` so an error or Ctrl-C still cleans up. Load only ever
goes to 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import platform
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

MiB = 1024 * 1024
GiB = 1024 * MiB


def parse_size(text: str) -> int:
    """``4K``, ``64 MiB``, ``1G`` ... in bytes (powers of 1024)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(i?B)?\s*", text, re.IGNORECASE)
    if not match:
        raise ValueError(text)
    power = " KMGT".index(match.group(2).upper() or " ")
    return int(match.group(1)) * 1024**power


def size_label(size: int) -> str:
    """The largest whole binary unit of ``size`` (``4 KiB``, ``64 MiB``, ``1000 B``)."""
    for unit, factor in (("T", 1024 * GiB), ("G", GiB), ("M", MiB), ("K", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}iB"
    return f"{size} B"


LOOPBACK = "127.0.0.1"


class BenchmarkError(Exception):
    """A server or cluster could not be prepared; the message says why."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def loopback_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def check_loopback(url: str) -> str:
    """Refuse any target but this machine's loopback address."""
    if urlsplit(url).hostname != LOOPBACK:
        raise BenchmarkError(f"refusing to send load to {url}: only {LOOPBACK} is a target")
    return url


def stop_group(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a process started with ``start_new_session`` and everything in its group."""
    pgid = proc.pid  # the leader of its own session and group
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if proc.poll() is None:
            os.killpg(pgid, signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(pgid, signal.SIGKILL)
                proc.wait(grace)
        # Workers that outlived their leader.
        os.killpg(pgid, signal.SIGKILL)


def spawn(
    stack: contextlib.ExitStack, cmd: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=env,
        )
    stack.callback(stop_group, proc)
    return proc


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run a setup command; its output goes into the error if it fails."""
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchmarkError(f"{' '.join(cmd[:3])} did not finish within {timeout:.0f} s") from exc
    if result.returncode != 0:
        raise BenchmarkError(
            f"{' '.join(cmd[:4])} failed ({result.returncode}):\n"
            + tail(result.stdout + result.stderr)
        )
    return result.stdout


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.splitlines()[-lines:])


def log_tail(path: Path) -> str:
    return tail(path.read_text(errors="replace")) if path.exists() else ""


def wait_answer(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> float:
    """Seconds from now until ``url`` answers 200 (the process must stay alive)."""
    started = time.perf_counter()
    deadline = started + timeout
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.perf_counter() < deadline:
            if proc.poll() is not None:
                raise BenchmarkError(f"server exited at start:\n{log_tail(log)}")
            try:
                if client.get(check_loopback(url)).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
    raise BenchmarkError(f"server did not answer within {timeout:.0f} s:\n{log_tail(log)}")


@contextlib.contextmanager
def cleanup_stack() -> Iterator[contextlib.ExitStack]:
    """An ExitStack whose cleanup a second Ctrl-C cannot cut short."""
    stack = contextlib.ExitStack()
    try:
        yield stack
    finally:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            stack.close()
        finally:
            signal.signal(signal.SIGINT, previous)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so cleanup runs."""

    def interrupt(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = {s: signal.signal(s, interrupt) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def machine_description() -> str:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, StopIteration):
        kb = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        mem = f", {kb / 1024 / 1024:.1f} GiB RAM"
    distro = ""
    with contextlib.suppress(OSError):
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"') + ", "
    return (
        f"{distro}Linux {platform.release()} {platform.machine()}, {os.cpu_count()} CPUs"
        f"{' (' + model + ')' if model else ''}{mem}, Python {platform.python_version()}"
    )
