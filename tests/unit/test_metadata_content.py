"""The metadata documents and trees of a sample instance, shape by shape.

The sample (tests/metadata_sample.py) has a port with IPv4 from DHCP and
IPv6 by SLAAC, a static port on both families with a host route, a
floating IP, a key pair and user data; ``BARE`` has none of the optional
parts. Shapes follow Nova's metadata API (nova/api/metadata/base.py and
nova/virt/netutils.py) as cloud-init reads them.
"""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from stratus.metadata import content, tree
from stratus.metadata.content import FixedIP, InstanceMetadata
from tests.metadata_sample import BARE, INSTANCE, KEY, PORT_DHCP, PORT_STATIC, PROJECT, USER_DATA

SEED = bytes(range(256)) * 2


def _text(node: tree.Directory | tree.File | None) -> str:
    assert node is not None
    return (node.listing() if isinstance(node, tree.Directory) else node.data).decode()


def test_meta_data_latest() -> None:
    assert content.meta_data(INSTANCE, random_seed=SEED) == {
        "uuid": INSTANCE.uuid,
        "meta": {"role": "web"},
        "public_keys": {"mykey": KEY},
        "keys": [{"name": "mykey", "type": "ssh", "data": KEY}],
        "hostname": "web-1",
        "name": "web-1",
        "launch_index": 0,
        "availability_zone": "zone-a",
        "random_seed": base64.b64encode(SEED).decode(),
        "project_id": PROJECT,
        "devices": [],
        "dedicated_cpus": [],
    }


@pytest.mark.parametrize(
    ("version", "added"),
    [
        ("2012-08-10", set()),
        ("2013-04-04", {"random_seed"}),
        ("2015-10-15", {"random_seed", "project_id"}),
        ("2016-06-30", {"random_seed", "project_id", "devices"}),
        ("2018-08-27", {"random_seed", "project_id", "devices"}),
        ("2020-10-14", {"random_seed", "project_id", "devices", "dedicated_cpus"}),
        ("latest", {"random_seed", "project_id", "devices", "dedicated_cpus"}),
    ],
)
def test_meta_data_grows_with_the_version(version: str, added: set[str]) -> None:
    base = {"uuid", "meta", "public_keys", "keys", "hostname", "name"}
    base |= {"launch_index", "availability_zone"}
    assert set(content.meta_data(INSTANCE, version, SEED)) == base | added


def test_meta_data_without_keys_metadata_or_seed() -> None:
    doc = content.meta_data(BARE)
    assert "public_keys" not in doc and "keys" not in doc and "meta" not in doc
    assert "random_seed" not in doc
    assert doc["uuid"] == BARE.uuid and doc["name"] == "bare"


def test_network_data() -> None:
    link0, link1 = f"tap{PORT_DHCP.id[:11]}", f"tap{PORT_STATIC.id[:11]}"
    assert content.network_data(INSTANCE) == {
        "links": [
            {
                "id": link0,
                "vif_id": PORT_DHCP.id,
                "type": "bridge",
                "mtu": 1450,
                "ethernet_mac_address": "fa:16:3e:00:00:05",
            },
            {
                "id": link1,
                "vif_id": PORT_STATIC.id,
                "type": "bridge",
                "mtu": 1500,
                "ethernet_mac_address": "fa:16:3e:00:00:06",
            },
        ],
        "networks": [
            {
                "id": "network0",
                "type": "ipv4_dhcp",
                "link": link0,
                "network_id": PORT_DHCP.network_id,
            },
            {
                "id": "network1",
                "type": "ipv6_slaac",
                "link": link0,
                "ip_address": "2001:db8:1::f816:3eff:fe00:5",
                "netmask": "ffff:ffff:ffff:ffff::",
                "routes": [{"network": "::", "netmask": "::", "gateway": "2001:db8:1::1"}],
                "network_id": PORT_DHCP.network_id,
                "services": [],
            },
            {
                "id": "network2",
                "type": "ipv4",
                "link": link1,
                "ip_address": "192.168.50.7",
                "netmask": "255.255.255.0",
                "routes": [
                    {"network": "172.16.0.0", "netmask": "255.255.0.0", "gateway": "192.168.50.1"}
                ],
                "network_id": PORT_STATIC.network_id,
                "services": [
                    {"type": "dns", "address": "192.168.50.2"},
                    {"type": "dns", "address": "10.0.0.2"},
                ],
            },
            {
                "id": "network3",
                "type": "ipv6",
                "link": link1,
                "ip_address": "2001:db8:2::7",
                "netmask": "ffff:ffff:ffff:ffff::",
                "routes": [{"network": "::", "netmask": "::", "gateway": "2001:db8:2::1"}],
                "network_id": PORT_STATIC.network_id,
                "services": [],
            },
        ],
        # Every subnet's DNS servers once, in the order first seen.
        "services": [
            {"type": "dns", "address": "10.0.0.2"},
            {"type": "dns", "address": "192.168.50.2"},
        ],
    }


