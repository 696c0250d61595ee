"""The image service's ASGI application."""

from __future__ import annotations

import re

from starlette.types import ASGIApp

from stratus.common import errors
from stratus.common.app import build_app
from stratus.common.auth import TokenValidator, validator_from_config
from stratus.common.config import Config
from stratus.image import recovery, settings
from stratus.image.api import ROUTES
from stratus.image.service import ImageService

# Routes that carry image data rather than JSON.
DATA_ROUTE = re.compile(r"^/v2/images/[^/]+/(file|stage)$")


def create_app(
    config: Config | None = None,
    service: ImageService | None = None,
    validator: TokenValidator | None = None,
) -> ASGIApp:
    config = config or Config()
    svc = service or ImageService.from_config(config)
    validator = validator or validator_from_config(config, settings.AUTHTOKEN_SECTION)
    recovery.reconcile(svc)
    size_cap = svc.options.image_size_cap

    def body_limit(method: str, path: str) -> int | None:
        return size_cap if method == "PUT" and DATA_ROUTE.match(path) else None

    return build_app(
        ROUTES,
        error_format=errors.keystone_format,
        max_body=svc.options.max_request_body_size,
        body_limit=body_limit,
        # Glance answers 404 for /v2/images/ (an empty image ID), not the list.
        redirect_slashes=False,
        state={"image": svc, "validator": validator},
    )


def create_app_from_env() -> ASGIApp:
    """Factory for uvicorn's worker processes (reads $STRATUS_CONFIG)."""
    from stratus.common import logs

    config = Config()
    logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
    return create_app(config)
