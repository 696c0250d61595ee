"""``GET /v2/images``: Glance's filters, sorting and marker pagination.

Sorting is by one or more keys (``sort_key``/``sort_dir`` or
``sort=key:dir,...``) with the image ID as the final tie-breaker, so that a
marker always names one position; the next page starts after the marker's
row in that order (``stratus.common.keyset``).
"""

from __future__ import annotations

import csv
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, Select, and_, exists, false, or_, select, true
from sqlalchemy.orm import Session

from stratus.common import errors, keyset
from stratus.common.app import ApiRequest
from stratus.common.handlers import parse_bool
from stratus.image.api import common
from stratus.image.model import Image, ImageProperty, ImageTag
from stratus.image.views import image_view

SORT_KEYS = {
    "name": Image.name,
    "status": Image.status,
    "container_format": Image.container_format,
    "disk_format": Image.disk_format,
    "size": Image.size,
    "virtual_size": Image.virtual_size,
    "id": Image.id,
    "created_at": Image.created_at,
    "updated_at": Image.updated_at,
    "visibility": Image.visibility,
    "owner": Image.owner,
    "min_disk": Image.min_disk,
    "min_ram": Image.min_ram,
}
# Query parameters that are not property filters.
RESERVED_PARAMS = {"limit", "marker", "sort_key", "sort_dir", "sort", "member_status"}
SIMPLE_FILTERS = {
    "name": Image.name,
    "status": Image.status,
    "owner": Image.owner,
    "disk_format": Image.disk_format,
    "container_format": Image.container_format,
    "id": Image.id,
}
# Other columns Glance filters on by equality: ?size=1024, ?checksum=...
EXACT_FILTERS = {
    "checksum": Image.checksum,
    "os_hash_algo": Image.os_hash_algo,
    "os_hash_value": Image.os_hash_value,
}
INTEGER_FILTERS = {
    "size": Image.size,
    "virtual_size": Image.virtual_size,
    "min_disk": Image.min_disk,
    "min_ram": Image.min_ram,
}
TIME_FILTERS = {"created_at": Image.created_at, "updated_at": Image.updated_at}
TIME_OPERATORS = {
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
    "eq": lambda c, v: c == v,
    "neq": lambda c, v: c != v,
}
VISIBILITIES = ("public", "private", "shared", "community", "all")
MEMBER_STATUSES = ("accepted", "pending", "rejected", "all")


def _sort_spec(req: ApiRequest) -> list[tuple[str, str]]:
    query = req.query
    spec: list[tuple[str, str]] = []
    if "sort" in query:
        if "sort_key" in query or "sort_dir" in query:
            raise errors.BadRequest("Use either sort or sort_key/sort_dir, not both.")
        for item in query["sort"].split(","):
            key, _, direction = item.strip().partition(":")
            spec.append((key, direction or "desc"))
    else:
        keys = [k for v in query.getlist("sort_key") for k in v.split(",")] or ["created_at"]
        dirs = [d for v in query.getlist("sort_dir") for d in v.split(",")]
        if len(dirs) > 1 and len(dirs) != len(keys):
            raise errors.BadRequest("Give one sort_dir, or one per sort_key.")
        spec = [
            (k, dirs[i] if len(dirs) > 1 else (dirs[0] if dirs else "desc"))
            for i, k in enumerate(keys)
        ]
    seen = set()
    for key, direction in spec:
        if key not in SORT_KEYS:
            raise errors.BadRequest(f"Invalid sort key: {key}. Sortable: {', '.join(SORT_KEYS)}.")
        if direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid sort direction: {direction}. Use asc or desc.")
        if key in seen:
            raise errors.BadRequest(f"Sort key {key} given twice.")
        seen.add(key)
    if "id" not in seen:
        spec.append(("id", spec[-1][1] if spec else "desc"))
    return spec


def _in_values(raw: str) -> list[str] | None:
    """``in:a,b,"c,d"`` → values; None when not an ``in:`` filter."""
    if not raw.startswith("in:"):
        return None
    values = next(csv.reader([raw[3:]], skipinitialspace=True), [])
    if not values:
        raise errors.BadRequest(f"Empty 'in' filter: {raw!r}.")
    return values


def _time_filter(column: Any, raw: str, name: str) -> ColumnElement[bool]:
    op, sep, value = raw.partition(":")
    if not sep or op not in TIME_OPERATORS:
        op, value = "eq", raw
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(f"Invalid time for {name}: {value!r}.") from None
    return TIME_OPERATORS[op](column, moment)  # type: ignore[no-any-return]


