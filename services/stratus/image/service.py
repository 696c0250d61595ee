"""What the image handlers share: database, store, policy, settings, locks."""

from __future__ import annotations

import fcntl
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratus.common.config import Config, ConfigError
from stratus.common.db import Database, engine_from_config
from stratus.common.policy import Enforcer
from stratus.image import settings, swift_store
from stratus.image.policies import RULES
from stratus.image.store import FilesystemStore, Store, StoreError, StoreFull
from stratus.image.swift_store import SwiftStore


@dataclass
class ImageService:
    config: Config
    db: Database
    enforcer: Enforcer
    store: Store
    staging: Path
    host: str = field(default_factory=socket.gethostname)

    @property
    def options(self) -> Any:
        return self.config.section(settings.SECTION)

    @classmethod
    def from_config(cls, config: Config) -> ImageService:
        section = config.section(settings.SECTION)
        unknown = set(section.disk_formats) - set(settings.DISK_FORMATS)
        if unknown:
            raise ConfigError(f"[image] disk_formats: unknown formats {', '.join(sorted(unknown))}")
        unknown = set(section.container_formats) - set(settings.CONTAINER_FORMATS)
        if unknown:
            raise ConfigError(
                f"[image] container_formats: unknown formats {', '.join(sorted(unknown))}"
            )
        staging = Path(section.staging_dir)
        try:
            (staging / "locks").mkdir(parents=True, exist_ok=True, mode=0o750)
        except OSError as exc:
            raise ConfigError(f"[image] cannot use the image directories: {exc}") from exc
        store: FilesystemStore | SwiftStore
        if section.store == "swift":
            container = section.swift_store_container
            if not container or "/" in container or len(container) > 240:
                raise ConfigError(
                    f"[image] swift_store_container: {container!r} is not a container name "
                    "(1 to 240 characters, no /)"
                )
            store = swift_store.from_config(
                section, config.section(settings.AUTHTOKEN_SECTION), staging
            )
            try:
                store.check()
            except (OSError, StoreError, StoreFull) as exc:
                raise ConfigError(f"[image] store = swift: object storage: {exc}") from exc
        else:
            store = FilesystemStore(section.filesystem_store_datadir)
            try:
                store.check()
            except (OSError, StoreError) as exc:
                raise ConfigError(f"[image] cannot use the image directories: {exc}") from exc
        return cls(
            config=config,
            db=Database(engine_from_config(config)),
            enforcer=Enforcer(RULES, section.policy_file or None),
            store=store,
            staging=staging,
        )

    def staged_path(self, image_id: str) -> Path:
        return self.staging / image_id

    def lock(self, image_id: str, *, wait: bool = False) -> DataLock | None:
        """The lock of an image's data work on this host, or None if it is held.

        Every upload, stage and import holds it from before the image leaves
        its resting status until the database says how the work ended;
        recovery takes it to learn that no live process works on the image.
        """
        path = self.staging / "locks" / f"{image_id}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return None
        return DataLock(fd)

    def forget_lock(self, image_id: str) -> None:
        """Remove a deleted image's lock file.

        Lock files are not removed when released: a process that opened the
        file just before its removal would lock a file nobody else sees.
        A deleted image never takes part in data work again.
        """
        (self.staging / "locks" / f"{image_id}.lock").unlink(missing_ok=True)


class DataLock:
    """A held ``ImageService.lock``; ``release`` is idempotent."""

    def __init__(self, fd: int):
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock; the file stays (see forget_lock)
            self._fd = None
