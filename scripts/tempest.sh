#!/usr/bin/env bash
# Run Tempest's API tests for Stratus's identity (Keystone v3) and image
# (Glance v2) services against throwaway servers, or its object storage
# (Swift) tests against an existing, rolled-out cloud, and record the result.
#
#   scripts/tempest.sh                            (or: make tempest) identity and image
#   STRATUS_TEMPEST_SUITE=identity scripts/tempest.sh   tempest.api.identity only
#   STRATUS_TEMPEST_SUITE=image scripts/tempest.sh      tempest.api.image (v2) only
#   STRATUS_TEMPEST_SUITE=network scripts/tempest.sh    tempest.api.network, with an agent
#   STRATUS_TEMPEST_SUITE=compute scripts/tempest.sh    tempest.api.compute, with the
#                                     fake driver's hosts and a network agent
#   STRATUS_TEMPEST_SUITE=object_storage STRATUS_TEMPEST_CLOUD=stratus-admin \
#     OS_CLIENT_CONFIG_FILE=/etc/openstack/clouds.yaml scripts/tempest.sh
#                                     tempest.api.object_storage against that cloud
#
# 1. Tempest goes into its own virtualenv, .venv-tempest (never into .venv: it
#    pins its own oslo.* and client libraries). A stamp makes re-runs quick.
# 2. identity, image (and all): a fresh identity server: SQLite and token keys
#    in a temporary directory, db sync, token setup-keys, bootstrap,
#    `stratus-api identity` on a free loopback port, with the settings Tempest
#    needs (see docs/tempest.md). For the image suite also `stratus-api image`
#    on the same database, with its own data and staging directories,
#    registered in the catalog (type image) with `stratus-manage service
#    register`. The network suite adds `stratus-api network` and a network
#    agent on a simulated host (2c); the compute suite image and network (with
#    the agent) and `stratus-api compute`, `stratus-compute-scheduler` and
#    `stratus-compute-agent` with the fake driver playing a few hosts (2d),
#    two tiny images and two flavors (scripts/tempest_compute.py).
#    object_storage: no server is started. The cloud is STRATUS_TEMPEST_CLOUD,
#    a cloud of clouds.yaml (OS_CLIENT_CONFIG_FILE, else openstacksdk's
#    places: ./clouds.yaml, ~/.config/openstack/clouds.yaml,
#    /etc/openstack/clouds.yaml) whose password credentials are a cloud admin's
#    (admin role on the admin project): Tempest creates a project and user per
#    test class with them, and deletes them afterwards. The script logs in,
#    finds the object-store endpoint in the catalog and reads the proxy's /info
#    (swift-info.json): Tempest is told the middlewares listed there.
# 3. A tempest.conf for them, then `tempest run` (stestr) over the suite's
#    regex minus its exclude list(s), tests/tempest/exclude-<suite>.txt
#    (exclude-object-storage.txt for object_storage).
# 4. The servers are stopped by a trap: always, also on failure and Ctrl-C.
#
# Output (replaced on every run) in $STRATUS_TEMPEST_OUT, default .lab/tempest/:
# tempest.conf, tempest.log (every request and response), api.log (the
# identity server's log), image-api.log (the image server's), network-api.log,
# network-agent.log, compute-api.log, compute-scheduler.log and
# compute-agent.log (the network and compute suites' servers), swift-info.json
# (object_storage: the proxy's /info), run.txt (the test run), exclude.txt
# (the exclusions applied), results.subunit, summary.json. The exit code is
# tempest's: 0 when no test failed. For object_storage the directory is
# private (umask 077): tempest.conf holds the cloud admin's password.
#
# Environment: STRATUS_VENV (.venv), STRATUS_TEMPEST_VENV (.venv-tempest),
# STRATUS_TEMPEST_VERSION (47.0.0), STRATUS_TEMPEST_CONCURRENCY (2),
# STRATUS_TEMPEST_SUITE (all: identity and image; identity, image, network,
# compute, object_storage), STRATUS_TEMPEST_REGEX (default: the suite's;
# overrides the selection, not the exclusions), STRATUS_TEMPEST_OUT.
# compute only: STRATUS_TEMPEST_COMPUTE_HOSTS (3: the fake driver's hosts).
# object_storage only: STRATUS_TEMPEST_CLOUD (required), OS_CLIENT_CONFIG_FILE,
# STRATUS_TEMPEST_OPERATOR_ROLE (member: the role that owns a project's
# account, one of the proxy's keystoneauth operator_roles),
# STRATUS_TEMPEST_RESELLER_ADMIN_ROLE (ResellerAdmin).
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${STRATUS_VENV:-$here/.venv}
tvenv=${STRATUS_TEMPEST_VENV:-$here/.venv-tempest}
version=${STRATUS_TEMPEST_VERSION:-47.0.0}
concurrency=${STRATUS_TEMPEST_CONCURRENCY:-2}
suite=${STRATUS_TEMPEST_SUITE:-all}
out=${STRATUS_TEMPEST_OUT:-$here/.lab/tempest}

