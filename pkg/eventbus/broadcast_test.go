package eventbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
)

// broadcast runs a group-less consumer from `from` with h until the test ends.
func (b *bus) broadcast(t *testing.T, from time.Time, h eventbus.Handler) {
	t.Helper()
	cl, err := eventbus.NewClient(eventbus.Config{Brokers: b.brokers, ClientID: "broadcast"}, b.log, nil,
		eventbus.BroadcastOpts(from, b.topic)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eventbus.NewConsumer(cl, b.log, h).Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v, want nil on cancel", err)
		}
		cl.Close()
	})
}

// TestBroadcastEveryConsumerSeesEveryRecord: two group-less consumers (two hub replicas) each
// get every record of every partition from their start time on (records produced before it
// are not seen; records produced after it, before or after the consumer began, are).
func TestBroadcastEveryConsumerSeesEveryRecord(t *testing.T) {
	t.Parallel()
	b := newBus(t, 4)
	before := publishN(t, b, 5)
	time.Sleep(5 * time.Millisecond) // not a wait: record timestamps are milliseconds, keep the batches apart
	from := time.Now()
	publish := func(first, n int) []string {
		var ids []string
		for i := first; i < first+n; i++ {
			env, err := events.Wrap(progress("job-"+string(rune('a'+i%7)), i))
			if err != nil {
				t.Fatal(err)
			}
			if err := b.pub.PublishEnvelopes(t.Context(), b.topic, env); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, env.ID)
		}
		return ids
	}
	// Produced after from but before the consumers begin: a replica starting late catches up.
	want := publish(0, 20)
	var r1, r2 recorder
	b.broadcast(t, from, func(_ context.Context, env events.Envelope) error { r1.add(env); return nil })
	b.broadcast(t, from, func(_ context.Context, env events.Envelope) error { r2.add(env); return nil })
	eventually(t, "both consumers saw the first records", func() bool { return r1.count() >= 20 && r2.count() >= 20 })
	want = append(want, publish(20, 20)...)
	eventually(t, "both consumers saw every record", func() bool { return r1.count() >= 40 && r2.count() >= 40 })
	for name, r := range map[string]*recorder{"first": &r1, "second": &r2} {
		got := map[string]bool{}
		for _, id := range r.ids() {
			got[id] = true
		}
		for _, id := range want {
			if !got[id] {
				t.Errorf("%s consumer missed %s", name, id)
			}
		}
		for _, id := range before {
			if got[id] {
				t.Errorf("%s consumer saw %s, produced before its start", name, id)
			}
		}
	}
}
