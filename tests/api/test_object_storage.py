"""Object storage: a real Swift cluster configured by roles/object_storage, with Stratus tokens.

The ``swift_cluster`` fixture (tests/swift_cluster.py) runs Debian's Swift on
loopback with configuration rendered from the role's templates; its proxy
validates tokens against the session's identity server. These tests drive it
with the ``openstack`` CLI, openstacksdk, the ``swift`` CLI and plain HTTP:
containers and objects, large objects (SLO and DLO), TempURL, ACLs across
projects, quotas, bulk operations, versioning, CORS, ``/info``, the token
cache after a revocation, expiring objects and anonymous requests.
Each test works in a project (and so an account) of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import (
    create_role,
    grant,
    issue_token,
    project_scope,
    project_user,
    request,
    revoke_token,
    validate,
)
from tests.conftest import BIN

PASSWORD = "pw-secret-1"  # project_user's users' password
TIMEOUT = 30


def http(method: str, url: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
    headers = dict(kwargs.pop("headers", None) or {})
    if token:
        headers["X-Auth-Token"] = token
    return httpx.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)


def ok(response: httpx.Response, *statuses: int) -> httpx.Response:
    wanted = statuses or (200, 201, 202, 204)
    assert response.status_code in wanted, (
        f"{response.request.method} {response.request.url} -> {response.status_code} "
        f"(wanted {wanted}): {response.text[:500]}"
    )
    return response


@pytest.fixture
def account(identity_server: Any, swift_cluster: Any, unique: str) -> dict[str, Any]:
    """A new project with a member user, and its Swift account URL."""
    return other_account(identity_server, swift_cluster, f"swift-{unique}")


def other_account(identity_server: Any, swift_cluster: Any, name: str) -> dict[str, Any]:
    """A project called ``name`` with a member user of that name (project_user's
    fields: project_id, user_id, name, token, headers) and ``url``, its account."""
    who = project_user(identity_server, name)
    who["url"] = swift_cluster.endpoint_for(who["project_id"])
    return who


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- the clients ---------------------------------------------------------------------------


def test_openstack_cli_containers_and_objects(
    openstack_cli: Any, account: dict[str, Any], tmp_path: Path
) -> None:
    def cli(*args: str) -> Any:
        return openstack_cli(
            *args, user=account["name"], password=PASSWORD, project=account["name"]
        )

    container = f"cli-{account['name']}"
    created = cli("container", "create", container, "-f", "json")
    assert created[0]["container"] == container
    assert container in [c["Name"] for c in cli("container", "list", "-f", "json")]
    shown = cli("container", "show", container, "-f", "json")
    assert shown["container"] == container
    assert shown["account"] == f"AUTH_{account['project_id']}"

    data = os.urandom(4096)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    cli("object", "create", container, str(source), "--name", "data.bin", "-f", "json")
    assert [o["Name"] for o in cli("object", "list", container, "-f", "json")] == ["data.bin"]
    shown = cli("object", "show", container, "data.bin", "-f", "json")
    assert int(shown["content-length"]) == len(data)
    assert shown["etag"] == hashlib.md5(data).hexdigest()
    saved = tmp_path / "saved.bin"
    cli("object", "save", container, "data.bin", "--file", str(saved))
    assert sha256(saved.read_bytes()) == sha256(data)

    cli("object", "delete", container, "data.bin")
    ok(http("HEAD", f"{account['url']}/{container}/data.bin", account["token"]), 404)
    cli("container", "delete", container)
    ok(http("HEAD", f"{account['url']}/{container}", account["token"]), 404)


def test_openstacksdk_object_store(identity_server: Any, account: dict[str, Any]) -> None:
    import openstack

    conn = openstack.connect(
        auth=identity_server.auth(account["name"], PASSWORD, project=account["name"]),
        region_name="RegionOne",
        identity_api_version="3",
    )
    try:
        store = conn.object_store
        assert store.get_endpoint().rstrip("/") == account["url"]
        container = store.create_container(name="sdk")
        assert container.name == "sdk"
        data = os.urandom(10_000)
        store.upload_object(container="sdk", name="blob", data=data)
        assert store.download_object("blob", container="sdk") == data
        store.set_object_metadata("blob", container="sdk", colour="blue")
        meta = store.get_object_metadata("blob", container="sdk")
        assert meta.metadata.get("colour") == "blue"
        head = ok(http("HEAD", f"{account['url']}/sdk/blob", account["token"])).headers
        assert head["X-Object-Meta-Colour"] == "blue"
        assert [o.name for o in store.objects("sdk")] == ["blob"]
        store.delete_object("blob", container="sdk")
        assert list(store.objects("sdk")) == []
        store.delete_container("sdk")
        assert "sdk" not in [c.name for c in store.containers()]
    finally:
        conn.close()


def swift_cli(identity_server: Any, who: dict[str, Any], *args: str, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OS_", "ST_"))}
    result = subprocess.run(
        [
            str(BIN / "swift"),
            "--auth-version",
            "3",
            "--os-auth-url",
            identity_server.auth_url,
            "--os-username",
            who["name"],
            "--os-password",
            PASSWORD,
            "--os-user-domain-name",
            "Default",
            "--os-project-name",
            who["name"],
            "--os-project-domain-name",
            "Default",
            "--os-region-name",
            "RegionOne",
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )
    assert result.returncode == 0, f"swift {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.mark.parametrize("kind", ["slo", "dlo"])
def test_swift_cli_segmented_upload(
    identity_server: Any, account: dict[str, Any], tmp_path: Path, kind: str
) -> None:
    data = os.urandom(300_000)
    (tmp_path / "big.bin").write_bytes(data)
    options = ["--use-slo"] if kind == "slo" else ["--use-dlo"]
    swift_cli(
        identity_server, account, "upload", "large", "big.bin", "-S", "65536", *options,
        cwd=tmp_path,
    )  # fmt: skip
    head = ok(http("HEAD", f"{account['url']}/large/big.bin", account["token"])).headers
    if kind == "slo":
        assert head.get("X-Static-Large-Object") == "True"
    else:
        assert head.get("X-Object-Manifest", "").startswith("large_segments/")
    assert int(head["Content-Length"]) == len(data)
    segments = http("GET", f"{account['url']}/large_segments", account["token"]).text.split()
    assert len(segments) == 5  # 300000 bytes in 65536-byte segments

    swift_cli(
        identity_server, account, "download", "large", "big.bin", "-o", "out.bin", cwd=tmp_path
    )
    assert sha256((tmp_path / "out.bin").read_bytes()) == sha256(data)
    # A plain GET through the proxy stitches the segments too.
    assert sha256(http("GET", f"{account['url']}/large/big.bin", account["token"]).content) == (
        sha256(data)
    )


# --- TempURL -------------------------------------------------------------------------------


def temp_url(url_path: str, key: str, expires: int, method: str = "GET") -> str:
    body = f"{method}\n{expires}\n{url_path}"
    sig = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    return f"?temp_url_sig={sig}&temp_url_expires={expires}"


def test_tempurl(swift_cluster: Any, account: dict[str, Any]) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/shared", token))
    ok(http("PUT", f"{url}/shared/file.txt", token, content=b"temp url content"))
    key = "k-" + os.urandom(8).hex()
    ok(http("POST", url, token, headers={"X-Account-Meta-Temp-URL-Key": key}))
    path = f"/v1/AUTH_{account['project_id']}/shared/file.txt"
    proxy = swift_cluster.proxy_url

    valid = http("GET", proxy + path + temp_url(path, key, int(time.time()) + 60))
    assert ok(valid, 200).content == b"temp url content"
    expired = http("GET", proxy + path + temp_url(path, key, int(time.time()) - 10))
    ok(expired, 401)
    signed = temp_url(path, key, int(time.time()) + 60)
    sig_end = len("?temp_url_sig=") + 64
    flipped = "0" if signed[sig_end - 1] != "0" else "1"
    tampered = signed[: sig_end - 1] + flipped + signed[sig_end:]
    ok(http("GET", proxy + path + tampered), 401)
    ok(http("GET", proxy + path + signed), 200)
    # Signed for another object: refused.
    other = f"/v1/AUTH_{account['project_id']}/shared/other.txt"
    ok(http("GET", proxy + path + temp_url(other, key, int(time.time()) + 60)), 401)
    # Signed with another key: refused.
    ok(http("GET", proxy + path + temp_url(path, key + "x", int(time.time()) + 60)), 401)


# --- ACLs ----------------------------------------------------------------------------------


def test_container_acls_across_projects(
    identity_server: Any, swift_cluster: Any, account: dict[str, Any]
) -> None:
    url, token = account["url"], account["token"]
    other = other_account(identity_server, swift_cluster, f"{account['name']}-b")
    ok(http("PUT", f"{url}/private", token))
    ok(http("PUT", f"{url}/private/doc.txt", token, content=b"secret"))

    ok(http("GET", f"{url}/private", other["token"]), 403)
    ok(http("GET", f"{url}/private/doc.txt", other["token"]), 403)
    ok(http("PUT", f"{url}/private/new.txt", other["token"], content=b"x"), 403)
    ok(http("GET", f"{url}/private/doc.txt"), 401)

    ok(
        http(
            "POST",
            f"{url}/private",
            token,
            headers={"X-Container-Read": f"{other['project_id']}:*"},
        )
    )
    assert ok(http("GET", f"{url}/private", other["token"]), 200).text.split() == ["doc.txt"]
    assert ok(http("GET", f"{url}/private/doc.txt", other["token"]), 200).content == b"secret"
    # Read access is not write access.
    ok(http("PUT", f"{url}/private/new.txt", other["token"], content=b"x"), 403)
    ok(
        http(
            "POST",
            f"{url}/private",
            token,
            headers={"X-Container-Write": f"{other['project_id']}:*"},
        )
    )
    ok(http("PUT", f"{url}/private/new.txt", other["token"], content=b"x"), 201)
    # Anonymous reads: still refused, until the container is public.
    ok(http("GET", f"{url}/private/doc.txt"), 401)
    ok(http("POST", f"{url}/private", token, headers={"X-Container-Read": ".r:*"}))
    assert ok(http("GET", f"{url}/private/doc.txt"), 200).content == b"secret"
    ok(http("GET", f"{url}/private"), 401)  # objects readable, the listing is not
    ok(http("POST", f"{url}/private", token, headers={"X-Container-Read": ".r:*,.rlistings"}))
    assert sorted(ok(http("GET", f"{url}/private"), 200).text.split()) == ["doc.txt", "new.txt"]


# --- quotas --------------------------------------------------------------------------------


def test_container_quotas(account: dict[str, Any]) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/bytes", token, headers={"X-Container-Meta-Quota-Bytes": "10"}))
    ok(http("PUT", f"{url}/bytes/big", token, content=b"x" * 11), 413)
    ok(http("PUT", f"{url}/bytes/a", token, content=b"0123456789"), 201)
    # The proxy checks the container's usage as it last saw it; a HEAD refreshes it.
    ok(http("HEAD", f"{url}/bytes", token))
    ok(http("PUT", f"{url}/bytes/b", token, content=b"x"), 413)
    ok(http("PUT", f"{url}/count", token, headers={"X-Container-Meta-Quota-Count": "1"}))
    ok(http("PUT", f"{url}/count/a", token, content=b"a"), 201)
    ok(http("HEAD", f"{url}/count", token))
    ok(http("PUT", f"{url}/count/b", token, content=b"b"), 413)
    ok(http("GET", f"{url}/count/b", token), 404)
    assert http("GET", f"{url}/count", token).text.split() == ["a"]


def reseller_admin(identity_server: Any, name: str) -> str:
    """A user with the ResellerAdmin role (made as the role makes it); its token."""
    roles = request(identity_server, "GET", "/roles", params={"name": "ResellerAdmin"})
    if not roles.json()["roles"]:
        create_role(identity_server, "ResellerAdmin")
    who = project_user(identity_server, name)
    role = request(identity_server, "GET", "/roles", params={"name": "ResellerAdmin"}).json()
    role_id = role["roles"][0]["id"]
    grant(identity_server, f"/projects/{who['project_id']}/users/{who['user_id']}/roles/{role_id}")
    return issue_token(identity_server, name, PASSWORD, project_scope(who["project_id"]))[0]


def test_account_quota_set_by_reseller_admin(
    identity_server: Any, swift_cluster: Any, account: dict[str, Any]
) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/c", token))
    # The account's owner may not set its own quota.
    ok(http("POST", url, token, headers={"X-Account-Meta-Quota-Bytes": "20"}), 403)
    assert "X-Account-Meta-Quota-Bytes" not in ok(http("HEAD", url, token)).headers
    reseller = reseller_admin(identity_server, f"{account['name']}-reseller")
    ok(http("POST", url, reseller, headers={"X-Account-Meta-Quota-Bytes": "20"}), 204)
    assert ok(http("HEAD", url, token)).headers["X-Account-Meta-Quota-Bytes"] == "20"
    ok(http("PUT", f"{url}/c/too-big", token, content=b"x" * 21), 413)
    ok(http("PUT", f"{url}/c/a", token, content=b"x" * 15), 201)
    # Accounts learn their containers' usage from the container updater; then
    # a HEAD refreshes the proxy's view of the account.
    swift_cluster.run_once("container-updater")
    assert ok(http("HEAD", url, token)).headers["X-Account-Bytes-Used"] == "15"
    ok(http("PUT", f"{url}/c/b", token, content=b"x" * 15), 413)
    ok(http("PUT", f"{url}/c/small", token, content=b"x" * 5), 201)


# --- bulk ----------------------------------------------------------------------------------


def test_bulk_delete_and_extract_archive(account: dict[str, Any]) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/bulk", token))
    for name in ("one", "two", "three"):
        ok(http("PUT", f"{url}/bulk/{name}", token, content=name.encode()))
    deleted = ok(
        http(
            "POST",
            f"{url}?bulk-delete",
            token,
            headers={"Content-Type": "text/plain", "Accept": "application/json"},
            content=b"/bulk/one\n/bulk/two\n",
        ),
        200,
    ).json()
    assert deleted["Number Deleted"] == 2, deleted
    assert deleted["Errors"] == []
    assert http("GET", f"{url}/bulk", token).text.split() == ["three"]

    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, body in (("dir/a.txt", b"alpha"), ("b.txt", b"beta")):
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    created = ok(
        http(
            "PUT",
            f"{url}/unpacked?extract-archive=tar",
            token,
            headers={"Accept": "application/json"},
            content=archive.getvalue(),
        ),
        200,
    ).json()
    assert created["Number Files Created"] == 2, created
    assert sorted(http("GET", f"{url}/unpacked", token).text.split()) == ["b.txt", "dir/a.txt"]
    assert ok(http("GET", f"{url}/unpacked/dir/a.txt", token)).content == b"alpha"


# --- versioning ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["X-Versions-Location", "X-History-Location"])
def test_versioned_writes(account: dict[str, Any], header: str) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/archive", token))
    ok(http("PUT", f"{url}/docs", token, headers={header: "archive"}))
    ok(http("PUT", f"{url}/docs/page", token, content=b"v1"))
    ok(http("PUT", f"{url}/docs/page", token, content=b"v2"))
    assert http("GET", f"{url}/docs/page", token).content == b"v2"
    assert len(http("GET", f"{url}/archive", token).text.split()) == 1
    ok(http("DELETE", f"{url}/docs/page", token))
    if header == "X-Versions-Location":  # stack mode: the previous version comes back
        assert ok(http("GET", f"{url}/docs/page", token)).content == b"v1"
    else:  # history mode: deleted, with v1, v2 and a delete marker kept
        ok(http("GET", f"{url}/docs/page", token), 404)
        assert len(http("GET", f"{url}/archive", token).text.split()) == 3


def test_object_versioning(account: dict[str, Any]) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/vers", token, headers={"X-Versions-Enabled": "true"}))
    assert http("HEAD", f"{url}/vers", token).headers["X-Versions-Enabled"] == "True"
    first = ok(http("PUT", f"{url}/vers/o", token, content=b"first")).headers["X-Object-Version-Id"]
    ok(http("PUT", f"{url}/vers/o", token, content=b"second"))
    listing = ok(http("GET", f"{url}/vers?versions&format=json", token)).json()
    assert [(v["name"], v["is_latest"]) for v in listing] == [("o", True), ("o", False)]
    assert listing[1]["version_id"] == first
    old = http("GET", f"{url}/vers/o", token, params={"version-id": first})
    assert ok(old).content == b"first"
    ok(http("DELETE", f"{url}/vers/o", token))
    ok(http("GET", f"{url}/vers/o", token), 404)
    assert len(ok(http("GET", f"{url}/vers?versions&format=json", token)).json()) == 3


# --- CORS, /info, anonymous ----------------------------------------------------------------


def test_cors_preflight(swift_cluster: Any, account: dict[str, Any]) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/web", token))
    ok(http("PUT", f"{url}/web/page.html", token, content=b"<p>hi</p>"))
    (allowed,) = swift_cluster.cors_allow_origin
    preflight = {"Access-Control-Request-Method": "GET"}
    answer = http("OPTIONS", f"{url}/web/page.html", headers={**preflight, "Origin": allowed})
    assert ok(answer, 200).headers.get("Access-Control-Allow-Origin") == allowed
    assert "GET" in answer.headers.get("Access-Control-Allow-Methods", "")
    refused = http(
        "OPTIONS", f"{url}/web/page.html", headers={**preflight, "Origin": "http://evil.example"}
    )
    assert refused.status_code != 200
    assert "Access-Control-Allow-Origin" not in refused.headers


# What Swift 2.30 itself reports: dlo and keystoneauth register nothing in /info
# (they are exercised by the DLO upload and every token test instead).
INFO_SECTIONS = {
    "slo",
    "tempurl",
    "bulk_delete",
    "bulk_upload",
    "account_quotas",
    "container_quotas",
    "versioned_writes",
    "object_versioning",
    "ratelimit",
    "symlink",
    "container_sync",
}


def test_info(swift_cluster: Any) -> None:
    info = ok(http("GET", f"{swift_cluster.proxy_url}/info"), 200).json()
    assert set(info) >= INFO_SECTIONS, sorted(INFO_SECTIONS - set(info))
    assert info["swift"]["version"].startswith("2.30")
    assert info["versioned_writes"]["allowed_flags"]
    assert "sha256" in info["tempurl"]["allowed_digests"]


def test_requests_without_a_valid_token_are_refused(account: dict[str, Any]) -> None:
    ok(http("GET", account["url"]), 401)
    ok(http("PUT", f"{account['url']}/c"), 401)
    ok(http("GET", account["url"], "not-a-token"), 401)
    ok(http("PUT", f"{account['url']}/c", "not-a-token"), 401)
    ok(http("GET", account["url"], account["token"]), 200, 204)


def test_other_projects_account_is_forbidden(
    identity_server: Any, swift_cluster: Any, account: dict[str, Any]
) -> None:
    other = other_account(identity_server, swift_cluster, f"{account['name']}-c")
    ok(http("GET", account["url"], other["token"]), 403)
    ok(http("PUT", f"{account['url']}/c", other["token"]), 403)


# --- tokens and expiry ---------------------------------------------------------------------


def test_revoked_token_stops_working_within_token_cache_time(
    identity_server: Any, swift_cluster: Any, account: dict[str, Any]
) -> None:
    token = issue_token(
        identity_server, account["name"], PASSWORD, project_scope(account["project_id"])
    )[0]
    ok(http("GET", account["url"], token), 200, 204)  # validated, now cached
    cached_at = time.monotonic()
    revoke_token(identity_server, token)
    assert validate(identity_server, token).status_code == 404  # identity refuses it now
    deadline = cached_at + swift_cluster.token_cache_time + 3
    first = True
    while True:
        asked_at = time.monotonic()
        status = http("GET", account["url"], token).status_code
        if first and asked_at - cached_at < swift_cluster.token_cache_time - 1:
            # Well within the cache time the proxy answers from its token cache.
            assert status in (200, 204), f"{status}: the validated token was not cached"
        first = False
        if status == 401:
            break
        assert status in (200, 204), status
        assert time.monotonic() < deadline, (
            f"a revoked token still works {time.monotonic() - cached_at:.1f} s after it was "
            f"cached (token_cache_time {swift_cluster.token_cache_time} s)"
        )
        time.sleep(0.25)
    # And it stays refused.
    ok(http("GET", account["url"], token), 401)


def object_data_files(swift_cluster: Any, account: str, container: str, name: str) -> list[Path]:
    """The object's .data files on the devices (where its hash says it lives)."""
    prefix = swift_cluster.variables["stratus_object_storage_hash_path_prefix"]
    suffix = swift_cluster.variables["stratus_object_storage_hash_path_suffix"]
    digest = hashlib.md5(f"{prefix}/{account}/{container}/{name}{suffix}".encode()).hexdigest()
    return [
        path
        for device in swift_cluster.devices
        for path in device.glob(f"objects/*/{digest[-3:]}/{digest}/*.data")
    ]


