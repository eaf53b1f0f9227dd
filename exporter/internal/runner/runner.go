// Package runner runs one export job under its lease: count the rows, stream them through the
// format writer into a multipart upload while hashing, and report Started, throttled Progress,
// and Completed or Failed events. The lease is renewed while the job runs; losing it cancels
// the job, and a cancelled or failed upload leaves no object behind.
package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

// Leases is the lease side of the job store.
type Leases interface {
	Renew(ctx context.Context, l jobstore.Lease, ttl time.Duration) error
	Release(ctx context.Context, l jobstore.Lease) error
	Apply(ctx context.Context, ev events.Event) (bool, error)
	// Seal commits the worker to completing the job (a cancel is then too late); it fails
	// with jobstore.ErrLeaseLost when the lease is gone or the job was cancelled first.
	Seal(ctx context.Context, l jobstore.Lease, ttl time.Duration) error
	// Cancelled reports whether the job was cancelled or deleted.
	Cancelled(ctx context.Context, jobID string) (bool, error)
}

// Publisher sends events; Publish waits for the broker, Send does not.
type Publisher interface {
	Publish(ctx context.Context, topic string, evs ...events.Event) error
	Send(ctx context.Context, topic string, ev events.Event)
}

// Config tunes the runner.
type Config struct {
	Worker           string
	Bucket           string
	LeaseTTL         time.Duration
	ProgressInterval time.Duration
	MaxAttempts      int
	// CancelPoll is how often a running job looks for a cancel: a cancelled job stops within
	// about this long (default 250ms).
	CancelPoll time.Duration
	// Retention is how long a stored file is kept (its ExportCompleted's expires_at).
	Retention time.Duration
}

// Runner runs jobs.
type Runner struct {
	cfg     Config
	catalog catalog.Querier
	objects objectstore.Store
	leases  Leases
	pub     Publisher
	log     *slog.Logger
	metrics *Metrics
}

