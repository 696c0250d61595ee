"""Options of the ``[network]`` section (see docs/configuration.md).

Segmentation ranges are per physical network for VLAN (``physnet:first:last``)
and global for the overlays; a network's segmentation ID is taken from them,
never twice (the allocation table's primary key guarantees it). A network's
``mtu`` is ``global_physnet_mtu`` less what its encapsulation costs.
"""

from stratus.common.auth import register_authtoken
from stratus.common.config import Option, register

SECTION = "network"
AUTHTOKEN_SECTION = "network_authtoken"

NETWORK_TYPES = ("flat", "vlan", "vxlan", "gre")

register(
    SECTION,
    [
        Option("bind_host", default="127.0.0.1", help="Address the API listens on."),
        Option("bind_port", "int", 9696, "Port the API listens on.", minimum=1),
        Option("workers", "int", 2, "Worker processes.", minimum=1),
        Option(
            "public_endpoint",
            default="",
            help="Base URL in version documents and links; empty derives it from the request.",
        ),
        Option("policy_file", default="", help="Operator overrides of the RBAC rules."),
        Option(
            "max_request_body_size", "int", 1048576, "Largest accepted JSON body.", minimum=1024
        ),
        Option(
            "tenant_network_types",
            "list",
            ["vxlan"],
            "Types of the networks projects create without provider attributes, in order of "
            "preference (vxlan, gre, vlan).",
        ),
        Option(
            "flat_networks",
            "list",
            [],
            "Physical networks on which flat networks may be created ('*' for any).",
        ),
        Option(
            "network_vlan_ranges",
            "list",
            [],
            "physnet:first:last VLAN ranges that projects' vlan networks draw from; a bare "
            "physnet allows admin-chosen VLAN IDs only.",
        ),
        Option("vni_ranges", "list", ["1:65535"], "first:last VXLAN network identifiers."),
        Option("gre_tunnel_id_ranges", "list", ["1:65535"], "first:last GRE keys."),
        Option(
            "global_physnet_mtu",
            "int",
            1500,
            "MTU of the underlying physical network; overlays subtract their overhead.",
            minimum=68,
        ),
        Option(
            "base_mac", default="fa:16:3e:00:00:00", help="The first three octets of port MACs."
        ),
        Option("dns_domain", default="openstacklocal", help="Domain of the ports' DNS names."),
        Option(
            "agent_down_time",
            "int",
            75,
            "Seconds after its last report when an agent counts as down.",
            minimum=5,
        ),
        Option(
            "network_hosts",
            "list",
            [],
            "Hosts that may run DHCP and routers; empty: any host with a live agent.",
        ),
        Option("quota_network", "int", 100, "Networks per project (-1: unlimited).", minimum=-1),
        Option("quota_subnet", "int", 100, "Subnets per project.", minimum=-1),
        Option("quota_port", "int", 500, "Ports per project.", minimum=-1),
        Option("quota_router", "int", 10, "Routers per project.", minimum=-1),
        Option("quota_floatingip", "int", 50, "Floating IPs per project.", minimum=-1),
        Option("quota_security_group", "int", 10, "Security groups per project.", minimum=-1),
        Option(
            "quota_security_group_rule", "int", 100, "Security group rules per project.", minimum=-1
        ),
        Option("pagination_max_limit", "int", 1000, "Most items in one page.", minimum=1),
    ],
)

register_authtoken(AUTHTOKEN_SECTION)
