"""Named network namespaces (``ip netns``'s ``/run/netns``) and commands in them.

Named namespaces are what operators inspect (``ip netns exec qrouter-... ip a``),
so the agent uses the same convention as iproute2: a namespace is a file
under ``/run/netns`` bind-mounted from ``/proc/<pid>/ns/net``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator, Sequence

from pyroute2 import IPRoute, NetNS, netns

RUN_DIR = "/run/netns"

# Prefixes of the namespaces the agent owns; others are never touched.
OWNED_PREFIXES = ("qdhcp-", "qrouter-")


class CommandError(RuntimeError):
    """A command the agent ran failed; the message carries its stderr."""


def exists(name: str) -> bool:
    return os.path.exists(os.path.join(RUN_DIR, name))


def listed() -> list[str]:
    try:
        return sorted(os.listdir(RUN_DIR))
    except FileNotFoundError:
        return []


def owned() -> list[str]:
    return [n for n in listed() if n.startswith(OWNED_PREFIXES)]


def ensure(name: str) -> bool:
    """Create the namespace if missing (with ``lo`` up); True if created."""
    if exists(name):
        return False
    netns.create(name)
    with ipr(name) as ip:
        index = ip.link_lookup(ifname="lo")
        if index:
            ip.link("set", index=index[0], state="up")
    return True


def remove(name: str) -> bool:
    """Delete the namespace; True if it was there."""
    if not exists(name):
        return False
    netns.remove(name)
    return True


@contextlib.contextmanager
def ipr(name: str | None = None) -> Iterator[IPRoute]:
    """An IPRoute socket in the namespace ``name`` (None: the agent's own)."""
    sock: IPRoute = NetNS(name) if name else IPRoute()
    try:
        yield sock
    finally:
        sock.close()


def run(
    argv: Sequence[str],
    namespace: str | None = None,
    *,
    input: str | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run a command, inside ``namespace`` when given (``ip netns exec``)."""
    command = ["ip", "netns", "exec", namespace, *argv] if namespace else list(argv)
    result = subprocess.run(command, input=input, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise CommandError(
            f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()}"
        )
    return result


def nft(script: str, namespace: str | None = None) -> None:
    """Apply an nftables script atomically (``nft -f -``)."""
    run(["nft", "-f", "-"], namespace, input=script)
