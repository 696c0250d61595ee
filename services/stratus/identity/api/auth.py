"""``/v3/auth``: issue, validate, check and revoke tokens; the caller's view.

The token travels in ``X-Subject-Token``; the body carries its contents.
Validation of another token needs the caller's own valid token in
``X-Auth-Token`` (services validate users' tokens this way).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import authentication, model
from stratus.identity.api import common
from stratus.identity.assignments import effective_roles
from stratus.identity.catalog import build_catalog
from stratus.identity.revocation import revoke


def _flag(req: ApiRequest, name: str) -> bool:
    return name in req.query and common.parse_bool(req.query[name], name)


@endpoint(public=True)
def issue_token(req: ApiRequest) -> Response:
    body = req.json()
    if not isinstance(body, dict) or not isinstance(body.get("auth"), dict):
        raise errors.BadRequest("The request needs an 'auth' object.")
    svc = common.service(req)
    with svc.db.session() as session:
        issued = authentication.issue(
            svc, session, body["auth"], catalog=not _flag(req, "nocatalog")
        )
    return common.ok({"token": issued.body}, 201, {"X-Subject-Token": issued.token})


def _subject(req: ApiRequest) -> str:
    subject = req.headers.get("x-subject-token")
    if not subject:
        raise errors.BadRequest("The X-Subject-Token header is required.")
    return subject


def _validated_subject(req: ApiRequest) -> tuple[str, dict[str, Any]]:
    req.context  # noqa: B018 - the caller must hold a valid token first
    subject = _subject(req)
    svc = common.service(req)
    with svc.db.session() as session:
        body = authentication.validate(
            svc,
            session,
            subject,
            catalog=not _flag(req, "nocatalog"),
            allow_expired=_flag(req, "allow_expired"),
        )
    common.enforce(req, "identity:validate_token", {"token": {"user_id": body["user"]["id"]}})
    return subject, body


@endpoint
def validate_token(req: ApiRequest) -> Response:
    subject, body = _validated_subject(req)
    return common.ok({"token": body}, 200, {"X-Subject-Token": subject})


@endpoint
def check_token(req: ApiRequest) -> Response:
    subject, _ = _validated_subject(req)
    return Response(status_code=200, headers={"X-Subject-Token": subject})


@endpoint
def revoke_token(req: ApiRequest) -> Response:
    req.context  # noqa: B018
    subject = _subject(req)
    svc = common.service(req)
    with svc.db.session() as session:
        payload = authentication.decode(svc, subject)
        body = authentication.build_body(svc, session, payload, catalog=False)
        common.enforce(req, "identity:revoke_token", {"token": {"user_id": body["user"]["id"]}})
        revoke(session, audit_id=payload.audit_id)
    return common.no_content()


@endpoint
def auth_catalog(req: ApiRequest) -> Response:
    context = req.context
    if not (context.project_id or context.domain_id or context.system_scope):
        raise errors.Forbidden("An unscoped token has no catalog.")
    with common.service(req).db.session() as session:
        catalog = build_catalog(session, context.user_id, context.project_id)
    return common.ok({"catalog": catalog, "links": common.self_links(req, "/v3/auth/catalog")})


@endpoint
def auth_projects(req: ApiRequest) -> Response:
    """Projects the caller may scope to (any role, direct, group or inherited)."""
    context = req.context
    from stratus.identity.api.projects import view as project_view

    with common.service(req).db.session() as session:
        projects = session.scalars(
            select(model.Project).where(model.Project.enabled.is_(True)).order_by(model.Project.id)
        ).all()
        enabled_domains = set(
            session.scalars(select(model.Domain.id).where(model.Domain.enabled.is_(True)))
        )
        usable = [
            p
            for p in projects
            if p.domain_id in enabled_domains
            and effective_roles(session, context.user_id, project=p)
        ]
        return common.list_response(
            req, "projects", [project_view(req, session, p) for p in usable]
        )


@endpoint
def auth_domains(req: ApiRequest) -> Response:
    context = req.context
    from stratus.identity.api.domains import view as domain_view

    with common.service(req).db.session() as session:
        domains = session.scalars(
            select(model.Domain).where(model.Domain.enabled.is_(True)).order_by(model.Domain.id)
        ).all()
        usable = [d for d in domains if effective_roles(session, context.user_id, domain_id=d.id)]
        return common.list_response(req, "domains", [domain_view(req, d) for d in usable])


@endpoint
def auth_system(req: ApiRequest) -> Response:
    context = req.context
    with common.service(req).db.session() as session:
        has_system = bool(effective_roles(session, context.user_id, system=True))
    return common.ok(
        {
            "system": [{"all": True}] if has_system else [],
            "links": common.self_links(req, "/v3/auth/system"),
        }
    )


ROUTES = [
    Route("/v3/auth/tokens", issue_token, methods=["POST"]),
    # HEAD first: a GET route would also answer HEAD.
    Route("/v3/auth/tokens", check_token, methods=["HEAD"]),
    Route("/v3/auth/tokens", validate_token, methods=["GET"]),
    Route("/v3/auth/tokens", revoke_token, methods=["DELETE"]),
    Route("/v3/auth/catalog", auth_catalog, methods=["GET"]),
    Route("/v3/auth/projects", auth_projects, methods=["GET"]),
    Route("/v3/auth/domains", auth_domains, methods=["GET"]),
    Route("/v3/auth/system", auth_system, methods=["GET"]),
    Route("/v3/OS-FEDERATION/projects", auth_projects, methods=["GET"]),
    Route("/v3/OS-FEDERATION/domains", auth_domains, methods=["GET"]),
]
