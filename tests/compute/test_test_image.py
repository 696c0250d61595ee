"""The test image boots under QEMU, takes its DHCP lease, reads its metadata, powers off.

``scripts/build_test_image.py`` builds it (Debian's cloud kernel and a
busybox initramfs). Each test boots it under QEMU's software emulation with
its NIC on a tap in a network namespace of the test's own, where dnsmasq
gives it a fixed address and a metadata server (a small HTTP server on
169.254.169.254) answers in OpenStack's format, as the network service and
the compute metadata service will. Two boots: from the qcow2 disk (syslinux)
with metadata over HTTP, and by direct kernel boot (an AMI's kernel and
ramdisk) with a config drive (a VFAT volume labelled config-2).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

from tests.compute.guest_lab import GATEWAY, GUEST_IP, Lab, console_lines, run


def test_disk_boot_with_dhcp_and_the_metadata_service(guest_image: Path, lab: Lab) -> None:
    instance = str(uuid.uuid4())
    meta = {"uuid": instance, "name": "web-1", "hostname": "web-1"}
    lab.start(
        {
            "/openstack/latest/meta_data.json": json.dumps(meta),
            "/openstack/latest/user_data": "#!/bin/sh\necho hello from user data\n",
        }
    )
    guest = lab.boot(
        ["-drive", f"file={guest_image / 'stratus-test.qcow2'},if=virtio,snapshot=on"], "disk"
    )
    console = guest.wait_for("stratus-test: ready")
    lines = console_lines(console)
    lease = next(line for line in lines if "eth0 lease" in line)
    assert f"{GUEST_IP}/24" in lease and f"169.254.169.254/32 {GATEWAY}" in lease
    assert f"stratus-test: instance-id {instance} (from the metadata service)" in lines
    assert "stratus-test: name web-1" in lines
    assert "stratus-test: user-data: echo hello from user data" in lines

    assert lab.run(["ping", "-c", "2", "-W", "2", GUEST_IP]).returncode == 0
    served = lab.run([sys.executable, "-c", f"""
import socket, urllib.request
print(urllib.request.urlopen("http://{GUEST_IP}/", timeout=10).read().decode().strip())
s = socket.create_connection(("{GUEST_IP}", 22), timeout=10)
print(s.recv(100).decode().strip())
"""]).stdout.split()  # fmt: skip
    assert served == [instance, "SSH-2.0-stratus-test"]

    guest.power_button()
    assert guest.qemu.wait(60) == 0
    assert "stratus-test: power button: powering off" in guest.console()


def test_direct_kernel_boot_with_a_config_drive(
    guest_image: Path, lab: Lab, tmp_path: Path
) -> None:
    instance = str(uuid.uuid4())
    lab.start({})  # the metadata service knows nothing: the drive must be read
    drive = tmp_path / "config.vfat"
    with drive.open("wb") as handle:
        handle.truncate(4 << 20)
    run("mkfs.vfat", "-n", "config-2", str(drive))
    source = tmp_path / "openstack"
    (source / "latest").mkdir(parents=True)
    (source / "latest" / "meta_data.json").write_text(json.dumps({"uuid": instance, "name": "db"}))
    (source / "latest" / "user_data").write_text("from the drive\n")
    run("mcopy", "-s", "-i", str(drive), str(source), "::")
    guest = lab.boot(
        ["-kernel", str(guest_image / "stratus-test-vmlinuz"),
         "-initrd", str(guest_image / "stratus-test-initrd"),
         "-append", "root=/dev/vda console=tty0 console=ttyS0",
         "-drive", f"file={drive},if=virtio,format=raw,readonly=on"],
        "ami",
    )  # fmt: skip
    lines = console_lines(guest.wait_for("stratus-test: ready"))
    assert f"stratus-test: instance-id {instance} (from the config drive /dev/vda)" in lines
    assert "stratus-test: user-data: from the drive" in lines
    assert any("eth0 lease" in line for line in lines)
