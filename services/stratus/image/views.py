"""Images and members as the Glance v2 API shows them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stratus.image.model import Image, ImageMember

# Attributes an image always shows (in this order); its free-form properties
# are shown beside them at the top level.
BASE_ATTRIBUTES = (
    "id",
    "name",
    "status",
    "visibility",
    "protected",
    "os_hidden",
    "owner",
    "disk_format",
    "container_format",
    "size",
    "virtual_size",
    "checksum",
    "os_hash_algo",
    "os_hash_value",
    "min_disk",
    "min_ram",
)


def timestamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def image_view(image: Image) -> dict[str, Any]:
    body: dict[str, Any] = {name: getattr(image, name) for name in BASE_ATTRIBUTES}
    body.update(
        {
            "tags": [tag.value for tag in image.tags],
            "created_at": timestamp(image.created_at),
            "updated_at": timestamp(image.updated_at),
            "self": f"/v2/images/{image.id}",
            "file": f"/v2/images/{image.id}/file",
            "schema": "/v2/schemas/image",
        }
    )
    for prop in image.properties:
        body[prop.name] = prop.value
    return body


def member_view(member: ImageMember) -> dict[str, Any]:
    return {
        "image_id": member.image_id,
        "member_id": member.member,
        "status": member.status,
        "created_at": timestamp(member.created_at),
        "updated_at": timestamp(member.updated_at),
        "schema": "/v2/schemas/member",
    }
