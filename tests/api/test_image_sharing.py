"""Who sees and may change which image: visibility, members and roles.

Two ordinary projects (an owner and a consumer, each with a member user)
and a reader play Glance's rules: private images stay with their owner,
shared images reach members once they accept, community images are listed
on request, only cloud admins publish public images, and only the owner
changes an image.
"""

from __future__ import annotations

import httpx
import pytest

from tests.api.helpers import admin_token, assert_error, auth_headers, project_user

PATCH = {"Content-Type": "application/openstack-images-v2.1-json-patch"}


@pytest.fixture(scope="module")
def people(identity_server, image_server):
    from uuid import uuid4

    tag = uuid4().hex[:8]
    owner = project_user(identity_server, f"owner-{tag}")
    consumer = project_user(identity_server, f"consumer-{tag}")
    reader = project_user(identity_server, f"reader-{tag}", role="reader")
    clients = {}
    for name, who in (("owner", owner), ("consumer", consumer), ("reader", reader)):
        clients[name] = httpx.Client(base_url=image_server.url, headers=who["headers"], timeout=30)
    clients["admin"] = httpx.Client(
        base_url=image_server.url, headers=auth_headers(admin_token(identity_server)), timeout=30
    )
    yield {"owner": owner, "consumer": consumer, "reader": reader, "http": clients}
    for c in clients.values():
        c.close()


def ids(client, **params):
    return {
        i["id"] for i in client.get("/v2/images", params={"limit": 1000, **params}).json()["images"]
    }


def test_private_images_stay_with_their_owner(people, unique):
    owner, consumer = people["http"]["owner"], people["http"]["consumer"]
    image = owner.post(
        "/v2/images", json={"name": f"priv-{unique}", "visibility": "private"}
    ).json()
    assert image["owner"] == people["owner"]["project_id"]
    assert image["id"] in ids(owner)
    assert image["id"] not in ids(consumer)
    assert_error(consumer.get(f"/v2/images/{image['id']}"), 404)
    assert_error(consumer.delete(f"/v2/images/{image['id']}"), 404)
    # A cloud admin sees everything.
    assert people["http"]["admin"].get(f"/v2/images/{image['id']}").status_code == 200


def test_sharing_with_membership(people, unique):
    owner, consumer = people["http"]["owner"], people["http"]["consumer"]
    consumer_id = people["consumer"]["project_id"]
    image = owner.post("/v2/images", json={"name": f"shared-{unique}"}).json()
    url = f"/v2/images/{image['id']}"
    member = owner.post(f"{url}/members", json={"member": consumer_id})
    assert member.status_code == 200, member.text
    assert member.json()["status"] == "pending"
    assert_error(owner.post(f"{url}/members", json={"member": consumer_id}), 409)
    # Pending: reachable by ID, not in the default list.
    assert consumer.get(url).status_code == 200
    assert image["id"] not in ids(consumer)
    assert image["id"] in ids(consumer, visibility="shared", member_status="pending")
    # Only the member answers for itself.
    assert_error(owner.put(f"{url}/members/{consumer_id}", json={"status": "accepted"}), 403)
    assert_error(consumer.put(f"{url}/members/{consumer_id}", json={"status": "maybe"}), 400)
    accepted = consumer.put(f"{url}/members/{consumer_id}", json={"status": "accepted"})
    assert accepted.json()["status"] == "accepted"
    assert image["id"] in ids(consumer)
    assert [m["member_id"] for m in consumer.get(f"{url}/members").json()["members"]] == [
        consumer_id
    ]
    # The consumer may not change or delete what it was given.
    assert_error(
        consumer.patch(url, json=[{"op": "replace", "path": "/name", "value": "x"}], headers=PATCH),
        403,
    )
    assert_error(consumer.delete(url), 403)
    assert_error(consumer.post(f"{url}/members", json={"member": "someone"}), 403)
    consumer.put(f"{url}/members/{consumer_id}", json={"status": "rejected"})
    assert image["id"] not in ids(consumer)
    assert owner.delete(f"{url}/members/{consumer_id}").status_code == 204
    assert_error(consumer.get(url), 404)
    assert_error(owner.delete(f"{url}/members/{consumer_id}"), 404)


def test_members_only_for_shared_images(people, unique):
    owner = people["http"]["owner"]
    image = owner.post("/v2/images", json={"name": f"pm-{unique}", "visibility": "private"}).json()
    assert_error(owner.post(f"/v2/images/{image['id']}/members", json={"member": "x"}), 403)
    assert_error(owner.get(f"/v2/images/{image['id']}/members"), 403)


def test_community_and_public_visibility(people, unique):
    owner, consumer, admin = (people["http"][k] for k in ("owner", "consumer", "admin"))
    community = owner.post(
        "/v2/images", json={"name": f"comm-{unique}", "visibility": "community"}
    ).json()
    assert community["id"] not in ids(consumer)
    assert community["id"] in ids(consumer, visibility="community")
    assert consumer.get(f"/v2/images/{community['id']}").status_code == 200
    # Only a cloud admin publishes.
    assert_error(owner.post("/v2/images", json={"name": "p", "visibility": "public"}), 403)
    ops = [{"op": "replace", "path": "/visibility", "value": "public"}]
    assert_error(owner.patch(f"/v2/images/{community['id']}", json=ops, headers=PATCH), 403)
    assert admin.patch(f"/v2/images/{community['id']}", json=ops, headers=PATCH).status_code == 200
    assert community["id"] in ids(consumer)
    assert community["id"] in ids(consumer, visibility="public")


def test_readers_read_but_do_not_write(people, unique):
    reader = people["http"]["reader"]
    assert reader.get("/v2/images").status_code == 200
    assert_error(reader.post("/v2/images", json={"name": f"r-{unique}"}), 403)


def test_owner_cannot_give_images_away(people, unique):
    owner = people["http"]["owner"]
    consumer_id = people["consumer"]["project_id"]
    assert_error(owner.post("/v2/images", json={"name": "x", "owner": consumer_id}), 403)
    image = owner.post("/v2/images", json={"name": f"keep-{unique}"}).json()
    ops = [{"op": "replace", "path": "/owner", "value": consumer_id}]
    assert_error(owner.patch(f"/v2/images/{image['id']}", json=ops, headers=PATCH), 403)


def test_downloads_follow_visibility_and_deactivation(people, unique):
    owner, consumer, admin = (people["http"][k] for k in ("owner", "consumer", "admin"))
    image = owner.post(
        "/v2/images",
        json={
            "name": f"dl-{unique}",
            "disk_format": "raw",
            "container_format": "bare",
            "visibility": "community",
        },
    ).json()
    url = f"/v2/images/{image['id']}"
    octet = {"Content-Type": "application/octet-stream"}
    assert_error(consumer.put(f"{url}/file", content=b"x", headers=octet), 403)
    assert owner.put(f"{url}/file", content=b"payload", headers=octet).status_code == 204
    assert consumer.get(f"{url}/file").content == b"payload"
    assert_error(consumer.post(f"{url}/actions/deactivate"), 403)  # not the owner
    assert owner.post(f"{url}/actions/deactivate").status_code == 204  # Glance: the owner may
    assert_error(consumer.get(f"{url}/file"), 403)
    assert_error(owner.get(f"{url}/file"), 403)  # only cloud admins read deactivated data
    assert admin.get(f"{url}/file").content == b"payload"
    assert admin.post(f"{url}/actions/reactivate").status_code == 204
    assert owner.get(f"{url}/file").content == b"payload"
