"""A real OpenStack Swift cluster on loopback, configured by the role's own templates.

``start_swift_cluster()`` runs Debian's Swift (python3-swift, with
python3-keystonemiddleware, under ``/usr/bin/python3``) on this machine: a
memcached and the proxy on 127.0.0.1, and one account, one container and one
object server serving three device directories ``d1``..``d3`` (``mount_check``
off) plus an rsync daemon (when run as root) on a loopback address of the
cluster's own (``storage_ip``, 127.x.y.z, so that rsync can have its port 873
there while other clusters run). The rings (replicas 3, part power 6, one
device per zone, all on ``storage_ip``) are built with Swift's
``swift-ring-builder`` code. Every configuration file is rendered with jinja2
from ``roles/object_storage/templates/*.j2``, starting from the role's
``defaults/main.yml`` (and its plain ``vars/``) and overriding only what a
local cluster needs (addresses, free ports, the user the tests run as, the
devices directory, ``swift_dir`` through the extra options, the authtoken
URLs and password, memcache servers, a short ``token_cache_time``, CORS
origins, the expirer's process share), so the tests exercise the
configuration the rollout writes. ``swift.conf`` gets hash path secrets random
per run. Swift reads ``swift.conf`` from ``config_dir`` (a small launcher,
``<root>/launcher.py``, calls ``set_swift_dir``), never from /etc/swift.

Interface (kept stable; other tests and fixtures build on it):

- ``missing_requirements() -> str | None``: why the cluster cannot run here.
- ``start_swift_cluster(auth_url, service_password, *, proxy_port=None,
  token_cache_time=3, cors_allow_origin=("http://allowed.example.test",),
  overrides=None, timeout=60) -> SwiftCluster``: started and answering
  ``/healthcheck``; raises ``RuntimeError`` with the servers' log tails if it
  does not come up (and stops what it started). ``overrides`` are role
  variables put over the local ones.
- ``SwiftCluster``:
  ``proxy_url`` (``http://127.0.0.1:PORT``), ``endpoint_for(project_id)``
  (``{proxy_url}/v1/AUTH_{project_id}``), ``devices`` (``list[Path]`` of
  d1..d3), ``config_dir`` (rendered ``*.conf``, builders and rings), ``root``
  (the temporary directory), ``storage_ip``, ``ports`` (by server name),
  ``token_cache_time`` (seconds), ``cors_allow_origin`` (list), ``variables``
  (the role variables the templates were rendered with, hash path secrets
  included), ``unrendered`` (optional templates left out, with why),
  ``runs_rsync``, ``run_once(daemon, timeout=60)`` (one pass of e.g.
  ``"object-expirer"``, ``"object-replicator"``, ``"object-updater"``,
  ``"container-updater"``: the CompletedProcess, ``RuntimeError`` on a
  non-zero exit, ``DaemonNotConfigured`` when the role writes no section for
  it), ``has_config(daemon)``, ``log_tail(name)`` / ``all_log_tails()``
  (``memcached``, ``rsyncd``, ``account``, ``container``, ``object``,
  ``proxy``) and ``stop()`` (kills every process group it started and
  removes the temporary directory; idempotent).

The session fixture ``swift_cluster`` in ``tests/conftest.py`` registers the
``object-store`` service (name ``swift``, public URL
``http://127.0.0.1:<port>/v1/AUTH_%(project_id)s``) and its user ``swift`` in
``identity_server`` and yields a started ``SwiftCluster``.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
ROLE = REPO / "roles" / "object_storage"
SYSTEM_PYTHON = "/usr/bin/python3"
PART_POWER = 6
REPLICAS = 3
DEVICE_NAMES = ("d1", "d2", "d3")
STORAGE_SERVERS = ("account", "container", "object")

# Runs Swift under /usr/bin/python3 with swift.conf (and so the hash path
# secrets and storage policies) read from our config dir instead of
# /etc/swift; written into the cluster's directory as launcher.py:
# ``launcher.py <swift_dir> wsgi <app> <conf>`` (a server, logging to stderr),
# ``launcher.py <swift_dir> once <module:Class> <conf>`` (one daemon pass) or
# ``launcher.py <swift_dir> ring-builder <args> [-- <args>...]`` (swift-ring-builder
# once per group of arguments, stopping at the first that fails).
LAUNCHER = r"""
import sys
swift_dir, kind, args = sys.argv[1], sys.argv[2], sys.argv[3:]
from swift.common import utils
utils.set_swift_dir(swift_dir)
from swift.common import constraints, storage_policy
storage_policy.reload_storage_policies()
constraints.reload_constraints()
if kind == "wsgi":
    from swift.common.wsgi import run_wsgi
    sys.exit(run_wsgi(args[1], args[0], verbose=True))
