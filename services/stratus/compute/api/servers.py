"""``/servers``: create, list, show, update and delete servers.

A create request is checked completely before anything is written (the
image, flavor, networks, ports, key pair, security groups, zone, group and
quotas, as the caller sees them, through the image and network APIs with
the caller's token) and then written in one transaction: the servers in
``building``/``scheduling`` and their ``create`` actions. The scheduler
takes them from there; the answer is 202 at once.

Delete marks the server ``deleting``; whoever holds it (the scheduler for a
server without a host, the host's agent otherwise) removes what it has and
then the row, so a deleted server answers 404 only once nothing is left.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session
from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors, keyset
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.common.pagination import collection_links, page_params
from stratus.compute import quotas, states
from stratus.compute.api import common, flavors, server_views
from stratus.compute.model import (
    ComputeHost,
    InstanceAction,
    InstanceActionEvent,
    KeyPair,
    Server,
    ServerGroup,
    ServerMetadata,
)
from stratus.compute.remote import Neighbours

RULE = "os_compute_api:servers"
MAX_USER_DATA = 65535
_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$"
)
_HOSTNAME_BAD = re.compile(r"[^a-z0-9-]+")


# --- lookups ------------------------------------------------------------------


def find(req: ApiRequest, session: Session, server_id: str, rule: str) -> Server:
    """The server, after checking ``rule`` against it (404 when the caller may
    not even see it, as Nova does for other projects' servers)."""
    server = session.get(Server, server_id)
    if server is None or (
        server.project_id != req.context.project_id and not common.allowed(req, "cloud_reader")
    ):
        raise errors.NotFound(f"Instance {server_id} could not be found.")
    common.enforce(req, rule, {"project_id": server.project_id})
    return server


def record_action(
    session: Session, req: ApiRequest, server: Server, action: str, event: str | None = None
) -> InstanceAction:
    row = InstanceAction(
        server_id=server.id,
        project_id=server.project_id,
        user_id=str(req.context.user_id),
        request_id=getattr(req.request.state, "request_id", "") or "",
        action=action,
    )
    if event:
        row.events.append(InstanceActionEvent(event=event))
    session.add(row)
    return row


def neighbours(req: ApiRequest) -> Neighbours:
    token = req.headers.get("x-auth-token", "")
    return Neighbours(common.service(req).http, token, req.context.token)


# --- create -------------------------------------------------------------------

_CREATE_FIELDS = {
    "name",
    "imageRef",
    "flavorRef",
    "networks",
    "key_name",
    "user_data",
    "metadata",
    "security_groups",
    "availability_zone",
    "config_drive",
    "min_count",
    "max_count",
    "return_reservation_id",
    "accessIPv4",
    "accessIPv6",
    "adminPass",
    "OS-DCF:diskConfig",
    "block_device_mapping_v2",
    "personality",
}


def _bad(field: str, why: str) -> errors.BadRequest:
    return errors.BadRequest(f"Invalid input for field/attribute {field}. {why}")


def _ref(value: Any, field: str) -> str:
    """An ID, or the last part of a URL to it (imageRef and flavorRef may be links)."""
    if not isinstance(value, str) or not value.strip():
        raise _bad(field, f"Value: {value!r} is not a valid ID or link.")
    return value.rstrip("/").rsplit("/", 1)[-1]


def _name(values: dict[str, Any]) -> str:
    name = values.get("name")
    if not isinstance(name, str) or not 1 <= len(name) <= 255 or name != name.strip():
        raise _bad("name", f"Value: {name!r}. A name is 1 to 255 characters, not blank-padded.")
    if any(ord(c) < 32 for c in name):
        raise _bad("name", "It must not contain control characters.")
    return name


def hostname_for(name: str) -> str:
    """Nova's sanitised hostname: lower case letters, digits and hyphens."""
    text = _HOSTNAME_BAD.sub("-", name.lower().replace("_", "-").replace(" ", "-"))
    text = text.strip("-.")[:63]
    return text or "server"


def _count(values: dict[str, Any], field: str) -> int:
    raw = values.get(field, 1)
    value = int(raw) if isinstance(raw, str) and raw.isdigit() else raw
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _bad(field, f"Value: {raw!r}. It must be an integer of 1 or more.")
    return value


def _user_data(values: dict[str, Any]) -> str | None:
    raw = values.get("user_data")
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise _bad("user_data", "User data must be a base64 encoded string.")
    if len(raw) > MAX_USER_DATA:
        raise _bad("user_data", f"User data is too long: at most {MAX_USER_DATA} characters.")
    try:
        base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise _bad("user_data", "User data needs to be valid base 64.") from None
    return raw


def check_metadata(metadata: Any, limit: int) -> dict[str, str]:
    if not isinstance(metadata, dict):
        raise _bad("metadata", "Metadata must be an object of string keys and values.")
    for key, value in metadata.items():
        if not isinstance(key, str) or not 1 <= len(key) <= 255:
            raise _bad("metadata", f"Metadata key {key!r} must be 1 to 255 characters.")
        if not isinstance(value, str) or len(value) > 255:
            raise _bad("metadata", f"Metadata value of {key!r} must be a string of at most 255.")
    if 0 <= limit < len(metadata):
        raise errors.Forbidden(f"Quota exceeded for metadata_items: at most {limit} items.")
    return dict(metadata)


def _check_image(req: ApiRequest, apis: Neighbours, image_id: str, flavor: Any) -> dict[str, Any]:
    try:
        image = apis.get_image(image_id)
    except errors.NotFound:
        raise errors.BadRequest(f"Image {image_id} could not be found.") from None
    if image.get("status") != "active":
        raise errors.BadRequest(f"Image {image_id} is not active.")
    if (image.get("min_ram") or 0) > flavor.memory_mb:
        raise errors.BadRequest("Flavor's memory is too small for requested image.")
    if flavor.root_gb and (image.get("min_disk") or 0) > flavor.root_gb:
        raise errors.BadRequest("Flavor's disk is too small for requested image.")
    size = image.get("virtual_size") or image.get("size") or 0
    if flavor.root_gb and size > flavor.root_gb * 1024**3:
        raise errors.BadRequest(
            f"Flavor's disk is too small for requested image. Flavor disk is "
            f"{flavor.root_gb * 1024**3} bytes, image is {size} bytes."
        )
    if image.get("container_format") in ("aki", "ari"):
        raise errors.BadRequest(f"Image {image_id} is a kernel or ramdisk, not a bootable image.")
    return image


def flavor_copy(flavor: Any, kernel_id: str = "", ramdisk_id: str = "") -> dict[str, Any]:
    """The copy of a flavor a server keeps (``Server.flavor``)."""
    return {
        "id": flavor.flavorid,
        "name": flavor.name,
        "ram": flavor.memory_mb,
        "vcpus": flavor.vcpus,
        "disk": flavor.root_gb,
        "ephemeral": flavor.ephemeral_gb,
        "swap": flavor.swap,
        "extra_specs": {s.key: s.value for s in flavor.extra_specs},
        "kernel_id": kernel_id,
        "ramdisk_id": ramdisk_id,
    }


def _networks(req: ApiRequest, apis: Neighbours, raw: Any) -> list[dict[str, Any]]:
    """The networks and ports asked for, checked: [{network_id, port_id, fixed_ip}]."""
    project = req.context.project_id
    if raw is None:
        usable = [
            n
            for n in apis.list_networks()
            if not n.get("router:external") and (n.get("shared") or n["project_id"] == project)
        ]
        if len(usable) > 1:
            raise errors.Conflict(
                "Multiple possible networks found, use a Network ID to be more specific."
            )
        return [{"network_id": usable[0]["id"]}] if usable else []
    if not isinstance(raw, list):
        raise _bad("networks", f"Value: {raw!r} is not a list.")
    chosen: list[dict[str, Any]] = []
    seen_ports: set[str] = set()
    for entry in raw:
        if not isinstance(entry, dict) or not set(entry) <= {"uuid", "port", "fixed_ip"}:
            raise _bad("networks", f"Value: {entry!r}. Give uuid, port and/or fixed_ip.")
        port_id, network_id = entry.get("port"), entry.get("uuid")
        if port_id is not None:
            if not isinstance(port_id, str) or not _UUID.match(port_id):
                raise _bad("networks", f"Port {port_id!r} is not a UUID.")
            if port_id in seen_ports:
                raise errors.BadRequest(f"Port {port_id} is given twice.")
            seen_ports.add(port_id)
            try:
                port = apis.get_port(port_id)
            except errors.NotFound:
                raise errors.BadRequest(f"Port {port_id} could not be found.") from None
            if port.get("device_id"):
                raise errors.Conflict(f"Port {port_id} is still in use.")
            chosen.append({"network_id": port["network_id"], "port_id": port_id})
            continue
        if not isinstance(network_id, str) or not _UUID.match(network_id):
            raise _bad("networks", f"Network {network_id!r} is not a UUID.")
        try:
            apis.get_network(network_id)
        except errors.NotFound:
            raise errors.BadRequest(f"Network {network_id} could not be found.") from None
        item: dict[str, Any] = {"network_id": network_id}
        fixed_ip = entry.get("fixed_ip")
        if fixed_ip is not None:
            try:
                ipaddress.ip_address(fixed_ip)
            except (ValueError, TypeError):
                raise _bad("networks", f"fixed_ip {fixed_ip!r} is not an IP address.") from None
            item["fixed_ip"] = fixed_ip
        chosen.append(item)
    return chosen


def _security_groups(apis: Neighbours, raw: Any, project_id: str) -> list[str]:
    if raw is None:
        return ["default"]
    if not isinstance(raw, list) or not all(isinstance(g, dict) and "name" in g for g in raw):
        raise _bad("security_groups", 'Give a list of {"name": ...} objects.')
    names = []
    for group in raw:
        name = group["name"]
        if not isinstance(name, str) or not name:
            raise _bad("security_groups", f"Security group name {name!r} is not valid.")
        if name != "default" and not _UUID.match(name):
            found = apis.list_security_groups(name=name, project_id=project_id)
            if not found:
                raise errors.BadRequest(
                    f"Security group {name} not found for project {project_id}."
                )
        if name not in names:
            names.append(name)
    return names


def _zone_and_host(req: ApiRequest, session: Session, raw: Any) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, str) or not raw:
        raise _bad("availability_zone", f"Value: {raw!r} is not a zone name.")
    zone, _, host = raw.partition(":")
    host = host.split(":", 1)[0] or None
    default = common.service(req).options.default_availability_zone
    if host:
        common.enforce(req, f"{RULE}:create:forced_host")
        row = session.scalars(select(ComputeHost).where(ComputeHost.host == host)).first()
        if row is None:
            raise errors.BadRequest(f"Compute host {host} could not be found.")
    zones = {h.availability_zone or default for h in session.scalars(select(ComputeHost))}
    if zone and zone not in zones | {default}:
        raise errors.BadRequest("The requested availability zone is not available")
    return zone or None, host


