"""Token format and the key repository's rotation."""

from __future__ import annotations

import time

import pytest

from stratus.identity.keys import KeyRepository, KeyRepositoryError
from stratus.identity.tokens import (
    SCOPE_PROJECT,
    InvalidTokenError,
    TokenFormatter,
    TokenPayload,
    new_audit_id,
)


def payload(**kwargs):
    values = {
        "user_id": "a" * 32,
        "methods": ["password"],
        "scope_type": SCOPE_PROJECT,
        "scope_id": "b" * 32,
        "expires_at": time.time() + 60,
        "audit_ids": [new_audit_id()],
    }
    values.update(kwargs)
    return TokenPayload(**values)


def test_round_trip_and_size(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    assert repo.setup() is True
    assert repo.setup() is False
    formatter = TokenFormatter(repo)
    original = payload(user_id="default-user-not-a-uuid", trust_id="c" * 32)
    token = formatter.encode(original)
    assert len(token) < 255
    decoded = formatter.decode(token)
    assert decoded == original


def test_tampering_is_detected(tmp_path):
    repo = KeyRepository(tmp_path / "keys")
    repo.setup()
    formatter = TokenFormatter(repo)
    token = formatter.encode(payload())
    flipped = token[:50] + ("A" if token[50] != "A" else "B") + token[51:]
    for bad in (flipped, token[:-5], "", "x" * 2000):
        with pytest.raises(InvalidTokenError):
            formatter.decode(bad)


def test_rotation_keeps_live_tokens_valid(tmp_path):
    repo = KeyRepository(tmp_path / "keys", max_active_keys=3)
    repo.setup()
    formatter = TokenFormatter(repo)
    before = formatter.encode(payload())
    repo.rotate()
    after_one = formatter.encode(payload())
    assert formatter.decode(before)  # signed by the now-secondary key
    repo.rotate()
    assert formatter.decode(after_one)
    # Three keys kept: staged, primary, one secondary. 'before' was signed by
    # the key that has now been dropped.
    assert len(list((tmp_path / "keys").iterdir())) == 3
    with pytest.raises(InvalidTokenError):
        formatter.decode(before)


def test_staged_key_validates_before_it_signs(tmp_path):
    """Another host that already rotated signs with our staged key: we accept it."""
    ours = KeyRepository(tmp_path / "ours")
    ours.setup()
    theirs_path = tmp_path / "theirs"
    theirs_path.mkdir()
    for key in (ours.path).iterdir():
        (theirs_path / key.name).write_bytes(key.read_bytes())
    theirs = KeyRepository(theirs_path)
    theirs.rotate()
    token = TokenFormatter(theirs).encode(payload())
    assert TokenFormatter(ours).decode(token)


def test_unusable_repository(tmp_path):
    with pytest.raises(KeyRepositoryError, match="setup-keys"):
        KeyRepository(tmp_path / "absent").load()
    with pytest.raises(KeyRepositoryError):
        KeyRepository(tmp_path / "absent").rotate()
    with pytest.raises(KeyRepositoryError):
        KeyRepository(tmp_path, max_active_keys=1)