log() { echo "tempest.sh: $*" >&2; }

# The image suite is Glance v2 only: Tempest 47 has no v1 tests left, and the
# v2 package is named explicitly so that a future v1 package is not selected.
case $suite in
  identity) suite_regex='^tempest\.api\.identity\.' ; suites="identity" ;;
  image) suite_regex='^tempest\.api\.image\.v2\.' ; suites="image" ;;
  all) suite_regex='^tempest\.api\.(identity|image\.v2)\.' ; suites="identity image" ;;
  network) suite_regex='^tempest\.api\.network\.' ; suites="network" ;;
  compute) suite_regex='^tempest\.api\.compute\.' ; suites="compute" ;;
  object_storage) suite_regex='^tempest\.api\.object_storage\.' ; suites="object-storage" ;;
  *) log "STRATUS_TEMPEST_SUITE must be identity, image, network, compute, object_storage or all, not '$suite'"; exit 2 ;;
esac
regex=${STRATUS_TEMPEST_REGEX:-$suite_regex}
# Compute needs images to boot and networks (with the agent) to plug into.
with_image=false
case " $suites " in *" image "* | *" compute "*) with_image=true ;; esac
with_network=false
case " $suites " in *" network "* | *" compute "*) with_network=true ;; esac
with_compute=false
case " $suites " in *" compute "*) with_compute=true ;; esac

existing_cloud=false
if [ "$suite" = object_storage ]; then
  existing_cloud=true
  cloud=${STRATUS_TEMPEST_CLOUD:-}
  if [ -z "$cloud" ]; then
    log "the object_storage suite runs against an existing cloud: set STRATUS_TEMPEST_CLOUD to its name in clouds.yaml"
    exit 2
  fi
elif [ ! -x "$venv/bin/stratus-api" ]; then
  log "$venv has no stratus-api; run 'make bootstrap' first"
  exit 2
fi

# --- 1. Tempest's virtualenv ------------------------------------------------
python=${STRATUS_TEMPEST_PYTHON:-/usr/bin/python3}
[ -x "$python" ] || python=$(command -v python3)
stamp=$tvenv/.stratus-tempest
want="tempest==$version $("$python" -c 'import sys; print(sys.version.split()[0])')"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log "installing tempest $version into $tvenv"
  [ -x "$tvenv/bin/python" ] || "$python" -m venv "$tvenv"
  "$tvenv/bin/pip" install -q --disable-pip-version-check --upgrade pip
  "$tvenv/bin/pip" install -q --disable-pip-version-check "tempest==$version"
  echo "$want" > "$stamp"
fi

# --- 2. The output directory, the servers' trap ------------------------------
# For an existing cloud tempest.conf holds its admin's password: keep it private.
if $existing_cloud; then umask 077; fi
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
workdir=$(mktemp -d "${TMPDIR:-/tmp}/stratus-tempest.XXXXXX")
server_pids=()

