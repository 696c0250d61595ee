"""The metadata proxy: guests reach ``169.254.169.254:80`` through their router.

A guest asks ``http://169.254.169.254/...``; its default route takes the
request to its router's ``qr-`` device, where the router's nftables table
(``l3.render_nft``) redirects it to ``l3.METADATA_PROXY_PORT`` (9697) inside
the ``qrouter-`` namespace. Listening there is a socket that this module made
*inside* the namespace (a short-lived thread ``setns``-es into it, creates and
binds the socket, and ends; ``l3.in_namespace``) but that is served from the
agent's own namespace: one selector thread accepts on every router's listener,
and each connection is handled on its own thread, which forwards the HTTP
request to the compute metadata service (``metadata_url``) with the headers
Nova's metadata API expects from Neutron's proxy:

* ``X-Forwarded-For``: the guest's address (the connection's source);
* ``X-Instance-ID``: the ``device_id`` of the guest's port;
* ``X-Tenant-ID``: the port's ``project_id``;
* ``X-Instance-ID-Signature``: hex HMAC-SHA256 of the instance id keyed with
  the shared secret, so the metadata service trusts the instance id.

The guest's port is found from the source address *and* the network the
request came from: after the redirect, the accepted socket's local address is
the address of the ``qr-`` device the request arrived on, which names the
router interface port and so the network; the guest port is the one on that
network holding the source address (fixed IP or allowed address pair).
Networks may overlap across routers, never within one router's interfaces.
A request from an unknown address gets 404 and never reaches the upstream.

Lifecycle: ``MetadataProxy.start()`` starts the selector thread;
``sync(snapshot, config)`` (after every converge, when the ``qrouter-``
namespaces exist) opens listeners in new router namespaces, closes those of
routers gone (or of a namespace recreated under the same name) and swaps the
address tables in one step; ``stop()`` closes everything. The module-level
``configure()`` / ``converge()`` / ``shutdown()`` wrap one process-wide proxy
so that ``reconcile`` can call ``metadata.converge`` like any other module:
``converge`` is a no-op until ``configure`` has been called (``--once`` runs
have no proxy; a proxy only makes sense in a long-running agent).

Networks without a router: a guest on a subnet that no router is attached
to is told by DHCP (option 121, ``dhcp.render``) to reach
``169.254.169.254/32`` through the DHCP port, whose ``ns-`` device holds that
address in the ``qdhcp-`` namespace (``dhcp``). A listener bound to
``169.254.169.254:80`` in that namespace serves it the same way; the
namespace itself names the network.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import hmac
import http.client
import logging
import os
import selectors
import socket
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from stratus.network.agent import dhcp, l3, namespaces
from stratus.network.agent.state import (
    METADATA_IP,
    HostConfig,
    Port,
    Snapshot,
    dhcp_namespace,
    router_namespace,
)

LOG = logging.getLogger(__name__)

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}
# Headers a guest must never be able to set itself.
TRUSTED = {"x-forwarded-for", "x-instance-id", "x-tenant-id", "x-instance-id-signature"}


def sign(shared_secret: str, instance_id: str) -> str:
    """``X-Instance-ID-Signature``: hex HMAC-SHA256 of the instance id."""
    return hmac.new(shared_secret.encode(), instance_id.encode(), hashlib.sha256).hexdigest()


def parse_url(metadata_url: str) -> urllib.parse.SplitResult:
    """The metadata service's URL; ValueError unless it is http(s) with a host."""
    url = urllib.parse.urlsplit(metadata_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError(f"metadata_url must be an http(s) URL, not {metadata_url!r}")
    return url


@dataclass(frozen=True)
class Tables:
    """Where requests come from: namespace -> router address -> network -> guest."""

    # (namespace, qr- address) -> network id
    networks: dict[tuple[str, str], str]
    # (network id, guest address) -> port
    ports: dict[tuple[str, str], Port]

    @classmethod
    def build(cls, snapshot: Snapshot, routers: list[str], dhcp_networks: list[str]) -> Tables:
        networks: dict[tuple[str, str], str] = {
            (dhcp_namespace(network_id), METADATA_IP): network_id for network_id in dhcp_networks
        }
        wanted_networks = set(dhcp_networks)
        for router_id in routers:
            for port in snapshot.router_ports(router_id):
                if port.is_gateway:
                    continue
                for fixed in port.fixed_ips:
                    networks[(router_namespace(router_id), fixed.ip_address)] = port.network_id
                    wanted_networks.add(port.network_id)
        ports: dict[tuple[str, str], Port] = {}
        for port in sorted(snapshot.ports.values(), key=lambda p: p.id):
            if port.network_id not in wanted_networks or not port.is_guest:
                continue
            for fixed in port.fixed_ips:
                ports.setdefault((port.network_id, fixed.ip_address), port)
            for address, _mac in port.allowed_address_pairs:
                if "/" not in address or address.endswith(("/32", "/128")):
                    ports.setdefault((port.network_id, address.split("/")[0]), port)
        return cls(networks, ports)

    def lookup(self, namespace: str, local: str, source: str) -> Port | None:
        network = self.networks.get((namespace, local))
        return self.ports.get((network, source)) if network else None


@dataclass
class Listener:
    namespace: str
    inode: int
    sock: socket.socket


def _listen(address: tuple[str, int]) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(128)
    sock.setblocking(False)
    return sock


def _namespace_inode(name: str) -> int | None:
    try:
        return os.stat(os.path.join(namespaces.RUN_DIR, name)).st_ino
    except OSError:
        return None


class MetadataProxy:
    """Listeners in every router namespace, served by one thread in the agent's namespace."""

    def __init__(
        self,
        metadata_url: str,
        shared_secret: str,
        port: int = l3.METADATA_PROXY_PORT,
        timeout: float = 10.0,
    ):
        self.url = parse_url(metadata_url)
        self.shared_secret = shared_secret
        self.port = port
        self.timeout = timeout
        self.tables = Tables({}, {})
        self.listeners: dict[str, Listener] = {}
        self._selector = selectors.DefaultSelector()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name="metadata-proxy", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        with self._lock:
            for listener in self.listeners.values():
                self._close(listener)
            self.listeners.clear()

    def sync(self, snapshot: Snapshot, config: HostConfig) -> None:
        """Listeners in exactly the router and DHCP namespaces built here; fresh tables."""
        routers = [r.id for r in snapshot.routers_on(config.host) if r.admin_state_up]
        dhcp_networks = sorted(dhcp.served(snapshot, config))
        # namespace -> where its listener binds
        wanted = {router_namespace(r): ("0.0.0.0", self.port) for r in routers}
        wanted |= {dhcp_namespace(n): (METADATA_IP, 80) for n in dhcp_networks}
        with self._lock:
            self.tables = Tables.build(snapshot, routers, dhcp_networks)
            for name, listener in list(self.listeners.items()):
                if name not in wanted or _namespace_inode(name) != listener.inode:
                    LOG.info("metadata proxy: closing the listener in %s", name)
                    self._close(listener)
                    del self.listeners[name]
            for name in sorted(wanted):
                if name in self.listeners:
                    continue
                inode = _namespace_inode(name)
                if inode is None:
                    continue  # l3 has not built it (yet)
                try:
                    sock = l3.in_namespace(name, functools.partial(_listen, wanted[name]))
                except OSError as exc:
                    LOG.error("metadata proxy: cannot listen in %s: %s", name, exc)
                    continue
                self.listeners[name] = Listener(name, inode, sock)
                self._selector.register(sock, selectors.EVENT_READ, name)
                LOG.info("metadata proxy: listening in %s on %s:%d", name, *wanted[name])
        self._wake()

    # --- internals --------------------------------------------------------------------

    def _close(self, listener: Listener) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(listener.sock)
        listener.sock.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    try:
                        while self._wake_r.recv(512):
                            pass
                    except BlockingIOError:
                        pass
                    continue
                try:
                    conn, address = key.fileobj.accept()  # type: ignore[union-attr]
                except (BlockingIOError, OSError):
                    continue
                conn.setblocking(True)
                conn.settimeout(self.timeout)
                threading.Thread(
                    target=self._handle, args=(conn, address, key.data), daemon=True
                ).start()

    def _handle(self, conn: socket.socket, address: tuple[str, int], namespace: str) -> None:
        try:
            _Handler(conn, address, _Server(self, namespace))
        except Exception:
            LOG.exception("metadata proxy: request from %s in %s failed", address[0], namespace)
        finally:
            conn.close()

    def forward(
        self,
        namespace: str,
        local: str,
        source: str,
        method: str,
        path: str,
        headers: Any,
        body: bytes,
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send one guest request upstream; (status, headers, body) of the answer."""
        port = self.tables.lookup(namespace, local, source)
        if port is None:
            LOG.warning("metadata proxy: no port for %s via %s in %s", source, local, namespace)
            return 404, [("Content-Type", "text/plain")], b"Not Found\n"
        out = {k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP | TRUSTED}
        out.update(
            {
                "X-Forwarded-For": source,
                "X-Instance-ID": port.device_id,
                "X-Tenant-ID": port.project_id,
                "X-Instance-ID-Signature": sign(self.shared_secret, port.device_id),
                "Connection": "close",
            }
        )
        kind = (
            http.client.HTTPSConnection
            if self.url.scheme == "https"
            else http.client.HTTPConnection
        )
        upstream = kind(self.url.hostname or "", self.url.port, timeout=self.timeout)
        target = self.url.path.rstrip("/") + path
        try:
            upstream.request(method, target, body=body or None, headers=out)
            answer = upstream.getresponse()
            data = answer.read()
            kept = [(k, v) for k, v in answer.getheaders() if k.lower() not in HOP_BY_HOP]
            return answer.status, kept, data
        except (OSError, http.client.HTTPException) as exc:
            LOG.error("metadata proxy: upstream %s: %s", self.url.geturl(), exc)
            return 502, [("Content-Type", "text/plain")], b"Bad Gateway\n"
        finally:
            upstream.close()


@dataclass
class _Server:
    """What a request handler needs to know about where it was accepted."""

    proxy: MetadataProxy
    namespace: str


class _Handler(BaseHTTPRequestHandler):
    server: Any
    protocol_version = "HTTP/1.0"
    server_version = "stratus-metadata-proxy"

    def _proxy(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        local = self.connection.getsockname()[0]
        status, headers, data = self.server.proxy.forward(
            self.server.namespace,
            local,
            self.client_address[0],
            self.command,
            self.path,
            self.headers,
            body,
        )
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _proxy

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("metadata proxy %s: " + format, self.client_address[0], *args)


# --- one proxy per agent process, for reconcile -----------------------------------

_PROXY: MetadataProxy | None = None


def configure(
    metadata_url: str, shared_secret: str, port: int = l3.METADATA_PROXY_PORT
) -> MetadataProxy:
    """Create and start the agent's proxy (once; a second call replaces it)."""
    global _PROXY
    if _PROXY is not None:
        _PROXY.stop()
    _PROXY = MetadataProxy(metadata_url, shared_secret, port)
    _PROXY.start()
    return _PROXY


def converge(snapshot: Snapshot, config: HostConfig) -> None:
    """Sync the agent's proxy with the routers built here (no-op without ``configure``)."""
    if _PROXY is None:
        LOG.debug("metadata proxy not configured; nothing to do")
        return
    _PROXY.sync(snapshot, config)


def shutdown() -> None:
    global _PROXY
    if _PROXY is not None:
        _PROXY.stop()
        _PROXY = None
