"""``/v3/projects``: projects in a hierarchy, with tags.

A project belongs to a domain and optionally to a parent project of the same
domain. A project with children cannot be deleted, and one cannot be enabled
under a disabled parent nor disabled with enabled children, as in Keystone.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model
from stratus.identity.api import common
from stratus.identity.assignments import project_ancestors
from stratus.identity.revocation import end_trusts, revoke

TAG = {"type": "string", "minLength": 1, "maxLength": 255, "pattern": r"^[^,/]*$"}
# Keystone limits project (and domain) names to 64 characters.
NAME = {**common.NAME, "maxLength": 64}
_FIELDS = {
    "name": NAME,
    "description": common.DESCRIPTION,
    "enabled": common.BOOLEAN,
    "domain_id": common.NULLABLE_ID,
    "parent_id": common.NULLABLE_ID,
    "is_domain": {"type": "boolean", "enum": [False]},
    "tags": {"type": "array", "items": TAG, "maxItems": 80, "uniqueItems": True},
    "options": {"type": "object"},
}
CREATE = common.obj_schema(_FIELDS, required=["name"])
UPDATE = common.obj_schema(
    {
        "name": NAME,
        "description": common.DESCRIPTION,
        "enabled": common.BOOLEAN,
        "tags": _FIELDS["tags"],
        "options": {"type": "object"},
        "is_domain": _FIELDS["is_domain"],
    }
)
TAGS = {"type": "object", "properties": {"tags": _FIELDS["tags"]}, "required": ["tags"]}


def tags_of(session: Session, project_id: str) -> list[str]:
    return sorted(
        session.scalars(
            select(model.ProjectTag.name).where(model.ProjectTag.project_id == project_id)
        )
    )


def view(req: ApiRequest, session: Session, project: model.Project) -> dict[str, Any]:
    return {
        **(project.extra or {}),
        "id": project.id,
        "name": project.name,
        "domain_id": project.domain_id,
        "parent_id": project.parent_id or project.domain_id,
        "description": project.description,
        "enabled": project.enabled,
        "is_domain": False,
        "tags": tags_of(session, project.id),
        "options": {},
        "links": common.self_links(req, f"/v3/projects/{project.id}"),
    }


def _target(project: model.Project) -> dict[str, Any]:
    return {"project_id": project.id, "domain_id": project.domain_id}


def _set_tags(session: Session, project_id: str, tags: list[str]) -> None:
    session.execute(delete(model.ProjectTag).where(model.ProjectTag.project_id == project_id))
    session.add_all(model.ProjectTag(project_id=project_id, name=t) for t in dict.fromkeys(tags))


@endpoint
def create_project(req: ApiRequest) -> Response:
    body = common.validate(req.json(), CREATE, "project")
    context = req.context
    svc = common.service(req)
    with svc.db.session() as session:
        parent: model.Project | None = None
        parent_id = body.get("parent_id")
        domain_id = body.get("domain_id")
        if parent_id and parent_id != domain_id:
            parent = session.get(model.Project, parent_id)
            if parent is None:
                if session.get(model.Domain, parent_id) is None:
                    raise errors.NotFound(f"Could not find project: {parent_id}.")
                domain_id = domain_id or parent_id
            else:
                domain_id = domain_id or parent.domain_id
                if parent.domain_id != domain_id:
                    raise errors.BadRequest("A project's parent must be in the same domain.")
        domain_id = domain_id or context.domain_id or context.project_domain_id or "default"
        common.enforce(
            req,
            "identity:create_project",
            {"project": body, "domain_id": domain_id, "project_id": None},
        )
        domain = session.get(model.Domain, domain_id)
        if domain is None:
            raise errors.NotFound(f"Could not find domain: {domain_id}.")
        if parent is not None and not parent.enabled and body.get("enabled", True):
            raise errors.Forbidden("Cannot create an enabled project under a disabled parent.")
        if session.scalar(
            select(model.Project.id).where(
                model.Project.domain_id == domain_id, model.Project.name == body["name"]
            )
        ):
            raise errors.Conflict(
                f"Conflict occurred attempting to store project - "
                f"Duplicate entry: a project named {body['name']} "
                f"exists in domain {domain_id}."
            )
        project = model.Project(
            id=model.new_id(),
            name=body["name"],
            domain_id=domain_id,
            parent_id=parent.id if parent else None,
            description=body.get("description") or "",
            enabled=body.get("enabled", True),
            extra=common.extra_fields(body, _FIELDS),
        )
        session.add(project)
        session.flush()
        _set_tags(session, project.id, body.get("tags") or [])
        session.flush()
        return common.ok({"project": view(req, session, project)}, 201)


@endpoint
def list_projects(req: ApiRequest) -> Response:
    domain_filter = req.query.get("domain_id")
    common.enforce(req, "identity:list_projects", {"domain_id": domain_filter})
    query = common.apply_filters(
        req,
        select(model.Project),
        {
            "name": model.Project.name,
            "enabled": model.Project.enabled,
            "domain_id": model.Project.domain_id,
            "parent_id": model.Project.parent_id,
        },
    )
    if "is_domain" in req.query and common.parse_bool(req.query["is_domain"], "is_domain"):
        query = query.where(model.Project.id.is_(None))
    for clause in common.tag_filters(req, model.ProjectTag, model.Project.id):
        query = query.where(clause)
    with common.service(req).db.session() as session:
        return common.list_page(
            req, session, query, model.Project.id, "projects", lambda p: view(req, session, p)
        )


def _load(req: ApiRequest, session: Session, rule: str) -> model.Project:
    project_id = req.path_params["project_id"]
    project = session.get(model.Project, project_id)
    if project is None:
        # Only those allowed to see any project learn that it does not exist.
        common.enforce(req, rule, {"project_id": project_id, "domain_id": None})
        raise errors.NotFound(f"Could not find project: {project_id}.")
    common.enforce(req, rule, _target(project))
    return project


@endpoint
def get_project(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:get_project")
        body = view(req, session, project)
        if "parents_as_ids" in req.query or "parents_as_list" in req.query:
            ancestors = project_ancestors(session, project)
            if "parents_as_list" in req.query:
                body["parents"] = [
                    {"project": view(req, session, p)}
                    for p in (session.get(model.Project, a) for a in ancestors)
                    if p
                ]
            else:
                nested: Any = None
                for ancestor in reversed(ancestors):
                    nested = {ancestor: nested}
                body["parents"] = nested
        if "subtree_as_ids" in req.query or "subtree_as_list" in req.query:
            children = _descendants(session, project.id)
            if "subtree_as_list" in req.query:
                body["subtree"] = [{"project": view(req, session, p)} for p in children]
            else:
                body["subtree"] = {p.id: None for p in children} or None
        return common.ok({"project": body})


def _descendants(session: Session, project_id: str) -> list[model.Project]:
    found: list[model.Project] = []
    frontier = [project_id]
    while frontier:
        children = list(
            session.scalars(select(model.Project).where(model.Project.parent_id.in_(frontier)))
        )
        found.extend(children)
        frontier = [c.id for c in children]
    return found


@endpoint
def update_project(req: ApiRequest) -> Response:
    raw = req.json()
    if isinstance(raw, dict) and isinstance(raw.get("project"), dict):
        for fixed in ("domain_id", "parent_id", "id"):
            if fixed in raw["project"]:
                raise errors.BadRequest(f"The project's {fixed} cannot be changed.")
    body = common.validate(raw, UPDATE, "project")
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:update_project")
        if "name" in body and body["name"] != project.name:
            if session.scalar(
                select(model.Project.id).where(
                    model.Project.domain_id == project.domain_id, model.Project.name == body["name"]
                )
            ):
                raise errors.Conflict(
                    f"A project named {body['name']} already exists in domain {project.domain_id}."
                )
            project.name = body["name"]
        if "description" in body:
            project.description = body["description"] or ""
        if "enabled" in body and body["enabled"] != project.enabled:
            if body["enabled"] and project.parent_id:
                parent = session.get(model.Project, project.parent_id)
                if parent is not None and not parent.enabled:
                    raise errors.Forbidden("Cannot enable a project under a disabled parent.")
            if not body["enabled"]:
                if any(c.enabled for c in _descendants(session, project.id)):
                    raise errors.Forbidden("Cannot disable a project with enabled children.")
                revoke(session, project_id=project.id)
            project.enabled = body["enabled"]
        if "tags" in body:
            _set_tags(session, project.id, body["tags"])
        extra = common.extra_fields(body, _FIELDS)
        if extra:
            project.extra = {**(project.extra or {}), **extra}
        session.flush()
        return common.ok({"project": view(req, session, project)})


@endpoint
def delete_project(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:delete_project")
        if session.scalar(select(model.Project.id).where(model.Project.parent_id == project.id)):
            raise errors.Forbidden(
                "Cannot delete a project that has children; delete its children first."
            )
        session.execute(delete(model.Assignment).where(model.Assignment.target_id == project.id))
        session.execute(delete(model.ProjectTag).where(model.ProjectTag.project_id == project.id))
        session.execute(
            delete(model.ApplicationCredential).where(
                model.ApplicationCredential.project_id == project.id
            )
        )
        end_trusts(session, model.Trust.project_id == project.id)
        revoke(session, project_id=project.id)
        session.delete(project)
    return common.no_content()


# --- tags -------------------------------------------------------------------------


@endpoint
def list_tags(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:get_project_tag")
        return common.ok({"tags": tags_of(session, project.id)})


@endpoint
def replace_tags(req: ApiRequest) -> Response:
    body = req.json()
    try:
        import jsonschema

        jsonschema.validate(body, TAGS)
    except jsonschema.ValidationError as exc:
        raise errors.BadRequest(f"Invalid tags: {exc.message}") from None
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:update_project_tags")
        _set_tags(session, project.id, body["tags"])
        session.flush()
        return common.ok(
            {
                "tags": tags_of(session, project.id),
                "links": common.self_links(req, f"/v3/projects/{project.id}/tags"),
            }
        )


@endpoint
def clear_tags(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:update_project_tags")
        _set_tags(session, project.id, [])
    return common.no_content()


@endpoint
def check_tag(req: ApiRequest) -> Response:
    tag = req.path_params["tag"]
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:get_project_tag")
        if tag not in tags_of(session, project.id):
            raise errors.NotFound(f"Could not find tag: {tag}.")
    return common.no_content()


@endpoint
def add_tag(req: ApiRequest) -> Response:
    tag = req.path_params["tag"]
    if not tag or len(tag) > 255 or "," in tag or "/" in tag:
        raise errors.BadRequest("A tag is 1 to 255 characters without ',' or '/'.")
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:update_project_tags")
        tags = tags_of(session, project.id)
        if tag not in tags:
            if len(tags) >= 80:
                raise errors.BadRequest("A project has at most 80 tags.")
            session.add(model.ProjectTag(project_id=project.id, name=tag))
    location = common.url(req, f"/v3/projects/{project.id}/tags/{tag}")
    return Response(status_code=201, headers={"Location": location})


@endpoint
def remove_tag(req: ApiRequest) -> Response:
    tag = req.path_params["tag"]
    with common.service(req).db.session() as session:
        project = _load(req, session, "identity:update_project_tags")
        deleted = session.execute(
            delete(model.ProjectTag).where(
                model.ProjectTag.project_id == project.id, model.ProjectTag.name == tag
            )
        )
        if not deleted.rowcount:  # type: ignore[attr-defined]
            raise errors.NotFound(f"Could not find tag: {tag}.")
    return common.no_content()


ROUTES = [
    Route("/v3/projects", create_project, methods=["POST"]),
    Route("/v3/projects", list_projects, methods=["GET"]),
    Route("/v3/projects/{project_id}", get_project, methods=["GET"]),
    Route("/v3/projects/{project_id}", update_project, methods=["PATCH"]),
    Route("/v3/projects/{project_id}", delete_project, methods=["DELETE"]),
    Route("/v3/projects/{project_id}/tags", list_tags, methods=["GET"]),
    Route("/v3/projects/{project_id}/tags", replace_tags, methods=["PUT"]),
    Route("/v3/projects/{project_id}/tags", clear_tags, methods=["DELETE"]),
    Route("/v3/projects/{project_id}/tags/{tag}", check_tag, methods=["GET", "HEAD"]),
    Route("/v3/projects/{project_id}/tags/{tag}", add_tag, methods=["PUT"]),
    Route("/v3/projects/{project_id}/tags/{tag}", remove_tag, methods=["DELETE"]),
]