def _group(req: ApiRequest, session: Session, values: dict[str, Any]) -> str | None:
    hints = values.get("os:scheduler_hints")
    group = hints.get("group") if isinstance(hints, dict) else None
    if group is None:
        return None
    row = session.get(ServerGroup, group) if isinstance(group, str) else None
    if row is None or row.project_id != req.context.project_id:
        raise errors.BadRequest(f"Invalid server group {group!r}.")
    return row.id


def _parse(req: ApiRequest) -> dict[str, Any]:
    document = req.json()
    if not isinstance(document, dict) or not isinstance(document.get("server"), dict):
        raise errors.BadRequest("The request body must be an object with the key 'server'.")
    unknown = set(document) - {"server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"}
    if unknown:
        raise errors.BadRequest(f"Unexpected keys in the request body: {sorted(unknown)}.")
    values = dict(document["server"])
    common.reject_unknown(values, _CREATE_FIELDS, "server")
    hints = document.get("os:scheduler_hints") or document.get("OS-SCH-HNT:scheduler_hints")
    if hints is not None and not isinstance(hints, dict):
        raise _bad("os:scheduler_hints", "It must be an object.")
    values["os:scheduler_hints"] = hints or {}
    return values


@endpoint
def create(req: ApiRequest) -> Response:
    context = req.context
    common.enforce(req, f"{RULE}:create", {"project_id": context.project_id})
    if not context.project_id:
        raise errors.BadRequest("Servers are created in a project: use a project-scoped token.")
    values = _parse(req)
    name = _name(values)
    min_count = _count(values, "min_count")
    max_count = _count(values, "max_count") if "max_count" in values else min_count
    if min_count > max_count:
        raise errors.BadRequest("min_count must be <= max_count")
    user_data = _user_data(values)
    if values.get("personality"):
        raise errors.BadRequest("Personality (injected files) is not supported; use user_data.")
    boot_image = _boot_image(values.get("block_device_mapping_v2"))
    if boot_image and not values.get("imageRef"):
        values["imageRef"] = boot_image
    config_drive = values.get("config_drive", False)
    if isinstance(config_drive, str):
        config_drive = config_drive.lower() in ("true", "1", "yes")
    if not isinstance(config_drive, bool):
        raise _bad("config_drive", f"Value: {config_drive!r} is not a boolean.")
    access = {field: access_ip(values, field) for field in ACCESS_IPS}
    service = common.service(req)
    options = service.options
    with service.db.session() as session:
        limits_metadata = quotas.limits(session, options, context.project_id)["metadata_items"]
        flavor = _flavor(req, session, _ref(values.get("flavorRef"), "flavorRef"))
        zone, forced_host = _zone_and_host(req, session, values.get("availability_zone"))
        group_id = _group(req, session, values)
        key_name, key_data = _key(session, values.get("key_name"), str(context.user_id))
    metadata = check_metadata(values.get("metadata", {}), limits_metadata)
    apis = neighbours(req)
    image_id = _ref(values.get("imageRef"), "imageRef")
    image = _check_image(req, apis, image_id, flavor)
    networks = _networks(req, apis, values.get("networks"))
    groups = _security_groups(apis, values.get("security_groups"), context.project_id)
    kept_flavor = flavor_copy(flavor, image.get("kernel_id") or "", image.get("ramdisk_id") or "")
    reservation = f"r-{uuid.uuid4().hex[:8]}"
    made: list[Server] = []
    with service.db.session() as session:
        count = _fit_quota(session, options, context.project_id, flavor, min_count, max_count)
        if group_id is not None:
            from stratus.compute.api.server_groups import check_members

            check_members(session, options, group_id, count)
        for index in range(count):
            server_name = name if count == 1 else f"{name}-{index + 1}"
            server = Server(
                id=str(uuid.uuid4()),
                project_id=context.project_id,
                user_id=str(context.user_id),
                name=server_name,
                hostname=hostname_for(server_name),
                image_id=image_id,
                flavor=json.dumps(kept_flavor),
                vcpus=flavor.vcpus,
                memory_mb=flavor.memory_mb,
                disk_gb=flavor.root_gb + flavor.ephemeral_gb + (flavor.swap + 1023) // 1024,
                key_name=key_name,
                key_data=key_data,
                user_data=user_data,
                config_drive=config_drive,
                availability_zone=zone,
                requested_networks=json.dumps(networks),
                security_groups=json.dumps(groups),
                scheduler_hints=json.dumps({"forced_host": forced_host} if forced_host else {}),
                server_group_id=group_id,
                reservation_id=reservation,
                launch_index=index,
                vm_state=states.BUILDING,
                task_state=states.SCHEDULING,
                access_ipv4=access["accessIPv4"],
                access_ipv6=access["accessIPv6"],
            )
            server.metadata_items = [ServerMetadata(key=k, value=v) for k, v in metadata.items()]
            session.add(server)
            session.flush()
            record_action(session, req, server, "create")
            made.append(server)
        first = made[0]
        body: dict[str, Any] = {
            "server": {
                "id": first.id,
                "links": common.links(req, "servers", first.id),
                "OS-DCF:diskConfig": "MANUAL",
                "security_groups": [{"name": g} for g in groups],
            }
        }
    if values.get("return_reservation_id") in (True, "True", "true"):
        return ok({"reservation_id": reservation}, status=202)
    return ok(body, status=202, headers={"Location": body["server"]["links"][0]["href"]})


