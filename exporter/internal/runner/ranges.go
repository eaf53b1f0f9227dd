package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/productsmanager/exportplatform/pkg/catalog"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/telemetry"
)

// One export across the exporter group. An attempt of a CSV or JSON Lines job over
// Config.RangeRows rows is cut into key ranges of that many rows. Its runner, the coordinator,
// holds a repeatable-read snapshot open (pg_export_snapshot) for as long as the ranges are
// written, plans them (Ranges.PlanRanges), and works them like any exporter: every exporter
// with a free slot claims ranges under a lease (Ranges.ClaimRange), reads its range through
// the shared snapshot and stores it as an object of its own. A range whose writer dies is
// claimed again once its lease lapses and written again, alone. When all are written the
// coordinator joins them into the job's one file (server-side Compose, or a streamed copy
// when a range is under S3's 5 MiB part minimum), hashes it, removes the range objects and
// completes the job: a consistent cut of the catalog, byte for byte the file one worker
// writes. A coordinator that dies takes its snapshot with it: the job's next attempt plans
// anew.

// Ranges is the ranges' repository (*jobstore.Store implements it).
type Ranges interface {
	PlanRanges(ctx context.Context, lease jobstore.Lease, snapshot string, ranges [][2]*int64) error
	ClaimRange(ctx context.Context, jobID, owner string, ttl time.Duration, maxTries int) (jobstore.Range, error)
	RenewRange(ctx context.Context, r jobstore.Range, ttl time.Duration, rowsDone int64) error
	RangeWritten(ctx context.Context, r jobstore.Range, rows, size int64, key string) error
	ReleaseRange(ctx context.Context, r jobstore.Range, cause string, maxTries int) error
	Ranges(ctx context.Context, jobID string, attempt int) ([]jobstore.Range, error)
	Get(ctx context.Context, id string) (jobstore.Job, error)
}

// WithRanges lets the runner split big exports across the exporter group: ranges of rows
// rows, tried at most tries times each, read on pool's connections.
func (r *Runner) WithRanges(store Ranges, pool *pgxpool.Pool, rows int64, tries int) *Runner {
	r.ranges, r.pool, r.rangeRows, r.rangeTries = store, pool, rows, max(tries, 1)
	return r
}

// split reports whether the attempt is to be written in ranges.
func (r *Runner) split(spec *export.Spec, total int64, log *slog.Logger) bool {
	if r.ranges == nil || r.rangeRows <= 0 || total <= r.rangeRows {
		return false
	}
	if ok, why := spec.Splittable(); !ok {
		log.Info("export not split across the exporter group", "rows_total", total, "why", why)
		return false
	}
	return true
}

// fileKey is where an attempt stores its file; rangeKey where it stores range seq.
func fileKey(j job.Job, attempt int, name string) string {
	return fmt.Sprintf("%s/%s/%d/%s", j.Entity, j.ID, attempt, name)
}

func rangeKey(entity, jobID string, attempt, seq int) string {
	return fmt.Sprintf("%s/%s/%d/ranges/%06d", entity, jobID, attempt, seq)
}

