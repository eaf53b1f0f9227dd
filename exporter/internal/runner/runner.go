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
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/backoff"
	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
)

// Jobs is the job repository: every change of the job is a command it decides and saves with
// the events announcing it (*jobstore.Store implements it).
type Jobs interface {
	Do(ctx context.Context, id string, c job.Command) (job.Job, error)
	// Cancelled reports whether the job was cancelled or deleted.
	Cancelled(ctx context.Context, jobID string) (bool, error)
}

// Config tunes the runner.
type Config struct {
	Worker           string
	Bucket           string
	LeaseTTL         time.Duration
	ProgressInterval time.Duration
	// CancelPoll is how often a running job looks for a cancel: a cancelled job stops within
	// about this long (default 250ms).
	CancelPoll time.Duration
	// Retention is how long a stored file is kept (its ExportCompleted's expires_at).
	Retention time.Duration
	// UploadStall fails an attempt whose upload accepted no bytes for this long (default 60s).
	UploadStall time.Duration
	// Crash, for fault tests only (make chaos), is called at a named point of a job; the
	// exporter wires it to kill itself there (EXPORTER_FAILPOINT). Points: "after_upload" (the
	// file is stored, its completion not recorded).
	Crash func(point string)
}

// Runner runs jobs.
type Runner struct {
	// ranges, when set (WithRanges), splits exports over rangeRows rows across the group.
	ranges     Ranges
	pool       *pgxpool.Pool
	rangeRows  int64
	rangeTries int

	cfg     Config
	catalog catalog.Querier
	objects objectstore.Store
	jobs    Jobs
	log     *slog.Logger
	metrics *Metrics
	now     func() time.Time

	// busy counts the exports and ranges this process is writing (working).
	busy atomic.Int64
}

// working counts a job or range as running until the func it returns is called. When the last
// ends, the memory the work grew is handed back to the OS (a forced GC and scavenge, a few
// milliseconds): between jobs the exporter sits at its floor, and each export's peak RSS is
// its own, not what earlier jobs of another format or size left behind.
func (r *Runner) working() func() {
	r.metrics.running.Inc()
	r.busy.Add(1)
	return func() {
		r.metrics.running.Dec()
		if r.busy.Add(-1) == 0 {
			debug.FreeOSMemory()
		}
	}
}

// New builds a runner.
func New(cfg Config, cat catalog.Querier, objects objectstore.Store, jobs Jobs, log *slog.Logger, m *Metrics) *Runner {
	if cfg.CancelPoll <= 0 {
		cfg.CancelPoll = 250 * time.Millisecond
	}
	if cfg.Retention <= 0 {
		cfg.Retention = 30 * 24 * time.Hour
	}
	if cfg.UploadStall <= 0 {
		cfg.UploadStall = time.Minute
	}
	return &Runner{cfg: cfg, catalog: cat, objects: objects, jobs: jobs, log: log, metrics: m,
		now: func() time.Time { return time.Now().UTC() }}
}

// errPermanent marks failures a retry cannot fix (a request that no longer validates).
var errPermanent = errors.New("permanent")

// ErrLeaseLost is the cause of a job's cancellation when another attempt took its lease.
var ErrLeaseLost = errors.New("lease lost")

// ErrCancelled is the cause of a job's cancellation when a user cancelled or deleted it.
var ErrCancelled = errors.New("cancelled by a user")

// ErrUploadStalled is why an attempt fails when object storage stops taking its bytes.
var ErrUploadStalled = errors.New("object storage accepted no bytes")

