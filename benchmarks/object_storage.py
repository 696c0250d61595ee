#!/usr/bin/env python3
"""Object storage benchmark: Swift through its proxy with a Stratus token, next to cp on its disk.

Runs against a rolled-out cloud (by default the one `make aio` rolls out:
cloud ``stratus-demo`` of clouds.yaml, Swift proxy and storage on aio1) and
prints Markdown tables:

- **small objects** (default 500 x 4 KiB and 200 x 64 KiB) at 1 and 4
  concurrent clients: PUT, GET and DELETE, objects/s and MiB/s. The client is
  this script: a token and the ``object-store`` endpoint from the catalog
  (openstacksdk/keystoneauth), then plain HTTP with python-requests, one
  keep-alive session per client thread (connected before the clock starts);
  each PUT carries its ``ETag`` (the md5, computed beforehand), each GET's body
  is checked against it;
- **large objects** (default 4 x 64 MiB): a single PUT of each, streamed from a
  local file, and a static large object (SLO): its segments
  (``--segment-size``, default 16 MiB) PUT into a segment container by 1 and
  by 4 client threads, then the manifest; GET of each, md5-checked;
- beside each, on the storage host over ssh, a **plain ``cp``** of the same
  number of files of the same size on the file system of its devices
  (``/srv/node``): ``cp`` + ``sync`` and ``cp`` + fsync of each copy (what
  Swift's object server does per object), once and three times (Swift stores
  three replicas), and a plain ``cp`` for the reads; timed on the host, so ssh
  is not in the figures;
- **replication**: N objects (default 200 x 4 KiB) are stored, device ``d1``
  is wiped (everything under it removed, the directory recreated owned by
  swift, as a replaced empty disk), and a script on the host watches the
  objects' own ``.data`` files (paths from Swift's rings and hash path
  secrets) until each object has its replica on d1 again, with an md5 check of
  each restored file; first with the replicator daemons as configured (their
  ``interval`` read from /etc/swift/object-server.conf), then with a forced
  pass (``swift-object-replicator /etc/swift/object-server.conf once``, the
  daemon stopped meanwhile and started again in every case); afterwards every
  object is downloaded through the proxy and md5-checked;
- the Swift reference figures of shared BENCHMARKS.md beside ours.

Every container and object it created (looked up again by listing), the
files on the storage host and the local temp files are removed at exit, also
on failure and on Ctrl-C; a stopped replicator is started again. A wiped
device cannot be "unwiped": if the run is cut short during the wait,
replication finishes restoring it by itself.

    .venv/bin/python benchmarks/object_storage.py             # needs `make aio`
    .venv/bin/python benchmarks/object_storage.py --cloud stratus-admin \\
        --small 1000x4K --large 2x1G --concurrency 1,8 --ssh root@storage1

No figure printed here is a pass/fail threshold; a wrong checksum is an error.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from harness import (
    BenchmarkError,
    GiB,
    MiB,
    cleanup_stack,
    machine_description,
    parse_size,
    signals_as_interrupt,
    size_label,
    tail,
)

CHUNK = 1 * MiB  # client reads of large downloads
REQUEST_TIMEOUT = 300.0
DEFAULT_SSH_KEY = "/var/lib/stratus-lab/ssh/id_ed25519"
DEFAULT_SSH_OPTIONS = (
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/var/lib/stratus-lab/ssh/known_hosts",
    "ConnectTimeout=10",
    "BatchMode=yes",
)
SHARED_BENCHMARKS = Path("/work/shared/BENCHMARKS.md")
# Shared BENCHMARKS.md, "Guests and storage on this kind of machine", as of this
# script: printed when the file itself is not there (labelled so).
PUBLISHED_SWIFT = (
    "OpenStack Swift all-in-one with 3 replicas: roughly 5-25 % of a plain `cp` "
    "of the same data on the same disk."
)


# --- pure helpers ---------------------------------------------------------------------


def parse_batches(text: str) -> list[tuple[int, int]]:
    """``"500x4K,200x64K"`` -> ``[(500, 4096), (200, 65536)]`` (count x size)."""
    batches = []
    for part in text.split(","):
        if not part.strip():
            continue
        count, sep, size = part.strip().lower().partition("x")
        if not sep or not count.strip().isdigit():
            raise ValueError(part)
        batches.append((int(count), parse_size(size)))
    if not batches or any(count < 1 or size < 1 for count, size in batches):
        raise ValueError(text)
    return batches


def parse_ints(text: str) -> list[int]:
    values = [int(v) for v in text.split(",") if v.strip()]
    if not values or min(values) < 1:
        raise ValueError(text)
    return values


def ini_option(text: str, section: str, option: str) -> str | None:
    """The value of ``option`` in ``[section]`` of an INI file's text, or None."""
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            continue
        if current == section and "=" in line:
            key, _, value = line.partition("=")
            if key.strip() == option:
                return value.strip()
    return None


def segments_of(size: int, segment: int) -> list[tuple[int, int]]:
    """(offset, length) of each SLO segment of an object of ``size`` bytes."""
    return [(off, min(segment, size - off)) for off in range(0, size, segment)] or [(0, 0)]


def swift_references(text: str) -> list[str]:
    """The lines of a BENCHMARKS.md that speak of Swift (bullets joined into one line)."""
    found = []
    for block in re.split(r"\n(?=- |\n|#)", text):
        flat = " ".join(block.split())
        if re.search(r"\bswift\b", flat, re.IGNORECASE):
            found.append(flat.removeprefix("- "))
    return found


def percentile_times(times: list[float], total: int, fractions: Iterable[float]) -> list[float]:
    """Seconds by which ``fraction`` of ``total`` items had arrived (nan if never)."""
    ordered = sorted(times)
    out = []
    for fraction in fractions:
        needed = max(1, round(fraction * total))
        out.append(ordered[needed - 1] if len(ordered) >= needed else float("nan"))
    return out


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.{digits}f}"


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


# --- the storage host, over ssh -------------------------------------------------------


