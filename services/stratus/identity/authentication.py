"""Authentication: turning credentials into a token, and a token into its body.

``issue`` checks every method in the request (``password``, ``token``,
``application_credential``), resolves the requested scope (project, domain,
system, trust, or none) and encrypts a payload. ``validate`` decrypts a token
and rebuilds its body from the database, refusing it when it expired, was
revoked, or when its user, project, domain, trust or application credential
is gone or disabled, or when no role remains on its scope.

Failures say as little as possible to the caller (401 with a generic message)
and name the reason in the log, without the secret.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stratus.common import errors
from stratus.identity import model, passwords
from stratus.identity.assignments import effective_roles, role_ref
from stratus.identity.catalog import build_catalog
from stratus.identity.revocation import is_revoked
from stratus.identity.service import IdentityService
from stratus.identity.tokens import (
    SCOPE_DOMAIN,
    SCOPE_PROJECT,
    SCOPE_SYSTEM,
    SCOPE_TRUST,
    SCOPE_UNSCOPED,
    InvalidTokenError,
    TokenPayload,
    isotime,
    new_audit_id,
)

LOG = logging.getLogger(__name__)


class AuthFailed(errors.Unauthorized):
    """Credentials refused; the reason goes to the log, not to the client."""

    def __init__(self, reason: str):
        LOG.info("authentication refused: %s", reason)
        super().__init__("The request you have made requires authentication.")


class TokenNotFound(errors.NotFound):
    def __init__(self, reason: str):
        LOG.info("token refused: %s", reason)
        super().__init__("Could not find token.")


@dataclass
class Issued:
    token: str
    body: dict[str, Any]


# --- looking things up by reference ------------------------------------------


def _domain_by_ref(session: Session, ref: dict[str, Any] | None) -> model.Domain:
    if not isinstance(ref, dict) or not (ref.get("id") or ref.get("name")):
        raise errors.BadRequest("A domain must be identified by id or name.")
    if ref.get("id"):
        domain = session.get(model.Domain, ref["id"])
    else:
        domain = session.scalar(select(model.Domain).where(model.Domain.name == ref["name"]))
    if domain is None:
        raise AuthFailed(f"domain {ref} not found")
    return domain


def _in_domain_by_ref(session: Session, cls: type[Any], ref: Any, what: str) -> Any:
    """A user or project named by ``{"id"}`` or by ``{"name", "domain"}``."""
    if not isinstance(ref, dict):
        raise errors.BadRequest(f"The {what} must be an object with an id or a name and domain.")
    if ref.get("id"):
        found = session.get(cls, str(ref["id"]))
    elif ref.get("name"):
        domain = _domain_by_ref(session, ref.get("domain"))
        found = session.scalar(
            select(cls).where(cls.name == ref["name"], cls.domain_id == domain.id)
        )
    else:
        raise errors.BadRequest(f"The {what} must be identified by id or by name and domain.")
    if found is None:
        raise AuthFailed(f"{what} {ref.get('id') or ref.get('name')} not found")
    return found


def _user_by_ref(session: Session, ref: Any) -> model.User:
    return _in_domain_by_ref(session, model.User, ref, "user")  # type: ignore[no-any-return]


def _project_by_ref(session: Session, ref: Any) -> model.Project:
    return _in_domain_by_ref(session, model.Project, ref, "project")  # type: ignore[no-any-return]


def _check_user_usable(session: Session, user: model.User) -> None:
    if not user.enabled:
        raise AuthFailed(f"user {user.id} is disabled")
    domain = session.get(model.Domain, user.domain_id)
    if domain is None or not domain.enabled:
        raise AuthFailed(f"domain of user {user.id} is disabled")


# --- methods ------------------------------------------------------------------


@dataclass
class _Identity:
    user: model.User
    methods: list[str]
    expires_at: float | None = None
    audit_chain: str | None = None
    app_cred: model.ApplicationCredential | None = None
    trust_id: str | None = None
    bound_scope: tuple[int, str | None] | None = None


def _password(svc: IdentityService, session: Session, data: Any) -> model.User:
    if not isinstance(data, dict) or not isinstance(data.get("user"), dict):
        raise errors.BadRequest("The password method needs a 'user' object.")
    ref = data["user"]
    secret = ref.get("password")
    if not isinstance(secret, str):
        raise errors.BadRequest("The password method needs the user's 'password' as a string.")
    user = _user_by_ref(session, ref)
    options = svc.options
    if (
        options.lockout_failure_attempts
        and user.failed_auth_count >= options.lockout_failure_attempts
        and user.failed_auth_at is not None
    ):
        if model.utcnow() - user.failed_auth_at < timedelta(seconds=options.lockout_duration):
            raise AuthFailed(f"user {user.id} is locked out after repeated failures")
        user.failed_auth_count = 0
    if not passwords.verify_password(secret, user.password_hash):
        user.failed_auth_count = (user.failed_auth_count or 0) + 1
        user.failed_auth_at = model.utcnow()
        session.commit()
        raise AuthFailed(f"wrong password for user {user.id}")
    if user.failed_auth_count:
        user.failed_auth_count = 0
    if user.password_hash and passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash_password(secret)
    if user.password_expires_at and user.password_expires_at < model.utcnow():
        raise AuthFailed(f"password of user {user.id} has expired")
    _check_user_usable(session, user)
    return user


def _application_credential(session: Session, data: Any) -> model.ApplicationCredential:
    if not isinstance(data, dict) or not isinstance(data.get("secret"), str):
        raise errors.BadRequest("The application_credential method needs a 'secret'.")
    if data.get("id"):
        cred = session.get(model.ApplicationCredential, str(data["id"]))
    elif data.get("name") and data.get("user"):
        user = _user_by_ref(session, data["user"])
        cred = session.scalar(
            select(model.ApplicationCredential).where(
                model.ApplicationCredential.name == data["name"],
                model.ApplicationCredential.user_id == user.id,
            )
        )
    else:
        raise errors.BadRequest(
            "An application credential is identified by id, or by name and user."
        )
    if cred is None:
        raise AuthFailed("application credential not found")
    if not passwords.verify_password(data["secret"], cred.secret_hash):
        raise AuthFailed(f"wrong secret for application credential {cred.id}")
    if cred.expires_at is not None and cred.expires_at < model.utcnow():
        raise AuthFailed(f"application credential {cred.id} has expired")
    return cred


def _identify(svc: IdentityService, session: Session, identity: Any) -> _Identity:
    if not isinstance(identity, dict):
        raise errors.BadRequest("auth.identity must be an object.")
    methods = identity.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, str) for m in methods):
        raise errors.BadRequest("auth.identity.methods must be a non-empty list of names.")
    unknown = [m for m in methods if m not in ("password", "token", "application_credential")]
    if unknown:
        raise AuthFailed(f"unsupported authentication methods {unknown}")
    found: _Identity | None = None
    for method in dict.fromkeys(methods):
        data = identity.get(method)
        if method == "password":
            current = _Identity(_password(svc, session, data), ["password"])
        elif method == "token":
            if not isinstance(data, dict) or not isinstance(data.get("id"), str):
                raise errors.BadRequest("The token method needs the token's 'id'.")
            # As Keystone: a dead token given as a credential is 404, not 401.
            payload = decode(svc, data["id"])
            body = build_body(svc, session, payload, catalog=False)
            if payload.application_credential_id:
                raise errors.Forbidden(
                    "A token made from an application credential "
                    "cannot be used to get another token."
                )
            if payload.trust_id:
                raise errors.Forbidden("A trust-scoped token cannot be rescoped.")
            user = session.get(model.User, body["user"]["id"])
            assert user is not None
            # As Keystone: the new token's methods are the old token's plus "token".
            current = _Identity(
                user,
                list(dict.fromkeys([*payload.methods, "token"])),
                payload.expires_at,
                payload.audit_chain_id,
            )
        else:
            cred = _application_credential(session, data)
            user = session.get(model.User, cred.user_id)
            if user is None:
                raise AuthFailed("owner of the application credential is gone")
            _check_user_usable(session, user)
            current = _Identity(
                user,
                ["application_credential"],
                app_cred=cred,
                bound_scope=(SCOPE_PROJECT, cred.project_id),
            )
        if found is None:
            found = current
        elif found.user.id != current.user.id:
            raise AuthFailed("methods identify different users")
        else:
            found.methods = list(dict.fromkeys([*found.methods, *current.methods]))
            found.expires_at = current.expires_at or found.expires_at
            found.audit_chain = current.audit_chain or found.audit_chain
            found.app_cred = current.app_cred or found.app_cred
            found.bound_scope = current.bound_scope or found.bound_scope
    assert found is not None
    return found


# --- scope ----------------------------------------------------------------------


def _resolve_scope(
    session: Session, ident: _Identity, scope: Any
) -> tuple[int, str | None, str | None]:
    """(scope type, scope id, trust id)."""
    if ident.bound_scope is not None:
        if scope not in (None, "unscoped") and not (
            isinstance(scope, dict)
            and "project" in scope
            and _project_by_ref(session, scope["project"]).id == ident.bound_scope[1]
        ):
            raise AuthFailed("an application credential can only be scoped to its project")
        return ident.bound_scope[0], ident.bound_scope[1], None
    if scope is None:
        default = ident.user.default_project_id
        if default:
            project = session.get(model.Project, default)
            if (
                project is not None
                and project.enabled
                and effective_roles(session, ident.user.id, project=project)
            ):
                return SCOPE_PROJECT, project.id, None
        return SCOPE_UNSCOPED, None, None
    if scope == "unscoped":
        return SCOPE_UNSCOPED, None, None
    if not isinstance(scope, dict) or len(scope) != 1:
        raise errors.BadRequest(
            "auth.scope must name exactly one of project, domain, system or OS-TRUST:trust."
        )
    kind, ref = next(iter(scope.items()))
    if kind == "project":
        return SCOPE_PROJECT, _project_by_ref(session, ref).id, None
    if kind == "domain":
        return SCOPE_DOMAIN, _domain_by_ref(session, ref).id, None
    if kind == "system":
        if not isinstance(ref, dict) or ref.get("all") is not True:
            raise errors.BadRequest("The system scope must be {'all': true}.")
        return SCOPE_SYSTEM, "all", None
    if kind == "OS-TRUST:trust":
        if not isinstance(ref, dict) or not ref.get("id"):
            raise errors.BadRequest("The trust scope needs the trust's id.")
        return SCOPE_TRUST, None, str(ref["id"])
    raise errors.BadRequest(f"Unknown scope {kind!r}.")


def _usable_trust(session: Session, trust_id: str, trustee_id: str | None) -> model.Trust:
    trust = session.get(model.Trust, trust_id)
    if trust is None or trust.deleted_at is not None:
        raise AuthFailed(f"trust {trust_id} not found")
    if trust.expires_at is not None and trust.expires_at < model.utcnow():
        raise AuthFailed(f"trust {trust_id} has expired")
    if trustee_id is not None and trust.trustee_user_id != trustee_id:
        raise errors.Forbidden("The user is not the trustee of this trust.")
    return trust


# --- issue and validate -------------------------------------------------------------


def issue(svc: IdentityService, session: Session, auth: Any, *, catalog: bool) -> Issued:
    if not isinstance(auth, dict) or "identity" not in auth:
        raise errors.BadRequest("The request needs an 'auth' object with an 'identity'.")
    ident = _identify(svc, session, auth["identity"])
    scope_type, scope_id, trust_id = _resolve_scope(session, ident, auth.get("scope"))
    now = time.time()
    expires = now + svc.options.token_expiration
    if ident.expires_at:
        expires = min(expires, ident.expires_at)
    if ident.app_cred is not None and ident.app_cred.expires_at is not None:
        expires = min(expires, _timestamp(ident.app_cred.expires_at))
    if trust_id is not None:
        trust = _usable_trust(session, trust_id, ident.user.id)
        if trust.remaining_uses is not None:
            # One conditional UPDATE, so concurrent requests cannot share a last use.
            consumed = session.execute(
                update(model.Trust)
                .where(model.Trust.id == trust.id, model.Trust.remaining_uses > 0)
                .values(remaining_uses=model.Trust.remaining_uses - 1)
            )
            if not consumed.rowcount:  # type: ignore[attr-defined]
                raise AuthFailed(f"trust {trust_id} has no uses left")
        if trust.expires_at is not None:
            expires = min(expires, _timestamp(trust.expires_at))
    audit_ids = [new_audit_id()]
    if ident.audit_chain:
        audit_ids.append(ident.audit_chain)
    payload = TokenPayload(
        user_id=ident.user.id,
        methods=ident.methods,
        scope_type=scope_type,
        scope_id=scope_id,
        issued_at=now,
        expires_at=expires,
        audit_ids=audit_ids,
        trust_id=trust_id,
        application_credential_id=ident.app_cred.id if ident.app_cred else None,
    )
    body = build_body(svc, session, payload, catalog=catalog, unauthorized=True)
    return Issued(svc.formatter.encode(payload), body)


def _timestamp(value: Any) -> float:
    from datetime import UTC

    return float(value.replace(tzinfo=UTC).timestamp())


def decode(
    svc: IdentityService, token: str, *, unauthorized: bool = False, allow_expired: bool = False
) -> TokenPayload:
    fail = AuthFailed if unauthorized else TokenNotFound
    try:
        payload = svc.formatter.decode(token)
    except InvalidTokenError as exc:
        raise fail(str(exc)) from None
    if not allow_expired and payload.expires_at <= time.time():
        raise fail("token expired")
    return payload


def validate(
    svc: IdentityService,
    session: Session,
    token: str,
    *,
    catalog: bool = True,
    unauthorized: bool = False,
    allow_expired: bool = False,
) -> dict[str, Any]:
    payload = decode(svc, token, unauthorized=unauthorized, allow_expired=allow_expired)
    return build_body(svc, session, payload, catalog=catalog, unauthorized=unauthorized)


def build_body(
    svc: IdentityService,
    session: Session,
    payload: TokenPayload,
    *,
    catalog: bool,
    unauthorized: bool = False,
) -> dict[str, Any]:
    """The token's body from the database as it is now; refuses dead tokens."""
    fail = AuthFailed if unauthorized else TokenNotFound
    user = session.get(model.User, payload.user_id)
    if user is None:
        raise fail(f"user {payload.user_id} no longer exists")
    try:
        _check_user_usable(session, user)
    except AuthFailed as exc:
        raise fail(str(exc)) from None
    user_domain = session.get(model.Domain, user.domain_id)
    assert user_domain is not None
    body: dict[str, Any] = {
        "methods": payload.methods,
        "user": {
            "id": user.id,
            "name": user.name,
            "domain": {"id": user_domain.id, "name": user_domain.name},
            "password_expires_at": isotime(_timestamp(user.password_expires_at))
            if user.password_expires_at
            else None,
        },
        "audit_ids": payload.audit_ids,
        "expires_at": isotime(payload.expires_at),
        "issued_at": isotime(payload.issued_at),
    }
    roles: list[model.Role] = []
    project: model.Project | None = None
    domain_id: str | None = None
    if payload.scope_type == SCOPE_TRUST:
        try:
            trust = _usable_trust(session, payload.trust_id, None) if payload.trust_id else None
        except AuthFailed as exc:  # a dead subject token is 404, not the caller's 401
            raise fail(str(exc)) from None
        if trust is None:
            raise fail("trust token without a trust")
        project = session.get(model.Project, trust.project_id) if trust.project_id else None
        trustor = session.get(model.User, trust.trustor_user_id)
        if trustor is None or not trustor.enabled:
            raise fail("trustor is gone or disabled")
        trustor_roles = {
            r.id
            for r in effective_roles(session, trustor.id, project=project, strip_domain_roles=False)
        }
        roles = [
            r
            for r in (session.get(model.Role, ref["id"]) for ref in trust.roles)
            if r is not None and r.id in trustor_roles
        ]
        if len(roles) != len(trust.roles):
            raise fail("the trustor no longer holds the delegated roles")
        if trust.impersonation:
            body["user"] = {
                "id": trustor.id,
                "name": trustor.name,
                "domain": _domain_ref(session, trustor.domain_id),
                "password_expires_at": None,
            }
        body["OS-TRUST:trust"] = {
            "id": trust.id,
            "impersonation": trust.impersonation,
            "trustee_user": {"id": trust.trustee_user_id},
            "trustor_user": {"id": trust.trustor_user_id},
        }
    elif payload.scope_type == SCOPE_PROJECT:
        project = session.get(model.Project, payload.scope_id or "")
        if project is None:
            raise fail("project not found")
        roles = effective_roles(session, user.id, project=project)
    elif payload.scope_type == SCOPE_DOMAIN:
        domain = session.get(model.Domain, payload.scope_id or "")
        if domain is None or not domain.enabled:
            raise fail("domain scope not found or disabled")
        domain_id = domain.id
        roles = effective_roles(session, user.id, domain_id=domain.id)
        body["domain"] = {"id": domain.id, "name": domain.name}
    elif payload.scope_type == SCOPE_SYSTEM:
        roles = effective_roles(session, user.id, system=True)
        body["system"] = {"all": True}
    if project is not None:
        project_domain = session.get(model.Domain, project.domain_id)
        if not project.enabled or project_domain is None or not project_domain.enabled:
            raise fail(f"project {project.id} or its domain is disabled")
        domain_id = project.domain_id
        body["project"] = {
            "id": project.id,
            "name": project.name,
            "domain": {"id": project_domain.id, "name": project_domain.name},
        }
        body["is_domain"] = False
        body["is_admin_project"] = _is_admin_project(svc, project, project_domain)
    if payload.application_credential_id:
        cred = session.get(model.ApplicationCredential, payload.application_credential_id)
        if cred is None:
            raise fail("application credential deleted")
        allowed = {ref["id"] for ref in cred.roles}
        roles = [r for r in roles if r.id in allowed]
        body["application_credential"] = {
            "id": cred.id,
            "name": cred.name,
            "restricted": not cred.unrestricted,
        }
    if payload.scope_type != SCOPE_UNSCOPED:
        if not roles:
            raise fail("no role on the scope")
        body["roles"] = [role_ref(r) for r in roles]
    if is_revoked(session, payload, project.id if project else None, domain_id):
        raise fail("token revoked")
    if catalog and payload.scope_type != SCOPE_UNSCOPED:
        body["catalog"] = build_catalog(session, user.id, project.id if project else None)
    return body


def _domain_ref(session: Session, domain_id: str) -> dict[str, str]:
    domain = session.get(model.Domain, domain_id)
    return {"id": domain_id, "name": domain.name if domain else ""}


def _is_admin_project(svc: IdentityService, project: model.Project, domain: model.Domain) -> bool:
    name = svc.options.admin_project_name
    if not name:
        return True
    return project.name == name and domain.name == svc.options.admin_project_domain_name
