"""A sample instance for the metadata tests, and an app serving it (for uvicorn).

Two ports: the first takes IPv4 from DHCP and IPv6 by SLAAC, the second is
static on both families with a host route; a floating IP, a key pair, server
metadata, vendor data, and user data (``INSTANCE`` has it, ``BARE`` not).

``create_app`` is the metadata service over both instances, trusting
``SECRET`` (or ``$STRATUS_METADATA_SECRET``); it can also be run as
``uvicorn --factory tests.metadata_sample:create_app``.
"""

from __future__ import annotations

import dataclasses
import os

from starlette.types import ASGIApp

from stratus.metadata.app import create_app as create_metadata_app
from stratus.metadata.content import (
    BlockDevices,
    FixedIP,
    InstanceMetadata,
    KeyPair,
    NetworkPort,
    Route,
)

SECRET = "the proxy and the metadata service share this"
PROJECT = "5f0c7c2a9d5e4c6f8b3a2e1d0c9b8a7f"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMetadataTestKeyOnlyForTests stratus@test"
USER_DATA = b"#cloud-config\nruncmd:\n  - echo hello from user data\n"

PORT_DHCP = NetworkPort(
    id="3b9f1f6e-8d7c-4a5b-9e0f-112233445566",
    mac_address="fa:16:3e:00:00:05",
    network_id="8a1c3f0e-2b4d-4e6f-8a9b-0c1d2e3f4a5b",
    mtu=1450,
    fixed_ips=(
        FixedIP("10.0.0.5", "10.0.0.0/24", gateway="10.0.0.1", dns_servers=("10.0.0.2",)),
        FixedIP(
            "2001:db8:1::f816:3eff:fe00:5",
            "2001:db8:1::/64",
            gateway="2001:db8:1::1",
            ipv6_address_mode="slaac",
        ),
    ),
)
PORT_STATIC = NetworkPort(
    id="9c8b7a6f-5e4d-4c3b-8a29-aabbccddeeff",
    mac_address="fa:16:3e:00:00:06",
    network_id="b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e",
    mtu=1500,
    fixed_ips=(
        FixedIP(
            "192.168.50.7",
            "192.168.50.0/24",
            dhcp=False,
            dns_servers=("192.168.50.2", "10.0.0.2"),
            routes=(Route("172.16.0.0/16", "192.168.50.1"),),
        ),
        FixedIP("2001:db8:2::7", "2001:db8:2::/64", gateway="2001:db8:2::1", dhcp=False),
    ),
)

INSTANCE = InstanceMetadata(
    uuid="6d3a2f9e-1b4c-4d5e-8f7a-9b0c1d2e3f4a",
    name="web-1",
    hostname="web-1",
    project_id=PROJECT,
    image_id="0e8f5a6b-7c9d-4e1f-a2b3-c4d5e6f7a8b9",
    flavor_name="m1.tiny",
    availability_zone="zone-a",
    launch_index=0,
    reservation_id="r-0000002a",
    public_keys=(KeyPair("mykey", KEY),),
    user_data=USER_DATA,
    metadata={"role": "web"},
    vendor_data={"cloud-init": "#cloud-config\nbootcmd:\n  - echo vendor\n"},
    ports=(PORT_DHCP, PORT_STATIC),
    floating_ips=("203.0.113.10",),
    security_groups=("default", "web"),
    block_devices=BlockDevices(root="/dev/vda", ephemeral=("/dev/vdb",)),
)
# No user data, no keys, one DHCP-only port, no floating IP.
BARE = dataclasses.replace(
    INSTANCE,
    uuid="0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d",
    name="bare",
    hostname="bare",
    public_keys=(),
    user_data=None,
    metadata={},
    vendor_data={},
    ports=(dataclasses.replace(PORT_DHCP, fixed_ips=PORT_DHCP.fixed_ips[:1]),),
    floating_ips=(),
)
INSTANCES = {md.uuid: md for md in (INSTANCE, BARE)}


def lookup(instance_id: str, project_id: str) -> InstanceMetadata | None:
    md = INSTANCES.get(instance_id)
    return md if md is not None and md.project_id == project_id else None


def create_app() -> ASGIApp:
    return create_metadata_app(lookup, os.environ.get("STRATUS_METADATA_SECRET", SECRET))
