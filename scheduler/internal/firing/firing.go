// Package firing is the scheduler's loop: it fires the schedules whose time came and starts
// the retries that are due, then sleeps until the next due time (at most Poll), so a fire
// happens within a few milliseconds of its time and a change made through the API (toggle,
// PUT, DELETE) counts from the next decision. Any number of schedulers may run the loop
// together: the store's row locks share the work, and its run log's key makes a second fire
// of the same time impossible, so no leader is needed.
package firing

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
)

// Store is what the loop needs of the schedules' repository.
type Store interface {
	FireNext(ctx context.Context, now time.Time, cfg schedstore.FireConfig, skip ...string) (*schedstore.Fired, error)
	RetryNext(ctx context.Context, now time.Time, newID func() (string, error), skip ...string) (*schedstore.Retried, error)
	NextWake(ctx context.Context) (time.Time, error)
}

// Config are the loop's settings.
type Config struct {
	// Grace: a fire time found later than this is a misfire (SCHEDULER_MISFIRE_GRACE).
	Grace time.Duration
	// Window: the catch-up window (SCHEDULER_CATCHUP_WINDOW).
	Window time.Duration
	// Poll is the longest sleep between two decisions (SCHEDULER_POLL).
	Poll time.Duration
	// Workers is how many decisions one scheduler makes at once (SCHEDULER_WORKERS).
	Workers int
}

// Loop fires schedules.
type Loop struct {
	store   Store
	cfg     Config
	now     func() time.Time
	newID   func() (string, error)
	log     *slog.Logger
	metrics *Metrics
}

// New builds a loop; now is its clock (time.Now outside tests).
func New(store Store, cfg Config, now func() time.Time, newID func() (string, error), log *slog.Logger, m *Metrics) *Loop {
	return &Loop{store: store, cfg: cfg, now: now, newID: newID, log: log, metrics: m}
}

// minSleep keeps the loop from spinning while another scheduler holds a due schedule.
const minSleep = 20 * time.Millisecond

