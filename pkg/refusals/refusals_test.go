package refusals_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/refusals"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type queue struct {
	mu  sync.Mutex
	got []events.Accessed
}

func (q *queue) Audit(_ context.Context, evs ...events.Event) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, ev := range evs {
		q.got = append(q.got, ev.(events.Accessed))
	}
	return nil
}

func (q *queue) take() []events.Accessed {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.got
	q.got = nil
	return out
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func refusal(client string) events.Accessed {
	return events.Accessed{Action: events.ActionDenied, ClientIP: client, Status: 401, Reason: "unauthenticated"}
}

// TestFloodIsSummarised: a client's first Limit refusals of a window are audited one by one,
// the rest become one summary with their count when the window ends; another client keeps its
// own budget; the next window starts afresh.
func TestFloodIsSummarised(t *testing.T) {
	t.Parallel()
	q, c := &queue{}, &clock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	g := refusals.New(q, slog.New(slog.NewTextHandler(io.Discard, nil)), refusals.Options{Limit: 3, Window: time.Minute, Now: c.now})
	ctx := context.Background()
	for range 100 {
		g.Refused(ctx, refusal("192.0.2.7"))
	}
	g.Refused(ctx, refusal("198.51.100.1"))
	if got := q.take(); len(got) != 4 {
		t.Fatalf("audited one by one: %d, want 3 + 1", len(got))
	}
	if n := g.Flush(ctx, false); n != 0 {
		t.Fatalf("flushed %d summaries before the window ended", n)
	}
	c.add(time.Minute)
	if n := g.Flush(ctx, false); n != 1 {
		t.Fatalf("flushed %d summaries, want 1", n)
	}
	got := q.take()
	if len(got) != 1 || got[0].Suppressed != 97 || got[0].ResourceID != "refusals:192.0.2.7" || got[0].ClientIP != "192.0.2.7" ||
		got[0].Reason != "unauthenticated" || got[0].ID == "" || !got[0].At.Equal(c.now()) {
		t.Fatalf("summary %+v", got)
	}
	// A new window: the budget is back.
	if !g.Refused(ctx, refusal("192.0.2.7")) {
		t.Error("the first refusal of a new window was not audited")
	}
}

// TestClientsBeyondTheBoundShareATally: with MaxClients counted, refusals of further clients
// are all summarised together under "*", and nothing is lost on the final flush.
func TestClientsBeyondTheBoundShareATally(t *testing.T) {
	t.Parallel()
	q, c := &queue{}, &clock{t: time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)}
	g := refusals.New(q, slog.New(slog.NewTextHandler(io.Discard, nil)), refusals.Options{Limit: 1, MaxClients: 2, Now: c.now})
	ctx := context.Background()
	for _, ip := range []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.1"} {
		g.Refused(ctx, refusal(ip))
	}
	if got := q.take(); len(got) != 2 {
		t.Fatalf("audited one by one: %+v", got)
	}
	g.Flush(ctx, true)
	sum := map[string]int64{}
	for _, ev := range q.take() {
		sum[ev.ResourceID] = ev.Suppressed
	}
	if len(sum) != 2 || sum["refusals:*"] != 2 || sum["refusals:10.0.0.1"] != 1 {
		t.Errorf("summaries %v", sum)
	}
}

// TestRunFlushesOnStop: stopping Run queues the open windows' summaries.
func TestRunFlushesOnStop(t *testing.T) {
	t.Parallel()
	q := &queue{}
	g := refusals.New(q, slog.New(slog.NewTextHandler(io.Discard, nil)), refusals.Options{Limit: 1, Window: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- g.Run(ctx) }()
	g.Refused(ctx, refusal("10.0.0.1"))
	g.Refused(ctx, refusal("10.0.0.1"))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := q.take(); len(got) != 2 || got[1].Suppressed != 1 {
		t.Errorf("audited %+v", got)
	}
}