@pytest.mark.parametrize(
    ("fixed", "kind"),
    [
        (FixedIP("10.1.0.5", "10.1.0.0/24"), "ipv4_dhcp"),
        (FixedIP("10.1.0.5", "10.1.0.0/24", dhcp=False), "ipv4"),
        (FixedIP("fd00::5", "fd00::/64"), "ipv6_dhcp"),
        (FixedIP("fd00::5", "fd00::/64", dhcp=False), "ipv6"),
        (FixedIP("fd00::5", "fd00::/64", ipv6_address_mode="slaac"), "ipv6_slaac"),
        (
            FixedIP("fd00::5", "fd00::/64", ipv6_address_mode="dhcpv6-stateless"),
            "ipv6_dhcpv6-stateless",
        ),
        (
            FixedIP("fd00::5", "fd00::/64", ipv6_address_mode="dhcpv6-stateful"),
            "ipv6_dhcpv6-stateful",
        ),
    ],
)
def test_network_types(fixed: FixedIP, kind: str) -> None:
    assert fixed.network_type == kind


def test_second_dhcp_address_of_a_family_is_one_entry() -> None:
    port = dataclasses.replace(
        PORT_DHCP,
        fixed_ips=(FixedIP("10.0.0.5", "10.0.0.0/24"), FixedIP("10.0.1.5", "10.0.1.0/24")),
    )
    doc = content.network_data(dataclasses.replace(INSTANCE, ports=(port,)))
    assert [n["type"] for n in doc["networks"]] == ["ipv4_dhcp"]


@pytest.mark.parametrize(
    "bad",
    [
        lambda: FixedIP("10.9.0.5", "10.0.0.0/24"),
        lambda: FixedIP("10.0.0.5", "10.0.0.0/24", ipv6_address_mode="slaac"),
        lambda: FixedIP("fd00::5", "fd00::/64", ipv6_address_mode="eui64"),
        lambda: dataclasses.replace(INSTANCE, uuid=""),
        lambda: dataclasses.replace(INSTANCE, launch_index=-1),
    ],
)
def test_inconsistent_descriptions_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


def test_vendor_data() -> None:
    assert content.vendor_data(INSTANCE) == dict(INSTANCE.vendor_data)
    assert content.vendor_data2(INSTANCE) == {"static": dict(INSTANCE.vendor_data)}
    assert content.vendor_data(BARE) == {} and content.vendor_data2(BARE) == {"static": {}}


def test_ec2_meta_data_latest() -> None:
    assert content.ec2_meta_data(INSTANCE) == {
        "ami-id": f"ami-{INSTANCE.image_id[:8]}",
        "ami-launch-index": 0,
        "ami-manifest-path": "(unknown)",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda", "ephemeral0": "/dev/vdb"},
        "hostname": "web-1",
        "instance-action": "none",
        "instance-id": f"i-{INSTANCE.uuid[:8]}",
        "instance-type": "m1.tiny",
        "local-hostname": "web-1",
        "local-ipv4": "10.0.0.5",
        "placement": {"availability-zone": "zone-a"},
        "public-hostname": "web-1",
        "public-ipv4": "203.0.113.10",
        "public-keys": {"0": {"openssh-key": KEY}},
        "reservation-id": "r-0000002a",
        "security-groups": ["default", "web"],
    }


