#!/usr/bin/env python3
"""Compute benchmark: the control plane at scale with the fake driver.

Prints, as Markdown tables:

1. **Boot to ACTIVE at scale**: identity, image, network and compute APIs as
   in production (two workers each, one SQLite file), the scheduler, and one
   compute agent with the fake driver playing ``--hosts`` hypervisors (200)
   of 16 CPUs and 64 GiB. ``--servers`` servers (1000), each with a port on
   one network, are created by ``--concurrency`` clients (8) with one
   ``POST /servers`` each; a watcher lists ``/servers/detail`` and notes when
   each server first shows ACTIVE. Printed: p50/p99 of create-to-ACTIVE,
   servers per second, failures, and how evenly the hosts were used; then
   the same for deleting them all (to 404, ports and claims gone).
2. **The control plane's memory**: the RSS of each process (APIs with their
   workers, scheduler, agent) after the run.
3. **Real guests** on a rolled-out cloud (by default the one `make aio`
   rolls out: clouds ``stratus-admin`` and ``stratus-demo`` of clouds.yaml,
   the libvirt driver with QEMU on aio1). As admin a flavor (1 vCPU,
   256 MiB, 1 GiB), as demo the test image (``scripts/build_test_image.py``,
   built when absent), a network and a subnet; then for 1, 4 and 8 servers
   at once (``--real-concurrency``), each created by a thread of its own:
   p50/p99 of create -> ACTIVE, create -> the console lines ``stratus-test:
   eth0 lease <its address>`` and ``stratus-test: ready`` (a guest counts as
   ready only with its own lease and its instance id from the metadata
   service in the console too: the image prints ``ready`` also after ``no
   lease``), servers per second, QEMU's RSS per guest (over ssh), then
   delete -> 404 of each and proof that nothing is left (no server, no port,
   on the hypervisor no domain and no instance directory). Without such a
   cloud (no clouds.yaml, or it does not answer), or with ``--skip-real``,
   the table says why it was not measured. Everything it makes is named
   ``bench-compute-<random>`` and deleted at the end, also on failure and
   Ctrl-C, with the hypervisor's cached copy of its image (``_base``, over
   ssh; the agent would keep it for a day); nothing else is touched. Each server
   gets a fixed address that no server of the run had before
   (``--reuse-addresses``: the network service's pick, which hands a
   deleted server's address to the next one, while dnsmasq keeps it leased
   to the old MAC: such a guest gets no lease).

Reference (shared BENCHMARKS.md): OpenStack's own scale tests measured a
mean boot to ACTIVE of 13.1 s and a delete of 2.5 s on 1000 compute nodes.

    .venv/bin/python benchmarks/compute.py                # both parts
    .venv/bin/python benchmarks/compute.py --servers 100 --hosts 20 --concurrency 4 --skip-real
    .venv/bin/python benchmarks/compute.py --skip-fake --clouds-yaml /etc/openstack/clouds.yaml

Every process and file started here is removed at exit, also on failure and
on Ctrl-C/SIGTERM. No figure here is a pass/fail threshold; the exit status
is 1 when a server ends in ERROR, a guest is not ready (no lease, no
metadata) or something is not cleaned up.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from harness import (
    BenchmarkError,
    MiB,
    cleanup_stack,
    config_text,
    load_average,
    machine_description,
    percentile,
    signals_as_interrupt,
    spawn,
    start_cloud,
    table,
    tail,
)

BIN = Path(sys.executable).parent
REFERENCE_BOOT = "13.1 s mean (OpenStack, 1000 nodes)"
REFERENCE_DELETE = "2.5 s mean (OpenStack, 1000 nodes)"


def start_control_plane(stack: contextlib.ExitStack, base: Path, hosts: int) -> dict:
    cloud = start_cloud(
        stack,
        base,
        {
            "image": {
                "filesystem_store_datadir": base / "images",
                "staging_dir": base / "staging",
            },
            "network": {"vni_ranges": "1000:1999", "quota_port": -1},
            "compute": {
                "quota_instances": -1,
                "quota_cores": -1,
                "quota_ram": -1,
                "scheduler_interval": 0.05,
                "service_down_time": 120,
            },
        },
    )
    conf = cloud.configs["compute"]
    with conf.open("a") as out:
        out.write(
            "\n"
            + config_text(
                {
                    "compute_agent": {
                        "host": "sim",
                        "driver": "fake",
                        "fake_hosts": hosts,
                        "resync_interval": 2.0,
                        "workers": 16,
                        "instances_path": base / "instances",
                        "api_url": cloud.urls["compute"] + "/v2.1",
                        "reserved_host_memory_mb": 0,
                    },
                    "compute_agent_authtoken": {
                        "auth_url": cloud.urls["identity"],
                        "username": cloud.service_user("compute"),
                        "password": cloud.passwords["compute"],
                    },
                }
            )
        )
    processes = {
        "scheduler": spawn(
            stack,
            [str(BIN / "stratus-compute-scheduler"), "--config-file", str(conf)],
            base / "scheduler.log",
        ),
        "agent": spawn(
            stack,
            [str(BIN / "stratus-compute-agent"), "--config-file", str(conf)],
            base / "agent.log",
        ),
    }
    return {"cloud": cloud, "processes": processes}


def prepare(cloud: object, http: httpx.Client) -> dict[str, str]:
    """An image, a network with a /16 subnet and a flavor."""
    urls = cloud.urls  # type: ignore[attr-defined]
    image = http.post(
        f"{urls['image']}/v2/images",
        json={"name": "bench", "disk_format": "raw", "container_format": "bare",
              "visibility": "public"},
    ).json()  # fmt: skip
    put = http.put(
        f"{urls['image']}/v2/images/{image['id']}/file",
        content=b"\0" * 65536,
        headers={"Content-Type": "application/octet-stream"},
    )
    if put.status_code != 204:
        raise BenchmarkError(f"image upload answered {put.status_code}: {put.text[:200]}")
    network = http.post(f"{urls['network']}/v2.0/networks", json={"network": {"name": "bench"}})
    network_id = network.json()["network"]["id"]
    http.post(
        f"{urls['network']}/v2.0/subnets",
        json={"subnet": {"network_id": network_id, "ip_version": 4, "cidr": "10.128.0.0/16"}},
    )
    flavor = http.post(
        f"{urls['compute']}/v2.1/flavors",
        json={"flavor": {"name": "bench", "ram": 512, "vcpus": 1, "disk": 1}},
    ).json()["flavor"]
    return {"image": image["id"], "network": network_id, "flavor": flavor["id"]}


def list_servers(http: httpx.Client, compute: str, detail: bool) -> list[dict]:
    """Every server the caller sees, page by page (the API answers at most
    ``pagination_max_limit``, 1000, per page)."""
    servers: list[dict] = []
    params: dict[str, str | int] = {"limit": 1000}
    while True:
        answer = http.get(f"{compute}/servers{'/detail' if detail else ''}", params=params)
        if answer.status_code != 200:
            raise BenchmarkError(f"server list answered {answer.status_code}: {answer.text[:200]}")
        body = answer.json()
        servers += body["servers"]
        if not body["servers"] or not any(
            link.get("rel") == "next" for link in body.get("servers_links", [])
        ):
            return servers
        params["marker"] = body["servers"][-1]["id"]


def boot_all(cloud: object, http: httpx.Client, ids: dict[str, str], count: int, concurrency: int):
    urls = cloud.urls  # type: ignore[attr-defined]
    compute = f"{urls['compute']}/v2.1"
    created: dict[str, float] = {}
    seen: dict[str, tuple[str, float]] = {}
    failures: list[str] = []
    poll_errors: list[str] = []
    list_times: list[float] = []
    lock = threading.Lock()
    done = threading.Event()

    def create(index: int) -> None:
        body = {
            "server": {
                "name": f"bench-{index}",
                "imageRef": ids["image"],
                "flavorRef": ids["flavor"],
                "networks": [{"uuid": ids["network"]}],
            }
        }
        started = time.perf_counter()
        answer = http.post(f"{compute}/servers", json=body)
        if answer.status_code != 202:
            with lock:
                failures.append(f"create: {answer.status_code} {answer.text[:120]}")
            return
        with lock:
            created[answer.json()["server"]["id"]] = started

    def watch() -> None:
        while not done.is_set():
            asked = time.perf_counter()
            try:
                servers = list_servers(http, compute, detail=True)
            except (httpx.HTTPError, BenchmarkError) as exc:  # the next poll goes on
                with lock:
                    poll_errors.append(str(exc)[:200])
                time.sleep(1)
                continue
            # When the answer came: a status is only known to hold by then.
            now = time.perf_counter()
            with lock:
                list_times.append(now - asked)
                for item in servers:
                    if item["status"] in ("ACTIVE", "ERROR") and item["id"] not in seen:
                        seen[item["id"]] = (item["status"], now)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(create, range(count)))
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        with lock:
            if set(created) <= set(seen):
                break
        time.sleep(0.2)
    done.set()
    watcher.join()
    elapsed = time.perf_counter() - started
    latencies = [seen[i][1] - created[i] for i in created if i in seen]
    errors = [i for i in created if seen.get(i, ("", 0))[0] != "ACTIVE"]
    watch_stats = {"list_times": list_times, "poll_errors": poll_errors}
    return created, latencies, errors, failures, elapsed, watch_stats


def delete_all(cloud: object, http: httpx.Client, server_ids: list[str], concurrency: int):
    compute = f"{cloud.urls['compute']}/v2.1"  # type: ignore[attr-defined]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: http.delete(f"{compute}/servers/{i}"), server_ids))
    deadline = time.monotonic() + 600
    left = len(server_ids)
    while time.monotonic() < deadline:
        left = len(list_servers(http, compute, detail=False))
        if left == 0:
            break
        time.sleep(0.2)
    return time.perf_counter() - started, left


def rss_mib(pid: int) -> float:
    """The RSS of a process and its children (uvicorn workers), in MiB."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    for one in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


