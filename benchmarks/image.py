#!/usr/bin/env python3
"""Image benchmark: Stratus image data throughput next to cp and dd on the same disk.

For each image size (default 1 GiB and 4 GiB) it writes a file of random
content once (not timed), then measures, as Markdown tables:

- **upload**: ``POST /v2/images`` (raw, bare) and ``PUT /v2/images/{id}/file``
  streaming the file from disk (httpx with a generator, 4 MiB reads, never
  the whole file in memory) until the 204; afterwards (not timed) the image
  must be ``active`` with ``checksum`` equal to the file's md5 and ``size``
  equal to its size;
- **download**: ``GET /v2/images/{id}/file`` streamed into a file on the same
  disk; afterwards (not timed) its sha512 must equal ``os_hash_value``;
- the **physical limit** on the same disk: ``cp`` of the same file and
  ``dd bs=4M``, each also with the fsync of the copy (the upload fsyncs its
  data before it answers 204, so it is compared with ``cp + fsync``; the
  download does not fsync and is compared with plain ``cp``);
- the **hashing floor**: md5 + sha512 of the file in Python (one thread,
  4 MiB chunks, file in the page cache), since the service hashes every
  byte it receives.

Each row gives seconds and MiB/s (median of ``--repeat`` runs), the ratio to
cp and dd, the CPU time spent (service processes + this client, or cp/dd
themselves), and for Stratus the peak RSS of the busiest image-service
process during the operation and how much it grew: a 4 GiB upload must not
need GiB of memory. When run as root the page cache is dropped before every
timed run (``sync; echo 3 > /proc/sys/vm/drop_caches``), for Stratus and
cp/dd alike; the header says whether it was.

The services run as in production: ``stratus-api identity`` and
``stratus-api image`` with ``workers = 2`` each, on SQLite, the image service
registered with ``stratus-manage service register``; its data and staging
directories, the reference file and every copy live in one temporary
directory under ``--dir`` (one filesystem). Sizes that do not fit (about
3 times the size free) are skipped, saying so. Every process, image and temporary
file is removed at exit, also on Ctrl-C.

    .venv/bin/python benchmarks/image.py                      # 1 GiB and 4 GiB
    .venv/bin/python benchmarks/image.py --sizes 64M --repeat 3 --dir /var/tmp

No figure printed here is a pass/fail threshold; a wrong checksum is an error.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import hashlib
import importlib.metadata
import importlib.util
import os
import pwd
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from harness import (
    LOOPBACK,
    BenchmarkError,
    GiB,
    MiB,
    check_loopback,
    cleanup_stack,
    free_port,
    loopback_url,
    machine_description,
    parse_size,
    run,
    signals_as_interrupt,
    size_label,
    spawn,
    wait_answer,
)

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

CHUNK = 4 * MiB  # client reads, file generation, hashing: like dd bs=4M
SPACE_FACTOR = 3  # reference file + stored image + one copy or download
SPACE_MARGIN = 256 * MiB
SAMPLE_INTERVAL = 0.05
CLK_TCK = os.sysconf("SC_CLK_TCK")

SERVICE_USER = "glance"  # as the role registers it


# --- the image service's processes: memory and CPU ----------------------------------


def group_members(pgid: int) -> dict[int, str]:
    """PID -> role of each live process in the process group ``pgid``."""
    found: dict[int, str] = {}
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            text = Path(stat).read_text()
        except OSError:
            continue
        fields = text[text.rfind(")") + 2 :].split()
        if int(fields[2]) != pgid:
            continue
        pid = int(stat.split("/")[2])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if pid == pgid:
            role = "supervisor"
        elif "resource_tracker" in cmdline:
            role = "resource tracker"
        elif "multiprocessing" in cmdline:
            role = "worker"
        else:
            role = "child"
        found[pid] = role
    return found


def status_kb(pid: int, *keys: str) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {
        line.split(":")[0]: int(line.split()[1])
        for line in text.splitlines()
        if line.split(":")[0] in keys
    }


def cpu_seconds(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = text[text.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def reset_peak(pid: int) -> bool:
    """Reset VmHWM to the current RSS (``clear_refs`` 5, Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


@dataclass
class MemoryWatch:
    """Peak RSS and CPU of a process group during one operation.

    VmHWM of each process is reset before the operation where the kernel
    allows it, so VmHWM afterwards is that operation's exact peak; VmRSS is
    also sampled every 50 ms, for kernels where VmHWM cannot be reset.
    """

    pgid: int
    members: dict[int, str] = field(default_factory=dict)
    rss_before: dict[int, float] = field(default_factory=dict)
    peak: dict[int, float] = field(default_factory=dict)
    cpu_before: dict[int, float] = field(default_factory=dict)
    cpu: float = 0.0
    hwm_reset: bool = True
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> MemoryWatch:
        self.members = group_members(self.pgid)
        for pid in self.members:
            self.hwm_reset = reset_peak(pid) and self.hwm_reset
            rss = status_kb(pid, "VmRSS").get("VmRSS", 0) / 1024
            self.rss_before[pid] = rss
            self.peak[pid] = rss
            self.cpu_before[pid] = cpu_seconds(pid)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_INTERVAL):
            for pid in self.members:
                rss = status_kb(pid, "VmRSS").get("VmRSS", 0) / 1024
                self.peak[pid] = max(self.peak[pid], rss)

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        for pid in self.members:
            fields = status_kb(pid, "VmRSS", "VmHWM")
            if self.hwm_reset and "VmHWM" in fields:
                self.peak[pid] = max(self.peak[pid], fields["VmHWM"] / 1024)
            self.cpu += cpu_seconds(pid) - self.cpu_before[pid]

    def busiest(self) -> tuple[float, float]:
        """(peak RSS MiB, growth MiB) of the process whose RSS grew most."""
        if not self.members:
            return float("nan"), float("nan")
        pid = max(self.members, key=lambda p: (self.peak[p] - self.rss_before[p], self.peak[p]))
        return self.peak[pid], self.peak[pid] - self.rss_before[pid]


