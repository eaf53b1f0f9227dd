// Package outcomes folds the jobs' events (exports.events, the scheduler's own consumer group,
// read_committed) into the schedules' run log and stats: a job of some attempt started,
// completed, failed or was cancelled. Folding is idempotent: the store moves a run once per
// change of its latest attempt, so a repeated event (same ce_id, or another copy) counts once.
package outcomes

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/productsmanager/exportplatform/pkg/eventbus"
	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/schedstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
)

// Store is what the fold needs of the schedules' repository.
type Store interface {
	JobChanged(ctx context.Context, c schedstore.JobChange, now time.Time) (*schedstore.Moved, error)
}

// Handler returns the consumer's handler.
func Handler(store Store, now func() time.Time, log *slog.Logger, reg prometheus.Registerer) eventbus.Handler {
	folded := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "scheduler_run_outcomes_total",
		Help: "Runs moved by their jobs' events, by the status they moved to."}, []string{"status"})
	if reg != nil {
		reg.MustRegister(folded)
	}
	return func(ctx context.Context, env events.Envelope) error {
		c, ok, err := change(env)
		if err != nil {
			return eventbus.Permanent(err)
		}
		if !ok {
			return nil
		}
		m, err := store.JobChanged(ctx, c, now())
		if err != nil {
			return fmt.Errorf("folding %s of job %s: %w", env.Type, c.JobID, err)
		}
		if m != nil {
			folded.WithLabelValues(string(m.Run.Status)).Inc()
			log.Info("run moved", "schedule_id", m.ScheduleID, "scheduled_for", m.ScheduledFor,
				"status", m.Run.Status, "attempt", m.Run.Attempt, "job_id", c.JobID, "ce_id", env.ID)
		}
		return nil
	}
}

// change reads the job change an event says, if it says one.
func change(env events.Envelope) (schedstore.JobChange, bool, error) {
	switch env.Type {
	case events.TypeStarted:
		e, err := events.Decode[events.ExportStarted](env)
		return schedstore.JobChange{JobID: e.JobID, Status: schedule.JobRunning, At: e.StartedAt}, err == nil, err
	case events.TypeCompleted:
		e, err := events.Decode[events.ExportCompleted](env)
		return schedstore.JobChange{JobID: e.JobID, Status: schedule.JobCompleted, At: e.FinishedAt}, err == nil, err
	case events.TypeFailed:
		e, err := events.Decode[events.ExportFailed](env)
		return schedstore.JobChange{JobID: e.JobID, Status: schedule.JobFailed, At: e.FailedAt, Message: e.Message}, err == nil, err
	case events.TypeCancelled:
		e, err := events.Decode[events.ExportCancelled](env)
		return schedstore.JobChange{JobID: e.JobID, Status: schedule.JobCancelled, At: e.CancelledAt}, err == nil, err
	}
	return schedstore.JobChange{}, false, nil
}
