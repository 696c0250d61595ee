"""The compute service's tables.

Uniqueness the API promises is a key in the database, so that concurrent
requests on several workers cannot break it: a flavor's ID and its name, a
key pair's name per user.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from stratus.common.db import UTCDateTime, utcnow

ID = String(36)
PROJECT = String(255)


class Base(DeclarativeBase):
    pass


class Flavor(Base):
    """A size of server. ``flavorid`` is the API's ``id``, chosen by the admin
    or generated; ``internal_id`` only orders the rows (Nova sorts flavors by
    it by default)."""

    __tablename__ = "compute_flavors"

    internal_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    memory_mb: Mapped[int] = mapped_column(Integer)
    vcpus: Mapped[int] = mapped_column(Integer)
    root_gb: Mapped[int] = mapped_column(Integer)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, default=0)
    swap: Mapped[int] = mapped_column(Integer, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)

    extra_specs: Mapped[list[FlavorExtraSpec]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="FlavorExtraSpec.key"
    )
    projects: Mapped[list[FlavorProject]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="FlavorProject.project_id"
    )


class FlavorExtraSpec(Base):
    __tablename__ = "compute_flavor_extra_specs"

    flavor_id: Mapped[int] = mapped_column(
        ForeignKey("compute_flavors.internal_id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class FlavorProject(Base):
    """A project that may use a private flavor."""

    __tablename__ = "compute_flavor_projects"

    flavor_id: Mapped[int] = mapped_column(
        ForeignKey("compute_flavors.internal_id", ondelete="CASCADE"), primary_key=True
    )
    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)


class KeyPair(Base):
    __tablename__ = "compute_key_pairs"
    __table_args__ = (Index("ix_compute_key_pairs_user", "user_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16), default="ssh")
    public_key: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


Index("uq_compute_key_pairs_user_name", KeyPair.user_id, KeyPair.name, unique=True)


class Quota(Base):
    """A project's own limit of a resource (the default otherwise)."""

    __tablename__ = "compute_quotas"

    project_id: Mapped[str] = mapped_column(PROJECT, primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer)


# --- hosts ------------------------------------------------------------------------


class ComputeHost(Base):
    """A hypervisor host: what its agent last reported, and the operator's
    switches. It is Nova's compute service (``os-services``, binary
    ``nova-compute``) and its compute node (``os-hypervisors``) in one row;
    ``id`` is the hypervisor's integer ID of the API before 2.53, ``uuid``
    its ID from 2.53."""

    __tablename__ = "compute_hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(ID, unique=True)
    host: Mapped[str] = mapped_column(String(255), unique=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255))
    hypervisor_type: Mapped[str] = mapped_column(String(64), default="QEMU")
    hypervisor_version: Mapped[int] = mapped_column(Integer, default=0)
    host_ip: Mapped[str] = mapped_column(String(64), default="")
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    vcpus: Mapped[int] = mapped_column(Integer, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    local_gb: Mapped[int] = mapped_column(Integer, default=0)
    cpu_allocation_ratio: Mapped[float] = mapped_column(Float, default=4.0)
    ram_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    disk_allocation_ratio: Mapped[float] = mapped_column(Float, default=1.0)
    # Memory kept for the host itself, never handed to guests.
    reserved_host_memory_mb: Mapped[int] = mapped_column(Integer, default=0)
    # Whether the host's driver moves servers to and from other hosts when
    # they are resized (the fake driver does; libvirt resizes in place).
    resize_across_hosts: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255))
    forced_down: Mapped[bool] = mapped_column(Boolean, default=False)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, onupdate=utcnow)

    def is_up(self, now: datetime, down_after: timedelta) -> bool:
        """Whether the host counts as up: not forced down by an operator
        (``os-services/force-down``), and its agent reported within
        ``down_after`` (``[compute] service_down_time``)."""
        return (
            not self.forced_down
            and self.last_seen_at is not None
            and now - self.last_seen_at <= down_after
        )


class Allocation(Base):
    """A server's claim on its host's capacity. The scheduler inserts it
    with the host's row locked, after summing the host's claims, so that
    concurrent boots never overcommit a host."""

    __tablename__ = "compute_allocations"
    __table_args__ = (Index("ix_compute_allocations_host", "host_id"),)

    server_id: Mapped[str] = mapped_column(ID, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("compute_hosts.id"))
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- servers ----------------------------------------------------------------------


