"""``/v2/images/{id}/tags/{tag}``: add and remove one tag."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.db import utcnow
from stratus.common.handlers import no_content
from stratus.image.api import common
from stratus.image.api.schemas import MAX_TAGS
from stratus.image.model import ImageTag


@endpoint
def add(req: ApiRequest) -> Response:
    tag = req.path_params["tag"]
    if not 1 <= len(tag) <= 255:
        raise errors.BadRequest("A tag has 1 to 255 characters.")
    with common.service(req).db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, "image:modify_image", common.image_target(image))
        if tag not in {t.value for t in image.tags}:
            if len(image.tags) >= MAX_TAGS:
                raise errors.RequestEntityTooLarge(f"An image may have at most {MAX_TAGS} tags.")
            image.tags.append(ImageTag(value=tag))
            image.updated_at = utcnow()
    return no_content()


@endpoint
def remove(req: ApiRequest) -> Response:
    tag = req.path_params["tag"]
    with common.service(req).db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, "image:modify_image", common.image_target(image))
        kept = [t for t in image.tags if t.value != tag]
        if len(kept) == len(image.tags):
            raise errors.NotFound(f"Image {image.id} has no tag {tag!r}.")
        image.tags = kept
        image.updated_at = utcnow()
    return no_content()


ROUTES = [
    Route("/v2/images/{image_id}/tags/{tag}", add, methods=["PUT"]),
    Route("/v2/images/{image_id}/tags/{tag}", remove, methods=["DELETE"]),
]
