"""The metadata trees: what is served at each path, and what a config drive carries.

The metadata service answers two trees, as Nova's does:

* OpenStack format under ``/openstack``: a listing of versions (one a line,
  ``latest`` last), and in each version directory ``meta_data.json``,
  ``user_data`` (only when there is user data), ``vendor_data.json``,
  ``network_data.json`` and ``vendor_data2.json``, each from the version
  that added it on (``openstack_tree``);
* EC2 format at the root (and under ``/ec2``): a listing of EC2 versions,
  and in each ``meta-data/`` and ``user-data`` (``ec2_tree``).

A directory answers with its listing: one entry a line, no trailing
newline, a sub-directory with a trailing slash, except that version
directories are listed by their bare names and EC2's ``public-keys/``
lists its keys as ``<index>=<key name>`` (how cloud-init's EC2 reader and
AWS's own tools expect them). A leaf answers with its content; a list leaf
(``security-groups``) is one item a line.

``config_drive_files`` lays the same documents out as Nova's config drive
does: ``openstack/<version>/<file>`` for every version and ``latest``, and
``ec2/<version>/meta-data.json`` (the EC2 tree as one JSON document) and
``ec2/<version>/user-data`` for ``2009-04-04`` and ``latest`` (Nova's
``config_drive_skip_versions`` default leaves the older EC2 versions out).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from stratus.metadata import content
from stratus.metadata.content import LATEST, InstanceMetadata

TEXT = "text/plain"
JSON = "application/json"
CONFIG_DRIVE_EC2_VERSIONS = ("2009-04-04", LATEST)


@dataclass(frozen=True)
class File:
    """A leaf: its bytes and the media type it is served as."""

    data: bytes
    content_type: str = TEXT


@dataclass(frozen=True)
class Directory:
    """A directory: its entries in listing order.

    ``label`` is how the parent's listing names this directory; None means
    ``<name>/``.
    """

    entries: Mapping[str, Directory | File]
    label: str | None = None

    def listing(self) -> bytes:
        lines = []
        for name, node in self.entries.items():
            if isinstance(node, Directory):
                lines.append(node.label if node.label is not None else f"{name}/")
            else:
                lines.append(name)
        return "\n".join(lines).encode()

    def find(self, path: str) -> Directory | File | None:
        """The node at ``path`` (``a/b/c``; empty parts and a trailing slash ignored)."""
        node: Directory | File = self
        for part in path.split("/"):
            if not part:
                continue
            if not isinstance(node, Directory) or part not in node.entries:
                return None
            node = node.entries[part]
        return node

    def walk(self, prefix: str = "") -> Iterator[tuple[str, File]]:
        """Every file below, as (``a/b/file``, file), in listing order."""
        for name, node in self.entries.items():
            path = f"{prefix}{name}"
            if isinstance(node, Directory):
                yield from node.walk(f"{path}/")
            else:
                yield path, node


def _json(document: Any) -> File:
    return File(json.dumps(document).encode(), JSON)


def openstack_files(
    md: InstanceMetadata, version: str, random_seed: bytes | None = None
) -> dict[str, File]:
    """The files of ``openstack/<version>/``, in Nova's listing order."""
    since = content.since
    files = {"meta_data.json": _json(content.meta_data(md, version, random_seed))}
    if md.user_data is not None:
        files["user_data"] = File(md.user_data)
    if since(content.HAVANA, version):
        files["vendor_data.json"] = _json(content.vendor_data(md))
    if since(content.LIBERTY, version):
        files["network_data.json"] = _json(content.network_data(md))
    if since(content.NEWTON_TWO, version):
        files["vendor_data2.json"] = _json(content.vendor_data2(md))
    return files


def openstack_tree(md: InstanceMetadata, random_seed: bytes | None = None) -> Directory:
    """What ``/openstack`` serves: every version directory, then ``latest``."""
    return Directory(
        {
            version: Directory(openstack_files(md, version, random_seed), label=version)
            for version in (*content.OPENSTACK_VERSIONS, LATEST)
        }
    )


def _ec2_directory(values: Mapping[str, Any]) -> Directory:
    return Directory({key: _ec2_node(values[key]) for key in sorted(values)})


def _ec2_node(value: Any) -> Directory | File:
    if isinstance(value, Mapping):
        return _ec2_directory(value)
    if isinstance(value, list | tuple):
        return File("\n".join(str(item) for item in value).encode())
    return File(str(value).encode())


def ec2_version_tree(md: InstanceMetadata, version: str) -> Directory:
    """``<version>/``: ``meta-data/`` and, when there is user data, ``user-data``."""
    meta = dict(_ec2_directory(content.ec2_meta_data(md, version)).entries)
    if md.public_keys:
        meta["public-keys"] = Directory(
            {
                str(index): Directory(
                    {"openssh-key": File(key.public_key.encode())},
                    label=f"{index}={key.name}",
                )
                for index, key in enumerate(md.public_keys)
            }
        )
    entries: dict[str, Directory | File] = {"meta-data": Directory(meta)}
    if md.user_data is not None:
        entries["user-data"] = File(md.user_data)
    return Directory(entries, label=version)


def ec2_tree(md: InstanceMetadata) -> Directory:
    """What ``/`` (and ``/ec2``) serves: every EC2 version, then ``latest``."""
    return Directory(
        {version: ec2_version_tree(md, version) for version in (*content.EC2_VERSIONS, LATEST)}
    )


def ec2_versions_listing() -> bytes:
    """The listing of ``/``: the same for every instance, so served to anyone."""
    return "\n".join((*content.EC2_VERSIONS, LATEST)).encode()


def config_drive_files(md: InstanceMetadata, random_seed: bytes | None = None) -> dict[str, bytes]:
    """Every file of the instance's config drive: path (``openstack/latest/...``) -> bytes."""
    files = {
        f"openstack/{path}": node.data for path, node in openstack_tree(md, random_seed).walk()
    }
    for version in CONFIG_DRIVE_EC2_VERSIONS:
        meta = content.ec2_meta_data(md, version)
        files[f"ec2/{version}/meta-data.json"] = json.dumps(meta).encode()
        if md.user_data is not None:
            files[f"ec2/{version}/user-data"] = md.user_data
    return files
