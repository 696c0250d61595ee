"""The metadata proxy on a real kernel: guest -> router -> proxy -> a real upstream.

The upstream is a small HTTP server in the simulated host's own namespace
that answers with the path and the headers it got. The proxy runs as the
agent would run it, in a process of its own in the host's namespace
(``MetadataProxy`` started, then synced with each snapshot named on its
stdin); the routers are built by the agent's normal pass.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.agent import builders as b
from tests.agent.conftest import PYTHON, SimHost, SimLab, routes_121
from tests.agent.test_l3 import HOST, Servers, router_lab, static_guest

SECRET = "s3cret-for-tests"
UPSTREAM_PORT = 8775

UPSTREAM = """
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "headers": dict(self.headers)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

server = HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
print("ready", flush=True)
server.serve_forever()
"""

PROXY = """
import json, sys
from stratus.network.agent import metadata
from stratus.network.agent.state import HostConfig, Snapshot

proxy = metadata.MetadataProxy(sys.argv[1], sys.argv[2])
proxy.start()
config = HostConfig(host=sys.argv[3])
print("ready", flush=True)
for line in sys.stdin:
    with open(line.strip()) as f:
        proxy.sync(Snapshot.from_api(json.load(f)), config)
    print("synced", sorted(proxy.listeners), flush=True)
"""

FETCH = """
import sys, urllib.request, urllib.error
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
except OSError as e:
    print("FAIL", e)
"""


@pytest.fixture
def servers() -> Iterator[Servers]:
    s = Servers()
    try:
        yield s
    finally:
        s.close()


def fetch(host: SimHost, namespace: str, url: str) -> tuple[str, str]:
    out = host.run(["ip", "netns", "exec", namespace, PYTHON, "-c", FETCH, url], timeout=30)
    status, _, body = out.stdout.strip().partition(" ")
    return status, body


def sync(host: SimHost, proxy: subprocess.Popen[str], docs: dict[str, Any], name: str) -> str:
    path = host.workdir / f"{name}.json"
    path.write_text(json.dumps(docs))
    assert proxy.stdin is not None and proxy.stdout is not None
    proxy.stdin.write(f"{path}\n")
    proxy.stdin.flush()
    line = proxy.stdout.readline()
    assert line.startswith("synced"), line
    return line


def start_proxy(host: SimHost, servers: Servers) -> subprocess.Popen[str]:
    """The upstream and the proxy, each in a process of its own in the host's namespace."""
    servers.start(host, None, [PYTHON, "-c", UPSTREAM, str(UPSTREAM_PORT)])
    proxy = subprocess.Popen(
        ["nsenter", "-t", str(host.pid), "-m", "-n", PYTHON, "-c", PROXY,
         f"http://127.0.0.1:{UPSTREAM_PORT}", SECRET, HOST],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    servers.processes.append(proxy)
    assert proxy.stdout is not None and "ready" in proxy.stdout.readline()
    return proxy


def check_forwarded(host: SimHost, namespace: str, port: dict[str, Any], address: str) -> None:
    """A guest's request reaches the upstream, signed as coming from ``port``."""
    status, body = fetch(host, namespace, "http://169.254.169.254/latest/meta-data/")
    assert status == "200", body
    seen = json.loads(body)
    headers = {k.lower(): v for k, v in seen["headers"].items()}
    assert seen["path"] == "/latest/meta-data/"
    assert headers["x-instance-id"] == port["device_id"]
    assert headers["x-tenant-id"] == "p1"
    assert headers["x-forwarded-for"] == address
    expected = hmac.new(SECRET.encode(), port["device_id"].encode(), hashlib.sha256)
    assert headers["x-instance-id-signature"] == expected.hexdigest()


def test_metadata_through_the_router(sim_lab: SimLab, servers: Servers) -> None:
    lab = router_lab(sim_lab)
    host = lab.host
    port_a, port_b = lab.guest_ports
    guest_a = static_guest(host, port_a, 24, "10.1.0.1")
    guest_b = static_guest(host, port_b, 24, "10.2.0.1")
    lab.converge()
    rules = host.run(["ip", "netns", "exec", lab.namespace, "nft", "list", "ruleset"]).stdout
    assert "169.254.169.254" in rules and "redirect to :9697" in rules

    proxy = start_proxy(host, servers)
    assert lab.namespace in sync(host, proxy, lab.docs(), "s1")

    for guest, port, address in ((guest_a, port_a, "10.1.0.5"), (guest_b, port_b, "10.2.0.5")):
        check_forwarded(host, guest.namespace, port, address)

    # an address no port holds gets 404, and the guest cannot forge the headers
    guest_a.run(["ip", "addr", "add", "10.1.0.99/24", "dev", "eth0"])
    out = host.run(
        ["ip", "netns", "exec", guest_a.namespace, "curl", "-s", "-o", "/dev/null", "-w",
         "%{http_code}", "--interface", "10.1.0.99", "-H", "X-Instance-ID: forged",
         "http://169.254.169.254/latest/meta-data/"],
        check=False,
    )  # fmt: skip
    assert out.stdout.strip() == "404"

    # the proxy's port is not reachable from the external side
    rules_input = [line for line in rules.splitlines() if "9697" in line]
    assert any("drop" in line for line in rules_input)

    # the router leaves: its listener closes and its namespace goes away for good
    lab.converge(with_router=False)
    line = sync(host, proxy, lab.docs(with_router=False), "s2")
    assert lab.namespace not in line
    assert lab.namespace not in host.namespaces()


def test_metadata_on_a_network_without_a_router(sim_lab: SimLab, servers: Servers) -> None:
    """DHCP routes 169.254.169.254 to the DHCP port; the proxy listens in ``qdhcp-``."""
    host = sim_lab.host(HOST)
    net = b.network("local")
    sub = b.subnet(net, "10.7.0.0/24")
    dhcp_port = b.dhcp_port(net, sub, "10.7.0.2", HOST)
    vm = b.port(net, sub, "10.7.0.5", HOST)
    docs = b.docs(networks=[net], subnets=[sub], ports=[dhcp_port, vm])
    guest = host.guest(vm["id"], vm["mac_address"])
    host.agent(docs)
    namespace = f"qdhcp-{net['id']}"
    proxy = start_proxy(host, servers)
    assert namespace in sync(host, proxy, docs, "s1")

    offer = guest.dhcp()  # the guest takes the classless routes, as cloud-init's client does
    assert ("169.254.169.254/32", "10.7.0.2") in routes_121(offer["classless_routes"])
    check_forwarded(host, guest.namespace, vm, "10.7.0.5")

    # The network leaves this host: the listener closes with its namespace.
    host.agent(b.docs())
    assert namespace not in sync(host, proxy, b.docs(), "s2")
    assert namespace not in host.namespaces()
