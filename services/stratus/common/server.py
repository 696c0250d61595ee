"""``stratus-api <component>``: run a component's API under uvicorn.

With several workers, uvicorn's supervisor binds the listening socket and
the workers share it. We bind it ourselves, as a TCP socket proper
(``IPPROTO_TCP``): uvicorn creates it with protocol 0, connections accepted
from such a socket do not get ``TCP_NODELAY`` from asyncio, and every
keep-alive response then waits ~40 ms for the client's delayed ACK.
"""

from __future__ import annotations

import argparse
import importlib
import os
import socket
import sys

from stratus.common import logs
from stratus.common.config import Config, ConfigError

# component -> (module with create_app and create_app_from_env, config section)
COMPONENTS = {
    "identity": ("stratus.identity.app", "identity"),
    "image": ("stratus.image.app", "image"),
    "network": ("stratus.network.app", "network"),
    "compute": ("stratus.compute.app", "compute"),
    "metadata": ("stratus.compute.metadata_api", "metadata"),
}


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratus-api", description=__doc__)
    parser.add_argument("component", choices=sorted(COMPONENTS))
    parser.add_argument(
        "--config-file", help="default: $STRATUS_CONFIG or /etc/stratus/stratus.conf"
    )
    args = parser.parse_args(argv)
    module_name, section = COMPONENTS[args.component]
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    try:
        config = Config(args.config_file)
        logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
        module = importlib.import_module(module_name)  # also declares its options
        options = config.section(section)
        host, port, workers = options.bind_host, options.bind_port, options.workers
        common = {
            "log_config": None,
            "access_log": False,
            "proxy_headers": False,
            # uvicorn's default (5 s) equals the CLI's polling interval: the
            # two raced, and a poll now and then met a connection reset.
            "timeout_keep_alive": config.get("DEFAULT", "keep_alive_timeout"),
        }
        # Built once here even with several workers, so that a bad setting
        # stops the service at once with its reason, not in a worker loop.
        app = module.create_app(config)
        if workers == 1:
            uvicorn.run(app, host=host, port=port, **common)
            return 0
        # Each worker builds its own application (and database pool) from
        # the same file.
        if args.config_file:
            os.environ["STRATUS_CONFIG"] = args.config_file
        server_config = uvicorn.Config(
            f"{module_name}:create_app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            **common,
        )
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            print(f"stratus-api: cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
            return 1
        # What uvicorn.run does for several workers, with our socket.
        Multiprocess(server_config, sockets=[sock]).run()
    except ConfigError as exc:  # includes bad policy files and unusable token keys
        print(f"stratus-api: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
