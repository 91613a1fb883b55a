#!/usr/bin/env bash
# s3-server.sh - the test suite's S3 server: OpenStack Swift with its S3 API (s3api + tempauth),
# bound to 127.0.0.1 on free ports. Swift is strict like AWS: it checks SigV4 signatures and
# Content-MD5, implements ListParts/ListMultipartUploads/abort, and returns md5-of-md5s-N ETags.
#
#   bash test/support/s3-server.sh [DIR]
#
# Config, rings, data and logs go under DIR (default: a new mktemp folder). It prints
#   S3_TEST_ENDPOINT=http://127.0.0.1:PORT   S3_TEST_ACCESS_KEY_ID=test:tester
#   S3_TEST_SECRET_ACCESS_KEY=testing        S3_TEST_REGION=us-east-1   S3_SERVER_DIR=DIR
# (also written to DIR/server.env), then a line starting with READY, and runs until SIGTERM/SIGINT.
# On exit it stops every process it started and removes what it wrote under DIR.
#
# Environment:
#   S3_SERVER_WATCH_PID=PID      also exit when process PID is gone (the test runner sets its own pid,
#                                so a runner killed with SIGKILL leaves no Swift behind)
#   S3_SERVER_KEEP_DATA=1        keep DIR for debugging
#   S3_SERVER_READY_TIMEOUT=60   seconds to wait for Swift to answer
#   S3_SERVER_MEMCACHED=1        also run a memcached for the proxy's account and container cache, as
#                                a production Swift does: without it every object PUT also asks the
#                                account and container servers, which halves the rate of small PUTs
#                                (the benchmark sets it; the tests do not, so that a deleted bucket
#                                is seen at once)
# Debian 12 packages swift 2.30; they are installed with apt-get when missing (needs root).
set -euo pipefail

readonly ACCESS_KEY=test:tester SECRET_KEY=testing REGION=us-east-1
readonly SWIFT_PACKAGES=(swift swift-proxy swift-account swift-container swift-object)
readonly SERVERS=(account container object proxy)
# Swift's scripts run on Debian's python; a python3 earlier on PATH (pyenv) lacks the swift modules.
readonly SWIFT_PYTHON=/usr/bin/python3

# argv: swift_dir name:port...; one device per ring, 2^8 partitions, 1 replica.
readonly RING_BUILDER='
import sys
from swift.common.ring import RingBuilder

swift_dir = sys.argv[1]
for spec in sys.argv[2:]:
    name, port = spec.split(":")
    builder = RingBuilder(8, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "sdb1", "weight": 100, "meta": ""})
    builder.rebalance()
    builder.get_ring().save(f"{swift_dir}/{name}.ring.gz")
'

log() { printf '[s3-server] %s\n' "$*" >&2; }

SERVER_PIDS=()
MEMCACHED_PID=
WORK=
CREATED_WORK=0
READY=0
DIED=0

print_log_tails() {
  local f
  for f in "$WORK"/logs/*.log; do
    [ -s "$f" ] || continue
    printf -- '--- last lines of %s\n' "${f##*/}" >&2
    tail -n 15 "$f" >&2
  done
}

die() {
  log "ERROR: $*"
  [ -z "$WORK" ] || print_log_tails
  DIED=1
  exit 1
}

stop_servers() {
  local pid deadline
  for pid in "${SERVER_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  deadline=$((SECONDS + 10))
  for pid in "${SERVER_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "pid $pid ignored SIGTERM for 10 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
  done
  SERVER_PIDS=()
  if [ -n "$MEMCACHED_PID" ]; then
    kill -TERM "$MEMCACHED_PID" 2>/dev/null || true
    wait "$MEMCACHED_PID" 2>/dev/null || true
    MEMCACHED_PID=
  fi
}

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  # Stopped before READY by someone else's deadline: show why it was slow before the logs go.
  if [ "$READY" = 0 ] && [ "$status" != 0 ] && [ -n "$WORK" ] && [ "$DIED" = 0 ]; then print_log_tails; fi
  stop_servers
  if [ -n "$WORK" ] && [ "${S3_SERVER_KEEP_DATA:-0}" != 1 ]; then
    if [ "$CREATED_WORK" = 1 ]; then
      rm -rf "$WORK"
    else
      rm -rf "${WORK:?}/etc" "${WORK:?}/data" "${WORK:?}/logs" "${WORK:?}/server.env"
    fi
  fi
  exit "$status"
}

