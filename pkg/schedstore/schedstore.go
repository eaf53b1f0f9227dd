// Package schedstore is the only writer of schedules, their run log and their attempts (the
// `exports` database; tables in pkg/jobstore/migrations). Every change is a transaction that
// locks the schedule's row, applies a pure transition of pkg/schedule and saves the result;
// a run's job is created in the same transaction (with its ExportRequested in the outbox).
//
// Invariants:
//   - one run per (schedule_id, scheduled_for): the table's key, not a leader, refuses a
//     second fire of the same time, whatever the number of schedulers;
//   - a run's stats count once: a run moves to an outcome once (compare-and-set on its state),
//     and stats change in the same transaction;
//   - locks are taken schedule first, then run, everywhere.
package schedstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/productsmanager/exportplatform/pkg/events"
	"github.com/productsmanager/exportplatform/pkg/export"
	"github.com/productsmanager/exportplatform/pkg/jobstore"
	"github.com/productsmanager/exportplatform/pkg/platform"
	"github.com/productsmanager/exportplatform/pkg/schedule"
)

// Errors callers branch on.
var (
	ErrNotFound  = errors.New("schedule not found")
	ErrBadCursor = jobstore.ErrBadCursor
	// ErrRunExists is returned by RunNow when a run of that very instant exists.
	ErrRunExists = errors.New("a run of this schedule at this instant exists")
)

// Store is the schedules' repository.
type Store struct {
	pool *pgxpool.Pool
}

// New wraps a pool of the exports database (migrated by jobstore.Migrate).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

const scheduleColumns = `id::text, name, platform_id::text, schedule_type, cron_expression, interval_minutes, timezone,
	export_config, max_retries, retry_delay_seconds, misfire_policy, overlap_policy, enabled, next_run_at,
	anchor_at, disabled_at, owner, created_by, runs, successes, failures, consecutive_failures, last_run_at,
	last_status, last_job_id::text, last_error, version, created_at, updated_at`

func scanSchedule(row pgx.Row) (schedule.Schedule, error) {
	var s schedule.Schedule
	var cfg []byte
	err := row.Scan(&s.ID, &s.Name, &s.PlatformID, &s.Type, &s.CronExpression, &s.IntervalMinutes, &s.Timezone,
		&cfg, &s.MaxRetries, &s.RetryDelaySeconds, &s.MisfirePolicy, &s.OverlapPolicy, &s.Enabled, &s.NextRunAt,
		&s.AnchorAt, &s.DisabledAt, &s.Owner, &s.CreatedBy, &s.Stats.Runs, &s.Stats.Successes, &s.Stats.Failures,
		&s.Stats.ConsecutiveFailures, &s.Stats.LastRunAt, &s.Stats.LastStatus, &s.Stats.LastJobID, &s.LastError,
		&s.Version, &s.CreatedAt, &s.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, ErrNotFound
	}
	if err != nil {
		return s, fmt.Errorf("scanning schedule: %w", err)
	}
	if err := json.Unmarshal(cfg, &s.ExportConfig); err != nil {
		return s, fmt.Errorf("decoding schedule %s export_config: %w", s.ID, err)
	}
	return s, nil
}

// audited queues the audit event of an act on s within tx, when the caller gave one: the
// request's (actor, client, id, time and action), completed with the schedule's details.
func audited(ctx context.Context, tx pgx.Tx, s schedule.Schedule, audit *events.Accessed) error {
	if audit == nil {
		return nil
	}
	return jobstore.AuditTx(ctx, tx, s.Access(audit.Action).By(*audit))
}

// Create saves a new schedule (made by schedule.New), with its audit event when not nil.
func (st *Store) Create(ctx context.Context, s schedule.Schedule, audit *events.Accessed) (schedule.Schedule, error) {
	cfg, err := json.Marshal(s.ExportConfig)
	if err != nil {
		return s, fmt.Errorf("encoding export_config: %w", err)
	}
	var out schedule.Schedule
	err = pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		var err error
		if out, err = scanSchedule(tx.QueryRow(ctx, `INSERT INTO schedules (id, name, platform_id, schedule_type,
		cron_expression, interval_minutes, timezone, export_config, max_retries, retry_delay_seconds, misfire_policy,
		overlap_policy, enabled, next_run_at, anchor_at, disabled_at, owner, created_by, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $19)
		RETURNING `+scheduleColumns,
			s.ID, s.Name, s.PlatformID, s.Type, s.CronExpression, s.IntervalMinutes, s.Timezone, cfg, s.MaxRetries,
			s.RetryDelaySeconds, s.MisfirePolicy, s.OverlapPolicy, s.Enabled, s.NextRunAt, s.AnchorAt, s.DisabledAt,
			s.Owner, s.CreatedBy, s.CreatedAt)); err != nil {
			return err
		}
		return audited(ctx, tx, out, audit)
	})
	if err != nil {
		return s, fmt.Errorf("creating schedule: %w", err)
	}
	return out, nil
}

