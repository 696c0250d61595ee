"""The compute host's image cache (real qemu-img) and its image and network API clients.

The cache converts real images with the machine's qemu-img; the image API
client runs against an httpx ``MockTransport`` that plays identity and the
image and network services (their HTTP, not their code). The image
service's policy is checked for compute's service user.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratus.common.auth import ServiceCredentials
from stratus.compute.agent.apis import ImageApi, ImageClient, NetworkApi, NetworkClient
from stratus.compute.agent.driver import DriverError
from stratus.compute.agent.image_cache import GIB, ImageCache, backing_file, create_overlay

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="needs qemu-img")

IMAGE_ID = "7b0c5bf6-3f67-4a8e-9d6e-1f3b2a4c5d6e"


def qemu_img(*argv: str) -> dict[str, Any]:
    out = subprocess.run(["qemu-img", *argv], capture_output=True, text=True, check=True)
    return json.loads(out.stdout) if "--output=json" in argv else {}


class Files:
    """An ImageSource of local files, slow on purpose, counting its fetches."""

    def __init__(self, images: dict[str, tuple[Path, dict[str, Any]]], delay: float = 0.0):
        self.images = images
        self.delay = delay
        self.fetches: list[str] = []

    def fetch(self, image_id: str, dest: Path) -> dict[str, Any]:
        self.fetches.append(image_id)
        time.sleep(self.delay)
        path, image = self.images[image_id]
        shutil.copyfile(path, dest)
        return dict(image)


def raw_image(path: Path, size: int = 4 << 20) -> Path:
    with path.open("wb") as handle:
        handle.truncate(size)
        handle.seek(0)
        handle.write(b"a boot sector, more or less")
    return path


def test_a_raw_image_becomes_a_qcow2_base_once(tmp_path: Path) -> None:
    source = Files({IMAGE_ID: (raw_image(tmp_path / "img.raw"), {"disk_format": "raw"})}, 0.3)
    cache = ImageCache(tmp_path / "_base", source)
    results: list[Any] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get(IMAGE_ID))) for _ in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert source.fetches == [IMAGE_ID]  # two spawns, one download
    assert results[0] == results[1]
    cached = results[0]
    assert cached.path == tmp_path / "_base" / IMAGE_ID
    assert cached.virtual_size == 4 << 20 and cached.is_disk
    info = qemu_img("info", "--output=json", str(cached.path))
    assert info["format"] == "qcow2"
    assert sorted(p.name for p in (tmp_path / "_base").iterdir()) == [IMAGE_ID, f"{IMAGE_ID}.json"]
    # Another agent process (a restart) finds it without fetching.
    again = ImageCache(tmp_path / "_base", source).get(IMAGE_ID)
    assert again.virtual_size == cached.virtual_size and source.fetches == [IMAGE_ID]


def test_overlays_grow_but_never_shrink(tmp_path: Path) -> None:
    image = tmp_path / "img.qcow2"  # 2 GiB, nearly empty: quick to copy and convert
    qemu_img("create", "-q", "-f", "qcow2", str(image), str(2 * GIB))
    source = Files({IMAGE_ID: (image, {"disk_format": "qcow2"})})
    base = ImageCache(tmp_path / "_base", source).get(IMAGE_ID)
    for flavor_gb, expected in ((0, 2 * GIB), (1, 2 * GIB), (3, 3 * GIB)):
        disk = tmp_path / f"disk-{flavor_gb}"
        create_overlay(base, disk, flavor_gb)
        info = qemu_img("info", "--output=json", str(disk))
        assert info["virtual-size"] == expected
        assert info["backing-filename"] == str(base.path)
        assert info["backing-filename-format"] == "qcow2"


def test_kernels_and_isos_are_kept_as_they_are(tmp_path: Path) -> None:
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(b"\x7fkernel" * 100)
    source = Files({IMAGE_ID: (kernel, {"disk_format": "aki"})})
    cached = ImageCache(tmp_path / "_base", source).get(IMAGE_ID)
    assert cached.path.read_bytes() == kernel.read_bytes()
    assert cached.disk_format == "aki" and not cached.is_disk
    assert cached.virtual_size == kernel.stat().st_size


@pytest.mark.parametrize(
    ("disk_format", "make", "message"),
    [
        ("floppy", "raw", "disk_format floppy"),
        (None, "raw", "disk_format none"),
        ("vmdk", "junk", "cannot be read as vmdk"),
        ("qcow2", "backed", "backing file"),
        ("qcow2", "junk", "cannot be read as qcow2"),
    ],
)
def test_refused_images_leave_nothing(
    tmp_path: Path, disk_format: str | None, make: str, message: str
) -> None:
    path = tmp_path / "image"
    if make == "raw":
        raw_image(path)
    elif make == "junk":
        path.write_bytes(b"not an image at all\n" * 100)
    else:  # a qcow2 that would read a file of the host's
        qemu_img("create", "-q", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", str(path))
    source = Files({IMAGE_ID: (path, {"disk_format": disk_format})})
    cache = ImageCache(tmp_path / "_base", source)
    with pytest.raises(DriverError, match=message) as error:
        cache.get(IMAGE_ID)
    assert str(tmp_path) not in str(error.value)  # no host paths for the user
    assert list((tmp_path / "_base").iterdir()) == []
    assert cache.lookup(IMAGE_ID) is None


def test_leftovers_of_an_interrupted_fetch_go(tmp_path: Path) -> None:
    base = tmp_path / "_base"
    (base / f".{IMAGE_ID}.crashed").mkdir(parents=True)
    (base / f".{IMAGE_ID}.crashed" / "download").write_bytes(b"half")
    (base / IMAGE_ID).write_bytes(b"data without its record")
    source = Files({IMAGE_ID: (raw_image(tmp_path / "img.raw"), {"disk_format": "raw"})})
    cached = ImageCache(base, source).get(IMAGE_ID)
    assert source.fetches == [IMAGE_ID]
    assert sorted(p.name for p in base.iterdir()) == [IMAGE_ID, f"{IMAGE_ID}.json"]
    assert qemu_img("info", "--output=json", str(cached.path))["format"] == "qcow2"


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_pruning_removes_what_is_unused_and_old(tmp_path: Path) -> None:
    ids = [f"{IMAGE_ID[:-1]}{i}" for i in range(4)]
    source = Files(
        {i: (raw_image(tmp_path / f"{i}.raw", 1 << 20), {"disk_format": "raw"}) for i in ids}
    )
    base = tmp_path / "_base"
    cache = ImageCache(base, source)
    for image_id in ids:
        cache.get(image_id)
        _age(base / f"{image_id}.json", 7200)
    # ids[0] is in use; ids[1] was used again just now (a cache hit counts);
    # ids[2] and ids[3] are unused and old.
    cache.get(ids[1])
    assert source.fetches == ids
    leftover = base / f".{ids[2]}.crashed"
    leftover.mkdir()
    (leftover / "download").write_bytes(b"half")
    young = base / f".{ids[3]}.downloading"
    young.mkdir()
    _age(leftover, 7200)
    assert cache.prune({ids[0]}, min_age=3600) == [ids[2], ids[3]]
    assert sorted(p.name for p in base.iterdir()) == sorted(
        [ids[0], f"{ids[0]}.json", ids[1], f"{ids[1]}.json", young.name]
    )
    assert cache.lookup(ids[2]) is None
    # Nothing is old enough now; a pruned image is fetched again when used.
    assert cache.prune({ids[0]}, min_age=3600) == []
    cache.get(ids[2])
    assert source.fetches == [*ids, ids[2]]
    assert ImageCache(tmp_path / "none", source).prune(set(), 0) == []


def test_backing_files_are_read_from_the_qcow2_header(tmp_path: Path) -> None:
    source = Files({IMAGE_ID: (raw_image(tmp_path / "img.raw"), {"disk_format": "raw"})})
    base = ImageCache(tmp_path / "_base", source).get(IMAGE_ID)
    overlay = tmp_path / "disk"
    create_overlay(base, overlay, 0)
    assert backing_file(overlay) == base.path
    relative = tmp_path / "relative"
    qemu_img(
        "create", "-q", "-f", "qcow2", "-F", "qcow2", "-b", "_base/" + IMAGE_ID, str(relative)
    )  # fmt: skip
    assert backing_file(relative) == tmp_path / "_base" / IMAGE_ID
    assert backing_file(base.path) is None  # a qcow2 file without one
    assert backing_file(tmp_path / "img.raw") is None  # not qcow2
    assert backing_file(tmp_path / "missing") is None
    assert backing_file(tmp_path) is None  # a directory


def test_image_ids_cannot_leave_the_cache(tmp_path: Path) -> None:
    cache = ImageCache(tmp_path / "_base", Files({}))
    for bad in ("../etc", ".hidden", "a/b", ""):
        with pytest.raises(DriverError, match="not an image ID"):
            cache.get(bad)


# --- the image and network APIs ------------------------------------------------------


DATA = b"image data " * 50000
CATALOG = [
    {"type": "image", "endpoints": [{"interface": "internal", "url": "http://image.test"}]},
    {"type": "network", "endpoints": [{"interface": "internal", "url": "http://network.test"}]},
]


class Cloud:
    """Identity, image and network over HTTP, as httpx.MockTransport handlers."""

    def __init__(self, image: dict[str, Any], data: bytes = DATA):
        self.image = image
        self.data = data
        self.logins = 0
        self.requests: list[str] = []
        self.refuse_next_download = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.requests.append(f"{request.method} {url}")
        if url.endswith("/v3/auth/tokens"):
            self.logins += 1
            body = {"token": {"expires_at": "2999-01-01T00:00:00Z", "catalog": CATALOG}}
            return httpx.Response(201, json=body, headers={"X-Subject-Token": f"t{self.logins}"})
        if url == f"http://image.test/v2/images/{self.image['id']}":
            return httpx.Response(200, json=self.image)
        if url == f"http://image.test/v2/images/{self.image['id']}/file":
            if self.refuse_next_download:
                self.refuse_next_download = False
                return httpx.Response(401, json={"error": {"message": "expired"}})
            return httpx.Response(200, content=self.data)
        if url.startswith("http://network.test/v2.0/subnets"):
            ids = request.url.params.get_list("id")
            return httpx.Response(
                200, json={"subnets": [{"id": i, "cidr": "10.0.0.0/24"} for i in ids]}
            )
        return httpx.Response(404, json={"itemNotFound": {"message": "No such thing."}})


def clients(cloud: Cloud) -> tuple[ImageClient, NetworkClient]:
    http = httpx.Client(transport=httpx.MockTransport(cloud))
    credentials = ServiceCredentials(
        auth_url="http://identity.test/v3", username="compute", password="secret"
    )
    image = ImageClient(credentials, http=http)
    network = NetworkClient(credentials, http=http)
    network.login = image.login
    return image, network


def image_document(**changes: Any) -> dict[str, Any]:
    return {
        "id": IMAGE_ID,
        "status": "active",
        "disk_format": "raw",
        "size": len(DATA),
        "checksum": hashlib.md5(DATA, usedforsecurity=False).hexdigest(),
        "os_hash_algo": "sha512",
        "os_hash_value": hashlib.sha512(DATA).hexdigest(),
        **changes,
    }


def test_the_image_api_streams_and_checks_the_data(tmp_path: Path) -> None:
    cloud = Cloud(image_document())
    image, network = clients(cloud)
    cloud.refuse_next_download = True  # a token that expired: renewed once
    got = ImageApi(image).fetch(IMAGE_ID, tmp_path / "data")
    assert got["disk_format"] == "raw"
    assert (tmp_path / "data").read_bytes() == DATA
    assert cloud.logins == 2
    # The network API is reached with the same login.
    found = NetworkApi(network).subnets(["s2", "s1", "s2"])
    assert set(found) == {"s1", "s2"} and cloud.logins == 2
    assert cloud.requests[-1].endswith("/v2.0/subnets?id=s1&id=s2")
    assert NetworkApi(network).subnets([]) == {}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"os_hash_value": "0" * 128}, "does not match its checksum"),
        ({"os_hash_algo": "whirlpool-9", "checksum": "0" * 32}, "does not match its checksum"),
        ({"size": 12}, "the image says 12"),
        ({"status": "queued"}, "is queued, not active"),
        ({"id": "another"}, "was not found"),
    ],
)
def test_bad_image_data_is_refused(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    image, _network = clients(Cloud(image_document(**changes)))
    with pytest.raises(DriverError, match=message):
        ImageApi(image).fetch(IMAGE_ID, tmp_path / "data")
    assert not (tmp_path / "data").exists()


def test_compute_s_service_user_may_read_every_image_and_upload_snapshots() -> None:
    from stratus.common.policy import Enforcer
    from stratus.image.policies import RULES

    enforcer = Enforcer(RULES)
    service = {"user_id": "c", "roles": ["service"], "project_id": "svc"}
    private = {"target": {"owner": "someone-else", "visibility": "private"}}
    assert enforcer.check("image:see_all", service, {"target": {}})
    assert enforcer.check("image:get_image", service, private)
    assert enforcer.check("image:download_image", service, private)
    assert not enforcer.check("image:get_images", service, {"target": {}})
    assert not enforcer.check("image:modify_image", service, private)
    # Server snapshots: the agent uploads into the image the user's token
    # made, and deletes it when the snapshot failed; nothing more.
    assert enforcer.check("image:upload_image", service, private)
    assert enforcer.check("image:delete_image", service, private)
    for rule in ("image:add_image", "image:publicize_image", "image:add_member"):
        assert not enforcer.check(rule, service, private), rule
    member = {"user_id": "u", "roles": ["member", "reader"], "project_id": "p"}
    assert not enforcer.check("image:see_all", member, {"target": {}})
