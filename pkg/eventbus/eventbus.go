// Package eventbus is the franz-go glue of the platform: client options (slog logging, kprom
// metrics), a Publisher of events as CloudEvents binary-mode records, and a Consumer loop whose
// handlers see events.Envelope, never *kgo.Record.
//
// Delivery is at least once: a record's offset is marked for commit only after its handler
// returned nil (or the record was poison and logged), so a crash repeats work, never loses it.
// Handlers must therefore be idempotent; events carry a stable ce_id for that.
//
// Tracing (when pkg/telemetry enabled it): clients carry franz-go's kotel hooks, so a produced
// record has a "publish" span and the W3C traceparent header, and a consumed one a "receive"
// span; the consumer runs each handler under a "process" span continuing the record's trace
// (the traceparent header, through kotel's receive span, its child; else the event's
// ce_traceparent, the receive span then linked), so work a handler starts belongs to the trace
// of the request that caused the event.
package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"github.com/twmb/franz-go/plugin/kprom"
	"github.com/twmb/franz-go/plugin/kslog"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Config is what every Kafka client needs.
type Config struct {
	Brokers  []string
	ClientID string
}

// NewClient builds a franz-go client logging through log and exporting metrics to reg (nil: no
// metrics). Producing is idempotent with acks=all (franz-go's defaults, kept on purpose).
func NewClient(cfg Config, log *slog.Logger, reg prometheus.Registerer, opts ...kgo.Opt) (*kgo.Client, error) {
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("kafka: no brokers configured")
	}
	base := []kgo.Opt{
		kgo.SeedBrokers(cfg.Brokers...),
		kgo.WithLogger(kslog.New(log.With("component", "kafka"))),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	}
	if cfg.ClientID != "" {
		base = append(base, kgo.ClientID(cfg.ClientID))
	}
	if reg != nil {
		m := kprom.NewMetrics("kafka", kprom.Registerer(reg), kprom.WithClientLabel())
		base = append(base, kgo.WithHooks(m))
	}
	if telemetry.Enabled() {
		// Off, no hook at all: a record costs nothing more than before.
		tr := kotel.NewTracer(kotel.ClientID(cfg.ClientID))
		base = append(base, kgo.WithHooks(kotel.NewKotel(kotel.WithTracer(tr)).Hooks()...))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	return cl, nil
}

// ConsumerOpts are the options of a group consumer reading committed records from the start of
// topics it has never seen, committing only what handlers have finished.
//
// Session and rebalance timeouts are 10 s (franz-go's defaults are 45 s and 60 s): handlers
// never hold a record long (exports run outside the poll loop), and a member killed -9 then
// holds up the group's rebalance, and the shutdown of the members that wait on it, for 10 s.
func ConsumerOpts(group string, topics ...string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.SessionTimeout(10 * time.Second),
		kgo.RebalanceTimeout(10 * time.Second),
		kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.AutoCommitMarks(),
	}
}

// BroadcastOpts are the options of a group-less consumer: the client reads every partition of
// topics itself (committed records only), starting at the first record produced at or after
// from, and commits nothing. Each process using it sees every record, which suits a replica
// that must tell its own clients about every event (progress-hub); work that must be done once
// belongs to a group consumer (ConsumerOpts). Partitions added later are picked up at their
// start by the client's metadata refresh.
func BroadcastOpts(from time.Time, topics ...string) []kgo.Opt {
	return []kgo.Opt{
		kgo.ConsumeTopics(topics...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(from.UnixMilli())),
	}
}

// Record turns an envelope into a Kafka record for topic.
func Record(topic string, env events.Envelope) *kgo.Record {
	r := &kgo.Record{Topic: topic, Key: []byte(env.Key), Value: env.Data}
	for _, h := range env.Headers() {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
	}
	return r
}

// Envelope reads the CloudEvents envelope of a record.
func Envelope(r *kgo.Record) (events.Envelope, error) {
	hs := make([]events.Header, len(r.Headers))
	for i, h := range r.Headers {
		hs[i] = events.Header{Key: h.Key, Value: h.Value}
	}
	return events.Parse(r.Key, hs, r.Value)
}

// Publisher produces events: Publish waits for the broker's acknowledgement, Send does not.
type Publisher struct {
	cl  *kgo.Client
	log *slog.Logger
}

// NewPublisher wraps a client; log receives the failures of Send.
func NewPublisher(cl *kgo.Client, log *slog.Logger) *Publisher { return &Publisher{cl: cl, log: log} }

