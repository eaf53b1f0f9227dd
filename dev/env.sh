# shellcheck shell=bash
# Settings of the local stack (CONTRACT §2). Source it: `. dev/env.sh`.
# Every variable keeps a value that is already set, so a caller can override any of them.
# Works in bash and zsh; dev/stack.sh, dev/run.sh and the Makefile source it.

# Locate the repository root from this file's own path.
if [ -n "${BASH_SOURCE:-}" ]; then
  _ep_env_file=${BASH_SOURCE[0]}
elif [ -n "${ZSH_VERSION:-}" ]; then
  eval '_ep_env_file=${(%):-%x}'
else
  _ep_env_file=$PWD/dev/env.sh # plain sh cannot tell: source it from the repository root
fi
_ep_root=$(cd "$(dirname "$_ep_env_file")/.." && pwd -P)
if [ "${EXPORTPLATFORM_ROOT:-}" != "$_ep_root" ]; then
  # Sourced before from another checkout: its default STACK_DIR is not ours.
  if [ -n "${EXPORTPLATFORM_ROOT:-}" ] && [ "${STACK_DIR:-}" = "$EXPORTPLATFORM_ROOT/.stack" ]; then
    unset STACK_DIR
  fi
  EXPORTPLATFORM_ROOT=$_ep_root
fi
export EXPORTPLATFORM_ROOT
unset _ep_env_file _ep_root

: "${STACK_DIR:=$EXPORTPLATFORM_ROOT/.stack}"
: "${PG_BIN:=/usr/lib/postgresql/15/bin}"
export STACK_DIR PG_BIN

# The Go toolchain every build and test uses: go1.27.3 fixes the standard library's known
# vulnerabilities that go1.26.8 (the machine's Go) still has (govulncheck, make lint). The go
# command fetches it once from the module proxy (about 76 MB) into the module cache. go.work names
# it too, so a shell without this setting is refused rather than building with the older one.
: "${GOTOOLCHAIN:=go1.27.3}"
export GOTOOLCHAIN

# Databases (PostgreSQL on 127.0.0.1:55432, user postgres, trust auth).
: "${PGPORT_STACK:=55432}"
: "${CATALOG_DATABASE_URL:=postgres://postgres@127.0.0.1:${PGPORT_STACK}/products_manager?sslmode=disable}"
: "${EXPORTS_DATABASE_URL:=postgres://postgres@127.0.0.1:${PGPORT_STACK}/exports?sslmode=disable}"
: "${ANALYTICS_DATABASE_URL:=postgres://postgres@127.0.0.1:${PGPORT_STACK}/db_analytics?sslmode=disable}"
export PGPORT_STACK CATALOG_DATABASE_URL EXPORTS_DATABASE_URL ANALYTICS_DATABASE_URL
# libpq defaults, so that a bare `psql -d exports` reaches the stack's server.
: "${PGHOST:=127.0.0.1}"
: "${PGPORT:=$PGPORT_STACK}"
: "${PGUSER:=postgres}"
export PGHOST PGPORT PGUSER

# Kafka.
: "${KAFKA_BROKERS:=127.0.0.1:9092}"
export KAFKA_BROKERS

# S3 server (versitygw).
: "${S3_ENDPOINT:=127.0.0.1:9000}"
: "${S3_ACCESS_KEY:=minioadmin}"
: "${S3_SECRET_KEY:=minioadmin}"
: "${S3_BUCKET:=exports}"
: "${S3_USE_TLS:=false}"
export S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_BUCKET S3_USE_TLS