// Run runs one attempt of a claimed job. It returns when the job completed, failed, was given
// back (shutdown, transient failure) or its lease was lost; it never returns an error because
// the outcome is recorded in the job (and its events). The lease is renewed from the claim to
// the last record, whatever the step.
func (r *Runner) Run(ctx context.Context, j job.Job, lease jobstore.Lease) {
	log := r.log.With("job_id", j.ID, "attempt", lease.Attempt)
	defer r.working()()
	if lease.Rescued {
		r.metrics.rescued.Inc()
	}

	jctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	hbctx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	var hb sync.WaitGroup
	hb.Add(1)
	go func() { defer hb.Done(); r.heartbeat(hbctx, cancel, lease, log) }()
	defer func() { stopHB(); hb.Wait() }()

	started := time.Now()
	completed, err := r.export(jctx, j, lease, log)
	cause := context.Cause(jctx)
	// What follows must happen even while shutting down.
	bg := context.WithoutCancel(ctx)
	if err == nil && cause == nil {
		if r.cfg.Crash != nil {
			r.cfg.Crash("after_upload")
		}
		err = r.complete(ctx, completed, lease, log)
		if err == nil {
			r.metrics.jobs.WithLabelValues("completed").Inc()
			r.metrics.duration.Observe(time.Since(started).Seconds())
			return
		}
		// Not recorded: the file of this attempt (its own key) must not outlive it.
		if derr := r.objects.Delete(bg, completed.Object.Key); derr != nil {
			log.Error("removing the file of an attempt that did not complete", "key", completed.Object.Key, "err", derr)
		}
	}
	switch {
	case errors.Is(cause, ErrCancelled) || errors.Is(err, job.ErrFinished):
		// The canceller ended the job and announced it; the upload was aborted.
		log.Info("export cancelled; stopped", "err", err, "after_ms", time.Since(started).Milliseconds())
		r.metrics.jobs.WithLabelValues("cancelled").Inc()
	case errors.Is(cause, ErrLeaseLost) || errors.Is(err, job.ErrLeaseLost):
		log.Warn("lease lost; another worker owns the job now", "err", err)
		r.metrics.jobs.WithLabelValues("lease_lost").Inc()
	case ctx.Err() != nil:
		log.Info("shutting down mid-job; handing the job over", "err", err)
		r.record(bg, lease, job.Release{Owner: lease.Owner, Attempt: lease.Attempt, At: r.now()}, log)
		r.metrics.jobs.WithLabelValues("released").Inc()
	case errors.Is(err, errPermanent):
		log.Error("export failed", "err", err)
		r.record(bg, lease, job.Fail{Owner: lease.Owner, Attempt: lease.Attempt,
			Error: job.Error{Code: "invalid_request", Message: publicMessage(err, lease.Attempt, j.ID)}, At: r.now()}, log)
		r.metrics.jobs.WithLabelValues("failed").Inc()
	default:
		// Given back charged, with its real error: the next claim retries it, or fails it
		// with this error once its attempts are spent.
		log.Warn("export attempt failed", "err", err)
		r.record(bg, lease, job.Release{Owner: lease.Owner, Attempt: lease.Attempt,
			Cause: &job.Error{Code: "export_failed", Message: publicMessage(err, lease.Attempt, j.ID)}, At: r.now()}, log)
		r.metrics.jobs.WithLabelValues("retried").Inc()
	}
}

// complete records the completion with its ExportCompleted, retrying while the database is
// away (the heartbeat keeps the lease meanwhile); a refusal (cancelled first, lease taken) is
// returned at once. At shutdown it keeps trying for one lease TTL.
func (r *Runner) complete(ctx context.Context, c job.Complete, lease jobstore.Lease, log *slog.Logger) error {
	return r.retry(ctx, "recording the completion", func(bctx context.Context) error {
		c.At = r.now()
		c.ExpiresAt = c.At.Add(r.cfg.Retention)
		j, err := r.jobs.Do(bctx, lease.JobID, c)
		if errors.Is(err, job.ErrFinished) && j.Status == job.StatusCompleted && j.File != nil && j.File.Key == c.Object.Key {
			err = nil // an earlier try was recorded but its answer lost
		}
		if err == nil {
			log.Info("export completed", "rows", c.Rows, "size_bytes", c.Object.SizeBytes, "key", c.Object.Key)
		}
		return err
	}, log)
}

// record sends an ending command (fail, release), retrying like complete.
func (r *Runner) record(ctx context.Context, lease jobstore.Lease, c job.Command, log *slog.Logger) {
	if err := r.retry(ctx, job.Name(c), func(bctx context.Context) error {
		_, err := r.jobs.Do(bctx, lease.JobID, c)
		return err
	}, log); err != nil && !refused(err) {
		log.Error("recording the end of the attempt failed; its lease will lapse and the job be claimed again", "command", job.Name(c), "err", err)
	}
}

