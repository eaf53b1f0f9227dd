package relay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/producer-api/internal/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 10 * time.Second

// fakeOutbox is the outbox table in memory: RelayOutbox hands the oldest rows to publish and
// drops them only when publish returned nil, like the real one.
type fakeOutbox struct {
	mu    sync.Mutex
	rows  []jobstore.OutboxMessage
	calls int
}

func (o *fakeOutbox) add(msgs ...jobstore.OutboxMessage) {
	o.mu.Lock()
	o.rows = append(o.rows, msgs...)
	o.mu.Unlock()
}

func (o *fakeOutbox) backlog() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.rows)
}

func (o *fakeOutbox) callCount() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.calls
}

func (o *fakeOutbox) RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []jobstore.OutboxMessage) error) (int, error) {
	o.mu.Lock()
	o.calls++
	batch := slices.Clone(o.rows[:min(limit, len(o.rows))])
	o.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if len(batch) == 0 {
		return 0, nil
	}
	if err := publish(ctx, batch); err != nil {
		return 0, err
	}
	o.mu.Lock()
	o.rows = o.rows[len(batch):]
	o.mu.Unlock()
	return len(batch), nil
}

type publishCall struct {
	topic string
	ids   []string // ce_id of each envelope, in order
	err   error
}

// fakePublisher records every call; the first failures calls fail.
type fakePublisher struct {
	mu       sync.Mutex
	calls    []publishCall
	failures int
}

func (p *fakePublisher) PublishEnvelopes(_ context.Context, topic string, envs ...events.Envelope) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := publishCall{topic: topic}
	for _, e := range envs {
		c.ids = append(c.ids, e.ID)
	}
	if p.failures > 0 {
		p.failures--
		c.err = errors.New("kafka: broker not available")
	}
	p.calls = append(p.calls, c)
	return c.err
}

func (p *fakePublisher) recorded() []publishCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.calls)
}

// delivered is the ce_ids acknowledged per topic, in order.
func (p *fakePublisher) delivered() map[string][]string {
	out := map[string][]string{}
	for _, c := range p.recorded() {
		if c.err == nil {
			out[c.topic] = append(out[c.topic], c.ids...)
		}
	}
	return out
}

func message(topic, jobID string, n int) jobstore.OutboxMessage {
	return jobstore.OutboxMessage{Topic: topic, Envelope: events.Envelope{
		ID: fmt.Sprintf("%s-%d", jobID, n), Source: events.Source, Type: events.TypeProgress, Key: jobID,
		Time: time.Now().UTC(), Data: []byte(`{}`),
	}}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitFor, what)
		}
		<-tick.C
	}
}

// start runs r until the test ends, then checks Run returned nil promptly.
func start(t *testing.T, r *relay.Relay) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v on cancel, want nil", err)
				}
			case <-time.After(waitFor):
				t.Error("Run did not return after its context was cancelled")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newRelay(t *testing.T, o relay.Outbox, p relay.Publisher) (*relay.Relay, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	r := relay.New(o, p, slog.New(slog.NewTextHandler(t.Output(), nil)), reg)
	r.Interval = time.Hour // only the first turn, a full batch or Notify may relay
	return r, reg
}