# Each server runs in its own session and process group (setsid): end the
# group, so that uvicorn's worker processes go too.
# shellcheck disable=SC2317  # called from the trap
stop_servers() {
  local pid
  for pid in "${server_pids[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      log "stopping a server (pid $pid)"
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    fi
  done
  for pid in "${server_pids[@]}"; do
    for _ in $(seq 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
  done
  server_pids=()
}
# The network suite's agent host (see 2c): its namespace, once the agent is stopped.
agent_netns=
agent_mnt=
# The agent (every process of its mount namespace) and its dnsmasq (each in
# a mount namespace of its own, made by ip netns exec; their command lines
# name the agent's state directory).
# shellcheck disable=SC2317  # called from the trap
stop_agent_host() {
  local proc
  [ -n "$agent_netns" ] || return 0
  if [ -n "$agent_mnt" ]; then
    for proc in /proc/[0-9]*; do
      if [ "$(readlink "$proc/ns/mnt" 2>/dev/null)" = "$agent_mnt" ]; then kill -KILL "${proc#/proc/}" 2>/dev/null || true; fi
    done
  fi
  pkill -KILL -f -- "--pid-file=$workdir/agent/" 2>/dev/null || true
  return 0
}
# shellcheck disable=SC2317  # called from the trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_servers
  stop_agent_host
  if [ -n "$agent_netns" ]; then ip netns del "$agent_netns" 2>/dev/null || true; fi
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# Tempest's run over the suite's regex minus its exclusions, then the
# summary; exits with Tempest's code. Called once tempest.conf is written.
run_tempest() {
  local name rc=0 start elapsed exclude_list=$out/exclude.txt
  # The exclusions of the suites that run, in one list (stestr takes one).
  for name in $suites; do
    cat "$here/tests/tempest/exclude-$name.txt"
  done > "$exclude_list"

  log "running tempest $version: $regex (concurrency $concurrency)"
  cd "$out"
  start=$(date +%s)
  "$tvenv/bin/tempest" run --config-file "$out/tempest.conf" --regex "$regex" \
    --exclude-list "$exclude_list" --concurrency "$concurrency" > "$out/run.txt" 2>&1 || rc=$?
  elapsed=$(( $(date +%s) - start ))
  sed -n '/^Totals$/,/^Sum of execute/p' "$out/run.txt"

  "$tvenv/bin/stestr" last --subunit > "$out/results.subunit" 2>/dev/null || true
  "$tvenv/bin/tempest" run --config-file "$out/tempest.conf" --regex "$regex" --list-tests \
    2>/dev/null | grep '^tempest\.' > "$out/selected.txt" || true
  "$tvenv/bin/python" "$here/scripts/tempest_summary.py" \
    --subunit "$out/results.subunit" --selected "$out/selected.txt" \
    --exclude-list "$exclude_list" --json "$out/summary.json" \
    --tempest-version "$version" --seconds "$elapsed" --exit-code "$rc" || true
  if $existing_cloud; then
    log "logs in $out (tempest.log: every request; swift-info.json: the proxy's /info)"
  else
    log "logs in $out (tempest.log: every request; api.log, image-api.log: the servers)"
  fi
  exit "$rc"
}

# --- 2a. object_storage: an existing cloud ------------------------------------
if $existing_cloud; then
  # Log in as the cloud's admin with the credentials of clouds.yaml, find the
  # object-store endpoint (public, the cloud's region) and read the proxy's
  # /info. Prints shell assignments (shlex-quoted) for the settings below;
  # the names come from the token, so clouds.yaml may give IDs instead.
  settings=$(STRATUS_TEMPEST_OUT=$out "$tvenv/bin/python" - "$cloud" <<'PY'
import json
import os
import shlex
import ssl
import sys
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

name = sys.argv[1]
out = Path(os.environ["STRATUS_TEMPEST_OUT"])


def fail(message: str) -> None:
    print(f"tempest.sh: {message}", file=sys.stderr)
    sys.exit(2)


candidates = (
    [os.environ["OS_CLIENT_CONFIG_FILE"]]
    if os.environ.get("OS_CLIENT_CONFIG_FILE")
    else ["clouds.yaml", "~/.config/openstack/clouds.yaml", "/etc/openstack/clouds.yaml"]
)
paths = [Path(c).expanduser() for c in candidates]
path = next((p for p in paths if p.is_file()), None)
if path is None:
    fail(f"no clouds.yaml (looked at {', '.join(map(str, paths))})")
clouds = (yaml.safe_load(path.read_text()) or {}).get("clouds") or {}
if name not in clouds:
    fail(f"{path} has no cloud '{name}' (it has: {', '.join(sorted(clouds)) or 'none'})")
config = clouds[name]
auth = config.get("auth") or {}
if config.get("auth_type", "password") not in ("password", "v3password"):
    fail(f"cloud '{name}': only password credentials are supported")
for key in ("auth_url", "username", "password"):
    if not auth.get(key):
        fail(f"cloud '{name}' in {path} has no auth.{key}")

auth_url = auth["auth_url"].rstrip("/")
uri_v3 = auth_url if auth_url.endswith("/v3") else auth_url + "/v3"
verify = config.get("verify", True)
cacert = config.get("cacert") or ""
context = ssl.create_default_context(cafile=cacert or None)
if not verify:
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE


def domain(prefix: str) -> dict:
    if auth.get(f"{prefix}_domain_id"):
        return {"id": auth[f"{prefix}_domain_id"]}
    return {"name": auth.get(f"{prefix}_domain_name") or "Default"}


if auth.get("project_id"):
    project = {"id": auth["project_id"]}
elif auth.get("project_name"):
    project = {"name": auth["project_name"], "domain": domain("project")}
else:
    fail(f"cloud '{name}' needs a project (the admin project)")
request = urllib.request.Request(
    uri_v3 + "/auth/tokens",
    data=json.dumps(
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": auth["username"],
                            "password": auth["password"],
                            "domain": domain("user"),
                        }
                    },
                },
                "scope": {"project": project},
            }
        }
    ).encode(),
    headers={"Content-Type": "application/json"},
    method="POST",
)
try:
    with urllib.request.urlopen(request, timeout=30, context=context) as response:
        token_id = response.headers["X-Subject-Token"]
        token = json.load(response)["token"]
