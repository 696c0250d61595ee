"""``/v2/images``: create, list, show, update (JSON patch), delete, (de)activate."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.db import utcnow
from stratus.common.handlers import check_schema, no_content, ok
from stratus.image.api import common, listing
from stratus.image.api.schemas import (
    MAX_PROPERTIES,
    READ_ONLY,
    RESERVED,
    RESERVED_PREFIX,
    image_properties,
)
from stratus.image.model import Image, ImageProperty, ImageTag
from stratus.image.views import BASE_ATTRIBUTES, image_view

PATCH_MEDIA_TYPES = (
    "application/openstack-images-v2.1-json-patch",
    "application/openstack-images-v2.0-json-patch",
)
IMPORT_METHODS = "glance-direct"


def _check_attribute_name(name: str) -> None:
    if name in READ_ONLY:
        raise errors.Forbidden(f"Attribute '{name}' is read-only.")
    if name in RESERVED or name.startswith(RESERVED_PREFIX):
        raise errors.Forbidden(f"Attribute '{name}' is reserved.")
    if not name or len(name) > 255:
        raise errors.BadRequest("Property names must have 1 to 255 characters.")


def _check_values(req: ApiRequest, values: dict[str, Any]) -> None:
    """Every attribute valid for the schema and allowed by the settings."""
    for name in values:
        _check_attribute_name(name)
    schema = {
        "type": "object",
        "properties": image_properties(),
        "additionalProperties": {"type": "string", "maxLength": 65535},
    }
    check_schema(values, schema)
    options = common.service(req).options
    if values.get("disk_format") not in (None, *options.disk_formats):
        raise errors.BadRequest(
            f"Invalid disk format '{values['disk_format']}'; "
            f"this cloud accepts: {', '.join(options.disk_formats)}."
        )
    if values.get("container_format") not in (None, *options.container_formats):
        raise errors.BadRequest(
            f"Invalid container format '{values['container_format']}'; "
            f"this cloud accepts: {', '.join(options.container_formats)}."
        )
    extra = [k for k in values if k not in BASE_ATTRIBUTES and k != "tags"]
    if len(extra) > MAX_PROPERTIES:
        raise errors.RequestEntityTooLarge(
            f"An image may have at most {MAX_PROPERTIES} properties."
        )


def _check_visibility_change(req: ApiRequest, target: dict[str, Any], visibility: str) -> None:
    if visibility == "public":
        common.enforce(req, "image:publicize_image", target)
    elif visibility == "community":
        common.enforce(req, "image:communitize_image", target)


def _apply(image: Image, values: dict[str, Any]) -> None:
    """Set base attributes, tags and properties on the row."""
    for name, value in values.items():
        if name == "tags":
            image.tags = [ImageTag(value=tag) for tag in dict.fromkeys(value)]
        elif name in BASE_ATTRIBUTES:
            setattr(image, name, value)
        else:
            current = {p.name: p for p in image.properties}
            if name in current:
                current[name].value = value
            else:
                image.properties.append(ImageProperty(name=name, value=value))


def check_image_quota(req: ApiRequest, session: Session, owner: str | None) -> None:
    limit = common.service(req).options.quota_image_count
    if limit < 0 or owner is None:
        return
    owned = select(func.count()).select_from(Image)
    count = session.scalar(owned.where(Image.owner == owner, Image.deleted.is_(False)))
    if (count or 0) >= limit:
        raise errors.RequestEntityTooLarge(
            f"The project may own at most {limit} images (quota image_count)."
        )


@endpoint
def create(req: ApiRequest) -> Response:
    body = req.json()
    if not isinstance(body, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    _check_values(req, body)
    context = req.context
    owner = body.get("owner", context.project_id)
    target = {"owner": owner, "visibility": body.get("visibility", "shared")}
    if owner != context.project_id:
        common.enforce(req, "image:set_image_owner", target)
    common.enforce(req, "image:add_image", target)
    _check_visibility_change(req, target, target["visibility"])
    image_id = body.get("id") or str(uuid.uuid4())
    with common.service(req).db.session() as session:
        if session.get(Image, image_id) is not None:
            raise errors.Conflict(f"An image with ID {image_id} already exists.")
        check_image_quota(req, session, owner)
        image = Image(id=image_id, owner=owner, status="queued")
        values = {k: v for k, v in body.items() if k not in ("id", "owner")}
        values.setdefault("visibility", "shared")
        _apply(image, values)
        session.add(image)
        session.flush()
        view = image_view(image)
    return ok(
        view,
        201,
        {"Location": f"/v2/images/{image_id}", "OpenStack-image-import-methods": IMPORT_METHODS},
    )


@endpoint
def index(req: ApiRequest) -> Response:
    common.enforce(req, "image:get_images")
    with common.service(req).db.session() as session:
        return ok(listing.list_images(req, session))


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, "image:get_image", common.image_target(image))
        return ok(image_view(image))


# --- JSON patch -------------------------------------------------------------


def _patch_operations(req: ApiRequest) -> list[tuple[str, str, Any]]:
    """(op, attribute, value) of a JSON-patch body, validated."""
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in PATCH_MEDIA_TYPES:
        raise errors.UnsupportedMediaType(
            f"Content type {media or 'none'!r} is not supported; send {PATCH_MEDIA_TYPES[0]}."
        )
    try:
        body = json.loads(req.raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f"The request body is not valid JSON: {exc}") from exc
    if not isinstance(body, list):
        raise errors.BadRequest("A JSON patch is a list of operations.")
    operations = []
    for raw in body:
        if not isinstance(raw, dict):
            raise errors.BadRequest("Each JSON patch operation must be an object.")
        if "op" in raw:
            op, path = raw.get("op"), raw.get("path")
        else:  # the v2.0 form: {"replace": "/name", "value": ...}
            ops = [k for k in ("add", "remove", "replace") if k in raw]
            op, path = (ops[0], raw[ops[0]]) if len(ops) == 1 else (None, None)
        if op not in ("add", "remove", "replace"):
            raise errors.BadRequest(f"Invalid JSON patch operation: {raw.get('op', raw)!r}.")
        if not isinstance(path, str) or not path.startswith("/") or path.count("/") != 1:
            raise errors.BadRequest(f"Invalid JSON pointer for this resource: {path!r}.")
        name = path[1:].replace("~1", "/").replace("~0", "~")
        if op != "remove" and "value" not in raw:
            raise errors.BadRequest(f"Operation {op} on {path} needs a value.")
        operations.append((op, name, raw.get("value")))
    return operations


@endpoint
def patch(req: ApiRequest) -> Response:
    operations = _patch_operations(req)
    with common.service(req).db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        target = common.image_target(image)
        common.enforce(req, "image:modify_image", target)
        values: dict[str, Any] = {}
        removed: set[str] = set()
        current = image_view(image)
        for op, name, value in operations:
            _check_attribute_name(name)
            exists = name in values or (name in current and name not in removed)
            if op == "remove":
                if name in BASE_ATTRIBUTES or name == "tags" or name == "id":
                    raise errors.Forbidden(f"Attribute '{name}' cannot be removed.")
                if not exists:
                    raise errors.Conflict(f"Property '{name}' does not exist.")
                values.pop(name, None)
                removed.add(name)
            else:
                if op == "replace" and not exists and name not in BASE_ATTRIBUTES:
                    raise errors.Conflict(f"Property '{name}' does not exist.")
                if name == "id":
                    raise errors.Forbidden("Attribute 'id' is read-only.")
                values[name] = value
                removed.discard(name)
        _check_values(req, values)
        for name in ("disk_format", "container_format"):
            if name in values and values[name] != getattr(image, name) and image.status != "queued":
                raise errors.Forbidden(f"Attribute {name} can be only replaced for a queued image.")
        if "owner" in values and values["owner"] != image.owner:
            common.enforce(req, "image:set_image_owner", {**target, "owner": values["owner"]})
        if "visibility" in values and values["visibility"] != image.visibility:
            _check_visibility_change(req, target, values["visibility"])
        properties = [p for p in image.properties if p.name not in removed]
        if len(properties) + len([k for k in values if k not in current]) > MAX_PROPERTIES:
            raise errors.RequestEntityTooLarge(
                f"An image may have at most {MAX_PROPERTIES} properties."
            )
        image.properties = properties
        _apply(image, values)
        image.updated_at = utcnow()
        session.flush()
        return ok(image_view(image))


# --- delete, deactivate, reactivate -----------------------------------------


@endpoint
def delete(req: ApiRequest) -> Response:
    svc = common.service(req)
    with svc.db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, "image:delete_image", common.image_target(image))
        if image.protected:
            raise errors.Forbidden(f"Image {image.id} is protected and cannot be deleted.")
        image.status = "deleted"
        image.deleted = True
        image.deleted_at = utcnow()
        image_id, location = image.id, image.location
    # The row says "deleted" before any data goes, so a crash here leaves
    # data that recovery removes, never an image without its data.
    from stratus.image import recovery

    recovery.purge(svc, image_id, location)
    return no_content()


def _transition(req: ApiRequest, rule: str, allowed_from: tuple[str, ...], to: str) -> Response:
    svc = common.service(req)
    with svc.db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, rule, common.image_target(image))
        if image.status == to:
            return no_content()
        if image.status not in allowed_from:
            verb = rule.split(":", 1)[1]
            raise errors.Forbidden(f"Not allowed to {verb} image in status '{image.status}'.")
        result = session.execute(
            update(Image)
            .where(Image.id == image.id, Image.status == image.status)
            .values(status=to, updated_at=utcnow())
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise errors.Conflict("The image changed status meanwhile; try again.")
    return no_content()


@endpoint
def deactivate(req: ApiRequest) -> Response:
    return _transition(req, "image:deactivate", ("active",), "deactivated")


@endpoint
def reactivate(req: ApiRequest) -> Response:
    return _transition(req, "image:reactivate", ("deactivated",), "active")


ROUTES = [
    Route("/v2/images", create, methods=["POST"]),
    Route("/v2/images", index, methods=["GET"]),
    Route("/v2/images/{image_id}", show, methods=["GET"]),
    Route("/v2/images/{image_id}", patch, methods=["PATCH"]),
    Route("/v2/images/{image_id}", delete, methods=["DELETE"]),
    Route("/v2/images/{image_id}/actions/deactivate", deactivate, methods=["POST"]),
    Route("/v2/images/{image_id}/actions/reactivate", reactivate, methods=["POST"]),
]
