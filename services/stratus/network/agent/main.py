"""``stratus-network-agent``: fetch what the API says, converge the host, report.

Every ``resync_interval`` seconds the agent reads the network API
(``client``), converges the host (``reconcile``) and posts which of its
ports are wired. A pass whose fetch fails converges nothing: an unreachable
API must never look like an empty cloud and tear the host down.

``--once`` does one pass and exits (non-zero if any part failed) and prints
the pass's report as JSON on stdout; ``--snapshot FILE`` reads the API's
documents from a JSON file (``{"networks": [...], "subnets": [...], ...}``)
instead of the API and reports nothing: for operators debugging a host and
for tests.

With ``metadata_url`` set, the long-running agent also proxies guests'
metadata requests (``metadata``) from its routers and DHCP namespaces.

SIGTERM and SIGINT stop the loop after the current pass. Nothing is torn
down on exit: bridges, namespaces and dnsmasq stay as they are, so a restart
or an upgrade of the agent never drops a guest's traffic.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stratus.common import logs
from stratus.common.config import Config, ConfigError
from stratus.network.agent import metadata, reconcile, settings
from stratus.network.agent.state import HostConfig, Snapshot

log = logging.getLogger("stratus.network.agent")


def load_snapshot_file(path: str | Path) -> Snapshot:
    """A ``Snapshot`` from a JSON file of API documents."""
    docs = json.loads(Path(path).read_text())
    if not isinstance(docs, Mapping):
        raise ValueError(f"{path}: expected an object of API document lists")
    normalised: dict[str, Any] = {k.replace("-", "_"): v for k, v in docs.items()}
    return Snapshot.from_api(normalised)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stratus-network-agent", description=__doc__)
    parser.add_argument("--config-file", help="Configuration file (default /etc/stratus/...).")
    parser.add_argument("--once", action="store_true", help="One pass, then exit.")
    parser.add_argument(
        "--snapshot", metavar="FILE", help="Converge from a JSON file of API documents."
    )
    return parser


class Agent:
    def __init__(self, config: Config, host: HostConfig, snapshot_file: str | None = None):
        self.config = config
        self.host = host
        self.snapshot_file = snapshot_file
        self.stopping = threading.Event()
        self._client: Any = None

    def client(self) -> Any:
        if self._client is None:
            from stratus.network.agent.client import NetworkClient

            self._client = NetworkClient.from_config(self.config)
        return self._client

    def fetch(self) -> Snapshot:
        if self.snapshot_file:
            return load_snapshot_file(self.snapshot_file)
        return self.client().snapshot()

    def one_pass(self) -> reconcile.Report:
        try:
            snapshot = self.fetch()
        except Exception as exc:
            log.exception("cannot read the network state; nothing converged this pass")
            report = reconcile.Report(host=self.host.host)
            report.failures["fetch"] = str(exc) or type(exc).__name__
            return report
        report = reconcile.converge(snapshot, self.host)
        log.info(
            "pass done: %d ports up, %d down, %d failures",
            len(report.ports_up),
            len(report.ports_down),
            len(report.failures),
        )
        if not self.snapshot_file:
            try:
                self.client().report(self.host, report)
            except Exception:
                log.exception("cannot report to the network API")
        return report

    def run(self, interval: float) -> None:
        while not self.stopping.is_set():
            self.one_pass()
            self.stopping.wait(interval)
        log.info("stopped; the data plane is left as it is")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = Config(args.config_file)
        logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
        logging.getLogger("pyroute2").setLevel(logging.WARNING)
        host = settings.host_config(config)
        interval = config.get(settings.SECTION, "resync_interval")
        agent = Agent(config, host, args.snapshot)
        if not args.snapshot:
            agent.client()  # credentials missing or malformed: stop now, not every pass
        proxy = settings.metadata_proxy(config)
        if proxy is not None and not args.once:
            metadata.parse_url(proxy[0])  # a bad URL: stop now
    except (ConfigError, ValueError) as exc:
        print(f"stratus-network-agent: {exc}", file=sys.stderr)
        return 2
    if args.once:
        report = agent.one_pass()
        print(json.dumps(report.as_dict()))
        return 0 if report.ok else 1

    agent_pid = os.getpid()

    def stop(signum: int, _frame: Any) -> None:
        if os.getpid() != agent_pid:
            # A child forked by a library (pyroute2 enters a namespace from a
            # forked helper and ends it with SIGTERM): die as it expects.
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        log.info("signal %d: stopping after this pass", signum)
        agent.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("network agent on %s (resync every %ss)", host.host, interval)
    if proxy is not None:
        # One pass of a --once run has no time to serve guests: only here.
        metadata.configure(*proxy)
        log.info("metadata proxy forwarding to %s", proxy[0])
    try:
        agent.run(interval)
    finally:
        metadata.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