except OSError as error:
    fail(f"cannot log in to {uri_v3} as cloud '{name}': {error}")
if "admin" not in {role["name"] for role in token.get("roles", [])}:
    fail(f"cloud '{name}' is not an admin (Tempest creates its users and projects with it)")

region = config.get("region_name") or ""
interface = "public"
urls = [
    (endpoint.get("region_id") or endpoint.get("region") or "", endpoint["url"])
    for service in token.get("catalog", [])
    if service["type"] == "object-store"
    for endpoint in service["endpoints"]
    if endpoint["interface"] == interface
]
urls = [(r, u) for r, u in urls if not region or r == region]
if not urls:
    fail(f"no {interface} object-store endpoint in the catalog (region '{region or 'any'}')")
region, store_url = urls[0]

# /info is at the proxy's root, beside /v1.
parts = urlsplit(store_url)
prefix = parts.path.split("/v1", 1)[0].rstrip("/")
info_url = urlunsplit((parts.scheme, parts.netloc, prefix + "/info", "", ""))
try:
    with urllib.request.urlopen(info_url, timeout=30, context=context) as response:
        info = json.load(response)
except OSError as error:
    fail(f"cannot read the proxy's capabilities at {info_url}: {error}")
(out / "swift-info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")

# The TempURL digest: sha256 if the proxy takes it, else the first it takes
# and does not deprecate.
tempurl = info.get("tempurl") or {}
allowed = tempurl.get("allowed_digests") or ["sha1"]
deprecated = set(tempurl.get("deprecated_digests") or [])
digest = "sha256" if "sha256" in allowed else next(
    (d for d in allowed if d not in deprecated), allowed[0]
)
settings = {
    "uri_v3": uri_v3,
    "region": region,
    "store_url": store_url,
    "info_url": info_url,
    "admin_username": token["user"]["name"],
    "admin_password": auth["password"],
    "admin_user_domain": token["user"]["domain"]["name"],
    "admin_project": token["project"]["name"],
    "admin_project_domain": token["project"]["domain"]["name"],
    "discoverable_apis": ", ".join(sorted(info)),
    "tempurl_digest": digest,
    "swift_version": (info.get("swift") or {}).get("version", "unknown"),
    # [identity] TLS settings (Tempest's clients all use them), as in clouds.yaml.
    "tls_settings": "\n".join(
        ([f"ca_certificates_file = {cacert}"] if cacert else [])
        + [f"disable_ssl_certificate_validation = {'false' if verify else 'true'}"]
    ),
}
for key, value in settings.items():
    print(f"{key}={shlex.quote(value)}")
PY
  )
  # Set by the eval (named here for shellcheck).
  uri_v3='' region='' store_url='' info_url='' admin_username='' admin_password=''
  admin_user_domain='' admin_project='' admin_project_domain='' discoverable_apis=''
  tempurl_digest='' swift_version='' tls_settings=''
  eval "$settings"
  log "cloud '$cloud': identity $uri_v3, object storage $store_url (Swift $swift_version, region $region)"
  log "middlewares in $info_url: $discoverable_apis"
  operator_role=${STRATUS_TEMPEST_OPERATOR_ROLE:-member}
  reseller_admin_role=${STRATUS_TEMPEST_RESELLER_ADMIN_ROLE:-ResellerAdmin}

  cat > "$out/tempest.conf" <<EOF
