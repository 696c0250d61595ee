"""The image format inspector against real images made by qemu-img.

Every accepted format is built with ``qemu-img create`` and must come back
with its format and virtual size; every known attack (backing files, external
data files, VMDK extents and parents, format confusion) must be refused. A
few tests switch off the pure-Python checks to prove that the second line of
defence, the double-check of ``qemu-img info``, refuses on its own.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from stratus.image import formats, settings
from stratus.image.formats import ImageFormatError, Inspection, convert, inspect

pytestmark = pytest.mark.skipif(
    shutil.which("qemu-img") is None or shutil.which("prlimit") is None,
    reason="needs qemu-img (qemu-utils) and prlimit (util-linux)",
)

MiB = 1024 * 1024
SIZE = 5 * MiB


def qemu_img(*args: str | Path) -> None:
    subprocess.run(["qemu-img", *map(str, args)], check=True, capture_output=True)


def create(path: Path, fmt: str, size: int = SIZE, *options: str) -> Path:
    qemu_img("create", "-q", "-f", fmt, *options, path, str(size))
    return path


def random_bytes(path: Path, size: int = MiB) -> Path:
    path.write_bytes(random.Random(1234).randbytes(size))
    return path


def patch(path: Path, offset: int, data: bytes) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        handle.write(data)


def make_iso(path: Path, size: int = 64 * 1024) -> Path:
    """A minimal ISO 9660 image: 32 KiB system area, a primary volume descriptor, a terminator."""
    data = bytearray(size)
    data[0x8000:0x8007] = b"\x01CD001\x01"
    data[0x8028:0x8030] = b"STRATUS "  # volume identifier
    data[0x8800:0x8807] = b"\xffCD001\x01"
    path.write_bytes(bytes(data))
    return path


def refused(path: Path, declared: str) -> str:
    with pytest.raises(ImageFormatError) as caught:
        inspect(path, declared)
    return str(caught.value)


def qcow2_with_data_file(tmp_path: Path) -> Path:
    # qemu-img creates a relative data_file relative to its working directory: be absolute.
    return create(tmp_path / "disk.qcow2", "qcow2", SIZE, "-o", f"data_file={tmp_path}/data.bin")


def skip_python_checks(monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setitem(formats._STRUCTURE_CHECKS, fmt, lambda reader: None)


@pytest.fixture
def no_qemu_img(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pure-Python checks must refuse before qemu-img ever opens the file."""

    def forbidden(*args: object, **kwargs: object) -> str:
        pytest.fail("qemu-img ran on an image the header checks should have refused")

    monkeypatch.setattr(formats, "_run_qemu_img", forbidden)


# --- every accepted format ------------------------------------------------------------


@pytest.mark.parametrize(
    ("declared", "qemu_format", "options"),
    [
        ("qcow2", "qcow2", []),
        ("qcow2", "qcow2", ["-o", "compat=0.10"]),
        ("vmdk", "vmdk", ["-o", "subformat=monolithicSparse"]),
        ("vmdk", "vmdk", ["-o", "subformat=streamOptimized"]),
        ("vhd", "vpc", ["-o", "force_size=on"]),
        ("vhdx", "vhdx", []),
        ("vdi", "vdi", []),
        ("ploop", "parallels", []),
    ],
    ids=["qcow2", "qcow2-v2", "vmdk-sparse", "vmdk-stream", "vhd", "vhdx", "vdi", "ploop"],
)
def test_structured_formats_are_recognised(
    tmp_path: Path, declared: str, qemu_format: str, options: list[str]
) -> None:
    image = create(tmp_path / "disk", qemu_format, SIZE, *options)

    result = inspect(image, declared)

    assert result == Inspection(format=declared, virtual_size=SIZE, size=image.stat().st_size)


