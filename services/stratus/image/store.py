"""Where image data lives: one interface, one class per backend.

A store hands out a ``Writer`` for new data (written under a temporary name,
made visible by ``commit``, removed by ``abort``), opens committed data for
reading at any offset, and deletes it. The API records the location string
``commit`` returns; nothing outside the store interprets it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path
from typing import BinaryIO, Protocol


class StoreFull(Exception):
    """The store has no room left for the data."""


class StoreError(Exception):
    """The data could not be read or written."""


class Writer(Protocol):
    @property
    def local_path(self) -> Path:
        """A local file holding what was written so far (for inspection)."""

    def write(self, data: bytes) -> None: ...

    def flush(self) -> None:
        """Put what was written so far into ``local_path``."""

    def commit(self) -> str:
        """Make the data durable and visible; its location."""

    def abort(self) -> None:
        """Forget what was written (idempotent)."""


class Store(Protocol):
    def writer(self, image_id: str) -> Writer: ...

    def open(self, location: str) -> BinaryIO: ...

    def delete(self, location: str) -> None:
        """Remove the data (no error if already gone)."""

    def location_for(self, image_id: str) -> str:
        """Where ``writer(image_id)`` commits to (to clean up an unrecorded commit)."""

    def partials(self) -> list[tuple[str, Path]]:
        """(image ID, path) of data written but never committed or aborted."""


class SpoolWriter:
    """Writes to a local ``.partial`` file; subclasses decide what ``commit`` does."""

    def __init__(self, partial: Path):
        self.partial = partial
        self._file: BinaryIO | None = open(partial, "wb")  # noqa: SIM115 - closed in commit/abort

    @property
    def local_path(self) -> Path:
        return self.partial

    def write(self, data: bytes) -> None:
        assert self._file is not None, "write after commit or abort"
        try:
            self._file.write(data)
        except OSError as exc:
            raise translate_os_error(exc) from exc

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as exc:
                raise translate_os_error(exc) from exc

    def abort(self) -> None:
        """Forget what was written (idempotent)."""
        if self._file is not None:
            with contextlib.suppress(OSError):  # the data is being thrown away
                self._file.close()
            self._file = None
        self.partial.unlink(missing_ok=True)


class FilesystemWriter(SpoolWriter):
    def __init__(self, final: Path):
        self.final = final
        super().__init__(final.with_name(final.name + ".partial"))

    def commit(self) -> str:
        assert self._file is not None, "commit after commit or abort"
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            os.replace(self.partial, self.final)
            _fsync_dir(self.final.parent)
        except OSError as exc:
            self.abort()
            raise translate_os_error(exc) from exc
        return f"file://{self.final}"


class FilesystemStore:
    """Image data as files named by image ID in one directory."""

    def __init__(self, datadir: str | os.PathLike[str]):
        self.datadir = Path(datadir)

    def check(self) -> None:
        """Refuse to start on a directory that cannot hold data."""
        self.datadir.mkdir(parents=True, exist_ok=True, mode=0o750)
        if not os.access(self.datadir, os.W_OK | os.X_OK):
            raise StoreError(f"{self.datadir} is not writable by this service")

    def writer(self, image_id: str) -> FilesystemWriter:
        try:
            return FilesystemWriter(self.datadir / image_id)
        except OSError as exc:
            raise translate_os_error(exc) from exc

    def _path(self, location: str) -> Path:
        if not location.startswith("file://"):
            raise StoreError(f"not a filesystem location: {location}")
        path = Path(location[len("file://") :])
        if path.parent != self.datadir:
            raise StoreError(f"location outside the store: {location}")
        return path

    def open(self, location: str) -> BinaryIO:
        try:
            return open(self._path(location), "rb")
        except FileNotFoundError as exc:
            raise StoreError(f"image data missing at {location}") from exc

    def delete(self, location: str) -> None:
        self._path(location).unlink(missing_ok=True)

    def location_for(self, image_id: str) -> str:
        return f"file://{self.datadir / image_id}"

    def partials(self) -> list[tuple[str, Path]]:
        return [(p.name.removesuffix(".partial"), p) for p in self.datadir.glob("*.partial")]


def translate_os_error(exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return StoreFull(str(exc))
    return StoreError(str(exc))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