@dataclass
class Ssh:
    target: str
    key: str
    options: list[str]

    def command(self) -> list[str]:
        cmd = ["ssh", "-T"]
        if self.key:
            cmd += ["-i", self.key]
        for option in self.options:
            cmd += ["-o", option]
        return [*cmd, self.target]

    def python(self, script: str, arg: Any, timeout: float, live: bool = False) -> Any:
        """Run ``script`` with python3 on the host, ``arg`` as JSON in argv; its JSON output.

        With ``live`` its stderr (progress) goes to ours as it comes.
        """
        remote = f"python3 - {shlex.quote(json.dumps(arg))}"
        try:
            result = subprocess.run(
                [*self.command(), remote],
                input=textwrap.dedent(script),
                stdout=subprocess.PIPE,
                stderr=None if live else subprocess.PIPE,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchmarkError(f"ssh {self.target}: no answer within {timeout:.0f} s") from exc
        if result.returncode != 0:
            raise BenchmarkError(
                f"ssh {self.target} python3 failed ({result.returncode}):\n"
                + tail((result.stdout or "") + (result.stderr or ""))
            )
        try:
            return json.loads(result.stdout.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError) as exc:
            raise BenchmarkError(f"ssh {self.target}: no JSON in {tail(result.stdout)!r}") from exc

    def shell(self, command: str, timeout: float = 120) -> str:
        result = subprocess.run(
            [*self.command(), command],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise BenchmarkError(
                f"ssh {self.target} {command[:60]!r} failed ({result.returncode}):\n"
                + tail(result.stdout + result.stderr)
            )
        return result.stdout


REMOTE_INFO = r"""
import json, os, platform, subprocess, sys
a = json.loads(sys.argv[1])
conf = "/etc/swift/object-server.conf"
text = open(conf).read() if os.path.exists(conf) else ""
def df(path):
    out = subprocess.run(["df", "-PT", path], capture_output=True, text=True).stdout
    fields = out.splitlines()[-1].split() if out.strip() else []
    return f"{fields[0]} ({fields[1]}), {int(fields[4]) / 1048576:.0f} GiB free" if fields else "?"
devices = a["devices_dir"]
dev = os.path.join(devices, a["device"])
recon = {}
try:
    recon = json.load(open("/var/cache/swift/object.recon"))
except (OSError, ValueError):
    pass
try:
    import swift
    version = swift.__version__
except ImportError:
    version = "?"
print(json.dumps({
    "object_server_conf": text,
    "device_exists": os.path.isdir(dev),
    "devices_df": df(devices),
    "same_fs": os.path.isdir(dev) and os.stat(dev).st_dev == os.stat(devices).st_dev,
    "kernel": platform.release(),
    "cpus": os.cpu_count(),
    "loadavg": " ".join(open("/proc/loadavg").read().split()[:3]),
    "swift": version,
    "replication_time_min": recon.get("object_replication_time"),
    "hostname": platform.node(),
}))
"""

# cp of `count` files of `size` bytes in a directory of the devices' file system.
REMOTE_CP = r"""
import json, os, shutil, subprocess, sys, time
a = json.loads(sys.argv[1])
base, count, size, repeat = a["dir"], a["count"], a["size"], a["repeat"]
parent = os.path.dirname(base)
os.makedirs(parent, exist_ok=True)
st = os.statvfs(parent)
need = count * size * 4 + 256 * 1048576
if st.f_bavail * st.f_frsize < need:
    print(json.dumps({"skipped": f"{st.f_bavail * st.f_frsize / 2**30:.1f} GiB free under "
                      f"{parent}, {need / 2**30:.1f} GiB needed"}))
    sys.exit(0)
src = os.path.join(base, "src")
def fsync_path(path, flags=os.O_RDONLY):
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
def cp(dst):
    subprocess.run(["cp", "-r", src, dst], check=True)
def fsync_each(dst):
    for entry in os.scandir(dst):
        fsync_path(entry.path)
    fsync_path(dst, os.O_RDONLY | os.O_DIRECTORY)
def clear(*dsts):
    for dst in dsts:
        shutil.rmtree(dst, ignore_errors=True)
    os.sync()
out = {"cp+sync": [], "cp+fsync": [], "3cp+fsync": [], "cp": []}
try:
    os.makedirs(src)
    pool = os.urandom(min(size, 4 * 1048576))
    for i in range(count):
        with open(os.path.join(src, f"{i:06d}"), "wb") as f:
            left = size
            f.write(i.to_bytes(8, "big")[: min(8, left)])
            left -= min(8, left)
            while left > 0:
                n = min(left, len(pool))
                f.write(pool[:n])
                left -= n
    os.sync()
    dsts = [os.path.join(base, f"copy{n}") for n in range(3)]
    for _ in range(repeat):
        t = time.perf_counter(); cp(dsts[0]); os.sync()
        out["cp+sync"].append(time.perf_counter() - t); clear(dsts[0])
        t = time.perf_counter(); cp(dsts[0]); fsync_each(dsts[0])
        out["cp+fsync"].append(time.perf_counter() - t); clear(dsts[0])
        t = time.perf_counter()
        for dst in dsts:
            cp(dst); fsync_each(dst)
        out["3cp+fsync"].append(time.perf_counter() - t); clear(*dsts)
        t = time.perf_counter(); cp(dsts[0])
        out["cp"].append(time.perf_counter() - t); clear(dsts[0])
finally:
    shutil.rmtree(base, ignore_errors=True)
print(json.dumps(out))
"""

# Wipe a device, then watch the given objects' replicas come back to it.
REMOTE_REPLICATION = r"""
import glob, hashlib, json, os, shutil, subprocess, sys, time
from swift.common.ring import Ring
from swift.common.utils import hash_path, validate_hash_conf
validate_hash_conf()
a = json.loads(sys.argv[1])
devices, device, account, container = a["devices_dir"], a["device"], a["account"], a["container"]
names, md5s = a["objects"], a["md5"]
dev = os.path.join(devices, device)
def log(msg):
    print(msg, file=sys.stderr, flush=True)
obj_ring = Ring("/etc/swift", ring_name="object")
cont_ring = Ring("/etc/swift", ring_name="container")
acct_ring = Ring("/etc/swift", ring_name="account")
def dirs_on_device():
    wanted = {}
    for name in names:
        part, nodes = obj_ring.get_nodes(account, container, name)
        if any(n["device"] == device for n in nodes):
            h = hash_path(account, container, name)
            wanted[name] = os.path.join(dev, "objects", str(part), h[-3:], h)
    return wanted
wanted = dirs_on_device()
h = hash_path(account, container)
cpart, cnodes = cont_ring.get_nodes(account, container)
cdb = os.path.join(dev, "containers", str(cpart), h[-3:], h, h + ".db")
ha = hash_path(account)
apart, anodes = acct_ring.get_nodes(account)
adb = os.path.join(dev, "accounts", str(apart), ha[-3:], ha, ha + ".db")
def data_file(path):
    files = glob.glob(os.path.join(path, "*.data"))
    return files[0] if files else None
# Before the wipe: every object with a replica on the device has it there.
deadline = time.monotonic() + a["settle_timeout"]
while True:
    missing = [n for n, p in wanted.items() if data_file(p) is None]
    if not missing or time.monotonic() > deadline:
        break
    time.sleep(0.5)
result = {"objects_on_device": len(wanted), "missing_before": len(missing),
          "container_db_on_device": any(n["device"] == device for n in cnodes),
          "account_db_on_device": any(n["device"] == device for n in anodes)}
mode = a["mode"]
stopped = False
try:
    if mode == "once":
        subprocess.run(["systemctl", "stop", "swift-object-replicator"], check=True)
        stopped = True
    # The servers keep writing into the device: move it aside in one rename (out of
    # the devices directory, whose every entry Swift's auditors and updaters visit, when
    # its parent is on the same file system), and put an empty directory (the new disk)
    # in its place. The old tree is deleted once the watch is over.
    st = os.stat(dev)
    aside = os.path.dirname(os.path.abspath(devices))
    if os.stat(aside).st_dev != st.st_dev:
        aside = devices
    old = os.path.join(aside, f".stratus-bench-{device}-wiped-{os.getpid()}")
    os.rename(dev, old)
    os.mkdir(dev, st.st_mode & 0o7777)
    os.chown(dev, st.st_uid, st.st_gid)
    t0 = time.monotonic()
    result["old_tree"] = old
    log(f"{device} wiped; watching {len(wanted)} objects ({mode})")
    arrived, db = {}, {}
    once_seconds = None
    once_proc = None
    if mode == "once":
        once_proc = subprocess.Popen(
            ["swift-object-replicator", "/etc/swift/object-server.conf", "once"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    last_log = 0.0
    deadline = t0 + a["timeout"]
    while time.monotonic() < deadline:
        now = time.monotonic() - t0
        for n, p in wanted.items():
            if n not in arrived and data_file(p) is not None:
                arrived[n] = now
        for key, path in (("container", cdb), ("account", adb)):
            if key not in db and os.path.exists(path):
                db[key] = now
        if once_proc is not None and once_seconds is None and once_proc.poll() is not None:
            once_seconds = now
            result["once_rc"] = once_proc.returncode
        done = len(arrived) == len(wanted)
        if done and (once_proc is None or once_seconds is not None):
            break
        if now - last_log >= 10:
            log(f"  {now:5.0f} s: {len(arrived)}/{len(wanted)} objects back on {device}")
            last_log = now
        time.sleep(0.2)
    if once_proc is not None and once_proc.poll() is None:
        once_proc.kill()
        once_proc.wait()
    # The last complete pass (the forced one in "once" mode), read before the daemon
    # is started again.
    try:
        result["replication_time_min"] = json.load(
            open("/var/cache/swift/object.recon")).get("object_replication_time")
    except (OSError, ValueError):
        pass
    bad = 0
    for n, p in wanted.items():
        f = data_file(p)
        if f is not None:
            with open(f, "rb") as fh:
                if hashlib.md5(fh.read()).hexdigest() != md5s[n]:
                    bad += 1
    result.update({"arrived": sorted(arrived.values()), "db": db, "once_seconds": once_seconds,
                   "bad_md5": bad, "timed_out": len(arrived) < len(wanted)})
finally:
    if stopped:
        subprocess.run(["systemctl", "start", "swift-object-replicator"])
    if result.get("old_tree"):
        t = time.monotonic()
        shutil.rmtree(result["old_tree"], ignore_errors=True)
        result["old_tree_removal_s"] = time.monotonic() - t
print(json.dumps(result))
"""


# --- the Swift client -----------------------------------------------------------------


class FileSlice:
    """``length`` bytes of a file from ``offset``: a request body with a known length."""

    def __init__(self, path: Path, offset: int, length: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self._file.seek(offset)
        self._left = length
        self._length = length

    def __len__(self) -> int:
        return self._length

    def read(self, size: int = -1) -> bytes:
        if self._left <= 0:
            return b""
        size = self._left if size < 0 else min(size, self._left)
        data = self._file.read(size)
        self._left -= len(data)
        return data

    def close(self) -> None:
        self._file.close()


class Swift:
    """Swift through its proxy: a token and the endpoint from the catalog, then plain HTTP."""

    def __init__(self, cloud: str) -> None:
        import openstack  # late: its import takes a while and --help needs none of it

        self.conn = openstack.connect(cloud=cloud)
        self.session = self.conn.session
        self.endpoint = self.session.get_endpoint(service_type="object-store", interface="public")
        if not self.endpoint:
            raise BenchmarkError(f"cloud {cloud}: no object-store endpoint in the catalog")
        self.endpoint = self.endpoint.rstrip("/")
        self.account = urlsplit(self.endpoint).path.rstrip("/").split("/")[-1]
        self.token = ""
        self.refresh()
        self.containers: list[str] = []
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """A valid token (keystoneauth renews it when it nears its expiry)."""
        self.token = self.session.get_token()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"X-Auth-Token": self.token, **(extra or {})}

    def url(self, container: str, name: str | None = None) -> str:
        path = f"{self.endpoint}/{quote(container)}"
        return path if name is None else f"{path}/{quote(name)}"

    def info(self) -> dict[str, Any]:
        parts = urlsplit(self.endpoint)
        response = requests.get(f"{parts.scheme}://{parts.netloc}/info", timeout=30)
        return dict(response.json()) if response.ok else {}

    def create_container(self, http: requests.Session, container: str) -> None:
        with self._lock:
            self.containers.append(container)
        response = http.put(self.url(container), headers=self.headers(), timeout=60)
        expect(response, (201, 202), f"PUT container {container}")

    def list_names(self, http: requests.Session, container: str) -> list[str] | None:
        names: list[str] = []
        marker = ""
        while True:
            response = http.get(
                self.url(container),
                params={"format": "json", "marker": marker, "limit": "10000"},
                headers=self.headers(),
                timeout=60,
            )
            if response.status_code == 404:
                return None
            expect(response, (200, 204), f"GET container {container}")
            page = [item["name"] for item in response.json()] if response.content else []
            if not page:
                return names
            names += page
            marker = page[-1]

    def delete_everything(self) -> list[str]:
        """Delete every container this client created and what they hold; the problems."""
        problems: list[str] = []
        with contextlib.suppress(Exception):
            self.refresh()
        http = requests.Session()
        for container in reversed(self.containers):
            for attempt in range(10):
                try:
                    names = self.list_names(http, container)
                    if names is None:
                        break
                    for name in names:
                        http.delete(self.url(container, name), headers=self.headers(), timeout=60)
                    response = http.delete(self.url(container), headers=self.headers(), timeout=60)
                    if response.status_code in (204, 404):
                        break
                except requests.RequestException as exc:
                    if attempt == 9:
                        problems.append(f"{container}: {exc}")
                time.sleep(min(2.0, 0.25 * (attempt + 1)))
            else:
                problems.append(f"container {container} could not be deleted (still not empty?)")
        self.containers.clear()
        return problems


def expect(response: requests.Response, codes: tuple[int, ...], what: str) -> None:
    if response.status_code not in codes:
        raise BenchmarkError(f"{what}: HTTP {response.status_code} {response.text[:300]}")


def run_clients(
    clients: list[requests.Session], jobs: list[Any], work: Callable[[requests.Session, Any], None]
) -> float:
    """Run ``work(session, job)`` for every job on len(clients) threads; the wall time.

    Jobs are dealt round-robin; each thread keeps its own keep-alive session.
    """
    errors: list[BaseException] = []
    slices = [jobs[n :: len(clients)] for n in range(len(clients))]
    start = threading.Barrier(len(clients) + 1)

    stop = threading.Event()

    def worker(http: requests.Session, mine: list[Any]) -> None:
        start.wait()
        try:
            for job in mine:
                if stop.is_set():
                    return
                work(http, job)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)
            stop.set()

    threads = [
        threading.Thread(target=worker, args=(http, mine), daemon=True)
        for http, mine in zip(clients, slices, strict=True)
    ]
    for thread in threads:
        thread.start()
    start.wait()
    t0 = time.perf_counter()
    try:
        for thread in threads:
            thread.join()
    except BaseException:
        # Ctrl-C: no new request, so that the cleanup finds every object made.
        stop.set()
        for thread in threads:
            thread.join(REQUEST_TIMEOUT)
        raise
    seconds = time.perf_counter() - t0
    if errors:
        raise (
            errors[0]
            if isinstance(errors[0], BenchmarkError)
            else BenchmarkError(f"{type(errors[0]).__name__}: {errors[0]}")
        )
    return seconds


def connected_sessions(api: Swift, container: str, count: int) -> list[requests.Session]:
    """``count`` sessions, each with its connection to the proxy open already."""
    sessions = []
    for _ in range(count):
        http = requests.Session()
        expect(http.head(api.url(container), headers=api.headers(), timeout=60), (204,), "HEAD")
        sessions.append(http)
    return sessions


# --- results ----------------------------------------------------------------------------


@dataclass
class Cell:
    """One operation on one batch, each run's seconds."""

    section: str  # small | large
    count: int
    size: int
    operation: str
    clients: int | None
    reference: str | None  # key of the host row it is compared with
    seconds: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def objects_per_s(self) -> float:
        return self.count / self.median if self.median > 0 else float("inf")

    @property
    def mib_per_s(self) -> float:
        return self.count * self.size / MiB / self.median if self.median > 0 else float("inf")


HOST_ROWS = {
    "cp+sync": "host: `cp -r` + `sync`",
    "cp+fsync": "host: `cp -r` + fsync of each copy",
    "3cp+fsync": "host: 3 x (`cp -r` + fsync of each copy)",
    "cp": "host: `cp -r` (no sync)",
}


@dataclass
class Results:
    cells: dict[tuple[str, int, int, str, int | None], Cell] = field(default_factory=dict)
    replication: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def cell(
        self,
        section: str,
        count: int,
        size: int,
        operation: str,
        clients: int | None = None,
        reference: str | None = None,
    ) -> Cell:
        key = (section, count, size, operation, clients)
        if key not in self.cells:
            self.cells[key] = Cell(section, count, size, operation, clients, reference)
        return self.cells[key]

    def host_cell(self, section: str, count: int, size: int, key: str) -> Cell | None:
        cell = self.cells.get((section, count, size, HOST_ROWS[key], None))
        return cell if cell is not None and cell.seconds else None


# --- measurements -------------------------------------------------------------------------


def host_copies(
    ssh: Ssh | None,
    section: str,
    count: int,
    size: int,
    args: argparse.Namespace,
    host_dir: str,
    res: Results,
) -> None:
    if ssh is None:
        return
    label = f"{count} x {size_label(size)}"
    print(f"{section} {label}: cp on the storage host ...", file=sys.stderr)
    arg = {"dir": f"{host_dir}/cp", "count": count, "size": size, "repeat": args.repeat}
    out = ssh.python(REMOTE_CP, arg, timeout=3600)
    if "skipped" in out:
        res.notes.append(f"- host cp of {label}: skipped, {out['skipped']}.")
        return
    for key, label_text in HOST_ROWS.items():
        res.cell(section, count, size, label_text).seconds += out[key]


def small_batch(
    api: Swift,
    count: int,
    size: int,
    clients: int,
    args: argparse.Namespace,
    prefix: str,
    res: Results,
) -> None:
    payloads = [secrets.token_bytes(size) for _ in range(count)]
    sums = [md5_hex(p) for p in payloads]
    for attempt in range(args.repeat):
        api.refresh()
        container = f"{prefix}-s{size}-c{clients}-{attempt}"
        http = requests.Session()
        api.create_container(http, container)
        sessions = connected_sessions(api, container, clients)
        names = [f"obj-{n:06d}" for n in range(count)]

        def put(
            http: requests.Session, n: int, container: str = container, names: list[str] = names
        ) -> None:
            response = http.put(
                api.url(container, names[n]),
                data=payloads[n],
                headers=api.headers({"ETag": sums[n], "Content-Type": "application/octet-stream"}),
                timeout=REQUEST_TIMEOUT,
            )
            expect(response, (201,), f"PUT {names[n]}")

        def get(
            http: requests.Session, n: int, container: str = container, names: list[str] = names
        ) -> None:
            response = http.get(
                api.url(container, names[n]), headers=api.headers(), timeout=REQUEST_TIMEOUT
            )
            expect(response, (200,), f"GET {names[n]}")
            if md5_hex(response.content) != sums[n]:
                raise BenchmarkError(f"GET {container}/{names[n]}: wrong md5")

        def delete(
            http: requests.Session, n: int, container: str = container, names: list[str] = names
        ) -> None:
            response = http.delete(
                api.url(container, names[n]), headers=api.headers(), timeout=REQUEST_TIMEOUT
            )
            expect(response, (204,), f"DELETE {names[n]}")

        for operation, work, reference in (
            ("PUT", put, "cp+sync"),
            ("GET", get, "cp"),
            ("DELETE", delete, None),
        ):
            cpu0 = time.process_time()
            seconds = run_clients(sessions, list(range(count)), work)
            cell = res.cell("small", count, size, operation, clients, reference)
            cell.seconds.append(seconds)
            cell.client_cpu.append(time.process_time() - cpu0)
        for s in sessions:
            s.close()


def write_random_file(path: Path, size: int) -> str:
    """A file of random content (a pool from the kernel, each MiB stamped); its md5."""
    pool = os.urandom(min(size, 16 * MiB))
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "wb") as out:
        written, number = 0, 0
        while written < size:
            n = min(MiB, size - written)
            start = (number * 7919) % max(1, len(pool) - n + 1)
            chunk = (number.to_bytes(8, "big") + pool[start + 8 : start + n])[:n]
            out.write(chunk)
            digest.update(chunk)
            written += n
            number += 1
    return digest.hexdigest()


