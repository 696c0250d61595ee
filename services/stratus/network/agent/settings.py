"""Options of the ``[network_agent]`` section and the agent's identity credentials.

The agent logs in to identity as its own user with the options of
``[network_agent_authtoken]`` (the same shape every service's
``[<component>_authtoken]`` section has) and finds the network API in the
catalog unless ``api_url`` names it.
"""

from __future__ import annotations

import socket
from typing import Any

from stratus.common.auth import register_authtoken
from stratus.common.config import Option, register
from stratus.network.agent.state import HostConfig

SECTION = "network_agent"
AUTHTOKEN_SECTION = "network_agent_authtoken"

register(
    SECTION,
    [
        Option(
            "host",
            default="",
            help="This host's name, as ports' binding:host_id name it; empty: the hostname.",
        ),
        Option(
            "local_ip",
            default="",
            help="This host's address on the underlay: the VXLAN/GRE tunnel endpoint.",
        ),
        Option(
            "physical_interface_mappings",
            "list",
            [],
            "Provider networks carried here, as physnet:interface (flat and VLAN networks).",
        ),
        Option(
            "tunnel_types",
            "list",
            ["vxlan"],
            "Overlay types this host terminates (vxlan, gre).",
        ),
        Option("vxlan_port", "int", 4789, "UDP port of VXLAN.", minimum=1),
        Option(
            "state_dir",
            default="/var/lib/stratus-network",
            help="Directory of the agent's own state (dnsmasq files and leases).",
        ),
        Option(
            "resync_interval",
            "float",
            10.0,
            "Seconds between two passes (fetch, converge, report).",
            minimum=0.1,
        ),
        Option(
            "api_url",
            default="",
            help="Network API URL (e.g. http://controller:9696) instead of the catalog's.",
        ),
        Option(
            "interface",
            default="internal",
            choices=("internal", "public", "admin"),
            help="Interface of the network endpoint in the catalog.",
        ),
        Option("region_name", default="", help="Region of the network endpoint; empty: any."),
        Option("timeout", "float", 30.0, "Seconds to wait for the network API.", minimum=0.1),
        Option(
            "metadata_url",
            default="",
            help=(
                "The compute metadata service (e.g. http://controller:8775) that guests reach "
                "on 169.254.169.254 through routers and DHCP namespaces; empty: no proxy."
            ),
        ),
        Option(
            "metadata_shared_secret",
            default="",
            help="Key of the X-Instance-ID-Signature HMAC; the metadata service holds the same.",
        ),
    ],
)

register_authtoken(AUTHTOKEN_SECTION)


def parse_mappings(items: list[str]) -> dict[str, str]:
    """``["physnet1:eth1", ...]`` -> ``{"physnet1": "eth1"}``; ValueError on a bad item."""
    mappings: dict[str, str] = {}
    for item in items:
        physnet, sep, interface = item.partition(":")
        if not sep or not physnet.strip() or not interface.strip():
            raise ValueError(f"physical_interface_mappings: {item!r} is not physnet:interface")
        if len(interface.strip()) > 15:
            raise ValueError(f"physical_interface_mappings: {interface!r} is not an interface")
        mappings[physnet.strip()] = interface.strip()
    return mappings


def host_config(config: Any) -> HostConfig:
    """The ``HostConfig`` the ``[network_agent]`` section describes."""
    options = config.section(SECTION)
    tunnel_types = tuple(t.lower() for t in options.tunnel_types)
    unknown = set(tunnel_types) - {"vxlan", "gre"}
    if unknown:
        raise ValueError(f"tunnel_types: unknown {', '.join(sorted(unknown))}")
    return HostConfig(
        host=options.host or socket.gethostname(),
        local_ip=options.local_ip or None,
        physical_interfaces=parse_mappings(options.physical_interface_mappings),
        tunnel_types=tunnel_types,
        vxlan_port=options.vxlan_port,
        state_dir=options.state_dir,
    )


def metadata_proxy(config: Any) -> tuple[str, str] | None:
    """``(metadata_url, shared secret)``, or None when the proxy is off; ValueError if half set."""
    options = config.section(SECTION)
    if not options.metadata_url:
        return None
    if not options.metadata_shared_secret:
        raise ValueError(
            f"[{SECTION}] metadata_url is set but metadata_shared_secret is empty: "
            "the metadata service would not trust the instance IDs the proxy sends"
        )
    return options.metadata_url, options.metadata_shared_secret