[DEFAULT]
log_dir = $out
log_file = tempest.log
debug = true
use_stderr = false

[auth]
# Tempest creates a project and user per test class with the cloud admin's
# credentials (admin role on the admin project), and deletes them after.
use_dynamic_credentials = true
create_isolated_networks = false
admin_username = $admin_username
admin_password = $admin_password
admin_project_name = $admin_project
admin_domain_name = $admin_user_domain
admin_user_domain_name = $admin_user_domain
admin_project_domain_name = $admin_project_domain
default_credentials_domain_name = $admin_project_domain

[identity]
uri_v3 = $uri_v3
auth_version = v3
region = $region
v3_endpoint_type = public
catalog_type = identity
admin_role = admin
admin_domain_scope = false
$tls_settings

[identity-feature-enabled]
api_v2 = false
api_v2_admin = false
api_v3 = true

[object-storage]
catalog_type = object-store
region = $region
endpoint_type = public
# keystoneauth: the operator role owns the project's account (one of the
# proxy's operator_roles); the reseller admin may act on every account.
operator_role = $operator_role
reseller_admin_role = $reseller_admin_role
build_timeout = 30

[object-storage-feature-enabled]
# The middlewares the proxy's /info lists (swift-info.json); the tests of the
# others skip themselves.
discoverable_apis = $discoverable_apis
discoverability = true
# Old-style container sync (X-Container-Sync-To with a URL) is Tempest's
# skipped test (bug 1317133); realm-based sync is excluded (no realms, no
# container-sync daemon: tests/tempest/exclude-object-storage.txt).
container_sync = false
# versioned_writes (X-Versions-Location, X-History-Location) is in the pipeline.
object_versioning = true
tempurl_digest_hashlib = $tempurl_digest

[service_available]
swift = true
cinder = false
neutron = false
glance = false
nova = false
horizon = false

[validation]
run_validation = false
EOF
  run_tempest
fi

# --- 2b. identity, image: a throwaway identity server -----------------------
free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# The network suite runs a real agent (2c) on a host simulated by a network
# namespace of its own, joined to this machine by a veth pair on a private
# /30 (198.18.0.0/15, the benchmarking range); the servers listen on this
# machine's end of it, so that the agent reaches them and nothing else can.
listen=127.0.0.1
if $with_network && [ "$(id -u)" = 0 ] && command -v unshare > /dev/null; then
  net_id=$(( RANDOM % 250 + 1 ))
  agent_netns=stratus-tempest-$$
  agent_link=stt$$
  listen=198.18.$net_id.1
  agent_ip=198.18.$net_id.2
  ip netns add "$agent_netns"
  ip link add "$agent_link" type veth peer name eth0 netns "$agent_netns"
  ip addr add "$listen/30" dev "$agent_link"
  ip link set "$agent_link" up
  ip -n "$agent_netns" addr add "$agent_ip/30" dev eth0
  ip -n "$agent_netns" link set eth0 up
  ip -n "$agent_netns" link set lo up
elif $with_network; then
  log "not root (or no unshare): no network agent; router interface ports stay DOWN and the tests that wait for them fail"
fi
port=$(free_port)
url=http://$listen:$port
image_port=$(free_port)
image_url=http://127.0.0.1:$image_port
network_port=$(free_port)
network_url=http://$listen:$network_port
compute_port=$(free_port)
compute_url=http://$listen:$compute_port
# The fake driver's hosts (tempest-compute-1, -2, ...): enough for Tempest's
# multi-host and anti-affinity tests.
compute_hosts=${STRATUS_TEMPEST_COMPUTE_HOSTS:-3}
secret() { "$venv/bin/python" -c 'import secrets; print("Tempest-" + secrets.token_hex(12))'; }
password=$(secret)
image_password=$(secret)
network_password=$(secret)
compute_password=$(secret)
config=$workdir/stratus.conf
# The formats the image server accepts (all it knows).
disk_formats="raw, qcow2, ami, ari, aki, iso, vdi, vhd, vhdx, vmdk, ploop"
container_formats="bare, ovf, ova, ami, ari, aki, compressed"
# The ones Tempest uses: it uploads random bytes as the first few (disk x
# container) pairs, which Stratus's format inspection accepts only for the
# formats without a header (raw, ami, ari, aki): see image_format_enforcement.
tempest_disk_formats="raw, ami, ari, aki"
tempest_container_formats="bare, ovf, ova, ami, ari, aki"