# accessIPv4/accessIPv6 -> their column
ACCESS_IPS = {"accessIPv4": "access_ipv4", "accessIPv6": "access_ipv6"}


def access_ip(values: dict[str, Any], field: str) -> str:
    """An access address as Nova keeps it: checked (an IPv4 address for
    accessIPv4, IPv6 for accessIPv6; empty or null clears it) and in its
    canonical form (``::babe:dc0c:1602``, not ``0:0:0:0:0:babe:220.12.22.2``)."""
    raw = values.get(field)
    if raw is None or raw == "":
        return ""
    kind = ipaddress.IPv4Address if field == "accessIPv4" else ipaddress.IPv6Address
    try:
        if not isinstance(raw, str):
            raise ValueError(raw)
        return str(kind(raw))
    except ValueError:
        version = 4 if field == "accessIPv4" else 6
        raise _bad(field, f"Value: {raw!r}. It must be an IPv{version} address.") from None


def _boot_image(mappings: Any) -> str | None:
    """The image of a block device mapping that boots a local disk from an
    image (what the CLI sends with --image); other mappings need volumes."""
    if mappings in (None, []):
        return None
    if not isinstance(mappings, list) or not all(isinstance(m, dict) for m in mappings):
        raise _bad("block_device_mapping_v2", "It must be a list of objects.")
    images = []
    for mapping in mappings:
        source = mapping.get("source_type")
        destination = mapping.get("destination_type", "local")
        if source == "image" and destination == "local" and str(mapping.get("boot_index")) == "0":
            images.append(mapping.get("uuid"))
            continue
        raise errors.BadRequest(
            "Only booting a local disk from an image is supported: block devices of "
            f"source_type {source!r} and destination_type {destination!r} need volumes."
        )
    if len(images) != 1 or not isinstance(images[0], str):
        raise _bad("block_device_mapping_v2", "Give one boot image with boot_index 0.")
    return images[0]


