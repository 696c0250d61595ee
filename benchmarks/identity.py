#!/usr/bin/env python3
"""Identity benchmark: Stratus next to upstream Keystone, in one run.

Prints, as Markdown tables, the throughput (req/s) and p50/p99 latency of

- token issue (password method, project scope): ``POST /v3/auth/tokens``,
- token validation: ``GET /v3/auth/tokens`` (caller's token + subject token),
- project list: ``GET /v3/projects``,
- the version document ``GET /v3`` (no token, no database: the HTTP floor),

at each concurrency (default 1, 8 and 64 clients), for Stratus configured as
in production (``stratus-api identity`` with ``workers = 2``) on SQLite and on
PostgreSQL (a throwaway cluster started here), and for upstream Keystone
30.0.0 as the reference (its own virtualenv, SQLite, Fernet, uwsgi with two
processes, no memcached: see shared BENCHMARKS.md). Where Keystone cannot be
installed or started, the published reference figures are printed instead,
labelled as not measured here. Also printed: the cost of one password hash
alone (the floor under every password-method issue), each server's memory and
its cold start to the first answer.

The load generator is in this script (asyncio + httpx, closed loop: each
client sends its next request when the previous one answered). Every request
goes to 127.0.0.1; each cell stops after ``--duration`` seconds or
``--max-requests`` requests, whichever comes first. Every process and
temporary directory started here is removed at exit, also on Ctrl-C.

    .venv/bin/python benchmarks/identity.py                  # everything
    .venv/bin/python benchmarks/identity.py --duration 5 --concurrency 1,8 \
        --backends sqlite --no-reference

No figure printed here is a pass/fail threshold.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import grp
import json
import math
import os
import pwd
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness import (
    LOOPBACK,
    BenchmarkError,
    check_loopback,
    cleanup_stack,
    free_port,
    loopback_url,
    machine_description,
    run,
    signals_as_interrupt,
    spawn,
    wait_answer,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

KEYSTONE_VERSION = "30.0.0"
DEFAULT_KEYSTONE_VENV = ROOT / ".venv-keystone"

OPERATIONS = ("issue", "validate", "projects", "version")
TITLES = {
    "issue": "Token issue (password, project scope): POST /v3/auth/tokens",
    "validate": "Token validation: GET /v3/auth/tokens",
    "projects": "Project list: GET /v3/projects",
    "version": "Version document: GET /v3 (no token, no database: the HTTP floor)",
}
SHORT = {
    "issue": "token issue",
    "validate": "token validation",
    "projects": "project list",
    "version": "version document",
}

# shared BENCHMARKS.md, "Identity: upstream Keystone 30.0.0" (req/s by concurrency).
PUBLISHED = {
    "issue": {1: 2.5, 8: 4.9, 64: 5.0},
    "validate": {1: 2.1, 8: 3.9, 64: 3.7},
    "projects": {1: 4.5, 8: 8.1, 64: 9.8},
}
PUBLISHED_BCRYPT_MS = 235.0
PUBLISHED_RSS = "247-279 MB"
PUBLISHED_COLD_START = 1.7
PUBLISHED_LABEL = "published reference (not measured here)"

SUBJECT_TOKENS = 8  # distinct subject tokens the validation cells cycle through


@dataclass
class Memory:
    rss_mb: list[float]
    peak_mb: list[float]
    pss_mb: float | None

    def describe(self) -> str:
        parts = " + ".join(f"{v:.0f}" for v in self.rss_mb)
        peaks = " + ".join(f"{v:.0f}" for v in self.peak_mb)
        pss = f"; PSS {self.pss_mb:.0f} MB" if self.pss_mb is not None else ""
        return (
            f"{sum(self.rss_mb):.0f} MB ({parts}){pss}; peak {sum(self.peak_mb):.0f} MB ({peaks})"
        )


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(stat.split("/")[2]))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def memory_of(root: int) -> Memory | None:
    """RSS of the server's processes (leader and workers) now and at their peak, and PSS."""
    rss: list[float] = []
    peak: list[float] = []
    pss_total: float | None = 0.0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        fields = {
            line.split(":")[0]: int(line.split()[1])
            for line in status.splitlines()
            if line.startswith(("VmRSS:", "VmHWM:"))
        }
        if not fields.get("VmRSS"):
            continue
        rss.append(fields["VmRSS"] / 1024)
        peak.append(fields.get("VmHWM", 0) / 1024)
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss_kb = next(
                int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:")
            )
            if pss_total is not None:
                pss_total += pss_kb / 1024
        except (OSError, StopIteration):
            pss_total = None
    return Memory(rss, peak, pss_total) if rss else None