// exportInRanges is export for a split attempt: plan, write ranges, join, hash.
func (r *Runner) exportInRanges(ctx context.Context, j job.Job, lease jobstore.Lease, spec *export.Spec, total int64,
	startedAt time.Time, report func(done int64, phase string, now time.Time), log *slog.Logger) (job.Complete, error) {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return job.Complete{}, stageErr("reading the catalog", err)
	}
	defer conn.Release()
	snap, id, err := catalog.ExportSnapshot(ctx, conn)
	if err != nil {
		return job.Complete{}, stageErr("reading the catalog", err)
	}
	defer func() { _ = snap.Rollback(context.WithoutCancel(ctx)) }()
	bounds, err := spec.Query.Bounds(ctx, snap, r.rangeRows)
	if err != nil {
		return job.Complete{}, stageErr("cutting the export into ranges", err)
	}
	ranges := catalog.Ranges(bounds)
	if err := r.ranges.PlanRanges(ctx, lease, id, ranges); err != nil {
		if refused(err) {
			return job.Complete{}, err
		}
		return job.Complete{}, stageErr("cutting the export into ranges", err)
	}
	log.Info("export split across the exporter group", "ranges", len(ranges), "rows_per_range", r.rangeRows, "rows_total", total)

	var (
		rows     int64
		parts    []jobstore.Range
		lastSent time.Time
	)
	hasher := &rangeHasher{objects: r.objects, hash: sha256.New()}
	tick := time.NewTicker(r.cfg.CancelPoll)
	defer tick.Stop()
	for {
		// The coordinator writes ranges too, while any is left to claim.
		if rg, err := r.ranges.ClaimRange(ctx, j.ID, r.cfg.Worker, r.cfg.LeaseTTL, r.rangeTries); err == nil {
			r.WriteRange(ctx, rg)
			continue
		} else if !errors.Is(err, jobstore.ErrNotClaimed) && ctx.Err() == nil {
			log.Warn("claiming a range failed", "err", err)
		}
		list, err := r.ranges.Ranges(ctx, j.ID, lease.Attempt)
		if err != nil && ctx.Err() == nil {
			log.Warn("reading the ranges failed", "err", err)
		}
		done := 0
		rows = 0
		for _, rg := range list {
			rows += rg.RowsDone
			switch rg.Status {
			case jobstore.RangeDone:
				done++
			case jobstore.RangeFailed:
				return job.Complete{}, stageErr(fmt.Sprintf("writing range %d of %d", rg.Seq+1, len(list)),
					fmt.Errorf("%d tries failed, the last: %s", rg.Tries, rg.LastError))
			}
		}
		if err := hasher.advance(ctx, list); err != nil {
			return job.Complete{}, stageErr("reading the ranges back from object storage", err)
		}
		if len(list) > 0 && done == len(list) {
			parts = list
			break
		}
		if now := time.Now(); now.Sub(lastSent) >= r.cfg.ProgressInterval {
			lastSent = now
			report(rows, events.PhaseWriting, now)
		}
		select {
		case <-ctx.Done():
			return job.Complete{}, ctx.Err()
		case <-tick.C:
		}
	}
	report(rows, events.PhaseUploading, time.Now())
	if err := hasher.finish(ctx, parts); err != nil {
		return job.Complete{}, stageErr("reading the ranges back from object storage", err)
	}
	key := fileKey(j, lease.Attempt, spec.FileName)
	obj, err := r.join(ctx, key, spec.ContentType, parts, hasher.size)
	if err != nil {
		return job.Complete{}, stageErr("storing the file in object storage", err)
	}
	// The ranges' objects go, this attempt's and any an earlier attempt's writers left.
	bg := context.WithoutCancel(ctx)
	left, err := r.objects.List(bg, fmt.Sprintf("%s/%s/", j.Entity, j.ID))
	if err != nil {
		log.Warn("listing the ranges' objects", "err", err)
	}
	for _, p := range parts {
		left = append(left, p.ObjectKey)
	}
	slices.Sort(left)
	for _, k := range slices.Compact(left) {
		if !strings.Contains(k, "/ranges/") {
			continue
		}
		if err := r.objects.Delete(bg, k); err != nil {
			log.Warn("removing a range's object", "key", k, "err", err)
		}
	}
	r.metrics.rows.Add(float64(rows))
	obj.Bucket, obj.FileName, obj.SHA256 = r.cfg.Bucket, spec.FileName, hex.EncodeToString(hasher.hash.Sum(nil))
	return job.Complete{Owner: lease.Owner, Attempt: lease.Attempt, Rows: rows, Object: obj, StartedAt: startedAt}, nil
}

// join stores the ranges' objects one after the other at key: joined server-side when every
// range but the last is big enough to be a multipart part, copied through otherwise. The
// result must hold hashed bytes, what the ranges were read back as.
func (r *Runner) join(ctx context.Context, key, contentType string, parts []jobstore.Range, hashed int64) (events.Object, error) {
	var want int64
	keys := make([]string, len(parts))
	composable := true
	for i, p := range parts {
		keys[i], want = p.ObjectKey, want+p.SizeBytes
		if i < len(parts)-1 && p.SizeBytes < objectstore.MinComposePart {
			composable = false
		}
	}
	var info objectstore.Info
	var err error
	if c, ok := r.objects.(objectstore.Composer); ok && composable {
		info, err = c.Compose(ctx, key, keys, contentType)
	} else {
		pr, pw := io.Pipe()
		go func() {
			for _, k := range keys {
				rc, _, err := r.objects.Get(ctx, k)
				if err != nil {
					pw.CloseWithError(err)
					return
				}
				_, err = io.Copy(pw, rc)
				_ = rc.Close()
				if err != nil {
					pw.CloseWithError(err)
					return
				}
			}
			pw.Close()
		}()
		info, err = r.objects.Put(ctx, key, pr, contentType)
	}
	if err != nil {
		return events.Object{}, err
	}
	if info.Size != want || info.Size != hashed {
		_ = r.objects.Delete(context.WithoutCancel(ctx), key)
		return events.Object{}, fmt.Errorf("%s holds %d bytes, its ranges %d, read back %d", key, info.Size, want, hashed)
	}
	return events.Object{Key: key, SizeBytes: info.Size, ContentType: contentType}, nil
}

// rangeHasher reads the ranges' objects back in order as they are written, one at a time in
// the background, into the file's SHA-256: when the last range ends, the hash of the file is
// mostly known, and the joined file is never read back whole.
type rangeHasher struct {
	objects objectstore.Store
	hash    hash.Hash
	next    int        // the next range to hash
	size    int64      // bytes hashed
	busy    chan error // while a range is being read
}

// advance notes a read that ended and starts the next range's once it is written.
func (h *rangeHasher) advance(ctx context.Context, list []jobstore.Range) error {
	if h.busy != nil {
		select {
		case err := <-h.busy:
			h.busy = nil
			if err != nil {
				return err
			}
			h.next++
		default:
			return nil
		}
	}
	if h.next < len(list) && list[h.next].Status == jobstore.RangeDone {
		key := list[h.next].ObjectKey
		h.busy = make(chan error, 1)
		go func() {
			rc, _, err := h.objects.Get(ctx, key)
			if err == nil {
				var n int64
				n, err = io.Copy(h.hash, rc)
				h.size += n
				_ = rc.Close()
			}
			h.busy <- err
		}()
	}
	return nil
}

