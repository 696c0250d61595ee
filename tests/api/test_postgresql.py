"""Identity on PostgreSQL: migrations, bootstrap and the CLI journey."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_identity_server, run_cli

pytestmark = pytest.mark.postgresql


def test_identity_on_postgresql(tmp_path, postgresql_url, unique):
    server = make_identity_server(tmp_path / "pg-identity", database=postgresql_url)
    try:
        status = json.loads(server.manage("status").stdout)
        assert status["ok"], status
        env = server.cli_env()
        assert run_cli(env, "token", "issue", "-f", "json")["project_id"]
        project = run_cli(env, "project", "create", f"pg-{unique}", "--tag", "a", "-f", "json")
        assert project["tags"] == ["a"]
        run_cli(env, "user", "create", f"pg-{unique}", "--password", "pw", "-f", "json")
        names = {u["Name"] for u in run_cli(env, "user", "list", "-f", "json")}
        assert f"pg-{unique}" in names
        dup = run_cli(env, "project", "create", f"pg-{unique}", check=False)
        assert dup.returncode != 0 and "409" in dup.stderr
        server.restart()
        assert run_cli(env, "project", "show", f"pg-{unique}", "-f", "json")["id"] == project["id"]
    finally:
        server.stop()
