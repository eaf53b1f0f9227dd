// Package delivery is the exporter's delivery worker: it takes completed jobs whose platform
// delivers beyond our bucket (jobstore.ClaimDelivery: one worker per delivery, under a lease)
// and streams each file from the export bucket to the platform's destination
// (pkg/destination), recording the outcome through the job's transitions (pkg/job): delivered,
// retried after the next delay of the backoff, or failed once the delays are spent. The job
// stays completed throughout: the file is safe in our bucket.
package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/exporter/internal/claimloop"
	"github.com/productsmanager/exportplatform/pkg/destination"
	"github.com/productsmanager/exportplatform/pkg/job"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/objectstore"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/platformstore"
)

// Jobs is what the worker needs of the jobs' repository; *jobstore.Store implements it.
type Jobs interface {
	ClaimDelivery(ctx context.Context, owner string, ttl time.Duration) (jobstore.Job, error)
	Do(ctx context.Context, id string, c job.Command) (jobstore.Job, error)
	NextDelivery(ctx context.Context) (*time.Time, error)
}

// Platforms reads a job's platform; *platformstore.Store implements it.
type Platforms interface {
	Get(ctx context.Context, id string) (platform.Platform, error)
}

// DefaultBackoff is the wait after each failed attempt (CONTRACT: 1 m, 5 m, 15 m, 1 h, 6 h):
// six attempts in all, over about seven and a half hours.
var DefaultBackoff = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, time.Hour, 6 * time.Hour}

// Config tunes the worker.
type Config struct {
	Owner       string          // the lease owner: the exporter's worker id
	Concurrency int             // deliveries at once
	LeaseTTL    time.Duration   // renewed every third of it while a delivery runs
	Backoff     []time.Duration // waits after failed attempts; past the last, the delivery fails
	Poll        time.Duration   // longest sleep between looks for due deliveries
	Secrets     destination.Secrets
}

// Worker delivers files.
type Worker struct {
	cfg       Config
	jobs      Jobs
	platforms Platforms
	objects   objectstore.Store
	log       *slog.Logger
	m         *metrics
	wake      chan struct{}
}

type metrics struct {
	attempts *prometheus.CounterVec
	bytes    prometheus.Counter
	seconds  prometheus.Histogram
}

// New builds a worker; reg may be nil.
func New(cfg Config, jobs Jobs, platforms Platforms, objects objectstore.Store, log *slog.Logger, reg prometheus.Registerer) *Worker {
	if cfg.Concurrency < 1 {
		cfg.Concurrency = 1
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Secrets == nil {
		cfg.Secrets = destination.EnvSecrets
	}
	m := &metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "exporter_delivery_attempts_total",
			Help: "Delivery attempts by destination type and outcome (delivered, retry, failed)."}, []string{"type", "outcome"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "exporter_delivered_bytes_total", Help: "Bytes delivered to destinations."}),
		seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "exporter_delivery_seconds",
			Help: "Duration of successful deliveries.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 14)}),
	}
	// Every destination type and outcome at 0 from the start: rules and dashboards
	// (deployments/observability) see the series before the first delivery, and an increase
	// from 0 counts it.
	for _, kind := range []platform.DestinationType{platform.S3, platform.SFTP, platform.HTTP} {
		for _, outcome := range []string{"delivered", "retry", "failed"} {
			m.attempts.WithLabelValues(string(kind), outcome)
		}
	}
	if reg != nil {
		reg.MustRegister(m.attempts, m.bytes, m.seconds)
	}
	return &Worker{cfg: cfg, jobs: jobs, platforms: platforms, objects: objects, log: log, m: m, wake: make(chan struct{}, 1)}
}

