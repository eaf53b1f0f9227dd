# shellcheck shell=bash
# The platform's own services: built from this workspace into .stack/bin and run in the
# background with the settings of dev/env.sh. Sourced by dev/stack.sh.

# name:variable holding its listen address (CONTRACT §2); also the start order.
SERVICES=(producer-api:API_ADDR progress-hub:HUB_ADDR exporter:EXPORTER_ADDR
  scheduler:SCHEDULER_ADDR audit-sink:AUDIT_ADDR)
SERVICE_TIMEOUT=${STACK_SERVICE_TIMEOUT:-60}

service_names() {
  local s
  for s in "${SERVICES[@]}"; do echo "${s%%:*}"; done
}

is_service() {
  local s
  for s in "${SERVICES[@]}"; do [[ ${s%%:*} == "$1" ]] && return 0; done
  return 1
}

# service_addr NAME: its host:port, from the variable named in SERVICES.
service_addr() {
  local s var
  for s in "${SERVICES[@]}"; do
    if [[ ${s%%:*} == "$1" ]]; then
      var=${s#*:}
      echo "${!var}"
      return 0
    fi
  done
  return 1
}

# service_present NAME: the service has its main package yet (others write the code; until
# they do, the stack runs without it).
service_present() { [[ -f $EXPORTPLATFORM_ROOT/$1/main.go ]]; }

service_bin() { echo "$STACK_DIR/bin/$1"; }
service_pid() { running_pid "$1" "$(service_bin "$1")"; }
service_ready() { http_ok "http://$(service_addr "$1")/readyz"; }

# services_build NAME...: one `go build` for all of them (parallel, cached) into a staging
# directory; a binary is moved into .stack/bin only when its bytes changed (Go builds are
# reproducible, while `go build -o` rewrites its output every time), so the binary's mtime
# tells service_launch whether the code changed since the service started.
services_build() {
  local pkgs=() s stage=$STACK_DIR/build
  for s in "$@"; do pkgs+=("./$s"); done
  ((${#pkgs[@]})) || return 0
  mkdir -p "$stage"
  (cd "$EXPORTPLATFORM_ROOT" && go build -o "$stage/" "${pkgs[@]}") 9>&- ||
    die "services: go build failed"
  for s in "$@"; do
    if cmp -s "$stage/$s" "$(service_bin "$s")"; then
      rm -f "$stage/$s"
    else
      mv -f "$stage/$s" "$(service_bin "$s")"
    fi
  done
}

# service_launch NAME: (re)starts the service unless it is running an up-to-date binary.
# Prints the pid to wait for, or nothing when nothing changed.
service_launch() {
  local name=$1 pid addr bin
  bin=$(service_bin "$name")
  addr=$(service_addr "$name")
  if pid=$(service_pid "$name"); then
    if [[ ! $bin -nt $(pid_file "$name") ]]; then
      echo "$pid"
      return 0
    fi
    log "$name: binary changed, restarting"
    service_stop "$name"
  fi
  require_port_free "$name" "${addr%:*}" "${addr##*:}"
  spawn "$name" "$bin"
}

# services_start NAME...: build, launch them all, then wait for every /readyz together (they
# may depend on each other, e.g. producer-api on progress-hub).
services_start() {
  local names=() s pid pending=() t0 deadline failed=0
  for s in "$@"; do
    if service_present "$s"; then
      names+=("$s")
    else
      warn "$s: no $s/main.go yet, skipped"
    fi
  done
  ((${#names[@]})) || return 0
  t0=$(now_ms)
  services_build "${names[@]}"
  log "services: built ${names[*]} in $(fmt_ms "$(since_ms "$t0")")"
  declare -A pids=()
  for s in "${names[@]}"; do
    pids[$s]=$(service_launch "$s")
  done
  pending=("${names[@]}")
  deadline=$(($(now_ms) + SERVICE_TIMEOUT * 1000))
  while ((${#pending[@]})); do
    local still=()
    for s in "${pending[@]}"; do
      if service_ready "$s"; then
        log "$s: ready (pid ${pids[$s]}, http://$(service_addr "$s"))"
      elif ! pid_alive "${pids[$s]}"; then
        warn "$s exited while starting"
        show_log_tail "$s"
        failed=1
      elif (($(now_ms) > deadline)); then
        warn "$s: /readyz not 200 after ${SERVICE_TIMEOUT}s"
        show_log_tail "$s"
        failed=1
      else
        still+=("$s")
      fi
    done
    pending=("${still[@]}")
    ((${#pending[@]})) && sleep 0.2
  done
  ((failed == 0)) || die "services: not all ready"
  log "services: all ready in $(fmt_ms "$(since_ms "$t0")")"
}

service_stop() {
  local pid
  if pid=$(service_pid "$1"); then
    stop_pid "$1" "$(service_bin "$1")" 20 TERM
    log "$1: stopped (pid $pid)"
  fi
}

service_status() {
  local pid ready=no addr
  addr=$(service_addr "$1")
  if pid=$(service_pid "$1"); then
    service_ready "$1" && ready=yes
    status_line "$1" running "$pid" "$ready" "http://$addr"
  elif service_present "$1"; then
    status_line "$1" stopped - - "http://$addr"
  else
    status_line "$1" "no code" - - "http://$addr"
  fi
}