def test_expiring_object(swift_cluster: Any, account: dict[str, Any]) -> None:
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/tmp", token))
    ok(
        http(
            "PUT", f"{url}/tmp/short", token, content=b"soon gone", headers={"X-Delete-After": "2"}
        )
    )
    ok(http("PUT", f"{url}/tmp/long", token, content=b"stays"))
    assert "X-Delete-At" in ok(http("HEAD", f"{url}/tmp/short", token)).headers
    stored = object_data_files(swift_cluster, f"AUTH_{account['project_id']}", "tmp", "short")
    assert len(stored) == 3  # three replicas, one per device
    time.sleep(3)
    ok(http("GET", f"{url}/tmp/short", token), 404)
    ok(http("GET", f"{url}/tmp/long", token), 200)
    # What a storage host's daemons do over time: the object updater delivers
    # queue entries the object server could not (async pendings), the
    # container updater lists the queue's containers in its account, and the
    # expirer deletes what is due.
    for daemon in ("object-updater", "container-updater", "object-expirer"):
        swift_cluster.run_once(daemon)
    left = object_data_files(swift_cluster, f"AUTH_{account['project_id']}", "tmp", "short")
    assert left == [], left
    assert http("GET", f"{url}/tmp", token).text.split() == ["long"]


def test_replicator_restores_a_lost_replica_over_rsync(
    swift_cluster: Any, account: dict[str, Any]
) -> None:
    """The role's replication path: the object replicator pushes the missing copy
    to the device that lost it through the rsync modules of rsyncd.conf."""
    if not swift_cluster.runs_rsync:
        pytest.skip("the cluster runs no rsync daemon (needs root and rsync)")
    url, token = account["url"], account["token"]
    ok(http("PUT", f"{url}/rep", token))
    data = os.urandom(5000)
    ok(http("PUT", f"{url}/rep/obj", token, content=data), 201)
    where = (swift_cluster, f"AUTH_{account['project_id']}", "rep", "obj")
    stored = object_data_files(*where)
    assert len(stored) == 3
    lost = stored[0]
    partition = lost.parent.parent.parent  # <device>/objects/<partition>
    shutil.rmtree(partition)  # as a replaced disk would come back: empty
    assert len(object_data_files(*where)) == 2
    # The replicator of a device holding a copy asks the others for their
    # partition's hashes (REPLICATE), finds the empty one and rsyncs the
    # differing suffixes over.
    swift_cluster.run_once("object-replicator", timeout=120)
    restored = object_data_files(*where)
    assert len(restored) == 3, restored
    assert lost in restored
    assert lost.read_bytes() == data  # a .data file is the body, its metadata in xattrs
    assert "object" in swift_cluster.log_tail("rsyncd", 200)


