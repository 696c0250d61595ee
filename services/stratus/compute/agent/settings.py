"""Options of the ``[compute_agent]`` section (see docs/configuration.md)."""

from stratus.common.auth import register_authtoken
from stratus.common.config import Option, register

SECTION = "compute_agent"
AUTHTOKEN_SECTION = "compute_agent_authtoken"

register(
    SECTION,
    [
        Option("host", default="", help="This host's name for the scheduler; empty: hostname."),
        Option(
            "availability_zone",
            default="",
            help="The zone of this host; empty: [compute] default_availability_zone.",
        ),
        Option(
            "driver",
            default="libvirt",
            choices=("libvirt", "fake"),
            help="libvirt: real guests; fake: no hypervisor (scale tests).",
        ),
        Option(
            "virt_type",
            default="kvm",
            choices=("kvm", "qemu"),
            help="kvm: hardware virtualisation; qemu: software emulation (no usable KVM).",
        ),
        Option(
            "instances_path",
            default="/var/lib/stratus-compute/instances",
            help="Disks, image cache and console logs of the guests (outside the 0750 "
            "/var/lib/stratus, since QEMU may run as another user).",
        ),
        Option(
            "libvirt_uri",
            default="qemu:///system",
            help="The libvirt connection of the hypervisor (driver = libvirt).",
        ),
        Option(
            "cpu_mode",
            default="auto",
            choices=("auto", "host-model", "host-passthrough", "none"),
            help="Guest CPU model; auto: host-model with kvm, QEMU's default with qemu; "
            "none: QEMU's default.",
        ),
        Option(
            "shutdown_timeout",
            "float",
            60.0,
            "Seconds a guest has to power off after the ACPI power button (stop, soft "
            "reboot) before it is destroyed.",
            minimum=0,
        ),
        Option("image_api_url", default="", help="The image API; empty: the catalog's."),
        Option("network_api_url", default="", help="The network API; empty: the catalog's."),
        Option("resync_interval", "float", 2.0, "Seconds between two passes.", minimum=0.1),
        Option("workers", "int", 4, "Tasks carried out at once.", minimum=1),
        Option("api_url", default="", help="The compute API; empty: the catalog's."),
        Option("interface", default="internal", help="Catalog interface of the endpoints."),
        Option("region_name", default="", help="Region of the endpoints; empty: any."),
        Option("timeout", "float", 30.0, "Seconds to wait for an API.", minimum=0.1),
        Option("cpu_allocation_ratio", "float", 4.0, "vCPUs per physical CPU.", minimum=0.1),
        Option("ram_allocation_ratio", "float", 1.0, "Guest RAM per MiB of RAM.", minimum=0.1),
        Option("disk_allocation_ratio", "float", 1.0, "Guest disk per GiB of disk.", minimum=0.1),
        Option(
            "reserved_host_memory_mb",
            "int",
            512,
            "MiB of RAM kept for the host itself.",
            minimum=0,
        ),
        Option(
            "fake_hosts",
            "int",
            1,
            "With driver = fake: how many hosts this agent plays (<host>-1, <host>-2, ...).",
            minimum=1,
        ),
        Option(
            "image_cache_interval",
            "float",
            2400.0,
            "Seconds between two prunings of the image cache (<instances_path>/_base); 0: never.",
            minimum=0,
        ),
        Option(
            "image_cache_min_age",
            "float",
            86400.0,
            "Seconds a cached image no disk uses is kept after its last use before "
            "pruning removes it (a server of that image booted again soon finds it).",
            minimum=60,
        ),
        Option("fake_vcpus", "int", 16, "With driver = fake: each host's CPUs.", minimum=1),
        Option("fake_memory_mb", "int", 65536, "With driver = fake: each host's RAM.", minimum=1),
        Option("fake_local_gb", "int", 1000, "With driver = fake: each host's disk.", minimum=1),
    ],
)

register_authtoken(AUTHTOKEN_SECTION)
