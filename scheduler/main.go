// Command scheduler will start exports on their schedules (cron or interval). For now it
// connects to the exports database and to Kafka and serves /healthz, /readyz and /metrics
// only: the schedules themselves come with a later issue.
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
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
