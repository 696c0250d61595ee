"""Choosing a host for a server: filters, weighers, and the claim.

``choose_hosts`` filters the hosts that can take the server (enabled and up, in
the requested zone, with room for its vCPUs, RAM and disk under the host's
allocation ratios, matching the image's architecture and hypervisor type,
and keeping the server group's policy) and orders the rest by weight:
``spread`` (the default) prefers the host with the most free RAM, ``pack``
the one with the least, and the soft group policies add their preference.

``claim`` then takes the capacity in the database: it locks the host's row,
sums the host's claims and inserts the server's only if it still fits, so
that two schedulers (or two workers) choosing the same host at the same time
can never overcommit it; a failed claim moves on to the next host.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sqlalchemy import delete, func, or_, select
from sqlalchemy.orm import Session

from stratus.compute.model import Allocation, ComputeHost, Migration

_ARCH_ALIASES = {"amd64": "x86_64", "x86-64": "x86_64", "x64": "x86_64", "arm64": "aarch64"}
GROUP_POLICIES = ("affinity", "anti-affinity", "soft-affinity", "soft-anti-affinity")


@dataclass(frozen=True)
class HostState:
    """A host as the scheduler sees it: capacity, claims and group members."""

    id: int
    host: str
    zone: str
    vcpus: int
    memory_mb: int
    local_gb: int
    cpu_allocation_ratio: float
    ram_allocation_ratio: float
    disk_allocation_ratio: float
    reserved_host_memory_mb: int = 0
    used_vcpus: int = 0
    used_memory_mb: int = 0
    used_disk_gb: int = 0
    enabled: bool = True
    up: bool = True
    hypervisor_type: str = "QEMU"
    architecture: str = "x86_64"

    @property
    def free_vcpus(self) -> float:
        return self.vcpus * self.cpu_allocation_ratio - self.used_vcpus

    @property
    def free_memory_mb(self) -> float:
        usable = (self.memory_mb - self.reserved_host_memory_mb) * self.ram_allocation_ratio
        return usable - self.used_memory_mb

    @property
    def free_disk_gb(self) -> float:
        return self.local_gb * self.disk_allocation_ratio - self.used_disk_gb


@dataclass(frozen=True)
class RequestSpec:
    """What a server needs of its host."""

    vcpus: int
    memory_mb: int
    disk_gb: int
    zone: str | None = None
    # An admin's "zone:host" pins the host (skipping the capacity filters,
    # as Nova's forced hosts do not).
    forced_host: str | None = None
    group_policy: str | None = None
    # host -> servers of the group already there (other than this one)
    group_hosts: Mapping[str, int] = field(default_factory=dict)
    max_server_per_host: int | None = None
    image_properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rejection:
    """Why a host was not chosen, for the server's fault message."""

    host: str
    reason: str


def _fits(host: HostState, spec: RequestSpec) -> str | None:
    if not host.enabled:
        return "disabled"
    if not host.up:
        return "down"
    if spec.zone and host.zone != spec.zone:
        return f"in zone {host.zone}, not {spec.zone}"
    if spec.forced_host and host.host != spec.forced_host:
        return "not the requested host"
    if host.free_vcpus < spec.vcpus:
        return f"{host.free_vcpus:g} vCPUs free, {spec.vcpus} needed"
    if host.free_memory_mb < spec.memory_mb:
        return f"{host.free_memory_mb:g} MiB RAM free, {spec.memory_mb} needed"
    if host.free_disk_gb < spec.disk_gb:
        return f"{host.free_disk_gb:g} GiB disk free, {spec.disk_gb} needed"
    arch = spec.image_properties.get("hw_architecture") or spec.image_properties.get("architecture")
    if arch and _ARCH_ALIASES.get(arch.lower(), arch.lower()) != host.architecture:
        return f"architecture {host.architecture}, image wants {arch}"
    hv_type = spec.image_properties.get("img_hv_type") or spec.image_properties.get(
        "hypervisor_type"
    )
    if hv_type and hv_type.lower() not in ("qemu", "kvm", host.hypervisor_type.lower()):
        return f"hypervisor {host.hypervisor_type}, image wants {hv_type}"
    members = spec.group_hosts.get(host.host, 0)
    if spec.group_policy == "affinity" and spec.group_hosts and not members:
        return "the server group's other members are on another host (affinity)"
    if spec.group_policy == "anti-affinity" and members >= (spec.max_server_per_host or 1):
        return "a member of the server group is already there (anti-affinity)"
    return None


