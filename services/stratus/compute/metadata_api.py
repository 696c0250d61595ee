"""``stratus-api metadata``: the metadata service over the compute database.

Guests reach it through the network agents' metadata proxies, which sign
each request's instance ID with ``[metadata] shared_secret``
(``stratus.metadata.service`` says what is trusted and served). An instance
is a server of the compute database that is not being deleted.
"""

from __future__ import annotations

from starlette.types import ASGIApp

from stratus.common.config import Config, ConfigError, Option, register
from stratus.common.db import Database, engine_from_config
from stratus.compute import instance_metadata, states
from stratus.compute.api.hosts import server_document
from stratus.compute.model import Server
from stratus.metadata.app import create_app as metadata_app
from stratus.metadata.content import InstanceMetadata

SECTION = "metadata"

register(
    SECTION,
    [
        Option("bind_host", default="127.0.0.1", help="Address the service listens on."),
        Option("bind_port", "int", 8775, "Port the service listens on.", minimum=1),
        Option("workers", "int", 2, "Worker processes.", minimum=1),
        Option(
            "shared_secret",
            default="",
            help="The secret the network agents' metadata proxies sign instance IDs with.",
        ),
    ],
)


class DatabaseLookup:
    def __init__(self, db: Database):
        self.db = db

    def __call__(self, instance_id: str, project_id: str) -> InstanceMetadata | None:
        with self.db.session() as session:
            server = session.get(Server, instance_id)
            if (
                server is None
                or server.project_id != project_id
                or server.task_state == states.DELETING
            ):
                return None
            return instance_metadata.from_document(server_document(server))


def create_app(config: Config | None = None) -> ASGIApp:
    config = config or Config()
    secret = config.section(SECTION).shared_secret
    if not secret:
        raise ConfigError(f"[{SECTION}] shared_secret: required (the proxies' signing secret)")
    return metadata_app(DatabaseLookup(Database(engine_from_config(config))), secret)


def create_app_from_env() -> ASGIApp:
    """Factory for uvicorn's worker processes (reads $STRATUS_CONFIG)."""
    from stratus.common import logs

    config = Config()
    logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
    return create_app(config)