def large_batch(
    api: Swift,
    count: int,
    size: int,
    args: argparse.Namespace,
    workdir: Path,
    prefix: str,
    res: Results,
) -> None:
    source = workdir / f"large-{size}.bin"
    print(f"large {count} x {size_label(size)}: writing a local file ...", file=sys.stderr)
    expected = write_random_file(source, size)
    segments = segments_of(size, args.segment_size)
    segment_md5 = []
    with open(source, "rb") as handle:
        for _, length in segments:
            segment_md5.append(md5_hex(handle.read(length)))
    max_object = int(api.info().get("swift", {}).get("max_file_size", 5 * GiB))
    try:
        for attempt in range(args.repeat):
            api.refresh()
            container = f"{prefix}-l{size}-{attempt}"
            seg_container = f"{container}-segments"
            http = requests.Session()
            api.create_container(http, container)
            api.create_container(http, seg_container)
            names = [f"large-{n:04d}" for n in range(count)]

            def put_single(
                http: requests.Session,
                n: int,
                container: str = container,
                names: list[str] = names,
            ) -> None:
                with open(source, "rb") as body:
                    response = http.put(
                        api.url(container, names[n]),
                        data=body,
                        headers=api.headers({"ETag": expected}),
                        timeout=REQUEST_TIMEOUT,
                    )
                expect(response, (201,), f"PUT {names[n]}")

            def get_check(http: requests.Session, name: str, container: str = container) -> None:
                digest = hashlib.md5(usedforsecurity=False)
                with http.get(
                    api.url(container, name),
                    headers=api.headers(),
                    stream=True,
                    timeout=REQUEST_TIMEOUT,
                ) as response:
                    expect(response, (200,), f"GET {name}")
                    got = 0
                    for chunk in response.iter_content(CHUNK):
                        digest.update(chunk)
                        got += len(chunk)
                if got != size or digest.hexdigest() != expected:
                    raise BenchmarkError(f"GET {container}/{name}: {got} bytes, wrong md5")

            if size <= max_object:
                print(f"large {count} x {size_label(size)}: single PUT, GET ...", file=sys.stderr)
                one = connected_sessions(api, container, 1)
                cpu0 = time.process_time()
                seconds = run_clients(one, list(range(count)), put_single)
                cell = res.cell("large", count, size, "single PUT", 1, "cp+sync")
                cell.seconds.append(seconds)
                cell.client_cpu.append(time.process_time() - cpu0)
                cpu0 = time.process_time()
                seconds = run_clients(one, names, get_check)
                cell = res.cell("large", count, size, "GET (single object)", 1, "cp")
                cell.seconds.append(seconds)
                cell.client_cpu.append(time.process_time() - cpu0)
            elif attempt == 0:
                res.notes.append(
                    f"- {size_label(size)}: no single PUT, above the cluster's max_file_size "
                    f"({size_label(max_object)})."
                )

            for clients in args.concurrency:
                print(
                    f"large {count} x {size_label(size)}: SLO PUT with {clients} client(s) ...",
                    file=sys.stderr,
                )
                sessions = connected_sessions(api, seg_container, clients)
                slo_names = [f"slo-{clients}-{n:04d}" for n in range(count)]
                cpu0 = time.process_time()
                t0 = time.perf_counter()
                for n in range(count):
                    upload_slo(
                        api,
                        sessions,
                        source,
                        segments,
                        segment_md5,
                        seg_container,
                        container,
                        slo_names[n],
                    )
                seconds = time.perf_counter() - t0
                cell = res.cell(
                    "large",
                    count,
                    size,
                    f"SLO PUT: {len(segments)} segments of {size_label(args.segment_size)} "
                    f"by {clients} thread(s) + manifest",
                    clients,
                    "cp+sync",
                )
                cell.seconds.append(seconds)
                cell.client_cpu.append(time.process_time() - cpu0)
                if clients == args.concurrency[0]:
                    cpu0 = time.process_time()
                    seconds = run_clients(sessions[:1], slo_names, get_check)
                    cell = res.cell("large", count, size, "GET (SLO)", 1, "cp")
                    cell.seconds.append(seconds)
                    cell.client_cpu.append(time.process_time() - cpu0)
                for s in sessions:
                    s.close()
    finally:
        source.unlink(missing_ok=True)