# The partner side of the delivery platforms: a second bucket on the same S3 server, whose
# keys the "Partner bucket" platform names by reference (env:PARTNER_S3_ACCESS_KEY, read by the
# exporter), and an SFTP server (OpenSSH) for the stack's user, keys in $STACK_DIR/sftp.
: "${PARTNER_S3_BUCKET:=partner}"
: "${PARTNER_S3_ACCESS_KEY:=$S3_ACCESS_KEY}"
: "${PARTNER_S3_SECRET_KEY:=$S3_SECRET_KEY}"
: "${SFTP_ADDR:=127.0.0.1:2222}"
: "${SFTP_USER:=$(id -un)}"
export PARTNER_S3_BUCKET PARTNER_S3_ACCESS_KEY PARTNER_S3_SECRET_KEY SFTP_ADDR SFTP_USER
# Deliveries retry after 2, 4, 8 and 16 s here (production: 1m,5m,15m,1h,6h), so that a failed
# delivery's whole course takes half a minute in the tests and the demos.
: "${EXPORTER_DELIVERY_BACKOFF:=2s,4s,8s,16s}"
export EXPORTER_DELIVERY_BACKOFF
# The demo webhooks' signing secret (Standard Webhooks form), named by platforms as
# env:DEMO_WEBHOOK_SECRET: public, like local-dev-secret, for the local stack only.
: "${DEMO_WEBHOOK_SECRET:=whsec_bG9jYWwtc3RhY2std2ViaG9vay1rZXkh}"
export DEMO_WEBHOOK_SECRET

# Token signing. AUTH_DEV_MODE is the local stack's explicit dev mode: the services accept the
# public local-dev-secret only with it (CONTRACT §2); production sets a secret or JWT_JWKS_URL.
: "${JWT_SECRET:=local-dev-secret}"
: "${AUTH_DEV_MODE:=true}"
export JWT_SECRET AUTH_DEV_MODE

# Per-user limits. Production runs with the defaults (50 creations, streams, downloads and
# schedule changes a minute, 1000 reads, 10 active jobs, 2 streams); the local stack lifts them (0: no
# limit) because the test suite, the chaos scenarios and the benchmarks create hundreds of jobs
# as one user. e2e/limits_test.go starts two replicas with the production limits.
: "${API_RATE_EXPORTS:=0}" "${API_RATE_STREAMS:=0}" "${API_RATE_DOWNLOADS:=0}" "${API_RATE_SCHEDULES:=0}"
: "${API_RATE_READS:=0}" "${API_MAX_ACTIVE_JOBS_PER_USER:=0}" "${API_STREAMS_PER_USER:=0}"
export API_RATE_EXPORTS API_RATE_STREAMS API_RATE_DOWNLOADS API_RATE_SCHEDULES API_RATE_READS
export API_MAX_ACTIVE_JOBS_PER_USER API_STREAMS_PER_USER
# The chaos fleets and the hub benchmark hold thousands of WebSockets as one user (20 in
# production), and the total is raised to 20,000 (10,000) for the idle-clients benchmark.
: "${HUB_MAX_CONNECTIONS_PER_USER:=100000}" "${HUB_MAX_CONNECTIONS:=20000}"
export HUB_MAX_CONNECTIONS_PER_USER HUB_MAX_CONNECTIONS

# Service addresses.
: "${API_ADDR:=127.0.0.1:8080}"
: "${HUB_ADDR:=127.0.0.1:8081}"
: "${HUB_URL:=http://127.0.0.1:8081}"
: "${EXPORTER_ADDR:=127.0.0.1:8082}"
: "${SCHEDULER_ADDR:=127.0.0.1:8083}"
: "${AUDIT_ADDR:=127.0.0.1:8084}"
export API_ADDR HUB_ADDR HUB_URL EXPORTER_ADDR SCHEDULER_ADDR AUDIT_ADDR
# The local exporter serves /debug/pprof on its (loopback) ops address, for `go tool pprof`.
: "${EXPORTER_PPROF:=true}"
export EXPORTER_PPROF

# Built tools and binaries first, then the PostgreSQL client/server binaries.
case ":$PATH:" in *":$STACK_DIR/bin:"*) ;; *) PATH=$STACK_DIR/bin:$PATH ;; esac
case ":$PATH:" in *":$PG_BIN:"*) ;; *) PATH=$PATH:$PG_BIN ;; esac
export PATH