def _flavor(req: ApiRequest, session: Session, flavor_id: str) -> Any:
    try:
        return flavors.find(req, session, flavor_id)
    except errors.NotFound:
        raise errors.BadRequest(f"Flavor {flavor_id} could not be found.") from None


def _key(session: Session, key_name: Any, user_id: str) -> tuple[str | None, str | None]:
    if key_name is None:
        return None, None
    if not isinstance(key_name, str):
        raise errors.BadRequest("Invalid key_name provided.")
    pair = session.scalars(
        select(KeyPair).where(KeyPair.user_id == user_id, KeyPair.name == key_name)
    ).first()
    if pair is None:
        raise errors.BadRequest("Invalid key_name provided.")
    return pair.name, pair.public_key


def _fit_quota(
    session: Session, options: Any, project_id: str, flavor: Any, min_count: int, max_count: int
) -> int:
    """How many servers (between min and max) the project's quotas allow;
    ``QuotaExceeded`` (403) when not even ``min_count`` fit."""
    for count in range(max_count, min_count - 1, -1):
        wanted = {
            "instances": count,
            "cores": flavor.vcpus * count,
            "ram": flavor.memory_mb * count,
        }
        try:
            quotas.check(session, options, project_id, None, wanted)
        except quotas.QuotaExceeded:
            if count == min_count:
                raise
            continue
        return count
    return min_count


