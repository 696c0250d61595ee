"""Options of the ``[identity]`` section (see docs/configuration.md)."""

from stratus.common.config import Option, register

SECTION = "identity"

register(
    SECTION,
    [
        Option("bind_host", default="127.0.0.1", help="Address the API listens on."),
        Option("bind_port", "int", 5000, "Port the API listens on.", minimum=1),
        Option("workers", "int", 2, "Worker processes.", minimum=1),
        Option(
            "public_endpoint",
            default="",
            help="Base URL in version documents; empty derives it from the request.",
        ),
        Option(
            "key_repository",
            default="/etc/stratus/token-keys",
            help="Directory of the token encryption keys.",
        ),
        Option(
            "max_active_keys",
            "int",
            3,
            "Keys kept by rotation (staged + primary + old).",
            minimum=2,
        ),
        Option("token_expiration", "int", 3600, "Token lifetime in seconds.", minimum=1),
        Option(
            "lockout_failure_attempts",
            "int",
            0,
            "Failed password attempts before a lockout; 0 disables lockout.",
            minimum=0,
        ),
        Option("lockout_duration", "int", 1800, "Seconds a locked-out user waits.", minimum=1),
        Option("policy_file", default="", help="Operator overrides of the RBAC rules."),
        Option(
            "max_request_body_size", "int", 114688, "Largest accepted body in bytes.", minimum=1024
        ),
        Option(
            "admin_project_name",
            default="admin",
            help="Project whose admins administer the whole cloud; empty: every project "
            "(Keystone's legacy behaviour, needed by some test suites).",
        ),
        Option(
            "admin_project_domain_name", default="Default", help="Domain of admin_project_name."
        ),
        Option("list_limit", "int", 1000, "Most items a list answers in one page.", minimum=1),
    ],
)
