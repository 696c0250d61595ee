"""Simulated hosts for the network agent's tests: real kernels, private namespaces.

A ``SimHost`` is a long-lived ``sleep`` process in its own mount and network
namespaces (``unshare --mount --net --propagation private``). Its
``/run/netns`` is a private tmpfs, so the named namespaces the agent makes
there (``qdhcp-*``, ``qrouter-*``, the test guests) are visible only inside
that host, exactly as on a real host; two hosts can both have ``qdhcp-<net>``.
Commands run inside a host with ``nsenter -t <pid> -m -n`` (``SimHost.run``),
and the agent itself runs there as the operator would run it:
``python -m stratus.network.agent.main --once --snapshot FILE`` (``SimHost.agent``).

Hosts are wired to an ``Underlay``: a switch, i.e. a bridge ``br0`` alone in
a network namespace of its own (not the machine's: its firewall must not be
part of the test); ``SimHost.connect`` adds a veth pair whose outer end joins
that bridge and whose inner end is moved into the host and renamed
(``eth0`` with the host's tunnel address, or an address-less ``eth1`` to be
mapped as a flat/VLAN provider interface).

A ``Guest`` stands in for a VM: a namespace inside the host holding one end of
a veth pair whose host end is the port's ``tap<port[:11]>`` (what a
hypervisor would make), with the port's MAC. ``Guest.dhcp`` runs ``dhclient``
with private lease/pid files and a recording script (the stock script would
rewrite the machine's /etc/resolv.conf), returns what the server offered and
configures it, so ``Guest.ping`` then works.

Cleanup (``sim_lab``'s finalizer, also on failure): every process whose
network namespace is the host's or one of its named namespaces, or whose
mount namespace is the host's, is killed (dnsmasq, dhclient, metadata
proxies...), then the host itself; the kernel then frees its namespaces and
every device in them, and the veth ends outside with them. Underlay switch
processes are killed the same way. Nothing is left on the machine, and
nothing is ever made in its own namespace.

Usage::

    def test_x(sim_lab):
        underlay = sim_lab.underlay()
        h1 = sim_lab.host("h1", underlay=underlay, local_ip="192.0.2.1")
        h1.agent(docs)                      # one pass, raises on a non-zero exit
        guest = h1.guest(port_id, mac)
        lease = guest.dhcp()
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

PYTHON = sys.executable
# Mounted as a tmpfs private to each host (the directory itself stays empty outside).
HOST_STATE_DIR = "/run/stratus-agent-test"
UNDERLAY_PREFIXLEN = 24


def _run(argv: Sequence[str], *, check: bool = True, timeout: float = 60, **kw: Any) -> Any:
    result = subprocess.run(
        list(argv), capture_output=True, text=True, check=False, timeout=timeout, **kw
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{shlex.join(argv)} exited {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def _ns_inode(pid: int | str, kind: str) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/{kind}").st_ino
    except OSError:
        return None


def kernel_can(kind_args: Sequence[str]) -> str | None:
    """Try ``ip link add t0 <kind_args>`` in a throwaway namespace; None if it worked.

    Otherwise the kernel's error message (e.g. the module is missing).
    """
    script = "ip link add tl0 type veth peer name tl1 && ip link add t0 " + shlex.join(kind_args)
    result = _run(["unshare", "--net", "sh", "-c", script], check=False)
    return None if result.returncode == 0 else (result.stderr.strip() or "failed")


def routes_121(text: str) -> list[tuple[str, str]]:
    """dhclient's ``new_rfc3442_classless_static_routes`` as (destination, router)."""
    numbers = [int(x) for x in text.split()]
    routes = []
    while numbers:
        width = numbers.pop(0)
        significant = (width + 7) // 8
        octets = numbers[:significant] + [0] * (4 - significant)
        del numbers[:significant]
        router = ".".join(str(x) for x in numbers[:4])
        del numbers[:4]
        routes.append((f"{'.'.join(map(str, octets))}/{width}", router))
    return routes


# A minimal DNS client (no dig here): prints the A records of argv[1] from argv[2].
_DNS_QUERY = r"""
import socket, struct, sys
name, server = sys.argv[1], sys.argv[2]
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
query += b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
query += struct.pack(">HH", 1, 1)
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sock.settimeout(3)
sock.sendto(query, (server, 53))
data = sock.recv(4096)
answers = struct.unpack(">H", data[6:8])[0]
i = len(query)
for _ in range(answers):
    i += 2 if data[i] & 0xC0 == 0xC0 else data.index(b"\0", i) - i + 1
    rtype, _, _, length = struct.unpack(">HHIH", data[i : i + 10])
    i += 10
    if rtype == 1:
        print(socket.inet_ntoa(data[i : i + length]))
    i += length
"""


