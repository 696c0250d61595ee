"""A lab for booting the test image: a namespace with dnsmasq and a metadata server, QEMU guests.

Shared by the compute tests that boot ``scripts/build_test_image.py``'s
guest under QEMU's software emulation: ``build_image`` builds it into a
directory; ``Lab`` makes a network namespace of its own with a bridge, a
dnsmasq that gives the guest a fixed address (and the metadata route), and a
small metadata server on 169.254.169.254 serving a dict of paths in
OpenStack's format; ``Lab.boot`` starts a guest on a tap there and returns a
``Guest`` whose serial console can be waited on. ``Lab.close`` kills every
process it started and deletes the namespace (call it in a fixture's
``finally``).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

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


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


def build_image(output: Path) -> Path:
    """Build (or find up to date) the test image in ``output``; return ``output``."""
    run(sys.executable, str(ROOT / "scripts" / "build_test_image.py"), "--output", str(output))
    return output


@dataclass
class Lab:
    """A namespace with a bridge, dnsmasq and a metadata server; QEMU guests on taps."""

    workdir: Path
    namespace: str = field(default_factory=lambda: f"timg-{uuid.uuid4().hex[:8]}")
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    def start(self, metadata: dict[str, str]) -> None:
        ns = ["ip", "netns", "exec", self.namespace]
        run("ip", "netns", "add", self.namespace)
        for command in (
            "ip link set lo up",
            "ip link add br0 type bridge",
            f"ip addr add {GATEWAY}/24 dev br0",
            "ip addr add 169.254.169.254/32 dev br0",
            "ip link set br0 up",
            "ip tuntap add tap0 mode tap",
            "ip link set tap0 master br0 up",
        ):
            run(*ns, *command.split())
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
        return run("ip", "netns", "exec", self.namespace, *argv, check=check)

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate(timeout=10)
        run("ip", "netns", "del", self.namespace, check=False)


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


def console_lines(console: str) -> list[str]:
    return [line.strip() for line in console.splitlines() if line.startswith("stratus-test:")]
