"""``/v3/regions``, ``/v3/services``, ``/v3/endpoints``: the service catalog.

Regions form a tree (``parent_region_id``): a parent must exist and an update
may not close a cycle. Deleting a region deletes its child regions, and is
refused (403, as Keystone does) while it or any of them has endpoints.
Deleting a service deletes its endpoints. An endpoint names an existing
service and, optionally, an existing region (400 otherwise, as in Keystone);
the legacy ``region`` attribute creates the region when it is missing. Every
change shows in the next token's catalog, which is built from these tables at
validation (``stratus.identity.catalog``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model
from stratus.identity.api import common

# --- regions ----------------------------------------------------------------------

REGION_ID = {"type": "string", "maxLength": 255}
_REGION_FIELDS = {
    "id": REGION_ID,
    "description": common.DESCRIPTION,
    "parent_region_id": {"type": ["string", "null"], "maxLength": 255},
}
REGION_CREATE = common.obj_schema(_REGION_FIELDS)
REGION_UPDATE = {**common.obj_schema(_REGION_FIELDS), "minProperties": 1}


def region_view(req: ApiRequest, region: model.Region) -> dict[str, Any]:
    return {
        **(region.extra or {}),
        "id": region.id,
        "description": region.description or "",
        "parent_region_id": region.parent_region_id,
        "links": common.self_links(req, f"/v3/regions/{region.id}"),
    }


def _parent_or_404(session: Session, parent_id: str | None) -> None:
    if parent_id is not None and session.get(model.Region, parent_id) is None:
        raise errors.NotFound(f"Could not find region: {parent_id}.")


def _descendants(session: Session, region_id: str) -> list[str]:
    """IDs of every region below ``region_id``, nearest first (cycle-safe)."""
    found: list[str] = []
    frontier = [region_id]
    while frontier:
        children = [
            c
            for c in session.scalars(
                select(model.Region.id).where(model.Region.parent_region_id.in_(frontier))
            )
            if c != region_id and c not in found
        ]
        found.extend(children)
        frontier = children
    return found


def _insert_region(req: ApiRequest, body: dict[str, Any], region_id: str) -> Response:
    with common.service(req).db.session() as session:
        if session.get(model.Region, region_id) is not None:
            raise errors.Conflict(
                f"Conflict occurred attempting to store region - Duplicate ID, {region_id}."
            )
        _parent_or_404(session, body.get("parent_region_id"))
        region = model.Region(
            id=region_id,
            description=body.get("description") or "",
            parent_region_id=body.get("parent_region_id"),
            extra=common.extra_fields(body, _REGION_FIELDS),
        )
        session.add(region)
        try:
            session.flush()
        except IntegrityError:
            raise errors.Conflict(f"A region with ID {region_id} already exists.") from None
        return common.ok({"region": region_view(req, region)}, 201)


@endpoint
def create_region(req: ApiRequest) -> Response:
    body = common.validate(req.json(), REGION_CREATE, "region")
    common.enforce(req, "identity:create_region")
    # Keystone takes a caller's ID here too (PUT is the documented way).
    return _insert_region(req, body, body.get("id") or model.new_id())


@endpoint
def create_region_with_id(req: ApiRequest) -> Response:
    region_id = req.path_params["region_id"]
    body = common.validate(req.json(), REGION_CREATE, "region")
    common.enforce(req, "identity:create_region")
    if len(region_id) > 255:
        raise errors.BadRequest("A region ID is at most 255 characters.")
    if body.get("id", region_id) != region_id:
        raise errors.BadRequest(
            f'Conflicting region IDs specified: "{region_id}" != "{body["id"]}".'
        )
    return _insert_region(req, body, region_id)


@endpoint
def list_regions(req: ApiRequest) -> Response:
    common.enforce(req, "identity:list_regions")
    query = common.apply_filters(
        req, select(model.Region), {"parent_region_id": model.Region.parent_region_id}
    )
    with common.service(req).db.session() as session:
        return common.list_page(
            req, session, query, model.Region.id, "regions", lambda r: region_view(req, r)
        )


@endpoint
def get_region(req: ApiRequest) -> Response:
    region_id = req.path_params["region_id"]
    common.enforce(req, "identity:get_region", {"region_id": region_id})
    with common.service(req).db.session() as session:
        region = common.get_or_404(session, model.Region, region_id, "region")
        return common.ok({"region": region_view(req, region)})


@endpoint
def update_region(req: ApiRequest) -> Response:
    region_id = req.path_params["region_id"]
    body = common.validate(req.json(), REGION_UPDATE, "region")
    common.enforce(req, "identity:update_region", {"region_id": region_id})
    if body.get("id", region_id) != region_id:
        raise errors.BadRequest("The region ID cannot be changed.")
    with common.service(req).db.session() as session:
        region = common.get_or_404(session, model.Region, region_id, "region")
        if "parent_region_id" in body:
            parent_id = body["parent_region_id"]
            _parent_or_404(session, parent_id)
            if parent_id is not None and (
                parent_id == region.id or parent_id in _descendants(session, region.id)
            ):
                raise errors.BadRequest(
                    f"The specified parent region {parent_id} would create a circular "
                    f"region hierarchy with region {region.id}."
                )
            region.parent_region_id = parent_id
        if "description" in body:
            region.description = body["description"] or ""
        extra = common.extra_fields(body, _REGION_FIELDS)
        if extra:
            region.extra = {**(region.extra or {}), **extra}
        session.flush()
        return common.ok({"region": region_view(req, region)})


@endpoint
def delete_region(req: ApiRequest) -> Response:
    region_id = req.path_params["region_id"]
    common.enforce(req, "identity:delete_region", {"region_id": region_id})
    with common.service(req).db.session() as session:
        region = common.get_or_404(session, model.Region, region_id, "region")
        subtree = [region.id, *_descendants(session, region.id)]
        if session.scalar(
            select(model.Endpoint.id).where(model.Endpoint.region_id.in_(subtree)).limit(1)
        ):
            raise errors.Forbidden(
                f"Unable to delete region {region.id} because it or its child regions "
                f"have associated endpoints."
            )
        # Leaves first, so that no row ever points at a deleted parent.
        for child_id in reversed(subtree[1:]):
            session.execute(delete(model.Region).where(model.Region.id == child_id))
        session.delete(region)
    return common.no_content()


# --- services -------------------------------------------------------------------------

_SERVICE_FIELDS = {
    "type": {"type": "string", "minLength": 1, "maxLength": 255},
    "name": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": common.DESCRIPTION,
    "enabled": common.BOOLEAN,
}
SERVICE_CREATE = common.obj_schema(_SERVICE_FIELDS, required=["type"])
SERVICE_UPDATE = {
    **common.obj_schema({**_SERVICE_FIELDS, "id": {"type": "string"}}),
    "minProperties": 1,
}


def service_view(req: ApiRequest, service: model.Service) -> dict[str, Any]:
    return {
        **(service.extra or {}),
        "id": service.id,
        "type": service.type,
        "name": service.name or "",
        "description": service.description or "",
        "enabled": service.enabled,
        "links": common.self_links(req, f"/v3/services/{service.id}"),
    }


@endpoint
def create_service(req: ApiRequest) -> Response:
    body = common.validate(req.json(), SERVICE_CREATE, "service")
    common.enforce(req, "identity:create_service")
    with common.service(req).db.session() as session:
        service = model.Service(
            id=model.new_id(),
            type=body["type"],
            name=body.get("name") or "",
            description=body.get("description") or "",
            enabled=body.get("enabled", True),
            extra=common.extra_fields(body, _SERVICE_FIELDS),
        )
        session.add(service)
        session.flush()
        return common.ok({"service": service_view(req, service)}, 201)


@endpoint
def list_services(req: ApiRequest) -> Response:
    common.enforce(req, "identity:list_services")
    query = common.apply_filters(
        req,
        select(model.Service),
        {
            "type": model.Service.type,
            "name": model.Service.name,
            "enabled": model.Service.enabled,
        },
    )
    with common.service(req).db.session() as session:
        return common.list_page(
            req, session, query, model.Service.id, "services", lambda s: service_view(req, s)
        )


@endpoint
def get_service(req: ApiRequest) -> Response:
    service_id = req.path_params["service_id"]
    common.enforce(req, "identity:get_service", {"service_id": service_id})
    with common.service(req).db.session() as session:
        service = common.get_or_404(session, model.Service, service_id, "service")
        return common.ok({"service": service_view(req, service)})


@endpoint
def update_service(req: ApiRequest) -> Response:
    service_id = req.path_params["service_id"]
    body = common.validate(req.json(), SERVICE_UPDATE, "service")
    common.enforce(req, "identity:update_service", {"service_id": service_id})
    if body.get("id", service_id) != service_id:
        raise errors.BadRequest("The service ID cannot be changed.")
    with common.service(req).db.session() as session:
        service = common.get_or_404(session, model.Service, service_id, "service")
        if "type" in body:
            service.type = body["type"]
        if "name" in body:
            service.name = body["name"]
        if "description" in body:
            service.description = body["description"] or ""
        if "enabled" in body:
            service.enabled = body["enabled"]
        extra = common.extra_fields(body, _SERVICE_FIELDS)
        if extra:
            service.extra = {**(service.extra or {}), **extra}
        session.flush()
        return common.ok({"service": service_view(req, service)})


@endpoint
def delete_service(req: ApiRequest) -> Response:
    service_id = req.path_params["service_id"]
    common.enforce(req, "identity:delete_service", {"service_id": service_id})
    with common.service(req).db.session() as session:
        service = common.get_or_404(session, model.Service, service_id, "service")
        session.execute(delete(model.Endpoint).where(model.Endpoint.service_id == service.id))
        session.delete(service)
    return common.no_content()


# --- endpoints ------------------------------------------------------------------------

INTERFACES = ("admin", "internal", "public")
# What the token's catalog fills in (stratus.identity.catalog); Keystone's
# whitelist check refuses any other substitution at create time.
URL_SUBSTITUTIONS = ("project_id", "tenant_id", "user_id")
_ENDPOINT_COLUMNS = {
    "interface": {"type": "string", "enum": list(INTERFACES)},
    "service_id": {"type": "string", "minLength": 1, "maxLength": 64},
    "region_id": {"type": ["string", "null"], "maxLength": 255},
    # RFC 1738 section 2.1's scheme, a colon, then anything (Keystone's rule).
    "url": {"type": "string", "maxLength": 225, "pattern": "^[a-zA-Z0-9+.-]+:.+"},
    "enabled": common.BOOLEAN,
}
_ENDPOINT_FIELDS = {
    **_ENDPOINT_COLUMNS,
    # Deprecated since v3.2, still sent by old clients: the region's ID.
    "region": {"type": ["string", "null"], "maxLength": 255},
    "name": {"type": "string"},
    "description": {"type": ["string", "null"]},
}
ENDPOINT_CREATE = common.obj_schema(
    {**_ENDPOINT_FIELDS, "id": {"type": "string"}}, required=["interface", "service_id", "url"]
)
ENDPOINT_UPDATE = {
    **common.obj_schema({**_ENDPOINT_FIELDS, "id": {"type": "string"}}),
    "minProperties": 1,
}
# Kept as ``extra`` are the free-form attributes (name, description, ...),
# never the legacy ``region``, which is always the region's ID.
_ENDPOINT_KNOWN = {*_ENDPOINT_COLUMNS, "region"}


def endpoint_view(req: ApiRequest, item: model.Endpoint) -> dict[str, Any]:
    return {
        **(item.extra or {}),
        "id": item.id,
        "interface": item.interface,
        "service_id": item.service_id,
        "region_id": item.region_id,
        "region": item.region_id,
        "url": item.url,
        "enabled": item.enabled,
        "links": common.self_links(req, f"/v3/endpoints/{item.id}"),
    }


def check_url(url: str) -> None:
    """Keystone's check: only known ``$(name)s``/``%(name)s`` substitutions."""
    try:
        url.replace("$(", "%(") % dict.fromkeys(URL_SUBSTITUTIONS, "")
    except (KeyError, TypeError, ValueError):
        raise errors.BadRequest(
            f"Invalid endpoint URL ({url}): its substitutions must be among "
            f"{', '.join(URL_SUBSTITUTIONS)}, written as $(name)s or %(name)s."
        ) from None


