"""Password hashing with Argon2id (RFC 9106), the modern memory-hard hash.

The cost parameters are recorded in every hash, so they can be raised later
without invalidating stored passwords: a hash made with weaker parameters is
re-hashed on the next successful login.
"""

from __future__ import annotations

import os
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# RFC 9106's second recommended option (64 MiB, 3 passes) costs ~100 ms on a
# modern core; identity runs a few workers, so 19 MiB/2 passes (OWASP's
# baseline) keeps concurrent logins from exhausting memory.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)

MAX_PASSWORD_LENGTH = 4096

# Hashing is CPU-bound and takes 19 MiB each: more at once than there are
# cores adds memory, not throughput (the API runs handlers on ~40 threads).
_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 2)


def hash_password(password: str) -> str:
    with _SLOTS:
        return _HASHER.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    if not stored or len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        with _SLOTS:
            return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True