// finish hashes what is left of the written ranges, in order.
func (h *rangeHasher) finish(ctx context.Context, list []jobstore.Range) error {
	for h.next < len(list) {
		if h.busy != nil {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case err := <-h.busy:
				h.busy = nil
				if err != nil {
					return err
				}
				h.next++
			}
			continue
		}
		if err := h.advance(ctx, list); err != nil {
			return err
		}
		if h.busy == nil {
			return fmt.Errorf("range %d is not written", h.next)
		}
	}
	return nil
}

// WriteRange writes one claimed range: reads it through its attempt's snapshot, stores it as
// an object of its own, and records it written; on failure it gives the range back with the
// cause (a try is counted at each claim). Its lease is renewed meanwhile, with its rows so
// far; a lost lease or a cancelled job stops it. Traced as "export range", in ctx's trace (the
// coordinator's export job, or the job's request for a range claimed by a free slot).
func (r *Runner) WriteRange(ctx context.Context, rg jobstore.Range) {
	ctx, span := telemetry.Start(ctx, "exporter", "export range", trace.WithAttributes(
		attribute.String("job_id", rg.JobID), attribute.Int("job.attempt", rg.Attempt), attribute.Int("export.range", rg.Seq)))
	telemetry.End(span, r.writeRangeLeased(ctx, rg))
}

// writeRangeLeased is WriteRange; it returns why the range was not written (nil: written).
func (r *Runner) writeRangeLeased(ctx context.Context, rg jobstore.Range) error {
	log := r.log.With("job_id", rg.JobID, "attempt", rg.Attempt, "range", rg.Seq)
	defer r.working()()
	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var rowsDone atomic.Int64
	hbctx, stopHB := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		r.keepLease(hbctx, cancel, rg.JobID, func(ctx context.Context) error {
			return r.ranges.RenewRange(ctx, rg, r.cfg.LeaseTTL, rowsDone.Load())
		}, log)
	}()
	defer func() { stopHB(); <-hbDone }()

	started := time.Now()
	rows, size, key, err := r.writeRange(rctx, rg, &rowsDone)
	bg := context.WithoutCancel(ctx)
	if err == nil {
		if err = r.ranges.RangeWritten(bg, rg, rows, size, key); err == nil {
			log.Info("range written", "rows", rows, "size_bytes", size, "ms", time.Since(started).Milliseconds())
			return nil
		}
		_ = r.objects.Delete(bg, key)
	}
	if cause := context.Cause(rctx); cause != nil {
		err = fmt.Errorf("%w: %w", cause, err)
	}
	if errors.Is(err, job.ErrLeaseLost) || errors.Is(err, ErrLeaseLost) {
		log.Warn("range lease lost; another exporter writes it now", "err", err)
		return err
	}
	log.Warn("writing a range failed; giving it back", "err", err)
	if rerr := r.ranges.ReleaseRange(bg, rg, err.Error(), r.rangeTries); rerr != nil && !errors.Is(rerr, job.ErrLeaseLost) {
		log.Error("giving a range back failed; its lease will lapse", "err", rerr)
	}
	return err
}

func (r *Runner) writeRange(ctx context.Context, rg jobstore.Range, rowsDone *atomic.Int64) (int64, int64, string, error) {
	j, err := r.ranges.Get(ctx, rg.JobID)
	if err != nil {
		return 0, 0, "", fmt.Errorf("reading the job: %w", err)
	}
	spec, err := prepare(j)
	if err != nil {
		return 0, 0, "", fmt.Errorf("invalid request: %w", err)
	}
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return 0, 0, "", fmt.Errorf("reading the catalog: %w", err)
	}
	defer conn.Release()
	tx, err := catalog.SetSnapshot(ctx, conn, rg.Snapshot)
	if err != nil {
		// The coordinator's snapshot is gone with it: the job's next attempt plans anew.
		return 0, 0, "", err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	key := rangeKey(j.Entity, j.ID, rg.Attempt, rg.Seq)
	up := r.upload(ctx, key, spec.ContentType)
	counter := &countingWriter{}
	res, err := export.RunRange(ctx, tx, spec, rg.Lo, rg.Hi, io.MultiWriter(up, counter), func(done int64) { rowsDone.Store(done) })
	if err != nil {
		if uerr := up.abort(err); uerr != nil {
			return 0, 0, "", fmt.Errorf("storing range %s: %w", key, uerr)
		}
		return 0, 0, "", fmt.Errorf("writing range %s: %w", key, err)
	}
	info, err := up.finish()
	if err != nil {
		return 0, 0, "", fmt.Errorf("storing range %s: %w", key, err)
	}
	if info.Size != counter.n.Load() {
		return 0, 0, "", fmt.Errorf("uploaded %d bytes of %s, wrote %d", info.Size, key, counter.n.Load())
	}
	return res.Rows, info.Size, key, nil
}
