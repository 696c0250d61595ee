"""Fixtures shared by the whole suite: a real identity server and real clients.

``identity_server`` runs ``stratus-api identity`` as its own process on a
free port, over a fresh SQLite database, bootstrapped with an admin; tests
reach it with openstacksdk, the ``openstack`` CLI and plain HTTP. Each
process the fixtures start is stopped when the session ends, also on failure.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

BIN = Path(sys.executable).parent
ADMIN_PASSWORD = "admin-" + uuid.uuid4().hex


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ApiServer:
    """A running ``stratus-api <component>`` process and how to reach it."""

    workdir: Path
    port: int
    config_path: Path
    process: subprocess.Popen[bytes] | None = None
    component: str = "identity"
    ready_path: str = "/v3"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def manage(
        self, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "stratus-manage"), "--config-file", str(self.config_path), *args],
            capture_output=True,
            text=True,
            check=check,
            env={**os.environ, **(env or {})},
        )

    def start(self) -> None:
        start_api(self, self.component, self.ready_path)

    def kill(self) -> None:
        """Kill the service outright (SIGKILL), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_tail(self, lines: int = 40) -> str:
        path = self.workdir / "api.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )


@dataclass
class IdentityServer(ApiServer):
    """The identity service, bootstrapped with an admin."""

    admin_password: str = ADMIN_PASSWORD
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def auth_url(self) -> str:
        return f"{self.url}/v3"

    def auth(
        self,
        username: str = "admin",
        password: str | None = None,
        project: str | None = "admin",
        domain: str = "Default",
    ) -> dict[str, Any]:
        auth = {
            "auth_url": self.auth_url,
            "username": username,
            "password": password or self.admin_password,
            "user_domain_name": domain,
        }
        if project:
            auth.update(project_name=project, project_domain_name=domain)
        return auth

    def cli_env(
        self, username: str = "admin", password: str | None = None, project: str | None = "admin"
    ) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(
            OS_AUTH_URL=self.auth_url,
            OS_USERNAME=username,
            OS_PASSWORD=password or self.admin_password,
            OS_USER_DOMAIN_NAME="Default",
            OS_IDENTITY_API_VERSION="3",
            OS_REGION_NAME="RegionOne",
        )
        if project:
            env.update(OS_PROJECT_NAME=project, OS_PROJECT_DOMAIN_NAME="Default")
        return env