class Server(Base):
    """A server and the truth about it.

    ``vm_state`` is what the server is (building, active, stopped, ...);
    ``task_state`` the operation in flight (scheduling, spawning,
    powering-off, ..., or None); ``power_state`` what the hypervisor last
    said. The API writes a task, the scheduler or the host's agent carries
    it out and clears it, each with a compare-and-set on ``task_state`` so
    that two writers never both win. ``flavor`` is a JSON copy of the flavor
    at boot time: deleting or changing the flavor never changes a server.
    """

    __tablename__ = "compute_servers"
    __table_args__ = (
        Index("ix_compute_servers_project", "project_id"),
        Index("ix_compute_servers_host", "host"),
        Index("ix_compute_servers_task", "task_state"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    user_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    hostname: Mapped[str] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    image_id: Mapped[str] = mapped_column(String(36), default="")
    flavor: Mapped[str] = mapped_column(Text)
    # The flavor's size, as columns, for quota sums and claims.
    vcpus: Mapped[int] = mapped_column(Integer)
    memory_mb: Mapped[int] = mapped_column(Integer)
    disk_gb: Mapped[int] = mapped_column(Integer)
    key_name: Mapped[str | None] = mapped_column(String(255))
    key_data: Mapped[str | None] = mapped_column(Text)
    user_data: Mapped[str | None] = mapped_column(Text)
    config_drive: Mapped[bool] = mapped_column(Boolean, default=False)
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    requested_networks: Mapped[str] = mapped_column(Text, default="[]")
    security_groups: Mapped[str] = mapped_column(Text, default="[]")
    # What the scheduler must respect beyond the flavor: {"forced_host": ...}
    scheduler_hints: Mapped[str] = mapped_column(Text, default="{}")
    server_group_id: Mapped[str | None] = mapped_column(ID)
    reservation_id: Mapped[str] = mapped_column(String(255), default="")
    launch_index: Mapped[int] = mapped_column(Integer, default=0)
    vm_state: Mapped[str] = mapped_column(String(32), default="building")
    task_state: Mapped[str | None] = mapped_column(String(32))
    power_state: Mapped[int] = mapped_column(Integer, default=0)
    host: Mapped[str | None] = mapped_column(String(255))
    access_ipv4: Mapped[str] = mapped_column(String(64), default="")
    access_ipv6: Mapped[str] = mapped_column(String(64), default="")
    locked: Mapped[bool] = mapped_column(Boolean, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(16))
    progress: Mapped[int] = mapped_column(Integer, default=0)
    fault: Mapped[str | None] = mapped_column(Text)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What the task in flight needs beyond the server (JSON): the image of a
    # snapshot, the port of an interface being attached...
    task_args: Mapped[str | None] = mapped_column(Text)
    # Counts every change, so that a pass of an agent sees what moved.
    revision: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    metadata_items: Mapped[list[ServerMetadata]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ServerMetadata.key"
    )
    ports: Mapped[list[ServerPort]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="ServerPort.position"
    )


class Migration(Base):
    """A resize of a server: its flavors before and after, the hosts, and
    how far it went. While it is under way (``ACTIVE_STATUSES``) the old
    flavor's claim on the source host is held in the migration's ``uuid``
    (an ``Allocation`` whose ``server_id`` is that uuid), as Nova's
    migration records hold it, so that a revert finds its room again."""

    __tablename__ = "compute_migrations"
    __table_args__ = (Index("ix_compute_migrations_server", "server_id"),)

    ACTIVE_STATUSES = (
        "pre-migrating",
        "migrating",
        "post-migrating",
        "finished",
        "confirming",
        "reverting",
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(ID, unique=True)
    server_id: Mapped[str] = mapped_column(ID)
    project_id: Mapped[str] = mapped_column(PROJECT)
    user_id: Mapped[str] = mapped_column(String(255))
    migration_type: Mapped[str] = mapped_column(String(32), default="resize")
    source_host: Mapped[str] = mapped_column(String(255))
    dest_host: Mapped[str | None] = mapped_column(String(255))
    old_flavor: Mapped[str] = mapped_column(Text)
    new_flavor: Mapped[str] = mapped_column(Text)
    # The server's vm_state before (active or stopped): what it returns to.
    old_vm_state: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="pre-migrating")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ServerMetadata(Base):
    __tablename__ = "compute_server_metadata"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str] = mapped_column(String(255))


class ServerPort(Base):
    """A port of the network service that a server uses. ``owned`` ports
    were made for the server (from a network in its request) and go with
    it; ports the user gave are only unbound and left."""

    __tablename__ = "compute_server_ports"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), primary_key=True
    )
    port_id: Mapped[str] = mapped_column(ID, primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    network_id: Mapped[str] = mapped_column(ID)
    mac_address: Mapped[str] = mapped_column(String(32))
    owned: Mapped[bool] = mapped_column(Boolean, default=True)
    # The port as the network service last described it (fixed IPs, MTU,
    # subnets), for the server's addresses and its metadata.
    details: Mapped[str] = mapped_column(Text, default="{}")


class ServerGroup(Base):
    __tablename__ = "compute_server_groups"
    __table_args__ = (Index("ix_compute_server_groups_project", "project_id"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    project_id: Mapped[str] = mapped_column(PROJECT)
    user_id: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    policy: Mapped[str] = mapped_column(String(32))
    max_server_per_host: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class InstanceAction(Base):
    """What was asked of a server (``os-instance-actions``), kept after it is gone."""

    __tablename__ = "compute_instance_actions"
    __table_args__ = (Index("ix_compute_instance_actions_server", "server_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    server_id: Mapped[str] = mapped_column(ID)
    project_id: Mapped[str] = mapped_column(PROJECT)
    user_id: Mapped[str] = mapped_column(String(255))
    request_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    events: Mapped[list[InstanceActionEvent]] = relationship(
        lazy="selectin", cascade="all, delete-orphan", order_by="InstanceActionEvent.id"
    )


class InstanceActionEvent(Base):
    __tablename__ = "compute_instance_action_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        ForeignKey("compute_instance_actions.id", ondelete="CASCADE")
    )
    event: Mapped[str] = mapped_column(String(64))
    host: Mapped[str | None] = mapped_column(String(255))
    result: Mapped[str | None] = mapped_column(String(16))
    traceback: Mapped[str | None] = mapped_column(Text)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ConsoleLog(Base):
    """The end of a server's serial console log, as its agent last sent it."""

    __tablename__ = "compute_console_logs"

    server_id: Mapped[str] = mapped_column(
        ForeignKey("compute_servers.id", ondelete="CASCADE"), primary_key=True
    )
    text: Mapped[str] = mapped_column(Text, default="")
    size: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
