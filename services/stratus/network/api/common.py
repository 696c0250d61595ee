"""What every network handler uses: the service, policy, bodies, lists and tags.

Lists follow Neutron: any attribute of the resource is a filter
(``?name=x&status=ACTIVE``; a repeated key matches any of its values),
``fields=`` picks attributes, ``sort_key``/``sort_dir`` order, and
``limit``/``marker`` (with ``page_reverse``) page, with a
``<collection>_links`` entry when there is a next page. Tags filter with
``tags``, ``tags-any``, ``not-tags`` and ``not-tags-any``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from starlette.responses import Response

from stratus.common import errors, policy
from stratus.common.app import ApiRequest
from stratus.common.auth import RequestContext
from stratus.common.handlers import ok
from stratus.common.urls import base_url
from stratus.network.model import Tag
from stratus.network.service import NetworkService

# Query parameters that are not attribute filters.
CONTROL_PARAMS = {
    "fields",
    "limit",
    "marker",
    "page_reverse",
    "sort_key",
    "sort_dir",
    "tags",
    "tags-any",
    "not-tags",
    "not-tags-any",
    "verbose",
}
MAX_TAGS = 50


def service(req: ApiRequest) -> NetworkService:
    return req.app_state.network  # type: ignore[no-any-return]


def allowed(req: ApiRequest, rule: str, target: Mapping[str, Any] | None = None) -> bool:
    return policy.caller_allowed(service(req).enforcer, req, rule, target)


def enforce(req: ApiRequest, rule: str, target: Mapping[str, Any] | None = None) -> RequestContext:
    """The caller, after checking ``rule`` against ``target`` (403 otherwise)."""
    return policy.enforce_caller(service(req).enforcer, req, rule, target)  # type: ignore[no-any-return]


def sees_all(req: ApiRequest) -> bool:
    return allowed(req, "network:see_all")


def is_admin(req: ApiRequest) -> bool:
    return allowed(req, "cloud_admin")


def not_found(kind: str, ident: str) -> errors.NotFound:
    words = {
        "Network": "network",
        "Subnet": "subnet",
        "Port": "port",
        "Router": "router",
        "FloatingIP": "floating IP",
        "SecurityGroup": "security group",
        "SecurityGroupRule": "security group rule",
        "Agent": "agent",
    }
    return errors.NotFound(
        f"{words.get(kind, kind)} {ident} could not be found.".capitalize(),
        kind=f"{kind}NotFound",
    )


# --- request bodies -----------------------------------------------------------


def bodies(req: ApiRequest, singular: str, plural: str) -> tuple[list[dict[str, Any]], bool]:
    """The resource(s) of a create request and whether it was a bulk request."""
    body = req.json()
    if not isinstance(body, dict):
        raise errors.BadRequest("The request body must be a JSON object.")
    if plural in body and singular not in body:
        items = body[plural]
        if not isinstance(items, list) or not items:
            raise errors.BadRequest(f"'{plural}' must be a non-empty list of objects.")
        if not all(isinstance(i, dict) for i in items):
            raise errors.BadRequest(f"Every item of '{plural}' must be an object.")
        return items, True
    item = body.get(singular)
    if not isinstance(item, dict):
        raise errors.BadRequest(f"Resource body required: '{singular}' must be an object.")
    return [item], False


def body(req: ApiRequest, singular: str) -> dict[str, Any]:
    return bodies(req, singular, "\0")[0][0]


def create(
    req: ApiRequest,
    singular: str,
    plural: str,
    make: Callable[[ApiRequest, Session, dict[str, Any]], Any],
    render: Callable[[Session, list[Any]], list[dict[str, Any]]],
) -> Response:
    """A create request, of one resource or in bulk: all made in one transaction
    (a bulk request that fails anywhere makes nothing), answered 201."""
    items, bulk = bodies(req, singular, plural)
    with service(req).db.session() as session:
        rows = [make(req, session, values) for values in items]
        views = render(session, rows)
    return ok({plural: views} if bulk else {singular: views[0]}, 201)


def check_attributes(values: Mapping[str, Any], allowed_names: Iterable[str]) -> None:
    unknown = sorted(set(values) - set(allowed_names))
    if unknown:
        raise errors.BadRequest(
            f"Unrecognized attribute(s) '{', '.join(unknown)}'", kind="HTTPBadRequest"
        )


def as_bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise errors.BadRequest(
        f"Invalid input for {name}. Reason: '{value}' cannot be converted to boolean.",
        kind="InvalidInput",
    )


def as_string(value: Any, name: str, max_length: int = 255) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.BadRequest(
            f"Invalid input for {name}. Reason: '{value}' is not a valid string.",
            kind="InvalidInput",
        )
    if len(value) > max_length:
        raise errors.BadRequest(
            f"Invalid input for {name}. Reason: '{value[:40]}...' exceeds maximum length of "
            f"{max_length}.",
            kind="InvalidInput",
        )
    return value


def owner_of(req: ApiRequest, values: Mapping[str, Any]) -> str:
    """The project a new resource belongs to: the caller's, or another for admins."""
    context = req.context
    project = values.get("project_id") or values.get("tenant_id") or context.project_id
    if (
        values.get("project_id")
        and values.get("tenant_id")
        and (values["project_id"] != values["tenant_id"])
    ):
        raise errors.BadRequest("project_id and tenant_id do not match.", kind="InvalidInput")
    if not project:
        raise errors.BadRequest(
            "A project is required: use a project-scoped token or give project_id.",
            kind="InvalidInput",
        )
    if project != context.project_id:
        enforce(req, "network:set_owner", {"project_id": project})
    return as_string(project, "project_id")