def upload_slo(
    api: Swift,
    sessions: list[requests.Session],
    source: Path,
    segments: list[tuple[int, int]],
    segment_md5: list[str],
    seg_container: str,
    container: str,
    name: str,
) -> None:
    def put_segment(http: requests.Session, index: int) -> None:
        offset, length = segments[index]
        body = FileSlice(source, offset, length)
        try:
            response = http.put(
                api.url(seg_container, f"{name}/{index:08d}"),
                data=body,
                headers=api.headers({"ETag": segment_md5[index]}),
                timeout=REQUEST_TIMEOUT,
            )
        finally:
            body.close()
        expect(response, (201,), f"PUT segment {index} of {name}")

    run_clients(sessions, list(range(len(segments))), put_segment)
    manifest = [
        {"path": f"/{seg_container}/{name}/{i:08d}", "etag": segment_md5[i], "size_bytes": n}
        for i, (_, n) in enumerate(segments)
    ]
    response = sessions[0].put(
        api.url(container, name),
        params={"multipart-manifest": "put"},
        data=json.dumps(manifest),
        headers=api.headers({"Content-Type": "application/octet-stream"}),
        timeout=REQUEST_TIMEOUT,
    )
    expect(response, (201,), f"PUT SLO manifest {name}")


def replication(
    api: Swift, ssh: Ssh, args: argparse.Namespace, prefix: str, interval: str, res: Results
) -> None:
    count, size = args.replication_objects, args.replication_size
    payloads = [secrets.token_bytes(size) for _ in range(count)]
    names = [f"repl-{n:06d}" for n in range(count)]
    sums = {name: md5_hex(p) for name, p in zip(names, payloads, strict=True)}
    modes = ["daemon"] + (["once"] if args.forced_pass else [])
    for mode in modes:
        api.refresh()
        container = f"{prefix}-repl-{mode}"
        http = requests.Session()
        api.create_container(http, container)
        print(f"replication ({mode}): storing {count} objects ...", file=sys.stderr)
        sessions = connected_sessions(api, container, max(args.concurrency))

        def put(
            http: requests.Session, n: int, container: str = container, names: list[str] = names
        ) -> None:
            response = http.put(
                api.url(container, names[n]),
                data=payloads[n],
                headers=api.headers({"ETag": sums[names[n]]}),
                timeout=REQUEST_TIMEOUT,
            )
            expect(response, (201,), f"PUT {names[n]}")

        run_clients(sessions, list(range(count)), put)
        print(f"replication ({mode}): wiping {args.device} ...", file=sys.stderr)
        arg = {
            "devices_dir": args.devices_dir,
            "device": args.device,
            "account": api.account,
            "container": container,
            "objects": names,
            "md5": sums,
            "mode": mode,
            "timeout": args.replication_timeout,
            "settle_timeout": 60,
        }
        if mode == "once":
            res.notes.append(
                "- The forced pass stopped `swift-object-replicator` for its duration; "
                "it was started again afterwards."
            )
        out = ssh.python(REMOTE_REPLICATION, arg, timeout=args.replication_timeout + 300, live=True)
        out["mode"] = mode
        out["count"] = count
        out["size"] = size
        # Every object, through the proxy.
        api.refresh()
        bad: list[str] = []

        def check(
            http: requests.Session, name: str, bad: list[str] = bad, container: str = container
        ) -> None:
            response = http.get(api.url(container, name), headers=api.headers(), timeout=60)
            if response.status_code != 200 or md5_hex(response.content) != sums[name]:
                bad.append(name)

        run_clients(sessions, names, check)
        out["proxy_bad"] = len(bad)
        res.replication.append(out)
        if out.get("timed_out"):
            res.errors.append(
                f"- replication ({mode}): not every object was back on {args.device} within "
                f"{args.replication_timeout:.0f} s"
            )
        if out.get("bad_md5") or bad:
            res.errors.append(
                f"- replication ({mode}): {out.get('bad_md5')} restored files on {args.device} "
                f"and {len(bad)} downloads with a wrong md5"
            )
        for s in sessions:
            s.close()
        if len(modes) > 1 and mode == "daemon":
            time.sleep(2)
    res.notes.append(
        f"- Replication interval (object-server.conf `[object-replicator]`): {interval}."
    )


