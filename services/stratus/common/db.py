"""The shared database: engine, sessions and per-component Alembic migrations.

SQLite (the embedded default for one host) runs in WAL mode with foreign keys
enforced and a busy timeout, so several worker processes can share it;
PostgreSQL (``postgresql+psycopg://``) serves a datacenter. Each component
owns its tables and its Alembic history, recorded in its own version table
(``alembic_version_<component>``), so components migrate independently.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, inspect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.types import DateTime, TypeDecorator

from stratus.common.config import Config, ConfigError

LOG = logging.getLogger(__name__)

# Components with a schema, in migration order.
COMPONENTS = ("identity", "image", "network", "compute")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class UTCDateTime(TypeDecorator[datetime]):
    """Naive UTC in the database, the same on SQLite and PostgreSQL."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value


def make_engine(
    url: str, *, pool_size: int = 5, busy_timeout: float = 30.0, sqlite_immediate: bool = False
) -> Engine:
    """An engine for ``url``.

    ``sqlite_immediate`` makes every SQLite transaction ``BEGIN IMMEDIATE``:
    transactions of all processes run one after the other, and SAVEPOINTs
    work (with pysqlite's own transaction handling a SAVEPOINT outside a
    transaction starts one, and its RELEASE commits it). Components that
    insert optimistically inside savepoints (the network service's address
    and segment allocation) need it; PostgreSQL needs nothing.
    """
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            pool_size=pool_size,
            max_overflow=pool_size * 2,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            if url not in ("sqlite://", "sqlite:///:memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            if sqlite_immediate:
                dbapi_connection.isolation_level = None  # we say when transactions begin

        if sqlite_immediate:

            @event.listens_for(engine, "begin")
            def _sqlite_begin(connection: Any) -> None:
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True)


def engine_from_config(config: Config, *, sqlite_immediate: bool = False) -> Engine:
    url = config.get("database", "connection")
    try:
        return make_engine(
            url,
            pool_size=config.get("database", "pool_size"),
            busy_timeout=config.get("database", "busy_timeout"),
            sqlite_immediate=sqlite_immediate,
        )
    except Exception as exc:  # a malformed URL or a missing driver
        raise ConfigError(f"[database] connection: cannot be used: {exc}") from exc


class Database:
    """An engine with a session factory; ``session()`` is one transaction."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._factory = sessionmaker(engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        session = self._factory()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()


def try_insert(session: Session, *rows: Any) -> bool:
    """Insert ``rows`` in a savepoint; False, and nothing inserted, if a key is taken.

    The way to claim something unique (an address, a segment ID) when
    several requests may race for it: the database's key decides.
    """
    from sqlalchemy.exc import IntegrityError

    try:
        with session.begin_nested():
            session.add_all(rows)
            session.flush()
    except IntegrityError:
        return False
    return True


# --- migrations -------------------------------------------------------------


def _alembic_config(engine: Engine, component: str) -> Any:
    from alembic.config import Config as AlembicConfig

    module = importlib.import_module(f"stratus.{component}")
    location = Path(module.__file__ or "").parent / "migrations"
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(location))
    cfg.attributes["engine"] = engine
    cfg.attributes["component"] = component
    return cfg


def version_table(component: str) -> str:
    return f"alembic_version_{component}"


def run_env(context: Any, target_metadata: Any) -> None:
    """Body of every component's ``migrations/env.py``."""
    cfg = context.config
    engine: Engine = cfg.attributes["engine"]
    component: str = cfg.attributes["component"]
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=version_table(component),
            render_as_batch=engine.dialect.name == "sqlite",
        )
        context.run_migrations()


def current_revisions(engine: Engine) -> dict[str, str | None]:
    from alembic.runtime.migration import MigrationContext

    revisions: dict[str, str | None] = {}
    with engine.connect() as connection:
        for component in COMPONENTS:
            ctx = MigrationContext.configure(
                connection, opts={"version_table": version_table(component)}
            )
            revisions[component] = ctx.get_current_revision()
    return revisions


def head_revisions() -> dict[str, str | None]:
    from alembic.script import ScriptDirectory

    heads: dict[str, str | None] = {}
    for component in COMPONENTS:
        script = ScriptDirectory.from_config(_alembic_config(None, component))  # type: ignore[arg-type]
        heads[component] = script.get_current_head()
    return heads


def sync(engine: Engine) -> dict[str, Any]:
    """Upgrade every component to its newest revision; report what changed."""
    from alembic import command

    before = current_revisions(engine)
    for component in COMPONENTS:
        command.upgrade(_alembic_config(engine, component), "head")
    after = current_revisions(engine)
    return {"changed": before != after, "before": before, "revisions": after}


def is_current(engine: Engine) -> tuple[bool, str]:
    try:
        current = current_revisions(engine)
    except OperationalError as exc:
        return False, f"database unreachable: {exc.orig}"
    heads = head_revisions()
    stale = [c for c in COMPONENTS if current.get(c) != heads.get(c)]
    if stale:
        return False, "schema not at the newest revision for: " + ", ".join(stale)
    if not inspect(engine).get_table_names():
        return False, "database is empty"
    return True, "schema is current"