# --- servers ------------------------------------------------------------------


@dataclass
class Target:
    """A running identity server and what the load generator needs to reach it."""

    key: str
    label: str
    url: str
    password: str
    proc: subprocess.Popen[bytes]
    log: Path
    cold_start: float
    project_count: int = 0
    admin_token: str = ""
    subjects: list[str] = field(default_factory=list)
    memory: Memory | None = None


def service_user_env() -> dict[str, str]:
    # Keys stay with the user running this script (stratus-manage would hand
    # them to a "stratus" user where one exists).
    return {**os.environ, "STRATUS_SERVICE_USER": pwd.getpwuid(os.geteuid()).pw_name}


def start_stratus(
    stack: contextlib.ExitStack, workdir: Path, key: str, label: str, database: str
) -> Target:
    workdir.mkdir(parents=True)
    port = free_port()
    config = workdir / "stratus.conf"
    config.write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            log_format = json
            debug = false

            [database]
            connection = {database}

            [identity]
            bind_host = {LOOPBACK}
            bind_port = {port}
            workers = 2
            key_repository = {workdir / "keys"}
            """
        )
    )
    password = secrets.token_hex(16)
    manage = [str(BIN / "stratus-manage"), "--config-file", str(config)]
    env = service_user_env()
    run([*manage, "db", "sync"], env=env)
    run([*manage, "token", "setup-keys"], env=env)
    url = loopback_url(port)
    run(
        [*manage, "bootstrap", "--public-url", f"{url}/v3", "--internal-url", f"{url}/v3"],
        env={**env, "STRATUS_BOOTSTRAP_PASSWORD": password},
    )
    log = workdir / "api.log"
    proc = spawn(
        stack, [str(BIN / "stratus-api"), "identity", "--config-file", str(config)], log, env
    )
    cold = wait_answer(f"{url}/v3", proc, log, timeout=60)
    return Target(key, label, url, password, proc, log, cold)


def pg_bindir(explicit: str | None) -> Path:
    candidates = [explicit] if explicit else []
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True
    )
    which = shutil.which("initdb")
    if which:
        candidates.append(str(Path(which).parent))
    for candidate in candidates:
        if candidate and (Path(candidate) / "initdb").exists():
            return Path(candidate)
    raise BenchmarkError("PostgreSQL's initdb was not found (apt-get install postgresql)")


def start_postgresql(stack: contextlib.ExitStack, bindir: Path) -> tuple[str, str]:
    """A throwaway cluster on a free loopback port; (SQLAlchemy URL, server version)."""
    try:
        import psycopg
        from psycopg import sql
    except ImportError as exc:
        raise BenchmarkError(f"the psycopg driver is missing: {exc}") from exc
    as_user: list[str] = []
    owner: pwd.struct_passwd | None = None
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root.
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise BenchmarkError("running as root needs a 'postgres' user") from exc
        as_user = ["runuser", "-u", "postgres", "--"]
    base = Path(tempfile.mkdtemp(prefix="stratus-bench-pg-"))
    stack.callback(shutil.rmtree, base, True)
    superpass, password = secrets.token_hex(16), secrets.token_hex(16)
    pwfile = base / "pwfile"
    pwfile.write_text(superpass + "\n")
    if owner is not None:
        for path in (base, pwfile):
            os.chown(path, owner.pw_uid, owner.pw_gid)
    data, port = base / "data", free_port()
    run(
        [
            *as_user,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}",
        ]
    )
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]

    def stop() -> None:
        try:
            run([*pg_ctl, "-m", "fast", "-w", "-t", "30", "stop"], timeout=60)
        except BenchmarkError:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int((data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)
                time.sleep(1)
                os.kill(pid, signal.SIGKILL)

    stack.callback(stop)
    options = f"-p {port} -k {base} -c listen_addresses={LOOPBACK}"
    run([*pg_ctl, "-l", str(base / "postgresql.log"), "-o", options, "-w", "-t", "60", "start"])
    with psycopg.connect(
        host=LOOPBACK, port=port, user="postgres", password=superpass, dbname="postgres"
    ) as conn:
        conn.autocommit = True
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        conn.execute(sql.SQL("CREATE ROLE stratus LOGIN PASSWORD {}").format(sql.Literal(password)))
        conn.execute("CREATE DATABASE stratus OWNER stratus")
    return f"postgresql+psycopg://stratus:{password}@{LOOPBACK}:{port}/stratus", version


def keystone_python(explicit: str | None) -> str:
    if explicit:
        return explicit
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def install_keystone(venv: Path, python: str, log: Path) -> None:
    """``pip install keystone==30.0.0 uwsgi`` into a virtualenv of its own."""
    print(f"installing keystone=={KEYSTONE_VERSION} and uwsgi into {venv} ...", file=sys.stderr)
    try:
        run([python, "-m", "venv", str(venv)], timeout=300)
        output = run(
            [
                str(venv / "bin" / "pip"),
                "install",
                "-q",
                # uwsgi links the libpython it was built with: a cached wheel
                # built by another interpreter of the same version fails at start.
                "--no-cache-dir",
                f"keystone=={KEYSTONE_VERSION}",
                "uwsgi",
            ],
            timeout=1800,
        )
        log.write_text(output)
    except BenchmarkError:
        shutil.rmtree(venv, ignore_errors=True)  # a half-made venv would look usable
        raise


def start_keystone(
    stack: contextlib.ExitStack, workdir: Path, venv: Path, python: str | None, install: bool
) -> Target:
    bindir = venv / "bin"
    if not (bindir / "uwsgi").exists() or not (bindir / "keystone-manage").exists():
        if not install:
            raise BenchmarkError(f"no Keystone virtualenv at {venv} (--install-reference)")
        workdir.mkdir(parents=True, exist_ok=True)
        install_keystone(venv, keystone_python(python), workdir / "pip.log")
    version = run(
        [
            str(bindir / "python"),
            "-c",
            "import keystone, importlib.metadata as m;print(m.version('keystone'))",
        ]
    ).strip()
    if version != KEYSTONE_VERSION:
        raise BenchmarkError(f"{venv} has keystone {version}, not {KEYSTONE_VERSION}")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = loopback_url(port)
    conf = workdir / "keystone.conf"
    # No [cache] section on purpose: Keystone's own default is `enabled = true`
    # with oslo.cache's null backend, i.e. no shared cache but request-local
    # memoization. Writing `enabled = false` is not the default and makes its
    # token validation several times slower.
    conf.write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            debug = false
            use_stderr = true

            [database]
            connection = sqlite:///{workdir / "keystone.db"}

            [token]
            provider = fernet

            [fernet_tokens]
            key_repository = {workdir / "fernet-keys"}

            [fernet_receipts]
            key_repository = {workdir / "fernet-receipts"}

            [credential]
            key_repository = {workdir / "credential-keys"}
            """
        )
    )
    manage = [str(bindir / "keystone-manage"), "--config-file", str(conf)]
    user = pwd.getpwuid(os.geteuid())
    group = user.pw_gid
    ids = ["--keystone-user", user.pw_name, "--keystone-group", str(group)]
    with contextlib.suppress(KeyError):
        ids[-1] = grp.getgrgid(group).gr_name
    run([*manage, "db_sync"])
    run([*manage, "fernet_setup", *ids])
    run([*manage, "credential_setup", *ids])
    password = secrets.token_hex(16)
    run(
        [
            *manage,
            "bootstrap",
            "--bootstrap-password",
            password,
            "--bootstrap-region-id",
            "RegionOne",
            *(f"--bootstrap-{kind}-url={url}/v3" for kind in ("admin", "internal", "public")),
        ]
    )
    log = workdir / "uwsgi.log"
    env = {**os.environ, "OS_KEYSTONE_CONFIG_FILES": str(conf)}
    # As devstack runs it, less the Apache in front: two single-threaded
    # processes, each loading the application itself, one connection per request.
    proc = spawn(
        stack,
        [
            str(bindir / "uwsgi"),
            "--http-socket",
            f"{LOOPBACK}:{port}",
            "--module",
            "keystone.wsgi.api:application",
            "--virtualenv",
            str(venv),
            "--master",
            "--processes",
            "2",
            "--threads",
            "1",
            "--lazy-apps",
            "--need-app",
            "--die-on-term",
            "--thunder-lock",
            "--add-header",
            "Connection: close",
            "--buffer-size",
            "65535",
        ],
        log,
        env,
    )
    cold = wait_answer(f"{url}/v3", proc, log, timeout=120)
    return Target("keystone", f"Keystone {KEYSTONE_VERSION}", url, password, proc, log, cold)


