"""Disk image formats: what an upload really is, whether it is safe, and conversion.

An uploaded image is data from a stranger that compute hosts will later open
with QEMU. Several disk formats can make QEMU read *other* files on the host:
a qcow2 backing file or external data file, a VMDK extent or parent, a
differencing VHD/VHDX. An image that claims to be ``raw`` but is really a
qcow2 becomes dangerous the moment anything lets qemu probe it. This module
is the gate (the defence Glance added for CVE-2022-47951 and CVE-2024-32498):

- ``inspect`` recognises the format from its own header checks in pure
  Python, reading only header regions and the last 512 bytes, refuses
  content that does not match the declared ``disk_format`` or that refers to
  anything outside the file, and only then asks ``qemu-img info`` (always
  with an explicit ``-f``, under ``prlimit`` and a wall-clock timeout) for
  the virtual size, double-checking what qemu itself reports.
- ``convert`` runs ``qemu-img convert`` on an image that passed ``inspect``,
  into a temporary name beside the destination, inspects the result and
  renames it into place; on failure nothing is left behind.

Refusals raise ``ImageFormatError`` whose message is meant for the API user
(a 400). A missing file or a missing qemu-img is the operator's problem and
surfaces as ``OSError``/``RuntimeError`` instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import stat
import struct
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stratus.image.settings import DISK_FORMATS

LOG = logging.getLogger(__name__)

CONVERT_TARGETS = ("raw", "qcow2")

# Glance disk_format -> the qemu block driver name passed to qemu-img -f.
QEMU_FORMATS = {
    "qcow2": "qcow2",
    "vmdk": "vmdk",
    "vhd": "vpc",
    "vhdx": "vhdx",
    "vdi": "vdi",
    "ploop": "parallels",
    "raw": "raw",
    "iso": "raw",
    "ami": "raw",
    "ari": "raw",
    "aki": "raw",
}
RAW_LIKE = frozenset({"raw", "ami", "ari", "aki"})

# Resource limits of qemu-img, as OpenStack sets them for qemu-img info
# (nova.virt.images QEMU_IMG_LIMITS: 1 GiB of address space). Conversion runs
# a pool of I/O threads whose stacks alone reserve about 512 MiB, so it gets
# more room; the CPU-seconds limit is the caller's timeout in both cases.
INFO_ADDRESS_SPACE = 1 << 30
CONVERT_ADDRESS_SPACE = 4 << 30
DEFAULT_INSPECT_TIMEOUT = 60

_FOOTER_SIZE = 512
_MAX_HEADER_READ = 64 * 1024

_QCOW2_MAGIC = b"QFI\xfb"
_QCOW2_V2_HEADER = struct.Struct(">4sIQIIQIIQQIIQ")  # 72 bytes
_QCOW2_V3_FIELDS = struct.Struct(">QQQII")  # 32 more bytes, at offset 72
_QCOW2_INCOMPAT_CORRUPT = 1 << 1
_QCOW2_INCOMPAT_DATA_FILE = 1 << 2
_QCOW2_INCOMPAT_KNOWN = (1 << 5) - 1  # dirty, corrupt, data file, compression, extended L2
_QCOW2_EXT_END = 0
_QCOW2_EXT_DATA_FILE = 0x44415441  # "DATA": name of the external data file

_VMDK_SPARSE_MAGIC = b"KDMV"
_VMDK3_MAGIC = b"COWD"
_VMDK_SPARSE_HEADER = struct.Struct("<4sIIQQQQ")  # magic .. descriptor size, 44 bytes
_VMDK_ALLOWED_TYPES = ("monolithicSparse", "streamOptimized")
_VMDK_MAX_DESCRIPTOR = 1 << 20
_VMDK_QEMU_DESC_OFFSET = 0x200  # where qemu looks for parentFileNameHint in sparse files
_VMDK_QEMU_DESC_SIZE = 20 * 512
_VMDK_EXTENT = re.compile(
    r'^(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\S+)(?:\s+"([^"]*)")?(?:\s+(\d+))?\s*$'
)
_VMDK_PROBE_VERSION = re.compile(rb"version=[123]\r?\n")

_VHD_COOKIE = b"conectix"
_VHD_FIXED, _VHD_DYNAMIC, _VHD_DIFFERENCING = 2, 3, 4

_VHDX_MAGIC = b"vhdxfile"
_VHDX_REGION_TABLE = 192 * 1024
_VHDX_MAX_ENTRIES = 2047
_VHDX_METADATA_REGION = uuid.UUID("8b7ca206-4790-4b9a-b8fe-575f050f886e").bytes_le
_VHDX_FILE_PARAMETERS = uuid.UUID("caa16737-fa36-4d43-b3b6-33f0aa44e76b").bytes_le
_VHDX_PARENT_LOCATOR = uuid.UUID("a8d35f2d-b30b-454d-abf7-d3d84834ab0c").bytes_le
_VHDX_HAS_PARENT = 1 << 1

_VDI_SIGNATURE = struct.pack("<I", 0xBEDA107F)
_VDI_SIGNATURE_OFFSET = 0x40
_VDI_NORMAL, _VDI_FIXED = 1, 2

_PLOOP_MAGICS = (b"WithoutFreeSpace", b"WithouFreSpacExt")
_PLOOP_HEADER = struct.Struct("<16sIIIIIQIIIQ")  # 64 bytes; the BAT follows it

_ISO_SIGNATURE = b"CD001"
_ISO_SIGNATURE_OFFSET = 0x8001

# Formats qemu knows that Glance has no disk_format for: recognised, never accepted.
_QED_MAGIC = b"QED\x00"
_LUKS_MAGIC = b"LUKS\xba\xbe"
_BOCHS_MAGIC = b"Bochs Virtual HD Image\x00"
_CLOOP_MAGIC = (
    b"#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0 && mount -r -t iso9660 /dev/cloop $1\n"
)


class ImageFormatError(Exception):
    """Content the service refuses; str(exc) is a clear message for the API user (a 400)."""


@dataclass(frozen=True)
class Inspection:
    """What ``inspect`` found.

    ``format`` is the Glance disk_format the content was recognised as: the
    declared structured format, ``iso`` for data with an ISO 9660 signature
    (also when declared raw: hybrid ISOs), and ``raw`` for ami/ari/aki and
    other unstructured data.
    """

    format: str
    virtual_size: int
    size: int


class _Reader:
    """Positional reads of an open file, never past what is asked for."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or length <= 0 or offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        chunks = []
        while length > 0:
            chunk = os.pread(self.fd, length, offset)
            if not chunk:
                break
            chunks.append(chunk)
            offset += len(chunk)
            length -= len(chunk)
        return b"".join(chunks)

    def footer(self) -> bytes:
        if self.size < _FOOTER_SIZE:
            return b""
        return self.read(self.size - _FOOTER_SIZE, _FOOTER_SIZE)