# --- page cache ---------------------------------------------------------------------


def drop_caches() -> bool:
    """``sync; echo 3 > /proc/sys/vm/drop_caches``; False where not allowed."""
    os.sync()
    if os.geteuid() != 0:
        return False
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        return False
    return True


@dataclass
class Cache:
    enabled: bool
    dropped: int = 0
    failed: int = 0

    def prepare(self) -> None:
        """Before every timed run: dirty data written back, and the cache dropped if allowed."""
        if not self.enabled:
            os.sync()
            return
        if drop_caches():
            self.dropped += 1
        else:
            self.failed += 1

    def describe(self) -> str:
        if not self.enabled:
            return "not dropped (--no-drop-caches); `sync` before every timed run"
        if self.dropped and not self.failed:
            return (
                "dropped before every timed run (`sync; echo 3 > /proc/sys/vm/drop_caches`), "
                "for Stratus and cp/dd alike: reads come from the disk"
            )
        if self.dropped:
            return f"dropped before {self.dropped} of {self.dropped + self.failed} timed runs"
        why = "not root" if os.geteuid() != 0 else "/proc/sys/vm/drop_caches is not writable"
        return (
            f"**not** dropped ({why}); `sync` before every timed run: reads may come from "
            "the page cache, for Stratus and cp/dd alike"
        )


# --- servers ------------------------------------------------------------------------


@dataclass
class Services:
    identity_url: str
    image_url: str
    image_proc: subprocess.Popen[bytes]
    image_log: Path
    datadir: Path
    staging: Path
    token: str = ""
    cold_start: float = 0.0


def service_user_env() -> dict[str, str]:
    # Keys stay with the user running this script (stratus-manage would hand
    # them to a "stratus" user where one exists).
    return {**os.environ, "STRATUS_SERVICE_USER": pwd.getpwuid(os.geteuid()).pw_name}