def test_vhd_size_is_what_qemu_sees_through_the_chs_geometry(tmp_path: Path) -> None:
    # Without force_size qemu rounds the size to a cylinder/head/sector geometry.
    image = create(tmp_path / "disk.vhd", "vpc", MiB)

    assert inspect(image, "vhd").virtual_size == 1079296


def test_fixed_vhd_is_recognised_by_its_footer(tmp_path: Path) -> None:
    image = create(tmp_path / "fixed.vhd", "vpc", SIZE, "-o", "subformat=fixed,force_size=on")
    data = image.read_bytes()
    assert data[:8] != b"conectix"
    assert data[-512:].startswith(b"conectix")

    assert inspect(image, "vhd") == Inspection("vhd", SIZE, SIZE + 512)
    assert "vhd image" in refused(image, "raw")


@pytest.mark.parametrize("declared", ["raw", "ami", "ari", "aki"])
def test_raw_data_is_raw(tmp_path: Path, declared: str) -> None:
    image = random_bytes(tmp_path / "disk", 3 * MiB + 512)

    assert inspect(image, declared) == Inspection("raw", 3 * MiB + 512, 3 * MiB + 512)


def test_raw_made_by_qemu_img(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.raw", "raw")

    assert inspect(image, "raw") == Inspection("raw", SIZE, SIZE)


def test_iso_is_accepted_as_iso_and_as_raw(tmp_path: Path) -> None:
    image = make_iso(tmp_path / "cd.iso", 96 * 1024)

    assert inspect(image, "iso") == Inspection("iso", 96 * 1024, 96 * 1024)
    assert inspect(image, "raw") == Inspection("iso", 96 * 1024, 96 * 1024)
    assert refused(image, "qcow2") == "The image data is not a valid qcow2 image."


def test_iso_needs_its_signature(tmp_path: Path) -> None:
    message = refused(random_bytes(tmp_path / "noise"), "iso")

    assert message == "disk_format is iso, but the image data has no ISO 9660 signature."


@pytest.mark.usefixtures("no_qemu_img")
def test_iso_that_is_also_a_qcow2_is_refused(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.qcow2", "qcow2")
    patch(image, 0x8000, b"\x01CD001\x01")

    assert refused(image, "iso") == "disk_format is iso, but the image data is a qcow2 image."


# --- format confusion -----------------------------------------------------------------


@pytest.mark.parametrize("declared", ["raw", "ami", "aki", "ari", "iso"])
def test_qcow2_declared_as_something_unstructured_is_refused(tmp_path: Path, declared: str) -> None:
    image = create(tmp_path / "disk", "qcow2")

    message = refused(image, declared)

    assert message == f"disk_format is {declared}, but the image data is a qcow2 image."


@pytest.mark.parametrize(
    ("qemu_format", "name"),
    [("vmdk", "vmdk"), ("vpc", "vhd"), ("vhdx", "vhdx"), ("vdi", "vdi"), ("parallels", "ploop")],
)
def test_every_structured_format_declared_raw_is_refused(
    tmp_path: Path, qemu_format: str, name: str
) -> None:
    image = create(tmp_path / "disk", qemu_format, MiB)

    assert refused(image, "raw") == f"disk_format is raw, but the image data is a {name} image."


@pytest.mark.usefixtures("no_qemu_img")
def test_qed_and_luks_are_recognised_and_refused(tmp_path: Path) -> None:
    qed = create(tmp_path / "disk.qed", "qed", MiB)
    luks = tmp_path / "disk.luks"  # a LUKS header; qemu-img would spend seconds on its key
    luks.write_bytes(b"LUKS\xba\xbe\x00\x01" + b"aes".ljust(32, b"\0") + bytes(MiB))

    assert "qed image, a format Stratus does not accept" in refused(qed, "raw")
    assert "luks image, a format Stratus does not accept" in refused(luks, "raw")
    assert refused(qed, "qcow2").startswith("disk_format is qcow2, but the image data is a qed")


@pytest.mark.usefixtures("no_qemu_img")
@pytest.mark.parametrize("declared", ["qcow2", "vmdk", "vhd", "vhdx", "vdi", "ploop"])
def test_random_bytes_are_not_a_structured_image(tmp_path: Path, declared: str) -> None:
    image = random_bytes(tmp_path / "noise")

    assert refused(image, declared) == f"The image data is not a valid {declared} image."


@pytest.mark.usefixtures("no_qemu_img")
def test_structured_format_declared_as_another_is_refused(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.vdi", "vdi", MiB)

    assert refused(image, "vhdx") == "disk_format is vhdx, but the image data is a vdi image."


@pytest.mark.usefixtures("no_qemu_img")
def test_polyglot_qcow2_and_vdi_is_refused(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.qcow2", "qcow2")
    patch(image, 0x40, struct.pack("<I", 0xBEDA107F))

    assert "more than one format (qcow2, vdi)" in refused(image, "qcow2")


def test_vmdk_descriptor_found_the_way_qemu_probes_it_is_refused_as_raw(tmp_path: Path) -> None:
    image = tmp_path / "disk"
    image.write_bytes(b'# just a comment\n   \nversion=1\nRW 2048 FLAT "/etc/passwd" 0\n')

    assert refused(image, "raw") == "disk_format is raw, but the image data is a vmdk image."


def test_unknown_disk_format_is_refused(tmp_path: Path) -> None:
    assert refused(create(tmp_path / "disk", "raw"), "dmg") == "Unknown disk_format 'dmg'."


# --- qcow2 attacks --------------------------------------------------------------------


@pytest.mark.usefixtures("no_qemu_img")
def test_qcow2_with_backing_file_is_refused(tmp_path: Path) -> None:
    create(tmp_path / "other", "raw")
    image = tmp_path / "disk.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", tmp_path / "other", "-F", "raw", image)

    assert refused(image, "qcow2") == "qcow2 images with a backing file are not accepted."


def test_qcow2_backing_file_is_refused_by_qemu_info_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(tmp_path / "other", "raw")
    image = tmp_path / "disk.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", tmp_path / "other", "-F", "raw", image)
    skip_python_checks(monkeypatch, "qcow2")

    assert refused(image, "qcow2") == "qcow2 images with a backing file are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
def test_qcow2_with_external_data_file_is_refused(tmp_path: Path) -> None:
    image = qcow2_with_data_file(tmp_path)

    assert refused(image, "qcow2") == "qcow2 images with an external data file are not accepted."


def test_qcow2_data_file_is_refused_by_qemu_info_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = qcow2_with_data_file(tmp_path)
    skip_python_checks(monkeypatch, "qcow2")

    assert refused(image, "qcow2") == "qcow2 images with an external data file are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
def test_qcow2_data_file_extension_without_the_feature_bit_is_refused(tmp_path: Path) -> None:
    image = qcow2_with_data_file(tmp_path)
    (incompatible,) = struct.unpack(">Q", image.read_bytes()[72:80])
    assert incompatible & 4
    patch(image, 72, struct.pack(">Q", incompatible & ~4))

    assert refused(image, "qcow2") == "qcow2 images with an external data file are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
def test_qcow2_data_file_feature_bit_without_the_extension_is_refused(tmp_path: Path) -> None:
    image = qcow2_with_data_file(tmp_path)
    extension = image.read_bytes().index(b"DATA", 104, 4096)
    patch(image, extension, b"XXXX")  # an unknown extension, which qemu skips

    assert refused(image, "qcow2") == "qcow2 images with an external data file are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
def test_encrypted_qcow2_is_refused(tmp_path: Path) -> None:
    # The header of a LUKS-encrypted qcow2 (crypt_method 2); creating a real one makes
    # qemu-img benchmark PBKDF2 for seconds.
    image = create(tmp_path / "disk.qcow2", "qcow2")
    patch(image, 32, struct.pack(">I", 2))

    assert refused(image, "qcow2") == "Encrypted qcow2 images are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
@pytest.mark.parametrize(
    ("length", "message"),
    [
        (40, "The qcow2 image is truncated: its header is incomplete."),
        (100, "The qcow2 image is truncated: its header is incomplete."),
        (512, "The qcow2 image is truncated: its L1 table is missing."),
    ],
)
def test_truncated_qcow2_is_refused(tmp_path: Path, length: int, message: str) -> None:
    whole = create(tmp_path / "whole.qcow2", "qcow2")
    image = tmp_path / "cut.qcow2"
    image.write_bytes(whole.read_bytes()[:length])

    assert refused(image, "qcow2") == message


@pytest.mark.usefixtures("no_qemu_img")
def test_qcow2_marked_corrupt_is_refused(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.qcow2", "qcow2")
    patch(image, 72, struct.pack(">Q", 2))

    assert refused(image, "qcow2") == "The qcow2 image is marked corrupt."


# --- vmdk attacks ---------------------------------------------------------------------


@pytest.mark.usefixtures("no_qemu_img")
@pytest.mark.parametrize("subformat", ["monolithicFlat", "twoGbMaxExtentSparse"])
def test_vmdk_descriptor_files_are_refused(tmp_path: Path, subformat: str) -> None:
    image = create(tmp_path / "disk.vmdk", "vmdk", MiB, "-o", f"subformat={subformat}")
    assert image.read_bytes().startswith(b"# Disk DescriptorFile")

    message = refused(image, "vmdk")

    assert message.startswith("VMDK descriptor files (whose data lives in other files)")
    assert refused(image, "raw") == "disk_format is raw, but the image data is a vmdk image."


@pytest.mark.usefixtures("no_qemu_img")
def test_vmdk_with_parent_is_refused(tmp_path: Path) -> None:
    create(tmp_path / "base.vmdk", "vmdk", MiB)
    image = tmp_path / "child.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", "-b", tmp_path / "base.vmdk", "-F", "vmdk", image)

    assert refused(image, "vmdk") == "vmdk images with a parent (delta disks) are not accepted."


def test_vmdk_parent_is_refused_by_qemu_info_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(tmp_path / "base.vmdk", "vmdk", MiB)
    image = tmp_path / "child.vmdk"
    qemu_img("create", "-q", "-f", "vmdk", "-b", tmp_path / "base.vmdk", "-F", "vmdk", image)
    skip_python_checks(monkeypatch, "vmdk")

    assert refused(image, "vmdk") == "vmdk images with a backing file are not accepted."


def _sparse_vmdk_with_descriptor(tmp_path: Path, descriptor: str, capacity: int | None) -> Path:
    image = create(tmp_path / "disk.vmdk", "vmdk", MiB)
    header = image.read_bytes()[:512]
    desc_offset, desc_size = struct.unpack_from("<QQ", header, 28)
    assert (desc_offset, desc_size) == (1, 20)
    patch(image, 512, descriptor.encode().ljust(desc_size * 512, b"\0"))
    if capacity is not None:
        patch(image, 12, struct.pack("<Q", capacity))
    return image


HOST_FILE_DESCRIPTOR = """# Disk DescriptorFile
version=1
CID=12345678
parentCID=ffffffff
createType="{create_type}"
RW 2048 {kind} "{target}" 0
"""


def _vmdk_reading_a_host_file(tmp_path: Path) -> Path:
    # The CVE-2024-32498 shape: a sparse header with capacity 0 makes qemu treat the
    # embedded descriptor as a descriptor file, and read its extents from the host.
    secret = tmp_path / "secret"
    secret.write_bytes(b"host secret".ljust(MiB, b"\0"))
    text = HOST_FILE_DESCRIPTOR.format(create_type="monolithicFlat", kind="FLAT", target=secret)
    image = _sparse_vmdk_with_descriptor(tmp_path, text, capacity=0)
    # Proof that this is a real exploit: qemu-img copies the host file into the output.
    qemu_img("convert", "-f", "vmdk", "-O", "raw", image, tmp_path / "leak")
    assert (tmp_path / "leak").read_bytes().startswith(b"host secret")
    return image


@pytest.mark.usefixtures("no_qemu_img")
def test_sparse_vmdk_whose_descriptor_reads_a_host_file_is_refused(tmp_path: Path) -> None:
    image = _vmdk_reading_a_host_file(tmp_path)

    assert refused(image, "vmdk") == "vmdk images with a zero capacity are not accepted."


def test_vmdk_reading_a_host_file_is_refused_by_qemu_info_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = _vmdk_reading_a_host_file(tmp_path)
    skip_python_checks(monkeypatch, "vmdk")

    assert refused(image, "vmdk") == (
        "vmdk images of type monolithicFlat are not accepted "
        "(only monolithicSparse and streamOptimized)."
    )


@pytest.mark.usefixtures("no_qemu_img")
@pytest.mark.parametrize(
    ("kind", "target"),
    [("FLAT", "disk.vmdk"), ("SPARSE", "/etc/hostname"), ("SPARSE", "../other/disk.vmdk")],
)
def test_sparse_vmdk_with_foreign_extent_is_refused(tmp_path: Path, kind: str, target: str) -> None:
    text = HOST_FILE_DESCRIPTOR.format(create_type="monolithicSparse", kind=kind, target=target)
    image = _sparse_vmdk_with_descriptor(tmp_path, text, capacity=None)

    assert refused(image, "vmdk") == "vmdk images with an extent in another file are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
def test_sparse_vmdk_of_a_refused_type_is_refused(tmp_path: Path) -> None:
    text = HOST_FILE_DESCRIPTOR.format(create_type="vmfs", kind="SPARSE", target="disk.vmdk")
    image = _sparse_vmdk_with_descriptor(tmp_path, text, capacity=None)

    assert refused(image, "vmdk").startswith("vmdk images of type vmfs are not accepted")


@pytest.mark.usefixtures("no_qemu_img")
def test_sparse_vmdk_with_two_extents_is_refused(tmp_path: Path) -> None:
    text = HOST_FILE_DESCRIPTOR.format(create_type="streamOptimized", kind="SPARSE", target="a")
    image = _sparse_vmdk_with_descriptor(tmp_path, text + 'RW 2048 SPARSE "b"\n', capacity=None)

    assert refused(image, "vmdk") == "vmdk images with more than one extent are not accepted."


def test_qemu_info_extents_are_double_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # qemu 7.2 never reports foreign extents for an image the header checks accept;
    # should a later qemu do so, the qemu-img info double-check still refuses.
    image = create(tmp_path / "disk.vmdk", "vmdk", MiB)
    info = {
        "format": "vmdk",
        "virtual-size": MiB,
        "format-specific": {
            "type": "vmdk",
            "data": {"create-type": "monolithicSparse", "extents": [{"filename": "/etc/passwd"}]},
        },
    }
    fake_qemu_img(tmp_path, monkeypatch, f"echo '{json.dumps(info)}'\n")

    assert refused(image, "vmdk") == "vmdk images with an extent in another file are not accepted."


# --- vhd, vhdx, vdi -------------------------------------------------------------------


@pytest.mark.usefixtures("no_qemu_img")
def test_differencing_vhd_is_refused(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.vhd", "vpc", MiB)
    size = image.stat().st_size
    patch(image, 60, struct.pack(">I", 4))
    patch(image, size - 512 + 60, struct.pack(">I", 4))

    assert refused(image, "vhd") == "Differencing vhd images (with a parent) are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
def test_vhdx_with_parent_is_refused(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.vhdx", "vhdx", MiB)
    metadata = 3 * MiB  # where qemu-img puts the metadata region
    data = image.read_bytes()
    assert data[metadata : metadata + 8] == b"metadata"
    assert data[metadata + 32 : metadata + 48] == formats._VHDX_FILE_PARAMETERS
    (item_offset,) = struct.unpack_from("<I", data, metadata + 48)
    patch(image, metadata + item_offset + 4, struct.pack("<I", 2))  # HasParent

    assert refused(image, "vhdx") == "Differencing vhdx images (with a parent) are not accepted."


@pytest.mark.usefixtures("no_qemu_img")
def test_vdi_differencing_image_is_refused(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.vdi", "vdi", MiB)
    patch(image, 0x4C, struct.pack("<I", 4))

    assert refused(image, "vdi") == (
        "vdi image type 4 is not accepted (only normal and fixed images)."
    )


def test_qemu_img_failure_is_a_clear_message_without_host_paths(tmp_path: Path) -> None:
    image = create(tmp_path / "disk.vdi", "vdi", MiB)
    patch(image, 0x168, struct.pack("<I", 0))  # sector size

    message = refused(image, "vdi")

    assert message == (
        "qemu-img could not read the vdi image: Could not open the image: "
        "unsupported VDI image (sector size 0 is not 512)"
    )
    assert str(tmp_path) not in message


# --- how qemu-img is run --------------------------------------------------------------


def fake_qemu_img(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "qemu-img"
    fake.write_text("#!/bin/sh\n" + script)
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_qemu_img_runs_with_explicit_format_and_resource_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = create(tmp_path / "disk.vhd", "vpc", MiB)
    record = tmp_path / "record"
    fake_qemu_img(
        tmp_path, monkeypatch, f'echo "$@" > {record}\ncat /proc/self/limits >> {record}\n'
    )

    with pytest.raises(ImageFormatError, match="unreadable information"):
        inspect(image, "vhd", timeout=7)

    lines = record.read_text().splitlines()
    assert lines[0] == f"info --output=json -f vpc {image}"
    limits = {line[:26].strip(): line[26:].split()[:2] for line in lines[2:]}
    assert limits["Max cpu time"] == ["7", "7"]
    assert limits["Max address space"] == [str(1 << 30), str(1 << 30)]


def test_qemu_img_timeout_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = create(tmp_path / "disk.qcow2", "qcow2")
    fake_qemu_img(tmp_path, monkeypatch, "exec sleep 30\n")

    assert refused_with_timeout(image, "qcow2", 1) == (
        "qemu-img could not read the qcow2 image within 1 seconds."
    )


def refused_with_timeout(path: Path, declared: str, timeout: int) -> str:
    with pytest.raises(ImageFormatError) as caught:
        inspect(path, declared, timeout=timeout)
    return str(caught.value)


def test_qemu_img_killed_by_its_limits_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = create(tmp_path / "disk.qcow2", "qcow2")
    fake_qemu_img(tmp_path, monkeypatch, "kill -XCPU $$\n")

    assert refused(image, "qcow2") == (
        "qemu-img could not read the qcow2 image: it was stopped by SIGXCPU "
        "(it exceeded its CPU or memory limits)."
    )


# --- conversion -----------------------------------------------------------------------


def test_convert_qcow2_to_raw_keeps_data_and_size(tmp_path: Path) -> None:
    content = random.Random(7).randbytes(SIZE)
    (tmp_path / "content").write_bytes(content)
    source = tmp_path / "disk.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", tmp_path / "content", source)
    destination = tmp_path / "out" / "disk.raw"
    destination.parent.mkdir()

    convert(source, destination, "qcow2", "raw")

    assert destination.read_bytes() == content
    assert inspect(destination, "raw") == Inspection("raw", SIZE, SIZE)
    assert sorted(p.name for p in destination.parent.iterdir()) == ["disk.raw"]


def test_convert_vmdk_to_qcow2_keeps_virtual_size(tmp_path: Path) -> None:
    source = create(tmp_path / "disk.vmdk", "vmdk", SIZE, "-o", "subformat=streamOptimized")
    destination = tmp_path / "disk.qcow2"

    convert(source, destination, "vmdk", "qcow2")

    assert inspect(destination, "qcow2").virtual_size == SIZE
    assert destination.read_bytes()[:4] == b"QFI\xfb"


def test_convert_refuses_an_unsafe_source_and_leaves_nothing(tmp_path: Path) -> None:
    create(tmp_path / "other", "raw")
    source = tmp_path / "disk.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", tmp_path / "other", "-F", "raw", source)
    before = sorted(tmp_path.iterdir())

    with pytest.raises(ImageFormatError, match="backing file"):
        convert(source, tmp_path / "disk.raw", "qcow2", "raw")

    assert sorted(tmp_path.iterdir()) == before


def test_convert_refuses_a_result_that_is_itself_an_image_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    # A qcow2 whose guest data is another qcow2: converted to raw, it becomes the attack.
    inner = create(tmp_path / "inner.qcow2", "qcow2", MiB)
    source = tmp_path / "outer.qcow2"
    qemu_img("convert", "-f", "raw", "-O", "qcow2", inner, source)
    assert inspect(source, "qcow2").format == "qcow2"
    before = sorted(tmp_path.iterdir())

    with pytest.raises(ImageFormatError) as caught:
        convert(source, tmp_path / "disk.raw", "qcow2", "raw")

    assert str(caught.value) == (
        "The image converted to raw was refused: "
        "disk_format is raw, but the image data is a qcow2 image."
    )
    assert sorted(tmp_path.iterdir()) == before


def test_convert_failure_in_qemu_img_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = create(tmp_path / "disk.vdi", "vdi", MiB)
    real = shutil.which("qemu-img")
    fake_qemu_img(
        tmp_path,
        monkeypatch,
        f'if [ "$1" = convert ]; then for last; do :; done; echo partial > "$last"; '
        f'echo "qemu-img: error while writing at byte 0: No space left on device" >&2; exit 1; fi\n'
        f'exec {real} "$@"\n',
    )
    before = sorted(tmp_path.iterdir())

    with pytest.raises(ImageFormatError) as caught:
        convert(source, tmp_path / "disk.raw", "vdi", "raw")

    assert str(caught.value) == (
        "qemu-img could not convert the image to raw: "
        "error while writing at byte 0: No space left on device"
    )
    assert sorted(tmp_path.iterdir()) == before


def test_convert_refuses_a_result_smaller_than_the_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = create(tmp_path / "disk.vdi", "vdi", MiB)
    real = shutil.which("qemu-img")
    fake_qemu_img(
        tmp_path,
        monkeypatch,
        'if [ "$1" = convert ]; then for last; do :; done; head -c 512 /dev/zero > "$last"; '
        f'exit 0; fi\nexec {real} "$@"\n',
    )
    before = sorted(tmp_path.iterdir())

    with pytest.raises(ImageFormatError) as caught:
        convert(source, tmp_path / "disk.raw", "vdi", "raw")

    assert str(caught.value) == (
        f"Converting to raw lost data: the virtual size shrank from {MiB} to 512 bytes."
    )
    assert sorted(tmp_path.iterdir()) == before


def test_convert_only_to_raw_or_qcow2(tmp_path: Path) -> None:
    source = create(tmp_path / "disk.qcow2", "qcow2")

    with pytest.raises(ImageFormatError, match="only raw or qcow2"):
        convert(source, tmp_path / "disk.vmdk", "qcow2", "vmdk")


def test_disk_formats_match_the_service_settings() -> None:
    assert sorted(formats.DISK_FORMATS) == sorted(settings.DISK_FORMATS)
    assert set(formats.QEMU_FORMATS) == set(settings.DISK_FORMATS)