# --- recognition (magic numbers only) -------------------------------------------------


def _looks_like_vmdk_descriptor(head: bytes) -> bool:
    """Text VMDK descriptor, as qemu's vmdk_probe sees one (plus its usual first line)."""
    if head.startswith(b"# Disk DescriptorFile"):
        return True
    pos, end = 0, len(head)
    while pos < end:
        if head[pos : pos + 1] == b"#":
            newline = head.find(b"\n", pos)
            if newline < 0:
                return False
            pos = newline + 1
            continue
        if head[pos : pos + 1] == b" ":
            while pos < end and head[pos : pos + 1] == b" ":
                pos += 1
            if head[pos : pos + 1] == b"\r":
                pos += 1
            if head[pos : pos + 1] != b"\n":
                return False
            pos += 1
            continue
        return _VMDK_PROBE_VERSION.match(head, pos) is not None
    return False


def _header_formats(head: bytes) -> list[str]:
    """Formats whose signature is in the first 512 bytes (every one but the VHD footer)."""
    found = []
    if head.startswith(_QCOW2_MAGIC):
        found.append("qcow2")
    if head.startswith(_QED_MAGIC):
        found.append("qed")
    if head.startswith(_LUKS_MAGIC):
        found.append("luks")
    if (
        head.startswith(_VMDK_SPARSE_MAGIC)
        or head.startswith(_VMDK3_MAGIC)
        or _looks_like_vmdk_descriptor(head)
    ):
        found.append("vmdk")
    if head.startswith(_VHD_COOKIE):
        found.append("vhd")
    if head.startswith(_VHDX_MAGIC):
        found.append("vhdx")
    if head[_VDI_SIGNATURE_OFFSET : _VDI_SIGNATURE_OFFSET + 4] == _VDI_SIGNATURE:
        found.append("vdi")
    if head[:16] in _PLOOP_MAGICS:
        found.append("ploop")
    if head.startswith(_BOCHS_MAGIC):
        found.append("bochs")
    if head.startswith(_CLOOP_MAGIC):
        found.append("cloop")
    return found


