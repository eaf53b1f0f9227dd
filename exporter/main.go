// Command exporter runs export jobs: it consumes exports.requested as group `exporter`, claims
// each job's lease in PostgreSQL, streams the catalog through the format writer into a
// multipart upload to S3, and reports Started, Progress, Completed or Failed on exports.events.
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
	log := logging.New(os.Stdout, os.Getenv("LOG_LEVEL"), "exporter")
	if err := otlpsetup.Main(ctx, "exporter", log, func() error { return run(ctx, os.Getenv, os.Stdout) }); err != nil {
		fmt.Fprintln(os.Stderr, "exporter:", err)
		os.Exit(1)
	}
}