# --- views --------------------------------------------------------------------


def timestamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def standard(row: Any, tags: Sequence[str] = ()) -> dict[str, Any]:
    """The attributes every resource shares (standard-attr extensions)."""
    view: dict[str, Any] = {
        "description": row.description,
        "created_at": timestamp(row.created_at),
        "updated_at": timestamp(row.updated_at),
        "revision_number": row.revision_number,
        "tags": list(tags),
    }
    if hasattr(row, "project_id"):
        view["project_id"] = row.project_id
        view["tenant_id"] = row.project_id
    return view


def touch(row: Any) -> None:
    """A change to a resource: its revision moves on (and updated_at, by the row)."""
    row.revision_number = (row.revision_number or 0) + 1


def tags_of(session: Session, ids: Iterable[str]) -> dict[str, list[str]]:
    ids = list(ids)
    found: dict[str, list[str]] = {i: [] for i in ids}
    if not ids:
        return found
    for chunk_start in range(0, len(ids), 500):
        chunk = ids[chunk_start : chunk_start + 500]
        rows = session.execute(
            select(Tag.resource_id, Tag.tag).where(Tag.resource_id.in_(chunk)).order_by(Tag.tag)
        )
        for resource_id, tag in rows:
            found[resource_id].append(tag)
    return found


def drop_tags(session: Session, resource_id: str) -> None:
    session.execute(delete(Tag).where(Tag.resource_id == resource_id))


def select_fields(req: ApiRequest, view: dict[str, Any]) -> dict[str, Any]:
    fields = req.query.getlist("fields")
    if not fields:
        return view
    return {k: v for k, v in view.items() if k in fields}


def show(req: ApiRequest, singular: str, view: dict[str, Any]) -> Response:
    return ok({singular: select_fields(req, view)})


# --- lists --------------------------------------------------------------------


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _matches(view: Mapping[str, Any], key: str, wanted: list[str]) -> bool:
    if key == "fixed_ips" and "fixed_ips" in view:
        # Neutron's form: fixed_ips=ip_address=10.0.0.5 or fixed_ips=subnet_id=<id>
        for want in wanted:
            name, _, value = want.partition("=")
            if name == "ip_address_substr":
                if any(value in f["ip_address"] for f in view["fixed_ips"]):
                    return True
            elif any(_text(f.get(name)) == value for f in view["fixed_ips"]):
                return True
        return False
    if key not in view:
        return True  # Neutron ignores filters on attributes a resource lacks
    value = view[key]
    if isinstance(value, list):
        return any(_text(v) in wanted for v in value)
    if isinstance(value, bool):
        return _text(value) in [w.lower() for w in wanted]
    return _text(value) in wanted


def _tag_filter(req: ApiRequest, tags: list[str]) -> bool:
    query = req.query
    have = set(tags)

    def words(name: str) -> list[str]:
        return [t for v in query.getlist(name) for t in v.split(",") if t]

    if query.getlist("tags") and not set(words("tags")) <= have:
        return False
    if query.getlist("tags-any") and not have & set(words("tags-any")):
        return False
    if query.getlist("not-tags") and set(words("not-tags")) <= have:
        return False
    return not (query.getlist("not-tags-any") and have & set(words("not-tags-any")))


