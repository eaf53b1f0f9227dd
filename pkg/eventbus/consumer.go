package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/backoff"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Handler handles one event. It returns nil once the work is safe, a Permanent error to skip a
// record that can never succeed, or any other error to be retried.
type Handler func(ctx context.Context, env events.Envelope) error

// ErrPermanent marks an error that retrying cannot fix.
var ErrPermanent = errors.New("permanent failure")

// Permanent wraps err as permanent.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Consumer is one poll loop over a client built with ConsumerOpts (a group: offsets are
// committed as handled) or BroadcastOpts (no group: nothing to commit).
//
// A record that is not a CloudEvent, whose handler says it can never succeed (Permanent), or
// that still fails after MaxAttempts tries goes to the dead-letter topic (when DeadLetter is
// set: group consumers) with the reason in headers, and the loop moves on; it is committed only
// once the dead-letter topic has it.
type Consumer struct {
	cl      *kgo.Client
	handle  Handler
	log     *slog.Logger
	backoff Backoff
	// DeadLetter is the topic of the records given up on ("" : they are logged and skipped).
	DeadLetter string
	// Group names the consumer in dead-letter headers.
	Group string
	// MaxAttempts bounds the tries of one record (0: until the context ends).
	MaxAttempts int
}

// Backoff is the retry schedule of handlers (pkg/backoff's, the platform's one).
type Backoff = backoff.Backoff

// WithDeadLetter makes c, a consumer of group, send the records it gives up on to
// events.TopicDeadLetter, and give up on a record after 30 tries (about four minutes of
// backoff): a poison record then costs its partition minutes, not forever.
func (c *Consumer) WithDeadLetter(group string) *Consumer {
	c.DeadLetter, c.Group, c.MaxAttempts = events.TopicDeadLetter, group, 30
	return c
}

// NewConsumer builds a consumer; handlers retry with a 100 ms..10 s backoff.
func NewConsumer(cl *kgo.Client, log *slog.Logger, h Handler) *Consumer {
	return &Consumer{cl: cl, handle: h, log: log, backoff: Backoff{Initial: 100 * time.Millisecond, Max: 10 * time.Second}}
}

// Run polls until ctx is cancelled, handles records in partition order, marks each for commit
// once handled, and commits what is marked before returning.
func (c *Consumer) Run(ctx context.Context) error {
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := c.cl.CommitMarkedOffsets(cctx); err != nil {
			c.log.Warn("committing offsets on shutdown", "err", err)
		}
	}()
	for {
		fetches := c.cl.PollFetches(ctx)
		if ctx.Err() != nil || fetches.IsClientClosed() {
			return nil
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if !errors.Is(err, context.Canceled) {
				c.log.Warn("fetch error", "topic", topic, "partition", partition, "err", err)
			}
		})
		var stop bool
		fetches.EachRecord(func(r *kgo.Record) {
			if stop {
				return
			}
			if err := c.process(ctx, r); err != nil {
				stop = true // context cancelled mid-retry: leave the record unmarked
				return
			}
			c.cl.MarkCommitRecords(r)
		})
		if stop {
			return nil
		}
	}
}

