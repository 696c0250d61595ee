"""``/flavors``: server sizes, with access lists for private ones and extra specs.

Admins create and delete flavors. Everyone sees the public flavors and the
private ones shared with their project (``os-flavor-access``); admins see
all of them with ``is_public=none``. Lists page by flavor ID with ``limit``
and ``marker`` and sort with ``sort_key``/``sort_dir``.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok, parse_bool
from stratus.common.pagination import collection_links, page_params
from stratus.compute.api import common
from stratus.compute.model import Flavor, FlavorExtraSpec, FlavorProject

RULE = "os_compute_api"
INT_MAX = 2**31 - 1
# Flavor IDs and names: printable, without surrounding blanks (Nova's rule).
_ID = re.compile(r"^(?! )[a-zA-Z0-9. _-]+(?<! )$")
_SPEC_KEY = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")

SORT_KEYS = {
    "flavorid": Flavor.flavorid,
    "id": Flavor.flavorid,
    "name": Flavor.name,
    "memory_mb": Flavor.memory_mb,
    "ram": Flavor.memory_mb,
    "vcpus": Flavor.vcpus,
    "root_gb": Flavor.root_gb,
    "disk": Flavor.root_gb,
    "ephemeral_gb": Flavor.ephemeral_gb,
    "swap": Flavor.swap,
    "rxtx_factor": Flavor.rxtx_factor,
    "created_at": Flavor.created_at,
}


# --- views --------------------------------------------------------------------


def summary(req: ApiRequest, flavor: Flavor) -> dict[str, Any]:
    return {
        "id": flavor.flavorid,
        "name": flavor.name,
        "links": common.links(req, "flavors", flavor.flavorid),
    }


def detail(req: ApiRequest, flavor: Flavor) -> dict[str, Any]:
    return {
        **summary(req, flavor),
        "ram": flavor.memory_mb,
        "disk": flavor.root_gb,
        "vcpus": flavor.vcpus,
        "OS-FLV-EXT-DATA:ephemeral": flavor.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": flavor.disabled,
        "os-flavor-access:is_public": flavor.is_public,
        # Before 2.75 a flavor without swap says "" (Nova's quirk, kept).
        "swap": flavor.swap or "",
        "rxtx_factor": flavor.rxtx_factor,
    }


# --- lookups ------------------------------------------------------------------


def visible(req: ApiRequest) -> Any:
    """The condition on flavors the caller may see and use."""
    if common.is_admin(req):
        return None
    project = req.context.project_id
    shared = select(FlavorProject.flavor_id).where(FlavorProject.project_id == project)
    return or_(Flavor.is_public.is_(True), Flavor.internal_id.in_(shared))


def find(req: ApiRequest, session: Session, flavor_id: str) -> Flavor:
    """The flavor ``flavor_id`` if the caller may see it (404 otherwise)."""
    query = select(Flavor).where(Flavor.flavorid == flavor_id)
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    flavor = session.scalars(query).first()
    if flavor is None:
        raise errors.NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


# --- list and show ------------------------------------------------------------


def _is_public_filter(req: ApiRequest) -> bool | None:
    """``is_public``: admins may ask for private (false) or all (none)."""
    raw = req.query.get("is_public")
    if raw is None or not common.is_admin(req):
        return True
    lowered = raw.strip().lower()
    if lowered in ("none", "all"):
        return None
    # Nova reads it with oslo's bool_from_string (strict): t/f and y/n too.
    if lowered in ("t", "y"):
        return True
    if lowered in ("f", "n"):
        return False
    return parse_bool(raw, "is_public")


def _list(req: ApiRequest, view: Any) -> Response:
    common.enforce(req, f"{RULE}:flavors:list")
    page = page_params(req.request, common.service(req).options.pagination_max_limit)
    sort_key = req.query.get("sort_key", "flavorid")
    sort_dir = req.query.get("sort_dir", "asc")
    if sort_key not in SORT_KEYS:
        raise errors.BadRequest(f"Invalid sort_key {sort_key!r}.")
    if sort_dir not in ("asc", "desc"):
        raise errors.BadRequest(f"Invalid sort_dir {sort_dir!r}: use asc or desc.")
    column = SORT_KEYS[sort_key]
    order = column.asc() if sort_dir == "asc" else column.desc()
    query = select(Flavor).order_by(order, Flavor.flavorid.asc())
    is_public = _is_public_filter(req)
    condition = visible(req)
    if condition is not None:
        query = query.where(condition)
    elif is_public is not None:
        query = query.where(Flavor.is_public.is_(is_public))
    min_ram = common.query_int(req, "minRam")
    min_disk = common.query_int(req, "minDisk")
    if min_ram is not None:
        query = query.where(Flavor.memory_mb >= min_ram)
    if min_disk is not None:
        query = query.where(Flavor.root_gb >= min_disk)
    with common.service(req).db.session() as session:
        flavors = list(session.scalars(query))
        if page.marker is not None:
            position = next((i for i, f in enumerate(flavors) if f.flavorid == page.marker), None)
            if position is None:
                raise errors.BadRequest(f"Marker {page.marker} could not be found.")
            flavors = flavors[position + 1 :]
        if page.limit is not None:
            flavors = flavors[: page.limit]
        views = [view(req, f) for f in flavors]
    public = common.service(req).options.public_endpoint or None
    return ok(
        {"flavors": views, **collection_links(req.request, "flavors", views, page, "id", public)}
    )


@endpoint
def index(req: ApiRequest) -> Response:
    return _list(req, summary)


@endpoint
def index_detail(req: ApiRequest) -> Response:
    return _list(req, detail)


@endpoint
def show(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:flavors:list")
    with common.service(req).db.session() as session:
        return ok({"flavor": detail(req, find(req, session, req.path_params["flavor_id"]))})


# --- create and delete --------------------------------------------------------

_CREATE_FIELDS = {
    "name",
    "id",
    "ram",
    "vcpus",
    "disk",
    "OS-FLV-EXT-DATA:ephemeral",
    "swap",
    "rxtx_factor",
    "os-flavor-access:is_public",
}


def _integer(values: dict[str, Any], name: str, minimum: int, default: int | None = None) -> int:
    raw = values.get(name, default)
    if raw is None:
        raise errors.BadRequest(f"Invalid input for field/attribute flavor. '{name}' is required.")
    value = raw
    if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
        value = int(raw)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= INT_MAX:
        raise errors.BadRequest(
            f"Invalid input for field/attribute {name}. Value: {raw!r}. It must be an integer "
            f"from {minimum} to {INT_MAX}."
        )
    return value


def _text(values: dict[str, Any], name: str) -> str | None:
    raw = values.get(name)
    if raw is None:
        return None
    if not isinstance(raw, str) or not 1 <= len(raw) <= 255 or not _ID.match(raw):
        raise errors.BadRequest(
            f"Invalid input for field/attribute {name}. Value: {raw!r}. It must be 1 to 255 "
            "letters, digits, spaces, '.', '_' or '-', not starting or ending with a space."
        )
    return raw


def _parse_create(values: dict[str, Any]) -> dict[str, Any]:
    common.reject_unknown(values, _CREATE_FIELDS, "flavor")
    name = _text(values, "name")
    if name is None:
        raise errors.BadRequest("Invalid input for field/attribute flavor. 'name' is required.")
    flavor_id = values.get("id")
    if isinstance(flavor_id, int | float) and not isinstance(flavor_id, bool):
        # JSON numbers are IDs too, kept as their text (Nova: "comes in
        # through json as an integer"), as Tempest's admin tests send them.
        flavor_id = str(flavor_id)
        values = {**values, "id": flavor_id}
    flavor_id = str(uuid.uuid4()) if flavor_id in (None, "auto") else _text(values, "id")
    rxtx = values.get("rxtx_factor", 1.0)
    if isinstance(rxtx, str):
        with contextlib.suppress(ValueError):
            rxtx = float(rxtx)
    if not isinstance(rxtx, int | float) or isinstance(rxtx, bool) or not 0 < rxtx <= 3.4e38:
        raise errors.BadRequest(
            f"Invalid input for field/attribute rxtx_factor. Value: {rxtx!r}. It must be a "
            "number above 0."
        )
    is_public = common.boolean(
        values.get("os-flavor-access:is_public", True), "os-flavor-access:is_public"
    )
    return {
        "flavorid": flavor_id,
        "name": name,
        "memory_mb": _integer(values, "ram", 1),
        "vcpus": _integer(values, "vcpus", 1),
        "root_gb": _integer(values, "disk", 0),
        "ephemeral_gb": _integer(values, "OS-FLV-EXT-DATA:ephemeral", 0, 0),
        "swap": _integer(values, "swap", 0, 0),
        "rxtx_factor": float(rxtx),
        "is_public": is_public,
    }


@endpoint
def create(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-manage:create")
    fields = _parse_create(common.body(req, "flavor"))
    try:
        with common.service(req).db.session() as session:
            for column, label in (("flavorid", "ID"), ("name", "name")):
                taken = select(Flavor.internal_id).where(getattr(Flavor, column) == fields[column])
                if session.scalar(taken) is not None:
                    raise errors.Conflict(f"Flavor with {label} {fields[column]} already exists.")
            flavor = Flavor(**fields)
            session.add(flavor)
            session.flush()
            view = detail(req, flavor)
    except IntegrityError:  # a concurrent create took the ID or the name
        raise errors.Conflict(
            f"Flavor with ID {fields['flavorid']} or name {fields['name']} already exists."
        ) from None
    return ok({"flavor": view})


@endpoint
def delete(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-manage:delete")
    with common.service(req).db.session() as session:
        flavor = session.scalars(
            select(Flavor).where(Flavor.flavorid == req.path_params["flavor_id"])
        ).first()
        if flavor is None:
            raise errors.NotFound(f"Flavor {req.path_params['flavor_id']} could not be found.")
        session.delete(flavor)
    return Response(status_code=202)


# --- access lists -------------------------------------------------------------


def _access_view(flavor: Flavor) -> dict[str, Any]:
    return {
        "flavor_access": [
            {"flavor_id": flavor.flavorid, "tenant_id": p.project_id} for p in flavor.projects
        ]
    }


def _admin_flavor(session: Session, flavor_id: str) -> Flavor:
    flavor = session.scalars(select(Flavor).where(Flavor.flavorid == flavor_id)).first()
    if flavor is None:
        raise errors.NotFound(f"Flavor {flavor_id} could not be found.")
    return flavor


@endpoint
def access_list(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-access")
    with common.service(req).db.session() as session:
        flavor = _admin_flavor(session, req.path_params["flavor_id"])
        if flavor.is_public:
            raise errors.NotFound("Access list not available for public flavors.")
        return ok(_access_view(flavor))


def _tenant(action: Any, name: str) -> str:
    if not isinstance(action, dict) or set(action) != {"tenant"}:
        raise errors.BadRequest(f"Invalid input for field/attribute {name}: give only 'tenant'.")
    tenant = action["tenant"]
    if not isinstance(tenant, str) or not 1 <= len(tenant) <= 255:
        raise errors.BadRequest(f"Invalid input for field/attribute tenant. Value: {tenant!r}.")
    return tenant


@endpoint
def action(req: ApiRequest) -> Response:
    document = req.json()
    if not isinstance(document, dict) or len(document) != 1:
        raise errors.BadRequest("The request body must name exactly one action.")
    ((name, argument),) = document.items()
    if name not in ("addTenantAccess", "removeTenantAccess"):
        raise errors.BadRequest(f"There is no such action: {name}.")
    rule = "add_tenant_access" if name == "addTenantAccess" else "remove_tenant_access"
    common.enforce(req, f"{RULE}:os-flavor-access:{rule}")
    tenant = _tenant(argument, name)
    with common.service(req).db.session() as session:
        flavor = _admin_flavor(session, req.path_params["flavor_id"])
        if flavor.is_public:
            raise errors.Conflict("Can not add access to a public flavor.")
        current = {p.project_id: p for p in flavor.projects}
        if name == "addTenantAccess":
            if tenant in current:
                raise errors.Conflict(
                    f"Flavor access already exists for flavor {flavor.flavorid} and project "
                    f"{tenant} combination."
                )
            flavor.projects.append(FlavorProject(project_id=tenant))
        else:
            if tenant not in current:
                raise errors.NotFound(
                    f"Flavor access not found for {flavor.flavorid} / {tenant} combination."
                )
            flavor.projects.remove(current[tenant])
        session.flush()
        session.refresh(flavor)
        return ok(_access_view(flavor))


# --- extra specs --------------------------------------------------------------


def _spec_value(key: str, value: Any) -> str:
    if not isinstance(key, str) or not _SPEC_KEY.match(key):
        raise errors.BadRequest(
            f"Invalid input for field/attribute extra_specs. Key {key!r} must be 1 to 255 "
            "letters, digits, spaces, '-', '_', ':' or '.'."
        )
    if isinstance(value, (bool, int | float)):
        value = str(value)
    if not isinstance(value, str) or len(value) > 255:
        raise errors.BadRequest(
            f"Invalid input for field/attribute {key}. Value: {value!r}. It must be a string "
            "of at most 255 characters."
        )
    return value


def _specs(flavor: Flavor) -> dict[str, str]:
    return {s.key: s.value for s in flavor.extra_specs}


@endpoint
def specs_index(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-extra-specs:index")
    with common.service(req).db.session() as session:
        return ok({"extra_specs": _specs(find(req, session, req.path_params["flavor_id"]))})


@endpoint
def specs_show(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-extra-specs:index")
    key = req.path_params["key"]
    with common.service(req).db.session() as session:
        specs = _specs(find(req, session, req.path_params["flavor_id"]))
    if key not in specs:
        raise errors.NotFound(
            f"Flavor {req.path_params['flavor_id']} has no extra specs with key {key}."
        )
    return ok({key: specs[key]})


def _set_specs(session: Session, flavor: Flavor, specs: dict[str, str]) -> None:
    current = {s.key: s for s in flavor.extra_specs}
    for key, value in specs.items():
        if key in current:
            current[key].value = value
        else:
            flavor.extra_specs.append(FlavorExtraSpec(key=key, value=value))
    session.flush()


@endpoint
def specs_create(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-extra-specs:create")
    document = req.json()
    if not isinstance(document, dict) or set(document) != {"extra_specs"}:
        raise errors.BadRequest("The request body must be an object with the key 'extra_specs'.")
    raw = document["extra_specs"]
    if not isinstance(raw, dict) or not raw:
        raise errors.BadRequest("extra_specs must be a non-empty object.")
    specs = {key: _spec_value(key, value) for key, value in raw.items()}
    with common.service(req).db.session() as session:
        _set_specs(session, _admin_flavor(session, req.path_params["flavor_id"]), specs)
    return ok({"extra_specs": specs})


@endpoint
def specs_update(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-extra-specs:update")
    key = req.path_params["key"]
    document = req.json()
    if not isinstance(document, dict) or len(document) != 1:
        raise errors.BadRequest("The request body must hold exactly one extra spec.")
    if key not in document:
        raise errors.BadRequest("The key in the request body does not match the URI.")
    value = _spec_value(key, document[key])
    with common.service(req).db.session() as session:
        _set_specs(session, _admin_flavor(session, req.path_params["flavor_id"]), {key: value})
    return ok({key: value})


@endpoint
def specs_delete(req: ApiRequest) -> Response:
    common.enforce(req, f"{RULE}:os-flavor-extra-specs:delete")
    key = req.path_params["key"]
    with common.service(req).db.session() as session:
        flavor = _admin_flavor(session, req.path_params["flavor_id"])
        spec = next((s for s in flavor.extra_specs if s.key == key), None)
        if spec is None:
            raise errors.NotFound(f"Flavor {flavor.flavorid} has no extra specs with key {key}.")
        flavor.extra_specs.remove(spec)
    return Response(status_code=200)


ROUTES = [
    Route("/v2.1/flavors", index, methods=["GET"]),
    Route("/v2.1/flavors", create, methods=["POST"]),
    Route("/v2.1/flavors/detail", index_detail, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}", show, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}", delete, methods=["DELETE"]),
    Route("/v2.1/flavors/{flavor_id}/action", action, methods=["POST"]),
    Route("/v2.1/flavors/{flavor_id}/os-flavor-access", access_list, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs", specs_index, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs", specs_create, methods=["POST"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", specs_show, methods=["GET"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", specs_update, methods=["PUT"]),
    Route("/v2.1/flavors/{flavor_id}/os-extra_specs/{key}", specs_delete, methods=["DELETE"]),
]