# --- list and show ------------------------------------------------------------

SORT_KEYS = {
    "created_at": Server.created_at,
    "updated_at": Server.updated_at,
    "display_name": Server.name,
    "name": Server.name,
    "uuid": Server.id,
    "vm_state": Server.vm_state,
    "task_state": Server.task_state,
    "power_state": Server.power_state,
    "host": Server.host,
    "launched_at": Server.launched_at,
    "key_name": Server.key_name,
    "availability_zone": Server.availability_zone,
    "project_id": Server.project_id,
    "user_id": Server.user_id,
}


def _status_condition(status: str) -> Any:
    pairs = states.vm_states_for(status.upper())
    if not pairs:
        return None
    conditions = []
    for vm_state, task in pairs:
        if task is None:
            conditions.append(Server.vm_state == vm_state)
        else:
            conditions.append((Server.vm_state == vm_state) & (Server.task_state == task))
    return or_(*conditions)


def _query(req: ApiRequest, rule: str) -> Any:
    context = common.enforce(req, rule, {"project_id": req.context.project_id})
    query = select(Server)
    all_tenants = req.query.get("all_tenants")
    everyone = all_tenants is not None and all_tenants.lower() not in ("0", "false", "off", "no")
    if everyone:
        common.enforce(req, f"{rule}:get_all_tenants")
        project = req.query.get("project_id") or req.query.get("tenant_id")
        if project:
            query = query.where(Server.project_id == project)
    else:
        query = query.where(Server.project_id == context.project_id)
    admin = common.is_admin(req)
    for name, column in (
        ("image", Server.image_id),
        ("reservation_id", Server.reservation_id),
        ("key_name", Server.key_name),
    ):
        value = req.query.get(name)
        if value:
            query = query.where(column == value.rstrip("/").rsplit("/", 1)[-1])
    if admin:
        for name, column in (
            ("host", Server.host),
            ("availability_zone", Server.availability_zone),
        ):
            value = req.query.get(name)
            if value:
                query = query.where(column == value)
    status = req.query.get("status")
    if status:
        condition = _status_condition(status)
        query = query.where(condition if condition is not None else Server.id.is_(None))
    since = req.query.get("changes-since")
    if since:
        from datetime import datetime

        try:
            moment = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise errors.BadRequest(f"Invalid changes-since value {since!r}.") from None
        query = query.where(Server.updated_at >= moment)
    return query