// recordRetries is the backoff of a record the database did not take.
var recordRetries = backoff.Backoff{Initial: 500 * time.Millisecond, Max: 5 * time.Second}

// retry calls fn until it succeeds or is refused by the job, backing off 0.5..5 s; once ctx
// ends it keeps going for one lease TTL.
func (r *Runner) retry(ctx context.Context, what string, fn func(context.Context) error, log *slog.Logger) error {
	bg := context.WithoutCancel(ctx)
	var deadline time.Time
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(bg, 10*time.Second)
		err := fn(actx)
		cancel()
		if err == nil || refused(err) {
			return err
		}
		if ctx.Err() != nil {
			if deadline.IsZero() {
				deadline = time.Now().Add(r.cfg.LeaseTTL)
			} else if time.Now().After(deadline) {
				return err
			}
		}
		d := recordRetries.Delay(attempt)
		log.Warn(what+" failed; retrying", "attempt", attempt, "retry_in", d.String(), "err", err)
		backoff.Sleep(bg, d)
	}
}

// refused reports whether the job refused a command (retrying the same cannot succeed).
func refused(err error) bool {
	for _, e := range []error{job.ErrFinished, job.ErrLeaseLost, job.ErrNotFound, job.ErrStale, job.ErrInvalid} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// heartbeat renews the job's lease from the claim to the last record (keepLease).
func (r *Runner) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, lease jobstore.Lease, log *slog.Logger) {
	r.keepLease(ctx, cancel, lease.JobID, func(ctx context.Context) error {
		_, err := r.jobs.Do(ctx, lease.JobID, job.Renew{Owner: lease.Owner, Attempt: lease.Attempt, TTL: r.cfg.LeaseTTL, At: r.now()})
		return err
	}, log)
}

// keepLease renews a lease with renew every TTL/3 and looks for the job's cancel several times
// a second: either ends the work by cancelling it with ErrLeaseLost or ErrCancelled as the
// cause. A renewal that fails (the database away) is retried every second; one refused as
// finished or not found ends the renewals (the work ended: nothing left to hold).
func (r *Runner) keepLease(ctx context.Context, cancel context.CancelCauseFunc, jobID string, renew func(context.Context) error, log *slog.Logger) {
	renewEvery := r.cfg.LeaseTTL / 3
	timer := time.NewTimer(renewEvery)
	defer timer.Stop()
	poll := time.NewTicker(r.cfg.CancelPoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-poll.C:
			stop, err := r.jobs.Cancelled(ctx, jobID)
			if stop {
				cancel(ErrCancelled)
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("looking for a cancel failed", "err", err)
			}
		case <-timer.C:
			rctx, rcancel := context.WithTimeout(ctx, renewEvery)
			err := renew(rctx)
			rcancel()
			switch {
			case err == nil:
				timer.Reset(renewEvery)
			case errors.Is(err, job.ErrLeaseLost):
				cancel(ErrLeaseLost)
				return
			case errors.Is(err, job.ErrFinished), errors.Is(err, job.ErrNotFound):
				return
			default:
				if ctx.Err() == nil {
					log.Warn("renewing lease failed; retrying", "err", err)
				}
				timer.Reset(time.Second)
			}
		}
	}
}

// prepare checks the job's recorded request as any export is checked, into what runs.
func prepare(j job.Job) (*export.Spec, error) {
	req := j.Request()
	return export.Prepare(export.Request{
		Entity: req.Entity, Format: req.Format, Fields: req.Fields, ExcludeFields: req.ExcludeFields,
		Filters: req.Filters, Options: req.Options, FileName: req.FileName, Headers: req.Headers,
		Compression: req.Compression,
	})
}