install_swift_if_missing() {
  local packages=()
  command -v swift-proxy-server >/dev/null && command -v swift-object-server >/dev/null ||
    packages+=("${SWIFT_PACKAGES[@]}")
  [ "${S3_SERVER_MEMCACHED:-0}" = 1 ] && ! command -v memcached >/dev/null && packages+=(memcached)
  [ "${#packages[@]}" = 0 ] && return 0
  [ "$(id -u)" = 0 ] || die "${packages[*]} not installed and this is not root: apt-get install ${packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Without package lists (a fresh machine) apt-get knows no swift package yet.
  if ! apt-cache show swift-proxy >/dev/null 2>&1; then
    log "apt-get update"
    apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null || die "apt-get update failed"
  fi
  log "installing ${packages[*]} with apt-get"
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${packages[@]}" >/dev/null ||
    die "apt-get install ${packages[*]} failed"
}

# On the port the proxy's memcache middleware is given (without it, nothing listens there).
start_memcached() {
  local port=$1 user=()
  [ "$(id -u)" = 0 ] && user=(-u nobody) # memcached refuses to run as root
  memcached "${user[@]}" -l 127.0.0.1 -p "$port" -U 0 -m 64 >"$WORK/logs/memcached.log" 2>&1 &
  MEMCACHED_PID=$!
}

# Free loopback ports, held open together while chosen so that they are distinct.
free_ports() {
  node -e '
    const net = require("node:net");
    const servers = Array.from({ length: Number(process.argv[1]) }, () => net.createServer());
    Promise.all(servers.map((s) => new Promise((ok) => s.listen(0, "127.0.0.1", ok)))).then(() => {
      console.log(servers.map((s) => s.address().port).join(" "));
      servers.forEach((s) => s.close());
    });' "$1"
}

