# shellcheck shell=bash
# PostgreSQL 15 part of the local stack: own cluster in .stack/pg/data on 127.0.0.1:55432.
# Sourced by dev/stack.sh.

PG_DIR=$STACK_DIR/pg
PG_DATA=$PG_DIR/data
PG_RUN=$PG_DIR/run
PG_PORT=$PGPORT_STACK
PG_DATABASES=(products_manager exports db_analytics)
PG_TIMEOUT=${STACK_PG_TIMEOUT:-60}

# PostgreSQL refuses to run as root: as root we run its programs as the Debian `postgres` user.
pg_as_owner() {
  if [[ $(id -u) == 0 ]]; then
    (cd "$PG_DIR" && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_ensure_installed() {
  [[ -x $PG_BIN/postgres && -x $PG_BIN/psql ]] && return 0
  apt_install postgresql-15 postgresql-client-15
  [[ -x $PG_BIN/postgres ]] || die "postgresql-15 installed but $PG_BIN/postgres is missing"
}

# The postgres user must reach .stack/pg and write its log: chown what it writes, and make
# every parent directory traversable (a clone under a 0700 home would block it otherwise).
pg_prepare_dirs() {
  mkdir -p "$PG_DIR" "$PG_RUN"
  touch "$(log_file postgres)"
  [[ $(id -u) == 0 ]] || return 0
  id postgres >/dev/null 2>&1 || die "no 'postgres' OS user (is postgresql-common installed?)"
  chown postgres:postgres "$PG_DIR" "$PG_RUN" "$(log_file postgres)"
  [[ -d $PG_DATA ]] && chown postgres:postgres "$PG_DATA"
  local d=$PG_DIR
  while d=$(dirname "$d") && [[ $d != / ]]; do
    if ! runuser -u postgres -- test -x "$d" 2>/dev/null; then
      log "postgres: making $d traversable (chmod o+x) for the postgres user"
      chmod o+x "$d"
    fi
  done
}

pg_init() {
  [[ -s $PG_DATA/PG_VERSION ]] && return 0
  log "postgres: initdb $PG_DATA"
  rm -rf "$PG_DATA"
  pg_as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 \
    --no-instructions >>"$(log_file postgres)" 2>&1 || {
    show_log_tail postgres
    die "postgres: initdb failed"
  }
}

# Our settings live in stack.conf, included from postgresql.conf and rewritten at each start,
# so a change here takes effect at the next restart of an existing cluster.
pg_write_conf() {
  local sockdir=$PG_RUN
  # A unix socket path is limited to ~107 bytes; past that use TCP only (which we use anyway).
  ((${#sockdir} + 20 > 100)) && sockdir=
  cat >"$PG_DATA/stack.conf" <<EOF
# Written by dev/stack.sh at each start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sockdir'
max_connections = 200
shared_buffers = 512MB
# dev box: trade durability of the last commits for speed
synchronous_commit = off
wal_level = minimal
max_wal_senders = 0
checkpoint_timeout = 1h
max_wal_size = 4GB
maintenance_work_mem = 256MB
log_timezone = 'UTC'
timezone = 'UTC'
EOF
  chown --reference="$PG_DATA" "$PG_DATA/stack.conf"
  grep -q "^include_if_exists = 'stack.conf'" "$PG_DATA/postgresql.conf" ||
    echo "include_if_exists = 'stack.conf'" >>"$PG_DATA/postgresql.conf"
}

pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d postgres -U postgres; }

pg_pid() { running_pid postgres "-D $PG_DATA"; }

pg_start() {
  local pid
  pg_ensure_installed
  if pid=$(pg_pid); then
    wait_until postgres "$PG_TIMEOUT" "$pid" pg_ready || {
      show_log_tail postgres
      die "postgres (pid $pid) is running but not answering"
    }
    log "postgres: already running (pid $pid)"
  else
    # A server left running from this data dir without our pid file (pid file deleted by
    # hand): adopt it rather than fail on the port.
    if [[ -f $PG_DATA/postmaster.pid ]]; then
      pid=$(head -n1 "$PG_DATA/postmaster.pid")
      if proc_matches "$pid" "$PG_DATA"; then
        echo "$pid" >"$(pid_file postgres)"
        log "postgres: adopted running server (pid $pid)"
      fi
    fi
    if ! pid=$(pg_pid); then
      require_port_free postgres 127.0.0.1 "$PG_PORT"
      pg_prepare_dirs
      pg_init
      pg_write_conf
      # pg_ctl detaches the postmaster into its own session and -w polls until it accepts
      # connections (deadline -t).
      pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$(log_file postgres)" -w -t "$PG_TIMEOUT" -s \
        start 9>&- || {
        show_log_tail postgres
        die "postgres: pg_ctl start failed"
      }
      pid=$(head -n1 "$PG_DATA/postmaster.pid")
      echo "$pid" >"$(pid_file postgres)"
      wait_until postgres "$PG_TIMEOUT" "$pid" pg_ready || {
        show_log_tail postgres
        die "postgres: not ready"
      }
      log "postgres: started (pid $pid, 127.0.0.1:$PG_PORT)"
    fi
  fi
  pg_setup
}

# pg_setup: the databases, then the catalog schema (dev/sql/catalog.sql, idempotent).
pg_setup() {
  local db psql=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres)
  for db in "${PG_DATABASES[@]}"; do
    if [[ -z $("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'") ]]; then
      "${psql[@]}" -d postgres -c "CREATE DATABASE \"$db\"" || die "postgres: create database $db failed"
      log "postgres: created database $db"
    fi
  done
  local catalog=$EXPORTPLATFORM_ROOT/dev/sql/catalog.sql
  if [[ -f $catalog ]]; then
    "${psql[@]}" -d products_manager -f "$catalog" >>"$(log_file postgres)" 2>&1 || {
      show_log_tail postgres 20
      die "postgres: applying $catalog failed"
    }
  else
    warn "postgres: $catalog not found yet, catalog schema not applied"
  fi
}

# SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for every client to leave).
pg_stop() {
  local pid
  if pid=$(pg_pid); then
    stop_pid postgres "-D $PG_DATA" 60 INT
    log "postgres: stopped (pid $pid)"
  fi
}

pg_status() {
  local pid ready=no
  if pid=$(pg_pid); then
    pg_ready && ready=yes
    status_line postgres running "$pid" "$ready" "127.0.0.1:$PG_PORT"
  else
    status_line postgres stopped - - "127.0.0.1:$PG_PORT"
  fi
}
