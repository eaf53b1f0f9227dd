package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/eventbus/eventbustest"
	"github.com/productsmanager/exportplatform/pkg/events"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 20 * time.Second

var now = time.Date(2026, 3, 1, 10, 0, 0, 123456789, time.UTC)

func TestRecordEnvelopeRoundTrip(t *testing.T) {
	t.Parallel()
	sched := "sched-1"
	tests := []struct {
		name string
		ev   events.Event
	}{
		{"requested", events.ExportRequested{JobID: "job-1", Entity: "products", Format: "csv", Fields: []string{"sku"},
			Filters: map[string]any{"brand": "Acme"}, RequestedBy: "alice", ScheduleID: &sched, RequestedAt: now}},
		{"started", events.ExportStarted{JobID: "job-1", Attempt: 2, RowsTotal: 10, StartedAt: now}},
		{"progress", events.ExportProgress{JobID: "job-1", Attempt: 2, RowsDone: 5, RowsTotal: 10, Progress: 50, At: now}},
		{"completed", events.ExportCompleted{JobID: "job-1", Rows: 10, Object: events.Object{Key: "k", SHA256: "ab"}, FinishedAt: now}},
		{"failed", events.ExportFailed{JobID: "job-1", Code: "export_failed", Message: "boom", FailedAt: now}},
		{"cancelled", events.ExportCancelled{JobID: "job-1", CancelledAt: now.In(time.FixedZone("CET", 3600))}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env, err := events.Wrap(tt.ev)
			if err != nil {
				t.Fatal(err)
			}
			rec := eventbus.Record(events.TopicEvents, env)
			if rec.Topic != events.TopicEvents || string(rec.Key) != "job-1" || string(rec.Value) != string(env.Data) {
				t.Errorf("record topic %q key %q value %s", rec.Topic, rec.Key, rec.Value)
			}
			var got []string
			for _, h := range rec.Headers {
				got = append(got, h.Key+"="+string(h.Value))
			}
			want := []string{
				"ce_specversion=1.0",
				"ce_id=" + events.ID(tt.ev),
				"ce_source=" + events.Source,
				"ce_type=" + string(tt.ev.EventType()),
				"ce_time=2026-03-01T10:00:00.123456789Z",
				"content-type=application/json",
			}
			if !slices.Equal(got, want) {
				t.Errorf("headers %q\nwant    %q", got, want)
			}
			back, err := eventbus.Envelope(rec)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, env) || !back.Time.Equal(now) {
				t.Errorf("round trip %+v\nwant       %+v", back, env)
			}
			ev, err := events.DecodeAny(back)
			if err != nil || ev.EventType() != tt.ev.EventType() || events.ID(ev) != env.ID {
				t.Errorf("decoded %+v, %v", ev, err)
			}
		})
	}
}

func TestEnvelopeRejectsNonCloudEvents(t *testing.T) {
	t.Parallel()
	env, err := events.Wrap(events.ExportStarted{JobID: "j", Attempt: 1, StartedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	good := eventbus.Record("t", env)
	without := func(key string) *kgo.Record {
		r := *good
		r.Headers = slices.DeleteFunc(slices.Clone(r.Headers), func(h kgo.RecordHeader) bool { return h.Key == key })
		return &r
	}
	with := func(key, value string) *kgo.Record {
		r := *good
		r.Headers = slices.Clone(r.Headers)
		for i := range r.Headers {
			if r.Headers[i].Key == key {
				r.Headers[i].Value = []byte(value)
			}
		}
		return &r
	}
	tests := []struct {
		name string
		rec  *kgo.Record
	}{
		{"no headers", &kgo.Record{Key: []byte("j"), Value: []byte(`{}`)}},
		{"no specversion", without("ce_specversion")},
		{"specversion 0.3", with("ce_specversion", "0.3")},
		{"no id", without("ce_id")},
		{"no type", without("ce_type")},
		{"no source", without("ce_source")},
		{"bad time", with("ce_time", "yesterday")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := eventbus.Envelope(tt.rec); !errors.Is(err, events.ErrNotCloudEvent) {
				t.Errorf("Envelope = %v, want ErrNotCloudEvent", err)
			}
		})
	}
}

// bus is one kfake cluster with a topic, a publisher, and consumers of one group.
type bus struct {
	brokers []string
	topic   string
	group   string
	log     *slog.Logger
	pub     *eventbus.Publisher
}

func newBus(t *testing.T, partitions int32) *bus {
	t.Helper()
	b := &bus{topic: eventbustest.Name("eventbus"), group: eventbustest.Name("group"),
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))}
	b.brokers = eventbustest.NewCluster(t, partitions, b.topic)
	cl, err := eventbus.NewClient(eventbus.Config{Brokers: b.brokers, ClientID: "eventbus-test"}, b.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	b.pub = eventbus.NewPublisher(cl, b.log)
	return b
}