def _all_formats(reader: _Reader) -> list[str]:
    """Every structured format recognised anywhere we look (ISO 9660 aside)."""
    found = _header_formats(reader.read(0, 512))
    if "vhd" not in found and reader.footer().startswith(_VHD_COOKIE):
        found.append("vhd")  # a fixed VHD: raw data followed by a 512-byte footer
    return found


def _is_iso(reader: _Reader) -> bool:
    return reader.read(_ISO_SIGNATURE_OFFSET, len(_ISO_SIGNATURE)) == _ISO_SIGNATURE


def _describe(fmt: str) -> str:
    if fmt in DISK_FORMATS:
        return f"a {fmt} image"
    return f"a {fmt} image, a format Stratus does not accept"


# --- structure checks per format -------------------------------------------------------


def _check_qcow2(reader: _Reader) -> None:
    header = reader.read(0, _QCOW2_V2_HEADER.size + _QCOW2_V3_FIELDS.size)
    if len(header) < _QCOW2_V2_HEADER.size:
        raise ImageFormatError("The qcow2 image is truncated: its header is incomplete.")
    (
        _magic,
        version,
        backing_file_offset,
        _backing_file_size,
        cluster_bits,
        _size,
        crypt_method,
        l1_size,
        l1_table_offset,
        refcount_table_offset,
        _refcount_table_clusters,
        _nb_snapshots,
        _snapshots_offset,
    ) = _QCOW2_V2_HEADER.unpack_from(header)
    if version not in (2, 3):
        raise ImageFormatError(f"qcow2 version {version} is not supported.")
    if backing_file_offset != 0:
        raise ImageFormatError("qcow2 images with a backing file are not accepted.")
    if not 9 <= cluster_bits <= 21:
        raise ImageFormatError("The qcow2 image is corrupt: invalid cluster size.")
    if crypt_method != 0:
        raise ImageFormatError("Encrypted qcow2 images are not accepted.")
    cluster_size = 1 << cluster_bits
    extensions_start = _QCOW2_V2_HEADER.size
    if version == 3:
        if len(header) < _QCOW2_V2_HEADER.size + _QCOW2_V3_FIELDS.size:
            raise ImageFormatError("The qcow2 image is truncated: its header is incomplete.")
        incompatible, _compatible, _autoclear, _refcount_order, header_length = (
            _QCOW2_V3_FIELDS.unpack_from(header, _QCOW2_V2_HEADER.size)
        )
        if incompatible & _QCOW2_INCOMPAT_DATA_FILE:
            raise ImageFormatError("qcow2 images with an external data file are not accepted.")
        if incompatible & _QCOW2_INCOMPAT_CORRUPT:
            raise ImageFormatError("The qcow2 image is marked corrupt.")
        if incompatible & ~_QCOW2_INCOMPAT_KNOWN:
            raise ImageFormatError("The qcow2 image uses features Stratus does not know.")
        if not 104 <= header_length <= min(cluster_size, _MAX_HEADER_READ):
            raise ImageFormatError("The qcow2 image is corrupt: invalid header length.")
        extensions_start = header_length
    if l1_size and l1_table_offset + 8 * l1_size > reader.size:
        raise ImageFormatError("The qcow2 image is truncated: its L1 table is missing.")
    if refcount_table_offset >= reader.size:
        raise ImageFormatError("The qcow2 image is truncated: its refcount table is missing.")
    _check_qcow2_extensions(reader, extensions_start, min(cluster_size, _MAX_HEADER_READ))


