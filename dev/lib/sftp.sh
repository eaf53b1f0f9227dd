# shellcheck shell=bash
# SFTP part of the local stack: a real OpenSSH server (Debian's openssh-server) of its own,
# listening on $SFTP_ADDR (127.0.0.1:2222), serving SFTP only (internal-sftp) to the user who
# runs the stack, with keys of its own. Everything lives in .stack/sftp/:
#   host_ed25519_key(.pub)  the server's host key (a platform names its public half)
#   id_ed25519(.pub)        the test user's key: the demo "Partner SFTP" platform delivers with
#                           it (private_key_ref file:.stack/sftp/id_ed25519)
#   files/                  the user's SFTP start directory (the partner's files)
# Sourced by dev/stack.sh.

SFTP_DIR=$STACK_DIR/sftp
SFTP_TIMEOUT=${STACK_SFTP_TIMEOUT:-30}
SSHD=/usr/sbin/sshd

sftp_install() {
  [[ -x $SSHD ]] || apt_install openssh-server
  command -v ssh-keygen >/dev/null || apt_install openssh-client
}

# sftp_config: keys and sshd_config, made once (the host key stays across restarts, so a
# platform that names it keeps working).
sftp_config() {
  mkdir -p "$SFTP_DIR/files"
  [[ -f $SFTP_DIR/host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C export-platform-sftp -f "$SFTP_DIR/host_ed25519_key"
  [[ -f $SFTP_DIR/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C "$SFTP_USER@export-platform" -f "$SFTP_DIR/id_ed25519"
  cp "$SFTP_DIR/id_ed25519.pub" "$SFTP_DIR/authorized_keys"
  chmod 600 "$SFTP_DIR/host_ed25519_key" "$SFTP_DIR/id_ed25519" "$SFTP_DIR/authorized_keys"
  cat >"$SFTP_DIR/sshd_config" <<CONF
# Written by dev/lib/sftp.sh; rewritten at each start.
Port ${SFTP_ADDR##*:}
ListenAddress ${SFTP_ADDR%:*}
HostKey $SFTP_DIR/host_ed25519_key
PidFile $SFTP_DIR/sshd.pid
AuthorizedKeysFile $SFTP_DIR/authorized_keys
AllowUsers $SFTP_USER
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
AllowTcpForwarding no
X11Forwarding no
PrintMotd no
Subsystem sftp internal-sftp -d $SFTP_DIR/files
ForceCommand internal-sftp -d $SFTP_DIR/files
LogLevel INFO
CONF
}

sftp_pid() { running_pid sftp "$SFTP_DIR/sshd_config"; }

# sftp_health: the server shows its host key (an SSH handshake's first step).
sftp_health() {
  ssh-keyscan -T 2 -t ed25519 -p "${SFTP_ADDR##*:}" "${SFTP_ADDR%:*}" 2>/dev/null | grep -q ssh-ed25519
}

sftp_start() {
  local pid t0
  if pid=$(sftp_pid); then
    log "sftp: already running (pid $pid)"
    return 0
  fi
  sftp_install
  sftp_config
  require_port_free sftp "${SFTP_ADDR%:*}" "${SFTP_ADDR##*:}"
  # sshd wants its privilege separation directory when it starts as root.
  [[ $(id -u) != 0 ]] || mkdir -p /run/sshd
  t0=$(now_ms)
  pid=$(spawn sftp "$SSHD" -D -e -f "$SFTP_DIR/sshd_config")
  if ! wait_until sftp "$SFTP_TIMEOUT" "$pid" sftp_health; then
    show_log_tail sftp
    die "sftp: failed to start"
  fi
  log "sftp: started (pid $pid, $SFTP_ADDR, user $SFTP_USER, files in $SFTP_DIR/files) in $(fmt_ms "$(since_ms "$t0")")"
}

sftp_stop() {
  local pid
  if pid=$(sftp_pid); then
    stop_pid sftp "$SFTP_DIR/sshd_config" 10 TERM
    log "sftp: stopped (pid $pid)"
  fi
}

sftp_status() {
  local pid ready=no
  if pid=$(sftp_pid); then
    sftp_health && ready=yes
    status_line sftp running "$pid" "$ready" "$SFTP_ADDR"
  else
    status_line sftp stopped - - "$SFTP_ADDR"
  fi
}
