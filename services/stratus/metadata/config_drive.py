"""The config drive: the instance's metadata on an ISO 9660 image labelled ``config-2``.

Nova's libvirt driver attaches such an image as a CD-ROM (made with
``genisoimage -J -r -V config-2``); a guest finds it by its label (cloud-init
asks blkid for ``LABEL=config-2`` on iso9660 and vfat devices, and mounts it)
and reads ``openstack/<version>/meta_data.json`` and friends by name.

The image is written here in pure Python with pycdlib, with three name
spaces for every file, as genisoimage writes them:

* ISO 9660 (interchange level 3) names, which allow only ``A-Z 0-9 _``:
  ``META_DATA.JSON;1``, directories ``2012_08_10``. Every reader can see
  these, but no guest reads by them;
* Rock Ridge names (``meta_data.json``, ``2012-08-10``), which Linux shows;
* Joliet names, the same, which Windows (cloudbase-init) shows.

The image is written to a temporary file beside the target, synced, and
renamed over it, so a reader (or a crash) never sees half an image. It is
created mode 0600: it may hold user data and keys, and libvirt gives the
disk to the QEMU user when it starts the guest.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path

import pycdlib

from stratus.metadata import tree
from stratus.metadata.content import RANDOM_SEED_BYTES, InstanceMetadata

LABEL = "config-2"
PUBLISHER = "Stratus"
# ISO 9660 identifiers at interchange level 3: a directory has up to 31
# d-characters; a file's name and extension together up to 30.
MAX_DIRECTORY = 31
MAX_STEM, MAX_EXTENSION = 24, 5


def build(md: InstanceMetadata, target: Path, random_seed: bytes | None = None) -> Path:
    """Write the config drive of ``md`` to ``target`` (atomically); return ``target``.

    ``random_seed`` (``meta_data.json``'s entropy) is drawn here unless given.
    """
    seed = random_seed if random_seed is not None else os.urandom(RANDOM_SEED_BYTES)
    return write_iso(target, tree.config_drive_files(md, seed))


def write_iso(target: Path, files: Mapping[str, bytes], label: str = LABEL) -> Path:
    """An ISO 9660 image with Rock Ridge and Joliet holding ``files`` (path -> bytes)."""
    iso = pycdlib.PyCdlib()
    iso.new(
        interchange_level=3, joliet=3, rock_ridge="1.09", vol_ident=label, pub_ident_str=PUBLISHER
    )
    try:
        _fill(iso, files)
        _write_atomically(iso, target)
    finally:
        iso.close()
    return target


def _fill(iso: pycdlib.PyCdlib, files: Mapping[str, bytes]) -> None:
    iso_paths = {"": ""}  # directory (real path) -> its ISO 9660 path
    taken: dict[str, set[str]] = {"": set()}  # directory -> ISO names used in it
    for path in sorted(files):
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            directory, parent = "/".join(parts[:depth]), "/".join(parts[: depth - 1])
            if directory in iso_paths:
                continue
            name = _iso_name(parts[depth - 1], taken[parent], directory=True)
            iso_paths[directory] = f"{iso_paths[parent]}/{name}"
            taken[directory] = set()
            iso.add_directory(
                iso_paths[directory], rr_name=parts[depth - 1], joliet_path=f"/{directory}"
            )
        parent = "/".join(parts[:-1])
        name = _iso_name(parts[-1], taken[parent], directory=False)
        data = files[path]
        iso.add_fp(
            io.BytesIO(data),
            len(data),
            f"{iso_paths[parent]}/{name}",
            rr_name=parts[-1],
            joliet_path="/" + "/".join(parts),
        )


def _d_characters(text: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", text.upper()) or "_"


def _iso_name(name: str, taken: set[str], *, directory: bool) -> str:
    """A unique ISO 9660 name in a directory: ``meta_data.json`` is ``META_DATA.JSON;1``."""
    if directory or "." not in name:
        stem, extension = name, ""
    else:
        stem, extension = name.rsplit(".", 1)
    limit = MAX_DIRECTORY if directory else MAX_STEM
    stem = _d_characters(stem)[:limit]
    extension = _d_characters(extension)[:MAX_EXTENSION] if extension else ""
    candidate, number = stem, 0
    while f"{candidate}.{extension}" in taken:
        number += 1
        suffix = f"_{number}"
        candidate = stem[: limit - len(suffix)] + suffix
    taken.add(f"{candidate}.{extension}")
    return candidate if directory else f"{candidate}.{extension};1"


def _write_atomically(iso: pycdlib.PyCdlib, target: Path) -> None:
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            iso.write_fp(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    directory = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
