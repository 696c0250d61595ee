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


def test_image_on_postgresql(tmp_path, postgresql_url, unique):
    """The image tables, listing order with markers and a data round trip on PostgreSQL."""
    import hashlib
    import os

    from tests.conftest import make_image_server

    identity = make_identity_server(tmp_path / "pg-identity-2", database=postgresql_url)
    image = None
    try:
        image = make_image_server(tmp_path / "pg-image", identity)
        env = identity.cli_env()
        source = tmp_path / "disk.raw"
        source.write_bytes(os.urandom(300_000))
        names = [f"pg-{unique}-{i}" for i in range(3)]
        for name in names:
            run_cli(
                env,
                "image",
                "create",
                "--disk-format",
                "raw",
                "--container-format",
                "bare",
                "--file",
                str(source),
                name,
                "-f",
                "json",
            )
        import openstack

        conn = openstack.connect(auth=identity.auth(), region_name="RegionOne")
        # Pages of one image, sorted by name: markers and next links on PostgreSQL.
        listed = [i.name for i in conn.image.images(sort="name:asc", limit=1)]
        assert listed == names
        conn.close()
        target = tmp_path / "back"
        run_cli(env, "image", "save", "--file", str(target), names[1])
        assert (
            hashlib.md5(target.read_bytes()).digest() == hashlib.md5(source.read_bytes()).digest()
        )
        image.restart()
        shown = run_cli(env, "image", "show", names[1], "-f", "json")
        assert shown["status"] == "active" and shown["size"] == 300_000
    finally:
        if image is not None:
            image.stop()
        identity.stop()