# admin_project_name is empty: Tempest's dynamic credentials give the admin
# role on fresh projects and expect it to administer the cloud (Keystone's
# legacy behaviour); Stratus's secure default only does so for the admin role
# on the 'admin' project or with system scope. Lockout is on, as Tempest's
# security-compliance tests expect (2 attempts, 5 seconds). Both servers read
# this one file, as on a controller: the image server its [image] and
# [image_authtoken] sections, and the shared [database].
cat > "$config" <<EOF
[DEFAULT]
log_format = text
debug = false

[database]
connection = sqlite:///$workdir/stratus.db

[identity]
bind_host = $listen
bind_port = $port
workers = 2
key_repository = $workdir/keys
admin_project_name =
lockout_failure_attempts = 2
lockout_duration = 5

[image]
bind_host = 127.0.0.1
bind_port = $image_port
workers = 2
filesystem_store_datadir = $workdir/images
staging_dir = $workdir/image-staging
disk_formats = $disk_formats
container_formats = $container_formats

[image_authtoken]
auth_url = $url
username = image
password = $image_password
cache_ttl = 5

# Flat networks on any physical network (Tempest's admin tests make some),
# VLANs on physnet1, VXLAN for projects; 'public' is the external network.
[network]
bind_host = $listen
bind_port = $network_port
workers = 2
flat_networks = *
network_vlan_ranges = physnet1:1000:1999
tenant_network_types = vxlan
vni_ranges = 1000:19999

[network_authtoken]
auth_url = $url
username = network
password = $network_password
cache_ttl = 5

# The compute suite: its API, scheduler and an agent whose fake driver plays
# $compute_hosts hosts of 16 vCPUs and 64 GiB each (no guests: nothing boots).
[compute]
bind_host = $listen
bind_port = $compute_port
workers = 2
scheduler_interval = 0.1
service_down_time = 20

[compute_authtoken]
auth_url = $url
username = compute
password = $compute_password
cache_ttl = 5

[compute_agent]
host = tempest-compute
driver = fake
fake_hosts = $compute_hosts
resync_interval = 0.3
instances_path = $workdir/instances
api_url = $compute_url/v2.1
reserved_host_memory_mb = 0

[compute_agent_authtoken]
auth_url = $url
username = compute
password = $compute_password
EOF

manage() { "$venv/bin/stratus-manage" --config-file "$config" "$@" >> "$out/manage.log"; }

# start_server NAME URL-THAT-ANSWERS-WHEN-READY LOG
start_server() {
  local name=$1 ready=$2 logfile=$3 pid
  setsid "$venv/bin/stratus-api" "$name" --config-file "$config" > "$logfile" 2>&1 &
  pid=$!
  server_pids+=("$pid")
  for _ in $(seq 150); do
    if ! kill -0 "$pid" 2>/dev/null; then
      log "the $name server exited at start:"
      tail -n 40 "$logfile" >&2
      exit 1
    fi
    curl -fsS -o /dev/null "$ready" 2>/dev/null && return 0
    sleep 0.2
  done
  log "the $name server did not answer in 30 s"
  exit 1
}

log "identity server on $url (data in $workdir)"
manage db sync
manage token setup-keys
STRATUS_BOOTSTRAP_PASSWORD=$password manage bootstrap \
  --username admin --project admin --region RegionOne \
  --public-url "$url/v3" --internal-url "$url/v3" --admin-url "$url/v3"
start_server identity "$url/v3" "$out/api.log"

if $with_image; then
  log "image server on $image_url"
  STRATUS_SERVICE_PASSWORD=$image_password manage service register \
    --type image --name glance --description "Stratus image service" \
    --region RegionOne --public-url "$image_url" --user image
  start_server image "$image_url/versions" "$out/image-api.log"
fi