// consume runs a group consumer with h until stop is called (or the test ends); stop checks
// Run returned nil and closes the client, leaving the group.
func (b *bus) consume(t *testing.T, h eventbus.Handler) (stop func()) {
	t.Helper()
	cl, err := eventbus.NewClient(eventbus.Config{Brokers: b.brokers, ClientID: "consumer"}, b.log, nil,
		eventbus.ConsumerOpts(b.group, b.topic)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eventbus.NewConsumer(cl, b.log, h).Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run = %v, want nil on cancel", err)
				}
			case <-time.After(waitFor):
				t.Error("Run did not return after cancel")
			}
			cl.Close()
		})
	}
	t.Cleanup(stop)
	return stop
}

// committed is the group's committed offset of partition 0 (-1: none).
func (b *bus) committed(t *testing.T) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	offs, err := kadm.NewClient(cl).FetchOffsets(t.Context(), b.group)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := offs.Lookup(b.topic, 0)
	if !ok {
		return -1
	}
	if o.Err != nil {
		t.Fatal(o.Err)
	}
	return o.At
}

// recorder is a handler's log: the ce_ids it was called with, in order.
type recorder struct {
	mu   sync.Mutex
	seen []events.Envelope
}

func (r *recorder) add(env events.Envelope) {
	r.mu.Lock()
	r.seen = append(r.seen, env)
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) ids() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.seen {
		out = append(out, e.ID)
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func progress(job string, n int) events.ExportProgress {
	return events.ExportProgress{JobID: job, Attempt: 1, RowsDone: int64(n), RowsTotal: 100, Progress: float64(n), At: now}
}

func TestPublishConsumeInOrderPerKey(t *testing.T) {
	t.Parallel()
	b := newBus(t, 3)
	ctx := t.Context()
	jobs := []string{"job-a", "job-b", "job-c", "job-d"}
	want := map[string][]string{}
	for n := 1; n <= 10; n++ {
		var batch []events.Event
		for _, j := range jobs {
			ev := progress(j, n)
			batch = append(batch, ev)
			want[j] = append(want[j], events.ID(ev))
		}
		if err := b.pub.Publish(ctx, b.topic, batch...); err != nil {
			t.Fatal(err)
		}
	}
	// Send (no wait) keeps its order with a later Publish of the same key.
	for n := 11; n <= 15; n++ {
		ev := progress("job-a", n)
		b.pub.Send(ctx, b.topic, ev)
		want["job-a"] = append(want["job-a"], events.ID(ev))
	}
	done := events.ExportCompleted{JobID: "job-a", Rows: 100, FinishedAt: now}
	if err := b.pub.Publish(ctx, b.topic, done); err != nil {
		t.Fatal(err)
	}
	want["job-a"] = append(want["job-a"], events.ID(done))

	rec := &recorder{}
	b.consume(t, func(_ context.Context, env events.Envelope) error {
		if _, err := events.DecodeAny(env); err != nil {
			return eventbus.Permanent(err)
		}
		rec.add(env)
		return nil
	})
	eventually(t, "every event", func() bool { return rec.count() >= 46 })
	got := map[string][]string{}
	rec.mu.Lock()
	for _, e := range rec.seen {
		got[e.Key] = append(got[e.Key], e.ID)
	}
	rec.mu.Unlock()
	for _, j := range jobs {
		if !slices.Equal(got[j], want[j]) {
			t.Errorf("%s: got %d events in order %v\nwant %d in order %v", j, len(got[j]), got[j], len(want[j]), want[j])
		}
	}
}

// publishN publishes n progress events of job-x and returns their ce_ids in order.
func publishN(t *testing.T, b *bus, n int) []string {
	t.Helper()
	var ids []string
	var evs []events.Event
	for i := range n {
		ev := progress("job-x", i)
		evs = append(evs, ev)
		ids = append(ids, events.ID(ev))
	}
	if err := b.pub.Publish(t.Context(), b.topic, evs...); err != nil {
		t.Fatal(err)
	}
	return ids
}

func TestConsumerFailures(t *testing.T) {
	t.Parallel()
	errTransient := errors.New("database unreachable")
	tests := []struct {
		name string
		// raw, when set, is produced first: a record that is not a CloudEvent.
		raw bool
		// first is what the handler does the first time it sees event 0.
		first func() error
		// want is the sequence of events (by index) the handler sees.
		want []int
	}{
		{name: "error is retried", first: func() error { return errTransient }, want: []int{0, 0, 1, 2}},
		{name: "panic is recovered and retried", first: func() error { panic("nil map") }, want: []int{0, 0, 1, 2}},
		{name: "permanent error skips", first: func() error { return eventbus.Permanent(errors.New("bad data")) }, want: []int{0, 1, 2}},
		{name: "wrapped permanent error skips", first: func() error {
			return fmt.Errorf("handling: %w", eventbus.Permanent(errors.New("bad data")))
		}, want: []int{0, 1, 2}},
		{name: "non-CloudEvent record is skipped", raw: true, first: func() error { return nil }, want: []int{0, 1, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBus(t, 1)
			offset := int64(0)
			if tt.raw {
				cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...))
				if err != nil {
					t.Fatal(err)
				}
				err = cl.ProduceSync(t.Context(), &kgo.Record{Topic: b.topic, Key: []byte("job-x"), Value: []byte(`{"hello":1}`)}).FirstErr()
				cl.Close()
				if err != nil {
					t.Fatal(err)
				}
				offset = 1
			}
			ids := publishN(t, b, 3)
			rec := &recorder{}
			var once sync.Once
			stop := b.consume(t, func(_ context.Context, env events.Envelope) (err error) {
				rec.add(env)
				if env.ID == ids[0] {
					once.Do(func() { err = tt.first() })
				}
				return err
			})
			eventually(t, "the last event to be handled", func() bool { return slices.Contains(rec.ids(), ids[2]) })
			var want []string
			for _, i := range tt.want {
				want = append(want, ids[i])
			}
			if got := rec.ids(); !slices.Equal(got, want) {
				t.Errorf("handled %v\nwant    %v", got, want)
			}
			stop()
			if got := b.committed(t); got != offset+3 {
				t.Errorf("committed offset %d, want %d (every record handled or skipped)", got, offset+3)
			}
			// Nothing handled is delivered again to the group.
			next := progress("job-x", 99)
			if err := b.pub.Publish(t.Context(), b.topic, next); err != nil {
				t.Fatal(err)
			}
			more := []string{events.ID(next)}
			rec2 := &recorder{}
			b.consume(t, func(_ context.Context, env events.Envelope) error { rec2.add(env); return nil })
			eventually(t, "the new event", func() bool { return rec2.count() >= 1 })
			if got := rec2.ids(); !slices.Equal(got, more) {
				t.Errorf("restarted group handled %v, want only the new %v", got, more)
			}
		})
	}
}