def _check_qcow2_extensions(reader: _Reader, start: int, limit: int) -> None:
    area = reader.read(0, limit)
    offset = start
    while True:
        if offset + 8 > len(area):
            raise ImageFormatError("The qcow2 image is corrupt: malformed header extensions.")
        kind, length = struct.unpack_from(">II", area, offset)
        if kind == _QCOW2_EXT_END:
            return
        if kind == _QCOW2_EXT_DATA_FILE:
            raise ImageFormatError("qcow2 images with an external data file are not accepted.")
        offset += 8 + (length + 7) // 8 * 8


def _vmdk_descriptor_lines(text: bytes) -> list[str]:
    return text.split(b"\x00", 1)[0].decode("utf-8", "replace").splitlines()


def _check_vmdk(reader: _Reader) -> None:
    head = reader.read(0, 512)
    if head.startswith(_VMDK3_MAGIC):
        raise ImageFormatError("VMDK version 3 (COWD) images are not accepted.")
    if not head.startswith(_VMDK_SPARSE_MAGIC):
        raise ImageFormatError(
            "VMDK descriptor files (whose data lives in other files) are not accepted; "
            "upload a monolithicSparse or streamOptimized vmdk."
        )
    if len(head) < _VMDK_SPARSE_HEADER.size:
        raise ImageFormatError("The vmdk image is truncated: its header is incomplete.")
    _magic, version, _flags, capacity, _grain, desc_offset, desc_size = (
        _VMDK_SPARSE_HEADER.unpack_from(head)
    )
    if version not in (1, 2, 3):
        raise ImageFormatError(f"VMDK sparse version {version} is not supported.")
    if capacity == 0:
        # qemu then opens the embedded descriptor as a descriptor file, extents and all.
        raise ImageFormatError("vmdk images with a zero capacity are not accepted.")
    if desc_offset == 0 or desc_size == 0:
        raise ImageFormatError("The vmdk image has no embedded descriptor.")
    if desc_size * 512 > _VMDK_MAX_DESCRIPTOR:
        raise ImageFormatError("The vmdk image's descriptor is too large.")
    descriptor = reader.read(desc_offset * 512, desc_size * 512)
    if len(descriptor) < desc_size * 512:
        raise ImageFormatError("The vmdk image is truncated: its descriptor is missing.")
    texts = [descriptor]
    if desc_offset * 512 != _VMDK_QEMU_DESC_OFFSET:
        texts.append(reader.read(_VMDK_QEMU_DESC_OFFSET, _VMDK_QEMU_DESC_SIZE))
    if any(b"parentFileNameHint" in text for text in texts):
        raise ImageFormatError("vmdk images with a parent (delta disks) are not accepted.")

    create_type = None
    extents = []
    for raw_line in _vmdk_descriptor_lines(descriptor):
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep and key.strip() == "createType":
            create_type = value.strip().strip('"')
            continue
        match = _VMDK_EXTENT.match(line)
        if match:
            extents.append(match)
        elif line.split(None, 1)[0] in ("RW", "RDONLY", "NOACCESS"):
            raise ImageFormatError("The vmdk image has an extent line Stratus cannot read.")
    if create_type not in _VMDK_ALLOWED_TYPES:
        raise ImageFormatError(
            f"vmdk images of type {create_type or 'unknown'} are not accepted "
            "(only monolithicSparse and streamOptimized)."
        )
    if len(extents) != 1:
        raise ImageFormatError("vmdk images with more than one extent are not accepted.")
    extent = extents[0]
    filename = extent.group(4) or ""
    if extent.group(3) != "SPARSE" or "/" in filename or "\\" in filename:
        raise ImageFormatError("vmdk images with an extent in another file are not accepted.")


