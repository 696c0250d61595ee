"""``/v2/info/import`` (import methods) and ``/v2/info/usage`` (quota usage)."""

from __future__ import annotations

from sqlalchemy import func, select
from starlette.responses import Response
from starlette.routing import Route

from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.image.api import common
from stratus.image.api.data import IMPORT_METHODS
from stratus.image.model import Image


@endpoint
def import_info(req: ApiRequest) -> Response:
    return ok(
        {
            "import-methods": {
                "description": "Import methods available.",
                "type": "array",
                "value": list(IMPORT_METHODS),
            }
        }
    )


@endpoint
def usage(req: ApiRequest) -> Response:
    context = common.enforce(req, "image:get_usage")
    svc = common.service(req)
    owner = context.project_id
    with svc.db.session() as session:
        mine = (Image.owner == owner, Image.deleted.is_(False))
        count = session.scalar(select(func.count()).select_from(Image).where(*mine)) or 0
        size = session.scalar(select(func.coalesce(func.sum(Image.size), 0)).where(*mine)) or 0
        uploading = (
            session.scalar(
                select(func.count())
                .select_from(Image)
                .where(*mine, Image.status.in_(("saving", "uploading", "importing")))
            )
            or 0
        )
        staged = [
            image_id
            for image_id in session.scalars(
                select(Image.id).where(*mine, Image.status.in_(("uploading", "importing")))
            )
        ]
    stage_total = sum(path.stat().st_size for path in map(svc.staged_path, staged) if path.exists())
    options = svc.options
    return ok(
        {
            "usage": {
                "image_size_total": {"limit": options.quota_image_size_total, "usage": int(size)},
                "image_count_total": {"limit": options.quota_image_count, "usage": int(count)},
                "image_stage_total": {"limit": -1, "usage": stage_total},
                "image_count_uploading": {"limit": -1, "usage": int(uploading)},
            }
        }
    )


ROUTES = [
    Route("/v2/info/import", import_info, methods=["GET"]),
    Route("/v2/info/usage", usage, methods=["GET"]),
]
