// Command audit-sink keeps the audit trail of data exports: it consumes exports.requested and
// exports.events as group `audit-sink` (read_committed) and writes one row per audited event
// (requested, completed, failed) into db_analytics.audit_logs, dropping repeats by ce_id.
// It serves /healthz, /readyz and /metrics only.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/productsmanager/exportplatform/pkg/logging"
	"github.com/productsmanager/exportplatform/pkg/telemetry/otlpsetup"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Tracing (OTEL_*, off without an endpoint) is the process's: set up around run, and its
	// spans flushed once run has shut everything down.
	log := logging.New(os.Stdout, os.Getenv("LOG_LEVEL"), "audit-sink")
	if err := otlpsetup.Main(ctx, "audit-sink", log, func() error { return run(ctx, os.Getenv, os.Stdout) }); err != nil {
		fmt.Fprintln(os.Stderr, "audit-sink:", err)
		os.Exit(1)
	}
}
