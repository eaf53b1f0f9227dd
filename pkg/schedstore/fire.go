package schedstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/schedule"
)

// FireConfig are the scheduler's firing settings.
type FireConfig struct {
	// Grace is how late a fire time may be found and still count as on time.
	Grace time.Duration
	// Window is the catch-up window (SCHEDULER_CATCHUP_WINDOW).
	Window time.Duration
	// NewID makes job ids.
	NewID func() (string, error)
}

// Fired is what one FireNext decided for one schedule.
type Fired struct {
	Schedule schedule.Schedule
	Fires    []schedule.Fire // decided and logged now (a fire time logged before is not here)
	Jobs     []jobstore.Job
	Dropped  int // fire times older than the window, not logged; -1: too many to count
	// Disabled is why the schedule was switched off instead of fired (its stored timing
	// cannot be read); nil normally.
	Disabled error
}

// FireError is a failed decision about one schedule: the caller may go on with the others
// (skip), so one schedule that cannot be fired does not hold the rest up.
type FireError struct {
	ScheduleID string
	Err        error
}

func (e *FireError) Error() string { return "firing schedule " + e.ScheduleID + ": " + e.Err.Error() }
func (e *FireError) Unwrap() error { return e.Err }

// FireNext takes one enabled schedule whose next fire time is at or before now (skipping
// those another scheduler holds, and those in skip), decides its due fire times
// (schedule.Plan), logs them, starts the job of the one that runs and moves next_run_at, all
// in one transaction. It returns nil when no schedule is due; a *FireError when the decision
// about one schedule failed (rolled back whole).
func (st *Store) FireNext(ctx context.Context, now time.Time, cfg FireConfig, skip ...string) (*Fired, error) {
	var out *Fired
	var selected string
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		s, err := scanSchedule(tx.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules
			WHERE enabled AND next_run_at <= $1 AND NOT (id::text = ANY($2))
			ORDER BY next_run_at LIMIT 1 FOR UPDATE SKIP LOCKED`, now, append([]string{}, skip...)))
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		selected = s.ID
		out = &Fired{Schedule: s}
		timing, err := s.Spec.Timing(s.AnchorAt)
		if err != nil {
			// Stored by hand or by an older version: never crash, never spin on it.
			out.Disabled = err
			s.Enabled, s.NextRunAt, s.DisabledAt = false, nil, &now
			s.LastError = "disabled by the scheduler: " + err.Error()
			out.Schedule, err = save(ctx, tx, s)
			return err
		}
		busy, err := running(ctx, tx, s.ID)
		if err != nil {
			return err
		}
		fires, next, dropped := schedule.Plan(schedule.PlanInput{
			Timing: timing, NextRunAt: *s.NextRunAt, Now: now, Misfire: s.MisfirePolicy, Overlap: s.OverlapPolicy,
			Busy: busy, Grace: cfg.Grace, Window: cfg.Window,
		})
		out.Dropped = dropped
		for _, f := range fires {
			logged, err := insertRun(ctx, tx, s.ID, f, now)
			if err != nil {
				return err
			}
			if !logged {
				continue // this fire time was decided before: its key refuses a second decision
			}
			out.Fires = append(out.Fires, f)
			if f.Status != schedule.RunQueued {
				continue
			}
			jobID, err := cfg.NewID()
			if err != nil {
				return fmt.Errorf("making a job id: %w", err)
			}
			job, err := startAttempt(ctx, tx, s, f.At, 1, jobID, now)
			if err != nil {
				return err
			}
			out.Jobs = append(out.Jobs, job)
			s.Stats.Fired(f.At, jobID)
		}
		s.NextRunAt = nil
		if !next.IsZero() {
			s.NextRunAt = &next
		}
		s.UpdatedAt = now
		out.Schedule, err = save(ctx, tx, s)
		return err
	})
	if err != nil && selected != "" {
		return nil, &FireError{ScheduleID: selected, Err: err}
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

// running reports whether a previous run of the schedule is going: a run not over (queued,
// running or waiting for its retry), or a job of it queued or running.
func running(ctx context.Context, tx pgx.Tx, id string) (bool, error) {
	var busy bool
	// A run is going until its outcome is folded: its job may have failed a moment ago, with
	// the retry still to be decided, so the run's own state counts, not only its job's.
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schedule_runs WHERE schedule_id = $1
			AND status IN ('queued', 'running', 'retrying'))
		OR EXISTS (SELECT 1 FROM jobs WHERE schedule_id = $1::text AND status IN ('queued', 'running') AND deleted_at IS NULL)`,
		id).Scan(&busy)
	if err != nil {
		return false, fmt.Errorf("looking for a running run of schedule %s: %w", id, err)
	}
	return busy, nil
}

// Retried is what one RetryNext did.
type Retried struct {
	ScheduleID   string
	ScheduledFor time.Time
	Run          schedule.Run
	Job          *jobstore.Job // nil when the retry was not made (schedule disabled)
}