def _region_for(session: Session, body: dict[str, Any]) -> tuple[bool, str | None]:
    """(whether the body names a region, its ID); the legacy form creates it."""
    if body.get("region_id") is not None:
        if session.get(model.Region, body["region_id"]) is None:
            raise errors.BadRequest(
                f"Invalid input for field 'region_id': region {body['region_id']} does not exist."
            )
        return True, body["region_id"]
    if body.get("region") is not None:
        if session.get(model.Region, body["region"]) is None:
            session.add(model.Region(id=body["region"], description="", extra={}))
            session.flush()
        return True, body["region"]
    return "region_id" in body or "region" in body, None


def _check_service(session: Session, service_id: str) -> None:
    if session.get(model.Service, service_id) is None:
        raise errors.BadRequest(
            f"Invalid input for field 'service_id': service {service_id} does not exist."
        )


@endpoint
def create_endpoint(req: ApiRequest) -> Response:
    body = common.validate(req.json(), ENDPOINT_CREATE, "endpoint")
    common.enforce(req, "identity:create_endpoint")
    check_url(body["url"])
    with common.service(req).db.session() as session:
        _check_service(session, body["service_id"])
        _, region_id = _region_for(session, body)
        item = model.Endpoint(
            id=model.new_id(),
            service_id=body["service_id"],
            region_id=region_id,
            interface=body["interface"],
            url=body["url"],
            enabled=body.get("enabled", True),
            extra=common.extra_fields(body, _ENDPOINT_KNOWN),
        )
        session.add(item)
        session.flush()
        return common.ok({"endpoint": endpoint_view(req, item)}, 201)


