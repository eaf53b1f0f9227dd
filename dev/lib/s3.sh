# shellcheck shell=bash
# S3 part of the local stack: versitygw (Versity S3 Gateway) with its posix backend, serving
# the directory .stack/s3/data; a bucket is a directory under it. Sourced by dev/stack.sh.

VERSITYGW_VERSION=${VERSITYGW_VERSION:-v1.8.0}
VERSITYGW=$STACK_DIR/bin/versitygw
S3_DIR=$STACK_DIR/s3
S3_DATA=$S3_DIR/data
S3_META=$S3_DIR/meta
S3_TIMEOUT=${STACK_S3_TIMEOUT:-60}

# s3_install: built from source through the Go module proxy, once per pinned version.
s3_install() {
  local marker=$STACK_DIR/bin/.versitygw.version
  [[ -x $VERSITYGW && -f $marker && $(<"$marker") == "$VERSITYGW_VERSION" ]] && return 0
  log "s3: building versitygw $VERSITYGW_VERSION (first run only, takes a few minutes)"
  # GOWORK=off: `go install pkg@version` must not see this repository's workspace.
  GOWORK=off GOBIN=$STACK_DIR/bin go install "github.com/versity/versitygw/cmd/versitygw@$VERSITYGW_VERSION" \
    >>"$(log_file build)" 2>&1 9>&- || {
    show_log_tail build
    die "s3: go install versitygw failed"
  }
  echo "$VERSITYGW_VERSION" >"$marker"
}

# s3_backend_flags: the posix backend keeps object metadata (ETag, content type, ...) in
# user extended attributes. Filesystems known to support them get the default; anything else
# (tmpfs on older kernels, overlay, NFS, ...) uses a sidecar directory instead. The choice is
# made once and remembered, since switching would strand the metadata already written.
s3_backend_flags() {
  local modefile=$S3_DIR/meta-mode fstype
  if [[ ! -s $modefile ]]; then
    fstype=$(stat -f -c %T "$S3_DATA" 2>/dev/null || echo unknown)
    case $fstype in
      ext2/ext3 | ext4 | xfs | btrfs | zfs | f2fs) echo xattr >"$modefile" ;;
      *)
        log "s3: filesystem $fstype: object metadata in a sidecar directory instead of xattrs"
        echo sidecar >"$modefile"
        ;;
    esac
  fi
  if [[ $(<"$modefile") == sidecar ]]; then
    mkdir -p "$S3_META"
    echo "--sidecar $S3_META"
  fi
}

s3_pid() { running_pid s3 "$S3_DATA"; }

s3_health() { http_ok "http://$S3_ENDPOINT/health"; }

# s3_bucket: creates the bucket if missing and checks a real PUT/GET/DELETE round trip; also
# the partner's bucket, where the demo "Partner bucket" platform delivers.
s3_bucket() {
  "$STACK_DIR/bin/mkbucket" -bucket "$S3_BUCKET" -wait "${1:-30}s" -verify \
    >>"$(log_file s3-bucket)" 2>&1 &&
    "$STACK_DIR/bin/mkbucket" -bucket "$PARTNER_S3_BUCKET" -wait 10s >>"$(log_file s3-bucket)" 2>&1
}

s3_start() {
  local pid t0 flags
  if pid=$(s3_pid); then
    if ! s3_bucket 30; then
      show_log_tail s3-bucket 10
      show_log_tail s3
      die "s3 (pid $pid) is running but not answering"
    fi
    log "s3: already running (pid $pid)"
    return 0
  fi
  s3_install
  mkdir -p "$S3_DATA"
  require_port_free s3 "${S3_ENDPOINT%:*}" "${S3_ENDPOINT##*:}"
  flags=$(s3_backend_flags)
  t0=$(now_ms)
  # Root credentials through the environment rather than argv (not shown by ps).
  # shellcheck disable=SC2086 # flags is empty or "--sidecar DIR"
  pid=$(ROOT_ACCESS_KEY=$S3_ACCESS_KEY ROOT_SECRET_KEY=$S3_SECRET_KEY \
    spawn s3 "$VERSITYGW" --port "$S3_ENDPOINT" --health /health --quiet \
    posix $flags "$S3_DATA")
  if ! wait_until s3 "$S3_TIMEOUT" "$pid" s3_health || ! s3_bucket 30; then
    show_log_tail s3-bucket 10
    show_log_tail s3
    die "s3: failed to start"
  fi
  log "s3: started (pid $pid, $S3_ENDPOINT, bucket $S3_BUCKET, PUT/GET verified) in $(fmt_ms "$(since_ms "$t0")")"
}

s3_stop() {
  local pid
  if pid=$(s3_pid); then
    stop_pid s3 "$S3_DATA" 20 TERM
    log "s3: stopped (pid $pid)"
  fi
}

s3_status() {
  local pid ready=no
  if pid=$(s3_pid); then
    s3_health && ready=yes
    status_line s3 running "$pid" "$ready" "$S3_ENDPOINT"
  else
    status_line s3 stopped - - "$S3_ENDPOINT"
  fi
}
