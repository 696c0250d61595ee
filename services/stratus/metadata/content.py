"""What an instance's metadata says, and the documents a guest reads from it.

``InstanceMetadata`` is a frozen, typed description of one instance as the
compute service knows it: identity, keys, user data, server metadata and its
network (ports, fixed IPs with their subnets, floating IPs). The functions
here turn it into the documents of Nova's metadata API, version by version,
so that cloud-init and other guest agents read Stratus exactly as they read
OpenStack:

* ``meta_data(md, version)``: ``openstack/<version>/meta_data.json``;
* ``network_data(md)``: ``network_data.json`` (``links``, ``networks``,
  ``services``), which cloud-init turns into the guest's network
  configuration;
* ``vendor_data(md)`` and ``vendor_data2(md)``;
* ``ec2_meta_data(md, version)``: the EC2 ``meta-data`` tree as a nested
  dict (the config drive carries it as ``ec2/<version>/meta-data.json``).

Everything is a pure function of its arguments. The one random part,
``random_seed`` (entropy that Nova sends afresh with every
``meta_data.json``), is passed in by the caller: the HTTP service draws new
bytes per request, a config drive draws them once when it is written.

Versions are Nova's (``nova/api/metadata/base.py``); what each one added is
noted beside it and applied here the same way, so an old guest asking for
an old version gets the document it expects.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

LATEST = "latest"

# OpenStack format, oldest first.
FOLSOM = "2012-08-10"  # meta_data.json and user_data
GRIZZLY = "2013-04-04"  # random_seed (and the password endpoint, not served here)
HAVANA = "2013-10-17"  # vendor_data.json
LIBERTY = "2015-10-15"  # project_id; network_data.json
NEWTON_ONE = "2016-06-30"  # devices (tagged devices)
NEWTON_TWO = "2016-10-06"  # vendor_data2.json
OCATA = "2017-02-22"  # the VLAN of tagged NICs in devices
ROCKY = "2018-08-27"  # vf_trusted of NICs in devices
VICTORIA = "2020-10-14"  # dedicated_cpus
EPOXY = "2025-04-04"  # shares in devices
OPENSTACK_VERSIONS = (
    FOLSOM, GRIZZLY, HAVANA, LIBERTY, NEWTON_ONE, NEWTON_TWO, OCATA, ROCKY, VICTORIA, EPOXY,
)  # fmt: skip

# EC2 format, oldest first: what each added is applied in ``ec2_meta_data``.
EC2_VERSIONS = (
    "1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15",
    "2008-02-01", "2008-09-01", "2009-04-04",
)  # fmt: skip

IPV6_ADDRESS_MODES = ("slaac", "dhcpv6-stateless", "dhcpv6-stateful")
RANDOM_SEED_BYTES = 512  # as Nova


@dataclass(frozen=True)
class KeyPair:
    """A key pair the instance was booted with (``type`` is ``ssh`` or ``x509``)."""

    name: str
    public_key: str
    type: str = "ssh"


@dataclass(frozen=True)
class Route:
    """A subnet's host route: ``destination`` (a CIDR) via ``gateway``."""

    destination: str
    gateway: str


@dataclass(frozen=True)
class FixedIP:
    """One fixed IP of a port, with what the guest must know of its subnet.

    ``dhcp`` is the subnet's ``enable_dhcp``; ``ipv6_address_mode`` its
    ``ipv6_address_mode`` (``slaac``, ``dhcpv6-stateless``,
    ``dhcpv6-stateful``, or None). Together they say how the guest
    configures the address (``network_type``).
    """

    address: str
    cidr: str
    gateway: str | None = None
    dhcp: bool = True
    ipv6_address_mode: str | None = None
    dns_servers: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()

    def __post_init__(self) -> None:
        network = ipaddress.ip_network(self.cidr, strict=False)
        if ipaddress.ip_address(self.address) not in network:
            raise ValueError(f"{self.address} is not in {self.cidr}")
        if self.ipv6_address_mode is not None:
            if self.ipv6_address_mode not in IPV6_ADDRESS_MODES:
                raise ValueError(f"unknown ipv6_address_mode {self.ipv6_address_mode!r}")
            if network.version != 6:
                raise ValueError(f"ipv6_address_mode on an IPv{network.version} subnet")

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(self.cidr, strict=False)

    @property
    def version(self) -> int:
        return self.network.version

    @property
    def network_type(self) -> str:
        """The ``type`` of its entry in network_data.json, as Nova names it.

        ``ipv4_dhcp`` / ``ipv6_dhcp`` (the guest asks DHCP; no address given),
        ``ipv6_slaac`` / ``ipv6_dhcpv6-stateless`` / ``ipv6_dhcpv6-stateful``
        (the address mode of the subnet; the address is given too), and
        ``ipv4`` / ``ipv6`` (static: configure the address as given).
        """
        if self.ipv6_address_mode is not None:
            return f"ipv6_{self.ipv6_address_mode}"
        if self.dhcp:
            return f"ipv{self.version}_dhcp"
        return f"ipv{self.version}"


