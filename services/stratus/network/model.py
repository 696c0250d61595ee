"""The network service's tables.

Every uniqueness the API promises is a key in the database, so concurrent
requests on several API workers can never break it:

- an address is allocated once per subnet (``network_ip_allocations``
  primary key ``(subnet_id, ip_address)``);
- a segmentation ID once per type and physical network
  (``network_segments`` primary key);
- a MAC address once (``network_ports.mac_address`` unique).

Allocation code inserts optimistically and retries on a conflict.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from stratus.common.db import UTCDateTime, utcnow

ID = String(36)
PROJECT = String(255)


class Base(DeclarativeBase):
    pass


class StandardAttrs:
    """What every Neutron resource carries: times, revision, description."""

    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    revision_number: Mapped[int] = mapped_column(Integer, default=0)


class Network(StandardAttrs, Base):
    __tablename__ = "network_networks"
    __table_args__ = (Index("ix_network_networks_project", "project_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, default=False)
    external: Mapped[bool] = mapped_column(Boolean, default=False)
    mtu: Mapped[int] = mapped_column(Integer)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    network_type: Mapped[str] = mapped_column(String(16))
    physical_network: Mapped[str | None] = mapped_column(String(64))
    segmentation_id: Mapped[int | None] = mapped_column(Integer)
    dns_domain: Mapped[str] = mapped_column(String(255), default="")

    subnets: Mapped[list[Subnet]] = relationship(
        back_populates="network", lazy="selectin", order_by="Subnet.created_at"
    )


class Tag(Base):
    """A tag on any resource (resource IDs are UUIDs, unique across types)."""

    __tablename__ = "network_tags"

    resource_id: Mapped[str] = mapped_column(ID, primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class Segment(Base):
    """A segmentation ID in use: (type, physical network or '', ID) once only."""

    __tablename__ = "network_segments"

    network_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    physical_network: Mapped[str] = mapped_column(String(64), primary_key=True)
    segmentation_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_networks.id", ondelete="CASCADE"), unique=True
    )


class Subnet(StandardAttrs, Base):
    __tablename__ = "network_subnets"
    __table_args__ = (Index("ix_network_subnets_network", "network_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    network_id: Mapped[str] = mapped_column(ID, ForeignKey("network_networks.id"))
    project_id: Mapped[str] = mapped_column(PROJECT)
    name: Mapped[str] = mapped_column(String(255), default="")
    ip_version: Mapped[int] = mapped_column(Integer)
    cidr: Mapped[str] = mapped_column(String(64))
    gateway_ip: Mapped[str | None] = mapped_column(String(64))
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, default=True)
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32))
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32))

    network: Mapped[Network] = relationship(back_populates="subnets")
    pools: Mapped[list[AllocationPool]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AllocationPool.position"
    )
    dns_nameservers: Mapped[list[DnsNameserver]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="DnsNameserver.position"
    )
    host_routes: Mapped[list[HostRoute]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="HostRoute.position"
    )


class AllocationPool(Base):
    __tablename__ = "network_allocation_pools"

    subnet_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_subnets.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    first_ip: Mapped[str] = mapped_column(String(64))
    last_ip: Mapped[str] = mapped_column(String(64))


class DnsNameserver(Base):
    __tablename__ = "network_dns_nameservers"

    subnet_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_subnets.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    address: Mapped[str] = mapped_column(String(64))


class HostRoute(Base):
    __tablename__ = "network_host_routes"

    subnet_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_subnets.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination: Mapped[str] = mapped_column(String(64))
    nexthop: Mapped[str] = mapped_column(String(64))


class Port(StandardAttrs, Base):
    __tablename__ = "network_ports"
    __table_args__ = (
        Index("ix_network_ports_network", "network_id"),
        Index("ix_network_ports_device", "device_id"),
        Index("ix_network_ports_host", "host"),
        Index("ix_network_ports_project", "project_id"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    network_id: Mapped[str] = mapped_column(ID, ForeignKey("network_networks.id"))
    project_id: Mapped[str] = mapped_column(PROJECT)
    name: Mapped[str] = mapped_column(String(255), default="")
    mac_address: Mapped[str] = mapped_column(String(32), unique=True)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="DOWN")
    device_id: Mapped[str] = mapped_column(String(255), default="")
    device_owner: Mapped[str] = mapped_column(String(255), default="")
    host: Mapped[str] = mapped_column(String(255), default="")
    vnic_type: Mapped[str] = mapped_column(String(64), default="normal")
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    dns_name: Mapped[str] = mapped_column(String(255), default="")

    fixed_ips: Mapped[list[IPAllocation]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="IPAllocation.position"
    )
    address_pairs: Mapped[list[AllowedAddressPair]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AllowedAddressPair.position"
    )
    security_groups: Mapped[list[PortSecurityGroup]] = relationship(
        cascade="all, delete-orphan", lazy="selectin"
    )


class IPAllocation(Base):
    """An address in use on a subnet: the primary key makes it unique."""

    __tablename__ = "network_ip_allocations"
    __table_args__ = (Index("ix_network_ip_allocations_port", "port_id"),)

    subnet_id: Mapped[str] = mapped_column(ID, ForeignKey("network_subnets.id"), primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64), primary_key=True)
    port_id: Mapped[str] = mapped_column(ID, ForeignKey("network_ports.id", ondelete="CASCADE"))
    network_id: Mapped[str] = mapped_column(ID)
    position: Mapped[int] = mapped_column(Integer, default=0)


class AllowedAddressPair(Base):
    __tablename__ = "network_allowed_address_pairs"

    port_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_ports.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    ip_address: Mapped[str] = mapped_column(String(64))
    mac_address: Mapped[str] = mapped_column(String(32))


class PortSecurityGroup(Base):
    __tablename__ = "network_port_security_groups"
    __table_args__ = (Index("ix_network_port_sg_group", "security_group_id"),)

    port_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_ports.id", ondelete="CASCADE"), primary_key=True
    )
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_security_groups.id"), primary_key=True
    )


class SecurityGroup(StandardAttrs, Base):
    __tablename__ = "network_security_groups"
    __table_args__ = (Index("ix_network_security_groups_project", "project_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    name: Mapped[str] = mapped_column(String(255), default="")
    stateful: Mapped[bool] = mapped_column(Boolean, default=True)

    rules: Mapped[list[SecurityGroupRule]] = relationship(
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="SecurityGroupRule.created_at",
        foreign_keys="SecurityGroupRule.security_group_id",
    )


class DefaultSecurityGroup(Base):
    """The project's ``default`` group: one per project, the key makes sure."""

    __tablename__ = "network_default_security_groups"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_security_groups.id", ondelete="CASCADE")
    )


