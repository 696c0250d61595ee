"""``/images``: Nova's proxy of the image API (microversions 2.1 to 2.35).

Nova answered image requests itself before 2.36, translating Glance's
images into its own shape; clients of those microversions (Tempest's
snapshot tests, old novaclient scripts) still use it. Stratus proxies the
image API the same way, always with the caller's token, so that the image
service decides what the caller may see and change:

- ``GET /images`` and ``/images/detail``, filtered by ``name``, ``status``
  (Nova's: ACTIVE, SAVING, ERROR, DELETED), ``changes-since``, ``server``
  (snapshots of a server), ``type`` (``snapshot``), ``minRam`` and
  ``minDisk``, paged by ``limit`` and ``marker``, newest first;
- ``GET`` and ``DELETE /images/{id}``;
- ``/images/{id}/metadata`` and ``/metadata/{key}``: the image's own
  properties (not its core attributes), within the ``metadata_items`` quota.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stratus.common import errors
from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.common.service_client import error_message
from stratus.compute import quotas
from stratus.compute.api import common, servers
from stratus.compute.remote import Neighbour

# Glance's own attributes; every other key of an image is a property, which
# Nova shows as the image's metadata.
CORE = frozenset(
    {
        "id",
        "name",
        "status",
        "visibility",
        "protected",
        "os_hidden",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "min_disk",
        "min_ram",
        "disk_format",
        "container_format",
        "owner",
        "created_at",
        "updated_at",
        "tags",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
    }
)
# Glance status -> Nova's, and how far along Nova says it is.
STATUS = {
    "active": "ACTIVE",
    "queued": "SAVING",
    "saving": "SAVING",
    "uploading": "SAVING",
    "importing": "SAVING",
    "killed": "ERROR",
    "deleted": "DELETED",
    "pending_delete": "DELETED",
}
PROGRESS = {"queued": 25, "saving": 50, "uploading": 50, "importing": 50, "active": 100}
PATCH_TYPE = "application/openstack-images-v2.1-json-patch"


def _image_api(req: ApiRequest) -> Neighbour:
    return servers.neighbours(req).image


def _get(req: ApiRequest, image_id: str) -> dict[str, Any]:
    try:
        return _image_api(req).call("GET", f"/v2/images/{image_id}")  # type: ignore[no-any-return]
    except errors.NotFound:
        raise errors.NotFound("Image not found.") from None


def _all(req: ApiRequest) -> list[dict[str, Any]]:
    """Every image the caller sees, newest first (the image API's order)."""
    api = _image_api(req)
    found: list[dict[str, Any]] = []
    page = api.call("GET", "/v2/images", limit=500)
    while True:
        found.extend(page.get("images", []))
        following = page.get("next")
        if not following:
            return found
        marker = following.split("marker=", 1)[1].split("&", 1)[0] if "marker=" in following else ""
        if not marker:
            return found
        page = api.call("GET", "/v2/images", limit=500, marker=marker)


def properties(image: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else str(v) for k, v in image.items() if k not in CORE}


def _time(raw: str | None) -> str | None:
    """Glance's time as Nova shows it: seconds, ``Z``."""
    if not raw:
        return None
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _links(req: ApiRequest, image_id: str) -> list[dict[str, str]]:
    alternate = {
        "rel": "alternate",
        "type": "application/vnd.openstack.image",
        "href": f"{_image_api(req).base}/images/{image_id}",
    }
    return [*common.links(req, "images", image_id), alternate]


def summary(req: ApiRequest, image: dict[str, Any]) -> dict[str, Any]:
    return {"id": image["id"], "name": image.get("name"), "links": _links(req, image["id"])}


def detail(req: ApiRequest, image: dict[str, Any]) -> dict[str, Any]:
    status = image.get("status", "")
    view: dict[str, Any] = {
        **summary(req, image),
        "status": STATUS.get(status, "UNKNOWN"),
        "progress": PROGRESS.get(status, 0),
        "minRam": image.get("min_ram") or 0,
        "minDisk": image.get("min_disk") or 0,
        "metadata": properties(image),
        "created": _time(image.get("created_at")),
        "updated": _time(image.get("updated_at")),
        "OS-EXT-IMG-SIZE:size": image.get("size"),
    }
    server_id = image.get("instance_uuid")
    if isinstance(server_id, str) and server_id:
        view["server"] = {"id": server_id, "links": common.links(req, "servers", server_id)}
    return view


# --- lists --------------------------------------------------------------------


def _since(raw: str) -> datetime:
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        raise errors.BadRequest(f"Invalid changes-since value {raw!r}.") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _matches(image: dict[str, Any], query: Any) -> bool:
    if "name" in query and image.get("name") != query["name"]:
        return False
    if "status" in query and STATUS.get(image.get("status", ""), "UNKNOWN") != (
        query["status"].upper()
    ):
        return False
    if "server" in query:
        wanted = query["server"].rstrip("/").rsplit("/", 1)[-1]
        if image.get("instance_uuid") != wanted:
            return False
    if "type" in query and image.get("image_type") != query["type"]:
        return False
    for param, key in (("minRam", "min_ram"), ("minDisk", "min_disk")):
        if param in query:
            try:
                least = int(query[param])
            except ValueError:
                raise errors.BadRequest(f"Invalid {param} value {query[param]!r}.") from None
            if (image.get(key) or 0) < least:
                return False
    if "changes-since" in query:
        updated = image.get("updated_at")
        if not updated or datetime.fromisoformat(updated.replace("Z", "+00:00")) < _since(
            query["changes-since"]
        ):
            return False
    return True


def _list(req: ApiRequest, view: Any) -> Response:
    images = [i for i in _all(req) if _matches(i, req.query)]
    marker = req.query.get("marker")
    if marker is not None:
        ids = [i["id"] for i in images]
        if marker not in ids:
            raise errors.BadRequest(f"marker [{marker}] not found")
        images = images[ids.index(marker) + 1 :]
    limit = common.query_int(req, "limit")
    body: dict[str, Any] = {}
    if limit is not None and len(images) > limit:
        images = images[:limit]
        if images:
            path = req.request.url.path
            body["images_links"] = [
                {
                    "rel": "next",
                    "href": f"{common.base(req)}{path}?limit={limit}&marker={images[-1]['id']}",
                }
            ]
    return ok({"images": [view(req, i) for i in images], **body})


@endpoint
def index(req: ApiRequest) -> Response:
    return _list(req, summary)


@endpoint
def index_detail(req: ApiRequest) -> Response:
    return _list(req, detail)


@endpoint
def show(req: ApiRequest) -> Response:
    return ok({"image": detail(req, _get(req, req.path_params["image_id"]))})


@endpoint
def delete(req: ApiRequest) -> Response:
    image_id = req.path_params["image_id"]
    try:
        _image_api(req).call("DELETE", f"/v2/images/{image_id}")
    except errors.NotFound:
        raise errors.NotFound("Image not found.") from None
    return Response(status_code=204)


@endpoint
def delete_blank(req: ApiRequest) -> Response:
    """``DELETE /images/``: an empty image ID names no image (Nova: 404)."""
    raise errors.NotFound("Image not found.")


# --- metadata -----------------------------------------------------------------


def _patch(req: ApiRequest, image: dict[str, Any], wanted: dict[str, str]) -> dict[str, str]:
    """Make the image's properties ``wanted``, within the metadata quota."""
    service = common.service(req)
    with service.db.session() as session:
        limit = quotas.limits(session, service.options, req.context.project_id or "")[
            "metadata_items"
        ]
    wanted = servers.check_metadata(wanted, limit)
    current = properties(image)
    operations: list[dict[str, Any]] = [
        {"op": "remove", "path": f"/{key}"} for key in current if key not in wanted
    ]
    for key, value in wanted.items():
        if current.get(key) != value:
            op = "replace" if key in current else "add"
            operations.append({"op": op, "path": f"/{key}", "value": value})
    if operations:
        api = _image_api(req)
        response = api.http.patch(
            f"{api.base}/v2/images/{image['id']}",
            json=operations,
            headers={"X-Auth-Token": api.token, "Content-Type": PATCH_TYPE},
        )
        if response.status_code == 404:
            raise errors.NotFound("Image not found.")
        if response.status_code in (400, 403, 409):
            error = errors.BadRequest(error_message(response))
            error.status = response.status_code
            raise error
        if response.status_code >= 300:
            raise errors.ServiceUnavailable(
                f"The image service answered {response.status_code} to a metadata change."
            )
    return wanted


def _document(req: ApiRequest, key: str) -> Any:
    document = req.json()
    if not isinstance(document, dict) or key not in document:
        raise errors.BadRequest(f"The request body must be an object with the key {key!r}.")
    value = document[key]
    if not isinstance(value, dict):
        raise errors.BadRequest(f"Invalid input for field/attribute {key}: it must be an object.")
    return value


@endpoint
def metadata_index(req: ApiRequest) -> Response:
    return ok({"metadata": properties(_get(req, req.path_params["image_id"]))})


@endpoint
def metadata_merge(req: ApiRequest) -> Response:
    given = _document(req, "metadata")
    image = _get(req, req.path_params["image_id"])
    return ok({"metadata": _patch(req, image, {**properties(image), **given})})


@endpoint
def metadata_replace(req: ApiRequest) -> Response:
    given = _document(req, "metadata")
    image = _get(req, req.path_params["image_id"])
    return ok({"metadata": _patch(req, image, given)})


@endpoint
def metadata_show(req: ApiRequest) -> Response:
    key = req.path_params["key"]
    items = properties(_get(req, req.path_params["image_id"]))
    if key not in items:
        raise errors.NotFound(f"Image has no metadata with key {key}.")
    return ok({"meta": {key: items[key]}})


@endpoint
def metadata_set(req: ApiRequest) -> Response:
    key = req.path_params["key"]
    given = _document(req, "meta")
    if len(given) != 1:
        raise errors.BadRequest("The meta object must have exactly one item.")
    if key not in given:
        raise errors.BadRequest("The request body and the URI name different keys.")
    image = _get(req, req.path_params["image_id"])
    result = _patch(req, image, {**properties(image), key: given[key]})
    return ok({"meta": {key: result[key]}})


@endpoint
def metadata_delete(req: ApiRequest) -> Response:
    key = req.path_params["key"]
    image = _get(req, req.path_params["image_id"])
    items = properties(image)
    if key not in items:
        raise errors.NotFound(f"Image has no metadata with key {key}.")
    del items[key]
    _patch(req, image, items)
    return Response(status_code=204)


ROUTES = [
    Route("/v2.1/images", index, methods=["GET"]),
    Route("/v2.1/images/detail", index_detail, methods=["GET"]),
    Route("/v2.1/images/{image_id}", show, methods=["GET"]),
    Route("/v2.1/images/", delete_blank, methods=["DELETE"]),
    Route("/v2.1/images/{image_id}", delete, methods=["DELETE"]),
    Route("/v2.1/images/{image_id}/metadata", metadata_index, methods=["GET"]),
    Route("/v2.1/images/{image_id}/metadata", metadata_merge, methods=["POST"]),
    Route("/v2.1/images/{image_id}/metadata", metadata_replace, methods=["PUT"]),
    Route("/v2.1/images/{image_id}/metadata/{key}", metadata_show, methods=["GET"]),
    Route("/v2.1/images/{image_id}/metadata/{key}", metadata_set, methods=["PUT"]),
    Route("/v2.1/images/{image_id}/metadata/{key}", metadata_delete, methods=["DELETE"]),
]
