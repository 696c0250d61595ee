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
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAC = "fa:16:3e:00:00:05"
GUEST_IP = "10.99.0.5"
GATEWAY = "10.99.0.1"

METADATA_SERVER = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
files = json.load(open(sys.argv[1]))
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
    def log_message(self, *a):
        pass
server = HTTPServer(("169.254.169.254", 80), H)
print("ready", flush=True)
server.serve_forever()
"""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("test-image")
    _run(sys.executable, str(ROOT / "scripts" / "build_test_image.py"), "--output", str(out))
    return out


@dataclass
class Lab:
    """A namespace with a bridge, dnsmasq and a metadata server; QEMU guests on taps."""

    workdir: Path
    namespace: str = field(default_factory=lambda: f"timg-{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, metadata: dict[str, str]) -> None:
        ns = ["ip", "netns", "exec", self.namespace]
        _run("ip", "netns", "add", self.namespace)
        for command in (
            "ip link set lo up",
            "ip link add br0 type bridge",
            f"ip addr add {GATEWAY}/24 dev br0",
            "ip addr add 169.254.169.254/32 dev br0",
            "ip link set br0 up",
            "ip tuntap add tap0 mode tap",
            "ip link set tap0 master br0 up",
        ):
            _run(*ns, *command.split())
        routes = f"169.254.169.254/32,{GATEWAY},0.0.0.0/0,{GATEWAY}"
        self.background(
            [*ns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0",
             "--interface=br0", "--bind-interfaces", "--dhcp-authoritative",
             f"--dhcp-range={GATEWAY},static,255.255.255.0",
             f"--dhcp-host={MAC},{GUEST_IP}",
             f"--dhcp-option=option:classless-static-route,{routes}",
             f"--dhcp-leasefile={self.workdir / 'leases'}", "--pid-file="],
        )  # fmt: skip
        files = self.workdir / "metadata.json"
        files.write_text(json.dumps(metadata))
        server = self.background([*ns, sys.executable, "-c", METADATA_SERVER, str(files)])
        assert server.stdout is not None and "ready" in server.stdout.readline()

    def background(self, argv: list[str]) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )  # fmt: skip
        self.processes.append(process)
        return process

    def boot(self, boot: list[str], name: str) -> Guest:
        console = self.workdir / f"{name}.console"
        monitor = self.workdir / f"{name}.monitor"
        qemu = self.background(
            ["ip", "netns", "exec", self.namespace, "qemu-system-x86_64",
             "-accel", "tcg", "-cpu", "max", "-m", "256", "-nodefaults", "-display", "none",
             "-no-reboot", "-serial", f"file:{console}",
             "-monitor", f"unix:{monitor},server,nowait",
             "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
             "-device", f"virtio-net-pci,netdev=n0,mac={MAC}", *boot],
        )  # fmt: skip
        return Guest(self, qemu, console, monitor)

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        return _run("ip", "netns", "exec", self.namespace, *argv, check=check)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)
        _run("ip", "netns", "del", self.namespace, check=False)


@dataclass
class Guest:
    lab: Lab
    qemu: subprocess.Popen[str]
    console_path: Path
    monitor: Path

    def console(self) -> str:
        return self.console_path.read_text(errors="replace") if self.console_path.exists() else ""

    def wait_for(self, text: str, timeout: float = 120) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            console = self.console()
            if text in console:
                return console
            if self.qemu.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"{text!r} not on the console:\n{self.console()[-3000:]}")

    def power_button(self) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.monitor))
            sock.recv(4096)
            sock.sendall(b"system_powerdown\n")
            time.sleep(0.5)


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    lab = Lab(tmp_path)
    try:
        yield lab
    finally:
        lab.close()


def _lines(console: str) -> list[str]:
    return [line.strip() for line in console.splitlines() if line.startswith("stratus-test:")]


def test_disk_boot_with_dhcp_and_the_metadata_service(image: Path, lab: Lab) -> None:
    instance = str(uuid.uuid4())
    meta = {"uuid": instance, "name": "web-1", "hostname": "web-1"}
    lab.start(
        {
            "/openstack/latest/meta_data.json": json.dumps(meta),
            "/openstack/latest/user_data": "#!/bin/sh\necho hello from user data\n",
        }
    )
    guest = lab.boot(
        ["-drive", f"file={image / 'stratus-test.qcow2'},if=virtio,snapshot=on"], "disk"
    )
    console = guest.wait_for("stratus-test: ready")
    lines = _lines(console)
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


def test_direct_kernel_boot_with_a_config_drive(image: Path, lab: Lab, tmp_path: Path) -> None:
    instance = str(uuid.uuid4())
    lab.start({})  # the metadata service knows nothing: the drive must be read
    drive = tmp_path / "config.vfat"
    with drive.open("wb") as handle:
        handle.truncate(4 << 20)
    _run("mkfs.vfat", "-n", "config-2", str(drive))
    source = tmp_path / "openstack"
    (source / "latest").mkdir(parents=True)
    (source / "latest" / "meta_data.json").write_text(json.dumps({"uuid": instance, "name": "db"}))
    (source / "latest" / "user_data").write_text("from the drive\n")
    _run("mcopy", "-s", "-i", str(drive), str(source), "::")
    guest = lab.boot(
        ["-kernel", str(image / "stratus-test-vmlinuz"),
         "-initrd", str(image / "stratus-test-initrd"),
         "-append", "root=/dev/vda console=tty0 console=ttyS0",
         "-drive", f"file={drive},if=virtio,format=raw,readonly=on"],
        "ami",
    )  # fmt: skip
    lines = _lines(guest.wait_for("stratus-test: ready"))
    assert f"stratus-test: instance-id {instance} (from the config drive /dev/vda)" in lines
    assert "stratus-test: user-data: from the drive" in lines
    assert any("eth0 lease" in line for line in lines)
