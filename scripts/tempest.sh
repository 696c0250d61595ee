#!/usr/bin/env bash
# Run Tempest's API tests for Stratus's identity (Keystone v3) and image
# (Glance v2) services against throwaway servers, and record the result.
#
#   scripts/tempest.sh                            (or: make tempest) both suites
#   STRATUS_TEMPEST_SUITE=identity scripts/tempest.sh   tempest.api.identity only
#   STRATUS_TEMPEST_SUITE=image scripts/tempest.sh      tempest.api.image (v2) only
#
# 1. Tempest goes into its own virtualenv, .venv-tempest (never into .venv: it
#    pins its own oslo.* and client libraries). A stamp makes re-runs quick.
# 2. A fresh identity server: SQLite and token keys in a temporary directory,
#    db sync, token setup-keys, bootstrap, `stratus-api identity` on a free
#    loopback port, with the settings Tempest needs (see docs/tempest.md).
#    For the image suite also `stratus-api image` on the same database, with
#    its own data and staging directories, registered in the catalog (type
#    image) with `stratus-manage service register`.
# 3. A tempest.conf for them, then `tempest run` (stestr) over the suite's
#    regex minus its exclude list(s), tests/tempest/exclude-<suite>.txt.
# 4. The servers are stopped by a trap: always, also on failure and Ctrl-C.
#
# Output (replaced on every run) in $STRATUS_TEMPEST_OUT, default .lab/tempest/:
# tempest.conf, tempest.log (every request and response), api.log (the
# identity server's log), image-api.log (the image server's), run.txt (the
# test run), exclude.txt (the exclusions applied), results.subunit,
# summary.json. The exit code is tempest's: 0 when no test failed.
#
# Environment: STRATUS_VENV (.venv), STRATUS_TEMPEST_VENV (.venv-tempest),
# STRATUS_TEMPEST_VERSION (47.0.0), STRATUS_TEMPEST_CONCURRENCY (2),
# STRATUS_TEMPEST_SUITE (all: identity and image), STRATUS_TEMPEST_REGEX
# (default: the suite's; overrides the selection, not the exclusions),
# STRATUS_TEMPEST_OUT.
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
  *) log "STRATUS_TEMPEST_SUITE must be identity, image or all, not '$suite'"; exit 2 ;;
esac
regex=${STRATUS_TEMPEST_REGEX:-$suite_regex}
with_image=false
case " $suites " in *" image "*) with_image=true ;; esac

if [ ! -x "$venv/bin/stratus-api" ]; then
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

# --- 2. A throwaway identity server ----------------------------------------
rm -rf "$out"
mkdir -p "$out"
out=$(cd "$out" && pwd)
workdir=$(mktemp -d "${TMPDIR:-/tmp}/stratus-tempest.XXXXXX")
server_pids=()

# Each server runs in its own session and process group (setsid): end the
# group, so that uvicorn's worker processes go too.
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
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_servers
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

free_port() {
  "$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
port=$(free_port)
url=http://127.0.0.1:$port
image_port=$(free_port)
image_url=http://127.0.0.1:$image_port
secret() { "$venv/bin/python" -c 'import secrets; print("Tempest-" + secrets.token_hex(12))'; }
password=$(secret)
image_password=$(secret)
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
bind_host = 127.0.0.1
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

# --- 3. tempest.conf and the run --------------------------------------------
cat > "$out/tempest.conf" <<EOF
[DEFAULT]
log_dir = $out
log_file = tempest.log
debug = true
use_stderr = false

[auth]
use_dynamic_credentials = true
create_isolated_networks = false
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

[service_available]
cinder = false
neutron = false
glance = $with_image
swift = false
nova = false
horizon = false

[validation]
run_validation = false
EOF

# The exclusions of the suites that run, in one list (stestr takes one).
for name in $suites; do
  cat "$here/tests/tempest/exclude-$name.txt"
done > "$out/exclude.txt"
exclude_list=$out/exclude.txt

log "running tempest $version: $regex (concurrency $concurrency)"
cd "$out"
start=$(date +%s)
rc=0
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
log "logs in $out (tempest.log: every request; api.log, image-api.log: the servers)"
exit "$rc"
