"""Options of the ``[image]`` section (see docs/configuration.md)."""

from stratus.common.auth import register_authtoken
from stratus.common.config import Option, register

SECTION = "image"

DISK_FORMATS = ("ami", "ari", "aki", "iso", "qcow2", "raw", "vdi", "vhd", "vhdx", "vmdk", "ploop")
CONTAINER_FORMATS = ("bare", "ovf", "ova", "ami", "ari", "aki", "compressed")

register(
    SECTION,
    [
        Option("bind_host", default="127.0.0.1", help="Address the API listens on."),
        Option("bind_port", "int", 9292, "Port the API listens on.", minimum=1),
        Option("workers", "int", 2, "Worker processes.", minimum=1),
        Option(
            "public_endpoint",
            default="",
            help="Base URL in version documents and links; empty derives it from the request.",
        ),
        Option("policy_file", default="", help="Operator overrides of the RBAC rules."),
        Option(
            "max_request_body_size",
            "int",
            65536,
            "Largest accepted JSON body in bytes (image data has its own cap).",
            minimum=1024,
        ),
        Option(
            "image_size_cap",
            "int",
            1099511627776,
            "Largest image in bytes that can be uploaded or staged.",
            minimum=1,
        ),
        Option(
            "store",
            default="filesystem",
            choices=("filesystem", "swift"),
            help="Image data backend: a directory (filesystem) or object storage (swift).",
        ),
        Option(
            "filesystem_store_datadir",
            default="/var/lib/stratus/images",
            help="Directory of the image data (filesystem store).",
        ),
        Option(
            "staging_dir",
            default="/var/lib/stratus/image-staging",
            help="Directory of data staged for interoperable import.",
        ),
        Option(
            "swift_store_auth_url",
            default="",
            help="Identity URL of the Swift user (swift store); empty: [image_authtoken] auth_url.",
        ),
        Option(
            "swift_store_user",
            default="",
            help="User whose project's account holds the images; empty: [image_authtoken] "
            "username. It needs an operator role (member) on swift_store_project_name.",
        ),
        Option(
            "swift_store_password",
            default="",
            help="That user's password; empty: [image_authtoken] password.",
        ),
        Option(
            "swift_store_project_name",
            default="",
            help="Project whose account holds the images; empty: [image_authtoken] project_name.",
        ),
        Option(
            "swift_store_user_domain_name",
            default="",
            help="Domain of swift_store_user; empty: [image_authtoken] user_domain_name.",
        ),
        Option(
            "swift_store_project_domain_name",
            default="",
            help="Domain of swift_store_project_name; empty: [image_authtoken] "
            "project_domain_name.",
        ),
        Option(
            "swift_store_region_name",
            default="",
            help="Region of the object-store endpoint in the catalog; empty: any.",
        ),
        Option(
            "swift_store_interface",
            default="internal",
            choices=("internal", "public", "admin"),
            help="Interface of the object-store endpoint in the catalog.",
        ),
        Option(
            "swift_store_endpoint",
            default="",
            help="Account URL instead of the catalog's, e.g. "
            "http://swift:8080/v1/AUTH_{project_id}; empty: the catalog's.",
        ),
        Option(
            "swift_store_container",
            default="stratus-images",
            help="Container of the images (made at start); segments go to <container>_segments.",
        ),
        Option(
            "swift_store_segment_size",
            "int",
            268435456,
            "Images larger than this many bytes are stored as segments of this size "
            "(below Swift's largest object, 5 GiB).",
            minimum=1048576,
        ),
        Option(
            "swift_store_timeout",
            "float",
            60.0,
            "Seconds to wait for identity and Swift.",
            minimum=1,
        ),
        Option(
            "disk_formats",
            "list",
            list(DISK_FORMATS),
            "Disk formats accepted (a subset of those Stratus knows).",
        ),
        Option(
            "container_formats",
            "list",
            list(CONTAINER_FORMATS),
            "Container formats accepted (a subset of those Stratus knows).",
        ),
        Option(
            "import_convert_to",
            default="",
            choices=("", "raw", "qcow2"),
            help="Disk format images imported with glance-direct are converted to; "
            "empty keeps the uploaded format.",
        ),
        Option(
            "inspect_timeout",
            "int",
            60,
            "Seconds qemu-img may spend inspecting an upload.",
            minimum=1,
        ),
        Option(
            "quota_image_count",
            "int",
            -1,
            "Images a project may own; -1 is unlimited.",
            minimum=-1,
        ),
        Option(
            "quota_image_size_total",
            "int",
            -1,
            "Bytes of image data a project may own; -1 is unlimited.",
            minimum=-1,
        ),
        Option("limit_param_default", "int", 25, "Images in a page without ?limit.", minimum=1),
        Option("api_limit_max", "int", 1000, "Most images in one page.", minimum=1),
    ],
)

AUTHTOKEN_SECTION = "image_authtoken"
register_authtoken(AUTHTOKEN_SECTION)
