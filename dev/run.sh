#!/usr/bin/env bash
# `make run`: the whole local stack with a demo catalog, in the foreground. Prints the URLs and
# a ready-to-use token, then waits; Ctrl-C (SIGINT) or SIGTERM stops everything cleanly.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
# shellcheck source=dev/env.sh
. "$ROOT/dev/env.sh"
# shellcheck source=dev/lib/common.sh
. "$ROOT/dev/lib/common.sh"
STACK=$ROOT/dev/stack.sh
DEMO_PRODUCTS=${PRODUCTS:-100000}

# On Ctrl-C/SIGTERM: stop the stack once (ignore further signals while it stops).
shutdown() {
  trap '' INT TERM
  echo >&2
  log "stopping the stack..."
  "$STACK" down || true
  exit 0
}
trap shutdown INT TERM

if ! "$STACK" up || ! "$STACK" tools; then
  warn "the stack did not come up; stopping what started (logs stay in $STACK_DIR/logs)"
  "$STACK" down || true
  exit 1
fi

if [[ -x $STACK_DIR/bin/seed ]]; then
  "$STACK_DIR/bin/seed" -products "$DEMO_PRODUCTS" -if-empty
else
  warn "no seed tool yet (dev/cmd/seed): catalog not seeded"
fi

TOKEN=
if [[ -x $STACK_DIR/bin/token ]]; then
  TOKEN=$("$STACK_DIR/bin/token" -sub demo -name "Demo User" -perms READ_EXPORTS,WRITE_EXPORTS)
else
  warn "no token tool yet (dev/cmd/token)"
fi

# A demo schedule, so the web UI's Schedules view has something to show: created once, switched
# off (it would otherwise export the whole catalog every night); switch it on from the page.
if [[ -n $TOKEN ]] && curl -fsS -H "Authorization: Bearer $TOKEN" "http://$API_ADDR/api/v1/exports/schedules?limit=1" |
  grep -q '"items":\[\]'; then
  curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" -XPOST "http://$API_ADDR/api/v1/exports/schedules" -d '{
    "name": "Demo: nightly active products (CSV)", "cron_expression": "0 2 * * *", "timezone": "Europe/Paris",
    "enabled": false, "max_retries": 2, "retry_delay_seconds": 300,
    "export_config": {"entity": "products", "format": "csv", "filters": {"status": "active"}}}' ||
    warn "could not create the demo schedule"
fi

cat <<EOF

Export Platform is running (state in $STACK_DIR).

  Web UI        http://$API_ADDR/${TOKEN:+#token=$TOKEN}
                (open this link to be signed in as Demo User for 24 h; the page drops the
                token from the address bar. Or open http://$API_ADDR/ and paste a token.)
  REST API      http://$API_ADDR/api/v1/exports
  API docs      http://$API_ADDR/#api (OpenAPI: /api/v1/openapi.json; events, AsyncAPI: /api/v1/asyncapi.json)
  WebSocket     ws://$API_ADDR/api/v1/exports/ws
  Schedules     http://$API_ADDR/api/v1/exports/schedules (also in the web UI; exportctl schedules list)
  progress-hub  $HUB_URL
  metrics       http://$API_ADDR/metrics, http://$HUB_ADDR/metrics, http://$EXPORTER_ADDR/metrics,
                http://$SCHEDULER_ADDR/metrics, http://$AUDIT_ADDR/metrics
  PostgreSQL    $CATALOG_DATABASE_URL (also exports, db_analytics)
  Kafka         $KAFKA_BROKERS
  S3            http://$S3_ENDPOINT  bucket $S3_BUCKET  keys $S3_ACCESS_KEY / $S3_SECRET_KEY

Token (sub demo, READ_EXPORTS,WRITE_EXPORTS):
  ${TOKEN:-<none>}

  curl -H "Authorization: Bearer \$TOKEN" http://$API_ADDR/api/v1/exports
  logs: dev/stack.sh logs <part>     status: make status     another token: make token

Ctrl-C stops everything.
EOF

# Wait in the foreground. `sleep & wait` (rather than a plain sleep) lets the trap run as soon
# as a signal arrives. Meanwhile report, once, any part that died on its own.
declare -A reported=()
while :; do
  sleep 5 &
  wait $! || true
  for f in "$STACK_DIR"/pids/*.pid; do
    [[ -e $f ]] || continue
    pid=$(<"$f")
    name=$(basename "$f" .pid)
    if ! pid_alive "$pid" && [[ -z ${reported[$name]:-} ]]; then
      warn "$name (pid $pid) is no longer running; see dev/stack.sh logs $name"
      reported[$name]=1
    fi
  done
done
