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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "progress-hub:", err)
		os.Exit(1)
	}
}
