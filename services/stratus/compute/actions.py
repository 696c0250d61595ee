"""Instance actions' events (``os-instance-actions``), as the scheduler and
the agents' reports record them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from stratus.common.db import utcnow
from stratus.compute.model import InstanceAction, InstanceActionEvent


def finish(session: Session, server_id: str, event: str, error: str | None) -> None:
    """Add ``event`` (Success, or Error saying ``error``) to the server's
    latest action, which ends with it."""
    action = session.scalars(
        select(InstanceAction)
        .where(InstanceAction.server_id == server_id)
        .order_by(InstanceAction.id.desc())
    ).first()
    if action is None:
        return
    now = utcnow()
    action.finish_time = now
    if error:
        action.message = "Error"
    action.events.append(
        InstanceActionEvent(
            event=event,
            result="Error" if error else "Success",
            traceback=error,
            start_time=action.start_time,
            finish_time=now,
        )
    )
