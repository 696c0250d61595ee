"""``/v3/roles`` and ``/v3/role_inferences``: roles and the roles they imply.

A role is global, or specific to one domain (``domain_id``); names are unique
within a domain (global roles share one namespace). A plain list shows the
global roles only; ``?domain_id=`` shows that domain's roles. Domain-specific
roles never reach a token themselves: they exist to imply global roles.

Implied roles follow Keystone's rules: no role may imply one of the
prohibited roles (``admin``), a global role may not imply a domain-specific
one, and a rule that would close a cycle is refused. Deleting a role removes
its assignments and implication rules and revokes the tokens of those who
held it. A role with the ``immutable`` option can be neither changed nor
deleted until that option is cleared.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.identity import model
from stratus.identity.api import common
from stratus.identity.assignments import expand_implied

NULL_DOMAIN = "<<null>>"
# Keystone's [assignment] prohibited_implied_role default.
PROHIBITED_IMPLIED_ROLES = ("admin",)

OPTIONS = {
    "type": "object",
    "properties": {"immutable": {"type": ["boolean", "null"]}},
    "additionalProperties": False,
}
_FIELDS = {
    "name": common.NAME,
    "description": common.DESCRIPTION,
    "domain_id": common.NULLABLE_ID,
    "options": OPTIONS,
}
CREATE = common.obj_schema(_FIELDS, required=["name"])
UPDATE = {**common.obj_schema({**_FIELDS, "id": common.ID_STRING}), "minProperties": 1}


def domain_of(role: model.Role) -> str | None:
    return None if role.domain_id == NULL_DOMAIN else role.domain_id


def _options(role: model.Role) -> dict[str, Any]:
    return dict((role.extra or {}).get("options") or {})


def view(req: ApiRequest, role: model.Role) -> dict[str, Any]:
    return {
        **{k: v for k, v in (role.extra or {}).items() if k != "options"},
        "id": role.id,
        "name": role.name,
        "domain_id": domain_of(role),
        "description": role.description or None,
        "options": _options(role),
        "links": common.self_links(req, f"/v3/roles/{role.id}"),
    }


def role_target(role: model.Role) -> dict[str, Any]:
    domain_id = domain_of(role)
    return {
        "role_id": role.id,
        "domain_id": domain_id,
        "role": {"id": role.id, "name": role.name, "domain_id": domain_id},
    }


def _load(req: ApiRequest, session: Session, action: str) -> model.Role:
    """The role of the path, checked against ``identity:<action>_role`` or its domain rule."""
    role_id = req.path_params["role_id"]
    role = session.get(model.Role, role_id)
    if role is None:
        common.enforce(req, f"identity:{action}_role", {"role_id": role_id, "domain_id": None})
        raise errors.NotFound(f"Could not find role: {role_id}.")
    if domain_of(role) is None:
        common.enforce(req, f"identity:{action}_role", role_target(role))
    else:
        common.enforce(req, f"identity:{action}_domain_role", role_target(role))
    return role


def _duplicate(session: Session, domain_id: str, name: str) -> bool:
    return bool(
        session.scalar(
            select(model.Role.id).where(model.Role.domain_id == domain_id, model.Role.name == name)
        )
    )


def _conflict(name: str) -> errors.Conflict:
    return errors.Conflict(
        f"Conflict occurred attempting to store role - Duplicate entry found with name {name}."
    )


def _flush(session: Session, name: str) -> None:
    """Write now; a name taken at the same moment by another request is a 409."""
    try:
        session.flush()
    except IntegrityError:
        raise _conflict(name) from None


def _clean_options(options: dict[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (options or {}).items() if v is not None}


@endpoint
def create_role(req: ApiRequest) -> Response:
    body = common.validate(req.json(), CREATE, "role")
    domain_id = body.get("domain_id")
    if domain_id:
        common.enforce(req, "identity:create_domain_role", {"role": body, "domain_id": domain_id})
    else:
        common.enforce(req, "identity:create_role", {"role": body, "domain_id": None})
    with common.service(req).db.session() as session:
        if domain_id and session.get(model.Domain, domain_id) is None:
            raise errors.NotFound(f"Could not find domain: {domain_id}.")
        stored_domain = domain_id or NULL_DOMAIN
        if _duplicate(session, stored_domain, body["name"]):
            raise _conflict(body["name"])
        extra = common.extra_fields(body, _FIELDS)
        options = _clean_options(body.get("options"))
        if options:
            extra["options"] = options
        role = model.Role(
            id=model.new_id(),
            name=body["name"],
            domain_id=stored_domain,
            description=body.get("description") or "",
            extra=extra,
        )
        session.add(role)
        _flush(session, role.name)
        return common.ok({"role": view(req, role)}, 201)


@endpoint
def list_roles(req: ApiRequest) -> Response:
    domain_id = req.query.get("domain_id")
    if domain_id:
        common.enforce(req, "identity:list_domain_roles", {"domain_id": domain_id})
    else:
        common.enforce(req, "identity:list_roles", {"domain_id": None})
    query = common.apply_filters(req, select(model.Role), {"name": model.Role.name}, booleans=())
    # Keystone shows global roles unless a domain is asked for.
    query = query.where(model.Role.domain_id == (domain_id or NULL_DOMAIN))
    with common.service(req).db.session() as session:
        return common.list_page(req, session, query, model.Role.id, "roles", lambda r: view(req, r))


@endpoint
def get_role(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        return common.ok({"role": view(req, _load(req, session, "get"))})


@endpoint
def update_role(req: ApiRequest) -> Response:
    body = common.validate(req.json(), UPDATE, "role")
    with common.service(req).db.session() as session:
        role = _load(req, session, "update")
        if body.get("id", role.id) != role.id:
            raise errors.BadRequest("The role's ID cannot be changed.")
        if "domain_id" in body and body["domain_id"] != domain_of(role):
            raise errors.BadRequest("Update of `domain_id` is not allowed.")
        options = _options(role)
        if options.get("immutable"):
            changes = set(body) - {"id", "domain_id", "options"}
            clears = (body.get("options") or {}).get("immutable") in (False, None)
            if changes or "options" not in body or not clears:
                raise errors.Forbidden(
                    f"Resource role with id {role.id} is immutable; "
                    "clear its immutable option first."
                )
        if "name" in body and body["name"] != role.name:
            if _duplicate(session, role.domain_id, body["name"]):
                raise _conflict(body["name"])
            role.name = body["name"]
        if "description" in body:
            role.description = body["description"] or ""
        extra = {k: v for k, v in (role.extra or {}).items() if k != "options"}
        extra.update(common.extra_fields(body, _FIELDS))
        if "options" in body:
            options = _clean_options({**options, **(body["options"] or {})})
        if options:
            extra["options"] = options
        role.extra = extra
        _flush(session, role.name)
        return common.ok({"role": view(req, role)})


@endpoint
def delete_role(req: ApiRequest) -> Response:
    from stratus.identity.api.role_assignments import revoke_assignment

    with common.service(req).db.session() as session:
        role = _load(req, session, "delete")
        if _options(role).get("immutable"):
            raise errors.Forbidden(
                f"Resource role with id {role.id} is immutable; clear its immutable option first."
            )
        held = list(
            session.scalars(select(model.Assignment).where(model.Assignment.role_id == role.id))
        )
        for assignment in held:
            revoke_assignment(session, assignment)
        session.execute(delete(model.Assignment).where(model.Assignment.role_id == role.id))
        session.execute(
            delete(model.ImpliedRole).where(
                or_(
                    model.ImpliedRole.prior_role_id == role.id,
                    model.ImpliedRole.implied_role_id == role.id,
                )
            )
        )
        session.delete(role)
    return common.no_content()


# --- implied roles --------------------------------------------------------------------


def _role_ref(req: ApiRequest, role: model.Role) -> dict[str, Any]:
    return {
        "id": role.id,
        "links": common.self_links(req, f"/v3/roles/{role.id}"),
        "name": role.name,
        "description": role.description or None,
    }


def _implication_roles(
    req: ApiRequest, session: Session, rule: str
) -> tuple[model.Role, model.Role | None]:
    """Prior (and implied, when in the path) roles, after the policy check."""
    prior_id = req.path_params["prior_role_id"]
    implied_id = req.path_params.get("implied_role_id")
    prior = session.get(model.Role, prior_id)
    implied = session.get(model.Role, implied_id) if implied_id else None
    target: dict[str, Any] = {"domain_id": None}
    if prior is not None:
        target["prior_role"] = role_target(prior)["role"]
    if implied is not None:
        target["implied_role"] = role_target(implied)["role"]
    common.enforce(req, rule, target)
    if prior is None:
        raise errors.NotFound(f"Could not find role: {prior_id}.")
    if implied_id and implied is None:
        raise errors.NotFound(f"Could not find role: {implied_id}.")
    return prior, implied


def _rule_exists(session: Session, prior_id: str, implied_id: str) -> bool:
    return session.get(model.ImpliedRole, (prior_id, implied_id)) is not None


def _inference(req: ApiRequest, prior: model.Role, implied: model.Role) -> dict[str, Any]:
    return {
        "role_inference": {"prior_role": _role_ref(req, prior), "implies": _role_ref(req, implied)},
        "links": common.self_links(req, f"/v3/roles/{prior.id}/implies/{implied.id}"),
    }


@endpoint
def create_implied_role(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        prior, implied = _implication_roles(req, session, "identity:create_implied_role")
        assert implied is not None
        if implied.name in PROHIBITED_IMPLIED_ROLES:
            raise errors.Forbidden(f"{implied.id} cannot be an implied roles.")
        if domain_of(prior) is None and domain_of(implied) is not None:
            raise errors.Forbidden(
                f"Global role cannot imply a domain-specific role: "
                f"{implied.id} cannot be an implied roles."
            )
        if _rule_exists(session, prior.id, implied.id):
            raise errors.Conflict(
                f"Conflict occurred attempting to store implied_role - "
                f"{prior.id} already implies {implied.id}."
            )
        if prior.id in expand_implied(session, [implied.id]):
            raise errors.Forbidden(
                f"{implied.id} cannot be an implied roles: {implied.name} already implies "
                f"{prior.name}, and a cycle of implied roles is not allowed."
            )
        session.add(model.ImpliedRole(prior_role_id=prior.id, implied_role_id=implied.id))
        try:
            session.flush()
        except IntegrityError:
            raise errors.Conflict(
                f"Conflict occurred attempting to store implied_role - "
                f"{prior.id} already implies {implied.id}."
            ) from None
        return common.ok(_inference(req, prior, implied), 201)


def _existing_rule(req: ApiRequest, session: Session, rule: str) -> tuple[model.Role, model.Role]:
    prior, implied = _implication_roles(req, session, rule)
    assert implied is not None
    if not _rule_exists(session, prior.id, implied.id):
        raise errors.NotFound(f"{prior.id} does not imply {implied.id}.")
    return prior, implied


@endpoint
def get_implied_role(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        prior, implied = _existing_rule(req, session, "identity:get_implied_role")
        return common.ok(_inference(req, prior, implied))


@endpoint
def check_implied_role(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        _existing_rule(req, session, "identity:check_implied_role")
    return common.no_content()


@endpoint
def delete_implied_role(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        prior, implied = _existing_rule(req, session, "identity:delete_implied_role")
        session.execute(
            delete(model.ImpliedRole).where(
                model.ImpliedRole.prior_role_id == prior.id,
                model.ImpliedRole.implied_role_id == implied.id,
            )
        )
    return common.no_content()


def _implied_by(session: Session, prior_ids: list[str]) -> dict[str, list[model.Role]]:
    rows = session.execute(
        select(model.ImpliedRole.prior_role_id, model.Role)
        .join(model.Role, model.Role.id == model.ImpliedRole.implied_role_id)
        .where(model.ImpliedRole.prior_role_id.in_(prior_ids))
        .order_by(model.Role.name, model.Role.id)
    )
    found: dict[str, list[model.Role]] = {}
    for prior_id, role in rows:
        found.setdefault(prior_id, []).append(role)
    return found


@endpoint
def list_implied_roles(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        prior, _ = _implication_roles(req, session, "identity:list_implied_roles")
        implied = _implied_by(session, [prior.id]).get(prior.id, [])
        return common.ok(
            {
                "role_inference": {
                    "prior_role": _role_ref(req, prior),
                    "implies": [_role_ref(req, r) for r in implied],
                },
                "links": common.self_links(req, f"/v3/roles/{prior.id}/implies"),
            }
        )


@endpoint
def list_role_inferences(req: ApiRequest) -> Response:
    common.enforce(req, "identity:list_role_inference_rules", {"domain_id": None})
    with common.service(req).db.session() as session:
        priors = list(
            session.scalars(
                select(model.Role)
                .where(model.Role.id.in_(select(model.ImpliedRole.prior_role_id).distinct()))
                .order_by(model.Role.name, model.Role.id)
            )
        )
        implied = _implied_by(session, [p.id for p in priors])
        inferences = [
            {
                "prior_role": _role_ref(req, prior),
                "implies": [_role_ref(req, r) for r in implied.get(prior.id, [])],
            }
            for prior in priors
        ]
        return common.ok(
            {
                "role_inferences": inferences,
                "links": common.self_links(req, "/v3/role_inferences"),
            }
        )


ROUTES = [
    Route("/v3/roles", create_role, methods=["POST"]),
    Route("/v3/roles", list_roles, methods=["GET"]),
    Route("/v3/roles/{role_id}", get_role, methods=["GET"]),
    Route("/v3/roles/{role_id}", update_role, methods=["PATCH"]),
    Route("/v3/roles/{role_id}", delete_role, methods=["DELETE"]),
    Route("/v3/roles/{prior_role_id}/implies", list_implied_roles, methods=["GET"]),
    # HEAD first: a GET route would also answer HEAD (Keystone answers 204 here).
    Route(
        "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
        check_implied_role,
        methods=["HEAD"],
    ),
    Route("/v3/roles/{prior_role_id}/implies/{implied_role_id}", get_implied_role, methods=["GET"]),
    Route(
        "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
        create_implied_role,
        methods=["PUT"],
    ),
    Route(
        "/v3/roles/{prior_role_id}/implies/{implied_role_id}",
        delete_implied_role,
        methods=["DELETE"],
    ),
    Route("/v3/role_inferences", list_role_inferences, methods=["GET"]),
]
