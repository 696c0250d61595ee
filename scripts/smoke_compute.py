#!/usr/bin/env python3
"""The compute smoke journey: one real guest through a rolled-out cloud.

What ``playbooks/smoke.yml`` runs from the deploying machine (``make aio``),
with openstacksdk against the clouds of ``demo.yml``'s clouds.yaml
(``OS_CLIENT_CONFIG_FILE``):

1. as the admin, a flavor for the journey (1 vCPU, 256 MiB, 1 GiB);
2. as the demo tenant, the test image (``scripts/build_test_image.py``), a
   network, subnet and router to the external network, a security group
   that lets ICMP and TCP 22 in, a key pair;
3. a server with user data, until ACTIVE; its console log must show the
   DHCP lease of its own address, its instance id read from the metadata
   service (through the network agent's proxy) and the user data;
4. a floating IP, pinged and its TCP port 22 answering from the network
   node;
5. stop (SHUTOFF, the guest saw the power button), start and reboot (the
   guest boots again each time), a snapshot into the image service;
6. everything deleted again (also when a step fails), then proof that
   nothing was left: no server, port, floating IP, image, key pair or
   flavor in the APIs, no claim left (each hypervisor's usage is that of
   the servers placed there, as before the journey), and on the
   hypervisor no domain, no instance directory and no tap.

Each step is printed with the seconds it took. The network node and the
hypervisors are reached with the commands the playbook passes (``ssh ...``
as Ansible reaches them, or nothing for the local machine)::

    smoke_compute.py --image-dir /var/cache/stratus-lab/test-image \\
        --external-network external \\
        --node-command '["ssh", "-i", "key", "root@172.31.231.10"]' \\
        --hypervisors '{"aio1": {"command": [...], "instances_path": "/var/lib/..."}}'

Exit status 0 when the whole journey held, 1 otherwise (the failing step
says why).
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import openstack
from openstack import exceptions as os_exc

T = TypeVar("T")

BOOT_TIMEOUT = 600.0
CONSOLE_TIMEOUT = 300.0
PING_TIMEOUT = 120.0
TENANT_CIDR = "10.0.9.0/24"
# The compute role's default stratus_compute_instances_path.
INSTANCES_PATH = "/var/lib/stratus-compute/instances"


class JourneyError(Exception):
    """A step found the cloud answering otherwise than it must."""


@dataclass
class Host:
    """How to run a shell command on a host of the cloud."""

    command: list[str]
    instances_path: str = INSTANCES_PATH

    def run(self, script: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        # ssh hands its arguments to the remote shell as one line; locally
        # the shell is asked for explicitly.
        argv = [*self.command, script] if self.command else ["sh", "-c", script]
        return subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Journey:
    admin: Any
    demo: Any
    node: Host
    hypervisors: dict[str, Host]
    image_dir: Path
    external_network: str
    suffix: str = field(default_factory=lambda: secrets.token_hex(3))
    started: float = field(default_factory=time.monotonic)
    made: dict[str, Any] = field(default_factory=dict)
    steps: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        began = time.monotonic()
        print(f"--> {title}", flush=True)
        try:
            yield
        except Exception:
            print(f"    FAILED after {time.monotonic() - began:.1f} s", flush=True)
            raise
        took = time.monotonic() - began
        self.steps.append((title, took))
        print(f"    ok in {took:.1f} s", flush=True)

    def note(self, text: str) -> None:
        print(f"    {text}", flush=True)

    @property
    def name(self) -> str:
        return f"smoke-{self.suffix}"


def wait_for(what: str, probe: Callable[[], T | None], timeout: float, interval: float = 2.0) -> T:
    """probe's first answer that is not None, or JourneyError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        answer = probe()
        if answer is not None:
            return answer
        if time.monotonic() > deadline:
            raise JourneyError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def server_status(journey: Journey, wanted: str, timeout: float = BOOT_TIMEOUT) -> Any:
    """The server once its status is `wanted` and it has no task; JourneyError on ERROR."""

    def probe() -> Any:
        server = journey.demo.compute.get_server(journey.made["server"])
        if server.status == "ERROR":
            raise JourneyError(f"The server went to ERROR: {server.fault}")
        if server.status == wanted and not server.task_state:
            return server
        return None

    return wait_for(f"server status {wanted}", probe, timeout)