def _pattern(req: ApiRequest, name: str) -> re.Pattern[str] | None:
    raw = req.query.get(name)
    if not raw:
        return None
    try:
        return re.compile(raw)
    except re.error:
        raise errors.BadRequest(
            f"Invalid {name} filter {raw!r}: not a regular expression."
        ) from None


def _row_filter(req: ApiRequest) -> Callable[[Server], bool] | None:
    """The filters SQL cannot apply (regular expressions on the name and
    the addresses, the flavor in the server's JSON), checked once here
    (400 for a bad expression, servers or not); None when none is asked."""
    name = _pattern(req, "name")
    ip = _pattern(req, "ip") or _pattern(req, "ip6")
    flavor = (req.query.get("flavor") or "").rstrip("/").rsplit("/", 1)[-1]
    if name is None and ip is None and not flavor:
        return None

    def matches(server: Server) -> bool:
        if name is not None and not name.search(server.name):
            return False
        if flavor and json.loads(server.flavor)["id"] != flavor:
            return False
        if ip is None:
            return True
        addresses = server_views.addresses(server).values()
        return any(ip.search(a["addr"]) for entries in addresses for a in entries)

    return matches


def _sort(req: ApiRequest) -> list[tuple[Any, str]]:
    """Nova's ``sort_key``/``sort_dir`` (default: newest first), with the ID
    last so that a marker names one position."""
    sort_keys = req.query.getlist("sort_key") or ["created_at"]
    sort_dirs = req.query.getlist("sort_dir") or ["desc"] * len(sort_keys)
    if len(sort_dirs) < len(sort_keys):
        sort_dirs += [sort_dirs[-1]] * (len(sort_keys) - len(sort_dirs))
    sort = []
    for key, direction in zip(sort_keys, sort_dirs, strict=False):
        if key not in SORT_KEYS:
            raise errors.BadRequest(f"Invalid sort_key {key!r}.")
        if direction not in ("asc", "desc"):
            raise errors.BadRequest(f"Invalid sort_dir {direction!r}: use asc or desc.")
        sort.append((SORT_KEYS[key], direction))
    return [*sort, (Server.id, "desc")]


