"""Recovery of image data after a crash, branch by branch, on a real store.

Each test puts the database and the directories in the state a crash at one
point would leave, runs ``recovery.reconcile`` as a starting service does,
and checks the image ends in a true state with nothing left behind.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from stratus.common import db as dbmod
from stratus.common.config import Config
from stratus.image import recovery
from stratus.image.model import Image
from stratus.image.service import ImageService


@pytest.fixture
def svc(tmp_path: Path) -> ImageService:
    url = f"sqlite:///{tmp_path}/stratus.db"
    dbmod.sync(dbmod.make_engine(url))
    (tmp_path / "stratus.conf").write_text(
        f"[database]\nconnection = {url}\n\n[image]\n"
        f"filesystem_store_datadir = {tmp_path / 'images'}\nstaging_dir = {tmp_path / 'staging'}\n"
    )
    config = Config(tmp_path / "stratus.conf")
    return ImageService.from_config(config)


def add(svc: ImageService, status: str, **values) -> str:
    with svc.db.session() as session:
        image = Image(
            id=str(uuid.uuid4()),
            status=status,
            disk_format="qcow2",
            container_format="bare",
            owner="p",
            upload_host=svc.host,
            **values,
        )
        session.add(image)
        return image.id


def status_of(svc: ImageService, image_id: str) -> str:
    with svc.db.session() as session:
        return session.scalar(select(Image.status).where(Image.id == image_id)) or ""


def test_dead_upload_goes_back_to_queued_and_its_data_goes(svc):
    image_id = add(svc, "saving")
    partial = svc.store.writer(image_id)
    partial.write(b"half")
    partial.flush()
    done = recovery.reconcile(svc)
    assert done["requeued"] == 1
    assert status_of(svc, image_id) == "queued"
    assert list(Path(svc.options.filesystem_store_datadir).iterdir()) == []


def test_committed_but_unrecorded_upload_is_discarded(svc):
    image_id = add(svc, "saving")
    writer = svc.store.writer(image_id)
    writer.write(b"all of it")
    writer.commit()  # the crash came before the database said "active"
    recovery.reconcile(svc)
    assert status_of(svc, image_id) == "queued"
    assert list(Path(svc.options.filesystem_store_datadir).iterdir()) == []


def test_live_upload_is_left_alone(svc):
    image_id = add(svc, "saving")
    lock = svc.lock(image_id)
    assert lock is not None
    try:
        assert recovery.reconcile(svc)["requeued"] == 0
        assert status_of(svc, image_id) == "saving"
    finally:
        lock.release()


def test_another_hosts_upload_is_left_alone(svc):
    image_id = add(svc, "saving")
    with svc.db.session() as session:
        session.get(Image, image_id).upload_host = "elsewhere"
    recovery.reconcile(svc)
    assert status_of(svc, image_id) == "saving"


def test_complete_stage_is_kept_and_partial_stage_is_dropped(svc):
    kept = add(svc, "uploading")
    svc.staged_path(kept).write_bytes(b"staged")
    dropped = add(svc, "uploading")
    partial = svc.staged_path(dropped).with_name(f"{dropped}.partial")
    partial.write_bytes(b"sta")
    recovery.reconcile(svc)
    assert status_of(svc, kept) == "uploading" and svc.staged_path(kept).exists()
    assert status_of(svc, dropped) == "queued" and not partial.exists()


def test_interrupted_import_runs_again(svc, tmp_path):
    image_id = add(svc, "importing")
    source = svc.staged_path(image_id)
    subprocess.run(
        ["qemu-img", "create", "-f", "qcow2", str(source), "1M"], check=True, capture_output=True
    )
    assert recovery.reconcile(svc)["imports_restarted"] == 1
    deadline = time.monotonic() + 20
    while status_of(svc, image_id) == "importing" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status_of(svc, image_id) == "active"
    with svc.db.session() as session:
        image = session.get(Image, image_id)
        assert image.virtual_size == 1024 * 1024 and image.location and image.checksum
    assert not source.exists()


def test_deleted_image_data_is_purged(svc):
    image_id = add(svc, "active")
    writer = svc.store.writer(image_id)
    writer.write(b"data")
    location = writer.commit()
    with svc.db.session() as session:
        image = session.get(Image, image_id)
        image.location, image.deleted, image.status = location, True, "deleted"
    assert recovery.reconcile(svc)["purged"] == 1
    assert list(Path(svc.options.filesystem_store_datadir).iterdir()) == []
    with svc.db.session() as session:
        assert session.get(Image, image_id).location is None


def test_orphan_partials_are_removed(svc):
    writer = svc.store.writer("11111111-2222-4333-8444-555555555555")
    writer.write(b"orphan")
    writer.flush()
    assert recovery.reconcile(svc)["partials"] == 1
    assert list(Path(svc.options.filesystem_store_datadir).iterdir()) == []