# --- report -----------------------------------------------------------------------------


def ratio(cell: Cell, res: Results, reference: str | None) -> str:
    """This row's rate divided by the host row ``reference``'s (same files)."""
    if reference is None:
        return "—"
    ref = res.host_cell(cell.section, cell.count, cell.size, reference)
    if ref is None:
        return "—"
    return percent(ref.median / cell.median) if cell.median > 0 else "—"


def percent(fraction: float) -> str:
    pct = 100 * fraction
    if pct >= 10:
        return f"{pct:.0f} %"
    return f"{pct:.1f} %" if pct >= 1 else f"{pct:.2f} %"


def cell_rows(res: Results, section: str) -> list[str]:
    out = []
    for cell in res.cells.values():
        if cell.section != section or not cell.seconds:
            continue
        host = cell.clients is None
        ref = "" if host else f" of {cell.reference}" if cell.reference else ""
        cpu = statistics.median(cell.client_cpu) if cell.client_cpu else None
        cells = [
            f"{cell.count} x {size_label(cell.size)}",
            cell.operation if host else f"Swift {cell.operation}",
            "—" if host else str(cell.clients),
            fmt(cell.median),
        ]
        if section == "small":
            cells.append(fmt(cell.objects_per_s, 1))
        cells += [
            fmt(cell.mib_per_s, 1),
            "—" if host else ratio(cell, res, cell.reference) + ref,
            ratio(cell, res, "3cp+fsync") if cell.reference == "cp+sync" else "—",
            fmt(cpu) if cpu is not None else "—",
        ]
        out.append("| " + " | ".join(cells) + " |")
    return out


