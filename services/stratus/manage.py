"""``stratus-manage``: the operator's command line.

Every subcommand prints one JSON object; those that can change state report
``"changed"`` truthfully so that automation (the Ansible roles) can too.
Errors go to stderr with a non-zero exit: 1 for a failed check, 2 for bad
configuration or usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from typing import Any

from stratus.common import db as dbmod
from stratus.common.config import Config, ConfigError


def _print(result: dict[str, Any]) -> None:
    print(json.dumps(result, sort_keys=True))


def cmd_db_sync(config: Config, _args: argparse.Namespace) -> int:
    engine = dbmod.engine_from_config(config)
    _print(dbmod.sync(engine))
    return 0


def cmd_db_version(config: Config, _args: argparse.Namespace) -> int:
    engine = dbmod.engine_from_config(config)
    _print({"revisions": dbmod.current_revisions(engine), "heads": dbmod.head_revisions()})
    return 0


def _key_repository(config: Config) -> Any:
    from stratus.identity import settings  # noqa: F401 - registers [identity]
    from stratus.identity.keys import KeyRepository

    section = config.section("identity")
    return KeyRepository(section.key_repository, section.max_active_keys)


def _chown_to_service_user(path: str) -> None:
    """Keys belong to the user the service runs as, when that user exists."""
    import pwd

    owner = os.environ.get("STRATUS_SERVICE_USER", "stratus")
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        return
    if os.geteuid() != 0:
        return
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in files + dirs:
            os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def cmd_token_setup_keys(config: Config, _args: argparse.Namespace) -> int:
    repository = _key_repository(config)
    changed = repository.setup()
    _chown_to_service_user(str(repository.path))
    _print({"changed": changed, "key_repository": str(repository.path)})
    return 0


def cmd_token_rotate_keys(config: Config, _args: argparse.Namespace) -> int:
    repository = _key_repository(config)
    result = repository.rotate()
    _chown_to_service_user(str(repository.path))
    _print({"changed": True, **result})
    return 0


def cmd_bootstrap(config: Config, args: argparse.Namespace) -> int:
    from stratus.identity.bootstrap import BootstrapSpec, bootstrap

    password = os.environ.get("STRATUS_BOOTSTRAP_PASSWORD")
    if not password:
        print(
            "stratus-manage: STRATUS_BOOTSTRAP_PASSWORD must hold the admin password",
            file=sys.stderr,
        )
        return 2
    spec = BootstrapSpec(
        username=args.username,
        password=password,
        project=args.project,
        region=args.region,
        public_url=args.public_url,
        internal_url=args.internal_url,
        admin_url=args.admin_url,
        service_name=args.service_name,
    )
    _print(bootstrap(dbmod.Database(dbmod.engine_from_config(config)), spec))
    return 0


def cmd_service_register(config: Config, args: argparse.Namespace) -> int:
    from stratus.identity.bootstrap import (
        NotBootstrapped,
        ServiceSpec,
        UnknownRole,
        register_service,
    )

    password = os.environ.get("STRATUS_SERVICE_PASSWORD")
    if not password:
        print(
            "stratus-manage: STRATUS_SERVICE_PASSWORD must hold the service user's password",
            file=sys.stderr,
        )
        return 2
    spec = ServiceSpec(
        type=args.type,
        name=args.name,
        description=args.description,
        user=args.user or args.name,
        password=password,
        project=args.project,
        region=args.region,
        public_url=args.public_url,
        internal_url=args.internal_url,
        admin_url=args.admin_url,
        roles=tuple(args.role),
    )
    try:
        result = register_service(dbmod.Database(dbmod.engine_from_config(config)), spec)
    except (NotBootstrapped, UnknownRole) as exc:
        print(f"stratus-manage: {exc}", file=sys.stderr)
        return 1
    _print(result)
    return 0


def cmd_status(config: Config, _args: argparse.Namespace) -> int:
    problems = []
    engine = dbmod.engine_from_config(config)
    current, reason = dbmod.is_current(engine)
    if not current:
        problems.append(reason)
    try:
        _key_repository(config).fernet()
    except Exception as exc:
        problems.append(str(exc))
    _print({"ok": not problems, "problems": problems})
    return 0 if not problems else 1


COMMANDS: dict[tuple[str, str | None], Callable[[Config, argparse.Namespace], int]] = {
    ("db", "sync"): cmd_db_sync,
    ("db", "version"): cmd_db_version,
    ("token", "setup-keys"): cmd_token_setup_keys,
    ("token", "rotate-keys"): cmd_token_rotate_keys,
    ("bootstrap", None): cmd_bootstrap,
    ("service", "register"): cmd_service_register,
    ("status", None): cmd_status,
}


def build_parser() -> argparse.ArgumentParser:
    # --config-file is accepted before or after the subcommand.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config-file",
        default=argparse.SUPPRESS,
        help="default: $STRATUS_CONFIG or /etc/stratus/stratus.conf",
    )
    parser = argparse.ArgumentParser(prog="stratus-manage", description=__doc__, parents=[common])
    groups = parser.add_subparsers(dest="group", required=True)
    db = groups.add_parser("db", help="database schema", parents=[common]).add_subparsers(
        dest="action", required=True
    )
    db.add_parser("sync", help="create or upgrade the schema", parents=[common])
    db.add_parser("version", help="current and newest revisions", parents=[common])
    token = groups.add_parser("token", help="token keys", parents=[common]).add_subparsers(
        dest="action", required=True
    )
    token.add_parser("setup-keys", help="create the key repository if missing", parents=[common])
    token.add_parser("rotate-keys", help="rotate the token keys", parents=[common])
    boot = groups.add_parser(
        "bootstrap",
        help="first admin, roles and the identity endpoint "
        "(password from $STRATUS_BOOTSTRAP_PASSWORD)",
        parents=[common],
    )
    boot.add_argument("--username", default="admin")
    boot.add_argument("--project", default="admin")
    boot.add_argument("--region", default="RegionOne")
    boot.add_argument("--service-name", default="keystone")
    boot.add_argument("--public-url", required=True)
    boot.add_argument("--internal-url")
    boot.add_argument("--admin-url")
    service = groups.add_parser(
        "service", help="other services in the catalog", parents=[common]
    ).add_subparsers(dest="action", required=True)
    register = service.add_parser(
        "register",
        help="a service's catalog entry, endpoints and service user "
        "(password from $STRATUS_SERVICE_PASSWORD)",
        parents=[common],
    )
    register.add_argument("--type", required=True, help="catalog type, e.g. image")
    register.add_argument("--name", required=True, help="service name, e.g. glance")
    register.add_argument("--description", default="")
    register.add_argument("--region", default="RegionOne")
    register.add_argument("--public-url", required=True)
    register.add_argument("--internal-url", help="default: the public URL")
    register.add_argument("--admin-url", help="default: the public URL")
    register.add_argument(
        "--project", default="service", help="project of the service user (Default domain)"
    )
    register.add_argument(
        "--user", help="the service user (Default domain); default: the service name"
    )
    register.add_argument(
        "--role",
        action="append",
        default=[],
        help="one more role (existing, e.g. member) for the user on the project; repeatable",
    )
    groups.add_parser("status", help="check schema and keys", parents=[common])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = COMMANDS[(args.group, getattr(args, "action", None))]
    try:
        from stratus.identity import settings  # noqa: F401 - registers [identity]

        config = Config(getattr(args, "config_file", None))
        return handler(config, args)
    except ConfigError as exc:
        print(f"stratus-manage: configuration error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        print(f"stratus-manage: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
