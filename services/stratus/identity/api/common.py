"""What every identity handler uses: policy, validation, links, filters, lists.

A handler reads as a checklist (see the domains module): validate the body
against its schema, check the policy with the target, call the data layer in
one session, answer with an explicit status. Database integrity errors become
409 here, never a 500.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from sqlalchemy import Select, and_, not_, or_
from sqlalchemy.orm import InstrumentedAttribute, Session
from starlette.responses import Response

from stratus.common import errors
from stratus.common.app import ApiRequest
from stratus.common.auth import RequestContext
from stratus.common.handlers import check_schema, parse_bool

# Re-exported: identity's handlers reach every helper through this module.
from stratus.common.handlers import get_or_404 as get_or_404
from stratus.common.handlers import no_content as no_content
from stratus.common.handlers import ok as ok
from stratus.common.pagination import page_params
from stratus.common.urls import base_url
from stratus.identity.service import IdentityService

# JSON Schema fragments shared by the resource schemas.
ID_STRING = {"type": "string", "minLength": 1, "maxLength": 64}
NAME = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"[\S]"}
DESCRIPTION = {"type": ["string", "null"], "maxLength": 65535}
BOOLEAN = {"type": "boolean"}
NULLABLE_ID = {"type": ["string", "null"], "maxLength": 64}


def service(req: ApiRequest) -> IdentityService:
    return req.app_state.identity  # type: ignore[no-any-return]


def enforce(req: ApiRequest, rule: str, target: Mapping[str, Any] | None = None) -> RequestContext:
    """The caller, after checking ``rule`` against ``target`` (401/403 otherwise)."""
    context: RequestContext = req.context
    service(req).enforcer.enforce(rule, context.creds(), {"target": dict(target or {})})
    return context


def validate(body: Any, schema: Mapping[str, Any], what: str) -> dict[str, Any]:
    """The body's ``what`` object, validated; 400 naming the offending field."""
    check_schema(body, {"type": "object", "properties": {what: schema}, "required": [what]})
    return dict(body[what])


def obj_schema(
    properties: Mapping[str, Any], required: Iterable[str] = (), additional: bool = True
) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": dict(properties),
        "required": list(required),
        "additionalProperties": additional,
    }


def url(req: ApiRequest, path: str) -> str:
    public = service(req).options.public_endpoint or None
    return f"{base_url(req.request, public)}{path}"


def self_links(req: ApiRequest, path: str) -> dict[str, str]:
    return {"self": url(req, path)}


_STRING_OPS: dict[str, Callable[[Any, str], Any]] = {
    "contains": lambda col, v: col.contains(v, autoescape=True),
    "icontains": lambda col, v: col.icontains(v, autoescape=True),
    "startswith": lambda col, v: col.startswith(v, autoescape=True),
    "istartswith": lambda col, v: col.istartswith(v, autoescape=True),
    "endswith": lambda col, v: col.endswith(v, autoescape=True),
    "iendswith": lambda col, v: col.iendswith(v, autoescape=True),
}


def apply_filters(
    req: ApiRequest,
    query: Select[Any],
    columns: Mapping[str, InstrumentedAttribute[Any]],
    booleans: Iterable[str] = ("enabled",),
) -> Select[Any]:
    """Keystone's list filters: exact ``name=x``, ``name__icontains=x``, booleans."""
    bool_names = set(booleans)
    for key, value in req.query.multi_items():
        name, _, op = key.partition("__")
        column = columns.get(name)
        if column is None:
            continue
        if op:
            if op not in _STRING_OPS or name in bool_names:
                raise errors.BadRequest(f"Unsupported filter {key}.")
            query = query.where(_STRING_OPS[op](column, value))
        elif name in bool_names:
            query = query.where(column.is_(parse_bool(value, key)))
        else:
            query = query.where(column == value)
    return query


def tag_filters(req: ApiRequest, tag_model: Any, owner_column: Any) -> list[Any]:
    """``tags``, ``tags-any``, ``not-tags``, ``not-tags-any`` (comma-separated)."""
    from sqlalchemy import exists, select

    def has(tag: str) -> Any:
        return exists(
            select(tag_model.name).where(
                tag_model.project_id == owner_column, tag_model.name == tag
            )
        )

    clauses = []
    for param, combine, negate in (
        ("tags", and_, False),
        ("tags-any", or_, False),
        ("not-tags", and_, True),
        ("not-tags-any", or_, True),
    ):
        raw = req.query.get(param)
        if raw is None:
            continue
        tags = [t for t in raw.split(",") if t]
        if not tags:
            continue
        clause = combine(*[has(t) for t in tags])
        clauses.append(not_(clause) if negate else clause)
    return clauses


def list_response(
    req: ApiRequest, collection: str, items: list[dict[str, Any]], truncated: bool = False
) -> Response:
    """A Keystone list: ``{collection: [...], "links": {self, previous, next}}``."""
    self_url = url(req, req.request.url.path)
    if req.request.url.query:
        self_url += f"?{req.request.url.query}"
    links: dict[str, Any] = {"self": self_url, "previous": None, "next": None}
    page = page_params(req.request, max_limit=0)
    if page.limit is not None and items and len(items) >= page.limit:
        from stratus.common.pagination import next_link

        links["next"] = next_link(
            req.request, items, page, public_endpoint=service(req).options.public_endpoint or None
        )
    body: dict[str, Any] = {collection: items, "links": links}
    if truncated:
        body["truncated"] = True
    return ok(body)


def paginate(req: ApiRequest, query: Select[Any], id_column: Any) -> Select[Any]:
    """Order by ID and apply ``marker``/``limit``; cap at ``list_limit``."""
    page = page_params(req.request, max_limit=0)
    query = query.order_by(id_column)
    if page.marker:
        query = query.where(id_column > page.marker)
    cap = service(req).options.list_limit
    limit = page.limit if page.limit is not None else cap
    return query.limit(min(limit, cap) + 1)


def page_of(req: ApiRequest, rows: list[Any]) -> tuple[list[Any], bool]:
    """Rows of one page, and whether the configured cap truncated it."""
    page = page_params(req.request, max_limit=0)
    cap = service(req).options.list_limit
    limit = min(page.limit if page.limit is not None else cap, cap)
    return rows[:limit], len(rows) > limit and (page.limit is None or page.limit > cap)


def list_page(
    req: ApiRequest,
    session: Session,
    query: Select[Any],
    id_column: Any,
    collection: str,
    view: Callable[[Any], dict[str, Any]],
) -> Response:
    """One page of ``query``, ordered by ``id_column``, as a Keystone list."""
    rows, truncated = page_of(req, list(session.scalars(paginate(req, query, id_column))))
    return list_response(req, collection, [view(row) for row in rows], truncated)


def extra_fields(body: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    """Attributes Keystone keeps as free-form ``extra`` (anything not modelled)."""
    skip = set(known) | {"id", "links"}
    return {k: v for k, v in body.items() if k not in skip}


def parse_expires_at(value: str | None) -> Any:
    """An ``expires_at`` as naive UTC (None for none); 400 if malformed or past.

    Keystone reads a timestamp without an offset as UTC, and refuses one that
    is not in the future (application credentials, trusts).
    """
    from datetime import UTC, datetime

    if value is None or value == "":
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise errors.BadRequest(
            f"Invalid input for field 'expires_at': {value!r} is not an ISO 8601 timestamp."
        ) from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    if moment <= datetime.now(UTC).replace(tzinfo=None):
        raise errors.BadRequest(
            "Invalid input for field 'expires_at': the expiration time must be in the future."
        )
    return moment
