"""JSON Schemas of images and members: served at /v2/schemas/*, used to validate."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from stratus.common.app import ApiRequest, endpoint
from stratus.common.handlers import ok
from stratus.image import settings

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
INT32 = {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}
TAG = {"type": "string", "minLength": 1, "maxLength": 255}
MAX_TAGS = 128
MAX_PROPERTIES = 128

# Attributes only the service sets; a client that sends one gets 403.
READ_ONLY = frozenset(
    {
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
    }
)
RESERVED = frozenset({"deleted", "deleted_at", "location"})
RESERVED_PREFIX = "os_glance_"


def image_properties() -> dict[str, Any]:
    """The writable attributes of an image (formats as the service accepts them)."""
    return {
        "id": {"type": "string", "pattern": UUID_PATTERN, "description": "An identifier."},
        "name": {"type": ["null", "string"], "maxLength": 255},
        "visibility": {"type": "string", "enum": ["public", "private", "shared", "community"]},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "owner": {"type": ["null", "string"], "maxLength": 255},
        "container_format": {"enum": [None, *settings.CONTAINER_FORMATS]},
        "disk_format": {"enum": [None, *settings.DISK_FORMATS]},
        "min_ram": INT32,
        "min_disk": INT32,
        "tags": {"type": "array", "items": TAG, "maxItems": MAX_TAGS},
    }


def image_schema() -> dict[str, Any]:
    readonly: dict[str, Any] = {
        "status": {
            "type": "string",
            "readOnly": True,
            "enum": [
                "queued",
                "saving",
                "active",
                "killed",
                "deleted",
                "uploading",
                "importing",
                "pending_delete",
                "deactivated",
            ],
        },
        "checksum": {"type": ["null", "string"], "readOnly": True, "maxLength": 32},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True, "maxLength": 64},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True, "maxLength": 128},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "created_at": {"type": "string", "readOnly": True, "format": "date-time"},
        "updated_at": {"type": "string", "readOnly": True, "format": "date-time"},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
    }
    return {
        "name": "image",
        "properties": {**image_properties(), **readonly},
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def images_schema() -> dict[str, Any]:
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image_schema()},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def member_schema() -> dict[str, Any]:
    return {
        "name": "member",
        "properties": {
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "image_id": {"type": "string", "pattern": UUID_PATTERN},
            "member_id": {"type": "string"},
            "schema": {"type": "string", "readOnly": True},
            "status": {"type": "string", "enum": ["pending", "accepted", "rejected"]},
        },
    }


def members_schema() -> dict[str, Any]:
    return {
        "name": "members",
        "properties": {
            "members": {"type": "array", "items": member_schema()},
            "schema": {"type": "string"},
        },
        "links": [{"rel": "describedby", "href": "{schema}"}],
    }


SCHEMAS = {
    "image": image_schema,
    "images": images_schema,
    "member": member_schema,
    "members": members_schema,
}


def _serve(name: str) -> Any:
    @endpoint
    def show(req: ApiRequest) -> Response:
        return ok(SCHEMAS[name]())

    show.__name__ = f"show_{name}_schema"
    return show


ROUTES = [Route(f"/v2/schemas/{name}", _serve(name), methods=["GET"]) for name in SCHEMAS]
