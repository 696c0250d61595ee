"""Image data: streaming upload and download, ranges, inspection, limits, recovery.

Every refused or interrupted upload must leave the image ``queued`` with no
data left behind; a crash of the service mid-upload is recovered at the next
start. Servers with special settings (size cap, quotas, a full disk, import
conversion) are started per test beside the session's image server; they
share its database and identity.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.api.helpers import admin_token, assert_error, auth_headers
from tests.conftest import make_image_server

OCTET = {"Content-Type": "application/octet-stream"}


@pytest.fixture(scope="module")
def token(identity_server):
    return admin_token(identity_server)


def client(server, token):
    return httpx.Client(base_url=server.url, headers=auth_headers(token), timeout=60)


@pytest.fixture(scope="module")
def http(image_server, token):
    with client(image_server, token) as c:
        yield c


def create(http, disk_format="raw", **body):
    response = http.post(
        "/v2/images", json={"disk_format": disk_format, "container_format": "bare", **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


def leftovers(server) -> list[str]:
    """Files in the data and staging directories that are not committed images."""
    images = server.workdir / "images"
    staging = server.workdir / "staging"
    found = [p.name for p in images.glob("*.partial")]
    found += [p.name for p in staging.iterdir() if p.is_file()] if staging.exists() else []
    return found


def qemu_img(*args: str) -> None:
    subprocess.run(["qemu-img", *args], check=True, capture_output=True)


def test_range_requests(http, unique):
    data = os.urandom(100_000)
    image = create(http, name=f"range-{unique}")
    url = f"/v2/images/{image['id']}/file"
    assert http.put(url, content=data, headers=OCTET).status_code == 204
    whole = http.get(url)
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["Content-MD5"] == hashlib.md5(data).hexdigest()
    part = http.get(url, headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.content == data[10:20]
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert http.get(url, headers={"Range": "bytes=99990-"}).content == data[99990:]
    assert http.get(url, headers={"Range": "bytes=-5"}).content == data[-5:]
    # A resumed download: what the client had plus the rest is the image.
    assert data[:500] + http.get(url, headers={"Range": "bytes=500-"}).content == data
    for bad in ("bytes=200000-", "bytes=0-1,5-6", "lines=1-2", "bytes=20-10"):
        response = http.get(url, headers={"Range": bad})
        assert_error(response, 416)
        assert response.headers["Content-Range"] == f"bytes */{len(data)}"


def test_download_of_an_image_without_data(http, unique):
    image = create(http, name=f"empty-{unique}")
    response = http.get(f"/v2/images/{image['id']}/file")
    assert response.status_code == 204 and response.content == b""


def test_upload_rules(http, unique):
    image = create(http, name=f"rules-{unique}")
    url = f"/v2/images/{image['id']}/file"
    assert_error(http.put(url, content=b"x", headers={"Content-Type": "text/plain"}), 415)
    assert http.put(url, content=b"data", headers=OCTET).status_code == 204
    assert_error(http.put(url, content=b"again", headers=OCTET), 409)
    formatless = http.post("/v2/images", json={"name": f"noformat-{unique}"}).json()
    assert_error(http.put(f"/v2/images/{formatless['id']}/file", content=b"x", headers=OCTET), 400)
    assert_error(
        http.put(
            "/v2/images/00000000-0000-0000-0000-000000000000/file", content=b"x", headers=OCTET
        ),
        404,
    )


@pytest.mark.parametrize(
    ("declared", "make"),
    [
        ("qcow2", "random"),
        ("raw", "qcow2"),
        ("vmdk", "qcow2"),
        ("qcow2", "qcow2-backing"),
        ("qcow2", "qcow2-data-file"),
        ("vhdx", "random"),
        ("iso", "random"),
    ],
)
def test_refused_content_leaves_the_image_queued(
    http, image_server, tmp_path, unique, declared, make
):
    path = tmp_path / "disk"
    if make == "random":
        path.write_bytes(os.urandom(256 * 1024))
    elif make == "qcow2":
        qemu_img("create", "-f", "qcow2", str(path), "1M")
    elif make == "qcow2-backing":
        (tmp_path / "base").write_bytes(b"\0" * 1024)
        qemu_img("create", "-f", "qcow2", "-b", "/etc/passwd", "-F", "raw", str(path), "1M")
    else:
        qemu_img(
            "create", "-f", "qcow2", "-o", f"data_file={tmp_path / 'external'}", str(path), "1M"
        )
    image = create(http, disk_format=declared, name=f"refused-{unique}")
    url = f"/v2/images/{image['id']}"
    response = http.put(f"{url}/file", content=path.read_bytes(), headers=OCTET)
    body = assert_error(response, 400)
    assert "refused" in body["message"]
    after = http.get(url).json()
    assert after["status"] == "queued" and after["size"] is None and after["checksum"] is None
    assert leftovers(image_server) == []
    assert not (image_server.workdir / "images" / image["id"]).exists()


def test_formats_are_inspected_and_virtual_size_recorded(http, tmp_path, unique):
    for fmt, qemu_fmt in (("qcow2", "qcow2"), ("vmdk", "vmdk"), ("vhd", "vpc"), ("vdi", "vdi")):
        path = tmp_path / f"disk.{fmt}"
        qemu_img("create", "-f", qemu_fmt, str(path), "8M")
        image = create(http, disk_format=fmt, name=f"{fmt}-{unique}")
        url = f"/v2/images/{image['id']}"
        assert http.put(f"{url}/file", content=path.read_bytes(), headers=OCTET).status_code == 204
        shown = http.get(url).json()
        assert shown["status"] == "active"
        assert shown["virtual_size"] >= 8 * 1024 * 1024, (fmt, shown["virtual_size"])
        assert shown["size"] == path.stat().st_size


def test_size_cap_and_quotas(image_server, identity_server, token, tmp_path, unique):
    server = make_image_server(
        tmp_path / "capped",
        identity_server,
        register=False,
        image_size_cap=1024 * 1024,
        quota_image_count=-1,
        quota_image_size_total=-1,
    )
    try:
        with client(server, token) as http:
            image = create(http, name=f"cap-{unique}")
            url = f"/v2/images/{image['id']}/file"
            big = os.urandom(1024 * 1024 + 1)
            assert_error(http.put(url, content=big, headers=OCTET), 413)

            def chunked():
                for i in range(0, len(big), 65536):
                    yield big[i : i + 65536]

            assert_error(http.put(url, content=chunked(), headers=OCTET), 413)
            assert http.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
            assert leftovers(server) == []
            assert http.put(url, content=big[:1024], headers=OCTET).status_code == 204
    finally:
        server.stop()


def test_project_quotas(image_server, identity_server, tmp_path, unique):
    from tests.api.helpers import project_user

    owner = project_user(identity_server, f"quota-{unique}")
    server = make_image_server(
        tmp_path / "quota",
        identity_server,
        register=False,
        quota_image_count=2,
        quota_image_size_total=150_000,
    )
    try:
        with httpx.Client(base_url=server.url, headers=owner["headers"], timeout=60) as http:
            first = create(http, name="q1")
            second = create(http, name="q2")
            assert_error(http.post("/v2/images", json={"name": "q3"}), 413)
            put = http.put(f"/v2/images/{first['id']}/file", content=b"a" * 100_000, headers=OCTET)
            assert put.status_code == 204
            over = http.put(f"/v2/images/{second['id']}/file", content=b"b" * 60_000, headers=OCTET)
            assert "quota" in assert_error(over, 413)["message"]
            assert http.get(f"/v2/images/{second['id']}").json()["status"] == "queued"
            usage = http.get("/v2/info/usage").json()["usage"]
            assert usage["image_size_total"] == {"limit": 150_000, "usage": 100_000}
            assert usage["image_count_total"] == {"limit": 2, "usage": 2}
            assert leftovers(server) == []
    finally:
        server.stop()


def _start_partial_upload(server, token, image_id: str, total: int, sent: int) -> socket.socket:
    """A client that announces ``total`` bytes and sends only ``sent``."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"PUT /v2/images/{image_id}/file HTTP/1.1\r\nHost: x\r\nX-Auth-Token: {token}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {total}\r\n\r\n"
    )
    sock.sendall(head.encode() + os.urandom(sent))
    return sock