if $with_network; then
  log "network server on $network_url"
  STRATUS_SERVICE_PASSWORD=$network_password manage service register \
    --type network --name neutron --description "Stratus network service" \
    --region RegionOne --public-url "$network_url" --user network
  start_server network "$network_url/" "$out/network-api.log"

  # --- 2c. the network agent ------------------------------------------------
  # On its simulated host: the namespace above, plus a private mount
  # namespace (its qdhcp-/qrouter- namespaces live in a /run/netns of its
  # own; the cleanup kills every process in that mount namespace, the
  # dnsmasq processes the agent leaves running on purpose included). The
  # external network 'public' is carried by a veth pair there. It reports
  # every second, so router and DHCP ports turn ACTIVE as Tempest expects.
  agent_host=
  if [ -n "$agent_netns" ]; then
    agent_host=tempest-agent
    agent_dir=$workdir/agent
    mkdir -p "$agent_dir"
    chmod 0711 "$workdir"  # dnsmasq runs as nobody: it must reach its files
    chmod 0755 "$agent_dir"
    cat > "$agent_dir/agent.conf" <<EOF
[DEFAULT]
log_format = text

[network_agent]
host = $agent_host
local_ip = $agent_ip
physical_interface_mappings = public:pub0
tunnel_types = vxlan
state_dir = $agent_dir/state
resync_interval = 1
api_url = $network_url

[network_agent_authtoken]
auth_url = $url
username = network
password = $network_password
EOF
    log "network agent in namespace $agent_netns ($agent_ip)"
    setsid ip netns exec "$agent_netns" unshare --mount --propagation private sh -c "mount -t tmpfs tmpfs /run/netns \
        && ip link add pub0 type veth peer name pub1 && ip link set pub1 up \
        && exec '$venv/bin/stratus-network-agent' --config-file '$agent_dir/agent.conf'" \
      > "$out/network-agent.log" 2>&1 &
    server_pids+=("$!")
    for _ in $(seq 50); do
      agent_pid=$(pgrep -f "^$venv/bin/python.* --config-file $agent_dir/agent.conf" | head -n 1 || true)
      [ -n "$agent_pid" ] && break
      sleep 0.1
    done
    agent_mnt=$(readlink "/proc/$agent_pid/ns/mnt" 2>/dev/null || true)
  fi

  # The external network floating IPs come from, and the extensions the
  # server lists (Tempest tests only those); waits for the agent to report.
  network_settings=$("$venv/bin/python" "$here/scripts/tempest_network.py" \
    "$url" "$password" "$network_url" $agent_host)
  eval "$network_settings"
else
  public_network_id=
  network_extensions=
fi

# --- 2d. compute: the API, the scheduler, the fake hosts' agent --------------
image_ref=
image_ref_alt=
flavor_ref=
flavor_ref_alt=
if $with_compute; then
  log "compute server on $compute_url ($compute_hosts fake hosts)"
  STRATUS_SERVICE_PASSWORD=$compute_password manage service register \
    --type compute --name nova --description "Stratus compute service" \
    --region RegionOne --public-url "$compute_url/v2.1" --user compute
  start_server compute "$compute_url/" "$out/compute-api.log"
  for daemon in scheduler agent; do
    setsid "$venv/bin/stratus-compute-$daemon" --config-file "$config" \
      > "$out/compute-$daemon.log" 2>&1 &
    server_pids+=("$!")
  done
  # Waits for the hosts to report; uploads the images, makes the flavors.
  compute_settings=$("$venv/bin/python" "$here/scripts/tempest_compute.py" \
    "$url" "$password" "$image_url" "$compute_url/v2.1" "$compute_hosts")
  eval "$compute_settings"
fi

# --- 3. tempest.conf and the run --------------------------------------------
cat > "$out/tempest.conf" <<EOF
[DEFAULT]
log_dir = $out
log_file = tempest.log
debug = true
use_stderr = false

[auth]
use_dynamic_credentials = true
# The compute suite: a network, subnet and router (its gateway on 'public')
# for each test project, as in a devstack, for the servers Tempest boots.
create_isolated_networks = $with_compute
admin_username = admin
admin_password = $password
admin_project_name = admin
admin_domain_name = Default
admin_user_domain_name = Default
admin_project_domain_name = Default
default_credentials_domain_name = Default

[identity]
uri_v3 = $url/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public
catalog_type = identity
admin_role = admin
default_domain_id = default
admin_domain_scope = false
# System-scoped reader tokens for the tests' reads (Stratus honours them).
use_system_token = true
# Must match the server's lockout options above.
user_lockout_failure_attempts = 2
user_lockout_duration = 5
# Stratus keeps no password history and no minimum password age.
user_unique_last_password_count = 0
user_minimum_password_age = 0