elif kind == "once":
    import importlib
    from swift.common.daemon import run_daemon
    module, _, name = args[0].partition(":")
    klass = getattr(importlib.import_module(module), name)
    run_daemon(klass, args[1], once=True, verbose=True)
elif kind == "ring-builder":
    from swift.cli.ringbuilder import main
    steps, step = [], []
    for arg in args + ["--"]:
        if arg == "--":
            steps.append(step)
            step = []
        else:
            step.append(arg)
    for step in steps:
        print("swift-ring-builder", *step, flush=True)
        try:
            main(["swift-ring-builder", *step])
        except SystemExit as done:
            if done.code not in (None, 0):
                sys.exit(done.code)
else:
    sys.exit("unknown kind " + kind)
"""

# Daemons run_once knows: their class and the configuration file they read.
DAEMONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "object-expirer": ("swift.obj.expirer:ObjectExpirer", ("object-expirer", "object-server")),
    "object-replicator": ("swift.obj.replicator:ObjectReplicator", ("object-server",)),
    "object-updater": ("swift.obj.updater:ObjectUpdater", ("object-server",)),
    "object-auditor": ("swift.obj.auditor:ObjectAuditor", ("object-server",)),
    "container-replicator": (
        "swift.container.replicator:ContainerReplicator",
        ("container-server",),
    ),
    "container-updater": ("swift.container.updater:ContainerUpdater", ("container-server",)),
    "container-auditor": ("swift.container.auditor:ContainerAuditor", ("container-server",)),
    "account-replicator": ("swift.account.replicator:AccountReplicator", ("account-server",)),
    "account-auditor": ("swift.account.auditor:AccountAuditor", ("account-server",)),
    "account-reaper": ("swift.account.reaper:AccountReaper", ("account-server",)),
}


class DaemonNotConfigured(LookupError):
    """The role writes no configuration section for this daemon."""


RSYNC_PORT = 873  # the replicators' default rsync_module ({replication_ip}::<ring>) uses it
# Templates whose servers listen on the storage address (the rest on 127.0.0.1).
STORAGE_TEMPLATES = (
    "account-server.conf.j2",
    "container-server.conf.j2",
    "object-server.conf.j2",
    "rsyncd.conf.j2",
)


def free_port(address: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((address, 0))
        return int(sock.getsockname()[1])


def storage_address() -> str:
    """A loopback address of this cluster's own for the storage servers and rsync.

    The replicators reach rsync at ``<device ip>::<module>``, port 873; a
    127.x.y.z address of its own lets each cluster run its rsync there.
    """
    for _ in range(20):
        a, b, c = secrets.randbelow(254) + 1, secrets.randbelow(256), secrets.randbelow(254) + 1
        address = f"127.{a}.{b}.{c}"
        try:
            with socket.socket() as sock:
                sock.bind((address, RSYNC_PORT if os.geteuid() == 0 else 0))
        except OSError:
            continue
        return address
    raise RuntimeError("no free loopback address for the storage servers")


def missing_requirements() -> str | None:
    """Why a Swift cluster cannot run on this machine, or None when it can."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import swift.common.wsgi, keystonemiddleware.auth_token, memcache"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return (
            "Swift needs Debian's python3-swift and python3-keystonemiddleware for "
            f"{SYSTEM_PYTHON}: {(probe.stderr.strip().splitlines() or ['?'])[-1]}"
        )
    if shutil.which("memcached") is None:
        return "memcached is not installed (Debian package memcached)"
    return None


# --- rendering the role's templates -------------------------------------------------------


def _ternary(value: Any, true_value: Any, false_value: Any, none_value: Any = None) -> Any:
    if value is None and none_value is not None:
        return none_value
    return true_value if value else false_value


def _regex_replace(value: Any, pattern: str = "", replacement: str = "") -> str:
    return re.sub(pattern, replacement, str(value))


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "y")
    return bool(value)


