"""Prepare throwaway compute servers for Tempest (called by scripts/tempest.sh).

Logs in as the admin, waits (up to a minute) until the compute service lists
HOSTS hosts up (the fake driver's hosts report themselves), uploads two tiny
public raw images (``image_ref`` and ``image_ref_alt``: the fake driver boots
nothing, so a few KiB of zeros do) and creates two public flavors
(``flavor_ref``, and a larger ``flavor_ref_alt`` for resizes). Prints shell
assignments for tempest.conf: ``image_ref``, ``image_ref_alt``,
``flavor_ref``, ``flavor_ref_alt`` and ``compute_hosts`` (how many are up).

    python scripts/tempest_compute.py IDENTITY_URL ADMIN_PASSWORD IMAGE_URL COMPUTE_URL HOSTS
"""

from __future__ import annotations

import shlex
import sys
import time

import httpx
from tempest_network import admin_token

# (id, name, RAM MiB, vCPUs, disk GiB): small, so that Tempest's many servers
# fit the default quotas (20 cores, 50 GiB RAM per project).
FLAVORS = (
    ("42", "m1.nano", 128, 1, 1),
    ("84", "m1.micro", 192, 1, 2),
)
IMAGE_BYTES = b"\0" * 65536


def wait_for_hosts(api: httpx.Client, want: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    up = 0
    while time.monotonic() < deadline:
        services = api.get("/os-services").json().get("services", [])
        up = sum(1 for s in services if s["state"] == "up" and s["status"] == "enabled")
        if up >= want:
            return up
        time.sleep(0.5)
    sys.exit(f"tempest_compute.py: {up} of {want} compute hosts up after {timeout:.0f} s")


def upload_image(api: httpx.Client, name: str) -> str:
    body = {
        "name": name,
        "disk_format": "raw",
        "container_format": "bare",
        "visibility": "public",
    }
    created = api.post("/v2/images", json=body)
    created.raise_for_status()
    image_id: str = created.json()["id"]
    api.put(
        f"/v2/images/{image_id}/file",
        content=IMAGE_BYTES,
        headers={"Content-Type": "application/octet-stream"},
    ).raise_for_status()
    return image_id


def main(identity: str, password: str, image: str, compute: str, hosts: str) -> None:
    headers = {"X-Auth-Token": admin_token(identity, password)}
    with httpx.Client(base_url=compute, headers=headers, timeout=60) as api:
        up = wait_for_hosts(api, int(hosts))
        for flavor_id, name, ram, vcpus, disk in FLAVORS:
            body = {
                "flavor": {
                    "id": flavor_id,
                    "name": name,
                    "ram": ram,
                    "vcpus": vcpus,
                    "disk": disk,
                    "os-flavor-access:is_public": True,
                }
            }
            api.post("/flavors", json=body).raise_for_status()
    with httpx.Client(base_url=image, headers=headers, timeout=60) as api:
        images = [upload_image(api, name) for name in ("tempest-tiny", "tempest-tiny-alt")]
    print(f"image_ref={shlex.quote(images[0])}")
    print(f"image_ref_alt={shlex.quote(images[1])}")
    print(f"flavor_ref={shlex.quote(FLAVORS[0][0])}")
    print(f"flavor_ref_alt={shlex.quote(FLAVORS[1][0])}")
    print(f"compute_hosts={up}")


if __name__ == "__main__":
    main(*sys.argv[1:6])
