"""A real guest reads its identity and user data from Stratus's ISO 9660 config drive.

The test image (tests/compute/guest_lab.py) boots from its qcow2 disk under
QEMU with the config drive attached as a CD-ROM, as Nova's libvirt driver
attaches it; its /init mounts the first ``config-2`` volume it finds
(``/dev/sr0``, iso9660), reads ``openstack/latest/meta_data.json`` and
``user_data`` by their long names, and prints them on the console. The
lab's metadata server knows nothing, so what the guest prints came from
the drive.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from stratus.metadata import config_drive
from tests.compute.guest_lab import Lab, console_lines
from tests.metadata_sample import INSTANCE


def test_the_test_image_reads_the_iso_config_drive(
    guest_image: Path, lab: Lab, tmp_path: Path
) -> None:
    instance = dataclasses.replace(
        INSTANCE,
        uuid=str(uuid.uuid4()),
        name="iso-guest",
        hostname="iso-guest",
        user_data=b"#!/bin/sh\necho from the iso config drive\n",
    )
    drive = config_drive.build(instance, tmp_path / "disk.config")
    lab.start({})  # the metadata service knows nothing: the drive must be read
    guest = lab.boot(
        ["-drive", f"file={guest_image / 'stratus-test.qcow2'},if=virtio,snapshot=on",
         "-drive", f"file={drive},media=cdrom,if=ide,readonly=on"],
        "iso",
    )  # fmt: skip
    lines = console_lines(guest.wait_for("stratus-test: ready"))
    assert f"stratus-test: instance-id {instance.uuid} (from the config drive /dev/sr0)" in lines
    assert "stratus-test: name iso-guest" in lines
    assert "stratus-test: user-data: #!/bin/sh" in lines
    assert "stratus-test: user-data: echo from the iso config drive" in lines
    assert any("eth0 lease" in line for line in lines)