func TestOffsetsCommittedOnlyWhenHandled(t *testing.T) {
	t.Parallel()
	b := newBus(t, 1)
	ids := publishN(t, b, 5)
	rec := &recorder{}
	blocked := make(chan struct{})
	stop := b.consume(t, func(ctx context.Context, env events.Envelope) error {
		rec.add(env)
		if env.ID == ids[2] {
			close(blocked)
			<-ctx.Done() // a long job, interrupted by shutdown
			return ctx.Err()
		}
		return nil
	})
	select {
	case <-blocked:
	case <-time.After(waitFor):
		t.Fatal("record 2 never reached the handler")
	}
	stop()
	if got := rec.ids(); !slices.Equal(got, ids[:3]) {
		t.Errorf("handled %v, want %v", got, ids[:3])
	}
	if got := b.committed(t); got != 2 {
		t.Fatalf("committed offset %d, want 2: the interrupted record must not be committed", got)
	}

	// A new member of the group starts again at the interrupted record.
	rec2 := &recorder{}
	b.consume(t, func(_ context.Context, env events.Envelope) error { rec2.add(env); return nil })
	eventually(t, "the remaining records", func() bool { return rec2.count() >= 3 })
	if got := rec2.ids(); !slices.Equal(got, ids[2:]) {
		t.Errorf("after restart handled %v, want %v", got, ids[2:])
	}
}

