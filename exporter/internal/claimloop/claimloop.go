// Package claimloop runs work claimed from a repository under leases, a bounded number at a
// time: the loop of the exporter's delivery and webhook workers. While nothing is due it
// sleeps until the next due time, a wake-up or its poll interval, whichever comes first.
package claimloop

import (
	"context"
	"sync"
	"time"
)

// Loop is one worker's loop.
type Loop[T any] struct {
	// Slots is how many claims run at once.
	Slots int
	// Claim claims the next due work; false when there is none (or it failed, logged by it).
	Claim func(ctx context.Context) (T, bool)
	// Work runs one claim.
	Work func(ctx context.Context, t T)
	// Next is when the next work is due (nil: not known); the loop wakes then.
	Next func(ctx context.Context) (*time.Time, error)
	// Poll is the longest sleep.
	Poll time.Duration
	// Wake, when not nil, ends a sleep at once.
	Wake <-chan struct{}
}

// Run claims and works until ctx ends, then waits for the work under way (cancelled with ctx:
// its leases lapse and another worker takes it up).
func (l Loop[T]) Run(ctx context.Context) error {
	slots := make(chan struct{}, max(l.Slots, 1))
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		t, ok := l.Claim(ctx)
		if !ok {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			l.sleep(ctx)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			l.Work(ctx, t)
		})
	}
}

func (l Loop[T]) sleep(ctx context.Context) {
	d := l.Poll
	if next, err := l.Next(ctx); err == nil && next != nil {
		d = min(d, max(time.Until(*next), 10*time.Millisecond))
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-l.Wake:
	case <-t.C:
	}
}