def start_services(stack: contextlib.ExitStack, base: Path) -> Services:
    """Identity and image as in production: two workers each, SQLite, one temp dir."""
    env = service_user_env()
    idir, gdir = base / "identity", base / "image"
    idir.mkdir()
    gdir.mkdir()
    database = f"sqlite:///{idir / 'stratus.db'}"
    id_port, im_port = free_port(), free_port()
    id_url, im_url = loopback_url(id_port), loopback_url(im_port)
    id_conf = idir / "stratus.conf"
    id_conf.write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            log_format = json
            debug = false

            [database]
            connection = {database}

            [identity]
            bind_host = {LOOPBACK}
            bind_port = {id_port}
            workers = 2
            key_repository = {idir / "keys"}
            """
        )
    )
    admin_password = secrets.token_hex(16)
    service_password = secrets.token_hex(16)
    manage = [str(BIN / "stratus-manage"), "--config-file", str(id_conf)]
    run([*manage, "db", "sync"], env=env)
    run([*manage, "token", "setup-keys"], env=env)
    run(
        [*manage, "bootstrap", "--public-url", f"{id_url}/v3", "--internal-url", f"{id_url}/v3"],
        env={**env, "STRATUS_BOOTSTRAP_PASSWORD": admin_password},
    )
    run(
        [
            *manage,
            "service",
            "register",
            "--type",
            "image",
            "--name",
            "glance",
            "--description",
            "Stratus image service",
            "--public-url",
            im_url,
            "--user",
            SERVICE_USER,
        ],
        env={**env, "STRATUS_SERVICE_PASSWORD": service_password},
    )
    id_log = idir / "api.log"
    id_proc = spawn(
        stack, [str(BIN / "stratus-api"), "identity", "--config-file", str(id_conf)], id_log, env
    )
    wait_answer(f"{id_url}/v3", id_proc, id_log, timeout=60)

    datadir, staging = gdir / "images", gdir / "staging"
    im_conf = gdir / "stratus.conf"
    im_conf.write_text(
        textwrap.dedent(
            f"""\
            [DEFAULT]
            log_format = json
            debug = false

            [database]
            connection = {database}

            [image]
            bind_host = {LOOPBACK}
            bind_port = {im_port}
            workers = 2
            filesystem_store_datadir = {datadir}
            staging_dir = {staging}

            [image_authtoken]
            auth_url = {id_url}
            username = {SERVICE_USER}
            password = {service_password}
            """
        )
    )
    im_log = gdir / "api.log"
    im_proc = spawn(
        stack, [str(BIN / "stratus-api"), "image", "--config-file", str(im_conf)], im_log, env
    )
    cold = wait_answer(f"{im_url}/versions", im_proc, im_log, timeout=60)
    services = Services(id_url, im_url, im_proc, im_log, datadir, staging, cold_start=cold)
    with httpx.Client(base_url=check_loopback(id_url), timeout=60, trust_env=False) as client:
        body = {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": "admin",
                            "domain": {"name": "Default"},
                            "password": admin_password,
                        }
                    },
                },
                "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
            }
        }
        response = client.post("/v3/auth/tokens", json=body)
        if response.status_code != 201:
            raise BenchmarkError(f"token issue answered {response.status_code} {response.text}")
        services.token = response.headers["X-Subject-Token"]
    return services


# --- files ----------------------------------------------------------------------------


def write_random_file(path: Path, size: int) -> None:
    """Random-looking, incompressible, never sparse; fast to make.

    A 64 MiB pool from the kernel's generator, sliced at a different offset
    for each 4 MiB chunk, each chunk stamped with its number.
    """
    pool = os.urandom(64 * MiB)
    offsets = len(pool) - CHUNK
    with open(path, "wb") as out:
        written, number = 0, 0
        while written < size:
            length = min(CHUNK, size - written)
            start = (number * 7_919 * 4096) % offsets
            chunk = number.to_bytes(16, "little") + pool[start + 16 : start + length]
            out.write(chunk[:length])
            written += length
            number += 1
        out.flush()
        os.fsync(out.fileno())


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            yield chunk


@dataclass
class Digests:
    md5: str
    sha512: str


def digests_of(path: Path) -> Digests:
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    for chunk in file_chunks(path):
        md5.update(chunk)
        sha.update(chunk)
    return Digests(md5.hexdigest(), sha.hexdigest())


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


# --- measurements ---------------------------------------------------------------------


@dataclass
class Sample:
    """One timed run of one operation."""

    seconds: float
    cpu: float | None = None  # cp/dd, the hashing thread, or the client
    service_cpu: float | None = None
    peak_mb: float | None = None
    growth_mb: float | None = None


@dataclass
class Row:
    key: str
    label: str
    size: int
    samples: list[Sample] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def rate(self) -> float:
        return self.size / MiB / self.seconds if self.seconds > 0 else float("inf")

    def median_of(self, get: Callable[[Sample], float | None]) -> float | None:
        values = [v for s in self.samples if (v := get(s)) is not None]
        return statistics.median(values) if values else None

    def max_of(self, get: Callable[[Sample], float | None]) -> float | None:
        values = [v for s in self.samples if (v := get(s)) is not None]
        return max(values) if values else None


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def measure_copy(cmd: list[str], copy: Path, cache: Cache) -> tuple[Sample, Sample]:
    """(the command alone, the command and the fsync of its copy)."""
    cache.prepare()
    cpu0 = children_cpu()
    t0 = time.perf_counter()
    run(cmd, timeout=3600)
    t1 = time.perf_counter()
    cpu = children_cpu() - cpu0
    fsync_file(copy)
    t2 = time.perf_counter()
    remove(copy)
    return Sample(t1 - t0, cpu=cpu), Sample(t2 - t0, cpu=cpu)


@dataclass
class HashSample:
    md5: float
    sha512: float
    both: float
    cpu: float


def measure_hashing(path: Path) -> HashSample:
    """md5 then sha512 of each 4 MiB chunk in one thread, as the service does.

    The file is read once beforehand (not timed), so this is the hashing
    alone, without the disk.
    """
    for _ in file_chunks(path):
        pass
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    t_md5 = t_sha = 0.0
    cpu = time.process_time()
    started = time.perf_counter()
    for chunk in file_chunks(path):
        t0 = time.perf_counter()
        md5.update(chunk)
        t1 = time.perf_counter()
        sha.update(chunk)
        t_md5 += t1 - t0
        t_sha += time.perf_counter() - t1
    both = time.perf_counter() - started
    return HashSample(t_md5, t_sha, both, time.process_time() - cpu)


class ImageClient:
    """The image API with the admin's token, one new connection per operation."""

    def __init__(self, services: Services, timeout: float):
        self.services = services
        self.timeout = httpx.Timeout(timeout, connect=10)
        self.created: set[str] = set()

    def client(self, timeout: float | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=check_loopback(self.services.image_url),
            timeout=self.timeout if timeout is None else timeout,
            trust_env=False,
            headers={"X-Auth-Token": self.services.token},
        )

    def create(self, client: httpx.Client, name: str) -> str:
        body = {"name": name, "disk_format": "raw", "container_format": "bare"}
        response = client.post("/v2/images", json=body)
        if response.status_code != 201:
            raise BenchmarkError(f"image create answered {response.status_code} {response.text}")
        image_id = str(response.json()["id"])
        self.created.add(image_id)
        return image_id

    def upload(self, path: Path, name: str) -> str:
        """Create an image and stream the file into it; its ID once the 204 arrived."""
        size = path.stat().st_size
        with self.client() as client:
            image_id = self.create(client, name)
            response = client.put(
                f"/v2/images/{image_id}/file",
                content=file_chunks(path),
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(size),
                },
            )
            if response.status_code != 204:
                raise BenchmarkError(f"upload answered {response.status_code} {response.text}")
        return image_id

    def show(self, image_id: str) -> dict[str, Any]:
        with self.client() as client:
            response = client.get(f"/v2/images/{image_id}")
        if response.status_code != 200:
            raise BenchmarkError(f"image show answered {response.status_code} {response.text}")
        return dict(response.json())

    def download(self, image_id: str, target: Path) -> int:
        written = 0
        with self.client() as client, client.stream("GET", f"/v2/images/{image_id}/file") as r:
            if r.status_code != 200:
                r.read()
                raise BenchmarkError(f"download answered {r.status_code} {r.text}")
            with open(target, "wb") as out:
                for piece in r.iter_raw():
                    out.write(piece)
                    written += len(piece)
        return written

    def delete(self, image_id: str, timeout: float | None = None) -> None:
        with self.client(timeout) as client:
            response = client.delete(f"/v2/images/{image_id}")
        if response.status_code not in (204, 404):
            raise BenchmarkError(f"image delete answered {response.status_code} {response.text}")
        self.created.discard(image_id)

    def delete_all(self) -> None:
        """At exit: whatever a failure or Ctrl-C left behind (best effort)."""
        for image_id in list(self.created):
            with contextlib.suppress(BenchmarkError, httpx.HTTPError):
                self.delete(image_id, timeout=30)


