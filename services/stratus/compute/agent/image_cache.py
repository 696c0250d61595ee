"""The host's image cache and the disks made from it, with qemu-img.

Images are downloaded once per host into ``<instances_path>/_base/``, one
file per image ID, and every server's root disk is a qcow2 overlay on it:

- disk images (``disk_format`` raw, qcow2, vmdk, vdi, vhd, vhdx, and ami,
  whose data is a raw disk) are converted to qcow2 (``qemu-img convert``,
  always with the input format named, never probed: a raw image whose first
  bytes look like a qcow2 header must stay raw data). Before converting,
  ``qemu-img info`` must not find a backing file or an external data file
  (either would make qemu-img read a file of the host's), and a vmdk must
  be a single self-contained file (monolithicSparse or streamOptimized);
- kernels (``aki``), ramdisks (``ari``) and ISO images (``iso``) are kept as
  downloaded.

A cached image is the data file ``_base/<id>`` and the record
``_base/<id>.json`` (disk format, virtual size, the image's properties).
Both are written under a temporary name and renamed, data first, so a
crash leaves either a complete entry or none; leftovers of an interrupted
download (``_base/.<id>.*``) are removed by the next fetch of that image.
One lock per image ID makes concurrent spawns of the same image wait for a
single download; different images download side by side. The lock is the
process's: one agent per host owns its ``instances_path``.

Every use of a cached image touches its record, so the record's time is
the image's last use. ``prune`` removes the images that no disk of the host
uses (the driver says which are in use: the backing files of its overlays,
the ISO images its domains boot) and that nothing has used for a minimum
age, and the leftovers of interrupted downloads of that age. Its check of
the age is made under the image's lock, which a spawn holds while it takes
the image, so a spawn never loses the image it is being given.

Where the image comes from is an ``ImageSource``: the image API in
production (``apis.ImageApi``), local files in tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from stratus.compute.agent.driver import DriverError

# disk_format -> qemu-img's name of the format, for the images that are disks.
DISK_FORMATS = {
    "raw": "raw",
    "ami": "raw",
    "qcow2": "qcow2",
    "vmdk": "vmdk",
    "vdi": "vdi",
    "vhd": "vpc",
    "vhdx": "vhdx",
}
KEPT_FORMATS = ("aki", "ari", "iso")  # used as downloaded
VMDK_TYPES = ("monolithicSparse", "streamOptimized")
IMAGE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
GIB = 1 << 30


class ImageSource(Protocol):
    """Where images come from."""

    def fetch(self, image_id: str, dest: Path) -> dict[str, Any]:
        """Write the image's data to ``dest`` (a new file) and return the image.

        The image is its Glance v2 document: ``disk_format``, ``size``,
        ``kernel_id``... Raise ``DriverError`` when it cannot be had (unknown,
        not active, unreachable, checksum mismatch).
        """
        ...


@dataclass(frozen=True)
class CachedImage:
    """An image in the cache: its file, format and size."""

    image_id: str
    path: Path
    disk_format: str
    virtual_size: int  # bytes: the disk's size for disk images, else the file's
    properties: Mapping[str, Any]

    @property
    def is_disk(self) -> bool:
        return self.disk_format in DISK_FORMATS


def qemu_img(*argv: str, what: str) -> str:
    """Run ``qemu-img``; its output, or ``DriverError`` saying ``what`` failed."""
    try:
        result = subprocess.run(
            ["qemu-img", *argv], capture_output=True, text=True, check=False, timeout=3600
        )
    except FileNotFoundError:
        raise DriverError("qemu-img is not installed on the host.") from None
    except subprocess.TimeoutExpired:
        raise DriverError(f"{what}: qemu-img took more than an hour.") from None
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["no reason given"])[-1]
        # The host's paths mean nothing to the user: "Could not open '...': why".
        detail = re.sub(r"^(qemu-img: )?(Could not open '[^']*': )?", "", detail)
        raise DriverError(f"{what}: {detail}")
    return result.stdout


def image_info(path: Path, fmt: str, what: str) -> dict[str, Any]:
    """``qemu-img info`` of ``path`` read as ``fmt``."""
    out = qemu_img("info", "-f", fmt, "--output=json", str(path), what=what)
    return json.loads(out)  # type: ignore[no-any-return]


def check_safe(info: Mapping[str, Any], image_id: str) -> None:
    """Refuse images that would make qemu-img read other files of the host."""
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise DriverError(f"Image {image_id} has a backing file; such images are refused.")
    specific = (info.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file"):
        raise DriverError(f"Image {image_id} has an external data file; it is refused.")
    if info.get("format") == "vmdk":
        kind = specific.get("create-type")
        if kind not in VMDK_TYPES:
            raise DriverError(
                f"Image {image_id} is a vmdk of type {kind}; only "
                f"{' and '.join(VMDK_TYPES)} (single-file) vmdk images are accepted."
            )
        if len(specific.get("extents") or []) > 1:
            raise DriverError(f"Image {image_id} is a vmdk of several files; it is refused.")


def _write_json(path: Path, value: Mapping[str, Any]) -> None:
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
    with partial.open("w") as handle:
        json.dump(value, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


class ImageCache:
    """``<instances_path>/_base``: images by ID, each fetched once (see the module)."""

    def __init__(self, base_dir: Path, source: ImageSource):
        self.base_dir = base_dir
        self.source = source
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    @contextlib.contextmanager
    def _lock(self, image_id: str) -> Iterator[None]:
        with self._locks_lock:
            lock = self._locks.setdefault(image_id, threading.Lock())
        with lock:
            yield

    def _paths(self, image_id: str) -> tuple[Path, Path]:
        if not IMAGE_ID_RE.match(image_id):
            raise DriverError(f"{image_id!r} is not an image ID.")
        return self.base_dir / image_id, self.base_dir / f"{image_id}.json"

    def lookup(self, image_id: str) -> CachedImage | None:
        """The cached image, or None when it is not (completely) here."""
        data, record = self._paths(image_id)
        try:
            entry = json.loads(record.read_text())
        except (FileNotFoundError, ValueError):
            return None
        if not data.is_file():
            return None
        return CachedImage(
            image_id, data, entry["disk_format"], entry["virtual_size"], entry["properties"]
        )

    def get(self, image_id: str) -> CachedImage:
        """The image, fetched and converted first if it is not cached yet."""
        self._paths(image_id)
        with self._lock(image_id):
            cached = self.lookup(image_id)
            if cached is None:
                return self._fill(image_id)
            # The record's time is the image's last use (see prune).
            with contextlib.suppress(FileNotFoundError):
                os.utime(self._paths(image_id)[1])
            return cached

    def _fill(self, image_id: str) -> CachedImage:
        data, record = self._paths(image_id)
        self.base_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.base_dir.glob(f".{image_id}.*"):
            shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{image_id}.", dir=self.base_dir))
        try:
            download = work / "download"
            properties = self.source.fetch(image_id, download)
            disk_format = str(properties.get("disk_format") or "")
            if disk_format in DISK_FORMATS:
                fmt = DISK_FORMATS[disk_format]
                check_safe(
                    image_info(download, fmt, f"Image {image_id} cannot be read as {disk_format}"),
                    image_id,
                )
                converted = work / "base.qcow2"
                qemu_img(
                    "convert", "-q", "-f", fmt, "-O", "qcow2", str(download), str(converted),
                    what=f"Image {image_id} cannot be converted from {disk_format} to qcow2",
                )  # fmt: skip
                download.unlink()
                info = image_info(converted, "qcow2", f"Image {image_id} was not converted")
                size = int(info["virtual-size"])
                final = converted
            elif disk_format in KEPT_FORMATS:
                final, size = download, download.stat().st_size
            else:
                raise DriverError(
                    f"Image {image_id} has disk_format {disk_format or 'none'}, which this "
                    "host cannot boot."
                )
            final.chmod(0o644)  # QEMU reads bases as its own user
            os.replace(final, data)
            _write_json(
                record,
                {"disk_format": disk_format, "virtual_size": size, "properties": properties},
            )
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return CachedImage(image_id, data, disk_format, size, properties)

    def prune(self, in_use: Collection[str], min_age: float) -> list[str]:
        """Remove the images not ``in_use`` whose last use is ``min_age``
        seconds ago or more, and download leftovers as old; the IDs removed."""
        if not self.base_dir.is_dir():
            return []
        now = time.time()
        removed = []
        for record in sorted(self.base_dir.glob("*.json")):
            image_id = record.name.removesuffix(".json")
            if image_id in in_use or not IMAGE_ID_RE.match(image_id):
                continue
            with self._lock(image_id):
                try:
                    if now - record.stat().st_mtime < min_age:
                        continue  # used since (a spawn may be taking it)
                except FileNotFoundError:
                    continue
                for path in (record, self.base_dir / image_id):
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
            removed.append(image_id)
        for leftover in self.base_dir.glob(".*"):
            with contextlib.suppress(FileNotFoundError):
                if now - leftover.stat().st_mtime >= min_age:
                    if leftover.is_dir():
                        shutil.rmtree(leftover, ignore_errors=True)
                    else:
                        leftover.unlink()
        return removed

    def forget(self, image_id: str) -> None:
        """Remove an image from the cache (its servers must be gone)."""
        data, record = self._paths(image_id)
        with self._lock(image_id):
            for path in (record, data):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


QCOW2_MAGIC = b"QFI\xfb"


def backing_file(path: Path) -> Path | None:
    """The backing file a qcow2 file's header names (None: not a qcow2 file,
    or none named). Read from the header itself: cheap enough for every disk
    of the host, and never a probe of the backing file."""
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
            if len(header) < 20 or header[:4] != QCOW2_MAGIC:
                return None
            offset, size = struct.unpack(">QI", header[8:20])
            if not offset or not 0 < size <= 1023:  # qemu's limit on the name
                return None
            handle.seek(offset)
            name = handle.read(size).decode("utf-8", errors="replace")
    except OSError:
        return None
    return Path(name) if os.path.isabs(name) else path.parent / name


def create_overlay(base: CachedImage, target: Path, size_gb: int) -> None:
    """A qcow2 overlay on ``base``, grown to ``size_gb`` GiB if larger (never shrunk).

    A size of 0 keeps the image's own size (flavors with ``disk`` 0).
    """
    size = size_gb * GIB
    argv = ["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", str(base.path), str(target)]
    if size > base.virtual_size:
        argv.append(str(size))
    qemu_img(*argv, what=f"The disk of image {base.image_id} cannot be created")


def create_blank(target: Path, size_bytes: int) -> None:
    """An empty qcow2 disk of ``size_bytes``."""
    qemu_img(
        "create", "-q", "-f", "qcow2", str(target), str(size_bytes), what="A disk cannot be made"
    )