def _wait_status(http, image_id: str, status: str, seconds: float = 15) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        image = http.get(f"/v2/images/{image_id}").json()
        if image["status"] == status or time.monotonic() > deadline:
            return image
        time.sleep(0.1)


def test_interrupted_upload_returns_to_queued(http, image_server, token, unique):
    image = create(http, name=f"interrupted-{unique}")
    sock = _start_partial_upload(
        image_server, token, image["id"], 20 * 1024 * 1024, 6 * 1024 * 1024
    )
    assert _wait_status(http, image["id"], "saving")["status"] == "saving"
    sock.close()
    assert _wait_status(http, image["id"], "queued")["status"] == "queued"
    assert leftovers(image_server) == []
    # The image takes a complete upload afterwards.
    data = os.urandom(4096)
    assert (
        http.put(f"/v2/images/{image['id']}/file", content=data, headers=OCTET).status_code == 204
    )
    assert http.get(f"/v2/images/{image['id']}/file").content == data


def test_crash_mid_upload_is_recovered_at_restart(
    image_server, identity_server, token, tmp_path, unique
):
    server = make_image_server(tmp_path / "crash", identity_server, register=False)
    try:
        with client(server, token) as http:
            image = create(http, name=f"crash-{unique}")
            sock = _start_partial_upload(
                server, token, image["id"], 64 * 1024 * 1024, 9 * 1024 * 1024
            )
            assert _wait_status(http, image["id"], "saving")["status"] == "saving"
            deadline = time.monotonic() + 10
            while not list((server.workdir / "images").glob("*.partial")):
                assert time.monotonic() < deadline, "no partial data was written"
                time.sleep(0.05)
            server.kill()
            sock.close()
            assert server.process.poll() is not None  # really gone
        server.start()
        with client(server, token) as http:
            assert http.get(f"/v2/images/{image['id']}").json()["status"] == "queued"
            assert leftovers(server) == []
            assert (
                http.put(
                    f"/v2/images/{image['id']}/file", content=b"after", headers=OCTET
                ).status_code
                == 204
            )
    finally:
        server.stop()


