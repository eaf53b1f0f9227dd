#!/usr/bin/env bash
# The local development stack, without Docker: PostgreSQL 15, Apache Kafka (KRaft), an S3
# server (versitygw), an SFTP server (OpenSSH, the partner of the delivery platforms) and the
# platform's services, all state under .stack/ (git-ignored).
#
#   dev/stack.sh up              infrastructure, then every service; 0 once all /readyz answer
#   dev/stack.sh infra           infrastructure only (postgres, kafka, s3, sftp)
#   dev/stack.sh down            stops everything this stack started (data is kept)
#   dev/stack.sh status          each part: state, pid, ready, address
#   dev/stack.sh start PART      PART: postgres | kafka | s3 | sftp | a service (producer-api, ...)
#   dev/stack.sh stop PART
#   dev/stack.sh restart PART
#   dev/stack.sh logs PART       the end of PART's log (follows it on a terminal)
#   dev/stack.sh tools           builds dev/cmd/* and exportctl into .stack/bin
#   dev/stack.sh clean           down, then removes .stack/ entirely
#
# Every command is idempotent: what already runs and answers is left alone. Processes run
# detached (own session), log to .stack/logs/NAME.log and have .stack/pids/NAME.pid.
#
# A service starts with the settings of dev/env.sh over the caller's environment, so a setting
# env.sh does not fix reaches it from the command line, e.g. tracing (off unless an OTLP
# endpoint is set; e2e/tracing_test.go does this and restarts without it afterwards):
#   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 dev/stack.sh restart exporter
set -euo pipefail
set +m # no job control: background jobs stay in our process group (see spawn)

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=dev/env.sh
. "$ROOT/dev/env.sh"
# shellcheck source=dev/lib/common.sh
. "$ROOT/dev/lib/common.sh"
# shellcheck source=dev/lib/postgres.sh
. "$ROOT/dev/lib/postgres.sh"
# shellcheck source=dev/lib/kafka.sh
. "$ROOT/dev/lib/kafka.sh"
# shellcheck source=dev/lib/s3.sh
. "$ROOT/dev/lib/s3.sh"
# shellcheck source=dev/lib/sftp.sh
. "$ROOT/dev/lib/sftp.sh"
# shellcheck source=dev/lib/services.sh
. "$ROOT/dev/lib/services.sh"

INFRA=(postgres kafka s3 sftp)

usage() {
  sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

status_line() { printf '%-14s %-8s %-8s %-6s %s\n' "$@"; }

init_dirs() { mkdir -p "$STACK_DIR"/{bin,logs,pids}; }

# lock: one stack.sh at a time changes the stack (e.g. `make test` while `make up` runs).
lock() {
  init_dirs
  exec 9>"$STACK_DIR/stack.lock"
  flock -w 900 9 || die "another dev/stack.sh holds $STACK_DIR/stack.lock"
}

# build_infra_tools: the two small Go tools the infra needs (topics, mkbucket). The other
# dev/cmd tools are built by `tools` so that work in progress there cannot block the infra.
build_infra_tools() {
  (cd "$ROOT" && go build -o "$STACK_DIR/bin/" ./dev/cmd/topics ./dev/cmd/mkbucket ./dev/cmd/demoplatforms) 9>&- ||
    die "go build of dev/cmd/topics, mkbucket and demoplatforms failed"
}

build_all_tools() {
  (cd "$ROOT" && go build -o "$STACK_DIR/bin/" ./dev/cmd/... ./exportctl) 9>&- || die "go build ./dev/cmd/... ./exportctl failed"
}

# `up` also builds the other tools (seed, token: the e2e tests and `make run` use them), but
# a tool that does not build yet only warns: it must not keep the services from starting.
build_all_tools_soft() {
  (cd "$ROOT" && go build -o "$STACK_DIR/bin/" ./dev/cmd/... ./exportctl) 9>&- ||
    warn "go build ./dev/cmd/... ./exportctl failed: some tools in $STACK_DIR/bin are missing or stale"
}

# ensure_host: what a fresh Debian machine may lack besides the parts' own packages.
ensure_host() {
  command -v go >/dev/null || die "go is not on PATH"
  need_cmd curl curl
  need_cmd flock util-linux
  need_cmd setsid util-linux
}

# timed PHASE CMD...: runs CMD, then reports how long the phase took.
TIMINGS=()
timed() {
  local phase=$1 t0
  shift
  t0=$(now_ms)
  "$@"
  TIMINGS+=("$phase $(fmt_ms "$(since_ms "$t0")")")
}

start_part() {
  case $1 in
    postgres) pg_start ;;
    kafka)
      build_infra_tools
      kafka_start
      ;;
    s3)
      build_infra_tools
      s3_start
      ;;
    sftp) sftp_start ;;
    *)
      is_service "$1" || die "unknown part '$1' (postgres, kafka, s3, sftp, $(service_names | paste -sd, | sed 's/,/, /g'))"
      service_present "$1" || die "$1: no $1/main.go yet"
      services_start "$1"
      ;;
  esac
}