def test_account_ratelimit_refuses_container_writes_beyond_the_rate(
    identity_server: Any, swift_cluster: Any, unique: str
) -> None:
    """stratus_object_storage_account_ratelimit: container PUT/DELETE per second
    per account. At 0.01 (one per 100 s) the second write would have to wait
    longer than the middleware's longest sleep (60 s), so it is refused at once
    with 498; other accounts keep their own budget. A cluster of its own: the
    limit would slow every other test."""
    from tests import swift_cluster as swift
    from tests.conftest import SWIFT_SERVICE_PASSWORD

    cluster = swift.start_swift_cluster(
        identity_server.url,
        SWIFT_SERVICE_PASSWORD,
        overrides={"stratus_object_storage_account_ratelimit": 0.01},
    )
    try:
        conf = (cluster.config_dir / "proxy-server.conf").read_text()
        assert "account_ratelimit = 0.01" in conf
        first = other_account(identity_server, cluster, f"rate-{unique}")
        second = other_account(identity_server, cluster, f"rate2-{unique}")
        with httpx.Client(timeout=30) as http:
            put = http.put(f"{first['url']}/one", headers=first["headers"])
            assert put.status_code == 201, put.text
            again = http.put(f"{first['url']}/two", headers=first["headers"])
            assert again.status_code == 498, (again.status_code, again.text)
            assert http.head(f"{first['url']}/two", headers=first["headers"]).status_code == 404
            # Reads are not limited, and another account has its own budget.
            assert http.head(f"{first['url']}/one", headers=first["headers"]).status_code == 204
            other = http.put(f"{second['url']}/one", headers=second["headers"])
            assert other.status_code == 201, other.text
    finally:
        cluster.stop()