def warm_up(api: ImageClient, files: Path) -> None:
    """A few small uploads and downloads on new connections, so both workers are ready."""
    small = files / "warm-up.bin"
    write_random_file(small, 4 * MiB)
    for n in range(4):
        image_id = api.upload(small, f"bench-warm-up-{n}")
        api.download(image_id, files / "warm-up.out")
        api.delete(image_id)
    remove(small)
    remove(files / "warm-up.out")


@dataclass
class Results:
    rows: dict[tuple[str, int], Row] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    hwm_reset: bool = True
    resting: dict[int, tuple[str, float]] = field(default_factory=dict)

    def row(self, key: str, size: int) -> Row:
        return self.rows.setdefault((key, size), Row(key, LABELS[key], size))


LABELS = {
    "upload": "Stratus upload: create + `PUT /file` until 204",
    "download": "Stratus download: `GET /file` into a file",
    "cp": "`cp`",
    "cp+fsync": "`cp` + fsync of the copy",
    "dd": "`dd bs=4M`",
    "dd+fsync": "`dd bs=4M` + fsync of the copy",
    "hash": "md5 + sha512 in Python (one thread, cached file)",
    "md5": "… of which md5",
    "sha512": "… of which sha512",
}
ORDER = tuple(LABELS)
# What each row is compared with: the same durability (the upload fsyncs).
REFERENCE = {
    "upload": ("cp+fsync", "dd+fsync"),
    "cp+fsync": ("cp+fsync", "dd+fsync"),
    "dd+fsync": ("cp+fsync", "dd+fsync"),
}