// Wake makes the worker look for due deliveries now (a job just completed here).
func (w *Worker) Wake() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the deliveries under way (cancelled with ctx:
// their leases lapse and another worker takes them up).
func (w *Worker) Run(ctx context.Context) error {
	return claimloop.Loop[jobstore.Job]{
		Slots: w.cfg.Concurrency, Poll: w.cfg.Poll, Wake: w.wake, Next: w.jobs.NextDelivery, Work: w.deliver,
		Claim: func(ctx context.Context) (jobstore.Job, bool) {
			j, err := w.jobs.ClaimDelivery(ctx, w.cfg.Owner, w.cfg.LeaseTTL)
			if err != nil && !errors.Is(err, jobstore.ErrNotClaimed) && ctx.Err() == nil {
				w.log.Warn("claiming a delivery failed", "err", err)
			}
			return j, err == nil
		},
	}.Run(ctx)
}

// errPermanent marks a failure no retry can mend.
var errPermanent = errors.New("permanent")

func (w *Worker) deliver(ctx context.Context, j jobstore.Job) {
	attempt := j.Delivery.Attempts
	log := w.log.With("job_id", j.ID, "attempt", attempt)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go w.renew(ctx, cancel, j.ID, attempt, log)

	t0 := time.Now()
	kind, target, err := w.send(ctx, j)
	if ctx.Err() != nil && err != nil {
		log.Info("delivery interrupted (shutdown or lease lost): its lease lapses and another attempt follows", "err", err)
		return
	}
	rec := context.WithoutCancel(ctx)
	if err == nil {
		if _, err := w.jobs.Do(rec, j.ID, job.Delivered{Owner: w.cfg.Owner, Attempt: attempt, Target: target, At: time.Now().UTC()}); err != nil {
			log.Warn("recording a delivery failed", "err", err)
			return
		}
		w.m.attempts.WithLabelValues(kind, "delivered").Inc()
		w.m.bytes.Add(float64(j.File.SizeBytes))
		w.m.seconds.Observe(time.Since(t0).Seconds())
		log.Info("delivered", "target", target, "bytes", j.File.SizeBytes, "seconds", time.Since(t0).Seconds())
		return
	}
	retry := time.Duration(0)
	if !errors.Is(err, errPermanent) && attempt <= len(w.cfg.Backoff) {
		retry = w.cfg.Backoff[attempt-1]
	}
	outcome := "retry"
	if retry == 0 {
		outcome = "failed"
	}
	w.m.attempts.WithLabelValues(kind, outcome).Inc()
	log.Warn("delivery attempt failed", "err", err, "retry_in", retry.String())
	msg := err.Error()
	if _, rerr := w.jobs.Do(rec, j.ID, job.DeliveryAttemptFailed{Owner: w.cfg.Owner, Attempt: attempt, Target: target,
		Error: job.Error{Code: "delivery_failed", Message: msg}, RetryAfter: retry, At: time.Now().UTC()}); rerr != nil {
		log.Warn("recording a failed delivery attempt failed", "err", rerr)
	}
}

// renew extends the lease while the delivery runs; a lease lost (the job deleted, another
// worker took over) cancels the delivery.
func (w *Worker) renew(ctx context.Context, cancel context.CancelFunc, id string, attempt int, log *slog.Logger) {
	t := time.NewTicker(max(w.cfg.LeaseTTL/3, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_, err := w.jobs.Do(ctx, id, job.RenewDelivery{Owner: w.cfg.Owner, Attempt: attempt, TTL: w.cfg.LeaseTTL, At: time.Now().UTC()})
			if errors.Is(err, job.ErrLeaseLost) || errors.Is(err, job.ErrNotFound) {
				log.Warn("delivery lease lost: stopping", "err", err)
				cancel()
				return
			}
		}
	}
}

// send streams the job's file to its platform's destination; kind is the destination type.
func (w *Worker) send(ctx context.Context, j jobstore.Job) (kind, target string, err error) {
	if j.PlatformID == nil || j.File == nil {
		return "", "", fmt.Errorf("%w: the job has no platform or no file", errPermanent)
	}
	p, err := w.platforms.Get(ctx, *j.PlatformID)
	if errors.Is(err, platformstore.ErrNotFound) {
		return "", "", fmt.Errorf("%w: platform %s was deleted", errPermanent, *j.PlatformID)
	}
	if err != nil {
		return "", "", fmt.Errorf("reading platform %s: %w", *j.PlatformID, err)
	}
	kind = string(p.Destination.Type)
	sender, err := destination.Open(p.Destination, w.cfg.Secrets)
	if errors.Is(err, destination.ErrStorageOnly) {
		return kind, "", fmt.Errorf("%w: platform %s no longer delivers (its destination is storage)", errPermanent, p.ID)
	}
	if err != nil {
		return kind, "", err
	}
	defer sender.Close()
	rc, info, err := w.objects.Get(ctx, j.File.Key)
	if errors.Is(err, objectstore.ErrNotFound) {
		return kind, sender.Target(), fmt.Errorf("%w: the file %s is gone from the export bucket", errPermanent, j.File.Key)
	}
	if err != nil {
		return kind, sender.Target(), fmt.Errorf("reading %s from the export bucket: %w", j.File.Key, err)
	}
	defer rc.Close()
	target, err = sender.Send(ctx, j.File.FileName, rc, info.Size, j.File.ContentType)
	if err != nil {
		return kind, sender.Target(), err
	}
	return kind, target, nil
}
