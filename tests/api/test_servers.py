"""Servers end to end on the fake driver: the API, the scheduler and the
agent as processes, the image and network services real, driven by the
openstack CLI, openstacksdk and HTTP.

Boot to ACTIVE with a port on the network, addresses, console log; the
power actions and their state checks; locks; delete confirmed by 404 with
nothing left (ports, claims); bad input refused with nothing made; no
valid host; quotas; claims that never overcommit a host.
"""

from __future__ import annotations

import base64
import json
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


@pytest.fixture(scope="module")
def world(identity_server, compute_stack, network_server, openstack_cli, tmp_path_factory):
    """A project with a network and subnet, a public image and a flavor."""
    from uuid import uuid4

    tag = uuid4().hex[:8]
    alice = project_user(identity_server, f"srv-alice-{tag}")

    def as_alice(*args, check=True):
        return openstack_cli(
            *args, user=alice["name"], password=PASSWORD, project=alice["name"], check=check
        )

    image_file = tmp_path_factory.mktemp("img") / "disk.raw"
    image_file.write_bytes(b"\0" * 65536)
    image = openstack_cli(
        "image",
        "create",
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--public",
        "--file",
        str(image_file),
        f"img-{tag}",
        "-f",
        "json",
    )
    flavor = openstack_cli(
        "flavor",
        "create",
        "--ram",
        "256",
        "--vcpus",
        "1",
        "--disk",
        "1",
        f"small-{tag}",
        "-f",
        "json",
    )
    network = as_alice("network", "create", f"net-{tag}", "-f", "json")
    subnet = as_alice(
        "subnet",
        "create",
        "--network",
        network["id"],
        "--subnet-range",
        "10.44.0.0/24",
        f"sub-{tag}",
        "-f",
        "json",
    )
    with compute_client(compute_stack.api, alice["headers"]) as client:
        yield {
            "alice": alice,
            "cli": as_alice,
            "client": client,
            "image": image,
            "flavor": flavor,
            "network": network,
            "subnet": subnet,
            "tag": tag,
        }


def boot(world, name, hints=None, **extra):
    body: dict = {
        "server": {
            "name": name,
            "imageRef": world["image"]["id"],
            "flavorRef": world["flavor"]["id"],
            "networks": [{"uuid": world["network"]["id"]}],
            **extra,
        }
    }
    if hints:
        body["os:scheduler_hints"] = hints
    answer = world["client"].post("/servers", json=body)
    assert answer.status_code == 202, answer.text
    return answer


def server(world, server_id, client=None):
    return (client or world["client"]).get(f"/servers/{server_id}").json()["server"]


def wait_status(world, stack, server_id, status, timeout=30):
    def check():
        shown = server(world, server_id)
        return (
            shown if shown["status"] == status and shown["OS-EXT-STS:task_state"] is None else None
        )

    return wait_for(check, timeout, f"server {server_id} to be {status}", stack)


def wait_gone(world, stack, server_id, timeout=30):
    wait_for(
        lambda: world["client"].get(f"/servers/{server_id}").status_code == 404,
        timeout,
        f"server {server_id} to be deleted",
        stack,
    )