def measure_size(
    size: int,
    base: Path,
    api: ImageClient,
    services: Services,
    cache: Cache,
    res: Results,
    args: argparse.Namespace,
) -> None:
    label = size_label(size)
    files = base / "files"
    need = SPACE_FACTOR * size + SPACE_MARGIN
    free = shutil.disk_usage(files).free
    if free < need:
        res.skipped.append(
            f"- {label}: skipped, {free / GiB:.1f} GiB free under {files} and about "
            f"{need / GiB:.1f} GiB needed (the file, the stored image and one copy)."
        )
        print(f"{label}: skipped, not enough free space", file=sys.stderr)
        return
    source = files / f"source-{label.replace(' ', '')}.bin"
    copy = files / "copy.bin"
    fetched = files / "download.bin"
    print(f"{label}: writing the reference file ...", file=sys.stderr)
    try:
        write_random_file(source, size)
        expected = digests_of(source)
        for attempt in range(1, args.repeat + 1):
            print(f"{label}: run {attempt}/{args.repeat}: cp, dd ...", file=sys.stderr)
            plain, synced = measure_copy(["cp", str(source), str(copy)], copy, cache)
            res.row("cp", size).samples.append(plain)
            res.row("cp+fsync", size).samples.append(synced)
            dd = ["dd", f"if={source}", f"of={copy}", "bs=4M", "status=none"]
            plain, synced = measure_copy(dd, copy, cache)
            res.row("dd", size).samples.append(plain)
            res.row("dd+fsync", size).samples.append(synced)

            print(f"{label}: run {attempt}/{args.repeat}: hashing ...", file=sys.stderr)
            hashed = measure_hashing(source)
            res.row("hash", size).samples.append(Sample(hashed.both, cpu=hashed.cpu))
            res.row("md5", size).samples.append(Sample(hashed.md5))
            res.row("sha512", size).samples.append(Sample(hashed.sha512))

            print(f"{label}: run {attempt}/{args.repeat}: Stratus upload ...", file=sys.stderr)
            cache.prepare()
            cpu0 = time.process_time()
            with MemoryWatch(services.image_proc.pid) as watch:
                t0 = time.perf_counter()
                image_id = api.upload(source, f"bench-{label.replace(' ', '')}-{attempt}")
                seconds = time.perf_counter() - t0
            res.row("upload", size).samples.append(stratus_sample(seconds, cpu0, watch))
            res.hwm_reset = res.hwm_reset and watch.hwm_reset
            check_upload(api.show(image_id), expected, size, label, res)

            print(f"{label}: run {attempt}/{args.repeat}: Stratus download ...", file=sys.stderr)
            cache.prepare()
            cpu0 = time.process_time()
            with MemoryWatch(services.image_proc.pid) as watch:
                t0 = time.perf_counter()
                received = api.download(image_id, fetched)
                seconds = time.perf_counter() - t0
            res.row("download", size).samples.append(stratus_sample(seconds, cpu0, watch))
            res.hwm_reset = res.hwm_reset and watch.hwm_reset
            check_download(api.show(image_id), fetched, received, size, label, res)
            remove(fetched)

            api.delete(image_id)
            left = [p.name for p in services.datadir.iterdir() if p.name.startswith(image_id)]
            if left:
                res.errors.append(f"- {label}: the image's data is still in the store: {left}")
    finally:
        for path in (source, copy, fetched):
            remove(path)