def _check_vhd(reader: _Reader) -> None:
    head = reader.read(0, _FOOTER_SIZE)
    footer = head if head.startswith(_VHD_COOKIE) else reader.footer()
    if len(footer) < _FOOTER_SIZE or not footer.startswith(_VHD_COOKIE):
        raise ImageFormatError("The vhd image is truncated: its footer is missing.")
    (disk_type,) = struct.unpack_from(">I", footer, 60)
    if disk_type == _VHD_DIFFERENCING:
        raise ImageFormatError("Differencing vhd images (with a parent) are not accepted.")
    if disk_type not in (_VHD_FIXED, _VHD_DYNAMIC):
        raise ImageFormatError(f"vhd disk type {disk_type} is not supported.")


def _check_vhdx(reader: _Reader) -> None:
    table = reader.read(_VHDX_REGION_TABLE, 16)
    if len(table) < 16 or not table.startswith(b"regi"):
        raise ImageFormatError("The vhdx image is corrupt: its region table is missing.")
    (count,) = struct.unpack_from("<I", table, 8)
    if count > _VHDX_MAX_ENTRIES:
        raise ImageFormatError("The vhdx image is corrupt: invalid region table.")
    entries = reader.read(_VHDX_REGION_TABLE + 16, 32 * count)
    metadata_offset = None
    for index in range(len(entries) // 32):
        guid, offset, _length, _required = struct.unpack_from("<16sQII", entries, 32 * index)
        if guid == _VHDX_METADATA_REGION:
            metadata_offset = offset
    if metadata_offset is None:
        raise ImageFormatError("The vhdx image is corrupt: its metadata region is missing.")
    metadata = reader.read(metadata_offset, 32)
    if len(metadata) < 32 or not metadata.startswith(b"metadata"):
        raise ImageFormatError("The vhdx image is corrupt: its metadata table is missing.")
    (count,) = struct.unpack_from("<H", metadata, 10)
    if count > _VHDX_MAX_ENTRIES:
        raise ImageFormatError("The vhdx image is corrupt: invalid metadata table.")
    items = reader.read(metadata_offset + 32, 32 * count)
    for index in range(len(items) // 32):
        guid, offset, length, _flags, _reserved = struct.unpack_from("<16sIIII", items, 32 * index)
        if guid == _VHDX_PARENT_LOCATOR:
            raise ImageFormatError("Differencing vhdx images (with a parent) are not accepted.")
        if guid == _VHDX_FILE_PARAMETERS and length >= 8:
            parameters = reader.read(metadata_offset + offset, 8)
            flags = struct.unpack_from("<I", parameters, 4)[0] if len(parameters) == 8 else 0
            if flags & _VHDX_HAS_PARENT:
                raise ImageFormatError("Differencing vhdx images (with a parent) are not accepted.")


def _check_vdi(reader: _Reader) -> None:
    header = reader.read(0, 0x50)
    if len(header) < 0x50:
        raise ImageFormatError("The vdi image is truncated: its header is incomplete.")
    (image_type,) = struct.unpack_from("<I", header, 0x4C)
    if image_type not in (_VDI_NORMAL, _VDI_FIXED):
        raise ImageFormatError(
            f"vdi image type {image_type} is not accepted (only normal and fixed images)."
        )


def _check_ploop(reader: _Reader) -> None:
    header = reader.read(0, _PLOOP_HEADER.size)
    if len(header) < _PLOOP_HEADER.size:
        raise ImageFormatError("The ploop image is truncated: its header is incomplete.")
    fields = _PLOOP_HEADER.unpack_from(header)
    version, bat_entries = fields[1], fields[5]
    if version != 2:
        raise ImageFormatError(f"ploop (parallels) version {version} is not supported.")
    if _PLOOP_HEADER.size + 4 * bat_entries > reader.size:
        raise ImageFormatError("The ploop image is truncated: its block table is missing.")


_STRUCTURE_CHECKS = {
    "qcow2": _check_qcow2,
    "vmdk": _check_vmdk,
    "vhd": _check_vhd,
    "vhdx": _check_vhdx,
    "vdi": _check_vdi,
    "ploop": _check_ploop,
}


# --- qemu-img -------------------------------------------------------------------------


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} is not installed on this host")
    return found


def _clean_message(stderr: str, paths: Sequence[str]) -> str:
    """qemu-img's last error line, without host paths, fit for the API user."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    message = lines[-1] if lines else "no error message"
    message = message.removeprefix("qemu-img:").strip()
    for path in sorted(paths, key=len, reverse=True):
        message = message.replace(f"'{path}'", "the image").replace(path, "the image")
    return message[:300]


def _run_qemu_img(
    args: Sequence[str], *, timeout: int, address_space: int, action: str, paths: Sequence[str]
) -> str:
    """Run qemu-img under prlimit and a wall-clock timeout; its stdout, or ImageFormatError.

    ``action`` completes "qemu-img could not ..." in messages, e.g. "read the vdi image".
    """
    command = [
        _tool("prlimit"),
        f"--as={address_space}",
        f"--cpu={max(1, int(timeout))}",
        "--",
        _tool("qemu-img"),
        *args,
    ]
    # A small environment: C messages, and few malloc arenas (each reserves address space).
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "MALLOC_ARENA_MAX": "4"}
    try:
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        LOG.warning("qemu-img could not %s (%s): timed out after %s s", action, paths[0], timeout)
        raise ImageFormatError(f"qemu-img could not {action} within {timeout} seconds.") from None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = str(-done.returncode)
        LOG.warning(
            "qemu-img could not %s (%s): killed by %s: %s",
            action,
            paths[0],
            name,
            done.stderr.strip(),
        )
        raise ImageFormatError(
            f"qemu-img could not {action}: it was stopped by {name} "
            "(it exceeded its CPU or memory limits)."
        )
    if done.returncode != 0:
        LOG.info("qemu-img could not %s (%s): %s", action, paths[0], done.stderr.strip())
        raise ImageFormatError(f"qemu-img could not {action}: {_clean_message(done.stderr, paths)}")
    return done.stdout


def _qemu_info(path: str, fmt: str, timeout: int) -> dict[str, Any]:
    qemu_format = QEMU_FORMATS[fmt]
    output = _run_qemu_img(
        ["info", "--output=json", "-f", qemu_format, path],
        timeout=timeout,
        address_space=INFO_ADDRESS_SPACE,
        action=f"read the {fmt} image",
        paths=[path],
    )
    try:
        info = json.loads(output)
    except ValueError:
        raise ImageFormatError(
            f"qemu-img gave unreadable information about the {fmt} image."
        ) from None
    if not isinstance(info, dict) or info.get("format") != qemu_format:
        raise ImageFormatError(f"qemu-img does not read the image as {fmt}.")
    return info


def _check_qemu_info(info: dict[str, Any], fmt: str, path: str) -> int:
    """Double-check what qemu itself sees; return the virtual size."""
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise ImageFormatError(f"{fmt} images with a backing file are not accepted.")
    specific = info.get("format-specific")
    data = specific.get("data") if isinstance(specific, dict) else None
    if not isinstance(data, dict):
        data = {}
    if info.get("encrypted"):
        raise ImageFormatError(f"Encrypted {fmt} images are not accepted.")
    if fmt == "qcow2":
        if "data-file" in data:
            raise ImageFormatError("qcow2 images with an external data file are not accepted.")
        if data.get("corrupt"):
            raise ImageFormatError("The qcow2 image is marked corrupt.")
    if fmt == "vmdk":
        create_type = data.get("create-type")
        if create_type not in _VMDK_ALLOWED_TYPES:
            raise ImageFormatError(
                f"vmdk images of type {create_type or 'unknown'} are not accepted "
                "(only monolithicSparse and streamOptimized)."
            )
        extents = data.get("extents")
        if (
            not isinstance(extents, list)
            or len(extents) != 1
            or not isinstance(extents[0], dict)
            or extents[0].get("filename") != path
        ):
            raise ImageFormatError("vmdk images with an extent in another file are not accepted.")
    virtual_size = info.get("virtual-size")
    if not isinstance(virtual_size, int) or isinstance(virtual_size, bool) or virtual_size <= 0:
        raise ImageFormatError(f"The {fmt} image has an invalid virtual size.")
    return virtual_size


# --- the public functions -------------------------------------------------------------


def inspect(
    path: str | os.PathLike[str], declared: str, *, timeout: int = DEFAULT_INSPECT_TIMEOUT
) -> Inspection:
    """Check that the file at path is a safe image of the declared disk_format.

    Raises ImageFormatError for content that does not match ``declared`` or is
    unsafe; OSError if the file cannot be read at all.
    """
    if declared not in DISK_FORMATS:
        raise ImageFormatError(f"Unknown disk_format {declared!r}.")
    absolute = os.path.abspath(os.fspath(path))  # "/..." never reads as a qemu protocol
    fd = os.open(absolute, os.O_RDONLY | os.O_CLOEXEC)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise ImageFormatError("The image data is not a regular file.")
        reader = _Reader(fd, status.st_size)
        if declared in RAW_LIKE or declared == "iso":
            return _inspect_unstructured(reader, declared)
        _check_structured(reader, declared)
    finally:
        os.close(fd)
    info = _qemu_info(absolute, declared, timeout)
    virtual_size = _check_qemu_info(info, declared, absolute)
    return Inspection(format=declared, virtual_size=virtual_size, size=status.st_size)


def _inspect_unstructured(reader: _Reader, declared: str) -> Inspection:
    found = _all_formats(reader)
    if found:
        raise ImageFormatError(
            f"disk_format is {declared}, but the image data is {_describe(found[0])}."
        )
    is_iso = _is_iso(reader)
    if declared == "iso" and not is_iso:
        raise ImageFormatError("disk_format is iso, but the image data has no ISO 9660 signature.")
    return Inspection(format="iso" if is_iso else "raw", virtual_size=reader.size, size=reader.size)


def _check_structured(reader: _Reader, declared: str) -> None:
    found = _header_formats(reader.read(0, 512))
    if declared == "vhd" and "vhd" not in found and reader.footer().startswith(_VHD_COOKIE):
        found.append("vhd")
    if declared not in found and found:
        raise ImageFormatError(
            f"disk_format is {declared}, but the image data is {_describe(found[0])}."
        )
    if declared not in found:
        raise ImageFormatError(f"The image data is not a valid {declared} image.")
    if len(found) > 1:
        raise ImageFormatError(
            f"The image data looks like more than one format ({', '.join(found)}); refused."
        )
    _STRUCTURE_CHECKS[declared](reader)


def convert(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    source_format: str,
    target_format: str,
    *,
    timeout: int = 3600,
) -> None:
    """qemu-img convert between Glance disk formats (target raw or qcow2).

    The source must pass ``inspect``; the result is written beside the
    destination under a temporary name, inspected, and renamed into place.
    Raises ImageFormatError on failure, leaving no destination file behind.
    """
    if target_format not in CONVERT_TARGETS:
        raise ImageFormatError(f"Cannot convert images to {target_format!r} (only raw or qcow2).")
    inspect_timeout = min(timeout, DEFAULT_INSPECT_TIMEOUT)
    source_path = os.path.abspath(os.fspath(source))
    before = inspect(source_path, source_format, timeout=inspect_timeout)
    target = Path(os.path.abspath(os.fspath(destination)))
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    done = False
    try:
        _run_qemu_img(
            [
                "convert",
                "-q",
                "-f",
                QEMU_FORMATS[source_format],
                "-O",
                target_format,
                source_path,
                temporary,
            ],
            timeout=timeout,
            address_space=CONVERT_ADDRESS_SPACE,
            action=f"convert the image to {target_format}",
            paths=[source_path, temporary],
        )
        try:
            after = inspect(temporary, target_format, timeout=inspect_timeout)
        except ImageFormatError as exc:
            raise ImageFormatError(
                f"The image converted to {target_format} was refused: {exc}"
            ) from None
        if after.virtual_size < before.virtual_size:
            raise ImageFormatError(
                f"Converting to {target_format} lost data: the virtual size shrank from "
                f"{before.virtual_size} to {after.virtual_size} bytes."
            )
        os.replace(temporary, target)
        done = True
    finally:
        if not done:
            Path(temporary).unlink(missing_ok=True)
