"""Identity's ASGI application."""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp

from stratus.common import errors
from stratus.common.app import build_app
from stratus.common.auth import LocalValidator
from stratus.common.config import Config
from stratus.identity import authentication
from stratus.identity.api import ROUTES
from stratus.identity.service import IdentityService


def create_app(config: Config | None = None, service: IdentityService | None = None) -> ASGIApp:
    config = config or Config()
    svc = service or IdentityService.from_config(config)
    svc.formatter.check()  # no keys: refuse to start rather than fail every login

    def validate(token: str) -> dict[str, Any]:
        with svc.db.session() as session:
            return authentication.validate(svc, session, token, catalog=False, unauthorized=True)

    return build_app(
        ROUTES,
        error_format=errors.keystone_format,
        max_body=svc.options.max_request_body_size,
        state={"identity": svc, "validator": LocalValidator(validate)},
    )


def create_app_from_env() -> ASGIApp:
    """Factory for uvicorn's worker processes (reads $STRATUS_CONFIG)."""
    from stratus.common import logs

    config = Config()
    logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
    return create_app(config)
