# shellcheck shell=bash
# Helpers shared by dev/stack.sh and its parts: logging, timing, pid files, readiness polling,
# process start/stop, system packages. Sourced, never run.

# ---------------------------------------------------------------- output and timing

log() { printf '[stack] %s\n' "$*" >&2; }
warn() { printf '[stack] WARNING: %s\n' "$*" >&2; }
die() {
  printf '[stack] ERROR: %s\n' "$*" >&2
  exit 1
}

# now_ms: wall clock in milliseconds (bash 5's EPOCHREALTIME avoids forking date).
now_ms() {
  local t=${EPOCHREALTIME/[.,]/}
  echo $((t / 1000))
}

# fmt_ms 1234 -> 1.2s
fmt_ms() { printf '%d.%ds' $(($1 / 1000)) $(($1 % 1000 / 100)); }

# since_ms START_MS -> elapsed milliseconds
since_ms() { echo $(($(now_ms) - $1)); }

# ---------------------------------------------------------------- files and pids

pid_file() { echo "$STACK_DIR/pids/$1.pid"; }
log_file() { echo "$STACK_DIR/logs/$1.log"; }

# pid_alive PID: the process exists and is not a zombie. Our daemons are reparented to PID 1
# once the shell that spawned them exits, and a zombie stays visible (kill -0 succeeds) until
# PID 1 reaps it, which on some machines takes over a second.
pid_alive() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  # read, not $(<file): a failed $(<file) redirection ends a non-interactive bash (a stale
  # postmaster.pid after a reboot names a pid that no longer exists).
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat=${stat##*) } # the fields after "(comm) "; comm itself may hold spaces
  [[ ${stat%% *} != Z ]]
}

# proc_matches PID PATTERN: the process is alive and its command line contains PATTERN.
# The pattern guards against a stale pid file whose pid the kernel gave to another process.
proc_matches() {
  local pid=$1 pattern=$2 cmdline
  pid_alive "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *"$pattern"* ]]
}

# running_pid NAME PATTERN: prints the pid of NAME if its pid file points at a live process
# matching PATTERN; removes a stale pid file and fails otherwise.
running_pid() {
  local name=$1 pattern=$2 pf pid
  pf=$(pid_file "$name")
  [[ -f $pf ]] || return 1
  pid=$(<"$pf")
  if proc_matches "$pid" "$pattern"; then
    echo "$pid"
    return 0
  fi
  rm -f "$pf"
  return 1
}

# spawn NAME CMD...: starts CMD in the background in its own session (so Ctrl-C in the
# caller's terminal does not reach it and it outlives this shell), stdout/stderr appended to
# the part's log, and writes the pid file. fd 9 (the stack lock) is closed so the daemon does
# not hold the lock forever. Without job control a background job is not a process group
# leader, so setsid execs in place and $! is the daemon's own pid.
spawn() {
  local name=$1 pid
  shift
  printf '\n==== %s starting %s ====\n' "$(date -u +%FT%TZ)" "$name" >>"$(log_file "$name")"
  setsid "$@" </dev/null >>"$(log_file "$name")" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$(pid_file "$name")"
  echo "$pid"
}

# stop_pid NAME PATTERN TIMEOUT_S [FIRST_SIGNAL]: stops the process recorded for NAME:
# FIRST_SIGNAL (default TERM), wait up to TIMEOUT_S, then SIGKILL to it and its process group.
stop_pid() {
  local name=$1 pattern=$2 timeout=$3 sig=${4:-TERM} pid deadline
  if ! pid=$(running_pid "$name" "$pattern"); then
    rm -f "$(pid_file "$name")"
    return 0
  fi
  kill -s "$sig" "$pid" 2>/dev/null || true
  deadline=$(($(now_ms) + timeout * 1000))
  while pid_alive "$pid"; do
    if (($(now_ms) > deadline)); then
      warn "$name (pid $pid) still alive after ${timeout}s: SIGQUIT (a Go service logs its goroutines), then SIGKILL"
      kill -s QUIT "$pid" 2>/dev/null || true
      sleep 1
      kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  # Wait for a SIGKILL to land.
  deadline=$(($(now_ms) + 5000))
  while pid_alive "$pid" && (($(now_ms) < deadline)); do sleep 0.05; done
  rm -f "$(pid_file "$name")"
}

# ---------------------------------------------------------------- readiness

# port_open HOST PORT: something accepts TCP connections there.
port_open() { timeout 1 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# http_ok URL: answers 2xx within 2 s.
http_ok() { curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null; }

# wait_until NAME TIMEOUT_S PID CMD...: polls CMD every 0.2 s until it succeeds. Fails when
# the deadline passes or when PID (if not empty) dies meanwhile, so a crashed process is
# reported at once instead of after the whole timeout.
wait_until() {
  local name=$1 timeout=$2 pid=$3 deadline
  shift 3
  deadline=$(($(now_ms) + timeout * 1000))
  until "$@"; do
    if [[ -n $pid ]] && ! pid_alive "$pid"; then
      warn "$name exited while starting"
      return 1
    fi
    if (($(now_ms) > deadline)); then
      warn "$name not ready after ${timeout}s"
      return 1
    fi
    sleep 0.2
  done
}

# require_port_free NAME HOST PORT: fail clearly when a process we did not start holds a port.
require_port_free() {
  local name=$1 host=$2 port=$3
  if port_open "$host" "$port"; then
    die "$name: $host:$port is already in use by another process (not started by this stack):
$(ss -ltnp "sport = :$port" 2>/dev/null | tail -n +2)"
  fi
}

# show_log_tail NAME [LINES]: the end of a part's log, to stderr, after a failure.
show_log_tail() {
  local f
  f=$(log_file "$1")
  [[ -f $f ]] || return 0
  printf -- '----- last %s lines of %s -----\n' "${2:-40}" "$f" >&2
  tail -n "${2:-40}" "$f" >&2
  printf -- '-----\n' >&2
}

# ---------------------------------------------------------------- system packages

_APT_UPDATED=
# apt_install PKG...: installs Debian packages (fresh machines); runs apt-get update once.
apt_install() {
  [[ $(id -u) == 0 ]] || die "need root to apt-get install $*; install it by hand"
  command -v apt-get >/dev/null || die "apt-get not found; install $* by hand"
  log "installing $* (apt)"
  export DEBIAN_FRONTEND=noninteractive
  if [[ -z $_APT_UPDATED ]]; then
    apt-get update -qq >>"$(log_file apt)" 2>&1 || die "apt-get update failed, see $(log_file apt)"
    _APT_UPDATED=1
  fi
  apt-get install -y -qq --no-install-recommends "$@" >>"$(log_file apt)" 2>&1 ||
    die "apt-get install $* failed, see $(log_file apt)"
}

# need_cmd CMD PKG: installs PKG when CMD is missing.
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_install "$2"; }
