#!/usr/bin/env bash
# Go checks over every module of go.work, for the Makefile:
#
#   dev/lib/gocheck.sh test   the stack up, go vet, go test -race (all modules but e2e), the
#                             alert rules' and dashboard's checks, then the end-to-end tests
#   dev/lib/gocheck.sh lint   gofmt -l (must print nothing), go vet, govulncheck, and promtool
#                             over the alert rules (with their tests) and the dashboard
#   dev/lib/gocheck.sh vuln   govulncheck alone (make test runs it too)
#   dev/lib/gocheck.sh chaos  the stack up, then the fault scenarios at full size (make chaos)
#
# Modules that have no package yet, or no test files, are not failures. Every stage runs even
# when an earlier one failed, so one run shows every failure; the exit status is non-zero if
# any stage failed.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)
# shellcheck source=dev/env.sh
. "$ROOT/dev/env.sh"
# shellcheck source=dev/lib/common.sh
. "$ROOT/dev/lib/common.sh"
cd "$ROOT"

FAILED=()

# module_dirs: the workspace's modules as ./relative paths (go list -m reads go.work).
module_dirs() {
  local d
  while read -r d; do
    echo "./${d#"$ROOT"/}"
  done < <(go list -m -f '{{.Dir}}')
}

# packages DIR...: the packages under those module dirs (-e keeps broken ones, so that their
# errors show up in vet/test instead of the package silently disappearing).
packages() {
  local d
  for d in "$@"; do go list -e "$d/..." 2>/dev/null || true; done
}

