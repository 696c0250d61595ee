"""The network service's ASGI application."""

from __future__ import annotations

from starlette.types import ASGIApp

from stratus.common import errors
from stratus.common.app import build_app
from stratus.common.auth import TokenValidator, validator_from_config
from stratus.common.config import Config
from stratus.network import settings
from stratus.network.api import ROUTES
from stratus.network.service import NetworkService


def create_app(
    config: Config | None = None,
    service: NetworkService | None = None,
    validator: TokenValidator | None = None,
) -> ASGIApp:
    config = config or Config()
    svc = service or NetworkService.from_config(config)
    validator = validator or validator_from_config(config, settings.AUTHTOKEN_SECTION)
    return build_app(
        ROUTES,
        error_format=errors.neutron_format,
        max_body=svc.options.max_request_body_size,
        state={"network": svc, "validator": validator},
    )


def create_app_from_env() -> ASGIApp:
    """Factory for uvicorn's worker processes (reads $STRATUS_CONFIG)."""
    from stratus.common import logs

    config = Config()
    logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
    return create_app(config)
