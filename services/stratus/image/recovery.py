"""Bring the image data on this host back to what the database says.

Runs when the service starts (in every worker; the data locks make that
safe). After a crash or a kill:

- an upload that was ``saving`` lost its writer: its partial data goes and
  the image is ``queued`` again, ready for a new upload;
- a stage that was ``uploading`` keeps its image ``uploading`` if the staged
  data was complete, else goes back to ``queued``;
- an import that was ``importing`` starts again from its staged data;
- a deleted image whose data removal did not finish loses its data now;
- partial files no live upload holds are removed.

Only images whose data work ran on this host (``upload_host``) are touched:
another controller's uploads are that controller's to recover.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from stratus.common.db import utcnow
from stratus.image import data
from stratus.image.model import Image
from stratus.image.service import DataLock, ImageService
from stratus.image.store import StoreError

LOG = logging.getLogger(__name__)

BUSY = ("saving", "uploading", "importing")


def purge(svc: ImageService, image_id: str, location: str | None) -> None:
    """Remove a deleted image's data, staged data and lock file.

    When the store cannot delete now (object storage unreachable), the row
    keeps its location and the next recovery pass (at start) tries again.
    """
    if location:
        try:
            svc.store.delete(location)
        except StoreError as exc:
            LOG.warning("data of deleted image %s left for later: %s", image_id, exc)
            return
    staged = svc.staged_path(image_id)
    for path in (staged, staged.with_name(staged.name + ".partial")):
        path.unlink(missing_ok=True)
    svc.forget_lock(image_id)
    with svc.db.session() as session:
        session.execute(update(Image).where(Image.id == image_id).values(location=None))


def reconcile(svc: ImageService) -> dict[str, int]:
    """One pass of recovery; counts of what it did (for the log and tests)."""
    done = {"requeued": 0, "staged_kept": 0, "imports_restarted": 0, "purged": 0, "partials": 0}
    with svc.db.session() as session:
        busy = list(
            session.execute(
                select(Image.id).where(
                    Image.status.in_(BUSY), Image.upload_host == svc.host, Image.deleted.is_(False)
                )
            ).scalars()
        )
        deleted = [
            (image_id, location)
            for image_id, location in session.execute(
                select(Image.id, Image.location).where(
                    Image.deleted.is_(True), Image.location.is_not(None)
                )
            )
        ]
    for image_id in busy:
        lock = svc.lock(image_id)
        if lock is None:
            continue  # a live process is working on it
        outcome = _recover(svc, image_id, lock)
        if outcome:
            done[outcome] += 1
    for image_id, location in deleted:
        purge(svc, image_id, location)
        done["purged"] += 1
    for image_id, path in svc.store.partials():
        lock = svc.lock(image_id)
        if lock is None:
            continue
        try:
            path.unlink(missing_ok=True)
            done["partials"] += 1
        finally:
            lock.release()
    if any(done.values()):
        LOG.info("image data recovered: %s", done)
    return done


def _recover(svc: ImageService, image_id: str, lock: DataLock) -> str | None:
    handed_over = False
    try:
        with svc.db.session() as session:
            image = session.get(Image, image_id)
            if image is None or image.status not in BUSY or image.upload_host != svc.host:
                return None
            status = image.status
        staged = svc.staged_path(image_id)
        staged.with_name(staged.name + ".partial").unlink(missing_ok=True)
        if status == "importing" and staged.exists():
            data.start_import(svc, image_id, lock)
            handed_over = True
            return "imports_restarted"
        if status == "uploading" and staged.exists():
            return "staged_kept"
        if status == "saving":
            # Committed but not recorded, or never committed: either way the
            # data has no row pointing at it.
            for partial_id, path in svc.store.partials():
                if partial_id == image_id:
                    path.unlink(missing_ok=True)
            svc.store.delete(svc.store.location_for(image_id))
        with svc.db.session() as session:
            session.execute(
                update(Image)
                .where(Image.id == image_id, Image.status == status)
                .values(status="queued", upload_host=None, updated_at=utcnow())
            )
        return "requeued"
    finally:
        if not handed_over:
            lock.release()