@endpoint
def list_endpoints(req: ApiRequest) -> Response:
    common.enforce(req, "identity:list_endpoints")
    interface = req.query.get("interface")
    if interface is not None and interface not in INTERFACES:
        raise errors.BadRequest(
            f"Invalid input for field 'interface': {interface!r} is not one of "
            f"{', '.join(INTERFACES)}."
        )
    query = common.apply_filters(
        req,
        select(model.Endpoint),
        {
            "interface": model.Endpoint.interface,
            "service_id": model.Endpoint.service_id,
            "region_id": model.Endpoint.region_id,
            "enabled": model.Endpoint.enabled,
        },
    )
    with common.service(req).db.session() as session:
        return common.list_page(
            req, session, query, model.Endpoint.id, "endpoints", lambda e: endpoint_view(req, e)
        )


@endpoint
def get_endpoint(req: ApiRequest) -> Response:
    endpoint_id = req.path_params["endpoint_id"]
    common.enforce(req, "identity:get_endpoint", {"endpoint_id": endpoint_id})
    with common.service(req).db.session() as session:
        item = common.get_or_404(session, model.Endpoint, endpoint_id, "endpoint")
        return common.ok({"endpoint": endpoint_view(req, item)})


@endpoint
def update_endpoint(req: ApiRequest) -> Response:
    endpoint_id = req.path_params["endpoint_id"]
    body = common.validate(req.json(), ENDPOINT_UPDATE, "endpoint")
    common.enforce(req, "identity:update_endpoint", {"endpoint_id": endpoint_id})
    if body.get("id", endpoint_id) != endpoint_id:
        raise errors.BadRequest("The endpoint ID cannot be changed.")
    if "url" in body:
        check_url(body["url"])
    with common.service(req).db.session() as session:
        item = common.get_or_404(session, model.Endpoint, endpoint_id, "endpoint")
        if "service_id" in body:
            _check_service(session, body["service_id"])
            item.service_id = body["service_id"]
        named, region_id = _region_for(session, body)
        if named:
            item.region_id = region_id
        for attribute in ("interface", "url", "enabled"):
            if attribute in body:
                setattr(item, attribute, body[attribute])
        extra = common.extra_fields(body, _ENDPOINT_KNOWN)
        if extra:
            item.extra = {**(item.extra or {}), **extra}
        session.flush()
        return common.ok({"endpoint": endpoint_view(req, item)})