def test_boot_show_act_and_delete_with_the_cli(
    world, compute_stack, network_server, admin, tmp_path: Path
):
    cli = world["cli"]
    key = cli("keypair", "create", f"key-{world['tag']}")
    assert key.returncode == 0
    user_data = tmp_path / "user-data"
    user_data.write_text("#cloud-config\nruncmd: [echo hello]\n")
    created = cli(
        "server",
        "create",
        "--image",
        world["image"]["id"],
        "--flavor",
        world["flavor"]["id"],
        "--network",
        world["network"]["id"],
        "--key-name",
        f"key-{world['tag']}",
        "--user-data",
        str(user_data),
        "--property",
        "role=web",
        "--wait",
        f"web-{world['tag']}",
        "-f",
        "json",
    )
    assert created["status"] == "ACTIVE"
    server_id = created["id"]
    shown = server(world, server_id)
    assert shown["OS-EXT-STS:vm_state"] == "active" and shown["OS-EXT-STS:power_state"] == 1
    assert shown["key_name"] == f"key-{world['tag']}" and shown["metadata"] == {"role": "web"}
    assert shown["hostId"] and "OS-EXT-SRV-ATTR:host" not in shown
    assert shown["OS-SRV-USG:launched_at"] and shown["progress"] == 100
    (address,) = shown["addresses"][world["network"]["name"]]
    assert address["addr"].startswith("10.44.0.") and address["OS-EXT-IPS:type"] == "fixed"
    # The port the scheduler made: the server's, bound to its host.
    seen_by_admin = admin.get(f"/servers/{server_id}").json()["server"]
    host = seen_by_admin["OS-EXT-SRV-ATTR:host"]
    assert host in ("fake-1", "fake-2")
    ports = httpx.get(
        f"{network_server.url}/v2.0/ports",
        params={"device_id": server_id},
        headers=admin.headers,  # bindings are the admins' to see
    ).json()["ports"]
    assert [p["mac_address"] for p in ports] == [address["OS-EXT-IPS-MAC:mac_addr"]]
    assert ports[0]["binding:host_id"] == host and ports[0]["device_owner"] == "compute:nova"
    user_data_b64 = seen_by_admin.get("OS-EXT-SRV-ATTR:user_data")
    assert user_data_b64 is None  # 2.3 shows it, 2.1 does not
    v23 = admin.get(f"/servers/{server_id}", headers=version_header("2.3")).json()["server"]
    assert base64.b64decode(v23["OS-EXT-SRV-ATTR:user_data"]).startswith(b"#cloud-config")
    console = cli("console", "log", "show", server_id)
    assert "booted on" in console.stdout

    cli("server", "stop", server_id)
    wait_status(world, compute_stack, server_id, "SHUTOFF")
    assert server(world, server_id)["OS-EXT-STS:power_state"] == 4
    again = cli("server", "stop", server_id, check=False)
    assert again.returncode != 0 and "409" in again.stderr
    cli("server", "start", server_id)
    wait_status(world, compute_stack, server_id, "ACTIVE")
    cli("server", "reboot", "--wait", server_id)
    cli("server", "reboot", "--hard", "--wait", server_id)
    cli("server", "pause", server_id)
    wait_status(world, compute_stack, server_id, "PAUSED")
    cli("server", "unpause", server_id)
    wait_status(world, compute_stack, server_id, "ACTIVE")
    cli("server", "suspend", server_id)
    wait_status(world, compute_stack, server_id, "SUSPENDED")
    cli("server", "resume", server_id)
    wait_status(world, compute_stack, server_id, "ACTIVE")
    actions = admin.get(f"/servers/{server_id}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions] == [
        "resume",
        "suspend",
        "unpause",
        "pause",
        "reboot",
        "reboot",
        "start",
        "stop",
        "create",
    ]
    create = admin.get(
        f"/servers/{server_id}/os-instance-actions/{actions[-1]['request_id']}"
    ).json()["instanceAction"]
    assert [e["result"] for e in create["events"]] == ["Success"]
    listed = cli("server", "event", "list", server_id, "-f", "json")
    assert len(listed) == len(actions)

    cli("server", "lock", server_id)
    locked = world["client"].post(f"/servers/{server_id}/action", json={"os-stop": None})
    compute_error(locked, 409)
    compute_error(world["client"].delete(f"/servers/{server_id}"), 409)
    cli("server", "unlock", server_id)

    cli("server", "delete", "--wait", server_id)
    compute_error(world["client"].get(f"/servers/{server_id}"), 404)
    left = httpx.get(
        f"{network_server.url}/v2.0/ports",
        params={"device_id": server_id},
        headers=world["alice"]["headers"],
    ).json()["ports"]
    assert left == []
    limits = world["client"].get("/limits").json()["limits"]["absolute"]
    assert limits["totalInstancesUsed"] == 0 and limits["totalCoresUsed"] == 0


def test_lists_filters_and_pages(world, compute_stack):
    ids = [boot(world, f"list-{world['tag']}-{i}").json()["server"]["id"] for i in range(3)]
    for server_id in ids:
        wait_status(world, compute_stack, server_id, "ACTIVE")
    client = world["client"]
    listed = client.get("/servers", params={"name": f"list-{world['tag']}"}).json()["servers"]
    assert {s["id"] for s in listed} == set(ids)
    assert set(listed[0]) == {"id", "name", "links"}
    detailed = client.get("/servers/detail", params={"status": "ACTIVE"}).json()["servers"]
    assert set(ids) <= {s["id"] for s in detailed}
    assert (
        client.get("/servers", params={"status": "SHUTOFF", "name": "list-"}).json()["servers"]
        == []
    )
    first = client.get("/servers", params={"limit": 2, "name": f"list-{world['tag']}"}).json()
    assert len(first["servers"]) == 2 and first["servers_links"][0]["rel"] == "next"
    rest = client.get(first["servers_links"][0]["href"]).json()
    assert len(rest["servers"]) == 1
    compute_error(client.get("/servers", params={"marker": "nope"}), 400)
    compute_error(client.get("/servers", params={"sort_key": "colour"}), 400)
    # Without a regular expression filter the database pages (keyset paging
    # after the marker): page after page is one sorted read.
    for params in (
        {},
        {"sort_key": "display_name", "sort_dir": "asc"},
        {"sort_key": ["host", "display_name"], "sort_dir": ["desc", "asc"]},
    ):
        whole = [s["id"] for s in client.get("/servers", params=params).json()["servers"]]
        assert set(ids) <= set(whole)
        paged: list[str] = []
        answer = client.get("/servers", params={**params, "limit": 1}).json()
        while True:
            paged += [s["id"] for s in answer["servers"]]
            if not answer.get("servers_links"):
                break
            answer = client.get(answer["servers_links"][0]["href"]).json()
        assert paged == whole, params
    by_ip = client.get("/servers/detail", params={"ip": r"10\.44\."}).json()["servers"]
    assert set(ids) <= {s["id"] for s in by_ip}
    renamed = client.put(f"/servers/{ids[0]}", json={"server": {"name": "renamed"}})
    assert renamed.json()["server"]["name"] == "renamed"
    # Nova answers an update with the server without its extended attributes.
    assert not {k for k in renamed.json()["server"] if k.startswith(("OS-EXT", "OS-SRV"))}
    assert "key_name" not in renamed.json()["server"]
    assert renamed.json()["server"]["addresses"]
    for entries in renamed.json()["server"]["addresses"].values():
        assert all(set(a) == {"version", "addr"} for a in entries)
    for server_id in ids:
        assert client.delete(f"/servers/{server_id}").status_code == 204
    for server_id in ids:
        wait_gone(world, compute_stack, server_id)
    # A bad expression is refused even when no server would be compared with it.
    compute_error(client.get("/servers", params={"name": f"list-{world['tag']}-["}), 400)
    compute_error(client.get("/servers/detail", params={"ip": "10.44.("}), 400)


