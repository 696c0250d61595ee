"""What the scheduler asks the network service while it wires a pass's
servers (``scheduler.WiringLookups``): the servers' existing ports in one
list, each security group, network and subnet once."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from stratus.common import errors
from stratus.compute.scheduler import WiringLookups


class Network:
    """The calls of ``remote.Neighbours`` that wiring makes, counted."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.asked: list[tuple[str, Any]] = []
        self.lock = threading.Lock()

    def _count(self, name: str, filters: dict[str, Any]) -> None:
        with self.lock:
            self.calls[name] += 1
            self.asked.append((name, filters))

    def list_ports(self, **filters: Any) -> list[dict[str, Any]]:
        self._count("ports", filters)
        ports = [
            {"id": "p1", "device_id": "s1"},
            {"id": "p2", "device_id": "s1"},
            {"id": "p3", "device_id": "s3"},
        ]
        return [p for p in ports if p["device_id"] in filters["device_id"]]

    def list_security_groups(self, **filters: Any) -> list[dict[str, Any]]:
        self._count("security_groups", filters)
        known = {("proj", "web"): "sg-web", ("proj", "default"): "sg-default"}
        found = known.get((filters["project_id"], filters["name"]))
        return [{"id": found}] if found else []

    def list_networks(self, **filters: Any) -> list[dict[str, Any]]:
        self._count("networks", filters)
        return [{"id": i, "name": f"net-{i}"} for i in filters["id"] if i != "gone"]

    def list_subnets(self, **filters: Any) -> list[dict[str, Any]]:
        self._count("subnets", filters)
        return [{"id": i, "cidr": "10.0.0.0/24"} for i in filters["id"]]


def test_the_servers_ports_come_in_one_list() -> None:
    network = Network()
    lookups = WiringLookups(network, ["s1", "s2", "s3"])  # type: ignore[arg-type]
    assert network.asked == [("ports", {"device_id": ["s1", "s2", "s3"]})]
    assert [p["id"] for p in lookups.ports["s1"]] == ["p1", "p2"]
    assert "s2" not in lookups.ports and [p["id"] for p in lookups.ports["s3"]] == ["p3"]


def test_security_groups_are_asked_once_per_project_and_name() -> None:
    network = Network()
    lookups = WiringLookups(network, ["s1"])  # type: ignore[arg-type]
    for _ in range(3):
        assert lookups.group_id("proj", "web") == "sg-web"
    assert lookups.group_id("other", "default") is None  # not made yet: skipped
    assert lookups.group_id("other", "default") is None
    for _ in range(2):
        with pytest.raises(errors.BadRequest, match="Security group db not found"):
            lookups.group_id("proj", "db")
    assert network.calls["security_groups"] == 3


def test_networks_and_subnets_are_fetched_once_each() -> None:
    network = Network()
    lookups = WiringLookups(network, ["s1"])  # type: ignore[arg-type]
    assert set(lookups.networks({"n1", "n2"})) == {"n1", "n2"}
    assert lookups.networks({"n2"}) == {"n2": {"id": "n2", "name": "net-n2"}}
    assert set(lookups.networks({"n1", "n3", "gone"})) == {"n1", "n3"}
    assert [f["id"] for n, f in network.asked if n == "networks"] == [["n1", "n2"], ["gone", "n3"]]
    assert lookups.subnets(set()) == {} and network.calls["subnets"] == 0
    assert set(lookups.subnets({"a", "b"})) == {"a", "b"}
    assert set(lookups.subnets({"b"})) == {"b"} and network.calls["subnets"] == 1


def test_wiring_threads_share_the_lookups() -> None:
    network = Network()
    lookups = WiringLookups(network, ["s1"])  # type: ignore[arg-type]
    seen: dict[int, dict[str, Any]] = {}
    start = threading.Barrier(8)

    def wire(index: int) -> None:
        start.wait()
        seen[index] = lookups.networks({f"n{index % 4}", "shared"})

    threads = [threading.Thread(target=wire, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {i: set(found) for i, found in seen.items()} == {
        i: {f"n{i % 4}", "shared"} for i in range(8)
    }
    # Once every network is known, nothing more is asked.
    asked = network.calls["networks"]
    lookups.networks({"n0", "n1", "n2", "n3", "shared"})
    assert network.calls["networks"] == asked