def console(journey: Journey) -> str:
    output = journey.demo.compute.get_server_console_output(journey.made["server"])
    # A serial console ends its lines with CR LF.
    return str(output.get("output") or "").replace("\r\n", "\n")


def console_shows(journey: Journey, pattern: str, count: int = 1) -> str:
    """The console log once `pattern` (a regex) is in it `count` times."""

    def probe() -> str | None:
        text = console(journey)
        return text if len(re.findall(pattern, text, re.MULTILINE)) >= count else None

    try:
        return wait_for(f"console line /{pattern}/ x{count}", probe, CONSOLE_TIMEOUT)
    except JourneyError:
        tail = "\n".join(console(journey).splitlines()[-25:])
        raise JourneyError(
            f"The console log never showed /{pattern}/ {count} time(s). Its end:\n{tail}"
        ) from None


def unclaimed_usage(journey: Journey) -> dict[str, tuple[int, int]]:
    """Per hypervisor, the guests and vCPUs it counts beyond its servers' flavors.

    Other tenants may boot and delete servers while the journey runs, so the
    hypervisors' usage is not compared with itself before and after: what
    must hold is that it accounts for exactly the servers placed there, i.e.
    that no claim of a deleted server is left. A pair of zeros per host.
    """
    admin = journey.admin
    flavors: dict[str, int] = {}
    placed: dict[str, list[int]] = {}
    for server in admin.compute.servers(details=True, all_projects=True):
        if not server.compute_host or server.status == "DELETED":
            continue
        flavor_id = str(
            server.flavor["id"] if isinstance(server.flavor, dict) else server.flavor.id
        )
        if flavor_id not in flavors:
            flavors[flavor_id] = int(admin.compute.get_flavor(flavor_id).vcpus)
        placed.setdefault(server.compute_host, []).append(flavors[flavor_id])
    return {
        hypervisor.name: (
            int(hypervisor.running_vms or 0) - len(placed.get(hypervisor.name, [])),
            int(hypervisor.vcpus_used or 0) - sum(placed.get(hypervisor.name, [])),
        )
        for hypervisor in admin.compute.hypervisors(details=True)
    }


