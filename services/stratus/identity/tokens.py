"""The token format: a small payload, encrypted and authenticated (Fernet).

A token carries only who, how, what scope, when and its audit IDs; roles and
the catalog are looked up again at validation, so a removed role assignment
takes effect at once. Payloads are msgpack arrays with UUIDs packed as bytes,
which keeps tokens near 200 characters.
"""

from __future__ import annotations

import base64
import os
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgpack
from cryptography.fernet import InvalidToken, MultiFernet

from stratus.identity.keys import KeyRepository

FORMAT_VERSION = 1

METHODS = ("password", "token", "application_credential", "totp", "mapped")

SCOPE_UNSCOPED = 0
SCOPE_PROJECT = 1
SCOPE_DOMAIN = 2
SCOPE_SYSTEM = 3
SCOPE_TRUST = 4


class InvalidTokenError(Exception):
    """Not a token we issued, tampered with, or signed by a key no longer held."""


@dataclass
class TokenPayload:
    user_id: str
    methods: list[str]
    scope_type: int = SCOPE_UNSCOPED
    scope_id: str | None = None
    issued_at: float = field(default_factory=time.time)
    expires_at: float = 0.0
    audit_ids: list[str] = field(default_factory=list)
    trust_id: str | None = None
    application_credential_id: str | None = None

    @property
    def audit_id(self) -> str:
        return self.audit_ids[0]

    @property
    def audit_chain_id(self) -> str:
        return self.audit_ids[-1]


def new_audit_id() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(16)).decode().rstrip("=")


def _pack_id(value: str | None) -> bytes | str | None:
    if value is not None and len(value) == 32:
        try:
            return uuid.UUID(hex=value).bytes
        except ValueError:
            pass
    return value


def _unpack_id(value: bytes | str | None) -> str | None:
    if isinstance(value, bytes):
        return uuid.UUID(bytes=value).hex
    return value


def _pack_audit(value: str) -> bytes:
    return base64.urlsafe_b64decode(value + "==")


def _unpack_audit(value: bytes) -> str:
    return base64.urlsafe_b64encode(value).decode().rstrip("=")


def isotime(ts: float) -> str:
    """Keystone's timestamp form: microseconds and a Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def to_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC).replace(tzinfo=None)


class TokenFormatter:
    """Encrypts payloads with the primary key; decrypts with any held key.

    Keys are re-read when the repository changes on disk, so a rotation by
    ``stratus-manage token rotate-keys`` reaches a running service without a
    restart.
    """

    def __init__(self, repository: KeyRepository):
        self.repository = repository
        self._lock = threading.Lock()
        self._stamp: tuple[float, int] | None = None
        self._fernet: MultiFernet | None = None

    def _current(self) -> MultiFernet:
        try:
            stat = os.stat(self.repository.path)
            stamp = (stat.st_mtime, stat.st_nlink)
        except OSError:
            stamp = None
        with self._lock:
            if self._fernet is None or stamp != self._stamp:
                self._fernet = self.repository.fernet()
                self._stamp = stamp
            return self._fernet

    def check(self) -> None:
        """Raise ``KeyRepositoryError`` unless the keys can be used."""
        self._current()

    def encode(self, payload: TokenPayload) -> str:
        packed = msgpack.packb(
            [
                FORMAT_VERSION,
                _pack_id(payload.user_id),
                [METHODS.index(m) for m in payload.methods],
                payload.scope_type,
                _pack_id(payload.scope_id),
                payload.issued_at,
                payload.expires_at,
                [_pack_audit(a) for a in payload.audit_ids],
                _pack_id(payload.trust_id),
                _pack_id(payload.application_credential_id),
            ]
        )
        token = self._current().encrypt(packed).decode()
        # Fernet's own padding adds nothing: drop it, as Keystone does.
        return token.rstrip("=")

    def decode(self, token: str) -> TokenPayload:
        if not token or len(token) > 1024:
            raise InvalidTokenError("malformed token")
        padded = token + "=" * (-len(token) % 4)
        try:
            packed = self._current().decrypt(padded.encode())
            fields = msgpack.unpackb(packed)
            (
                version,
                user_id,
                methods,
                scope_type,
                scope_id,
                issued_at,
                expires_at,
                audit_ids,
                trust_id,
                app_cred_id,
            ) = fields
        except (
            InvalidToken,
            ValueError,
            TypeError,
            msgpack.ExtraData,
            msgpack.FormatError,
            msgpack.StackError,
        ) as exc:
            raise InvalidTokenError("malformed token") from exc
        if version != FORMAT_VERSION:
            raise InvalidTokenError(f"unknown token format version {version}")
        return TokenPayload(
            user_id=_unpack_id(user_id) or "",
            methods=[METHODS[m] for m in methods],
            scope_type=scope_type,
            scope_id=_unpack_id(scope_id),
            issued_at=issued_at,
            expires_at=expires_at,
            audit_ids=[_unpack_audit(a) for a in audit_ids],
            trust_id=_unpack_id(trust_id),
            application_credential_id=_unpack_id(app_cred_id),
        )