def test_access_addresses_are_checked_and_canonical(world, compute_stack):
    client = world["client"]
    before = client.get("/servers").json()["servers"]
    for field, bad in (("accessIPv4", "1.1.1.1.1.1"), ("accessIPv6", "notvalid")):
        answer = client.post(
            "/servers",
            json={
                "server": {
                    "name": "bad-access",
                    "imageRef": world["image"]["id"],
                    "flavorRef": world["flavor"]["id"],
                    "networks": [{"uuid": world["network"]["id"]}],
                    field: bad,
                }
            },
        )
        assert field in compute_error(answer, 400)
    assert client.get("/servers").json()["servers"] == before
    answer = boot(
        world,
        f"access-{world['tag']}",
        accessIPv4="1.1.1.1",
        accessIPv6="0000:0000:0000:0000:0000:babe:220.12.22.2",
    )
    made = answer.json()["server"]
    try:
        # Nova's request ID header too: it finds the request's instance action.
        request_id = answer.headers["x-compute-request-id"]
        assert request_id == answer.headers["x-openstack-request-id"]
        action = client.get(f"/servers/{made['id']}/os-instance-actions/{request_id}")
        assert action.json()["instanceAction"]["action"] == "create"
        assert client.get("/flavors").headers["x-compute-request-id"].startswith("req-")
        shown = server(world, made["id"])
        assert (shown["accessIPv4"], shown["accessIPv6"]) == ("1.1.1.1", "::babe:dc0c:1602")
        changed = client.put(
            f"/servers/{made['id']}", json={"server": {"accessIPv6": "2001:DB8:0:0::1"}}
        )
        assert changed.json()["server"]["accessIPv6"] == "2001:db8::1"
        bad = client.put(f"/servers/{made['id']}", json={"server": {"accessIPv4": "2001:db8::1"}})
        compute_error(bad, 400)
        cleared = client.put(f"/servers/{made['id']}", json={"server": {"accessIPv4": None}})
        assert cleared.json()["server"]["accessIPv4"] == ""
    finally:
        client.delete(f"/servers/{made['id']}")
        wait_gone(world, compute_stack, made["id"])


def test_bad_requests_make_nothing(world, compute_stack, openstack_cli):
    client = world["client"]
    before = client.get("/servers").json()["servers"]
    base = {
        "name": "bad",
        "imageRef": world["image"]["id"],
        "flavorRef": world["flavor"]["id"],
        "networks": [{"uuid": world["network"]["id"]}],
    }
    unknown = "00000000-0000-0000-0000-000000000000"
    tiny = openstack_cli(
        "flavor",
        "create",
        "--ram",
        "64",
        "--vcpus",
        "1",
        "--disk",
        "1",
        f"tiny-{world['tag']}",
        "-f",
        "json",
    )
    image = world["image"]["id"]
    openstack_cli("image", "set", "--min-ram", "128", image)
    try:
        cases = [
            ({**base, "imageRef": unknown}, 400, "Image"),
            ({**base, "flavorRef": "no-such-flavor"}, 400, "Flavor"),
            ({**base, "networks": [{"uuid": unknown}]}, 400, "Network"),
            ({**base, "networks": [{"port": unknown}]}, 400, "Port"),
            ({**base, "flavorRef": tiny["id"]}, 400, "memory is too small"),
            ({**base, "key_name": "no-such-key"}, 400, "key_name"),
            ({**base, "user_data": "not base64!"}, 400, "base 64"),
            ({**base, "name": ""}, 400, "name"),
            ({**base, "min_count": 3, "max_count": 2}, 400, "min_count"),
            ({**base, "availability_zone": "nowhere"}, 400, "availability zone"),
            ({**base, "availability_zone": "nova:fake-1"}, 403, ""),
            ({**base, "security_groups": [{"name": "no-such-group"}]}, 400, "no-such-group"),
            ({**base, "metadata": {"k": 1}}, 400, "Metadata"),
            ({**base, "colour": "red"}, 400, "colour"),
            ({**base, "personality": [{"path": "/etc/x", "contents": "eA=="}]}, 400, "Personality"),
        ]
        for body, status, words in cases:
            message = compute_error(client.post("/servers", json={"server": body}), status)
            assert words in message, (body, message)
        compute_error(client.post("/servers", json={"srv": base}), 400)
        assert client.get("/servers").json()["servers"] == before
    finally:
        openstack_cli("image", "set", "--min-ram", "0", image)
        openstack_cli("flavor", "delete", tiny["id"])