def stratus_sample(seconds: float, cpu0: float, watch: MemoryWatch) -> Sample:
    peak, growth = watch.busiest()
    return Sample(
        seconds,
        cpu=time.process_time() - cpu0,
        service_cpu=watch.cpu,
        peak_mb=peak,
        growth_mb=growth,
    )


def check_upload(
    image: dict[str, Any], expected: Digests, size: int, label: str, res: Results
) -> None:
    problems = []
    if image.get("status") != "active":
        problems.append(f"status {image.get('status')!r}, not 'active'")
    if image.get("checksum") != expected.md5:
        problems.append(f"checksum {image.get('checksum')} is not the file's md5 {expected.md5}")
    if image.get("size") != size:
        problems.append(f"size {image.get('size')} is not {size}")
    if image.get("os_hash_algo") != "sha512" or image.get("os_hash_value") != expected.sha512:
        problems.append("os_hash_value is not the file's sha512")
    if problems:
        res.errors.append(f"- {label} upload: {'; '.join(problems)}")


def check_download(
    image: dict[str, Any], fetched: Path, received: int, size: int, label: str, res: Results
) -> None:
    got = digests_of(fetched)
    problems = []
    if received != size:
        problems.append(f"{received} bytes received, not {size}")
    if got.sha512 != image.get("os_hash_value"):
        problems.append("the downloaded data's sha512 is not the image's os_hash_value")
    if got.md5 != image.get("checksum"):
        problems.append("the downloaded data's md5 is not the image's checksum")
    if problems:
        res.errors.append(f"- {label} download: {'; '.join(problems)}")


# --- report ---------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    if value is None or value != value:
        return "—"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def ratio(row: Row, res: Results, reference: str) -> str:
    ref = res.rows.get((reference, row.size))
    if ref is None or not ref.samples:
        return "—"
    return f"{row.rate / ref.rate:.2f}"


def cpu_column(row: Row) -> str:
    service = row.median_of(lambda s: s.service_cpu)
    own = row.median_of(lambda s: s.cpu)
    if service is not None:
        return f"{fmt(service)} + {fmt(own)}"
    return fmt(own)


