"""Segmentation IDs: the operator's ranges, and allocation that never repeats.

A VLAN network takes a VLAN ID on its physical network; a VXLAN network a VNI
and a GRE network a key, both cloud-wide. IDs for projects' networks come
from the configured ranges (the lowest free one); an admin may choose any ID
valid for the type, inside a range or not. Either way the allocation is a row
of ``network_segments`` whose primary key is (type, physical network, ID):
two requests racing for one ID cannot both insert it, and the loser tries
the next free one (or gets 409 when it asked for that ID).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from stratus.common import errors
from stratus.common.config import ConfigError
from stratus.common.db import try_insert
from stratus.network.model import Segment

MAX_ID = {"vlan": 4094, "vxlan": 2**24 - 1, "gre": 2**32 - 1}
TUNNEL_TYPES = ("vxlan", "gre")


def _range(text: str, kind: str, option: str) -> tuple[int, int]:
    try:
        first, last = (int(x) for x in text.split(":"))
    except ValueError:
        raise ConfigError(f"[network] {option}: {text!r} is not first:last") from None
    if not 1 <= first <= last <= MAX_ID[kind]:
        raise ConfigError(f"[network] {option}: {text!r} is outside 1:{MAX_ID[kind]}")
    return first, last


@dataclass(frozen=True)
class SegmentRanges:
    """``vlan`` ranges per physical network; ``vxlan`` and ``gre`` ranges."""

    vlan: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    tunnels: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    flat: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, options: Any) -> SegmentRanges:
        vlan: dict[str, list[tuple[int, int]]] = {}
        for entry in options.network_vlan_ranges:
            physnet, _, rest = entry.partition(":")
            if not physnet:
                raise ConfigError(f"[network] network_vlan_ranges: {entry!r} has no physnet")
            ranges = vlan.setdefault(physnet, [])
            if rest:
                ranges.append(_range(rest, "vlan", "network_vlan_ranges"))
        tunnels = {
            "vxlan": [_range(r, "vxlan", "vni_ranges") for r in options.vni_ranges],
            "gre": [_range(r, "gre", "gre_tunnel_id_ranges") for r in options.gre_tunnel_id_ranges],
        }
        return cls(vlan=vlan, tunnels=tunnels, flat=tuple(options.flat_networks))

    def physnets(self) -> set[str]:
        return set(self.vlan) | {p for p in self.flat if p != "*"}

    def ranges_for(self, kind: str, physnet: str | None) -> list[tuple[int, int]]:
        if kind == "vlan":
            return self.vlan.get(physnet or "", [])
        return self.tunnels.get(kind, [])


def _candidates(ranges: Iterable[tuple[int, int]], used: set[int]) -> Iterable[int]:
    for first, last in ranges:
        for candidate in range(first, last + 1):
            if candidate not in used:
                yield candidate


def allocate(
    session: Session,
    ranges: SegmentRanges,
    network_id: str,
    kind: str,
    physnet: str | None,
    requested: int | None,
) -> int | None:
    """Reserve a segmentation ID for the network; None for flat networks."""
    if kind == "flat":
        return None
    key = physnet or ""
    if requested is not None:
        if not 1 <= requested <= MAX_ID[kind]:
            raise errors.BadRequest(
                f"Segmentation ID {requested} is outside 1 to {MAX_ID[kind]} for {kind} networks.",
                kind="InvalidInput",
            )
        if not reserve(session, kind, key, requested, network_id):
            where = f" on physical network {physnet}" if physnet else ""
            raise errors.Conflict(
                f"Unable to create the network. The {kind} segmentation ID {requested}{where} "
                "is in use.",
                kind="SegmentationIdInUse" if kind != "vlan" else "VlanIdInUse",
            )
        return requested
    pool = ranges.ranges_for(kind, physnet)
    used = set(
        session.scalars(
            select(Segment.segmentation_id).where(
                Segment.network_type == kind, Segment.physical_network == key
            )
        )
    )
    for candidate in _candidates(pool, used):
        if reserve(session, kind, key, candidate, network_id):
            return candidate
    where = f" on physical network {physnet}" if physnet else ""
    raise errors.ServiceUnavailable(
        f"Unable to create the network. No {kind} segmentation ID is free{where}.",
        kind="NoNetworkAvailable",
    )


def reserve(session: Session, kind: str, physnet: str, seg_id: int, network_id: str) -> bool:
    """Claim the ID for the network; False if it is taken."""
    segment = Segment(
        network_type=kind, physical_network=physnet, segmentation_id=seg_id, network_id=network_id
    )
    return try_insert(session, segment)
