#!/usr/bin/env python3
"""Network benchmark: the port API's throughput and the agent's convergence at scale.

Prints, as Markdown tables:

1. **Port creation through the API**: ``stratus-api identity`` and
   ``stratus-api network`` as in production (``workers = 2`` each, SQLite,
   the network service registered with ``stratus-manage service register``),
   one network with a /16 subnet, then ``--ports`` ports (500) created with
   ``POST /v2.0/ports`` by 1, 8 and 32 threads (``--concurrency``), each
   thread with its own httpx client: req/s and p50/p95 latency; then one bulk
   request of ``--bulk`` ports (100) and its time per port. After each round
   every fixed IP must be distinct (listed back from the API): a duplicate is
   an error, not a figure. The ports are deleted between rounds (untimed), and
   the subnet and network at the end.
2. **The agent's convergence** on a simulated host (a process with private
   mount and network namespaces, as ``tests/agent/conftest.py`` makes them;
   the machine's own namespace is never touched): one VXLAN network with a
   /20 subnet, its DHCP port on the host and N guest ports bound there
   (``--host-ports``, 100, 500, 1000), each with its tap made first (``ip
   tuntap``, untimed), port security on and the default security group
   (egress all, ingress from the group). Timed: the first pass
   (``python -m stratus.network.agent.main --once --snapshot``, wall clock of
   the process), a second pass with nothing changed, and a pass after one
   port was added; with each module's share, the peak RSS and CPU time.
3. **Security groups per port**, with the largest state of part 2: the
   nftables rules in each port's chains (``nft -j list ruleset`` inside the
   host), the ruleset's size, and the pass after one rule was added to the
   group, per port it touches; then the same with 0, 10 and 50 rules in the
   group (``--rule-counts``).

Parts 2 and 3 need root, ``unshare``/``nsenter``/``ip``/``nft``/``dnsmasq``
and VXLAN and tap devices in the kernel; when one is missing they are
skipped with the reason (``--skip-agent`` skips them on purpose). There is no
published Neutron reference for any of this (shared BENCHMARKS.md): the
reference column says so rather than printing an invented figure.

    .venv/bin/python benchmarks/network.py
    .venv/bin/python benchmarks/network.py --ports 100 --concurrency 1,8 \
        --host-ports 100 --rule-counts 0

Every process, namespace and temporary file started here is removed at exit,
also on failure and on Ctrl-C/SIGTERM. No figure printed here is a pass/fail
threshold; the exit status is 1 when a duplicate address or a failed part is
found.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Sequence
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
    load_average,
    machine_description,
    percentile,
    signals_as_interrupt,
    start_cloud,
    table,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PYTHON = sys.executable

NO_REFERENCE = "no published reference on this machine"
SUBNET_CIDR = "10.64.0.0/16"
HOST_CIDR = "10.96.0.0/20"
HOST_NAME = "bench-host"
HOST_LOCAL_IP = "192.0.2.1"
HOST_STATE_DIR = "/run/stratus-agent-bench"
VNI = 1001
AGENT_TIMEOUT = 900.0

# Runs the agent exactly as ``python -m stratus.network.agent.main`` does, with a
# timer around each module's ``converge`` (written to $STRATUS_BENCH_TIMES).
AGENT_WRAPPER = r"""
import json, os, sys, time
from stratus.network.agent import main, reconcile
times = {}
original = reconcile.load_modules
def load_modules(names=reconcile.DEFAULT_MODULES):
    def timed(name, function):
        def call(snapshot, config):
            started = time.perf_counter()
            try:
                return function(snapshot, config)
            finally:
                times[name] = time.perf_counter() - started
        return call
    return [(name, timed(name, function)) for name, function in original(names)]
reconcile.load_modules = load_modules
original_fetch = main.Agent.fetch
def fetch(self):
    started = time.perf_counter()
    try:
        return original_fetch(self)
    finally:
        times["snapshot"] = time.perf_counter() - started
main.Agent.fetch = fetch
code = main.main(sys.argv[1:])
with open(os.environ["STRATUS_BENCH_TIMES"], "w") as out:
    json.dump(times, out)
