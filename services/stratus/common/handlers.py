"""Small pieces every service's handlers use: schema checks, answers, lookups."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jsonschema
from sqlalchemy.orm import Session
from starlette.responses import JSONResponse, Response

from stratus.common import errors


def check_schema(instance: Any, schema: Mapping[str, Any]) -> None:
    """400 naming the offending field when ``instance`` does not match ``schema``."""
    try:
        jsonschema.validate(instance, schema)
    except jsonschema.ValidationError as exc:
        location = ".".join(str(p) for p in exc.absolute_path) or "body"
        raise errors.BadRequest(f"Invalid input for field '{location}': {exc.message}") from None


def ok(body: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


def no_content(headers: Mapping[str, str] | None = None) -> Response:
    return Response(status_code=204, headers=dict(headers or {}))


def get_or_404(session: Session, model: type[Any], ident: str, what: str) -> Any:
    item = session.get(model, ident)
    if item is None:
        raise errors.NotFound(f"Could not find {what}: {ident}.")
    return item


def parse_bool(value: str, name: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("", "1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise errors.BadRequest(f"Query parameter {name} must be a boolean, not {value!r}.")