# --- load generator -------------------------------------------------------------


def issue_body(password: str) -> dict[str, Any]:
    return {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {"name": "admin", "domain": {"name": "Default"}, "password": password}
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }


@dataclass
class Request:
    method: str
    path: str
    expect: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


def request_maker(target: Target, operation: str) -> Callable[[int], Request]:
    if operation == "issue":
        body = json.dumps(issue_body(target.password)).encode()
        req = Request("POST", "/v3/auth/tokens", 201, {"Content-Type": "application/json"}, body)
        return lambda _n: req
    if operation == "validate":
        subjects = target.subjects
        return lambda n: Request(
            "GET",
            "/v3/auth/tokens",
            200,
            {"X-Auth-Token": target.admin_token, "X-Subject-Token": subjects[n % len(subjects)]},
        )
    if operation == "projects":
        req = Request("GET", "/v3/projects", 200, {"X-Auth-Token": target.admin_token})
        return lambda _n: req
    if operation == "version":
        req = Request("GET", "/v3", 200)
        return lambda _n: req
    raise ValueError(operation)


@dataclass
class Cell:
    requests: int = 0
    errors: int = 0
    elapsed: float = 0.0
    cpu: float = 0.0
    latencies: list[float] = field(default_factory=list)
    first_error: str | None = None

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile in milliseconds."""
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        index = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
        return ordered[index] * 1000


async def load(
    base_url: str,
    make: Callable[[int], Request],
    concurrency: int,
    duration: float,
    max_requests: int,
    timeout: float,
) -> Cell:
    """Closed loop: ``concurrency`` clients, each sending its next request when answered.

    Each client has a connection of its own (one ``AsyncClient`` each): a
    single shared pool of 64 connections costs httpx several milliseconds of
    CPU per request, taken from the cores the server runs on.
    """
    check_loopback(base_url)
    cell = Cell()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout, trust_env=False)
        for _ in range(concurrency)
    ]
    started = time.perf_counter()
    cpu_started = time.process_time()
    deadline = started + duration

    async def client_loop(client: httpx.AsyncClient) -> None:
        async with client:
            while time.perf_counter() < deadline and cell.requests < max_requests:
                number = cell.requests
                cell.requests += 1
                req = make(number)
                sent = time.perf_counter()
                try:
                    response = await client.request(
                        req.method, req.path, headers=req.headers, content=req.body
                    )
                    answered = time.perf_counter()
                    if response.status_code == req.expect:
                        cell.latencies.append(answered - sent)
                        continue
                    problem = f"{response.status_code} {response.text[:200]}"
                except httpx.HTTPError as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                cell.errors += 1
                cell.first_error = cell.first_error or problem

    # In-flight requests finish after the deadline, within their timeout.
    gathered = asyncio.gather(*(client_loop(client) for client in clients))
    try:
        await asyncio.wait_for(gathered, duration + timeout + 10)
    except TimeoutError:
        cell.errors += 1
        cell.first_error = cell.first_error or "cell cut off: requests still unanswered"
    finally:
        # On Ctrl-C the clients are cancelled: nothing left to report.
        if gathered.done() and not gathered.cancelled():
            with contextlib.suppress(asyncio.CancelledError):
                gathered.exception()
    cell.elapsed = time.perf_counter() - started
    cell.cpu = time.process_time() - cpu_started
    return cell


def prepare(target: Target, projects: int, timeout: float) -> None:
    """Caller token, subject tokens to validate, and projects to list."""
    with httpx.Client(base_url=check_loopback(target.url), timeout=timeout, trust_env=False) as c:

        def token() -> str:
            response = c.post("/v3/auth/tokens", json=issue_body(target.password))
            if response.status_code != 201:
                raise BenchmarkError(f"{target.label}: token issue answered {response.text[:300]}")
            return response.headers["X-Subject-Token"]

        target.admin_token = token()
        target.subjects = [token() for _ in range(SUBJECT_TOKENS)]
        headers = {"X-Auth-Token": target.admin_token}
        for n in range(projects):
            body = {"project": {"name": f"bench-{n:03d}", "domain_id": "default"}}
            response = c.post("/v3/projects", json=body, headers=headers)
            if response.status_code != 201:
                raise BenchmarkError(f"{target.label}: project create answered {response.text}")
        listed = c.get("/v3/projects", headers=headers)
        if listed.status_code != 200:
            raise BenchmarkError(f"{target.label}: project list answered {listed.text[:300]}")
        target.project_count = len(listed.json()["projects"])


def warm_up(target: Target, timeout: float) -> None:
    """A few requests of each kind so both workers have their pools and imports."""
    for operation in OPERATIONS:
        asyncio.run(load(target.url, request_maker(target, operation), 4, 60.0, 8, timeout))


# --- password hash floor --------------------------------------------------------------


@dataclass
class HashCost:
    name: str
    parameters: str
    hash_ms: float | None
    verify_ms: float | None
    note: str = ""


def argon2_cost(runs: int) -> HashCost:
    from stratus.identity import passwords

    hasher = passwords._HASHER
    params = (
        f"t={hasher.time_cost}, m={hasher.memory_cost // 1024} MiB, p={hasher.parallelism}"
        f" (services/stratus/identity/passwords.py)"
    )
    secret = secrets.token_hex(16)
    hashes, verifies = [], []
    stored = passwords.hash_password(secret)
    for _ in range(runs):
        t0 = time.perf_counter()
        passwords.hash_password(secret)
        t1 = time.perf_counter()
        passwords.verify_password(secret, stored)
        verifies.append(time.perf_counter() - t1)
        hashes.append(t1 - t0)
    return HashCost(
        "Argon2id (Stratus)",
        params,
        statistics.median(hashes) * 1000,
        statistics.median(verifies) * 1000,
    )


BCRYPT_PROBE = """
import bcrypt, json, statistics, sys, time
runs = int(sys.argv[1]); pw = b"benchmark-password"
stored = bcrypt.hashpw(pw, bcrypt.gensalt(12))
h, v = [], []
for _ in range(runs):
    t0 = time.perf_counter(); bcrypt.hashpw(pw, bcrypt.gensalt(12)); t1 = time.perf_counter()
    bcrypt.checkpw(pw, stored); v.append(time.perf_counter() - t1); h.append(t1 - t0)