def template_environment() -> Any:
    """jinja2 as Ansible sets it up for templates, with the filters the role uses."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROLE / "templates")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(ternary=_ternary, regex_replace=_regex_replace, bool=_bool)
    return env


def role_variables(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The role's defaults with ``overrides`` on top, templated values resolved.

    A default that is itself a template (``"{{ ... }}"``) is rendered against the
    others; one that cannot be (it needs an inventory) is left out, so a template
    that uses it fails loudly (StrictUndefined) instead of rendering wrong.
    """
    env = template_environment()
    variables: dict[str, Any] = {}
    for path in (ROLE / "vars" / "main.yml", ROLE / "vars" / "debian.yml"):
        if path.exists():
            variables.update(yaml.safe_load(path.read_text()) or {})
    variables.update(yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()) or {})
    variables.update(overrides)
    pending = {
        k for k, v in variables.items() if k not in overrides and isinstance(v, str) and "{{" in v
    }
    while pending:
        progress = False
        for key in sorted(pending):
            context = {k: v for k, v in variables.items() if k not in pending}
            try:
                variables[key] = env.from_string(variables[key]).render(context).strip()
            except Exception:
                continue
            pending.discard(key)
            progress = True
        if not progress:
            for key in pending:
                del variables[key]
            break
    return variables


# The templates a cluster cannot run without: these must render.
ESSENTIAL_TEMPLATES = (
    "swift.conf.j2",
    "proxy-server.conf.j2",
    "account-server.conf.j2",
    "container-server.conf.j2",
    "object-server.conf.j2",
    "object-expirer.conf.j2",
)


def render_configs(
    variables: Mapping[str, Any], config_dir: Path, storage_ip: str | None = None
) -> dict[str, str]:
    """Render every template of the role into ``config_dir``.

    The storage servers' and rsync's templates get ``storage_ip`` as the
    host's address when given. The essential ones must render; any other that
    needs a variable a local cluster cannot give is left out: its name and the
    error are returned.
    """
    import jinja2

    env = template_environment()
    unrendered = {}
    for template in sorted((ROLE / "templates").glob("*.j2")):
        context = dict(variables)
        if storage_ip and template.name in STORAGE_TEMPLATES:
            context["_stratus_object_storage_address"] = storage_ip
        try:
            text = env.get_template(template.name).render(context)
        except jinja2.UndefinedError as error:
            if template.name in ESSENTIAL_TEMPLATES:
                raise RuntimeError(f"{template.name}: {error}") from error
            unrendered[template.name] = str(error)
            continue
        (config_dir / template.name.removesuffix(".j2")).write_text(text)
    return unrendered


# --- the cluster ---------------------------------------------------------------------------


