// Command producer-api is the platform's REST front door: it authenticates users, validates
// export requests, records each job with its ExportRequested event in one transaction (the
// outbox), relays the outbox to Kafka, serves job state and downloads, and proxies the
// progress WebSocket to the hub.
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
	log := logging.New(os.Stdout, os.Getenv("LOG_LEVEL"), "producer-api")
	if err := otlpsetup.Main(ctx, "producer-api", log, func() error { return run(ctx, os.Getenv, os.Stdout) }); err != nil {
		fmt.Fprintln(os.Stderr, "producer-api:", err)
		os.Exit(1)
	}
}