func TestPublishFailsWhenKafkaIsAway(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	// A broker address nobody listens on, and a short budget.
	cl, err := eventbus.NewClient(eventbus.Config{Brokers: []string{"127.0.0.1:1"}}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err = eventbus.NewPublisher(cl, log).Publish(ctx, "topic", progress("j", 1))
	if err == nil {
		t.Fatal("Publish to an unreachable broker returned nil")
	}
	if _, err := eventbus.NewClient(eventbus.Config{}, log, nil); err == nil {
		t.Error("NewClient without brokers returned no error")
	}
}

// TestDeadLetter: with a dead-letter topic, a record that is not a CloudEvent, one its handler
// calls permanent and one still failing after its tries all go there with their reason, are
// committed, and the records behind them are handled.
func TestDeadLetter(t *testing.T) {
	t.Parallel()
	b := &bus{topic: eventbustest.Name("eventbus"), group: eventbustest.Name("group"),
		log: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))}
	b.brokers = eventbustest.NewCluster(t, 1, b.topic, events.TopicDeadLetter)
	pcl, err := eventbus.NewClient(eventbus.Config{Brokers: b.brokers}, b.log, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	b.pub = eventbus.NewPublisher(pcl, b.log)
	if err := pcl.ProduceSync(t.Context(), &kgo.Record{Topic: b.topic, Key: []byte("job-x"), Value: []byte(`{"hello":1}`)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ids := publishN(t, b, 3) // 0: permanent, 1: always failing, 2: fine
	cl, err := eventbus.NewClient(eventbus.Config{Brokers: b.brokers}, b.log, nil, eventbus.ConsumerOpts(b.group, b.topic)...)
	if err != nil {
		t.Fatal(err)
	}
	c := eventbus.NewConsumer(cl, b.log, func(_ context.Context, env events.Envelope) error {
		switch env.ID {
		case ids[0]:
			return eventbus.Permanent(errors.New("bad data"))
		case ids[1]:
			return errors.New("still down")
		}
		return nil
	}).WithDeadLetter(b.group)
	c.MaxAttempts = 3
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	eventually(t, "every record committed", func() bool {
		offs, err := kadm.NewClient(pcl).FetchOffsets(t.Context(), b.group)
		o, ok := offs.Lookup(b.topic, 0)
		return err == nil && ok && o.At == 4
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	cl.Close()

	recs := eventbustest.ReadTopic(t, b.brokers, events.TopicDeadLetter, 3, waitFor)
	var reasons []string
	for _, r := range recs {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		if h["dlq_topic"] != b.topic || h["dlq_group"] != b.group || h["dlq_offset"] == "" {
			t.Errorf("dead-letter headers %v", h)
		}
		reasons = append(reasons, h["dlq_reason"])
	}
	want := []string{"not a CloudEvent", "bad data", "failed 3 times: still down"}
	if len(reasons) != len(want) {
		t.Fatalf("dead-lettered %q, want %d records", reasons, len(want))
	}
	for i := range want {
		if !strings.Contains(reasons[i], want[i]) {
			t.Errorf("reason %d = %q, want it to say %q", i, reasons[i], want[i])
		}
	}
}

// TestProduceEachErrorsBelongToTheirRecords: one error per envelope, at its own index. The
// oversized record, last in the batch, fails before the others are acknowledged; a relay that
// read the errors in completion order deleted it as relayed and kept an acknowledged one.
func TestProduceEachErrorsBelongToTheirRecords(t *testing.T) {
	t.Parallel()
	b := newBus(t, 3)
	var msgs []eventbus.Addressed
	for i := range 4 {
		env, err := events.Wrap(progress(fmt.Sprintf("job-%d", i), i))
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, eventbus.Addressed{Topic: b.topic, Envelope: env})
	}
	msgs[3].Envelope.Data = []byte(`{"pad":"` + strings.Repeat("x", 2<<20) + `"}`)
	errs := b.pub.ProduceEach(t.Context(), msgs)
	if len(errs) != len(msgs) {
		t.Fatalf("%d errors for %d envelopes", len(errs), len(msgs))
	}
	for i, err := range errs[:3] {
		if err != nil {
			t.Errorf("envelope %d (acknowledged) got error %v", i, err)
		}
	}
	if !errors.Is(errs[3], eventbus.ErrRejected) {
		t.Errorf("oversized envelope: error %v, want ErrRejected", errs[3])
	}
}
