"""The compute service's ASGI application."""

from __future__ import annotations

from starlette.types import ASGIApp

from stratus.common import errors
from stratus.common.app import build_app
from stratus.common.auth import TokenValidator, validator_from_config
from stratus.common.config import Config
from stratus.compute import settings
from stratus.compute.api import ROUTES
from stratus.compute.api.common import MicroversionMiddleware
from stratus.compute.service import ComputeService


def create_app(
    config: Config | None = None,
    service: ComputeService | None = None,
    validator: TokenValidator | None = None,
) -> ASGIApp:
    config = config or Config()
    svc = service or ComputeService.from_config(config)
    validator = validator or validator_from_config(config, settings.AUTHTOKEN_SECTION)
    return build_app(
        ROUTES,
        error_format=errors.compute_format,
        max_body=svc.options.max_request_body_size,
        state={"compute": svc, "validator": validator},
        wrap=MicroversionMiddleware,
    )


def create_app_from_env() -> ASGIApp:
    """Factory for uvicorn's worker processes (reads $STRATUS_CONFIG)."""
    from stratus.common import logs

    config = Config()
    logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
    return create_app(config)
