"""Nova's image proxy (``/v2.1/images``, microversions up to 2.35) over the
real image service: lists with Nova's filters and pages, Nova's view of an
image, its properties as metadata, delete, and what another project sees."""

from __future__ import annotations

from uuid import uuid4

import httpx
import pytest

from tests.api.compute_helpers import compute_client, compute_error
from tests.api.helpers import project_user


@pytest.fixture(scope="module")
def people(identity_server, compute_stack, image_server):
    tag = uuid4().hex[:8]
    alice = project_user(identity_server, f"img-alice-{tag}")
    bob = project_user(identity_server, f"img-bob-{tag}")
    with (
        compute_client(compute_stack.api, alice["headers"]) as a,
        compute_client(compute_stack.api, bob["headers"]) as b,
        httpx.Client(base_url=image_server.url, headers=alice["headers"], timeout=60) as glance,
    ):
        yield {"tag": tag, "a": a, "b": b, "glance": glance}


def make_image(glance: httpx.Client, name: str, upload: bool = True, **extra) -> dict:
    body = {"name": name, "disk_format": "raw", "container_format": "bare", **extra}
    created = glance.post("/v2/images", json=body)
    assert created.status_code == 201, created.text
    image = created.json()
    if upload:
        put = glance.put(
            f"/v2/images/{image['id']}/file",
            content=b"\0" * 4096,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert put.status_code == 204, put.text
    return image


def test_lists_views_and_filters(people):
    a, glance, tag = people["a"], people["glance"], people["tag"]
    active = make_image(glance, f"proxy-{tag}", min_ram=64, colour="blue")
    queued = make_image(glance, f"proxy-q-{tag}", upload=False)
    try:
        listed = a.get("/images").json()["images"]
        mine = {i["id"]: i for i in listed if i["name"].startswith("proxy-")}
        assert {active["id"], queued["id"]} <= set(mine)
        assert set(mine[active["id"]]) == {"id", "name", "links"}
        rels = [link["rel"] for link in mine[active["id"]]["links"]]
        assert rels == ["self", "bookmark", "alternate"]

        shown = a.get(f"/images/{active['id']}").json()["image"]
        assert shown["status"] == "ACTIVE" and shown["progress"] == 100
        assert shown["minRam"] == 64 and shown["minDisk"] == 0
        assert shown["metadata"] == {"colour": "blue"}
        assert shown["OS-EXT-IMG-SIZE:size"] == 4096
        assert shown["created"].endswith("Z") and "server" not in shown
        saving = a.get(f"/images/{queued['id']}").json()["image"]
        assert (saving["status"], saving["progress"]) == ("SAVING", 25)

        def names(**params):
            found = a.get("/images/detail", params=params).json()["images"]
            return {i["name"] for i in found if i["name"].startswith("proxy-")}

        assert names(name=f"proxy-{tag}") == {f"proxy-{tag}"}
        assert names(status="ACTIVE") >= {f"proxy-{tag}"}
        assert f"proxy-q-{tag}" in names(status="SAVING")
        assert f"proxy-q-{tag}" not in names(status="ACTIVE")
        assert names(minRam="64", name=f"proxy-{tag}") == {f"proxy-{tag}"}
        assert names(minRam="65", name=f"proxy-{tag}") == set()
        assert names(**{"changes-since": "2000-01-01T00:00:00Z"}) >= {f"proxy-{tag}"}
        assert names(**{"changes-since": "2999-01-01T00:00:00Z"}) == set()
        compute_error(a.get("/images", params={"changes-since": "yesterday"}), 400)

        # Pages: newest first, a next link while there is more.
        first = a.get("/images", params={"limit": 1}).json()
        assert len(first["images"]) == 1 and first["images_links"][0]["rel"] == "next"
        marker = first["images"][0]["id"]
        rest = a.get("/images", params={"marker": marker}).json()["images"]
        assert marker not in {i["id"] for i in rest}
        assert len(rest) == len(listed) - 1
        compute_error(a.get("/images", params={"marker": str(uuid4())}), 400)
    finally:
        for image in (active, queued):
            glance.delete(f"/v2/images/{image['id']}")


def test_metadata_and_delete(people):
    a, b, glance, tag = people["a"], people["b"], people["glance"], people["tag"]
    image = make_image(glance, f"meta-{tag}", colour="blue", size_label="s")
    path = f"/images/{image['id']}/metadata"
    assert a.get(path).json() == {"metadata": {"colour": "blue", "size_label": "s"}}
    merged = a.post(path, json={"metadata": {"colour": "red", "shape": "round"}})
    assert merged.json()["metadata"] == {"colour": "red", "size_label": "s", "shape": "round"}
    replaced = a.put(path, json={"metadata": {"only": "this"}})
    assert replaced.json() == {"metadata": {"only": "this"}}
    assert a.get(path).json() == {"metadata": {"only": "this"}}
    # The image service has them as properties; its core attributes stay.
    props = glance.get(f"/v2/images/{image['id']}").json()
    assert props["only"] == "this" and "colour" not in props and props["name"] == f"meta-{tag}"

    assert a.get(f"{path}/only").json() == {"meta": {"only": "this"}}
    compute_error(a.get(f"{path}/missing"), 404)
    assert a.put(f"{path}/key", json={"meta": {"key": "v"}}).json() == {"meta": {"key": "v"}}
    compute_error(a.put(f"{path}/key", json={"meta": {"other": "v"}}), 400)
    compute_error(a.put(f"{path}/key", json={"meta": {"key": "v", "x": "y"}}), 400)
    compute_error(a.post(path, json={"metadata": {"k": 1}}), 400)
    compute_error(a.post(path, json={"meta": {}}), 400)
    assert a.delete(f"{path}/key").status_code == 204
    compute_error(a.delete(f"{path}/key"), 404)
    assert a.get(path).json() == {"metadata": {"only": "this"}}

    # Another project sees nothing of a private image and changes nothing.
    compute_error(b.get(f"/images/{image['id']}"), 404)
    compute_error(b.post(path, json={"metadata": {"x": "y"}}), 404)
    compute_error(b.delete(f"/images/{image['id']}"), 404)
    assert image["id"] not in {i["id"] for i in b.get("/images").json()["images"]}

    assert a.delete(f"/images/{image['id']}").status_code == 204
    compute_error(a.get(f"/images/{image['id']}"), 404)
    compute_error(a.delete(f"/images/{image['id']}"), 404)
    compute_error(a.delete("/images/"), 404)
    compute_error(a.get(f"{path}"), 404)
