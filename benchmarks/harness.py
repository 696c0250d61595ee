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
from collections.abc import Iterator, Sequence
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


# --- a small cloud of Stratus services on loopback ------------------------------------

BIN = Path(__file__).resolve().parents[1] / ".venv" / "bin"

# component -> (catalog type, catalog name, service user, readiness path, catalog path)
SERVICES = {
    "image": ("image", "glance", "glance", "/versions", ""),
    "network": ("network", "neutron", "neutron", "/", ""),
    "compute": ("compute", "nova", "nova", "/", "/v2.1"),
}


def _bin(name: str) -> str:
    import sys

    local = Path(sys.executable).parent / name
    return str(local if local.exists() else BIN / name)


def config_text(sections: dict[str, dict[str, Any]]) -> str:
    lines = []
    for name, options in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {value}" for key, value in options.items()]
        lines.append("")
    return "\n".join(lines)


class Cloud:
    """Identity and the given services, each ``stratus-api`` with its own
    config and workers, on one SQLite file, registered in the catalog as
    their roles register them; an admin token to use them."""

    def __init__(self, base: Path):
        self.base = base
        self.urls: dict[str, str] = {}
        self.logs: dict[str, Path] = {}
        self.configs: dict[str, Path] = {}
        self.passwords: dict[str, str] = {}
        self.cold_start: dict[str, float] = {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.token = ""
        self.admin_password = ""
        self.database = f"sqlite:///{base / 'stratus.db'}"

    def service_user(self, component: str) -> str:
        return SERVICES[component][2]


def start_cloud(
    stack: contextlib.ExitStack,
    base: Path,
    services: dict[str, dict[str, Any]],
    workers: int = 2,
) -> Cloud:
    """Start identity, then ``services`` (component -> extra options of its section)."""
    import pwd
    import secrets

    env = {**os.environ, "STRATUS_SERVICE_USER": pwd.getpwuid(os.geteuid()).pw_name}
    cloud = Cloud(base)
    idir = base / "identity"
    idir.mkdir(parents=True)
    id_port = free_port()
    id_url = loopback_url(id_port)
    id_conf = idir / "stratus.conf"
    id_conf.write_text(
        config_text(
            {
                "DEFAULT": {"log_format": "json", "debug": "false"},
                "database": {"connection": cloud.database},
                "identity": {
                    "bind_host": LOOPBACK,
                    "bind_port": id_port,
                    "workers": workers,
                    "key_repository": idir / "keys",
                },
            }
        )
    )
    cloud.admin_password = secrets.token_hex(16)
    manage = [_bin("stratus-manage"), "--config-file", str(id_conf)]
    run([*manage, "db", "sync"], env=env)
    run([*manage, "token", "setup-keys"], env=env)
    run(
        [*manage, "bootstrap", "--public-url", f"{id_url}/v3", "--internal-url", f"{id_url}/v3"],
        env={**env, "STRATUS_BOOTSTRAP_PASSWORD": cloud.admin_password},
    )
    ports = {component: free_port() for component in services}
    for component in services:
        kind, name, user, _ready, path = SERVICES[component]
        cloud.passwords[component] = secrets.token_hex(16)
        cloud.urls[component] = loopback_url(ports[component])
        run(
            [*manage, "service", "register", "--type", kind, "--name", name,
             "--description", f"Stratus {component} service",
             "--public-url", cloud.urls[component] + path, "--user", user],
            env={**env, "STRATUS_SERVICE_PASSWORD": cloud.passwords[component]},
        )  # fmt: skip
    id_log = idir / "api.log"
    id_proc = spawn(
        stack, [_bin("stratus-api"), "identity", "--config-file", str(id_conf)], id_log, env
    )
    wait_answer(f"{id_url}/v3", id_proc, id_log, timeout=60)
    cloud.urls["identity"] = id_url
    cloud.processes["identity"] = id_proc
    for component, extra in services.items():
        sdir = base / component
        sdir.mkdir(parents=True)
        conf = sdir / "stratus.conf"
        conf.write_text(
            config_text(
                {
                    "DEFAULT": {"log_format": "json", "debug": "false"},
                    "database": {"connection": cloud.database},
                    component: {
                        "bind_host": LOOPBACK,
                        "bind_port": ports[component],
                        "workers": workers,
                        **extra,
                    },
                    f"{component}_authtoken": {
                        "auth_url": id_url,
                        "username": SERVICES[component][2],
                        "password": cloud.passwords[component],
                    },
                }
            )
        )
        log = sdir / "api.log"
        proc = spawn(stack, [_bin("stratus-api"), component, "--config-file", str(conf)], log, env)
        cloud.cold_start[component] = wait_answer(
            cloud.urls[component] + SERVICES[component][3], proc, log, timeout=60
        )
        cloud.configs[component] = conf
        cloud.logs[component] = log
        cloud.processes[component] = proc
    with httpx.Client(base_url=check_loopback(id_url), timeout=60, trust_env=False) as client:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"name": "Default"},
                            "password": cloud.admin_password,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
            }
        }
        response = client.post("/v3/auth/tokens", json=body)
        if response.status_code != 201:
            raise BenchmarkError(f"token issue answered {response.status_code} {response.text}")
        cloud.token = response.headers["X-Subject-Token"]
    return cloud


# --- figures ---------------------------------------------------------------------------


def percentile(values: Sequence[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    low = int(k)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def table(heads: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    out = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    return [*out, ""]
