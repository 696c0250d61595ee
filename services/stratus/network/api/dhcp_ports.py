"""The DHCP port of a network: one address on each subnet with DHCP enabled.

The API makes it when the first such subnet appears and removes it with the
last; its ``binding:host_id`` tells which host's agent runs the network's
dnsmasq (see ``placement``).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from stratus.network import ipam, placement
from stratus.network.model import Network, Port, Subnet
from stratus.network.service import NetworkService

OWNER = "network:dhcp"


def find(session: Session, network_id: str) -> Port | None:
    return session.scalar(
        select(Port).where(Port.network_id == network_id, Port.device_owner == OWNER)
    )


def sync(session: Session, svc: NetworkService, network: Network) -> None:
    """Give the DHCP port an address on every DHCP subnet, and only those."""
    subnets = [
        s
        for s in session.scalars(select(Subnet).where(Subnet.network_id == network.id))
        if s.enable_dhcp
    ]
    port = find(session, network.id)
    if not subnets:
        if port is not None:
            session.delete(port)
            session.flush()
        return
    if port is None:
        port = Port(
            id=str(uuid.uuid4()),
            network_id=network.id,
            project_id=network.project_id,
            device_owner=OWNER,
            device_id=f"dhcp-{network.id}",
            host=placement.pick_host(session, svc.options),
            status="DOWN",
            revision_number=0,
        )
        ipam.insert_port(session, port, svc.options.base_mac, mac_given=False)
    wanted = {s.id for s in subnets}
    for allocation in list(port.fixed_ips):
        if allocation.subnet_id not in wanted:
            port.fixed_ips.remove(allocation)
    session.flush()
    have = {a.subnet_id for a in port.fixed_ips}
    for position, subnet in enumerate(subnets):
        if subnet.id not in have:
            ipam.allocate(session, subnet, port, None, position)
    session.flush()
    session.expire(port, ["fixed_ips"])


def remove_all(session: Session, network_id: str) -> None:
    for port in session.scalars(
        select(Port).where(Port.network_id == network_id, Port.device_owner == OWNER)
    ):
        session.delete(port)
    session.flush()
