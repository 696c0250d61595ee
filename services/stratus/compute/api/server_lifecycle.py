"""Server actions that change what a server is made of: ``createImage``
(a snapshot), ``rebuild``, and ``resize`` with ``confirmResize`` and
``revertResize``.

Each is checked completely first (the server's state, its lock, the image
or flavor as the caller sees them, quotas); a refusal changes nothing. An
accepted action sets the server's task with a compare-and-set on its
task_state (None), records the instance action, and answers at once; the
host's agent (or, for a resize, the scheduler first) carries it out.

- **createImage** makes the image at once, with the caller's token and in
  the caller's project (so the image service's quotas and rules apply), as
  Nova does: queued, ``qcow2``/``bare``, the base image's properties and
  ``min_ram``, ``min_disk`` (at least the flavor's disk), ``instance_uuid``,
  ``image_type`` ``snapshot``, ``base_image_ref``, the request's metadata.
  The answer is 202 with the image's URL as ``Location`` (the body's
  ``image_id`` is 2.45's). The agent uploads the root disk into it; if that
  fails, the image is deleted and the server keeps its state.
- **rebuild** gives the server a new image (and optionally a new name,
  metadata, access addresses); the agent makes a new root disk and boots
  it. 202 with the server.
- **resize** asks the scheduler for a host with room for the new flavor
  (see ``scheduler.resize``); the server ends in VERIFY_RESIZE. Until the
  resize is confirmed or reverted, the server's ``vcpus`` and ``memory_mb``
  (what quotas count) are the larger of both flavors, so a revert always
  has its quota; the old flavor keeps its claim on the source host.
"""

from __future__ import annotations

import json
import uuid
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update
from starlette.responses import Response

from stratus.common import errors
from stratus.common.app import ApiRequest
from stratus.common.handlers import ok
from stratus.compute import quotas, scheduling, states
from stratus.compute.api import common, flavors, server_views, servers
from stratus.compute.model import Migration, Server, ServerMetadata

RULE = "os_compute_api:servers"

SNAPSHOT_STATES = (states.ACTIVE, states.STOPPED, states.PAUSED, states.SUSPENDED)
REBUILD_STATES = (states.ACTIVE, states.STOPPED, states.ERROR)
RESIZE_STATES = (states.ACTIVE, states.STOPPED)

# Glance's own attributes of an image: not properties a snapshot inherits.
IMAGE_ATTRIBUTES = frozenset(
    {
        "id", "name", "status", "visibility", "protected", "checksum", "size",
        "virtual_size", "owner", "created_at", "updated_at", "tags", "file",
        "schema", "self", "direct_url", "locations", "disk_format",
        "container_format", "min_ram", "min_disk", "os_hidden", "os_hash_algo",
        "os_hash_value", "stores", "instance_owner",
    }
)  # fmt: skip
# Properties Nova never copies into a snapshot.
NON_INHERITABLE = frozenset(
    {
        "cinder_encryption_key_id",
        "cinder_encryption_key_deletion_policy",
        "img_signature",
        "img_signature_hash_method",
        "img_signature_key_type",
        "img_signature_certificate_uuid",
    }
)


def conflict(server: Server, action: str, allowed: tuple[str, ...] = ()) -> errors.Conflict:
    """Nova's 409 for an action the server's state does not allow: its
    vm_state when that is not one of ``allowed``, else its task."""
    if server.task_state and server.vm_state in allowed:
        where = f"task_state {server.task_state}"
    else:
        where = f"vm_state {server.vm_state}"
    return errors.Conflict(f"Cannot '{action}' instance {server.id} while it is in {where}")


def _object(argument: Any, action: str) -> dict[str, Any]:
    if not isinstance(argument, dict):
        raise errors.BadRequest(f"Invalid input for field/attribute {action}: give an object.")
    return argument


def _claim_task(session: Any, server: Server, allowed: tuple[str, ...], task: str) -> bool:
    """Set the server's task if it still has none and is in one of ``allowed``."""
    moved = session.execute(
        update(Server)
        .where(
            Server.id == server.id,
            Server.task_state.is_(None),
            Server.vm_state.in_(allowed),
        )
        .values(task_state=task, revision=Server.revision + 1)
        .execution_options(synchronize_session="fetch")
    )
    return moved.rowcount == 1


# --- createImage --------------------------------------------------------------


def snapshot_values(
    req: ApiRequest, server: Server, base: dict[str, Any], name: str, metadata: dict[str, str]
) -> dict[str, Any]:
    """The new image's attributes and properties (see the module)."""
    flavor = json.loads(server.flavor)
    values: dict[str, Any] = {
        key: value
        for key, value in base.items()
        if key not in IMAGE_ATTRIBUTES
        and key not in NON_INHERITABLE
        and not key.startswith("os_glance")
        and isinstance(value, str)
    }
    values.update(
        {
            "name": name,
            "disk_format": "qcow2",
            "container_format": "bare",
            "min_ram": int(base.get("min_ram") or 0),
            "min_disk": max(int(base.get("min_disk") or 0), int(flavor.get("disk") or 0)),
            "instance_uuid": server.id,
            "user_id": str(req.context.user_id),
            "image_type": "snapshot",
            "base_image_ref": server.image_id or "",
        }
    )
    if req.context.project_id != server.project_id:
        # An admin's snapshot of another project's server: shared, and the
        # server's project named (Nova's instance_owner).
        values["visibility"] = "shared"
        values["instance_owner"] = server.project_id
    else:
        values["visibility"] = "private"
    values.update(metadata)
    return values


