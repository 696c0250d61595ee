"""What every image handler uses: the service, policy and which images a caller sees."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, false, or_, select
from sqlalchemy.orm import Session

from stratus.common import errors, policy
from stratus.common.app import ApiRequest
from stratus.common.auth import RequestContext
from stratus.image.model import Image, ImageMember
from stratus.image.service import ImageService


def service(req: ApiRequest) -> ImageService:
    return req.app_state.image  # type: ignore[no-any-return]


def image_target(image: Image) -> dict[str, Any]:
    return {"owner": image.owner, "visibility": image.visibility, "id": image.id}


def allowed(req: ApiRequest, rule: str, target: Mapping[str, Any] | None = None) -> bool:
    return policy.caller_allowed(service(req).enforcer, req, rule, target)


def enforce(req: ApiRequest, rule: str, target: Mapping[str, Any] | None = None) -> RequestContext:
    """The caller, after checking ``rule`` against ``target`` (401/403 otherwise)."""
    return policy.enforce_caller(service(req).enforcer, req, rule, target)  # type: ignore[no-any-return]


def sees_everything(req: ApiRequest) -> bool:
    """Cloud readers (and admins) see every image, as Glance's admins do; so
    does compute's service user, which fetches its servers' images
    (``image:see_all``)."""
    context: RequestContext = req.context
    return service(req).enforcer.check("image:see_all", context.creds(), {"target": {}})


def shared_with(project_id: str | None, statuses: tuple[str, ...] | None) -> ColumnElement[bool]:
    """Shared images of which the project is a member (with one of ``statuses``)."""
    if project_id is None:
        return false()
    membership = select(ImageMember.image_id).where(
        ImageMember.image_id == Image.id, ImageMember.member == project_id
    )
    if statuses is not None:
        membership = membership.where(ImageMember.status.in_(statuses))
    return and_(Image.visibility == "shared", exists(membership))


def visible(req: ApiRequest) -> ColumnElement[bool] | None:
    """Which images the caller may see (None: all of them)."""
    if sees_everything(req):
        return None
    project = req.context.project_id
    return or_(
        Image.visibility.in_(("public", "community")),
        Image.owner == project if project else false(),
        shared_with(project, None),
    )


def get_image(req: ApiRequest, session: Session, image_id: str) -> Image:
    """The image, if it exists and the caller may see it; 404 otherwise."""
    query = select(Image).where(Image.id == image_id, Image.deleted.is_(False))
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    image = session.scalar(query)
    if image is None:
        raise errors.NotFound(f"No image found with ID {image_id}.")
    return image


def is_owner(req: ApiRequest, image: Image) -> bool:
    return image.owner is not None and image.owner == req.context.project_id
