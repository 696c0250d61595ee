"""``stratus-compute-agent``: the compute agent of a hypervisor host.

It runs one ``HostAgent`` (or, with ``driver = fake``, ``fake_hosts`` of
them, for scale tests) and makes a pass every ``resync_interval`` seconds,
at once again after a pass that started tasks. SIGTERM stops it after the
tasks in flight.
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from stratus.common import logs
from stratus.common.config import Config, ConfigError
from stratus.common.service_client import ApiError
from stratus.compute.agent import settings
from stratus.compute.agent.client import ComputeClient
from stratus.compute.agent.host import Capacity, HostAgent, ImageCachePruning

log = logging.getLogger("stratus.compute.agent")


def build_agents(config: Config, client: Any) -> list[HostAgent]:
    options = config.section(settings.SECTION)
    capacity = Capacity(
        availability_zone=options.availability_zone or None,
        cpu_allocation_ratio=options.cpu_allocation_ratio,
        ram_allocation_ratio=options.ram_allocation_ratio,
        disk_allocation_ratio=options.disk_allocation_ratio,
        reserved_host_memory_mb=options.reserved_host_memory_mb,
    )
    host = options.host or socket.gethostname()
    state = Path(options.instances_path)
    state.mkdir(parents=True, exist_ok=True)
    from stratus.compute.agent.apis import ImageApi, NetworkApi, service_apis

    image_client, network_client = service_apis(config)
    images, network = ImageApi(image_client), NetworkApi(network_client)
    workdir = state / "snapshots"
    # Snapshots a stopped agent was writing: their tasks start again from scratch.
    for stale in workdir.glob("snapshot-*.qcow2"):
        stale.unlink(missing_ok=True)
    if options.driver == "fake":
        from stratus.compute.agent.fake import FakeDriver

        names = (
            [host]
            if options.fake_hosts == 1
            else [f"{host}-{i}" for i in range(1, options.fake_hosts + 1)]
        )
        shared = ThreadPoolExecutor(options.workers, thread_name_prefix="fake")
        return [
            HostAgent(
                name,
                FakeDriver(
                    state / f"{name}.json",
                    name,
                    options.fake_vcpus,
                    options.fake_memory_mb,
                    options.fake_local_gb,
                ),
                client,
                capacity,
                executor=shared,
                images=images,
                network=network,
                workdir=workdir,
            )
            for name in names
        ]
    from stratus.compute.agent.libvirt_driver import LibvirtDriver

    driver = LibvirtDriver.from_config(config, host, images=images, subnets=network)
    return [
        HostAgent(
            host,
            driver,
            client,
            capacity,
            workers=options.workers,
            images=images,
            network=network,
            workdir=workdir,
            image_cache=ImageCachePruning(
                options.image_cache_interval, options.image_cache_min_age
            ),
        )
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratus-compute-agent", description=__doc__)
    parser.add_argument(
        "--config-file", help="default: $STRATUS_CONFIG or /etc/stratus/stratus.conf"
    )
    parser.add_argument("--once", action="store_true", help="one pass, wait for its tasks, exit")
    args = parser.parse_args(argv)
    try:
        config = Config(args.config_file)
        logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
        options = config.section(settings.SECTION)
        client = ComputeClient.from_config(config)
        agents = build_agents(config, client)
    except ConfigError as exc:
        print(f"stratus-compute-agent: configuration error: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("compute agent started for %s", ", ".join(a.host for a in agents[:3]))
    while not stop.is_set():
        started = 0
        for agent in agents:
            try:
                started += agent.run_once()
            except ApiError as exc:
                log.error("%s: pass failed: %s", agent.host, exc)
            except Exception:
                log.exception("%s: pass failed", agent.host)
        if args.once:
            for agent in agents:
                agent.wait()
            break
        stop.wait(0.2 if started else options.resync_interval)
    for agent in agents:
        agent.wait()
        agent.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
