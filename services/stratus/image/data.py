"""Moving image data: upload, stage, import and download, in constant memory.

An upload streams the request body through a ``DataWrite``: each chunk is
counted against the size cap and the project's quota, hashed (md5 for
``checksum``, sha512 for the multihash) and written to the store under a
temporary name. Only when the whole body has arrived is the content
inspected (its format must match ``disk_format``; qcow2/vmdk must not
reference files outside themselves), committed, and the image made
``active`` — in that order, so an image is never ``active`` without its data.
A failure at any point removes what was written and puts the image back to
``queued``. The image's data lock is held throughout (see ``recovery``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from sqlalchemy import func, select, update
from starlette.concurrency import run_in_threadpool

from stratus.common import errors
from stratus.common.db import utcnow
from stratus.image import formats
from stratus.image.model import Image, ImageProperty
from stratus.image.service import DataLock, ImageService
from stratus.image.store import FilesystemWriter, StoreError, StoreFull, Writer

LOG = logging.getLogger(__name__)

CHUNK = 4 * 1024 * 1024
HASH_ALGO = "sha512"
IMPORT_ERROR_PROPERTY = "stratus_import_error"


# md5 runs here while the calling thread computes the multihash: hashlib
# releases the GIL on large buffers, so the two use two cores.
_MD5_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="md5")


class Digest:
    """``checksum`` (md5) and the multihash of the data, computed side by side."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.multihash = hashlib.new(HASH_ALGO)
        self.size = 0

    def update(self, data: bytes, *, then: Callable[[bytes], None] | None = None) -> None:
        """Hash ``data``; ``then(data)`` (the write) runs while md5 is still busy."""
        md5 = _MD5_POOL.submit(self.md5.update, data)
        try:
            self.multihash.update(data)
            if then is not None:
                then(data)
        finally:
            md5.result()
        self.size += len(data)


def _full() -> errors.ApiError:
    return errors.RequestEntityTooLarge("Image storage media is full.")


def used_bytes(svc: ImageService, owner: str | None) -> int:
    with svc.db.session() as session:
        total = session.scalar(
            select(func.coalesce(func.sum(Image.size), 0)).where(
                Image.owner == owner, Image.deleted.is_(False)
            )
        )
    return int(total or 0)


def allowance(svc: ImageService, owner: str | None) -> tuple[int, str]:
    """Bytes one upload may bring, and the message when it brings more."""
    options = svc.options
    cap = options.image_size_cap
    message = f"The image is larger than this cloud accepts ({cap} bytes at most)."
    quota = options.quota_image_size_total
    if quota >= 0:
        left = max(quota - used_bytes(svc, owner), 0)
        if left < cap:
            cap = left
            message = (
                f"The image exceeds the project's image storage quota of {quota} bytes "
                f"({left} bytes left)."
            )
    return cap, message


class DataWrite:
    """One upload or stage in progress (see the module's description)."""

    def __init__(
        self,
        svc: ImageService,
        image: Image,
        lock: DataLock,
        writer: Writer,
        *,
        busy_status: str,
    ):
        self.svc = svc
        self.image_id = image.id
        self.disk_format = image.disk_format or ""
        self.lock = lock
        self.writer = writer
        self.busy_status = busy_status
        self.digest = Digest()
        self.cap, self.too_large = allowance(svc, image.owner)

    def write(self, data: bytes) -> None:
        if self.digest.size + len(data) > self.cap:
            raise errors.RequestEntityTooLarge(self.too_large)
        try:
            self.digest.update(data, then=self.writer.write)
        except StoreFull:
            raise _full() from None

    def fail(self) -> None:
        """Forget the data, put the image back to ``queued``, release the lock."""
        try:
            self.writer.abort()
            with self.svc.db.session() as session:
                session.execute(
                    update(Image)
                    .where(Image.id == self.image_id, Image.status == self.busy_status)
                    .values(status="queued", upload_host=None, updated_at=utcnow())
                )
        finally:
            self.lock.release()

    def finish_upload(self) -> None:
        """Inspect, commit and activate; on any failure, ``fail``."""
        try:
            try:
                self.writer.flush()
            except StoreFull:
                raise _full() from None
            inspection = formats.inspect(
                self.writer.local_path, self.disk_format, timeout=self.svc.options.inspect_timeout
            )
            try:
                location = self.writer.commit()
            except StoreFull:
                raise _full() from None
            activate(self.svc, self.image_id, self.busy_status, self.digest, inspection, location)
        except formats.ImageFormatError as exc:
            self.fail()
            raise errors.BadRequest(f"Image content is refused: {exc}") from None
        except BaseException:
            self.fail()
            raise
        self.lock.release()

    def finish_stage(self) -> None:
        """Keep the staged data; the image stays ``uploading`` until imported."""
        try:
            try:
                self.writer.commit()
            except StoreFull:
                raise _full() from None
        except BaseException:
            self.fail()
            raise
        self.lock.release()