def choose_hosts(
    hosts: Iterable[HostState], spec: RequestSpec, weigher: str = "spread"
) -> tuple[list[HostState], list[Rejection]]:
    """The hosts that can take the server, best first, and why the others cannot."""
    fit: list[HostState] = []
    rejected: list[Rejection] = []
    for host in hosts:
        reason = _fits(host, spec)
        if reason is None:
            fit.append(host)
        else:
            rejected.append(Rejection(host.host, reason))

    def weight(host: HostState) -> tuple[float, float, str]:
        members = spec.group_hosts.get(host.host, 0)
        group = 0.0
        if spec.group_policy == "soft-affinity":
            group = members
        elif spec.group_policy == "soft-anti-affinity":
            group = -members
        room = host.free_memory_mb if weigher == "spread" else -host.free_memory_mb
        return (group, room, host.host)

    fit.sort(key=weight, reverse=True)
    return fit, rejected


def usage(
    session: Session, host_ids: Iterable[int] | None = None
) -> dict[int, tuple[int, int, int]]:
    """host id -> (vCPUs, MiB, GiB) claimed on it."""
    query = select(
        Allocation.host_id,
        func.sum(Allocation.vcpus),
        func.sum(Allocation.memory_mb),
        func.sum(Allocation.disk_gb),
    ).group_by(Allocation.host_id)
    if host_ids is not None:
        query = query.where(Allocation.host_id.in_(list(host_ids)))
    return {
        host_id: (int(v or 0), int(m or 0), int(d or 0))
        for host_id, v, m, d in session.execute(query)
    }


def claim(session: Session, host_id: int, server_id: str, spec: RequestSpec) -> bool:
    """Take ``spec``'s capacity on the host for the server, or False if it
    no longer fits; the caller's transaction keeps the claim."""
    host = session.scalars(
        select(ComputeHost).where(ComputeHost.id == host_id).with_for_update()
    ).one()
    used = usage(session, [host_id]).get(host_id, (0, 0, 0))
    state = HostState(
        id=host.id,
        host=host.host,
        zone="",
        vcpus=host.vcpus,
        memory_mb=host.memory_mb,
        local_gb=host.local_gb,
        cpu_allocation_ratio=host.cpu_allocation_ratio,
        ram_allocation_ratio=host.ram_allocation_ratio,
        disk_allocation_ratio=host.disk_allocation_ratio,
        reserved_host_memory_mb=host.reserved_host_memory_mb,
        used_vcpus=used[0],
        used_memory_mb=used[1],
        used_disk_gb=used[2],
    )
    if (
        state.free_vcpus < spec.vcpus
        or state.free_memory_mb < spec.memory_mb
        or state.free_disk_gb < spec.disk_gb
    ):
        return False
    session.add(
        Allocation(
            server_id=server_id,
            host_id=host_id,
            vcpus=spec.vcpus,
            memory_mb=spec.memory_mb,
            disk_gb=spec.disk_gb,
        )
    )
    session.flush()
    return True


def flavor_disk_gb(flavor: Mapping[str, int]) -> int:
    """The local disk a flavor takes: root, ephemeral and swap (rounded up)."""
    return (
        int(flavor.get("disk") or 0)
        + int(flavor.get("ephemeral") or 0)
        + (int(flavor.get("swap") or 0) + 1023) // 1024
    )


def drop_claims(session: Session, server_id: str) -> None:
    """Every claim of the server: its own and those its resizes hold."""
    held = select(Migration.uuid).where(Migration.server_id == server_id)
    session.execute(
        delete(Allocation).where(
            or_(Allocation.server_id == server_id, Allocation.server_id.in_(held))
        )
    )