print(json.dumps([statistics.median(h) * 1000, statistics.median(v) * 1000, bcrypt.__version__]))
"""


def bcrypt_cost(runs: int, keystone_venv: Path) -> HashCost:
    """bcrypt at cost 12 (Keystone's default), from this venv or Keystone's."""
    pythons = [sys.executable, str(keystone_venv / "bin" / "python")]
    for python in pythons:
        if not Path(python).exists():
            continue
        try:
            out = run([python, "-c", BCRYPT_PROBE, str(runs)], timeout=120)
        except BenchmarkError:
            continue
        hash_ms, verify_ms, version = json.loads(out)
        where = "this venv" if python == sys.executable else "Keystone's venv"
        return HashCost(
            "bcrypt (Keystone)", f"cost 12 (bcrypt {version}, {where})", hash_ms, verify_ms
        )
    return HashCost(
        "bcrypt (Keystone)",
        "cost 12",
        None,
        PUBLISHED_BCRYPT_MS,
        f"bcrypt not installed here; {PUBLISHED_LABEL}",
    )


# --- report -------------------------------------------------------------------------


def fmt_rate(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def fmt_ms(value: float) -> str:
    if value != value:  # NaN: no successful request
        return "—"
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


@dataclass
class Results:
    concurrency: list[int]
    cells: dict[tuple[str, str, int], Cell] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    hashes: list[HashCost] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def print_report(res: Results, args: argparse.Namespace, header: list[str]) -> None:
    out: list[str] = [*header, ""]
    stratus_keys = [k for k in ("sqlite", "postgresql") if k in res.targets]
    reference_measured = "keystone" in res.targets
    ref_name = (
        f"Keystone {KEYSTONE_VERSION} (SQLite)"
        if reference_measured
        else f"Keystone {KEYSTONE_VERSION}, {PUBLISHED_LABEL}"
    )
    for operation in args.operations:
        extra = ""
        if operation == "projects":
            counts = {t.project_count for t in res.targets.values()}
            extra = f" ({'/'.join(str(c) for c in sorted(counts))} projects)" if counts else ""
        out += [f"### {TITLES[operation]}{extra}", ""]
        heads = ["clients"]
        for key in stratus_keys:
            name = "SQLite" if key == "sqlite" else "PostgreSQL"
            heads += [f"Stratus {name} req/s", "p50 / p99 ms"]
        heads += [f"{ref_name} req/s", "p50 / p99 ms"]
        for key in stratus_keys:
            name = "SQLite" if key == "sqlite" else "PostgreSQL"
            heads.append(f"{name} ÷ Keystone" + ("" if reference_measured else " (published)"))
        out.append("| " + " | ".join(heads) + " |")
        out.append("|" + "---|" * len(heads))
        for conc in res.concurrency:
            row = [str(conc)]
            for key in stratus_keys:
                row += cell_columns(res.cells.get((key, operation, conc)))
            if reference_measured:
                ref_cell = res.cells.get(("keystone", operation, conc))
                row += cell_columns(ref_cell)
                ref_rate = ref_cell.rps if ref_cell and ref_cell.latencies else None
            else:
                ref_rate = PUBLISHED.get(operation, {}).get(conc)
                row += [fmt_rate(ref_rate), "—"]
            for key in stratus_keys:
                mine = res.cells.get((key, operation, conc))
                if mine is None or not mine.latencies or not ref_rate:
                    row.append("—")
                else:
                    row.append(f"{mine.rps / ref_rate:.2f}")
            out.append("| " + " | ".join(row) + " |")
        out.append("")

    out += ["### Password hash alone (one core, median)", ""]
    out.append("| hash | parameters | hash ms | verify ms | verifies/s ceiling on all cores |")
    out.append("|---|---|---|---|---|")
    cores = os.cpu_count() or 1
    for h in res.hashes:
        ceiling = f"{cores * 1000 / h.verify_ms:.0f}" if h.verify_ms else "—"
        verify = fmt_ms(h.verify_ms) if h.verify_ms is not None else "—"
        hashed = fmt_ms(h.hash_ms) if h.hash_ms is not None else "—"
        params = h.parameters + (f"; {h.note}" if h.note else "")
        out.append(f"| {h.name} | {params} | {hashed} | {verify} | {ceiling} |")
    out.append("")

    out += ["### Servers", ""]
    out.append("| server | cold start to first answer | RSS after the load (processes); peak RSS |")
    out.append("|---|---|---|")
    for target in res.targets.values():
        memory = target.memory.describe() if target.memory else "—"
        out.append(f"| {target.label} | {target.cold_start:.2f} s | {memory} |")
    if not reference_measured:
        out.append(
            f"| Keystone {KEYSTONE_VERSION}, {PUBLISHED_LABEL} | {PUBLISHED_COLD_START} s"
            f" | {PUBLISHED_RSS} (two workers) |"
        )
    out.append("")

    out += ["### Every cell", ""]
    out.append(
        "| server | operation | clients | answered | errors | req/s | p50 ms | p99 ms"
        " | max ms | load generator CPU ms/req |"
    )
    out.append("|---|---|---|---|---|---|---|---|---|---|")
    for (key, operation, conc), cell in res.cells.items():
        label = res.targets[key].label if key in res.targets else key
        answered = len(cell.latencies)
        top = max(cell.latencies) * 1000 if cell.latencies else float("nan")
        cpu = cell.cpu * 1000 / cell.requests if cell.requests else float("nan")
        out.append(
            f"| {label} | {SHORT[operation]} | {conc} | {answered} | {cell.errors}"
            f" | {fmt_rate(cell.rps)} | {fmt_ms(cell.percentile(50))}"
            f" | {fmt_ms(cell.percentile(99))} | {fmt_ms(top)} | {cpu:.2f} |"
        )
    out.append("")
    errors = [
        f"- {res.targets[k].label if k in res.targets else k}, {SHORT[o]}, {c} clients: "
        f"{cell.errors} errors, first: "
        f"{cell.first_error}"
        for (k, o, c), cell in res.cells.items()
        if cell.errors
    ]
    notes = res.notes + errors + [f"- {name}: not run: {why}" for name, why in res.failed.items()]
    if notes:
        out += ["Notes:", "", *notes, ""]
    print("\n".join(out), flush=True)


def cell_columns(cell: Cell | None) -> list[str]:
    if cell is None or not cell.latencies:
        return ["—", "—"]
    mark = "!" if cell.errors else ""
    return [
        fmt_rate(cell.rps) + mark,
        f"{fmt_ms(cell.percentile(50))} / {fmt_ms(cell.percentile(99))}",
    ]


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per cell (8)")
    parser.add_argument("--concurrency", default="1,8,64", help="clients per cell (1,8,64)")
    parser.add_argument(
        "--backends", default="sqlite,postgresql", help="Stratus databases (sqlite,postgresql)"
    )
    parser.add_argument(
        "--operations",
        default=",".join(OPERATIONS),
        help="issue,validate,projects,version (all)",
    )
    parser.add_argument(
        "--max-requests", type=int, default=50_000, help="most requests per cell (50000)"
    )
    parser.add_argument(
        "--request-timeout", type=float, default=60.0, help="seconds per request (60)"
    )
    parser.add_argument("--projects", type=int, default=20, help="projects created to list (20)")
    parser.add_argument("--hash-runs", type=int, default=5, help="timed hashes of each kind (5)")
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="do not start Keystone; print the published reference figures",
    )
    parser.add_argument(
        "--install-reference",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="pip-install keystone and uwsgi into --keystone-venv when missing (default: yes)",
    )
    parser.add_argument("--keystone-venv", type=Path, default=DEFAULT_KEYSTONE_VENV)
    parser.add_argument("--keystone-python", help="Python for a new Keystone venv")
    parser.add_argument("--pg-bindir", help="directory of initdb and pg_ctl")
    parser.add_argument("--keep-temp", action="store_true", help="keep logs (not processes)")
    args = parser.parse_args(argv)
    try:
        args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    except ValueError:
        parser.error("--concurrency takes numbers separated by commas")
    args.backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    args.operations = [o.strip() for o in args.operations.split(",") if o.strip()]
    if not args.concurrency or min(args.concurrency) < 1 or max(args.concurrency) > 512:
        parser.error("--concurrency: between 1 and 512 clients")
    if unknown := set(args.backends) - {"sqlite", "postgresql"}:
        parser.error(f"--backends: unknown {sorted(unknown)}")
    if unknown := set(args.operations) - set(OPERATIONS):
        parser.error(f"--operations: unknown {sorted(unknown)}")
    if not 0 < args.duration <= 600:
        parser.error("--duration: more than 0 and at most 600 seconds")
    if args.max_requests < 1:
        parser.error("--max-requests: at least 1")
    return args


def measure(target: Target, res: Results, args: argparse.Namespace) -> None:
    prepare(target, args.projects, args.request_timeout)
    warm_up(target, args.request_timeout)
    for operation in args.operations:
        make = request_maker(target, operation)
        for conc in args.concurrency:
            print(f"  {target.label}: {SHORT[operation]}, {conc} clients ...", file=sys.stderr)
            cell = asyncio.run(
                load(target.url, make, conc, args.duration, args.max_requests, args.request_timeout)
            )
            res.cells[(target.key, operation, conc)] = cell
    target.memory = memory_of(target.proc.pid)


def run_stratus(backend: str, base: Path, res: Results, args: argparse.Namespace) -> None:
    label = "Stratus SQLite" if backend == "sqlite" else "Stratus PostgreSQL"
    print(f"{label}: starting ...", file=sys.stderr)
    with cleanup_stack() as stack:
        try:
            if backend == "sqlite":
                url = f"sqlite:///{base / 'sqlite' / 'stratus.db'}"
            else:
                url, version = start_postgresql(stack, pg_bindir(args.pg_bindir))
                label = f"Stratus PostgreSQL {version}"
            target = start_stratus(stack, base / backend, backend, label, url)
            res.targets[backend] = target
            measure(target, res, args)
        except (BenchmarkError, httpx.HTTPError) as exc:
            res.targets.pop(backend, None)
            res.failed[label] = str(exc)
            print(f"{label}: {exc}", file=sys.stderr)


def run_reference(base: Path, res: Results, args: argparse.Namespace) -> None:
    if args.no_reference:
        res.notes.append(f"- Keystone not started (--no-reference): {PUBLISHED_LABEL}.")
        return
    print(f"Keystone {KEYSTONE_VERSION}: starting ...", file=sys.stderr)
    with cleanup_stack() as stack:
        try:
            target = start_keystone(
                stack,
                base / "keystone",
                args.keystone_venv,
                args.keystone_python,
                args.install_reference,
            )
            res.targets["keystone"] = target
            measure(target, res, args)
            res.notes.append(
                f"- Keystone {KEYSTONE_VERSION} measured here: uwsgi, 2 processes of 1 thread, "
                "SQLite, Fernet, no `[cache]` section (Keystone's default: no shared cache, "
                "request-local memoization only), `Connection: close` as devstack sets it."
            )
        except (BenchmarkError, httpx.HTTPError) as exc:
            res.targets.pop("keystone", None)
            reason = " ".join(str(exc).split())[:600]
            res.notes.append(
                f"- Keystone could not be measured here ({reason}): {PUBLISHED_LABEL}."
            )
            print(f"Keystone: {exc}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = Results(args.concurrency)
    started = datetime.now(UTC)
    header = [
        f"## Identity benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {machine_description()}; load average before the run: {load_average()}.",
        f"- Cells: {args.duration:g} s or {args.max_requests} requests each, closed loop at "
        f"{', '.join(map(str, args.concurrency))} clients; load generator: one asyncio process "
        "with httpx (keep-alive where the server allows it) on the same cores, "
        f"to {LOOPBACK} only.",
        "- Stratus: `stratus-api identity` with `workers = 2`, JSON access log to a file; "
        "SQLite (WAL) in a temp dir; PostgreSQL: a throwaway cluster with default settings.",
    ]
    with signals_as_interrupt(), cleanup_stack() as stack:
        base = Path(tempfile.mkdtemp(prefix="stratus-bench-"))
        if args.keep_temp:
            print(f"logs kept in {base}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, base, True)
        for backend in args.backends:
            run_stratus(backend, base, res, args)
        run_reference(base, res, args)
        res.hashes.append(argon2_cost(args.hash_runs))
        res.hashes.append(bcrypt_cost(args.hash_runs, args.keystone_venv))
        header.append(
            f"- Load average after the run: {load_average()} "
            "(other work on the machine shows here and skews every column alike)."
        )
        print_report(res, args, header)
    return 1 if res.failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process and temp dir started here was removed", file=sys.stderr)
        sys.exit(130)