# stage NAME CMD...: runs one stage, remembers a failure and goes on.
stage() {
  local name=$1 t0 rc=0 words=() a
  shift
  # Show the command without its (long) list of package paths.
  for a in "$@"; do [[ $a == github.com/* ]] || words+=("$a"); done
  t0=$(now_ms)
  if (($# > ${#words[@]})); then
    log "$name: ${words[*]} ($(($# - ${#words[@]})) packages)"
  else
    log "$name: ${words[*]}"
  fi
  "$@" || rc=$?
  if ((rc == 0)); then
    log "$name: ok in $(fmt_ms "$(since_ms "$t0")")"
  else
    log "$name: FAILED (exit $rc) after $(fmt_ms "$(since_ms "$t0")")"
    FAILED+=("$name")
  fi
}

finish() {
  if ((${#FAILED[@]})); then
    log "FAILED: ${FAILED[*]}"
    exit 1
  fi
  log "all checks passed"
}

# FUZZ_TARGETS: "FuzzName ./package" of every fuzz target.
FUZZ_TARGETS=(
  "FuzzCreateBody ./producer-api/internal/api"
  "FuzzStreamQuery ./producer-api/internal/api"
  "FuzzNewQuery ./pkg/catalog"
  "FuzzParseCron ./pkg/schedule"
  "FuzzClientMessage ./progress-hub/internal/ws"
)

# govulncheck reads a vulnerability database. vuln.go.dev is not reachable from every machine
# (this one's only registries are the package proxies), so the database is built from a pinned
# snapshot of golang.org/x/vulndb, served by the Go module proxy like any module, with that
# repository's own indexer, once, into .stack/vulndb/. GOVULNDB names another database
# (e.g. https://vuln.go.dev); VULNDB_VERSION=<pseudo-version> moves the snapshot forward.
GOVULNCHECK_VERSION=v1.9.0
: "${VULNDB_VERSION:=v0.0.0-20261105234957-e22db6528018}"

# vulndb: prints the database govulncheck should read, building the local one when needed.
vulndb() {
  if [[ -n ${GOVULNDB:-} ]]; then
    echo "$GOVULNDB"
    return
  fi
  local out="$STACK_DIR/vulndb/$VULNDB_VERSION" src tmp
  if [[ ! -f $out/index/db.json ]]; then
    tmp=$(mktemp -d)
    # Outside the workspace: these are tools, not dependencies of ours.
    src=$(cd "$tmp" && GOWORK=off go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
    [[ -d $src/data/osv ]] || {
      log "vulndb: golang.org/x/vulndb@$VULNDB_VERSION has no data/osv"
      return 1
    }
    (cd "$tmp" && GOWORK=off go run "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION" \
      -vulns "$src/data/osv" -out "$tmp/db") >&2 || return 1
    mkdir -p "$(dirname "$out")"
    rm -rf "$out" && mv "$tmp/db" "$out" && rm -rf "$tmp"
  fi
  echo "file://$out"
}

# govulncheck_all: every module of the workspace against the database; fails when our code
# calls a vulnerable function (of a module or of the standard library of GOTOOLCHAIN).
govulncheck_all() {
  local db d rc=0
  db=$(vulndb) || return 1
  GOBIN="$STACK_DIR/bin" GOWORK=off go install "golang.org/x/vuln/cmd/govulncheck@$GOVULNCHECK_VERSION" || return 1
  log "govulncheck: database $db"
  for d in "$@"; do
    (cd "$d" && "$STACK_DIR/bin/govulncheck" -db "$db" ./...) || {
      log "govulncheck: $d is affected (above)"
      rc=1
    }
  done
  return "$rc"
}

# The dashboards and alerts (deployments/observability) are checked with promtool: the rules
# (check rules), their unit tests (test rules: each alert fires past its bound, silent below),
# and every query of the Grafana dashboard as PromQL (as recording rules, $__rate_interval read
# as 5m), after jq has checked the dashboard's shape. promtool is Debian's (the prometheus
# package, pinned): apt-get download, and only promtool unpacked into .stack/bin, so nothing
# is started and no root is needed (installing the package would start a Prometheus server).
# When the mirror no longer carries that revision, promtool is built from the pinned Prometheus
# module instead (the Go module proxy serves it; about 6 minutes). Both pass the rules' tests.
PROMTOOL_DEB=2.42.0+ds-5+deb12u1
PROMTOOL_MODULE=v0.316.0
OBSERVABILITY=deployments/observability

# promtool_bin: prints the path of the pinned promtool, fetching it the first time.
promtool_bin() {
  local deb="$STACK_DIR/bin/promtool-deb-$PROMTOOL_DEB" mod="$STACK_DIR/bin/promtool-go-$PROMTOOL_MODULE" tmp
  for tmp in "$deb" "$mod"; do
    if [[ -x $tmp ]]; then
      echo "$tmp"
      return
    fi
  done
  mkdir -p "$STACK_DIR/bin" "$STACK_DIR/logs"
  tmp=$(mktemp -d)
  if (cd "$tmp" && { apt-get download "prometheus=$PROMTOOL_DEB" ||
    { [[ $(id -u) == 0 ]] && apt-get update -qq && apt-get download "prometheus=$PROMTOOL_DEB"; }; }) >>"$(log_file apt)" 2>&1 &&
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool; then
    mv "$tmp/usr/bin/promtool" "$deb"
    rm -rf "$tmp"
    echo "$deb"
    return
  fi
  log "promtool: Debian's prometheus $PROMTOOL_DEB is not available here; building promtool $PROMTOOL_MODULE"
  GOBIN="$tmp" GOWORK=off go install "github.com/prometheus/prometheus/cmd/promtool@$PROMTOOL_MODULE" >&2 || {
    rm -rf "$tmp"
    return 1
  }
  mv "$tmp/promtool" "$mod"
  rm -rf "$tmp"
  echo "$mod"
}

# check_observability: the rules, their tests and the dashboard (see above).
check_observability() {
  local promtool tmp rc=0
  promtool=$(promtool_bin) || return 1
  need_cmd jq jq
  "$promtool" check rules "$OBSERVABILITY/rules.yml" || rc=1
  (cd "$OBSERVABILITY" && "$promtool" test rules rules_test.yml) || rc=1
  # The dashboard: JSON with unique panel ids, a data source variable that every panel and
  # query uses, and at least one query per panel.
  # shellcheck disable=SC2016 # ${DS_PROMETHEUS} is Grafana's, not the shell's
  jq -e '(.templating.list | any(.name == "DS_PROMETHEUS" and .type == "datasource"))
    and ([.panels[] | select(.type != "row")] | length > 0)
    and all(.panels[] | select(.type != "row"); .datasource.uid == "${DS_PROMETHEUS}" and (.targets | length > 0)
      and all(.targets[]; (.expr | length > 0) and .datasource.uid == "${DS_PROMETHEUS}"))
    and ([.panels[].id] | length == (unique | length))' "$OBSERVABILITY/export-platform.json" >/dev/null || {
    log "observability: export-platform.json is not a dashboard whose every panel queries \${DS_PROMETHEUS}"
    rc=1
  }
  tmp=$(mktemp -d)
  jq '{groups: [{name: "dashboard", rules: [.panels[] | select(.type != "row") | .id as $id | .targets[] |
    {record: "dashboard:panel_\($id)_\(.refId)", expr: (.expr | gsub("\\$__rate_interval"; "5m"))}]}]}' \
    "$OBSERVABILITY/export-platform.json" >"$tmp/dashboard-queries.json" &&
    "$promtool" check rules "$tmp/dashboard-queries.json" || rc=1
  rm -rf "$tmp"
  return "$rc"
}

cmd_vuln() {
  local dirs
  mapfile -t dirs < <(module_dirs)
  stage govulncheck govulncheck_all "${dirs[@]}"
  finish
}

cmd_lint() {
  local dirs unformatted pkgs
  mapfile -t dirs < <(module_dirs)
  unformatted=$(gofmt -l "${dirs[@]}")
  if [[ -n $unformatted ]]; then
    log "gofmt: these files need gofmt -w:"
    printf '  %s\n' "$unformatted" >&2
    FAILED+=(gofmt)
  else
    log "gofmt: ok"
  fi
  mapfile -t pkgs < <(packages "${dirs[@]}")
  if ((${#pkgs[@]})); then stage vet go vet "${pkgs[@]}"; fi
  stage govulncheck govulncheck_all "${dirs[@]}"
  stage "rules and dashboard" check_observability
  finish
}

cmd_test() {
  local dirs=() d unit=() e2e=()
  "$ROOT/dev/stack.sh" up || {
    log "the stack did not come up: not running the tests"
    exit 1
  }
  # The end-to-end tests drive .stack/bin/seed and friends: they must build.
  "$ROOT/dev/stack.sh" tools || exit 1
  mapfile -t dirs < <(module_dirs)
  for d in "${dirs[@]}"; do
    if [[ $d == ./e2e ]]; then
      mapfile -t e2e < <(packages "$d")
    else
      mapfile -t -O "${#unit[@]}" unit < <(packages "$d")
    fi
  done
  # -race needs cgo, hence a C compiler.
  need_cmd gcc gcc
  # The XLSX tests read workbooks back with an independent reader: openpyxl, for the system's
  # python3 (Debian's package; a python3 earlier on PATH may not see it).
  /usr/bin/python3 -c 'import openpyxl' 2>/dev/null || apt_install python3 python3-openpyxl
  # The web UI's end-to-end test (e2e/ui_test.go) drives Debian's headless chromium, with a font
  # for readable screenshots. A failed install does not stop the other stages: that test then
  # fails under CI (and skips elsewhere), naming what is missing.
  if [[ ! -x /usr/bin/chromium || ! -d /usr/share/fonts/truetype/dejavu ]]; then
    (apt_install chromium fonts-dejavu-core) || log "chromium could not be installed: the UI test will say so"
  fi
  # LibreOffice opens a 1.1M-row workbook in the XLSX stage below (a third independent reader).
  if ! command -v soffice >/dev/null; then
    (apt_install libreoffice-calc-nogui) || log "LibreOffice could not be installed: the XLSX stage will say so"
  fi
  if ((${#unit[@]} + ${#e2e[@]})); then stage vet go vet "${unit[@]}" "${e2e[@]}"; fi
  if ((${#unit[@]})); then
    stage unit go test -race -count=1 "${unit[@]}"
  else
    log "unit: no packages yet"
  fi
  # The fuzz targets (request decoder, query string, filter builder, cron parser, WebSocket
  # messages), each for FUZZTIME from its committed corpus (testdata/fuzz): invariant, a 4xx or
  # a valid result, never a panic or a 5xx.
  # Without -race (the race detector would make its 1.1 million rows take minutes): the test's
  # file is built only without it, so the unit stage above skips it.
  stage "xlsx in LibreOffice" go test -count=1 -run '^TestXLSXInLibreOffice$' ./pkg/exportfmt
  local target
  for target in "${FUZZ_TARGETS[@]}"; do
    stage "fuzz ${target%% *}" go test -run '^$' -fuzz "^${target%% *}\$" -fuzztime "${FUZZTIME:-10s}" "${target#* }"
  done
  stage govulncheck govulncheck_all "${dirs[@]}"
  # The alert rules with their unit tests and the dashboard's queries (make lint runs it too).
  stage "rules and dashboard" check_observability
  if ((${#e2e[@]})); then
    stage e2e go test -count=1 -p 1 -timeout 40m -v ./e2e/...
  else
    log "e2e: no packages yet"
  fi
  finish
}

# cmd_chaos: the fault scenarios of e2e/chaos_test.go at full size (CHAOS=full); the table of
# scenario | expected | observed | lost | duplicated is printed at the end.
cmd_chaos() {
  "$ROOT/dev/stack.sh" up || {
    log "the stack did not come up: not running the chaos scenarios"
    exit 1
  }
  "$ROOT/dev/stack.sh" tools || exit 1
  stage chaos env CHAOS=full go test -count=1 -p 1 -v -timeout 80m -run '^TestChaos' ./e2e/
  finish
}

case ${1:-test} in
  test) cmd_test ;;
  chaos) cmd_chaos ;;
  lint) cmd_lint ;;
  vuln) cmd_vuln ;;
  *)
    echo "usage: $0 test|lint|vuln|chaos" >&2
    exit 2
    ;;
esac
