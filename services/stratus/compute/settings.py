"""Options of the ``[compute]`` section (see docs/configuration.md).

Quota defaults apply to every project without its own limits; ``-1`` means
unlimited. Allocation ratios say how far the scheduler may overcommit a
hypervisor's vCPUs, RAM and disk.
"""

from stratus.common.auth import register_authtoken
from stratus.common.config import Option, register

SECTION = "compute"
AUTHTOKEN_SECTION = "compute_authtoken"

# quota resource -> (default, help)
QUOTA_DEFAULTS: dict[str, tuple[int, str]] = {
    "instances": (10, "Servers per project."),
    "cores": (20, "vCPUs of a project's servers together."),
    "ram": (51200, "MiB of RAM of a project's servers together."),
    "key_pairs": (100, "Key pairs per user."),
    "server_groups": (10, "Server groups per project."),
    "server_group_members": (10, "Servers in one server group."),
    "metadata_items": (128, "Metadata items of one server."),
}

register(
    SECTION,
    [
        Option("bind_host", default="127.0.0.1", help="Address the API listens on."),
        Option("bind_port", "int", 8774, "Port the API listens on.", minimum=1),
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
            "default_availability_zone",
            default="nova",
            help="The zone of hosts the operator put in no other zone.",
        ),
        Option("pagination_max_limit", "int", 1000, "Most items in one page.", minimum=1),
        Option(
            "service_down_time",
            "int",
            60,
            "Seconds after its last report when a compute host counts as down.",
            minimum=5,
        ),
        Option(
            "scheduler_weigher",
            default="spread",
            help="spread: the host with the most free RAM first; pack: the least.",
            choices=("spread", "pack"),
        ),
        Option(
            "scheduler_interval",
            "float",
            0.5,
            "Seconds between two looks of the scheduler for work.",
            minimum=0.05,
        ),
        *[
            Option(f"quota_{name}", "int", default, text, minimum=-1)
            for name, (default, text) in QUOTA_DEFAULTS.items()
        ],
    ],
)

register_authtoken(AUTHTOKEN_SECTION)
