"""The config drive image: label, names in all three name spaces, content, atomic writes.

blkid (util-linux, what cloud-init asks for ``LABEL=config-2``) probes the
image file; pycdlib reads it back by its Rock Ridge, Joliet and ISO 9660
names. Mounting it with a real kernel, and cloud-init and a guest reading
it, are in tests/compute/test_metadata_cloud_init.py and
tests/compute/test_config_drive_guest.py.
"""

from __future__ import annotations

import io
import stat
import subprocess
from pathlib import Path

import pycdlib
import pytest

from stratus.metadata import config_drive, tree
from tests.metadata_sample import INSTANCE

SEED = b"\x01" * 512


def _read(iso_file: Path, **path: str) -> bytes:
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_file))
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, **path)
        return out.getvalue()
    finally:
        iso.close()


def _names(iso_file: Path, kind: str) -> set[str]:
    """Every file's path in one name space (``rr_path``, ``joliet_path`` or ``iso_path``)."""
    iso = pycdlib.PyCdlib()
    iso.open(str(iso_file))
    try:
        return {
            f"{root.rstrip('/')}/{name}"
            for root, _dirs, files in iso.walk(**{kind: "/"})
            for name in files
        }
    finally:
        iso.close()


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return config_drive.build(INSTANCE, tmp_path_factory.mktemp("drive") / "disk.config", SEED)


def test_blkid_sees_an_iso9660_labelled_config_2(drive: Path) -> None:
    probe = subprocess.run(
        ["blkid", "-p", "-o", "export", str(drive)], capture_output=True, text=True, check=True
    )
    fields = dict(line.split("=", 1) for line in probe.stdout.splitlines() if "=" in line)
    assert fields["TYPE"] == "iso9660" and fields["LABEL"] == "config-2"


def test_every_file_by_its_long_name(drive: Path) -> None:
    files = tree.config_drive_files(INSTANCE, SEED)
    expected = {f"/{path}" for path in files}
    assert _names(drive, "rr_path") == expected
    assert _names(drive, "joliet_path") == expected
    for path, data in files.items():
        assert _read(drive, rr_path=f"/{path}") == data, path
        assert _read(drive, joliet_path=f"/{path}") == data, path


def test_iso9660_names_are_plain(drive: Path) -> None:
    names = _names(drive, "iso_path")
    assert "/OPENSTACK/LATEST/META_DATA.JSON;1" in names
    assert "/OPENSTACK/2012_08_10/USER_DATA.;1" in names
    assert "/EC2/LATEST/META_DATA.JSON;1" in names
    assert len(names) == len(tree.config_drive_files(INSTANCE, SEED))


def test_private_and_written_whole(drive: Path) -> None:
    assert stat.S_IMODE(drive.stat().st_mode) == 0o600
    assert not list(drive.parent.glob(".*.tmp"))


def test_names_that_collide_in_iso9660_stay_apart(tmp_path: Path) -> None:
    files = {"a/x-y.txt": b"1", "a/x_y.txt": b"2", "a/x.y.txt": b"3", "b-c/d": b"4", "b_c/d": b"5"}
    image = config_drive.write_iso(tmp_path / "x.iso", files)
    for path, data in files.items():
        assert _read(image, rr_path=f"/{path}") == data


def test_a_failed_write_keeps_the_old_image_and_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "disk.config"
    target.write_bytes(b"old")
    with pytest.raises(TypeError):
        config_drive.write_iso(target, {"a": "not bytes"})  # type: ignore[dict-item]
    blocked = tmp_path / "a-directory"
    blocked.mkdir()
    with pytest.raises(OSError):
        config_drive.write_iso(blocked, {"a": b"x"})
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-directory", "disk.config"]