// Get returns one schedule.
func (st *Store) Get(ctx context.Context, id string) (schedule.Schedule, error) {
	if !jobstore.ValidID(id) {
		return schedule.Schedule{}, ErrNotFound
	}
	return scanSchedule(st.pool.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules WHERE id = $1`, id))
}

// ListFilter selects schedules for List.
type ListFilter struct {
	Enabled    *bool
	PlatformID string
	Owner      string
	Limit      int
	Cursor     string
}

// List returns schedules newest first and the cursor of the next page ("" at the end).
func (st *Store) List(ctx context.Context, f ListFilter) ([]schedule.Schedule, string, error) {
	p, err := jobstore.NewPage(f.Limit, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	if f.Enabled != nil {
		p.Where("enabled = %s", *f.Enabled)
	}
	if f.PlatformID != "" {
		p.Where("platform_id::text = %s", f.PlatformID)
	}
	if f.Owner != "" {
		p.Where("owner = %s", f.Owner)
	}
	sql, args := p.Query(`SELECT ` + scheduleColumns + ` FROM schedules`)
	rows, err := st.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing schedules: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (schedule.Schedule, error) { return scanSchedule(r) })
	if err != nil {
		return nil, "", fmt.Errorf("listing schedules: %w", err)
	}
	out, next := jobstore.PageOf(p, out, func(x schedule.Schedule) (time.Time, string) { return x.CreatedAt, x.ID })
	return out, next, nil
}

// Change applies fn to a schedule under its row lock and saves it (PUT, toggle), with its
// audit event when not nil. fn returns the fire times to log as disabled (a re-enabled
// schedule), or an error that aborts.
func (st *Store) Change(ctx context.Context, id string, audit *events.Accessed, fn func(*schedule.Schedule) ([]schedule.Fire, error)) (schedule.Schedule, error) {
	if !jobstore.ValidID(id) {
		return schedule.Schedule{}, ErrNotFound
	}
	var out schedule.Schedule
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		s, err := lockSchedule(ctx, tx, id)
		if err != nil {
			return err
		}
		passed, err := fn(&s)
		if err != nil {
			return err
		}
		for _, f := range passed {
			if _, err := insertRun(ctx, tx, s.ID, f, s.UpdatedAt); err != nil {
				return err
			}
		}
		if out, err = save(ctx, tx, s); err != nil {
			return err
		}
		return audited(ctx, tx, out, audit)
	})
	return out, err
}

// Delete removes a schedule and its run log, with its audit event when not nil; the jobs it
// made stay (with its id).
func (st *Store) Delete(ctx context.Context, id string, audit *events.Accessed) error {
	if !jobstore.ValidID(id) {
		return ErrNotFound
	}
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		s, err := lockSchedule(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM schedules WHERE id = $1`, id); err != nil {
			return err
		}
		return audited(ctx, tx, s, audit)
	})
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("deleting schedule %s: %w", id, err)
	}
	return err
}

func lockSchedule(ctx context.Context, tx pgx.Tx, id string) (schedule.Schedule, error) {
	return scanSchedule(tx.QueryRow(ctx, `SELECT `+scheduleColumns+` FROM schedules WHERE id = $1 FOR UPDATE`, id))
}

// save writes every field a transition may change, compare-and-set on the version read.
func save(ctx context.Context, tx pgx.Tx, s schedule.Schedule) (schedule.Schedule, error) {
	cfg, err := json.Marshal(s.ExportConfig)
	if err != nil {
		return s, fmt.Errorf("encoding export_config: %w", err)
	}
	out, err := scanSchedule(tx.QueryRow(ctx, `UPDATE schedules SET name = $3, platform_id = $4, schedule_type = $5,
			cron_expression = $6, interval_minutes = $7, timezone = $8, export_config = $9, max_retries = $10,
			retry_delay_seconds = $11, misfire_policy = $12, overlap_policy = $13, enabled = $14, next_run_at = $15,
			anchor_at = $16, disabled_at = $17, runs = $18, successes = $19, failures = $20,
			consecutive_failures = $21, last_run_at = $22, last_status = $23, last_job_id = $24, last_error = $25,
			updated_at = $26, version = version + 1
		WHERE id = $1 AND version = $2
		RETURNING `+scheduleColumns,
		s.ID, s.Version, s.Name, s.PlatformID, s.Type, s.CronExpression, s.IntervalMinutes, s.Timezone, cfg,
		s.MaxRetries, s.RetryDelaySeconds, s.MisfirePolicy, s.OverlapPolicy, s.Enabled, s.NextRunAt, s.AnchorAt,
		s.DisabledAt, s.Stats.Runs, s.Stats.Successes, s.Stats.Failures, s.Stats.ConsecutiveFailures,
		s.Stats.LastRunAt, s.Stats.LastStatus, s.Stats.LastJobID, s.LastError, s.UpdatedAt))
	if errors.Is(err, ErrNotFound) {
		return s, fmt.Errorf("saving schedule %s: changed by another writer since it was read", s.ID)
	}
	if err != nil {
		return s, fmt.Errorf("saving schedule %s: %w", s.ID, err)
	}
	return out, nil
}

