"""Tokens die when they should, survive what they should, and secrets stay secret."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from tests.api.helpers import admin_token, auth_headers, authenticate, create_user, validate
from tests.conftest import make_identity_server


def test_password_change_disable_and_delete_revoke(identity_server, unique):
    name = f"life-{unique}"
    user_id = create_user(identity_server, name, "first-pass")["id"]
    token = authenticate(identity_server, name, "first-pass").headers["X-Subject-Token"]
    assert validate(identity_server, token).status_code == 200
    changed = httpx.post(
        f"{identity_server.auth_url}/users/{user_id}/password",
        json={"user": {"original_password": "first-pass", "password": "second-pass"}},
    )
    assert changed.status_code == 204
    assert validate(identity_server, token).status_code == 404
    assert authenticate(identity_server, name, "first-pass").status_code == 401
    token = authenticate(identity_server, name, "second-pass").headers["X-Subject-Token"]
    assert validate(identity_server, token).status_code == 200

    headers = auth_headers(admin_token(identity_server))
    url = f"{identity_server.auth_url}/users/{user_id}"
    assert httpx.patch(url, headers=headers, json={"user": {"enabled": False}}).status_code == 200
    assert validate(identity_server, token).status_code == 404
    assert authenticate(identity_server, name, "second-pass").status_code == 401
    assert httpx.patch(url, headers=headers, json={"user": {"enabled": True}}).status_code == 200
    # Re-enabling does not resurrect tokens issued before the disable.
    assert validate(identity_server, token).status_code == 404
    token = authenticate(identity_server, name, "second-pass").headers["X-Subject-Token"]
    assert httpx.delete(url, headers=headers).status_code == 204
    assert validate(identity_server, token).status_code == 404
    assert httpx.get(url, headers=headers).status_code == 404


def test_wrong_original_password_is_refused(identity_server, unique):
    user_id = create_user(identity_server, f"pw-{unique}", "right")["id"]
    response = httpx.post(
        f"{identity_server.auth_url}/users/{user_id}/password",
        json={"user": {"original_password": "wrong", "password": "new"}},
    )
    assert response.status_code == 401
    assert authenticate(identity_server, f"pw-{unique}", "right").status_code == 201


def test_tokens_expire(tmp_path):
    server = make_identity_server(tmp_path / "id", token_expiration=2)
    try:
        short = admin_token(server)
        assert validate(server, short).status_code == 200
        time.sleep(2.2)
        assert (
            httpx.get(f"{server.auth_url}/users", headers={"X-Auth-Token": short}).status_code
            == 401
        )
    finally:
        server.stop()


def test_rotation_restart_lockout_and_quiet_logs(tmp_path):
    server = make_identity_server(tmp_path / "id", lockout_failure_attempts=2, lockout_duration=600)
    try:
        token = admin_token(server)
        rotated = json.loads(server.manage("token", "rotate-keys").stdout)
        assert rotated["changed"] and rotated["primary"] == 2
        # The running service picks the new keys up without a restart; the
        # token signed by the old primary still validates.
        assert validate(server, token).status_code == 200
        after = admin_token(server)
        server.restart()
        assert validate(server, token).status_code == 200
        assert validate(server, after).status_code == 200

        create_user(server, "locked", "good-password")
        for _ in range(2):
            assert authenticate(server, "locked", "bad").status_code == 401
        assert authenticate(server, "locked", "good-password").status_code == 401
    finally:
        server.stop()
    log = (server.workdir / "api.log").read_text()
    assert server.admin_password not in log
    assert "good-password" not in log
    assert token not in log and after not in log
    assert '"request_id": "req-' in log


def test_status_and_db_sync_are_idempotent(identity_server):
    status = identity_server.manage("status")
    assert json.loads(status.stdout)["ok"] is True
    again = json.loads(identity_server.manage("db", "sync").stdout)
    assert again["changed"] is False
    boot = identity_server.manage(
        "bootstrap",
        "--public-url",
        f"{identity_server.url}/v3",
        "--internal-url",
        f"{identity_server.url}/v3",
        env={"STRATUS_BOOTSTRAP_PASSWORD": identity_server.admin_password},
    )
    assert json.loads(boot.stdout)["changed"] is False


def test_manage_reports_configuration_errors(tmp_path):
    import subprocess

    from tests.conftest import BIN

    bad = tmp_path / "bad.conf"
    bad.write_text("[identity]\nmax_active_keys = one\n")
    result = subprocess.run(
        [str(BIN / "stratus-manage"), "--config-file", str(bad), "token", "setup-keys"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "[identity] max_active_keys" in result.stderr


@pytest.mark.parametrize("password", ["", None])
def test_bootstrap_requires_a_password(identity_server, password):
    env = {"STRATUS_BOOTSTRAP_PASSWORD": password} if password is not None else {}
    result = identity_server.manage(
        "bootstrap", "--public-url", "http://x/v3", env=env, check=False
    )
    if password is None:
        import os

        assert "STRATUS_BOOTSTRAP_PASSWORD" not in os.environ
    assert result.returncode == 2
    assert "STRATUS_BOOTSTRAP_PASSWORD" in result.stderr


def test_manage_takes_the_config_file_after_the_subcommand(identity_server):
    import subprocess

    from tests.conftest import BIN

    result = subprocess.run(
        [
            str(BIN / "stratus-manage"),
            "db",
            "version",
            "--config-file",
            str(identity_server.config_path),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    versions = json.loads(result.stdout)
    assert versions["revisions"] == versions["heads"]


def test_operator_policy_file_overrides_a_default(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('"identity:list_regions": "!"\n"identity:list_domains": "@"\n')
    server = make_identity_server(tmp_path / "id", policy_file=policy)
    try:
        headers = {"X-Auth-Token": admin_token(server)}
        regions = httpx.get(f"{server.auth_url}/regions", headers=headers)
        assert regions.status_code == 403
        assert "identity:list_regions" in regions.json()["error"]["message"]
        assert httpx.get(f"{server.auth_url}/domains", headers=headers).status_code == 200
    finally:
        server.stop()


def test_a_broken_policy_file_stops_the_service_with_a_clear_error(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text('"identity:list_regions": "role:admin and"\n')
    with pytest.raises(RuntimeError) as raised:
        make_identity_server(tmp_path / "id", policy_file=policy)
    assert "identity:list_regions" in str(raised.value)
