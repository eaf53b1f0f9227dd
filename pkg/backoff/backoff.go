// Package backoff is the platform's one retry schedule: a capped exponential delay, and a
// sleep that ends with its context. Kafka handlers (pkg/eventbus), the outbox relay and the
// exporter's records use it, so every retry loop backs off the same way.
package backoff

import (
	"context"
	"time"
)

// Backoff doubles from Initial up to Max.
type Backoff struct {
	Initial, Max time.Duration
}

// Delay is the wait before retry number attempt (1 for the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
}

// Sleep waits d, or less if ctx ends first; it reports whether the whole wait passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