// New builds a runner.
func New(cfg Config, cat catalog.Querier, objects objectstore.Store, leases Leases, pub Publisher, log *slog.Logger, m *Metrics) *Runner {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.CancelPoll <= 0 {
		cfg.CancelPoll = 250 * time.Millisecond
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	return &Runner{cfg: cfg, catalog: cat, objects: objects, leases: leases, pub: pub, log: log, metrics: m}
}

// errPermanent marks failures a retry cannot fix (a request that no longer validates).
var errPermanent = errors.New("permanent")

// errGaveUp marks a job claimed more often than MaxAttempts allows.
var errGaveUp = errors.New("given up")

// ErrLeaseLost is the cause of a job's cancellation when its lease could not be renewed.
var ErrLeaseLost = errors.New("lease lost")

// ErrCancelled is the cause of a job's cancellation when a user cancelled or deleted it.
var ErrCancelled = errors.New("cancelled by a user")

// Run runs one attempt of job under lease. It returns when the job completed, failed, was given
// back (shutdown, transient failure) or its lease was lost; it never returns an error because
// the outcome is recorded in events and the lease.
func (r *Runner) Run(ctx context.Context, job jobstore.Job, lease jobstore.Lease) {
	log := r.log.With("job_id", job.ID, "attempt", lease.Attempt)
	r.metrics.running.Inc()
	defer r.metrics.running.Dec()
	if lease.Attempt > r.cfg.MaxAttempts {
		// Every earlier attempt ended without a word (its worker killed, e.g. out of memory on
		// this very job): running it again would only kill the next worker.
		err := fmt.Errorf("%w after %d attempts whose workers stopped without finishing", errGaveUp, lease.Attempt-1)
		log.Error("export failed", "err", err)
		r.fail(context.WithoutCancel(ctx), job, lease, err, log)
		r.metrics.jobs.WithLabelValues("failed").Inc()
		return
	}

	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { defer hb.Done(); r.heartbeat(jctx, cancel, lease, log) }()

	started := time.Now()
	completed, err := r.export(jctx, job, lease, log)
	cancel(nil)
	hb.Wait()

	// What follows must happen even while shutting down.
	bg := context.WithoutCancel(ctx)
	cancelled := errors.Is(context.Cause(jctx), ErrCancelled)
	if err == nil {
		// Fence: only the current lease holder of a job nobody cancelled may complete it; a
		// worker whose lease expired during the upload must not announce a file another
		// attempt now owns. Past the seal, a cancel is refused.
		if serr := r.leases.Seal(bg, lease, r.cfg.LeaseTTL); serr != nil {
			err = serr
			if stop, cerr := r.leases.Cancelled(bg, job.ID); cerr == nil && stop {
				cancelled = true
			}
			// Cancelled while the upload was being completed, or the lease went to another
			// attempt: this attempt's file (its own key) must not outlive it.
			if errors.Is(serr, jobstore.ErrLeaseLost) {
				if derr := r.objects.Delete(bg, completed.Object.Key); derr != nil {
					log.Error("removing the file of an attempt that may not complete", "key", completed.Object.Key, "err", derr)
				}
			}
		}
	}
	switch {
	case cancelled:
		// The canceller ended the job and emitted ExportCancelled; the upload was aborted.
		log.Info("export cancelled; stopped", "err", err, "after_ms", time.Since(started).Milliseconds())
		r.metrics.jobs.WithLabelValues("cancelled").Inc()
	case err == nil:
		r.finish(ctx, bg, completed, lease, log)
		r.metrics.jobs.WithLabelValues("completed").Inc()
		r.metrics.duration.Observe(time.Since(started).Seconds())
	case errors.Is(context.Cause(jctx), ErrLeaseLost), errors.Is(err, jobstore.ErrLeaseLost):
		log.Warn("lease lost; another worker owns the job now", "err", err)
		r.metrics.jobs.WithLabelValues("lease_lost").Inc()
	case ctx.Err() != nil:
		log.Info("shutting down mid-job; giving the lease back", "err", err)
		r.release(bg, lease, log)
		r.metrics.jobs.WithLabelValues("released").Inc()
	case errors.Is(err, errPermanent) || lease.Attempt >= r.cfg.MaxAttempts:
		log.Error("export failed", "err", err)
		r.fail(bg, job, lease, err, log)
		r.metrics.jobs.WithLabelValues("failed").Inc()
	default:
		log.Warn("export attempt failed; it will be retried", "err", err)
		r.release(bg, lease, log)
		r.metrics.jobs.WithLabelValues("retried").Inc()
	}
}

// heartbeat renews the lease while the job runs, and looks for a cancel several times a second:
// either ends the job by cancelling its context with ErrLeaseLost or ErrCancelled as the cause.
func (r *Runner) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, lease jobstore.Lease, log *slog.Logger) {
	t := time.NewTicker(r.cfg.LeaseTTL / 3)
	defer t.Stop()
	poll := time.NewTicker(r.cfg.CancelPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			stop, err := r.leases.Cancelled(ctx, lease.JobID)
			if stop {
				cancel(ErrCancelled)
				return
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("looking for a cancel failed", "err", err)
			}
		case <-t.C:
			err := r.leases.Renew(ctx, lease, r.cfg.LeaseTTL)
			switch {
			case errors.Is(err, jobstore.ErrLeaseLost):
				cancel(ErrLeaseLost)
				return
			case err != nil && ctx.Err() == nil:
				// The database may be back before the lease runs out; keep trying.
				log.Warn("renewing lease failed", "err", err)
			}
		}
	}
}