func (c *Consumer) process(ctx context.Context, r *kgo.Record) (err error) {
	log := c.log.With("topic", r.Topic, "partition", r.Partition, "offset", r.Offset)
	env, perr := Envelope(r)
	if perr != nil {
		log.Error("record is not a CloudEvent; dead-lettered", "err", perr)
		return c.deadLetter(ctx, r, "not a CloudEvent: "+perr.Error(), log)
	}
	log = log.With("ce_id", env.ID, "ce_type", env.Type, "job_id", env.Key)
	if telemetry.Enabled() {
		var span trace.Span
		ctx, span = startProcess(ctx, r, env, c.Group)
		defer func() {
			if err != nil {
				span.SetStatus(codes.Error, err.Error())
			}
			span.End()
		}()
	}
	for attempt := 1; ; attempt++ {
		herr := c.safeHandle(ctx, env)
		if herr == nil {
			return nil
		}
		trace.SpanFromContext(ctx).RecordError(herr)
		if errors.Is(herr, ErrPermanent) {
			log.Error("event cannot be handled; dead-lettered", "err", herr)
			return c.deadLetter(ctx, r, herr.Error(), log)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if c.MaxAttempts > 0 && attempt >= c.MaxAttempts {
			log.Error("event still failing after its retries; dead-lettered", "attempts", attempt, "err", herr)
			return c.deadLetter(ctx, r, fmt.Sprintf("failed %d times: %v", attempt, herr), log)
		}
		d := c.backoff.Delay(attempt)
		log.Warn("handler failed, retrying", "attempt", attempt, "retry_in", d.String(), "err", herr)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// deadLetter copies r to the dead-letter topic with why, retrying until Kafka has it (or ctx
// ends: the record is then not committed, and handled again by the next owner).
func (c *Consumer) deadLetter(ctx context.Context, r *kgo.Record, why string, log *slog.Logger) error {
	if c.DeadLetter == "" {
		return nil
	}
	dl := &kgo.Record{Topic: c.DeadLetter, Key: r.Key, Value: r.Value, Headers: append(slices.Clone(r.Headers),
		kgo.RecordHeader{Key: "dlq_reason", Value: []byte(why)},
		kgo.RecordHeader{Key: "dlq_topic", Value: []byte(r.Topic)},
		kgo.RecordHeader{Key: "dlq_partition", Value: []byte(strconv.Itoa(int(r.Partition)))},
		kgo.RecordHeader{Key: "dlq_offset", Value: []byte(strconv.FormatInt(r.Offset, 10))},
		kgo.RecordHeader{Key: "dlq_group", Value: []byte(c.Group)},
	)}
	for attempt := 1; ; attempt++ {
		err := c.cl.ProduceSync(ctx, dl).FirstErr()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := c.backoff.Delay(attempt)
		log.Warn("writing to the dead-letter topic failed, retrying", "retry_in", d.String(), "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
}

// startProcess starts the span under which a record is handled: a consumer span continuing
// the record's trace. A record with the producer's traceparent header continues the hop:
// its parent is kotel's receive span (the header's child) when the client has the hooks, else
// the header. A record without the header was relayed by a process with tracing off (the
// scheduler's relay, a mixed rollout): kotel's receive span is then the root of a trace of its
// own, so the event's ce_traceparent (the change that made it) is the parent and the receive
// span only a link; with neither, the receive span (if any) is the parent.
func startProcess(ctx context.Context, r *kgo.Record, env events.Envelope, group string) (context.Context, trace.Span) {
	var received trace.SpanContext
	if r.Context != nil {
		received = trace.SpanContextFromContext(r.Context)
	}
	var opts []trace.SpanStartOption
	parent := received
	if header := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(ctx, kotel.NewRecordCarrier(r))); header.IsValid() {
		if !parent.IsValid() {
			parent = header
		}
	} else if event := trace.SpanContextFromContext(telemetry.ContextWithTraceParent(ctx, env.TraceParent, env.TraceState)); event.IsValid() {
		parent = event
		if received.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: received}))
		}
	}
	if parent.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, parent)
	}
	attrs := []attribute.KeyValue{
		attribute.String("messaging.system", "kafka"),
		attribute.String("messaging.operation", "process"),
		attribute.String("messaging.destination.name", r.Topic),
		attribute.Int("messaging.kafka.destination.partition", int(r.Partition)),
		attribute.Int64("messaging.kafka.message.offset", r.Offset),
		attribute.String("messaging.message.id", env.ID),
		attribute.String("cloudevents.event_id", env.ID),
		attribute.String("cloudevents.event_type", string(env.Type)),
		attribute.String("job_id", env.Key),
	}
	if group != "" {
		attrs = append(attrs, attribute.String("messaging.consumer.group.name", group))
	}
	opts = append(opts, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
	return telemetry.Tracer("eventbus").Start(ctx, r.Topic+" process", opts...)
}

// safeHandle turns a handler panic into a retryable error, so one bad event cannot kill the
// service.
func (c *Consumer) safeHandle(ctx context.Context, env events.Envelope) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panic: %v", p)
		}
	}()
	return c.handle(ctx, env)
}