def _list(req: ApiRequest, rule: str, detailed: bool) -> Response:
    """A page of servers: sorted, filtered and paged by the database (keyset
    paging after the marker), except for the filters SQL cannot apply, for
    which the rows after the marker are read until the page is full."""
    query = _query(req, rule)
    sort = _sort(req)
    matches = _row_filter(req)
    page = page_params(req.request, common.service(req).options.pagination_max_limit)
    with common.service(req).db.session() as session:
        if page.marker is not None:
            marker = session.scalar(query.where(Server.id == page.marker))
            if marker is None:
                raise errors.BadRequest(f"marker [{page.marker}] not found")
            query = query.where(keyset.after(sort, marker))
        query = query.order_by(*keyset.order_by(sort))
        if matches is None:
            rows = session.scalars(query if page.limit is None else query.limit(page.limit))
            servers = list(rows)
        else:
            servers = []
            for server in session.scalars(query.execution_options(yield_per=200)):
                if page.limit is not None and len(servers) >= page.limit:
                    break
                if matches(server):
                    servers.append(server)
        if detailed:
            admin = common.allowed(req, server_views.EXTENDED_RULE, {"project_id": ""})
            views = [server_views.detail(req, s, admin) for s in servers]
        else:
            views = [server_views.summary(req, s) for s in servers]
    public = common.service(req).options.public_endpoint or None
    links = collection_links(req.request, "servers", views, page, "id", public)
    return ok({"servers": views, **links})


@endpoint
def index(req: ApiRequest) -> Response:
    return _list(req, f"{RULE}:index", detailed=False)


@endpoint
def index_detail(req: ApiRequest) -> Response:
    return _list(req, f"{RULE}:detail", detailed=True)


@endpoint
def show(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        server = find(req, session, req.path_params["server_id"], f"{RULE}:show")
        return ok({"server": server_views.detail(req, server)})


# --- update and delete --------------------------------------------------------


@endpoint
def update(req: ApiRequest) -> Response:
    values = common.body(req, "server")
    common.reject_unknown(
        values, {"name", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig"}, "server"
    )
    with common.service(req).db.session() as session:
        server = find(req, session, req.path_params["server_id"], f"{RULE}:update")
        if "name" in values:
            server.name = _name(values)
            server.hostname = hostname_for(server.name)
        for field, column in ACCESS_IPS.items():
            if field in values:
                setattr(server, column, access_ip(values, field))
        server.revision += 1
        session.flush()
        return ok({"server": server_views.basic(req, server)})


def check_unlocked(req: ApiRequest, server: Server) -> None:
    if server.locked and not common.is_admin(req):
        raise errors.Conflict(f"Instance {server.id} is locked")


@endpoint
def delete(req: ApiRequest) -> Response:
    with common.service(req).db.session() as session:
        server = find(req, session, req.path_params["server_id"], f"{RULE}:delete")
        check_unlocked(req, server)
        if server.task_state != states.DELETING:
            server.task_state = states.DELETING
            server.revision += 1
            record_action(session, req, server, "delete")
    return Response(status_code=204)


ROUTES = [
    Route("/v2.1/servers", index, methods=["GET"]),
    Route("/v2.1/servers", create, methods=["POST"]),
    Route("/v2.1/servers/detail", index_detail, methods=["GET"]),
    Route("/v2.1/servers/{server_id}", show, methods=["GET"]),
    Route("/v2.1/servers/{server_id}", update, methods=["PUT"]),
    Route("/v2.1/servers/{server_id}", delete, methods=["DELETE"]),
]