def print_report(res: Results, header: list[str], reference: list[str]) -> None:
    out = [*header, ""]
    heads = [
        "objects",
        "operation",
        "clients",
        "seconds",
        "objects/s",
        "MiB/s",
        "% of host cp",
        "% of host 3 x (cp + fsync)",
        "client CPU s",
    ]
    small = cell_rows(res, "small")
    if small:
        out += ["### Small objects through the proxy, and cp on the storage host (median)", ""]
        out += ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads), *small, ""]
    large = cell_rows(res, "large")
    if large:
        heads_l = [h for h in heads if h != "objects/s"]
        out += ["### Large objects through the proxy, and cp on the storage host (median)", ""]
        out += ["| " + " | ".join(heads_l) + " |", "|" + "---|" * len(heads_l), *large, ""]
    if res.replication:
        out += ["### Replication: device wiped, time until every object's replica is back", ""]
        heads_r = [
            "pass",
            "objects (replicas on the device)",
            "first back s",
            "50 % s",
            "90 % s",
            "all back s",
            "container DB back s",
            "account DB back s",
            "forced pass ran s",
            "md5 bad (device / proxy)",
        ]
        out += ["| " + " | ".join(heads_r) + " |", "|" + "---|" * len(heads_r)]
        for rep in res.replication:
            arrived = rep.get("arrived", [])
            total = rep.get("objects_on_device", 0)
            first, half, ninety, everything = percentile_times(
                arrived, total, (1 / max(total, 1), 0.5, 0.9, 1.0)
            )
            db = rep.get("db", {})
            label = (
                "replicator daemons as configured"
                if rep["mode"] == "daemon"
                else "forced: `swift-object-replicator ... once` (daemon stopped)"
            )
            out.append(
                "| "
                + " | ".join(
                    [
                        label,
                        f"{rep['count']} x {size_label(rep['size'])} ({total})",
                        fmt(first, 1),
                        fmt(half, 1),
                        fmt(ninety, 1),
                        fmt(everything, 1) + (" (timed out)" if rep.get("timed_out") else ""),
                        fmt(db.get("container"), 1)
                        if rep.get("container_db_on_device")
                        else "not on it",
                        fmt(db.get("account"), 1)
                        if rep.get("account_db_on_device")
                        else "not on it",
                        fmt(rep.get("once_seconds"), 1),
                        f"{rep.get('bad_md5', '—')} / {rep.get('proxy_bad', '—')}",
                    ]
                )
                + " |"
            )
        out.append("")
        removal = ", ".join(
            f"{rep['mode']} {fmt(rep.get('old_tree_removal_s'))} s"
            for rep in res.replication
            if rep.get("old_tree_removal_s") is not None
        )
        passes = ", ".join(
            f"after the {rep['mode']} watch {fmt(rep['replication_time_min'] * 60, 0)} s"
            for rep in res.replication
            if isinstance(rep.get("replication_time_min"), int | float)
        )
        out += [
            "Duration of the object replicator's last complete pass over all local devices "
            "(recon's `object_replication_time` as the watch ended; in the forced run, the "
            f"forced pass): {passes or 'unknown'}.",
            "",
            "Times are from the moment an empty directory replaced the device (the old "
            "tree renamed aside, then `mkdir`; the old tree was deleted after the watch: "
            f"{removal}). Only this run's objects are watched, located through the rings and "
            "hash path secrets; `forced pass ran s`: when `swift-object-replicator ... once` "
            "(all local devices) ended.",
            "",
        ]
    out += ["### Reference figures (shared BENCHMARKS.md)", "", *reference, ""]
    notes = [
        "- `% of host cp`: this row's rate as a percentage of the host's, for the same "
        "number of files of the same size: writes (PUT) against `cp -r` + `sync`, reads "
        "(GET) against `cp -r` alone. `% of host 3 x (cp + fsync)`: writes against three "
        "copies, each file fsynced, what Swift's three replicas (each fsynced before the "
        "object server answers) cost on one disk at the least. `sync` flushes the whole "
        "machine's dirty data, other work's too.",
        "- Client CPU: this script's own CPU seconds during the cell (requests, md5 checks); "
        "it runs on the same cores as the storage host.",
        *res.notes,
        *res.errors,
    ]
    out += ["Notes:", "", *notes, ""]
    print("\n".join(out), flush=True)