def run(journey: Journey) -> None:
    admin, demo = journey.admin, journey.demo
    made = journey.made

    with journey.step("Look at the cloud before the journey"):
        external = admin.network.find_network(journey.external_network)
        if external is None or not external.is_router_external:
            raise JourneyError(
                f"There is no external network {journey.external_network!r}: the network "
                "journey of smoke.yml makes it before this one."
            )
        made["unclaimed_before"] = unclaimed_usage(journey)
        services = [s for s in admin.compute.services() if s.binary == "nova-compute"]
        up = [s.host for s in services if s.state == "up" and s.status == "enabled"]
        if not up:
            raise JourneyError(f"No hypervisor is up and enabled: {services}")
        journey.note(f"hypervisors up: {', '.join(up)}")

    with journey.step("Create a flavor (admin)"):
        flavor = admin.compute.create_flavor(
            name=journey.name, vcpus=1, ram=256, disk=1, is_public=True
        )
        made["flavor"] = flavor.id

    with journey.step("Upload the test image"):
        image = demo.image.create_image(
            name=journey.name,
            filename=str(journey.image_dir / "stratus-test.qcow2"),
            disk_format="qcow2",
            container_format="bare",
            visibility="private",
            wait=True,
            timeout=300,
        )
        made["image"] = image.id
        image = demo.image.get_image(image.id)
        if image.status != "active":
            raise JourneyError(f"The image is {image.status}, not active")
        journey.note(f"image {image.id}, {image.size} bytes")

    with journey.step("Create a network, subnet and router"):
        network = demo.network.create_network(name=journey.name)
        made["network"] = network.id
        subnet = demo.network.create_subnet(
            name=journey.name, network_id=network.id, ip_version=4, cidr=TENANT_CIDR
        )
        made["subnet"] = subnet.id
        router = demo.network.create_router(
            name=journey.name, external_gateway_info={"network_id": external.id}
        )
        made["router"] = router.id
        demo.network.add_interface_to_router(router, subnet_id=subnet.id)
        made["router_interface"] = True

    with journey.step("Create a security group letting ICMP and TCP 22 in"):
        group = demo.network.create_security_group(name=journey.name)
        made["security_group"] = group.id
        for rule in (
            {"protocol": "icmp"},
            {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
        ):
            demo.network.create_security_group_rule(
                security_group_id=group.id, direction="ingress", ethertype="IPv4", **rule
            )

    with journey.step("Create a key pair"):
        keypair = demo.compute.create_keypair(name=journey.name)
        made["keypair"] = keypair.name
        if not (keypair.private_key or "").startswith("-----BEGIN"):
            raise JourneyError("The generated key pair came without its private key")

    marker = f"smoke-user-data-{journey.suffix}"
    user_data = f"#!/bin/sh\necho {marker}\n"
    with journey.step("Boot a server with user data"):
        server = demo.compute.create_server(
            name=journey.name,
            image_id=made["image"],
            flavor_id=made["flavor"],
            networks=[{"uuid": made["network"]}],
            key_name=journey.name,
            security_groups=[{"name": journey.name}],
            user_data=base64.b64encode(user_data.encode()).decode(),
        )
        made["server"] = server.id
        journey.note(f"server {server.id}")

    with journey.step("Wait until the server is ACTIVE"):
        server = server_status(journey, "ACTIVE")
        host = admin.compute.get_server(server.id).compute_host
        made["host"] = host
        address = next(
            entry["addr"]
            for entries in server.addresses.values()
            for entry in entries
            if entry.get("OS-EXT-IPS:type", "fixed") == "fixed"
        )
        journey.note(f"on {host}, address {address}")

    with journey.step("Read the DHCP lease, metadata and user data in the console log"):
        text = console_shows(journey, r"^stratus-test: ready")
        expected = {
            "DHCP lease": rf"^stratus-test: eth0 lease {re.escape(address)}/24 ",
            "instance id from the metadata service": (
                rf"^stratus-test: instance-id {server.id} \(from the metadata service\)"
            ),
            "name": rf"^stratus-test: name {re.escape(journey.name)}$",
            "user data": rf"^stratus-test: user-data: echo {marker}$",
        }
        missing = [what for what, pattern in expected.items() if not re.search(pattern, text, re.M)]
        if missing:
            lines = [line for line in text.splitlines() if "stratus-test:" in line]
            raise JourneyError(f"The console log lacks the {', '.join(missing)}: {lines}")

    with journey.step("Give the server a floating IP"):
        port = next(iter(demo.network.ports(device_id=server.id)), None)
        if port is None:
            raise JourneyError(f"The server {server.id} has no port")
        made["port"] = port.id
        ip = demo.network.create_ip(floating_network_id=external.id, port_id=port.id)
        made["floating_ip"] = ip.id
        journey.note(f"floating IP {ip.floating_ip_address} on port {port.id}")

    fip = ip.floating_ip_address
    with journey.step("Ping the floating IP and reach TCP 22 from the network node"):
        wait_for(
            f"ping {fip}",
            lambda: True if journey.node.run(f"ping -c 1 -W 1 {fip}").returncode == 0 else None,
            PING_TIMEOUT,
            interval=1.0,
        )
        banner = journey.node.run(
            f"timeout 10 bash -c 'exec 3<>/dev/tcp/{fip}/22 && head -c 20 <&3'"
        )
        if "SSH-2.0-stratus-test" not in banner.stdout:
            raise JourneyError(f"TCP 22 at {fip} answered {banner.stdout!r} {banner.stderr!r}")

    with journey.step("Stop the server"):
        demo.compute.stop_server(server.id)
        server_status(journey, "SHUTOFF")
        console_shows(journey, r"^stratus-test: power button: powering off")

    with journey.step("Start it again"):
        demo.compute.start_server(server.id)
        server_status(journey, "ACTIVE")
        console_shows(journey, r"^stratus-test: ready", count=2)

    with journey.step("Reboot it"):
        demo.compute.reboot_server(server.id, "SOFT")
        server_status(journey, "ACTIVE")
        console_shows(journey, r"^stratus-test: ready", count=3)

    with journey.step("Snapshot it into the image service"):
        snapshot = demo.compute.create_server_image(
            server.id, name=f"{journey.name}-snapshot", wait=True, timeout=BOOT_TIMEOUT
        )
        made["snapshot"] = snapshot.id
        snapshot = demo.image.get_image(snapshot.id)
        if snapshot.status != "active" or not snapshot.size:
            raise JourneyError(f"The snapshot is {snapshot.status} with {snapshot.size} bytes")
        # openstacksdk knows instance_uuid as an attribute, image_type as a property.
        image_type = (snapshot.properties or {}).get("image_type")
        if snapshot.instance_uuid != server.id or image_type != "snapshot":
            raise JourneyError(
                f"The snapshot does not name its server: instance_uuid "
                f"{snapshot.instance_uuid}, image_type {image_type}"
            )
        journey.note(f"snapshot {snapshot.id}, {snapshot.size} bytes")
        server_status(journey, "ACTIVE")


def clean_up(journey: Journey) -> list[str]:
    """Delete what the journey made, newest first; what could not be deleted."""
    admin, demo, made = journey.admin, journey.demo, journey.made
    failures: list[str] = []

    def attempt(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except os_exc.NotFoundException:
            pass
        except Exception as exc:  # every leftover is reported, none stops the rest
            failures.append(f"{what}: {exc}")

    if "snapshot" in made:
        attempt("snapshot", lambda: demo.image.delete_image(made["snapshot"]))
    if "floating_ip" in made:
        attempt("floating IP", lambda: demo.network.delete_ip(made["floating_ip"]))
    if "server" in made:
        attempt("server", lambda: demo.compute.delete_server(made["server"]))
        attempt(
            "server (waiting for 404)",
            lambda: demo.compute.wait_for_delete(
                demo.compute.get_server(made["server"]), wait=BOOT_TIMEOUT
            ),
        )
    if "keypair" in made:
        attempt("key pair", lambda: demo.compute.delete_keypair(made["keypair"]))
    if "router_interface" in made:
        attempt(
            "router interface",
            lambda: demo.network.remove_interface_from_router(
                made["router"], subnet_id=made["subnet"]
            ),
        )
    if "router" in made:
        attempt("router", lambda: demo.network.delete_router(made["router"]))
    if "network" in made:
        attempt("network", lambda: demo.network.delete_network(made["network"]))
    if "security_group" in made:
        attempt(
            "security group", lambda: demo.network.delete_security_group(made["security_group"])
        )
    if "image" in made:
        attempt("image", lambda: demo.image.delete_image(made["image"]))
    if "flavor" in made:
        attempt("flavor", lambda: admin.compute.delete_flavor(made["flavor"]))
    return failures


def leftovers(journey: Journey) -> list[str]:
    """What of the journey's is still anywhere (APIs, the hypervisor)."""
    admin, made = journey.admin, journey.made
    left: list[str] = []
    lookups: dict[str, Callable[[str], object]] = {
        "server": admin.compute.find_server,
        "port": admin.network.find_port,
        "floating_ip": admin.network.find_ip,
        "router": admin.network.find_router,
        "network": admin.network.find_network,
        "security_group": admin.network.find_security_group,
        "image": admin.image.find_image,
        "snapshot": admin.image.find_image,
        "flavor": admin.compute.find_flavor,
    }
    for kind, find in lookups.items():
        if kind in made and find(made[kind]) is not None:
            left.append(f"{kind} {made[kind]}")
    if "keypair" in made and journey.demo.compute.find_keypair(made["keypair"]) is not None:
        left.append(f"key pair {made['keypair']}")
    if "server" in made and any(admin.network.ports(device_id=made["server"])):
        left.append(f"ports of server {made['server']}")
    if "unclaimed_before" in made:
        # Servers of others may be between states for a moment: ask again.
        for _ in range(5):
            after = unclaimed_usage(journey)
            if after == made["unclaimed_before"]:
                break
            time.sleep(2)
        else:
            left.append(
                "hypervisor usage beyond the servers placed there (guests, vCPUs): "
                f"{after}, before the journey {made['unclaimed_before']}"
            )
    if "host" in made:
        left.extend(host_leftovers(journey, made["host"]))
    return left


def host_leftovers(journey: Journey, name: str) -> list[str]:
    host = journey.hypervisors.get(name)
    if host is None:
        return [f"the server ran on {name}, which the playbook gave no command for"]
    server_id, port_id = journey.made["server"], journey.made.get("port", "")
    checks = {
        f"libvirt domain instance-{server_id}": (
            f"virsh -c qemu:///system domstate instance-{server_id} >/dev/null 2>&1"
        ),
        f"instance directory {host.instances_path}/{server_id}": (
            f"test -e {shlex.quote(host.instances_path)}/{server_id}"
        ),
    }
    if port_id:
        checks[f"tap device tap{port_id[:11]}"] = f"ip link show tap{port_id[:11]} >/dev/null 2>&1"
    return [
        f"{what} on {name}" for what, script in checks.items() if host.run(script).returncode == 0
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--image-dir", type=Path, required=True)
    parser.add_argument("--external-network", default="external")
    parser.add_argument("--admin-cloud", default="stratus-admin")
    parser.add_argument("--demo-cloud", default="stratus-demo")
    parser.add_argument("--node-command", default="[]", help="JSON argv prefix")
    parser.add_argument("--hypervisors", default="{}", help="JSON: host -> command, instances_path")
    args = parser.parse_args(argv)

    hypervisors = {
        name: Host(
            list(spec.get("command", [])), spec.get("instances_path") or Host([]).instances_path
        )
        for name, spec in json.loads(args.hypervisors).items()
    }
    journey = Journey(
        admin=openstack.connect(cloud=args.admin_cloud),
        demo=openstack.connect(cloud=args.demo_cloud),
        node=Host(json.loads(args.node_command)),
        hypervisors=hypervisors,
        image_dir=args.image_dir,
        external_network=args.external_network,
    )
    failed: str | None = None
    try:
        run(journey)
    except (JourneyError, os_exc.SDKException) as exc:
        failed = str(exc)
        print(f"!!! {failed}", flush=True)
    finally:
        with journey.step("Delete everything"):
            undeleted = clean_up(journey)
            for line in undeleted:
                journey.note(f"could not delete the {line}")
        with journey.step("Prove nothing was left behind"):
            try:
                left = leftovers(journey)
            except os_exc.SDKException as exc:
                left = [f"the check itself failed: {exc}"]
            for line in left:
                journey.note(f"left behind: {line}")

    print(f"\nThe compute journey, {time.monotonic() - journey.started:.0f} s in all:")
    for title, took in journey.steps:
        print(f"  {took:7.1f} s  {title}")
    if failed or undeleted or left:
        print("FAILED: " + "; ".join(filter(None, [failed, *undeleted, *left])))
        return 1
    print("OK: a real guest booted, answered and went without a trace.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