def activate(
    svc: ImageService,
    image_id: str,
    busy_status: str,
    digest: Digest,
    inspection: formats.Inspection,
    location: str,
    **values: Any,
) -> None:
    """Record the committed data and make the image ``active``.

    If the image was deleted meanwhile, the data goes too and the client
    learns it (410).
    """
    with svc.db.session() as session:
        result = session.execute(
            update(Image)
            .where(Image.id == image_id, Image.status == busy_status, Image.deleted.is_(False))
            .values(
                status="active",
                size=digest.size,
                virtual_size=inspection.virtual_size,
                checksum=digest.md5.hexdigest(),
                os_hash_algo=HASH_ALGO,
                os_hash_value=digest.multihash.hexdigest(),
                location=location,
                upload_host=None,
                updated_at=utcnow(),
                **values,
            )
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return
    svc.store.delete(location)
    raise errors.Gone("The image was deleted while its data was being saved.")


def claim(svc: ImageService, image_id: str, from_status: str, to_status: str) -> DataLock:
    """Take the image's data lock and move it from ``from_status`` to ``to_status``.

    409 if another process holds the lock or the image is in another status.
    """
    lock = svc.lock(image_id)
    if lock is None:
        raise errors.Conflict(f"Image {image_id} is already receiving or importing data.")
    try:
        with svc.db.session() as session:
            result = session.execute(
                update(Image)
                .where(Image.id == image_id, Image.status == from_status, Image.deleted.is_(False))
                .values(status=to_status, upload_host=svc.host, updated_at=utcnow())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                current = session.scalar(select(Image.status).where(Image.id == image_id))
                raise errors.Conflict(
                    f"Image status transition from {current} to {to_status} is not allowed."
                )
    except BaseException:
        lock.release()
        raise
    return lock


def begin(svc: ImageService, image: Image, *, to_status: str, staged: bool) -> DataWrite:
    """Move the image from ``queued`` to ``to_status`` and open where data goes."""
    lock = claim(svc, image.id, "queued", to_status)
    try:
        try:
            writer: Writer = (
                FilesystemWriter(svc.staged_path(image.id))
                if staged
                else svc.store.writer(image.id)
            )
        except (OSError, StoreError, StoreFull) as exc:
            with svc.db.session() as session:
                session.execute(
                    update(Image)
                    .where(Image.id == image.id, Image.status == to_status)
                    .values(status="queued", upload_host=None)
                )
            if isinstance(exc, StoreFull):
                raise _full() from None
            raise errors.ServiceUnavailable("The image store cannot take data now.") from exc
    except BaseException:
        lock.release()
        raise
    return DataWrite(svc, image, lock, writer, busy_status=to_status)


async def pump(stream: AsyncIterator[bytes], write: Callable[[bytes], None]) -> None:
    """Feed a request body to ``write`` in large chunks, one chunk in flight.

    While a worker thread hashes and writes one chunk, the event loop
    receives the next; memory stays at about two chunks per upload.
    """
    buffer = bytearray()
    pending: asyncio.Future[None] | None = None
    try:
        async for piece in stream:
            buffer += piece
            if len(buffer) >= CHUNK:
                if pending is not None:
                    await pending
                chunk, buffer = bytes(buffer), bytearray()
                pending = asyncio.ensure_future(run_in_threadpool(write, chunk))
        if pending is not None:
            await pending
            pending = None
        if buffer:
            await run_in_threadpool(write, bytes(buffer))
    finally:
        if pending is not None:  # the client went away or a write failed
            await asyncio.gather(pending, return_exceptions=True)


# --- import -----------------------------------------------------------------


def start_import(svc: ImageService, image_id: str, lock: DataLock) -> threading.Thread:
    """Run the import of staged data in the background (the API answered 202)."""
    thread = threading.Thread(
        target=run_import, args=(svc, image_id, lock), name=f"import-{image_id}", daemon=True
    )
    thread.start()
    return thread


def run_import(svc: ImageService, image_id: str, lock: DataLock) -> None:
    """glance-direct: inspect the staged data, convert if asked, store, activate."""
    staged = svc.staged_path(image_id)
    converted = staged.with_name(staged.name + ".converted")
    try:
        with svc.db.session() as session:
            image = session.get(Image, image_id)
            if image is None or image.deleted or image.status != "importing":
                return
            disk_format = image.disk_format or ""
        options = svc.options
        inspection = formats.inspect(staged, disk_format, timeout=options.inspect_timeout)
        source, values = staged, {}
        target = options.import_convert_to
        if target and target != disk_format:
            formats.convert(staged, converted, disk_format, target)
            inspection = formats.inspect(converted, target, timeout=options.inspect_timeout)
            source, values = converted, {"disk_format": target}
        digest = Digest()
        writer = svc.store.writer(image_id)
        try:
            with open(source, "rb") as handle:
                _copy(handle, writer, digest)
            location = writer.commit()
        except BaseException:
            writer.abort()
            raise
        # The property first: a client that sees the status change sees the
        # property that goes with it.
        _set_import_error(svc, image_id, None)
        activate(svc, image_id, "importing", digest, inspection, location, **values)
        LOG.info("image %s imported (%d bytes)", image_id, digest.size)
    except (formats.ImageFormatError, StoreError, StoreFull, errors.ApiError, OSError) as exc:
        message = "Image storage media is full." if isinstance(exc, StoreFull) else str(exc)
        LOG.warning("import of image %s failed: %s", image_id, message)
        _set_import_error(svc, image_id, message)
        with svc.db.session() as session:
            session.execute(
                update(Image)
                .where(Image.id == image_id, Image.status == "importing")
                .values(status="queued", upload_host=None, updated_at=utcnow())
            )
    except Exception:
        LOG.exception("import of image %s failed unexpectedly", image_id)
        raise
    finally:
        staged.unlink(missing_ok=True)
        converted.unlink(missing_ok=True)
        lock.release()


def _copy(handle: BinaryIO, writer: Writer, digest: Digest) -> None:
    while chunk := handle.read(CHUNK):
        digest.update(chunk, then=writer.write)


def _set_import_error(svc: ImageService, image_id: str, message: str | None) -> None:
    """Tell the owner why an import failed (a property on the image), or clear it."""
    with svc.db.session() as session:
        image = session.get(Image, image_id)
        if image is None:
            return
        kept = [p for p in image.properties if p.name != IMPORT_ERROR_PROPERTY]
        if message is not None:
            kept.append(ImageProperty(name=IMPORT_ERROR_PROPERTY, value=message[:1000]))
        image.properties = kept