func TestRelayGroupsByTopicInOrder(t *testing.T) {
	t.Parallel()
	const req, ev = events.TopicRequested, events.TopicEvents
	msgs := []jobstore.OutboxMessage{
		message(req, "j1", 0), message(ev, "j1", 1), message(req, "j2", 0), message(ev, "j1", 2),
		message(ev, "j2", 1), message(req, "j3", 0),
	}
	tests := []struct {
		name      string
		batch     int
		wantCalls []publishCall
	}{
		{name: "one batch", batch: 100, wantCalls: []publishCall{
			{topic: req, ids: []string{"j1-0", "j2-0", "j3-0"}},
			{topic: ev, ids: []string{"j1-1", "j1-2", "j2-1"}},
		}},
		// Full batches are relayed back to back, without waiting for Interval.
		{name: "batches of 4", batch: 4, wantCalls: []publishCall{
			{topic: req, ids: []string{"j1-0", "j2-0"}},
			{topic: ev, ids: []string{"j1-1", "j1-2"}},
			{topic: ev, ids: []string{"j2-1"}},
			{topic: req, ids: []string{"j3-0"}},
		}},
		{name: "batches of 1", batch: 1, wantCalls: []publishCall{
			{topic: req, ids: []string{"j1-0"}}, {topic: ev, ids: []string{"j1-1"}}, {topic: req, ids: []string{"j2-0"}},
			{topic: ev, ids: []string{"j1-2"}}, {topic: ev, ids: []string{"j2-1"}}, {topic: req, ids: []string{"j3-0"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := &fakeOutbox{}
			o.add(msgs...)
			p := &fakePublisher{}
			r, reg := newRelay(t, o, p)
			r.Batch = tt.batch
			stop := start(t, r)
			eventually(t, "the outbox to drain", func() bool { return o.backlog() == 0 })
			stop()
			got := p.recorded()
			if len(got) != len(tt.wantCalls) {
				t.Fatalf("publish calls %+v, want %+v", got, tt.wantCalls)
			}
			for i := range got {
				if got[i].topic != tt.wantCalls[i].topic || !slices.Equal(got[i].ids, tt.wantCalls[i].ids) {
					t.Errorf("call %d = %+v, want %+v", i, got[i], tt.wantCalls[i])
				}
			}
			if n := counter(t, reg, "outbox_relayed_total"); n != float64(len(msgs)) {
				t.Errorf("outbox_relayed_total = %v, want %d", n, len(msgs))
			}
			if n := counter(t, reg, "outbox_relay_failures_total"); n != 0 {
				t.Errorf("outbox_relay_failures_total = %v, want 0", n)
			}
		})
	}
}

func TestRelayRetriesWithoutLoss(t *testing.T) {
	t.Parallel()
	o := &fakeOutbox{}
	var want []string
	for i := range 5 {
		m := message(events.TopicEvents, "j", i)
		o.add(m)
		want = append(want, m.Envelope.ID)
	}
	p := &fakePublisher{failures: 3} // backoff 100 ms, 200 ms, 400 ms
	r, reg := newRelay(t, o, p)
	start(t, r)
	eventually(t, "the outbox to drain", func() bool { return o.backlog() == 0 })

	calls := p.recorded()
	if len(calls) != 4 {
		t.Fatalf("%d publish calls, want 3 failures then 1 success: %+v", len(calls), calls)
	}
	for i, c := range calls {
		// Every retry offers the same rows again, oldest first: nothing skipped, nothing lost.
		if !slices.Equal(c.ids, want) {
			t.Errorf("call %d published %v, want %v", i, c.ids, want)
		}
	}
	if got := p.delivered()[events.TopicEvents]; !slices.Equal(got, want) {
		t.Errorf("delivered %v, want %v", got, want)
	}
	if n := counter(t, reg, "outbox_relay_failures_total"); n != 3 {
		t.Errorf("outbox_relay_failures_total = %v, want 3", n)
	}
	if n := counter(t, reg, "outbox_relayed_total"); n != 5 {
		t.Errorf("outbox_relayed_total = %v, want 5", n)
	}
}

func TestRelayBacksOffWhileFailing(t *testing.T) {
	t.Parallel()
	o := &fakeOutbox{}
	o.add(message(events.TopicRequested, "j", 0))
	p := &fakePublisher{failures: 1 << 30}
	r, reg := newRelay(t, o, p)
	// New rows keep being notified while the publisher fails: that must not shorten the backoff.
	kicking := make(chan struct{})
	kicked := make(chan struct{})
	go func() {
		defer close(kicked)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-kicking:
				return
			case <-tick.C:
				r.Notify()
			}
		}
	}()
	started := time.Now()
	stop := start(t, r)
	eventually(t, "four failed attempts", func() bool { return len(p.recorded()) >= 4 })
	elapsed := time.Since(started)
	close(kicking)
	<-kicked
	// 100 + 200 + 400 ms of backoff at least separate the first and the fourth attempt.
	if elapsed < 700*time.Millisecond {
		t.Errorf("4 attempts within %v: the relay does not back off", elapsed)
	}
	stop()
	if o.backlog() != 1 {
		t.Errorf("a failing publish lost the row")
	}
	if n := counter(t, reg, "outbox_relay_failures_total"); n < 4 {
		t.Errorf("outbox_relay_failures_total = %v, want at least 4", n)
	}
}

func TestNotifyWakesTheRelay(t *testing.T) {
	t.Parallel()
	o := &fakeOutbox{}
	p := &fakePublisher{}
	r, _ := newRelay(t, o, p) // Interval is one hour
	start(t, r)
	eventually(t, "the first (empty) turn", func() bool { return o.callCount() >= 1 })
	for i := range 3 {
		m := message(events.TopicRequested, fmt.Sprintf("job%d", i), 0)
		o.add(m)
		r.Notify()
		eventually(t, "the notified row to be relayed", func() bool {
			return slices.Contains(p.delivered()[events.TopicRequested], m.Envelope.ID)
		})
	}
	if got := p.delivered()[events.TopicRequested]; len(got) != 3 {
		t.Errorf("delivered %v", got)
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	t.Parallel()
	r, _ := newRelay(t, &fakeOutbox{}, &fakePublisher{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 1000 {
			r.Notify() // nobody runs the relay: the kick must not block
		}
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Fatal("Notify blocked without a running relay")
	}
}

func TestRunReturnsNilOnCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		failures int
		rows     int
	}{
		{name: "idle", rows: 0},
		{name: "backing off", rows: 1, failures: 1 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := &fakeOutbox{}
			for i := range tt.rows {
				o.add(message(events.TopicEvents, "j", i))
			}
			p := &fakePublisher{failures: tt.failures}
			r, _ := newRelay(t, o, p)
			stop := start(t, r)
			eventually(t, "the relay to run a turn", func() bool { return o.callCount() >= 1 })
			stop() // checks Run returns nil promptly
		})
	}
}