@endpoint
def delete_endpoint(req: ApiRequest) -> Response:
    endpoint_id = req.path_params["endpoint_id"]
    common.enforce(req, "identity:delete_endpoint", {"endpoint_id": endpoint_id})
    with common.service(req).db.session() as session:
        item = common.get_or_404(session, model.Endpoint, endpoint_id, "endpoint")
        session.delete(item)
    return common.no_content()


ROUTES = [
    Route("/v3/regions", create_region, methods=["POST"]),
    Route("/v3/regions", list_regions, methods=["GET"]),
    Route("/v3/regions/{region_id}", get_region, methods=["GET"]),
    Route("/v3/regions/{region_id}", create_region_with_id, methods=["PUT"]),
    Route("/v3/regions/{region_id}", update_region, methods=["PATCH"]),
    Route("/v3/regions/{region_id}", delete_region, methods=["DELETE"]),
    Route("/v3/services", create_service, methods=["POST"]),
    Route("/v3/services", list_services, methods=["GET"]),
    Route("/v3/services/{service_id}", get_service, methods=["GET"]),
    Route("/v3/services/{service_id}", update_service, methods=["PATCH"]),
    Route("/v3/services/{service_id}", delete_service, methods=["DELETE"]),
    Route("/v3/endpoints", create_endpoint, methods=["POST"]),
    Route("/v3/endpoints", list_endpoints, methods=["GET"]),
    Route("/v3/endpoints/{endpoint_id}", get_endpoint, methods=["GET"]),
    Route("/v3/endpoints/{endpoint_id}", update_endpoint, methods=["PATCH"]),
    Route("/v3/endpoints/{endpoint_id}", delete_endpoint, methods=["DELETE"]),
]
