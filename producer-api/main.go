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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "producer-api:", err)
		os.Exit(1)
	}
}
