"""Addresses: validating subnets and pools, and allocating without duplicates.

An address in use is a row of ``network_ip_allocations`` keyed by
(subnet, address). Allocation picks the lowest address of the subnet's pools
that no row holds and inserts it inside a savepoint; when another request
took it first (the insert conflicts) it moves on to the next. A chosen
address that is taken is a 409 ``IpAddressAlreadyAllocated``.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from stratus.common import errors
from stratus.common.db import try_insert
from stratus.network.model import IPAllocation, Port, Subnet

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_cidr(value: Any, field: str = "cidr") -> IPNetwork:
    if not isinstance(value, str):
        raise errors.BadRequest(f"Invalid input for {field}: {value!r} is not a CIDR.")
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise errors.BadRequest(
            f"Invalid input for {field}. Reason: '{value}' is not a valid IP subnet.",
            kind="InvalidInput",
        ) from None
    if "/" not in value:
        raise errors.BadRequest(
            f"Invalid input for {field}. Reason: '{value}' has no prefix length.",
            kind="InvalidInput",
        )
    return network


def parse_ip(value: Any, field: str) -> IPAddress:
    if not isinstance(value, str):
        raise errors.BadRequest(f"Invalid input for {field}: {value!r} is not an IP address.")
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        raise errors.BadRequest(
            f"Invalid input for {field}. Reason: '{value}' is not a valid IP address.",
            kind="InvalidInput",
        ) from None


def _network_or_broadcast(network: IPNetwork, address: IPAddress) -> bool:
    """IPv4's reserved ends of a subnet (none on /31 and /32, none on IPv6)."""
    if network.version != 4 or network.prefixlen >= 31:
        return False
    return address in (network.network_address, network.broadcast_address)


def default_pools(
    network: IPNetwork, gateway: IPAddress | None
) -> list[tuple[IPAddress, IPAddress]]:
    """The whole subnet less network/broadcast (IPv4) and the gateway."""
    if network.version == 4:
        if network.prefixlen >= 31:
            first, last = network[0], network[-1]
        else:
            first, last = network[1], network[-2]
    else:
        first, last = network[1], network[-1]
    pools = [(first, last)]
    if gateway is not None and first <= gateway <= last:
        pools = []
        if gateway > first:
            pools.append((first, gateway - 1))
        if gateway < last:
            pools.append((gateway + 1, last))
    return pools


def check_pools(
    network: IPNetwork, pools: Sequence[tuple[IPAddress, IPAddress]], gateway: IPAddress | None
) -> None:
    """Pools inside the subnet, ordered, not overlapping, not holding the gateway."""
    ordered = sorted(pools)
    for first, last in ordered:
        if first.version != network.version or last.version != network.version:
            raise errors.BadRequest(
                f"Allocation pool {first}-{last} is not of IP version {network.version}.",
                kind="InvalidInput",
            )
        if first > last:
            raise errors.BadRequest(
                f"The allocation pool {first}-{last} spans beyond its end.",
                kind="InvalidAllocationPool",
            )
        if first not in network or last not in network:
            raise errors.BadRequest(
                f"The allocation pool {first}-{last} spans beyond the subnet cidr {network}.",
                kind="OutOfBoundsAllocationPool",
            )
        if _network_or_broadcast(network, first) or _network_or_broadcast(network, last):
            raise errors.BadRequest(
                f"The allocation pool {first}-{last} holds the network or broadcast address.",
                kind="InvalidAllocationPool",
            )
        if gateway is not None and first <= gateway <= last:
            raise errors.Conflict(
                f"Gateway ip {gateway} conflicts with allocation pool {first}-{last}.",
                kind="GatewayConflictWithAllocationPools",
            )
    for (_f1, last1), (first2, last2) in itertools.pairwise(ordered):
        if first2 <= last1:
            raise errors.BadRequest(
                f"Found overlapping allocation pools: {first2}-{last2} overlaps another pool.",
                kind="OverlappingAllocationPools",
            )


def pools_of(subnet: Subnet) -> list[tuple[IPAddress, IPAddress]]:
    return [
        (ipaddress.ip_address(p.first_ip), ipaddress.ip_address(p.last_ip)) for p in subnet.pools
    ]


def in_pools(address: IPAddress, pools: Iterable[tuple[IPAddress, IPAddress]]) -> bool:
    return any(first <= address <= last for first, last in pools)


def _free(
    pools: Sequence[tuple[IPAddress, IPAddress]], used: set[IPAddress]
) -> Iterator[IPAddress]:
    for first, last in pools:
        address = first
        while address <= last:
            if address not in used:
                yield address
            address += 1


def used_addresses(session: Session, subnet_id: str) -> set[IPAddress]:
    rows = session.scalars(
        select(IPAllocation.ip_address).where(IPAllocation.subnet_id == subnet_id)
    )
    return {ipaddress.ip_address(r) for r in rows}