@dataclass(frozen=True)
class NetworkPort:
    """One of the instance's ports: its NIC in the guest.

    ``vif_type`` is the link ``type`` in network_data.json: ``bridge`` for the
    Linux bridges Stratus wires guests to (Nova reports its legacy VIF types
    this way and ``phy`` for the rest; cloud-init treats both as a NIC).
    """

    id: str
    mac_address: str
    network_id: str
    fixed_ips: tuple[FixedIP, ...] = ()
    mtu: int | None = None
    vif_type: str = "bridge"

    @property
    def link_id(self) -> str:
        """The host-side device name, ``tap<port[:11]>``, as Nova's link ids."""
        return f"tap{self.id[:11]}"


@dataclass(frozen=True)
class BlockDevices:
    """Device names for EC2's ``block-device-mapping``."""

    root: str = "/dev/vda"
    ephemeral: tuple[str, ...] = ()
    swap: str | None = None
    volumes: tuple[str, ...] = ()


@dataclass(frozen=True)
class InstanceMetadata:
    """Everything the metadata service and the config drive say about one instance.

    ``ec2_id`` is the instance's integer id where compute has one (Nova's
    EC2 ids are ``i-%08x`` of a database serial); without it the EC2 ids are
    made from the UUIDs (``ec2_id``). ``hostname`` is served as given (Nova
    appends its ``dhcp_domain``; here compute decides the name).
    ``vendor_data`` is the static vendor data (Nova's StaticJSON provider).
    """

    uuid: str
    name: str
    hostname: str
    project_id: str
    image_id: str
    flavor_name: str
    availability_zone: str = "nova"
    launch_index: int = 0
    reservation_id: str = ""
    ec2_id: int | None = None
    kernel_id: str | None = None
    ramdisk_id: str | None = None
    public_keys: tuple[KeyPair, ...] = ()
    user_data: bytes | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    vendor_data: Mapping[str, Any] = field(default_factory=dict)
    ports: tuple[NetworkPort, ...] = ()
    floating_ips: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    block_devices: BlockDevices = BlockDevices()

    def __post_init__(self) -> None:
        if not self.uuid:
            raise ValueError("an instance needs a uuid")
        if self.launch_index < 0:
            raise ValueError("launch_index cannot be negative")

    def fixed_addresses(self, version: int) -> list[str]:
        return [ip.address for p in self.ports for ip in p.fixed_ips if ip.version == version]


def since(required: str, version: str, versions: tuple[str, ...] = OPENSTACK_VERSIONS) -> bool:
    """Whether ``version`` (``latest`` is the newest) has what ``required`` added."""
    index = len(versions) - 1 if version == LATEST else versions.index(version)
    return index >= versions.index(required)


def ec2_id(prefix: str, uuid: str, number: int | None = None) -> str:
    """An EC2-style id, Nova's form ``<prefix>-%08x``.

    Nova formats an integer it keeps per instance (and per image); given
    ``number`` (compute's integer id) this is the same. Without it, the
    first 32 bits of the UUID stand in: stable, identical over HTTP and on a
    config drive, and different enough for a guest (cloud-init only compares
    an instance's id with the one its own disk saw before).
    """
    value = number if number is not None else int(uuid.replace("-", "")[:8], 16)
    return f"{prefix}-{value:08x}"


# --- OpenStack format ----------------------------------------------------------------


def meta_data(
    md: InstanceMetadata, version: str = LATEST, random_seed: bytes | None = None
) -> dict[str, Any]:
    """``meta_data.json`` of ``version``; ``random_seed`` is included from GRIZZLY on.

    Nova's keys, in Nova's order. ``devices`` is empty (Stratus has no
    device tags) and so is ``dedicated_cpus`` (no CPU pinning).
    """
    doc: dict[str, Any] = {"uuid": md.uuid}
    if md.metadata:
        doc["meta"] = dict(md.metadata)
    if md.public_keys:
        doc["public_keys"] = {key.name: key.public_key for key in md.public_keys}
        doc["keys"] = [
            {"name": key.name, "type": key.type, "data": key.public_key} for key in md.public_keys
        ]
    doc["hostname"] = md.hostname
    doc["name"] = md.name
    doc["launch_index"] = md.launch_index
    doc["availability_zone"] = md.availability_zone
    if random_seed is not None and since(GRIZZLY, version):
        doc["random_seed"] = base64.b64encode(random_seed).decode()
    if since(LIBERTY, version):
        doc["project_id"] = md.project_id
    if since(NEWTON_ONE, version):
        doc["devices"] = []
    if since(VICTORIA, version):
        doc["dedicated_cpus"] = []
    return doc


def _routes(ip: FixedIP) -> list[dict[str, str]]:
    routes = []
    if ip.gateway:
        anywhere = "0.0.0.0" if ip.version == 4 else "::"
        routes.append({"network": anywhere, "netmask": anywhere, "gateway": ip.gateway})
    for route in ip.routes:
        destination = ipaddress.ip_network(route.destination, strict=False)
        routes.append(
            {
                "network": str(destination.network_address),
                "netmask": str(destination.netmask),
                "gateway": route.gateway,
            }
        )
    return routes