// Send produces ev without waiting, for events whose loss is harmless (progress): a failure is
// logged. Records of one key keep their order with those sent by Publish.
func (p *Publisher) Send(ctx context.Context, topic string, ev events.Event) {
	env, err := events.Wrap(ev)
	if err != nil {
		p.log.Warn("encoding event", "ce_type", ev.EventType(), "err", err)
		return
	}
	env = traced(ctx, env)
	p.cl.Produce(ctx, Record(topic, env), func(r *kgo.Record, err error) {
		switch {
		case err == nil:
		case errors.Is(err, context.Canceled):
			// The sender stopped (a cancelled job, a shutdown): the event no longer matters.
			p.log.Debug("event not sent: its sender stopped", "ce_type", env.Type, "job_id", env.Key)
		default:
			p.log.Warn("sending event failed", "ce_type", env.Type, "job_id", env.Key, "err", err)
		}
	})
}

// Publish wraps and produces evs to topic, returning once all are acknowledged.
func (p *Publisher) Publish(ctx context.Context, topic string, evs ...events.Event) error {
	envs := make([]events.Envelope, 0, len(evs))
	for _, ev := range evs {
		env, err := events.Wrap(ev)
		if err != nil {
			return err
		}
		envs = append(envs, env)
	}
	return p.PublishEnvelopes(ctx, topic, envs...)
}

// PublishEnvelopes produces already wrapped events to topic.
func (p *Publisher) PublishEnvelopes(ctx context.Context, topic string, envs ...events.Envelope) error {
	recs := make([]*kgo.Record, len(envs))
	for i, env := range envs {
		recs[i] = Record(topic, traced(ctx, env))
	}
	if err := p.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("producing %d record(s) to %s: %w", len(recs), topic, err)
	}
	return nil
}

// Ping checks that a broker answers.
func Ping(cl *kgo.Client) func(context.Context) error {
	return func(ctx context.Context) error { return cl.Ping(ctx) }
}

// ErrRejected marks a record the broker (or the client, before sending) refuses for good: too
// large, invalid, or for a topic that cannot exist. Retrying it cannot succeed.
var ErrRejected = errors.New("record rejected")

// traced gives an event produced directly (not relayed) the trace context of ctx as its
// ce_traceparent, unless it has one.
func traced(ctx context.Context, env events.Envelope) events.Envelope {
	if env.TraceParent == "" && telemetry.Enabled() {
		env.TraceParent, env.TraceState = telemetry.TraceParent(ctx)
	}
	return env
}

// Addressed is an envelope with its topic.
type Addressed struct {
	Topic    string
	Envelope events.Envelope
	// Span, when valid, is the span the record is produced under (the relay's publish span of
	// this event): kotel's publish span is its child and its traceparent header names that.
	Span trace.SpanContext
}

// ProduceEach produces every envelope (in order, each to its topic) and returns one error per
// envelope: nil once acknowledged, wrapping ErrRejected when no retry can help.
func (p *Publisher) ProduceEach(ctx context.Context, msgs []Addressed) []error {
	recs := make([]*kgo.Record, len(msgs))
	for i, m := range msgs {
		recs[i] = Record(m.Topic, m.Envelope)
		if m.Span.IsValid() {
			recs[i].Context = trace.ContextWithSpanContext(ctx, m.Span)
		}
	}
	// ProduceSync lists results in the order they complete, not the order given: partitions
	// finish independently and an oversized record fails at once. Map each back to its record.
	at := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		at[r] = i
	}
	errs := make([]error, len(msgs))
	for _, r := range p.cl.ProduceSync(ctx, recs...) {
		if r.Err == nil {
			continue
		}
		i := at[r.Record]
		if rejected(r.Err) {
			errs[i] = fmt.Errorf("%w: producing %s to %s: %w", ErrRejected, msgs[i].Envelope.Type, msgs[i].Topic, r.Err)
		} else {
			errs[i] = fmt.Errorf("producing %s to %s: %w", msgs[i].Envelope.Type, msgs[i].Topic, r.Err)
		}
	}
	return errs
}

// rejected reports whether a produce error is about the record itself, not the broker's health.
func rejected(err error) bool {
	for _, e := range []error{kerr.MessageTooLarge, kerr.RecordListTooLarge, kerr.InvalidRecord,
		kerr.CorruptMessage, kerr.InvalidTopicException, kerr.InvalidRequiredAcks} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// CloseGroup leaves the client's consumer group within budget and closes the client. A plain
// Close waits for the group to be left, which lasts as long as a rebalance in progress (tens
// of seconds when another member just died): a shutdown must not.
func CloseGroup(cl *kgo.Client, budget time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if err := cl.LeaveGroupContext(ctx); err != nil {
		// Past the budget: leave at once (a cancelled context is franz-go's "now"); the broker
		// drops the member at its session timeout.
		now, stop := context.WithCancel(context.Background())
		stop()
		_ = cl.LeaveGroupContext(now)
	}
	cl.Close()
}
