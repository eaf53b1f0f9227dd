// Package retention provides the sweeper that keeps the bucket to what users can still
// download: it removes the files past their expires_at (the job then reads expired) and the
// files of deleted jobs, and aborts multipart uploads abandoned long ago (a worker killed
// mid-upload). It is idempotent: several API replicas may sweep at once.
package retention

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
)

// Store is the part of the job store the sweeper needs.
type Store interface {
	RemovableFiles(ctx context.Context, now time.Time, limit int) ([]jobstore.Job, error)
	FileRemoved(ctx context.Context, id string, now time.Time) error
	Jobs(ctx context.Context, ids []string) (map[string]jobstore.Job, error)
}

// Objects lists and removes files.
type Objects interface {
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]string, error)
}

// StaleUploads is implemented by stores that can abort abandoned multipart uploads.
type StaleUploads interface {
	AbortStaleUploads(ctx context.Context, prefix string, cutoff time.Time) (int, error)
}

// Config tunes the sweeper.
type Config struct {
	Every time.Duration // between sweeps
	// UploadMaxAge is the age past which an unfinished multipart upload is abandoned; it
	// must exceed the longest export (default 24h).
	UploadMaxAge time.Duration
	// OrphanEvery is how often the whole bucket is compared with the jobs (default 1h), and
	// OrphanGrace how long after a job ended an object it does not name is removed (1h).
	OrphanEvery, OrphanGrace time.Duration
	Now                      func() time.Time // the clock; nil is time.Now
}

// Sweeper removes expired and deleted files.
type Sweeper struct {
	cfg     Config
	store   Store
	objects Objects
	log     *slog.Logger
	removed *prometheus.CounterVec
	aborted prometheus.Counter
	failed  prometheus.Counter

	lastOrphans time.Time // when the bucket was last compared with the jobs
}

// New builds a sweeper; its metrics go to reg (nil: none).
func New(cfg Config, store Store, objects Objects, log *slog.Logger, reg prometheus.Registerer) *Sweeper {
	if cfg.Every <= 0 {
		cfg.Every = time.Minute
	}
	if cfg.UploadMaxAge <= 0 {
		cfg.UploadMaxAge = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.OrphanEvery <= 0 {
		cfg.OrphanEvery = time.Hour
	}
	if cfg.OrphanGrace <= 0 {
		cfg.OrphanGrace = time.Hour
	}
	s := &Sweeper{cfg: cfg, store: store, objects: objects, log: log,
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "export_files_removed_total", Help: "Export files removed from the bucket by the sweeper, by reason (expired, deleted, orphan).",
		}, []string{"reason"}),
		aborted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "export_stale_uploads_aborted_total", Help: "Abandoned multipart uploads aborted by the sweeper.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "export_sweep_failures_total", Help: "Sweeps that stopped on an error (retried at the next sweep).",
		}),
	}
	if reg != nil {
		reg.MustRegister(s.removed, s.aborted, s.failed)
	}
	return s
}

// Run sweeps every cfg.Every until ctx ends.
func (s *Sweeper) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Every)
	defer t.Stop()
	for {
		if _, err := s.Sweep(ctx); err != nil && ctx.Err() == nil {
			s.failed.Inc()
			s.log.Warn("retention sweep failed; retrying at the next one", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// batch is how many files one query hands out.
const batch = 100

// Sweep removes every file due now and aborts stale uploads; it returns how many files it
// removed. A file the bucket refuses stays due, for the next sweep.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	now := s.cfg.Now()
	removed := 0
	var errs []error
	for {
		jobs, err := s.store.RemovableFiles(ctx, now, batch)
		if err != nil {
			return removed, err
		}
		progress := false
		for _, j := range jobs {
			if err := s.objects.Delete(ctx, j.File.Key); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := s.store.FileRemoved(ctx, j.ID, now); err != nil {
				return removed, err
			}
			reason := "expired"
			if j.ExpiresAt == nil || now.Before(*j.ExpiresAt) {
				reason = "deleted"
			}
			s.removed.WithLabelValues(reason).Inc()
			s.log.Info("export file removed", "job_id", j.ID, "key", j.File.Key, "reason", reason)
			removed++
			progress = true
		}
		if len(jobs) < batch || !progress {
			break
		}
	}
	if su, ok := s.objects.(StaleUploads); ok {
		n, err := su.AbortStaleUploads(ctx, "", now.Add(-s.cfg.UploadMaxAge))
		s.aborted.Add(float64(n))
		if err != nil {
			errs = append(errs, err)
		} else if n > 0 {
			s.log.Info("abandoned multipart uploads aborted", "count", n)
		}
	}
	if now.Sub(s.lastOrphans) >= s.cfg.OrphanEvery {
		n, err := s.SweepOrphans(ctx, now)
		removed += n
		if err != nil {
			errs = append(errs, err)
		} else {
			s.lastOrphans = now
		}
	}
	return removed, errors.Join(errs...)
}

// SweepOrphans removes the objects no job will ever name: under ENTITY/JOB_ID/…, those of a
// job that ended more than OrphanGrace ago and whose file they are not (an attempt that lost
// its lease, was killed after storing its file, or was cancelled as its upload completed).
// Objects of running jobs, of unknown jobs and outside that layout are left alone.
func (s *Sweeper) SweepOrphans(ctx context.Context, now time.Time) (int, error) {
	keys, err := s.objects.List(ctx, "")
	if err != nil {
		return 0, err
	}
	byJob := map[string][]string{}
	for _, k := range keys {
		parts := strings.SplitN(k, "/", 3)
		if len(parts) == 3 {
			byJob[parts[1]] = append(byJob[parts[1]], k)
		}
	}
	ids := make([]string, 0, len(byJob))
	for id := range byJob {
		ids = append(ids, id)
	}
	removed := 0
	for start := 0; start < len(ids); start += 500 {
		jobs, err := s.store.Jobs(ctx, ids[start:min(start+500, len(ids))])
		if err != nil {
			return removed, err
		}
		for id, job := range jobs {
			if !job.Status.Terminal() || job.FinishedAt == nil || now.Sub(*job.FinishedAt) < s.cfg.OrphanGrace {
				continue
			}
			for _, k := range byJob[id] {
				if job.File != nil && k == job.File.Key && !job.FileRemoved {
					continue // the job's own file: RemovableFiles decides when it goes
				}
				if err := s.objects.Delete(ctx, k); err != nil {
					return removed, err
				}
				s.removed.WithLabelValues("orphan").Inc()
				s.log.Info("orphaned export file removed", "job_id", id, "key", k)
				removed++
			}
		}
	}
	return removed, nil
}