// RetryNext takes one run whose retry time came (skipping the schedules in skip) and starts
// its next attempt (or ends it as failed when its schedule was disabled meanwhile). It returns
// nil when none is due; a *FireError naming the schedule when that run's retry failed.
func (st *Store) RetryNext(ctx context.Context, now time.Time, newID func() (string, error), skip ...string) (*Retried, error) {
	var out *Retried
	var selected string
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		var id string
		var at time.Time
		// The candidate locks its schedule, not the run: schedule first, then run, as every
		// writer does (a DELETE's cascade, JobChanged), so no two transactions wait on each other.
		err := tx.QueryRow(ctx, `SELECT r.schedule_id::text, r.scheduled_for FROM schedule_runs r
			JOIN schedules s ON s.id = r.schedule_id
			WHERE r.status = 'retrying' AND r.retry_at <= $1 AND NOT (r.schedule_id::text = ANY($2))
			ORDER BY r.retry_at LIMIT 1 FOR UPDATE OF s SKIP LOCKED`, now, append([]string{}, skip...)).Scan(&id, &at)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking for a due retry: %w", err)
		}
		selected = id
		// Schedule first, then the run (the order every writer takes).
		s, err := lockSchedule(ctx, tx, id)
		if err != nil {
			return err
		}
		run, err := lockRun(ctx, tx, id, at)
		if err != nil {
			return err
		}
		next, outcome, start := run.RetryDue(now, s.Enabled)
		if next == run {
			return nil // no longer due: another scheduler moved it
		}
		out = &Retried{ScheduleID: id, ScheduledFor: at, Run: next}
		jobID := ""
		if start {
			if jobID, err = newID(); err != nil {
				return fmt.Errorf("making a job id: %w", err)
			}
			job, err := startAttempt(ctx, tx, s, at, next.Attempt, jobID, now)
			if err != nil {
				return err
			}
			out.Job = &job
		}
		if err := saveRun(ctx, tx, id, at, next, now); err != nil {
			return err
		}
		s.Stats.Moved(at, next.Status, jobID, outcome)
		_, err = save(ctx, tx, s)
		return err
	})
	if err != nil && selected != "" {
		return nil, &FireError{ScheduleID: selected, Err: err}
	}
	return out, err
}

func lockRun(ctx context.Context, tx pgx.Tx, id string, at time.Time) (schedule.Run, error) {
	var r schedule.Run
	err := tx.QueryRow(ctx, `SELECT status, attempt, retry_at, reason FROM schedule_runs
		WHERE schedule_id = $1 AND scheduled_for = $2 FOR UPDATE`, id, at).Scan(&r.Status, &r.Attempt, &r.RetryAt, &r.Reason)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, ErrNotFound
	}
	if err != nil {
		return r, fmt.Errorf("reading run %s of schedule %s: %w", at.Format(time.RFC3339), id, err)
	}
	return r, nil
}

func saveRun(ctx context.Context, tx pgx.Tx, id string, at time.Time, r schedule.Run, now time.Time) error {
	var finished *time.Time
	if r.Status.Terminal() {
		finished = &now
	}
	_, err := tx.Exec(ctx, `UPDATE schedule_runs SET status = $3, attempt = $4, retry_at = $5, reason = $6,
		updated_at = $7, finished_at = $8 WHERE schedule_id = $1 AND scheduled_for = $2`,
		id, at, r.Status, r.Attempt, r.RetryAt, r.Reason, now, finished)
	if err != nil {
		return fmt.Errorf("saving run %s of schedule %s: %w", at.Format(time.RFC3339), id, err)
	}
	return nil
}

// JobChange is a job event the run log folds: a job of some attempt started or ended.
type JobChange struct {
	JobID   string
	Status  schedule.JobStatus
	At      time.Time
	Message string // why it failed
}

// Moved is what JobChanged did: the run it moved, and to where.
type Moved struct {
	ScheduleID   string
	ScheduledFor time.Time
	Run          schedule.Run
	Outcome      schedule.Outcome
}

// JobChanged folds a job event into its run and the schedule's stats. A job that belongs to
// no run (not scheduled, or its schedule deleted), a repeat, or a late event of an older
// attempt changes nothing (nil).
func (st *Store) JobChanged(ctx context.Context, c JobChange, now time.Time) (*Moved, error) {
	if !jobstore.ValidID(c.JobID) {
		return nil, nil
	}
	var out *Moved
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		var id string
		var at time.Time
		var attempt int
		err := tx.QueryRow(ctx, `SELECT schedule_id::text, scheduled_for, attempt FROM schedule_attempts WHERE job_id = $1`,
			c.JobID).Scan(&id, &at, &attempt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("looking up the run of job %s: %w", c.JobID, err)
		}
		s, err := lockSchedule(ctx, tx, id)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		run, err := lockRun(ctx, tx, id, at)
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		next, outcome, changed := run.JobChanged(attempt, c.Status, c.At, c.Message, schedule.RetryPolicy{
			MaxRetries: s.MaxRetries, Delay: time.Duration(s.RetryDelaySeconds) * time.Second,
		})
		if !changed {
			return nil
		}
		if err := saveRun(ctx, tx, id, at, next, now); err != nil {
			return err
		}
		s.Stats.Moved(at, next.Status, "", outcome)
		if _, err := save(ctx, tx, s); err != nil {
			return err
		}
		out = &Moved{ScheduleID: id, ScheduledFor: at, Run: next, Outcome: outcome}
		return nil
	})
	return out, err
}

// NextWake is the earliest time something is due: an enabled schedule's next fire time or a
// run's retry (zero: nothing scheduled).
func (st *Store) NextWake(ctx context.Context) (time.Time, error) {
	var at *time.Time
	err := st.pool.QueryRow(ctx, `SELECT least((SELECT min(next_run_at) FROM schedules WHERE enabled),
		(SELECT min(retry_at) FROM schedule_runs WHERE status = 'retrying'))`).Scan(&at)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading the next due time: %w", err)
	}
	if at == nil {
		return time.Time{}, nil
	}
	return *at, nil
}
