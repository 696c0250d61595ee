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
3. **Real guests** (QEMU through libvirt, 1, 4 and 8 at once) need the
   libvirt driver in the agent's rollout; until it is wired in here, this
   table says so instead of printing figures.

Reference (shared BENCHMARKS.md): OpenStack's own scale tests measured a
mean boot to ACTIVE of 13.1 s and a delete of 2.5 s on 1000 compute nodes.

    .venv/bin/python benchmarks/compute.py
    .venv/bin/python benchmarks/compute.py --servers 100 --hosts 20 --concurrency 4

Every process and file started here is removed at exit, also on failure and
on Ctrl-C/SIGTERM. No figure here is a pass/fail threshold; the exit status
is 1 when a server ends in ERROR or is not cleaned up.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from harness import (
    BenchmarkError,
    cleanup_stack,
    config_text,
    load_average,
    machine_description,
    percentile,
    signals_as_interrupt,
    spawn,
    start_cloud,
    table,
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


def boot_all(cloud: object, http: httpx.Client, ids: dict[str, str], count: int, concurrency: int):
    urls = cloud.urls  # type: ignore[attr-defined]
    compute = f"{urls['compute']}/v2.1"
    created: dict[str, float] = {}
    seen: dict[str, tuple[str, float]] = {}
    failures: list[str] = []
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
            now = time.perf_counter()
            servers = http.get(f"{compute}/servers/detail", params={"limit": 10000}).json()
            with lock:
                for item in servers.get("servers", []):
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
    return created, latencies, errors, failures, elapsed


def delete_all(cloud: object, http: httpx.Client, server_ids: list[str], concurrency: int):
    compute = f"{cloud.urls['compute']}/v2.1"  # type: ignore[attr-defined]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(lambda i: http.delete(f"{compute}/servers/{i}"), server_ids))
    deadline = time.monotonic() + 600
    left = len(server_ids)
    while time.monotonic() < deadline:
        left = len(http.get(f"{compute}/servers", params={"limit": 10000}).json()["servers"])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args(argv)
    lines = [
        "# Compute benchmark",
        "",
        f"Machine: {machine_description()}; load average at start {load_average()}.",
        "",
    ]
    status = 0
    with signals_as_interrupt(), cleanup_stack() as stack:
        base = Path(tempfile.mkdtemp(prefix="stratus-bench-compute-"))
        stack.callback(lambda: __import__("shutil").rmtree(base, ignore_errors=True))
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
        created, latencies, errors, failures, elapsed = boot_all(
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
            "## Real guests (QEMU through libvirt)",
            "",
            "Not measured yet: the agent's libvirt driver is not in this benchmark's "
            "rollout. The published figure for one QEMU test guest on this kind of "
            "machine is define+start 0.4 s, DHCP lease at about 3.5 s (BENCHMARKS.md).",
            "",
        ]
        if errors or failures or left:
            status = 1
    print("\n".join(lines))
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as exc:
        print(f"compute benchmark failed: {exc}", file=sys.stderr)
        sys.exit(1)