# --- real guests on a rolled-out cloud ------------------------------------------------

DEFAULT_SSH_KEY = "/var/lib/stratus-lab/ssh/id_ed25519"
SSH_OPTIONS = (
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/var/lib/stratus-lab/ssh/known_hosts",
    "ConnectTimeout=10",
    "BatchMode=yes",
)
TEST_IMAGE = Path("/var/cache/stratus-lab/test-image/stratus-test.qcow2")
BUILD_TEST_IMAGE = Path(__file__).resolve().parents[1] / "scripts" / "build_test_image.py"
# The compute role's default stratus_compute_instances_path.
INSTANCES_PATH = "/var/lib/stratus-compute/instances"
BENCH_CIDR = "10.0.99.0/24"
READY = re.compile(r"^stratus-test: ready", re.MULTILINE)
# Guest addresses: .10 on, each used once per run (see fixed_address).
FIRST_HOST = 10
REFERENCE_GUEST = (
    "DHCP lease ≈ 3.5 s after define, 2.7 to 3.0 s in a lab host (QEMU TCG test guest)"
)
REFERENCE_RSS = "about 220 MB (QEMU TCG test guest)"


@dataclass
class Round:
    """One concurrency: servers booted at once, then deleted."""

    count: int
    created: dict[str, float] = field(default_factory=dict)  # id -> monotonic before POST
    active: dict[str, float] = field(default_factory=dict)  # id -> seconds to ACTIVE
    lease: dict[str, float] = field(default_factory=dict)  # id -> seconds to the lease line
    ready: dict[str, float] = field(default_factory=dict)  # id -> seconds to `ready`
    deleted: dict[str, float] = field(default_factory=dict)  # id -> seconds to 404
    failed: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)
    wall_active: float = float("nan")
    wall_ready: float = float("nan")
    wall_delete: float = float("nan")
    rss_mib: list[float] = field(default_factory=list)
    skipped: str = ""
    poll_errors: list[str] = field(default_factory=list)  # transient: the poll goes on