def _insert(session: Session, subnet: Subnet, port: Port, address: str, position: int) -> bool:
    allocation = IPAllocation(
        subnet_id=subnet.id,
        ip_address=address,
        port_id=port.id,
        network_id=subnet.network_id,
        position=position,
    )
    return try_insert(session, allocation)


AUTO_ADDRESS_MODES = ("slaac", "dhcpv6-stateless")


def is_auto_address(subnet: Subnet) -> bool:
    """IPv6 subnets whose addresses hosts derive from their MAC (EUI-64)."""
    return subnet.ip_version == 6 and (subnet.ipv6_address_mode in AUTO_ADDRESS_MODES)


def eui64(cidr: str, mac: str) -> str:
    """The EUI-64 address of ``mac`` in the /64 ``cidr`` (RFC 4291, appendix A)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    interface_id = int.from_bytes(bytes([*octets[:3], 0xFF, 0xFE, *octets[3:]]), "big")
    network = ipaddress.ip_network(cidr)
    return str(ipaddress.ip_address(int(network.network_address) | interface_id))


def allocate(
    session: Session, subnet: Subnet, port: Port, requested: str | None, position: int
) -> str:
    """Give the port an address on the subnet (the one requested, or the next free).

    On SLAAC and DHCPv6-stateless subnets the address is the MAC's EUI-64,
    as the guest configures it itself; it cannot be chosen.
    """
    network = ipaddress.ip_network(subnet.cidr)
    if is_auto_address(subnet) and not port.device_owner.startswith("network:router"):
        if requested is not None and str(ipaddress.ip_address(requested)) != eui64(
            subnet.cidr, port.mac_address
        ):
            raise errors.BadRequest(
                f"IPv6 address {requested} can not be directly assigned to a port on subnet "
                f"{subnet.id} since the subnet is configured for automatic addresses.",
                kind="InvalidInput",
            )
        requested = eui64(subnet.cidr, port.mac_address)
    if requested is not None:
        address = parse_ip(requested, "fixed_ips")
        if address not in network:
            raise errors.BadRequest(
                f"IP address {requested} is not a valid IP for the specified subnet.",
                kind="InvalidIpForSubnet",
            )
        if _network_or_broadcast(network, address):
            raise errors.BadRequest(
                f"IP address {requested} is not a valid IP for the specified subnet.",
                kind="InvalidIpForSubnet",
            )
        if not _insert(session, subnet, port, str(address), position):
            raise errors.Conflict(
                f"IP address {address} already allocated in subnet {subnet.id}",
                kind="IpAddressAlreadyAllocated",
            )
        return str(address)
    pools = pools_of(subnet)
    used = used_addresses(session, subnet.id)
    for candidate in _free(pools, used):
        if _insert(session, subnet, port, str(candidate), position):
            return str(candidate)
    raise errors.Conflict(
        f"No more IP addresses available on network {subnet.network_id}.",
        kind="IpAddressGenerationFailure",
    )


def random_mac(base: str) -> str:
    octets = base.lower().split(":")[:3]
    tail = [f"{random.randint(0, 255):02x}" for _ in range(3)]  # noqa: S311 - not a secret
    return ":".join([*octets, *tail])


def check_mac(value: Any) -> str:
    if not isinstance(value, str):
        raise errors.BadRequest(f"Invalid input for mac_address: {value!r}.", kind="InvalidInput")
    octets = value.lower().split(":")
    if len(octets) != 6 or not all(
        len(o) == 2 and all(c in "0123456789abcdef" for c in o) for o in octets
    ):
        raise errors.BadRequest(
            f"Invalid input for mac_address. Reason: '{value}' is not a valid MAC address.",
            kind="InvalidInput",
        )
    if int(octets[0], 16) & 1 or value.lower() == "00:00:00:00:00:00":
        raise errors.BadRequest(
            f"Invalid input for mac_address. Reason: '{value}' is not a valid unicast MAC address.",
            kind="InvalidInput",
        )
    return value.lower()


def insert_port(session: Session, port: Port, base_mac: str, mac_given: bool) -> None:
    """Add the port with a MAC no other port has (unique key; retried when generated)."""
    for _ in range(16):
        if not mac_given:
            port.mac_address = random_mac(base_mac)
        try:
            with session.begin_nested():
                session.add(port)
                session.flush()
        except IntegrityError:
            if mac_given:
                raise errors.Conflict(
                    f"Unable to complete operation for network {port.network_id}. The mac "
                    f"address {port.mac_address} is in use.",
                    kind="MacAddressInUse",
                ) from None
            continue
        return
    raise errors.ServiceUnavailable("No free MAC address was found; try again.")
