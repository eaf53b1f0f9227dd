// Command progress-hub folds the job events of exports.events into the job rows of the
// exports database and pushes each job's progress to the WebSocket clients following it
// (CONTRACT §5, §6).
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
	log := logging.New(os.Stdout, os.Getenv("LOG_LEVEL"), "progress-hub")
	if err := otlpsetup.Main(ctx, "progress-hub", log, func() error { return run(ctx, os.Getenv, os.Stdout) }); err != nil {
		fmt.Fprintln(os.Stderr, "progress-hub:", err)
		os.Exit(1)
	}
}
