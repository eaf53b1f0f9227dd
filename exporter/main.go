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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "exporter:", err)
		os.Exit(1)
	}
}
