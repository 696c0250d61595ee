"""Run a command on a stock Debian kernel: a QEMU guest whose root is this machine's.

Some of what Stratus drives (VLAN sub-interfaces, GRE and gretap tunnels)
needs kernel modules that the test machines' own kernel lacks. Those tests
are not faked: they run again, unchanged, inside a QEMU guest that boots
Debian's ``linux-image-amd64`` and sees this machine's root filesystem,
read-only, over virtio-9p. The guest therefore has the same Python, the
same virtualenv, the same checkout and the same tools (iproute2, dnsmasq,
dhclient, nft) as the machine; only the kernel differs.

How the guest is made:

- ``stock_kernel()`` fetches ``linux-image-amd64`` once from the machine's
  own apt sources into ``/var/cache/stratus-lab/kernel``
  (``scripts/debian_kernel.py``).
- ``initramfs()`` builds a small initramfs holding busybox-static, the
  modules that reach the root (virtio PCI, 9p, overlayfs) and an ``/init``
  that loads them, mounts this machine's ``/`` over 9p as the
  lower layer of an overlay whose upper layer is a tmpfs (the guest may
  write anywhere; nothing reaches the machine), with an empty ``/run``;
  it mounts the kernel's own modules at
  ``/lib/modules/<version>`` (so ``modprobe``, and the kernel's on-demand
  loading, find them) and a second, writable 9p share at the results
  directory, then ``switch_root``s into that root to run the command.
- ``run_in_guest`` boots it (QEMU's TCG software emulation unless
  ``STRATUS_GUEST_ACCEL=kvm``), waits for the command and returns its exit
  status and output. The guest powers itself off when the command ends; the QEMU
  process is killed in any case (timeout, test failure).

The command's working directory, environment and output files live in the
results directory, which the guest sees at the same path as the machine.
"""

from __future__ import annotations

import gzip
import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from scripts.debian_kernel import DIRECTORY, EXECUTABLE, REGULAR, DebianKernel, Entry, newc

BUSYBOX = Path("/bin/busybox")
# What the initramfs loads to reach the root: virtio over PCI, 9p and overlayfs.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
# Fresh, empty in the guest (as on a booted system), not the machine's. Not
# /tmp: a checkout (and its virtualenv) may live there, as CI's clones do.
EMPTY = ("/run",)


def stock_kernel() -> DebianKernel:
    """Debian's generic kernel (``linux-image-amd64``), fetched once."""
    return DebianKernel.fetch("linux-image-amd64")


def initramfs(kernel: DebianKernel, target: Path) -> Path:
    """Write the initramfs (see the module's docstring) to ``target``; return it."""
    modules = kernel.load_order(BOOT_MODULES)
    mount_empty = "\n".join(f"mount -t tmpfs -o mode=1777 tmpfs /newroot{d}" for d in EMPTY)
    init = f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in {" ".join(f"/modules/{m.name}" for m in modules)}; do insmod "$m" || exit 1; done