def test_actions_in_the_wrong_state(world, compute_stack):
    server_id = boot(world, f"state-{world['tag']}").json()["server"]["id"]
    wait_status(world, compute_stack, server_id, "ACTIVE")
    client = world["client"]
    for action in ({"os-start": None}, {"unpause": None}, {"resume": None}):
        assert "while it is in vm_state active" in compute_error(
            client.post(f"/servers/{server_id}/action", json=action), 409
        )
    compute_error(
        client.post(f"/servers/{server_id}/action", json={"reboot": {"type": "GENTLE"}}), 400
    )
    compute_error(client.post(f"/servers/{server_id}/action", json={"explode": None}), 400)
    compute_error(client.post(f"/servers/{server_id}/action", json={"os-stop": {"now": 1}}), 400)
    output = client.post(
        f"/servers/{server_id}/action", json={"os-getConsoleOutput": {"length": 1}}
    )
    assert output.json()["output"].count("\n") <= 1
    client.delete(f"/servers/{server_id}")
    wait_gone(world, compute_stack, server_id)


def test_no_valid_host_and_quotas(world, compute_stack, openstack_cli, admin):
    huge = openstack_cli(
        "flavor",
        "create",
        "--ram",
        "10000000",
        "--vcpus",
        "1",
        "--disk",
        "1",
        f"huge-{world['tag']}",
        "-f",
        "json",
    )
    project = world["alice"]["project_id"]
    try:
        openstack_cli("quota", "set", "--ram", "-1", project)
        server_id = boot(world, "too-big", flavorRef=huge["id"]).json()["server"]["id"]
        failed = wait_status(world, compute_stack, server_id, "ERROR")
        assert failed["fault"]["message"].startswith("No valid host was found")
        assert failed["fault"]["code"] == 500 and "details" not in failed["fault"]
        details = admin.get(f"/servers/{server_id}").json()["server"]["fault"]["details"]
        assert "MiB RAM free" in details
        world["client"].delete(f"/servers/{server_id}")
        wait_gone(world, compute_stack, server_id)
        # Nothing of it is left in the network either.
    finally:
        openstack_cli("quota", "set", "--ram", "51200", project)
        openstack_cli("flavor", "delete", huge["id"])
    openstack_cli("quota", "set", "--instances", "2", project)
    try:
        over = world["client"].post(
            "/servers",
            json={
                "server": {
                    "name": "many",
                    "imageRef": world["image"]["id"],
                    "flavorRef": world["flavor"]["id"],
                    "networks": [{"uuid": world["network"]["id"]}],
                    "min_count": 3,
                }
            },
        )
        assert "Quota exceeded for instances" in compute_error(over, 403)
        assert world["client"].get("/servers").json()["servers"] == []
    finally:
        openstack_cli("quota", "set", "--instances", "10", project)


def test_claims_never_overcommit(world, compute_stack, openstack_cli, admin):
    """Two fake hosts of 16 CPUs at ratio 4: 64 vCPUs each. A burst of six
    servers of 32 vCPUs: exactly four fit, two on each host, the rest find
    no host."""
    big = openstack_cli(
        "flavor",
        "create",
        "--ram",
        "128",
        "--vcpus",
        "32",
        "--disk",
        "1",
        f"wide-{world['tag']}",
        "-f",
        "json",
    )
    project = world["alice"]["project_id"]
    openstack_cli("quota", "set", "--cores", "-1", "--instances", "-1", project)
    try:
        answer = boot(world, f"burst-{world['tag']}", flavorRef=big["id"], min_count=6, max_count=6)
        listed = world["client"].get("/servers", params={"name": f"burst-{world['tag']}"}).json()
        ids = [s["id"] for s in listed["servers"]]
        assert len(ids) == 6 and answer.json()["server"]["id"] in ids

        def settled():
            shown = [server(world, i) for i in ids]
            return shown if all(s["status"] in ("ACTIVE", "ERROR") for s in shown) else None

        shown = wait_for(settled, 60, "the burst to settle", compute_stack)
        assert sorted(s["status"] for s in shown) == ["ACTIVE"] * 4 + ["ERROR"] * 2
        hosts = [
            admin.get(f"/servers/{s['id']}").json()["server"]["OS-EXT-SRV-ATTR:host"]
            for s in shown
            if s["status"] == "ACTIVE"
        ]
        assert sorted(hosts) == ["fake-1", "fake-1", "fake-2", "fake-2"]  # spread
        for server_id in ids:
            world["client"].delete(f"/servers/{server_id}")
        for server_id in ids:
            wait_gone(world, compute_stack, server_id)
    finally:
        openstack_cli("quota", "set", "--force", "--cores", "20", "--instances", "10", project)
        openstack_cli("flavor", "delete", big["id"])


