// Package intake decides which jobs this exporter instance runs. The queue is the jobs table:
// an ExportRequested from Kafka is a hint that claims its job at once when a slot is free, and
// is committed either way; the poller claims the oldest job waiting for a worker (queued, handed
// back, or whose worker stopped renewing its lease) whenever a slot is free, every interval and
// as soon as a slot frees. So a full instance never holds a partition (its records are
// committed and their jobs wait in the table for whichever instance frees a slot first), and a
// fixed number of slots bounds concurrent jobs.
package intake

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// Claimer is the claiming side of the job store.
type Claimer interface {
	Claim(ctx context.Context, jobID string, o jobstore.ClaimOptions) (jobstore.Job, jobstore.Lease, error)
	ClaimNext(ctx context.Context, o jobstore.ClaimOptions) (jobstore.Job, jobstore.Lease, error)
}

// RunFunc runs one claimed job to its end.
type RunFunc func(ctx context.Context, job jobstore.Job, lease jobstore.Lease)

// Intake owns the slots.
type Intake struct {
	claims   Claimer
	run      RunFunc
	opts     jobstore.ClaimOptions
	interval time.Duration
	log      *slog.Logger
	slots    chan struct{}
	freed    chan struct{}
	wg       sync.WaitGroup
	// jobCtx is the parent of running jobs: cancelled only at shutdown, after intake stopped.
	jobCtx context.Context
	// claimRange, when set, claims a range of a split job for a free slot (WithRanges).
	claimRange func(ctx context.Context) (jobID string, work func(context.Context), ok bool)
	// traceOf, when the claimer has it, reads the trace context a job was requested under.
	traceOf func(ctx context.Context, jobID string) (traceparent, tracestate string, err error)
}

// TraceContexter is a Claimer that also knows the trace context each job was requested under
// (*jobstore.Store): a job claimed from the table, without its ExportRequested, and the ranges
// of a split job then continue the trace of its request.
type TraceContexter interface {
	TraceContext(ctx context.Context, jobID string) (traceparent, tracestate string, err error)
}

// New builds an intake with concurrency slots; poll is the poller's interval.
func New(jobCtx context.Context, c Claimer, run RunFunc, opts jobstore.ClaimOptions, concurrency int, poll time.Duration, log *slog.Logger) *Intake {
	in := &Intake{
		claims: c, run: run, opts: opts, interval: poll, log: log,
		slots: make(chan struct{}, concurrency), freed: make(chan struct{}, 1), jobCtx: jobCtx,
	}
	if tc, ok := c.(TraceContexter); ok {
		in.traceOf = tc.TraceContext
	}
	return in
}

// Handle is the eventbus handler of exports.requested. It never waits for a slot.
func (in *Intake) Handle(ctx context.Context, env events.Envelope) error {
	req, err := events.Decode[events.ExportRequested](env)
	if err != nil {
		return eventbus.Permanent(err)
	}
	select {
	case in.slots <- struct{}{}:
	default:
		in.log.Debug("every slot busy; the job waits in the queue", "job_id", req.JobID)
		return nil
	}
	job, lease, err := in.claims.Claim(ctx, req.JobID, in.opts)
	if err != nil {
		in.free()
		if errors.Is(err, jobstore.ErrNotClaimed) || errors.Is(err, jobstore.ErrNotFound) {
			in.log.Info("job not claimable (finished, deleted or running elsewhere)", "job_id", req.JobID)
			return nil
		}
		// Database trouble: the job stays queued and the poller claims it once it can.
		in.log.Warn("claiming a requested job failed; it waits in the queue", "job_id", req.JobID, "err", err)
		return nil
	}
	in.start(ctx, job, lease)
	return nil
}

// start runs a claimed job; from is the context it was claimed in (the ExportRequested's
// processing, or the poller's).
func (in *Intake) start(from context.Context, job jobstore.Job, lease jobstore.Lease) {
	in.log.Info("job claimed", "job_id", job.ID, "attempt", lease.Attempt)
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		defer in.free()
		ctx, span := in.jobSpan(from, job, lease)
		defer span.End()
		in.run(ctx, job, lease)
	}()
}

