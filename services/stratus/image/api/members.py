"""``/v2/images/{id}/members``: sharing an image with other projects.

The owner adds and removes members of a ``shared`` image; each member
project accepts, rejects or leaves pending what was shared with it (only
accepted images appear in its default image list). A member sees its own
membership; the owner sees them all.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.db import utcnow
from stratus.common.handlers import check_schema, no_content, ok
from stratus.image.api import common
from stratus.image.model import Image, ImageMember
from stratus.image.views import member_view

MAX_MEMBERS = 128
MEMBER_STATUSES = ("pending", "accepted", "rejected")


def _shared_image(req: ApiRequest, session: Session) -> Image:
    image = common.get_image(req, session, req.path_params["image_id"])
    if image.visibility != "shared":
        raise errors.Forbidden(
            f"Only shared images have members; image {image.id} is {image.visibility}."
        )
    return image


def _can_see_all(req: ApiRequest, image: Image) -> bool:
    return common.is_owner(req, image) or common.sees_everything(req)


def _member(session: Session, image: Image, member_id: str) -> ImageMember:
    member = session.get(ImageMember, (image.id, member_id))
    if member is None:
        raise errors.NotFound(f"Project {member_id} is not a member of image {image.id}.")
    return member


@endpoint
def create(req: ApiRequest) -> Response:
    body = req.json()
    check_schema(
        body,
        {
            "type": "object",
            "properties": {"member": {"type": "string", "minLength": 1, "maxLength": 255}},
            "required": ["member"],
        },
    )
    with common.service(req).db.session() as session:
        image = _shared_image(req, session)
        common.enforce(req, "image:add_member", common.image_target(image))
        member_id = body["member"]
        if session.get(ImageMember, (image.id, member_id)) is not None:
            raise errors.Conflict(f"Project {member_id} is already a member of image {image.id}.")
        count = session.scalar(
            select(func.count()).select_from(ImageMember).where(ImageMember.image_id == image.id)
        )
        if (count or 0) >= MAX_MEMBERS:
            raise errors.RequestEntityTooLarge(f"An image may have at most {MAX_MEMBERS} members.")
        member = ImageMember(image_id=image.id, member=member_id, status="pending")
        session.add(member)
        session.flush()
        return ok(member_view(member))


@endpoint
def index(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        image = _shared_image(req, session)
        common.enforce(req, "image:get_members", common.image_target(image))
        query = select(ImageMember).where(ImageMember.image_id == image.id)
        if not _can_see_all(req, image):
            query = query.where(ImageMember.member == req.context.project_id)
        members = session.scalars(query.order_by(ImageMember.created_at, ImageMember.member))
        return ok({"members": [member_view(m) for m in members], "schema": "/v2/schemas/members"})


@endpoint
def show(req: ApiRequest) -> Response:
    member_id = req.path_params["member_id"]
    with common.service(req).db.session() as session:
        image = _shared_image(req, session)
        common.enforce(req, "image:get_member", common.image_target(image))
        if not _can_see_all(req, image) and member_id != req.context.project_id:
            raise errors.NotFound(f"Project {member_id} is not a member of image {image.id}.")
        return ok(member_view(_member(session, image, member_id)))


@endpoint
def update(req: ApiRequest) -> Response:
    body = req.json()
    check_schema(
        body,
        {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": list(MEMBER_STATUSES)}},
            "required": ["status"],
        },
    )
    member_id = req.path_params["member_id"]
    with common.service(req).db.session() as session:
        image = _shared_image(req, session)
        target: dict[str, Any] = {**common.image_target(image), "member_id": member_id}
        common.enforce(req, "image:modify_member", target)
        member = _member(session, image, member_id)
        member.status = body["status"]
        member.updated_at = utcnow()
        session.flush()
        return ok(member_view(member))


@endpoint
def delete(req: ApiRequest) -> Response:
    member_id = req.path_params["member_id"]
    with common.service(req).db.session() as session:
        image = _shared_image(req, session)
        common.enforce(req, "image:delete_member", common.image_target(image))
        session.delete(_member(session, image, member_id))
    return no_content()


ROUTES = [
    Route("/v2/images/{image_id}/members", create, methods=["POST"]),
    Route("/v2/images/{image_id}/members", index, methods=["GET"]),
    Route("/v2/images/{image_id}/members/{member_id}", show, methods=["GET"]),
    Route("/v2/images/{image_id}/members/{member_id}", update, methods=["PUT"]),
    Route("/v2/images/{image_id}/members/{member_id}", delete, methods=["DELETE"]),
]