func (r *Runner) export(ctx context.Context, job jobstore.Job, lease jobstore.Lease, log *slog.Logger) (events.ExportCompleted, error) {
	req := job.Request()
	spec, err := export.Prepare(export.Request{
		Entity: req.Entity, Format: req.Format, Fields: req.Fields, ExcludeFields: req.ExcludeFields,
		Filters: req.Filters, Options: req.Options, FileName: req.FileName,
	})
	if err != nil {
		return events.ExportCompleted{}, fmt.Errorf("%w: invalid request: %w", errPermanent, err)
	}
	total, err := spec.Query.Count(ctx, r.catalog)
	if err != nil {
		return events.ExportCompleted{}, stageErr("counting the rows in the catalog", err)
	}
	startedAt := time.Now().UTC()
	if err := r.pub.Publish(ctx, events.TopicEvents, events.ExportStarted{
		JobID: job.ID, Entity: job.Entity, Format: job.Format, Worker: r.cfg.Worker,
		Attempt: lease.Attempt, RowsTotal: total, StartedAt: startedAt,
	}); err != nil {
		return events.ExportCompleted{}, stageErr("announcing the start on Kafka", fmt.Errorf("announcing start: %w", err))
	}
	log.Info("export started", "rows_total", total)

	// One key per attempt: an attempt that lost its lease but still completes its upload never
	// overwrites the file the next attempt announced (and removes its own, see Run).
	key := fmt.Sprintf("%s/%s/%d/%s", job.Entity, job.ID, lease.Attempt, spec.FileName)
	pr, pw := io.Pipe()
	type putResult struct {
		info objectstore.Info
		err  error
	}
	putc := make(chan putResult, 1)
	go func() {
		info, err := r.objects.Put(ctx, key, pr, spec.ContentType)
		pr.CloseWithError(err) // unblock the writer if the upload gave up
		putc <- putResult{info, err}
	}()

	hash := sha256.New()
	counter := &countingWriter{}
	out := io.MultiWriter(pw, hash, counter)
	lastSent, lastDone := time.Now(), int64(0)
	var rate rateMeter
	written, err := export.Run(ctx, r.catalog, spec, out, func(done int64) {
		now := time.Now()
		if now.Sub(lastSent) < r.cfg.ProgressInterval {
			return
		}
		rate.observe(done-lastDone, now.Sub(lastSent))
		lastSent, lastDone = now, done
		r.pub.Send(ctx, events.TopicEvents, events.ExportProgress{
			JobID: job.ID, Attempt: lease.Attempt, RowsDone: done, RowsTotal: total,
			Progress: percent(done, total), BytesWritten: counter.n.Load(), Phase: events.PhaseWriting,
			RateRowsPerS: rate.perSecond(), ETASeconds: rate.eta(total - done), At: now.UTC(),
		})
	})
	if err != nil {
		pw.CloseWithError(err)
		if res := <-putc; res.err != nil && errors.Is(err, res.err) {
			// The upload failed first; the writer only saw its pipe close.
			return events.ExportCompleted{}, stageErr("storing the file in object storage", res.err)
		}
		return events.ExportCompleted{}, stageErr("reading the catalog and writing the file", fmt.Errorf("writing %s: %w", key, err))
	}
	// Every row is written; what is left is the upload's last part and its completion, which on
	// a large XLSX (compressed at Close) takes a while.
	r.pub.Send(ctx, events.TopicEvents, events.ExportProgress{
		JobID: job.ID, Attempt: lease.Attempt, RowsDone: written.Rows, RowsTotal: total,
		Progress: percent(written.Rows, total), BytesWritten: counter.n.Load(), Phase: events.PhaseUploading,
		At: time.Now().UTC(),
	})
	pw.Close()
	res := <-putc
	if res.err != nil {
		return events.ExportCompleted{}, stageErr("storing the file in object storage", res.err)
	}
	if res.info.Size != counter.n.Load() {
		return events.ExportCompleted{}, stageErr("storing the file in object storage",
			fmt.Errorf("uploaded %d bytes of %s, wrote %d", res.info.Size, key, counter.n.Load()))
	}
	rows := written.Rows
	r.metrics.rows.Add(float64(rows))
	finished := time.Now().UTC()
	expires := finished.Add(r.cfg.Retention)
	return events.ExportCompleted{
		JobID: job.ID, Entity: job.Entity, Format: job.Format, Rows: rows,
		Object: events.Object{
			Bucket: r.cfg.Bucket, Key: key, SizeBytes: res.info.Size, SHA256: hex.EncodeToString(hash.Sum(nil)),
			ContentType: spec.ContentType, FileName: spec.FileName,
		},
		RequestedBy: job.RequestedBy, ScheduleID: job.ScheduleID, ScheduledFor: job.ScheduledFor, PlatformID: job.PlatformID,
		StartedAt: startedAt, FinishedAt: finished, DurationMS: finished.Sub(startedAt).Milliseconds(),
		Warnings: written.Warnings, ExpiresAt: &expires,
	}, nil
}