@dataclass
class SwiftCluster:
    """A running local Swift cluster; see the module docstring."""

    root: Path
    config_dir: Path
    devices_dir: Path
    ports: dict[str, int]
    storage_ip: str
    token_cache_time: int
    cors_allow_origin: list[str]
    variables: dict[str, Any]
    unrendered: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['proxy']}"

    @property
    def devices(self) -> list[Path]:
        return [self.devices_dir / name for name in DEVICE_NAMES]

    @property
    def runs_rsync(self) -> bool:
        """rsync (port 873) for the replicators: needs root and the rsync package."""
        return os.geteuid() == 0 and shutil.which("rsync") is not None

    @property
    def log_dir(self) -> Path:
        return self.root / "logs"

    def endpoint_for(self, project_id: str) -> str:
        return f"{self.proxy_url}/v1/AUTH_{project_id}"

    def _launch(self, *args: str) -> list[str]:
        launcher = self.root / "launcher.py"
        if not launcher.exists():
            launcher.write_text(LAUNCHER)
        return [SYSTEM_PYTHON, str(launcher), str(self.config_dir), *args]

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        try:
            self.processes[name] = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.root,
            )
        finally:
            log.close()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.log_dir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def all_log_tails(self, lines: int = 30) -> str:
        names = sorted(p.stem for p in self.log_dir.glob("*.log")) if self.log_dir.exists() else []
        return "\n".join(f"--- {name}.log\n{self.log_tail(name, lines)}" for name in names)

    def _conf_for(self, daemon: str) -> tuple[str, Path]:
        try:
            klass, confs = DAEMONS[daemon]
        except KeyError:
            raise ValueError(f"unknown daemon {daemon!r}; known: {sorted(DAEMONS)}") from None
        for conf in confs:
            path = self.config_dir / f"{conf}.conf"
            if path.exists() and re.search(rf"^\[{re.escape(daemon)}\]", path.read_text(), re.M):
                return klass, path
        raise DaemonNotConfigured(f"the role writes no [{daemon}] section")

    def has_config(self, daemon: str) -> bool:
        try:
            self._conf_for(daemon)
        except DaemonNotConfigured:
            return False
        return True

    def run_once(self, daemon: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run one pass of a Swift daemon (``object-expirer``, ``object-replicator``...)."""
        klass, conf = self._conf_for(daemon)
        result = subprocess.run(
            self._launch("once", klass, str(conf)),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            start_new_session=True,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"{daemon} exited {result.returncode}:\n{result.stdout[-3000:]}"
                f"\n{result.stderr[-3000:]}"
            )
        return result

    def ring_builder(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self._launch("ring-builder", *args), capture_output=True, text=True, timeout=60
        )

    def build_rings(self) -> None:
        steps: list[str] = []
        for ring in STORAGE_SERVERS:
            builder = str(self.config_dir / f"{ring}.builder")
            steps += [builder, "create", str(PART_POWER), str(REPLICAS), "0", "--"]
            for zone, name in enumerate(DEVICE_NAMES, start=1):
                device = f"r1z{zone}-{self.storage_ip}:{self.ports[ring]}/{name}"
                steps += [builder, "add", device, "100", "--"]
            steps += [builder, "rebalance", "--"]
        result = self.ring_builder(*steps[:-1])
        if result.returncode != 0:
            raise RuntimeError(
                f"swift-ring-builder failed ({result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            )
        missing = [r for r in STORAGE_SERVERS if not (self.config_dir / f"{r}.ring.gz").exists()]
        if missing:
            raise RuntimeError(f"no ring for {missing}:\n{result.stdout}\n{result.stderr}")

    def start_processes(self, timeout: float = 60) -> None:
        self._spawn(
            "memcached",
            [
                shutil.which("memcached") or "memcached",
                "-l",
                "127.0.0.1",
                "-p",
                str(self.ports["memcached"]),
                "-U",
                "0",
                "-m",
                "32",
                "-u",
                pwd.getpwuid(os.getuid()).pw_name,
            ],
        )
        if self.runs_rsync:
            self._spawn(
                "rsync",
                [
                    shutil.which("rsync") or "rsync",
                    "--daemon",
                    "--no-detach",
                    f"--config={self.config_dir / 'rsyncd.conf'}",
                    f"--port={RSYNC_PORT}",
                    # Not the system's pid and log files: those of this cluster.
                    f"--dparam=pidfile={self.root / 'rsyncd.pid'}",
                    f"--log-file={self.log_dir / 'rsyncd.log'}",
                ],
            )
        for server in STORAGE_SERVERS:
            conf = self.config_dir / f"{server}-server.conf"
            self._spawn(server, self._launch("wsgi", f"{server}-server", str(conf)))
        conf = self.config_dir / "proxy-server.conf"
        self._spawn("proxy", self._launch("wsgi", "proxy-server", str(conf)))
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float) -> None:
        urls = {
            name: f"http://{self.storage_ip}:{self.ports[name]}/healthcheck"
            for name in STORAGE_SERVERS
        }
        urls["proxy"] = f"{self.proxy_url}/healthcheck"
        deadline = time.monotonic() + timeout
        waiting = dict(urls)
        while waiting and time.monotonic() < deadline:
            for name, url in list(waiting.items()):
                process = self.processes[name]
                if process.poll() is not None:
                    raise RuntimeError(
                        f"swift {name} exited ({process.returncode}) at start:\n"
                        + self.all_log_tails()
                    )
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        del waiting[name]
                except httpx.HTTPError:
                    pass
            if waiting:
                time.sleep(0.2)
        if waiting:
            raise RuntimeError(
                f"swift {sorted(waiting)} did not answer /healthcheck within {timeout} s:\n"
                + self.all_log_tails()
            )
        for name in ("memcached", "rsync"):
            process = self.processes.get(name)
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{name} exited at start:\n" + self.all_log_tails())
        if self.runs_rsync:
            for _ in range(50):
                try:
                    with socket.create_connection((self.storage_ip, RSYNC_PORT), timeout=2):
                        break
                except OSError:
                    time.sleep(0.1)
            else:
                raise RuntimeError("rsync does not answer:\n" + self.all_log_tails())

    def stop(self) -> None:
        """Kill every process group started and remove the temporary directory."""
        for process in self.processes.values():
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(max(0.1, deadline - time.monotonic()))
        # SIGKILL the groups too: workers forked by a server share its group.
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait(10)
        self.processes.clear()
        shutil.rmtree(self.root, ignore_errors=True)


def local_overrides(
    root: Path,
    ports: Mapping[str, int],
    auth_url: str,
    service_password: str,
    token_cache_time: int,
    cors_allow_origin: Iterable[str],
) -> dict[str, Any]:
    """What a cluster on loopback in ``root`` changes of the role's variables."""
    user = pwd.getpwuid(os.getuid()).pw_name
    group = grp.getgrgid(os.getgid()).gr_name
    config_dir = root / "etc"
    return {
        "ansible_managed": "Ansible managed: rendered by tests/swift_cluster.py",
        "stratus_object_storage_hash_path_prefix": secrets.token_hex(16),
        "stratus_object_storage_hash_path_suffix": secrets.token_hex(16),
        "stratus_object_storage_devices_dir": str(root / "devices"),
        "stratus_object_storage_devices": [
            {"name": name, "region": 1, "zone": zone, "weight": 100}
            for zone, name in enumerate(DEVICE_NAMES, start=1)
        ],
        "stratus_object_storage_mount_check": False,
        "stratus_object_storage_part_power": PART_POWER,
        "stratus_object_storage_replicas": REPLICAS,
        "stratus_object_storage_proxy_port": ports["proxy"],
        "stratus_object_storage_account_port": ports["account"],
        "stratus_object_storage_container_port": ports["container"],
        "stratus_object_storage_object_port": ports["object"],
        "stratus_object_storage_memcached_port": ports["memcached"],
        "stratus_object_storage_service_password": service_password,
        "stratus_object_storage_token_cache_time": token_cache_time,
        "stratus_object_storage_cors_allow_origin": list(cors_allow_origin),
        "stratus_object_storage_region": "RegionOne",
        # Swift reads rings (and memcache.conf, the expirer's internal client
        # configuration) from swift_dir, /etc/swift unless told.
        "stratus_object_storage_proxy_extra_options": {"swift_dir": str(config_dir)},
        "stratus_object_storage_storage_extra_options": {"swift_dir": str(config_dir)},
        "_stratus_object_storage_address": "127.0.0.1",
        "_stratus_object_storage_user": user,
        "_stratus_object_storage_group": group,
        "_stratus_object_storage_config_dir": str(config_dir),
        "_stratus_object_storage_swift_conf": str(config_dir / "swift.conf"),
        "_stratus_object_storage_rings": list(STORAGE_SERVERS),
        "_stratus_object_storage_expirer_processes": 1,
        "_stratus_object_storage_expirer_process": 0,
        "_stratus_object_storage_memcache_servers": f"127.0.0.1:{ports['memcached']}",
        "_stratus_object_storage_www_authenticate_uri": auth_url.rstrip("/").removesuffix("/v3"),
        "_stratus_object_storage_auth_url": auth_url.rstrip("/").removesuffix("/v3"),
    }


def start_swift_cluster(
    auth_url: str,
    service_password: str,
    *,
    proxy_port: int | None = None,
    token_cache_time: int = 3,
    cors_allow_origin: Iterable[str] = ("http://allowed.example.test",),
    overrides: Mapping[str, Any] | None = None,
    timeout: float = 60,
) -> SwiftCluster:
    """Render the role's configuration, build the rings and start the cluster."""
    reason = missing_requirements()
    if reason:
        raise RuntimeError(reason)
    root = Path(tempfile.mkdtemp(prefix="stratus-swift-"))
    storage_ip = storage_address()
    ports = {name: free_port(storage_ip) for name in STORAGE_SERVERS}
    ports["memcached"] = free_port()
    ports["proxy"] = proxy_port or free_port()
    cors = list(cors_allow_origin)
    variables = role_variables(
        {
            **local_overrides(root, ports, auth_url, service_password, token_cache_time, cors),
            **(overrides or {}),
        }
    )
    cluster = SwiftCluster(
        root=root,
        config_dir=root / "etc",
        devices_dir=Path(variables["stratus_object_storage_devices_dir"]),
        ports=ports,
        storage_ip=storage_ip,
        token_cache_time=token_cache_time,
        cors_allow_origin=cors,
        variables=variables,
    )
    try:
        for path in (cluster.config_dir, cluster.log_dir, *cluster.devices):
            path.mkdir(parents=True, exist_ok=True)
        cluster.unrendered = render_configs(variables, cluster.config_dir, storage_ip)
        cluster.build_rings()
        cluster.start_processes(timeout)
    except BaseException:
        cluster.stop()
        raise
    return cluster