def test_metadata_ips_and_groups(world, compute_stack, admin):
    client = world["client"]
    group = client.post(
        "/os-server-groups",
        json={"server_group": {"name": "apart", "policies": ["anti-affinity"]}},
    ).json()["server_group"]
    assert group["policies"] == ["anti-affinity"] and group["members"] == []
    ids = []
    for index in range(3):
        answer = boot(world, f"grp-{index}", {"group": group["id"]}, metadata={"index": str(index)})
        ids.append(answer.json()["server"]["id"])
        # One at a time, so each placement sees the one before.
        wait_for(
            lambda i=ids[-1]: server(world, i)["status"] in ("ACTIVE", "ERROR"),
            30,
            "placement",
            compute_stack,
        )
    statuses = [server(world, i)["status"] for i in ids]
    assert statuses == ["ACTIVE", "ACTIVE", "ERROR"]  # two hosts, one server each
    hosts = {admin.get(f"/servers/{i}").json()["server"]["OS-EXT-SRV-ATTR:host"] for i in ids[:2]}
    assert hosts == {"fake-1", "fake-2"}
    assert "anti-affinity" in admin.get(f"/servers/{ids[2]}").json()["server"]["fault"]["details"]
    shown = client.get(f"/os-server-groups/{group['id']}").json()["server_group"]
    assert set(shown["members"]) == set(ids)

    first = ids[0]
    assert client.get(f"/servers/{first}/metadata").json() == {"metadata": {"index": "0"}}
    merged = client.post(f"/servers/{first}/metadata", json={"metadata": {"role": "db"}})
    assert merged.json() == {"metadata": {"index": "0", "role": "db"}}
    assert client.get(f"/servers/{first}/metadata/role").json() == {"meta": {"role": "db"}}
    compute_error(client.put(f"/servers/{first}/metadata/role", json={"meta": {"x": "y"}}), 400)
    changed = client.put(f"/servers/{first}/metadata/role", json={"meta": {"role": "web"}})
    assert changed.json() == {"meta": {"role": "web"}}
    assert client.delete(f"/servers/{first}/metadata/index").status_code == 204
    compute_error(client.get(f"/servers/{first}/metadata/index"), 404)
    replaced = client.put(f"/servers/{first}/metadata", json={"metadata": {"only": "this"}})
    assert replaced.json() == {"metadata": {"only": "this"}}
    too_many = {str(i): "v" for i in range(200)}
    compute_error(client.post(f"/servers/{first}/metadata", json={"metadata": too_many}), 403)
    assert client.get(f"/servers/{first}/metadata").json() == {"metadata": {"only": "this"}}

    ips = client.get(f"/servers/{first}/ips").json()["addresses"]
    (entry,) = ips[world["network"]["name"]]
    assert entry["version"] == 4 and entry["addr"].startswith("10.44.0.")
    assert client.get(f"/servers/{first}/ips/{world['network']['name']}").status_code == 200
    compute_error(client.get(f"/servers/{first}/ips/elsewhere"), 404)

    for server_id in ids:
        client.delete(f"/servers/{server_id}")
    for server_id in ids:
        wait_gone(world, compute_stack, server_id)
    assert client.delete(f"/os-server-groups/{group['id']}").status_code == 204
    compute_error(client.get(f"/os-server-groups/{group['id']}"), 404)


def _group(world, policy, version):
    return world["client"].post(
        "/os-server-groups",
        json={"server_group": {"name": f"soft-{policy}", "policies": [policy]}},
        headers=version_header(version),
    )


def test_soft_server_group_policies(world, compute_stack, admin):
    """2.15's soft policies: the scheduler keeps them while it can, and never
    refuses a server for them; 2.13 shows a group's project and user."""
    compute_error(_group(world, "soft-anti-affinity", "2.14"), 400)
    answer = _group(world, "soft-anti-affinity", "2.15")
    assert answer.status_code == 200, answer.text
    apart = answer.json()["server_group"]
    assert apart["policies"] == ["soft-anti-affinity"]
    assert apart["project_id"] == world["alice"]["project_id"]
    assert apart["user_id"] == world["alice"]["user_id"]
    older = world["client"].get(f"/os-server-groups/{apart['id']}", headers=version_header("2.12"))
    assert "project_id" not in older.json()["server_group"]
    together = _group(world, "soft-affinity", "2.15").json()["server_group"]
    listed = world["client"].get("/os-server-groups", headers=version_header("2.15"))
    assert {apart["id"], together["id"]} <= {g["id"] for g in listed.json()["server_groups"]}

    def boot_into(group, count):
        hosts = []
        for index in range(count):
            name = f"{group['policies'][0]}-{index}"
            server_id = boot(world, name, {"group": group["id"]}).json()["server"]["id"]
            ids.append(server_id)
            # One at a time, so each placement sees the one before.
            wait_status(world, compute_stack, server_id, "ACTIVE")
            shown = admin.get(f"/servers/{server_id}").json()["server"]
            hosts.append(shown["OS-EXT-SRV-ATTR:host"])
        return hosts

    ids: list[str] = []
    try:
        # Two hosts, three servers kept apart: the first two on both hosts, the
        # third still placed (anti-affinity would refuse it).
        spread = boot_into(apart, 3)
        assert set(spread[:2]) == {"fake-1", "fake-2"}
        # Kept together, against the spread weigher's preference for the
        # emptier host.
        packed = boot_into(together, 3)
        assert len(set(packed)) == 1, packed
        members = world["client"].get(f"/os-server-groups/{together['id']}").json()
        assert set(members["server_group"]["members"]) == set(ids[3:])
    finally:
        for server_id in ids:
            world["client"].delete(f"/servers/{server_id}")
        for server_id in ids:
            wait_gone(world, compute_stack, server_id)
        for group in (apart, together):
            world["client"].delete(f"/os-server-groups/{group['id']}")