@dataclass
class Guests:
    """What the real-guest part made on the cloud, and what it measured."""

    admin: Any
    demo: Any
    prefix: str
    ssh: list[str] | None
    made: dict[str, str] = field(default_factory=dict)
    servers: set[str] = field(default_factory=set)
    threads: list[threading.Thread] = field(default_factory=list)
    reuse_addresses: bool = False
    next_host: int = FIRST_HOST
    rounds: list[Round] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def connect_clouds(args: argparse.Namespace) -> tuple[Any, Any] | str:
    """Admin and demo connections, or why there are none (no aio cloud)."""
    if args.clouds_yaml is not None:
        if not args.clouds_yaml.is_file():
            return f"no clouds.yaml at {args.clouds_yaml} (run `make aio` first)"
        os.environ["OS_CLIENT_CONFIG_FILE"] = str(args.clouds_yaml)
    import openstack  # late: its import takes a while and --skip-real needs none of it
    import openstack.config

    try:
        config = openstack.config.OpenStackConfig()
        for name in (args.admin_cloud, args.cloud):
            config.get_one(cloud=name)
    except Exception as exc:  # openstacksdk's config errors have no common base
        return (
            f"no cloud `{name}` in {args.clouds_yaml or 'any clouds.yaml openstacksdk looks for'} "
            f"({' '.join(str(exc).split())[:200]}); run `make aio` first"
        )
    try:
        admin = openstack.connect(cloud=args.admin_cloud, api_timeout=60)
        demo = openstack.connect(cloud=args.cloud, api_timeout=60)
        admin.authorize()
        demo.authorize()
    except Exception as exc:  # keystoneauth's errors have no common base here
        return (
            f"the clouds `{args.admin_cloud}`/`{args.cloud}` of clouds.yaml do not answer "
            f"({type(exc).__name__}: {' '.join(str(exc).split())[:200]}); `make aio` rolls it out"
        )
    return admin, demo