def _size_filter(raw: str, name: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise errors.BadRequest(f"{name} must be an integer, not {raw!r}.") from None
    if value < 0:
        raise errors.BadRequest(f"{name} must not be negative.")
    return value


def _visibility_clause(req: ApiRequest) -> ColumnElement[bool]:
    context = req.context
    project = context.project_id
    visibility = req.query.get("visibility")
    if visibility is not None and visibility not in VISIBILITIES:
        raise errors.BadRequest(f"Invalid visibility: {visibility}. Use {', '.join(VISIBILITIES)}.")
    member_status = req.query.get("member_status", "accepted")
    if member_status not in MEMBER_STATUSES:
        raise errors.BadRequest(
            f"Invalid member_status: {member_status}. Use {', '.join(MEMBER_STATUSES)}."
        )
    statuses = None if member_status == "all" else (member_status,)
    everything = common.sees_everything(req)
    owned = (Image.owner == project) if project else false()
    if visibility in ("public", "community"):
        return Image.visibility == visibility
    if visibility == "private":
        return and_(Image.visibility == "private", true() if everything else owned)
    if visibility == "shared":
        if everything and "member_status" not in req.query:
            return Image.visibility == "shared"
        return or_(and_(Image.visibility == "shared", owned), common.shared_with(project, statuses))
    if everything:
        return true() if visibility == "all" else Image.visibility != "community"
    listed = [Image.visibility == "public", owned, common.shared_with(project, statuses)]
    if visibility == "all":
        listed.append(Image.visibility == "community")
    return or_(*listed)


def _filters(req: ApiRequest, query: Select[Any]) -> Select[Any]:
    query = query.where(_visibility_clause(req))
    hidden = req.query.get("os_hidden")
    query = query.where(Image.os_hidden.is_(parse_bool(hidden, "os_hidden") if hidden else False))
    for key, raw in req.query.multi_items():
        if key in RESERVED_PARAMS or key in ("visibility", "os_hidden"):
            continue
        if key in SIMPLE_FILTERS:
            column = SIMPLE_FILTERS[key]
            values = _in_values(raw)
            query = query.where(column.in_(values) if values is not None else column == raw)
        elif key in EXACT_FILTERS:
            query = query.where(EXACT_FILTERS[key] == raw)
        elif key in INTEGER_FILTERS:
            query = query.where(INTEGER_FILTERS[key] == _size_filter(raw, key))
        elif key in TIME_FILTERS:
            query = query.where(_time_filter(TIME_FILTERS[key], raw, key))
        elif key == "size_min":
            query = query.where(Image.size >= _size_filter(raw, key))
        elif key == "size_max":
            query = query.where(Image.size <= _size_filter(raw, key))
        elif key == "protected":
            query = query.where(Image.protected.is_(parse_bool(raw, key)))
        elif key == "tag":
            query = query.where(
                exists(
                    select(ImageTag.value).where(
                        ImageTag.image_id == Image.id, ImageTag.value == raw
                    )
                )
            )
        else:  # a free-form property: ?hw_disk_bus=scsi
            query = query.where(
                exists(
                    select(ImageProperty.name).where(
                        ImageProperty.image_id == Image.id,
                        ImageProperty.name == key,
                        ImageProperty.value == raw,
                    )
                )
            )
    return query


def list_images(req: ApiRequest, session: Session) -> dict[str, Any]:
    options = common.service(req).options
    sort = [(SORT_KEYS[key], direction) for key, direction in _sort_spec(req)]
    raw_limit = req.query.get("limit")
    limit = options.limit_param_default
    if raw_limit is not None:
        limit = _size_filter(raw_limit, "limit")
    limit = min(limit, options.api_limit_max)
    query = _filters(req, select(Image).where(Image.deleted.is_(False)))
    marker_id = req.query.get("marker")
    if marker_id:
        marker = session.scalar(query.where(Image.id == marker_id))
        if marker is None:
            raise errors.BadRequest(f"Marker {marker_id} not found among the listed images.")
        query = query.where(keyset.after(sort, marker))
    rows = list(session.scalars(query.order_by(*keyset.order_by(sort)).limit(limit + 1)))
    body: dict[str, Any] = {
        "images": [image_view(image) for image in rows[:limit]],
        "first": "/v2/images",
        "schema": "/v2/schemas/images",
    }
    if len(rows) > limit and limit > 0:
        params = [(k, v) for k, v in req.query.multi_items() if k != "marker"]
        params.append(("marker", rows[limit - 1].id))
        body["next"] = f"/v2/images?{urlencode(params)}"
    return body