def test_glance_direct_import(http, image_server, tmp_path, unique):
    source = tmp_path / "disk.qcow2"
    qemu_img("create", "-f", "qcow2", str(source), "2M")
    image = create(http, disk_format="qcow2", name=f"import-{unique}")
    url = f"/v2/images/{image['id']}"
    assert_error(http.post(f"{url}/import", json={"method": {"name": "glance-direct"}}), 409)
    assert http.put(f"{url}/stage", content=source.read_bytes(), headers=OCTET).status_code == 204
    assert http.get(url).json()["status"] == "uploading"
    assert_error(http.post(f"{url}/import", json={"method": {"name": "web-download"}}), 400)
    assert_error(http.post(f"{url}/import", json={"method": "glance-direct"}), 400)
    response = http.post(f"{url}/import", json={"method": {"name": "glance-direct"}})
    assert response.status_code == 202, response.text
    done = _wait_status(http, image["id"], "active")
    assert done["status"] == "active"
    assert done["checksum"] == hashlib.md5(source.read_bytes()).hexdigest()
    assert done["virtual_size"] == 2 * 1024 * 1024
    assert leftovers(image_server) == []


def test_failed_import_says_why(http, image_server, unique):
    image = create(http, disk_format="qcow2", name=f"badimport-{unique}")
    url = f"/v2/images/{image['id']}"
    assert http.put(f"{url}/stage", content=os.urandom(70_000), headers=OCTET).status_code == 204
    assert http.post(f"{url}/import", json={"method": {"name": "glance-direct"}}).status_code == 202
    failed = _wait_status(http, image["id"], "queued")
    assert failed["status"] == "queued"
    assert "qcow2" in failed["stratus_import_error"]
    assert leftovers(image_server) == []


def test_import_converts_to_the_operators_format(
    image_server, identity_server, token, tmp_path, unique
):
    server = make_image_server(
        tmp_path / "convert", identity_server, register=False, import_convert_to="raw"
    )
    try:
        source = tmp_path / "disk.qcow2"
        qemu_img("create", "-f", "qcow2", str(source), "3M")
        with client(server, token) as http:
            image = create(http, disk_format="qcow2", name=f"convert-{unique}")
            url = f"/v2/images/{image['id']}"
            assert (
                http.put(f"{url}/stage", content=source.read_bytes(), headers=OCTET).status_code
                == 204
            )
            assert (
                http.post(f"{url}/import", json={"method": {"name": "glance-direct"}}).status_code
                == 202
            )
            done = _wait_status(http, image["id"], "active")
            assert done["disk_format"] == "raw"
            assert done["size"] == 3 * 1024 * 1024 == done["virtual_size"]
            assert http.get(f"{url}/file").content == b"\0" * (3 * 1024 * 1024)
    finally:
        server.stop()


def _can_mount() -> str | None:
    if os.geteuid() != 0:
        return "mounting a small tmpfs to fill needs root"
    return None


@pytest.mark.skipif(_can_mount() is not None, reason=_can_mount() or "")
def test_disk_full(image_server, identity_server, token, tmp_path, unique):
    workdir = tmp_path / "full"
    images = workdir / "images"
    images.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(images)], check=True)
    server = None
    try:
        server = make_image_server(workdir, identity_server, register=False)
        with client(server, token) as http:
            image = create(http, name=f"full-{unique}")
            url = f"/v2/images/{image['id']}"
            response = http.put(f"{url}/file", content=os.urandom(3 * 1024 * 1024), headers=OCTET)
            assert "full" in assert_error(response, 413)["message"]
            assert http.get(url).json()["status"] == "queued"
            assert list(images.iterdir()) == []
            assert http.put(f"{url}/file", content=b"small", headers=OCTET).status_code == 204
    finally:
        if server is not None:
            server.stop()
        subprocess.run(["umount", str(images)], check=False)


def test_upload_and_download_in_constant_memory(http, image_server, unique):
    """256 MiB through the service must not grow it by anything like 256 MiB."""
    size, piece = 256 * 1024 * 1024, os.urandom(1024 * 1024)
    image = create(http, name=f"memory-{unique}")
    url = f"/v2/images/{image['id']}/file"
    pid = image_server.process.pid

    def rss_high_water() -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmHWM")

    before = rss_high_water()
    body = (piece for _ in range(size // len(piece)))
    assert http.put(url, content=body, headers=OCTET).status_code == 204
    received = 0
    with http.stream("GET", url) as response:
        for chunk in response.iter_bytes():
            received += len(chunk)
    assert received == size
    growth = rss_high_water() - before
    assert growth < 64 * 1024 * 1024, f"the service grew by {growth / 2**20:.0f} MiB"