sys.exit(code)
"""


# --- small helpers ------------------------------------------------------------------


def fmt(value: float | None, unit_ms: bool = False) -> str:
    if value is None or value != value:
        return "—"
    if unit_ms:
        value *= 1000
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


@dataclass
class Results:
    header: list[str] = field(default_factory=list)
    sections: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


# --- part 1: the API ----------------------------------------------------------------


@dataclass
class Api:
    network_url: str
    token: str
    cold_start: float
    log: Path


def start_api(stack: contextlib.ExitStack, base: Path) -> Api:
    """Identity and network as in production: two workers each, one SQLite file."""
    cloud = start_cloud(stack, base, {"network": {"vni_ranges": "1000:1999", "quota_port": -1}})
    return Api(
        cloud.urls["network"], cloud.token, cloud.cold_start["network"], cloud.logs["network"]
    )


def client_for(api: Api, timeout: float) -> httpx.Client:
    return httpx.Client(
        base_url=check_loopback(api.network_url),
        headers={"X-Auth-Token": api.token},
        timeout=timeout,
        trust_env=False,
    )


def expect(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise BenchmarkError(f"{what} answered {response.status_code}: {response.text[:500]}")
    return response.json() if response.content else {}


@dataclass
class Round:
    label: str
    clients: int
    latencies: list[float] = field(default_factory=list)
    wall: float = 0.0
    errors: int = 0
    first_error: str = ""
    created: int = 0
    duplicates: list[str] = field(default_factory=list)
    delete_seconds: float = 0.0


def in_threads(
    api: Api, count: int, clients: int, timeout: float, work: Callable[[httpx.Client, int], None]
) -> float:
    """``work(client, i)`` for i in range(count) on ``clients`` threads; wall seconds."""
    counter = itertools.count()
    lock = threading.Lock()
    failures: list[BaseException] = []

    def worker() -> None:
        with client_for(api, timeout) as client:
            while True:
                with lock:
                    i = next(counter)
                if i >= count or failures:
                    return
                try:
                    work(client, i)
                except BaseException as exc:  # re-raised by the caller
                    failures.append(exc)
                    return

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if failures:
        raise failures[0]
    return wall


def list_ports(client: httpx.Client, network_id: str) -> list[dict[str, Any]]:
    ports: list[dict[str, Any]] = []
    marker = None
    while True:
        params: dict[str, Any] = {"network_id": network_id, "limit": 500}
        if marker:
            params["marker"] = marker
        page = expect(client.get("/v2.0/ports", params=params), 200, "port list")["ports"]
        ports += page
        if len(page) < 500:
            return ports
        marker = page[-1]["id"]


def check_distinct(client: httpx.Client, network_id: str, expected: int, rnd: Round) -> list[str]:
    """Ids of the network's ports; a duplicate address or a missing port is an error."""
    ports = list_ports(client, network_id)
    mine = [p for p in ports if not (p.get("device_owner") or "").startswith("network:")]
    seen: dict[str, str] = {}
    for port in ports:
        for fixed in port.get("fixed_ips") or []:
            address = fixed["ip_address"]
            if address in seen:
                rnd.duplicates.append(f"{address} on {seen[address]} and {port['id']}")
            seen[address] = port["id"]
    if len(mine) != expected:
        rnd.duplicates.append(f"{len(mine)} ports listed, {expected} created")
    return [p["id"] for p in mine]


def delete_ports(api: Api, ids: list[str], timeout: float) -> float:
    def delete(client: httpx.Client, i: int) -> None:
        response = client.delete(f"/v2.0/ports/{ids[i]}")
        if response.status_code not in (204, 404):
            raise BenchmarkError(f"port delete answered {response.status_code}")

    return in_threads(api, len(ids), 8, timeout, delete)