@dataclass
class Underlay:
    """A switch: the bridge ``br0`` alone in a network namespace of its own.

    Not in the machine's namespace: there, whatever the machine's own
    firewall and conntrack do to bridged traffic (br_netfilter) would be part
    of the test. ``run`` reaches into it (e.g. to give ``br0`` an address and
    play the upstream router of an external network).
    """

    name: str
    process: subprocess.Popen[str] | None = None
    pid: int = 0
    ports: int = 0

    def create(self) -> None:
        script = (
            "ip link set lo up && ip link add br0 type bridge && ip link set br0 up && "
            "echo $$ && exec sleep infinity"
        )
        self.process = subprocess.Popen(
            ["unshare", "--net", "--fork", "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            raise AssertionError(f"underlay {self.name} did not start")
        self.pid = int(line)

    def run(self, argv: Sequence[str], *, check: bool = True) -> Any:
        return _run(["nsenter", "-t", str(self.pid), "-n", *argv], check=check)

    def delete(self) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
            self.process = None


@dataclass
class Guest:
    """A VM stand-in: a namespace inside ``host`` behind the port's tap."""

    host: SimHost
    namespace: str
    ifname: str = "eth0"

    def run(self, argv: Sequence[str], *, check: bool = True, timeout: float = 60) -> Any:
        return self.host.run(["ip", "netns", "exec", self.namespace, *argv], check=check,
                             timeout=timeout)  # fmt: skip

    def dhcp(self, *, configure: bool = True, timeout: int = 15) -> dict[str, str]:
        """Get a lease with dhclient; return the offered options (dhclient-script names).

        Keys: ``ip``, ``mask``, ``routers``, ``classless_routes``, ``dns``,
        ``host_name``, ``domain_name``. With ``configure`` the address, default
        route and classless routes are set in the guest.
        """
        d = self.host.workdir / f"dhclient-{self.namespace}"
        d.mkdir(exist_ok=True)
        out = d / "offer.env"
        out.unlink(missing_ok=True)
        script = d / "script.sh"
        script.write_text(
            "#!/bin/sh\n"
            'case "$reason" in BOUND|RENEW|REBIND|REBOOT)\n'
            f"  env | grep '^new_' > {out}.tmp && mv {out}.tmp {out};;\n"
            "esac\nexit 0\n"
        )
        script.chmod(0o755)
        conf = d / "dhclient.conf"
        conf.write_text(
            "option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;\n"
            f"timeout {timeout};\nretry 1;\ninitial-interval 1;\n"
            "request subnet-mask, broadcast-address, routers, domain-name, "
            "domain-name-servers, host-name, interface-mtu, rfc3442-classless-static-routes;\n"
        )
        pidfile = d / "dhclient.pid"
        self.run(["ip", "link", "set", self.ifname, "up"])
        try:
            self.run(
                ["dhclient", "-4", "-1", "-v", "-cf", str(conf), "-lf", str(d / "leases"),
                 "-pf", str(pidfile), "-sf", str(script), self.ifname],
                timeout=timeout + 10,
            )  # fmt: skip
        finally:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        values = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        offer = {
            "ip": values.get("new_ip_address", ""),
            "mask": values.get("new_subnet_mask", ""),
            "routers": values.get("new_routers", ""),
            "classless_routes": values.get("new_rfc3442_classless_static_routes", ""),
            "dns": values.get("new_domain_name_servers", ""),
            "host_name": values.get("new_host_name", ""),
            "domain_name": values.get("new_domain_name", ""),
            "mtu": values.get("new_interface_mtu", ""),
        }
        if configure:
            self.configure(offer)
        return offer

    def dhcp6(self, *, timeout: int = 15) -> dict[str, str]:
        """A DHCPv6 (stateful) lease with ``dhclient -6``: ``ip`` and ``dns``."""
        d = self.host.workdir / f"dhclient6-{self.namespace}"
        d.mkdir(exist_ok=True)
        out = d / "offer.env"
        script = d / "script.sh"
        script.write_text(
            "#!/bin/sh\n"
            'case "$reason" in BOUND6|RENEW6|REBIND6|REBOOT6)\n'
            f"  env | grep '^new_' > {out}.tmp && mv {out}.tmp {out};;\n"
            "esac\nexit 0\n"
        )
        script.chmod(0o755)
        conf = d / "dhclient6.conf"
        conf.write_text(f"timeout {timeout};\nretry 1;\nrequest dhcp6.name-servers;\n")
        pidfile = d / "dhclient.pid"
        # No duplicate address detection in the guest: its link-local address is
        # usable at once (dhclient -6 needs one).
        self.run(["sysctl", "-q", "-w", f"net.ipv6.conf.{self.ifname}.accept_dad=0"])
        self.run(["ip", "link", "set", self.ifname, "down"])
        self.run(["ip", "link", "set", self.ifname, "up"])
        try:
            self.run(
                ["dhclient", "-6", "-1", "-v", "-cf", str(conf), "-lf", str(d / "leases"),
                 "-pf", str(pidfile), "-sf", str(script), self.ifname],
                timeout=timeout + 10,
            )  # fmt: skip
        finally:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGKILL)
        values = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        return {
            "ip": values.get("new_ip6_address", ""),
            "prefixlen": values.get("new_ip6_prefixlen", ""),
            "dns": values.get("new_dhcp6_name_servers", ""),
        }

    def configure(self, offer: Mapping[str, str]) -> None:
        """Address and routes as a DHCP client sets them.

        Classless static routes (option 121), when offered, replace the router
        option (RFC 3442), the default route among them.
        """
        import ipaddress

        prefix = ipaddress.ip_network(f"0.0.0.0/{offer['mask']}").prefixlen
        self.run(["ip", "addr", "flush", "dev", self.ifname])
        self.run(["ip", "addr", "add", f"{offer['ip']}/{prefix}", "dev", self.ifname])
        routes = routes_121(offer.get("classless_routes", ""))
        if not routes and offer.get("routers"):
            routes = [("0.0.0.0/0", offer["routers"].split()[0])]
        for destination, router in routes:
            self.run(["ip", "route", "replace", destination, "via", router, "dev", self.ifname])

    def resolve(self, name: str, server: str) -> list[str]:
        """The A records ``server`` answers for ``name`` (a DNS query from the guest)."""
        result = self.run([PYTHON, "-c", _DNS_QUERY, name, server])
        return result.stdout.split()

    def ping(self, address: str, *, count: int = 2, check: bool = True) -> Any:
        return self.run(["ping", "-c", str(count), "-i", "0.2", "-W", "2", address], check=check)


@dataclass
class SimHost:
    """One simulated host: a process owning private mount and network namespaces."""

    name: str
    workdir: Path
    local_ip: str | None = None
    physical_interfaces: dict[str, str] = field(default_factory=dict)
    tunnel_types: tuple[str, ...] = ("vxlan", "gre")
    process: subprocess.Popen[str] | None = None
    pid: int = 0

    @property
    def state_dir(self) -> Path:
        """The agent's state_dir, as the host sees it (a tmpfs private to the host)."""
        return Path(HOST_STATE_DIR)

    @property
    def state_path(self) -> Path:
        """The same directory, as the test sees it (through the host's root)."""
        return Path(f"/proc/{self.pid}/root{HOST_STATE_DIR}")

    @property
    def config_path(self) -> Path:
        return self.workdir / "stratus.conf"

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for path in ("/run/netns", HOST_STATE_DIR):
            os.makedirs(path, exist_ok=True)
        # tmpfs mounts are 0755, so dnsmasq (which drops to nobody) can read
        # its files there; a pytest tmp_path is 0700.
        script = (
            f"mount -t tmpfs tmpfs /run/netns && mount -t tmpfs tmpfs {HOST_STATE_DIR} && "
            "ip link set lo up && echo $$ && exec sleep infinity"
        )
        self.process = subprocess.Popen(
            ["unshare", "--mount", "--net", "--propagation", "private", "--fork",
             "sh", "-c", script],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            raise AssertionError(f"host {self.name} did not start: {self.process.stderr.read()}")
        self.pid = int(line)
        self.write_config()

    def write_config(self, **extra: str) -> None:
        options = {
            "host": self.name,
            "local_ip": self.local_ip or "",
            "physical_interface_mappings": ",".join(
                f"{k}:{v}" for k, v in self.physical_interfaces.items()
            ),
            "tunnel_types": ",".join(self.tunnel_types),
            "state_dir": str(self.state_dir),
            **extra,
        }
        lines = ["[DEFAULT]", "log_format = text", "debug = true", "", "[network_agent]"]
        lines += [f"{k} = {v}" for k, v in options.items()]
        self.config_path.write_text("\n".join(lines) + "\n")

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60,
        input: str | None = None,
    ) -> Any:
        """Run ``argv`` inside this host's mount and network namespaces."""
        return _run(["nsenter", "-t", str(self.pid), "-m", "-n", *argv], check=check,
                    timeout=timeout, input=input)  # fmt: skip

    def sh(self, script: str, *, check: bool = True) -> Any:
        return self.run(["sh", "-c", script], check=check)

    def agent(self, docs: Mapping[str, Any], *args: str, check: bool = True) -> Any:
        """One agent pass (``--once --snapshot``) over the API documents ``docs``."""
        snapshot = self.workdir / "snapshot.json"
        snapshot.write_text(json.dumps(docs, indent=1))
        return self.run(
            [PYTHON, "-m", "stratus.network.agent.main", "--config-file", str(self.config_path),
             "--once", "--snapshot", str(snapshot), *args],
            check=check, timeout=90,
        )  # fmt: skip

    def connect(self, underlay: Underlay, ifname: str, address: str | None = None) -> None:
        """A veth from ``underlay``'s bridge into this host, named ``ifname`` here, up."""
        underlay.ports += 1
        outer = f"p{underlay.ports}"
        temp = f"sv{uuid.uuid4().hex[:10]}"
        underlay.run(["ip", "link", "add", outer, "type", "veth", "peer", "name", temp,
                      "netns", str(self.pid)])  # fmt: skip
        underlay.run(["ip", "link", "set", outer, "master", "br0", "up"])
        self.run(["ip", "link", "set", temp, "name", ifname])
        self.run(["ip", "link", "set", ifname, "up"])
        if address:
            self.run(["ip", "addr", "add", f"{address}/{UNDERLAY_PREFIXLEN}", "dev", ifname])

    def guest(self, port_id: str, mac: str, name: str | None = None) -> Guest:
        """A guest behind ``tap<port[:11]>`` (not plugged: the agent does that)."""
        namespace = name or f"guest-{port_id[:8]}"
        tap = f"tap{port_id[:11]}"
        self.run(["ip", "netns", "add", namespace])
        self.run(["ip", "link", "add", tap, "type", "veth", "peer", "name", "eth0",
                  "netns", namespace])  # fmt: skip
        guest = Guest(self, namespace)
        guest.run(["ip", "link", "set", "eth0", "address", mac])
        guest.run(["ip", "link", "set", "lo", "up"])
        guest.run(["ip", "link", "set", "eth0", "up"])
        return guest

    def links_json(self, namespace: str | None = None) -> list[dict[str, Any]]:
        prefix = ["ip", "netns", "exec", namespace] if namespace else []
        return json.loads(self.run([*prefix, "ip", "-d", "-j", "link", "show"]).stdout)

    def link_names(self, namespace: str | None = None) -> set[str]:
        return {link["ifname"] for link in self.links_json(namespace)}

    def namespaces(self) -> set[str]:
        return set(self.run(["ls", "/run/netns"]).stdout.split())

    def processes(self) -> list[int]:
        """PIDs of every process inside this host (its namespaces or named ones)."""
        return sorted(_host_processes(self))

    def pids_of(self, program: str) -> list[int]:
        """PIDs of the processes inside this host whose command is ``program``."""
        pids = []
        for pid in self.processes():
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == program:
                    pids.append(pid)
            except OSError:
                continue
        return pids

    def stop(self) -> None:
        if not self.pid:
            return
        for pid in _host_processes(self):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and _host_processes(self):
            time.sleep(0.05)
        self.pid = 0


def _host_processes(host: SimHost) -> set[int]:
    net = _ns_inode(host.pid, "net")
    mnt = _ns_inode(host.pid, "mnt")
    if net is None:
        return set()
    nets = {net}
    listing = _run(
        ["nsenter", "-t", str(host.pid), "-m", "sh", "-c",
         "for f in /run/netns/*; do [ -e \"$f\" ] && stat -L -c %i \"$f\"; done; true"],
        check=False,
    )  # fmt: skip
    nets |= {int(x) for x in listing.stdout.split() if x.isdigit()}
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        if _ns_inode(entry, "net") in nets or (mnt is not None and _ns_inode(entry, "mnt") == mnt):
            found.add(int(entry))
    return found


class SimLab:
    """Factory of underlays and hosts; everything is torn down by ``close``."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.token = uuid.uuid4().hex[:5]
        self.hosts: list[SimHost] = []
        self.underlays: list[Underlay] = []

    def underlay(self) -> Underlay:
        underlay = Underlay(f"stu{self.token}{len(self.underlays)}")
        self.underlays.append(underlay)
        underlay.create()
        return underlay

    def host(
        self,
        name: str,
        *,
        underlay: Underlay | None = None,
        local_ip: str | None = None,
        physical_interfaces: Mapping[str, str] | None = None,
    ) -> SimHost:
        """Start a host; with ``underlay`` its ``eth0`` joins it with ``local_ip``."""
        host = SimHost(
            name,
            self.workdir / name,
            local_ip=local_ip,
            physical_interfaces=dict(physical_interfaces or {}),
        )
        self.hosts.append(host)
        host.start()
        if underlay is not None:
            host.connect(underlay, "eth0", local_ip)
        return host

    def close(self) -> None:
        for host in self.hosts:
            host.stop()
        for underlay in self.underlays:
            underlay.delete()


@pytest.fixture
def sim_lab(tmp_path: Path) -> Iterator[SimLab]:
    if os.geteuid() != 0:
        pytest.skip("simulated hosts need root (namespaces, bridges)")
    lab = SimLab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()
