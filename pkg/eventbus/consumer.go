package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/productsmanager/exportplatform/pkg/events"
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
type Consumer struct {
	cl      *kgo.Client
	handle  Handler
	log     *slog.Logger
	backoff Backoff
}

// Backoff is a capped exponential retry delay.
type Backoff struct {
	Initial, Max time.Duration
}

func (b Backoff) delay(attempt int) time.Duration {
	d := b.Initial
	for i := 1; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	return min(d, b.Max)
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
		log.Error("skipping record that is not a CloudEvent", "err", perr)
		return nil
	}
	log = log.With("ce_id", env.ID, "ce_type", env.Type, "job_id", env.Key)
	for attempt := 1; ; attempt++ {
		herr := c.safeHandle(ctx, env)
		if herr == nil {
			return nil
		}
		if errors.Is(herr, ErrPermanent) {
			log.Error("skipping event that cannot be handled", "err", herr)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		d := c.backoff.delay(attempt)
		log.Warn("handler failed, retrying", "attempt", attempt, "retry_in", d.String(), "err", herr)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
		}
	}
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
