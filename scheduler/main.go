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
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "scheduler:", err)
		os.Exit(1)
	}
}