def _dns(ip: FixedIP) -> list[dict[str, str]]:
    return [{"type": "dns", "address": server} for server in ip.dns_servers]


def network_data(md: InstanceMetadata) -> dict[str, Any]:
    """``network_data.json``: one link per port, one network per fixed IP, DNS services.

    As Nova, with one difference: Nova describes only the first IPv4 and
    the first IPv6 subnet of each port; here every fixed IP gets its entry
    (a port's second DHCP entry of the same family is left out, as DHCP
    configures the interface once). ``mtu`` is always the network's MTU
    (Nova sends null when DHCP would tell it; the value is the same).
    """
    links: list[dict[str, Any]] = []
    networks: list[dict[str, Any]] = []
    services: list[dict[str, str]] = []
    for port in md.ports:
        if not port.fixed_ips:
            continue
        links.append(
            {
                "id": port.link_id,
                "vif_id": port.id,
                "type": port.vif_type,
                "mtu": port.mtu,
                "ethernet_mac_address": port.mac_address,
            }
        )
        dhcp_done: set[str] = set()
        for ip in port.fixed_ips:
            kind = ip.network_type
            entry: dict[str, Any] = {"id": f"network{len(networks)}", "type": kind}
            if kind.endswith("_dhcp"):
                if kind in dhcp_done:
                    continue
                dhcp_done.add(kind)
                entry |= {"link": port.link_id, "network_id": port.network_id}
            else:
                entry |= {
                    "link": port.link_id,
                    "ip_address": ip.address,
                    "netmask": str(ip.network.netmask),
                    "routes": _routes(ip),
                    "network_id": port.network_id,
                    "services": _dns(ip),
                }
            networks.append(entry)
            services += [dns for dns in _dns(ip) if dns not in services]
    return {"links": links, "networks": networks, "services": services}


def vendor_data(md: InstanceMetadata) -> dict[str, Any]:
    """``vendor_data.json``: the static vendor data (an empty object without any)."""
    return dict(md.vendor_data)


def vendor_data2(md: InstanceMetadata) -> dict[str, Any]:
    """``vendor_data2.json``: every provider's data under its name; here ``static`` only."""
    return {"static": dict(md.vendor_data)}


# --- EC2 format ------------------------------------------------------------------------


def ec2_meta_data(md: InstanceMetadata, version: str = LATEST) -> dict[str, Any]:
    """The EC2 ``meta-data`` tree of ``version`` as a nested dict.

    Leaves are strings, integers or lists of strings (a list is served as
    one line per item). ``public-keys`` holds ``{"0": {"openssh-key": ...}}``;
    the key names belong to its listing (``0=<name>``), made by ``tree``.
    """

    def since_ec2(required: str) -> bool:
        return since(required, version, EC2_VERSIONS)

    fixed = md.fixed_addresses(4)
    meta: dict[str, Any] = {
        "ami-id": ec2_id("ami", md.image_id),
        "ami-launch-index": md.launch_index,
        "ami-manifest-path": "(unknown)",
        "hostname": md.hostname,
        "instance-id": ec2_id("i", md.uuid, md.ec2_id),
        "local-ipv4": fixed[0] if fixed else "",
        "reservation-id": md.reservation_id or ec2_id("r", md.uuid),
        "security-groups": list(md.security_groups),
    }
    if md.public_keys:
        meta["public-keys"] = {
            str(index): {"openssh-key": key.public_key} for index, key in enumerate(md.public_keys)
        }
    if since_ec2("2007-01-19"):
        meta["local-hostname"] = md.hostname
        meta["public-hostname"] = md.hostname
        meta["public-ipv4"] = md.floating_ips[0] if md.floating_ips else ""
    if since_ec2("2007-08-29"):
        meta["instance-type"] = md.flavor_name
    if since_ec2("2007-12-15"):
        meta["block-device-mapping"] = block_device_mapping(md.block_devices)
        if md.kernel_id:
            meta["kernel-id"] = ec2_id("aki", md.kernel_id)
        if md.ramdisk_id:
            meta["ramdisk-id"] = ec2_id("ari", md.ramdisk_id)
    if since_ec2("2008-02-01"):
        meta["placement"] = {"availability-zone": md.availability_zone}
    if since_ec2("2008-09-01"):
        meta["instance-action"] = "none"
    return meta


def block_device_mapping(devices: BlockDevices) -> dict[str, str]:
    """``ami`` and ``root`` (the root disk), ``ephemeralN``, ``swap``, ``ebsN`` (volumes)."""
    mapping = {"ami": devices.root.removeprefix("/dev/"), "root": devices.root}
    for index, device in enumerate(devices.ephemeral):
        mapping[f"ephemeral{index}"] = device
    if devices.swap:
        mapping["swap"] = devices.swap
    for index, device in enumerate(sorted(devices.volumes)):
        mapping[f"ebs{index}"] = device
    return mapping
