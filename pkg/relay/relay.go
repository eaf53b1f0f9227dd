// Package relay moves events from the outbox table to Kafka. Every service that writes the
// outbox runs one (producer-api, exporter, scheduler); an advisory lock lets one relay at a time
// work, so each job's events reach Kafka in the order their changes were committed, and any live
// process keeps the outbox moving. A relay wakes on the outbox's notifications (LISTEN), polls
// as a fallback, and deletes a row only once Kafka acknowledged it. A row Kafka refuses for good
// (too large) is moved aside with its reason, never left blocking the rows behind it.
package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/backoff"
	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// retries is the relay's backoff while Kafka or the database fail.
var retries = backoff.Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second}

// Outbox is the store side; *jobstore.Store implements it.
type Outbox interface {
	RelayOutbox(ctx context.Context, limit int, publish func(context.Context, []jobstore.OutboxMessage) []error) (jobstore.RelayResult, error)
	Outbox(ctx context.Context) (jobstore.OutboxStats, error)
	Listen(ctx context.Context, wake func()) error
}

// Publisher is the Kafka side; *eventbus.Publisher implements it.
type Publisher interface {
	ProduceEach(ctx context.Context, msgs []eventbus.Addressed) []error
}

// Relay is the loop.
type Relay struct {
	outbox   Outbox
	pub      Publisher
	log      *slog.Logger
	kick     chan struct{}
	relayed  prometheus.Counter
	dead     prometheus.Counter
	failures prometheus.Counter
	// Interval is the poll period when no notification comes (a lost LISTEN connection).
	Interval time.Duration
	// Batch is how many rows one transaction relays.
	Batch int
	// Timeout bounds one batch's produce.
	Timeout time.Duration
}

// New builds a relay registering its metrics on reg (nil: none).
func New(o Outbox, p Publisher, log *slog.Logger, reg prometheus.Registerer) *Relay {
	r := &Relay{
		outbox: o, pub: p, log: log, kick: make(chan struct{}, 1),
		relayed:  prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_relayed_total", Help: "Events relayed from the outbox to Kafka by this process."}),
		dead:     prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_dead_lettered_total", Help: "Events Kafka refused for good, moved to outbox_dead by this process."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "outbox_relay_failures_total", Help: "Failed relay attempts."}),
		Interval: time.Second,
		Batch:    500,
		Timeout:  10 * time.Second,
	}
	if reg != nil {
		reg.MustRegister(r.relayed, r.dead, r.failures, &health{outbox: o})
	}
	return r
}

// Notify wakes the relay (a row was committed). It never blocks.
func (r *Relay) Notify() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Run relays until ctx is cancelled, backing off (up to 5 s) while Kafka or the database fail.
func (r *Relay) Run(ctx context.Context) error {
	lctx, stop := context.WithCancel(ctx)
	defer stop()
	go r.listen(lctx)
	failures := 0
	var delay time.Duration
	for {
		res, err := r.outbox.RelayOutbox(ctx, r.Batch, r.publish)
		wait := r.Interval
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil || res.Failed > 0:
			r.failures.Inc()
			failures++
			delay = retries.Delay(failures)
			wait = delay
			r.log.Warn("relaying outbox failed; will retry", "retry_in", delay.String(), "failed", res.Failed, "err", err)
		case res.Busy:
			// Another process relays; it will see the rows. Look again soon in case it stops.
			failures, delay = 0, 0
		case res.Relayed+res.Dead == r.Batch:
			failures, delay = 0, 0
			continue // more waiting
		default:
			if failures > 0 {
				r.log.Info("outbox relay recovered")
			}
			failures, delay = 0, 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-r.kick:
			t.Stop()
			if delay > 0 { // a failing dependency: keep the backoff rather than hammer it
				if !backoff.Sleep(ctx, delay) {
					return nil
				}
			}
		case <-t.C:
		}
	}
}

// listen keeps a LISTEN connection that wakes the relay on every outbox commit, reconnecting
// with a backoff; meanwhile the relay polls every Interval.
func (r *Relay) listen(ctx context.Context) {
	for failures := 1; ctx.Err() == nil; failures++ {
		err := r.outbox.Listen(ctx, r.Notify)
		if ctx.Err() != nil {
			return
		}
		d := retries.Delay(failures)
		r.log.Warn("outbox notifications lost; polling meanwhile", "retry_in", d.String(), "err", err)
		r.Notify()
		if !backoff.Sleep(ctx, d) {
			return
		}
	}
}

