package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/eventbus/eventbustest"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/pkg/relay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const waitFor = 20 * time.Second

// outage is the real publisher behind a switch: while down, every produce fails before
// reaching Kafka.
type outage struct {
	*eventbus.Publisher
	down     atomic.Bool
	attempts atomic.Int64
}

func (o *outage) ProduceEach(ctx context.Context, msgs []eventbus.Addressed) []error {
	o.attempts.Add(1)
	if o.down.Load() {
		errs := make([]error, len(msgs))
		for i := range errs {
			errs[i] = errors.New("kafka: unable to dial: connection refused")
		}
		return errs
	}
	return o.Publisher.ProduceEach(ctx, msgs)
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func request(filler string) events.ExportRequested {
	return events.ExportRequested{
		JobID: uuid.Must(uuid.NewV7()).String(), Entity: "products", Format: "csv", Fields: []string{"sku", "name"},
		Filters: map[string]any{"brand": "Acme" + filler}, RequestedBy: "alice",
		RequestedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
}

// TestRelay runs the relay on the real PostgreSQL and an in-process Kafka: an event accepted
// while Kafka is away waits in the outbox and arrives once it is back, as a CloudEvent keyed by
// its job id; an event Kafka can never take moves aside without holding back the ones behind
// it; the relay wakes on the outbox's notification, not its poll; the outbox's health is
// exported.
func TestRelay(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := pgdbtest.NewDatabase(t, "relaytest")
	if err := jobstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := jobstore.New(pool)
	brokers := eventbustest.NewCluster(t, 3, events.TopicRequested, events.TopicEvents)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	producer, err := eventbus.NewClient(eventbus.Config{Brokers: brokers, ClientID: "relay-test"}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	pub := &outage{Publisher: eventbus.NewPublisher(producer, log)}
	pub.down.Store(true)
	reg := prometheus.NewRegistry()
	rl := relay.New(store, pub, log, reg)
	rl.Interval = time.Hour // only a notification wakes it (and a failure's backoff)
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rl.Run(rctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	health := func() jobstore.OutboxStats {
		st, err := store.Outbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Kafka away: the event stays.
	first := request("")
	if _, err := store.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	eventually(t, "failed relay attempts", func() bool { return pub.attempts.Load() >= 2 })
	if st := health(); st.Backlog != 1 {
		t.Fatalf("backlog while Kafka is down = %d; want the event kept", st.Backlog)
	}
	pub.down.Store(false)
	eventually(t, "the outbox to drain", func() bool { return health().Backlog == 0 })

	// A poison event (4 MB, above the producer's 1 MB batch limit: Create refuses such an
	// event, so it is written as a row of an older version would have been) and a normal one
	// behind it.
	poison, normal := request(strings.Repeat("\u2028", 700_000)), request("")
	env, err := events.Wrap(poison)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pool.Exec(ctx, `INSERT INTO outbox (topic, key, ce_id, ce_type, ce_source, ce_time, data)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, events.TopicRequested, env.Key, env.ID, string(env.Type), env.Source, env.Time, []byte(env.Data)); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Create(ctx, poison); !errors.Is(err, jobstore.ErrEventTooLarge) {
		t.Fatalf("creating the poison job: %v, want ErrEventTooLarge", err)
	}
	if _, err := store.Create(ctx, normal); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the poison to move aside and the normal one to go", func() bool {
		st := health()
		return st.Backlog == 0 && st.Dead == 1
	})
	recs := eventbustest.ReadTopic(t, brokers, events.TopicRequested, 3, 2*time.Second)
	byKey := map[string]*kgo.Record{}
	for _, r := range recs {
		byKey[string(r.Key)] = r
	}
	if len(recs) != 2 || byKey[first.JobID] == nil || byKey[normal.JobID] == nil {
		t.Fatalf("%d records on %s, want the first and the normal one (not the poison)", len(recs), events.TopicRequested)
	}
	headers := map[string]string{}
	for _, h := range byKey[first.JobID].Headers {
		headers[h.Key] = string(h.Value)
	}
	for k, v := range map[string]string{
		"ce_specversion": "1.0", "ce_id": events.ID(first), "ce_source": events.Source,
		"ce_type": string(events.TypeRequested), "ce_time": first.RequestedAt.Format(time.RFC3339Nano),
		"content-type": "application/json",
	} {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, headers[k], v)
		}
	}
	if n := testutil.ToFloat64(counterOf(t, reg, "outbox_dead_lettered_total")); n != 1 {
		t.Errorf("outbox_dead_lettered_total = %v", n)
	}
	if got, err := testutil.GatherAndCount(reg, "outbox_backlog", "outbox_oldest_age_seconds", "outbox_dead"); err != nil || got != 3 {
		t.Errorf("outbox health metrics: %d, %v", got, err)
	}
}

func counterOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(mf.GetMetric()[0].GetCounter().GetValue())
			return c
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}
