#!/usr/bin/env python3
"""Build Stratus's test image: Debian's cloud kernel and a busybox initramfs.

A guest image small enough to boot in seconds under QEMU's software
emulation, that still does what a cloud guest must and says so on its
serial console, one line per step, each starting with ``stratus-test:``:

- it brings up every ``eth*`` with DHCP (udhcpc: address, MTU, router and
  classless static routes, so metadata on a subnet without a router works);
- it reads its metadata from a config drive (an ISO 9660 or VFAT volume
  labelled ``config-2``) or else from ``http://169.254.169.254``
  (OpenStack format): it prints its instance id, its name and its user data;
- it answers ping, serves its instance id over HTTP on port 80 and a banner
  on TCP 22 (so security group rules can be checked with real connections);
- it powers off on an ACPI power button press (what ``openstack server
  stop`` and libvirt's shutdown send).

Outputs, in the output directory (``/var/cache/stratus-lab/test-image`` by
default):

- ``stratus-test.qcow2``: a bootable disk (an unpartitioned FAT volume with
  syslinux, the kernel and the initramfs): a plain qcow2 image for Glance;
- ``stratus-test-vmlinuz`` and ``stratus-test-initrd``: the same kernel and
  initramfs for direct kernel boot (an AMI's AKI and ARI);
- ``stratus-test.json``: what was built (kernel version, sizes, sha256).

A second run with the same kernel and this script unchanged does nothing.
Needs (Debian): busybox-static, syslinux, syslinux-common, mtools,
dosfstools, qemu-utils, kmod. Run as root (the kernel cache is root's).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from debian_kernel import DIRECTORY, EXECUTABLE, REGULAR, DebianKernel, Entry, newc

OUTPUT = Path("/var/cache/stratus-lab/test-image")
PACKAGE = "linux-image-cloud-amd64"
BUSYBOX = Path("/bin/busybox")
SYSLINUX_MODULES = Path("/usr/lib/syslinux/modules/bios")
DISK_MIB = 32
# Loaded in this order at boot (those built into the kernel are skipped).
MODULES = (
    "virtio_pci", "virtio_net", "virtio_blk", "virtio_scsi", "virtio_console",
    "af_packet", "ata_piix", "sr_mod", "isofs", "vfat", "nls_cp437", "nls_ascii",
    "button", "evdev",
)  # fmt: skip

INIT = r"""#!/bin/sh
# Stratus test image: /init (busybox). Every step says what it did on the console.
export PATH=/bin
say() { echo "stratus-test: $*" > /dev/console; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /mnt/config
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
for m in $(cat /etc/modules); do insmod "/lib/modules/$m" 2>/dev/null; done
hostname stratus-test
say "booted $(uname -r)"
ip link set lo up

# DHCP on every interface (the lease is printed by /etc/udhcpc.sh).
for path in /sys/class/net/eth*; do
    [ -e "$path" ] || continue
    dev=${path##*/}
    ip link set "$dev" up
    udhcpc -i "$dev" -n -q -t 10 -T 1 -O staticroutes -O mtu -s /etc/udhcpc.sh \
        >/dev/null 2>&1 || say "$dev no lease"
done

# Metadata: a config drive first, else the metadata service.
source=""
for dev in /dev/sr0 /dev/sr1 /dev/vd? /dev/sd?; do
    [ -b "$dev" ] || continue
    for fs in iso9660 vfat; do
        if mount -t "$fs" -o ro "$dev" /mnt/config 2>/dev/null; then
            if [ -f /mnt/config/openstack/latest/meta_data.json ]; then
                cp /mnt/config/openstack/latest/meta_data.json /run/meta_data.json
                cp /mnt/config/openstack/latest/user_data /run/user_data 2>/dev/null
                source="config drive $dev"
            fi
            umount /mnt/config
        fi
        [ -n "$source" ] && break 2
    done
done
if [ -z "$source" ]; then
    base=http://169.254.169.254/openstack/latest
    for try in 1 2 3 4 5 6 7 8 9 10; do
        # (busybox 1.35's own wget -T crashes: timeout(1) bounds it instead.)
        if timeout 5 wget -q -O /run/meta_data.json "$base/meta_data.json" 2>/dev/null; then
            source="metadata service"
            timeout 5 wget -q -O /run/user_data "$base/user_data" 2>/dev/null \
                || rm -f /run/user_data
            break
        fi
        sleep 1
    done
fi
if [ -n "$source" ]; then
    field() { sed -n "s/.*\"$1\": *\"\([^\"]*\)\".*/\1/p" /run/meta_data.json | head -n 1; }
    uuid=$(field uuid)
    say "instance-id $uuid (from the $source)"
    say "name $(field name)"
    [ -n "$(field name)" ] && hostname "$(field name)"
    if [ -s /run/user_data ]; then
        sed 's/^/stratus-test: user-data: /' /run/user_data > /dev/console
    fi
    mkdir -p /www
    echo "$uuid" > /www/index.html
else
    say "no metadata"
    mkdir -p /www
    echo unknown > /www/index.html
fi

httpd -p 80 -h /www
nc -ll -p 22 -e /bin/echo SSH-2.0-stratus-test &
# -d: in the foreground, logging to stderr (busybox 1.35's static acpid crashes
# when it logs to syslog, which it does as a daemon or with -f alone).
acpid -d -c /etc/acpi > /dev/null 2>&1 &
say "ready"
while true; do sleep 3600; done
"""

UDHCPC = r"""#!/bin/sh
# udhcpc's event script: address, MTU, routes (option 121 first), DNS.
say() { echo "stratus-test: $*" > /dev/console; }
case "$1" in
deconfig)
    ip -4 addr flush dev "$interface"
    ;;
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    if [ -n "$staticroutes" ]; then
        set -- $staticroutes
        while [ $# -ge 2 ]; do
            ip route replace "$1" via "$2" dev "$interface"
            shift 2
        done
    elif [ -n "$router" ]; then
        ip route replace default via "${router%% *}" dev "$interface"
    fi
    : > /etc/resolv.conf
    for server in $dns; do echo "nameserver $server" >> /etc/resolv.conf; done
    say "$interface lease $ip/$mask router ${router:-none} routes ${staticroutes:-none}"
    ;;
esac
exit 0
"""

# busybox acpid runs /etc/acpi/PWRF/00000080 when the power button is pressed.
POWEROFF = """#!/bin/sh
echo 'stratus-test: power button: powering off' > /dev/console
sync
poweroff -f
"""
SYSLINUX_CFG = """DEFAULT stratus
PROMPT 0
TIMEOUT 0
LABEL stratus
  KERNEL vmlinuz
  INITRD initrd
  APPEND console=tty0 console=ttyS0,115200 quiet
"""


def initramfs(kernel: DebianKernel) -> bytes:
    """The initramfs: busybox, the modules, /init and its helpers (gzip'd newc)."""
    modules = kernel.load_order(MODULES)
    files: list[Entry] = [(d, DIRECTORY, b"") for d in ("bin", "dev", "proc", "sys", "etc")]
    files += [(d, DIRECTORY, b"") for d in ("lib", "lib/modules", "etc/acpi", "etc/acpi/PWRF")]
    files.append(("bin/busybox", EXECUTABLE, BUSYBOX.read_bytes()))
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    # Symbolic links as busybox --install -s would make them, in the archive itself.
    files += [(f"bin/{a}", 0o120777, b"busybox") for a in applets if a != "busybox"]
    files += [(f"lib/modules/{m.name}", REGULAR, m.read_bytes()) for m in modules]
    files += [
        ("etc/modules", REGULAR, "".join(f"{m.name}\n" for m in modules).encode()),
        ("init", EXECUTABLE, INIT.encode()),
        ("etc/udhcpc.sh", EXECUTABLE, UDHCPC.encode()),
        ("etc/acpi/PWRF/00000080", EXECUTABLE, POWEROFF.encode()),
    ]
    return gzip.compress(newc(files), compresslevel=9, mtime=0)


def _run(argv: list[str]) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {result.stderr.strip()}")


def disk(kernel: DebianKernel, initrd: Path, target: Path) -> None:
    """A qcow2 disk: an unpartitioned FAT volume that syslinux boots."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "disk.raw"
        with raw.open("wb") as handle:
            handle.truncate(DISK_MIB << 20)
        _run(["mkfs.vfat", "-n", "STRATUSTEST", "-i", "5354524b", str(raw)])
        _run(["syslinux", "--install", str(raw)])
        config = Path(tmp) / "syslinux.cfg"
        config.write_text(SYSLINUX_CFG)
        for source, name in (
            (kernel.vmlinuz, "vmlinuz"),
            (initrd, "initrd"),
            (config, "syslinux.cfg"),
        ):
            _run(["mcopy", "-i", str(raw), str(source), f"::{name}"])
        _run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(target)])


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(output: Path, package: str = PACKAGE) -> dict[str, object]:
    """Build (or find already built) the image in ``output``; its description."""
    kernel = DebianKernel.fetch(package)
    recipe = hashlib.sha256(Path(__file__).read_bytes() + kernel.version.encode()).hexdigest()
    manifest = output / "stratus-test.json"
    if manifest.exists():
        described = json.loads(manifest.read_text())
        if described.get("recipe") == recipe:
            return described  # type: ignore[no-any-return]
    output.mkdir(parents=True, exist_ok=True)
    vmlinuz, initrd, qcow2 = (
        output / "stratus-test-vmlinuz",
        output / "stratus-test-initrd",
        output / "stratus-test.qcow2",
    )
    shutil.copyfile(kernel.vmlinuz, vmlinuz)
    initrd.write_bytes(initramfs(kernel))
    disk(kernel, initrd, qcow2)
    described = {
        "recipe": recipe,
        "kernel": kernel.version,
        "files": {
            p.name: {"size": p.stat().st_size, "sha256": _sha256(p)}
            for p in (qcow2, vmlinuz, initrd)
        },
    }
    manifest.write_text(json.dumps(described, indent=2) + "\n")
    return described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--output", type=Path, default=OUTPUT, help=f"default: {OUTPUT}")
    parser.add_argument("--kernel-package", default=PACKAGE, help=f"default: {PACKAGE}")
    args = parser.parse_args(argv)
    print(json.dumps(build(args.output, args.kernel_package), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
