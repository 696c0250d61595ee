"""Snapshots (createImage), rebuild, resize with confirm and revert, and
interfaces (os-interface) end to end on the fake driver: the API, the
scheduler and the agent as processes, the image and network services real,
driven by the openstack CLI, openstacksdk and HTTP.

Each action: what it makes (an image with its data and properties, a new
flavor and its claims, a port and the addresses), its instance action, its
refusals (wrong state, bad input, quotas) with nothing made, a failure on
the host handled as Nova handles it, and restarts of the scheduler and the
agent in the middle.
"""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.api.compute_helpers import compute_client, compute_error, version_header
from tests.api.helpers import admin_token, auth_headers, project_user
from tests.compute_stack import wait_for

PASSWORD = "pw-secret-1"


@pytest.fixture(scope="module")
def admin(identity_server, compute_stack):
    with compute_client(compute_stack.api, auth_headers(admin_token(identity_server))) as c:
        yield c


def _flavor(openstack_cli, name, ram, vcpus, disk, ephemeral=0):
    return openstack_cli(
        "flavor", "create", "--ram", str(ram), "--vcpus", str(vcpus), "--disk", str(disk),
        "--ephemeral", str(ephemeral), name, "-f", "json",
    )  # fmt: skip


def _image(openstack_cli, path, name):
    return openstack_cli(
        "image", "create", "--disk-format", "raw", "--container-format", "bare", "--public",
        "--file", str(path), "--property", "os_distro=stratus-test", "--min-ram", "64",
        name, "-f", "json",
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(
    identity_server, compute_stack, image_server, network_server, openstack_cli, tmp_path_factory
):
    """A project with a network, two public images and three flavors."""
    from uuid import uuid4

    tag = uuid4().hex[:8]
    alice = project_user(identity_server, f"life-{tag}")

    def as_alice(*args, check=True):
        return openstack_cli(
            *args, user=alice["name"], password=PASSWORD, project=alice["name"], check=check
        )

    data = tmp_path_factory.mktemp("img") / "disk.raw"
    data.write_bytes(b"\0" * 65536)
    images = [_image(openstack_cli, data, f"life-img{i}-{tag}") for i in (1, 2)]
    flavors = {
        "small": _flavor(openstack_cli, f"life-s-{tag}", 256, 1, 1),
        "big": _flavor(openstack_cli, f"life-b-{tag}", 512, 2, 2),
        "bigger": _flavor(openstack_cli, f"life-x-{tag}", 1024, 4, 2),
    }
    network = as_alice("network", "create", f"life-net-{tag}", "-f", "json")
    as_alice(
        "subnet", "create", "--network", network["id"], "--subnet-range", "10.61.0.0/24",
        f"life-sub-{tag}", "-f", "json",
    )  # fmt: skip
    with compute_client(compute_stack.api, alice["headers"]) as client:
        yield {
            "alice": alice,
            "cli": as_alice,
            "client": client,
            "images": images,
            "flavors": flavors,
            "network": network,
            "tag": tag,
            "image_url": image_server.url,
            "network_url": network_server.url,
        }
    for image in images:
        openstack_cli("image", "delete", image["id"], check=False)
    for flavor in flavors.values():
        openstack_cli("flavor", "delete", flavor["id"], check=False)


# --- helpers -------------------------------------------------------------------


def boot(world, name, flavor="small", **extra):
    body = {
        "server": {
            "name": name,
            "imageRef": world["images"][0]["id"],
            "flavorRef": world["flavors"][flavor]["id"],
            "networks": [{"uuid": world["network"]["id"]}],
            **extra,
        }
    }
    answer = world["client"].post("/servers", json=body)
    assert answer.status_code == 202, answer.text
    return answer.json()["server"]["id"]


def server(world, server_id):
    return world["client"].get(f"/servers/{server_id}").json()["server"]


def wait_status(world, stack, server_id, status, timeout=30):
    def check():
        shown = server(world, server_id)
        return (
            shown if shown["status"] == status and shown["OS-EXT-STS:task_state"] is None else None
        )

    return wait_for(check, timeout, f"server {server_id} to be {status}", stack)


def active_server(world, stack, name, **extra):
    server_id = boot(world, name, **extra)
    wait_status(world, stack, server_id, "ACTIVE")
    return server_id


def delete_servers(world, stack, *ids):
    for server_id in ids:
        world["client"].delete(f"/servers/{server_id}")
    for server_id in ids:
        wait_for(
            lambda i=server_id: world["client"].get(f"/servers/{i}").status_code == 404,
            30,
            f"server {server_id} to be deleted",
            stack,
        )


def action(world, server_id, body, **headers):
    return world["client"].post(f"/servers/{server_id}/action", json=body, headers=headers)


def events_of(admin, server_id, name):
    """The events of the server's latest ``name`` action (admins see them)."""
    actions = admin.get(f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    latest = next(a for a in actions if a["action"] == name)
    shown = admin.get(f"/servers/{server_id}/os-instance-actions/{latest['request_id']}")
    return {e["event"]: e["result"] for e in shown.json()["instanceAction"]["events"]}


def host_of(admin, server_id):
    return admin.get(f"/servers/{server_id}").json()["server"]["OS-EXT-SRV-ATTR:host"]


def domains(stack, host):
    path = stack.workdir / "instances" / f"{host}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def used(admin):
    """host -> (vCPUs, MiB) claimed, as os-hypervisors shows them."""
    return {
        h["hypervisor_hostname"]: (h["vcpus_used"], h["memory_mb_used"])
        for h in admin.get("/os-hypervisors/detail").json()["hypervisors"]
    }


def image_api(world, token_headers):
    return httpx.Client(base_url=world["image_url"], headers=token_headers, timeout=60)


def wait_image(world, image_id, status, stack):
    with image_api(world, world["alice"]["headers"]) as images:

        def check():
            answer = images.get(f"/v2/images/{image_id}")
            if status == "gone":
                return answer.status_code == 404
            return answer.json() if answer.json().get("status") == status else None

        return wait_for(check, 30, f"image {image_id} to be {status}", stack)


def image_count(world):
    with image_api(world, world["alice"]["headers"]) as images:
        owned = images.get("/v2/images", params={"owner": world["alice"]["project_id"]})
        return len(owned.json()["images"])


# --- createImage ---------------------------------------------------------------


def test_snapshot_with_the_cli_and_its_image(world, compute_stack, admin, tmp_path: Path):
    cli = world["cli"]
    server_id = active_server(world, compute_stack, f"snap-{world['tag']}")
    image = cli(
        "server", "image", "create", "--name", f"snap-{world['tag']}", "--property", "tier=web",
        "--wait", server_id, "-f", "json",
    )  # fmt: skip
    assert image["status"] == "active"
    with image_api(world, world["alice"]["headers"]) as images:
        shown = images.get(f"/v2/images/{image['id']}").json()
        assert shown["owner"] == world["alice"]["project_id"]
        assert shown["visibility"] == "private"
        assert shown["disk_format"] == "qcow2" and shown["container_format"] == "bare"
        assert shown["instance_uuid"] == server_id and shown["image_type"] == "snapshot"
        assert shown["base_image_ref"] == world["images"][0]["id"]
        assert shown["user_id"] == world["alice"]["user_id"]
        assert shown["tier"] == "web" and shown["os_distro"] == "stratus-test"  # inherited
        assert shown["min_ram"] == 64 and shown["min_disk"] == 1  # the flavor's disk
        assert shown["virtual_size"] == 1 << 30
        data = images.get(f"/v2/images/{image['id']}/file").content
    assert data[:4] == b"QFI\xfb" and len(data) == shown["size"]
    assert struct.unpack(">Q", data[8:16])[0] == 0  # no backing file: standalone
    path = tmp_path / "snapshot.qcow2"
    path.write_bytes(data)
    subprocess.run(["qemu-img", "check", "-f", "qcow2", str(path)], check=True, capture_output=True)
    shown_server = server(world, server_id)
    assert shown_server["status"] == "ACTIVE" and shown_server["OS-EXT-STS:task_state"] is None
    assert events_of(admin, server_id, "createImage") == {"compute_snapshot_instance": "Success"}

    # A server boots from the snapshot.
    child = active_server(world, compute_stack, f"child-{world['tag']}", imageRef=image["id"])
    assert server(world, child)["image"]["id"] == image["id"]
    delete_servers(world, compute_stack, server_id, child)
    cli("image", "delete", image["id"])


def test_snapshot_over_http_states_and_refusals(world, compute_stack, admin):
    server_id = active_server(world, compute_stack, f"snaphttp-{world['tag']}")
    before = image_count(world)
    bad = [
        ({"createImage": {}}, 400),
        ({"createImage": {"name": ""}}, 400),
        ({"createImage": {"name": "x", "metadata": {"k": 1}}}, 400),
        ({"createImage": {"name": "x", "colour": "red"}}, 400),
        ({"createImage": "x"}, 400),
    ]
    for body, status in bad:
        compute_error(action(world, server_id, body), status)
    compute_error(action(world, "00000000-0000-0000-0000-000000000000", bad[0][0]), 400, 404)
    compute_error(
        action(world, "00000000-0000-0000-0000-000000000000", {"createImage": {"name": "x"}}),
        404,
    )
    assert image_count(world) == before

    # Stopped, the snapshot keeps it stopped; at 2.1 the answer is the
    # image's URL and no body.
    action(world, server_id, {"os-stop": None})
    wait_status(world, compute_stack, server_id, "SHUTOFF")
    answer = action(
        world, server_id, {"createImage": {"name": "cold", "metadata": {"m": "1"}}},
        **version_header("2.10"),
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    assert answer.content == b""
    image_id = answer.headers["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert answer.headers["Location"] == f"{world['image_url']}/v2/images/{image_id}"
    # The image is there at once, and a second snapshot waits for the first.
    shown = server(world, server_id)
    if shown["OS-EXT-STS:task_state"] is not None:
        assert shown["OS-EXT-STS:task_state"].startswith("image_")
        assert shown["status"] == "SHUTOFF"
        second = action(world, server_id, {"createImage": {"name": "again"}})
        assert "task_state image_" in compute_error(second, 409)
    wait_image(world, image_id, "active", compute_stack)
    wait_status(world, compute_stack, server_id, "SHUTOFF")
    assert image_count(world) == before + 1

    # Paused and suspended servers are snapshotted too; a building one not.
    action(world, server_id, {"os-start": None})
    wait_status(world, compute_stack, server_id, "ACTIVE")
    action(world, server_id, {"pause": None})
    wait_status(world, compute_stack, server_id, "PAUSED")
    answer = action(world, server_id, {"createImage": {"name": "paused"}})
    assert answer.status_code == 202
    paused_image = answer.headers["Location"].rsplit("/", 1)[-1]
    wait_image(world, paused_image, "active", compute_stack)
    wait_status(world, compute_stack, server_id, "PAUSED")
    compute_stack.scheduler.kill()  # the next server stays in BUILD
    try:
        building = boot(world, f"building-{world['tag']}")
        refused = action(world, building, {"createImage": {"name": "early"}})
        assert "vm_state building" in compute_error(refused, 409)
    finally:
        compute_stack.scheduler.start()
    assert image_count(world) == before + 2
    delete_servers(world, compute_stack, server_id, building)
    with image_api(world, world["alice"]["headers"]) as images:
        for image in (image_id, paused_image):
            assert images.delete(f"/v2/images/{image}").status_code == 204


def test_an_admin_s_snapshot_of_another_project_s_server(world, compute_stack, admin):
    server_id = active_server(world, compute_stack, f"snapadmin-{world['tag']}")
    answer = admin.post(f"/servers/{server_id}/action", json={"createImage": {"name": "theirs"}})
    assert answer.status_code == 202, answer.text
    image_id = answer.headers["Location"].rsplit("/", 1)[-1]
    shown = wait_image(world, image_id, "active", compute_stack)  # alice sees it
    assert shown["visibility"] == "shared"
    assert shown["instance_owner"] == world["alice"]["project_id"]
    assert shown["owner"] != world["alice"]["project_id"]
    with image_api(world, admin.headers) as images:
        members = images.get(f"/v2/images/{image_id}/members").json()["members"]
        assert [m["member_id"] for m in members] == [world["alice"]["project_id"]]
        assert images.delete(f"/v2/images/{image_id}").status_code == 204
    delete_servers(world, compute_stack, server_id)


def test_a_snapshot_that_fails_deletes_its_image(world, compute_stack, admin):
    server_id = active_server(
        world, compute_stack, f"snapfail-{world['tag']}", metadata={"fake:fail_snapshot": "1"}
    )
    answer = action(world, server_id, {"createImage": {"name": "doomed"}})
    assert answer.status_code == 202
    image_id = answer.headers["Location"].rsplit("/", 1)[-1]
    wait_image(world, image_id, "gone", compute_stack)
    shown = wait_status(world, compute_stack, server_id, "ACTIVE")
    assert "fault" not in shown
    assert events_of(admin, server_id, "createImage") == {"compute_snapshot_instance": "Error"}
    delete_servers(world, compute_stack, server_id)


def test_a_snapshot_survives_an_agent_restart(world, compute_stack):
    server_id = active_server(world, compute_stack, f"snapcrash-{world['tag']}")
    compute_stack.agent.kill()
    try:
        answer = action(world, server_id, {"createImage": {"name": "after-crash"}})
        assert answer.status_code == 202
        image_id = answer.headers["Location"].rsplit("/", 1)[-1]
        assert server(world, server_id)["OS-EXT-STS:task_state"] == "image_snapshot_pending"
    finally:
        compute_stack.agent.start()
    wait_image(world, image_id, "active", compute_stack)
    wait_status(world, compute_stack, server_id, "ACTIVE")
    delete_servers(world, compute_stack, server_id)
    with image_api(world, world["alice"]["headers"]) as images:
        images.delete(f"/v2/images/{image_id}")


def test_a_server_deleted_before_its_snapshot_takes_the_image_along(world, compute_stack):
    server_id = active_server(world, compute_stack, f"snapdel-{world['tag']}")
    compute_stack.agent.kill()
    try:
        answer = action(world, server_id, {"createImage": {"name": "never"}})
        assert answer.status_code == 202
        image_id = answer.headers["Location"].rsplit("/", 1)[-1]
        assert wait_image(world, image_id, "queued", compute_stack)
        assert world["client"].delete(f"/servers/{server_id}").status_code == 204
    finally:
        compute_stack.agent.start()
    wait_for(
        lambda: world["client"].get(f"/servers/{server_id}").status_code == 404,
        30,
        "the server to be deleted",
        compute_stack,
    )
    wait_image(world, image_id, "gone", compute_stack)


# --- rebuild -------------------------------------------------------------------


def test_rebuild(world, compute_stack, admin):
    cli = world["cli"]
    second = world["images"][1]["id"]
    server_id = active_server(
        world, compute_stack, f"rebuild-{world['tag']}", metadata={"before": "1"}
    )
    cli("server", "rebuild", "--image", second, "--wait", server_id)
    shown = server(world, server_id)
    assert shown["image"]["id"] == second and shown["status"] == "ACTIVE"
    host = host_of(admin, server_id)
    domain = domains(compute_stack, host)[server_id]
    assert domain["image"] == second and domain["power"] == 1
    assert f"rebuilt from {second}" in domain["console"]
    assert events_of(admin, server_id, "rebuild") == {"compute_rebuild_instance": "Success"}

    # Over HTTP: the answer is the server, now rebuilding; name and metadata change.
    answer = action(
        world, server_id,
        {"rebuild": {"imageRef": world["images"][0]["id"], "name": "renewed",
                     "metadata": {"after": "2"}, "preserve_ephemeral": True}},
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    body = answer.json()["server"]
    assert body["id"] == server_id and body["name"] == "renewed"
    assert body["status"] == "REBUILD" and body["metadata"] == {"after": "2"}
    assert body["image"]["id"] == world["images"][0]["id"]
    assert "OS-EXT-STS:task_state" not in body  # Nova's rebuild view: no extended attributes
    wait_status(world, compute_stack, server_id, "ACTIVE")

    # A stopped server is rebuilt and stays stopped.
    action(world, server_id, {"os-stop": None})
    wait_status(world, compute_stack, server_id, "SHUTOFF")
    assert action(world, server_id, {"rebuild": {"imageRef": second}}).status_code == 202
    wait_status(world, compute_stack, server_id, "SHUTOFF")
    assert domains(compute_stack, host)[server_id]["power"] == 4

    # Refusals change nothing.
    unknown = "00000000-0000-0000-0000-000000000000"
    for body, status in [
        ({"rebuild": {}}, 400),
        ({"rebuild": {"imageRef": unknown}}, 400),
        ({"rebuild": {"imageRef": second, "preserve_ephemeral": "yes"}}, 400),
        ({"rebuild": {"imageRef": second, "colour": "red"}}, 400),
        ({"rebuild": {"imageRef": second, "name": ""}}, 400),
        ({"rebuild": {"imageRef": second, "user_data": "eA=="}}, 400),  # 2.57's
        ({"rebuild": {"imageRef": second, "accessIPv4": "::1"}}, 400),
    ]:
        compute_error(action(world, server_id, body), status)
    action(world, server_id, {"pause": None})  # refused: stopped
    cli("server", "lock", server_id)
    compute_error(action(world, server_id, {"rebuild": {"imageRef": second}}), 409)
    cli("server", "unlock", server_id)
    shown = server(world, server_id)
    assert shown["name"] == "renewed" and shown["image"]["id"] == second
    assert shown["status"] == "SHUTOFF"
    delete_servers(world, compute_stack, server_id)


def test_a_failed_rebuild_is_an_error_and_a_rebuild_mends_it(world, compute_stack, admin):
    server_id = active_server(world, compute_stack, f"rebfail-{world['tag']}")
    answer = action(
        world, server_id,
        {"rebuild": {"imageRef": world["images"][1]["id"],
                     "metadata": {"fake:fail_rebuild": "1"}}},
    )  # fmt: skip
    assert answer.status_code == 202
    failed = wait_status(world, compute_stack, server_id, "ERROR")
    assert "fail this rebuild" in failed["fault"]["message"]
    assert events_of(admin, server_id, "rebuild") == {"compute_rebuild_instance": "Error"}
    compute_error(action(world, server_id, {"createImage": {"name": "x"}}), 409)
    mended = action(
        world, server_id, {"rebuild": {"imageRef": world["images"][1]["id"], "metadata": {}}}
    )
    assert mended.status_code == 202
    shown = wait_status(world, compute_stack, server_id, "ACTIVE")
    assert "fault" not in shown
    delete_servers(world, compute_stack, server_id)


# --- resize --------------------------------------------------------------------


def test_resize_confirm_and_revert_with_the_cli(world, compute_stack, admin):
    cli = world["cli"]
    flavors = world["flavors"]
    empty = used(admin)
    server_id = active_server(world, compute_stack, f"resize-{world['tag']}")
    source = host_of(admin, server_id)
    before = used(admin)

    cli("server", "resize", "--flavor", flavors["big"]["id"], "--wait", server_id)
    shown = server(world, server_id)
    assert shown["status"] == "VERIFY_RESIZE" and shown["flavor"]["id"] == flavors["big"]["id"]
    assert shown["OS-EXT-STS:vm_state"] == "resized" and shown["OS-EXT-STS:power_state"] == 1
    dest = host_of(admin, server_id)
    # Spread: the other (emptier) fake host takes the new flavor; the fake
    # driver moves the server there.
    assert dest != source, used(admin)
    # Both flavors are claimed until the resize is confirmed: the old on the
    # source host, the new on the destination (spread: the emptier host).
    during = used(admin)
    assert sum(v for v, _ in during.values()) == sum(v for v, _ in before.values()) + 2
    assert domains(compute_stack, dest)[server_id]["vcpus"] == 2
    if dest != source:
        old = domains(compute_stack, source)[server_id]
        assert old["power"] == 4 and old["vcpus"] == 1  # kept, stopped, for a revert
    limits = world["client"].get("/limits").json()["limits"]["absolute"]
    assert limits["totalCoresUsed"] == 2 and limits["totalRAMUsed"] == 512
    assert events_of(admin, server_id, "resize") == {
        "compute_prep_resize": "Success",
        "compute_resize_instance": "Success",
        "compute_finish_resize": "Success",
    }

    cli("server", "resize", "confirm", server_id)
    wait_status(world, compute_stack, server_id, "ACTIVE")
    after = used(admin)
    assert sum(v for v, _ in after.values()) == sum(v for v, _ in before.values()) + 1
    assert after[dest][0] - before.get(dest, (0, 0))[0] == (2 if dest != source else 1)
    if dest != source:
        wait_for(
            lambda: server_id not in domains(compute_stack, source),
            30,
            "the source's old domain to go",
            compute_stack,
        )
    assert events_of(admin, server_id, "confirmResize") == {"compute_confirm_resize": "Success"}

    # Resize again and revert: the old flavor, host and claim come back.
    cli("server", "resize", "--flavor", flavors["bigger"]["id"], "--wait", server_id)
    moved_to = host_of(admin, server_id)
    cli("server", "resize", "revert", server_id)
    reverted = wait_status(world, compute_stack, server_id, "ACTIVE")
    assert reverted["flavor"]["id"] == flavors["big"]["id"]
    assert host_of(admin, server_id) == dest
    assert used(admin) == after
    if moved_to != dest:
        wait_for(
            lambda: server_id not in domains(compute_stack, moved_to),
            30,
            "the destination's domain to go",
            compute_stack,
        )
    domain = domains(compute_stack, dest)[server_id]
    assert domain["power"] == 1 and domain["vcpus"] == 2
    assert events_of(admin, server_id, "revertResize") == {
        "compute_finish_revert_resize": "Success"
    }
    limits = world["client"].get("/limits").json()["limits"]["absolute"]
    assert limits["totalCoresUsed"] == 2 and limits["totalRAMUsed"] == 512
    delete_servers(world, compute_stack, server_id)
    assert used(admin) == empty


def test_resize_refusals_and_a_stopped_server(world, compute_stack, admin, openstack_cli):
    flavors = world["flavors"]
    server_id = active_server(world, compute_stack, f"resizebad-{world['tag']}", flavor="big")
    tiny_disk = _flavor(openstack_cli, f"life-t-{world['tag']}", 256, 1, 1)
    no_disk = _flavor(openstack_cli, f"life-z-{world['tag']}", 256, 1, 0)
    project = world["alice"]["project_id"]
    try:
        for body, status, words in [
            ({"resize": {"flavorRef": flavors["big"]["id"]}}, 400, "must change flavor"),
            ({"resize": {"flavorRef": tiny_disk["id"]}}, 400, "resize disk down"),
            ({"resize": {"flavorRef": no_disk["id"]}}, 400, "resize disk down"),
            ({"resize": {"flavorRef": "no-such-flavor"}}, 400, "flavor"),
            ({"resize": {}}, 400, "flavorRef"),
            ({"resize": {"flavorRef": flavors["bigger"]["id"], "x": 1}}, 400, "x"),
            ({"confirmResize": None}, 409, "vm_state active"),
            ({"revertResize": None}, 409, "vm_state active"),
        ]:
            message = compute_error(action(world, server_id, body), status)
            assert words in message, (body, message)
        openstack_cli("quota", "set", "--cores", "3", project)
        try:
            over = action(world, server_id, {"resize": {"flavorRef": flavors["bigger"]["id"]}})
            assert "Quota exceeded for cores" in compute_error(over, 403)
        finally:
            openstack_cli("quota", "set", "--cores", "20", project)
        shown = server(world, server_id)
        assert shown["status"] == "ACTIVE" and shown["flavor"]["id"] == flavors["big"]["id"]
        action(world, server_id, {"pause": None})
        wait_status(world, compute_stack, server_id, "PAUSED")
        paused = action(world, server_id, {"resize": {"flavorRef": flavors["bigger"]["id"]}})
        assert "vm_state paused" in compute_error(paused, 409)
        action(world, server_id, {"unpause": None})
        wait_status(world, compute_stack, server_id, "ACTIVE")

        # A stopped server is resized stopped, and stays stopped when confirmed.
        action(world, server_id, {"os-stop": None})
        wait_status(world, compute_stack, server_id, "SHUTOFF")
        answer = action(world, server_id, {"resize": {"flavorRef": flavors["bigger"]["id"]}})
        assert answer.status_code == 202, answer.text
        resized = wait_status(world, compute_stack, server_id, "VERIFY_RESIZE")
        assert resized["OS-EXT-STS:power_state"] == 4
        assert domains(compute_stack, host_of(admin, server_id))[server_id]["power"] == 4
        confirm = action(world, server_id, {"confirmResize": None})
        assert confirm.status_code == 204
        shown = wait_status(world, compute_stack, server_id, "SHUTOFF")
        assert shown["flavor"]["id"] == flavors["bigger"]["id"]
        delete_servers(world, compute_stack, server_id)
    finally:
        for flavor in (tiny_disk, no_disk):
            openstack_cli("flavor", "delete", flavor["id"])


def test_resize_without_room_and_a_failed_resize(world, compute_stack, admin, openstack_cli):
    huge = _flavor(openstack_cli, f"life-h-{world['tag']}", 10_000_000, 1, 2)
    project = world["alice"]["project_id"]
    openstack_cli("quota", "set", "--ram", "-1", project)
    try:
        server_id = active_server(world, compute_stack, f"noroom-{world['tag']}")
        before = used(admin)
        assert action(world, server_id, {"resize": {"flavorRef": huge["id"]}}).status_code == 202
        shown = wait_for(
            lambda: (s := server(world, server_id))["OS-EXT-STS:task_state"] is None and s,
            30,
            "the resize to give up",
            compute_stack,
        )
        assert shown["status"] == "ACTIVE"
        assert shown["flavor"]["id"] == world["flavors"]["small"]["id"]
        assert events_of(admin, server_id, "resize") == {"compute_prep_resize": "Error"}
        assert used(admin) == before
        delete_servers(world, compute_stack, server_id)

        failing = active_server(
            world, compute_stack, f"resfail-{world['tag']}", metadata={"fake:fail_resize": "1"}
        )
        before = used(admin)
        answer = action(world, failing, {"resize": {"flavorRef": world["flavors"]["big"]["id"]}})
        assert answer.status_code == 202
        shown = wait_status(world, compute_stack, failing, "ACTIVE", timeout=30)
        assert shown["flavor"]["id"] == world["flavors"]["small"]["id"]
        assert events_of(admin, failing, "resize")["compute_resize_instance"] == "Error"
        assert used(admin) == before
        delete_servers(world, compute_stack, failing)
    finally:
        openstack_cli("quota", "set", "--ram", "51200", project)
        openstack_cli("flavor", "delete", huge["id"])


def test_a_resize_survives_restarts(world, compute_stack, admin):
    server_id = active_server(world, compute_stack, f"rescrash-{world['tag']}")
    before = used(admin)
    compute_stack.scheduler.kill()
    try:
        answer = action(world, server_id, {"resize": {"flavorRef": world["flavors"]["big"]["id"]}})
        assert answer.status_code == 202
        assert server(world, server_id)["OS-EXT-STS:task_state"] == "resize_prep"
        compute_stack.api.restart()
    finally:
        compute_stack.scheduler.start()
    wait_status(world, compute_stack, server_id, "VERIFY_RESIZE")
    compute_stack.agent.kill()
    try:
        assert action(world, server_id, {"revertResize": None}).status_code == 202
        assert server(world, server_id)["status"] == "REVERT_RESIZE"
    finally:
        compute_stack.agent.start()
    shown = wait_status(world, compute_stack, server_id, "ACTIVE")
    assert shown["flavor"]["id"] == world["flavors"]["small"]["id"]
    assert used(admin) == before
    delete_servers(world, compute_stack, server_id)


def test_deleting_a_resized_server_leaves_nothing(world, compute_stack, admin):
    before = used(admin)
    server_id = active_server(world, compute_stack, f"resdel-{world['tag']}")
    source = host_of(admin, server_id)
    action(world, server_id, {"resize": {"flavorRef": world["flavors"]["big"]["id"]}})
    wait_status(world, compute_stack, server_id, "VERIFY_RESIZE")
    dest = host_of(admin, server_id)
    delete_servers(world, compute_stack, server_id)
    assert used(admin) == before
    for host in {source, dest}:
        wait_for(
            lambda h=host: server_id not in domains(compute_stack, h),
            30,
            f"the domain on {host} to go",
            compute_stack,
        )


# --- os-interface --------------------------------------------------------------


def _ports(world, admin, **filters):
    return httpx.get(
        f"{world['network_url']}/v2.0/ports", params=filters, headers=admin.headers
    ).json()["ports"]


def test_interfaces_attach_and_detach(world, compute_stack, admin, network_server):
    cli = world["cli"]
    tag = world["tag"]
    server_id = active_server(world, compute_stack, f"nics-{tag}")
    extra = cli("network", "create", f"life-extra-{tag}", "-f", "json")
    cli(
        "subnet", "create", "--network", extra["id"], "--subnet-range", "10.62.0.0/24",
        f"life-extra-sub-{tag}",
    )  # fmt: skip
    client = world["client"]
    listed = client.get(f"/servers/{server_id}/os-interface").json()["interfaceAttachments"]
    assert [i["net_id"] for i in listed] == [world["network"]["id"]]
    first = listed[0]
    shown = client.get(f"/servers/{server_id}/os-interface/{first['port_id']}").json()
    assert shown["interfaceAttachment"]["mac_addr"] == first["mac_addr"]

    # Attach a network (the CLI), with the address asked for over HTTP too.
    cli("server", "add", "network", server_id, extra["id"])
    wait_status(world, compute_stack, server_id, "ACTIVE")
    addresses = server(world, server_id)["addresses"]
    assert set(addresses) == {world["network"]["name"], extra["name"]}
    (made,) = [
        p for p in _ports(world, admin, device_id=server_id) if p["network_id"] == extra["id"]
    ]
    assert made["binding:host_id"] == host_of(admin, server_id)
    assert made["device_owner"] == "compute:nova"
    host = host_of(admin, server_id)
    assert made["id"] in domains(compute_stack, host)[server_id]["nics"]
    answer = client.post(
        f"/servers/{server_id}/os-interface",
        json={"interfaceAttachment": {"net_id": extra["id"],
                                      "fixed_ips": [{"ip_address": "10.62.0.77"}]}},
    )  # fmt: skip
    assert answer.status_code == 200, answer.text
    fixed = answer.json()["interfaceAttachment"]
    assert fixed["fixed_ips"][0]["ip_address"] == "10.62.0.77" and fixed["net_id"] == extra["id"]
    wait_status(world, compute_stack, server_id, "ACTIVE")
    assert "10.62.0.77" in [a["addr"] for a in server(world, server_id)["addresses"][extra["name"]]]
    assert events_of(admin, server_id, "attach_interface") == {
        "compute_attach_interface": "Success"
    }

    # The user's own port: attached, then detached and left free.
    own = cli("port", "create", "--network", extra["id"], f"life-own-{tag}", "-f", "json")
    cli("server", "add", "port", server_id, own["id"])
    wait_status(world, compute_stack, server_id, "ACTIVE")
    listed = client.get(f"/servers/{server_id}/os-interface").json()["interfaceAttachments"]
    assert len(listed) == 4
    in_use = client.post(
        f"/servers/{server_id}/os-interface", json={"interfaceAttachment": {"port_id": own["id"]}}
    )
    assert "in use" in compute_error(in_use, 409)
    cli("server", "remove", "port", server_id, own["id"])
    wait_status(world, compute_stack, server_id, "ACTIVE")
    freed = cli("port", "show", own["id"], "-f", "json")
    assert freed["device_id"] == "" and freed["device_owner"] == ""
    assert own["id"] not in domains(compute_stack, host)[server_id]["nics"]
    assert events_of(admin, server_id, "detach_interface") == {
        "compute_detach_interface": "Success"
    }

    # Detaching a port made for the server deletes it.
    assert client.delete(f"/servers/{server_id}/os-interface/{fixed['port_id']}").status_code == 202
    wait_status(world, compute_stack, server_id, "ACTIVE")
    assert [p["id"] for p in _ports(world, admin, id=fixed["port_id"])] == []
    addresses = server(world, server_id)["addresses"]
    assert "10.62.0.77" not in [a["addr"] for a in addresses.get(extra["name"], [])]

    # Refusals: nothing made.
    ports_before = {p["id"] for p in _ports(world, admin, network_id=extra["id"])}
    unknown = "00000000-0000-0000-0000-000000000000"
    for body, status in [
        ({"interfaceAttachment": {"net_id": extra["id"], "port_id": own["id"]}}, 400),
        ({"interfaceAttachment": {"fixed_ips": [{"ip_address": "10.62.0.5"}]}}, 400),
        ({"interfaceAttachment": {"net_id": extra["id"], "fixed_ips": [{"ip_address": "x"}]}}, 400),
        ({"interfaceAttachment": {"net_id": unknown}}, 404),
        ({"interfaceAttachment": {"port_id": unknown}}, 404),
        ({"interfaceAttachment": {"net_id": "not-a-uuid"}}, 400),
        ({"interfaceAttachment": {"net_id": extra["id"], "colour": 1}}, 400),
    ]:
        compute_error(client.post(f"/servers/{server_id}/os-interface", json=body), status)
    compute_error(client.delete(f"/servers/{server_id}/os-interface/{unknown}"), 404)
    compute_error(client.get(f"/servers/{server_id}/os-interface/{own['id']}"), 404)
    action(world, server_id, {"suspend": None})
    wait_status(world, compute_stack, server_id, "SUSPENDED")
    suspended = client.post(
        f"/servers/{server_id}/os-interface", json={"interfaceAttachment": {"net_id": extra["id"]}}
    )
    assert "vm_state suspended" in compute_error(suspended, 409)
    assert {p["id"] for p in _ports(world, admin, network_id=extra["id"])} == ports_before

    delete_servers(world, compute_stack, server_id)
    left = _ports(world, admin, device_id=server_id)
    assert left == []
    cli("port", "delete", own["id"])
    cli("network", "delete", extra["id"])


def test_a_failed_attach_leaves_no_port(world, compute_stack, admin):
    server_id = active_server(
        world, compute_stack, f"nicfail-{world['tag']}", metadata={"fake:fail_attach": "1"}
    )
    answer = world["client"].post(
        f"/servers/{server_id}/os-interface",
        json={"interfaceAttachment": {"net_id": world["network"]["id"]}},
    )
    assert answer.status_code == 200, answer.text
    port_id = answer.json()["interfaceAttachment"]["port_id"]
    wait_status(world, compute_stack, server_id, "ACTIVE")
    assert [p["id"] for p in _ports(world, admin, id=port_id)] == []
    attached = world["client"].get(f"/servers/{server_id}/os-interface").json()
    assert len(attached["interfaceAttachments"]) == 1
    assert len(server(world, server_id)["addresses"][world["network"]["name"]]) == 1
    assert events_of(admin, server_id, "attach_interface") == {"compute_attach_interface": "Error"}
    delete_servers(world, compute_stack, server_id)