def reference_lines(path: Path, res: Results) -> list[str]:
    measured = []
    for host_key, what in (("cp+sync", "`cp -r` + `sync`"), ("cp", "a plain `cp -r`")):
        fractions = []
        for cell in res.cells.values():
            ref = res.host_cell(cell.section, cell.count, cell.size, host_key)
            if cell.clients is not None and cell.reference == "cp+sync" and ref and cell.seconds:
                fractions.append(ref.median / cell.median)
        if fractions:
            low, high = percent(min(fractions)), percent(max(fractions))
            measured.append(
                f"Measured here, Swift PUT as a percentage of {what} of the same data on the "
                f"storage host: {low if low == high else f'{low} to {high}'} "
                f"({len(fractions)} PUT cell{'s' if len(fractions) > 1 else ''} above)."
            )
    if not measured:
        measured = ["Measured here: no PUT cell with a host cp beside it."]
    measured = [f"- {line}" for line in measured]
    if path.is_file():
        found = swift_references(path.read_text(errors="replace"))
        if not found:
            return [f"- {path} has no figures for Swift.", *measured]
        return [f"- {line} (source: {path})" for line in found] + measured
    return [
        f"- {PUBLISHED_SWIFT} (source: shared BENCHMARKS.md, published reference, "
        f"not measured here; {path} not found)",
        *measured,
    ]


