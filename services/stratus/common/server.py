"""``stratus-api <component>``: run a component's API under uvicorn."""

from __future__ import annotations

import argparse
import importlib
import sys

from stratus.common import logs
from stratus.common.config import Config, ConfigError

# component -> (module with create_app, config section)
COMPONENTS = {"identity": ("stratus.identity.app", "identity")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratus-api", description=__doc__)
    parser.add_argument("component", choices=sorted(COMPONENTS))
    parser.add_argument(
        "--config-file", help="default: $STRATUS_CONFIG or /etc/stratus/stratus.conf"
    )
    args = parser.parse_args(argv)
    module_name, section = COMPONENTS[args.component]
    import uvicorn

    try:
        config = Config(args.config_file)
        logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
        module = importlib.import_module(module_name)
        options = config.section(section)
        host, port, workers = options.bind_host, options.bind_port, options.workers
        if workers > 1:
            # Each worker builds its own application (and database pool).
            factory = f"{module_name}:create_app_from_env"
            if args.config_file:
                import os

                os.environ["STRATUS_CONFIG"] = args.config_file
            uvicorn.run(
                factory,
                factory=True,
                host=host,
                port=port,
                workers=workers,
                log_config=None,
                access_log=False,
                proxy_headers=False,
            )
        else:
            app = module.create_app(config)
            uvicorn.run(
                app, host=host, port=port, log_config=None, access_log=False, proxy_headers=False
            )
    except ConfigError as exc:
        print(f"stratus-api: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
