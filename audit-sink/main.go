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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "audit-sink:", err)
		os.Exit(1)
	}
}