func (r *Relay) publish(ctx context.Context, msgs []jobstore.OutboxMessage) []error {
	pctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	out := make([]eventbus.Addressed, len(msgs))
	spans := r.startSpans(ctx, msgs)
	for i, m := range msgs {
		out[i] = eventbus.Addressed{Topic: m.Topic, Envelope: m.Envelope}
		if spans != nil {
			out[i].Span = spans[i].SpanContext()
		}
	}
	errs := r.pub.ProduceEach(pctx, out)
	defer func() {
		for i, span := range spans {
			if i < len(errs) && errs[i] != nil {
				span.SetStatus(codes.Error, errs[i].Error())
			}
			span.End()
		}
	}()
	for i, err := range errs {
		switch {
		case err == nil:
			r.relayed.Inc()
		case isRejected(err):
			r.dead.Inc()
			r.log.Error("Kafka refuses an event for good; moved to outbox_dead", "ce_id", msgs[i].Envelope.ID,
				"ce_type", msgs[i].Envelope.Type, "job_id", msgs[i].Envelope.Key, "size_bytes", len(msgs[i].Envelope.Data), "err", err)
			errs[i] = fmt.Errorf("%w: %w", jobstore.ErrUndeliverable, err)
		}
	}
	return errs
}

// startSpans starts one span per event (when tracing is on), each a child of the trace
// context its outbox row stored: the relay's publish continues the trace of the change that
// wrote the event (a POST, a job's progress), whichever process relays it and however late.
func (r *Relay) startSpans(ctx context.Context, msgs []jobstore.OutboxMessage) []trace.Span {
	if !telemetry.Enabled() {
		return nil
	}
	tr := telemetry.Tracer("relay")
	spans := make([]trace.Span, len(msgs))
	for i, m := range msgs {
		parent := telemetry.ContextWithTraceParent(ctx, m.Envelope.TraceParent, m.Envelope.TraceState)
		_, spans[i] = tr.Start(parent, "outbox relay "+string(m.Envelope.Type), trace.WithSpanKind(trace.SpanKindInternal),
			trace.WithAttributes(
				attribute.String("messaging.destination.name", m.Topic),
				attribute.String("cloudevents.event_id", m.Envelope.ID),
				attribute.String("cloudevents.event_type", string(m.Envelope.Type)),
				attribute.String("job_id", m.Envelope.Key),
				attribute.Int("outbox.batch_size", len(msgs)),
			))
	}
	return spans
}

// health exports the outbox's backlog, the age of its oldest row and the rows moved aside,
// read from the database at each scrape.
type health struct{ outbox Outbox }

var (
	backlogDesc = prometheus.NewDesc("outbox_backlog", "Events in the outbox not yet relayed to Kafka.", nil, nil)
	oldestDesc  = prometheus.NewDesc("outbox_oldest_age_seconds", "Age of the oldest event waiting in the outbox (0 when empty).", nil, nil)
	deadDesc    = prometheus.NewDesc("outbox_dead", "Events Kafka refused for good, kept in outbox_dead.", nil, nil)
)

func (h *health) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- oldestDesc
	ch <- deadDesc
}

func (h *health) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := h.outbox.Outbox(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(backlogDesc, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(st.Backlog))
	ch <- prometheus.MustNewConstMetric(oldestDesc, prometheus.GaugeValue, st.Oldest.Seconds())
	ch <- prometheus.MustNewConstMetric(deadDesc, prometheus.GaugeValue, float64(st.Dead))
}

func isRejected(err error) bool { return errors.Is(err, eventbus.ErrRejected) }

// Flush relays what the outbox holds now (for a process about to exit), until it is empty,
// another relay holds the lock, a publish fails or ctx ends.
func (r *Relay) Flush(ctx context.Context) error {
	for {
		res, err := r.outbox.RelayOutbox(ctx, r.Batch, r.publish)
		if err != nil {
			return err
		}
		if res.Busy || res.Failed > 0 || res.Relayed+res.Dead < r.Batch {
			return nil
		}
	}
}
