"""The libvirt driver: servers as QEMU/KVM guests of the host's libvirtd.

A server is the libvirt domain ``instance-<uuid>`` whose UUID is the
server's, and the directory ``<instances_path>/<server id>/`` with what was
made for it:

- ``disk``: the root disk, a qcow2 overlay on the image cached in
  ``<instances_path>/_base/`` (``image_cache``), grown to the flavor's
  ``disk`` when that is larger than the image (never shrunk; a flavor disk
  of 0 keeps the image's size). An ISO image is instead attached as a
  CD-ROM that boots first, beside a blank ``disk`` of the flavor's size;
  an AMI boots its AKI kernel and ARI ramdisk directly (``kernel``,
  ``ramdisk``, copied from the cache) with ``root=/dev/vda console=ttyS0``
  (or the image's ``os_command_line``);
- ``disk.local`` (the flavor's ephemeral GiB, ext4 labelled ``ephemeral0``)
  and ``disk.swap`` (its swap MiB, a swap area), raw and sparse;
- ``disk.config``: the config drive when the server asks for one, an ISO
  9660 ``config-2`` image (``stratus.metadata.config_drive``) of what
  ``stratus.compute.instance_metadata`` says of the server, attached as a
  read-only CD-ROM;
- ``console.log``: the serial console, appended to across boots, whose end
  is ``console_tail``.

Every disk has a ``<serial>`` naming its role (``root``, ``ephemeral0``,
``swap``, ``config-2``, ``image``); the XML is ``domain_xml``'s. NICs are
taps ``tap<port[:11]>`` on the bridges ``brq<network[:11]>`` of the network
agent; a missing bridge is made first (``host_network``, injectable as
``ensure_bridge`` for tests whose libvirtd runs in another namespace).

Operations are idempotent and say what went wrong in a ``DriverError``:

- ``spawn`` builds and starts; a domain that already exists is only
  started if it is not running (a spawn whose event was lost). A spawn
  that fails removes the domain and the directory it made (the base image
  stays cached).
- ``destroy`` destroys and undefines the domain (with its managed save
  image, snapshot and checkpoint metadata and NVRAM) and deletes the
  directory; what is already gone is no error. libvirt removes the taps.
- ``power_off`` presses the ACPI power button (again every 10 s) and waits
  up to ``shutdown_timeout`` seconds for the guest to power off, then
  destroys it; a paused guest cannot hear the button and is destroyed.
- ``reboot``: hard is destroy and start (a managed save image is
  discarded: a fresh boot). Soft is, as in Nova, the power button, a wait
  for the guest to power off, and a start: unlike ``virDomainReboot``, that
  shows that the guest really obeyed, and falls back to a hard reboot when
  it did not within ``shutdown_timeout``.
- ``pause``/``unpause`` suspend and resume the vCPUs; ``suspend`` saves
  the guest's memory to libvirt's managed save image and stops it;
  ``resume`` starts it again, which restores that image.
- ``power_on``, ``reboot`` and ``resume`` make the bridges again first (a
  host that rebooted has lost those the network agent has not remade yet).
- ``prune_image_cache`` removes the cached images no disk uses any more,
  once unused for ``[compute_agent] image_cache_min_age`` (the agent calls
  it every ``image_cache_interval``).

``power_states`` reports the domains named ``instance-*`` only, by UUID;
a shut-off domain with a managed save image is suspended, one that
crashed is crashed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import libvirt

from stratus.compute import instance_metadata, states
from stratus.compute.agent import domain_xml, host_network, settings
from stratus.compute.agent.apis import ImageApi, NetworkApi, SubnetSource, service_apis
from stratus.compute.agent.domain_xml import Disk, DomainSpec, Interface, KernelBoot
from stratus.compute.agent.driver import DriverError, HostInfo
from stratus.compute.agent.image_cache import (
    GIB,
    CachedImage,
    ImageCache,
    ImageSource,
    backing_file,
    create_blank,
    create_overlay,
    image_info,
    qemu_img,
)
from stratus.metadata import config_drive
from stratus.metadata.content import BlockDevices
from stratus.network.agent.state import bridge_name, tap_name

log = logging.getLogger("stratus.compute.agent")

# Without a handler libvirt also prints every error on stderr.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

PREFIX = "instance-"
SERVER_ID_RE = re.compile(r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$")
PRESS_INTERVAL = 10.0  # seconds between two presses of the power button
POLL = 0.25
AMI_CMDLINE = "root=/dev/vda console=ttyS0"
RESIZE_BACKUP = "disk.resize-backup"  # the root disk before a resize, until confirmed
UNDEFINE_FLAGS = (
    libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
)
GONE = (libvirt.VIR_ERR_NO_DOMAIN,)
NOT_RUNNING = (libvirt.VIR_ERR_OPERATION_INVALID, libvirt.VIR_ERR_NO_DOMAIN)

# libvirt's domain states -> Nova's power states (as Nova maps them).
POWER = {
    libvirt.VIR_DOMAIN_NOSTATE: states.NOSTATE,
    libvirt.VIR_DOMAIN_RUNNING: states.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: states.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: states.PAUSED_POWER,
    libvirt.VIR_DOMAIN_SHUTDOWN: states.SHUTDOWN,
    libvirt.VIR_DOMAIN_SHUTOFF: states.SHUTDOWN,
    libvirt.VIR_DOMAIN_CRASHED: states.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: states.SUSPENDED_POWER,
}

BridgeMaker = Callable[[str, int | None], object]


def _code(exc: libvirt.libvirtError) -> int:
    return int(exc.get_error_code() or 0)


def _message(exc: libvirt.libvirtError) -> str:
    return str(exc.get_error_message() or exc)


@contextlib.contextmanager
def _errors(what: str) -> Iterator[None]:
    """libvirt's and the system's errors as ``DriverError``s saying ``what`` failed."""
    try:
        yield
    except libvirt.libvirtError as exc:
        raise DriverError(f"{what}: {_message(exc)}") from None
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        raise DriverError(f"{what}: {exc.strerror or exc}{where}") from None


def _run(argv: list[str], what: str) -> None:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    except FileNotFoundError:
        raise DriverError(f"{what}: {argv[0]} is not installed on the host.") from None
    if result.returncode != 0:
        raise DriverError(f"{what}: {result.stderr.strip() or result.returncode}")


def _server_id(server: dict[str, Any]) -> str:
    return _checked_id(str(server.get("id", "")))


def _checked_id(server_id: str) -> str:
    if not SERVER_ID_RE.match(server_id):
        raise DriverError(f"{server_id!r} is not a server ID.")
    return server_id


class LibvirtDriver:
    """``Driver`` of real guests through libvirt (see the module)."""

    def __init__(
        self,
        host: str,
        *,
        uri: str,
        instances_path: Path,
        virt_type: str,
        images: ImageSource,
        subnets: SubnetSource | None = None,
        ensure_bridge: BridgeMaker = host_network.ensure_bridge,
        shutdown_timeout: float = 60.0,
        cpu_mode: str = "auto",
    ):
        if virt_type not in domain_xml.VIRT_TYPES:
            raise ValueError(f"virt_type {virt_type!r} is not one of {domain_xml.VIRT_TYPES}")
        self.host = host
        self.uri = uri
        self.instances_path = Path(instances_path)
        self.virt_type = virt_type
        self.cache = ImageCache(self.instances_path / "_base", images)
        self.subnets = subnets
        self.ensure_bridge = ensure_bridge
        self.shutdown_timeout = shutdown_timeout
        if cpu_mode == "auto":
            self.cpu_mode: str | None = "host-model" if virt_type == "kvm" else None
        else:
            self.cpu_mode = None if cpu_mode == "none" else cpu_mode
        self._conn: libvirt.virConnect | None = None
        self._conn_lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._disk_cache: str | None = None

    @classmethod
    def from_config(
        cls,
        config: Any,
        host: str,
        images: ImageSource | None = None,
        subnets: SubnetSource | None = None,
    ) -> LibvirtDriver:
        """The driver of ``[compute_agent]``: images and subnets from the APIs."""
        options = config.section(settings.SECTION)
        if images is None or subnets is None:
            image_client, network_client = service_apis(config)
            images, subnets = ImageApi(image_client), NetworkApi(network_client)
        return cls(
            host,
            uri=options.libvirt_uri,
            instances_path=Path(options.instances_path),
            virt_type=options.virt_type,
            images=images,
            subnets=subnets,
            shutdown_timeout=options.shutdown_timeout,
            cpu_mode=options.cpu_mode,
        )

    # --- plumbing ----------------------------------------------------------------

    def _connection(self) -> libvirt.virConnect:
        """The connection to libvirtd, opened again when it was lost."""
        with self._conn_lock:
            if self._conn is not None:
                try:
                    if self._conn.isAlive():
                        return self._conn
                except libvirt.libvirtError:
                    pass
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.close()
                self._conn = None
            try:
                self._conn = libvirt.open(self.uri)
            except libvirt.libvirtError as exc:
                raise DriverError(
                    f"The hypervisor of host {self.host} cannot be reached: {_message(exc)}"
                ) from None
            return self._conn

    def close(self) -> None:
        with self._conn_lock:
            if self._conn is not None:
                with contextlib.suppress(libvirt.libvirtError):
                    self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def _locked(self, server_id: str) -> Iterator[None]:
        """One operation at a time on a server."""
        with self._locks_lock:
            lock = self._locks.setdefault(server_id, threading.Lock())
        with lock:
            yield

    def _lookup(self, server_id: str) -> libvirt.virDomain | None:
        """The server's domain, or None when there is none."""
        conn = self._connection()
        try:
            domain = conn.lookupByUUIDString(server_id)
        except libvirt.libvirtError as exc:
            if _code(exc) in GONE:
                return None
            raise DriverError(f"The domain of server {server_id}: {_message(exc)}") from None
        if not domain.name().startswith(PREFIX):
            raise DriverError(f"The domain with UUID {server_id} is not a server's.")
        return domain

    def _domain(self, server_id: str) -> libvirt.virDomain:
        domain = self._lookup(server_id)
        if domain is None:
            raise DriverError(f"Server {server_id} has no domain on host {self.host}.")
        return domain

    def _directory(self, server_id: str) -> Path:
        return self.instances_path / _checked_id(server_id)

    def _cache_mode(self) -> str:
        """``none`` (O_DIRECT, the safe choice) where the filesystem allows it."""
        if self._disk_cache is None:
            self.instances_path.mkdir(parents=True, exist_ok=True)
            probe = self.instances_path / f".direct-io-probe.{os.getpid()}"
            try:
                fd = os.open(probe, os.O_CREAT | os.O_WRONLY | getattr(os, "O_DIRECT", 0), 0o600)
                os.close(fd)
                self._disk_cache = "none"
            except OSError:
                self._disk_cache = "writeback"  # tmpfs and others without O_DIRECT
            finally:
                probe.unlink(missing_ok=True)
        return self._disk_cache

    # --- host --------------------------------------------------------------------

    def host_info(self) -> HostInfo:
        conn = self._connection()
        with _errors(f"The hypervisor of host {self.host} cannot be read"):
            info = conn.getInfo()
            version = conn.getVersion()
            self.instances_path.mkdir(parents=True, exist_ok=True)
            disk = os.statvfs(self.instances_path)
        return HostInfo(
            hypervisor_hostname=self.host,
            hypervisor_type="QEMU",
            hypervisor_version=int(version),
            vcpus=int(info[2]),
            memory_mb=int(info[1]),
            local_gb=disk.f_blocks * disk.f_frsize // GIB,
        )

    def power_states(self) -> dict[str, int]:
        conn = self._connection()
        with _errors(f"The domains of host {self.host} cannot be listed"):
            domains = conn.listAllDomains()
        powers = {}
        for domain in domains:
            try:
                if not domain.name().startswith(PREFIX):
                    continue
                powers[domain.UUIDString()] = self._power(domain)
            except libvirt.libvirtError:
                continue  # gone between the listing and the question
        return powers

    # --- the image cache ---------------------------------------------------------

    def prune_image_cache(self, min_age: float) -> list[str]:
        """Remove the cached images no disk of the host uses and nothing has
        used for ``min_age`` seconds (``ImageCache.prune``); the IDs removed.
        What is in use is read from the disks themselves: the files every
        domain names (an ISO boots from the cache) and the backing file of
        every qcow2 file in the servers' directories, those of servers being
        resized or rebuilt included. A host whose domains cannot be listed
        prunes nothing (DriverError)."""
        base = self.cache.base_dir
        files: list[Path] = []
        conn = self._connection()
        with _errors(f"The domains of host {self.host} cannot be listed"):
            for domain in conn.listAllDomains():
                try:
                    tree = ET.fromstring(domain.XMLDesc(0))  # noqa: S314 - libvirt's own
                except libvirt.libvirtError:
                    continue  # gone between the listing and the question
                files += [Path(s.get("file", "")) for s in tree.iterfind("devices/disk/source")]
        if self.instances_path.is_dir():
            for directory in self.instances_path.iterdir():
                if directory.is_dir() and directory != base:
                    files += [f for f in directory.iterdir() if f.is_file()]
        in_use = set()
        for path in files:
            for candidate in (path, backing_file(path)):
                if candidate is not None and candidate.parent == base:
                    in_use.add(candidate.name)
        return self.cache.prune(in_use, min_age)

    @staticmethod
    def _power(domain: libvirt.virDomain) -> int:
        state, reason = domain.state()
        if state == libvirt.VIR_DOMAIN_SHUTOFF:
            if domain.hasManagedSaveImage(0):
                return states.SUSPENDED_POWER
            if reason == libvirt.VIR_DOMAIN_SHUTOFF_CRASHED:
                return states.CRASHED
        return POWER.get(state, states.NOSTATE)

    # --- build -------------------------------------------------------------------

    def spawn(self, server: dict[str, Any]) -> None:
        server_id = _server_id(server)
        with self._locked(server_id):
            domain = self._lookup(server_id)
            if domain is not None:
                # Built before (the event was lost, or the agent restarted).
                self._plug(server)
                with _errors(f"Server {server_id} cannot be started"):
                    self._start(domain)
                return
            try:
                self._build(server)
            except BaseException:
                log.warning("spawn of %s failed: removing what it made", server_id)
                try:
                    self._remove(server_id)
                except DriverError as exc:
                    log.error("could not clean up after the spawn of %s: %s", server_id, exc)
                raise

    def _build(self, server: dict[str, Any], fresh: bool = True, start: bool = True) -> None:
        """Make the server's disks and domain, and start it (if ``start``).
        A ``fresh`` build starts from an empty directory; a rebuild keeps
        what is left in it (the console log, a preserved ephemeral disk)."""
        server_id = server["id"]
        flavor = server.get("flavor") or {}
        directory = self._directory(server_id)
        with _errors(f"The directory of server {server_id} cannot be made"):
            if fresh and directory.exists():
                shutil.rmtree(directory)  # what an interrupted spawn left
            directory.mkdir(parents=True, mode=0o755, exist_ok=not fresh)
        disks, kernel_boot, devices = self._disks(server, directory)
        if server.get("config_drive"):
            disks.append(self._config_drive(server, directory, devices))
        interfaces = self._plug(server)
        labels = {
            "name": str(server.get("name", "")),
            "project": str(server.get("project_id", "")),
            "flavor": str(flavor.get("name", "")),
            "image": str(server.get("image_id") or ""),
        }
        spec = DomainSpec(
            name=str(server.get("instance_name") or f"{PREFIX}{server_id}"),
            uuid=server_id,
            virt_type=self.virt_type,
            memory_mib=int(flavor.get("ram") or 0),
            vcpus=int(flavor.get("vcpus") or 0),
            console_log=str(directory / "console.log"),
            disks=tuple(disks),
            interfaces=tuple(interfaces),
            kernel_boot=kernel_boot,
            cpu_mode=self.cpu_mode,
            labels=labels,
        )
        if not spec.name.startswith(PREFIX):
            raise DriverError(f"The domain name {spec.name!r} does not start with {PREFIX}.")
        try:
            xml = domain_xml.build(spec)
        except domain_xml.DomainSpecError as exc:
            raise DriverError(f"Server {server_id} cannot be described to libvirt: {exc}") from None
        conn = self._connection()
        with _errors(f"The domain of server {server_id} cannot be defined"):
            domain = conn.defineXML(xml)
        if start:
            with _errors(f"Server {server_id} cannot be started"):
                domain.create()
        log.info("server %s built as %s", server_id, spec.name)

    def _disks(
        self, server: dict[str, Any], directory: Path
    ) -> tuple[list[Disk], KernelBoot | None, BlockDevices]:
        """The server's disks (made), its kernel boot, their names for the metadata."""
        flavor = server.get("flavor") or {}
        image_id = server.get("image_id")
        if not image_id:
            raise DriverError("This host boots servers from images only, not from volumes.")
        image = self.cache.get(str(image_id))
        cache = self._cache_mode()
        root_gb = int(flavor.get("disk") or 0)
        root = directory / "disk"
        disks: list[Disk] = []
        kernel_boot = None
        if image.disk_format == "iso":
            disks.append(Disk(str(image.path), "image", "raw", "cdrom", True, boot_order=1))
            if root_gb:
                create_blank(root, root_gb * GIB)
                disks.append(Disk(str(root), "root", cache=cache, boot_order=2))
        elif not image.is_disk:
            raise DriverError(
                f"Image {image_id} is a {image.disk_format} image (a kernel or ramdisk), "
                "not something a server boots from."
            )
        else:
            create_overlay(image, root, root_gb)
            disks.append(Disk(str(root), "root", cache=cache, boot_order=1))
            if image.disk_format == "ami":
                kernel_boot = self._kernel_boot(server, image, directory)
        names = [f"/dev/vd{chr(ord('a') + i)}" for i in range(8)]
        ephemeral: tuple[str, ...] = ()
        swap = None
        ephemeral_gb = int(flavor.get("ephemeral") or 0)
        if ephemeral_gb:
            path = directory / "disk.local"
            if not path.exists():  # a rebuild may have preserved it
                self._formatted(
                    path, ephemeral_gb * GIB, ["mkfs.ext4", "-q", "-F", "-L", "ephemeral0"]
                )
            disks.append(Disk(str(path), "ephemeral0", "raw", cache=cache))
            ephemeral = (names[sum(d.device == "disk" for d in disks) - 1],)
        swap_mb = int(flavor.get("swap") or 0)
        if swap_mb:
            path = directory / "disk.swap"
            self._formatted(path, swap_mb << 20, ["mkswap", "-L", "swap0"])
            disks.append(Disk(str(path), "swap", "raw", cache=cache))
            swap = names[sum(d.device == "disk" for d in disks) - 1]
        root_name = "/dev/vda" if any(d.serial == "root" for d in disks) else "/dev/sr0"
        return disks, kernel_boot, BlockDevices(root=root_name, ephemeral=ephemeral, swap=swap)

    @staticmethod
    def _formatted(path: Path, size: int, mkfs: list[str]) -> None:
        """A sparse raw disk of ``size`` bytes made into a filesystem or swap by ``mkfs``."""
        with _errors(f"The disk {path.name} cannot be made"), path.open("xb") as handle:
            handle.truncate(size)
        _run([*mkfs, str(path)], f"The disk {path.name} cannot be formatted")

    def _kernel_boot(
        self, server: dict[str, Any], image: CachedImage, directory: Path
    ) -> KernelBoot:
        """An AMI's kernel and ramdisk, from the cache into the server's directory."""
        flavor = server.get("flavor") or {}
        kernel_id = flavor.get("kernel_id") or image.properties.get("kernel_id")
        ramdisk_id = flavor.get("ramdisk_id") or image.properties.get("ramdisk_id")
        if not kernel_id:
            raise DriverError(
                f"Image {image.image_id} is an AMI without a kernel_id property: it needs an "
                "AKI kernel image to boot."
            )
        files = {"kernel": (str(kernel_id), "aki")}
        if ramdisk_id:
            files["ramdisk"] = (str(ramdisk_id), "ari")
        paths: dict[str, str] = {}
        for name, (part_id, wanted) in files.items():
            part = self.cache.get(part_id)
            if part.disk_format != wanted:
                raise DriverError(
                    f"The {name} of image {image.image_id}, image {part_id}, is a "
                    f"{part.disk_format} image, not {wanted}."
                )
            # A copy, not a link: libvirt may chown what the domain boots.
            target = directory / name
            with _errors(f"The {name} of server {server['id']} cannot be copied"):
                shutil.copyfile(part.path, target)
            paths[name] = str(target)
        cmdline = str(image.properties.get("os_command_line") or AMI_CMDLINE)
        return KernelBoot(paths["kernel"], paths.get("ramdisk"), cmdline)

    def _config_drive(self, server: dict[str, Any], directory: Path, devices: BlockDevices) -> Disk:
        """The server's config drive (``disk.config``), as a read-only CD-ROM."""
        document = self._with_subnets(server)
        try:
            md = instance_metadata.from_document(document)
            md = dataclasses.replace(md, block_devices=devices)
        except (KeyError, TypeError, ValueError) as exc:
            raise DriverError(
                f"The config drive of server {server['id']} cannot be described: {exc}"
            ) from None
        path = directory / "disk.config"
        with _errors(f"The config drive of server {server['id']} cannot be written"):
            config_drive.build(md, path)
        return Disk(str(path), config_drive.LABEL, "raw", "cdrom", True)

    def _with_subnets(self, server: dict[str, Any]) -> dict[str, Any]:
        """The server document with the subnets of every fixed IP in its ports' details.

        The scheduler writes them there; a port whose details lack some (an
        older server) gets them from the network API.
        """
        missing = missing_subnets(server)
        if not missing or self.subnets is None:
            return server
        found = self.subnets.subnets(missing)
        ports = []
        for port in server.get("ports") or []:
            details = dict(port.get("details") or {})
            known = dict(details.get("subnets") or {})
            for fixed in details.get("fixed_ips") or []:
                subnet_id = fixed.get("subnet_id")
                if subnet_id not in known and subnet_id in found:
                    known[subnet_id] = found[subnet_id]
            ports.append({**port, "details": {**details, "subnets": known}})
        return {**server, "ports": ports}

    def _plug(self, server: dict[str, Any]) -> list[Interface]:
        """The server's NICs, their bridges made when missing."""
        interfaces = []
        for port in server.get("ports") or []:
            mtu = (port.get("details") or {}).get("mtu")
            bridge = bridge_name(str(port["network_id"]))
            self.ensure_bridge(bridge, int(mtu) if mtu else None)
            interfaces.append(
                Interface(
                    bridge=bridge,
                    tap=tap_name(str(port["port_id"])),
                    mac=str(port["mac_address"]),
                    mtu=int(mtu) if mtu else None,
                )
            )
        return interfaces

    # --- removal -----------------------------------------------------------------

    def destroy(self, server_id: str) -> None:
        _checked_id(server_id)
        with self._locked(server_id):
            self._remove(server_id)
        log.info("server %s destroyed", server_id)

    def _remove(self, server_id: str) -> None:
        """Destroy and undefine the domain and delete the directory; gone is done."""
        domain = self._lookup(server_id)
        if domain is not None:
            try:
                domain.destroy()
            except libvirt.libvirtError as exc:
                if _code(exc) not in NOT_RUNNING:
                    raise DriverError(
                        f"The domain of server {server_id} cannot be stopped: {_message(exc)}"
                    ) from None
            try:
                domain.undefineFlags(UNDEFINE_FLAGS)
            except libvirt.libvirtError as exc:
                if _code(exc) not in GONE:
                    raise DriverError(
                        f"The domain of server {server_id} cannot be removed: {_message(exc)}"
                    ) from None
        with (
            _errors(f"The files of server {server_id} cannot be removed"),
            contextlib.suppress(FileNotFoundError),
        ):
            shutil.rmtree(self._directory(server_id))

    # --- power -------------------------------------------------------------------

    @staticmethod
    def _start(domain: libvirt.virDomain) -> None:
        """Running afterwards: started, resumed or woken as its state needs."""
        state, _reason = domain.state()
        if state == libvirt.VIR_DOMAIN_PAUSED:
            domain.resume()
        elif state == libvirt.VIR_DOMAIN_PMSUSPENDED:
            domain.pMWakeup()
        elif not domain.isActive():
            domain.create()

    def _shut_down(self, domain: libvirt.virDomain, timeout: float) -> bool:
        """Press the power button until the guest is off or ``timeout``; True if off."""
        deadline = time.monotonic() + timeout
        next_press = 0.0
        while domain.isActive():
            now = time.monotonic()
            if now >= deadline:
                return False
            if now >= next_press:
                try:
                    domain.shutdownFlags(libvirt.VIR_DOMAIN_SHUTDOWN_ACPI_POWER_BTN)
                except libvirt.libvirtError as exc:
                    if _code(exc) not in NOT_RUNNING:
                        raise
                next_press = now + PRESS_INTERVAL
            time.sleep(POLL)
        return True

    @staticmethod
    def _pull_plug(domain: libvirt.virDomain) -> None:
        try:
            domain.destroy()
        except libvirt.libvirtError as exc:
            if _code(exc) not in NOT_RUNNING:
                raise

    def power_off(self, server_id: str) -> None:
        with self._locked(server_id):
            domain = self._domain(server_id)
            with _errors(f"Server {server_id} cannot be stopped"):
                if not domain.isActive():
                    return
                state, _reason = domain.state()
                if state == libvirt.VIR_DOMAIN_PAUSED or not self._shut_down(
                    domain, self.shutdown_timeout
                ):
                    log.info("server %s did not power off: destroying it", server_id)
                    self._pull_plug(domain)
        log.info("server %s powered off", server_id)

    def power_on(self, server: dict[str, Any]) -> None:
        server_id = _server_id(server)
        with self._locked(server_id):
            domain = self._domain(server_id)
            self._plug(server)
            with _errors(f"Server {server_id} cannot be started"):
                self._start(domain)
        log.info("server %s powered on", server_id)

    def reboot(self, server: dict[str, Any], hard: bool) -> None:
        server_id = _server_id(server)
        with self._locked(server_id):
            domain = self._domain(server_id)
            self._plug(server)
            with _errors(f"Server {server_id} cannot be rebooted"):
                state, _reason = domain.state()
                running = state in (libvirt.VIR_DOMAIN_RUNNING, libvirt.VIR_DOMAIN_BLOCKED)
                if not hard and running and self._shut_down(domain, self.shutdown_timeout):
                    domain.create()
                    log.info("server %s rebooted (soft)", server_id)
                    return
                if not hard:
                    log.info("server %s did not power off: rebooting it hard", server_id)
                self._pull_plug(domain)
                if domain.hasManagedSaveImage(0):
                    domain.managedSaveRemove(0)
                domain.create()
        log.info("server %s rebooted", server_id)

    def pause(self, server_id: str) -> None:
        with self._locked(server_id):
            domain = self._domain(server_id)
            with _errors(f"Server {server_id} cannot be paused"):
                state, _reason = domain.state()
                if state == libvirt.VIR_DOMAIN_PAUSED:
                    return
                if not domain.isActive():
                    raise DriverError(f"Server {server_id} is not running: it cannot be paused.")
                domain.suspend()

    def unpause(self, server_id: str) -> None:
        with self._locked(server_id):
            domain = self._domain(server_id)
            with _errors(f"Server {server_id} cannot be unpaused"):
                state, _reason = domain.state()
                if state == libvirt.VIR_DOMAIN_PAUSED:
                    domain.resume()
                elif not domain.isActive():
                    raise DriverError(f"Server {server_id} is not running: it cannot be unpaused.")

    def suspend(self, server_id: str) -> None:
        with self._locked(server_id):
            domain = self._domain(server_id)
            with _errors(f"Server {server_id} cannot be suspended"):
                if not domain.isActive():
                    if domain.hasManagedSaveImage(0):
                        return
                    raise DriverError(f"Server {server_id} is not running: it cannot be suspended.")
                domain.managedSave(libvirt.VIR_DOMAIN_SAVE_RUNNING)
        log.info("server %s suspended", server_id)

    def resume(self, server: dict[str, Any]) -> None:
        server_id = _server_id(server)
        with self._locked(server_id):
            domain = self._domain(server_id)
            self._plug(server)
            with _errors(f"Server {server_id} cannot be resumed"):
                self._start(domain)  # restores the managed save image
        log.info("server %s resumed", server_id)

    # --- snapshot and rebuild ----------------------------------------------------

    def snapshot(self, server: dict[str, Any], dest: Path) -> None:
        """The root disk (the overlay and its base) as one standalone qcow2.

        A running or paused guest is saved to its managed save image first
        (its disk is then quiet and every write of QEMU's is on it) and
        restored afterwards, as Nova's cold snapshot does; a stopped or
        suspended one is read as it is."""
        server_id = _server_id(server)
        with self._locked(server_id):
            domain = self._domain(server_id)
            root = self._directory(server_id) / "disk"
            if not root.exists():
                raise DriverError(f"Server {server_id} has no root disk to snapshot.")
            with _errors(f"Server {server_id} cannot be saved for its snapshot"):
                saved = bool(domain.isActive())
                if saved:
                    paused = domain.state()[0] == libvirt.VIR_DOMAIN_PAUSED
                    domain.managedSave(
                        libvirt.VIR_DOMAIN_SAVE_PAUSED
                        if paused
                        else libvirt.VIR_DOMAIN_SAVE_RUNNING
                    )
            try:
                qemu_img(
                    "convert", "-q", "-f", "qcow2", "-O", "qcow2", str(root), str(dest),
                    what=f"The disk of server {server_id} cannot be copied",
                )  # fmt: skip
            finally:
                if saved:
                    with _errors(f"Server {server_id} cannot be restored after its snapshot"):
                        domain.create()  # restores the managed save image
        log.info("server %s: snapshot written", server_id)

    def rebuild(self, server: dict[str, Any], step: Callable[[str], None]) -> None:
        """A new root disk from the server's (new) image, a new config drive
        and domain; the ephemeral disk stays if ``preserve_ephemeral``. The
        console log goes on. Started unless the server was stopped."""
        server_id = _server_id(server)
        preserve = bool((server.get("task_args") or {}).get("preserve_ephemeral"))
        keep = {"console.log", *(("disk.local",) if preserve else ())}
        with self._locked(server_id):
            domain = self._lookup(server_id)
            if domain is not None:
                with _errors(f"Server {server_id} cannot be stopped for its rebuild"):
                    state, _reason = domain.state()
                    if domain.isActive() and (
                        state == libvirt.VIR_DOMAIN_PAUSED
                        or not self._shut_down(domain, self.shutdown_timeout)
                    ):
                        self._pull_plug(domain)
                    domain.undefineFlags(UNDEFINE_FLAGS)
            directory = self._directory(server_id)
            with _errors(f"The old disks of server {server_id} cannot be removed"):
                for entry in directory.iterdir() if directory.exists() else ():
                    if entry.name in keep:
                        continue
                    if entry.is_dir():
                        shutil.rmtree(entry)
                    else:
                        entry.unlink()
            step(states.REBUILD_SPAWNING)
            self._build(server, fresh=False, start=server.get("vm_state") != states.STOPPED)
        log.info("server %s rebuilt from image %s", server_id, server.get("image_id"))

    # --- resize (on the server's own host) -----------------------------------------

    def _migration(self, server: dict[str, Any]) -> dict[str, Any]:
        migration = server.get("migration")
        if not migration:
            raise DriverError(f"Server {server.get('id')} is not being resized.")
        if migration.get("source_host") != self.host or migration.get("dest_host") != self.host:
            raise DriverError(
                "The libvirt driver resizes a server on its own host only, not from "
                f"{migration.get('source_host')} to {migration.get('dest_host')}."
            )
        return migration  # type: ignore[no-any-return]

    def _stop(self, domain: libvirt.virDomain) -> None:
        """Off: the power button, then the plug after ``shutdown_timeout``."""
        if not domain.isActive():
            return
        state, _reason = domain.state()
        if state == libvirt.VIR_DOMAIN_PAUSED or not self._shut_down(domain, self.shutdown_timeout):
            self._pull_plug(domain)

    def _resize_domain(
        self, server: dict[str, Any], domain: libvirt.virDomain, flavor: dict[str, Any], run: bool
    ) -> None:
        """Define the (stopped) domain with ``flavor``'s memory and vCPUs; start it if ``run``."""
        server_id = server["id"]
        xml = domain.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE)
        try:
            changed = domain_xml.resized(
                xml, int(flavor["ram"]), int(flavor["vcpus"]), str(flavor.get("name", ""))
            )
        except (domain_xml.DomainSpecError, KeyError, ValueError) as exc:
            raise DriverError(f"Server {server_id} cannot be resized: {exc}") from None
        conn = self._connection()
        with _errors(f"The domain of server {server_id} cannot be redefined"):
            conn.defineXML(changed)
        if run:
            self._plug(server)
            with _errors(f"Server {server_id} cannot be started"):
                self._start(self._domain(server_id))

    def migrate_disk_and_power_off(self, server: dict[str, Any]) -> None:
        """Stop the guest and keep a copy of its root disk for a revert."""
        self._migration(server)
        server_id = _server_id(server)
        with self._locked(server_id):
            domain = self._domain(server_id)
            with _errors(f"Server {server_id} cannot be stopped for its resize"):
                self._stop(domain)
            directory = self._directory(server_id)
            backup = directory / RESIZE_BACKUP
            if not backup.exists():  # a retry keeps the first copy: the disk before
                partial = directory / f".{RESIZE_BACKUP}.partial"
                with _errors(f"The disk of server {server_id} cannot be kept for a revert"):
                    shutil.copyfile(directory / "disk", partial)
                    os.replace(partial, backup)
        log.info("server %s stopped for its resize", server_id)

    def finish_migration(self, server: dict[str, Any]) -> None:
        """The new flavor: the root disk grown to its disk, the domain
        redefined with its memory and vCPUs, started if it ran before."""
        migration = self._migration(server)
        server_id = _server_id(server)
        flavor = server.get("flavor") or {}
        with self._locked(server_id):
            domain = self._domain(server_id)
            with _errors(f"Server {server_id} cannot be stopped for its resize"):
                self._stop(domain)
            root = self._directory(server_id) / "disk"
            size = int(flavor.get("disk") or 0) * GIB
            what = f"The disk of server {server_id} cannot be resized"
            if size > int(image_info(root, "qcow2", what)["virtual-size"]):
                qemu_img("resize", "-q", "-f", "qcow2", str(root), str(size), what=what)
            self._resize_domain(
                server, domain, flavor, migration.get("old_vm_state") == states.ACTIVE
            )
        log.info("server %s resized to flavor %s", server_id, flavor.get("name"))

    def confirm_migration(self, server: dict[str, Any]) -> None:
        """Drop the copy of the disk kept for a revert."""
        self._migration(server)
        server_id = _server_id(server)
        with (
            self._locked(server_id),
            _errors(f"The old disk of server {server_id} cannot be removed"),
        ):
            (self._directory(server_id) / RESIZE_BACKUP).unlink(missing_ok=True)

    def finish_revert_migration(self, server: dict[str, Any]) -> None:
        """The disk and the flavor from before the resize; started if it ran."""
        migration = self._migration(server)
        server_id = _server_id(server)
        old = migration.get("old_flavor") or {}
        with self._locked(server_id):
            domain = self._domain(server_id)
            with _errors(f"Server {server_id} cannot be stopped for its revert"):
                self._stop(domain)
            directory = self._directory(server_id)
            backup = directory / RESIZE_BACKUP
            if backup.exists():  # else restored before, by a revert that was cut short
                with _errors(f"The old disk of server {server_id} cannot be restored"):
                    os.replace(backup, directory / "disk")
            self._resize_domain(server, domain, old, migration.get("old_vm_state") == states.ACTIVE)
        log.info("server %s: resize reverted", server_id)

    # --- interfaces ----------------------------------------------------------------

    @staticmethod
    def _has_nic(domain: libvirt.virDomain, flags: int, mac: str) -> ET.Element | None:
        root = ET.fromstring(domain.XMLDesc(flags))  # noqa: S314 - libvirt's own output
        for element in root.iterfind("devices/interface"):
            found = element.find("mac")
            if found is not None and found.get("address", "").lower() == mac.lower():
                return element
        return None

    def attach_interface(self, server: dict[str, Any], port: dict[str, Any]) -> None:
        """Plug the port: into the running guest and into the domain's definition."""
        server_id = _server_id(server)
        with self._locked(server_id):
            domain = self._domain(server_id)
            (nic,) = self._plug({"ports": [port]})
            try:
                xml = domain_xml.interface(nic)
            except domain_xml.DomainSpecError as exc:
                raise DriverError(f"Port {port['port_id']} cannot be plugged: {exc}") from None
            with _errors(f"Port {port['port_id']} cannot be plugged into server {server_id}"):
                inactive = libvirt.VIR_DOMAIN_XML_INACTIVE
                if self._has_nic(domain, inactive, nic.mac) is None:
                    domain.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_CONFIG)
                if domain.isActive() and self._has_nic(domain, 0, nic.mac) is None:
                    domain.attachDeviceFlags(xml, libvirt.VIR_DOMAIN_AFFECT_LIVE)
        log.info("server %s: port %s plugged", server_id, port["port_id"])

    def detach_interface(self, server: dict[str, Any], port: dict[str, Any]) -> None:
        """Unplug the port from the guest and from the domain's definition."""
        server_id = _server_id(server)
        mac = str(port["mac_address"])
        with self._locked(server_id):
            domain = self._lookup(server_id)
            if domain is None:
                return
            with _errors(f"Port {port['port_id']} cannot be unplugged from server {server_id}"):
                if domain.isActive():
                    live = self._has_nic(domain, 0, mac)
                    if live is not None:
                        domain.detachDeviceFlags(
                            ET.tostring(live, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_LIVE
                        )
                        self._wait_unplugged(domain, mac)
                config = self._has_nic(domain, libvirt.VIR_DOMAIN_XML_INACTIVE, mac)
                if config is not None:
                    domain.detachDeviceFlags(
                        ET.tostring(config, encoding="unicode"), libvirt.VIR_DOMAIN_AFFECT_CONFIG
                    )
        log.info("server %s: port %s unplugged", server_id, port["port_id"])

    def _wait_unplugged(self, domain: libvirt.virDomain, mac: str) -> None:
        """The guest lets go of a NIC when it hears of the unplug: wait for it."""
        deadline = time.monotonic() + self.shutdown_timeout
        while self._has_nic(domain, 0, mac) is not None:
            if time.monotonic() >= deadline:
                raise DriverError(
                    f"The guest did not release the NIC {mac} within {self.shutdown_timeout:g} s."
                )
            time.sleep(POLL)

    # --- console -----------------------------------------------------------------

    def console_tail(self, server_id: str, limit: int) -> str | None:
        path = self._directory(server_id) / "console.log"
        try:
            with path.open("rb") as handle:
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - limit))
                data = handle.read(limit)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise DriverError(f"The console log of server {server_id}: {exc.strerror}") from None
        # NULs are dropped: a database text column cannot hold them.
        return data.decode("utf-8", "replace").replace("\x00", "")[-limit:]


def missing_subnets(server: dict[str, Any]) -> list[str]:
    """Subnet IDs of the server's fixed IPs that its ports' details do not describe."""
    missing: list[str] = []
    for port in server.get("ports") or []:
        details = port.get("details") or {}
        known: Collection[str] = details.get("subnets") or {}
        for fixed in details.get("fixed_ips") or []:
            subnet_id = fixed.get("subnet_id")
            if subnet_id and subnet_id not in known and subnet_id not in missing:
                missing.append(subnet_id)
    return missing
