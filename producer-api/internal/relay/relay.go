// Package relay moves events from the outbox table to Kafka. It runs in every producer-api
// instance; rows are locked with SKIP LOCKED so instances share the work, and a row is deleted
// only after Kafka acknowledged it, so nothing accepted is ever lost while Kafka is down.
package relay

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Outbox is the store side.
type Outbox interface {
	RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []jobstore.OutboxMessage) error) (int, error)
}

// Publisher is the Kafka side.
type Publisher interface {
	PublishEnvelopes(ctx context.Context, topic string, envs ...events.Envelope) error
}

// Relay is the loop.
type Relay struct {
	outbox   Outbox
	pub      Publisher
	log      *slog.Logger
	kick     chan struct{}
	relayed  prometheus.Counter
	failures prometheus.Counter
	// Interval is the idle poll period; Notify wakes the loop sooner.
	Interval time.Duration
	// Batch is how many rows one transaction relays.
	Batch int
}

// New builds a relay registering its metrics on reg.
func New(o Outbox, p Publisher, log *slog.Logger, reg prometheus.Registerer) *Relay {
	r := &Relay{
		outbox: o, pub: p, log: log, kick: make(chan struct{}, 1),
		relayed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_relayed_total", Help: "Events relayed from the outbox to Kafka."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_relay_failures_total", Help: "Failed relay attempts."}),
		Interval: 500 * time.Millisecond,
		Batch:    100,
	}
	if reg != nil {
		reg.MustRegister(r.relayed, r.failures)
	}
	return r
}

// Notify wakes the relay (a new row was committed). It never blocks.
func (r *Relay) Notify() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run relays until ctx is cancelled, backing off (up to 5 s) while Kafka or the database fail.
func (r *Relay) Run(ctx context.Context) error {
	backoff := time.Duration(0)
	for {
		n, err := r.outbox.RelayOutbox(ctx, r.Batch, r.publish)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			r.failures.Inc()
			backoff = min(max(2*backoff, 100*time.Millisecond), 5*time.Second)
			r.log.Warn("relaying outbox failed; will retry", "retry_in", backoff.String(), "err", err)
		case n == r.Batch:
			backoff = 0
			continue // more waiting
		default:
			if backoff > 0 {
				r.log.Info("outbox relay recovered")
			}
			backoff = 0
		}
		wait := r.Interval
		if backoff > 0 {
			wait = backoff
		}
		select {
		case <-ctx.Done():
			return nil
		case <-r.kick:
			if backoff > 0 {
				// a failing dependency: keep the backoff rather than hammering it
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(backoff):
				}
			}
		case <-time.After(wait):
		}
	}
}

func (r *Relay) publish(ctx context.Context, msgs []jobstore.OutboxMessage) error {
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	byTopic := map[string][]events.Envelope{}
	var order []string
	for _, m := range msgs {
		if _, ok := byTopic[m.Topic]; !ok {
			order = append(order, m.Topic)
		}
		byTopic[m.Topic] = append(byTopic[m.Topic], m.Envelope)
	}
	for _, topic := range order {
		if err := r.pub.PublishEnvelopes(pctx, topic, byTopic[topic]...); err != nil {
			return err
		}
	}
	r.relayed.Add(float64(len(msgs)))
	return nil
}
