"""``stratus-compute-scheduler``: places new servers, gives them their ports,
and finishes deletes, from the database.

Each pass:

1. **schedule**: every server in ``scheduling`` gets a host: the hosts that
   can take it, best first (``scheduling.choose_hosts``), claimed in turn
   until one holds (``scheduling.claim``); the server moves to
   ``networking`` in the same transaction, with a compare-and-set on its
   task, so a server deleted meanwhile keeps its ``deleting``. No host: the
   server goes to ERROR with Nova's "No valid host was found" fault, which
   says why each host was passed over.
2. **networking**: the server's ports: one made per network it asked for
   (device_id = the server, bound to its host) or the port it gave, bound.
   Ports are found again by their device_id, so a scheduler that stopped
   halfway makes none twice. Then ``spawning``: the host's agent builds it.
3. **resize**: every server in ``resize_prep`` gets a host for its new
   flavor (its own host too, as Nova's ``allow_resize_to_same_host``; another
   host only where the drivers of both move servers between hosts). In one
   transaction the old flavor's claim moves to the resize's migration
   record, the new flavor is claimed on the chosen host, and the server
   moves to ``resize_migrating``: the source host's agent takes it from
   there. No host: the resize ends, the server as it was.
4. **delete**: a ``deleting`` server without a host (never placed, or its
   agent has removed the domain) loses its ports (the ones made for it are
   deleted, the ones it was given are unbound), its claim and its row.

Everything it does is recorded in the database before or as it happens, so
a scheduler killed at any point does the rest on its next pass. Several
schedulers may run: claims and task changes are atomic.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select, update

from stratus.common import errors, logs
from stratus.common.auth import LoginError, ServiceLogin, credentials_from_section
from stratus.common.config import Config, ConfigError
from stratus.common.db import Database, engine_from_config, utcnow
from stratus.compute import actions, scheduling, settings, states
from stratus.compute.model import (
    Allocation,
    ComputeHost,
    Migration,
    Server,
    ServerGroup,
    ServerPort,
)
from stratus.compute.remote import Neighbours

log = logging.getLogger("stratus.compute.scheduler")

BATCH = 50
# Servers whose ports are made at once.
WIRE_WORKERS = 4
# Seconds between two refreshes of the servers' floating IPs.
ADDRESS_REFRESH = 5.0
NO_VALID_HOST = "No valid host was found. There are not enough hosts available."


class Scheduler:
    def __init__(self, db: Database, options: Any, neighbours: Any):
        self.db = db
        self.options = options
        # () -> Neighbours as the service user (a fresh token when needed)
        self.neighbours = neighbours
        self._refreshed = float("-inf")

    # --- 1. schedule --------------------------------------------------------

    def host_states(self, session: Any) -> list[scheduling.HostState]:
        default_zone = self.options.default_availability_zone
        down_after = timedelta(seconds=self.options.service_down_time)
        now = utcnow()
        hosts = list(session.scalars(select(ComputeHost)))
        used = scheduling.usage(session)
        return [
            scheduling.HostState(
                id=h.id,
                host=h.host,
                zone=h.availability_zone or default_zone,
                vcpus=h.vcpus,
                memory_mb=h.memory_mb,
                local_gb=h.local_gb,
                cpu_allocation_ratio=h.cpu_allocation_ratio,
                ram_allocation_ratio=h.ram_allocation_ratio,
                disk_allocation_ratio=h.disk_allocation_ratio,
                reserved_host_memory_mb=h.reserved_host_memory_mb,
                used_vcpus=used.get(h.id, (0, 0, 0))[0],
                used_memory_mb=used.get(h.id, (0, 0, 0))[1],
                used_disk_gb=used.get(h.id, (0, 0, 0))[2],
                enabled=not h.disabled,
                up=h.is_up(now, down_after),
                hypervisor_type=h.hypervisor_type,
            )
            for h in hosts
        ]

    def spec_for(self, session: Any, server: Server) -> scheduling.RequestSpec:
        hints = json.loads(server.scheduler_hints or "{}")
        group_policy, group_hosts, per_host = None, {}, None
        if server.server_group_id:
            group = session.get(ServerGroup, server.server_group_id)
            if group is not None:
                group_policy, per_host = group.policy, group.max_server_per_host
                members = session.scalars(
                    select(Server.host).where(
                        Server.server_group_id == group.id,
                        Server.id != server.id,
                        Server.host.is_not(None),
                    )
                )
                for host in members:
                    group_hosts[host] = group_hosts.get(host, 0) + 1
        return scheduling.RequestSpec(
            vcpus=server.vcpus,
            memory_mb=server.memory_mb,
            disk_gb=server.disk_gb,
            zone=server.availability_zone,
            forced_host=hints.get("forced_host"),
            group_policy=group_policy,
            group_hosts=group_hosts,
            max_server_per_host=per_host,
            image_properties=hints.get("image_properties", {}),
        )

    def schedule(self) -> int:
        with self.db.session() as session:
            pending = list(
                session.scalars(
                    select(Server.id)
                    .where(Server.task_state == states.SCHEDULING)
                    .order_by(Server.created_at, Server.launch_index)
                    .limit(BATCH)
                )
            )
        for server_id in pending:
            self.schedule_one(server_id)
        return len(pending)

    def schedule_one(self, server_id: str) -> None:
        with self.db.session() as session:
            server = session.get(Server, server_id)
            if server is None or server.task_state != states.SCHEDULING:
                return
            spec = self.spec_for(session, server)
            chosen, rejected = scheduling.choose_hosts(
                self.host_states(session), spec, self.options.scheduler_weigher
            )
            for host in chosen:
                if scheduling.claim(session, host.id, server.id, spec):
                    moved = session.execute(
                        update(Server)
                        .where(Server.id == server.id, Server.task_state == states.SCHEDULING)
                        .values(
                            host=host.host,
                            task_state=states.NETWORKING,
                            availability_zone=server.availability_zone or host.zone,
                            revision=Server.revision + 1,
                        )
                    )
                    if moved.rowcount != 1:  # deleted meanwhile: no claim either
                        session.rollback()
                    else:
                        log.info("server %s placed on %s", server.id, host.host)
                    return
            reasons = "; ".join(f"{r.host}: {r.reason}" for r in rejected) or "no compute hosts"
            self._fail(session, server, NO_VALID_HOST, reasons, states.SCHEDULING)
            log.warning("server %s: no valid host (%s)", server.id, reasons)

    def _fail(self, session: Any, server: Server, message: str, details: str, task: str) -> None:
        fault = {
            "code": 500,
            "message": message,
            "details": details,
            "created": utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        session.execute(
            update(Server)
            .where(Server.id == server.id, Server.task_state == task)
            .values(
                vm_state=states.ERROR,
                task_state=None,
                fault=json.dumps(fault),
                revision=Server.revision + 1,
            )
        )

    # --- 3. resize ----------------------------------------------------------

    def resize(self) -> int:
        with self.db.session() as session:
            pending = list(
                session.scalars(
                    select(Server.id).where(Server.task_state == states.RESIZE_PREP).limit(BATCH)
                )
            )
        for server_id in pending:
            self.resize_one(server_id)
        return len(pending)

    def resize_one(self, server_id: str) -> None:
        with self.db.session() as session:
            server = session.get(Server, server_id)
            if server is None or server.task_state != states.RESIZE_PREP:
                return
            migration = session.scalars(
                select(Migration)
                .where(Migration.server_id == server.id, Migration.status == "pre-migrating")
                .order_by(Migration.id.desc())
            ).first()
            if migration is None:  # cannot happen: the API writes both at once
                self._resize_refused(session, server, None, "The resize was lost.")
                return
            new = json.loads(migration.new_flavor)
            spec = dataclasses.replace(
                self.spec_for(session, server),
                vcpus=int(new["vcpus"]),
                memory_mb=int(new["ram"]),
                disk_gb=scheduling.flavor_disk_gb(new),
                forced_host=None,
            )
            hosts = self.host_states(session)
            movers = {h.host for h in session.scalars(select(ComputeHost)) if h.resize_across_hosts}
            chosen, rejected = scheduling.choose_hosts(hosts, spec, self.options.scheduler_weigher)
            source = migration.source_host
            for host in list(chosen):
                if host.host != source and not (source in movers and host.host in movers):
                    chosen.remove(host)
                    rejected.append(
                        scheduling.Rejection(host.host, "does not take servers of other hosts")
                    )
            # The old flavor's claim is the migration's from now on.
            session.execute(
                update(Allocation)
                .where(Allocation.server_id == server.id)
                .values(server_id=migration.uuid)
            )
            session.flush()
            for host in chosen:
                if scheduling.claim(session, host.id, server.id, spec):
                    moved = session.execute(
                        update(Server)
                        .where(Server.id == server.id, Server.task_state == states.RESIZE_PREP)
                        .values(task_state=states.RESIZE_MIGRATING, revision=Server.revision + 1)
                    )
                    if moved.rowcount != 1:  # deleted meanwhile
                        session.rollback()
                        return
                    migration.dest_host = host.host
                    migration.status = "migrating"
                    actions.finish(session, server.id, "compute_prep_resize", None)
                    log.info("server %s: resize from %s to %s", server.id, source, host.host)
                    return
            session.execute(
                update(Allocation)
                .where(Allocation.server_id == migration.uuid)
                .values(server_id=server.id)
            )
            reasons = "; ".join(f"{r.host}: {r.reason}" for r in rejected) or "no compute hosts"
            self._resize_refused(session, server, migration, f"{NO_VALID_HOST} {reasons}")
            log.warning("server %s: no host for its resize (%s)", server.id, reasons)

    @staticmethod
    def _resize_refused(
        session: Any, server: Server, migration: Migration | None, message: str
    ) -> None:
        """The resize ends before anything moved: the server as it was."""
        old = json.loads(migration.old_flavor) if migration is not None else None
        values: dict[str, Any] = {"task_state": None, "revision": Server.revision + 1}
        if old is not None:
            values.update(
                flavor=json.dumps(old),
                vcpus=int(old["vcpus"]),
                memory_mb=int(old["ram"]),
                disk_gb=scheduling.flavor_disk_gb(old),
            )
        moved = session.execute(
            update(Server)
            .where(Server.id == server.id, Server.task_state == states.RESIZE_PREP)
            .values(**values)
        )
        if moved.rowcount != 1:
            session.rollback()
            return
        if migration is not None:
            migration.status = "error"
        actions.finish(session, server.id, "compute_prep_resize", message)

    # --- 2. networking ------------------------------------------------------

    def wire(self) -> int:
        with self.db.session() as session:
            pending = list(
                session.scalars(
                    select(Server.id).where(Server.task_state == states.NETWORKING).limit(BATCH)
                )
            )
        if not pending:
            return 0
        apis = self.neighbours()
        try:
            lookups = WiringLookups(apis, pending)
        except errors.ServiceUnavailable as exc:
            log.warning("ports wait for the network service: %s", exc)
            return len(pending)

        def wire(server_id: str) -> None:
            try:
                self.wire_one(apis, server_id, lookups)
            except errors.ServiceUnavailable as exc:
                log.warning("server %s: ports wait for the network service: %s", server_id, exc)

        # Each server's ports are its own: several are wired at once, so the
        # network service's round trips overlap.
        with ThreadPoolExecutor(WIRE_WORKERS, thread_name_prefix="wire") as pool:
            for done in [pool.submit(wire, server_id) for server_id in pending]:
                done.result()
        return len(pending)

    def wire_one(self, apis: Neighbours, server_id: str, lookups: WiringLookups) -> None:
        with self.db.session() as session:
            server = session.get(Server, server_id)
            if server is None or server.task_state != states.NETWORKING:
                return
            requested = json.loads(server.requested_networks or "[]")
            groups = json.loads(server.security_groups or "[]")
            host, project, zone = server.host, server.project_id, server.availability_zone
        existing = {p["id"]: p for p in lookups.ports.get(server_id, [])}
        made: list[tuple[dict[str, Any], bool]] = []
        try:
            group_ids = [lookups.group_id(project, name) for name in groups]
            group_ids = [i for i in group_ids if i is not None]
            for position, wanted in enumerate(requested):
                binding = {
                    "device_id": server_id,
                    "device_owner": f"compute:{zone or 'nova'}",
                    "binding:host_id": host,
                }
                if wanted.get("port_id"):
                    port = apis.update_port(wanted["port_id"], binding)
                    made.append((port, False))
                    continue
                port = next(
                    (
                        p
                        for p in existing.values()
                        if p["network_id"] == wanted["network_id"]
                        and p.get("name") == f"{server_id}-{position}"
                    ),
                    None,
                )
                if port is None:
                    values = {
                        **binding,
                        "network_id": wanted["network_id"],
                        "project_id": project,
                        "name": f"{server_id}-{position}",
                    }
                    if group_ids:
                        values["security_groups"] = group_ids
                    if wanted.get("fixed_ip"):
                        values["fixed_ips"] = [{"ip_address": wanted["fixed_ip"]}]
                    port = apis.create_port(values)
                made.append((port, True))
        except (errors.Conflict, errors.BadRequest, errors.NotFound) as exc:
            # The network said no (no address left, port taken): the server
            # cannot be built; what was made for it goes.
            log.warning("server %s: ports refused: %s", server_id, exc.message)
            for port, owned in made:
                self._release_port(apis, port["id"], owned)
            with self.db.session() as session:
                server = session.get(Server, server_id)
                if server is not None:
                    session.execute(delete(Allocation).where(Allocation.server_id == server_id))
                    self._fail(
                        session,
                        server,
                        f"Build of instance {server_id} aborted: {exc.message}",
                        "",
                        states.NETWORKING,
                    )
            return
        networks = lookups.networks({p["network_id"] for p, _ in made})
        subnets = lookups.subnets({f["subnet_id"] for p, _ in made for f in p.get("fixed_ips", [])})
        with self.db.session() as session:
            server = session.get(Server, server_id)
            if server is None or server.task_state != states.NETWORKING:
                return  # deleted meanwhile: the delete pass takes the ports
            server.ports = [
                ServerPort(
                    port_id=port["id"],
                    position=position,
                    network_id=port["network_id"],
                    mac_address=port["mac_address"],
                    owned=owned,
                    details=json.dumps(
                        port_details(port, networks.get(port["network_id"], {}), subnets)
                    ),
                )
                for position, (port, owned) in enumerate(made)
            ]
            server.task_state = states.SPAWNING
            server.revision += 1

    @staticmethod
    def _release_port(apis: Neighbours, port_id: str, owned: bool) -> None:
        if owned:
            apis.delete_port(port_id)
        else:
            with contextlib.suppress(errors.NotFound):
                apis.update_port(
                    port_id, {"device_id": "", "device_owner": "", "binding:host_id": ""}
                )

    # --- 3. delete ----------------------------------------------------------

    def release_from_down_hosts(self) -> int:
        """A server being deleted on a host whose agent is down is deleted
        here: its claim goes and the delete pass below takes its ports and
        row; the host's agent destroys the domain when it comes back (a
        domain of a server not placed on its host is an orphan)."""
        now, down_after = utcnow(), timedelta(seconds=self.options.service_down_time)
        with self.db.session() as session:
            down = [
                h.host for h in session.scalars(select(ComputeHost)) if not h.is_up(now, down_after)
            ]
            if not down:
                return 0
            stuck = list(
                session.scalars(
                    select(Server.id).where(
                        Server.task_state == states.DELETING, Server.host.in_(down)
                    )
                )
            )
            if not stuck:
                return 0
            for server_id in stuck:
                scheduling.drop_claims(session, server_id)
            session.execute(
                update(Server)
                .where(Server.id.in_(stuck), Server.task_state == states.DELETING)
                .values(host=None, revision=Server.revision + 1)
            )
        log.warning("deleting %d servers of hosts that are down: %s", len(stuck), ", ".join(down))
        return len(stuck)

    def reap(self) -> int:
        with self.db.session() as session:
            doomed = list(
                session.scalars(
                    select(Server)
                    .where(Server.task_state == states.DELETING, Server.host.is_(None))
                    .limit(BATCH)
                )
            )
            work = [(s.id, [(p.port_id, p.owned) for p in s.ports]) for s in doomed]
        if not work:
            return 0
        apis = self.neighbours()
        for server_id, ports in work:
            known = {p for p, _ in ports}
            try:
                for port_id, owned in ports:
                    self._release_port(apis, port_id, owned)
                # Ports made by a pass that stopped before recording them.
                for port in apis.list_ports(device_id=server_id):
                    if port["id"] not in known:
                        apis.delete_port(port["id"])
            except errors.ServiceUnavailable as exc:
                log.warning("server %s: delete waits for the network service: %s", server_id, exc)
                continue
            with self.db.session() as session:
                scheduling.drop_claims(session, server_id)
                session.execute(
                    delete(Server).where(
                        Server.id == server_id,
                        Server.task_state == states.DELETING,
                        Server.host.is_(None),
                    )
                )
            log.info("server %s deleted", server_id)
        return len(work)

    # --- 4. addresses ---------------------------------------------------------

    def refresh_floating_ips(self) -> int:
        """Floating IPs are associated on the network service, not through
        compute: every ``ADDRESS_REFRESH`` seconds the servers' ports get the
        floating IPs the network service has for them now (what
        ``addresses`` and the metadata show). Changes only what moved."""
        now = time.monotonic()
        if now - self._refreshed < ADDRESS_REFRESH:
            return 0
        self._refreshed = now
        with self.db.session() as session:
            if session.scalar(select(ServerPort.port_id).limit(1)) is None:
                return 0
        floating: dict[str, list[str]] = {}
        for item in self.neighbours().list_floating_ips():
            if item.get("port_id"):
                floating.setdefault(item["port_id"], []).append(item["floating_ip_address"])
        changed = 0
        with self.db.session() as session:
            for port in session.scalars(select(ServerPort)):
                details = json.loads(port.details or "{}")
                wanted = sorted(floating.get(port.port_id, []))
                if details.get("floating_ips", []) != wanted:
                    details["floating_ips"] = wanted
                    port.details = json.dumps(details)
                    session.execute(
                        update(Server)
                        .where(Server.id == port.server_id)
                        .values(revision=Server.revision + 1)
                    )
                    changed += 1
        return changed

    def run_once(self) -> int:
        busy = (
            self.schedule()
            + self.wire()
            + self.resize()
            + self.release_from_down_hosts()
            + self.reap()
        )
        try:
            self.refresh_floating_ips()
        except errors.ApiError as exc:
            log.warning("floating IPs not refreshed: %s", exc.message)
        return busy


class WiringLookups:
    """What wiring a pass's servers asks of the network service besides
    their own ports, asked once per pass: the ports already made for them
    (one list for all; a scheduler stopped halfway made some), and the
    security groups, networks and subnets they share. Wiring threads share
    it."""

    def __init__(self, apis: Neighbours, server_ids: list[str]):
        self.apis = apis
        self.ports: dict[str, list[dict[str, Any]]] = {}
        for port in apis.list_ports(device_id=server_ids):
            self.ports.setdefault(port["device_id"], []).append(port)
        self._lock = threading.Lock()
        self._groups: dict[tuple[str, str], str | None] = {}
        self._networks: dict[str, dict[str, Any]] = {}
        self._subnets: dict[str, dict[str, Any]] = {}

    def group_id(self, project: str, name: str) -> str | None:
        """The project's security group of that name (None: a ``default``
        the project does not have yet; 400 for any other missing one)."""
        key = (project, name)
        if key not in self._groups:
            found = self.apis.list_security_groups(name=name, project_id=project)
            with self._lock:
                self._groups[key] = found[0]["id"] if found else None
        if self._groups[key] is None and name != "default":
            raise errors.BadRequest(f"Security group {name} not found.")
        return self._groups[key]

    def networks(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        return self._known(ids, self._networks, self.apis.list_networks)

    def subnets(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        return self._known(ids, self._subnets, self.apis.list_subnets)

    def _known(
        self, ids: set[str], known: dict[str, dict[str, Any]], fetch: Any
    ) -> dict[str, dict[str, Any]]:
        with self._lock:
            missing = sorted(ids - known.keys())
        found = {item["id"]: item for item in fetch(id=missing)} if missing else {}
        with self._lock:
            known.update(found)
            return {i: known[i] for i in ids if i in known}


SUBNET_FIELDS = (
    "cidr",
    "gateway_ip",
    "enable_dhcp",
    "ip_version",
    "ipv6_address_mode",
    "dns_nameservers",
    "host_routes",
)


def port_details(
    port: dict[str, Any], network: dict[str, Any], subnets: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """What a server keeps of its port: addresses, their subnets (for the
    metadata's network_data and the config drive) and how to plug it."""
    used = {f["subnet_id"] for f in port.get("fixed_ips", [])}
    return {
        "network_name": network.get("name", ""),
        "fixed_ips": [
            {"ip_address": f["ip_address"], "subnet_id": f["subnet_id"]}
            for f in port.get("fixed_ips", [])
        ],
        "subnets": {
            i: {k: subnets[i].get(k) for k in SUBNET_FIELDS} for i in sorted(used) if i in subnets
        },
        "mtu": network.get("mtu"),
        "binding:vif_type": port.get("binding:vif_type"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stratus-compute-scheduler", description=__doc__)
    parser.add_argument(
        "--config-file", help="default: $STRATUS_CONFIG or /etc/stratus/stratus.conf"
    )
    parser.add_argument("--once", action="store_true", help="run one pass and exit")
    args = parser.parse_args(argv)
    try:
        config = Config(args.config_file)
        logs.setup(config.get("DEFAULT", "log_format"), config.get("DEFAULT", "debug"))
        options = config.section(settings.SECTION)
        db = Database(engine_from_config(config, sqlite_immediate=True))
        credentials = credentials_from_section(config.section(settings.AUTHTOKEN_SECTION))
    except ConfigError as exc:
        print(f"stratus-compute-scheduler: configuration error: {exc}", file=sys.stderr)
        return 2
    http = httpx.Client(timeout=30)
    login = ServiceLogin(credentials, http, hint=f"[{settings.AUTHTOKEN_SECTION}]")
    scheduler = Scheduler(db, options, lambda: Neighbours.as_service(http, login))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    log.info("scheduler started")
    while not stop.is_set():
        try:
            busy = scheduler.run_once()
        except LoginError as exc:
            log.error("cannot log in: %s", exc)
            busy = 0
        except Exception:
            log.exception("scheduler pass failed")
            busy = 0
        if args.once:
            break
        if not busy:
            stop.wait(options.scheduler_interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