# --- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cloud", default="stratus-demo", help="clouds.yaml cloud (stratus-demo)")
    parser.add_argument(
        "--clouds-yaml",
        type=Path,
        help="clouds.yaml to read (default: openstacksdk's search, /etc/openstack/clouds.yaml "
        "among them)",
    )
    parser.add_argument("--small", default="500x4K,200x64K", help="countxsize batches")
    parser.add_argument("--large", default="4x64M", help="countxsize of large objects (4x64M)")
    parser.add_argument("--segment-size", default="16M", help="SLO segment size (16M)")
    parser.add_argument("--concurrency", default="1,4", help="client threads (1,4)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each cell (1)")
    parser.add_argument(
        "--ssh",
        dest="ssh_target",
        default="",
        help="the storage host's ssh target (default root@<the object-store endpoint's host>)",
    )
    parser.add_argument("--ssh-key", default=DEFAULT_SSH_KEY, help=f"({DEFAULT_SSH_KEY})")
    parser.add_argument(
        "--ssh-option",
        action="append",
        default=None,
        help="ssh -o option, repeatable (default: the lab's options: "
        + ", ".join(DEFAULT_SSH_OPTIONS)
        + ")",
    )
    parser.add_argument(
        "--no-ssh",
        action="store_true",
        help="no storage host: neither cp nor replication, only the proxy",
    )
    parser.add_argument("--devices-dir", default="/srv/node", help="(/srv/node)")
    parser.add_argument("--device", default="d1", help="device to wipe (d1)")
    parser.add_argument("--replication-objects", type=int, default=200, help="(200)")
    parser.add_argument("--replication-size", default="4K", help="(4K)")
    parser.add_argument(
        "--replication-timeout", type=float, default=900.0, help="seconds to wait (900)"
    )
    parser.add_argument(
        "--forced-pass",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a `swift-object-replicator once` pass (default: yes)",
    )
    parser.add_argument("--no-replication", action="store_true", help="do not wipe a device")
    parser.add_argument(
        "--reference-file", type=Path, default=SHARED_BENCHMARKS, help=f"({SHARED_BENCHMARKS})"
    )
    args = parser.parse_args(argv)
    try:
        args.small = parse_batches(args.small) if args.small.strip() else []
        args.large = parse_batches(args.large) if args.large.strip() else []
        args.segment_size = parse_size(args.segment_size)
        args.replication_size = parse_size(args.replication_size)
        args.concurrency = parse_ints(args.concurrency)
    except ValueError as exc:
        parser.error(f"cannot read {exc}: batches look like 500x4K,200x64K, sizes like 16M")
    if args.segment_size < MiB:
        parser.error("--segment-size: at least 1M (Swift's default min_segment_size)")
    if not 1 <= args.repeat <= 20:
        parser.error("--repeat: between 1 and 20")
    if args.replication_objects < 1:
        parser.error("--replication-objects: at least 1")
    if args.ssh_option is None:
        args.ssh_option = list(DEFAULT_SSH_OPTIONS)
    return args


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.clouds_yaml is not None:
        if not args.clouds_yaml.is_file():
            print(f"no clouds.yaml at {args.clouds_yaml} (run `make aio` first)", file=sys.stderr)
            return 2
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(args.clouds_yaml)
    res = Results()
    started = datetime.now(UTC)
    t_start = time.perf_counter()
    failed = False
    load_before = load_average()
    host_info: dict[str, Any] = {}
    interval = "unknown"
    api: Swift | None = None
    ssh: Ssh | None = None
    prefix = f"stratus-bench-{secrets.token_hex(4)}"
    host_dir = ""
    with signals_as_interrupt(), cleanup_stack() as stack:
        workdir = Path(tempfile.mkdtemp(prefix="stratus-bench-object-"))
        stack.callback(shutil.rmtree, workdir, True)
        try:
            print(f"authenticating as cloud {args.cloud} ...", file=sys.stderr)
            api = Swift(args.cloud)
            stack.callback(report_cleanup, api, res)
            if not args.no_ssh:
                target = args.ssh_target or f"root@{urlsplit(api.endpoint).hostname}"
                ssh = Ssh(target, args.ssh_key, args.ssh_option)
                host_info = ssh.python(
                    REMOTE_INFO, {"devices_dir": args.devices_dir, "device": args.device}, 60
                )
                conf = host_info.get("object_server_conf", "")
                value = ini_option(conf, "object-replicator", "interval")
                interval = f"{value} s" if value else "not set (Swift's default 30 s)"
                concurrency = ini_option(conf, "object-replicator", "concurrency") or "default 1"
                interval += f", replicator concurrency {concurrency}"
                host_dir = f"{args.devices_dir}/{prefix}"
                stack.callback(
                    remote_quietly,
                    ssh,
                    f"rm -rf {shlex.quote(host_dir)} "
                    f"{shlex.quote(args.devices_dir)}/.stratus-bench-*-wiped-* "
                    f"{shlex.quote(os.path.dirname(args.devices_dir.rstrip('/')))}"
                    "/.stratus-bench-*-wiped-*",
                )
            for count, size in args.small:
                host_copies(ssh, "small", count, size, args, host_dir, res)
                for clients in args.concurrency:
                    print(
                        f"small {count} x {size_label(size)}, {clients} client(s): "
                        "PUT, GET, DELETE ...",
                        file=sys.stderr,
                    )
                    small_batch(api, count, size, clients, args, prefix, res)
            for count, size in args.large:
                host_copies(ssh, "large", count, size, args, host_dir, res)
                large_batch(api, count, size, args, workdir, prefix, res)
            if ssh is not None and not args.no_replication:
                if not host_info.get("device_exists"):
                    raise BenchmarkError(f"{args.devices_dir}/{args.device} is not on the host")
                if args.forced_pass:
                    # The forced pass stops the daemon; start it again whatever happens.
                    stack.callback(remote_quietly, ssh, "systemctl start swift-object-replicator")
                replication(api, ssh, args, prefix, interval, res)
        except (BenchmarkError, requests.RequestException, OSError) as exc:
            failed = True
            res.errors.append(f"- stopped: {' '.join(str(exc).split())[:1500]}")
            print(f"object storage benchmark: {exc}", file=sys.stderr)
        except Exception as exc:  # keystoneauth/openstacksdk errors have no common base here
            failed = True
            res.errors.append(
                f"- stopped: {type(exc).__name__}: {' '.join(str(exc).split())[:1500]}"
            )
            print(f"object storage benchmark: {type(exc).__name__}: {exc}", file=sys.stderr)
        if api is not None:
            for problem in api.delete_everything():
                res.errors.append(f"- cleanup: {problem}")
        elapsed = time.perf_counter() - t_start
        header = [
            f"## Object storage benchmark, {started:%Y-%m-%d %H:%M} UTC",
            "",
            f"- Client machine: {machine_description()}; load average before: {load_before}, "
            f"after: {load_average()} (other work on the machine skews every row alike).",
        ]
        if host_info:
            header.append(
                f"- Storage host {host_info.get('hostname')} ({ssh.target if ssh else ''}): "
                f"Swift {host_info.get('swift')}, Linux {host_info.get('kernel')}, "
                f"{host_info.get('cpus')} CPUs; devices under {args.devices_dir} on "
                f"{host_info.get('devices_df')}; host cp in a directory of that file system; "
                f"replication {interval}. Page cache not dropped."
            )
        if api is not None:
            header.append(
                f"- Swift proxy {api.endpoint.split('/v1/')[0]}, cloud `{args.cloud}`, "
                f"account {api.account}; client: python-requests {requests.__version__}, one "
                f"keep-alive session per client thread; {args.repeat} run(s) per cell, median; "
                f"whole run {elapsed:.0f} s."
            )
        print_report(res, header, reference_lines(args.reference_file, res))
    return 1 if failed or res.errors else 0


def remote_quietly(ssh: Ssh, command: str) -> None:
    """A cleanup command on the storage host; a failure is only reported."""
    try:
        ssh.shell(command)
    except (BenchmarkError, OSError, subprocess.TimeoutExpired) as exc:
        print(f"cleanup on {ssh.target}: {exc}", file=sys.stderr)


def report_cleanup(api: Swift, res: Results) -> None:
    """Last resort on the exit stack (the normal path has cleaned up already)."""
    for problem in api.delete_everything():
        print(f"cleanup: {problem}", file=sys.stderr)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(
            "interrupted; every container, object and file made here was removed",
            file=sys.stderr,
        )
        sys.exit(130)