func (r *Runner) export(ctx context.Context, j job.Job, lease jobstore.Lease, log *slog.Logger) (job.Complete, error) {
	spec, err := prepare(j)
	if err != nil {
		return job.Complete{}, fmt.Errorf("%w: invalid request: %w", errPermanent, err)
	}
	total, err := spec.Query.Count(ctx, r.catalog)
	if err != nil {
		return job.Complete{}, stageErr("counting the rows in the catalog", err)
	}
	startedAt := r.now()
	if _, err := r.jobs.Do(ctx, j.ID, job.Start{Owner: lease.Owner, Attempt: lease.Attempt, Worker: r.cfg.Worker,
		RowsTotal: total, At: startedAt}); err != nil {
		if refused(err) {
			return job.Complete{}, err
		}
		return job.Complete{}, stageErr("recording the start", err)
	}
	log.Info("export started", "rows_total", total)

	counter := &countingWriter{}
	lastSent, lastDone := time.Now(), int64(0)
	var rate rateMeter
	report := func(done int64, phase string, now time.Time) {
		c := job.Report{Owner: lease.Owner, Attempt: lease.Attempt, RowsDone: done, BytesWritten: counter.n.Load(),
			Phase: phase, At: now.UTC()}
		if phase == events.PhaseWriting {
			c.RateRowsPerS, c.ETASeconds = rate.perSecond(), rate.eta(total-done)
		}
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		// A lost report is harmless (the next one or the end says more); a lost lease or a
		// cancel is the heartbeat's to notice.
		if _, err := r.jobs.Do(rctx, j.ID, c); err != nil && !refused(err) && ctx.Err() == nil {
			log.Debug("recording progress failed", "err", err)
		}
	}
	if r.split(spec, total, log) {
		return r.exportInRanges(ctx, j, lease, spec, total, startedAt, func(done int64, phase string, now time.Time) {
			if phase == events.PhaseWriting {
				rate.observe(done-lastDone, now.Sub(lastSent))
				lastSent, lastDone = now, done
			}
			report(done, phase, now)
		}, log)
	}

	// One key per attempt: an attempt that lost its lease but still completes its upload never
	// overwrites the file the next attempt announced (and removes its own, see Run).
	key := fileKey(j, lease.Attempt, spec.FileName)
	up := r.upload(ctx, key, spec.ContentType)

	hash := sha256.New()
	out := io.MultiWriter(up, hash, counter)
	written, err := export.Run(ctx, r.catalog, spec, out, func(done int64) {
		now := time.Now()
		if now.Sub(lastSent) < r.cfg.ProgressInterval {
			return
		}
		rate.observe(done-lastDone, now.Sub(lastSent))
		lastSent, lastDone = now, done
		report(done, events.PhaseWriting, now)
	})
	if err != nil {
		if uerr := up.abort(err); uerr != nil {
			// The upload failed first; the writer only saw its pipe close.
			return job.Complete{}, stageErr("storing the file in object storage", uerr)
		}
		return job.Complete{}, stageErr("reading the catalog and writing the file", fmt.Errorf("writing %s: %w", key, err))
	}
	// Every row is written; what is left is the upload's last part and its completion, which on
	// a large XLSX (compressed at Close) takes a while.
	report(written.Rows, events.PhaseUploading, time.Now())
	info, err := up.finish()
	if err != nil {
		return job.Complete{}, stageErr("storing the file in object storage", err)
	}
	if info.Size != counter.n.Load() {
		return job.Complete{}, stageErr("storing the file in object storage",
			fmt.Errorf("uploaded %d bytes of %s, wrote %d", info.Size, key, counter.n.Load()))
	}
	r.metrics.rows.Add(float64(written.Rows))
	return job.Complete{
		Owner: lease.Owner, Attempt: lease.Attempt, Rows: written.Rows,
		Object: events.Object{
			Bucket: r.cfg.Bucket, Key: key, SizeBytes: info.Size, SHA256: hex.EncodeToString(hash.Sum(nil)),
			ContentType: spec.ContentType, FileName: spec.FileName,
		},
		Warnings: written.Warnings, StartedAt: startedAt,
	}, nil
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
	step := "running the export"
	var se *stageError
	if errors.As(cause, &se) {
		step = se.stage
	}
	if errors.Is(cause, ErrUploadStalled) {
		step += " (object storage stopped accepting data)"
	}
	return fmt.Sprintf("the export failed while %s (attempt %d); the cause is in the exporter's log under job %s", step, attempt, jobID)
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