def start_api(server: Any, component: str, ready_path: str) -> None:
    """Start ``stratus-api <component>`` for ``server`` and wait for ``ready_path``."""
    log = open(server.workdir / "api.log", "ab")  # noqa: SIM115 - lives with the process
    server.process = subprocess.Popen(
        [str(BIN / "stratus-api"), component, "--config-file", str(server.config_path)],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{component} exited at start:\n" + server.log_tail())
        try:
            if httpx.get(f"{server.url}{ready_path}", timeout=1).status_code < 400:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{component} did not answer within 30 s:\n" + server.log_tail())


def write_config(
    path: Path, workdir: Path, port: int, database: str | None = None, **identity: Any
) -> None:
    options = {
        "bind_host": "127.0.0.1",
        "bind_port": port,
        "workers": 1,
        "key_repository": workdir / "keys",
        **identity,
    }
    lines = [
        "[DEFAULT]",
        "log_format = json",
        "",
        "[database]",
        f"connection = {database or f'sqlite:///{workdir}/stratus.db'}",
        "",
        "[identity]",
        *[f"{k} = {v}" for k, v in options.items()],
        "",
    ]
    path.write_text("\n".join(lines))


def make_identity_server(
    workdir: Path, database: str | None = None, **identity: Any
) -> IdentityServer:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "stratus.conf"
    write_config(config, workdir, port, database, **identity)
    server = IdentityServer(workdir=workdir, port=port, config_path=config)
    server.manage("db", "sync")
    server.manage("token", "setup-keys")
    server.manage(
        "bootstrap",
        "--public-url",
        f"{server.url}/v3",
        "--internal-url",
        f"{server.url}/v3",
        env={"STRATUS_BOOTSTRAP_PASSWORD": server.admin_password},
    )
    server.start()
    return server


@pytest.fixture(scope="session")
def identity_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdentityServer]:
    server = make_identity_server(tmp_path_factory.mktemp("identity"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_identity_server(tmp_path: Path) -> Iterator[IdentityServer]:
    """A server of the test's own, for tests that change global state."""
    server = make_identity_server(tmp_path / "identity")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def admin_conn(identity_server: IdentityServer) -> Any:
    import openstack

    conn = openstack.connect(
        auth=identity_server.auth(), region_name="RegionOne", identity_api_version="3"
    )
    yield conn
    conn.close()


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> Any:
    """Run the real ``openstack`` CLI; JSON output parsed when ``-f json`` is used."""
    result = subprocess.run(
        [str(BIN / "openstack"), *args], capture_output=True, text=True, env=env
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"openstack {' '.join(args)} failed ({result.returncode}):\n{result.stderr}"
        )
    if "json" in args and result.returncode == 0 and result.stdout.strip():
        return json.loads(result.stdout)
    return result


@pytest.fixture(scope="session")
def openstack_cli(identity_server: IdentityServer) -> Any:
    """``openstack_cli(*args, user=..., password=..., project=...)`` as admin by default."""

    def call(
        *args: str,
        user: str = "admin",
        password: str | None = None,
        project: str | None = "admin",
        check: bool = True,
    ) -> Any:
        return run_cli(identity_server.cli_env(user, password, project), *args, check=check)

    return call


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]


def have(command: str) -> bool:
    return shutil.which(command) is not None


def _postgres_bin() -> Path | None:
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return candidates[-1].parent if candidates else None


@pytest.fixture(scope="session")
def postgresql_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A throwaway PostgreSQL cluster of Debian's packages, owned by this session."""
    import pwd

    bindir = _postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries are not installed (Debian package postgresql)")
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("the postgres system user does not exist")
    import tempfile

    # pytest's own temporary directories are private to root; the server runs
    # as postgres, so its cluster lives in a directory it can reach.
    base = Path(tempfile.mkdtemp(prefix="stratus-pg-"))
    os.chmod(base, 0o755)
    data, sockets = base / "data", base / "run"
    for path in (data, sockets):
        path.mkdir()
        os.chown(path, owner.pw_uid, owner.pw_gid)
    port = free_port()

    def as_postgres(*cmd: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd], check=True, capture_output=True, text=True
        )

    started = False
    try:
        as_postgres(
            str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(sockets / "postgresql.log")
        as_postgres(
            str(bindir / "pg_ctl"), "-D", str(data), "-l", log, "-w", "-o", options, "start"
        )
        started = True
        as_postgres(str(bindir / "createdb"), "-h", str(sockets), "-p", str(port), "stratus")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/stratus"
    finally:
        if started:
            as_postgres(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


# --- services other than identity ------------------------------------------------

IMAGE_SERVICE_PASSWORD = "image-" + uuid.uuid4().hex
NETWORK_SERVICE_PASSWORD = "network-" + uuid.uuid4().hex
COMPUTE_SERVICE_PASSWORD = "compute-" + uuid.uuid4().hex

# component -> (catalog type, catalog name, service user, its password, readiness path)
SERVICES = {
    "image": ("image", "glance", "image", IMAGE_SERVICE_PASSWORD, "/versions"),
    "network": ("network", "neutron", "network", NETWORK_SERVICE_PASSWORD, "/"),
    "compute": ("compute", "nova", "compute", COMPUTE_SERVICE_PASSWORD, "/"),
}
# component -> the path of its versioned endpoint in the catalog
CATALOG_PATHS = {"compute": "/v2.1"}


def register_service(identity: IdentityServer, component: str, url: str) -> None:
    """A service's user (role ``service``) and catalog entry, as its role makes them."""
    kind, name, user, password, _ready = SERVICES[component]
    identity.manage(
        "service",
        "register",
        "--type",
        kind,
        "--name",
        name,
        "--description",
        f"Stratus {component} service",
        "--public-url",
        url,
        "--user",
        user,
        env={"STRATUS_SERVICE_PASSWORD": password},
    )


def register_image_service(identity: IdentityServer, url: str) -> None:
    register_service(identity, "image", url)


def make_service_server(
    component: str,
    workdir: Path,
    identity: IdentityServer,
    options: dict[str, Any],
    register: bool = True,
) -> ApiServer:
    """``stratus-api <component>`` sharing identity's database, as on a controller."""
    _kind, _name, user, password, ready = SERVICES[component]
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "stratus.conf"
    database = (
        identity.config_path.read_text().split("connection = ", 1)[1].split("\n", 1)[0].strip()
    )
    options = {"bind_host": "127.0.0.1", "bind_port": port, "workers": 1, **options}
    lines = [
        "[DEFAULT]",
        "log_format = json",
        "",
        "[database]",
        f"connection = {database}",
        "",
        f"[{component}]",
        *[f"{k} = {v}" for k, v in options.items()],
        "",
        f"[{component}_authtoken]",
        f"auth_url = {identity.url}",
        f"username = {user}",
        f"password = {password}",
        "cache_ttl = 5",
        "",
    ]
    config.write_text("\n".join(lines))
    server = ApiServer(
        workdir=workdir, port=port, config_path=config, component=component, ready_path=ready
    )
    if register:
        register_service(identity, component, server.url + CATALOG_PATHS.get(component, ""))
    server.start()
    return server


def make_image_server(
    workdir: Path, identity: IdentityServer, register: bool = True, **image: Any
) -> ApiServer:
    options = {
        "filesystem_store_datadir": workdir / "images",
        "staging_dir": workdir / "staging",
        **image,
    }
    return make_service_server("image", workdir, identity, options, register)


def make_network_server(
    workdir: Path, identity: IdentityServer, register: bool = True, **network: Any
) -> ApiServer:
    options = {
        "flat_networks": "physnet1",
        "network_vlan_ranges": "physnet1:100:199,physnet2",
        "vni_ranges": "1000:1999",
        "gre_tunnel_id_ranges": "1:999",
        **network,
    }
    return make_service_server("network", workdir, identity, options, register)


@pytest.fixture(scope="session")
def image_server(
    identity_server: IdentityServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    server = make_image_server(tmp_path_factory.mktemp("image"), identity_server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def image_conn(identity_server: IdentityServer, image_server: ApiServer) -> Any:
    """openstacksdk as the admin, with the image service in its catalog."""
    import openstack

    conn = openstack.connect(
        auth=identity_server.auth(), region_name="RegionOne", identity_api_version="3"
    )
    yield conn
    conn.close()


# --- object storage (Swift, configured by roles/object_storage) ---------------------------

SWIFT_SERVICE_PASSWORD = "swift-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def swift_cluster(identity_server: IdentityServer) -> Iterator[Any]:
    """A real local Swift cluster (tests/swift_cluster.py) whose proxy trusts
    ``identity_server``; the object-store service is in its catalog."""
    from tests import swift_cluster as swift

    reason = swift.missing_requirements()
    if reason:
        pytest.skip(reason)
    port = free_port()
    identity_server.manage(
        "service",
        "register",
        "--type",
        "object-store",
        "--name",
        "swift",
        "--description",
        "Stratus object storage (OpenStack Swift)",
        "--public-url",
        f"http://127.0.0.1:{port}/v1/AUTH_%(project_id)s",
        "--user",
        "swift",
        env={"STRATUS_SERVICE_PASSWORD": SWIFT_SERVICE_PASSWORD},
    )
    cluster = swift.start_swift_cluster(
        identity_server.url, SWIFT_SERVICE_PASSWORD, proxy_port=port
    )
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def network_server(
    identity_server: IdentityServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    server = make_network_server(tmp_path_factory.mktemp("network"), identity_server)
    try:
        yield server
    finally:
        server.stop()


def make_compute_server(
    workdir: Path, identity: IdentityServer, register: bool = True, **compute: Any
) -> ApiServer:
    return make_service_server("compute", workdir, identity, compute, register)


@pytest.fixture(scope="session")
def compute_server(compute_stack: Any) -> ApiServer:
    """The compute API of ``compute_stack`` (one compute service in the catalog)."""
    return compute_stack.api  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def compute_stack(
    identity_server: IdentityServer,
    network_server: ApiServer,
    image_server: ApiServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Any]:
    """The compute API, scheduler and a fake-driver agent (two hosts), with
    the image and network services in the catalog (tests/compute_stack.py)."""
    from tests.compute_stack import make_compute_stack

    stack = make_compute_stack(tmp_path_factory.mktemp("compute-stack"), identity_server)
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def network_conn(identity_server: IdentityServer, network_server: ApiServer) -> Any:
    """openstacksdk as the admin, with the network service in its catalog."""
    import openstack

    conn = openstack.connect(
        auth=identity_server.auth(), region_name="RegionOne", identity_api_version="3"
    )
    yield conn
    conn.close()


# Tests that create lab hosts (systemd-nspawn on the lab bridge, Molecule
# scenarios) share the bridge, its addresses and the host root cache, so they
# run one after another in one worker of ``pytest -n 3`` (make test). The
# tests of emulated guests (the stock kernel's QEMU guest, the compute tests'
# libvirt and QEMU guests) and Tempest's runs, which spend their time in
# guests, subprocesses and waits, run in order in a second worker; every
# other test in order in the third. Within a worker the namespaces, bridges,
# caches and Tempest's virtualenv those tests set up never meet a twin; the
# three groups share none of them (the kernel cache they all may fill is
# locked).
LAB_HOST_TESTS = ("tests/lab/test_molecule_", "tests/lab/test_lab_hosts.py")
GUEST_TESTS = ("tests/lab/test_stock_kernel.py", "tests/lab/test_tempest_", "tests/compute/")


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Three work units for xdist: lab hosts, guests and Tempest, and the rest.

    (xdist's own ``loadgroup`` reads ``xdist_group`` marks through a node ID
    rewrite that pytest 9 no longer sees.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.startswith(LAB_HOST_TESTS):
                return "lab-hosts"
            return "guests" if nodeid.startswith(GUEST_TESTS) else "main"

    return WorkUnits(config, log)
