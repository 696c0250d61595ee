"""The compute service's tables.

Uniqueness the API promises is a key in the database, so that concurrent
requests on several workers cannot break it: a flavor's ID and its name, a
key pair's name per user.
"""

from __future__ import annotations

from datetime import datetime

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
