"""The metadata service: who is asking, and what they get.

Guests never reach this service directly. Their requests to
``169.254.169.254`` arrive at the network agent's metadata proxy
(``stratus.network.agent.metadata``), which knows the guest by the port its
request came from and forwards it here with:

* ``X-Instance-ID``: the port's ``device_id``, the instance;
* ``X-Tenant-ID``: the port's project;
* ``X-Instance-ID-Signature``: hex HMAC-SHA256 of the instance id, keyed
  with the secret the proxy and this service share;
* ``X-Forwarded-For``: the guest's address (logged, not trusted).

The signature is what this service trusts: without it, or with a wrong
one, the answer is 403, whatever the other headers claim, so that nothing
but the proxy can read an instance's metadata (its user data may hold
secrets). The instance must then exist and belong to ``X-Tenant-ID``
(else 404, as Nova). Missing instance or tenant headers are 400, as Nova.
Only ``/`` (the list of EC2 versions, the same for everyone) is answered
without them.

Instances come from an injected ``InstanceLookup``: the compute service
gives one that reads its database. Errors are short plain text, as Nova's
metadata API (webob) answers: ``403 Forbidden\\n\\n<explanation>\\n``.
"""

from __future__ import annotations

import hmac
import logging
import os
import posixpath
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from stratus.metadata import tree
from stratus.metadata.content import RANDOM_SEED_BYTES, InstanceMetadata

LOG = logging.getLogger(__name__)

INSTANCE_ID = "x-instance-id"
TENANT_ID = "x-tenant-id"
SIGNATURE = "x-instance-id-signature"
FORWARDED_FOR = "x-forwarded-for"
NOT_FOUND = "The resource could not be found."


class InstanceLookup(Protocol):
    """The instance ``instance_id`` if it exists and belongs to ``project_id``, else None."""

    def __call__(self, instance_id: str, project_id: str) -> InstanceMetadata | None: ...


class Headers(Protocol):
    """Request headers: case-insensitive, possibly repeated (Starlette's Headers)."""

    def getlist(self, key: str) -> list[str]: ...


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = tree.TEXT
    headers: Mapping[str, str] | None = None


def error(status: int, explanation: str | None = None, **headers: str) -> Answer:
    """A plain-text error, in the shape webob gives Nova's metadata API."""
    phrase = HTTPStatus(status).phrase
    text = explanation or HTTPStatus(status).description
    return Answer(status, f"{status} {phrase}\n\n{text}\n".encode(), headers=headers or None)


class MetadataService:
    """Answers one metadata request: path and headers in, an ``Answer`` out."""

    def __init__(
        self,
        lookup: InstanceLookup,
        shared_secret: str,
        entropy: Callable[[int], bytes] = os.urandom,
    ):
        if not shared_secret:
            # An empty key makes every signature computable by anyone.
            raise ValueError("the metadata service needs the proxy's shared secret")
        self.lookup = lookup
        self._key = shared_secret.encode()
        self.entropy = entropy

    def sign(self, instance_id: str) -> str:
        return hmac.new(self._key, instance_id.encode(), "sha256").hexdigest()

    def answer(self, path: str, headers: Headers) -> Answer:
        """GET ``path`` for the instance the (signed) headers name."""
        path = posixpath.normpath("/" + path.lstrip("/"))
        if path == "/":
            return Answer(200, tree.ec2_versions_listing())
        instance_id, project_id, refusal = self._caller(headers)
        if refusal is not None:
            return refusal
        assert instance_id is not None and project_id is not None
        md = self.lookup(instance_id, project_id)
        if md is None or md.project_id != project_id:
            LOG.warning("metadata: no instance %s in project %s", instance_id, project_id)
            return error(404, NOT_FOUND)
        node = self._tree(md, path)
        if node is None:
            return error(404, NOT_FOUND)
        if isinstance(node, tree.Directory):
            return Answer(200, node.listing())
        return Answer(200, node.data, node.content_type)

    def _caller(self, headers: Headers) -> tuple[str | None, str | None, Answer | None]:
        """(instance id, project id, None) of a request the proxy signed, or a refusal."""
        instance_ids = headers.getlist(INSTANCE_ID)
        project_ids = headers.getlist(TENANT_ID)
        signatures = headers.getlist(SIGNATURE)
        if not instance_ids:
            return None, None, error(400, "X-Instance-ID header is missing from request.")
        if not project_ids:
            return None, None, error(400, "X-Tenant-ID header is missing from request.")
        if len(instance_ids) > 1:
            return None, None, error(400, "Multiple X-Instance-ID headers found within request.")
        if len(project_ids) > 1:
            return None, None, error(400, "Multiple X-Tenant-ID headers found within request.")
        instance_id, project_id = instance_ids[0], project_ids[0]
        if len(signatures) != 1 or not hmac.compare_digest(
            self.sign(instance_id).encode(), signatures[0].encode()
        ):
            LOG.warning(
                "metadata: %s signature for instance %s from %s",
                "no" if not signatures else "an invalid",
                instance_id,
                ",".join(headers.getlist(FORWARDED_FOR)) or "an unknown address",
            )
            explanation = (
                "X-Instance-ID-Signature header is missing from request."
                if not signatures
                else "Invalid proxy request signature."
            )
            return None, None, error(403, explanation)
        return instance_id, project_id, None

    def _tree(self, md: InstanceMetadata, path: str) -> tree.Directory | tree.File | None:
        top, _, rest = path.lstrip("/").partition("/")
        if top == "openstack":
            return tree.openstack_tree(md, self.entropy(RANDOM_SEED_BYTES)).find(rest)
        if top == "ec2":
            return tree.ec2_tree(md).find(rest)
        return tree.ec2_tree(md).find(path)