def create_image(req: ApiRequest, argument: Any) -> Response:
    values = _object(argument, "createImage")
    common.reject_unknown(values, {"name", "metadata"}, "createImage")
    name = servers._name(values)
    service = common.service(req)
    with service.db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:create_image")
        if server.task_state is not None or server.vm_state not in SNAPSHOT_STATES:
            raise conflict(server, "createImage", SNAPSHOT_STATES)
        if not server.host:
            raise conflict(server, "createImage", SNAPSHOT_STATES)
        limit = quotas.limits(session, service.options, req.context.project_id or "")[
            "metadata_items"
        ]
        metadata = servers.check_metadata(values.get("metadata", {}), limit)
        session.expunge(server)
    apis = servers.neighbours(req)
    base: dict[str, Any] = {}
    if server.image_id:
        try:
            base = apis.get_image(server.image_id)
        except errors.NotFound:
            base = {}  # gone, or no longer visible: nothing to inherit
    image = apis.create_image(snapshot_values(req, server, base, name, metadata))
    try:
        if image.get("visibility") == "shared":  # the server's project sees it
            apis.image.call(
                "POST", f"/v2/images/{image['id']}/members", json={"member": server.project_id}
            )
        with service.db.session() as session:
            current = session.get(Server, server.id)
            if current is None or not _claim_task(
                session, current, SNAPSHOT_STATES, states.IMAGE_SNAPSHOT_PENDING
            ):
                if current is None:
                    raise errors.NotFound(f"Instance {server.id} could not be found.")
                session.refresh(current)
                raise conflict(current, "createImage", SNAPSHOT_STATES)
            session.refresh(current)
            current.task_args = json.dumps({"image_id": image["id"]})
            servers.record_action(session, req, current, "createImage")
    except BaseException:
        apis.delete_image(image["id"])  # nothing half-made
        raise
    return Response(status_code=202, headers={"Location": apis.image_url(image["id"])})


# --- rebuild ------------------------------------------------------------------

_REBUILD_FIELDS = {
    "imageRef",
    "name",
    "adminPass",
    "metadata",
    "preserve_ephemeral",
    "accessIPv4",
    "accessIPv6",
    "OS-DCF:diskConfig",
    "personality",
}


def rebuild(req: ApiRequest, argument: Any) -> Response:
    values = _object(argument, "rebuild")
    common.reject_unknown(values, _REBUILD_FIELDS, "rebuild")
    if "imageRef" not in values:
        raise errors.BadRequest("Invalid input for field/attribute rebuild: imageRef is required.")
    image_id = servers._ref(values["imageRef"], "imageRef")
    name = servers._name(values) if "name" in values else None
    if values.get("personality"):
        raise errors.BadRequest("Personality (injected files) is not supported; use user_data.")
    preserve = values.get("preserve_ephemeral", False)
    if not isinstance(preserve, bool):
        raise errors.BadRequest(
            f"Invalid input for field/attribute preserve_ephemeral. Value: {preserve!r} is not "
            "a boolean."
        )
    if values.get("adminPass") is not None and not isinstance(values["adminPass"], str):
        raise errors.BadRequest("Invalid input for field/attribute adminPass: give a string.")
    access = {
        column: servers.access_ip(values, field)
        for field, column in servers.ACCESS_IPS.items()
        if field in values
    }
    service = common.service(req)
    with service.db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:rebuild")
        servers.check_unlocked(req, server)
        if server.task_state is not None or server.vm_state not in REBUILD_STATES:
            raise conflict(server, "rebuild", REBUILD_STATES)
        metadata = None
        if "metadata" in values:
            limit = quotas.limits(session, service.options, server.project_id)["metadata_items"]
            metadata = servers.check_metadata(values["metadata"], limit)
        flavor = json.loads(server.flavor)
    sizes = SimpleNamespace(memory_mb=int(flavor["ram"]), root_gb=int(flavor["disk"]))
    image = servers._check_image(req, servers.neighbours(req), image_id, sizes)
    with service.db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:rebuild")
        if not server.host or not _claim_task(session, server, REBUILD_STATES, states.REBUILDING):
            session.refresh(server)
            raise conflict(server, "rebuild", REBUILD_STATES)
        session.refresh(server)
        server.image_id = image_id
        flavor["kernel_id"] = image.get("kernel_id") or ""
        flavor["ramdisk_id"] = image.get("ramdisk_id") or ""
        server.flavor = json.dumps(flavor)
        server.task_args = json.dumps({"preserve_ephemeral": preserve})
        if name is not None:
            server.name = name
            server.hostname = servers.hostname_for(name)
        if metadata is not None:
            server.metadata_items = [ServerMetadata(key=k, value=v) for k, v in metadata.items()]
        for column, address in access.items():
            setattr(server, column, address)
        servers.record_action(session, req, server, "rebuild")
        session.flush()
        view = server_views.basic(req, server)
    return ok({"server": view}, status=202)


