#!/usr/bin/env bash
# Run Tempest's identity v3 API tests (tempest.api.identity, admin and
# non-admin) against a throwaway Stratus identity server, and record the result.
#
#   scripts/tempest.sh            (or: make tempest)
#
# 1. Tempest goes into its own virtualenv, .venv-tempest (never into .venv: it
#    pins its own oslo.* and client libraries). A stamp makes re-runs quick.
# 2. A fresh identity server: SQLite and token keys in a temporary directory,
#    db sync, token setup-keys, bootstrap, `stratus-api identity` on a free
#    loopback port, with the settings Tempest needs (see docs/tempest.md).
# 3. A tempest.conf for it, then `tempest run` (stestr) over
#    ^tempest\.api\.identity\. minus tests/tempest/exclude-identity.txt.
# 4. The server is stopped by a trap: always, also on failure and Ctrl-C.
#
# Output (replaced on every run) in $STRATUS_TEMPEST_OUT, default .lab/tempest/:
# tempest.conf, tempest.log (every request and response), api.log (the
# server's log), run.txt (the test run), results.subunit, summary.json.
# The exit code is tempest's: 0 when no test failed.
#
# Environment: STRATUS_VENV (.venv), STRATUS_TEMPEST_VENV (.venv-tempest),
# STRATUS_TEMPEST_VERSION (47.0.0), STRATUS_TEMPEST_CONCURRENCY (2),
# STRATUS_TEMPEST_REGEX (^tempest\.api\.identity\.), STRATUS_TEMPEST_OUT.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
venv=${STRATUS_VENV:-$here/.venv}
tvenv=${STRATUS_TEMPEST_VENV:-$here/.venv-tempest}
version=${STRATUS_TEMPEST_VERSION:-47.0.0}
concurrency=${STRATUS_TEMPEST_CONCURRENCY:-2}
regex=${STRATUS_TEMPEST_REGEX:-'^tempest\.api\.identity\.'}
out=${STRATUS_TEMPEST_OUT:-$here/.lab/tempest}
exclude_list=$here/tests/tempest/exclude-identity.txt

log() { echo "tempest.sh: $*" >&2; }

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
server_pid=

stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    log "stopping the identity server (pid $server_pid)"
    # The server runs in its own session and process group (setsid): end the
    # group, so that uvicorn's worker processes go too.
    kill -TERM -- "-$server_pid" 2>/dev/null || kill -TERM "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do
      kill -0 "$server_pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$server_pid" 2>/dev/null || true
  fi
  server_pid=
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_server
  rm -rf "$workdir"
  exit "$rc"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
url=http://127.0.0.1:$port
password=$("$venv/bin/python" -c 'import secrets; print("Tempest-" + secrets.token_hex(12))')
config=$workdir/stratus.conf

# admin_project_name is empty: Tempest's dynamic credentials give the admin
# role on fresh projects and expect it to administer the cloud (Keystone's
# legacy behaviour); Stratus's secure default only does so for the admin role
# on the 'admin' project or with system scope. Lockout is on, as Tempest's
# security-compliance tests expect (2 attempts, 5 seconds).
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
EOF

manage() { "$venv/bin/stratus-manage" --config-file "$config" "$@" >> "$out/manage.log"; }
log "identity server on $url (data in $workdir)"
manage db sync
manage token setup-keys
STRATUS_BOOTSTRAP_PASSWORD=$password manage bootstrap \
  --username admin --project admin --region RegionOne \
  --public-url "$url/v3" --internal-url "$url/v3" --admin-url "$url/v3"

setsid "$venv/bin/stratus-api" identity --config-file "$config" > "$out/api.log" 2>&1 &
server_pid=$!
for _ in $(seq 150); do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "the identity server exited at start:"
    tail -n 40 "$out/api.log" >&2
    exit 1
  fi
  curl -fsS -o /dev/null "$url/v3" 2>/dev/null && break
  sleep 0.2
done
curl -fsS -o /dev/null "$url/v3" || { log "the identity server did not answer in 30 s"; exit 1; }

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

[service_available]
cinder = false
neutron = false
glance = false
swift = false
nova = false
horizon = false

[validation]
run_validation = false
EOF

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
log "logs in $out (tempest.log: every request; api.log: the server)"
exit "$rc"
