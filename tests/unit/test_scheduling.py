"""The scheduler's filters and weighers (``stratus.compute.scheduling``), as
pure functions of host states and a request. The claim, which needs a
database, is tested through the API (tests/api/test_servers.py)."""

from __future__ import annotations

from typing import Any

import pytest

from stratus.compute.scheduling import HostState, RequestSpec, choose_hosts


def host(name: str, **values: Any) -> HostState:
    base: dict[str, Any] = {
        "id": int(name.rsplit("-", 1)[-1]),
        "host": name,
        "zone": "nova",
        "vcpus": 8,
        "memory_mb": 16384,
        "local_gb": 100,
        "cpu_allocation_ratio": 4.0,
        "ram_allocation_ratio": 1.0,
        "disk_allocation_ratio": 1.0,
    }
    return HostState(**{**base, **values})


SMALL = {"vcpus": 1, "memory_mb": 512, "disk_gb": 1}


def names(hosts: list[HostState]) -> list[str]:
    return [h.host for h in hosts]


def reasons(spec: RequestSpec, *hosts: HostState) -> dict[str, str]:
    _, rejected = choose_hosts(hosts, spec)
    return {r.host: r.reason for r in rejected}


def test_spread_prefers_free_memory_and_pack_the_fullest():
    hosts = [host("h-1", used_memory_mb=4096), host("h-2"), host("h-3", used_memory_mb=8192)]
    spread, _ = choose_hosts(hosts, RequestSpec(**SMALL))
    assert names(spread) == ["h-2", "h-1", "h-3"]
    packed, _ = choose_hosts(hosts, RequestSpec(**SMALL), weigher="pack")
    assert names(packed) == ["h-3", "h-1", "h-2"]


def test_capacity_follows_the_allocation_ratios_and_reserved_memory():
    spec = RequestSpec(vcpus=4, memory_mb=2048, disk_gb=40)
    found = reasons(
        spec,
        host("h-1", vcpus=2, cpu_allocation_ratio=2.0),  # 4 vCPUs under the ratio: fits
        host("h-2", vcpus=2, cpu_allocation_ratio=1.0),
        host("h-3", memory_mb=4096, reserved_host_memory_mb=3072),
        host("h-4", local_gb=100, used_disk_gb=70),
        host("h-5", local_gb=20, disk_allocation_ratio=2.0),  # 40 GiB under the ratio
    )
    assert set(found) == {"h-2", "h-3", "h-4"}
    assert found["h-2"] == "2 vCPUs free, 4 needed"
    assert found["h-3"] == "1024 MiB RAM free, 2048 needed"
    assert found["h-4"] == "30 GiB disk free, 40 needed"


def test_disabled_down_zone_and_forced_host():
    found = reasons(
        RequestSpec(**SMALL, zone="east", forced_host="h-5"),
        host("h-1", enabled=False, zone="east"),
        host("h-2", up=False, zone="east"),
        host("h-3"),
        host("h-4", zone="east"),
        host("h-5", zone="east"),
    )
    assert found == {
        "h-1": "disabled",
        "h-2": "down",
        "h-3": "in zone nova, not east",
        "h-4": "not the requested host",
    }


@pytest.mark.parametrize(
    ("properties", "refused"),
    [
        ({"hw_architecture": "aarch64"}, "architecture x86_64, image wants aarch64"),
        ({"architecture": "amd64"}, None),  # an alias of x86_64
        ({"img_hv_type": "xen"}, "hypervisor QEMU, image wants xen"),
        ({"hypervisor_type": "kvm"}, None),  # QEMU hosts run KVM guests
    ],
)
def test_image_properties(properties, refused):
    found = reasons(RequestSpec(**SMALL, image_properties=properties), host("h-1"))
    assert found.get("h-1") == refused


def test_hard_group_policies_filter():
    hosts = [host("h-1"), host("h-2"), host("h-3")]
    together = RequestSpec(**SMALL, group_policy="affinity", group_hosts={"h-2": 1})
    fit, _ = choose_hosts(hosts, together)
    assert names(fit) == ["h-2"]
    # The group's first server may go anywhere.
    fit, _ = choose_hosts(hosts, RequestSpec(**SMALL, group_policy="affinity"))
    assert len(fit) == 3
    apart = RequestSpec(**SMALL, group_policy="anti-affinity", group_hosts={"h-1": 1, "h-3": 1})
    fit, rejected = choose_hosts(hosts, apart)
    assert names(fit) == ["h-2"]
    assert {r.host for r in rejected} == {"h-1", "h-3"}
    # max_server_per_host lets anti-affinity put more than one on a host.
    loose = RequestSpec(
        **SMALL, group_policy="anti-affinity", group_hosts={"h-1": 1}, max_server_per_host=2
    )
    assert len(choose_hosts(hosts, loose)[0]) == 3


def test_soft_group_policies_weigh_and_never_filter():
    # h-1 has the group's two members and the least free memory.
    hosts = [host("h-1", used_memory_mb=8192), host("h-2"), host("h-3", used_memory_mb=1024)]
    members = {"h-1": 2, "h-3": 1}
    together, rejected = choose_hosts(
        hosts, RequestSpec(**SMALL, group_policy="soft-affinity", group_hosts=members)
    )
    assert names(together) == ["h-1", "h-3", "h-2"] and rejected == []
    apart, rejected = choose_hosts(
        hosts, RequestSpec(**SMALL, group_policy="soft-anti-affinity", group_hosts=members)
    )
    assert names(apart) == ["h-2", "h-3", "h-1"] and rejected == []
    # Every host has members: soft anti-affinity still places the server, on
    # the host with the fewest.
    crowded = {"h-1": 2, "h-2": 2, "h-3": 1}
    apart, _ = choose_hosts(
        hosts, RequestSpec(**SMALL, group_policy="soft-anti-affinity", group_hosts=crowded)
    )
    assert names(apart)[0] == "h-3"
    # A soft policy never overrides capacity.
    full = [host("h-1", memory_mb=1024, used_memory_mb=1024), host("h-2")]
    fit, rejected = choose_hosts(
        full, RequestSpec(**SMALL, group_policy="soft-affinity", group_hosts={"h-1": 3})
    )
    assert names(fit) == ["h-2"] and [r.host for r in rejected] == ["h-1"]
