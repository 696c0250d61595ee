"""A private libvirtd for tests, started without systemd.

``start_libvirtd()`` runs Debian's own ``/usr/sbin/libvirtd`` as a plain
child process that owns nothing of the machine's libvirt: its configuration,
its domains, its sockets, its logs and QEMU's state all live in a temporary
directory (``/tmp/stratus-libvirtd-XXXXXXXX``) and go with it. Clients reach it
at ``qemu:///system?socket=<root>/sock/libvirt-sock`` (``Libvirtd.uri``). By
default it also runs in a network namespace of its own
(``stratus-lv-XXXXXXXX``, ``Libvirtd.netns``): the guests' taps appear there,
beside the bridges and the dnsmasq a test makes there with
``Libvirtd.netns_run``, and nothing of the machine's own network is touched.

What was found on Debian 12 (libvirt 9.0.0, QEMU 7.2), as root, without
systemd as PID 1:

- Debian 12 ships only the monolithic ``libvirtd`` (package
  libvirt-daemon); the modular daemons (``virtqemud``...) are not packaged.
- Running as root, libvirtd is "privileged": the QEMU driver's directories
  are fixed at build time (``/etc/libvirt``, ``/run/libvirt``,
  ``/var/lib/libvirt``, ``/var/cache/libvirt``, ``/var/log/libvirt``).
  ``--config`` moves libvirtd.conf (and with ``unix_sock_dir`` the sockets)
  but not qemu.conf nor the domains' state; the ``XDG_*`` variables only
  matter to an unprivileged (``qemu:///session``) daemon, whose guests get
  no taps of their own, unlike the compute hosts'. So libvirtd runs in a
  mount namespace of its own
  (``unshare --mount --propagation private``) in which directories of the
  temporary root are bind-mounted over those five. The machine's own
  directories are never written; a libvirtd of the machine, if one runs,
  is not disturbed, and several private ones (pytest-xdist workers, CI)
  run side by side. A missing mount point (/run/libvirt after a reboot
  without systemd-tmpfiles) is made, empty, as the packages would. QEMU,
  libvirtd's child, sees the same mounts. In a network namespace the
  command is ``ip netns exec <netns> unshare ...``
  (``ip netns exec`` makes a mount namespace of its own first, for the
  namespace's /sys; the second one nests in it without trouble).
- The QEMU driver refuses to start (``Failed to parse user 'libvirt-qemu'``)
  until the ``libvirt-qemu`` user exists, even when qemu.conf runs guests as
  root: Debian's libvirt-daemon-system creates it in its postinst
  (scripts/bootstrap.sh installs it; nothing of it runs here).
- qemu.conf: ``user``/``group = "root"`` and ``dynamic_ownership = 0`` (no
  chown of the tests' files), ``security_driver = "none"``,
  ``cgroup_controllers = [ ]`` (no cgroups of libvirt's making in the
  machine's hierarchy, where nothing would clean them after a crash; in
  an nspawn lab host the v1 controllers are read-only anyway), and
  ``stdio_handler = "file"``: the default ("logd") needs a virtlogd
  daemon, which systemd would start on demand. QEMU's own log is then
  ``<root>/log/qemu/<domain>.log`` (``Libvirtd.qemu_log``).
- Harmless errors in ``libvirtd.log``: no system D-Bus (firewalld support
  off), no DMI data and ``dmidecode`` failing (no /dev/mem in this VM), and
  "At least one cgroup controller is required" when a guest starts.
- libvirtd answers within a tenth of a second; the first call that needs
  QEMU's capabilities (the first define) probes ``qemu-system-x86_64``, about
  4 s on this shared two-core machine. libvirt keeps the result in
  ``/var/cache/libvirt/qemu/capabilities`` and checks it against the
  binaries' and its own timestamps and versions before use, so the helper
  keeps a copy in ``/var/cache/stratus-lab/libvirt-capabilities`` (copied in
  before start, back after stop): later defines take milliseconds.
  ``start_libvirtd`` returns once a connection succeeds.
- Guests are QEMU processes that outlive libvirtd. ``stop()`` destroys and
  undefines every domain of the daemon (all of them are the tests': the
  daemon is private), stops libvirtd, then kills any QEMU left from its pid
  files (a crashed daemon), deletes the network namespace and removes the
  root. It is idempotent and runs from the fixtures' ``finally``.

Interface (kept stable; the compute tests and later the compute agent's
tests build on it):

- ``missing_requirements() -> str | None``: why no libvirtd can run here
  (what to install), or None.
- ``start_libvirtd(timeout=60, netns=True) -> Libvirtd``: started and
  answering, in a network namespace of its own unless ``netns=False``;
  ``RuntimeError`` with the daemon's log tail when it does not come up (what
  it started is stopped).
- ``Libvirtd``: ``root``, ``uri``, ``socket``, ``netns`` (its name, or
  None), ``netns_run(argv, check=True)`` (a command in it), ``workdir`` (a
  scratch directory for the tests' disks and console logs, removed with
  the rest),
  ``connect()`` (a read-write ``libvirt.virConnect``; close it),
  ``cleanup_domains() -> list[str]`` (destroys and undefines every domain,
  returns their names), ``qemu_log(name)``, ``log_tail(lines)`` and
  ``stop()``.

The fixtures ``libvirtd`` (session) and ``libvirt_domains`` (per test:
every domain is removed after the test) live in ``tests/compute/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LIBVIRTD = Path("/usr/sbin/libvirtd")
QEMU_DRIVER_GLOB = "/usr/lib/*/libvirt/connection-driver/libvirt_driver_qemu.so"
EMULATOR = "qemu-system-x86_64"
QEMU_USER = "libvirt-qemu"
# The privileged daemon's fixed directories, by the name of the private one
# mounted over each.
OVERLAYS = {
    "etc": "/etc/libvirt",
    "run": "/run/libvirt",
    "lib": "/var/lib/libvirt",
    "cache": "/var/cache/libvirt",
    "log": "/var/log/libvirt",
}
CAPABILITIES = Path("cache/qemu/capabilities")
CAPABILITIES_KEEP = Path("/var/cache/stratus-lab/libvirt-capabilities")

LIBVIRTD_CONF = """\
# A private libvirtd for tests (tests/libvirtd.py).
unix_sock_dir = "{root}/sock"
unix_sock_rw_perms = "0700"
unix_sock_ro_perms = "0700"
unix_sock_admin_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:{root}/libvirtd.log"
"""

QEMU_CONF = """\
# Guests run as root, unconfined, outside cgroups; QEMU logs to files.
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
"""

# Runs inside the new mount namespace: $1 is the private root.
START = (
    "set -e\n"
    + "".join(f'mkdir -p {to}\nmount --bind "$1/{name}" {to}\n' for name, to in OVERLAYS.items())
    + 'exec "$2" --config "$1/libvirtd.conf" --pid-file "$1/libvirtd.pid"\n'
)


def _binding() -> Any:
    import libvirt

    # Without a handler libvirt prints every error on stderr as well.
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)
    return libvirt


def missing_requirements() -> str | None:
    """Why a private libvirtd cannot run on this machine, or None when it can."""
    if os.geteuid() != 0:
        return "a private libvirtd needs root (bind mounts, QEMU guests as root)"
    if not LIBVIRTD.exists():
        return f"{LIBVIRTD} is missing (Debian package libvirt-daemon)"
    if not any(Path("/").glob(QEMU_DRIVER_GLOB.lstrip("/"))):
        return "libvirt's QEMU driver is missing (Debian package libvirt-daemon-driver-qemu)"
    if shutil.which(EMULATOR) is None:
        return f"{EMULATOR} is missing (Debian package qemu-system-x86)"
    try:
        pwd.getpwnam(QEMU_USER)
    except KeyError:
        return (
            f"the {QEMU_USER} user does not exist: libvirtd's QEMU driver will not start "
            "without it (Debian package libvirt-daemon-system creates it)"
        )
    if shutil.which("unshare") is None:
        return "unshare is missing (Debian package util-linux)"
    if shutil.which("ip") is None:
        return "ip is missing (Debian package iproute2)"
    try:
        _binding()
    except ImportError:
        return (
            "the libvirt Python binding is missing from this Python: install libvirt-python "
            '(scripts/bootstrap.sh installs the extra "compute"; it builds with libvirt-dev '
            "and pkg-config)"
        )
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot make a mount namespace: {probe.stderr.strip()}"
    return None


@dataclass
class Libvirtd:
    """A running private libvirtd (see the module's docstring)."""

    root: Path
    netns: str | None = None
    process: subprocess.Popen[bytes] | None = None
    stopped: bool = False
    removed_domains: list[str] = field(default_factory=list)

    @property
    def socket(self) -> Path:
        return self.root / "sock" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.socket}"

    @property
    def workdir(self) -> Path:
        return self.root / "work"

    def netns_run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a command in the daemon's network namespace (or the machine's)."""
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, check=check, timeout=60
        )

    @contextlib.contextmanager
    def dhcp_bridge(self, bridge: str, gateway: str, mac: str, address: str) -> Any:
        """A bridge in the daemon's namespace with ``gateway``/24 and a
        dnsmasq that gives ``mac`` its ``address`` at once (fixed, as the
        network agent's dnsmasq does); both removed at the end."""
        for command in (
            f"ip link add {bridge} type bridge forward_delay 0",
            f"ip addr add {gateway}/24 dev {bridge}",
            f"ip link set {bridge} up",
        ):
            self.netns_run(command.split())
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        dnsmasq = subprocess.Popen(
            [*prefix,
             "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
             f"--interface={bridge}", "--bind-interfaces", "--dhcp-authoritative",
             f"--dhcp-range={gateway},static,255.255.255.0", f"--dhcp-host={mac},{address}",
             f"--dhcp-leasefile={self.workdir / f'{bridge}.leases'}", "--pid-file="],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            yield dnsmasq
        finally:
            dnsmasq.kill()
            dnsmasq.communicate(timeout=10)
            self.netns_run(["ip", "link", "del", bridge], check=False)

    def connect(self) -> Any:
        return _binding().open(self.uri)

    def qemu_log(self, name: str) -> str:
        path = self.root / "log" / "qemu" / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        parts = []
        for name in ("libvirtd.out", "libvirtd.log"):
            path = self.root / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(parts)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def cleanup_domains(self) -> list[str]:
        """Destroy and undefine every domain of the daemon; their names."""
        if not self.alive():
            return []
        libvirt = _binding()
        flags = (
            libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
            | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
            | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        )
        names = []
        conn = libvirt.open(self.uri)
        try:
            for domain in conn.listAllDomains():
                names.append(domain.name())
                with contextlib.suppress(libvirt.libvirtError):
                    if domain.isActive():
                        domain.destroy()
                with contextlib.suppress(libvirt.libvirtError):
                    if domain.isPersistent():
                        domain.undefineFlags(flags)
        finally:
            conn.close()
        self.removed_domains.extend(names)
        return names

    def stop(self) -> None:
        """Remove every domain, stop libvirtd and QEMU, delete the root. Idempotent."""
        if self.stopped:
            return
        self.stopped = True
        try:
            with contextlib.suppress(Exception):
                self.cleanup_domains()
            if self.process is not None and self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(10)
            self._kill_leftover_qemu()
            self._keep_capabilities()
        finally:
            if self.netns:
                subprocess.run(["ip", "netns", "del", self.netns], capture_output=True, check=False)
            shutil.rmtree(self.root, ignore_errors=True)

    def _kill_leftover_qemu(self) -> None:
        for pidfile in (self.root / "run" / "qemu").glob("*.pid"):
            with contextlib.suppress(ValueError, OSError):
                pid = int(pidfile.read_text().strip())
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
                if b"qemu" in cmdline.split(b"\0", 1)[0]:
                    os.kill(pid, signal.SIGKILL)
                    for _ in range(50):
                        if not Path(f"/proc/{pid}").exists():
                            break
                        time.sleep(0.1)

    def _keep_capabilities(self) -> None:
        source = self.root / CAPABILITIES
        if not source.is_dir():
            return
        with contextlib.suppress(OSError):
            CAPABILITIES_KEEP.mkdir(parents=True, exist_ok=True)
            for path in source.glob("*.xml"):
                partial = CAPABILITIES_KEEP / f".{path.name}.{os.getpid()}"
                shutil.copyfile(path, partial)
                partial.replace(CAPABILITIES_KEEP / path.name)


def _prepare(root: Path) -> None:
    for name in (*OVERLAYS, "sock", "work"):
        (root / name).mkdir()
    (root / "libvirtd.conf").write_text(LIBVIRTD_CONF.format(root=root))
    (root / "etc" / "qemu.conf").write_text(QEMU_CONF)
    cache = root / CAPABILITIES
    cache.mkdir(parents=True)
    if CAPABILITIES_KEEP.is_dir():
        for path in CAPABILITIES_KEEP.glob("*.xml"):
            with contextlib.suppress(OSError):
                shutil.copyfile(path, cache / path.name)


def start_libvirtd(timeout: float = 60, netns: bool = True) -> Libvirtd:
    """Start a private libvirtd and wait until it answers (see the docstring)."""
    libvirt = _binding()
    root = Path(tempfile.mkdtemp(prefix="stratus-libvirtd-"))
    daemon = Libvirtd(root)
    try:
        _prepare(root)
        prefix: list[str] = []
        if netns:
            name = f"stratus-lv-{root.name.rsplit('-', 1)[-1].lower()}"
            subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True, check=True)
            daemon.netns = name
            daemon.netns_run(["ip", "link", "set", "lo", "up"])
            prefix = ["ip", "netns", "exec", name]
        with (root / "libvirtd.out").open("wb") as out:
            daemon.process = subprocess.Popen(
                [*prefix, "unshare", "--mount", "--propagation", "private",
                 "sh", "-c", START, "sh", str(root), str(LIBVIRTD)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if daemon.process.poll() is not None:
                raise RuntimeError(
                    f"libvirtd exited with status {daemon.process.returncode}:\n"
                    + daemon.log_tail()
                )
            if daemon.socket.exists():
                try:
                    conn = libvirt.open(daemon.uri)
                except libvirt.libvirtError:
                    pass
                else:
                    conn.close()
                    return daemon
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"libvirtd did not answer on {daemon.socket} within {timeout:.0f} s:\n"
                    + daemon.log_tail()
                )
            time.sleep(0.1)
    except BaseException:
        daemon.stop()
        raise
