"""Tags on every resource: ``/v2.0/<collection>/<id>/tags[/<tag>]``.

Replacing the set (``PUT .../tags``), adding or removing one tag, listing
and clearing them, with the resource's own visibility and update rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import no_content, ok
from stratus.network.api import (
    common,
    floatingips,
    networks,
    ports,
    routers,
    security_groups,
    subnets,
)
from stratus.network.model import Network, Tag

Getter = Callable[[ApiRequest, Session, str], Any]

# collection -> (how the caller finds one, the update rule)
RESOURCES: dict[str, tuple[Getter, str]] = {
    "networks": (networks.get_network, "network:update_network"),
    "subnets": (subnets.get_subnet, "network:update_subnet"),
    "ports": (ports.get_port, "network:update_port"),
    "security-groups": (security_groups.get_group, "network:update_security_group"),
    "routers": (routers.get_router, "network:update_router"),
    "floatingips": (floatingips.get_fip, "network:update_floatingip"),
}


def _resource(req: ApiRequest, session: Session, *, change: bool) -> str:
    collection = req.path_params["collection"]
    if collection not in RESOURCES:
        raise errors.NotFound(f"The resource /v2.0/{collection} could not be found.")
    getter, rule = RESOURCES[collection]
    row = getter(req, session, req.path_params["resource_id"])
    if change:
        target = {"project_id": getattr(row, "project_id", None)}
        if hasattr(row, "network_id") and not isinstance(row, Network):
            owner = session.get(Network, row.network_id)
            target["network_owner"] = owner.project_id if owner else None
        common.enforce(req, rule, target)
    return str(row.id)


def _check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > 255 or "," in tag or "/" in tag:
        raise errors.BadRequest(
            f"Invalid input for tags: {tag!r} is not a tag (1 to 255 characters, no ',' or '/').",
            kind="InvalidInput",
        )
    return tag


def _current(session: Session, resource_id: str) -> list[str]:
    return common.tags_of(session, [resource_id])[resource_id]


def _touch(req: ApiRequest, session: Session) -> None:
    getter, _rule = RESOURCES[req.path_params["collection"]]
    common.touch(getter(req, session, req.path_params["resource_id"]))


@endpoint
def list_tags(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        resource_id = _resource(req, session, change=False)
        return ok({"tags": _current(session, resource_id)})


@endpoint
def replace_tags(req: ApiRequest) -> Response:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("tags"), list):
        raise errors.BadRequest('The body must be {"tags": [...]}.')
    tags = sorted({_check_tag(t) for t in body["tags"]})
    if len(tags) > common.MAX_TAGS:
        raise errors.BadRequest(f"A resource may have at most {common.MAX_TAGS} tags.")
    with common.service(req).db.session() as session:
        resource_id = _resource(req, session, change=True)
        session.execute(delete(Tag).where(Tag.resource_id == resource_id))
        session.add_all(Tag(resource_id=resource_id, tag=t) for t in tags)
        _touch(req, session)
    return ok({"tags": tags})


@endpoint
def add_tag(req: ApiRequest) -> Response:
    tag = _check_tag(req.path_params["tag"])
    with common.service(req).db.session() as session:
        resource_id = _resource(req, session, change=True)
        if session.get(Tag, (resource_id, tag)) is None:
            if len(_current(session, resource_id)) >= common.MAX_TAGS:
                raise errors.BadRequest(f"A resource may have at most {common.MAX_TAGS} tags.")
            session.add(Tag(resource_id=resource_id, tag=tag))
            _touch(req, session)
    # Neutron answers 201 (Created) here, with no body.
    return Response(status_code=201)


@endpoint
def check_tag(req: ApiRequest) -> Response:
    tag = req.path_params["tag"]
    with common.service(req).db.session() as session:
        resource_id = _resource(req, session, change=False)
        found = session.scalar(select(Tag).where(Tag.resource_id == resource_id, Tag.tag == tag))
    if found is None:
        raise errors.NotFound(f"Tag {tag} could not be found.", kind="TagNotFound")
    return no_content()


@endpoint
def remove_tag(req: ApiRequest) -> Response:
    tag = req.path_params["tag"]
    with common.service(req).db.session() as session:
        resource_id = _resource(req, session, change=True)
        row = session.get(Tag, (resource_id, tag))
        if row is None:
            raise errors.NotFound(f"Tag {tag} could not be found.", kind="TagNotFound")
        session.delete(row)
        _touch(req, session)
    return no_content()


@endpoint
def clear_tags(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        resource_id = _resource(req, session, change=True)
        session.execute(delete(Tag).where(Tag.resource_id == resource_id))
        _touch(req, session)
    return no_content()


ROUTES = [
    Route("/v2.0/{collection}/{resource_id}/tags", list_tags, methods=["GET"]),
    Route("/v2.0/{collection}/{resource_id}/tags", replace_tags, methods=["PUT"]),
    Route("/v2.0/{collection}/{resource_id}/tags", clear_tags, methods=["DELETE"]),
    Route("/v2.0/{collection}/{resource_id}/tags/{tag}", add_tag, methods=["PUT"]),
    Route("/v2.0/{collection}/{resource_id}/tags/{tag}", check_tag, methods=["GET"]),
    Route("/v2.0/{collection}/{resource_id}/tags/{tag}", remove_tag, methods=["DELETE"]),
]