def ensure_test_image(path: Path) -> str | None:
    """None once ``path`` exists (built by scripts/build_test_image.py if absent), else why not."""
    if path.is_file():
        return None
    print(f"building the test image into {path.parent} ...", file=sys.stderr)
    try:
        result = subprocess.run(
            [sys.executable, str(BUILD_TEST_IMAGE), "--output", str(path.parent)],
            capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"scripts/build_test_image.py failed: {exc}"
    if result.returncode != 0 or not path.is_file():
        return f"scripts/build_test_image.py failed: {tail(result.stdout + result.stderr, 5)}"
    return None


def ssh_run(ssh: list[str] | None, script: str, timeout: float = 60) -> str | None:
    """The output of a command on the hypervisor, or None without ssh or when it fails."""
    if ssh is None:
        return None
    try:
        result = subprocess.run(
            [*ssh, script],
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def console_text(demo: Any, server_id: str) -> str:
    output = demo.compute.get_server_console_output(server_id)
    # A serial console ends its lines with CR LF.
    return str(output.get("output") or "").replace("\r\n", "\n")


def prepare_guests(g: Guests, image: Path) -> None:
    """As admin a flavor, as demo the test image, a network and a subnet."""
    flavor = g.admin.compute.create_flavor(name=g.prefix, vcpus=1, ram=256, disk=1, is_public=True)
    g.made["flavor"] = flavor.id
    uploaded = g.demo.image.create_image(
        name=g.prefix, filename=str(image), disk_format="qcow2", container_format="bare",
        visibility="private", wait=True, timeout=300,
    )  # fmt: skip
    g.made["image"] = uploaded.id
    if g.demo.image.get_image(uploaded.id).status != "active":
        raise BenchmarkError(f"the test image {uploaded.id} did not become active")
    network = g.demo.network.create_network(name=g.prefix)
    g.made["network"] = network.id
    subnet = g.demo.network.create_subnet(
        name=g.prefix, network_id=network.id, ip_version=4, cidr=BENCH_CIDR
    )
    g.made["subnet"] = subnet.id


def room_for(g: Guests, count: int) -> str:
    """Why ``count`` more servers of the flavor do not fit the demo project's quota, or ''."""
    quota = g.admin.compute.get_quota_set(g.demo.current_project_id, usage=True)
    usage = quota.usage or {}
    for what, limit, need in (
        ("instances", quota.instances, count),
        ("cores", quota.cores, count),
        ("ram", quota.ram, 256 * count),
    ):
        used = int(usage.get(what, 0) or 0)
        if limit is not None and int(limit) >= 0 and used + need > int(limit):
            return f"quota {what}: {used} in use of {limit}, {need} more needed"
    return ""


def wait_for_hypervisors(g: Guests, count: int, timeout: float = 300) -> None:
    """Wait (a while) until no other guest holds vCPUs on the hypervisors: the
    cloud is shared, and a guest of someone else's can take the room of ours."""
    deadline = time.monotonic() + timeout
    while True:
        used = sum(int(h.vcpus_used or 0) for h in g.admin.compute.hypervisors(details=True))
        if not used:
            return
        if time.monotonic() > deadline:
            g.notes.append(
                f"{count} at once: other guests held {used} vCPUs of the hypervisors "
                f"for more than {timeout:.0f} s; booted anyway"
            )
            return
        time.sleep(5)


def boot_round(g: Guests, count: int, timeout: float, poll: float) -> Round:
    """``count`` servers created at once (one thread each); watched until each is
    ACTIVE and its console shows ``stratus-test: ready``."""
    result = Round(count)
    lock = threading.Lock()
    pattern = f"^{re.escape(g.prefix)}-{count}x-"

    networks = [{"uuid": g.made["network"]} for _ in range(count)]
    if not g.reuse_addresses:
        # An address once leased stays leased to its first MAC in dnsmasq (see
        # docs/benchmarks.md): each server gets one no server here had before.
        subnet = ipaddress.ip_network(BENCH_CIDR)
        for entry in networks:
            entry["fixed_ip"] = str(subnet.network_address + g.next_host)
            g.next_host += 1

    def create(index: int) -> None:
        name = f"{g.prefix}-{count}x-{index}"
        started = time.monotonic()
        try:
            server = g.demo.compute.create_server(
                name=name, image_id=g.made["image"], flavor_id=g.made["flavor"],
                networks=[networks[index]],
            )  # fmt: skip
        except Exception as exc:  # every refusal is reported
            with lock:
                result.failed.append(f"create {name}: {' '.join(str(exc).split())[:200]}")
            return
        with lock:
            result.created[server.id] = started
            g.servers.add(server.id)

    threads = [threading.Thread(target=create, args=(i,), daemon=True) for i in range(count)]
    g.threads += threads
    started = time.monotonic()
    for thread in threads:
        thread.start()
    errored: set[str] = set()
    names: dict[str, str] = {}
    addresses: dict[str, list[str]] = {}
    deadline = started + timeout
    while time.monotonic() < deadline:
        creating = any(t.is_alive() for t in threads)
        try:
            servers = list(g.demo.compute.servers(details=True, name=pattern))
        except Exception as exc:  # a poll that failed is noted, the next one goes on
            result.poll_errors.append(f"list: {' '.join(str(exc).split())[:200]}")
            servers = []
        seen = time.monotonic()
        with lock:
            created = dict(result.created)
        for server in servers:
            if server.id not in created:
                continue
            names[server.id] = server.name
            if server.status == "ACTIVE" and server.id not in result.active:
                result.active[server.id] = seen - created[server.id]
                addresses[server.id] = [
                    entry["addr"]
                    for entries in (server.addresses or {}).values()
                    for entry in entries
                    if entry.get("OS-EXT-IPS:type", "fixed") == "fixed"
                ]
            elif server.status == "ERROR" and server.id not in errored:
                errored.add(server.id)
                fault = (server.fault or {}).get("message", "") if server.fault else ""
                result.failed.append(f"server {server.name} went to ERROR: {fault}")
        for server_id in list(result.active):
            if server_id in result.ready or server_id in errored:
                continue
            try:
                text = console_text(g.demo, server_id)
            except Exception as exc:  # as above
                result.poll_errors.append(f"console: {' '.join(str(exc).split())[:200]}")
                continue
            seen = time.monotonic()
            own = "|".join(re.escape(a) for a in addresses[server_id]) or "-"
            lease = re.search(rf"^stratus-test: eth0 lease ({own})/", text, re.MULTILINE)
            if server_id not in result.lease and lease:
                result.lease[server_id] = seen - created[server_id]
            if READY.search(text):
                # The image prints `ready` also after `eth0 no lease` and `no
                # metadata`: only a guest with both is ready.
                metadata = re.search(
                    rf"^stratus-test: instance-id {server_id} \(from the metadata service\)",
                    text,
                    re.MULTILINE,
                )
                if lease and metadata:
                    result.ready[server_id] = seen - created[server_id]
                else:
                    errored.add(server_id)
                    said = [line for line in text.splitlines() if "stratus-test:" in line]
                    missing = "its metadata" if lease else "its DHCP lease"
                    result.failed.append(
                        f"server {names.get(server_id, server_id)} "
                        f"({', '.join(addresses[server_id])}) printed `ready` without "
                        f"{missing}: " + " / ".join(said)[:400]
                    )
        if not creating and set(created) <= set(result.ready) | errored:
            break
        time.sleep(poll)
    for thread in threads:
        thread.join(60)
    if result.active:
        result.wall_active = max(created[i] + t for i, t in result.active.items()) - started
    if result.ready:
        result.wall_ready = max(created[i] + t for i, t in result.ready.items()) - started
    for server_id in set(result.created) - set(result.ready) - errored:
        result.failed.append(f"server {server_id} not ready within {timeout:.0f} s")
    result.rss_mib = guest_rss(g, list(result.ready))
    return result


def guest_rss(g: Guests, server_ids: list[str]) -> list[float]:
    """The RSS of each server's QEMU process on the hypervisor, in MiB (ssh)."""
    out = ssh_run(g.ssh, "ps -ww -eo rss=,args=")
    if out is None:
        return []
    sizes = []
    for line in out.splitlines():
        rss, _, command = line.strip().partition(" ")
        if "qemu" in command and any(f"instance-{i}" in command for i in server_ids):
            sizes.append(int(rss) / 1024)
    return sizes


def delete_round(g: Guests, result: Round, timeout: float, poll: float) -> None:
    """Delete the round's servers at once; each one's time to 404; anything left."""
    from openstack import exceptions as os_exc

    requested: dict[str, float] = {}
    started = time.monotonic()
    for server_id in result.created:
        requested[server_id] = time.monotonic()
        with contextlib.suppress(os_exc.NotFoundException):
            g.demo.compute.delete_server(server_id)
    deadline = started + timeout
    while time.monotonic() < deadline and len(result.deleted) < len(requested):
        for server_id, asked in requested.items():
            if server_id in result.deleted:
                continue
            try:
                g.demo.compute.get_server(server_id)
            except os_exc.NotFoundException:
                result.deleted[server_id] = time.monotonic() - asked
                g.servers.discard(server_id)
            except Exception as exc:  # a poll that failed is noted, the next one goes on
                result.poll_errors.append(f"get: {' '.join(str(exc).split())[:200]}")
        time.sleep(poll)
    if result.deleted:
        result.wall_delete = max(requested[i] + t for i, t in result.deleted.items()) - started
    for server_id in requested:
        if server_id not in result.deleted:
            result.left.append(f"server {server_id} still answers after {timeout:.0f} s")
            continue
        if any(g.admin.network.ports(device_id=server_id)):
            result.left.append(f"ports of server {server_id}")
    if requested and g.ssh is not None:
        checks = " ".join(
            f"virsh -c qemu:///system domstate instance-{i} >/dev/null 2>&1 && echo domain-{i};"
            f" test -e {INSTANCES_PATH}/{i} && echo directory-{i};"
            for i in requested
        )
        out = ssh_run(g.ssh, f"{checks} true")
        if out is None:
            g.notes.append("the hypervisor could not be checked over ssh for leftovers")
        else:
            result.left += [f"on the hypervisor: {line}" for line in out.split()]


def clean_up_guests(g: Guests) -> None:
    """Delete everything this part made, servers first (also ones whose create
    answer never came: they are found by their names)."""
    from openstack import exceptions as os_exc

    for thread in g.threads:  # a create cut short by Ctrl-C may still be answered
        thread.join(60)

    def attempt(what: str, action: Any) -> None:
        try:
            action()
        except os_exc.NotFoundException:
            pass
        except Exception as exc:  # every leftover is reported, none stops the rest
            g.problems.append(f"could not delete the {what}: {' '.join(str(exc).split())[:200]}")

    try:
        found = {s.id for s in g.demo.compute.servers(name=f"^{re.escape(g.prefix)}-")}
    except Exception as exc:  # the listing is best effort; the known ids are still deleted
        g.problems.append(f"could not list the servers: {exc}")
        found = set()
    servers = g.servers | found
    for server_id in servers:
        attempt(f"server {server_id}", lambda i=server_id: g.demo.compute.delete_server(i))
    deadline = time.monotonic() + 300
    for server_id in servers:
        while time.monotonic() < deadline:
            try:
                g.demo.compute.get_server(server_id)
            except os_exc.NotFoundException:
                g.servers.discard(server_id)
                break
            except Exception as exc:  # a failing lookup must not hang the cleanup
                g.problems.append(f"server {server_id}: {exc}")
                break
            time.sleep(1)
        else:
            g.problems.append(f"server {server_id} was not gone within 300 s")
    made = g.made
    # What a cut-short create left unrecorded is found by its name (only ours
    # carry the random prefix).
    for kind, find in (
        ("network", lambda: g.demo.network.find_network(g.prefix)),
        ("image", lambda: g.demo.image.find_image(g.prefix)),
        ("flavor", lambda: g.admin.compute.find_flavor(g.prefix)),
    ):
        if kind not in made:
            try:
                found_one = find()
            except Exception as exc:  # reported; the rest is still deleted
                g.problems.append(f"could not look for a {kind} {g.prefix}: {exc}")
                continue
            if found_one is not None:
                made[kind] = found_one.id
    if "subnet" in made:
        attempt("subnet", lambda: g.demo.network.delete_subnet(made.pop("subnet")))
    if "network" in made:
        attempt("network", lambda: g.demo.network.delete_network(made.pop("network")))
    if "image" in made:
        image_id = made["image"]
        attempt("image", lambda: g.demo.image.delete_image(made.pop("image")))
        if g.ssh is not None and not g.servers:
            # The agent keeps a base copy of every image it booted and never
            # prunes it (docs/compute.md); no server uses this one any more.
            base = f"{INSTANCES_PATH}/_base/{image_id}"
            if ssh_run(g.ssh, f"rm -f -- {base} {base}.json") is None:
                g.problems.append(f"could not remove {base} on the hypervisor")
    if "flavor" in made:
        attempt("flavor", lambda: g.admin.compute.delete_flavor(made.pop("flavor")))
    for kind, find in (
        (
            "server",
            lambda: list(
                g.admin.compute.servers(all_projects=True, name=f"^{re.escape(g.prefix)}-")
            ),
        ),
        ("network", lambda: g.admin.network.find_network(g.prefix)),
        ("image", lambda: g.admin.image.find_image(g.prefix)),
        ("flavor", lambda: g.admin.compute.find_flavor(g.prefix)),
    ):
        try:
            if find():
                g.problems.append(f"a {kind} named {g.prefix}… is still there")
        except Exception as exc:  # the check itself is reported
            g.problems.append(f"could not check for a leftover {kind}: {exc}")
    for problem in g.problems:
        print(f"real guests, cleanup: {problem}", file=sys.stderr)


def seconds(values: list[float], pct: float) -> str:
    return f"{percentile(values, pct):.1f} s" if values else "—"


def guest_table(rounds: list[Round]) -> list[str]:
    heads = ["", *[f"{r.count} at once" for r in rounds], "Reference"]

    def row(label: str, cell: Any, reference: str = "—") -> list[str]:
        return [label, *["skipped" if r.skipped else cell(r) for r in rounds], reference]

    def rate(r: Round, done: dict[str, float], wall: float) -> str:
        return f"{len(done) / wall:.2f}" if done and wall == wall and wall > 0 else "—"

    rss = [size for r in rounds for size in r.rss_mib]
    return table(
        heads,
        [
            row(
                "create → ACTIVE p50",
                lambda r: seconds(list(r.active.values()), 50),
                REFERENCE_BOOT,
            ),
            row("create → ACTIVE p99", lambda r: seconds(list(r.active.values()), 99)),
            row(
                "create → console `eth0 lease` p50",
                lambda r: seconds(list(r.lease.values()), 50),
                REFERENCE_GUEST,
            ),
            row(
                "create → console `stratus-test: ready` p50",
                lambda r: seconds(list(r.ready.values()), 50),
            ),
            row(
                "create → console `stratus-test: ready` p99",
                lambda r: seconds(list(r.ready.values()), 99),
            ),
            row("servers per second (all ACTIVE)", lambda r: rate(r, r.active, r.wall_active)),
            row("servers per second (all ready)", lambda r: rate(r, r.ready, r.wall_ready)),
            row(
                "delete → 404 p50",
                lambda r: seconds(list(r.deleted.values()), 50),
                REFERENCE_DELETE,
            ),
            row("delete → 404 p99", lambda r: seconds(list(r.deleted.values()), 99)),
            row("failed (refused, ERROR, never ready)", lambda r: str(len(r.failed))),
            row("left behind after delete", lambda r: str(len(r.left))),
            row(
                "QEMU RSS per guest (mean)",
                lambda r: f"{sum(r.rss_mib) / len(r.rss_mib):.0f} MiB" if r.rss_mib else "—",
                REFERENCE_RSS if rss else "—",
            ),
        ],
    )


def real_guests(args: argparse.Namespace) -> tuple[list[str], int]:
    """The real-guest section's lines and its status (1: a failure or a leftover)."""
    title = "## Real guests (QEMU through libvirt on a rolled-out cloud)"
    if args.skip_real:
        return [title, "", "Not measured: skipped (--skip-real).", ""], 0
    clouds = connect_clouds(args)
    if isinstance(clouds, str):
        return [title, "", f"Not measured: {clouds}.", ""], 0
    why = ensure_test_image(args.test_image)
    if why:
        return [title, "", f"Not measured: {why}.", ""], 0
    admin, demo = clouds
    endpoint = demo.compute.get_endpoint()
    ssh = None
    if not args.no_ssh:
        target = args.ssh or f"root@{urlsplit(endpoint).hostname}"
        ssh = ["ssh", "-T", "-i", args.ssh_key, *[f"-o{o}" for o in SSH_OPTIONS], target]
    g = Guests(admin, demo, f"bench-compute-{secrets.token_hex(3)}", ssh)
    g.reuse_addresses = args.reuse_addresses
    if ssh is not None and ssh_run(ssh, "true", timeout=30) is None:
        g.notes.append(
            f"no ssh to {ssh[-1]}: QEMU's RSS and the hypervisor's leftovers not checked"
        )
        g.ssh = None
    load_before = load_average()
    started = time.monotonic()
    hypervisors = ", ".join(
        f"{h.name} ({h.hypervisor_type}, {h.vcpus} vCPUs, {h.memory_size} MB, "
        f"{h.running_vms} guests before)"
        for h in admin.compute.hypervisors(details=True)
    )
    stopped = ""
    with cleanup_stack() as stack:
        stack.callback(clean_up_guests, g)
        try:
            print(f"real guests: preparing {g.prefix} on {endpoint} ...", file=sys.stderr)
            prepare_guests(g, args.test_image)
            for count in args.real_concurrency:
                why = room_for(g, count)
                if why:
                    g.rounds.append(Round(count, skipped=why))
                    g.notes.append(f"{count} at once: skipped, {why}")
                    continue
                wait_for_hypervisors(g, count)
                print(f"real guests: {count} at once ...", file=sys.stderr)
                result = boot_round(g, count, args.boot_timeout, args.poll)
                g.rounds.append(result)
                delete_round(g, result, args.boot_timeout, args.poll)
        except Exception as exc:  # openstacksdk's errors have no common base; reported
            stopped = f"{type(exc).__name__}: {' '.join(str(exc).split())[:400]}"
            print(f"real guests: stopped: {stopped}", file=sys.stderr)
    wall = time.monotonic() - started
    lines = [
        title,
        "",
        f"Cloud `{args.cloud}` (flavor as `{args.admin_cloud}`), compute API {endpoint}; "
        f"hypervisors: {hypervisors}. Flavor 1 vCPU, 256 MiB, 1 GiB; the test image "
        f"({args.test_image.name}, {args.test_image.stat().st_size / MiB:.0f} MiB qcow2) "
        f"uploaded afresh, so the first round fetches it into the host's image cache; "
        f"one network with a {BENCH_CIDR} subnet, no router; "
        + (
            "addresses picked by the network service (--reuse-addresses). "
            if args.reuse_addresses
            else "each server a fixed address no server of this run had before. "
        )
        + f"Servers created at once by one thread each; status and console polled every "
        f"{args.poll} s (the compute agent sends console logs once per pass, every 2 s by "
        f"default). Ready: its console shows its own DHCP lease, its instance id from the "
        f"metadata service and `stratus-test: ready`. Load average before "
        f"{load_before}, after {load_average()}; {wall:.0f} s in all.",
        "",
        *guest_table(g.rounds),
    ]
    retried = [
        f"{r.count} at once: {len(r.poll_errors)} polls failed and were retried, "
        f"first: {r.poll_errors[0]}"
        for r in g.rounds
        if r.poll_errors
    ]
    problems = [
        *[f"{r.count} at once: {f}" for r in g.rounds for f in r.failed],
        *[f"{r.count} at once, left behind: {f}" for r in g.rounds for f in r.left],
        *([f"stopped: {stopped}"] if stopped else []),
        *[f"cleanup: {p}" for p in g.problems],
    ]
    notes = [*g.notes, *retried, *problems]
    if notes:
        lines += ["Notes:", "", *[f"- {n}" for n in notes], ""]
    if not g.problems and not stopped:
        lines += [
            f"Everything made here ({g.prefix}: servers, network, image, flavor) was deleted "
            "and is gone.",
            "",
        ]
    return lines, 1 if problems else 0


def fake_driver(args: argparse.Namespace) -> tuple[list[str], int]:
    """The fake-driver part's tables (parts 1 and 2) and its status."""
    lines: list[str] = []
    status = 0
    with cleanup_stack() as stack:
        base = Path(tempfile.mkdtemp(prefix="stratus-bench-compute-"))
        stack.callback(shutil.rmtree, base, True)
        plane = start_control_plane(stack, base, args.hosts)
        cloud = plane["cloud"]
        http = httpx.Client(
            headers={"X-Auth-Token": cloud.token}, timeout=120, trust_env=False,
            limits=httpx.Limits(max_connections=args.concurrency + 4),
        )  # fmt: skip
        stack.callback(http.close)
        ids = prepare(cloud, http)
        # Let every simulated host report once before the first boot.
        time.sleep(4)
        print(f"fake driver: booting {args.servers} servers ...", file=sys.stderr)
        created, latencies, errors, failures, elapsed, watch = boot_all(
            cloud, http, ids, args.servers, args.concurrency
        )
        hosts = Counter()
        admin = f"{cloud.urls['compute']}/v2.1"
        for item in http.get(f"{admin}/os-hypervisors/detail").json()["hypervisors"]:
            hosts[item["hypervisor_hostname"]] = item["running_vms"]
        used = [n for n in hosts.values()]
        lines += [
            f"## Boot to ACTIVE: {args.servers} servers, {args.hosts} fake hypervisors, "
            f"{args.concurrency} clients",
            "",
            *table(
                ["", "Stratus", "Reference"],
                [
                    ["create → ACTIVE p50", f"{percentile(latencies, 50):.2f} s", REFERENCE_BOOT],
                    ["create → ACTIVE p99", f"{percentile(latencies, 99):.2f} s", "—"],
                    ["servers per second", f"{len(latencies) / elapsed:.1f}", "—"],
                    ["in ERROR or never ACTIVE", str(len(errors)), "—"],
                    ["refused creates", str(len(failures)), "—"],
                    [
                        "watcher's `GET /servers/detail` (all, p50 / max)",
                        f"{percentile(watch['list_times'], 50):.2f} s / "
                        f"{max(watch['list_times'], default=float('nan')):.2f} s",
                        "—",
                    ],
                    [
                        "servers per host (min / max)",
                        f"{min(used, default=0)} / {max(used, default=0)}",
                        "—",
                    ],
                ],
            ),
        ]
        processes = {
            **{f"{name} API": proc for name, proc in cloud.processes.items()},
            **plane["processes"],
        }
        memory = [[name, f"{rss_mib(proc.pid):.0f} MiB"] for name, proc in processes.items()]
        memory.append(["all", f"{sum(rss_mib(p.pid) for p in processes.values()):.0f} MiB"])
        delete_time, left = delete_all(cloud, http, list(created), args.concurrency)
        lines += [
            "## Delete all",
            "",
            *table(
                ["", "Stratus", "Reference"],
                [
                    [
                        f"all {len(created)} deleted (404)",
                        f"{delete_time:.1f} s",
                        REFERENCE_DELETE,
                    ],
                    ["servers per second", f"{len(created) / delete_time:.1f}", "—"],
                    ["left behind", str(left), "—"],
                ],
            ),
            "## Memory of the control plane (RSS after the run)",
            "",
            *table(["process", "RSS"], memory),
        ]
        if errors or failures or left:
            status = 1
    return lines, status


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    fake = parser.add_argument_group("fake driver (parts 1 and 2, a throwaway cloud here)")
    fake.add_argument("--servers", type=int, default=1000, help="servers to boot (1000)")
    fake.add_argument("--hosts", type=int, default=200, help="fake hypervisors (200)")
    fake.add_argument("--concurrency", type=int, default=8, help="creating clients (8)")
    fake.add_argument("--skip-fake", action="store_true", help="only the real guests")
    real = parser.add_argument_group("real guests (part 3, a rolled-out cloud: `make aio`)")
    real.add_argument("--skip-real", action="store_true", help="only the fake driver")
    real.add_argument("--cloud", default="stratus-demo", help="clouds.yaml cloud (stratus-demo)")
    real.add_argument(
        "--admin-cloud", default="stratus-admin", help="for the flavor (stratus-admin)"
    )
    real.add_argument(
        "--clouds-yaml",
        type=Path,
        help="clouds.yaml to read (default: openstacksdk's search, /etc/openstack/clouds.yaml "
        "among them)",
    )
    real.add_argument(
        "--real-concurrency", default="1,4,8", help="servers booted at once, per round (1,4,8)"
    )
    real.add_argument("--test-image", type=Path, default=TEST_IMAGE, help=f"({TEST_IMAGE})")
    real.add_argument(
        "--boot-timeout", type=float, default=600.0, help="seconds per round and phase (600)"
    )
    real.add_argument("--poll", type=float, default=0.5, help="seconds between polls (0.5)")
    real.add_argument(
        "--reuse-addresses",
        action="store_true",
        help="let the network service pick the addresses (it hands a deleted server's "
        "address to the next one; default: each server one never used in this run)",
    )
    real.add_argument(
        "--ssh", default="", help="the hypervisor's ssh target (root@<the compute API's host>)"
    )
    real.add_argument("--ssh-key", default=DEFAULT_SSH_KEY, help=f"({DEFAULT_SSH_KEY})")
    real.add_argument(
        "--no-ssh", action="store_true", help="no QEMU RSS, no leftover check on the hypervisor"
    )
    args = parser.parse_args(argv)
    try:
        args.real_concurrency = [int(n) for n in args.real_concurrency.split(",") if n.strip()]
    except ValueError:
        parser.error("--real-concurrency: numbers separated by commas, such as 1,4,8")
    if any(n < 1 for n in args.real_concurrency):
        parser.error("--real-concurrency: at least 1 each")
    if min(args.servers, args.hosts, args.concurrency) < 1:
        parser.error("--servers, --hosts and --concurrency: at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lines = [
        "# Compute benchmark",
        "",
        f"Machine: {machine_description()}; load average at start {load_average()}.",
        "",
    ]
    status = 0
    with signals_as_interrupt():
        started = time.monotonic()
        if args.skip_fake:
            lines += ["Fake driver: skipped (--skip-fake).", ""]
        else:
            fake_lines, status = fake_driver(args)
            lines += fake_lines
            lines += [f"Fake-driver part: {time.monotonic() - started:.0f} s in all.", ""]
        real_lines, real_status = real_guests(args)
        lines += real_lines
    print("\n".join(lines))
    return status or real_status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as exc:
        print(f"compute benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted; everything made here was removed", file=sys.stderr)
        sys.exit(130)
