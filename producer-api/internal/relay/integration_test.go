package relay_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/eventbus/eventbustest"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/pgdb/pgdbtest"
	"github.com/productsmanager/exportplatform/producer-api/internal/relay"
)

// outage is the real publisher behind a switch: while down, every publish fails before
// reaching Kafka.
type outage struct {
	relay.Publisher
	down     atomic.Bool
	attempts atomic.Int64
}

func (o *outage) PublishEnvelopes(ctx context.Context, topic string, envs ...events.Envelope) error {
	o.attempts.Add(1)
	if o.down.Load() {
		return errors.New("kafka: unable to dial: connection refused")
	}
	return o.Publisher.PublishEnvelopes(ctx, topic, envs...)
}

// TestRelayToKafka: a job accepted while Kafka is unreachable stays in the outbox and reaches
// exports.requested, as a CloudEvent keyed by its job id, once Kafka is back.
func TestRelayToKafka(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	pool := pgdbtest.NewDatabase(t, "relaytest")
	if err := jobstore.Migrate(ctx, pool); err != nil {
		t.Fatal(err)
	}
	store := jobstore.New(pool)

	brokers := eventbustest.NewCluster(t, 3, events.TopicRequested)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	producer, err := eventbus.NewClient(eventbus.Config{Brokers: brokers, ClientID: "relay-test"}, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)

	pub := &outage{Publisher: eventbus.NewPublisher(producer, log)}
	pub.down.Store(true)
	rl, reg := newRelay(t, store, pub)
	stop := start(t, rl)

	req := events.ExportRequested{
		JobID: uuid.Must(uuid.NewV7()).String(), Entity: "products", Format: "csv", Fields: []string{"sku", "name"},
		Filters: map[string]any{"brand": "Acme"}, RequestedBy: "alice",
		RequestedAt: time.Now().UTC().Truncate(time.Microsecond),
	}
	if _, err := store.Create(ctx, req); err != nil {
		t.Fatal(err)
	}
	rl.Notify()
	eventually(t, "a failed relay attempt", func() bool { return counter(t, reg, "outbox_relay_failures_total") >= 2 })
	if n, err := store.OutboxBacklog(ctx); err != nil || n != 1 {
		t.Fatalf("backlog while Kafka is down = %d, %v; want the event kept", n, err)
	}

	pub.down.Store(false)
	eventually(t, "the outbox to drain", func() bool {
		n, err := store.OutboxBacklog(ctx)
		return err == nil && n == 0
	})
	stop()

	recs := eventbustest.ReadTopic(t, brokers, events.TopicRequested, 1, waitFor)
	if len(recs) != 1 {
		t.Fatalf("%d records on %s, want exactly 1", len(recs), events.TopicRequested)
	}
	rec := recs[0]
	if string(rec.Key) != req.JobID {
		t.Errorf("record key %q, want the job id %s", rec.Key, req.JobID)
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	wantHeaders := map[string]string{
		"ce_specversion": "1.0",
		"ce_id":          events.ID(req),
		"ce_source":      events.Source,
		"ce_type":        string(events.TypeRequested),
		"ce_time":        req.RequestedAt.Format(time.RFC3339Nano),
		"content-type":   "application/json",
	}
	for k, v := range wantHeaders {
		if headers[k] != v {
			t.Errorf("header %s = %q, want %q", k, headers[k], v)
		}
	}
	env, err := eventbus.Envelope(rec)
	if err != nil {
		t.Fatal(err)
	}
	back, err := events.Decode[events.ExportRequested](env)
	if err != nil || back.JobID != req.JobID || back.Filters["brand"] != "Acme" || len(back.Fields) != 2 {
		t.Errorf("record decodes to %+v, %v", back, err)
	}
	if pub.attempts.Load() < 3 {
		t.Errorf("%d publish attempts, want the failures and then the success", pub.attempts.Load())
	}
}