def test_ec2_ids() -> None:
    # Compute's integer id gives Nova's exact form; the UUID stands in otherwise.
    assert content.ec2_meta_data(dataclasses.replace(INSTANCE, ec2_id=42))["instance-id"] == (
        "i-0000002a"
    )
    md = dataclasses.replace(BARE, reservation_id="", kernel_id="aabbccdd-0000", ramdisk_id="1-2")
    meta = content.ec2_meta_data(md)
    assert meta["reservation-id"] == f"r-{BARE.uuid[:8]}"
    assert meta["kernel-id"] == "aki-aabbccdd" and meta["ramdisk-id"] == "ari-00000012"


def test_ec2_meta_data_of_the_first_version_and_without_extras() -> None:
    meta = content.ec2_meta_data(BARE, "1.0")
    assert set(meta) == {
        "ami-id", "ami-launch-index", "ami-manifest-path", "hostname", "instance-id",
        "local-ipv4", "reservation-id", "security-groups",
    }  # fmt: skip
    latest = content.ec2_meta_data(BARE)
    assert "public-keys" not in latest and latest["public-ipv4"] == ""


# --- trees -----------------------------------------------------------------------------


def test_openstack_listings() -> None:
    root = tree.openstack_tree(INSTANCE, SEED)
    assert _text(root).split("\n") == [*content.OPENSTACK_VERSIONS, "latest"]
    assert _text(root.find("latest")) == (
        "meta_data.json\nuser_data\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
    )
    assert _text(root.find("2012-08-10")) == "meta_data.json\nuser_data"
    assert _text(root.find("2013-10-17/")) == "meta_data.json\nuser_data\nvendor_data.json"
    assert _text(root.find("2016-06-30")).endswith("network_data.json")
    assert _text(root.find("2016-10-06")).endswith("vendor_data2.json")
    assert _text(tree.openstack_tree(BARE).find("latest")) == (
        "meta_data.json\nvendor_data.json\nnetwork_data.json\nvendor_data2.json"
    )


def test_openstack_files() -> None:
    root = tree.openstack_tree(INSTANCE, SEED)
    meta = root.find("latest/meta_data.json")
    assert isinstance(meta, tree.File) and meta.content_type == "application/json"
    assert json.loads(meta.data) == content.meta_data(INSTANCE, "latest", SEED)
    network = root.find("2015-10-15/network_data.json")
    assert isinstance(network, tree.File)
    assert json.loads(network.data) == content.network_data(INSTANCE)
    user = root.find("latest/user_data")
    assert isinstance(user, tree.File) and user.data == USER_DATA
    assert user.content_type == "text/plain"


@pytest.mark.parametrize(
    "path",
    [
        "latest/password",
        "2012-08-10/vendor_data.json",
        "2013-04-04/network_data.json",
        "2015-10-15/vendor_data2.json",
        "2011-01-01/meta_data.json",
        "latest/meta_data.json/uuid",
        "latest/nothing",
    ],
)
def test_openstack_paths_that_do_not_exist(path: str) -> None:
    assert tree.openstack_tree(INSTANCE, SEED).find(path) is None


def test_no_user_data_is_no_file() -> None:
    assert tree.openstack_tree(BARE).find("latest/user_data") is None
    assert tree.ec2_tree(BARE).find("latest/user-data") is None
    assert _text(tree.ec2_tree(BARE).find("latest")) == "meta-data/"