# --- resize -------------------------------------------------------------------


def resize(req: ApiRequest, argument: Any) -> Response:
    values = _object(argument, "resize")
    common.reject_unknown(values, {"flavorRef", "OS-DCF:diskConfig"}, "resize")
    if "flavorRef" not in values:
        raise errors.BadRequest("Invalid input for field/attribute resize: flavorRef is required.")
    flavor_id = servers._ref(values["flavorRef"], "flavorRef")
    service = common.service(req)
    with service.db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:resize")
        servers.check_unlocked(req, server)
        if server.task_state is not None or server.vm_state not in RESIZE_STATES or not server.host:
            raise conflict(server, "resize", RESIZE_STATES)
        try:
            flavor = flavors.find(req, session, flavor_id)
        except errors.NotFound:
            raise errors.BadRequest("Unable to locate requested flavor.") from None
        old = json.loads(server.flavor)
        if flavor.flavorid == old["id"]:
            raise errors.BadRequest("When resizing, instances must change flavor!")
        if flavor.disabled:
            raise errors.BadRequest(f"Flavor {flavor.flavorid} is disabled.")
        if flavor.root_gb < int(old["disk"]) or (flavor.root_gb == 0 and int(old["disk"])):
            raise errors.BadRequest(
                f"Resize error: Unable to resize disk down: flavor {flavor.flavorid} has a "
                f"disk of {flavor.root_gb} GiB, the server {old['disk']} GiB."
            )
        if flavor.ephemeral_gb < int(old.get("ephemeral") or 0):
            raise errors.BadRequest("Resize error: Unable to resize the ephemeral disk down.")
        new = servers.flavor_copy(flavor, old.get("kernel_id", ""), old.get("ramdisk_id", ""))
        quotas.check(
            session,
            service.options,
            server.project_id,
            None,
            {
                "cores": new["vcpus"] - int(old["vcpus"]),
                "ram": new["ram"] - int(old["ram"]),
            },
        )
        if not _claim_task(session, server, RESIZE_STATES, states.RESIZE_PREP):
            session.refresh(server)
            raise conflict(server, "resize", RESIZE_STATES)
        session.refresh(server)
        session.add(
            Migration(
                uuid=str(uuid.uuid4()),
                server_id=server.id,
                project_id=server.project_id,
                user_id=str(req.context.user_id),
                source_host=server.host,
                old_flavor=json.dumps(old),
                new_flavor=json.dumps(new),
                old_vm_state=server.vm_state,
                status="pre-migrating",
            )
        )
        # Until confirmed or reverted, quotas count the larger of both.
        server.vcpus = max(new["vcpus"], int(old["vcpus"]))
        server.memory_mb = max(new["ram"], int(old["ram"]))
        server.disk_gb = max(scheduling.flavor_disk_gb(new), scheduling.flavor_disk_gb(old))
        servers.record_action(session, req, server, "resize")
    return Response(status_code=202)


def _finish_resize(
    req: ApiRequest, argument: Any, action: str, rule: str, task: str, status: str
) -> Server:
    if argument not in (None, {}):
        raise errors.BadRequest(f"The action {action} takes no arguments.")
    with common.service(req).db.session() as session:
        server = servers.find(req, session, req.path_params["server_id"], f"{RULE}:{rule}")
        servers.check_unlocked(req, server)
        migration = session.scalars(
            select(Migration)
            .where(Migration.server_id == server.id, Migration.status == "finished")
            .order_by(Migration.id.desc())
        ).first()
        if server.vm_state != states.RESIZED or server.task_state is not None:
            raise conflict(server, action, (states.RESIZED,))
        if migration is None:
            raise errors.BadRequest("Instance has not been resized.")
        if not _claim_task(session, server, (states.RESIZED,), task):
            session.refresh(server)
            raise conflict(server, action, (states.RESIZED,))
        session.refresh(server)
        migration.status = status
        servers.record_action(session, req, server, action)
        return server


def confirm_resize(req: ApiRequest, argument: Any) -> Response:
    _finish_resize(
        req, argument, "confirmResize", "confirm_resize", states.RESIZE_CONFIRMING, "confirming"
    )
    return Response(status_code=204)


def revert_resize(req: ApiRequest, argument: Any) -> Response:
    _finish_resize(
        req, argument, "revertResize", "revert_resize", states.RESIZE_REVERTING, "reverting"
    )
    return Response(status_code=202)


HANDLERS = {
    "createImage": create_image,
    "rebuild": rebuild,
    "resize": resize,
    "confirmResize": confirm_resize,
    "revertResize": revert_resize,
}
