"""The token key repository, rotated without invalidating live tokens.

Keys are files named by integers in one directory, as Keystone's Fernet
repository: ``0`` is the *staged* key (known to every host before it ever
signs), the highest number is the *primary* key (signs new tokens), and the
ones between are *secondary* (still decrypt tokens they signed). Rotation
promotes the staged key to primary, stages a new key, and removes the oldest
secondaries beyond ``max_active_keys``. Because the staged key is distributed
one rotation ahead, a host that has not yet received the newest primary can
still validate tokens signed with it.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, MultiFernet

from stratus.common.config import ConfigError


class KeyRepositoryError(ConfigError):
    """The key repository is missing, unreadable or holds malformed keys."""


class KeyRepository:
    def __init__(self, path: str | os.PathLike[str], max_active_keys: int = 3):
        if max_active_keys < 2:
            raise KeyRepositoryError("max_active_keys must be at least 2 (staged and primary)")
        self.path = Path(path)
        self.max_active_keys = max_active_keys

    def _indexes(self) -> list[int]:
        if not self.path.is_dir():
            return []
        return sorted(int(p.name) for p in self.path.iterdir() if p.name.isdigit())

    def _write(self, index: int, key: bytes) -> None:
        tmp = self.path / f".{index}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path / str(index))

    def setup(self) -> bool:
        """Create the repository with a staged and a primary key; False if present."""
        if len(self._indexes()) >= 2:
            return False
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        indexes = self._indexes()
        if 0 not in indexes:
            self._write(0, Fernet.generate_key())
        if not [i for i in self._indexes() if i > 0]:
            self._write(1, Fernet.generate_key())
        return True

    def rotate(self) -> dict[str, int]:
        indexes = self._indexes()
        if 0 not in indexes or len(indexes) < 2:
            raise KeyRepositoryError(
                f"key repository {self.path} is not set up; run 'stratus-manage token setup-keys'"
            )
        new_primary = max(indexes) + 1
        os.replace(self.path / "0", self.path / str(new_primary))
        self._write(0, Fernet.generate_key())
        removed = 0
        indexes = self._indexes()
        while len(indexes) > self.max_active_keys:
            oldest = next(i for i in indexes if i > 0)
            (self.path / str(oldest)).unlink()
            indexes.remove(oldest)
            removed += 1
        return {"primary": new_primary, "keys": len(indexes), "removed": removed}

    def load(self) -> list[bytes]:
        """Keys, primary first, then the others newest first, staged last."""
        indexes = self._indexes()
        if len(indexes) < 2:
            raise KeyRepositoryError(
                f"key repository {self.path} holds no usable keys; "
                "run 'stratus-manage token setup-keys'"
            )
        ordered = [*sorted((i for i in indexes if i > 0), reverse=True), 0]
        keys = []
        for index in ordered:
            try:
                keys.append((self.path / str(index)).read_bytes().strip())
            except OSError as exc:
                raise KeyRepositoryError(f"key {self.path / str(index)}: {exc.strerror}") from exc
        return keys

    def fernet(self) -> MultiFernet:
        try:
            return MultiFernet([Fernet(key) for key in self.load()])
        except ValueError as exc:
            raise KeyRepositoryError(f"key repository {self.path}: malformed key: {exc}") from exc