class SecurityGroupRule(StandardAttrs, Base):
    __tablename__ = "network_security_group_rules"
    __table_args__ = (Index("ix_network_sg_rules_group", "security_group_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_security_groups.id", ondelete="CASCADE")
    )
    project_id: Mapped[str] = mapped_column(PROJECT)
    direction: Mapped[str] = mapped_column(String(16))
    ethertype: Mapped[str] = mapped_column(String(8))
    protocol: Mapped[str | None] = mapped_column(String(40))
    port_range_min: Mapped[int | None] = mapped_column(Integer)
    port_range_max: Mapped[int | None] = mapped_column(Integer)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64))
    remote_group_id: Mapped[str | None] = mapped_column(
        ID, ForeignKey("network_security_groups.id", ondelete="CASCADE")
    )


class Router(StandardAttrs, Base):
    __tablename__ = "network_routers"
    __table_args__ = (Index("ix_network_routers_project", "project_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    name: Mapped[str] = mapped_column(String(255), default="")
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(ID, ForeignKey("network_ports.id"))
    enable_snat: Mapped[bool] = mapped_column(Boolean, default=True)
    # The host whose agent runs the router's namespace (its ports' binding).
    host: Mapped[str] = mapped_column(String(255), default="")

    routes: Mapped[list[RouterRoute]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="RouterRoute.position"
    )


class RouterRoute(Base):
    __tablename__ = "network_router_routes"

    router_id: Mapped[str] = mapped_column(
        ID, ForeignKey("network_routers.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    destination: Mapped[str] = mapped_column(String(64))
    nexthop: Mapped[str] = mapped_column(String(64))


class FloatingIP(StandardAttrs, Base):
    __tablename__ = "network_floatingips"
    __table_args__ = (
        Index("ix_network_floatingips_project", "project_id"),
        UniqueConstraint("fixed_port_id", "fixed_ip_address", name="uq_network_fip_fixed"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    floating_network_id: Mapped[str] = mapped_column(ID, ForeignKey("network_networks.id"))
    floating_port_id: Mapped[str] = mapped_column(ID, ForeignKey("network_ports.id"))
    floating_ip_address: Mapped[str] = mapped_column(String(64))
    fixed_port_id: Mapped[str | None] = mapped_column(ID, ForeignKey("network_ports.id"))
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64))
    router_id: Mapped[str | None] = mapped_column(ID, ForeignKey("network_routers.id"))
    status: Mapped[str] = mapped_column(String(16), default="DOWN")


class Quota(Base):
    __tablename__ = "network_quotas"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


class Agent(Base):
    """A host's network agent, as it last reported itself."""

    __tablename__ = "network_agents"
    __table_args__ = (UniqueConstraint("host", "agent_type", name="uq_network_agents_host"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    agent_type: Mapped[str] = mapped_column(String(64))
    binary: Mapped[str] = mapped_column(String(255))
    admin_state_up: Mapped[bool] = mapped_column(Boolean, default=True)
    configurations: Mapped[str] = mapped_column(Text, default="{}")
    description: Mapped[str] = mapped_column(String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