// insertRun logs one fire time; false when that fire time already has its row.
func insertRun(ctx context.Context, tx pgx.Tx, scheduleID string, f schedule.Fire, now time.Time) (bool, error) {
	attempt := 0
	var finished *time.Time
	if f.Status == schedule.RunQueued {
		attempt = 1
	} else {
		finished = &now
	}
	tag, err := tx.Exec(ctx, `INSERT INTO schedule_runs (schedule_id, scheduled_for, trigger, status, reason, attempt,
			created_at, updated_at, finished_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) ON CONFLICT (schedule_id, scheduled_for) DO NOTHING`,
		scheduleID, f.At, f.Trigger, f.Status, f.Reason, attempt, now, finished)
	if err != nil {
		return false, fmt.Errorf("logging run %s of schedule %s: %w", f.At.Format(time.RFC3339), scheduleID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// startAttempt creates the job of one attempt of a run, with its ExportRequested, and links it.
// The job exports the schedule's configuration over its platform's defaults as they are now.
func startAttempt(ctx context.Context, tx pgx.Tx, s schedule.Schedule, scheduledFor time.Time, attempt int, jobID string, now time.Time) (jobstore.Job, error) {
	c, deliver := s.ExportConfig, false
	if s.PlatformID != nil {
		var p platform.Spec
		var cfg []byte
		if err := tx.QueryRow(ctx, `SELECT type, default_config, destination->>'type' FROM platforms WHERE id = $1`,
			*s.PlatformID).Scan(&p.Type, &cfg, &p.Destination.Type); err != nil {
			return jobstore.Job{}, fmt.Errorf("reading platform %s of schedule %s: %w", *s.PlatformID, s.ID, err)
		}
		if err := json.Unmarshal(cfg, &p.DefaultConfig); err != nil {
			return jobstore.Job{}, fmt.Errorf("decoding platform %s: %w", *s.PlatformID, err)
		}
		c, deliver = export.Merge(p.Defaults(), c), p.Destination.Type != platform.Storage
	}
	id := s.ID
	at := scheduledFor.UTC()
	job, err := jobstore.CreateTx(ctx, tx, events.ExportRequested{
		JobID: jobID, Entity: c.Entity, Format: c.Format, Fields: c.Fields, ExcludeFields: c.ExcludeFields,
		Filters: c.Filters, Options: c.Options, FileName: c.FileName, Headers: c.Headers, Compression: c.Compression,
		RequestedBy: s.Owner, RequesterName: "schedule " + s.Name, ScheduleID: &id, ScheduledFor: &at, PlatformID: s.PlatformID, Deliver: deliver,
		RequestedAt: now.UTC().Truncate(time.Microsecond),
	})
	if err != nil {
		return job, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schedule_attempts (job_id, schedule_id, scheduled_for, attempt, created_at)
		VALUES ($1, $2, $3, $4, $5)`, jobID, s.ID, scheduledFor, attempt, now); err != nil {
		return job, fmt.Errorf("linking job %s to its run: %w", jobID, err)
	}
	return job, nil
}

// RunNow starts one run of the schedule at now, outside its timetable (trigger manual), with
// its job and, when not nil, its audit event, whether the schedule is enabled or not.
func (st *Store) RunNow(ctx context.Context, id string, now time.Time, jobID string, audit *events.Accessed) (jobstore.Job, error) {
	if !jobstore.ValidID(id) {
		return jobstore.Job{}, ErrNotFound
	}
	now = now.UTC().Truncate(time.Microsecond)
	var job jobstore.Job
	err := pgx.BeginFunc(ctx, st.pool, func(tx pgx.Tx) error {
		s, err := lockSchedule(ctx, tx, id)
		if err != nil {
			return err
		}
		ok, err := insertRun(ctx, tx, s.ID, schedule.Fire{At: now, Trigger: schedule.TriggerManual, Status: schedule.RunQueued,
			Reason: "run now, outside the timetable"}, now)
		if err != nil {
			return err
		}
		if !ok {
			return ErrRunExists
		}
		if job, err = startAttempt(ctx, tx, s, now, 1, jobID, now); err != nil {
			return err
		}
		s.Stats.Fired(now, jobID)
		if s, err = save(ctx, tx, s); err != nil {
			return err
		}
		return audited(ctx, tx, s, audit)
	})
	return job, err
}

// Attempt is one job of a run.
type Attempt struct {
	JobID     string    `json:"job_id"`
	Attempt   int       `json:"attempt"`
	JobStatus string    `json:"job_status"` // "" once the job is deleted
	CreatedAt time.Time `json:"created_at"`
}

// Run is one entry of the run log.
type Run struct {
	ScheduledFor time.Time          `json:"scheduled_for"`
	Local        string             `json:"scheduled_for_local"`
	Trigger      schedule.Trigger   `json:"trigger"`
	Status       schedule.RunStatus `json:"status"`
	Reason       string             `json:"reason"`
	Attempt      int                `json:"attempt"`
	RetryAt      *time.Time         `json:"retry_at"`
	JobIDs       []string           `json:"job_ids"`
	Attempts     []Attempt          `json:"attempts"`
	CreatedAt    time.Time          `json:"created_at"`
	UpdatedAt    time.Time          `json:"updated_at"`
	FinishedAt   *time.Time         `json:"finished_at"`
}

// RunFilter selects log entries.
type RunFilter struct {
	Status schedule.RunStatus
	Limit  int
	Cursor string
}

// Runs returns a schedule's run log, newest fire time first, with the next page's cursor.
func (st *Store) Runs(ctx context.Context, s schedule.Schedule, f RunFilter) ([]Run, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	args := []any{s.ID, limit + 1}
	where := "schedule_id = $1"
	if f.Status != "" {
		args = append(args, f.Status)
		where += fmt.Sprintf(" AND status = $%d", len(args))
	}
	if f.Cursor != "" {
		t, id, err := jobstore.DecodeCursor(f.Cursor)
		if err != nil || id != s.ID {
			return nil, "", ErrBadCursor
		}
		args = append(args, t)
		where += fmt.Sprintf(" AND scheduled_for < $%d", len(args))
	}
	rows, err := st.pool.Query(ctx, `SELECT scheduled_for, trigger, status, reason, attempt, retry_at, created_at,
		updated_at, finished_at FROM schedule_runs WHERE `+where+` ORDER BY scheduled_for DESC LIMIT $2`, args...)
	if err != nil {
		return nil, "", fmt.Errorf("reading the run log of %s: %w", s.ID, err)
	}
	runs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Run, error) {
		var run Run
		err := r.Scan(&run.ScheduledFor, &run.Trigger, &run.Status, &run.Reason, &run.Attempt, &run.RetryAt,
			&run.CreatedAt, &run.UpdatedAt, &run.FinishedAt)
		return run, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("reading the run log of %s: %w", s.ID, err)
	}
	next := ""
	if len(runs) > limit {
		runs = runs[:limit]
		next = jobstore.EncodeCursor(runs[len(runs)-1].ScheduledFor, s.ID)
	}
	loc, _ := schedule.LoadZone(s.Timezone)
	times := make([]time.Time, len(runs))
	index := map[int64]int{}
	for i := range runs {
		runs[i].ScheduledFor = runs[i].ScheduledFor.UTC()
		if loc != nil {
			runs[i].Local = runs[i].ScheduledFor.In(loc).Format(time.RFC3339)
		}
		runs[i].JobIDs, runs[i].Attempts = []string{}, []Attempt{}
		times[i] = runs[i].ScheduledFor
		index[runs[i].ScheduledFor.UnixMicro()] = i
	}
	if len(runs) == 0 {
		return runs, next, nil
	}
	rows, err = st.pool.Query(ctx, `SELECT a.scheduled_for, a.job_id::text, a.attempt, coalesce(j.status, ''), a.created_at
		FROM schedule_attempts a LEFT JOIN jobs j ON j.id = a.job_id AND j.deleted_at IS NULL
		WHERE a.schedule_id = $1 AND a.scheduled_for = ANY($2) ORDER BY a.attempt`, s.ID, times)
	if err != nil {
		return nil, "", fmt.Errorf("reading the attempts of %s: %w", s.ID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var at time.Time
		var a Attempt
		if err := rows.Scan(&at, &a.JobID, &a.Attempt, &a.JobStatus, &a.CreatedAt); err != nil {
			return nil, "", fmt.Errorf("reading the attempts of %s: %w", s.ID, err)
		}
		if i, ok := index[at.UnixMicro()]; ok {
			runs[i].Attempts = append(runs[i].Attempts, a)
			runs[i].JobIDs = append(runs[i].JobIDs, a.JobID)
		}
	}
	return runs, next, rows.Err()
}