set -- $(cat /proc/cmdline)
for arg; do case "$arg" in stratus.results=*) results=${{arg#stratus.results=}};; esac; done
p9=trans=virtio,version=9p2000.L,msize=262144
mkdir -p /lower /rw /newroot
mount -t 9p -o $p9,ro,cache=loose hostroot /lower
mount -t tmpfs tmpfs /rw
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot
{mount_empty}
mount -t proc proc /newroot/proc
mount -t sysfs sysfs /newroot/sys
mount -t devtmpfs devtmpfs /newroot/dev
mkdir -p /newroot/dev/pts /newroot/dev/shm
mount -t devpts devpts /newroot/dev/pts
mount -t tmpfs tmpfs /newroot/dev/shm
mkdir -p /newroot/lib/modules/{kernel.version}
mount -t 9p -o $p9,ro modules /newroot/lib/modules/{kernel.version}
mkdir -p "/newroot$results"
mount -t 9p -o $p9 results "/newroot$results"
exec switch_root /newroot /bin/sh "$results/stage2.sh"
"""
    files: list[Entry] = [
        ("bin", DIRECTORY, b""),
        ("dev", DIRECTORY, b""),
        ("proc", DIRECTORY, b""),
        ("sys", DIRECTORY, b""),
        ("modules", DIRECTORY, b""),
        ("bin/busybox", EXECUTABLE, BUSYBOX.read_bytes()),
        ("init", EXECUTABLE, init.encode()),
    ]
    files += [(f"modules/{m.name}", REGULAR, m.read_bytes()) for m in modules]
    target.write_bytes(gzip.compress(newc(files), compresslevel=1))
    return target


def accelerator() -> str:
    """QEMU's accelerator for the guest: ``STRATUS_GUEST_ACCEL``, ``tcg`` by default.

    The test machines' /dev/kvm cannot run a stock kernel (QEMU aborts on a
    model-specific register with ``-cpu host`` and the guest never prints a
    line with ``qemu64``), so software emulation is the default and
    ``STRATUS_GUEST_ACCEL=kvm`` is for machines whose KVM can.
    """
    accel = os.environ.get("STRATUS_GUEST_ACCEL", "tcg")
    if accel not in ("tcg", "kvm"):
        raise ValueError(f"STRATUS_GUEST_ACCEL must be tcg or kvm, not {accel!r}")
    return accel


@dataclass
class GuestResult:
    returncode: int | None  # None: the guest ended without the command finishing
    output: str  # the command's stdout and stderr
    console: str  # the guest's serial console (kernel messages, init errors)
    accel: str
    seconds: float


def run_in_guest(
    kernel: DebianKernel,
    command: str,
    results: Path,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 600,
    memory_mb: int = 2048,
    cpus: int = 2,
) -> GuestResult:
    """Boot ``kernel`` and run ``command`` (a shell command line) as root in it.

    ``results`` (made here) is shared read-write with the guest at the same
    path; the command may write files there for the caller.
    """
    results.mkdir(parents=True, exist_ok=True)
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in (env or {}).items())
    (results / "stage2.sh").write_text(
        "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
        "export HOME=/root LANG=C.UTF-8\n"
        f"{exports}"
        "ip link set lo up\n"
        f"cd {shlex.quote(str(cwd or results))}\n"
        f"sh -c {shlex.quote(command)} > {results}/output.log 2>&1\n"
        f"echo $? > {results}/returncode\n"
        "sync\n"
        "echo o > /proc/sysrq-trigger\n"
        "sleep 30\n"
    )
    initrd = initramfs(kernel, results / "initrd.gz")
    accel = accelerator()
    cpu = "host" if accel == "kvm" else "max"
    console = results / "console.log"
    share = "security_model=none"
    argv = [
        "qemu-system-x86_64", "-accel", accel, "-cpu", cpu, "-m", str(memory_mb), "-smp", str(cpus),
        "-nodefaults", "-display", "none", "-no-reboot", "-nic", "none",
        "-serial", f"file:{console}",
        "-kernel", str(kernel.vmlinuz), "-initrd", str(initrd),
        "-append", f"console=ttyS0 panic=-1 quiet stratus.results={results}",
        "-virtfs", f"local,path=/,mount_tag=hostroot,{share},readonly=on,multidevs=remap",
        "-virtfs", f"local,path={kernel.modules},mount_tag=modules,{share},readonly=on",
        "-virtfs", f"local,path={results},mount_tag=results,{share}",
    ]  # fmt: skip
    started = time.monotonic()
    qemu = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _, stderr = qemu.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stderr = f"timed out after {timeout} s"
    finally:
        if qemu.poll() is None:
            qemu.kill()
            qemu.wait()
    rc_file = results / "returncode"
    output = results / "output.log"
    return GuestResult(
        returncode=int(rc_file.read_text()) if rc_file.exists() else None,
        output=output.read_text(errors="replace") if output.exists() else "",
        console=(console.read_text(errors="replace") if console.exists() else "") + stderr,
        accel=accel,
        seconds=time.monotonic() - started,
    )
