"""Revocation events: how a token dies before it expires.

An event revokes every token issued before ``issued_before`` whose fields
match all of the event's non-empty fields. Deleting a token revokes its audit
ID; changing a password or disabling a user revokes the user; removing a role
assignment revokes the user on that project or domain; deleting a trust or an
application credential revokes tokens made with it. Events older than the
longest token lifetime can match nothing and are pruned as new ones arrive.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import ColumnElement, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from stratus.identity import model
from stratus.identity.tokens import TokenPayload, to_datetime

# Tokens live at most this long past issue (allows for the longest configured
# token_expiration with a margin); older events are dead weight.
PRUNE_AFTER = timedelta(days=2)


def revoke(
    session: Session,
    *,
    audit_id: str | None = None,
    audit_chain_id: str | None = None,
    user_id: str | None = None,
    project_id: str | None = None,
    domain_id: str | None = None,
    trust_id: str | None = None,
    application_credential_id: str | None = None,
) -> None:
    now = model.utcnow()
    session.add(
        model.RevocationEvent(
            audit_id=audit_id,
            audit_chain_id=audit_chain_id,
            user_id=user_id,
            project_id=project_id,
            domain_id=domain_id,
            trust_id=trust_id,
            application_credential_id=application_credential_id,
            issued_before=now,
            revoked_at=now,
        )
    )
    session.execute(
        delete(model.RevocationEvent).where(model.RevocationEvent.revoked_at < now - PRUNE_AFTER)
    )


def _matches(column: object, value: str | None) -> object:
    return or_(column.is_(None), column == value) if value else column.is_(None)  # type: ignore[attr-defined]


def is_revoked(
    session: Session, payload: TokenPayload, project_id: str | None, domain_id: str | None
) -> bool:
    """Whether any event matches this token (one indexed query)."""
    event = model.RevocationEvent
    query = select(
        exists().where(
            event.issued_before >= to_datetime(payload.issued_at),
            _matches(event.audit_id, payload.audit_id),
            _matches(event.audit_chain_id, payload.audit_chain_id),
            _matches(event.user_id, payload.user_id),
            _matches(event.project_id, project_id),
            _matches(event.domain_id, domain_id),
            _matches(event.trust_id, payload.trust_id),
            _matches(event.application_credential_id, payload.application_credential_id),
        )
    )
    return bool(session.scalar(query))


def end_trusts(session: Session, which: ColumnElement[bool]) -> None:
    """Mark the matching live trusts deleted (their user or project went away)."""
    now = model.utcnow()
    ended = session.scalars(
        update(model.Trust)
        .where(which, model.Trust.deleted_at.is_(None))
        .values(deleted_at=now)
        .returning(model.Trust.id)
    ).all()
    for trust_id in ended:
        revoke(session, trust_id=trust_id)