stop_part() {
  case $1 in
    postgres) pg_stop ;;
    kafka) kafka_stop ;;
    s3) s3_stop ;;
    sftp) sftp_stop ;;
    *)
      is_service "$1" || die "unknown part '$1'"
      service_stop "$1"
      ;;
  esac
}

cmd_infra() {
  ensure_host
  timed tools build_infra_tools
  timed postgres pg_start
  timed kafka kafka_start
  timed s3 s3_start
  timed sftp sftp_start
}

cmd_up() {
  local names
  cmd_infra
  mapfile -t names < <(service_names)
  timed services services_start "${names[@]}"
  timed demo demo_platforms
  timed dev-tools build_all_tools_soft
}

# demo_platforms: the two demo platforms ("Partner SFTP", "Partner bucket") exist, owned by
# the demo user, and deliver to this stack's SFTP server and partner bucket.
demo_platforms() {
  "$STACK_DIR/bin/demoplatforms" >>"$(log_file demo)" 2>&1 || {
    show_log_tail demo 20
    die "demo platforms: could not create them"
  }
}

cmd_down() {
  local s
  # Services first, all at once (each may take a few seconds to drain), so they do not log
  # errors about vanished dependencies; then the infrastructure, Kafka before PostgreSQL.
  while read -r s; do service_stop "$s" & done < <(service_names)
  wait
  for s in sftp s3 kafka postgres; do stop_part "$s"; done
}

cmd_status() {
  local s
  status_line PART STATE PID READY ADDRESS
  pg_status
  kafka_status
  s3_status
  sftp_status
  while read -r s; do service_status "$s"; done < <(service_names)
}

cmd_logs() {
  local f
  [[ -n ${1:-} ]] || die "usage: dev/stack.sh logs PART"
  f=$(log_file "$1")
  [[ -f $f ]] || die "no log $f (logs: $(cd "$STACK_DIR/logs" 2>/dev/null && ls | sed 's/\.log$//' | paste -sd' '))"
  if [[ -t 1 ]]; then
    exec tail -n 100 -F "$f"
  else
    tail -n "${LOG_LINES:-200}" "$f"
  fi
}

cmd_clean() {
  cmd_down
  rm -rf "$STACK_DIR"
  log "removed $STACK_DIR"
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  local t0
  t0=$(now_ms)
  case $cmd in
    up | infra)
      lock
      "cmd_$cmd"
      log "$cmd: done in $(fmt_ms "$(since_ms "$t0")") ($(IFS=,; echo "${TIMINGS[*]}" | sed 's/,/, /g'))"
      ;;
    down)
      lock
      cmd_down
      log "down: done in $(fmt_ms "$(since_ms "$t0")")"
      ;;
    start | stop | restart)
      [[ $# == 1 ]] || die "usage: dev/stack.sh $cmd PART"
      lock
      ensure_host
      [[ $cmd == start ]] || stop_part "$1"
      [[ $cmd == stop ]] || start_part "$1"
      log "$cmd $1: done in $(fmt_ms "$(since_ms "$t0")")"
      ;;
    status) init_dirs && cmd_status ;;
    logs) cmd_logs "$@" ;;
    tools)
      init_dirs
      build_all_tools
      ;;
    clean)
      lock
      cmd_clean
      ;;
    help | -h | --help) usage ;;
    *) usage ;;
  esac
}

main "$@"