def filesystem_of(path: Path) -> str:
    """Device, filesystem type and free space of the filesystem holding ``path``."""
    try:
        out = run(["df", "-PT", str(path)], timeout=30).splitlines()[-1].split()
    except (BenchmarkError, IndexError, OSError):
        return str(path)
    device, fstype = out[0], out[1]
    free = shutil.disk_usage(path).free / GiB
    return f"{path} on {device} ({fstype}), {free:.0f} GiB free"


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def server_stack() -> str:
    versions = []
    for package in ("uvicorn", "starlette", "h11", "httptools", "httpx"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{package} {importlib.metadata.version(package)}")
    parser = (
        "httptools" if importlib.util.find_spec("httptools") else "h11 (httptools not installed)"
    )
    return f"{', '.join(versions)}; uvicorn's HTTP parser: {parser}"


def print_report(res: Results, sizes: list[int], header: list[str]) -> None:
    out: list[str] = [*header, ""]
    heads = [
        "operation",
        "size",
        "seconds",
        "MiB/s",
        "÷ cp",
        "÷ dd",
        "CPU s (service + client)",
        "service peak RSS MiB (busiest process)",
        "its growth MiB",
    ]
    out += ["### Image data throughput (median)", ""]
    out.append("| " + " | ".join(heads) + " |")
    out.append("|" + "---|" * len(heads))
    for size in sizes:
        for key in ORDER:
            row = res.rows.get((key, size))
            if row is None or not row.samples:
                continue
            cp_ref, dd_ref = REFERENCE.get(key, ("cp", "dd"))
            stratus = key in ("upload", "download")
            out.append(
                "| "
                + " | ".join(
                    [
                        row.label,
                        size_label(size),
                        fmt(row.seconds),
                        fmt(row.rate, 0),
                        ratio(row, res, cp_ref),
                        ratio(row, res, dd_ref),
                        cpu_column(row) if key not in ("md5", "sha512") else "—",
                        fmt(row.max_of(lambda s: s.peak_mb), 0) if stratus else "—",
                        fmt(row.max_of(lambda s: s.growth_mb), 0) if stratus else "—",
                    ]
                )
                + " |"
            )
    out.append("")
    runs = max((len(r.samples) for r in res.rows.values()), default=0)
    if runs > 1:
        out += ["### Every run (seconds)", ""]
        out.append("| operation | size | " + " | ".join(f"run {n + 1}" for n in range(runs)) + " |")
        out.append("|" + "---|" * (runs + 2))
        for size in sizes:
            for key in ORDER:
                row = res.rows.get((key, size))
                if row is None:
                    continue
                cells = [fmt(s.seconds) for s in row.samples]
                out.append(f"| {row.label} | {size_label(size)} | {' | '.join(cells)} |")
        out.append("")
    if res.resting:
        out += ["### Image service processes at rest, after the run", ""]
        out.append("| PID | process | RSS MiB |")
        out.append("|---|---|---|")
        for pid, (role, rss) in sorted(res.resting.items()):
            out.append(f"| {pid} | {role} | {rss:.0f} |")
        out.append("")
    notes = [
        "- `÷ cp`, `÷ dd`: this row's MiB/s divided by cp's and dd's on the same file in the "
        "same run; the upload (which fsyncs before its 204) and the `+ fsync` rows are "
        "compared with `cp + fsync` and `dd + fsync`, every other row with plain `cp` and `dd`.",
        "- CPU: for Stratus, the image service's processes (user + system, all workers) + "
        "this client (httpx, reading or writing the file); for cp and dd, their own.",
        "- Memory: the image-service process whose RSS grew most during the operation, "
        + (
            "its VmHWM (reset before the operation through /proc/PID/clear_refs, so it is "
            "the operation's exact peak) and its growth over its RSS before; "
            if res.hwm_reset
            else "its RSS sampled every 50 ms (VmHWM could not be reset here) and its growth; "
        )
        + "the highest of the repeats.",
        *res.notes,
    ]
    notes += res.skipped + res.errors
    out += ["Notes:", "", *notes, ""]
    print("\n".join(out), flush=True)


# --- main -----------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes", default="1G,4G", help="image sizes, e.g. 64M,1G,4G (default 1G,4G)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement (1)")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path(tempfile.gettempdir()),
        help="where the temporary directory goes: services' data, staging and every file "
        "(default: $TMPDIR or /tmp)",
    )
    parser.add_argument(
        "--drop-caches",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drop the page cache before every timed run when root (default: yes)",
    )
    parser.add_argument(
        "--request-timeout", type=float, default=1800.0, help="seconds per request (1800)"
    )
    parser.add_argument("--keep-temp", action="store_true", help="keep logs (not data files)")
    args = parser.parse_args(argv)
    try:
        args.sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error("--sizes takes sizes like 64M, 1G or 4G separated by commas")
    if not args.sizes or min(args.sizes) < 1:
        parser.error("--sizes: at least one size above 0")
    if not 1 <= args.repeat <= 50:
        parser.error("--repeat: between 1 and 50")
    if not args.dir.is_dir():
        parser.error(f"--dir: {args.dir} is not a directory")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    res = Results()
    started = datetime.now(UTC)
    cache = Cache(args.drop_caches)
    failed = False
    with signals_as_interrupt(), cleanup_stack() as stack:
        base = Path(tempfile.mkdtemp(prefix="stratus-bench-image-", dir=args.dir))
        if args.keep_temp:
            print(f"logs kept in {base}", file=sys.stderr)
            stack.callback(shutil.rmtree, base / "files", True)
            stack.callback(shutil.rmtree, base / "image" / "images", True)
            stack.callback(shutil.rmtree, base / "image" / "staging", True)
        else:
            stack.callback(shutil.rmtree, base, True)
        (base / "files").mkdir()
        load_before = load_average()
        disk = filesystem_of(base)
        try:
            print("starting identity and image ...", file=sys.stderr)
            services = start_services(stack, base)
            api = ImageClient(services, args.request_timeout)
            stack.callback(api.delete_all)
            warm_up(api, base / "files")
            res.notes.append(
                f"- Image service cold start to the first answer: {services.cold_start:.2f} s."
            )
            for size in args.sizes:
                measure_size(size, base, api, services, cache, res, args)
            for pid, role in group_members(services.image_proc.pid).items():
                rss = status_kb(pid, "VmRSS").get("VmRSS", 0) / 1024
                res.resting[pid] = (role, rss)
        except (BenchmarkError, httpx.HTTPError, OSError) as exc:
            failed = True
            res.errors.append(f"- stopped: {' '.join(str(exc).split())[:1500]}")
            print(f"image benchmark: {exc}", file=sys.stderr)
        header = [
            f"## Image benchmark, {started:%Y-%m-%d %H:%M} UTC",
            "",
            f"- Machine: {machine_description()}; load average before the run: {load_before}, "
            f"after: {load_average()} (other work on the machine skews every row alike).",
            f"- Disk: {disk}; the reference file, the copies, the downloads and the image "
            "service's data and staging directories are all in one temporary directory there.",
            f"- Page cache: {cache.describe()}.",
            "- Stratus: `stratus-api identity` and `stratus-api image`, `workers = 2` each, "
            "SQLite, JSON logs to files; the image service registered with "
            f"`stratus-manage service register`; {server_stack()}.",
            f"- Client: this script, httpx with a generator of {CHUNK // MiB} MiB reads for "
            "uploads (Content-Length set, no chunked encoding) and a streamed response for "
            f"downloads, one new connection per operation, to {LOOPBACK} only; "
            f"{args.repeat} run(s) per measurement, median shown.",
        ]
        print_report(res, args.sizes, header)
    return 1 if failed or res.errors else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print(
            "interrupted; every process, image and temp dir started here was removed",
            file=sys.stderr,
        )
        sys.exit(130)