def measure_api(api: Api, args: argparse.Namespace, res: Results) -> None:
    rounds: list[Round] = []
    with client_for(api, args.request_timeout) as client:
        net = expect(
            client.post("/v2.0/networks", json={"network": {"name": "bench-api"}}),
            201,
            "network create",
        )["network"]
        sub = expect(
            client.post(
                "/v2.0/subnets",
                json={
                    "subnet": {
                        "network_id": net["id"],
                        "ip_version": 4,
                        "cidr": SUBNET_CIDR,
                        "name": "bench-api",
                    }
                },
            ),
            201,
            "subnet create",
        )["subnet"]
        body = {"port": {"network_id": net["id"]}}
        try:
            for clients in args.concurrency:
                print(f"API: {args.ports} ports, {clients} clients ...", file=sys.stderr)
                rnd = Round(f"{args.ports} single creates", clients)
                lock = threading.Lock()

                def create(c: httpx.Client, _i: int, rnd: Round = rnd, lock: Any = lock) -> None:
                    started = time.perf_counter()
                    try:
                        response = c.post("/v2.0/ports", json=body)
                    except httpx.HTTPError as exc:
                        with lock:
                            rnd.errors += 1
                            rnd.first_error = rnd.first_error or repr(exc)
                        return
                    elapsed = time.perf_counter() - started
                    with lock:
                        if response.status_code == 201:
                            rnd.latencies.append(elapsed)
                            rnd.created += 1
                        else:
                            rnd.errors += 1
                            rnd.first_error = rnd.first_error or (
                                f"{response.status_code} {response.text[:200]}"
                            )

                rnd.wall = in_threads(api, args.ports, clients, args.request_timeout, create)
                ids = check_distinct(client, net["id"], rnd.created, rnd)
                rnd.delete_seconds = delete_ports(api, ids, args.request_timeout)
                rounds.append(rnd)

            print(f"API: one bulk request of {args.bulk} ports ...", file=sys.stderr)
            rnd = Round(f"bulk: one request of {args.bulk} ports", 1)
            bulk = {"ports": [{"network_id": net["id"]} for _ in range(args.bulk)]}
            started = time.perf_counter()
            response = client.post("/v2.0/ports", json=bulk)
            rnd.wall = time.perf_counter() - started
            if response.status_code == 201:
                rnd.created = len(response.json()["ports"])
                rnd.latencies.append(rnd.wall)
            else:
                rnd.errors = 1
                rnd.first_error = f"{response.status_code} {response.text[:200]}"
            ids = check_distinct(client, net["id"], rnd.created, rnd)
            rnd.delete_seconds = delete_ports(api, ids, args.request_timeout)
            rounds.append(rnd)
        finally:
            leftover = [
                p["id"]
                for p in list_ports(client, net["id"])
                if not (p.get("device_owner") or "").startswith("network:")
            ]
            delete_ports(api, leftover, args.request_timeout)
            client.delete(f"/v2.0/subnets/{sub['id']}")
            client.delete(f"/v2.0/networks/{net['id']}")

    rows = []
    for rnd in rounds:
        bulk = rnd.label.startswith("bulk")
        rate = rnd.created / rnd.wall if rnd.wall else float("nan")
        per_port = rnd.wall / rnd.created if rnd.created else float("nan")
        rows.append(
            [
                rnd.label,
                str(rnd.clients),
                f"{rnd.created}/{rnd.errors}",
                fmt(rnd.wall),
                fmt(rate) + ("" if not rnd.errors else "!"),
                "—" if bulk else fmt(percentile(rnd.latencies, 50), True),
                "—" if bulk else fmt(percentile(rnd.latencies, 95), True),
                fmt(per_port, True),
                fmt(rnd.delete_seconds),
                "none" if not rnd.duplicates else f"**{len(rnd.duplicates)}**",
                NO_REFERENCE,
            ]
        )
        for dup in rnd.duplicates[:10]:
            res.errors.append(f"- {rnd.label}, {rnd.clients} clients: duplicate/missing: {dup}")
        if rnd.errors:
            res.notes.append(
                f"- {rnd.label}, {rnd.clients} clients: {rnd.errors} failed, first: "
                f"{rnd.first_error}"
            )
    if any(rnd.errors for rnd in rounds):
        with contextlib.suppress(OSError):
            logged = [
                line[:400]
                for line in api.log.read_text(errors="replace").splitlines()
                if '"level": "ERROR"' in line
            ]
            if logged:
                res.notes.append(f"- First error in the network API's log: {logged[0]}")
    section = [f"### Port creation through the API: POST /v2.0/ports on a {SUBNET_CIDR} subnet", ""]
    section += table(
        ["requests", "clients", "created/failed", "wall s", "ports/s", "p50 ms", "p95 ms",
         "ms per port", "delete s (8 clients)", "duplicate addresses", "Neutron reference"],
        rows,
    )  # fmt: skip
    section.append(
        f"Network API cold start to its first answer: {api.cold_start:.2f} s. "
        "Each round starts on an empty subnet (the previous round's ports deleted)."
    )
    section.append("")
    res.sections.append(section)


# --- parts 2 and 3: the agent on a simulated host ------------------------------------