write_config() {
  local proxy_port=$1 account_port=$2 container_port=$3 object_port=$4 memcache_port=$5 name port
  mkdir -p "$WORK/etc" "$WORK/data/sdb1" "$WORK/logs"
  printf '[swift-hash]\nswift_hash_path_suffix = s3-test-server\nswift_hash_path_prefix = s3-test-server\n[storage-policy:0]\nname = Policy-0\ndefault = yes\n' \
    >"$WORK/etc/swift.conf"

  # One process per server (workers = 0) and one replica: all a test needs.
  for name in account container object; do
    port=${name}_port
    cat >"$WORK/etc/$name-server.conf" <<EOF
[DEFAULT]
devices = $WORK/data
mount_check = false
bind_ip = 127.0.0.1
bind_port = ${!port}
workers = 0
swift_dir = $WORK/etc
log_level = WARNING

[pipeline:main]
pipeline = healthcheck $name-server

[app:$name-server]
use = egg:swift#$name

[filter:healthcheck]
use = egg:swift#healthcheck
EOF
  done

  cat >"$WORK/etc/proxy-server.conf" <<EOF
[DEFAULT]
bind_ip = 127.0.0.1
bind_port = $proxy_port
workers = 0
swift_dir = $WORK/etc
log_level = WARNING

[pipeline:main]
pipeline = catch_errors healthcheck gatekeeper proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true

[filter:s3api]
use = egg:swift#s3api
location = $REGION

[filter:tempauth]
use = egg:swift#tempauth
user_${ACCESS_KEY%%:*}_${ACCESS_KEY#*:} = $SECRET_KEY .admin

# s3api refuses to start without the memcache middleware, but works without a memcached:
# this port has no listener, so every cache lookup is a quick "connection refused".
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:$memcache_port

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
EOF

  # One python process builds the three rings (swift-ring-builder would take nine, ~0.4 s each).
  "$SWIFT_PYTHON" -c "$RING_BUILDER" "$WORK/etc" \
    "account:$account_port" "container:$container_port" "object:$object_port" ||
    die "building the Swift rings failed"
}

start_servers() {
  local name
  for name in "${SERVERS[@]}"; do
    # -v: log to stderr (captured in the log file) rather than to syslog
    "/usr/bin/swift-$name-server" "$WORK/etc/$name-server.conf" -v >"$WORK/logs/$name.log" 2>&1 &
    SERVER_PIDS+=($!)
  done
}

# Ready means every server answers its healthcheck, and the proxy answers a request signed with a
# wrong key with an S3 error document (s3api is loaded and checks signatures).
probe_once() {
  # shellcheck disable=SC2016 # JavaScript template literals, not shell expansions
  node -e '
    const [proxy, ...backends] = process.argv.slice(1);
    const get = async (url, headers = {}) => {
      const response = await fetch(url, { headers, signal: AbortSignal.timeout(5000) });
      return { status: response.status, text: await response.text() };
    };
    const probe = async () => {
      for (const base of [proxy, ...backends]) {
        const health = await get(`${base}/healthcheck`);
        if (health.status !== 200) throw new Error(`${base}/healthcheck: HTTP ${health.status}`);
      }
      const s3 = await get(`${proxy}/`, { Authorization: "AWS probe:probe:bad", Date: new Date().toUTCString() });
      if (!s3.text.includes("<Error>")) throw new Error(`no S3 error document from ${proxy}/: ${s3.text.slice(0, 200)}`);
    };
    probe().catch((error) => {
      console.log(error.cause ? `${error.message}: ${error.cause.message}` : error.message);
      process.exit(1);
    });
  ' "$@"
}

wait_until_ready() {
  local deadline=$((SECONDS + ${S3_SERVER_READY_TIMEOUT:-60})) pid i last=
  while :; do
    for i in "${!SERVER_PIDS[@]}"; do
      pid=${SERVER_PIDS[$i]}
      kill -0 "$pid" 2>/dev/null || die "swift-${SERVERS[$i]}-server (pid $pid) exited during start-up"
    done
    last=$(probe_once "$@") && return 0
    [ "$SECONDS" -lt "$deadline" ] ||
      die "Swift did not answer within ${S3_SERVER_READY_TIMEOUT:-60} s; last probe: $last"
    sleep 0.2
  done
}

# Until a signal, the watched process is gone, or a server died (then the log tails say why).
run_until_stopped() {
  local watch_pid=${S3_SERVER_WATCH_PID:-} i
  while :; do
    if [ -n "$watch_pid" ] && ! kill -0 "$watch_pid" 2>/dev/null; then
      log "process $watch_pid is gone: stopping"
      return 0
    fi
    for i in "${!SERVER_PIDS[@]}"; do
      kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null || die "swift-${SERVERS[$i]}-server (pid ${SERVER_PIDS[$i]}) exited"
    done
    sleep 1 &
    wait $! || true
  done
}

main() {
  local start_ns ports endpoint
  start_ns=$(date +%s%N)
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  if [ -n "${1:-}" ]; then
    WORK=$(mkdir -p "$1" && cd "$1" && pwd)
  else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/s3-test-server.XXXXXX")
    CREATED_WORK=1
  fi
  install_swift_if_missing

  read -r -a ports <<<"$(free_ports 5)"
  [ "${#ports[@]}" = 5 ] || die "could not reserve 5 free ports"
  write_config "${ports[@]}"
  [ "${S3_SERVER_MEMCACHED:-0}" = 1 ] && start_memcached "${ports[4]}"
  start_servers
  endpoint="http://127.0.0.1:${ports[0]}"
  wait_until_ready "$endpoint" "http://127.0.0.1:${ports[1]}" "http://127.0.0.1:${ports[2]}" "http://127.0.0.1:${ports[3]}"

  {
    printf 'S3_TEST_ENDPOINT=%s\n' "$endpoint"
    printf 'S3_TEST_ACCESS_KEY_ID=%s\n' "$ACCESS_KEY"
    printf 'S3_TEST_SECRET_ACCESS_KEY=%s\n' "$SECRET_KEY"
    printf 'S3_TEST_REGION=%s\n' "$REGION"
    printf 'S3_SERVER_DIR=%s\n' "$WORK"
  } | tee "$WORK/server.env"
  READY=1
  printf 'READY Swift %s (s3api) pids %s, ready in %d ms\n' \
    "$(dpkg-query -W -f='${Version}' swift-proxy 2>/dev/null || echo '?')" "${SERVER_PIDS[*]}" \
    $((($(date +%s%N) - start_ns) / 1000000))

  run_until_stopped
}

main "$@"