def test_a_host_forced_down(world, compute_stack, admin, openstack_cli):
    """2.11: an operator forces a host down (fenced). It shows down at once,
    gets no new servers, and a server deleted on it goes without its agent;
    the agent, still running, destroys the domain it is left with."""
    server_id = boot(world, "on-a-fenced-host").json()["server"]["id"]
    wait_status(world, compute_stack, server_id, "ACTIVE")
    host = admin.get(f"/servers/{server_id}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    other = ({"fake-1", "fake-2"} - {host}).pop()
    v211 = version_header("2.11")

    def force(value, **headers):
        body = {"host": host, "binary": "nova-compute", "forced_down": value}
        return admin.put("/os-services/force-down", json=body, headers=headers or v211)

    def service(**headers):
        listed = admin.get("/os-services", params={"host": host}, headers=headers or v211)
        return listed.json()["services"][0]

    assert service()["forced_down"] is False
    assert "forced_down" not in service(**version_header("2.10"))
    compute_error(force(True, **version_header("2.10")), 404)
    compute_error(force("maybe"), 400)
    body = {"host": host, "binary": "nova-compute"}
    compute_error(admin.put("/os-services/force-down", json=body, headers=v211), 400)
    body = {"host": "nowhere", "binary": "nova-compute", "forced_down": True}
    compute_error(admin.put("/os-services/force-down", json=body, headers=v211), 404)
    compute_error(
        world["client"].put("/os-services/force-down", json={**body, "host": host}, headers=v211),
        403,
    )
    assert service()["forced_down"] is False
    # The openstack CLI negotiates 2.11 or above for --down and --up.
    openstack_cli("compute", "service", "set", "--down", host, "nova-compute")
    assert service()["forced_down"] is True
    openstack_cli("compute", "service", "set", "--up", host, "nova-compute")
    assert service()["forced_down"] is False
    state_file = compute_stack.workdir / "instances" / f"{host}.json"
    answer = force(True)
    try:
        assert answer.json() == {
            "service": {"host": host, "binary": "nova-compute", "forced_down": True}
        }
        shown = service()
        assert shown["forced_down"] is True and shown["state"] == "down"
        hypervisors = admin.get("/os-hypervisors").json()["hypervisors"]
        assert {h["hypervisor_hostname"]: h["state"] for h in hypervisors}[host] == "down"
        elsewhere = boot(world, "not-on-the-fenced-host").json()["server"]["id"]
        wait_status(world, compute_stack, elsewhere, "ACTIVE")
        placed = admin.get(f"/servers/{elsewhere}").json()["server"]["OS-EXT-SRV-ATTR:host"]
        assert placed == other
        world["client"].delete(f"/servers/{elsewhere}")
        # The fenced host's server goes without waiting for service_down_time.
        assert world["client"].delete(f"/servers/{server_id}").status_code == 204
        wait_gone(world, compute_stack, server_id)
        wait_gone(world, compute_stack, elsewhere)
    finally:
        assert force("false").json()["service"]["forced_down"] is False
    # Its agent never carried out the delete; it destroys the orphan domain.
    wait_for(
        lambda: server_id not in json.loads(state_file.read_text()),
        30,
        "the agent to destroy the deleted server's domain",
        compute_stack,
    )
    wait_for(lambda: service()["state"] == "up", 30, "the host to be up again", compute_stack)


def test_hosts_zones_and_a_disabled_host(world, compute_stack, admin, openstack_cli):
    hypervisors = admin.get("/os-hypervisors/detail").json()["hypervisors"]
    fake = {h["hypervisor_hostname"]: h for h in hypervisors}
    assert {"fake-1", "fake-2"} <= set(fake)
    assert fake["fake-1"]["state"] == "up" and fake["fake-1"]["vcpus"] == 16
    # The fake driver names no address: the one its agent reports from.
    assert fake["fake-1"]["host_ip"] == "127.0.0.1"
    stats = admin.get("/os-hypervisors/statistics").json()["hypervisor_statistics"]
    assert stats["count"] >= 2 and stats["vcpus"] >= 32
    services = openstack_cli("compute", "service", "list", "-f", "json")
    seen = {(s["Binary"], s["Host"], s["State"]) for s in services}
    assert ("nova-compute", "fake-1", "up") in seen
    zones = openstack_cli("availability", "zone", "list", "--compute", "-f", "json")
    assert ("nova", "available") in {(z["Zone Name"], z["Zone Status"]) for z in zones}
    compute_error(world["client"].get("/os-hypervisors"), 403)
    openstack_cli(
        "compute",
        "service",
        "set",
        "--disable",
        "--disable-reason",
        "maintenance",
        "fake-1",
        "nova-compute",
    )
    try:
        ids = [boot(world, f"dis-{i}").json()["server"]["id"] for i in range(2)]
        for server_id in ids:
            wait_status(world, compute_stack, server_id, "ACTIVE")
        hosts = {admin.get(f"/servers/{i}").json()["server"]["OS-EXT-SRV-ATTR:host"] for i in ids}
        assert hosts == {"fake-2"}
        # Nova's hypervisor search and servers (up to 2.52): by a part of the name.
        found = admin.get("/os-hypervisors/fake-2/servers").json()["hypervisors"]
        assert [h["hypervisor_hostname"] for h in found] == ["fake-2"]
        assert set(ids) <= {s["uuid"] for s in found[0]["servers"]}
        searched = admin.get("/os-hypervisors/fake-/search").json()["hypervisors"]
        assert {"fake-1", "fake-2"} <= {h["hypervisor_hostname"] for h in searched}
        assert "servers" not in searched[0]
        compute_error(admin.get("/os-hypervisors/nowhere/search"), 404)
        compute_error(admin.get("/os-hypervisors/nowhere/servers"), 404)
        compute_error(world["client"].get("/os-hypervisors/fake/search"), 403)
        compute_error(world["client"].get("/os-hypervisors/fake/servers"), 403)
        listed = admin.get("/os-services", params={"host": "fake-1"}).json()["services"]
        assert listed[0]["status"] == "disabled" and listed[0]["disabled_reason"] == "maintenance"
        for server_id in ids:
            world["client"].delete(f"/servers/{server_id}")
        for server_id in ids:
            wait_gone(world, compute_stack, server_id)
    finally:
        openstack_cli("compute", "service", "set", "--enable", "fake-1", "nova-compute")


def test_a_domain_that_dies_is_shutoff(world, compute_stack, admin):
    server_id = boot(world, "dies").json()["server"]["id"]
    wait_status(world, compute_stack, server_id, "ACTIVE")
    host = admin.get(f"/servers/{server_id}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    state_file = compute_stack.workdir / "instances" / f"{host}.json"
    domains = json.loads(state_file.read_text())
    domains[server_id]["power"] = 4  # the hypervisor says: shut down
    edited = state_file.with_suffix(".edit")
    edited.write_text(json.dumps(domains))
    edited.replace(state_file)
    stopped = wait_status(world, compute_stack, server_id, "SHUTOFF")
    assert stopped["OS-EXT-STS:power_state"] == 4
    world["client"].post(f"/servers/{server_id}/action", json={"os-start": None})
    wait_status(world, compute_stack, server_id, "ACTIVE")
    world["client"].delete(f"/servers/{server_id}")
    wait_gone(world, compute_stack, server_id)


def test_the_metadata_service_answers_for_a_server(world, compute_stack, tmp_path: Path):
    """stratus-api metadata over the compute database, asked as the network
    agents' proxy asks (signed instance ID): the server's OpenStack and EC2
    documents, its user data and its network."""
    import hashlib
    import hmac

    from tests.conftest import ApiServer, free_port, start_api

    secret = "metadata-secret"
    port = free_port()
    config = tmp_path / "metadata.conf"
    database = compute_stack.api.config_path.read_text().split("connection = ", 1)[1]
    config.write_text(
        "[DEFAULT]\nlog_format = json\n\n[database]\nconnection = "
        + database.split("\n", 1)[0]
        + f"\n\n[metadata]\nbind_host = 127.0.0.1\nbind_port = {port}\nworkers = 1\n"
        + f"shared_secret = {secret}\n"
    )
    service = ApiServer(workdir=tmp_path, port=port, config_path=config, component="metadata")
    start_api(service, "metadata", "/")
    try:
        user_data = base64.b64encode(b"#!/bin/sh\necho from-user-data\n").decode()
        server_id = boot(world, "meta", user_data=user_data, metadata={"tier": "db"}).json()[
            "server"
        ]["id"]
        wait_status(world, compute_stack, server_id, "ACTIVE")
        signature = hmac.new(secret.encode(), server_id.encode(), hashlib.sha256).hexdigest()
        signed = {
            "X-Instance-ID": server_id,
            "X-Tenant-ID": world["alice"]["project_id"],
            "X-Instance-ID-Signature": signature,
            "X-Forwarded-For": "10.44.0.9",
        }
        with httpx.Client(base_url=service.url, headers=signed, timeout=30) as client:
            meta = client.get("/openstack/latest/meta_data.json").json()
            assert meta["uuid"] == server_id and meta["name"] == "meta"
            assert meta["hostname"] == "meta" and meta["meta"] == {"tier": "db"}
            assert client.get("/openstack/latest/user_data").content.startswith(b"#!/bin/sh")
            network = client.get("/openstack/latest/network_data.json").json()
            (link,) = network["links"]
            assert (
                link["ethernet_mac_address"]
                == server(world, server_id)["addresses"][world["network"]["name"]][0][
                    "OS-EXT-IPS-MAC:mac_addr"
                ]
            )
            assert network["networks"][0]["type"] == "ipv4_dhcp"
            assert client.get("/latest/meta-data/local-ipv4").text.startswith("10.44.0.")
            forged = client.get(
                "/openstack/latest/meta_data.json",
                headers={"X-Instance-ID-Signature": "0" * 64},
            )
            assert forged.status_code == 403
        world["client"].delete(f"/servers/{server_id}")
        wait_gone(world, compute_stack, server_id)
    finally:
        service.stop()


def test_restarts_mid_boot_and_mid_delete_leave_nothing_behind(
    world, compute_stack, network_server, admin
):
    """The scheduler and then the agent killed (SIGKILL) with work in flight,
    the API restarted meanwhile: once back, every server ends in a true
    state, the one deleted while its host's agent was down is gone with its
    port, an orphan domain is destroyed, and no claim is left."""
    client = world["client"]
    orphan = "00000000-0000-4000-8000-000000000001"
    compute_stack.scheduler.kill()
    try:
        ids = [boot(world, f"crash-{i}").json()["server"]["id"] for i in range(2)]
        assert {server(world, i)["OS-EXT-STS:task_state"] for i in ids} == {"scheduling"}
        compute_stack.api.restart()
    finally:
        compute_stack.scheduler.start()
    for server_id in ids:
        wait_status(world, compute_stack, server_id, "ACTIVE")

    compute_stack.agent.kill()
    try:
        # Placed and wired while the agent is away: it waits for its host.
        late = boot(world, "crash-late").json()["server"]["id"]
        wait_for(
            lambda: server(world, late)["OS-EXT-STS:task_state"] == "spawning",
            30,
            "the late server to wait for its host",
            compute_stack,
        )
        doomed = ids.pop()
        assert client.delete(f"/servers/{doomed}").status_code == 204
        # A domain of a server nobody knows, as a crash halfway through a
        # delete can leave one.
        state_file = compute_stack.workdir / "instances" / "fake-1.json"
        domains = json.loads(state_file.read_text()) if state_file.exists() else {}
        domains[orphan] = {"power": 1, "console": ""}
        state_file.write_text(json.dumps(domains))
    finally:
        compute_stack.agent.start()
    ids.append(late)
    for server_id in ids:
        wait_status(world, compute_stack, server_id, "ACTIVE")
    wait_gone(world, compute_stack, doomed)
    wait_for(
        lambda: orphan not in json.loads(state_file.read_text()),
        30,
        "the orphan domain to be destroyed",
        compute_stack,
    )
    for server_id in ids:
        client.delete(f"/servers/{server_id}")
    for server_id in ids:
        wait_gone(world, compute_stack, server_id)
    used = {
        h["hypervisor_hostname"]: h["vcpus_used"]
        for h in admin.get("/os-hypervisors/detail").json()["hypervisors"]
    }
    assert used["fake-1"] == 0 and used["fake-2"] == 0
    left = httpx.get(
        f"{network_server.url}/v2.0/ports",
        params={"device_owner": "compute:nova"},
        headers=admin.headers,
    ).json()["ports"]
    assert [p for p in left if p["device_id"] in (*ids, doomed)] == []


def test_delete_on_a_host_that_is_down(world, compute_stack, admin):
    """A server deleted while its host's agent is down goes once the host
    counts as down (service_down_time, 10 s here): claim, port and row; the
    agent, back, destroys the domain it still has."""
    server_id = boot(world, "on-a-dead-host").json()["server"]["id"]
    wait_status(world, compute_stack, server_id, "ACTIVE")
    host = admin.get(f"/servers/{server_id}").json()["server"]["OS-EXT-SRV-ATTR:host"]
    state_file = compute_stack.workdir / "instances" / f"{host}.json"
    compute_stack.agent.kill()
    try:
        assert world["client"].delete(f"/servers/{server_id}").status_code == 204
        wait_gone(world, compute_stack, server_id, timeout=40)
        assert server_id in json.loads(state_file.read_text())  # the host never heard
    finally:
        compute_stack.agent.start()
    wait_for(
        lambda: server_id not in json.loads(state_file.read_text()),
        30,
        "the agent to destroy the deleted server's domain",
        compute_stack,
    )
    wait_for(
        lambda: (
            admin.get("/os-services", params={"host": host}).json()["services"][0]["state"] == "up"
        ),
        30,
        "the host to be up again",
        compute_stack,
    )


def test_a_floating_ip_shows_in_the_addresses(world, compute_stack, openstack_cli, admin):
    tag = world["tag"]
    # A VLAN of its own on physnet2 (the session's flat physnet1 may be
    # taken by another test's network).
    external = openstack_cli(
        "network", "create", "--external", "--provider-network-type", "vlan",
        "--provider-physical-network", "physnet2",
        "--provider-segment", str(200 + int(tag, 16) % 3800), f"ext-{tag}", "-f", "json",
    )  # fmt: skip

    openstack_cli(
        "subnet",
        "create",
        "--network",
        external["id"],
        "--subnet-range",
        "203.0.113.0/24",
        "--no-dhcp",
        f"ext-sub-{tag}",
    )
    cli = world["cli"]
    router = cli("router", "create", f"r-{tag}", "-f", "json")
    try:
        cli("router", "set", "--external-gateway", external["id"], router["id"])
        cli("router", "add", "subnet", router["id"], world["subnet"]["id"])
        server_id = boot(world, "floating").json()["server"]["id"]
        wait_status(world, compute_stack, server_id, "ACTIVE")
        (port,) = cli("port", "list", "--device-id", server_id, "-f", "json")
        floating = cli(
            "floating", "ip", "create", "--port", port["ID"], external["id"], "-f", "json"
        )
        address = floating["floating_ip_address"]

        def shown():
            entries = server(world, server_id)["addresses"][world["network"]["name"]]
            return [e for e in entries if e["OS-EXT-IPS:type"] == "floating"]

        (entry,) = wait_for(shown, 30, "the floating IP in the addresses", compute_stack)
        assert entry["addr"] == address
        cli("floating", "ip", "delete", floating["id"])
        wait_for(lambda: not shown(), 30, "the floating IP to go", compute_stack)
        world["client"].delete(f"/servers/{server_id}")
        wait_gone(world, compute_stack, server_id)
    finally:
        cli("router", "remove", "subnet", router["id"], world["subnet"]["id"], check=False)
        cli("router", "delete", router["id"], check=False)
        openstack_cli("network", "delete", external["id"], check=False)