def filter_views(req: ApiRequest, views: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    filters: dict[str, list[str]] = {}
    for key, value in req.query.multi_items():
        if key not in CONTROL_PARAMS:
            filters.setdefault(key, []).append(value)
    return [
        view
        for view in views
        if all(_matches(view, key, wanted) for key, wanted in filters.items())
        and _tag_filter(req, view.get("tags", []))
    ]


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, bool | int | float):
        return (1, value)
    return (2, str(value))


def list_response(req: ApiRequest, collection: str, views: Iterable[dict[str, Any]]) -> Response:
    """Filter, sort, page and trim ``views`` into ``{collection: [...]}``."""
    items = filter_views(req, views)
    keys = req.query.getlist("sort_key")
    dirs = req.query.getlist("sort_dir")
    if dirs and len(dirs) != len(keys):
        raise errors.BadRequest("The number of sort_keys and sort_dirs must be the same.")
    for index in range(len(keys) - 1, -1, -1):
        key, direction = keys[index], dirs[index] if dirs else "asc"
        if direction not in ("asc", "desc"):
            raise errors.BadRequest(f"sort_dir must be asc or desc, not {direction!r}.")
        if items and key not in items[0]:
            raise errors.BadRequest(f"{key} is an invalid attribute for sort_key.")
        items.sort(key=lambda v, k=key: _sort_value(v.get(k)), reverse=direction == "desc")
    if not keys:
        items.sort(key=lambda v: str(v.get("id", "")))
    reverse = _text(req.query.get("page_reverse", "false")).lower() == "true"
    if reverse:
        items.reverse()
    marker = req.query.get("marker")
    if marker:
        position = next((i for i, v in enumerate(items) if v.get("id") == marker), None)
        if position is None:
            raise errors.NotFound(f"Marker {marker} could not be found.", kind="MarkerNotFound")
        items = items[position + 1 :]
    raw_limit = req.query.get("limit")
    limit = service(req).options.pagination_max_limit
    if raw_limit not in (None, ""):
        try:
            requested = int(raw_limit)
        except ValueError:
            raise errors.BadRequest(f"limit must be an integer, not {raw_limit!r}.") from None
        if requested < 0:
            raise errors.BadRequest("limit must not be negative.")
        if requested:
            limit = min(requested, limit)
    page = items[:limit]
    more = len(items) > limit
    if reverse:
        page.reverse()
    body: dict[str, Any] = {collection: [select_fields(req, v) for v in page]}
    if more and page:
        last = page[0] if reverse else page[-1]
        params = [(k, v) for k, v in req.query.multi_items() if k != "marker"]
        params.append(("marker", last["id"]))
        public = service(req).options.public_endpoint or None
        href = f"{base_url(req.request, public)}{req.request.url.path}?{urlencode(params)}"
        body[f"{collection}_links"] = [{"rel": "next", "href": href}]
    return ok(body)


# --- quotas -------------------------------------------------------------------

QUOTA_RESOURCES = (
    "network",
    "subnet",
    "port",
    "router",
    "floatingip",
    "security_group",
    "security_group_rule",
)


def quota_limit(session: Session, svc: NetworkService, project_id: str, resource: str) -> int:
    from stratus.network.model import Quota

    row = session.get(Quota, (project_id, resource))
    if row is not None:
        return row.limit
    return int(getattr(svc.options, f"quota_{resource}"))


def check_quota(
    req: ApiRequest,
    session: Session,
    resource: str,
    project_id: str,
    model: Any,
    adding: int = 1,
    where: Callable[[Any], Any] | None = None,
) -> None:
    """409 ``OverQuota`` if the project would own more than its quota of ``resource``."""
    limit = quota_limit(session, service(req), project_id, resource)
    if limit < 0:
        return
    query = select(func.count()).select_from(model).where(model.project_id == project_id)
    if where is not None:
        query = query.where(where(model))
    count = session.scalar(query) or 0
    if count + adding > limit:
        raise errors.Conflict(f"Quota exceeded for resources: ['{resource}'].", kind="OverQuota")