// jobSpan starts the "export job" span of one attempt, a child of the ExportRequested's
// processing when the record brought the claim, else of the request's stored trace context;
// the job's events (ExportStarted, ExportProgress, ExportCompleted) are written under it and
// carry its trace. A no-op span with tracing off.
func (in *Intake) jobSpan(from context.Context, job jobstore.Job, lease jobstore.Lease) (context.Context, trace.Span) {
	if !telemetry.Enabled() {
		return in.jobCtx, trace.SpanFromContext(context.Background())
	}
	ctx := in.jobCtx
	if sc := trace.SpanContextFromContext(from); sc.IsValid() {
		ctx = trace.ContextWithSpanContext(ctx, sc)
	} else {
		ctx = in.requestTrace(from, job.ID)
	}
	return telemetry.Tracer("exporter").Start(ctx, "export job", trace.WithAttributes(
		attribute.String("job_id", job.ID), attribute.String("export.entity", job.Entity),
		attribute.String("export.format", job.Format), attribute.Int("job.attempt", lease.Attempt),
		attribute.String("job.lease_owner", lease.Owner)))
}

// requestTrace is the jobs' context carrying the trace context jobID was requested under, when
// tracing is on and the claimer keeps it: work claimed from the table, with no record to
// continue, belongs to its job's trace.
func (in *Intake) requestTrace(ctx context.Context, jobID string) context.Context {
	if !telemetry.Enabled() || in.traceOf == nil {
		return in.jobCtx
	}
	tp, ts, err := in.traceOf(ctx, jobID)
	if err != nil {
		in.log.Debug("reading the job's trace context", "job_id", jobID, "err", err)
	}
	return telemetry.ContextWithTraceParent(in.jobCtx, tp, ts)
}

// free gives a slot back and wakes the poller.
func (in *Intake) free() {
	<-in.slots
	select {
	case in.freed <- struct{}{}:
	default:
	}
}

// Poll claims waiting jobs while a slot is free, every interval and whenever a slot frees,
// until ctx is cancelled.
func (in *Intake) Poll(ctx context.Context) error {
	t := time.NewTicker(in.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-in.freed:
		}
		for ctx.Err() == nil && in.claimNext(ctx) {
		}
	}
}

// claimNext claims the next waiting job if a slot is free; it reports whether it started one.
func (in *Intake) claimNext(ctx context.Context) bool {
	select {
	case in.slots <- struct{}{}:
	default:
		return false // every slot busy
	}
	if in.claimRange != nil {
		if jobID, work, ok := in.claimRange(ctx); ok {
			in.wg.Add(1)
			go func() {
				defer in.wg.Done()
				defer in.free()
				// A range outlives the poll that claimed it, like a job, and is part of its
				// job's trace: its catalog query, writer and upload are not traces of their own.
				work(in.requestTrace(in.jobCtx, jobID))
			}()
			return true
		}
	}
	job, lease, err := in.claims.ClaimNext(ctx, in.opts)
	if err != nil {
		<-in.slots // not free(): nothing to wake for
		if !errors.Is(err, jobstore.ErrNotClaimed) && ctx.Err() == nil {
			in.log.Warn("claiming waiting jobs failed", "err", err)
		}
		return false
	}
	if lease.Attempt > 1 {
		in.log.Warn("claimed a job again (handed back, failed attempt, or a worker that stopped renewing its lease)",
			"job_id", job.ID, "attempt", lease.Attempt)
	}
	in.start(ctx, job, lease)
	return true
}

// WithRanges has free slots also write ranges of jobs split across the exporter group, before
// waiting jobs: claim returns the job id and the work of one claimed range, or false when there
// is none. The work runs in the trace its job was requested under.
func (in *Intake) WithRanges(claim func(ctx context.Context) (jobID string, work func(context.Context), ok bool)) *Intake {
	in.claimRange = claim
	return in
}

// Wait blocks until every running job returned.
func (in *Intake) Wait() { in.wg.Wait() }
