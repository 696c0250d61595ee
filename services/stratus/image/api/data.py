"""Image data: ``/file`` (upload, download), ``/stage`` and ``/import``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any, BinaryIO

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint, streaming_endpoint
from stratus.common.handlers import check_schema
from stratus.image import data
from stratus.image.api import common
from stratus.image.model import Image
from stratus.image.store import StoreError

IMPORT_METHODS = ("glance-direct",)
DOWNLOAD_CHUNK = 1024 * 1024
RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _require_octet_stream(req: ApiRequest) -> None:
    media = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/octet-stream":
        raise errors.UnsupportedMediaType(
            f"Content type {media or 'none'!r} is not supported; send application/octet-stream."
        )


def _begin(req: ApiRequest, *, staged: bool) -> data.DataWrite:
    svc = common.service(req)
    with svc.db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, "image:upload_image", common.image_target(image))
        if not staged and (not image.disk_format or not image.container_format):
            raise errors.BadRequest(
                "Properties disk_format, container_format must be set prior to saving data."
            )
    write = data.begin(svc, image, to_status="uploading" if staged else "saving", staged=staged)
    declared = req.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > write.cap:
        write.fail()
        raise errors.RequestEntityTooLarge(write.too_large)
    return write


async def _receive(req: ApiRequest, *, staged: bool) -> Response:
    _require_octet_stream(req)
    write = await run_in_threadpool(_begin, req, staged=staged)
    try:
        await data.pump(req.request.stream(), write.write)
    except ClientDisconnect:
        await run_in_threadpool(write.fail)
        raise errors.BadRequest("The client went away before all data arrived.") from None
    except BaseException:
        await run_in_threadpool(write.fail)
        raise
    await run_in_threadpool(write.finish_stage if staged else write.finish_upload)
    return Response(status_code=204)


@streaming_endpoint
async def upload(req: ApiRequest) -> Response:
    return await _receive(req, staged=False)


@streaming_endpoint
async def stage(req: ApiRequest) -> Response:
    return await _receive(req, staged=True)


def _open(req: ApiRequest) -> tuple[BinaryIO, Image] | None:
    svc = common.service(req)
    with svc.db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, "image:download_image", common.image_target(image))
        # Only cloud admins read a deactivated image, its owner included (Glance).
        if image.status == "deactivated" and not common.allowed(req, "cloud_admin", {}):
            raise errors.Forbidden(
                "The requested image has been deactivated. Image data download is forbidden."
            )
        if image.status not in ("active", "deactivated") or not image.location:
            return None
    try:
        return svc.store.open(image.location), image
    except StoreError as exc:
        raise errors.ServiceUnavailable(f"The data of image {image.id} cannot be read.") from exc


def _range(header: str | None, size: int) -> tuple[int, int] | None:
    """(first, last) byte of a single ``Range``; None for the whole image; 416 if unsatisfiable."""
    if header is None:
        return None
    match = RANGE.match(header.strip())
    if match is None:  # several ranges, or another unit: only one byte range is served
        raise _unsatisfiable(size)
    first_raw, last_raw = match.groups()
    if not first_raw and not last_raw:
        raise errors.BadRequest(f"Invalid Range header: {header!r}.")
    if not first_raw:  # the last N bytes
        length = int(last_raw)
        first, last = max(size - length, 0), size - 1
        if length == 0:
            first = size
    else:
        first = int(first_raw)
        last = min(int(last_raw), size - 1) if last_raw else size - 1
    if first >= size or first > last:
        raise _unsatisfiable(size)
    return first, last


def _unsatisfiable(size: int) -> errors.ApiError:
    error = errors.for_status(416, "The requested range cannot be satisfied.")
    error.headers = {"Content-Range": f"bytes */{size}"}
    return error


async def _chunks(handle: BinaryIO, first: int, length: int) -> AsyncIterator[bytes]:
    try:
        await run_in_threadpool(handle.seek, first)
        left = length
        while left > 0:
            chunk = await run_in_threadpool(handle.read, min(DOWNLOAD_CHUNK, left))
            if not chunk:
                break  # truncated under us: the client sees a short body
            left -= len(chunk)
            yield chunk
    finally:
        await run_in_threadpool(handle.close)


@streaming_endpoint
async def download(req: ApiRequest) -> Response:
    opened = await run_in_threadpool(_open, req)
    if opened is None:
        return Response(status_code=204)
    handle, image = opened
    size = image.size or 0
    try:
        wanted = _range(req.headers.get("range"), size)
    except errors.ApiError:
        handle.close()
        raise
    headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
    if wanted is None:
        first, last, status = 0, size - 1, 200
        if image.checksum:
            headers["Content-MD5"] = image.checksum
    else:
        (first, last), status = wanted, 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    length = last - first + 1
    headers["Content-Length"] = str(length)
    return StreamingResponse(_chunks(handle, first, length), status_code=status, headers=headers)


# --- interoperable import ---------------------------------------------------

IMPORT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "method": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "uri": {"type": "string"}},
            "required": ["name"],
        },
        "stores": {"type": "array", "items": {"type": "string"}},
        "all_stores": {"type": "boolean"},
        "all_stores_must_succeed": {"type": "boolean"},
    },
    "required": ["method"],
}


@endpoint
def import_image(req: ApiRequest) -> Response:
    body = req.json()
    check_schema(body, IMPORT_SCHEMA)
    method = body["method"]["name"]
    if method not in IMPORT_METHODS:
        raise errors.BadRequest(
            f"Import method {method} is not supported by this cloud; "
            f"available: {', '.join(IMPORT_METHODS)}."
        )
    svc = common.service(req)
    with svc.db.session() as session:
        image = common.get_image(req, session, req.path_params["image_id"])
        common.enforce(req, "image:upload_image", common.image_target(image))
        if not image.disk_format or not image.container_format:
            raise errors.BadRequest(
                "Properties disk_format, container_format must be set prior to importing data."
            )
        if image.status != "uploading" or not svc.staged_path(image.id).exists():
            raise errors.Conflict(
                f"Image {image.id} has no staged data to import (status {image.status}); "
                "stage the data first."
            )
    lock = data.claim(svc, image.id, "uploading", "importing")
    data.start_import(svc, image.id, lock)
    return Response(status_code=202)


ROUTES = [
    Route("/v2/images/{image_id}/file", upload, methods=["PUT"]),
    Route("/v2/images/{image_id}/file", download, methods=["GET"]),
    Route("/v2/images/{image_id}/stage", stage, methods=["PUT"]),
    Route("/v2/images/{image_id}/import", import_image, methods=["POST"]),
]
