"""An API keeps an idle client connection open longer than clients poll.

The openstack CLI's ``--wait`` polls every 5 s on one kept-alive
connection. Had the server closed idle connections after 5 s (uvicorn's
default), a poll now and then would be sent just as the server closed the
connection, and fail with "connection reset by peer".
"""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit


def _get(sock: socket.socket, host: str) -> bytes:
    sock.sendall(f"GET /v3 HTTP/1.1\r\nHost: {host}\r\nAccept: */*\r\n\r\n".encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"the server closed the connection; read {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n", 1)[0]


def test_an_idle_connection_outlives_a_polling_interval(identity_server):
    url = urlsplit(identity_server.url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    with socket.create_connection((host, port), timeout=10) as sock:
        assert _get(sock, f"{host}:{port}").startswith(b"HTTP/1.1 200")
        time.sleep(6.5)
        assert _get(sock, f"{host}:{port}").startswith(b"HTTP/1.1 200")