def agent_missing() -> str | None:
    """Why parts 2 and 3 cannot run here, or None."""
    if os.geteuid() != 0:
        return "not root: simulated hosts need namespaces, bridges and nftables"
    for tool in ("unshare", "nsenter", "ip", "nft", "dnsmasq"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed"
    script = (
        "ip link add tl0 type veth peer name tl1 && ip link add vx0 type vxlan id 42 dstport 4789 "
        "&& ip tuntap add tapt0 mode tap && ip link add br0 type bridge"
    )
    try:
        result = subprocess.run(
            ["unshare", "--net", "sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot make a network namespace: {exc}"
    if result.returncode != 0:
        return f"the kernel cannot make the devices a host needs: {result.stderr.strip()}"
    return None


def _ns_inode(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


@dataclass
class Host:
    """A simulated host: a ``sleep`` owning private mount and network namespaces."""

    workdir: Path
    process: subprocess.Popen[str] | None = None
    pid: int = 0

    @property
    def config_path(self) -> Path:
        return self.workdir / "agent.conf"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        script = (
            f"mount -t tmpfs tmpfs /run/netns && mount -t tmpfs tmpfs {HOST_STATE_DIR} && "
            "ip link set lo up && ip link add eth0 type veth peer name uplink0 && "
            "ip link set uplink0 up && "
            f"ip addr add {HOST_LOCAL_IP}/24 dev eth0 && ip link set eth0 up && "
            "echo $$ && exec sleep infinity"
        )
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "--fork",
             "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            err = self.process.stderr.read() if self.process.stderr else ""
            raise BenchmarkError(f"simulated host did not start: {err}")
        self.pid = int(line)
        self.config_path.write_text(
            textwrap.dedent(
                f"""\
                [DEFAULT]
                log_format = text
                debug = false

                [network_agent]
                host = {HOST_NAME}
                local_ip = {HOST_LOCAL_IP}
                tunnel_types = vxlan
                state_dir = {HOST_STATE_DIR}
                """
            )
        )

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["nsenter", "-t", str(self.pid), "-m", "-n", *argv]

    def run(self, argv: Sequence[str], *, input: str | None = None, timeout: float = 300) -> str:
        result = subprocess.run(
            self.argv(argv), capture_output=True, text=True, input=input, timeout=timeout,
            check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise BenchmarkError(
                f"{' '.join(argv[:4])} in the host failed ({result.returncode}): "
                f"{(result.stdout + result.stderr)[-1500:]}"
            )
        return result.stdout

    def make_taps(self, port_ids: Sequence[str]) -> None:
        batch = "".join(f"tuntap add tap{p[:11]} mode tap\n" for p in port_ids)
        if batch:
            self.run(["ip", "-batch", "-"], input=batch)

    def processes(self) -> set[int]:
        net = _ns_inode(self.pid, "net")
        mnt = _ns_inode(self.pid, "mnt")
        if net is None:
            return set()
        nets = {net}
        with contextlib.suppress(Exception):
            listing = subprocess.run(
                self.argv(["sh", "-c", 'for f in /run/netns/*; do [ -e "$f" ] && '
                           'stat -L -c %i "$f"; done; true']),
                capture_output=True, text=True, timeout=30, check=False,
            )  # fmt: skip
            nets |= {int(x) for x in listing.stdout.split() if x.isdigit()}
        found = set()
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            if _ns_inode(entry, "net") in nets or (
                mnt is not None and _ns_inode(entry, "mnt") == mnt
            ):
                found.add(int(entry))
        return found

    def stop(self) -> None:
        """Kill everything inside (dnsmasq...), then the host; the kernel frees the rest."""
        if not self.pid:
            return
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and self.processes():
            time.sleep(0.05)
        self.pid = 0


def host_dirs(stack: contextlib.ExitStack) -> None:
    """The mount points a host needs; made here only if missing, removed if made here."""
    for path in ("/run/netns", HOST_STATE_DIR):
        if not os.path.isdir(path):
            os.makedirs(path)
            stack.callback(remove_empty_dir, path)


def remove_empty_dir(path: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)


# --- documents ----------------------------------------------------------------------


def rule(group: str, direction: str, ethertype: str = "IPv4", **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "security_group_id": group,
        "direction": direction,
        "ethertype": ethertype,
        "protocol": None,
        "port_range_min": None,
        "port_range_max": None,
        "remote_ip_prefix": None,
        "remote_group_id": None,
        **extra,
    }


def default_rules(group: str) -> list[dict[str, Any]]:
    """Neutron's default group: egress anywhere, ingress from the group (v4 and v6)."""
    return [
        rule(group, "egress", "IPv4"),
        rule(group, "egress", "IPv6"),
        rule(group, "ingress", "IPv4", remote_group_id=group),
        rule(group, "ingress", "IPv6", remote_group_id=group),
    ]


def extra_rule(group: str, i: int) -> dict[str, Any]:
    return rule(
        group, "ingress", "IPv4", protocol="tcp", port_range_min=1000 + i,
        port_range_max=1000 + i, remote_ip_prefix=f"198.51.100.{i % 250}/32",
    )  # fmt: skip


class HostDocs:
    """The API documents of one host's state: a VXLAN network, a /20, ports."""

    def __init__(self) -> None:
        net_id = str(uuid.uuid4())
        self.network = {
            "id": net_id, "project_id": "p1", "name": "bench",
            "provider:network_type": "vxlan", "provider:physical_network": None,
            "provider:segmentation_id": VNI, "mtu": 1450, "admin_state_up": True,
            "router:external": False,
        }  # fmt: skip
        cidr = ipaddress.ip_network(HOST_CIDR)
        self.addresses = (str(a) for a in itertools.islice(cidr.hosts(), 9, None))
        self.subnet = {
            "id": str(uuid.uuid4()), "network_id": net_id, "ip_version": 4, "cidr": HOST_CIDR,
            "gateway_ip": str(cidr.network_address + 1), "enable_dhcp": True,
            "dns_nameservers": [], "host_routes": [],
            "allocation_pools": [{"start": str(cidr.network_address + 2),
                                  "end": str(cidr.broadcast_address - 1)}],
        }  # fmt: skip
        self.group_id = str(uuid.uuid4())
        self.rules = default_rules(self.group_id)
        dhcp = self.port(str(cidr.network_address + 2), "network:dhcp")
        dhcp["port_security_enabled"] = False
        dhcp["security_groups"] = []
        self.ports = [dhcp]
        self.guests: list[dict[str, Any]] = []

    def port(self, address: str, owner: str = "compute:nova") -> dict[str, Any]:
        mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in uuid.uuid4().bytes[:3])
        return {
            "id": str(uuid.uuid4()), "network_id": self.network["id"], "project_id": "p1",
            "mac_address": mac,
            "fixed_ips": [{"subnet_id": self.subnet["id"], "ip_address": address}],
            "device_owner": owner,
            "device_id": f"dhcp-{HOST_NAME}" if owner == "network:dhcp" else str(uuid.uuid4()),
            "binding:host_id": HOST_NAME, "admin_state_up": True, "dns_name": "",
            "port_security_enabled": True, "security_groups": [self.group_id],
        }  # fmt: skip

    def add_guests(self, count: int) -> list[str]:
        added = [self.port(next(self.addresses)) for _ in range(count)]
        self.guests += added
        self.ports += added
        return [p["id"] for p in added]

    def as_json(self) -> str:
        return json.dumps(
            {
                "networks": [self.network],
                "subnets": [self.subnet],
                "ports": self.ports,
                "routers": [],
                "floatingips": [],
                "security_groups": [
                    {"id": self.group_id, "project_id": "p1", "name": "default",
                     "stateful": True, "security_group_rules": self.rules}
                ],
                "agents": [],
            }
        )  # fmt: skip


@dataclass
class Pass:
    label: str
    ports: int
    wall: float
    code: int
    maxrss_mb: float
    cpu: float
    modules: dict[str, float]
    report: dict[str, Any]
    stderr: str = ""


def agent_pass(host: Host, docs: HostDocs, label: str, timeout: float) -> Pass:
    """One ``--once --snapshot`` pass inside the host; wall clock of the process."""
    snapshot = host.workdir / "snapshot.json"
    snapshot.write_text(docs.as_json())
    times = host.workdir / "times.json"
    times.unlink(missing_ok=True)
    out, err = host.workdir / "pass.out", host.workdir / "pass.err"
    argv = host.argv(
        [PYTHON, "-c", AGENT_WRAPPER, "--config-file", str(host.config_path), "--once",
         "--snapshot", str(snapshot)]
    )  # fmt: skip
    env = {**os.environ, "STRATUS_BENCH_TIMES": str(times)}
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)  # fmt: skip
        timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
    modules: dict[str, float] = {}
    with contextlib.suppress(OSError, ValueError):
        modules = json.loads(times.read_text())
    report: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError, IndexError):
        report = json.loads(out.read_text().strip().splitlines()[-1])
    return Pass(
        label=label,
        ports=len(docs.guests),
        wall=wall,
        code=proc.returncode,
        maxrss_mb=usage.ru_maxrss / 1024,
        cpu=usage.ru_utime + usage.ru_stime,
        modules=modules,
        report=report,
        stderr=err.read_text(errors="replace")[-1500:],
    )


def check_pass(p: Pass, res: Results, expect_up: int) -> None:
    up = len(p.report.get("ports_up", []))
    if p.code != 0 or p.report.get("failures"):
        failures = json.dumps(p.report.get("failures", {}))[:500]
        res.errors.append(
            f"- agent pass '{p.label}' ({p.ports} ports) exited {p.code}; failures: {failures}; "
            f"stderr: {' '.join(p.stderr.split()[-60:])}"
        )
    elif up != expect_up:
        res.errors.append(
            f"- agent pass '{p.label}' ({p.ports} ports): {up} ports up, {expect_up} expected"
        )


@dataclass
class Ruleset:
    rules_per_port: dict[str, float]
    text_bytes: int
    json_bytes: int
    total_rules: int
    sets: int


def ruleset_of(host: Host, port_ids: Sequence[str]) -> Ruleset:
    raw = host.run(["nft", "-j", "list", "ruleset"])
    text = host.run(["nft", "list", "ruleset"])
    items = json.loads(raw)["nftables"]
    counts: dict[str, int] = {}
    sets = 0
    for item in items:
        if "rule" in item:
            chain = item["rule"]["chain"]
            counts[chain] = counts.get(chain, 0) + 1
        elif "set" in item:
            sets += 1
    per_port: dict[str, float] = {}
    for kind in ("spoof", "egress", "ingress"):
        values = [counts.get(f"{kind}-{p[:11]}", 0) for p in port_ids]
        per_port[kind] = statistics.mean(values) if values else 0.0
    return Ruleset(per_port, len(text.encode()), len(raw.encode()), sum(counts.values()), sets)


def outside_converge(p: Pass) -> str:
    if not p.modules:
        return "—"
    return fmt(p.wall - sum(p.modules.values()))


def module_text(p: Pass) -> str:
    order = ("snapshot", "l2", "firewall", "dhcp", "l3", "metadata")
    return ", ".join(f"{k} {p.modules[k]:.2f}" for k in order if k in p.modules) or "—"


def measure_agent(stack: contextlib.ExitStack, base: Path, args: argparse.Namespace,
                  res: Results) -> None:  # fmt: skip
    host_dirs(stack)
    passes: list[Pass] = []
    fw_rows: list[list[str]] = []
    rule_rows: list[list[str]] = []
    sizes = sorted(args.host_ports)
    for n in sizes:
        host = Host(base / f"host-{n}")
        stack.callback(host.stop)
        print(f"agent: simulated host with {n} ports ...", file=sys.stderr)
        host.start()
        docs = HostDocs()
        ids = docs.add_guests(n)
        host.make_taps(ids)
        first = agent_pass(host, docs, "first pass", args.agent_timeout)
        check_pass(first, res, n + 1)
        passes.append(first)
        again = agent_pass(host, docs, "second pass, nothing changed", args.agent_timeout)
        check_pass(again, res, n + 1)
        passes.append(again)
        added = docs.add_guests(1)
        host.make_taps(added)
        one_more = agent_pass(host, docs, "one port added", args.agent_timeout)
        one_more.ports = n  # the row is about the state of n ports
        check_pass(one_more, res, n + 2)
        passes.append(one_more)
        if n != sizes[-1]:
            host.stop()
            continue

        # Part 3, on the largest state.
        guest_ids = [p["id"] for p in docs.guests]
        rs = ruleset_of(host, guest_ids)
        per_port = sum(rs.rules_per_port.values())
        fw_rows.append(
            ["default group (4 rules)", str(len(guest_ids)),
             " / ".join(f"{rs.rules_per_port[k]:.0f}" for k in ("spoof", "egress", "ingress")),
             f"{per_port:.0f}", str(rs.total_rules), f"{rs.text_bytes / 1024:.0f}",
             f"{rs.json_bytes / 1024:.0f}", "—", "—", "—", "—", NO_REFERENCE]
        )  # fmt: skip
        docs.rules.append(extra_rule(docs.group_id, 0))
        print("agent: one security group rule added ...", file=sys.stderr)
        p = agent_pass(host, docs, "one security group rule added", args.agent_timeout)
        p.ports = len(guest_ids)
        check_pass(p, res, len(docs.ports))
        passes.append(p)
        rs = ruleset_of(host, guest_ids)
        fw = p.modules.get("firewall", float("nan"))
        fw_rows.append(
            ["+1 ingress rule (5 rules)", str(len(guest_ids)),
             " / ".join(f"{rs.rules_per_port[k]:.0f}" for k in ("spoof", "egress", "ingress")),
             f"{sum(rs.rules_per_port.values()):.0f}", str(rs.total_rules),
             f"{rs.text_bytes / 1024:.0f}", f"{rs.json_bytes / 1024:.0f}", fmt(p.wall),
             fmt(p.wall / len(guest_ids), True), fmt(fw), fmt(fw / len(guest_ids), True),
             NO_REFERENCE]
        )  # fmt: skip
        for count in args.rule_counts:
            if count == 0:
                docs.rules = []
            else:
                docs.rules = default_rules(docs.group_id)[:count]
                docs.rules += [extra_rule(docs.group_id, i) for i in range(count - len(docs.rules))]
            print(f"agent: {count} rules in the group ...", file=sys.stderr)
            p = agent_pass(host, docs, f"{count} rules in the group", args.agent_timeout)
            p.ports = len(guest_ids)
            # Without an egress rule the ports are still wired (filtered, not down).
            check_pass(p, res, len(docs.ports))
            passes.append(p)
            rs = ruleset_of(host, guest_ids)
            fw = p.modules.get("firewall", float("nan"))
            rule_rows.append(
                [str(count), str(len(guest_ids)),
                 " / ".join(f"{rs.rules_per_port[k]:.0f}" for k in ("spoof", "egress", "ingress")),
                 f"{sum(rs.rules_per_port.values()):.0f}", str(rs.total_rules),
                 f"{rs.text_bytes / 1024:.0f}", fmt(p.wall), fmt(fw),
                 fmt(fw / len(guest_ids), True), NO_REFERENCE]
            )  # fmt: skip
        host.stop()

    rows = [
        [str(p.ports), p.label, fmt(p.wall), module_text(p), outside_converge(p), fmt(p.cpu),
         f"{p.maxrss_mb:.0f}",
         str(len(p.report.get("ports_up", []))), "ok" if p.code == 0 else f"exit {p.code}",
         NO_REFERENCE]
        for p in passes
    ]  # fmt: skip
    section = ["### Agent convergence on one simulated host (VXLAN network, /20 subnet)", ""]
    section += table(
        ["guest ports", "pass", "wall s", "module s (snapshot, l2, firewall, dhcp, l3, metadata)",
         "start-up and the rest s", "CPU s", "peak RSS MB", "ports up", "exit",
         "Neutron reference"],
        rows,
    )  # fmt: skip
    section.append(
        "Wall clock of `python -m stratus.network.agent.main --once --snapshot` run with "
        "`nsenter` in the host, interpreter start and imports included; the module seconds are "
        "timed inside the same process (start-up and the rest: the wall clock less the modules' "
        "seconds, mostly the interpreter's start and imports); CPU and peak RSS are the "
        "process's and those of the commands it waited for (`nft`, `ip`; not the daemonised "
        "dnsmasq), from `wait4`. "
        "Ports up counts the DHCP port too."
    )
    section.append("")
    res.sections.append(section)
    if fw_rows:
        section = ["### Security groups per port (the largest state above)", ""]
        section += table(
            ["group", "filtered ports", "rules per port: spoof / egress / ingress",
             "rules per port", "rules in the ruleset", "ruleset KiB (`nft list`)",
             "ruleset KiB (`nft -j`)", "pass s", "pass ms per port", "firewall s",
             "firewall ms per port", "Neutron reference"],
            fw_rows,
        )  # fmt: skip
        res.sections.append(section)
    if rule_rows:
        section = ["### Rules in the group (pass after the change, same ports)", ""]
        section += table(
            ["rules in the group", "filtered ports", "rules per port: spoof / egress / ingress",
             "rules per port", "rules in the ruleset", "ruleset KiB", "pass s", "firewall s",
             "firewall ms per port", "Neutron reference"],
            rule_rows,
        )  # fmt: skip
        section.append(
            "0 rules: no egress and no ingress rule (only the base rules: conntrack, DHCP, "
            "neighbour discovery); 10 and 50: the default group's 4 rules and then ingress TCP "
            "rules from a /32, one port each."
        )
        section.append("")
        res.sections.append(section)


# --- main -------------------------------------------------------------------------------


def int_list(text: str, name: str, parser: argparse.ArgumentParser) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        parser.error(f"{name} takes numbers separated by commas")
    if not values or min(values) < 0:
        parser.error(f"{name}: numbers of 0 or more")
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ports", type=int, default=500, help="ports per API round (500)")
    parser.add_argument("--concurrency", default="1,8,32", help="client threads (1,8,32)")
    parser.add_argument("--bulk", type=int, default=100, help="ports in the bulk request (100)")
    parser.add_argument(
        "--host-ports", default="100,500,1000", help="guest ports on the host (100,500,1000)"
    )
    parser.add_argument(
        "--rule-counts", default="0,10,50", help="rules in the group for part 3 (0,10,50)"
    )
    parser.add_argument("--skip-api", action="store_true", help="skip part 1")
    parser.add_argument("--skip-agent", action="store_true", help="skip parts 2 and 3")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds (120)")
    parser.add_argument(
        "--agent-timeout", type=float, default=AGENT_TIMEOUT, help="seconds per pass (900)"
    )
    parser.add_argument("--keep-temp", action="store_true", help="keep logs (not processes)")
    args = parser.parse_args(argv)
    args.concurrency = int_list(args.concurrency, "--concurrency", parser)
    args.host_ports = int_list(args.host_ports, "--host-ports", parser)
    args.rule_counts = int_list(args.rule_counts, "--rule-counts", parser)
    if min(args.concurrency) < 1 or max(args.concurrency) > 256:
        parser.error("--concurrency: between 1 and 256 clients")
    if args.ports < 1 or args.bulk < 1:
        parser.error("--ports and --bulk: at least 1")
    if min(args.host_ports) < 1 or max(args.host_ports) > 4000:
        parser.error("--host-ports: between 1 and 4000 (the /20 subnet)")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = Results()
    started = datetime.now(UTC)
    res.header = [
        f"## Network benchmark, {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Machine: {machine_description()}; load average before the run: {load_average()}.",
        "- API: `stratus-api identity` and `stratus-api network`, `workers = 2` each, one "
        f"SQLite file (WAL) in a temp dir, `quota_port = -1`; clients: threads with one httpx "
        f"client each, to {LOOPBACK} only, as the admin.",
        "- Agent: on a simulated host (private mount and network namespaces), never in the "
        "machine's own namespace.",
        f"- Reference: shared BENCHMARKS.md has no Neutron figures; the reference column says "
        f'"{NO_REFERENCE}" (Neutron itself was not installed and measured here).',
    ]
    t0 = time.perf_counter()
    with signals_as_interrupt(), cleanup_stack() as stack:
        base = Path(tempfile.mkdtemp(prefix="stratus-bench-net-"))
        if args.keep_temp:
            print(f"logs kept in {base}", file=sys.stderr)
        else:
            stack.callback(shutil.rmtree, base, True)
        if args.skip_api:
            res.notes.append("- Port API: skipped (--skip-api).")
        else:
            with cleanup_stack() as api_stack:
                try:
                    api = start_api(api_stack, base / "api")
                    measure_api(api, args, res)
                except (BenchmarkError, httpx.HTTPError) as exc:
                    res.errors.append(f"- Port API: not measured: {exc}")
                    print(f"API: {exc}", file=sys.stderr)
        missing = "--skip-agent" if args.skip_agent else agent_missing()
        if missing:
            res.notes.append(f"- Agent convergence and security groups: skipped ({missing}).")
        else:
            with cleanup_stack() as agent_stack:
                try:
                    measure_agent(agent_stack, base / "agent", args, res)
                except (BenchmarkError, OSError, subprocess.SubprocessError) as exc:
                    res.errors.append(f"- Agent: not measured: {exc}")
                    print(f"agent: {exc}", file=sys.stderr)
        res.header.append(
            f"- Load average after the run: {load_average()} (other work on the machine shows "
            f"here and skews every figure); whole run {time.perf_counter() - t0:.0f} s."
        )
        out = [*res.header, ""]
        for section in res.sections:
            out += section
        if res.notes or res.errors:
            out += ["Notes:", "", *res.notes, *[f"{e} (ERROR)" for e in res.errors], ""]
        print("\n".join(out), flush=True)
    return 1 if res.errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; every process, namespace and temp dir made here was removed",
              file=sys.stderr)  # fmt: skip
        sys.exit(130)