def test_ec2_listings() -> None:
    root = tree.ec2_tree(INSTANCE)
    assert _text(root) == tree.ec2_versions_listing().decode()
    assert _text(root).split("\n") == [*content.EC2_VERSIONS, "latest"]
    assert _text(root.find("latest")) == "meta-data/\nuser-data"
    assert _text(root.find("latest/meta-data/")).split("\n") == [
        "ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/", "hostname",
        "instance-action", "instance-id", "instance-type", "local-hostname", "local-ipv4",
        "placement/", "public-hostname", "public-ipv4", "public-keys/", "reservation-id",
        "security-groups",
    ]  # fmt: skip
    assert _text(root.find("latest/meta-data/public-keys")) == "0=mykey"
    assert _text(root.find("latest/meta-data/public-keys/0")) == "openssh-key"
    assert _text(root.find("latest/meta-data/public-keys/0/openssh-key")) == KEY
    assert _text(root.find("latest/meta-data/placement/")) == "availability-zone"
    assert _text(root.find("latest/meta-data/placement/availability-zone")) == "zone-a"
    assert _text(root.find("latest/meta-data/block-device-mapping")) == "ami\nephemeral0\nroot"
    assert _text(root.find("latest/meta-data/security-groups")) == "default\nweb"
    assert _text(root.find("latest/meta-data/ami-launch-index")) == "0"
    assert _text(root.find("latest/meta-data/instance-id/")) == f"i-{INSTANCE.uuid[:8]}"
    assert _text(root.find("latest/user-data")) == USER_DATA.decode()
    assert _text(root.find("1.0/meta-data")).split("\n") == [
        "ami-id", "ami-launch-index", "ami-manifest-path", "hostname", "instance-id",
        "local-ipv4", "public-keys/", "reservation-id", "security-groups",
    ]  # fmt: skip


def test_several_keys() -> None:
    keys = (content.KeyPair("a", "ssh-rsa AAA a"), content.KeyPair("b", "ssh-rsa BBB b"))
    md = dataclasses.replace(INSTANCE, public_keys=keys)
    root = tree.ec2_tree(md)
    assert _text(root.find("latest/meta-data/public-keys")) == "0=a\n1=b"
    assert _text(root.find("latest/meta-data/public-keys/1/openssh-key")) == "ssh-rsa BBB b"
    assert content.meta_data(md)["public_keys"] == {"a": "ssh-rsa AAA a", "b": "ssh-rsa BBB b"}


@pytest.mark.parametrize(
    "path", ["2010-01-01/meta-data", "latest/meta-data/nothing", "latest/meta-data/hostname/x"]
)
def test_ec2_paths_that_do_not_exist(path: str) -> None:
    assert tree.ec2_tree(INSTANCE).find(path) is None


def test_the_config_drive_carries_the_served_trees() -> None:
    files = tree.config_drive_files(INSTANCE, SEED)
    served = {
        f"openstack/{path}": node.data for path, node in tree.openstack_tree(INSTANCE, SEED).walk()
    }
    assert {k: v for k, v in files.items() if k.startswith("openstack/")} == served
    ec2 = {k for k in files if k.startswith("ec2/")}
    assert ec2 == {
        "ec2/2009-04-04/meta-data.json",
        "ec2/2009-04-04/user-data",
        "ec2/latest/meta-data.json",
        "ec2/latest/user-data",
    }
    assert files["ec2/latest/user-data"] == USER_DATA
    # The EC2 JSON is the served meta-data tree, leaf for leaf.
    meta = json.loads(files["ec2/latest/meta-data.json"])
    assert meta == content.ec2_meta_data(INSTANCE)
    served_ec2 = tree.ec2_tree(INSTANCE)
    for key, value in meta.items():
        if isinstance(value, dict):
            continue
        expected = "\n".join(value) if isinstance(value, list) else str(value)
        assert _text(served_ec2.find(f"latest/meta-data/{key}")) == expected
    assert "ec2/latest/user-data" not in tree.config_drive_files(BARE)


def test_metadata_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        INSTANCE.name = "other"  # type: ignore[misc]
    assert isinstance(INSTANCE, InstanceMetadata)