// finish publishes ExportCompleted (retrying until Kafka takes it, while the lease is kept
// alive) and then records it in the job row. Publishing first means a crash in between repeats
// the event (same ce_id), never loses it.
func (r *Runner) finish(ctx, bg context.Context, ev events.ExportCompleted, lease jobstore.Lease, log *slog.Logger) {
	for attempt := 1; ; attempt++ {
		pctx, cancel := context.WithTimeout(bg, 10*time.Second)
		err := r.pub.Publish(pctx, events.TopicEvents, ev)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			log.Warn("shutting down before ExportCompleted was acknowledged; the job will be redone", "err", err)
			r.release(bg, lease, log)
			return
		}
		log.Warn("publishing ExportCompleted failed; retrying", "attempt", attempt, "err", err)
		if err := r.leases.Renew(bg, lease, r.cfg.LeaseTTL); errors.Is(err, jobstore.ErrLeaseLost) {
			return
		}
		select {
		case <-ctx.Done(): // shutting down: the next loop turn gives the lease back
		case <-time.After(min(time.Duration(attempt)*time.Second, 5*time.Second)):
		}
	}
	if _, err := r.leases.Apply(bg, ev); err != nil {
		// The hub folds the same event from Kafka, so the row still ends completed.
		log.Warn("recording completion in the job row failed", "err", err)
	}
	log.Info("export completed", "rows", ev.Rows, "size_bytes", ev.Object.SizeBytes, "key", ev.Object.Key, "duration_ms", ev.DurationMS)
}

func (r *Runner) fail(ctx context.Context, job jobstore.Job, lease jobstore.Lease, cause error, log *slog.Logger) {
	code, message := "export_failed", publicMessage(cause, lease.Attempt, job.ID)
	if errors.Is(cause, errPermanent) {
		code = "invalid_request"
	}
	ev := events.ExportFailed{
		JobID: job.ID, Entity: job.Entity, Format: job.Format, Code: code, Message: message,
		Attempt: lease.Attempt, RequestedBy: job.RequestedBy, FailedAt: time.Now().UTC(),
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := r.pub.Publish(pctx, events.TopicEvents, ev); err != nil {
		log.Error("publishing ExportFailed failed; releasing the lease so the job is retried", "err", err)
		r.release(ctx, lease, log)
		return
	}
	if _, err := r.leases.Apply(ctx, ev); err != nil {
		log.Warn("recording failure in the job row failed", "err", err)
	}
}

// stageError says which step of an export failed: the job's public message names the step,
// while the cause itself (hosts, SQL, S3 responses) goes only to the exporter's log.
type stageError struct {
	stage string
	err   error
}

func (e *stageError) Error() string { return e.stage + ": " + e.err.Error() }
func (e *stageError) Unwrap() error { return e.err }

func stageErr(stage string, err error) error { return &stageError{stage, err} }

// publicMessage is what the job, its ExportFailed and the API say of a failure: the request's
// own validation error as it is, otherwise the failed step without internal details.
func publicMessage(cause error, attempt int, jobID string) string {
	if errors.Is(cause, errPermanent) {
		return cause.Error()
	}
	if errors.Is(cause, errGaveUp) {
		return fmt.Sprintf("the export was started %d times and never finished (its workers stopped); it is not retried again", attempt-1)
	}
	step := "running the export"
	var se *stageError
	if errors.As(cause, &se) {
		step = se.stage
	}
	return fmt.Sprintf("the export failed while %s (attempt %d); the cause is in the exporter's log under job %s", step, attempt, jobID)
}

func (r *Runner) release(ctx context.Context, lease jobstore.Lease, log *slog.Logger) {
	if err := r.leases.Release(ctx, lease); err != nil {
		log.Warn("releasing lease failed; it will expire by itself", "err", err)
	}
}

func percent(done, total int64) float64 {
	if total <= 0 {
		return 0
	}
	p := float64(done) * 100 / float64(total)
	return math.Min(99.9, math.Round(p*10)/10) // 100 only once the file is stored
}

// rateMeter is the observed write rate: an exponentially weighted mean of the rates between
// progress reports, so the ETA follows a slowdown within a few reports without jumping at each.
type rateMeter struct{ rowsPerS float64 }

func (m *rateMeter) observe(rows int64, d time.Duration) {
	if d <= 0 || rows < 0 {
		return
	}
	inst := float64(rows) / d.Seconds()
	if m.rowsPerS == 0 {
		m.rowsPerS = inst
		return
	}
	m.rowsPerS = 0.7*m.rowsPerS + 0.3*inst
}

func (m *rateMeter) perSecond() float64 { return math.Round(m.rowsPerS*10) / 10 }

// eta is the seconds left for rows at the observed rate, nil before there is one.
func (m *rateMeter) eta(rows int64) *float64 {
	if m.rowsPerS <= 0 {
		return nil
	}
	s := math.Round(float64(max(rows, 0))/m.rowsPerS*10) / 10
	return &s
}

type countingWriter struct{ n atomic.Int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n.Add(int64(len(p)))
	return len(p), nil
}
