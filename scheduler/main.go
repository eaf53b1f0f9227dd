// Command scheduler starts exports on their schedules (cron or interval, in each schedule's
// time zone): it fires due schedules into jobs (internal/firing), folds the jobs' events into
// the run log and stats (internal/outcomes), and serves /healthz, /readyz and /metrics. Any
// number of replicas may run; none leads.
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
	log := logging.New(os.Stdout, os.Getenv("LOG_LEVEL"), "scheduler")
	if err := otlpsetup.Main(ctx, "scheduler", log, func() error { return run(ctx, os.Getenv, os.Stdout) }); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