// Run decides until ctx is cancelled. A database error is logged and retried at the next
// decision; it never stops the loop.
func (l *Loop) Run(ctx context.Context) error {
	for {
		if err := l.Tick(ctx); err != nil && ctx.Err() == nil {
			l.metrics.errors.Inc()
			l.log.Error("deciding due schedules", "err", err)
		}
		wait := l.cfg.Poll
		if at, err := l.store.NextWake(ctx); err == nil && !at.IsZero() {
			wait = min(wait, max(at.Sub(l.now()), minSleep))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// Tick fires every schedule due now and starts every retry due now, with Config.Workers
// decisions at once (row locks share the schedules among them as among replicas). Each
// decision reads the clock afresh: a tick that fires many schedules gives each its own
// decision time. A decision that fails is reported and its schedule left for the next tick;
// the others go on.
func (l *Loop) Tick(ctx context.Context) error {
	fc := schedstore.FireConfig{Grace: l.cfg.Grace, Window: l.cfg.Window, NewID: l.newID}
	errs := l.drain(ctx, func(skip []string) (bool, error) {
		f, err := l.store.FireNext(ctx, l.now(), fc, skip...)
		if f != nil {
			l.observe(f)
		}
		return f != nil, err
	})
	errs = append(errs, l.drain(ctx, func(skip []string) (bool, error) {
		r, err := l.store.RetryNext(ctx, l.now(), l.newID, skip...)
		if r != nil {
			l.observeRetry(r)
		}
		return r != nil, err
	})...)
	return errors.Join(errs...)
}

// drain runs next until it finds nothing more to do: once, then, when that found work, on
// Config.Workers goroutines (an idle tick costs one query, not one per worker). A
// *schedstore.FireError puts its schedule on the worker's skip list; another error stops the
// worker.
func (l *Loop) drain(ctx context.Context, next func(skip []string) (bool, error)) []error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	var first []string // the first call's broken schedule, skipped by every worker
	did, err := next(nil)
	var fe *schedstore.FireError
	switch {
	case errors.As(err, &fe):
		errs, first = append(errs, err), []string{fe.ScheduleID}
	case err != nil:
		return []error{err}
	case !did:
		return nil
	}
	for range max(l.cfg.Workers, 1) {
		wg.Go(func() {
			skip := slices.Clone(first)
			for ctx.Err() == nil {
				did, err := next(skip)
				var fe *schedstore.FireError
				if errors.As(err, &fe) {
					skip = append(skip, fe.ScheduleID)
				}
				if err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					if fe == nil {
						return
					}
					continue
				}
				if !did {
					return
				}
			}
		})
	}
	wg.Wait()
	return errs
}

func (l *Loop) observeRetry(r *schedstore.Retried) {
	if r.Job != nil {
		l.metrics.retries.WithLabelValues("started").Inc()
		l.log.Info("retry started", "schedule_id", r.ScheduleID, "scheduled_for", r.ScheduledFor,
			"attempt", r.Run.Attempt, "job_id", r.Job.ID)
		return
	}
	l.metrics.retries.WithLabelValues("dropped").Inc()
	l.log.Info("retry dropped", "schedule_id", r.ScheduleID, "scheduled_for", r.ScheduledFor, "reason", r.Run.Reason)
}

func (l *Loop) observe(f *schedstore.Fired) {
	s := f.Schedule
	if f.Disabled != nil {
		l.metrics.disabled.Inc()
		l.log.Error("schedule disabled: its stored timing cannot be read", "schedule_id", s.ID, "err", f.Disabled)
		return
	}
	if f.Dropped != 0 {
		l.metrics.dropped.Add(float64(max(f.Dropped, 0)))
		l.log.Warn("fire times older than the catch-up window were not logged", "schedule_id", s.ID,
			"count", f.Dropped, "window", l.cfg.Window.String())
	}
	done := l.now()
	jobs := map[int64]string{} // by fire time; UnixMicro, since the zones of the two may differ
	for _, j := range f.Jobs {
		jobs[j.ScheduledFor.UnixMicro()] = j.ID
	}
	for _, fire := range f.Fires {
		switch fire.Status {
		case schedule.RunQueued:
			l.metrics.fires.WithLabelValues(string(fire.Trigger)).Inc()
			if fire.Trigger == schedule.TriggerTimetable {
				l.metrics.delay.Observe(done.Sub(fire.At).Seconds())
			}
			l.log.Info("fired", "schedule_id", s.ID, "scheduled_for", fire.At, "trigger", fire.Trigger,
				"job_id", jobs[fire.At.UnixMicro()], "delay_ms", done.Sub(fire.At).Milliseconds())
		case schedule.RunMissed:
			l.metrics.misfires.Inc()
			l.log.Info("missed", "schedule_id", s.ID, "scheduled_for", fire.At, "reason", fire.Reason)
		case schedule.RunSkippedOverlap:
			l.metrics.skips.Inc()
			l.log.Info("skipped", "schedule_id", s.ID, "scheduled_for", fire.At, "reason", fire.Reason)
		}
	}
}

// Metrics are the loop's Prometheus figures.
type Metrics struct {
	fires    *prometheus.CounterVec
	misfires prometheus.Counter
	skips    prometheus.Counter
	retries  *prometheus.CounterVec
	delay    prometheus.Histogram
	disabled prometheus.Counter
	dropped  prometheus.Counter
	errors   prometheus.Counter
}

// Fires is the fires counter, by trigger (for tests).
func (m *Metrics) Fires() *prometheus.CounterVec { return m.fires }

// Misfires is the misfires counter (for tests).
func (m *Metrics) Misfires() prometheus.Counter { return m.misfires }

// NewMetrics registers the loop's metrics on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		fires: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scheduler_fires_total",
			Help: "Fire times that started a job, by trigger (timetable, catch_up)."}, []string{"trigger"}),
		misfires: prometheus.NewCounter(prometheus.CounterOpts{Name: "scheduler_misfires_total",
			Help: "Fire times logged missed (no scheduler fired them in time)."}),
		skips: prometheus.NewCounter(prometheus.CounterOpts{Name: "scheduler_skips_total",
			Help: "Fire times skipped because the previous run was still going (overlap_policy skip)."}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scheduler_retries_total",
			Help: "Retries of failed runs: started, or dropped (schedule disabled)."}, []string{"result"}),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "scheduler_fire_delay_seconds",
			Help:    "From a fire time to its job being committed, for on-time fires.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		disabled: prometheus.NewCounter(prometheus.CounterOpts{Name: "scheduler_schedules_disabled_total",
			Help: "Schedules switched off because their stored timing could not be read."}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{Name: "scheduler_dropped_fires_total",
			Help: "Missed fire times older than the catch-up window, not logged one by one."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "scheduler_decision_errors_total",
			Help: "Decisions that failed (database errors); retried at the next decision."}),
	}
	// Every trigger and retry result at 0 from the start: rules and dashboards
	// (deployments/observability) see the series before the first fire.
	for _, t := range []schedule.Trigger{schedule.TriggerTimetable, schedule.TriggerCatchUp} {
		m.fires.WithLabelValues(string(t))
	}
	for _, r := range []string{"started", "dropped"} {
		m.retries.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.fires, m.misfires, m.skips, m.retries, m.delay, m.disabled, m.dropped, m.errors)
	}
	return m
}