[identity-feature-enabled]
api_v2 = false
api_v2_admin = false
api_v3 = true
# Extensions Tempest may test: inherited role assignments. Not OS-EC2,
# OS-OAUTH1, OS-FEDERATION, OS-EP-FILTER (see tests/tempest/exclude-identity.txt).
api_extensions = OS-INHERIT
trust = true
# Stratus refuses access rules on application credentials (not enforced yet).
access_rules = false
domain_specific_drivers = false
security_compliance = true
immutable_user_source = false

[enforce_scope]
# Tempest's dynamic admin is project-scoped; with admin_project_name empty
# Stratus treats it as a cloud admin, as Keystone does without enforce_scope.
keystone = false
# The image tests read with a project reader's token (Glance's secure RBAC,
# which is Stratus's default).
glance = true

[image]
catalog_type = image
region = RegionOne
endpoint_type = public
# Formats the server accepts (a subset: see tempest_disk_formats above).
disk_formats = $tempest_disk_formats
container_formats = $tempest_container_formats
hashing_algorithm = sha512
image_caching_enabled = false
build_timeout = 60
build_interval = 1

[image-feature-enabled]
api_v2 = true
# Interoperable import with glance-direct (web-download, glance-download and
# copy-image are not implemented; see tests/tempest/exclude-image.txt).
import_image = true
# os_glance_* properties are reserved: creating or setting one is 403.
os_glance_reserved = true
# Stratus does inspect uploads and refuses data that is not the declared
# format, but random bytes are valid raw/ami/ari/aki data, the only disk
# formats Tempest is given: so it may upload them, and runs the listing tests
# (ListUserImagesTest) that true would skip.
image_format_enforcement = false
do_secure_hash = true
image_conversion = false
manage_locations = false
http_store_enabled = false
store_weight_enabled = false

[network]
catalog_type = network
region = RegionOne
endpoint_type = public
public_network_id = $public_network_id
floating_network_name = public
project_network_cidr = 10.100.0.0/16
project_network_mask_bits = 28
project_network_v6_cidr = 2001:db8::/48
project_network_v6_mask_bits = 64
project_networks_reachable = false
shared_physical_network = false
build_timeout = 60
build_interval = 1

[network-feature-enabled]
# What the server lists in /v2.0/extensions.
api_extensions = $network_extensions
ipv6 = true
ipv6_subnet_attributes = true
port_security = true
port_admin_state_change = true

[compute]
catalog_type = compute
region = RegionOne
endpoint_type = publicURL
image_ref = $image_ref
image_ref_alt = $image_ref_alt
flavor_ref = $flavor_ref
flavor_ref_alt = $flavor_ref_alt
# Microversions the service implements (docs/compute.md).
min_microversion = 2.1
max_microversion = 2.15
min_compute_nodes = $compute_hosts
build_timeout = 60
build_interval = 1

[compute-feature-enabled]
# What Stratus's compute has (docs/tempest.md, Compute). Not built: remote
# console proxies, migrations (cold and live), shelve, rescue, changing the
# admin password, injected files (personality), volumes.
console_output = true
pause = true
suspend = true
metadata_service = true
config_drive = true
vnc_console = false
spice_console = false
serial_console = false
live_migration = false
cold_migration = false
shelve = false
shelve_migrate = false
rescue = false
change_password = false
# Stratus sets no admin passwords (adminPass is accepted and not answered),
# as Nova with [api] enable_instance_password = false.
enable_instance_password = false
personality = false
attach_encrypted_volume = false
swap_volume = false
volume_multiattach = false
# resize (with confirm and revert), createImage (Tempest waits for the
# snapshot on Nova's /images proxy, as it does up to 2.35) and os-interface.
# No createBackup (exclude-compute.txt).
resize = true
snapshot = true
interface_attach = true
# OS-DCF:diskConfig: servers are MANUAL (their image's partitions are kept;
# cloud-init grows them); AUTO is not implemented (exclude-compute.txt).
disk_config = true
# The scheduler's filters (services/stratus/compute/scheduling.py): no
# same_host/different_host hints.
scheduler_enabled_filters = AvailabilityZoneFilter, ComputeFilter, ImagePropertiesFilter, ServerGroupAntiAffinityFilter, ServerGroupAffinityFilter

[service_available]
cinder = false
neutron = $with_network
glance = $with_image
swift = false
nova = $with_compute
horizon = false

[validation]
run_validation = false
EOF

run_tempest
