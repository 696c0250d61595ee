"""``/os-keypairs``: SSH and X.509 key pairs, imported or generated, per user.

Key pairs belong to a user, not a project; admins reach another user's with
``user_id`` (2.10). From 2.2 a key pair has a ``type`` (ssh or x509), create
answers 201 and delete 204 (202 and 200 before).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.compute import key_material, quotas
from stratus.compute.api import common
from stratus.compute.model import KeyPair

RULE = "os_compute_api:os-keypairs"
_NAME = re.compile(r"^(?! )[a-zA-Z0-9 _-]+(?<! )$")


def _user(req: ApiRequest, given: Any = None) -> str:
    """The user whose key pairs the request is about: the caller's own, or
    (2.10, admins) the ``user_id`` of the query or body."""
    requested = given if given is not None else req.query.get("user_id")
    if requested is not None and common.at_least(req, 2, 10):
        if not isinstance(requested, str) or not requested:
            raise errors.BadRequest(f"Invalid user_id {requested!r}.")
        return requested
    return str(req.context.user_id)


def _view(req: ApiRequest, pair: KeyPair, full: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": pair.name,
        "public_key": pair.public_key,
        "fingerprint": pair.fingerprint,
    }
    if full:
        view.update(
            user_id=pair.user_id,
            id=pair.id,
            created_at=common.timestamp(pair.created_at),
            deleted=False,
            deleted_at=None,
            updated_at=None,
        )
    if common.at_least(req, 2, 2):
        view["type"] = pair.type
    return view


def _find(session: Session, user_id: str, name: str) -> KeyPair:
    pair = session.scalars(
        select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == name)
    ).first()
    if pair is None:
        raise errors.NotFound(f"Keypair {name} not found for user {user_id}.")
    return pair


@endpoint
def index(req: ApiRequest) -> Response:
    user_id = _user(req)
    common.enforce(req, f"{RULE}:index", {"user_id": user_id})
    with common.service(req).db.session() as session:
        pairs = session.scalars(
            select(KeyPair).where(KeyPair.user_id == user_id).order_by(KeyPair.name)
        )
        views = [{"keypair": _view(req, p, full=False)} for p in pairs]
    return ok({"keypairs": views})


@endpoint
def show(req: ApiRequest) -> Response:
    user_id = _user(req)
    common.enforce(req, f"{RULE}:show", {"user_id": user_id})
    with common.service(req).db.session() as session:
        pair = _find(session, user_id, req.path_params["name"])
        return ok({"keypair": _view(req, pair, full=True)})


def _parse(req: ApiRequest) -> tuple[str, str, str | None, str]:
    values = common.body(req, "keypair")
    known = {"name", "public_key"}
    if common.at_least(req, 2, 2):
        known.add("type")
    if common.at_least(req, 2, 10):
        known.add("user_id")
    common.reject_unknown(values, known, "keypair")
    name = values.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or not _NAME.match(name):
        raise errors.BadRequest(
            f"Invalid input for field/attribute name. Value: {name!r}. A key pair name is 1 to "
            "255 letters, digits, spaces, '_' or '-', not starting or ending with a space."
        )
    key_type = values.get("type", "ssh")
    if key_type not in key_material.TYPES:
        raise errors.BadRequest(
            f"Invalid input for field/attribute type. Value: {key_type!r}. It must be ssh or x509."
        )
    public_key = values.get("public_key")
    if public_key is not None and (not isinstance(public_key, str) or not public_key.strip()):
        raise errors.BadRequest("Keypair data is invalid: public_key must be a non-empty string.")
    return name, key_type, public_key, _user(req, values.get("user_id"))


@endpoint
def create(req: ApiRequest) -> Response:
    name, key_type, public_key, user_id = _parse(req)
    context = common.enforce(req, f"{RULE}:create", {"user_id": user_id})
    try:
        material = (
            key_material.check(key_type, public_key)
            if public_key is not None
            else key_material.generate(key_type, user_id)
        )
    except key_material.InvalidKey as exc:
        raise errors.BadRequest(f"Keypair data is invalid: {exc}") from None
    service = common.service(req)
    try:
        with service.db.session() as session:
            exists = select(KeyPair.id).where(KeyPair.user_id == user_id, KeyPair.name == name)
            if session.scalar(exists) is not None:
                raise errors.Conflict(f"Key pair '{name}' already exists.")
            quotas.check(
                session, service.options, context.project_id or "", user_id, {"key_pairs": 1}
            )
            pair = KeyPair(
                user_id=user_id,
                name=name,
                type=key_type,
                public_key=material.public_key,
                fingerprint=material.fingerprint,
            )
            session.add(pair)
            session.flush()
            view = _view(req, pair, full=False)
    except IntegrityError:  # a concurrent create of the same name
        raise errors.Conflict(f"Key pair '{name}' already exists.") from None
    except quotas.QuotaExceeded:
        raise errors.Forbidden("Quota exceeded, too many key pairs.") from None
    view["user_id"] = user_id
    if material.private_key is not None:
        view["private_key"] = material.private_key
    return ok({"keypair": view}, status=201 if common.at_least(req, 2, 2) else 200)


@endpoint
def delete(req: ApiRequest) -> Response:
    user_id = _user(req)
    common.enforce(req, f"{RULE}:delete", {"user_id": user_id})
    with common.service(req).db.session() as session:
        session.delete(_find(session, user_id, req.path_params["name"]))
    return Response(status_code=204 if common.at_least(req, 2, 2) else 202)


ROUTES = [
    Route("/v2.1/os-keypairs", index, methods=["GET"]),
    Route("/v2.1/os-keypairs", create, methods=["POST"]),
    Route("/v2.1/os-keypairs/{name}", show, methods=["GET"]),
    Route("/v2.1/os-keypairs/{name}", delete, methods=["DELETE"]),
]
